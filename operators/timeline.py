"""The "Genre timeline" panel: the open clip's genre over time, beside the video in the modal.

FiftyOne 1.22 shows temporal labels as badges over the playing video (one per
detection whose frames contain the playhead), not as a track on the seek
bar. predict's timeline is made of non-overlapping slots, so the badge names
the genre at the playhead. This panel (a *modal* panel: a tab beside
"Sample" in a clip's modal) draws the whole clip at once: one bar per slot
along the clip's seconds in its genre's colour, the ground truth above it when
the clip has one, and the runs of one genre as text. It follows the clip
shown (next/previous).

The badge needs ``genre_timeline`` ticked in the modal's sidebar (the
*genre* group; ticking it there leaves the grid's tiles alone). The panel
cannot tick it: FiftyOne 1.22 applies ``set_active_fields`` from a modal panel
to the grid, which would put every slot back on the tiles.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_genre import genres as g
from fiftyone_genre.inference.timeline import GenreSpan, merge_runs, sample_spans

#: One colour per genre, the same in every clip (from Plotly's default palette).
GENRE_COLORS: dict[str, str] = dict(
    zip(g.GENRES, ("#d62728", "#9467bd", "#2ca02c", "#e377c2", "#1f77b4", "#17becf"))
)
OTHER_COLOR = "#7f7f7f"
PLOT_HEIGHT = 190


def timeline_field(dataset) -> str:
    """The timeline field of the last predict run (a config may rename it)."""
    fields = (dataset.info.get(g.RUN_INFO_KEY) or {}).get("fields") or {}
    return fields.get("timeline") or g.TIMELINE_FIELD


def bar_traces(rows: dict[str, list[GenreSpan]]) -> list[dict]:
    """Plotly horizontal bars: one trace per genre (its legend entry), one outlined bar per span, one row per key."""
    traces: dict[str, dict] = {}
    for row, spans in rows.items():
        for s in spans:
            t = traces.setdefault(
                s.genre,
                {
                    "type": "bar", "orientation": "h", "name": s.genre, "x": [], "base": [], "y": [], "customdata": [],
                    "marker": {"color": GENRE_COLORS.get(s.genre, OTHER_COLOR), "line": {"color": "#1a1a1a", "width": 1}},
                    "hovertemplate": "%{customdata}<extra>%{fullData.name}</extra>",
                },
            )  # fmt: skip
            t["x"].append(round(s.end - s.start, 3))
            t["base"].append(s.start)
            t["y"].append(row)
            t["customdata"].append(f"{row}: {s.start:.1f}-{s.end:.1f} s" + _conf(s))
    return list(traces.values())


def runs_markdown(runs: list[GenreSpan]) -> str:
    """The runs as a list: ``0.0-10.0 s **Action** 0.93``."""
    return "\n".join(f"- {r.start:.1f}-{r.end:.1f} s **{r.genre}**{_conf(r)}" for r in runs)


def _conf(s: GenreSpan) -> str:
    return f" {s.confidence:.2f}" if s.confidence == s.confidence else ""  # NaN: no confidence stored


class GenreTimelinePanel(foo.Panel):
    """The open clip's predicted genre along its seconds (and its ground truth), in the modal."""

    @property
    def config(self) -> foo.PanelConfig:
        return foo.PanelConfig(
            name="genre_timeline_panel",
            label="Genre timeline",
            icon="timeline",
            surfaces="modal",
            help_markdown=(
                "The predicted genre of the open clip over time (`genre_timeline`: one genre per "
                "<= 2.5 s, joined into runs), with the ground truth above it. The badge over the "
                "playing video names the genre at the playhead."
            ),
        )

    def on_load(self, ctx) -> None:
        self._draw(ctx)

    def on_change_current_sample(self, ctx) -> None:
        self._draw(ctx)

    def _draw(self, ctx) -> None:
        """What the panel shows for the current clip (state: text; data: the bars)."""
        sample = ctx.dataset[ctx.current_sample] if ctx.current_sample else None
        if sample is None:
            ctx.panel.set_state("title", "_Open a clip to see its genre timeline._")
            ctx.panel.set_state("runs", "")
            ctx.panel.set_data("timeline", [])
            return
        field = timeline_field(ctx.dataset)
        slots = sample_spans(sample, field)
        duration = getattr(sample.metadata, "duration", None) if sample.metadata else None
        title = f"**{sample.filename}**" + (f" · {duration:.1f} s" if duration else "")
        if not slots:
            ctx.panel.set_state("title", title + f" · _no `{field}` yet: run **Predict genres**._")
            ctx.panel.set_state("runs", "")
            ctx.panel.set_data("timeline", [])
            return
        runs = merge_runs(slots)
        rows = {"predicted": slots}
        truth = sample[g.GENRE_FIELD] if sample.has_field(g.GENRE_FIELD) else None
        if truth is not None and getattr(truth, "label", None):
            rows["truth"] = [GenreSpan(0.0, slots[-1].end, truth.label, float("nan"))]
        ctx.panel.set_state(
            "title", title + f" · {len(slots)} entries of <= {max(s.end - s.start for s in slots):.1f} s, {len(runs)} run(s)"
        )
        hint = f"\n\nWith `{field}` ticked in the sidebar, a badge over the video names the genre at the playhead."
        ctx.panel.set_state("runs", runs_markdown(runs) + ("" if "truth" in rows else "\n\n_no ground truth_") + hint)
        ctx.panel.set_data("timeline", bar_traces(rows))

    def render(self, ctx) -> types.Property:
        panel = types.Object()
        panel.md(ctx.panel.get_state("title") or "", name="title")
        panel.plot(
            "timeline",
            layout={
                "barmode": "overlay",
                "height": PLOT_HEIGHT,
                "margin": {"l": 70, "r": 10, "t": 10, "b": 40},
                "xaxis": {"title": {"text": "seconds"}, "rangemode": "tozero"},
                "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": ["predicted", "truth"]},
                "showlegend": True,
            },
            config={"displayModeBar": False, "scrollZoom": False, "responsive": True},
            height=PLOT_HEIGHT + 10,
        )
        panel.md(ctx.panel.get_state("runs") or "", name="runs")
        return types.Property(panel)


OPERATORS = [GenreTimelinePanel]
