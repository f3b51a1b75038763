"""The genre timeline and the tiles, seen in the real App (Chromium), as a user meets them.

A dataset of generated H.264 clips, predicted by the tiny trained model of
``support.model_assets`` (its features are planted: a clip's genre is in its
features, so the predictions are known): two 20 s clips whose features say
Action for 10 s and Horror after (one with a still picture, one whose picture
changes with its genre too), then six 3 s clips of one genre each. The App
server runs with our plugin, as in ``test_app.py``; the test then checks

- the tiles: only ``genre`` and ``genre_pred`` are ticked (shown on tiles),
  the rest one click away;
- the modal: with ``genre_timeline`` ticked there, the badge over the video
  changes with the playhead at 10 s (read from the pixels: the still clip's
  picture never changes, so only a badge can), while the grid keeps its fields;
- the *Genre timeline* panel: 8 slots in two runs for the 20 s clip, and it
  follows the modal to the next clips.

Screenshots go to ``test_output/app/timeline/`` (``scripts/screenshots.py``
copies the docs' ones).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from test_app import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PLUGINS_DIR,
    SHOTS_DIR,
    VIEWPORT,
    ensure_plugin_link,
    free_port,
    wait_until,
)

from fiftyone_genre import genres as g

from support.model_assets import FEATURE_FPS, ClipSpec, assets, features_config, make_features

pytestmark = [pytest.mark.app, pytest.mark.slow, pytest.mark.timeout(900)]

TIMELINE_SHOTS = SHOTS_DIR / "timeline"
STEP_TIMEOUT_MS = 120_000
SHORT_GENRES = list(g.GENRES)


def shot(page, name: str) -> Path:
    TIMELINE_SHOTS.mkdir(parents=True, exist_ok=True)
    path = TIMELINE_SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


# --------------------------------------------------------------------------- data


def _still_clip(path: Path, duration: float = 20.0, fps: float = 10.0) -> Path:
    """An H.264 clip whose picture never changes (grey with a darker band)."""
    from fiftyone_genre.demo.mediawriter import VideoTrack, cfr_times, write_media

    frame = np.full((180, 320, 3), 96, dtype=np.uint8)
    frame[120:150] = 60
    times = cfr_times(duration, fps)
    return write_media(path, VideoTrack((frame for _ in times), times, (320, 180), fps))


def _changing_features(first: str, second: str, duration: float = 20.0, change_at: float = 10.0):
    """Planted features: ``first``'s signal before ``change_at`` seconds, ``second``'s after."""
    a = make_features(ClipSpec("a", first, first, first, duration), seed=11)
    b = make_features(ClipSpec("b", second, second, second, duration), seed=12)
    cut = int(round(change_at * FEATURE_FPS))
    a.visual[cut:], a.audio[cut:] = b.visual[cut:], b.audio[cut:]
    return a


@dataclass
class TimelineData:
    name: str
    still: str  # filename of the still 20 s clip (first tile)
    mixed: str  # filename of the 20 s clip whose picture changes too (second)


@pytest.fixture(scope="module")
def timeline_data(tmp_path_factory) -> Iterator[TimelineData]:
    """The clips on disk, their planted features, and the predicted, persistent dataset."""
    import fiftyone as fo

    from fiftyone_genre.config import to_dict
    from fiftyone_genre.demo.clips import write_clip, write_mixed_clip
    from fiftyone_genre.features.cache import FeatureCache
    from fiftyone_genre.inference.predict import predict

    root = tmp_path_factory.mktemp("timeline")
    a = assets()
    cache = FeatureCache(root / "cache", features_config(root / "cache"))
    still = _still_clip(root / "still-Action-then-Horror.mp4")
    mixed = write_mixed_clip(root / "Action-then-Horror.mp4", [g.ACTION, g.HORROR], 10.0, fps=10, size=(320, 180))
    samples = []
    for path in (still, mixed):
        cache.put(path, _changing_features(g.ACTION, g.HORROR))
        samples.append(fo.Sample(filepath=str(path)))  # no single true genre
    for i, genre in enumerate(SHORT_GENRES):
        path = write_clip(root / f"{genre.replace(' ', '_')}.mp4", genre, duration=3.0, size=(320, 180), fps=10, seed=i)
        cache.put(path, make_features(ClipSpec(genre, genre, genre, genre, 3.0), seed=20 + i))
        samples.append(fo.Sample(filepath=str(path), genre=fo.Classification(label=genre)))
    name = f"timeline-{uuid.uuid4().hex[:8]}"
    dataset = fo.Dataset(name, persistent=True)  # the server process loads it by name
    try:
        dataset.add_samples(samples, progress=False)
        dataset.info[g.FEATURES_INFO_KEY] = {"cache_dir": str(root / "cache"), "config": to_dict(features_config(root / "cache"))}
        dataset.save()
        predict(dataset, a.model_dir)
        yield TimelineData(name, still.name, mixed.name)
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


@pytest.fixture(scope="module")
def app_url(timeline_data) -> Iterator[str]:
    """The App server with our plugin on a free loopback port (no executor: nothing is scheduled here)."""
    from fiftyone_genre.cli.app import stop_process

    ensure_plugin_link()
    TIMELINE_SHOTS.mkdir(parents=True, exist_ok=True)
    for old in TIMELINE_SHOTS.glob("*.png"):
        old.unlink()
    env = {**os.environ, "FIFTYONE_PLUGINS_DIR": str(PLUGINS_DIR), "FIFTYONE_DO_NOT_TRACK": "true"}
    port = free_port()
    log = open(TIMELINE_SHOTS / "server.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "fiftyone.server.main", "--port", str(port), "--address", "127.0.0.1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"App server exited with {proc.returncode}; see {TIMELINE_SHOTS / 'server.log'}")
        with urllib.request.urlopen(url + "/", timeout=5) as r:
            return r.status == 200

    try:
        wait_until(up, 120, "the App server to answer")
        yield url
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture(scope="module")
def page(app_url, timeline_data):
    """One tab on the dataset's grid, shared by the tests below (they continue each other's work)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        kwargs = {"executable_path": CHROMIUM} if os.path.exists(CHROMIUM) else {}
        browser = p.chromium.launch(headless=True, args=CHROMIUM_ARGS, **kwargs)
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script("window.localStorage.setItem('fiftyone-enterprise-tooltip-seen', 'true')")
        context.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
        context.set_default_timeout(30_000)
        tab = context.new_page()
        tab.goto(f"{app_url}/datasets/{timeline_data.name}", wait_until="load")
        try:
            tab.locator("[data-cy=looker]").first.wait_for(timeout=STEP_TIMEOUT_MS)
        except Exception:
            shot(tab, "00_not_loaded")
            raise
        tab.wait_for_timeout(2000)
        try:
            yield tab
        finally:
            context.close()
            browser.close()


# --------------------------------------------------------------------------- App actions


def ticked(scope, field: str) -> bool:
    return scope.locator(f"[data-cy=checkbox-{field}] input").first.is_checked()


def seek(page, seconds: float, duration: float = 20.0) -> None:
    """Click the modal's time ruler at ``seconds`` and wait until the player is within half a second of it."""
    ruler = page.locator("#modal [data-testid=timeline-ruler]").first
    ruler.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)  # a clip just opened loads its player first
    page.wait_for_timeout(1000)
    box = ruler.bounding_box()
    page.mouse.click(box["x"] + box["width"] * seconds / duration, box["y"] + box["height"] / 2)
    clock = page.locator("#modal [data-testid=timeline-playhead-time]")

    def there() -> bool:
        m = re.match(r"\s*(\d+):(\d+(?:\.\d+)?)", clock.inner_text())
        return bool(m) and abs(int(m[1]) * 60 + float(m[2]) - seconds) < 0.5

    wait_until(there, 30, f"the player to reach {seconds} s")
    page.mouse.move(VIEWPORT["width"] - 150, VIEWPORT["height"] - 40)  # over the sidebar: no hover effects on the video
    page.wait_for_timeout(1500)


def badge_pixels(page) -> np.ndarray:
    """The top half of the modal's video area, where FiftyOne draws the label badges."""
    import io

    from PIL import Image

    box = page.locator("#modal [data-cy=looker]").bounding_box()
    clip = {"x": box["x"], "y": box["y"], "width": box["width"] / 2, "height": box["height"] / 2}
    return np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB"), dtype=np.int16)


def changed_pixels(a: np.ndarray, b: np.ndarray) -> int:
    return int((np.abs(a - b).max(axis=2) > 40).sum())


def open_timeline_panel(page):
    """The *Genre timeline* panel below the video: its tab beside "Sample" (added if missing), split off."""
    modal = page.locator("#modal")
    tab = modal.locator("[data-cy=panel-tab-genre_timeline_panel]")
    if not tab.count():
        modal.locator("[data-cy=panel-tab-fo-sample-modal-plugin]").hover()
        modal.locator("[data-cy=new-panel-btn]").first.click()
        page.locator("[data-cy=new-panel-option-genre_timeline_panel]").click()
    content = modal.locator("[data-cy=panel-content-genre_timeline_panel]")
    tab.hover()
    split = modal.locator("button[title='Split vertically']")
    if split.count():
        split.first.click()  # video above, panel below
    if not content.is_visible():
        tab.click()
    content.wait_for(timeout=STEP_TIMEOUT_MS)
    return content


def bars(panel) -> int:
    """Bars drawn in the panel's plot (one per slot, plus one for the ground truth)."""
    return panel.locator(".js-plotly-plot g.trace.bars path").count()


def bars_become(panel, n: int) -> None:
    wait_until(lambda: bars(panel) == n, 60, f"{n} bars in the timeline plot (last: {bars(panel)})")


def legend(panel) -> list[str]:
    return sorted(t.text_content() for t in panel.locator(".js-plotly-plot g.legend text.legendtext").all())


# --------------------------------------------------------------------------- tests


def test_tiles_show_the_truth_and_the_prediction_only(page):
    """genre and genre_pred are ticked in their own group; the timeline beside them unticked; the rest collapsed."""
    from playwright.sync_api import expect

    shot(page, "01_tiles")
    assert page.locator("[data-cy='sidebar-group-entry-GENRE']").count() == 1
    assert ticked(page, g.GENRE_FIELD) and ticked(page, g.PRED_FIELD)
    for other in (g.TIMELINE_FIELD, g.PRED_VISUAL_FIELD, g.PRED_AUDIO_FIELD):
        assert not ticked(page, other), f"{other} is drawn on the tiles"
    # the other labels are one click away
    header = page.locator("[data-cy='sidebar-group-entry-OTHER LABELS']")
    header.click()
    expect(page.locator(f"[data-cy=checkbox-{g.PRED_VISUAL_FIELD}]")).to_be_in_viewport()
    shot(page, "01b_other_labels")
    header.click()


def test_the_timeline_badge_follows_the_playhead_and_the_grid_keeps_its_fields(page, timeline_data):
    from playwright.sync_api import expect

    page.locator("[data-cy=looker]").first.click()  # the still 20 s clip
    modal = page.locator("#modal")
    expect(modal.locator("[data-testid=timeline-ruler]")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    modal.locator(f"[data-cy=checkbox-{g.TIMELINE_FIELD}]").click()  # the badge: one tick in the modal
    expect(modal.locator(f"[data-cy=checkbox-{g.TIMELINE_FIELD}] input")).to_be_checked()

    crops = {}
    for t in (3.0, 7.0, 13.0, 17.0):
        seek(page, t)
        crops[t] = badge_pixels(page)
    shot(page, "02_badge_at_17s")
    same_before, same_after = changed_pixels(crops[3.0], crops[7.0]), changed_pixels(crops[13.0], crops[17.0])
    across = changed_pixels(crops[7.0], crops[13.0])
    assert same_before < 30 and same_after < 30, (same_before, same_after)
    assert across > 150, f"the badge did not change at 10 s ({across} pixels changed)"


def test_the_timeline_panel_draws_the_clip_and_follows_the_modal(page, timeline_data):
    from playwright.sync_api import expect

    panel = open_timeline_panel(page)
    expect(panel).to_contain_text(f"{timeline_data.still} · 20.0 s · 8 entries of <= 2.5 s, 2 run(s)", timeout=STEP_TIMEOUT_MS)
    expect(panel).to_contain_text("0.0-10.0 s Action")
    expect(panel).to_contain_text("10.0-20.0 s Horror")
    bars_become(panel, 8)
    assert legend(panel) == [g.ACTION, g.HORROR]
    # a slot says when and how sure; plotly's drag layer lies over the bars and does the hovering,
    # so the pointer goes to the bar's place (a hover on the path itself waits for a hit forever)
    box = panel.locator(".js-plotly-plot g.trace.bars path").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(panel.locator(".js-plotly-plot g.hovertext").first).to_contain_text("predicted: 0.0-2.5 s")

    page.locator("#modal [data-cy=nav-right-button]").click()  # the 20 s clip whose picture changes too
    expect(panel).to_contain_text(f"{timeline_data.mixed} · 20.0 s · 8 entries", timeout=STEP_TIMEOUT_MS)
    seek(page, 13.0)
    shot(page, "03_modal_timeline")

    page.locator("#modal [data-cy=nav-right-button]").click()  # a 3 s Action clip: two slots, one run, a truth row
    expect(panel).to_contain_text("2 entries of <= 2.5 s, 1 run(s)", timeout=STEP_TIMEOUT_MS)
    expect(panel).not_to_contain_text("no ground truth")
    bars_become(panel, 3)
    shot(page, "04_short_clip")

    page.mouse.click(VIEWPORT["width"] - 4, VIEWPORT["height"] - 4)  # close the modal
    expect(page.locator("#modal [data-testid=timeline-ruler]")).to_have_count(0, timeout=STEP_TIMEOUT_MS)
    assert ticked(page, g.GENRE_FIELD) and not ticked(page, g.TIMELINE_FIELD), "the modal's tick stays in the modal"
