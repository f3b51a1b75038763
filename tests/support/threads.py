"""Hang detection for tests: a call that must end within a deadline."""

from __future__ import annotations

import threading
from collections.abc import Callable


def ends_within(seconds: float, fn: Callable[[], object]) -> BaseException | None:
    """Run ``fn`` in a thread; fail if it still runs after ``seconds``; return its exception.

    A hang then fails the test in seconds instead of freezing the suite.
    """
    box: dict = {}

    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds}s (a hang)"
    return box.get("error")
