"""The one PyAV writer: lazy tracks, encoder formats, and no half-written file under the final name."""

from __future__ import annotations

import numpy as np
import pytest

from fiftyone_genre.demo.mediawriter import AudioTrack, VideoTrack, cfr_times, write_media

from support.media import streams


def _grey_frames(n: int, size=(32, 32)):
    return (np.full((size[1], size[0], 3), 40 + 8 * i, np.uint8) for i in range(n))


def test_interrupted_write_leaves_nothing(tmp_path):
    def frames():
        yield from _grey_frames(3)
        raise RuntimeError("renderer crashed")

    target = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_media(target, VideoTrack(frames(), cfr_times(1.0, 10), (32, 32), 10))
    assert list(tmp_path.iterdir()) == []


def test_packed_stereo_pcm_keeps_both_channels(tmp_path):
    """s16 PCM is packed (channels interleaved): left carries the tone, right stays silent."""
    rate, n = 16000, 16000
    t = np.arange(n) / rate
    samples = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), np.zeros(n)]).astype(np.float32)
    video = VideoTrack(_grey_frames(10), cfr_times(1.0, 10), (32, 32), 10, codec="mpeg4", options={})
    path = write_media(tmp_path / "s.avi", video, AudioTrack.from_array(samples, rate, codec="pcm_s16le"))
    s = streams(path)
    assert s["audio"] == ("pcm_s16le", rate) and len(s["times"]) == 10
    left, right = s["samples"].reshape(-1, 2).T.astype(np.float64)
    assert np.abs(left).max() > 0.4 * 32767 and np.abs(right).max() < 0.01 * 32767


def test_needs_a_track(tmp_path):
    with pytest.raises(ValueError, match="video or an audio stream"):
        write_media(tmp_path / "x.mp4")
