"""The "Genre" panel: counts, accuracy per split, a clickable confusion matrix, the model, the runs.

A person who just ran predict/evaluate from the operator browser wants a few
answers without writing code: how the genres are distributed, how accurate
the model is on clips it did not train on, *which clips* are confused with
which, which model produced the predictions, and what the scheduled runs are
doing. The panel answers them in that order (counts first), and the heatmap's
cells load the matching samples into the grid (``ctx.ops.set_view``).

The panel stays true without a Refresh click: a timer (``types.TimerView``)
reads a cheap data stamp (clip count, newest sample edit, dataset edit) and
recomputes only when it changed, so relabel, undo, predict, evaluate and
scheduled runs all show up within seconds; ``on_change_view`` (the App's
signal after an operator reloads the dataset) does the same check at once.
The timer ticks faster while a scheduled run of this plugin is queued or
running, and each tick re-reads the Runs list, announcing runs that finished.

The layout never moves under the pointer: every part is always rendered
(the line under the matrix changes its words after a click, not its place).
Everything shown is computed from dataset fields and ``dataset.info``; the
panel keeps no state of its own beyond what to display.
"""

from __future__ import annotations

from typing import Any

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_genre import genres as g
from fiftyone_genre.analysis.evaluation import default_eval_split
from fiftyone_genre.analysis.views import (
    accuracy,
    accuracy_by_split,
    confusion_counts,
    confusion_view,
    label_counts,
    ordered_labels,
    restrict_split,
)

from .runs import announce_finished, list_runs, runs_markdown

#: Split filter choices; "all" means every sample that has the fields.
SPLIT_CHOICES: tuple[str, ...] = ("all", *g.SPLITS)
#: Timer intervals (ms): while a scheduled run is queued or running, and otherwise.
ACTIVE_INTERVAL_MS = 1500
IDLE_INTERVAL_MS = 4000
#: The line under the matrix before any cell is clicked.
CLICK_HINT = "Click a cell to show those clips in the grid."

__all__ = [
    "GenrePanel", "accuracy", "accuracy_by_split", "confusion_counts", "label_counts", "ordered_labels",
    "restrict_split",
]


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


#: Checkpoint metrics worth a line, as training recorded them for the kept epoch (names it uses).
TRAINING_METRICS = (("train_acc", "train accuracy"), ("val_video_acc", "val accuracy"), ("val_macro_f1", "val macro-F1"))


def run_info_markdown(info: dict | None) -> str:
    """``dataset.info["genre_run"]`` as a short summary: model, when, how many clips, training scores.

    The checkpoint's metrics are those of the epoch training kept, measured
    on the train and val splits; they are labelled so (the test split's
    accuracy is the panel's own, computed from the predictions).
    """
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
    scores = ", ".join(f"{name} {_short(metrics[k])}" for k, name in TRAINING_METRICS
                       if isinstance(metrics.get(k), (int, float)))
    if scores:
        epoch = metrics.get("epoch") or info.get("epoch")
        lines.append(f"- at training{f' (epoch {epoch})' if epoch else ''}: {scores}")
    if info.get("genres"):
        lines.append(f"- genres: {', '.join(map(str, info['genres']))}")
    return "\n".join(lines)


def split_accuracy_markdown(by_split: dict[str, tuple[float | None, int]]) -> str:
    """``accuracy by split: train 100% (16) · val 75.0% (4) · **test 83.3% (6)**``, test last and bold."""
    parts = []
    for split in g.SPLITS:
        acc, n = by_split.get(split, (None, 0))
        text = f"{split} {'—' if acc is None else f'{acc:.1%}'} ({n})"
        parts.append(f"**{text}**" if split == "test" else text)
    return "accuracy by split: " + " · ".join(parts)


def scope_markdown(name: str, split: str, n_clips: int, matrix: list[list[int]]) -> str:
    """The headline: which clips the counts, matrix and accuracy below are about."""
    where = "every split" if split == "all" else f"the **{split}** split"
    text = f"**{name}** · {where}: {n_clips} clips"
    acc = accuracy(matrix)
    if acc is not None:
        text += f" · accuracy **{acc:.1%}** on {sum(map(sum, matrix))} predicted"
    return text


def data_stamp(dataset) -> str:
    """A cheap fingerprint of the data: clip count, newest sample edit, last dataset edit.

    Sample edits (relabel, undo, predict, split) bump the samples'
    ``last_modified_at``; ``dataset.info`` and evaluation changes bump the
    dataset's. Two queries, a few milliseconds.
    """
    n = len(dataset)
    newest = dataset.max("last_modified_at") if n else None
    return f"{n}|{newest}|{dataset.last_modified_at}"


def counts_markdown(truth: dict[str, int], pred: dict[str, int]) -> str:
    """Clips per genre, ground truth and predictions: one column per genre (three short rows)."""
    labels = ordered_labels(truth, pred)
    if not labels:
        return (
            "_No genre labels yet._ Run **Remap actions to genres** to turn the "
            "source action labels into genres."
        )
    rows = [
        "| | " + " | ".join(labels) + " | total |",
        "|---|" + "---:|" * (len(labels) + 1),
        "| ground truth | " + " | ".join(str(truth.get(x, 0)) for x in labels) + f" | {sum(truth.values())} |",
    ]
    if pred:
        rows.append("| predicted | " + " | ".join(str(pred.get(x, 0)) for x in labels) + f" | {sum(pred.values())} |")
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
    """Counts, accuracy per split, a clickable confusion matrix, the model and the runs of the open dataset."""

    @property
    def config(self) -> foo.PanelConfig:
        return foo.PanelConfig(
            name="genre_panel",
            label="Genre",
            icon="movie",
            surfaces="grid",
            help_markdown=(
                "Shows how many clips each genre has, the accuracy per split, the confusion "
                "matrix (rows: true genre, columns: predicted; click a cell to show those clips), "
                "the model behind `genre_pred` and this dataset's scheduled runs. It updates by itself."
            ),
        )

    # lifecycle ---------------------------------------------------------------

    def on_load(self, ctx) -> None:
        if ctx.panel.get_state("split") is None and ctx.dataset is not None:
            ctx.panel.set_state("split", default_eval_split(ctx.dataset) or "all")
        self._refresh(ctx)
        self._refresh_runs(ctx)

    def on_change_dataset(self, ctx) -> None:
        """Another dataset: start from its own default scope."""
        ctx.panel.set_state("split", (default_eval_split(ctx.dataset) if ctx.dataset is not None else None) or "all")
        ctx.panel.set_state("selection", None)
        self._refresh(ctx)
        self._refresh_runs(ctx)

    def on_change_view(self, ctx) -> None:
        """Fired after an operator reloads the dataset (and on many other occasions): recompute if the data changed."""
        self._refresh_if_changed(ctx)

    def tick(self, ctx) -> None:
        """The timer: recompute if the data changed; re-read the runs (and announce finished ones)."""
        self._refresh_if_changed(ctx)
        self._refresh_runs(ctx)

    # event handlers ----------------------------------------------------------

    def refresh(self, ctx) -> None:
        """The Refresh button (kept for reassurance; the panel refreshes itself)."""
        self._refresh(ctx)
        self._refresh_runs(ctx)

    def change_split(self, ctx) -> None:
        """The scope dropdown: counts, accuracy and matrix for one split only."""
        ctx.panel.set_state("split", ctx.params.get("value") or "all")
        ctx.panel.set_state("selection", None)  # the clicked cell belonged to the old scope
        ctx.ops.clear_view()
        self._refresh(ctx)

    def on_cell_click(self, ctx) -> None:
        """A heatmap cell: load the clips with that true (row) and predicted (column) genre."""
        true_genre, pred_genre = ctx.params.get("y"), ctx.params.get("x")
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

    # computing ----------------------------------------------------------------

    def _refresh_if_changed(self, ctx) -> None:
        if ctx.dataset is not None and data_stamp(ctx.dataset) != ctx.panel.get_state("stamp"):
            self._refresh(ctx)

    def _refresh(self, ctx) -> None:
        """Compute what the panel shows and store it (state: small text; data: the plot)."""
        dataset = ctx.dataset
        if dataset is None:
            ctx.panel.set_state("summary", "_Open a dataset to see its genres._")
            ctx.panel.set_state("has_matrix", False)
            return
        ctx.panel.set_state("stamp", data_stamp(dataset))
        split = ctx.panel.get_state("split") or "all"
        scope = restrict_split(dataset, split)
        labels, matrix = confusion_counts(scope)
        ctx.panel.set_state("summary", scope_markdown(dataset.name, split, len(scope), matrix))
        ctx.panel.set_state("by_split", split_accuracy_markdown(accuracy_by_split(dataset)) if labels or split != "all" else "")
        ctx.panel.set_state("counts", counts_markdown(label_counts(scope, g.GENRE_FIELD), label_counts(scope, g.PRED_FIELD)))
        ctx.panel.set_state("run_info", run_info_markdown(dataset.info.get(g.RUN_INFO_KEY)))
        ctx.panel.set_state("has_matrix", bool(labels))
        ctx.panel.set_state("n_labels", len(labels))
        if labels:
            ctx.panel.set_data("confusion", heatmap_data(labels, matrix))

    def _refresh_runs(self, ctx) -> None:
        """Re-read the Runs list; tick faster while one is queued or running; toast finished runs."""
        if ctx.dataset is None:
            return
        runs = list_runs(ctx.dataset)
        announce_finished(ctx, runs)
        text, active = runs_markdown(runs), any(r.active for r in runs)
        if text != ctx.panel.get_state("runs"):
            ctx.panel.set_state("runs", text)
        if active != bool(ctx.panel.get_state("active")):
            ctx.panel.set_state("active", active)

    # rendering ---------------------------------------------------------------

    def render(self, ctx) -> types.Property:
        panel = types.Object()
        interval = ACTIVE_INTERVAL_MS if ctx.panel.get_state("active") else IDLE_INTERVAL_MS
        panel.view("timer", types.TimerView(interval=interval, on_interval=self.tick))
        # property names differ from the state keys: a property named like a state key
        # shows the state's value instead of the text given here
        panel.md(ctx.panel.get_state("summary") or "", name="summary_md")
        self._controls(panel, ctx)
        panel.md("**Clips per genre**\n\n" + (ctx.panel.get_state("counts") or ""), name="counts_md")
        panel.md(ctx.panel.get_state("by_split") or "", name="by_split_md")
        self._matrix(panel, ctx)
        panel.md("**Current model**\n\n" + (ctx.panel.get_state("run_info") or ""), name="run_info_md")
        panel.md("**Scheduled runs** (newest first)\n\n" + (ctx.panel.get_state("runs") or ""), name="runs_md")
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=1, padding=1))

    def _controls(self, panel: types.Object, ctx) -> None:
        controls = panel.h_stack("controls", align_x="left", gap=2)
        split_menu = types.DropdownView(label="Scope")
        for choice in SPLIT_CHOICES:
            split_menu.add_choice(choice, label="all splits" if choice == "all" else f"{choice} split")
        controls.enum("split", list(SPLIT_CHOICES), default=ctx.panel.get_state("split") or "all",
                      view=split_menu, on_change=self.change_split)
        controls.btn("refresh", label="Refresh", icon="refresh", on_click=self.refresh, variant="outlined")
        controls.btn("show_all", label="Show all samples", icon="clear_all", on_click=self.show_all, variant="outlined")

    def _matrix(self, panel: types.Object, ctx) -> None:
        """The matrix, then one line whose words (not place) change after a click."""
        if not ctx.panel.get_state("has_matrix"):
            panel.md("**Confusion matrix**: _no predictions to compare yet._ Run **Predict genres** on samples "
                     "that have a `genre`.", name="confusion_empty_md")
            return
        panel.md("**Confusion matrix** · rows: true genre, columns: predicted", name="confusion_help_md")
        n = ctx.panel.get_state("n_labels") or len(g.GENRES)
        # a height with its unit: FiftyOne reads a bare number as a percentage of the panel
        # for the plot's grid cell (330 -> the whole panel: the gap under the matrix)
        panel.plot("confusion", layout=heatmap_layout(n), height=f"{heatmap_height(n)}px", on_click=self.on_cell_click,
                   config={"displayModeBar": False, "scrollZoom": False, "responsive": True})
        panel.md(ctx.panel.get_state("selection") or CLICK_HINT, name="selection_md")


OPERATORS = [GenrePanel]
