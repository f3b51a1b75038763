"""Every stage from the FiftyOne App, driven the way a user meets it.

The real App server (``python -m fiftyone.server.main``) runs as a separate
process on a loopback port with our plugins dir and, as ``make app`` does,
delegated scheduling enabled plus the plugin's executor beside it. Debian's
Chromium (headless, via Playwright) opens an empty dataset, finds our
operators *by their labels* in the operator browser (the backtick key) and
drives all ten forms: first one invalid input per form, which must show on
its own field (error state: ``aria-invalid``, red outline; a message under
it that names the field, once; Execute disabled), then a real run.
Feature extraction, training and the maps are *scheduled* and run by the
executor; the rest run immediately. The Genre panel must stay true by itself
through a relabel and its undo, and list scheduled runs in each state
(queued, running, failed, completed) with a toast when one finishes. After
each step the test reads the dataset back from the database in this process:
the App only proves anything if the data changed. One App session serves the
whole module.

Screenshots and logs go to ``test_output/app/`` (git-ignored). The README's
screenshots in ``docs/screenshots/`` are refreshed only by
``scripts/screenshots.py`` (``make screenshots``), never by a test run.
"""

from __future__ import annotations

import json
import os
import re
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
SHOTS_DIR = Path(os.environ.get("FIFTYONE_GENRE_APP_SHOTS", REPO / "test_output" / "app"))

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
#: A scheduled run (executor start-up included) must finish within this many seconds.
DELEGATED_TIMEOUT_S = 300
PRIMARY = re.compile(r"^\s*(Execute|Schedule)\s*$")


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
    media: Path
    config: Path
    model_dir: Path
    genres_by_path: dict[str, str]


@pytest.fixture(scope="module")
def app_data(tmp_path_factory) -> Iterator[AppData]:
    """Generated clips on disk, a tiny experiment config, and an empty dataset for the App."""
    import fiftyone as fo
    import yaml

    from fiftyone_genre.config import ExperimentConfig, FeaturesConfig, ModelConfig, TrainConfig
    from fiftyone_genre.demo import synth

    root = tmp_path_factory.mktemp("app")
    manifest = synth.generate(
        root / "media", layout="folder", clips_per_class=CLIPS_PER_GENRE, duration=2.0, size=(64, 48), fps=10.0, seed=0
    )
    experiment = ExperimentConfig(
        features=FeaturesConfig(
            backbone="mobilenet_v3_small", weights="none", image_size=64, fps=4.0, num_workers=0,
            cache_dir=str(root / "cache"),
        ),
        model=ModelConfig(visual_proj=16, audio_proj=8, hidden_size=32, dropout=0.0),
        train=TrainConfig(window=4, stride=2, epochs=12, lr=3e-3, batch_size=16, patience=0, device="cpu"),
    )
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(experiment.to_dict()))
    name = f"app-{uuid.uuid4().hex[:8]}"
    try:
        fo.Dataset(name, persistent=True)  # the server process loads it by name
        yield AppData(name, root / "media", config, root / "model", {c.path: c.genre for c in manifest.clips})
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


class Executor:
    """The delegated-operation executor ``make app`` starts beside the App; a test may stop and restart it."""

    def __init__(self, env: dict[str, str], log):
        self.env, self.log, self.proc = env, log, None

    def start(self) -> None:
        from fiftyone_genre.cli.app import start_executor

        if self.proc is None or self.proc.poll() is not None:
            self.proc = start_executor(self.env, log=self.log)

    def stop(self) -> None:
        from fiftyone_genre.cli.app import stop_process

        if self.proc is not None:
            stop_process(self.proc)


@dataclass
class AppServer:
    url: str
    executor: Executor


@pytest.fixture(scope="module")
def app_server(app_data) -> Iterator[AppServer]:
    """The App server on a free loopback port plus a delegated executor, as ``make app`` runs them."""
    from fiftyone_genre.cli.app import delegation_env, stop_process

    ensure_plugin_link()
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    for old in SHOTS_DIR.glob("*.png"):  # a previous run's failure shots would mislead
        old.unlink()
    port = free_port()
    env = delegation_env(dict(os.environ))
    env["FIFTYONE_PLUGINS_DIR"] = str(PLUGINS_DIR)
    env["FIFTYONE_DO_NOT_TRACK"] = "true"
    assert env["FIFTYONE_DATABASE_NAME"] not in ("", "fiftyone")  # set by conftest
    log = open(SHOTS_DIR / "server.log", "w")  # noqa: SIM115 - closed in teardown
    executor_log = open(SHOTS_DIR / "executor.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "fiftyone.server.main", "--port", str(port), "--address", "127.0.0.1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    executor = Executor(env, executor_log)
    executor.start()
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"App server exited with {proc.returncode}; see {SHOTS_DIR / 'server.log'}")
        with urllib.request.urlopen(url + "/", timeout=5) as r:
            return r.status == 200

    try:
        wait_until(up, 120, "the App server to answer")
        yield AppServer(url, executor)
    finally:
        stop_process(proc)
        executor.stop()
        log.close()
        executor_log.close()


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
    tab.goto(f"{app_server.url}/datasets/{app_data.name}", wait_until="load")

    # an empty dataset has no sample count yet, only "No samples yet"
    try:
        tab.get_by_text("No samples yet").wait_for(timeout=STEP_TIMEOUT_MS)
    except Exception:
        shot(tab, "00_not_loaded")
        raise
    tab.wait_for_timeout(2000)
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


def primary(dialog):
    """The form's run button: "Execute", or "Schedule" where delegation is the default."""
    return dialog.get_by_role("button", name=PRIMARY).first


def open_form(page, label: str):
    """Find an operator by its label in the operator browser and open its form."""
    open_operator_browser(page, label)
    page.get_by_text(label, exact=True).click()
    dialog = page.get_by_role("dialog")
    primary(dialog).wait_for(timeout=STEP_TIMEOUT_MS)
    return dialog


def close_form(page, dialog) -> None:
    from playwright.sync_api import expect

    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)


def field(dialog, label: str, role: str = "input"):
    """The input of the form field whose label text is ``label`` (labels are not <label>s)."""
    inner = "input" if role == "input" else f"*[@role={_xpath_literal(role)}]"
    return dialog.locator(
        f"xpath=.//p[normalize-space()={_xpath_literal(label)}]/ancestor::div[.//{inner}][1]//{inner}"
    ).first


def _xpath_literal(text: str) -> str:
    return f"'{text}'" if "'" not in text else f'"{text}"'


def type_into(page, dialog, label: str, value: str) -> None:
    """Type into a text field and leave it, so the dynamic form re-resolves."""
    box = field(dialog, label)
    box.fill(value)
    page.keyboard.press("Tab")


def choose(page, dialog, label: str, option: str | re.Pattern) -> None:
    """Pick ``option`` in the dropdown whose label is ``label``."""
    field(dialog, label, role="combobox").click()
    page.get_by_role("option", name=option).first.click()


def field_label_name(label: str) -> str:
    """What an error message calls a field: its label without "(optional)"."""
    return re.sub(r"\s*\(optional\)\s*$", "", label)


def expect_field_error(page, dialog, label: str, message: str, shot_name: str, role: str = "input") -> None:
    """The field ``label`` is in its error state and says ``message``, which names it, under itself.

    Error state: ``aria-invalid="true"`` on its input (a dropdown's hidden
    native input) and MUI's ``Mui-error`` (the red outline). The message is
    shown once (under the field, not also at the top) and the run button is
    disabled.
    """
    from playwright.sync_api import expect

    assert message.startswith(field_label_name(label)), f"{message!r} does not name the field {label!r}"
    inner = "input" if role == "input" else f"*[@role={_xpath_literal(role)}]"
    p = f".//p[normalize-space()={_xpath_literal(label)}]"
    wrapper = dialog.locator(f"xpath={p}/ancestor::div[.//{inner}][1]")
    box = wrapper.locator("input.MuiSelect-nativeInput") if role == "combobox" else field(dialog, label)
    try:
        expect(primary(dialog)).to_be_disabled(timeout=STEP_TIMEOUT_MS)
        expect(box).to_have_attribute("aria-invalid", "true", timeout=STEP_TIMEOUT_MS)
        expect(wrapper.locator(".MuiInputBase-root").first).to_have_class(re.compile("Mui-error"))
        expect(wrapper.get_by_text(message, exact=False)).to_be_visible()  # under the field itself
        expect(dialog.get_by_text(message, exact=False)).to_have_count(1)
    except AssertionError:
        shot(page, shot_name + "_failed")
        raise
    shot(page, shot_name)


def expect_field_fixed(dialog, label: str) -> None:
    """The field left its error state (the re-resolved form accepted the new value)."""
    from playwright.sync_api import expect

    expect(field(dialog, label)).to_have_attribute("aria-invalid", "false", timeout=STEP_TIMEOUT_MS)


def settle(dialog) -> None:
    """Wait until a dynamic form has re-resolved (its run button is enabled again)."""
    from playwright.sync_api import expect

    expect(primary(dialog)).to_be_enabled(timeout=STEP_TIMEOUT_MS)


def expect_refused(page, dialog, message: str, shot_name: str) -> None:
    """The form shows ``message`` exactly once and keeps its run button disabled."""
    from playwright.sync_api import expect

    expect(primary(dialog)).to_be_disabled(timeout=STEP_TIMEOUT_MS)
    try:
        expect(dialog.get_by_text(message, exact=False)).to_have_count(1, timeout=STEP_TIMEOUT_MS)
    except AssertionError:
        shot(page, shot_name + "_failed")
        raise
    shot(page, shot_name)


def execute(page, dialog, shot_name: str, expect_text: str | re.Pattern, close: bool = True) -> str:
    """Run the form immediately and wait for its output view to show ``expect_text``.

    The "Close" button appears before the output schema has been resolved
    and rendered, so the wait is on the content, not on the button.
    """
    from playwright.sync_api import expect

    settle(dialog)
    button = primary(dialog)
    if button.inner_text().strip() != "Execute":
        _pick_execution(page, dialog, "Execute")
    primary(dialog).click()
    output = page.get_by_role("dialog")
    try:
        expect(output).to_contain_text(expect_text, timeout=STEP_TIMEOUT_MS)
    except AssertionError:
        shot(page, shot_name + "_failed")
        raise
    text = output.inner_text()
    shot(page, shot_name)
    if close:
        close_output(page)
    return text


def close_output(page) -> None:
    """Close an output view: "Close" in the form's own dialog, "Done" in a streamed run's."""
    from playwright.sync_api import expect

    page.get_by_role("dialog").get_by_role("button", name=re.compile(r"^(Close|Done)$")).first.click()
    expect(page.get_by_role("dialog")).to_have_count(0)


def _pick_execution(page, dialog, choice: str) -> None:
    """Open the run button's menu (the arrow beside it) and pick Execute or Schedule."""
    group = primary(dialog).locator("xpath=ancestor::div[contains(@class,'MuiButtonGroup')][1]")
    group.get_by_role("button").last.click()
    page.get_by_text(re.compile(rf"^{choice}$")).last.click()


def schedule(page, dialog, shot_name: str) -> float:
    """Schedule the form as a delegated operation; returns the wall time of the click."""
    from playwright.sync_api import expect

    settle(dialog)
    if primary(dialog).inner_text().strip() != "Schedule":
        _pick_execution(page, dialog, "Schedule")
    shot(page, shot_name)
    clicked = time.time()
    primary(dialog).click()
    output = page.get_by_role("dialog")
    close = output.get_by_role("button", name="Close")
    if close.count():
        close.click()
    expect(page.get_by_role("dialog")).to_have_count(0, timeout=STEP_TIMEOUT_MS)
    return clicked


def wait_delegated(app_data, operator: str, since: float) -> dict:
    """Wait for the executor to finish the scheduled ``operator``; its timings (s) and progress seen."""
    from fiftyone.operators.delegated import DelegatedOperationService

    service = DelegatedOperationService()
    uri = f"{PLUGIN_NAME}/{operator}"
    labels_seen: set[str] = set()

    def done():
        ops = [op for op in service.list_operations(operator=uri, dataset_name=app_data.name)]
        op = max(ops, key=lambda o: o.queued_at) if ops else None
        if op is None:
            return None
        status = getattr(op, "status", None)
        if status is not None and getattr(status, "label", None):
            labels_seen.add(status.label)
        return op if op.run_state in ("completed", "failed") else None

    op = wait_until(done, DELEGATED_TIMEOUT_S, f"the scheduled {operator} run", interval=1.0)
    assert op.run_state == "completed", f"{operator} failed in the executor:\n{op.result.error if op.result else ''}"
    queued, started, completed = (x.timestamp() for x in (op.queued_at, op.started_at, op.completed_at))
    return {
        "operator": operator,
        "click_to_queued_s": round(queued - since, 2),
        "queued_to_started_s": round(started - queued, 2),
        "run_s": round(completed - started, 2),
        "click_to_completed_s": round(completed - since, 2),
        "progress_labels_seen": sorted(labels_seen),
    }


def load(name: str):
    import fiftyone as fo

    dataset = fo.load_dataset(name)
    dataset.reload()
    return dataset


def record_timings(timings: dict) -> None:
    path = SHOTS_DIR / "delegated_timings.json"
    data = json.loads(path.read_text()) if path.exists() else []
    data.append(timings)
    path.write_text(json.dumps(data, indent=2))


# --------------------------------------------------------------------------- tests


def test_operator_browser_lists_our_operators(page, labels):
    """Backtick opens the operator browser; every stage is there under its label."""
    import yaml
    from playwright.sync_api import expect

    operators = yaml.safe_load((REPO / "fiftyone.yml").read_text())["operators"]
    missing = [name for name in operators if name not in labels]
    assert not missing, f"operators in fiftyone.yml that the plugin did not register: {missing}"
    open_operator_browser(page, "Genre")
    for name in operators:
        expect(page.get_by_text(labels[name], exact=True)).to_be_visible()
    shot(page, "01_operator_browser")
    page.keyboard.press("Escape")
    expect(page.get_by_placeholder("Search operations by name...")).to_have_count(0)


def test_import_remap_split_forms(page, labels, app_data):
    """Import, remap and split: each marks one bad input on its field, then runs and changes the dataset."""
    n = len(app_data.genres_by_path)

    dialog = open_form(page, labels["import_videos"])
    type_into(page, dialog, "Path", "/no/such/dir")
    expect_field_error(page, dialog, "Path", "Path: no such folder on the App server: /no/such/dir", "02_import_invalid")
    type_into(page, dialog, "Path", str(app_data.media))
    dialog.get_by_text(f"{n} video file(s)").wait_for(timeout=STEP_TIMEOUT_MS)
    shot(page, "03_import_form")
    _import_shows_its_report(page, dialog, app_data)

    dialog = open_form(page, labels["remap_genres"])
    type_into(page, dialog, "Mapping file (optional)", "/no/such/map.yaml")
    expect_field_error(page, dialog, "Mapping file (optional)", "Mapping file: /no/such/map.yaml: no such mapping file",
                       "05_remap_invalid")
    type_into(page, dialog, "Mapping file (optional)", "")
    dialog.get_by_text(re.compile(r"dry run")).first.wait_for(timeout=STEP_TIMEOUT_MS)
    shot(page, "06_remap_form")
    text = execute(page, dialog, "07_remap_done", re.compile(r"changed: \d+ clips"))
    assert f"changed: {n} clips" in text and "Finished: Remap report" in text, text
    wait_until(lambda: load(app_data.name).count("genre.label") == n, 30, "genre on every clip")
    paths, genres = load(app_data.name).values(["filepath", "genre.label"])
    assert dict(zip(paths, genres)) == app_data.genres_by_path

    dialog = open_form(page, labels["split_dataset"])
    type_into(page, dialog, "train ratio", "0.9")
    expect_field_error(page, dialog, "test ratio", "test ratio: the ratios sum to 1.10; they must sum to 1.",
                       "08_split_invalid")
    type_into(page, dialog, "train ratio", "0.8")
    expect_field_fixed(dialog, "test ratio")
    type_into(page, dialog, "Seed", "7")
    settle(dialog)
    shot(page, "09_split_form")
    text = execute(page, dialog, "10_split_done", "no leakage")
    assert "seed 7" in text, text
    wait_until(lambda: load(app_data.name).count("split") == n, 30, "split on every clip")
    dataset = load(app_data.name)
    counts = dataset.count_values("split")
    assert counts.get("train", 0) > counts.get("test", 0) > 0
    splits_of_group: dict[str, set] = {}
    for group, value in zip(*dataset.values(["group", "split"])):
        splits_of_group.setdefault(group, set()).add(value)
    assert all(len(v) == 1 for v in splits_of_group.values()), "a group straddles splits"


def _import_shows_its_report(page, dialog, app_data) -> None:
    """The first import into an empty dataset streams its progress and ends with its report.

    The App swaps its empty-dataset page for the grid when the first samples
    arrive; the report must survive that (it used to come back as the form,
    Execute enabled, as if nothing had happened).
    """
    from playwright.sync_api import expect

    n = len(app_data.genres_by_path)
    settle(dialog)
    primary(dialog).click()
    output = page.get_by_role("dialog")
    try:
        expect(output).to_contain_text("Finished: Import", timeout=STEP_TIMEOUT_MS)
        expect(output).to_contain_text("New samples")
    except AssertionError:
        shot(page, "04_import_done_failed")
        raise
    assert f"{n} new" in output.inner_text() or str(n) in output.inner_text(), output.inner_text()
    assert len(load(app_data.name)) == n
    page.locator("[data-cy='entry-counts']").wait_for(timeout=STEP_TIMEOUT_MS)  # the grid behind the report
    shot(page, "04_import_done")
    close_output(page)


def test_relabel_refuses_the_whole_dataset(page, labels):
    """With nothing selected and no view, relabel does not silently act on every clip."""
    from playwright.sync_api import expect

    dialog = open_form(page, labels["relabel_samples"])
    expect_refused(page, dialog, "Select the clips to relabel first.", "11_relabel_invalid")
    expect(dialog.locator(".MuiAlert-root, [role=alert]").filter(has_text="Select the clips")).to_have_count(1)
    close_form(page, dialog)


def test_features_and_training_run_delegated(page, labels, app_data):
    """Extract and train are scheduled from their forms and run by the executor beside the App."""
    dialog = open_form(page, labels["extract_features"])
    type_into(page, dialog, "Shard K/N (optional)", "abc")
    expect_field_error(page, dialog, "Shard K/N (optional)", "Shard K/N: must look like K/N (e.g. 2/4), got 'abc'",
                       "12_features_invalid")
    type_into(page, dialog, "Shard K/N (optional)", "")
    type_into(page, dialog, "Experiment config (optional)", str(app_data.config))
    dialog.get_by_text("through mobilenet_v3_small").wait_for(timeout=STEP_TIMEOUT_MS)
    since = schedule(page, dialog, "13_features_form")
    timings = wait_delegated(app_data, "extract_features", since)
    record_timings(timings)
    assert load(app_data.name).info.get("genre_features"), "features were not recorded on the dataset"

    dialog = open_form(page, labels["train_model"])
    type_into(page, dialog, "Epochs (optional)", "0")
    expect_field_error(page, dialog, "Epochs (optional)", "Epochs: must be at least 1.", "14_train_invalid")
    a_file = app_data.config  # a file, not a folder: a scheduled run could not write there
    type_into(page, dialog, "Model directory", str(a_file / "model"))
    expect_field_error(page, dialog, "Model directory",
                       f"Model directory: {a_file} is a file on the App server, not a folder", "14b_train_unwritable")
    type_into(page, dialog, "Experiment config", str(app_data.config))
    type_into(page, dialog, "Model directory", str(app_data.model_dir))
    type_into(page, dialog, "Epochs (optional)", "12")
    dialog.get_by_text("12 epochs").wait_for(timeout=STEP_TIMEOUT_MS)
    since = schedule(page, dialog, "15_train_form")
    timings = wait_delegated(app_data, "train_model", since)
    record_timings(timings)
    print("delegated training:", timings)
    assert any(label.startswith("epoch") for label in timings["progress_labels_seen"]), "no stage labels"
    assert (app_data.model_dir / "best.pt").is_file()
    trained = load(app_data.name).info.get("genre_trained_model") or {}
    assert trained.get("model_dir") == str(app_data.model_dir), "the run did not record its model on the dataset"


def test_predict_evaluate_confusion_forms(page, labels, app_data):
    """Predict (default model: the one just trained), evaluate the test split, open a confusion view."""
    from playwright.sync_api import expect

    n = len(app_data.genres_by_path)
    dialog = open_form(page, labels["predict_genres"])
    expect(field(dialog, "Model directory")).to_have_value(str(app_data.model_dir))  # from the training run
    type_into(page, dialog, "Model directory", "/no/such/dir")
    expect_field_error(page, dialog, "Model directory", "Model directory: no such folder on the App server: /no/such/dir",
                       "16_predict_invalid")
    type_into(page, dialog, "Model directory", str(app_data.model_dir))
    dialog.get_by_text(f"{n} clip(s) will be predicted").wait_for(timeout=STEP_TIMEOUT_MS)
    shot(page, "17_predict_form")
    execute(page, dialog, "18_predict_done", "Clips predicted")
    wait_until(lambda: load(app_data.name).count("genre_pred.label") == n, 60, "genre_pred on every clip")
    dataset = load(app_data.name)
    assert dataset.info.get("genre_run"), "predict did not record its run in dataset.info['genre_run']"
    assert dataset.count("genre.label") == n  # predict never touches the ground truth

    dialog = open_form(page, labels["evaluate_genres"])
    expect(field(dialog, "Evaluation key")).to_have_value("genre_eval_test")
    type_into(page, dialog, "Evaluation key", "bad key")
    expect_field_error(page, dialog, "Evaluation key",
                       "Evaluation key: use letters, digits and underscores only (not 'bad key').", "19_evaluate_invalid")
    type_into(page, dialog, "Evaluation key", "genre_eval_test")
    field(dialog, "Ground truth", role="combobox").click()
    assert not page.get_by_role("option", name="genre_pred").count(), "predictions offered as ground truth"
    page.keyboard.press("Escape")
    settle(dialog)
    shot(page, "20_evaluate_form")
    text = execute(page, dialog, "21_evaluate_done", "Accuracy", close=False)
    assert "test split" in text and "Science Fiction" in text, text
    assert not re.search(r"\d\.\d{5,}", text), "unrounded metrics in the evaluation output"
    dataset = load(app_data.name)
    assert dataset.has_evaluation("genre_eval_test")
    close_output(page)

    # every split: its own key (the test-only evaluation stays), and chips for the confusions
    dialog = open_form(page, labels["evaluate_genres"])
    choose(page, dialog, "Split", "every split")
    expect(field(dialog, "Evaluation key")).to_have_value("genre_eval", timeout=STEP_TIMEOUT_MS)
    execute(page, dialog, "21b_evaluate_all_done", "Accuracy", close=False)
    dataset = load(app_data.name)
    assert dataset.has_evaluation("genre_eval") and dataset.has_evaluation("genre_eval_test")
    _open_saved_view_chip(page, dataset)

    _confusion_form(page, labels)


def _open_saved_view_chip(page, dataset) -> None:
    """A saved-view chip in the evaluation output loads that view into the grid."""
    from playwright.sync_api import expect

    views = [v for v in dataset.list_saved_views() if "-predicted-as-" in v and not v.endswith("genre-eval-test")]
    output = page.get_by_role("dialog")
    if not views:  # a perfect model: nothing to chip
        close_output(page)
        return
    expected = len(dataset.load_saved_view(views[0]))
    plural = "sample" if expected == 1 else "samples"
    counts = page.locator("[data-cy='entry-counts']")
    # the run's own reload of the dataset may still be under way on a busy machine and put the
    # grid back after an early click; a person clicks seconds later, the test clicks again
    for attempt in range(2):
        output.get_by_role("button", name=views[0]).click()
        try:
            expect(counts).to_have_text(re.compile(rf"^\s*{expected} {plural}\s*$"), timeout=20_000 * (1 + 5 * attempt))
            break
        except AssertionError:
            if attempt:
                shot(page, "21c_saved_view_loaded_failed")
                raise
    shot(page, "21c_saved_view_loaded")
    if page.get_by_role("dialog").count():
        close_output(page)


def _confusion_form(page, labels) -> None:
    dialog = open_form(page, labels["open_confusion_view"])
    choose(page, dialog, "Predicted genre", re.compile(r"\(0 of them\)"))
    expect_field_error(page, dialog, "Predicted genre", "Predicted genre: no clip labelled", "22_confusion_invalid",
                       role="combobox")
    close_form(page, dialog)
    dialog = open_form(page, labels["open_confusion_view"])
    settle(dialog)
    shot(page, "23_confusion_form")
    primary(dialog).click()


def panel_counts(page, row: str = "ground truth") -> dict[str, int]:
    """The Genre panel's "Clips per genre" table: ``{genre: count}`` of one row (ground truth or predicted)."""
    table = page.locator("xpath=//*[normalize-space()='Clips per genre']/following::table[1]")
    rows = [[c.strip() for c in r.locator("th, td").all_inner_texts()] for r in table.locator("tr").all()]
    header = rows[0]
    values = next(r for r in rows if r and r[0] == row)
    return {k: int(v) for k, v in zip(header[1:], values[1:]) if k != "total"}


def genre_counts(name: str) -> dict[str, int]:
    """``{genre: count}`` of the dataset's ground truth, from the database."""
    from fiftyone_genre import genres as g
    from fiftyone_genre.analysis.views import label_counts

    return label_counts(load(name), g.GENRE_FIELD)


def expect_panel_counts(page, expected: dict[str, int], what: str, shot_name: str, timeout: float = 60) -> dict[str, int]:
    """Wait until the panel's ground-truth counts are ``expected``; on timeout say what it showed instead."""
    try:
        wait_until(lambda: panel_counts(page) == expected, timeout, f"the panel to show {what}")
    except AssertionError as e:
        shot(page, shot_name + "_failed")
        raise AssertionError(f"{e}: expected {expected}, the panel shows {panel_counts(page)}") from None
    return expected


def panel_cell(page, true_genre: str, pred_genre: str) -> dict:
    """Where the heatmap draws the cell (true row, predicted column), in page pixels."""
    return page.locator(".js-plotly-plot").evaluate(
        """(gd, cell) => {
            const fl = gd._fullLayout, r = gd.getBoundingClientRect();
            return {x: r.left + fl.xaxis._offset + fl.xaxis.d2p(cell.x),
                    y: r.top + fl.yaxis._offset + fl.yaxis.d2p(cell.y)};
        }""",
        {"x": pred_genre, "y": true_genre},
    )


def click_cell(page, true_genre: str, pred_genre: str, expected: int) -> None:
    """Click a heatmap cell; the grid shows ``expected`` samples; the matrix has not moved under the pointer."""
    from playwright.sync_api import expect

    page.wait_for_timeout(1000)  # Plotly redraws once after the panel settles (App: setTimeout 500ms)
    plot = page.locator(".js-plotly-plot")
    before = plot.bounding_box()
    point = panel_cell(page, true_genre, pred_genre)
    page.mouse.move(point["x"], point["y"])
    page.mouse.click(point["x"], point["y"])
    plural = "sample" if expected == 1 else "samples"
    expect(page.locator("[data-cy='entry-counts']")).to_have_text(
        re.compile(rf"^\s*{expected} {plural}\s*$"), timeout=STEP_TIMEOUT_MS
    )
    expect(page.get_by_text(f"Showing true {true_genre} predicted as {pred_genre}.")).to_be_visible()
    after = plot.bounding_box()
    assert abs(after["y"] - before["y"]) < 1 and abs(after["height"] - before["height"]) < 1, (before, after)


def test_genre_panel_stays_true_through_relabel_and_undo(page, labels, app_data):
    """The panel opens on the test split, counts first; a cell click loads its clips without moving the
    matrix; relabel and undo show up in the panel by themselves (no Refresh)."""
    from playwright.sync_api import expect

    dataset = load(app_data.name)
    page.locator("[data-cy='new-panel-btn']").first.click()  # the Samples space's "+"
    page.locator("[data-cy='new-panel-option-genre_panel']").click()
    plot = page.locator(".js-plotly-plot")
    plot.wait_for(timeout=STEP_TIMEOUT_MS)
    n_test = dataset.count_values("split")["test"]
    expect(page.get_by_text(re.compile(rf"the test split: {n_test} clips"))).to_be_visible()  # the scope, visible
    expect(page.get_by_text(re.compile(r"^accuracy by split: train .* · val .* · test "))).to_be_visible()
    counts_title = page.get_by_text("Clips per genre", exact=True)
    expect(counts_title).to_be_visible()
    assert counts_title.bounding_box()["y"] < plot.bounding_box()["y"], "the counts come first"
    page.wait_for_timeout(1000)
    shot(page, "24_panel")

    _switch_split(page, "test split", "all splits")
    pairs = Counter(zip(*dataset.values(["genre.label", "genre_pred.label"])))
    (true_genre, pred_genre), expected = max(
        ((pair, count) for pair, count in pairs.items() if count < len(dataset)), key=lambda kv: kv[1]
    )
    new_genre = next(x for x in dataset.distinct("genre.label") if x != true_genre and not pairs[(x, pred_genre)])
    # the headline changes before the table does: read the counts once they are every split's
    before = expect_panel_counts(page, genre_counts(app_data.name), "every split's counts", "24b_panel_all_splits")
    click_cell(page, true_genre, pred_genre, expected)
    shot(page, "25_panel_cell_clicked")

    # relabel the clips of that cell (the current view): its Genre field starts empty, in its error state
    dialog = open_form(page, labels["relabel_samples"])
    expect_field_error(page, dialog, "Genre", "Genre: pick one, or type a new genre below.", "26a_relabel_invalid",
                       role="combobox")
    choose(page, dialog, "Genre", new_genre)
    settle(dialog)
    shot(page, "26_relabel_form")
    execute(page, dialog, "27_relabel_done", f"Relabeled {expected} samples")
    relabeled = {**before, true_genre: before[true_genre] - expected, new_genre: before.get(new_genre, 0) + expected}
    assert genre_counts(app_data.name) == {k: v for k, v in relabeled.items() if v}  # the database agrees
    expect_panel_counts(page, relabeled, "the relabel, by itself", "27b_panel_after_relabel")
    shot(page, "27b_panel_after_relabel")

    # undo, on the clips the panel now shows in their new cell
    click_cell(page, new_genre, pred_genre, expected)
    dialog = open_form(page, labels["relabel_samples"])
    dialog.get_by_text("Undo the latest relabel", exact=True).click()
    settle(dialog)
    execute(page, dialog, "27c_undo_done", f"Reverted the latest relabel of {expected} samples")
    expect_panel_counts(page, before, "the undo, by itself", "27d_panel_after_undo")
    shot(page, "27d_panel_after_undo")
    assert load(app_data.name).count_sample_tags().get("genre:relabeled") is None

    # a new scope clears the stale cell selection, in place
    _switch_split(page, "all splits", "test split")
    expect(page.get_by_text("Click a cell to show those clips in the grid.")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text("Current model", exact=True)).to_be_visible()
    shot(page, "28_panel_test_split")


def _switch_split(page, current: str, label: str) -> None:
    """Pick another scope in the panel and wait until the panel shows it (its headline says which).

    The panel re-renders whenever its state arrives (several updates after
    it opens or the data changes), and a re-render can replace the dropdown
    between Playwright finding it and clicking it; on a busy machine that
    went on for 30 s. A person whose click missed clicks again: so does this,
    a few times, with the menu closed in between.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    tries = 6
    for attempt in range(tries):
        try:
            page.locator("[role='combobox']").filter(has_text=current).first.click(timeout=10_000)
            page.get_by_role("option", name=label).click(timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == tries - 1:
                shot(page, f"switch_split_{label.split()[0]}_failed")
                raise
            page.keyboard.press("Escape")
    headline = "every split:" if label == "all splits" else f"the {label.split()[0]} split:"
    expect(page.get_by_text(headline, exact=False).first).to_be_visible(timeout=STEP_TIMEOUT_MS)
    page.wait_for_timeout(1000)  # the matrix redraws after the headline


def panel_runs(page) -> str:
    """The text of the panel's Scheduled runs list."""
    return page.locator("xpath=//*[starts-with(normalize-space(), 'Scheduled runs')]/following::ul[1]").inner_text()


def expect_run(page, pattern: str, shot_name: str, toast: str | None = None) -> None:
    """The Runs list shows a line matching ``pattern`` (and a toast containing ``toast``), by itself."""
    from playwright.sync_api import expect

    try:
        wait_until(lambda: re.search(pattern, panel_runs(page)), STEP_TIMEOUT_MS / 1000, f"a run line matching {pattern!r}")
        if toast:
            expect(page.locator("[role=alert]").filter(has_text=toast).first).to_be_visible(timeout=30_000)
    except AssertionError as e:
        shot(page, shot_name + "_failed")
        raise AssertionError(f"{e}\nthe panel's runs list shows:\n{panel_runs(page)}") from None
    shot(page, shot_name)


def _queue_sdk(op, *args, **kwargs):
    """``op(..., delegate=True)`` off Playwright's event loop (FiftyOne would return a pending task on it)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: op(*args, **kwargs)).result()


def test_scheduled_runs_in_the_panel(page, labels, app_data, app_server):
    """The panel lists this dataset's runs: queued, running with stage and fraction, failed with its
    reason, completed with its summary, and says when one finishes. Maps are the completed run."""
    import fiftyone.operators as foo
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionProgress, ExecutionResult

    from operators.executor import stopped_reason

    app_server.executor.stop()  # nothing runs until it is back: a scheduled run stays queued

    # a run at a given stage, then stopped, recorded as the executor records them
    # (a real run passes its stages too quickly to catch one)
    service = DelegatedOperationService()
    other = _queue_sdk(foo.get_operator(f"{PLUGIN_NAME}/compute_genre_maps"), load(app_data.name),
                       brain_key="umap_b", similarity_key="sim_b", delegate=True).result["id"]
    expect_run(page, r"Maps · queued, waiting for the executor", "31_run_queued")
    service.set_running(other)
    service.set_progress(other, ExecutionProgress(0.42, "umap 2/4"))
    expect_run(page, r"Maps · running 42% · umap 2/4", "32_run_running")
    service.set_failed(other, result=ExecutionResult(error=stopped_reason(15)))
    expect_run(page, r"Maps · failed · Stopped: the App closed while this ran \(SIGTERM\)\. Schedule it again\.",
               "33_run_failed", toast="Maps failed: Stopped: the App closed")

    # the real one, from the form: queued until the executor is back, then completed
    dialog = open_form(page, labels["compute_genre_maps"])
    type_into(page, dialog, "Map brain key", "bad key")
    expect_field_error(page, dialog, "Map brain key",
                       "Map brain key: use letters, digits and underscores only (not 'bad key').", "29_maps_invalid")
    type_into(page, dialog, "Map brain key", "genre_umap")
    since = schedule(page, dialog, "30_maps_form")
    wait_until(lambda: panel_runs(page).splitlines()[0].startswith("Maps · queued"), 60, "the scheduled maps run")
    app_server.executor.start()
    timings = wait_delegated(app_data, "compute_genre_maps", since)
    record_timings(timings)
    n = len(app_data.genres_by_path)
    expect_run(page, rf"Maps · completed · Maps computed over {n} clips", "34_run_completed",
               toast=f"Maps finished: Maps computed over {n} clips")
    dataset = load(app_data.name)
    assert dataset.has_brain_run("genre_umap") and dataset.has_brain_run("genre_sim")
