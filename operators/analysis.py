"""App operators for predict and error analysis.

- ``predict_genres``: run a trained model over the dataset / view / selection.
- ``evaluate_genres``: evaluation of one split + confusion matrix + saved confusion views.
- ``open_confusion_view``: pick a true and a predicted genre, see those samples.
- ``compute_genre_maps``: UMAP map, similarity index, mistakenness, hardness.

Each is a config, a module-level form builder (:class:`~.common.Form`) and
one call into :mod:`fiftyone_genre`; ``foo.get_operator("@fiftyone-genre/genre/<name>")(dataset, ...)``
works from Python too, through the wrapper :class:`~.common.FormOperator`
generates from the form.
"""

from __future__ import annotations

import functools
from pathlib import Path

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_genre import analysis as an
from fiftyone_genre import genres as g

from .common import (
    TRAINED_INFO_KEY,
    Form,
    FormOperator,
    LongRunOperator,
    add_view_target,
    dataset_info,
    expand_path,
    finish,
    finished,
    headline,
    live,
    long_run_config,
    output_dir_problem,
    progress_fn,
    report_view,
)

PLUGIN = "@fiftyone-genre/genre"
SPLIT_CHOICES = ("all", *g.SPLITS)


def _checkpoint_problem(model_dir: str | None) -> str | None:
    """None when ``model_dir`` holds a checkpoint that loads, else the one sentence the field shows.

    The checkpoint is really read (a truncated or foreign file is refused
    here, before a run is scheduled), once per file version.
    """
    if not model_dir:
        return None
    path = Path(expand_path(model_dir))
    if not path.exists():
        return f"no such folder on the App server: {model_dir}"
    try:
        _checkpoint(path)
    except FileNotFoundError:
        return f"no checkpoint in {model_dir} (expected best.pt or last.pt from training)"
    except ValueError as e:  # the loader's one sentence names the file and what is wrong
        return str(e).splitlines()[0]
    return None


def _checkpoint(model_dir: Path):
    """The checkpoint in ``model_dir``, read once per (file, size, mtime): forms re-resolve on every change."""
    from fiftyone_genre.modeling.model import find_checkpoint

    path = find_checkpoint(model_dir)
    stat = path.stat()
    return _read_checkpoint(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_checkpoint(path: str, size: int, mtime_ns: int):
    from fiftyone_genre.modeling.model import read_checkpoint

    return read_checkpoint(Path(path))


def _default_model_dir(ctx) -> str | None:
    """The model the train operator recorded on this dataset, else the one behind the predictions."""
    return dataset_info(ctx, TRAINED_INFO_KEY).get("model_dir") or dataset_info(ctx, g.RUN_INFO_KEY).get("model_dir")


# --------------------------------------------------------------------------- predict


def build_predict_form(form: Form) -> None:
    ctx = form.ctx
    form.inputs.md(
        f"Scores every 10 s window of each video and writes `{g.PRED_FIELD}`, `{g.TIMELINE_FIELD}`, "
        f"`{g.EMBEDDING_FIELD}`; the ground truth `{g.GENRE_FIELD}` is never touched.",
        name="intro",
    )
    add_view_target(ctx, form.inputs, "Predict")
    default_dir = _default_model_dir(ctx)
    model_dir = form.params.get("model_dir", default_dir)
    form.field(
        "str", "model_dir", _checkpoint_problem(model_dir), required=True, default=default_dir,
        label="Model directory", description="The folder training wrote (holds best.pt / last.pt), on the server",
    )
    form.inputs.enum(
        "device", ["auto", "cpu", "cuda"], default="auto", label="Device",
        description="auto uses a GPU when the server has one", view=types.DropdownView(),
    )
    form.inputs.bool(
        "strict", default=False, label="Stop at the first clip that cannot be predicted",
        description=f"Otherwise such clips get a reason in {g.ERRORS_FIELD} and the rest continue",
    )
    if ctx.dataset is not None and not dataset_info(ctx, g.FEATURES_INFO_KEY):
        form.warn("no_features", "No extracted features recorded on this dataset",
                  f"Run 'extract features' first; clips without features are listed in {g.ERRORS_FIELD}.")
    if form.valid and model_dir:
        form.notice("plan", _predict_plan(ctx, model_dir))


def _predict_plan(ctx, model_dir: str) -> str:
    """What will run: how many clips, which model and epoch."""
    n = len(ctx.target_view())
    try:
        ckpt = _checkpoint(Path(expand_path(model_dir)))
        model = f"{ckpt.experiment.model.modality} model, epoch {ckpt.epoch}"
    except Exception:  # noqa: BLE001 - the plan is a courtesy; the field reports real errors
        model = "the model"
    return f"{n} clip(s) will be predicted with {model} from {model_dir}."


class PredictGenres(FormOperator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="predict_genres",
            label="Genre: predict genres",
            description=(
                "Run a trained genre model over the videos: writes the predicted genre, a "
                "genre timeline (one genre per 2.5 s), a clip embedding and (fused models) picture-only "
                "and soundtrack-only predictions"
            ),
            icon="online_prediction",
            dynamic=True,
            execute_as_generator=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_placement(self, ctx):
        return types.Placement(
            types.Places.SAMPLES_GRID_SECONDARY_ACTIONS,
            types.Button(label="Predict genres", icon="online_prediction", prompt=True),
        )

    form_builder = staticmethod(build_predict_form)
    form_title = "Predict genres"

    def execute(self, ctx):
        from fiftyone_genre.config import PredictConfig
        from fiftyone_genre.inference.predict import predict

        self.checked_form(ctx)
        params = ctx.params

        def work(progress):
            report = predict(
                ctx.target_view(), expand_path(params["model_dir"]), PredictConfig(device=params.get("device", "auto")),
                progress=progress, strict=bool(params.get("strict", False)),
            )
            return {"summary": f"```\n{report}\n```", "headline": headline(report), **report.to_dict()}

        return live(ctx, work, lambda r: r["headline"], lambda r: self.resolve_output(ctx))

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_predicted", label="Clips predicted")
        outputs.int("num_failed", label="Clips that failed (see genre_errors)")
        outputs.str("summary", label="Summary", view=report_view())
        return finished(outputs, "Predictions written")

    #: ``op(dataset.match_tags("new"), "/models/genre-run1")``
    sdk_positional = ("model_dir",)


# --------------------------------------------------------------------------- evaluate


def build_evaluate_form(form: Form) -> None:
    ctx, inputs = form.ctx, form.inputs
    add_view_target(ctx, inputs, "Evaluate")
    preds = an.prediction_fields(ctx.dataset)
    if not preds:
        form.block("no_preds", "No predictions on this dataset yet.", "Run 'Genre: predict genres' first.")
        return
    default_split = an.default_eval_split(ctx.dataset) or "all"
    split = form.params.get("split") or default_split
    splits = types.Dropdown(label="Split")
    for choice in SPLIT_CHOICES:
        splits.add_choice(choice, label="every split" if choice == "all" else f"{choice} split only")
    inputs.enum("split", splits.values(), default=default_split, label="Split", view=splits,
                description="Score one split (test by default: training clips flatter the model)")
    form.field("enum", "pred_field", None, values=preds, default=g.PRED_FIELD if g.PRED_FIELD in preds else preds[0],
               required=True, label="Predictions", description="The prediction field to score", view=types.DropdownView())
    gts = an.ground_truth_fields(ctx.dataset) or [g.GENRE_FIELD]
    form.field("enum", "gt_field", None, values=gts, default=g.GENRE_FIELD if g.GENRE_FIELD in gts else gts[0],
               required=True, label="Ground truth", description="The labels to score against", view=types.DropdownView())
    eval_key = form.params.get("eval_key") or an.eval_key_for(split)
    form.field("str", "eval_key", _key_problem(eval_key), default=an.eval_key_for(split), label="Evaluation key",
               description="Name of the stored evaluation; named after the split so evaluations of other splits stay")
    form.field("str", "out_dir", output_dir_problem(form.params.get("out_dir")), label="Plot folder (optional)",
               description="Where the confusion-matrix PNG goes; default: the FiftyOne dataset dir")
    if form.valid and ctx.dataset.has_evaluation(eval_key):
        form.warn("replace", f"Replaces the evaluation '{eval_key}' and its saved confusion views.")


def _view_chips(outputs: types.Object, views: list[str]) -> None:
    """One button per saved confusion view; a click loads that view in the grid.

    The view is loaded on the server (``open_confusion_view`` with ``saved_view``):
    FiftyOne's own ``set_view`` by name looks the name up in the browser, which
    learns of views saved by a run only once its reload of the dataset is done,
    so an early click failed with "Saved view ... does not exist".
    """
    for i, name in enumerate(views):
        outputs.view(f"view_{i}", types.Button(
            label=name, icon="filter_alt", operator=f"{PLUGIN}/open_confusion_view", params={"saved_view": name},
        ))


def _evaluate(ctx, progress) -> dict:
    """The library's evaluation of the form's choices, as the operator's result."""
    split = ctx.params.get("split") or None
    report = an.evaluate(
        ctx.target_view(), pred_field=ctx.params.get("pred_field", g.PRED_FIELD),
        gt_field=ctx.params.get("gt_field", g.GENRE_FIELD), eval_key=ctx.params.get("eval_key") or None,
        out_dir=expand_path(ctx.params.get("out_dir")), progress=progress,
        split=None if split == "all" else split,
    )
    data = report.to_dict()
    keep = ("eval_key", "split", "accuracy", "macro_f1", "saved_views", "plot_path")
    result = {"summary": report.markdown(), "scope": report.scope_text(), **{k: data[k] for k in keep}}
    return {**result, "headline": _eval_message(result)}


def _eval_message(result: dict) -> str:
    scope = f"the {result['scope']}" if result.get("split") else result["scope"]
    return f"Accuracy {result['accuracy']:.3f} on {scope} ({result['eval_key']})"


def _eval_outputs(result: dict) -> types.Property:
    outputs = types.Object()
    outputs.str("summary", label="Evaluation", view=report_view())
    if result.get("saved_views"):
        outputs.md("**Saved views of the largest confusions** (click to load one):", name="views_title")
        _view_chips(outputs, result["saved_views"])
    return finished(outputs, "Evaluation")


class EvaluateGenres(FormOperator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="evaluate_genres",
            label="Genre: evaluate predictions",
            description=(
                "Compare predicted genres with the ground truth on one split: accuracy, per-genre "
                "scores, a confusion matrix in the Model Evaluation panel and saved views such as "
                "'horror-predicted-as-action'"
            ),
            icon="assessment",
            dynamic=True,
            execute_as_generator=True,
        )

    def resolve_placement(self, ctx):
        return types.Placement(
            types.Places.SAMPLES_GRID_SECONDARY_ACTIONS,
            types.Button(label="Evaluate genres", icon="assessment", prompt=True),
        )

    form_builder = staticmethod(build_evaluate_form)
    form_title = "Evaluate genres"

    def execute(self, ctx):
        self.checked_form(ctx)
        return live(ctx, lambda progress: _evaluate(ctx, progress), _eval_message, _eval_outputs)

    def resolve_output(self, ctx):
        return _eval_outputs(ctx.results or {})


# --------------------------------------------------------------------------- confusion view


def build_confusion_form(form: Form) -> None:
    ctx, inputs = form.ctx, form.inputs
    if form.params.get("saved_view"):  # a chip of the evaluation's output: nothing to choose
        inputs.str("saved_view", label="Saved view")
        return
    preds = an.prediction_fields(ctx.dataset)
    if not preds:
        form.block("no_preds", "No predictions yet.", "Run 'Genre: predict genres' first.")
        return
    pred_field = form.params.get("pred_field") or (g.PRED_FIELD if g.PRED_FIELD in preds else preds[0])
    inputs.enum("pred_field", preds, default=pred_field, label="Predictions",
                description="The prediction field whose mistakes to show", view=types.DropdownView())
    pairs = an.pair_counts(ctx.dataset, g.GENRE_FIELD, pred_field)
    labels = list(dataset_info(ctx, g.RUN_INFO_KEY).get("genres") or g.GENRES)
    labels += sorted({x for pair in pairs for x in pair} - set(labels))
    worst = next(((t, p) for (t, p), _ in pairs.most_common() if t != p), (labels[0], labels[0]))
    true_choices = types.Dropdown(label="True genre (ground truth)")
    for x in labels:
        true_choices.add_choice(x, label=f"{x} ({sum(c for (t, _), c in pairs.items() if t == x)})")
    form.field("enum", "true_genre", None, values=labels, default=worst[0], required=True, view=true_choices,
               description="The genre the clips are labelled with")
    true_genre = form.params.get("true_genre") or worst[0]
    pred_choices = types.Dropdown(label="Predicted genre")
    for x in labels:
        pred_choices.add_choice(x, label=f"{x} ({pairs.get((true_genre, x), 0)} of them)")
    pred_genre = form.params.get("pred_genre") or worst[1]
    n = pairs.get((true_genre, pred_genre), 0)
    form.field("enum", "pred_genre", None if n else f"no clip labelled {true_genre} is predicted as {pred_genre}.",
               values=labels, default=worst[1], required=True, view=pred_choices,
               description="The genre the model predicted for them")
    if n:
        form.notice("count", f"{n} clip(s) labelled {true_genre} are predicted as {pred_genre}")


class OpenConfusionView(FormOperator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="open_confusion_view",
            label="Genre: open confusion view",
            description="Show the clips of one true genre that were predicted as another, most confident first",
            icon="grid_view",
            dynamic=True,
        )

    def resolve_placement(self, ctx):
        return types.Placement(
            types.Places.SAMPLES_GRID_SECONDARY_ACTIONS,
            types.Button(label="Open confusion view", icon="grid_view", prompt=True),
        )

    form_builder = staticmethod(build_confusion_form)
    form_title = "Open confusion view"

    def execute(self, ctx):
        if ctx.params.get("saved_view"):  # a chip of the evaluation's output
            return _load_saved_view(ctx, ctx.params["saved_view"])
        self.checked_form(ctx)
        view = an.confusion_view(
            ctx.dataset, ctx.params["true_genre"], ctx.params["pred_genre"],
            pred_field=ctx.params.get("pred_field", g.PRED_FIELD),
        )
        ctx.ops.set_view(view=view)
        return {"count": len(view)}

    #: ``op(dataset, "Horror", "Action").result["count"]`` (a connected App shows the view)
    sdk_positional = ("true_genre", "pred_genre")


def _load_saved_view(ctx, name: str) -> dict:
    """Show a saved view of this dataset in the grid (one sentence when it is gone)."""
    if not ctx.dataset.has_saved_view(name):
        raise ValueError(f"the saved view '{name}' is no longer on dataset '{ctx.dataset.name}' (evaluate again)")
    view = ctx.dataset.load_saved_view(name)
    ctx.ops.set_view(view=view)
    return {"count": len(view)}


# --------------------------------------------------------------------------- maps


def _key_problem(value) -> str | None:
    """A stored run's name must be an identifier; the field's name is added by the form."""
    if not value or str(value).isidentifier():
        return None
    return f"use letters, digits and underscores only (not {str(value)!r})."


def build_maps_form(form: Form) -> None:
    ctx, inputs = form.ctx, form.inputs
    add_view_target(ctx, inputs, "Map")
    if not ctx.dataset.has_field(g.EMBEDDING_FIELD):
        form.block("no_embeddings", f"No '{g.EMBEDDING_FIELD}' field yet.",
                   "Run 'Genre: predict genres' first; it writes the clip embeddings.")
        return
    p = form.params
    form.field("str", "brain_key", _key_problem(p.get("brain_key")), default="genre_umap", required=True,
               label="Map brain key", description="The UMAP map's name in the Embeddings panel")
    form.field("str", "similarity_key", _key_problem(p.get("similarity_key")), default="genre_sim", required=True,
               label="Similarity brain key", description="The similarity index (sort by similarity in the grid)")
    inputs.bool("mistakenness", default=True, label="Score likely label mistakes (mistakenness)",
                description="Field 'mistakenness': high when a confident prediction disagrees with the label")
    inputs.bool("hardness", default=True, label="Score hard clips (hardness)",
                description="Field 'hardness': high when the model is unsure")
    n = len(ctx.target_view().exists(g.EMBEDDING_FIELD))
    if n < 3:
        form.block("too_few", f"A map needs at least 3 clips with embeddings; the target has {n}.")
        return
    keys = an.maps_brain_keys(p.get("brain_key", "genre_umap"), p.get("similarity_key", "genre_sim"),
                              "mistakenness" if p.get("mistakenness", True) else None,
                              "hardness" if p.get("hardness", True) else None)
    existing = [k for k in keys if ctx.dataset.has_brain_run(k)]
    form.notice("plan", f"{n} clip(s) with embeddings will be mapped.")
    if existing:
        form.warn("replace", f"Replaces the existing brain runs: {', '.join(existing)}.")


class ComputeGenreMaps(LongRunOperator):
    @property
    def config(self):
        return long_run_config(
            name="compute_genre_maps",
            label="Genre: compute embedding map and label checks",
            description=(
                "UMAP map of the clip embeddings (lasso a cluster in the Embeddings panel and "
                "relabel it), a similarity index, label mistakenness and prediction hardness"
            ),
            icon="scatter_plot",
        )

    form_builder = staticmethod(build_maps_form)
    form_title = "Compute genre maps"

    def execute(self, ctx):
        self.checked_form(ctx)
        report = an.compute_maps(
            ctx.target_view(), brain_key=ctx.params.get("brain_key", "genre_umap"),
            similarity_key=ctx.params.get("similarity_key", "genre_sim"),
            mistakenness_field="mistakenness" if ctx.params.get("mistakenness", True) else None,
            hardness_field="hardness" if ctx.params.get("hardness", True) else None,
            progress=progress_fn(ctx),
        )
        message = f"Maps computed over {report.num_samples} clips"
        finish(ctx, message)
        return {"summary": "\n".join(f"- {line.strip()}" for line in str(report).splitlines()[1:]), "headline": message,
                **report.to_dict()}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("summary", label="Brain runs written", view=types.MarkdownView())
        return finished(outputs, "Genre maps")


OPERATORS = [PredictGenres, EvaluateGenres, OpenConfusionView, ComputeGenreMaps]
