"""`make demo`'s pipeline, small: every stage runs and a re-run reuses what exists."""

from __future__ import annotations

import json


def test_demo_end_to_end_and_rerun(tmp_path, dataset_name, capsys):
    import fiftyone as fo

    from fiftyone_genre import genres as g
    from fiftyone_genre.demo.pipeline import run_demo

    kwargs = dict(dataset_name=dataset_name, clips_per_genre=3, duration=2.0, ablate=False)
    report = run_demo(tmp_path, **kwargs)
    out = capsys.readouterr().out
    assert "Open it in the App" in out

    ds = fo.load_dataset(dataset_name)
    assert len(ds) == 6 * 3
    assert set(ds.distinct(f"{g.GENRE_FIELD}.label")) == set(g.GENRES)
    assert len(ds.exists(g.PRED_FIELD)) == len(ds)  # every clip predicted
    assert (tmp_path / "model" / "best.pt").is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == report.metrics and 0.0 <= metrics["accuracy"] <= 1.0
    assert "genre_umap" in ds.list_brain_runs()

    # a re-run adds no samples and decodes nothing again
    run_demo(tmp_path, **kwargs)
    out = capsys.readouterr().out
    assert len(fo.load_dataset(dataset_name)) == 6 * 3
    assert "0 new sample(s)" in out
    assert "0 extracted, 18 already cached" in out
