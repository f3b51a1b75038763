"""Streaming decode: sampling by presentation time, audio/visual alignment, bad files."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from fiftyone_genre.features.audio import mel_frames
from fiftyone_genre.features.decode import ClipStream, MediaError, decode_all, decode_clip

from support.media import index_of, write_audio_only, write_video
from support.threads import ends_within

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

    from fiftyone_genre.features.sampling import FrameScaler

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

    from fiftyone_genre.features import sampling

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

    monkeypatch.setattr(sampling.FrameScaler, "__call__", broken)
    with pytest.raises(MediaError, match="clip.mp4: out of memory"):
        decode_all(p, fps=4, image_size=SIZE, helper_thread=True)
    assert threading.active_count() == before


# --- issue 15: the decoder's parts alone, and the hard inputs -------------------------------
def test_step_sampler_gives_each_step_the_frame_on_screen():
    from fiftyone_genre.features.sampling import StepSampler

    s = StepSampler(fps=4)
    released = [s.offer(t, f"f{t}") for t in (0.0, 1.0, 2.0)]
    assert released == [None, ("f0.0", 0.0, 4), ("f1.0", 1.0, 4)]
    assert s.finish(1.0) == ("f2.0", 2.0, 4) and s.next_k == 12  # the tail up to 3.0 s
    # a frame that no step shows is dropped; out-of-order frames are ignored
    s = StepSampler(fps=1)
    assert s.offer(0.0, "a") is None and s.offer(0.5, "b") == ("a", 0.0, 1)
    assert s.offer(0.3, "late") is None and s.offer(0.9, "c") is None  # b served no step
    assert s.finish(0.2) == ("c", 0.9, 1)  # step 1 at 1.0 s shows c (on screen until 1.1 s)


def test_step_sampler_clips_timestamp_gaps():
    from fiftyone_genre.features.sampling import StepSampler

    s = StepSampler(fps=4, max_gap_s=2.0)
    s.offer(0.0, "a")
    s.offer(0.5, "b")
    out = s.offer(3600.5, "c")  # an hour-long jump
    assert out == ("b", 0.5, 8)  # steps 0.5 .. 2.25 s: at most max_gap_s of repeats
    assert s.gaps == [(0.5, 3598.0)] and s.last_time == 2.5
    assert s.finish(0.25) == ("c", 2.5, 1)
    # a single frame with a bogus hour-long duration: capped the same way
    s = StepSampler(fps=4, max_gap_s=2.0)
    s.offer(0.0, "only")
    assert s.finish(3600.0) == ("only", 0.0, 8)


def test_mel_grid_windows_match_a_direct_analysis_of_each_window():
    from fiftyone_genre.features.audio import MelGrid, MelWindows

    mel = MelWindows(16000, 32, 0.5)
    grid = MelGrid(mel, fps=4)
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(16000 * 3).astype(np.float32)
    for piece in np.array_split(signal, 37):  # arbitrary batch boundaries
        grid.add(piece, 0 if grid.origin is None else None)
    list(grid.finish(12))
    windows = list(grid.ready)
    assert len(windows) == 12 and windows[0].shape == (32, mel.num_frames)
    half = mel.window_samples // 2
    padded = np.concatenate([np.zeros(half, np.float32), signal, np.zeros(16000, np.float32)])
    for k in (0, 5, 11):  # window k is centred on k/4 s (the grid snaps to the 10 ms hop)
        start = round(round(k * 16000 / 4) / mel.hop) * mel.hop
        direct = mel.frames(padded[start : start + mel.window_samples])[:, : mel.num_frames]
        np.testing.assert_allclose(windows[k], direct, atol=1e-4)


def test_mel_grid_pads_a_long_silent_tail_in_pieces():
    from fiftyone_genre.features.audio import MelGrid, MelWindows

    grid = MelGrid(MelWindows(16000, 16, 1.0), fps=4)
    grid.add(np.ones(1600, np.float32), 0)
    largest = 0
    for _ in grid.finish(4 * 600):  # 10 minutes of steps after 0.1 s of sound
        largest = max(largest, len(grid.buf))
        grid.ready.clear()  # the caller hands windows on between pieces
    assert grid.next_k == 2400
    assert largest <= 16000 * (MelGrid.PAD_PIECE_S + 1)  # never the whole tail at once


def test_audio_feed_resamples_across_a_format_change():
    import av

    from fiftyone_genre.features.audio import AudioFeed

    got: list = []
    feed = AudioFeed(16000, lambda samples, start: got.append((len(samples), start)), submit=lambda job: job())

    def frame(rate, channels, n, pts):
        f = av.AudioFrame.from_ndarray(np.zeros((channels, n), np.float32), format="fltp",
                                       layout="stereo" if channels == 2 else "mono")
        f.sample_rate, f.pts, f.time_base = rate, pts, Fraction(1, rate)
        return f

    for i in range(44):  # 1 s of 44.1 kHz stereo starting at 0.25 s
        feed.write(frame(44100, 2, 1000, 11025 + i * 1000), t0=0.0)
    for i in range(22):  # then 1 s of 22.05 kHz mono
        feed.write(frame(22050, 1, 1000, i * 1000), t0=0.0)
    feed.close()
    assert got[0][1] == 4000  # the first batch is placed at 0.25 s
    assert all(start is None for _, start in got[1:])
    total = sum(n for n, _ in got)
    assert abs(total - (44000 / 44100 + 22000 / 22050) * 16000) < 64, total


@pytest.mark.parametrize("fail_at", [1, 4], ids=["start-up", "mid-stream"])
def test_helper_thread_failure_ends_the_decode_within_seconds(tmp_path, monkeypatch, fail_at):
    import threading

    from fiftyone_genre.features import pipeline

    p = write_video(tmp_path / "clip.mp4", duration=4.0, fps=25, tone_hz=440)
    calls = {"n": 0}
    real = pipeline.SerialWorker._run

    def failing(self, job):  # the helper's own machinery breaks on its thread, not a job
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise RuntimeError("helper broke")
        return real(self, job)

    monkeypatch.setattr(pipeline.SerialWorker, "_run", failing)
    before = threading.active_count()
    error = ends_within(20, lambda: decode_all(p, fps=8, image_size=SIZE, helper_thread=True, chunk_size=2))
    assert isinstance(error, RuntimeError) and "helper broke" in str(error)
    assert threading.active_count() == before


def test_sparse_one_fps_video_stays_aligned_and_keeps_its_tail(tmp_path):
    # 5 frames at 1 fps: 20 steps at 4 fps, each showing the frame on screen
    p = write_video(tmp_path / "slides.mp4", duration=5.0, fps=1, tone_hz=1000, tone_start=2.0)
    d = decode_all(p, fps=4, image_size=SIZE)
    assert len(d.timestamps) == 20 and d.mels.shape[0] == 20
    np.testing.assert_allclose(d.timestamps, np.repeat([0.0, 1.0, 2.0, 3.0, 4.0], 4), atol=1e-3)
    assert [index_of(f) for f in d.frames] == list(np.repeat(range(5), 4))
    assert np.all(d.timestamps <= d.step_times + 1e-6)  # never a frame from the future
    # the tone starts at 2.0 s: the step at 2.0 s hears it at its centre, the frame is 2's
    centre = d.mels.shape[-1] // 2
    loud = d.mels[:, 0, :, centre].max(dim=1).values
    assert loud[8] > loud[7] + 0.5 and index_of(d.frames[8]) == 2


def _write_rotated(path, degrees: int):
    """A 64x48 clip with an asymmetric picture and a display matrix rotating it by ``degrees``."""
    import av

    img = np.zeros((48, 64, 3), np.uint8)
    img[:24, :32] = 250  # bright top-left quadrant
    img[24:, 32:] = 120
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=4)
    vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    if degrees:
        vs.set_display_rotation(degrees)
    for i in range(4):
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        f.pts = i
        for pkt in vs.encode(f):
            out.mux(pkt)
    for pkt in vs.encode():
        out.mux(pkt)
    out.close()
    return path


@pytest.mark.parametrize("degrees", [-90, 90, 180])
def test_rotation_metadata_is_applied_to_frames(tmp_path, degrees):
    plain = decode_all(_write_rotated(tmp_path / "plain.mp4", 0), fps=4, image_size=(48, 64))
    turned = decode_all(_write_rotated(tmp_path / f"rot{degrees}.mp4", degrees), fps=4, image_size=(48, 64))
    assert not torch.equal(plain.frames, turned.frames)
    # upright = the stored picture turned by the display matrix (counter-clockwise degrees)
    square = decode_all(_write_rotated(tmp_path / f"sq{degrees}.mp4", degrees), fps=4, image_size=32)
    ref = decode_all(tmp_path / "plain.mp4", fps=4, image_size=32).frames
    expected = torch.rot90(ref, degrees // 90, dims=(2, 3))
    assert (square.frames.float() - expected.float()).abs().mean() < 3
    # a quarter turn shows a portrait picture: the bright corner moves where the viewer sees it
    if degrees == -90:  # clockwise: the top-left corner goes to the top-right
        top_right = turned.frames[0, :, :24, 32:].float().mean()
        assert top_right > 200, top_right


def test_an_hour_long_timestamp_gap_costs_bounded_steps_and_memory(tmp_path):
    from fiftyone_genre.features import sampling

    first = write_video(tmp_path / "a.ts", duration=1.0, tone_hz=440)
    second = write_video(tmp_path / "b.ts", duration=1.0, tone_hz=880, start=3600.0)
    joined = tmp_path / "gap.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    stream = decode_clip(joined, fps=4, image_size=SIZE, check_truncation=False)
    frames = mels = 0
    for c in stream:
        frames += c.num_frames
        mels += c.num_mels
    limit = 4 * (2 + sampling.MAX_GAP_S) + 8
    assert frames == stream.num_steps <= limit and mels <= stream.num_steps, (frames, stream.num_steps)
    assert len(stream.gaps) == 1 and stream.gaps[0][1] > 3000  # reported
    assert stream.duration < 2 + sampling.MAX_GAP_S + 1


def test_file_names_are_printed_escaped(tmp_path):
    forged = tmp_path / "clip\nFAILED other.mp4: forged"
    forged.write_text("not a video")
    with pytest.raises(MediaError) as e:
        list(ClipStream(forged, fps=4, image_size=SIZE))
    msg = str(e.value)
    assert "\n" not in msg and repr(str(forged)) in msg, msg


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_still_image_renamed_as_video_is_refused_by_the_decoder(tmp_path, fmt):
    """The import flags it "not a video"; the decoder must refuse it too, not yield one frame."""
    from PIL import Image

    p = tmp_path / "photo.mp4"
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(p, format=fmt)
    with pytest.raises(MediaError, match=r"photo\.mp4: not a video \(the content is "):
        decode_all(p, fps=4, image_size=SIZE)
