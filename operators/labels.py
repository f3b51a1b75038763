"""App operators for labels: remap to genres, relabel by hand, split.

Thin shells over :mod:`fiftyone_genre.remap` and :mod:`fiftyone_genre.split`.
The remap and split forms are ``dynamic``: every change of a parameter
recomputes a dry run of the library call, so the user sees the counts per
genre / split, unmapped classes and conflicts *before* anything is written.
"""

from __future__ import annotations

from collections import Counter

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_genre import genres as g
from fiftyone_genre.config import SplitConfig

from .common import (
    add_view_target,
    as_code_block,
    expand_path,
    form_error,
    form_notice,
    form_warning,
    notify_done,
    progress_fn,
)

#: Above this many samples the forms skip the live preview (it scans every sample).
PREVIEW_LIMIT = 200_000


def _report_output(ctx, title: str) -> types.Property:
    outputs = types.Object()
    outputs.str("report", label=title, view=types.MarkdownView())
    return types.Property(outputs, view=types.View(label=title))


def _preview(inputs: types.Object, collection, compute) -> None:
    """Show ``compute()``'s report in the form; its error in red when it fails."""
    if len(collection) > PREVIEW_LIMIT:
        form_notice(inputs, "preview_skipped", f"{len(collection)} samples: no live preview; run with dry run from the CLI")
        return
    try:
        report = compute()
    except (ValueError, FileNotFoundError) as e:  # ConfigError names the file and key
        form_error(inputs, "preview_error", str(e).splitlines()[0], str(e))
        return
    inputs.md(as_code_block(report), name="preview")


# ---------------------------------------------------------------------------


class RemapGenres(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="remap_genres",
            label="Genre: remap source labels to genres",
            description="Write the genre field from source_label through a mapping file",
            dynamic=True,
            icon="swap_horiz",
        )

    def resolve_input(self, ctx):
        from fiftyone_genre.remap import remap

        inputs = types.Object()
        add_view_target(ctx, inputs, action="Remap")
        inputs.str(
            "mapping",
            label="Mapping file (optional)",
            description="YAML on the server; empty = the shipped default for each sample's source",
        )
        inputs.str(
            "vocabulary",
            label="YouTube-8M vocabulary.csv (optional)",
            description="feeds the Vertical1-3 rules when labels do not carry verticals",
        )
        inputs.bool(
            "overwrite_relabeled",
            default=False,
            label="Overwrite hand relabels",
            description="by default clips tagged genre:relabeled keep their genre",
        )
        mapping = expand_path(ctx.params.get("mapping"))
        vocabulary = expand_path(ctx.params.get("vocabulary"))
        target = ctx.target_view()
        _preview(
            inputs,
            target,
            lambda: remap(
                target,
                mapping=mapping,
                dry_run=True,
                overwrite_relabeled=bool(ctx.params.get("overwrite_relabeled", False)),
                vocabulary=vocabulary,
            ),
        )
        return types.Property(inputs, view=types.View(label="Remap source labels to genres"))

    def execute(self, ctx):
        from fiftyone_genre.remap import remap

        report = remap(
            ctx.target_view(),
            mapping=expand_path(ctx.params.get("mapping")),
            dry_run=bool(ctx.params.get("dry_run", False)),
            overwrite_relabeled=bool(ctx.params.get("overwrite_relabeled", False)),
            vocabulary=expand_path(ctx.params.get("vocabulary")),
            progress=progress_fn(ctx),
        )
        if not report.dry_run:
            ctx.ops.reload_dataset()
        notify_done(ctx, report, "warning" if report.warnings else "success")
        return {"report": as_code_block(report), "counts": report.counts, "unmapped": report.unmapped_classes}

    def resolve_output(self, ctx):
        return _report_output(ctx, "Remap report")

    def __call__(
        self,
        sample_collection,
        mapping=None,
        dry_run=False,
        overwrite_relabeled=False,
        vocabulary=None,
        delegate=False,
    ):
        """Remap ``sample_collection`` to genres (see :func:`fiftyone_genre.remap.remap`).

        Example::

            import fiftyone as fo
            import fiftyone.operators as foo

            remap_genres = foo.get_operator("@fiftyone-genre/genre/remap_genres")
            result = remap_genres(fo.load_dataset("ucf"), dry_run=True)
            print(result.result["counts"])
        """
        params = dict(
            mapping=str(mapping) if mapping else None,
            dry_run=dry_run,
            overwrite_relabeled=overwrite_relabeled,
            vocabulary=str(vocabulary) if vocabulary else None,
        )
        return foo.execute_operator(
            self.uri, dict(view=sample_collection.view()), params=params, request_delegation=delegate
        )


# ---------------------------------------------------------------------------


class RelabelSamples(foo.Operator):
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

    def resolve_input(self, ctx):
        from fiftyone_genre.remap import known_genres

        inputs = types.Object()
        add_view_target(ctx, inputs, action="Relabel")
        target = ctx.target_view()
        n = len(target)
        if not ctx.selected:
            form_warning(
                inputs,
                "no_selection",
                f"No samples selected: this acts on all {n} samples of the chosen target",
                "Lasso points in the embeddings panel or tick samples in the grid first.",
            )
        current = Counter(target.values(f"{g.GENRE_FIELD}.label")) if g.GENRE_FIELD in target.get_field_schema() else Counter({None: n})
        summary = ", ".join(f"{k or 'none'}: {v}" for k, v in current.most_common())
        form_notice(inputs, "current", f"{n} samples; current genres: {summary or 'none'}")

        action = ctx.params.get("action", "relabel")
        radio = types.RadioGroup()
        radio.add_choice("relabel", label="Set genre")
        radio.add_choice("undo", label="Undo the latest relabel")
        inputs.enum("action", radio.values(), default="relabel", label="Action", view=radio)
        if action == "relabel":
            choices = types.DropdownView()
            for genre in known_genres(ctx.dataset):
                choices.add_choice(genre, label=genre)
            inputs.enum("genre", choices.values(), label="Genre", view=choices, required=False)
            inputs.str(
                "new_genre",
                label="...or a new genre",
                description="adds a genre outside the six (leave empty to use the dropdown)",
            )
            inputs.str("reason", label="Reason (optional)", description="kept in genre_history")
            if not (ctx.params.get("genre") or ctx.params.get("new_genre")):
                form_notice(inputs, "pick", "Pick a genre")
        inputs.str("user", label="Your name (optional)", description="default: the server's login name")
        return types.Property(inputs, view=types.View(label="Relabel genre"))

    def execute(self, ctx):
        from fiftyone_genre.remap import relabel, undo_relabel

        target = ctx.target_view()
        if ctx.params.get("action", "relabel") == "undo":
            n = undo_relabel(target)
            message = f"Reverted the latest relabel of {n} samples"
        else:
            new = (ctx.params.get("new_genre") or "").strip()
            genre = new or ctx.params.get("genre")
            if not genre:
                raise ValueError("relabel_samples: choose a genre")
            n = relabel(
                target,
                genre,
                user=ctx.params.get("user") or getattr(ctx.user, "name", None),
                reason=ctx.params.get("reason"),
                allow_new_genre=bool(new),
            )
            message = f"Relabeled {n} samples as {genre} (tag {g.RELABELED_TAG})"
        ctx.ops.reload_dataset()
        notify_done(ctx, message)
        return {"count": n, "report": message}

    def resolve_output(self, ctx):
        return _report_output(ctx, "Relabel")

    def __call__(self, sample_collection, genre=None, undo=False, user=None, reason=None, delegate=False):
        """Relabel (or ``undo=True``: revert) every sample of ``sample_collection``.

        Example::

            import fiftyone.operators as foo

            relabel_samples = foo.get_operator("@fiftyone-genre/genre/relabel_samples")
            relabel_samples(dataset.select(ids), genre="Horror", reason="zombie film")
            relabel_samples(dataset.select(ids), undo=True)
        """
        from fiftyone_genre.remap import known_genres

        params = {"action": "undo" if undo else "relabel", "user": user, "reason": reason}
        if not undo:
            if genre in known_genres(sample_collection._root_dataset):
                params["genre"] = genre
            else:
                params["new_genre"] = genre
        return foo.execute_operator(
            self.uri, dict(view=sample_collection.view()), params=params, request_delegation=delegate
        )


# ---------------------------------------------------------------------------


class SplitDataset(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="split_dataset",
            label="Genre: split train/val/test by group",
            description="Group-aware, genre-stratified split, then a leakage check",
            dynamic=True,
            icon="call_split",
        )

    def resolve_input(self, ctx):
        from fiftyone_genre.split import split_dataset

        inputs = types.Object()
        add_view_target(ctx, inputs, action="Split")
        defaults = SplitConfig()
        for i, name in enumerate(g.SPLITS):
            inputs.float(name, default=defaults.ratios[i], min=0.0, max=1.0, label=f"{name} ratio")
        inputs.int("seed", default=defaults.seed, label="Seed", description="same seed, same split")
        inputs.bool(
            "keep_official_test",
            default=defaults.keep_official_test,
            label="Keep the official test fold as test",
            description="UCF101/HMDB51/Hollywood2 test clips go to test; the rest to train/val",
        )
        config = _split_config(ctx)
        target = ctx.target_view()
        _preview(inputs, target, lambda: split_dataset(target, config, dry_run=True))
        return types.Property(inputs, view=types.View(label="Split by group"))

    def execute(self, ctx):
        from fiftyone_genre.split import check_leakage, split_dataset

        target = ctx.target_view()
        report = split_dataset(target, _split_config(ctx), progress=progress_fn(ctx))
        leakage = check_leakage(ctx.dataset)
        ctx.ops.reload_dataset()
        notify_done(ctx, report)
        return {"report": as_code_block(f"{report}\n{leakage}"), "totals": report.totals()}

    def resolve_output(self, ctx):
        return _report_output(ctx, "Split report")

    def __call__(self, sample_collection, ratios=(0.8, 0.1, 0.1), seed=0, keep_official_test=False, delegate=False):
        """Split ``sample_collection`` (see :func:`fiftyone_genre.split.split_dataset`).

        Example::

            import fiftyone.operators as foo

            split = foo.get_operator("@fiftyone-genre/genre/split_dataset")
            split(dataset, ratios=(0.7, 0.15, 0.15), seed=1)
        """
        params = dict(zip(g.SPLITS, map(float, ratios)), seed=int(seed), keep_official_test=keep_official_test)
        return foo.execute_operator(
            self.uri, dict(view=sample_collection.view()), params=params, request_delegation=delegate
        )


def _split_config(ctx) -> SplitConfig:
    d = SplitConfig()
    ratios = tuple(
        float(ctx.params.get(name) if ctx.params.get(name) is not None else d.ratios[i])
        for i, name in enumerate(g.SPLITS)
    )
    return SplitConfig(
        ratios=ratios,  # type: ignore[arg-type]
        seed=int(ctx.params.get("seed") or 0),
        keep_official_test=bool(ctx.params.get("keep_official_test", False)),
    )


OPERATORS = [RemapGenres, RelabelSamples, SplitDataset]
