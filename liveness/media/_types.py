"""The two values the media module hands out: what a container declares, and a decoded clip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Clip", "ClipInfo", "FrameCallback"]

# Called for each kept frame as soon as it is decoded: (index in Clip.frames, time in seconds,
# the BGR frame). Lets a caller start work on early frames while the rest of the clip decodes.
FrameCallback = Callable[[int, float, np.ndarray], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClipInfo:
    """What the container says about a clip, read before any frame is converted.

    ``width``/``height`` are the display size, after ``rotation`` (so a portrait phone clip stored
    as 1920x1080 with a 90 degree display matrix reports 1080x1920). ``rotation`` is the clockwise
    angle in degrees (0, 90, 180 or 270) that the phone's display matrix asks for; decoded frames
    already have it applied. ``n_frames`` is the declared frame count, or ``duration_s * fps``
    when the container does not declare one. ``duration_s`` is 0.0 only when it is unknown and
    could not be estimated.
    """

    container: str
    duration_s: float
    fps: float
    width: int
    height: int
    rotation: int
    n_frames: int
    video_codec: str | None
    audio_codec: str | None
    audio_rate: int | None
    audio_channels: int | None
    has_video: bool
    has_audio: bool
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "duration_s": round(self.duration_s, 6),
            "fps": round(self.fps, 6),
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "n_frames": self.n_frames,
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "audio_rate": self.audio_rate,
            "audio_channels": self.audio_channels,
            "has_video": self.has_video,
            "has_audio": self.has_audio,
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)  # arrays: compare by identity
class Clip:
    """A decoded clip: sampled video frames and the whole audio track on one time axis.

    ``frames`` is ``(T, H, W, 3)`` BGR uint8 with the rotation applied (and downscaled when the
    longest side exceeds ``MediaConfig.max_frame_side``). ``timestamps[i]`` is the presentation
    time of ``frames[i]`` in seconds from the clip start (the container's start time), and
    ``audio[k]`` is the sample at ``k / audio_rate`` seconds on the same axis: mono float32 in
    [-1, 1]. ``sha256`` is the hash of the source bytes (for a frames folder, see
    ``liveness.media.open_clip``).
    """

    frames: np.ndarray = field(repr=False)
    timestamps: np.ndarray = field(repr=False)
    audio: np.ndarray = field(repr=False)
    audio_rate: int
    info: ClipInfo
    sha256: str

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def audio_seconds(self) -> float:
        return float(self.audio.shape[0]) / float(self.audio_rate) if self.audio_rate else 0.0

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the decoded frames."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    def __repr__(self) -> str:
        return (
            f"Clip(frames={self.frames.shape}, "
            f"audio={self.audio_seconds:.2f}s@{self.audio_rate}Hz, "
            f"container={self.info.container!r}, sha256={self.sha256[:12]}...)"
        )
