"""``fiftyone-genre app``: the FiftyOne App with this plugin and a delegated-operation executor.

Training and feature extraction outlive the App's immediate-execution limit
(``fo.config.operator_timeout``, 600 s), so they are scheduled as delegated
operations. Open-source FiftyOne only offers "Schedule" when legacy
orchestrators are allowed (``FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true``), and
a scheduled run only starts when ``fiftyone delegated launch`` is running.
This command sets the first and starts the second beside the App, and stops
it with the App, so a user needs no third terminal.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from fiftyone_genre.cli import load_dataset

#: Environment FiftyOne reads to offer "Schedule" in an open-source install.
DELEGATION_ENV = {"FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS": "true"}

_LAUNCH = "import sys; from fiftyone.core.cli import main; sys.argv = ['fiftyone', 'delegated', 'launch']; main()"


def delegation_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with delegated scheduling enabled."""
    return {**(os.environ if base is None else base), **DELEGATION_ENV}


def start_executor(env: dict[str, str] | None = None, log=None) -> subprocess.Popen:
    """``fiftyone delegated launch`` in its own process group (so it can be stopped as a whole)."""
    return subprocess.Popen(
        [sys.executable, "-c", _LAUNCH],
        env=delegation_env(env),
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL, to the process group ``proc`` leads; returns when it is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser(
        "app",
        help="open the FiftyOne App on a dataset, with this plugin and a delegated-operation executor",
        description="Starts the App and `fiftyone delegated launch` beside it (stopped with it), with "
        "FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true so long runs can be scheduled from the App.",
    )
    a.add_argument("--dataset", default="genre-demo")
    a.add_argument("--port", type=int, default=5151)
    a.add_argument("--address", default="127.0.0.1")
    a.add_argument(
        "--no-executor", dest="executor", action="store_false",
        help="do not start `fiftyone delegated launch` (one already runs elsewhere)",
    )
    a.set_defaults(func=cmd_app)


def cmd_app(args: argparse.Namespace) -> int:
    os.environ.update(DELEGATION_ENV)  # the App server subprocess inherits it
    import fiftyone as fo

    fo.config.allow_legacy_orchestrators = True
    dataset = load_dataset(args.dataset, hint="run `make demo` first")
    print(f"plugins dir: {os.environ.get('FIFTYONE_PLUGINS_DIR', fo.config.plugins_dir)}")
    executor = start_executor() if args.executor else None
    if executor is not None:
        print(f"delegated operations: executor running (pid {executor.pid}); scheduled runs start there")
    try:
        session = fo.launch_app(dataset, port=args.port, address=args.address, remote=True)
        session.wait(-1)
    finally:
        if executor is not None:
            stop_process(executor)
    return 0
