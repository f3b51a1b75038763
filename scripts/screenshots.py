"""Refresh the screenshots in ``docs/screenshots/`` from a browser run of the App.

    python scripts/screenshots.py        (or: make screenshots)

Runs ``tests/test_app.py`` (the real App server, a delegated executor and
headless Chromium drive every form and the Genre panel) and
``tests/test_app_timeline.py`` (tiles, the timeline badge and the Genre
timeline panel in a clip's modal) with their screenshots going to a temporary
folder, then copies the ones the docs show. Tests never
write into the checkout; this script is the only thing that updates
``docs/screenshots/``, and only when the whole browser run passed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS_SHOTS = REPO / "docs" / "screenshots"

#: (test_app.py screenshot, docs/screenshots name): what docs/app.md and the README show.
PUBLISHED = [
    ("01_operator_browser.png", "operator_browser.png"),
    ("03_import_form.png", "form_import.png"),
    ("02_import_invalid.png", "form_import_invalid.png"),
    ("04_import_done.png", "import_result.png"),
    ("06_remap_form.png", "form_remap.png"),
    ("05_remap_invalid.png", "form_remap_invalid.png"),
    ("09_split_form.png", "form_split.png"),
    ("08_split_invalid.png", "form_split_invalid.png"),
    ("11_relabel_invalid.png", "form_relabel_no_selection.png"),
    ("13_features_form.png", "form_features.png"),
    ("12_features_invalid.png", "form_features_invalid.png"),
    ("15_train_form.png", "form_train.png"),
    ("14b_train_unwritable.png", "form_train_invalid.png"),
    ("17_predict_form.png", "form_predict.png"),
    ("16_predict_invalid.png", "form_predict_invalid.png"),
    ("20_evaluate_form.png", "form_evaluate.png"),
    ("19_evaluate_invalid.png", "form_evaluate_invalid.png"),
    ("21_evaluate_done.png", "evaluate_result.png"),
    ("23_confusion_form.png", "form_confusion.png"),
    ("22_confusion_invalid.png", "form_confusion_invalid.png"),
    ("26_relabel_form.png", "form_relabel.png"),
    ("26a_relabel_invalid.png", "form_relabel_invalid.png"),
    ("30_maps_form.png", "form_maps.png"),
    ("29_maps_invalid.png", "form_maps_invalid.png"),
    ("24_panel.png", "panel.png"),
    ("25_panel_cell_clicked.png", "panel_cell_clicked.png"),
    ("27b_panel_after_relabel.png", "panel_after_relabel.png"),
    ("27d_panel_after_undo.png", "panel_after_undo.png"),
    ("31_run_queued.png", "runs_queued.png"),
    ("32_run_running.png", "runs_running.png"),
    ("33_run_failed.png", "runs_failed.png"),
    ("34_run_completed.png", "runs_completed.png"),
    ("28_panel_test_split.png", "panel_counts_and_run.png"),
    ("timeline/01_tiles.png", "tiles.png"),
    ("timeline/03_modal_timeline.png", "modal_timeline.png"),
]
#: The browser tests that produce them, in this order (test_app.py clears its folder's top level first).
BROWSER_TESTS = ("test_app.py", "test_app_timeline.py")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fiftyone-genre-shots-") as tmp:
        env = {**os.environ, "FIFTYONE_GENRE_APP_SHOTS": tmp}
        tests = [str(REPO / "tests" / name) for name in BROWSER_TESTS]
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
        if subprocess.run(cmd, cwd=REPO, env=env, check=False).returncode != 0:
            print(f"browser run failed; docs/screenshots/ left as it was (shots in {tmp} are deleted)", file=sys.stderr)
            return 1
        missing = sorted({name for name, _ in PUBLISHED if not (Path(tmp) / name).is_file()})
        if missing:
            print(f"browser run did not produce: {', '.join(missing)}", file=sys.stderr)
            return 1
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        for source, target in PUBLISHED:
            shutil.copy(Path(tmp) / source, DOCS_SHOTS / target)
            print(f"docs/screenshots/{target}")
        timings = Path(tmp) / "delegated_timings.json"
        if timings.is_file():
            print(timings.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
