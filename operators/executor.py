"""The delegated-operation executor that ``fiftyone-genre app`` runs beside the App.

    python operators/executor.py        (started by ``fiftyone-genre app``; stops with it)

It runs what ``fiftyone delegated launch`` runs, through FiftyOne's own
``DelegatedOperationService``, with three differences a user notices:

- it stops when the App stops: ``fiftyone-genre app`` asks the kernel to send
  it SIGTERM when the App process dies (even by SIGKILL), and stops it on
  SIGTERM, Ctrl-C and a closed terminal;
- a run it was running when stopped is marked *failed* with a sentence
  saying so (``fiftyone delegated launch`` leaves it "running" forever): a
  synchronous ``execute`` runs on a worker thread that no signal reaches, so
  the handler records the failure and exits at once instead of waiting;
- it runs the oldest queued run first (``fiftyone delegated launch`` takes
  the newest), the order runs were scheduled in.

It lives with the plugin (the App layer), not in the ``fiftyone_genre``
library, which never imports FiftyOne's operator framework.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

#: Seconds between looks for a queued run when none is waiting.
POLL_S = 0.5

_current = None  # the run being executed (a DelegatedOperationDocument)


def stopped_reason(signum: int) -> str:
    """The sentence a run interrupted by ``signum`` is failed with (the Runs list shows it)."""
    return f"Stopped: the App closed while this ran ({signal.Signals(signum).name}). Schedule it again."


def _stop(signum, frame) -> None:
    """SIGTERM / SIGINT / SIGHUP: fail the current run with a sentence, then exit without waiting."""
    if _current is not None:
        from fiftyone.operators.delegated import DelegatedOperationService
        from fiftyone.operators.executor import ExecutionResult, ExecutionRunState

        try:
            DelegatedOperationService().set_failed(
                _current.id,
                result=ExecutionResult(error=stopped_reason(signum)),
                required_state=ExecutionRunState.RUNNING,
            )
            print(f"executor: {signal.Signals(signum).name}: marked run {_current.id} failed", flush=True)
        except Exception as e:  # noqa: BLE001 - the database may be gone too; exit anyway
            print(f"executor: could not mark run {_current.id} failed: {e}", flush=True)
    os._exit(0)


def main(poll_s: float = POLL_S) -> int:
    global _current
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _stop)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from fiftyone.factory import DelegatedOperationPagingParams, SortByField, SortDirection
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionRunState

    service = DelegatedOperationService()
    oldest = DelegatedOperationPagingParams(
        sort_by=SortByField.QUEUED_AT, sort_direction=SortDirection.ASCENDING, skip=0, limit=1
    )
    print("executor: waiting for scheduled runs; stops with the App", flush=True)
    while True:
        queued = service.list_operations(run_state=ExecutionRunState.QUEUED, paging=oldest)
        if not queued:
            time.sleep(poll_s)
            continue
        _current = queued[0]
        print(f"executor: running {_current.operator} ({_current.id})", flush=True)
        service.execute_operation(_current, log=True)
        _current = None


if __name__ == "__main__":
    sys.exit(main())
