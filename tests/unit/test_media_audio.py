"""Audio: sample formats to mono float32, placement on the clip's time axis, resampling."""

from __future__ import annotations

import av
import numpy as np
import pytest

from liveness.media._audio import AudioAccumulator, frame_to_mono, resample


@pytest.mark.parametrize("fmt", ["s16", "s16p", "s32", "s32p", "flt", "fltp", "dbl", "u8"])
def test_frame_to_mono_averages_channels_in_every_format(fmt: str) -> None:
    left = np.linspace(-0.5, 0.5, 480)
    right = np.full(480, 0.25)
    planar = np.stack([left, right])
    base = fmt.rstrip("p")
    if base == "s16":
        data = (planar * 32768).astype(np.int16)
    elif base == "s32":
        data = (planar * 2**31).astype(np.int32)
    elif base == "u8":
        data = (planar * 128 + 128).astype(np.uint8)
    else:
        data = planar.astype(np.float32 if base == "flt" else np.float64)
    if not fmt.endswith("p"):
        data = data.T.reshape(1, -1)  # packed: L R L R ...
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="stereo")
    mono = frame_to_mono(frame)
    assert mono.dtype == np.float32 and mono.shape == (480,)
    tol = 1 / 64 if base == "u8" else 1e-4  # u8 has 8-bit steps
    np.testing.assert_allclose(mono, (left + right) / 2, atol=tol)


def test_accumulator_fills_gaps_and_pads_late_start() -> None:
    acc = AudioAccumulator()
    one = np.ones(100, np.float32)
    acc.add(one, 1000, 0.05)  # starts 50 ms after the clip: 50 samples of silence first
    acc.add(one, 1000, 0.15)  # contiguous
    acc.add(one, 1000, 0.50)  # a 250 ms gap
    out = acc.result(1000)
    assert out.shape == (600,)
    assert not out[:50].any() and out[50:250].all()
    assert not out[250:500].any() and out[500:].all()


def test_accumulator_trims_audio_before_the_clip_start() -> None:
    acc = AudioAccumulator()
    ramp = np.arange(100, dtype=np.float32) / 100
    acc.add(ramp, 1000, -0.02)
    np.testing.assert_allclose(acc.result(1000)[:3], ramp[20:23])


def test_resample_keeps_a_tone_and_its_length() -> None:
    t = np.arange(48_000) / 48_000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = resample(x, 48_000, 16_000)
    assert y.dtype == np.float32 and y.shape == (16_000,)
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000)
    # away from the edges (filter warm-up) the resampled tone matches the ideal one closely
    assert np.max(np.abs(y[500:-500] - ref[500:-500])) < 1e-3


def test_resample_clips_to_unit_range() -> None:
    assert resample(np.array([2.0, -3.0, 0.5], np.float32), 16_000, 16_000).tolist() == [
        1.0,
        -1.0,
        0.5,
    ]
