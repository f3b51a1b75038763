"""This dataset's scheduled runs of this plugin, as the Genre panel lists them.

Open-source FiftyOne has no page for scheduled (delegated) operations: after
"Operation successfully scheduled" nothing says whether a run waits, how far
it is, or that it failed. FiftyOne keeps every run in the database
(``DelegatedOperationService``): its state, the progress and stage label our
operators record with ``ctx.set_progress``, the dict ``execute`` returned, or
the traceback of a failure. This module reads those records for one dataset
and words them as one line each; the panel shows them and announces the ones
that finished since it last looked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

PLUGIN = "@fiftyone-genre/genre"
#: States of a run that has not finished yet (``scheduled`` is for remote orchestrators).
ACTIVE_STATES = ("scheduled", "queued", "running")
FINISHED_STATES = ("completed", "failed")
#: How the Runs list names each operator.
TITLES = {
    "import_videos": "Import",
    "remap_genres": "Remap",
    "split_dataset": "Split",
    "extract_features": "Extract features",
    "train_model": "Train",
    "predict_genres": "Predict",
    "evaluate_genres": "Evaluate",
    "compute_genre_maps": "Maps",
}
#: ``ctx.store`` where the panel remembers which finished runs it has announced.
NOTIFIED_STORE = "genre_panel_runs"


@dataclass
class Run:
    """One scheduled run, reduced to what a person reads."""

    id: str
    title: str
    state: str
    progress: float | None = None
    stage: str | None = None
    summary: str | None = None
    reason: str | None = None
    queued_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def line(self) -> str:
        """``**Train** · running 42 % · epoch 5/12 · queued 14:40 UTC`` (Markdown)."""
        when = f" · queued {self.queued_at:%H:%M} UTC" if self.queued_at else ""
        if self.state == "running":
            pct = "" if self.progress is None else f" {self.progress:.0%}"
            state = f"running{pct}" + (f" · {self.stage}" if self.stage else "")
        elif self.state == "completed":
            state = "completed" + (f" · {self.summary}" if self.summary else "")
        elif self.state == "failed":
            state = "failed · " + (self.reason or "no reason recorded")
        elif self.state in ("queued", "scheduled"):
            state = "queued, waiting for the executor"
        else:
            state = self.state
        return f"- **{self.title}** · {state}{when}"

    def notice(self) -> tuple[str, str]:
        """The toast for a run that just finished: ``(text, variant)``."""
        if self.state == "completed":
            return f"{self.title} finished: {self.summary or 'completed'}", "success"
        return f"{self.title} failed: {self.reason or 'no reason recorded'}", "error"


def reason_of(error: str | None) -> str | None:
    """A failure's one-line reason: the traceback's last line, without the exception's class name."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return None
    return re.sub(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception)): ", "", lines[-1])


def summary_of(result) -> str | None:
    """A completed run's one line: the ``headline`` our operators return (else the report's first line)."""
    if not isinstance(result, dict):
        return None
    if result.get("headline"):
        return str(result["headline"])
    for key in ("report", "summary"):
        for line in str(result.get(key) or "").splitlines():
            line = line.strip().strip("`").lstrip("-* ").strip()
            if line:
                return line
    return None


def _run(op) -> Run:
    status, result = op.status, op.result
    return Run(
        id=str(op.id),
        title=TITLES.get(op.operator.rsplit("/", 1)[-1], op.operator.rsplit("/", 1)[-1]),
        state=str(op.run_state),
        progress=None if status is None or status.progress is None else float(status.progress),
        stage=None if status is None else status.label,
        summary=summary_of(result.result) if result is not None else None,
        reason=reason_of(result.error) if result is not None else None,
        queued_at=op.queued_at,
    )


def list_runs(dataset, limit: int = 8) -> list[Run]:
    """This dataset's runs of this plugin, newest first (one query)."""
    from fiftyone.factory import DelegatedOperationPagingParams, SortByField, SortDirection
    from fiftyone.operators.delegated import DelegatedOperationService

    paging = DelegatedOperationPagingParams(
        sort_by=SortByField.QUEUED_AT, sort_direction=SortDirection.DESCENDING, skip=0, limit=limit
    )
    ops = DelegatedOperationService().list_operations(
        dataset_name=dataset.name, search={re.escape(PLUGIN) + "/": ["operator"]}, paging=paging
    )
    return [_run(op) for op in ops]


def runs_markdown(runs: list[Run]) -> str:
    if not runs:
        return "_No scheduled runs on this dataset yet._ Long stages (features, training, maps) are scheduled by default."
    return "\n".join(run.line() for run in runs)


def announce_finished(ctx, runs: list[Run]) -> None:
    """A toast for each run that finished since the panel last looked (remembered on the server).

    The first look announces nothing: what had finished before the panel
    opened is not news. The list of announced runs lives in the execution
    store, not in panel state, because timer callbacks can carry a stale copy
    of the panel state and would announce a run twice.
    """
    store = ctx.store(NOTIFIED_STORE)
    key = ctx.dataset.name
    seen = store.get(key)
    finished = [r for r in runs if r.state in FINISHED_STATES]
    if seen is None:
        store.set(key, [r.id for r in finished])
        return
    new = [r for r in finished if r.id not in seen]
    for run in reversed(new):  # oldest first
        text, variant = run.notice()
        ctx.ops.notify(text, variant=variant)
    if new:
        store.set(key, (seen + [r.id for r in new])[-200:])
