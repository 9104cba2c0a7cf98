"""A clip given as a folder: image frames (sorted by name) plus exactly one WAV file.

Layout::

    clip/
      000001.png  000002.png  ...   frames: .jpg/.jpeg/.png/.webp/.bmp, natural sort order
      audio.wav                     the soundtrack, any rate/channels/sample format
      fps.txt                       optional: the frame rate as a number ("30"); else
                                    MediaConfig.folder_fps (25)

Frame ``i`` is at ``i / fps`` seconds, the WAV starts at 0. The clip's sha256 is the sha256 of
the listing: for each file in order (frames, then the WAV, then fps.txt if present),
``name + NUL + sha256(file) + NL``.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np

from liveness.config import MediaConfig
from liveness.errors import (
    CorruptMediaError,
    MediaLimitError,
    MissingStreamError,
    UnsupportedMediaError,
)
from liveness.media._audio import AudioAccumulator, frame_to_mono
from liveness.media._container import check_duration, check_resolution
from liveness.media._image import decode_image, image_header
from liveness.media._source import Source, resolve
from liveness.media._types import Clip, ClipInfo, FrameCallback

__all__ = ["FRAME_EXTENSIONS", "decode_folder", "probe_folder"]

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _natural_key(p: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


class _Folder:
    def __init__(self, source: Source, cfg: MediaConfig) -> None:
        if source.path is None:
            raise ValueError("a folder source needs a path")
        root = source.path
        label = str(root)
        files = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
        self.frames = sorted(
            (p for p in files if p.suffix.lower() in FRAME_EXTENSIONS), key=_natural_key
        )
        wavs = sorted(p for p in files if p.suffix.lower() == ".wav")
        if not self.frames:
            raise MissingStreamError(
                f"frames folder {label} holds no image frames ({', '.join(FRAME_EXTENSIONS)})"
            )
        if len(wavs) > 1:
            raise UnsupportedMediaError(
                f"frames folder {label} holds {len(wavs)} WAV files; exactly one is the soundtrack",
                hint="Keep one .wav file beside the frames.",
            )
        self.wav = wavs[0] if wavs else None
        self.fps = cfg.folder_fps
        fps_file = root / "fps.txt"
        self.fps_file = fps_file if fps_file.is_file() else None
        if self.fps_file is not None:
            text = self.fps_file.read_text(encoding="utf-8", errors="replace").strip()
            try:
                self.fps = float(text)
            except ValueError:
                self.fps = math.nan
            if not (math.isfinite(self.fps) and 0 < self.fps <= 1000):
                raise UnsupportedMediaError(
                    f"{self.fps_file} must hold a frame rate such as 25 or 29.97, not {text[:40]!r}"
                )
        self.size = sum(p.stat().st_size for p in self.listing)
        if self.size > cfg.max_file_bytes:
            raise MediaLimitError(
                f"frames folder {label} holds {self.size / 1e6:.1f} MB, over the "
                f"{cfg.max_file_bytes / 1e6:.1f} MB limit",
                hint="Send fewer or smaller frames, or raise [media] max_file_bytes.",
            )
        self.label = label

    @property
    def listing(self) -> list[Path]:
        return [
            *self.frames,
            *([self.wav] if self.wav else []),
            *([self.fps_file] if self.fps_file else []),
        ]

    def sha256(self) -> str:
        h = hashlib.sha256()
        for p in self.listing:
            fh = hashlib.sha256()
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    fh.update(chunk)
            h.update(f"{p.name}\0{fh.hexdigest()}\n".encode())
        return h.hexdigest()

    def header_of(self, path: Path, cfg: MediaConfig) -> tuple[str, int, int]:
        with open(path, "rb") as f:
            head = f.read(64 * 1024)
        fmt, w, h = image_header(head, label=str(path), what="frame")
        check_resolution(w, h, cfg, label=str(path), declared=True)
        return fmt, w, h


def _wav_info(wav: Path | None, cfg: MediaConfig) -> tuple[str | None, int | None, int | None]:
    if wav is None:
        return None, None, None
    import av  # local: the folder path only needs PyAV for the WAV

    src = resolve(wav, max_bytes=cfg.max_file_bytes, what="WAV")
    try:
        with av.open(str(src.path)) as c:
            if not c.streams.audio:
                raise MissingStreamError(f"{wav} holds no audio stream")
            cc = c.streams.audio[0].codec_context
            return cc.name, int(cc.sample_rate), len(cc.layout.channels)
    except av.FFmpegError as exc:
        raise CorruptMediaError(f"{wav} is not a readable WAV file: {exc}") from None


def _info(folder: _Folder, cfg: MediaConfig) -> ClipInfo:
    fmt, w, h = folder.header_of(folder.frames[0], cfg)
    codec, rate, channels = _wav_info(folder.wav, cfg)
    return ClipInfo(
        container="frames",
        duration_s=len(folder.frames) / folder.fps,
        fps=folder.fps,
        width=w,
        height=h,
        rotation=0,
        n_frames=len(folder.frames),
        video_codec=fmt,
        audio_codec=codec,
        audio_rate=rate,
        audio_channels=channels,
        has_video=True,
        has_audio=folder.wav is not None,
        size_bytes=folder.size,
    )


def probe_folder(source: Source, cfg: MediaConfig) -> ClipInfo:
    return _info(_Folder(source, cfg), cfg)


def decode_folder(
    source: Source,
    cfg: MediaConfig,
    *,
    target_fps: float | None,
    every_nth: int | None,
    require_audio: bool,
    on_frame: FrameCallback | None = None,
    video: bool = True,
    audio_track: bool = True,
) -> Clip:
    folder = _Folder(source, cfg)
    if folder.wav is None and require_audio:
        raise MissingStreamError(f"frames folder {folder.label} has no .wav soundtrack")
    info = _info(folder, cfg)
    check_duration(info.duration_s, cfg, label=folder.label)

    # Sampling picks frame indices up front: a skipped frame is never even read.
    n = len(folder.frames)
    if every_nth is not None:
        keep = list(range(0, n, every_nth))
    elif target_fps is not None and target_fps < folder.fps:
        keep, next_slot = [], 0
        for i in range(n):
            slot = math.floor(i / folder.fps * target_fps + 1e-6)
            if slot >= next_slot:
                keep.append(i)
                next_slot = slot + 1
    else:
        keep = list(range(n))

    if not video:
        keep = []
    frames: list[np.ndarray] = []
    for i in keep:
        path = folder.frames[i]
        folder.header_of(path, cfg)
        img = decode_image(
            resolve(path, max_bytes=cfg.max_image_bytes, what="frame"), cfg, what="frame"
        )
        if frames and img.shape != frames[0].shape:
            raise CorruptMediaError(
                f"frame {path.name} is {img.shape[1]}x{img.shape[0]} but the first frame is "
                f"{frames[0].shape[1]}x{frames[0].shape[0]}; all frames must share one size"
            )
        frames.append(_fit(img, cfg.max_frame_side))
        if on_frame is not None:
            on_frame(len(frames) - 1, i / folder.fps, frames[-1])

    audio = np.zeros(0, dtype=np.float32)
    if folder.wav is not None and audio_track:
        audio = _read_wav(folder.wav, cfg)
        if require_audio and audio.size == 0:
            raise MissingStreamError(f"{folder.wav} holds no audio samples")
    return Clip(
        frames=np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8),
        timestamps=np.asarray(keep, dtype=np.float64) / folder.fps,
        audio=audio,
        audio_rate=cfg.audio_rate,
        info=info,
        sha256=folder.sha256(),
    )


def _fit(img: np.ndarray, max_side: int | None) -> np.ndarray:
    h, w = img.shape[:2]
    if not max_side or max(w, h) <= max_side:
        return img
    import cv2

    s = max_side / max(w, h)
    return cv2.resize(
        img, (max(2, round(w * s)), max(2, round(h * s))), interpolation=cv2.INTER_AREA
    )


def _read_wav(wav: Path, cfg: MediaConfig) -> np.ndarray:
    import av

    acc = AudioAccumulator()
    max_t = cfg.max_duration_s + 0.5
    try:
        with av.open(str(wav)) as c:
            for frame in c.decode(audio=0):
                acc.add(frame_to_mono(frame), frame.sample_rate, None)
                if acc.seconds > max_t:
                    raise MediaLimitError(
                        f"{wav} runs past {acc.seconds:.2f} s, over the "
                        f"{cfg.max_duration_s:g} s limit",
                        hint="Record a shorter clip, or raise [media] max_duration_s.",
                    )
    except av.FFmpegError as exc:
        raise CorruptMediaError(f"{wav} cannot be decoded: {exc}") from None
    return acc.result(cfg.audio_rate)
