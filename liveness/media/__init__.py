"""Decoding clips and photos: the only place in the engine that touches containers.

``open_clip`` returns sampled BGR frames with timestamps and the whole audio track as mono
float32 at 16 kHz, on one time axis; ``probe`` reads what a clip declares without decoding it;
``read_image`` reads the enrolled photo. Limits from ``MediaConfig`` (file size, duration,
resolution) are checked from the container's header before decoding, and again while decoding.
Every failure is a typed ``MediaError``:

    MediaNotFoundError     no such path
    EmptyMediaError        zero bytes
    UnsupportedMediaError  not a container/image we read (e.g. a text file named .mp4)
    CorruptMediaError      starts like a container/image but is truncated or damaged
    MissingStreamError     no video stream, or no audio stream when audio is required
    MediaLimitError        too big, too long, too short, or too many pixels

Accepted clips: MP4/MOV (H.264/HEVC + AAC), WebM/Matroska (VP8/VP9 + Opus/Vorbis), MPEG-1/2
program streams, AVI, and a folder of frames plus a WAV (see ``liveness.media._folder``).
"""

from __future__ import annotations

import os
from typing import Final

from liveness.config import MediaConfig
from liveness.media._container import decode_container, probe_container
from liveness.media._folder import FRAME_EXTENSIONS, decode_folder, probe_folder
from liveness.media._image import read_image
from liveness.media._source import resolve
from liveness.media._types import Clip, ClipInfo, FrameCallback

__all__ = [
    "FRAME_EXTENSIONS",
    "Clip",
    "ClipInfo",
    "FrameCallback",
    "open_audio",
    "open_clip",
    "probe",
    "read_image",
]


class _Default:
    def __repr__(self) -> str:
        return "<MediaConfig.target_fps>"


_CFG_FPS: Final = _Default()

Src = str | os.PathLike[str] | bytes


def probe(src: Src, cfg: MediaConfig | None = None) -> ClipInfo:
    """What a clip declares: streams, codecs, duration, fps, size and rotation.

    Reads the header and decodes at most the first video frame (the display rotation lives in
    its side data). Refuses, with ``MediaLimitError``, a file over ``max_file_bytes`` or a frame
    size over the resolution limits; the duration limits are left to ``open_clip`` so that a
    too-long clip can still be described.
    """
    cfg = cfg or MediaConfig()
    source = resolve(src, max_bytes=cfg.max_file_bytes, what="clip", allow_dir=True)
    if source.is_dir:
        return probe_folder(source, cfg)
    return probe_container(source, cfg)


def open_clip(
    src: Src,
    cfg: MediaConfig | None = None,
    *,
    target_fps: float | None | _Default = _CFG_FPS,
    every_nth: int | None = None,
    require_audio: bool = True,
    on_frame: FrameCallback | None = None,
    decode_video: bool = True,
    decode_audio: bool = True,
) -> Clip:
    """Decode a clip: frames (BGR uint8, rotation applied), timestamps and 16 kHz mono audio.

    Sampling: ``target_fps`` keeps the first frame of each ``1 / target_fps`` slot (default
    ``cfg.target_fps``; ``None`` keeps every frame); ``every_nth=n`` keeps frames 0, n, 2n, ...
    and, when given, replaces the ``target_fps`` default (passing both is an error). Skipped
    frames are decoded (inter frames depend on them) but never converted, rotated or scaled.

    ``src`` may be a path, the file's bytes, or a folder of frames plus one WAV (frames sorted by
    name; frame rate from ``fps.txt`` in the folder or ``cfg.folder_fps``, 25 by default).

    ``on_frame(index, t, frame)`` is called for each kept frame as soon as it is decoded (the
    engine starts face detection on early key frames while the rest decodes); an exception it
    raises stops the decoding and propagates.

    ``decode_video=False`` / ``decode_audio=False`` leave that stream undecoded (no frames, or
    no samples, in the result; the limits and ``require_audio`` still apply), so a caller can
    decode the sound and the pictures apart, in two threads (``open_audio``).
    """
    cfg = cfg or MediaConfig()
    if every_nth is not None:
        if not isinstance(target_fps, _Default) and target_fps is not None:
            raise ValueError("give target_fps or every_nth, not both")
        if every_nth < 1:
            raise ValueError(f"every_nth must be >= 1, got {every_nth}")
        fps: float | None = None
    else:
        fps = cfg.target_fps if isinstance(target_fps, _Default) else target_fps
        if fps is not None and not fps > 0:
            raise ValueError(f"target_fps must be > 0 or None, got {fps}")
    source = resolve(src, max_bytes=cfg.max_file_bytes, what="clip", allow_dir=True)
    decode = decode_folder if source.is_dir else decode_container
    return decode(
        source,
        cfg,
        target_fps=fps,
        every_nth=every_nth,
        require_audio=require_audio,
        on_frame=on_frame,
        video=decode_video,
        audio_track=decode_audio,
    )


def open_audio(src: Src, cfg: MediaConfig | None = None) -> Clip:
    """Only the sound of a clip: ``open_clip`` without decoding a video frame (``frames`` is
    empty; ``audio`` is on the clip's time axis, as ``open_clip`` gives it)."""
    return open_clip(src, cfg, target_fps=None, decode_video=False)
