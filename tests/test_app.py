"""Every stage from the FiftyOne App, driven the way a user meets it.

The real App server (``python -m fiftyone.server.main``) runs as a separate
process on a loopback port with our plugins dir, so it discovers the plugin
through FiftyOne's own loader; Debian's Chromium (headless, via Playwright)
opens the dataset, finds our operators *by their labels* in the operator
browser (the backtick key), fills and submits their forms, and opens the
Genre panel. After each step the test reads the dataset back from the
database in this process: the App only proves anything if the data changed.

Set-up uses the library directly (it is tested elsewhere): synthetic clips
with cross-modal genre cues are imported twice, once into a training dataset
that is remapped, split, featurised and used to train a tiny model, and once
into the dataset the App works on, which only gets features (a cache hit).
Remap, split, predict and evaluate then happen in the browser.

Screenshots go to ``test_output/app/``; the operator browser, a form and the
panel are copied to ``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.app, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[1]
PLUGIN_NAME = "@fiftyone-genre/genre"
PLUGINS_DIR = REPO / ".plugins"
PLUGIN_LINK = PLUGINS_DIR / "@fiftyone-genre" / "genre"
SHOTS_DIR = REPO / "test_output" / "app"
README_SHOTS = REPO / "docs" / "screenshots"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1600, "height": 1000}

CLIPS_PER_GENRE = 4
#: App steps wait at most this long (2 shared cores; the first operator run imports torch).
STEP_TIMEOUT_MS = 120_000


# --------------------------------------------------------------------------- helpers


def ensure_plugin_link() -> None:
    """Link the checkout into ``.plugins`` as ``scripts/setup.sh`` does (idempotent)."""
    PLUGIN_LINK.parent.mkdir(parents=True, exist_ok=True)
    if PLUGIN_LINK.is_symlink() and PLUGIN_LINK.resolve() == REPO:
        return
    if PLUGIN_LINK.is_symlink() or PLUGIN_LINK.exists():
        PLUGIN_LINK.unlink()
    PLUGIN_LINK.symlink_to(REPO, target_is_directory=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.5):
    """Poll ``predicate`` until truthy (the database is another process's view of the App)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - report the last one if we time out
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def shot(page, name: str) -> Path:
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = SHOTS_DIR / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def publish(path: Path, name: str) -> None:
    """Copy a screenshot to docs/screenshots/ (the README shows these)."""
    README_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, README_SHOTS / name)


def plugin_labels() -> dict[str, str]:
    """Operator name -> label, read from the operators FiftyOne itself registers.

    The test finds operators by what the user reads, but takes the text from
    the code so that rewording a label does not break it.
    """
    import fiftyone.plugins as fop
    from fiftyone.plugins.context import PluginContext

    context = PluginContext(fop.get_plugin(plugin_dir=str(PLUGIN_LINK)))
    context.register_all()
    assert not context.errors, "\n".join(context.errors)
    return {instance.name: instance.config.label for instance in context.instances}


# --------------------------------------------------------------------------- fixtures


@dataclass
class AppData:
    name: str
    model_dir: Path
    genres_by_path: dict[str, str]


@pytest.fixture(scope="module")
def app_data(tmp_path_factory) -> Iterator[AppData]:
    """A trained tiny model and an App dataset with features but no genre/split yet."""
    import fiftyone as fo

    from fiftyone_genre import features, remap, sources, split, synth, train
    from fiftyone_genre.config import ExperimentConfig, FeaturesConfig, ModelConfig, TrainConfig

    root = tmp_path_factory.mktemp("app")
    manifest = synth.generate(
        root / "media", layout="folder", clips_per_class=CLIPS_PER_GENRE, duration=2.0, size=(64, 48), fps=10.0, seed=0
    )
    tag = uuid.uuid4().hex[:8]
    train_name, app_name = f"app-train-{tag}", f"app-{tag}"
    fcfg = FeaturesConfig(
        backbone="mobilenet_v3_small", weights="none", image_size=64, fps=4.0, num_workers=0, cache_dir=str(root / "cache")
    )
    experiment = ExperimentConfig(
        features=fcfg,
        model=ModelConfig(visual_proj=16, audio_proj=8, hidden_size=32, dropout=0.0),
        train=TrainConfig(window=4, stride=2, epochs=12, lr=3e-3, batch_size=16, patience=0, device="cpu"),
    )
    try:
        training = fo.Dataset(train_name)
        sources.import_folder(training, root / "media")
        remap.remap(training)
        split.split_dataset(training)
        features.extract_features(training, fcfg)
        train.train(training, experiment, root / "model")

        dataset = fo.Dataset(app_name, persistent=True)  # the server process loads it by name
        sources.import_folder(dataset, root / "media")
        features.extract_features(dataset, fcfg)
        assert len(dataset) == len(manifest.clips)
        assert not dataset.has_field("genre") and not dataset.has_field("split")
        yield AppData(app_name, root / "model", {c.path: c.genre for c in manifest.clips})
    finally:
        for name in (train_name, app_name):
            if fo.dataset_exists(name):
                fo.delete_dataset(name)


@pytest.fixture(scope="module")
def app_server(app_data) -> Iterator[str]:
    """``python -m fiftyone.server.main`` on a free loopback port, our plugins dir, the test DB."""
    ensure_plugin_link()
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    for old in SHOTS_DIR.glob("*.png"):  # a previous run's failure shots would mislead
        old.unlink()
    port = free_port()
    env = dict(os.environ)
    env["FIFTYONE_PLUGINS_DIR"] = str(PLUGINS_DIR)
    env["FIFTYONE_DO_NOT_TRACK"] = "true"
    assert env["FIFTYONE_DATABASE_NAME"] not in ("", "fiftyone")  # set by conftest
    log = open(SHOTS_DIR / "server.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "fiftyone.server.main", "--port", str(port), "--address", "127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: teardown ends it and its children
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"App server exited with {proc.returncode}; see {SHOTS_DIR / 'server.log'}")
        with urllib.request.urlopen(url + "/", timeout=5) as r:
            return r.status == 200

    try:
        wait_until(up, 120, "the App server to answer")
        yield url
    finally:
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        kwargs = {"executable_path": CHROMIUM} if os.path.exists(CHROMIUM) else {}
        b = p.chromium.launch(headless=True, args=CHROMIUM_ARGS, **kwargs)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page(browser, app_server, app_data):
    """One tab on the dataset, shared by the tests below (they continue each other's work)."""
    context = browser.new_context(viewport=VIEWPORT)
    # a returning user has dismissed the "Explore Enterprise" popover, which
    # otherwise covers the grid's top-right corner and swallows clicks
    context.add_init_script("window.localStorage.setItem('fiftyone-enterprise-tooltip-seen', 'true')")
    # loopback only: the App asks Google for fonts, which is neither needed nor allowed
    context.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.goto(f"{app_server}/datasets/{app_data.name}", wait_until="load")
    from playwright.sync_api import expect

    expect(tab.locator("[data-cy='entry-counts']")).to_have_text(
        re.compile(rf"^\s*{len(app_data.genres_by_path)} samples\s*$"), timeout=STEP_TIMEOUT_MS
    )
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="module")
def labels() -> dict[str, str]:
    ensure_plugin_link()
    return plugin_labels()


# --------------------------------------------------------------------------- App actions


def open_operator_browser(page, query: str):
    """Press the backtick key (focus on the page, not a text box) and type into the search."""
    page.locator("body").click(position={"x": 5, "y": 500})  # the sidebar edge: nothing happens there
    page.keyboard.press("`")
    search = page.get_by_placeholder("Search operations by name...")
    search.wait_for()
    search.fill(query)
    return search


def open_form(page, label: str):
    """Find an operator by its label in the operator browser and open its form."""
    open_operator_browser(page, label)
    page.get_by_text(label, exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Execute").wait_for(timeout=STEP_TIMEOUT_MS)
    return dialog


def field(dialog, label: str):
    """The input of the form field whose label text is ``label`` (labels are not <label>s)."""
    return dialog.locator(
        f"xpath=.//p[normalize-space()={_xpath_literal(label)}]/ancestor::div[.//input][1]//input"
    ).first


def _xpath_literal(text: str) -> str:
    return f"'{text}'" if "'" not in text else f'"{text}"'


def settle(dialog) -> None:
    """Wait until a dynamic form has re-resolved (its Execute button is enabled again)."""
    from playwright.sync_api import expect

    expect(dialog.get_by_role("button", name="Execute")).to_be_enabled(timeout=STEP_TIMEOUT_MS)


def execute(page, dialog, shot_name: str, expect_text: str | re.Pattern) -> str:
    """Submit the form, wait for the operator's output view to show ``expect_text``; close it.

    The "Close" button appears before the output schema has been resolved
    and rendered, so the wait is on the content, not on the button.
    """
    from playwright.sync_api import expect

    settle(dialog)
    dialog.get_by_role("button", name="Execute").click()
    output = page.get_by_role("dialog")
    try:
        expect(output).to_contain_text(expect_text, timeout=STEP_TIMEOUT_MS)
    except AssertionError:
        shot(page, shot_name + "_failed")
        raise
    text = output.inner_text()
    shot(page, shot_name)
    output.get_by_role("button", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    return text


def load(name: str):
    import fiftyone as fo

    dataset = fo.load_dataset(name)
    dataset.reload()
    return dataset


# --------------------------------------------------------------------------- tests


def test_operator_browser_lists_our_operators(page, labels):
    """Backtick opens the operator browser; every stage is there under its label."""
    import yaml
    from playwright.sync_api import expect

    operators = yaml.safe_load((REPO / "fiftyone.yml").read_text())["operators"]
    missing = [name for name in operators if name not in labels]
    assert not missing, f"operators in fiftyone.yml that the plugin did not register: {missing}"
    shot(page, "01_grid")
    open_operator_browser(page, "Genre")
    for name in operators:
        expect(page.get_by_text(labels[name], exact=True)).to_be_visible()
    path = shot(page, "02_operator_browser")
    publish(path, "operator_browser.png")
    page.keyboard.press("Escape")
    expect(page.get_by_placeholder("Search operations by name...")).to_have_count(0)


def test_stages_through_their_forms(page, labels, app_data):
    """Remap, split, predict and evaluate from their forms; the dataset shows each result."""
    from playwright.sync_api import expect

    from fiftyone_genre.analysis import DEFAULT_EVAL_KEY

    n = len(app_data.genres_by_path)

    # remap: the form previews the counts before anything is written
    dialog = open_form(page, labels["remap_genres"])
    dialog.get_by_text(re.compile(r"dry run")).first.wait_for(timeout=STEP_TIMEOUT_MS)
    shot(page, "03_remap_form")
    text = execute(page, dialog, "04_remap_done", re.compile(r"changed: \d+ clips"))
    assert f"changed: {n} clips" in text, text
    wait_until(lambda: load(app_data.name).count("genre.label") == n, 30, "genre on every clip")
    dataset = load(app_data.name)
    paths, genres = dataset.values(["filepath", "genre.label"])
    assert dict(zip(paths, genres)) == app_data.genres_by_path

    # split: change the seed in the form to prove the form's values reach the library
    dialog = open_form(page, labels["split_dataset"])
    seed = field(dialog, "Seed")
    seed.fill("7")
    page.keyboard.press("Tab")
    settle(dialog)
    shot(page, "05_split_form")
    text = execute(page, dialog, "06_split_done", "no leakage")
    assert "seed 7" in text, text
    wait_until(lambda: load(app_data.name).count("split") == n, 30, "split on every clip")
    dataset = load(app_data.name)
    counts = dataset.count_values("split")
    assert set(counts) <= {"train", "val", "test"} and counts.get("train", 0) > counts.get("test", 0) > 0
    splits_of_group: dict[str, set] = {}
    for group, value in zip(*dataset.values(["group", "split"])):
        splits_of_group.setdefault(group, set()).add(value)
    assert all(len(v) == 1 for v in splits_of_group.values()), "a group straddles splits"

    # predict: the model directory the set-up trained
    dialog = open_form(page, labels["predict_genres"])
    field(dialog, "Model directory").fill(str(app_data.model_dir))
    page.keyboard.press("Tab")  # dynamic form: re-resolves with the path
    settle(dialog)
    expect(dialog.get_by_text("Required property")).to_have_count(0)
    path = shot(page, "07_predict_form")
    publish(path, "predict_form.png")
    text = execute(page, dialog, "08_predict_done", "Clips predicted")
    wait_until(lambda: load(app_data.name).count("genre_pred.label") == n, 60, "genre_pred on every clip")
    dataset = load(app_data.name)
    assert dataset.info.get("genre_run"), "predict did not record its run in dataset.info['genre_run']"
    assert set(dataset.distinct("genre_pred.label")) <= set(app_data.genres_by_path.values())
    assert dataset.count("genre.label") == n  # predict never touches the ground truth

    # evaluate: defaults (genre_pred against genre)
    dialog = open_form(page, labels["evaluate_genres"])
    shot(page, "09_evaluate_form")
    execute(page, dialog, "10_evaluate_done", "Accuracy")
    wait_until(lambda: load(app_data.name).has_evaluation(DEFAULT_EVAL_KEY), 30, "the evaluation run")


def test_genre_panel_confusion_cell_sets_view(page, app_data):
    """The panel shows the matrix; clicking a cell loads exactly those clips into the grid."""
    from playwright.sync_api import expect

    dataset = load(app_data.name)
    assert dataset.count("genre_pred.label"), "needs the predictions of the previous test"
    pairs = Counter(zip(*dataset.values(["genre.label", "genre_pred.label"])))
    # the busiest cell that is not the whole dataset, so the grid visibly changes
    (true_genre, pred_genre), expected = max(
        ((pair, count) for pair, count in pairs.items() if count < len(dataset)), key=lambda kv: kv[1]
    )

    page.locator("[data-cy='new-panel-btn']").first.click()  # the Samples space's "+"
    page.locator("[data-cy='new-panel-option-genre_panel']").click()
    plot = page.locator(".js-plotly-plot")
    plot.wait_for(timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text("Clips per genre", exact=True)).to_be_visible()
    expect(page.locator("[data-cy='looker']").first).to_be_visible(timeout=STEP_TIMEOUT_MS)
    page.wait_for_timeout(1000)  # Plotly redraws once after the panel settles (App: setTimeout 500ms)
    path = shot(page, "11_panel")
    publish(path, "panel.png")

    # click the cell's centre, located through Plotly's own axes (category -> pixel)
    point = plot.evaluate(
        """(gd, cell) => {
            const fl = gd._fullLayout, r = gd.getBoundingClientRect();
            return {x: r.left + fl.xaxis._offset + fl.xaxis.d2p(cell.x),
                    y: r.top + fl.yaxis._offset + fl.yaxis.d2p(cell.y)};
        }""",
        {"x": pred_genre, "y": true_genre},
    )
    page.mouse.move(point["x"], point["y"])
    page.mouse.click(point["x"], point["y"])

    plural = "sample" if expected == 1 else "samples"
    expect(page.locator("[data-cy='entry-counts']")).to_have_text(
        re.compile(rf"^\s*{expected} {plural}\s*$"), timeout=STEP_TIMEOUT_MS
    )
    expect(page.locator("[data-cy='view-bar']")).to_contain_text("Match")
    expect(page.get_by_text(f"Showing true {true_genre} predicted as {pred_genre}.")).to_be_visible()
    dataset = load(app_data.name)
    grid_genres = {(a, b) for a, b in zip(*dataset.values(["genre.label", "genre_pred.label"]))}
    assert (true_genre, pred_genre) in grid_genres
    path = shot(page, "12_panel_cell_clicked")
    publish(path, "panel_cell_clicked.png")

    # the rest of the panel: per-genre counts and the run that made the predictions
    run_row = page.get_by_text("model_dir", exact=True)
    run_row.scroll_into_view_if_needed()
    expect(run_row).to_be_visible()
    path = shot(page, "13_panel_counts_and_run")
    publish(path, "panel_counts_and_run.png")
