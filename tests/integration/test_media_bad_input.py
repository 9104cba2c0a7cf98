"""Every kind of bad upload gets its own typed error, promptly, without leaking a file handle."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.config import MediaConfig
from liveness.errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaLimitError,
    MediaNotFoundError,
    MissingStreamError,
    UnsupportedMediaError,
)
from liveness.media import open_clip, probe, read_image
from tests.conftest import shared
from tests.integration.test_media_encoded import encode_clip, grid_source, write_frames_folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real clips (GRID frames and speech) and damaged variants of them."""
    d = tmp_path_factory.mktemp("bad")
    frames, audio48, _ = grid_source()
    out: dict[str, Path] = {}

    out["good"] = d / "good.mp4"  # 3 s, moov at the end (the MP4 muxer's default)
    encode_clip(out["good"], frames, audio48)
    data = out["good"].read_bytes()
    out["truncated"] = d / "truncated.mp4"
    out["truncated"].write_bytes(data[: len(data) // 2])

    faststart = d / "faststart.mp4"  # moov first, as phones upload: every header survives a cut
    encode_clip(faststart, frames, audio48, options={"movflags": "faststart"})
    data = faststart.read_bytes()
    out["truncated_faststart"] = d / "truncated_faststart.mp4"
    out["truncated_faststart"].write_bytes(data[: int(len(data) * 0.9)])

    out["empty"] = d / "empty.mp4"
    out["empty"].write_bytes(b"")
    out["text"] = d / "notes.mp4"
    out["text"].write_text("This is a text file that someone renamed to .mp4\n" * 50)
    out["no_audio"] = d / "no_audio.mp4"
    encode_clip(out["no_audio"], frames, None)
    out["no_video"] = d / "no_video.m4a"
    encode_clip(out["no_video"], None, audio48, fmt="mp4")
    out["huge"] = d / "huge_declared.mpg"
    out["huge"].write_bytes(_declare_mpeg_size(shared("grid", "bbaf2n.mpg").read_bytes(), 4095))
    out["missing"] = d / "does_not_exist.mp4"
    out["image"] = shared("faces", "obama_1_240p.jpg")
    return out


def _declare_mpeg_size(data: bytes, side: int) -> bytes:
    """Rewrite every MPEG-1 sequence header to declare side x side pixels (12-bit fields)."""
    buf = bytearray(data)
    i = buf.find(b"\x00\x00\x01\xb3")
    n = 0
    while i >= 0:
        buf[i + 4] = (side >> 4) & 0xFF
        buf[i + 5] = ((side & 0xF) << 4) | ((side >> 8) & 0xF)
        buf[i + 6] = side & 0xFF
        n += 1
        i = buf.find(b"\x00\x00\x01\xb3", i + 4)
    assert n > 0
    return bytes(buf)


CLIP_CASES: list[tuple[str, type[MediaError], str]] = [
    ("empty", EmptyMediaError, "0 bytes"),
    ("truncated", CorruptMediaError, "truncated or damaged"),
    ("truncated_faststart", CorruptMediaError, "truncated"),
    ("text", UnsupportedMediaError, "not a video container"),
    ("no_audio", MissingStreamError, "no audio stream"),
    ("no_video", MissingStreamError, "no video stream"),
    ("huge", MediaLimitError, "declares frames of 4095x4095"),
    ("missing", MediaNotFoundError, "not found"),
    ("image", UnsupportedMediaError, "not a video recording"),
]


@pytest.mark.parametrize(("name", "error", "words"), CLIP_CASES, ids=[c[0] for c in CLIP_CASES])
def test_bad_clip_gives_a_typed_error(
    clips: dict[str, Path], name: str, error: type[MediaError], words: str
) -> None:
    with pytest.raises(error, match=words) as info:
        open_clip(clips[name])
    assert info.value.hint  # every error tells the caller what to do
    if clips[name].exists():
        with pytest.raises(error):
            open_clip(clips[name].read_bytes())


def test_probe_describes_clips_missing_a_stream(clips: dict[str, Path]) -> None:
    no_audio = probe(clips["no_audio"])
    assert no_audio.has_video and not no_audio.has_audio and no_audio.audio_codec is None
    no_video = probe(clips["no_video"])
    assert no_video.has_audio and not no_video.has_video and no_video.video_codec is None
    # without require_audio a silent clip decodes, with an empty audio track
    clip = open_clip(clips["no_audio"], require_audio=False)
    assert clip.audio.shape == (0,) and clip.n_frames == 30


@pytest.mark.parametrize("name", ["empty", "truncated", "text", "huge", "missing"])
def test_probe_refuses_what_open_clip_refuses(clips: dict[str, Path], name: str) -> None:
    error = dict((c[0], c[1]) for c in CLIP_CASES)[name]
    with pytest.raises(error):
        probe(clips[name])


def test_longer_than_the_limit(clips: dict[str, Path]) -> None:
    with pytest.raises(MediaLimitError, match="over the 2 s limit"):
        open_clip(clips["good"], MediaConfig(max_duration_s=2.0))
    with pytest.raises(MediaLimitError, match="under the 5 s minimum"):
        open_clip(clips["good"], MediaConfig(min_duration_s=5.0))
    # probe still describes a too-long clip, so a backend can say how long it was
    assert probe(clips["good"], MediaConfig(max_duration_s=2.0)).duration_s == pytest.approx(
        3.0, abs=0.05
    )


def test_file_over_the_size_limit_is_refused_before_opening(clips: dict[str, Path]) -> None:
    with pytest.raises(MediaLimitError, match="MB limit"):
        open_clip(clips["good"], MediaConfig(max_file_bytes=10_000))
    with pytest.raises(MediaLimitError, match="MB limit"):
        probe(clips["good"].read_bytes(), MediaConfig(max_file_bytes=10_000))


def test_resolution_that_grows_mid_stream_is_caught_while_decoding(tmp_path: Path) -> None:
    """The header promises 160x128, a later SPS switches to 640x512: the decoder guard stops it."""
    frames, _, _ = grid_source()
    small, big = tmp_path / "small.h264", tmp_path / "big.h264"
    encode_clip(small, np.stack([cv2.resize(f, (160, 128)) for f in frames[:40]]), None, fmt="h264")
    encode_clip(big, np.stack([cv2.resize(f, (640, 512)) for f in frames[:10]]), None, fmt="h264")
    joined = tmp_path / "joined.h264"
    joined.write_bytes(small.read_bytes() + big.read_bytes())
    cfg = MediaConfig(max_width=320, max_height=320, max_pixels=320 * 320, min_duration_s=0.1)
    assert probe(joined, cfg).width == 160
    with pytest.raises(MediaLimitError, match="decodes to frames of 640x512"):
        open_clip(joined, cfg, require_audio=False)
    # far past the limit, FFmpeg's own max_pixels guard refuses to allocate the frame; that is
    # still reported as a limit, not as damage
    giant = tmp_path / "giant.h264"
    encode_clip(giant, np.stack([cv2.resize(f, (1280, 720)) for f in frames[:5]]), None, fmt="h264")
    joined.write_bytes(small.read_bytes() + giant.read_bytes())
    with pytest.raises(MediaLimitError, match="1280x720"):
        open_clip(joined, cfg, require_audio=False)
    joined.write_bytes(small.read_bytes() + big.read_bytes())
    # within the limits, a switch of frame size mid-clip is still refused, not silently resized
    with pytest.raises(UnsupportedMediaError, match="changes mid-clip from 160x128 to 640x512"):
        open_clip(joined, MediaConfig(min_duration_s=0.1), target_fps=None, require_audio=False)


def test_bad_frames_folders(tmp_path: Path) -> None:
    frames, audio48, _ = grid_source()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingStreamError, match="no image frames"):
        open_clip(empty)
    silent = tmp_path / "silent"
    write_frames_folder(silent, frames[:30], None, 48_000, fps=None)
    with pytest.raises(MissingStreamError, match="no .wav"):
        open_clip(silent)
    assert open_clip(silent, require_audio=False).audio.size == 0
    two = tmp_path / "two"
    write_frames_folder(two, frames[:30], audio48[:48_000], 48_000, fps=None)
    (two / "second.wav").write_bytes((two / "speech.wav").read_bytes())
    with pytest.raises(UnsupportedMediaError, match="2 WAV"):
        open_clip(two)
    badfps = tmp_path / "badfps"
    write_frames_folder(badfps, frames[:30], audio48[:48_000], 48_000, fps=None)
    (badfps / "fps.txt").write_text("fast")
    with pytest.raises(UnsupportedMediaError, match="frame rate"):
        open_clip(badfps)
    junk = tmp_path / "junk"
    write_frames_folder(junk, frames[:30], audio48[:48_000], 48_000, fps=None)
    (junk / "frame_7.png").write_text("not a png")
    with pytest.raises(UnsupportedMediaError):
        open_clip(junk, target_fps=None)


IMAGE_CASES: list[tuple[str, Callable[[Path], Path], type[MediaError]]] = []


def _img_missing(d: Path) -> Path:
    return d / "nope.jpg"


def _img_empty(d: Path) -> Path:
    (d / "empty.jpg").write_bytes(b"")
    return d / "empty.jpg"


def _img_text(d: Path) -> Path:
    (d / "photo.jpg").write_text("definitely not a photo")
    return d / "photo.jpg"


def _img_truncated(d: Path) -> Path:
    data = shared("faces", "obama_1.jpg").read_bytes()
    (d / "cut.jpg").write_bytes(data[: len(data) // 3])
    return d / "cut.jpg"


def _img_huge(d: Path) -> Path:
    ok, buf = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(buf.tobytes())
    data[16:24] = (60_000).to_bytes(4, "big") * 2  # IHDR claims 60000 x 60000
    (d / "huge.png").write_bytes(bytes(data))
    return d / "huge.png"


def _img_video(d: Path) -> Path:
    return shared("grid", "bbaf2n.mpg")


IMAGE_CASES = [
    ("missing", _img_missing, MediaNotFoundError),
    ("empty", _img_empty, EmptyMediaError),
    ("text", _img_text, UnsupportedMediaError),
    ("truncated", _img_truncated, CorruptMediaError),
    ("huge", _img_huge, MediaLimitError),
    ("video", _img_video, UnsupportedMediaError),
]


@pytest.mark.parametrize(("name", "make", "error"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_bad_image_gives_a_typed_error(
    tmp_path: Path, name: str, make: Callable[[Path], Path], error: type[MediaError]
) -> None:
    with pytest.raises(error) as info:
        read_image(make(tmp_path))
    assert info.value.hint


def _open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc (Linux)")
def test_no_file_handle_leaks_on_any_bad_input(clips: dict[str, Path], tmp_path: Path) -> None:
    # warm up imports/codecs once so lazily opened library files do not count
    for name, _, _ in CLIP_CASES:
        with pytest.raises(MediaError):
            open_clip(clips[name])
    before = _open_fds()
    for _ in range(5):
        for name, _, _ in CLIP_CASES:
            with pytest.raises(MediaError):
                open_clip(clips[name])
            with pytest.raises(MediaError):
                probe(clips[name]) if name not in ("no_audio", "no_video", "image") else open_clip(
                    clips[name]
                )
        for _, make, _ in IMAGE_CASES:
            with pytest.raises(MediaError):
                read_image(make(tmp_path))
        open_clip(clips["good"])
    assert _open_fds() == before
