"""`make demo`'s pipeline, small: every stage runs and a re-run reuses what exists."""

from __future__ import annotations

import json


def test_demo_end_to_end_and_rerun(tmp_path, dataset_name, capsys):
    import fiftyone as fo

    from fiftyone_genre import genres as g
    from fiftyone_genre.demo.pipeline import MIXED_VIEW, run_demo

    kwargs = dict(dataset_name=dataset_name, clips_per_genre=3, duration=2.0, ablate=False, mixed_clips=1, mixed_duration=10.0)
    report = run_demo(tmp_path, **kwargs)
    out = capsys.readouterr().out
    assert "Open it in the App" in out

    ds = fo.load_dataset(dataset_name)
    assert len(ds) == 6 * 3 + 1
    assert set(ds.distinct(f"{g.GENRE_FIELD}.label")) == set(g.GENRES)
    assert len(ds.exists(g.PRED_FIELD)) == len(ds)  # every clip predicted, the mixed one too
    assert (tmp_path / "model" / "best.pt").is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == report.metrics and 0.0 <= metrics["accuracy"] <= 1.0
    assert "genre_umap" in ds.list_brain_runs()

    # the mixed clip (Action for 5 s, then Romance): no ground truth, never split or scored, a timeline
    mixed = ds.load_saved_view(MIXED_VIEW)
    assert len(mixed) == 1
    clip = mixed.first()
    assert clip.filename == "Action-then-Romance-00.mp4"
    assert clip[g.GENRE_FIELD] is None and clip[g.SPLIT_FIELD] is None
    assert len(clip[g.TIMELINE_FIELD].detections) == 4  # 10 s in slots of 2.5 s
    assert clip.metadata.duration == 10.0
    assert "change genre after 5 s" in out
    # tiles show the truth and the prediction by name, the rest one click away
    assert ds.app_config.active_fields.paths == [g.GENRE_FIELD, g.PRED_FIELD]

    # a re-run adds no samples and decodes nothing again
    run_demo(tmp_path, **kwargs)
    out = capsys.readouterr().out
    assert len(fo.load_dataset(dataset_name)) == 6 * 3 + 1
    assert "0 new sample(s)" in out
    assert "0 extracted, 19 already cached" in out
