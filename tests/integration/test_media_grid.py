"""Real decoding of every GRID sample in ../shared/data/grid (MPEG-1 video + MPEG audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liveness.media import open_clip, probe
from tests.conftest import SHARED_DATA, shared

GRID = sorted((SHARED_DATA / "grid").glob("*.mpg")) if (SHARED_DATA / "grid").exists() else []


def test_grid_folder_has_nine_clips() -> None:
    assert len(sorted(shared("grid").glob("*.mpg"))) == 9


@pytest.mark.parametrize("path", GRID, ids=[p.stem for p in GRID])
def test_grid_clip_decodes_fully(path: Path) -> None:
    clip = open_clip(path, target_fps=None)
    # GRID: 3 s at 25 fps, 360x288.
    assert clip.frames.shape == (75, 288, 360, 3)
    assert clip.frames.dtype == np.uint8
    assert clip.info.container == "mpeg"
    assert clip.info.video_codec == "mpeg1video"
    assert clip.info.fps == pytest.approx(25.0)
    assert clip.info.rotation == 0
    # timestamps: start at 0, strictly increasing, 1/25 s apart
    assert clip.timestamps[0] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(np.diff(clip.timestamps), 0.04, atol=1e-6)
    # audio: 16 kHz mono float32 covering the clip, clearly not silent
    assert clip.audio_rate == 16_000
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert clip.audio_seconds == pytest.approx(clip.info.duration_s, abs=0.1)
    rms = float(np.sqrt(np.mean(clip.audio**2)))
    assert rms > 0.01, f"audio looks silent (rms {rms:.4f})"
    assert np.abs(clip.audio).max() <= 1.0
    # frames are real images, not blank
    assert clip.frames.std() > 20
    assert len(clip.sha256) == 64


def test_grid_probe_matches_decoding() -> None:
    path = shared("grid", "bbaf2n.mpg")
    info = probe(path)
    assert (info.width, info.height) == (360, 288)
    assert info.duration_s == pytest.approx(3.0, abs=0.05)
    assert info.has_video and info.has_audio
    assert info.audio_codec == "mp2" and info.audio_rate == 44_100 and info.audio_channels == 2
    assert info.size_bytes == path.stat().st_size


def test_grid_sampling_at_10fps_keeps_one_frame_per_slot() -> None:
    path = shared("grid", "bbaf2n.mpg")
    full = open_clip(path, target_fps=None)
    sampled = open_clip(path, target_fps=10.0)
    assert sampled.n_frames == 30  # 3 s at 10 fps
    # every sampled frame is the same picture as the full decode's frame at that time
    for frame, t in zip(sampled.frames, sampled.timestamps, strict=True):
        i = int(np.argmin(np.abs(full.timestamps - t)))
        assert full.timestamps[i] == pytest.approx(t)
        np.testing.assert_array_equal(frame, full.frames[i])
    # gaps never exceed one slot plus one source frame
    assert np.diff(sampled.timestamps).max() <= 0.1 + 0.04 + 1e-6
    nth = open_clip(path, every_nth=5)
    np.testing.assert_array_equal(nth.timestamps, full.timestamps[::5])
    np.testing.assert_array_equal(nth.audio, full.audio)
