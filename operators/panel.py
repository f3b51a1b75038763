"""The "Genre" panel: the current model's run, genre counts and a clickable confusion matrix.

A person who just ran predict/evaluate from the operator browser wants three
answers without writing code: which model produced these predictions, how
the genres are distributed, and *which clips* are confused with which. The
panel answers the first two as text and the third as a heatmap whose cells
load the matching samples into the grid (``ctx.ops.set_view``), so the user
can watch the clips the model gets wrong.

Everything shown is computed from dataset fields (``genre``, ``genre_pred``,
``split``) and ``dataset.info["genre_run"]``; the panel keeps no state of its
own beyond what to display, so re-opening it or pressing Refresh after
another run always shows the truth.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import fiftyone.operators as foo
import fiftyone.operators.types as types
from fiftyone import ViewField as F

from fiftyone_genre import genres as g
from fiftyone_genre.analysis import confusion_view

#: ``genre_run`` keys shown first, in this order (the rest follow as written).
RUN_INFO_FIRST: tuple[str, ...] = ("model_dir", "model_path", "modality", "epoch", "date", "num_predicted", "genres", "metrics")

#: Split filter choices; "all" means every sample that has the fields.
SPLIT_CHOICES: tuple[str, ...] = ("all", *g.SPLITS)


# --- small pure helpers (no App context needed; unit-testable) ----------------


def ordered_labels(*label_sets) -> list[str]:
    """The canonical genres first (in class-index order), then any others alphabetically.

    A user mapping may add genres; they must still get a row and a column.
    Canonical genres are listed only when they occur, so a dataset with three
    genres gets a 3x3 matrix rather than six empty rows.
    """
    present: set[str] = set()
    for labels in label_sets:
        present.update(label for label in labels if label is not None)
    ordered = [genre for genre in g.GENRES if genre in present]
    ordered += sorted(present - set(ordered))
    return ordered


def label_counts(collection, field: str) -> dict[str, int]:
    """``{label: count}`` of a ``fo.Classification`` field, empty when the field is absent."""
    if not collection.has_field(field):
        return {}
    counts = collection.count_values(f"{field}.label")
    return {label: int(n) for label, n in counts.items() if label is not None}


def restrict_split(collection, split: str | None):
    """The samples of one split (``train``/``val``/``test``), or all of them for ``all``/None."""
    if not split or split == "all" or not collection.has_field(g.SPLIT_FIELD):
        return collection
    return collection.match(F(g.SPLIT_FIELD) == split)


def confusion_counts(collection, true_field: str = g.GENRE_FIELD, pred_field: str = g.PRED_FIELD) -> tuple[list[str], list[list[int]]]:
    """``(labels, matrix)`` with ``matrix[i][j]`` = samples of true ``labels[i]`` predicted ``labels[j]``.

    Only samples with both a ground truth and a prediction count; one
    ``values()`` round-trip per field keeps it fast on large datasets.
    """
    if not (collection.has_field(true_field) and collection.has_field(pred_field)):
        return [], []
    both = collection.exists(true_field).exists(pred_field)
    trues, preds = both.values([f"{true_field}.label", f"{pred_field}.label"])
    pairs = Counter(zip(trues, preds))
    labels = ordered_labels(trues, preds)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (t, p), n in pairs.items():
        if t is None or p is None:
            continue
        matrix[index[t]][index[p]] += n
    return labels, matrix


def accuracy(matrix: list[list[int]]) -> float | None:
    """Fraction on the diagonal, or None for an empty matrix."""
    total = sum(sum(row) for row in matrix)
    if not total:
        return None
    return sum(matrix[i][i] for i in range(len(matrix))) / total


def cell_view(collection, true_genre: str, pred_genre: str):
    """The samples whose ground truth is ``true_genre`` and prediction ``pred_genre``.

    The analysis library owns this query (the ``open_confusion_view``
    operator and the SDK use the same one), so a click in the panel and the
    operator always show the same clips in the same order.
    """
    return confusion_view(collection, true_genre, pred_genre)


def _format_value(value: Any, limit: int = 120) -> str:
    """One table cell: scalars as-is, containers as compact JSON, long text cut."""
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=str, separators=(", ", ": "))
    else:
        text = str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_info_markdown(info: dict | None) -> str:
    """``dataset.info["genre_run"]`` as a two-column markdown table (or a hint when absent)."""
    if not info:
        return (
            "_No predictions yet._ Run **Predict genres** (operator browser, or the "
            "grid's action bar) with a trained model directory to fill this in."
        )
    rows = ["| field | value |", "|---|---|"]
    # what a person asks first ("which model? when?") on top; the long config dicts last
    first = [k for k in RUN_INFO_FIRST if k in info]
    for key in first + [k for k in info if k not in first]:
        value = info[key]
        rows.append(f"| {key} | {_format_value(value)} |")
    return "\n".join(rows)


def counts_markdown(truth: dict[str, int], pred: dict[str, int]) -> str:
    """Per-genre counts of ground truth and predictions side by side."""
    labels = ordered_labels(truth, pred)
    if not labels:
        return (
            "_No genre labels yet._ Run **Remap actions to genres** to turn the "
            "source action labels into genres."
        )
    has_pred = bool(pred)
    header = "| genre | ground truth |" + (" predicted |" if has_pred else "")
    rule = "|---|---:|" + ("---:|" if has_pred else "")
    rows = [header, rule]
    for label in labels:
        row = f"| {label} | {truth.get(label, 0)} |"
        if has_pred:
            row += f" {pred.get(label, 0)} |"
        rows.append(row)
    total = f"| **total** | **{sum(truth.values())}** |" + (f" **{sum(pred.values())}** |" if has_pred else "")
    rows.append(total)
    return "\n".join(rows)


def heatmap_data(labels: list[str], matrix: list[list[int]]) -> list[dict]:
    """A Plotly heatmap trace: x = predicted genre, y = true genre, the count written in each cell."""
    return [
        {
            "type": "heatmap",
            "z": matrix,
            "x": labels,
            "y": labels,
            # empty cells fade into the background, busy ones turn FiftyOne orange
            "colorscale": [[0.0, "rgba(128, 128, 128, 0.12)"], [1.0, "#ff6d04"]],
            "showscale": False,
            "texttemplate": "%{z}",
            "hovertemplate": "true %{y}<br>predicted %{x}<br>clips: %{z} (click to show them)<extra></extra>",
            "xgap": 2,
            "ygap": 2,
        }
    ]


def heatmap_height(n: int) -> int:
    """Pixels for an n x n matrix: room for the axis labels plus a readable cell size."""
    return 150 + 48 * max(n, 1)


def heatmap_layout(n: int) -> dict:
    """The true genres read top-down like a printed matrix; colours follow the App theme."""
    return {
        "height": heatmap_height(n),
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "xaxis": {"title": {"text": "predicted"}, "type": "category", "tickangle": -30},
        "yaxis": {"title": {"text": "true"}, "type": "category", "autorange": "reversed"},
    }


# --- the panel -----------------------------------------------------------------


class GenrePanel(foo.Panel):
    """Run info, per-genre counts and a clickable confusion matrix for the open dataset."""

    @property
    def config(self) -> foo.PanelConfig:
        return foo.PanelConfig(
            name="genre_panel",
            label="Genre",
            icon="movie",
            surfaces="grid",
            help_markdown=(
                "Shows the model behind `genre_pred`, how many clips each genre has, "
                "and the confusion matrix (rows: true genre, columns: predicted). "
                "Click a cell to show those clips in the grid."
            ),
        )

    # lifecycle ---------------------------------------------------------------

    def on_load(self, ctx) -> None:
        if ctx.panel.get_state("split") is None:
            ctx.panel.set_state("split", "all")
        self._refresh(ctx)

    def on_change_dataset(self, ctx) -> None:
        """Another dataset (or a reload after an operator ran): recompute everything."""
        self._refresh(ctx)

    # event handlers ----------------------------------------------------------

    def refresh(self, ctx) -> None:
        """The Refresh button: re-read fields and run info after another operator ran."""
        self._refresh(ctx)

    def change_split(self, ctx) -> None:
        """The split dropdown: recompute the matrix for one split only."""
        split = ctx.params.get("value") or "all"
        ctx.panel.set_state("split", split)
        self._refresh(ctx)

    def on_cell_click(self, ctx) -> None:
        """A heatmap cell: load the clips with that true (row) and predicted (column) genre."""
        true_genre = ctx.params.get("y")
        pred_genre = ctx.params.get("x")
        if true_genre is None or pred_genre is None:
            return
        base = restrict_split(ctx.dataset, ctx.panel.get_state("split"))
        view = cell_view(base, str(true_genre), str(pred_genre))
        ctx.ops.set_view(view=view)
        ctx.panel.set_state("selection", f"Showing true **{true_genre}** predicted as **{pred_genre}**.")

    def show_all(self, ctx) -> None:
        """Back to the whole dataset after inspecting a cell."""
        ctx.ops.clear_view()
        ctx.panel.set_state("selection", None)

    # rendering ---------------------------------------------------------------

    def _refresh(self, ctx) -> None:
        """Compute what the panel shows and store it (state: small text; data: the plot)."""
        dataset = ctx.dataset
        if dataset is None:
            ctx.panel.set_state("summary", "_Open a dataset to see its genres._")
            ctx.panel.set_state("has_matrix", False)
            return
        split = ctx.panel.get_state("split") or "all"
        scope = restrict_split(dataset, split)
        truth = label_counts(scope, g.GENRE_FIELD)
        pred = label_counts(scope, g.PRED_FIELD)
        labels, matrix = confusion_counts(scope)
        acc = accuracy(matrix)
        ctx.panel.set_state("run_info", run_info_markdown(dataset.info.get(g.RUN_INFO_KEY)))
        ctx.panel.set_state("counts", counts_markdown(truth, pred))
        ctx.panel.set_state("has_matrix", bool(labels))
        summary = f"**{dataset.name}** · {len(scope)} clips" + ("" if split == "all" else f" in split `{split}`")
        if acc is not None:
            n = sum(sum(row) for row in matrix)
            summary += f" · accuracy **{acc:.1%}** on {n} predicted clips"
        ctx.panel.set_state("summary", summary)
        if labels:
            ctx.panel.set_data("confusion", heatmap_data(labels, matrix))
        ctx.panel.set_state("n_labels", len(labels))

    def render(self, ctx) -> types.Property:
        panel = types.Object()
        panel.md(ctx.panel.get_state("summary") or "", name="summary")

        controls = panel.h_stack("controls", align_x="left", gap=2)
        split_menu = types.DropdownView(label="Samples")
        for choice in SPLIT_CHOICES:
            split_menu.add_choice(choice, label="all splits" if choice == "all" else f"{choice} split")
        controls.enum(
            "split",
            list(SPLIT_CHOICES),
            default=ctx.panel.get_state("split") or "all",
            view=split_menu,
            on_change=self.change_split,
        )
        controls.btn("refresh", label="Refresh", icon="refresh", on_click=self.refresh, variant="outlined")
        controls.btn("show_all", label="Show all samples", icon="clear_all", on_click=self.show_all, variant="outlined")

        selection = ctx.panel.get_state("selection")
        if selection:
            panel.md(selection, name="selection")

        panel.md("**Confusion matrix**", name="confusion_title")
        if ctx.panel.get_state("has_matrix"):
            panel.md(
                "Rows are the true genre, columns the predicted one. **Click a cell** to show those clips.",
                name="confusion_help",
            )
            n = ctx.panel.get_state("n_labels") or len(g.GENRES)
            panel.plot(
                "confusion",
                layout=heatmap_layout(n),
                config={"displayModeBar": False, "scrollZoom": False, "responsive": True},
                on_click=self.on_cell_click,
                height=heatmap_height(n),
            )
        else:
            panel.md(
                "_No predictions to compare yet._ Run **Predict genres** on samples that have a `genre`.",
                name="confusion_empty",
            )

        panel.md("**Clips per genre**", name="counts_title")
        panel.md(ctx.panel.get_state("counts") or "", name="counts")
        panel.md("**Current model** (`dataset.info[\"genre_run\"]`)", name="run_title")
        panel.md(ctx.panel.get_state("run_info") or "", name="run_info")

        return types.Property(panel, view=types.GridView(orientation="vertical", gap=2, padding=2))


OPERATORS = [GenrePanel]
