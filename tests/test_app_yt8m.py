"""A YouTube-8M dataset without its videos opens in the real App: grid, modal and Genre panel, no errors.

Features-only samples all show one placeholder clip; this drives the real
App server and Chromium (as ``tests/test_app.py`` does) over a dataset that
mixes them with real videos, after import, remap, split, train and predict,
and fails on any page error, any HTTP error from the server, any error
dialog or "failed to load" text. Screenshots go to ``test_output/app/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from test_app import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PLUGINS_DIR,
    SHOTS_DIR,
    STEP_TIMEOUT_MS,
    VIEWPORT,
    ensure_plugin_link,
    free_port,
    shot,
    wait_until,
)

pytestmark = [pytest.mark.app, pytest.mark.slow, pytest.mark.timeout(900)]

#: Text the App shows when media or a query fails.
ERROR_TEXT = re.compile(r"(?i)failed to load|something went wrong|may not exist|unsupported")
#: The one page error tolerated, thrown inside FiftyOne's router (see ``_Errors._page_error``).
ROUTER_RACE = "entry is loading"


@pytest.fixture(scope="module")
def yt8m_dataset(tmp_path_factory) -> Iterator[str]:
    """Records with and without a local video, remapped, split, trained on and predicted."""
    import fiftyone as fo

    from fiftyone_genre import genres as g
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.demo import synth
    from fiftyone_genre.inference.predict import predict
    from fiftyone_genre.labels.remap import remap
    from fiftyone_genre.labels.split import split_dataset
    from fiftyone_genre.modeling.train import train
    from fiftyone_genre.sources import import_yt8m

    tmp = tmp_path_factory.mktemp("app_yt8m")
    classes = {"Cartoon": g.ANIMATION, "Football": g.SPORTS, "Science fiction film": g.SCIENCE_FICTION}
    m = synth.generate(
        tmp / "tree", "yt8m", clips_per_class=8, classes=classes, multilabel=0.0, paired_fraction=0.15,
        yt8m_levels=("video",), size=(64, 48), fps=8.0, duration=2.0, seed=4,
    )  # fmt: skip
    name = f"app-yt8m-{uuid.uuid4().hex[:8]}"
    ds = fo.Dataset(name, persistent=True)
    try:
        report = import_yt8m(ds, m.root, features_dir=tmp / "store")
        assert 0 < report.features_only < report.imported
        remap(ds)
        split_dataset(ds)
        cfg = load_experiment("yt8m", train={"epochs": 3, "device": "cpu"}, predict={"device": "cpu"})
        train(ds, cfg, tmp / "model")
        predict(ds, tmp / "model")
        yield name
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    from fiftyone_genre.cli.app import stop_process

    ensure_plugin_link()
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ, FIFTYONE_PLUGINS_DIR=str(PLUGINS_DIR), FIFTYONE_DO_NOT_TRACK="true")
    log = open(SHOTS_DIR / "server_yt8m.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "fiftyone.server.main", "--port", str(port), "--address", "127.0.0.1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        import urllib.request

        if proc.poll() is not None:
            raise RuntimeError(f"App server exited with {proc.returncode}; see {SHOTS_DIR / 'server_yt8m.log'}")
        with urllib.request.urlopen(url + "/", timeout=5) as r:
            return r.status == 200

    try:
        wait_until(up, 120, "the App server to answer")
        yield url
    finally:
        stop_process(proc)
        log.close()


class _Errors:
    """Everything that would be an error the user sees, or the App hides."""

    def __init__(self, page):
        self.page_errors: list[str] = []
        self.bad_responses: list[str] = []
        page.on("pageerror", self._page_error)
        page.on("response", lambda r: r.status >= 400 and self.bad_responses.append(f"{r.status} {r.url[:200]}"))

    def _page_error(self, error) -> None:
        # FiftyOne's router throws "entry is loading" (uncaught, nothing shown, the App goes
        # on) when a state change reads the route while a reload of it is still pending. Seen
        # in about 1 of 4 runs when the Genre panel opens just after a page load; no call of
        # this plugin's panel (timer off, same rate) was found to start that reload.
        if str(error) != ROUTER_RACE:
            self.page_errors.append(str(error)[:300])

    def check(self, page, where: str) -> None:
        assert not self.page_errors, f"{where}: page errors {self.page_errors}"
        assert not self.bad_responses, f"{where}: HTTP errors {self.bad_responses}"
        assert page.get_by_role("alertdialog").count() == 0, f"{where}: an error dialog is open"
        found = sorted({m.group(0) for m in ERROR_TEXT.finditer(page.inner_text("body"))})
        assert not found, f"{where}: the page says {found}"


def test_a_features_only_dataset_opens_without_errors(server, yt8m_dataset):
    import fiftyone as fo
    from playwright.sync_api import expect, sync_playwright

    from fiftyone_genre import genres as g

    ds = fo.load_dataset(yt8m_dataset)
    record = ds.match_tags(g.FEATURES_ONLY_TAG).first()
    with sync_playwright() as p:
        kwargs = {"executable_path": CHROMIUM} if os.path.exists(CHROMIUM) else {}
        browser = p.chromium.launch(headless=True, args=CHROMIUM_ARGS, **kwargs)
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script("window.localStorage.setItem('fiftyone-enterprise-tooltip-seen', 'true')")
        context.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
        context.set_default_timeout(30_000)
        page = context.new_page()
        errors = _Errors(page)
        try:
            page.goto(f"{server}/datasets/{yt8m_dataset}", wait_until="load")
            expect(page.locator("[data-cy='entry-counts']")).to_have_text(
                re.compile(rf"^\s*{len(ds)} samples\s*$"), timeout=STEP_TIMEOUT_MS
            )
            page.wait_for_timeout(8000)  # the tiles fetch their media and draw
            shot(page, "yt8m_01_grid")
            errors.check(page, "grid")

            page.goto(f"{server}/datasets/{yt8m_dataset}?id={record.id}", wait_until="load")
            expect(page.get_by_text(record[g.YT8M_ID_FIELD]).first).to_be_visible(timeout=STEP_TIMEOUT_MS)
            page.wait_for_timeout(5000)  # the placeholder clip loads and plays
            shot(page, "yt8m_02_modal_features_only")
            errors.check(page, "modal of a features-only sample")
            page.goto(f"{server}/datasets/{yt8m_dataset}", wait_until="load")  # the grid again
            expect(page.locator("[data-cy='entry-counts']")).to_have_text(
                re.compile(rf"^\s*{len(ds)} samples\s*$"), timeout=STEP_TIMEOUT_MS
            )

            page.locator("[data-cy='new-panel-btn']").first.click()
            page.locator("[data-cy='new-panel-option-genre_panel']").click()
            page.locator(".js-plotly-plot").wait_for(timeout=STEP_TIMEOUT_MS)
            expect(page.get_by_text("Clips per genre", exact=True)).to_be_visible()
            page.wait_for_timeout(1500)
            shot(page, "yt8m_03_genre_panel")
            errors.check(page, "Genre panel")
        except Exception:
            shot(page, "yt8m_failed")
            raise
        finally:
            context.close()
            browser.close()
