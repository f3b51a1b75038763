"""Streaming decode: sampling by presentation time, audio/visual alignment, bad files."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from media_testutil import index_of, write_audio_only, write_video

from fiftyone_genre.media import ClipStream, MediaError, decode_all, decode_clip, mel_frames

SIZE = 32


def test_constant_frame_rate_29_97_samples_by_time(tmp_path):
    # Issue 15 changed the rule: each step takes the frame *shown* at its time
    # (the last frame with pts <= t_k, was: the first frame at or after t_k),
    # and the steps run to the end of the last frame's display time.
    p = write_video(tmp_path / "ntsc.mp4", duration=3.0, fps=Fraction(30000, 1001), audio=False)
    d = decode_all(p, fps=4, image_size=SIZE)
    period = 1001 / 30000
    end = 90 * period  # the last frame is shown until 3.003 s
    assert d.frames.shape == (math.ceil(end * 4), 3, SIZE, SIZE)
    for k, t in enumerate(d.timestamps):
        # the frame on screen at k/4 s: never late, never more than a frame early
        assert k / 4 - period - 1e-4 < t <= k / 4 + 1e-4, (k, t)
    # no drift: the 30-vs-29.97 difference would put step 11 a frame off by now
    assert abs(d.timestamps[-1] - math.floor(12 / 4 / period + 1e-6) * period) < 1e-3


def test_variable_frame_rate_takes_the_frame_shown_at_each_step(tmp_path):
    times = [0.0, 0.1, 0.13, 0.4, 0.45, 0.9, 1.0, 1.02, 1.3, 1.8, 1.9]
    p = write_video(tmp_path / "vfr.mp4", duration=2.0, frame_times=times)
    d = decode_all(p, fps=4, image_size=SIZE)
    expected = [max(i for i, t in enumerate(times) if t <= k / 4 + 1e-6) for k in range(8)]
    assert len(d.timestamps) == 8  # steps 0 .. 1.75 s: the last frame (1.9 s) is shown until ~1.94 s
    np.testing.assert_allclose(d.timestamps, [times[i] for i in expected], atol=1e-3)
    # the pixels are those of the chosen frames (frame i is grey level 10 + 10 i)
    assert [index_of(f) for f in d.frames] == expected
    # a gap longer than a step repeats the frame instead of shifting later steps
    assert expected[2] == expected[3] == 4 and expected[6] == expected[7] == 8


def test_sampling_rate_is_configurable(tmp_path):
    p = write_video(tmp_path / "a.mp4", duration=2.0, fps=25, audio=False)
    d = decode_all(p, fps=2, image_size=SIZE)
    np.testing.assert_allclose(d.step_times, [0, 0.5, 1.0, 1.5])
    assert np.all(np.abs(d.timestamps - d.step_times) < 0.04 + 1e-6)


def test_audio_window_is_centred_on_its_step(tmp_path):
    # silence, then a 1 kHz tone from 1.5 s: the window of step k (t_k = k/4,
    # 1 s wide, centred) must show the onset at (1.5 - (t_k - 0.5)) / 10 ms.
    p = write_video(tmp_path / "tone.mp4", duration=3.0, tone_hz=1000, tone_start=1.5)
    d = decode_all(p, fps=4, image_size=SIZE)
    n_frames = mel_frames(16000, 1.0)
    assert d.has_audio and d.mels.shape == (12, 1, 64, n_frames)
    band = int(d.mels[-1, 0, :, n_frames // 2].argmax())
    row = d.mels[:, 0, band, :].numpy()
    threshold = (row.max() + row.min()) / 2
    onsets = {}
    for k in range(12):
        on = np.nonzero(row[k] > threshold)[0]
        onsets[k] = int(on[0]) if len(on) else None
    for k in range(5):  # window ends at t_k + 0.5 <= 1.5: no tone yet
        assert onsets[k] is None, (k, onsets)
    for k in (5, 6, 7):  # onset column = (tone - window start - frame length) / hop
        expected = math.ceil((1.5 - (k / 4 - 0.5) - 0.025) / 0.010)
        assert abs(onsets[k] - expected) <= 2, (k, onsets[k], expected)
    for k in range(8, 12):
        assert onsets[k] == 0
    # the centre frame (the step's own moment) has the tone iff t_k is past the onset
    centre = row[:, n_frames // 2] > threshold
    assert not centre[:6].any() and centre[7:].all()


def test_no_audio_track_gives_zeros_not_an_error(tmp_path):
    p = write_video(tmp_path / "silent_film.mp4", duration=1.0, audio=False)
    d = decode_all(p, fps=4, image_size=SIZE)
    assert d.has_audio is False
    assert d.mels.shape[0] == d.frames.shape[0] == 4
    assert torch.count_nonzero(d.mels) == 0


def test_streaming_yields_bounded_chunks(tmp_path):
    p = write_video(tmp_path / "long.mp4", duration=3.0, fps=25)
    stream = decode_clip(p, fps=8, image_size=SIZE, chunk_size=5)
    frames = mels = 0
    for c in stream:
        # bounded by the chunk size plus what one packet (frames) or one
        # 1-second mel batch (8 steps at 8 fps) can add at once
        assert c.num_frames <= 5 + 2 and c.num_mels <= 5 + 8
        assert c.frame_start == frames and c.mel_start == mels  # contiguous, in order
        frames += c.num_frames
        mels += c.num_mels
    assert frames == mels == stream.num_steps == 24
    assert stream.has_audio and abs(stream.duration - 3.0) < 0.05


def _bad_file(kind: str, d):
    """One of the broken inputs real collections contain."""
    if kind == "zero":
        (d / "zero.mp4").write_bytes(b"")
        return d / "zero.mp4"
    if kind == "text":
        (d / "text.mp4").write_text("hello, not a video")
        return d / "text.mp4"
    if kind == "audio_only":
        return write_audio_only(d / "sound.m4a")
    if kind == "directory":
        (d / "folder.mp4").mkdir()
        return d / "folder.mp4"
    return d / "missing.mp4"


@pytest.mark.parametrize(
    "kind, message",
    [
        ("zero", "zero-byte"),
        ("text", "not a readable video"),
        ("audio_only", "no video stream (an audio-only file)"),
        ("directory", "is a directory"),
        ("missing", "not found"),
    ],
)
def test_bad_files_raise_media_error_naming_the_file(tmp_path, kind, message):
    path = _bad_file(kind, tmp_path)
    with pytest.raises(MediaError) as e:
        list(ClipStream(path, fps=4, image_size=SIZE))
    assert str(path) in str(e.value) and message in str(e.value)


def test_truncated_file_is_an_error(tmp_path):
    p = write_video(tmp_path / "full.mp4", duration=3.0)
    data = p.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cut.mp4"):
        decode_all(cut, fps=4, image_size=SIZE)


def test_audio_format_change_mid_stream_keeps_decoding(tmp_path):
    # Broadcast MPEG-TS recordings switch audio layouts: stereo 44.1 kHz at
    # 440 Hz for 2 s, then mono 22.05 kHz at 880 Hz. Both halves must be heard.
    first = write_video(tmp_path / "a.ts", duration=2.0, tone_hz=440, audio_rate=44100, channels=2)
    second = write_video(tmp_path / "b.ts", duration=2.0, tone_hz=880, audio_rate=22050, channels=1, start=2.0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    d = decode_all(joined, fps=4, image_size=SIZE)
    assert d.has_audio and d.frames.shape[0] == d.mels.shape[0] == 16
    centre = d.mels.shape[-1] // 2
    peaks = [int(d.mels[k, 0, :, centre].argmax()) for k in range(16)]
    assert len(set(peaks[1:7])) == 1 and len(set(peaks[10:15])) == 1, peaks
    assert peaks[12] > peaks[4]  # the second half's tone is an octave higher


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p", "yuv444p", "rgb24", "gray", "yuv420p10le"])
def test_frame_scaler_matches_an_area_resize_for_any_pixel_format(pix_fmt):
    import av
    from av.video.reformatter import VideoReformatter

    from fiftyone_genre.media import FrameScaler

    # smooth gradients and sharp checker edges, 320x240 down to exactly a quarter
    yy, xx = np.mgrid[0:240, 0:320]
    rgb = np.stack([xx * 255 // 319, yy * 255 // 239, ((xx // 24 + yy // 24) % 2) * 200 + 20], -1).astype(np.uint8)
    frame = VideoReformatter().reformat(av.VideoFrame.from_ndarray(rgb, format="rgb24"), format=pix_fmt)
    out = FrameScaler(60, 80)(frame)
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8
    # reference: the frame as it looks at full size, averaged over each 4x4 block
    full = VideoReformatter().reformat(frame, format="rgb24").to_ndarray().astype(np.float64)
    expected = full.reshape(60, 4, 80, 4, 3).mean(axis=(1, 3))
    psnr = 10 * np.log10(255**2 / ((out - expected) ** 2).mean())
    assert psnr > 35, (pix_fmt, psnr)  # swscale's direct BILINEAR scores ~26 dB here


@pytest.mark.parametrize("threads", [1, 2])
def test_helper_thread_changes_nothing_but_speed(tmp_path, threads):
    # The helper thread (on with 2+ decoder threads) must give bit-identical
    # steps to the inline path: same frames, times and mel windows, in order.
    times = [0.0, 0.1, 0.13, 0.4, 0.45, 0.9, 1.0, 1.02, 1.3, 1.8, 1.9, 2.6, 2.62]
    p = write_video(tmp_path / "vfr_tone.mp4", duration=3.0, frame_times=times, tone_hz=700, tone_start=1.2)
    inline = decode_all(p, fps=4, image_size=SIZE, decode_threads=threads, helper_thread=False, chunk_size=3)
    helped = decode_all(p, fps=4, image_size=SIZE, decode_threads=threads, helper_thread=True, chunk_size=3)
    assert torch.equal(inline.frames, helped.frames) and torch.equal(inline.mels, helped.mels)
    np.testing.assert_array_equal(inline.timestamps, helped.timestamps)
    assert inline.has_audio and helped.has_audio


def test_helper_thread_errors_surface_and_no_thread_is_left(tmp_path, monkeypatch):
    import threading

    from fiftyone_genre import media

    p = write_video(tmp_path / "clip.mp4", duration=2.0)
    before = threading.active_count()
    # a consumer that stops after the first chunk must not leave the helper running
    stream = decode_clip(p, fps=8, image_size=SIZE, chunk_size=2, helper_thread=True)
    next(iter(stream))
    stream.close()
    del stream
    import gc

    gc.collect()
    assert threading.active_count() == before

    def broken(self, frame):
        raise MemoryError("no room for a frame")

    monkeypatch.setattr(media.FrameScaler, "__call__", broken)
    with pytest.raises(MediaError, match="clip.mp4: out of memory"):
        decode_all(p, fps=4, image_size=SIZE, helper_thread=True)
    assert threading.active_count() == before
