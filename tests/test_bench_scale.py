"""The scale benchmark's smoke run: every stage runs and the table has its rows and targets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "real" / "ucf101" / "ucfTrainTestlist"


@pytest.mark.skipif(not REAL.is_dir(), reason=f"the real UCF101 lists are not at {REAL} (../shared absent)")
def test_bench_scale_quick_runs_every_stage(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_scale.py"), "--quick", "--work", str(tmp_path / "work"),
         "--json", str(out)],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    table = proc.stdout[proc.stdout.index("| stage"):]
    for stage in ("import", "re-import", "remap", "split", "check-leakage", "features", "train", "predict",
                  "evaluate"):
        assert f"| {stage} " in table, stage
    assert "<= 2x floor" in table and "RSS 48/16" in table and "per-clip 48/16" in table
    assert "floors @48: import probe_s" in proc.stdout
    import json

    stages = json.loads(out.read_text())["stages"]
    assert stages["train"]["48"]["ok"] and stages["train"]["48"]["rss_mb"] > 0
