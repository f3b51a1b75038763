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

from typing import Any

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_genre import genres as g
from fiftyone_genre.analysis.views import (
    accuracy,
    confusion_counts,
    confusion_view,
    label_counts,
    ordered_labels,
    restrict_split,
)

#: Split filter choices; "all" means every sample that has the fields.
SPLIT_CHOICES: tuple[str, ...] = ("all", *g.SPLITS)

__all__ = ["GenrePanel", "accuracy", "confusion_counts", "label_counts", "ordered_labels", "restrict_split"]


def cell_view(collection, true_genre: str, pred_genre: str):
    """The samples whose ground truth is ``true_genre`` and prediction ``pred_genre``.

    The analysis library owns this query (the ``open_confusion_view``
    operator and the SDK use the same one), so a click in the panel and the
    operator always show the same clips in the same order.
    """
    return confusion_view(collection, true_genre, pred_genre)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    text = str(value)
    return text if len(text) <= 80 else "…" + text[-79:]


def run_info_markdown(info: dict | None) -> str:
    """``dataset.info["genre_run"]`` as a short summary: model, when, how many clips, test scores."""
    if not info:
        return (
            "_No predictions yet._ Run **Predict genres** (operator browser, or the "
            "grid's action bar) with a trained model directory to fill this in."
        )
    model = info.get("model_dir") or info.get("model_path") or "?"
    lines = [f"- **model** `{_short(model)}`"]
    what = ", ".join(f"{k} {_short(info[k])}" for k in ("modality", "epoch") if info.get(k) is not None)
    if what:
        lines.append(f"- **{what}**")
    when = info.get("date") or info.get("time")
    if when or info.get("num_predicted") is not None:
        lines.append(f"- predicted {info.get('num_predicted', '?')} clips" + (f" on {str(when)[:19]}" if when else ""))
    metrics = info.get("metrics") if isinstance(info.get("metrics"), dict) else {}
    scores = ", ".join(f"{k} {_short(v)}" for k, v in metrics.items() if isinstance(v, (int, float)))
    if scores:
        lines.append(f"- test: {scores}")
    if info.get("genres"):
        lines.append(f"- genres: {', '.join(map(str, info['genres']))}")
    return "\n".join(lines)


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
            "colorscale": [[0.0, "rgba(128, 128, 128, 0.35)"], [1.0, "#ff6d04"]],
            "showscale": False,
            "texttemplate": "%{z}",
            # white, bold-size counts read on both the pale empty cells and the orange busy ones
            "textfont": {"color": "#ffffff", "size": 15},
            "hovertemplate": "true %{y}<br>predicted %{x}<br>clips: %{z} (click to show them)<extra></extra>",
            "xgap": 2,
            "ygap": 2,
        }
    ]


def heatmap_height(n: int) -> int:
    """Pixels for an n x n matrix: room for the axis labels plus a readable cell size."""
    return 90 + 40 * max(n, 1)


def heatmap_layout(n: int) -> dict:
    """The true genres read top-down like a printed matrix; colours follow the App theme."""
    return {
        "height": heatmap_height(n),
        "margin": {"l": 10, "r": 10, "t": 4, "b": 4},
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
        ctx.panel.set_state("selection", None)  # the clicked cell belonged to the old scope
        ctx.ops.clear_view()
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

        if ctx.panel.get_state("has_matrix"):
            panel.md(
                "**Confusion matrix** · rows: true genre, columns: predicted · **click a cell** to show those clips",
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
                "**Confusion matrix**: _no predictions to compare yet._ Run **Predict genres** on samples that have a `genre`.",
                name="confusion_empty",
            )
        details = panel.h_stack("details", align_x="left", align_y="top", gap=4)
        details.md("**Clips per genre**\n\n" + (ctx.panel.get_state("counts") or ""), name="counts")
        details.md("**Current model**\n\n" + (ctx.panel.get_state("run_info") or ""), name="run_info")

        return types.Property(panel, view=types.GridView(orientation="vertical", gap=1, padding=1))


OPERATORS = [GenrePanel]
