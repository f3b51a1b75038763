"""Per-sample bookkeeping shared by every stage: error records and optional fields.

Failures are recorded on the sample (not raised) so one bad file never stops
a run over thousands: each stage appends ``"<stage>: <reason>"`` to
``genre_errors`` and tags the sample ``genre:error``; a later run of the same
stage that succeeds clears its own entries.
"""

from __future__ import annotations

from typing import Any

from fiftyone_genre import genres as g


def field_values(collection, path: str, n: int) -> list[Any]:
    """``collection.values(path)``, or Nones when the root field does not exist."""
    root = path.split(".")[0]
    if root not in collection.get_field_schema():
        return [None] * n
    return collection.values(path)


def record_error(sample, stage: str, reason: str) -> None:
    """Append ``"<stage>: <reason>"`` to the sample's error list and tag it.

    Failures are recorded on the sample (not raised) so one bad file never
    stops a run over thousands; callers save the sample themselves.
    """
    errors = list(sample[g.ERRORS_FIELD] or []) if sample.has_field(g.ERRORS_FIELD) else []
    message = f"{stage}: {reason}"
    if message not in errors:
        errors.append(message)
    sample[g.ERRORS_FIELD] = errors
    if g.ERROR_TAG not in sample.tags:
        sample.tags.append(g.ERROR_TAG)


def clear_errors(sample, stage: str) -> None:
    """Drop this stage's earlier errors from a sample (a re-run that succeeds)."""
    if not sample.has_field(g.ERRORS_FIELD) or not sample[g.ERRORS_FIELD]:
        return
    kept = [e for e in sample[g.ERRORS_FIELD] if not e.startswith(f"{stage}: ")]
    sample[g.ERRORS_FIELD] = kept or None
    if not kept and g.ERROR_TAG in sample.tags:
        sample.tags.remove(g.ERROR_TAG)
