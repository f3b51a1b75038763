"""App operators for predict and error analysis.

- ``predict_genres``: run a trained model over the dataset / view / selection.
- ``evaluate_genres``: evaluation + confusion matrix + saved confusion views.
- ``open_confusion_view``: pick a true and a predicted genre, see those samples.
- ``compute_genre_maps``: UMAP map, similarity index, mistakenness, hardness.

Each is a form, one call into :mod:`fiftyone_genre`, and an SDK ``__call__``
so ``foo.get_operator("@fiftyone-genre/genre/<name>")(dataset, ...)`` works
from Python too.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_genre import genres as g

from .common import add_view_target, as_code_block, expand_path, notify_done, progress_fn

PLUGIN = "@fiftyone-genre/genre"


def _classification_fields(ctx, exclude: tuple[str, ...] = ()) -> list[str]:
    """Sample-level Classification fields of the dataset (prediction candidates)."""
    import fiftyone as fo

    schema = ctx.dataset.get_field_schema(embedded_doc_type=fo.Classification)
    return [name for name in schema if name not in exclude]


def _last_run(ctx) -> dict:
    return ctx.dataset.info.get(g.RUN_INFO_KEY) or {} if ctx.dataset is not None else {}


def _checkpoint_problem(model_dir: str | None) -> str | None:
    """None when ``model_dir`` holds a checkpoint, else the message the form shows."""
    from fiftyone_genre.model import find_checkpoint

    if not model_dir:
        return None
    path = Path(expand_path(model_dir))
    if not path.exists():
        return f"no such folder: {model_dir}"
    try:
        find_checkpoint(path)
    except FileNotFoundError:
        return f"no checkpoint in {model_dir} (expected best.pt or last.pt from `fiftyone-genre train`)"
    return None


def _done(ctx, report) -> None:
    """Refresh the App and say what happened; delegated runs have no App to talk to."""
    if not ctx.delegated:
        ctx.ops.reload_dataset()
        notify_done(ctx, report)


# --------------------------------------------------------------------------- predict


class PredictGenres(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="predict_genres",
            label="Genre: predict genres",
            description=(
                "Run a trained genre model over the videos: writes the predicted genre, a "
                "per-window genre timeline, a clip embedding and (fused models) picture-only "
                "and soundtrack-only predictions"
            ),
            icon="online_prediction",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_placement(self, ctx):
        return types.Placement(
            types.Places.SAMPLES_GRID_SECONDARY_ACTIONS,
            types.Button(label="Predict genres", icon="online_prediction", prompt=True),
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.md(
            "Scores every 10 s window of each video with a trained model and writes "
            f"`{g.PRED_FIELD}`, `{g.TIMELINE_FIELD}`, `{g.EMBEDDING_FIELD}` (and "
            f"`{g.PRED_VISUAL_FIELD}` / `{g.PRED_AUDIO_FIELD}` for audio-visual models). "
            f"The ground truth `{g.GENRE_FIELD}` is never touched.",
            name="intro",
        )
        add_view_target(ctx, inputs, "Predict")
        default_dir = _last_run(ctx).get("model_dir")
        model_dir = ctx.params.get("model_dir", default_dir)
        problem = _checkpoint_problem(model_dir)
        inputs.str(
            "model_dir",
            label="Model directory",
            description="The folder `fiftyone-genre train` wrote (holds best.pt / last.pt), on the server",
            required=True,
            default=default_dir,
            invalid=problem is not None,
            error_message=problem or "",
        )
        if problem:
            inputs.view("model_dir_error", types.Error(label=problem))
        if ctx.dataset is not None and not ctx.dataset.info.get(g.FEATURES_INFO_KEY):
            inputs.view(
                "no_features",
                types.Warning(
                    label="No extracted features recorded on this dataset",
                    description="Run 'Genre: extract features' first; clips without features are "
                    f"skipped and listed in `{g.ERRORS_FIELD}`.",
                ),
            )
        inputs.enum(
            "device",
            ["auto", "cpu", "cuda"],
            default="auto",
            label="Device",
            description="auto uses a GPU when the server has one",
            view=types.DropdownView(),
        )
        inputs.bool(
            "strict",
            default=False,
            label="Stop at the first clip that cannot be predicted",
            description="Otherwise such clips get a reason in genre_errors and the rest continue",
        )
        return types.Property(inputs, view=types.View(label="Predict genres"))

    def execute(self, ctx):
        from fiftyone_genre.config import PredictConfig
        from fiftyone_genre.predict import predict

        view = ctx.target_view()
        report = predict(
            view,
            expand_path(ctx.params["model_dir"]),
            PredictConfig(device=ctx.params.get("device", "auto")),
            progress=progress_fn(ctx),
            strict=bool(ctx.params.get("strict", False)),
        )
        _done(ctx, report)
        return {"summary": as_code_block(report), **report.to_dict()}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_predicted", label="Clips predicted")
        outputs.int("num_failed", label="Clips that failed (see genre_errors)")
        outputs.str("summary", label="Summary", view=types.MarkdownView())
        return types.Property(outputs, view=types.View(label="Predictions written"))

    def __call__(self, sample_collection, model_dir, device="auto", strict=False, delegate=False):
        """Predict genres on a dataset or view from Python.

        Example::

            import fiftyone as fo
            import fiftyone.operators as foo

            dataset = fo.load_dataset("my-videos")
            op = foo.get_operator("@fiftyone-genre/genre/predict_genres")
            op(dataset.match_tags("new"), "/models/genre-run1")

        Args:
            sample_collection: a dataset or view
            model_dir: a model directory with ``best.pt`` / ``last.pt``
            device ("auto"): "auto", "cpu" or "cuda"
            strict (False): stop at the first clip that cannot be predicted
            delegate (False): queue as a delegated operation instead
        """
        ctx = dict(view=sample_collection.view())
        params = dict(model_dir=str(model_dir), device=device, strict=strict)
        return foo.execute_operator(self.uri, ctx, params=params, request_delegation=delegate)


# --------------------------------------------------------------------------- evaluate


class EvaluateGenres(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="evaluate_genres",
            label="Genre: evaluate predictions",
            description=(
                "Compare predicted genres with the ground truth: accuracy, per-genre scores, a "
                "confusion matrix in the Model Evaluation panel and saved views such as "
                "'horror-predicted-as-action'"
            ),
            icon="assessment",
            dynamic=True,
        )

    def resolve_placement(self, ctx):
        return types.Placement(
            types.Places.SAMPLES_GRID_SECONDARY_ACTIONS,
            types.Button(label="Evaluate genres", icon="assessment", prompt=True),
        )

    def resolve_input(self, ctx):
        from fiftyone_genre.analysis import DEFAULT_EVAL_KEY

        inputs = types.Object()
        add_view_target(ctx, inputs, "Evaluate")
        preds = _classification_fields(ctx, exclude=(g.GENRE_FIELD, g.SOURCE_LABEL_FIELD))
        if not preds:
            inputs.view(
                "no_preds",
                types.Error(
                    label="No predictions on this dataset yet",
                    description="Run 'Genre: predict genres' first.",
                ),
            )
            return types.Property(inputs, view=types.View(label="Evaluate genres"))
        default_pred = g.PRED_FIELD if g.PRED_FIELD in preds else preds[0]
        inputs.enum(
            "pred_field", preds, default=default_pred, required=True, label="Predictions",
            description="The prediction field to score", view=types.DropdownView(),
        )
        gts = _classification_fields(ctx)
        inputs.enum(
            "gt_field", gts, default=g.GENRE_FIELD if g.GENRE_FIELD in gts else gts[0], required=True,
            label="Ground truth", description="The labels to score against", view=types.DropdownView(),
        )
        eval_key = ctx.params.get("eval_key", DEFAULT_EVAL_KEY)
        bad_key = bool(eval_key) and not str(eval_key).isidentifier()
        inputs.str(
            "eval_key", default=DEFAULT_EVAL_KEY, required=True, label="Evaluation key",
            description="Name of the stored evaluation (re-using a key replaces it)",
            invalid=bad_key, error_message="letters, digits and underscores only" if bad_key else "",
        )
        inputs.str(
            "out_dir", required=False, label="Plot folder (optional)",
            description="Where the confusion-matrix PNG goes; default: the FiftyOne dataset dir",
        )
        return types.Property(inputs, view=types.View(label="Evaluate genres"))

    def execute(self, ctx):
        from fiftyone_genre.analysis import DEFAULT_EVAL_KEY, evaluate

        report = evaluate(
            ctx.target_view(),
            pred_field=ctx.params.get("pred_field", g.PRED_FIELD),
            gt_field=ctx.params.get("gt_field", g.GENRE_FIELD),
            eval_key=ctx.params.get("eval_key") or DEFAULT_EVAL_KEY,
            out_dir=ctx.params.get("out_dir") or None,
            progress=progress_fn(ctx),
        )
        _done(ctx, report)
        data = report.to_json()
        return {
            "summary": as_code_block(report),
            "accuracy": data["accuracy"],
            "macro_f1": data["macro_f1"],
            "saved_views": data["saved_views"],
            "plot_path": data["plot_path"],
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.float("accuracy", label="Accuracy")
        outputs.float("macro_f1", label="Macro-F1")
        outputs.list("saved_views", types.String(), label="Saved views of the largest confusions")
        outputs.str("summary", label="Report", view=types.MarkdownView())
        return types.Property(outputs, view=types.View(label="Evaluation"))

    def __call__(
        self, sample_collection, pred_field=g.PRED_FIELD, gt_field=g.GENRE_FIELD,
        eval_key="genre_eval", out_dir=None, delegate=False,
    ):
        """Evaluate genre predictions from Python.

        Example::

            op = foo.get_operator("@fiftyone-genre/genre/evaluate_genres")
            result = op(dataset.match(F("split") == "test"))
            print(result.result["accuracy"])

        Args:
            sample_collection: a dataset or view
            pred_field ("genre_pred"): the predictions
            gt_field ("genre"): the ground truth
            eval_key ("genre_eval"): the evaluation key (replaced if present)
            out_dir (None): folder for the confusion-matrix PNG
            delegate (False): queue as a delegated operation instead
        """
        ctx = dict(view=sample_collection.view())
        params = dict(pred_field=pred_field, gt_field=gt_field, eval_key=eval_key, out_dir=out_dir)
        return foo.execute_operator(self.uri, ctx, params=params, request_delegation=delegate)


# --------------------------------------------------------------------------- confusion view


class OpenConfusionView(foo.Operator):
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

    def resolve_input(self, ctx):
        inputs = types.Object()
        preds = _classification_fields(ctx, exclude=(g.GENRE_FIELD, g.SOURCE_LABEL_FIELD))
        if not preds:
            inputs.view(
                "no_preds",
                types.Error(label="No predictions yet", description="Run 'Genre: predict genres' first."),
            )
            return types.Property(inputs, view=types.View(label="Open confusion view"))
        pred_field = ctx.params.get("pred_field") or (g.PRED_FIELD if g.PRED_FIELD in preds else preds[0])
        inputs.enum(
            "pred_field", preds, default=pred_field, label="Predictions", view=types.DropdownView(),
        )
        gt_field = g.GENRE_FIELD
        pairs = _pair_counts(ctx.dataset, gt_field, pred_field) if ctx.dataset.has_field(gt_field) else Counter()
        labels = list(_last_run(ctx).get("genres") or g.GENRES)
        labels += sorted({x for pair in pairs for x in pair} - set(labels))
        worst = next(((t, p) for (t, p), _ in pairs.most_common() if t != p), (labels[0], labels[0]))

        true_choices = types.Dropdown(label="True genre (ground truth)")
        for x in labels:
            n = sum(c for (t, _), c in pairs.items() if t == x)
            true_choices.add_choice(x, label=f"{x} ({n})")
        true_genre = ctx.params.get("true_genre") or worst[0]
        inputs.enum("true_genre", labels, default=worst[0], required=True, view=true_choices)

        pred_choices = types.Dropdown(label="Predicted genre")
        for x in labels:
            pred_choices.add_choice(x, label=f"{x} ({pairs.get((true_genre, x), 0)} of them)")
        inputs.enum("pred_genre", labels, default=worst[1], required=True, view=pred_choices)
        pred_genre = ctx.params.get("pred_genre") or worst[1]
        n = pairs.get((true_genre, pred_genre), 0)
        inputs.view(
            "count",
            types.Notice(label=f"{n} clip(s) labelled {true_genre} are predicted as {pred_genre}"),
        )
        return types.Property(inputs, view=types.View(label="Open confusion view"))

    def execute(self, ctx):
        from fiftyone_genre.analysis import confusion_view

        view = confusion_view(
            ctx.dataset,
            ctx.params["true_genre"],
            ctx.params["pred_genre"],
            pred_field=ctx.params.get("pred_field", g.PRED_FIELD),
        )
        ctx.ops.set_view(view=view)
        return {"count": len(view)}

    def __call__(self, sample_collection, true_genre, pred_genre, pred_field=g.PRED_FIELD):
        """Set the App's view to one confusion cell (needs a connected App to show it).

        Example::

            op = foo.get_operator("@fiftyone-genre/genre/open_confusion_view")
            op(dataset, "Horror", "Action").result["count"]
        """
        ctx = dict(view=sample_collection.view())
        params = dict(true_genre=true_genre, pred_genre=pred_genre, pred_field=pred_field)
        return foo.execute_operator(self.uri, ctx, params=params)


def _pair_counts(dataset, gt_field: str, pred_field: str) -> Counter:
    """``(true, predicted) -> count`` over samples having both labels."""
    view = dataset.exists(gt_field).exists(pred_field)
    truth, pred = view.values([f"{gt_field}.label", f"{pred_field}.label"])
    return Counter(zip(truth, pred))


# --------------------------------------------------------------------------- maps


class ComputeGenreMaps(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="compute_genre_maps",
            label="Genre: compute embedding map and label checks",
            description=(
                "UMAP map of the clip embeddings (lasso a cluster in the Embeddings panel and "
                "relabel it), a similarity index, label mistakenness and prediction hardness"
            ),
            icon="scatter_plot",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        add_view_target(ctx, inputs, "Map")
        if not ctx.dataset.has_field(g.EMBEDDING_FIELD):
            inputs.view(
                "no_embeddings",
                types.Error(
                    label=f"No '{g.EMBEDDING_FIELD}' field yet",
                    description="Run 'Genre: predict genres' first; it writes the clip embeddings.",
                ),
            )
            inputs.str("embedding_field", required=True, invalid=True, error_message="run predict first")
            return types.Property(inputs, view=types.View(label="Compute genre maps"))
        inputs.str("brain_key", default="genre_umap", required=True, label="Map brain key")
        inputs.str("similarity_key", default="genre_sim", required=True, label="Similarity brain key")
        inputs.bool("mistakenness", default=True, label="Score likely label mistakes (mistakenness)")
        inputs.bool("hardness", default=True, label="Score hard clips (hardness)")
        return types.Property(inputs, view=types.View(label="Compute genre maps"))

    def execute(self, ctx):
        from fiftyone_genre.analysis import compute_maps

        report = compute_maps(
            ctx.target_view(),
            brain_key=ctx.params.get("brain_key", "genre_umap"),
            similarity_key=ctx.params.get("similarity_key", "genre_sim"),
            mistakenness_field="mistakenness" if ctx.params.get("mistakenness", True) else None,
            hardness_field="hardness" if ctx.params.get("hardness", True) else None,
            progress=progress_fn(ctx),
        )
        _done(ctx, report)
        return {"summary": as_code_block(report), **report.to_json()}

    def __call__(
        self, sample_collection, brain_key="genre_umap", similarity_key="genre_sim",
        mistakenness=True, hardness=True, delegate=False,
    ):
        """Compute the genre maps from Python.

        Example::

            op = foo.get_operator("@fiftyone-genre/genre/compute_genre_maps")
            op(dataset)
            session = fo.launch_app(dataset)  # Embeddings panel -> genre_umap
        """
        ctx = dict(view=sample_collection.view())
        params = dict(
            brain_key=brain_key, similarity_key=similarity_key,
            mistakenness=mistakenness, hardness=hardness,
        )
        return foo.execute_operator(self.uri, ctx, params=params, request_delegation=delegate)


OPERATORS = [PredictGenres, EvaluateGenres, OpenConfusionView, ComputeGenreMaps]
