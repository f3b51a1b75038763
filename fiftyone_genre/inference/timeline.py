"""The genre timeline: one genre per short slot of video, from overlapping windows.

The model reads windows of ``W`` steps (10 s in the shipped configs), far
longer than a short clip's changes of scene, and the video-level label
aggregates windows placed every ``eval_stride`` steps. A timeline of those
windows would have one entry per 10 s: a 7 s clip gets one entry, and a change
of genre at 10 s falls on a window's edge at best. The timeline here is finer:

1. The video is cut into **slots** of ``slot_steps`` steps (the last one may
   be shorter): ``timeline_slot_s`` seconds (2.5 s by default) at the feature
   rate, at least one step. At 4 fps a slot is 10 steps.
2. Extra windows of the model's length start every slot
   (:func:`timeline_windows`), so every slot is covered by up to ``W / slot``
   overlapping windows (4 with the shipped configs).
3. A slot's probabilities are the weighted mean of the probabilities of the
   windows covering it; its genre is their argmax, its confidence their max
   (:func:`slot_probs`). A window's weight is the sum, over the slot's steps
   it holds, of how late in the window each step lies (``1/W`` for its first
   step up to ``1`` for its last): the model classifies a window from the
   LSTM's last state, which carries the window's latest steps most, so a
   window speaks most for its end.

So a slot's genre weighs everything the model saw within a window's length
of it. Where the content changes, the slots change within about one slot of
the change (the demo's clips that change genre at 10 s: at 10 s on 4 of 6,
2.5 s early on one, 5 s early on one whose first half the demo model
mistakes; weighting the windows equally put it 2.5 s early on 5 of them).
A clip shorter than one window has exactly one window: all its slots share
that window's genre (the model cannot resolve less than what it reads), and
there is still one entry per <= 2.5 s.

Slots never overlap, so FiftyOne's App shows one timeline badge at a time.
:func:`merge_runs` joins neighbouring slots of the same genre into segments
(what ``classify`` prints and the App's *Genre timeline* panel draws).
Pure numpy: ``classify`` uses it without FiftyOne or a database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fiftyone_genre.modeling.windows import make_windows

#: A slot length times a feature rate this close to an integer is that integer (2.5 s x 4 fps = 10).
_EPS = 1e-6


@dataclass
class GenreSpan:
    """A stretch of video (seconds) and what the model says about it."""

    start: float
    end: float
    genre: str
    confidence: float


def slot_steps(slot_s: float, fps: float) -> int:
    """Steps per slot: the most steps that fit in ``slot_s`` seconds at ``fps``, at least one."""
    if not slot_s > 0 or not fps > 0:
        raise ValueError(f"slot length and feature rate must be > 0, got {slot_s} s and {fps} fps")
    return max(1, int(math.floor(slot_s * fps + _EPS)))


def slot_ranges(num_steps: int, steps: int) -> list[tuple[int, int]]:
    """``(start, end)`` step ranges of the slots: ``steps`` each, the last one up to ``num_steps``.

    >>> slot_ranges(25, 10)
    [(0, 10), (10, 20), (20, 25)]
    """
    return [(s, min(s + steps, num_steps)) for s in range(0, max(0, num_steps), max(1, steps))]


def timeline_windows(num_steps: int, window: int, steps: int) -> list[tuple[int, int]]:
    """The windows the timeline scores: the model's length, one starting every slot.

    The stride is capped at the window (a slot longer than the model's window
    would otherwise leave steps unread).
    """
    return make_windows(num_steps, window, min(max(1, steps), window))


def slot_probs(slots: list[tuple[int, int]], windows: list[tuple[int, int]], window_probs: np.ndarray) -> np.ndarray:
    """``[num_slots, num_genres]``: each slot's weighted mean of the probabilities of the windows covering it.

    A window weighs, for a slot, the sum over the slot's steps ``t`` it holds
    of ``(t - start + 1) / (end - start)``: how late in the window they lie
    (see the module docstring). Every slot must be covered by at least one
    window (the windows of :func:`timeline_windows` cover every step).
    """
    probs = np.asarray(window_probs, dtype=np.float64)
    out = np.empty((len(slots), probs.shape[1]), dtype=np.float64)
    starts = np.array([s for s, _ in windows], dtype=np.float64)
    ends = np.array([e for _, e in windows], dtype=np.float64)
    for i, (a, b) in enumerate(slots):
        lo, hi = np.maximum(starts, a), np.minimum(ends, b)
        held = np.clip(hi - lo, 0, None)
        # the sum of (t - start + 1) over t in [lo, hi) is an arithmetic series
        weight = held * ((lo - starts + 1) + (hi - starts)) / 2 / (ends - starts)
        if weight.sum() <= 0:
            raise ValueError(f"slot [{a}, {b}) is covered by no window")
        out[i] = weight @ probs / weight.sum()
    return out


def spans(bounds: np.ndarray, slots: list[tuple[int, int]], probs: np.ndarray, labels: list[str]) -> list[GenreSpan]:
    """Each slot as a :class:`GenreSpan` in seconds (``bounds`` from ``scoring.step_bounds``)."""
    out = []
    for (a, b), p in zip(slots, probs):
        k = int(np.argmax(p))
        out.append(GenreSpan(round(float(bounds[a]), 3), round(float(bounds[b]), 3), labels[k], float(p[k])))
    return out


def merge_runs(entries: list[GenreSpan]) -> list[GenreSpan]:
    """Neighbouring spans of the same genre joined; confidence is their duration-weighted mean."""
    merged: list[GenreSpan] = []
    weights: list[float] = []
    for e in entries:
        length = max(e.end - e.start, 0.0)
        if merged and merged[-1].genre == e.genre:
            last, w = merged[-1], weights[-1]
            total = w + length
            last.confidence = (last.confidence * w + e.confidence * length) / total if total > 0 else e.confidence
            last.end = e.end
            weights[-1] = total
        else:
            merged.append(GenreSpan(e.start, e.end, e.genre, e.confidence))
            weights.append(length)
    return merged


def detection_spans(detections, frame_rate: float) -> list[GenreSpan]:
    """Spans (seconds) of ``TemporalDetection`` s: frame ``i`` is shown from ``(i - 1) / fps`` to ``i / fps``."""
    out = []
    for d in sorted(detections, key=lambda d: d.support[0]):
        first, last = d.support
        conf = d.confidence if d.confidence is not None else float("nan")
        out.append(GenreSpan(round((first - 1) / frame_rate, 3), round(last / frame_rate, 3), d.label, conf))
    return out


def sample_spans(sample, field: str) -> list[GenreSpan] | None:
    """A sample's timeline field as spans in seconds; None when it has none or no frame rate is known."""
    value = sample[field] if sample.has_field(field) else None
    fps = getattr(getattr(sample, "metadata", None), "frame_rate", None)
    if value is None or not getattr(value, "detections", None) or not fps:
        return None
    return detection_spans(value.detections, float(fps))
