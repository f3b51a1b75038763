"""The plugin as FiftyOne sees it: manifest, registration and the CLI listings.

FiftyOne drops an operator silently when ``register()`` registers it but
``fiftyone.yml`` does not list it (and shows nothing for a listed name that is
never registered), so a typo in either place makes a button vanish from the
App without any error. These tests load the plugin the way the App server
does and compare both sides exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PLUGIN_NAME = "@fiftyone-genre/genre"
PLUGINS_DIR = REPO / ".plugins"
LINK = PLUGINS_DIR / "@fiftyone-genre" / "genre"


def ensure_plugin_link() -> Path:
    """Link the checkout into ``.plugins`` like ``scripts/setup.sh`` does (idempotent)."""
    LINK.parent.mkdir(parents=True, exist_ok=True)
    if LINK.is_symlink() and LINK.resolve() == REPO:
        return LINK
    if LINK.is_symlink() or LINK.exists():
        LINK.unlink()
    LINK.symlink_to(REPO, target_is_directory=True)
    return LINK


def manifest() -> dict:
    return yaml.safe_load((REPO / "fiftyone.yml").read_text())


def listed_names() -> tuple[list[str], list[str]]:
    data = manifest()
    return list(data.get("operators") or []), list(data.get("panels") or [])


@pytest.fixture(scope="module")
def plugin_env() -> dict[str, str]:
    """The environment of a user who followed the README: our plugins dir, the test DB."""
    ensure_plugin_link()
    env = dict(os.environ)
    env["FIFTYONE_PLUGINS_DIR"] = str(PLUGINS_DIR)
    env["FIFTYONE_DO_NOT_TRACK"] = "true"
    return env


def _load_plugin_like_fiftyone():
    """Run the plugin's ``register(p)`` through FiftyOne's own ``PluginContext``.

    A subclass records every class offered to ``register`` *before*
    FiftyOne's manifest filter, so both directions of a mismatch show up.
    """
    import fiftyone.operators as foo
    import fiftyone.plugins as fop
    from fiftyone.plugins.context import PluginContext

    class RecordingContext(PluginContext):
        def __init__(self, definition):
            super().__init__(definition)
            self.offered: list[tuple[str, bool]] = []

        def register(self, cls):
            instance = cls(_builtin=False)
            self.offered.append((instance.name, isinstance(instance, foo.Panel)))
            super().register(cls)

    definition = fop.get_plugin(plugin_dir=str(ensure_plugin_link()))
    context = RecordingContext(definition)
    context.register_all()
    return definition, context


def test_manifest_names_and_metadata():
    data = manifest()
    assert data["name"] == PLUGIN_NAME
    operators, panels = listed_names()
    assert operators and panels
    names = operators + panels
    assert len(names) == len(set(names)), f"duplicate names in fiftyone.yml: {names}"
    assert "fiftyone" in data and data["fiftyone"].get("version")


def test_register_matches_manifest_exactly():
    operators, panels = listed_names()
    definition, context = _load_plugin_like_fiftyone()
    assert definition.name == PLUGIN_NAME
    assert not context.errors, "register() failed:\n" + "\n".join(context.errors)

    offered = [name for name, _ in context.offered]
    assert len(offered) == len(set(offered)), f"registered twice: {offered}"
    offered_ops = {name for name, is_panel in context.offered if not is_panel}
    offered_panels = {name for name, is_panel in context.offered if is_panel}

    missing_in_yml = (offered_ops | offered_panels) - set(operators) - set(panels)
    assert not missing_in_yml, f"registered but not in fiftyone.yml (FiftyOne drops them): {sorted(missing_in_yml)}"
    never_registered = (set(operators) | set(panels)) - (offered_ops | offered_panels)
    assert not never_registered, f"listed in fiftyone.yml but never registered: {sorted(never_registered)}"
    assert offered_ops == set(operators), "a panel is listed under operators: or vice versa"
    assert offered_panels == set(panels), "an operator is listed under panels: or vice versa"

    # and FiftyOne kept every one of them
    kept = {instance.name for instance in context.instances}
    assert kept == set(operators) | set(panels)


def test_every_operator_is_described():
    """Labels and descriptions are what a newcomer reads in the operator browser."""
    import fiftyone.operators as foo

    _, context = _load_plugin_like_fiftyone()
    for instance in context.instances:
        config = instance.config
        assert config.label and config.label != config.name, f"{instance.name}: needs a human label"
        if not isinstance(instance, foo.Panel):
            assert config.description, f"{instance.name}: needs a description"


def _cli(env: dict[str, str], *args: str) -> str:
    fiftyone = Path(sys.executable).with_name("fiftyone")
    result = subprocess.run(
        [str(fiftyone), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"fiftyone {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_cli_lists_plugin_and_every_operator(plugin_env):
    plugins = _cli(plugin_env, "plugins", "list")
    rows = [line for line in plugins.splitlines() if line.split() and line.split()[0] == PLUGIN_NAME]
    assert rows, f"{PLUGIN_NAME} not in `fiftyone plugins list`:\n{plugins}"
    assert "✓" in rows[0], f"plugin found but not enabled: {rows[0]}"
    assert str(LINK) in rows[0]

    # panels are "unlisted" operators, so ask for those too
    listing = _cli(plugin_env, "operators", "list", "--no-builtins", "--include-unlisted")
    rows = {}
    for line in listing.splitlines():
        cells = line.split()
        if cells and cells[0].startswith(PLUGIN_NAME + "/"):
            rows[cells[0][len(PLUGIN_NAME) + 1 :]] = line
    operators, panels = listed_names()
    missing = (set(operators) | set(panels)) - set(rows)
    assert not missing, f"not listed by `fiftyone operators list`: {sorted(missing)}\n{listing}"
    for name in operators:
        # the operator browser hides unlisted operators: every stage must be listed
        assert rows[name].count("✓") == 1, f"{name} is disabled or unlisted: {rows[name]}"


def test_tests_never_write_into_the_checkout():
    """Screenshots for the docs are refreshed by scripts/screenshots.py, never by a test run."""
    for path in sorted((REPO / "tests").glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        text = path.read_text()
        assert '"docs" / "screenshots"' not in text and 'REPO / "docs"' not in text, f"{path.name} writes into docs/"
    script = (REPO / "scripts" / "screenshots.py").read_text()
    assert "tests" in script and "docs" in script
    makefile = (REPO / "Makefile").read_text()
    test_target = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "screenshots" not in test_target
