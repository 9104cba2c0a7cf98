"""Clips the tests encode themselves with PyAV from real frames and real speech (GRID), decoded
back through ``liveness.media``: H.264+AAC MP4, VP8+Opus WebM, a portrait phone clip carrying a
display-matrix rotation, and the other containers the engine accepts."""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import cv2
import numpy as np
import pytest
import soxr

from liveness.config import MediaConfig
from liveness.errors import MediaLimitError
from liveness.media import open_clip, probe
from tests.conftest import SHARED_DATA

GRID_CLIP = SHARED_DATA / "grid" / "bbaf2n.mpg"
_AUDIO_FRAME = {"aac": 1024, "libopus": 960, "libmp3lame": 1152, "mp2": 1152}


@functools.cache
def grid_source() -> tuple[np.ndarray, np.ndarray, int]:
    """Real frames (75, 288, 360, 3) BGR and real speech (mono float32 at 48 kHz) from GRID,
    read with PyAV directly so the fixture does not depend on the code under test."""
    if not GRID_CLIP.exists():
        pytest.skip(f"shared data not found at {GRID_CLIP}")
    with av.open(str(GRID_CLIP)) as c:
        frames = np.stack([f.to_ndarray(format="bgr24") for f in c.decode(video=0)])
    with av.open(str(GRID_CLIP)) as c:
        chunks = [f.to_ndarray().astype(np.float32).mean(axis=0) / 32768 for f in c.decode(audio=0)]
        rate = c.streams.audio[0].codec_context.sample_rate
    audio = soxr.resample(np.concatenate(chunks), rate, 48_000).astype(np.float32)
    return frames, audio, 48_000


def encode_clip(
    out: str | os.PathLike[str] | BinaryIO,
    frames: np.ndarray | None,
    audio: np.ndarray | None,
    *,
    fmt: str = "mp4",
    vcodec: str = "libx264",
    acodec: str = "aac",
    fps: int = 25,
    audio_rate: int = 48_000,
    channels: int = 2,
    rotation_cw: int = 0,
    options: dict[str, str] | None = None,
    video_options: dict[str, str] | None = None,
) -> None:
    """Mux BGR ``frames`` and mono ``audio`` (duplicated to ``channels``) into a container."""
    target = out if not isinstance(out, str | os.PathLike) else str(out)
    with av.open(target, "w", format=fmt, options=options or {}) as c:
        v = a = None
        if frames is not None:
            v = c.add_stream(vcodec, rate=fps)
            v.height, v.width = frames.shape[1:3]
            v.pix_fmt = "yuv420p"
            if vcodec == "libx264":
                v.options = {"preset": "ultrafast", "crf": "18"}
            elif vcodec == "libx265":
                v.options = {"preset": "ultrafast", "x265-params": "log-level=none"}
            elif vcodec in ("libvpx", "libvpx-vp9"):
                v.bit_rate = 2_000_000
                v.options = {"deadline": "realtime", "cpu-used": "8"}
            elif vcodec in ("mpeg4", "mpeg1video", "mpeg2video"):
                v.bit_rate = 2_000_000
            if video_options:
                v.options = {**v.options, **video_options}
            if rotation_cw:
                v.set_display_rotation(-rotation_cw)  # PyAV's angle is counter-clockwise
        if audio is not None:
            a = c.add_stream(acodec, rate=audio_rate)
            a.layout = "stereo" if channels == 2 else "mono"
            offered = [f.name for f in a.codec_context.codec.audio_formats]
            a.format = next(f for f in ("fltp", "flt", "s16p", "s16") if f in offered)
        if v is not None and frames is not None:
            for i, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                for p in v.encode(frame):
                    c.mux(p)
            for p in v.encode():
                c.mux(p)
        if a is not None and audio is not None:
            n = _AUDIO_FRAME.get(acodec, 1024)
            sample_fmt = str(a.format.name)
            for i in range(0, len(audio), n):
                chunk = audio[i : i + n]
                if len(chunk) < n and acodec in _AUDIO_FRAME:
                    chunk = np.pad(chunk, (0, n - len(chunk)))
                data = np.repeat(chunk[None, :], channels, axis=0).astype(np.float32)
                frame = _audio_frame(data, sample_fmt, channels)
                frame.sample_rate = audio_rate
                frame.pts = i
                frame.time_base = Fraction(1, audio_rate)
                for p in a.encode(frame):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)


def _audio_frame(data: np.ndarray, sample_fmt: str, channels: int) -> av.AudioFrame:
    layout = "stereo" if channels == 2 else "mono"
    if sample_fmt == "fltp":
        return av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
    if sample_fmt == "flt":
        return av.AudioFrame.from_ndarray(data.T.reshape(1, -1), format="flt", layout=layout)
    if sample_fmt == "s16p":
        return av.AudioFrame.from_ndarray(
            (np.clip(data, -1, 1) * 32767).astype(np.int16), format="s16p", layout=layout
        )
    if sample_fmt == "s16":
        pcm = (np.clip(data, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
        return av.AudioFrame.from_ndarray(pcm, format="s16", layout=layout)
    raise ValueError(sample_fmt)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def best_lag_ms(
    x: np.ndarray, y: np.ndarray, rate: int, max_ms: float = 60.0
) -> tuple[float, float]:
    """(lag of y behind x in ms, normalised correlation at that lag) over +-max_ms."""
    n = min(len(x), len(y))
    x, y = x[:n] - x[:n].mean(), y[:n] - y[:n].mean()
    m = int(rate * max_ms / 1000)
    best = (0.0, -1.0)
    for lag in range(-m, m + 1):
        a, b = (x[: n - lag], y[lag:]) if lag >= 0 else (x[-lag:], y[: n + lag])
        c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        if c > best[1]:
            best = (lag * 1000.0 / rate, c)
    return best


# 2 s of real frames and speech keeps each encode well under a second.
N = 50


def _source() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frames, audio48, _ = grid_source()
    audio16 = soxr.resample(audio48[: 2 * 48_000], 48_000, 16_000).astype(np.float32)
    return frames[:N], audio48[: 2 * 48_000], audio16


CASES = [
    # (id, format, video codec, audio codec, audio rate, expected container, expected codecs)
    ("mp4-h264-aac", "mp4", "libx264", "aac", 48_000, "mp4", ("h264", "aac")),
    ("webm-vp8-opus", "webm", "libvpx", "libopus", 48_000, "webm", ("vp8", "opus")),
    ("webm-vp9-opus", "webm", "libvpx-vp9", "libopus", 48_000, "webm", ("vp9", "opus")),
    ("mov-h264-aac", "mov", "libx264", "aac", 44_100, "mov", ("h264", "aac")),
    ("mp4-hevc-aac", "mp4", "libx265", "aac", 48_000, "mp4", ("hevc", "aac")),
    ("avi-mpeg4-mp3", "avi", "mpeg4", "libmp3lame", 44_100, "avi", ("mpeg4", "mp3")),
    ("mpeg-mpeg2-mp2", "vob", "mpeg2video", "mp2", 48_000, "mpeg", ("mpeg2video", "mp2")),
]


@pytest.mark.parametrize(
    ("fmt", "vcodec", "acodec", "rate", "container", "codecs"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_encoded_clip_decodes_to_its_source(
    tmp_path: Path,
    fmt: str,
    vcodec: str,
    acodec: str,
    rate: int,
    container: str,
    codecs: tuple[str, str],
) -> None:
    frames, audio48, audio16 = _source()
    audio = audio48 if rate == 48_000 else soxr.resample(audio48, 48_000, rate).astype(np.float32)
    path = tmp_path / f"clip.{fmt}"
    encode_clip(path, frames, audio, fmt=fmt, vcodec=vcodec, acodec=acodec, audio_rate=rate)

    info = probe(path)
    assert info.container == container
    assert (info.video_codec, info.audio_codec) == codecs
    assert (info.width, info.height, info.rotation) == (360, 288, 0)
    assert info.audio_rate == rate and info.audio_channels == 2
    assert info.duration_s == pytest.approx(2.0, abs=0.15)

    clip = open_clip(path, target_fps=None)
    assert clip.frames.shape == (N, 288, 360, 3)
    assert np.all(np.diff(clip.timestamps) > 0)
    if container == "avi":
        # AVI stores no presentation times: FFmpeg (ffprobe too) reads this mpeg4 stream as
        # 0, 0.08, 0.12, ... so only the span is checked, to one frame.
        assert clip.timestamps[-1] - clip.timestamps[0] == pytest.approx(49 / 25, abs=0.041)
    else:
        np.testing.assert_allclose(
            clip.timestamps - clip.timestamps[0], np.arange(N) / 25, atol=2e-3
        )
    assert clip.timestamps[0] == pytest.approx(0.0, abs=0.05)
    # lossy codecs at these bitrates keep real frames well above 28 dB PSNR
    worst = min(psnr(a, b) for a, b in zip(clip.frames, frames, strict=True))
    assert worst > 28, f"worst frame PSNR {worst:.1f} dB"
    # audio: 16 kHz mono, same length, and on the same time axis as the source: the best
    # alignment with the source speech is within 1 ms of zero lag (codec delay is compensated)
    assert clip.audio_rate == 16_000
    assert clip.audio_seconds == pytest.approx(2.0, abs=0.1)
    lag, corr = best_lag_ms(audio16, clip.audio, 16_000)
    assert corr > 0.9, f"audio correlates {corr:.3f} with the source"
    # MP4/MOV/WebM signal the audio encoder's delay and FFmpeg removes it. AVI and MPEG-PS cannot:
    # MP3 plays late by LAME's 1105 samples (25 ms at 44.1 kHz), MP2 by 481 (10 ms at 48 kHz).
    max_lag = {"avi": 26.0, "mpeg": 11.0}.get(container, 1.0)
    assert abs(lag) <= max_lag, f"audio is shifted by {lag:.2f} ms"


def test_bytes_and_path_give_the_same_clip(tmp_path: Path) -> None:
    frames, audio48, _ = _source()
    path = tmp_path / "clip.mp4"
    encode_clip(path, frames, audio48)
    from_path = open_clip(path)
    from_bytes = open_clip(path.read_bytes())
    np.testing.assert_array_equal(from_path.frames, from_bytes.frames)
    np.testing.assert_array_equal(from_path.audio, from_bytes.audio)
    import hashlib

    assert from_path.sha256 == from_bytes.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert from_bytes.info.size_bytes == path.stat().st_size


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_portrait_phone_clip_rotation_is_applied(tmp_path: Path, rotation: int) -> None:
    """A phone stores landscape pixels plus a display matrix; we must return upright frames."""
    frames, audio48, _ = _source()
    stored = np.stack([cv2.resize(f, (320, 240)) for f in frames[:25]])  # landscape as stored
    path = tmp_path / f"portrait_{rotation}.mp4"
    encode_clip(path, stored, audio48[:48_000], rotation_cw=rotation)

    info = probe(path)
    assert info.rotation == rotation
    expect_wh = (240, 320) if rotation in (90, 270) else (320, 240)
    assert (info.width, info.height) == expect_wh

    clip = open_clip(path, target_fps=None, cfg=MediaConfig(min_duration_s=0.5))
    assert clip.info.rotation == rotation
    assert clip.frames.shape[1:3] == (expect_wh[1], expect_wh[0])
    code = {
        90: cv2.ROTATE_90_CLOCKWISE,
        180: cv2.ROTATE_180,
        270: cv2.ROTATE_90_COUNTERCLOCKWISE,
    }[rotation]
    upright = np.stack([cv2.rotate(f, code) for f in stored])
    worst = min(psnr(a, b) for a, b in zip(clip.frames, upright, strict=True))
    assert worst > 30, f"frames do not match the source rotated {rotation} cw ({worst:.1f} dB)"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg CLI not installed")
def test_rotation_matches_ffmpeg_autorotate(tmp_path: Path) -> None:
    """Independent oracle: the ffmpeg command line applies the display matrix itself."""
    frames, audio48, _ = _source()
    stored = np.stack([cv2.resize(f, (320, 240)) for f in frames[:25]])
    path = tmp_path / "portrait.mp4"
    encode_clip(path, stored, audio48[:48_000], rotation_cw=90)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    ref = np.frombuffer(raw, np.uint8).reshape(-1, 320, 240, 3)
    clip = open_clip(path, target_fps=None, cfg=MediaConfig(min_duration_s=0.5))
    assert clip.frames.shape == ref.shape
    # same bitstream, same orientation; only the YUV->BGR conversion may differ slightly
    assert min(psnr(a, b) for a, b in zip(clip.frames, ref, strict=True)) > 35


def test_stereo_44k1_tone_is_resampled_not_aliased(tmp_path: Path) -> None:
    """A 1 kHz tone at 44.1 kHz comes out at 1 kHz in 16 kHz mono, and a 9 kHz tone (above the
    new Nyquist) is filtered out instead of folding back to 7 kHz."""
    frames, _, _ = _source()
    t = np.arange(2 * 44_100) / 44_100
    tone = (0.25 * np.sin(2 * np.pi * 1000 * t) + 0.25 * np.sin(2 * np.pi * 9000 * t)).astype(
        np.float32
    )
    path = tmp_path / "tone.mkv"
    encode_clip(path, frames, tone, fmt="matroska", acodec="pcm_s16le", audio_rate=44_100)
    clip = open_clip(path)
    spec = np.abs(np.fft.rfft(clip.audio * np.hanning(len(clip.audio))))
    freqs = np.fft.rfftfreq(len(clip.audio), 1 / 16_000)
    peak = freqs[np.argmax(spec)]
    assert peak == pytest.approx(1000, abs=5)
    alias = spec[(freqs > 6900) & (freqs < 7100)].max()
    assert alias < spec.max() * 1e-3, "9 kHz folded back into the 16 kHz signal"


class _NoSeek(io.RawIOBase):
    """A write-only stream that cannot seek, like a live MediaRecorder upload."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)


def test_webm_without_declared_duration_is_measured_and_guarded(tmp_path: Path) -> None:
    frames, audio48, _ = grid_source()  # 3 s
    sink = _NoSeek()
    encode_clip(sink, frames, audio48, fmt="webm", vcodec="libvpx", acodec="libopus")
    data = bytes(sink.buf)
    with av.open(io.BytesIO(data)) as c:
        assert c.duration is None, "the test needs a WebM without a declared duration"
    info = probe(data)
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    clip = open_clip(data, target_fps=None)
    assert clip.n_frames == 75
    assert clip.info.duration_s == pytest.approx(3.0, abs=0.1)
    # nothing in the header says 3 s, so the 2 s limit must stop the decoder itself
    with pytest.raises(MediaLimitError, match="runs past"):
        open_clip(data, MediaConfig(max_duration_s=2.0))


def test_sampling_by_fps_and_every_nth(tmp_path: Path) -> None:
    frames, audio48, _ = _source()
    path = tmp_path / "clip.mp4"
    encode_clip(path, frames, audio48, fps=25)
    full = open_clip(path, target_fps=None)
    for fps, expected in ((10.0, 20), (5.0, 10), (25.0, 50), (60.0, 50)):
        c = open_clip(path, target_fps=fps)
        assert c.n_frames == expected, fps
        idx = [int(np.argmin(np.abs(full.timestamps - t))) for t in c.timestamps]
        np.testing.assert_array_equal(c.frames, full.frames[idx])
    c = open_clip(path, every_nth=3)
    np.testing.assert_array_equal(c.timestamps, full.timestamps[::3])
    assert open_clip(path).n_frames == 20  # MediaConfig.target_fps = 10 by default
    with pytest.raises(ValueError):
        open_clip(path, target_fps=5.0, every_nth=2)


def test_frames_larger_than_max_frame_side_are_downscaled(tmp_path: Path) -> None:
    frames, audio48, _ = _source()
    path = tmp_path / "clip.mp4"
    encode_clip(path, frames[:25], audio48[:48_000])
    clip = open_clip(path, MediaConfig(max_frame_side=180, min_duration_s=0.5))
    assert clip.frames.shape[1:] == (144, 180, 3)
    assert (clip.info.width, clip.info.height) == (360, 288)  # info keeps the container's size


def write_frames_folder(
    folder: Path,
    frames: Sequence[np.ndarray],
    audio: np.ndarray | None,
    rate: int,
    fps: float | None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        ok = cv2.imwrite(str(folder / f"frame_{i + 1}.png"), f)
        assert ok
    if audio is not None:
        encode_clip(folder / "speech.wav", None, audio, fmt="wav", acodec="pcm_s16le",
                    audio_rate=rate, channels=1)  # fmt: skip
    if fps is not None:
        (folder / "fps.txt").write_text(f"{fps}\n")


def test_folder_of_frames_plus_wav(tmp_path: Path) -> None:
    frames, audio48, audio16 = _source()
    folder = tmp_path / "clip"
    write_frames_folder(folder, frames[:40], audio48[: 48_000 * 2], 48_000, fps=20)
    info = probe(folder)
    assert (info.container, info.fps, info.n_frames) == ("frames", 20.0, 40)
    assert info.duration_s == pytest.approx(2.0)
    clip = open_clip(folder, target_fps=None)
    # natural sort: frame_2 before frame_10
    np.testing.assert_array_equal(clip.frames, frames[:40])
    np.testing.assert_allclose(clip.timestamps, np.arange(40) / 20)
    lag, corr = best_lag_ms(audio16, clip.audio, 16_000)
    assert corr > 0.95 and abs(lag) <= 1.0
    sampled = open_clip(folder, target_fps=10)
    np.testing.assert_array_equal(sampled.frames, frames[:40:2])
    again = open_clip(folder, target_fps=None)
    assert again.sha256 == clip.sha256
    (folder / "frame_1.png").write_bytes((folder / "frame_2.png").read_bytes())
    assert open_clip(folder).sha256 != clip.sha256


def test_folder_default_fps_is_25(tmp_path: Path) -> None:
    frames, audio48, _ = _source()
    folder = tmp_path / "clip"
    write_frames_folder(folder, frames[:30], audio48[:48_000], 48_000, fps=None)
    clip = open_clip(folder, target_fps=None)
    assert clip.info.fps == 25.0
    np.testing.assert_allclose(clip.timestamps, np.arange(30) / 25)


def test_h264_with_b_frames_keeps_presentation_order(tmp_path: Path) -> None:
    """Phones encode with B-frames (decode order != display order); frames and timestamps must
    come back in display order, and sampling must pick by display time."""
    frames, audio48, _ = _source()
    path = tmp_path / "bframes.mp4"
    encode_clip(path, frames, audio48, video_options={"preset": "veryfast", "bf": "3"})
    with av.open(str(path)) as c:
        packets = [(p.pts, p.dts) for p in c.demux(video=0) if p.pts is not None]
    pts = [p for p, _ in packets]
    dts = [d for _, d in packets]
    assert pts != sorted(pts), "the clip should have reordered (B) frames"
    assert dts == sorted(dts)
    clip = open_clip(path, target_fps=None)
    np.testing.assert_allclose(clip.timestamps, np.arange(N) / 25, atol=2e-3)
    assert min(psnr(a, b) for a, b in zip(clip.frames, frames, strict=True)) > 28
    sampled = open_clip(path, target_fps=5.0)
    np.testing.assert_allclose(sampled.timestamps, np.arange(0, N, 5) / 25, atol=2e-3)
    np.testing.assert_array_equal(sampled.frames, clip.frames[::5])


def test_sound_and_pictures_decoded_apart_equal_one_pass(tmp_path: Path) -> None:
    """The engine decodes the sound in one thread and the pictures in another: each half must
    be exactly what a single pass gives, and on_frame sees every kept frame as it decodes."""
    from liveness.media import open_audio

    frames, audio48, _ = _source()
    path = tmp_path / "clip.mp4"
    encode_clip(path, frames, audio48)
    both = open_clip(path, target_fps=10.0)
    seen: list[tuple[int, float, np.ndarray]] = []
    pictures = open_clip(
        path,
        target_fps=10.0,
        decode_audio=False,
        on_frame=lambda i, t, img: seen.append((i, t, img.copy())),
    )
    sound = open_audio(path)
    np.testing.assert_array_equal(pictures.frames, both.frames)
    np.testing.assert_array_equal(pictures.timestamps, both.timestamps)
    assert pictures.audio.size == 0
    np.testing.assert_array_equal(sound.audio, both.audio)
    assert sound.frames.shape[0] == 0
    assert [i for i, _, _ in seen] == list(range(both.n_frames))
    np.testing.assert_array_equal([t for _, t, _ in seen], both.timestamps)
    np.testing.assert_array_equal(np.stack([img for _, _, img in seen]), both.frames)


def test_an_on_frame_error_stops_decoding_and_propagates(tmp_path: Path) -> None:
    frames, audio48, _ = _source()
    path = tmp_path / "clip.mp4"
    encode_clip(path, frames, audio48)
    calls: list[int] = []

    def boom(i: int, t: float, img: np.ndarray) -> None:
        calls.append(i)
        if i == 2:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        open_clip(path, target_fps=None, on_frame=boom)
    assert calls == [0, 1, 2]


def test_sound_only_still_needs_an_audio_stream(tmp_path: Path) -> None:
    from liveness.errors import MissingStreamError
    from liveness.media import open_audio

    frames, _, _ = _source()
    path = tmp_path / "silent.mp4"
    encode_clip(path, frames, None)
    with pytest.raises(MissingStreamError):
        open_audio(path)
