"""The real install clients, end to end: a built wheel in a fresh venv, and
FiftyOne's own `fiftyone plugins download` of the repository's archive.

Both fresh venvs get exactly the locked dependencies (``uv export`` of
uv.lock) from uv's cache, so creating one takes seconds, not the minutes of a
first download. Every command runs from a folder outside the clone, so nothing
can come from the checkout by accident.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not UV.exists(), reason="uv is not installed in this venv (run scripts/setup.sh)"),
]


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 600) -> str:
    """Run a command; on failure the assertion shows its whole output."""
    res = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, f"{cmd} exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


def clean_env(venv: Path, **extra: str) -> dict:
    """The test environment minus anything that points back into the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "UV_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["FIFTYONE_DO_NOT_TRACK"] = "true"
    env.update(extra)
    return env


def make_locked_venv(root: Path) -> Path:
    """A new venv holding exactly uv.lock's runtime packages (not this project)."""
    reqs = root / "locked-requirements.txt"
    run(
        [UV, "export", "--frozen", "--no-hashes", "--no-emit-project", "--no-dev",
         "--format", "requirements-txt", "--output-file", reqs],
        cwd=REPO,
    )
    venv = root / "venv"
    run([UV, "venv", "--quiet", "--python", sys.executable, venv], cwd=root)
    run([UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", "-r", reqs], cwd=root)
    return venv


def project_files() -> list[Path]:
    """What a GitHub archive of the repository holds: tracked and new, non-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout
    return [REPO / p for p in out.split("\0") if p and (REPO / p).is_file()]


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free loopback port; yields the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_wheel_in_a_fresh_venv_runs_cli_demo_and_sdk(tmp_path, dataset_name):
    # build from a copy of what git would ship, so no build/ folder lands in the checkout
    source = tmp_path / "source"
    for path in project_files():
        target = source / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    dist = tmp_path / "dist"
    run([UV, "build", "--quiet", "--wheel", "--out-dir", dist, source], cwd=tmp_path)
    wheel = next(dist.glob("fiftyone_genre-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    for config in ("cpu_fast", "paper_pool", "paper_softmax"):
        assert f"fiftyone_genre/configs/{config}.yaml" in names
    assert "fiftyone_genre/labels/mappings/ucf101.yaml" in names

    venv = make_locked_venv(tmp_path)
    py = venv / "bin" / "python"
    lock = tmp_path / "locked-requirements.txt"
    run([UV, "pip", "install", "--quiet", "--python", py, wheel, "-c", lock], cwd=tmp_path)

    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    env = clean_env(venv)
    assert "usage: fiftyone-genre" in run([venv / "bin" / "fiftyone-genre", "--help"], elsewhere, env)

    sdk = (
        "import fiftyone_genre, fiftyone_genre.config as c; "
        "assert 'site-packages' in fiftyone_genre.__file__, fiftyone_genre.__file__; "
        "print(c.load_experiment('paper_pool').features.backbone, c.shipped_configs())"
    )
    out = run([py, "-c", sdk], elsewhere, env)
    assert "inception_v3" in out and "cpu_fast" in out

    demo = [venv / "bin" / "fiftyone-genre", "demo", "--out", "demo", "--dataset", dataset_name,
            "--clips-per-genre", "3", "--duration", "2", "--no-ablate"]
    out = run(demo, elsewhere, env, timeout=900)
    assert "Open it in the App" in out
    assert (elsewhere / "demo" / "model" / "best.pt").is_file()


def test_fiftyone_plugins_download_of_the_repository_archive(tmp_path):
    # what GitHub's "Download ZIP" holds: one top-level folder with the repository
    archive_dir = tmp_path / "www"
    archive_dir.mkdir()
    archive = archive_dir / "fiftyone-genre-main.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in project_files():
            zf.write(path, f"fiftyone-genre-main/{path.relative_to(REPO)}")

    venv = make_locked_venv(tmp_path)  # the plugin's requirements, not this package
    fiftyone = venv / "bin" / "fiftyone"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    env = clean_env(venv, FIFTYONE_PLUGINS_DIR=str(plugins))
    probe = "import importlib.util as u; print(u.find_spec('fiftyone_genre'))"
    assert run([venv / "bin" / "python", "-c", probe], tmp_path, env).strip() == "None"

    with serve(archive_dir) as url:
        run([fiftyone, "plugins", "download", f"{url}/{archive.name}"], tmp_path, env)
    assert (plugins / "@fiftyone-genre" / "genre" / "fiftyone.yml").is_file()

    assert "@fiftyone-genre/genre" in run([fiftyone, "plugins", "list"], tmp_path, env)
    operators = run([fiftyone, "operators", "list"], tmp_path, env)
    for name in ("import_videos", "extract_features", "train_model", "predict_genres", "compute_genre_maps"):
        assert f"@fiftyone-genre/genre/{name}" in operators, operators

    listed = run([fiftyone, "plugins", "requirements", "@fiftyone-genre/genre", "--print"], tmp_path, env)
    wanted = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    for requirement in wanted:
        assert requirement in listed, f"{requirement!r} missing from:\n{listed}"
    run([fiftyone, "plugins", "requirements", "@fiftyone-genre/genre", "--ensure", "--error-level", "0"], tmp_path, env)
