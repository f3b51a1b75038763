"""``fiftyone-genre app``: the FiftyOne App with this plugin and a delegated-operation executor.

Training and feature extraction outlive the App's immediate-execution limit
(``fo.config.operator_timeout``, 600 s), so they are scheduled as delegated
operations. Open-source FiftyOne only offers "Schedule" when legacy
orchestrators are allowed (``FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true``), and
a scheduled run only starts when an executor is running. This command sets
the first and starts the plugin's executor (``operators/executor.py``, which
runs what ``fiftyone delegated launch`` runs) beside the App, so a user needs
no third terminal. The executor stops with the App: on Ctrl-C, on SIGTERM, on
a closed terminal, and (through the kernel's parent-death signal) even when
the App is killed; a run it was running is then marked failed with a sentence.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from fiftyone_genre.cli import load_dataset

#: Environment FiftyOne reads to offer "Schedule" in an open-source install.
DELEGATION_ENV = {"FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS": "true"}

#: ``fiftyone delegated launch``: the fallback when the plugin's executor cannot be found.
_LAUNCH = "import sys; from fiftyone.core.cli import main; sys.argv = ['fiftyone', 'delegated', 'launch']; main()"
PLUGIN_NAME = "@fiftyone-genre/genre"
EXECUTOR = Path("operators") / "executor.py"


def delegation_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with delegated scheduling enabled."""
    return {**(os.environ if base is None else base), **DELEGATION_ENV}


def executor_script() -> Path | None:
    """The plugin's executor: in the plugin the App loads, else in this checkout; None if neither."""
    candidates = []
    try:
        import fiftyone.plugins as fop

        candidates.append(Path(fop.find_plugin(PLUGIN_NAME)) / EXECUTOR)
    except Exception:  # noqa: BLE001 - not installed in the plugins dir
        pass
    candidates.append(Path(__file__).resolve().parents[2] / EXECUTOR)
    return next((c for c in candidates if c.is_file()), None)


def _die_with_parent() -> None:
    """In the executor, before it starts: SIGTERM it when this process dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:  # noqa: BLE001 - not Linux: cmd_app's own handlers still stop it
        pass


def start_executor(env: dict[str, str] | None = None, log=None) -> subprocess.Popen:
    """The executor in its own process group (stopped as a whole), tied to this process's life."""
    script = executor_script()
    command = [sys.executable, str(script)] if script else [sys.executable, "-c", _LAUNCH]
    return subprocess.Popen(
        command,
        env=delegation_env(env),
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
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
        description="Starts the App and a delegated-operation executor beside it (stopped with it: Ctrl-C, "
        "SIGTERM), with FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true so long runs can be scheduled from the App.",
    )
    a.add_argument("--dataset", default="genre-demo")
    a.add_argument("--port", type=int, default=5151)
    a.add_argument("--address", default="127.0.0.1")
    a.add_argument(
        "--no-executor", dest="executor", action="store_false",
        help="do not start an executor (one, e.g. `fiftyone delegated launch`, already runs elsewhere)",
    )
    # no quick exit: a collection at the end would finalise the App session, which waits for its server
    a.set_defaults(func=cmd_app, quick_exit=False)


class StopSignals:
    """Ctrl-C, SIGTERM and SIGHUP for ``cmd_app``: each unwinds the command, and none is lost.

    Why not ``session.wait``: FiftyOne probes for a running App server
    inside a bare ``except:`` (``fiftyone/core/service.py``, ``ServerService.start``),
    so a Ctrl-C that lands while the App starts was swallowed there and the
    command then served the App for ever. The handler records the signal
    before it raises, and ``wait`` raises it again once ``launch_app`` is back.
    SIGTERM's and SIGHUP's default actions would skip ``finally``, which
    stops the executor; here they raise ``SystemExit(128 + signum)``.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self._received = threading.Event()
        self.signum: int | None = None

    def install(self) -> StopSignals:
        for sig in self.SIGNALS:
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
        self._received.set()
        raise self._exception()

    def _exception(self) -> BaseException:
        return KeyboardInterrupt() if self.signum == signal.SIGINT else SystemExit(128 + self.signum)

    def wait(self) -> None:
        """Blocks until a stop signal arrives, then raises it; raises at once if one already came.

        The handler raises inside this wait (a lock wait is interruptible on
        POSIX); the last line is for a signal that arrived, and was swallowed, earlier.
        """
        self._received.wait()
        raise self._exception()


def cmd_app(args: argparse.Namespace) -> int:
    stop = StopSignals().install()
    os.environ.update(DELEGATION_ENV)  # the App server subprocess inherits it
    import fiftyone as fo

    fo.config.allow_legacy_orchestrators = True
    dataset = load_dataset(args.dataset, hint="run `make demo` first")
    print(f"plugins dir: {os.environ.get('FIFTYONE_PLUGINS_DIR', fo.config.plugins_dir)}")
    executor = start_executor() if args.executor else None
    if executor is not None:
        print(f"delegated operations: executor running (pid {executor.pid}); scheduled runs start there")
    try:
        # held until the command ends: the App server stops when its session is collected
        _session = fo.launch_app(dataset, port=args.port, address=args.address, remote=True)
        print(f"App: http://{args.address}:{args.port}/datasets/{dataset.name}", flush=True)
        stop.wait()  # Ctrl-C: KeyboardInterrupt, SIGTERM/SIGHUP: SystemExit; both pass `finally`
    finally:
        if executor is not None:
            stop_process(executor)
    return 0
