"""Small shared helpers: progress reporting that serves both a terminal and the App."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

#: Library progress callbacks take (fraction done in [0, 1], label). Operators
#: pass ``lambda f, label: ctx.set_progress(progress=f, label=label)``.
ProgressFn = Callable[[float, str], None]


def track(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    progress: ProgressFn | None = None,
    every_s: float = 0.5,
) -> Iterator[T]:
    """Iterate with a tqdm bar and, if given, a throttled ``progress`` callback."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    last = 0.0
    with tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True) as bar:
        for i, item in enumerate(bar, start=1):
            yield item
            if progress is not None and total:
                now = time.monotonic()
                if now - last >= every_s or i == total:
                    last = now
                    progress(min(1.0, i / total), f"{desc} {i}/{total}".strip())
