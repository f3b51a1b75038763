"""App operators for labels: remap to genres, relabel by hand, split.

Thin shells over :mod:`fiftyone_genre.labels`.
The remap and split forms are ``dynamic``: every change of a parameter
recomputes a dry run of the library call, so the user sees the counts per
genre / split, unmapped classes and conflicts *before* anything is written.
The dry run is bounded: on more than :data:`PREVIEW_SAMPLE` clips it runs on
a random sample of that many (one count query decides), so a keystroke never
reads a whole large dataset.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_genre import genres as g
from fiftyone_genre.config import SplitConfig

from .common import (
    WRAP_CODE,
    Form,
    FormOperator,
    add_view_target,
    as_code_block,
    dataset_info,
    expand_path,
    finish,
    finished,
    headline,
    live,
    path_problem,
    report_view,
)

#: The forms' dry run reads at most this many clips (a random sample of larger targets).
PREVIEW_SAMPLE = 1000


def _report_output(ctx, title: str) -> types.Property:
    outputs = types.Object()
    outputs.str("report", label=title, view=report_view())
    return finished(outputs, title)


def _first_line(result: dict) -> str:
    """The toast: the report's first line (the App cuts longer toasts)."""
    return result["headline"]


def preview_sample(collection, limit: int = PREVIEW_SAMPLE):
    """``(collection or a random sample of limit clips, total clips)``: what a dry run may read."""
    total = len(collection)  # one count query
    return (collection if total <= limit else collection.take(limit, seed=0)), total


def _preview(form: Form, collection, compute) -> tuple[str | None, str | None]:
    """``(markdown of compute(sample)'s dry-run report, None)``, or ``(None, its error's first line)``.

    ``compute`` gets the clips to preview on: all of them up to
    :data:`PREVIEW_SAMPLE`, else a random sample, which the form says.
    """
    sample, total = preview_sample(collection)
    try:
        report = compute(sample)
    except (ValueError, FileNotFoundError) as e:  # ConfigError names the file and key
        return None, str(e).splitlines()[0]
    if sample is not collection:
        form.notice("preview_sample", f"Preview on a random sample of {PREVIEW_SAMPLE:,} of the {total:,} clips.",
                    "The run itself processes every clip.")
    return as_code_block(report), None


def build_remap_form(form: Form, preview: bool = True) -> None:
    from fiftyone_genre.labels.remap import remap

    ctx, p = form.ctx, form.params
    add_view_target(ctx, form.inputs, action="Remap")
    mapping, vocabulary = expand_path(p.get("mapping")), expand_path(p.get("vocabulary"))
    target = ctx.target_view()
    # the mapping may be a shipped name: the library's dry run judges it (and names the file)
    problems = {"mapping": None, "vocabulary": path_problem(vocabulary, must_be_file=True)}
    text = error = None
    if preview and not any(problems.values()):
        text, error = _preview(form, target, lambda sample: remap(
            sample, mapping=mapping, dry_run=True, vocabulary=vocabulary,
            overwrite_relabeled=bool(p.get("overwrite_relabeled", False)),
        ))
    if error and vocabulary and "vocabulary" in error.lower():
        problems["vocabulary"] = error
    elif error and mapping:
        problems["mapping"] = error
    form.field("str", "mapping", problems["mapping"], label="Mapping file (optional)",
               description="YAML on the server; empty = the shipped default for each sample's source")
    form.field("str", "vocabulary", problems["vocabulary"], label="YouTube-8M vocabulary.csv (optional)",
               description="feeds the Vertical1-3 rules when labels do not carry verticals")
    form.inputs.bool("overwrite_relabeled", default=False, label="Overwrite hand relabels",
                     description=f"by default clips tagged {g.RELABELED_TAG} keep their genre")
    form.inputs.bool("dry_run", default=False, label="Dry run",
                     description="Only report what would change; write nothing")
    if error and not mapping and problems["vocabulary"] != error:
        form.block("preview_error", error)
    if text:
        if g.GENRE_FIELD in ctx.dataset.get_field_schema():
            form.warn("replace", f"Replaces the '{g.GENRE_FIELD}' labels of the chosen samples (hand relabels are kept).")
        form.inputs.md(text, name="preview", componentsProps=WRAP_CODE)


# ---------------------------------------------------------------------------


class RemapGenres(FormOperator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="remap_genres",
            label="Genre: remap source labels to genres",
            description="Write the genre field from source_label through a mapping file",
            dynamic=True,
            execute_as_generator=True,
            icon="swap_horiz",
        )

    form_builder = staticmethod(build_remap_form)
    form_title = "Remap source labels to genres"

    def execute(self, ctx):
        from fiftyone_genre.labels.remap import remap

        self.checked_form(ctx, preview=False)
        params = ctx.params

        def work(progress) -> dict:
            report = remap(
                ctx.target_view(), mapping=expand_path(params.get("mapping")),
                dry_run=bool(params.get("dry_run", False)),
                overwrite_relabeled=bool(params.get("overwrite_relabeled", False)),
                vocabulary=expand_path(params.get("vocabulary")), progress=progress,
            )
            return {"report": as_code_block(report), "headline": headline(report), "counts": report.counts,
                    "unmapped": report.unmapped_classes}

        return live(ctx, work, _first_line, lambda r: _report_output(ctx, "Remap report"))

    def resolve_output(self, ctx):
        return _report_output(ctx, "Remap report")


# ---------------------------------------------------------------------------


def _genre_summary(target) -> str:
    counts = target.count_values(f"{g.GENRE_FIELD}.label") if target.has_field(g.GENRE_FIELD) else {None: len(target)}
    return ", ".join(f"{k or 'none'}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def _genre_fields(form: Form) -> None:
    """The genre dropdown, a free-text new genre and a reason; one of the first two is required."""
    from fiftyone_genre.labels.relabel import known_genres

    choices = types.DropdownView()
    for genre in known_genres(form.ctx.dataset):
        choices.add_choice(genre, label=genre)
    chosen = form.params.get("genre") or (form.params.get("new_genre") or "").strip()
    form.field("enum", "genre", None if chosen else "pick one, or type a new genre below.", values=choices.values(),
               label="Genre", description="The genre to set", view=choices)
    form.inputs.str("new_genre", label="...or a new genre",
                    description="adds a genre outside the six (leave empty to use the dropdown)")
    form.inputs.str("reason", label="Reason (optional)", description="kept in genre_history")


def build_relabel_form(form: Form) -> None:
    ctx = form.ctx
    add_view_target(ctx, form.inputs, action="Relabel")
    target = ctx.target_view()
    n = len(target)
    if not ctx.selected and ctx.dataset is not None and n == len(ctx.dataset):
        form.block("no_selection", "Select the clips to relabel first.",
                   "Tick samples in the grid or lasso points in the Embeddings panel; relabelling the whole dataset "
                   "is what 'remap' is for.")
        return
    form.notice("current", f"{n} samples; current genres: {_genre_summary(target)}")
    radio = types.RadioGroup()
    radio.add_choice("relabel", label="Set genre")
    radio.add_choice("undo", label="Undo the latest relabel")
    form.inputs.enum("action", radio.values(), default="relabel", label="Action",
                     description="Set a genre, or put back the genre the latest relabel replaced", view=radio)
    if form.params.get("action", "relabel") == "relabel":
        _genre_fields(form)
    form.inputs.str("user", label="Your name (optional)", description="default: the server's login name")


class RelabelSamples(FormOperator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="relabel_samples",
            label="Genre: relabel selected samples",
            description="Set the genre of the selected samples by hand (recorded, undoable)",
            dynamic=True,
            icon="edit",
        )

    def resolve_placement(self, ctx):
        return types.Placement(
            types.Places.SAMPLES_GRID_SECONDARY_ACTIONS,
            types.Button(label="Relabel genre", prompt=True),
        )

    form_builder = staticmethod(build_relabel_form)
    form_title = "Relabel genre"

    def execute(self, ctx):
        from fiftyone_genre.labels.relabel import relabel, undo_relabel

        self.checked_form(ctx)
        target = ctx.target_view()
        if ctx.params.get("action", "relabel") == "undo":
            n = undo_relabel(target)
            message = f"Reverted the latest relabel of {n} samples"
        else:
            new = (ctx.params.get("new_genre") or "").strip()
            genre = new or ctx.params.get("genre")
            n = relabel(
                target, genre, user=ctx.params.get("user") or getattr(ctx.user, "name", None),
                reason=ctx.params.get("reason"), allow_new_genre=bool(new),
            )
            message = f"Relabeled {n} samples as {genre} (tag {g.RELABELED_TAG})"
        finish(ctx, message)
        return {"count": n, "report": message, "headline": message}

    def resolve_output(self, ctx):
        return _report_output(ctx, "Relabel")

    def sdk_params(self, sample_collection, params: dict) -> dict:
        """``genre=`` (a known genre or a new one) and ``undo=True`` -> the form's fields.

        Example::

            relabel_samples = foo.get_operator("@fiftyone-genre/genre/relabel_samples")
            relabel_samples(dataset.select(ids), genre="Horror", reason="zombie film")
            relabel_samples(dataset.select(ids), undo=True)
        """
        from fiftyone_genre.labels.relabel import known_genres

        params = dict(params)
        if params.pop("undo", False):
            params["action"] = "undo"
            params.pop("genre", None)
        elif "genre" in params and params["genre"] not in known_genres(sample_collection._root_dataset):
            params["new_genre"] = params.pop("genre")
        return params


# ---------------------------------------------------------------------------


def _current_split(ctx) -> SplitConfig:
    """The split recorded on the dataset (the form's defaults), else the shipped defaults."""
    d = SplitConfig()
    info = dataset_info(ctx, g.SPLIT_INFO_KEY)
    ratios = info.get("ratios")
    return SplitConfig(
        ratios=tuple(float(r) for r in ratios) if ratios and len(ratios) == 3 else d.ratios,  # type: ignore[arg-type]
        seed=int(info.get("seed", d.seed)),
        keep_official_test=bool(info.get("keep_official_test", d.keep_official_test)),
    )


def _split_config(params: dict, base: SplitConfig) -> SplitConfig:
    ratios = tuple(float(params[n]) if params.get(n) is not None else base.ratios[i] for i, n in enumerate(g.SPLITS))
    return SplitConfig(
        ratios=ratios,  # type: ignore[arg-type]
        seed=int(params["seed"]) if params.get("seed") is not None else base.seed,
        keep_official_test=bool(params.get("keep_official_test", base.keep_official_test)),
    )


def _ratio_problem(params: dict, base: SplitConfig) -> str | None:
    """Ratios must each lie in [0, 1] and sum to 1: the form never rescales them silently."""
    ratios = _split_config(params, base).ratios
    if any(r < 0 or r > 1 for r in ratios):
        return "Each ratio must be between 0 and 1."
    if abs(sum(ratios) - 1.0) > 1e-3:
        return f"The ratios sum to {sum(ratios):.2f}; they must sum to 1."
    if not ratios[0] > 0:
        return "The train ratio must be greater than 0."
    return None


def build_split_form(form: Form, preview: bool = True) -> None:
    from fiftyone_genre.labels.split import split_dataset

    ctx = form.ctx
    add_view_target(ctx, form.inputs, action="Split")
    base = _current_split(ctx)
    problem = _ratio_problem(form.params, base)
    for i, name in enumerate(g.SPLITS):
        form.field("float", name, problem if name == "test" else None, default=base.ratios[i], min=0.0, max=1.0,
                   label=f"{name} ratio", description="Between 0 and 1; the three ratios must sum to 1")
    form.inputs.int("seed", default=base.seed, label="Seed", description="same seed, same split")
    form.inputs.bool("keep_official_test", default=base.keep_official_test, label="Keep the official test fold as test",
                     description="UCF101/HMDB51/Hollywood2 test clips go to test; the rest to train/val")
    if ctx.dataset is not None and ctx.dataset.has_field(g.SPLIT_FIELD):
        counts = ctx.dataset.count_values(g.SPLIT_FIELD)
        now = ", ".join(f"{counts.get(s, 0)} {s}" for s in g.SPLITS)
        form.warn("replace", f"Replaces the current split ({now}).",
                  "A model trained on the current split would then be tested on clips it has seen.")
    if preview and form.valid:
        target = ctx.target_view()
        text, error = _preview(form, target, lambda sample: split_dataset(sample, _split_config(form.params, base), dry_run=True))
        if error:
            form.block("preview_error", error)
        elif text:
            form.inputs.md(text, name="preview", componentsProps=WRAP_CODE)


class SplitDataset(FormOperator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="split_dataset",
            label="Genre: split train/val/test by group",
            description="Group-aware, genre-stratified split, then a leakage check",
            dynamic=True,
            execute_as_generator=True,
            icon="call_split",
        )

    form_builder = staticmethod(build_split_form)
    form_title = "Split by group"

    def execute(self, ctx):
        from fiftyone_genre.labels.leakage import check_leakage
        from fiftyone_genre.labels.split import split_dataset

        self.checked_form(ctx, preview=False)
        config = _split_config(ctx.params, _current_split(ctx))

        def work(progress) -> dict:
            report = split_dataset(ctx.target_view(), config, progress=progress)
            leakage = check_leakage(ctx.dataset)
            return {"report": as_code_block(f"{report}\n{leakage}"), "headline": headline(report), "totals": report.totals()}

        return live(ctx, work, _first_line, lambda r: _report_output(ctx, "Split report"))

    def resolve_output(self, ctx):
        return _report_output(ctx, "Split report")

    def sdk_params(self, sample_collection, params: dict) -> dict:
        """``ratios=(train, val, test)`` -> the form's three ratio fields.

        Example::

            split = foo.get_operator("@fiftyone-genre/genre/split_dataset")
            split(dataset, ratios=(0.7, 0.15, 0.15), seed=1)
        """
        params = dict(params)
        if "ratios" in params:
            params.update(zip(g.SPLITS, map(float, params.pop("ratios"))))
        return params


OPERATORS = [RemapGenres, RelabelSamples, SplitDataset]
