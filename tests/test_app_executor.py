"""`fiftyone-genre app` stops its delegated-operation executor with it.

The command runs for real (the App server on a free loopback port, the
executor beside it) with a generated plugin whose operator takes minutes, so
that a run is in progress when the App is stopped: by SIGTERM (a service
manager, ``kill``) and by Ctrl-C (SIGINT to the terminal's process group).
Each time the executor must be gone within seconds and the run must read
*failed* with a sentence, not stay "running" for ever. A SIGKILL runs no
handler in the App: the kernel's parent-death signal stops the executor.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]

SLOW_PLUGIN = '''
import time

import fiftyone.operators as foo


class Slow(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(name="slow", label="slow", allow_delegated_execution=True)

    def execute(self, ctx):
        for i in range(1200):
            ctx.set_progress(progress=i / 1200, label=f"step {i}")
            time.sleep(0.5)
        return {}


def register(p):
    p.register(Slow)
'''


@pytest.fixture
def plugins_dir(tmp_path) -> Path:
    """Our plugin plus a slow test plugin (an operator that runs for ten minutes)."""
    root = tmp_path / "plugins"
    (root / "@fiftyone-genre").mkdir(parents=True)
    (root / "@fiftyone-genre" / "genre").symlink_to(REPO, target_is_directory=True)
    slow = root / "@test" / "slow"
    slow.mkdir(parents=True)
    (slow / "__init__.py").write_text(SLOW_PLUGIN)
    (slow / "fiftyone.yml").write_text('name: "@test/slow"\ntype: plugin\noperators:\n  - slow\n')
    return root


#: A ``sitecustomize`` that holds FiftyOne's probe for a running App server (inside its
#: bare ``except:``) for a while and says so, so a test can press Ctrl-C just then.
SLOW_SERVER_PROBE = '''
import importlib.abc
import importlib.machinery
import sys
import time


def _hold_the_probe(service):
    real_get = service.requests.get

    def get(url, *args, **kwargs):
        if url.endswith("/fiftyone"):
            print("probing for an App server", file=sys.stderr, flush=True)
            time.sleep(8)
        return real_get(url, *args, **kwargs)

    service.requests.get = get


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "fiftyone.core.service":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            _hold_the_probe(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterImport())
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not re.search(r"^State:\s+Z", state, re.M)


@dataclass
class _App:
    """A ``fiftyone-genre app`` process started by ``_running_app``, its output file and its executor."""

    proc: subprocess.Popen
    log_path: Path
    executor_pid: int | None = None

    def printed(self) -> str:
        return self.log_path.read_text()[-3000:]

    def wait_exit(self, timeout: float) -> None:
        """The App process ends within ``timeout`` s; else the failure shows what it printed."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the App did not exit within {timeout:.0f}s; it printed:\n{self.printed()}") from None


@contextlib.contextmanager
def _running_app(name: str, plugins_dir: Path, tmp_path: Path, pythonpath: tuple[Path, ...] = ()) -> Iterator[_App]:
    """``fiftyone-genre app`` on dataset ``name`` until its executor runs; afterwards both are
    killed if still alive and the dataset is deleted."""
    import fiftyone as fo

    path = ":".join([*map(str, pythonpath), str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "FIFTYONE_PLUGINS_DIR": str(plugins_dir), "PYTHONPATH": path}
    log_path = tmp_path / "app.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fiftyone_genre.cli", "app", "--dataset", name, "--port", str(_free_port())],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    app = _App(proc, log_path)
    try:
        found = _wait(lambda: re.search(r"executor running \(pid (\d+)\)", log_path.read_text()), 120, "the executor")
        app.executor_pid = int(found.group(1))
        yield app
    finally:
        for pid in (proc.pid, app.executor_pid):
            if pid and _alive(pid):
                os.killpg(pid, signal.SIGKILL)
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.mark.parametrize("stop", ["SIGTERM", "Ctrl-C", "SIGKILL"])
def test_app_stops_its_executor_and_fails_the_run_in_progress(plugins_dir, tmp_path, monkeypatch, stop):
    import fiftyone as fo
    import fiftyone.operators as foo
    from fiftyone.operators.delegated import DelegatedOperationService

    name = f"exec-{uuid.uuid4().hex[:8]}"
    dataset = fo.Dataset(name, persistent=True)
    monkeypatch.setattr(fo.config, "plugins_dir", str(plugins_dir))
    with _running_app(name, plugins_dir, tmp_path) as app:
        run_id = foo.execute_operator("@test/slow/slow", dict(dataset=dataset), request_delegation=True).result["id"]
        service = DelegatedOperationService()
        _wait(lambda: service.get(run_id).run_state == "running", 120, "the executor to start the run")
        time.sleep(2)  # the App may still be starting (its server takes up to a minute on a busy machine)

        if stop == "SIGTERM":
            app.proc.send_signal(signal.SIGTERM)
        elif stop == "SIGKILL":  # no handler runs: the kernel's parent-death signal stops the executor
            app.proc.send_signal(signal.SIGKILL)
        else:  # what a terminal sends on Ctrl-C: SIGINT to its foreground process group
            os.killpg(app.proc.pid, signal.SIGINT)
        app.wait_exit(30)
        _wait(lambda: not _alive(app.executor_pid), 20, "the executor to stop with the App")
        run = _wait(lambda: (r := service.get(run_id)).run_state != "running" and r, 20, "the run to be closed")
        sig = "SIGTERM"  # the App stops its executor with SIGTERM, whatever stopped the App
        assert run.run_state == "failed"
        assert run.result.error == f"Stopped: the App closed while this ran ({sig}). Schedule it again."
        assert app.proc.returncode == {"SIGTERM": 143, "Ctrl-C": 130, "SIGKILL": -9}[stop], app.proc.returncode


def test_ctrl_c_while_the_app_starts_stops_it(plugins_dir, tmp_path):
    """FiftyOne swallows a KeyboardInterrupt while it probes for an App server; the command still ends.

    Before ``StopSignals`` this Ctrl-C was lost and the App then ran for ever
    (seen in the full suite, where the App starts slowly).
    """
    import fiftyone as fo

    name = f"exec-{uuid.uuid4().hex[:8]}"
    fo.Dataset(name, persistent=True)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_SERVER_PROBE)
    with _running_app(name, plugins_dir, tmp_path, pythonpath=(site,)) as app:
        _wait(lambda: "probing for an App server" in app.log_path.read_text(), 120, "FiftyOne's server probe")
        time.sleep(1)
        os.killpg(app.proc.pid, signal.SIGINT)
        # the swallowed Ctrl-C is raised again once FiftyOne's start returns: its server gets up to 60 s
        app.wait_exit(90)
        assert app.proc.returncode == 130, app.printed()
        _wait(lambda: not _alive(app.executor_pid), 20, "the executor to stop with the App")


def test_only_batch_commands_exit_quickly():
    """``app`` ends as usual (its session waits for the App server); the batch commands freeze and exit."""
    from fiftyone_genre.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["app"]).quick_exit is False
    assert getattr(parser.parse_args(["features", "--dataset", "d"]), "quick_exit", True) is True
