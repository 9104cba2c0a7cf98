"""Containers (MP4/MOV, WebM/Matroska, MPEG-1/2, AVI, ...) through PyAV: probe and decode.

Limits are checked from what the container declares before any frame is converted, and again
while decoding, because a container can lie about its duration or frame size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import av
import cv2
import numpy as np

from liveness.config import MediaConfig
from liveness.errors import (
    CorruptMediaError,
    MediaError,
    MediaLimitError,
    MissingStreamError,
    UnsupportedMediaError,
)
from liveness.media._audio import AudioAccumulator, frame_to_mono
from liveness.media._source import Source, sniff_container
from liveness.media._types import Clip, ClipInfo, FrameCallback

__all__ = ["decode_container", "probe_container"]

# Demuxers we accept (any name in FFmpeg's comma-separated list). Everything else -- subtitles,
# images, "tty" text art -- is not a recording, however FFmpeg chooses to read it.
_DEMUXERS = {
    "mov", "mp4", "matroska", "webm", "mpeg", "mpegvideo", "mpegts", "avi", "ogg", "wav",
    "flv", "asf", "h264", "hevc", "m4v", "mp3", "aac", "flac", "3gp",
}  # fmt: skip
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
# Decode errors tolerated on single packets before the file is called corrupt (a damaged GOP
# in a long recording is survivable; a file where everything fails is not).
_MAX_PACKET_ERRORS = 3
# A container that decodes to less than this share of the duration it declares was cut short.
_MIN_DECODED_SHARE = 0.5


@contextmanager
def _opened(source: Source) -> Iterator[Any]:
    """av.open with errors mapped to typed media errors; the file is always closed."""
    fh = source.open()
    try:
        try:
            container = av.open(fh, mode="r")
        except av.FFmpegError as exc:
            family = sniff_container(source.head(512))
            if family is not None:
                raise CorruptMediaError(
                    f"{source.label} starts like {family.upper()} but cannot be read "
                    f"(truncated or damaged): {_ffmsg(exc)}"
                ) from None
            raise UnsupportedMediaError(
                f"{source.label} is not a video container we can read: {_ffmsg(exc)}"
            ) from None
        try:
            names = set(container.format.name.split(","))
            if not names & _DEMUXERS:
                raise UnsupportedMediaError(
                    f"{source.label} was read as {container.format.long_name!r}, which is not a "
                    "video recording"
                )
            yield container
        finally:
            container.close()
    finally:
        fh.close()


def _ffmsg(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc)


@dataclass(slots=True)
class _Header:
    container: str
    duration_s: float  # 0.0 = not declared
    video_duration_s: float  # the streams' own declared durations; 0.0 = not declared
    audio_duration_s: float
    fps: float
    width: int  # coded size, before rotation
    height: int
    n_frames: int  # 0 = not declared
    video_codec: str | None
    audio_codec: str | None
    audio_rate: int | None
    audio_channels: int | None
    origin_s: float  # the container's start time: time zero of the clip
    vstream: Any
    astream: Any

    def info(self, *, rotation: int, size: int, duration_s: float | None = None) -> ClipInfo:
        dur = self.duration_s if duration_s is None else duration_s
        w, h = (self.height, self.width) if rotation in (90, 270) else (self.width, self.height)
        n = self.n_frames or (math.floor(dur * self.fps + 0.5) if self.fps > 0 else 0)
        return ClipInfo(
            container=self.container,
            duration_s=float(dur),
            fps=float(self.fps),
            width=int(w),
            height=int(h),
            rotation=int(rotation),
            n_frames=int(n),
            video_codec=self.video_codec,
            audio_codec=self.audio_codec,
            audio_rate=self.audio_rate,
            audio_channels=self.audio_channels,
            has_video=self.vstream is not None,
            has_audio=self.astream is not None,
            size_bytes=size,
        )


def _read_header(container: Any, source: Source, cfg: MediaConfig) -> _Header:
    v = container.streams.video[0] if container.streams.video else None
    a = container.streams.audio[0] if container.streams.audio else None
    if v is None and a is None:
        raise UnsupportedMediaError(f"{source.label} has neither a video nor an audio stream")
    fps = 0.0
    width = height = n_frames = 0
    if v is not None:
        cc = v.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        check_resolution(width, height, cfg, label=source.label, declared=True)
        rate = v.average_rate or v.guessed_rate or v.base_rate
        fps = float(rate) if rate else 0.0
        if not math.isfinite(fps) or fps < 0 or fps > 1000:
            fps = 0.0
        n_frames = int(v.frames or 0)
    duration = 0.0
    if container.duration is not None and container.duration > 0:
        duration = container.duration / av.time_base
    else:
        for s in (v, a):
            if s is not None and s.duration and s.time_base:
                duration = max(duration, float(s.duration * s.time_base))
    _check_index(v, a, source)
    origin = container.start_time / av.time_base if container.start_time is not None else 0.0
    return _Header(
        container=_container_name(container, v, a),
        duration_s=float(duration),
        video_duration_s=_stream_duration(v),
        audio_duration_s=_stream_duration(a),
        fps=fps,
        width=width,
        height=height,
        n_frames=n_frames,
        video_codec=_codec_name(v) if v is not None else None,
        audio_codec=_codec_name(a) if a is not None else None,
        audio_rate=(int(a.codec_context.sample_rate or 0) or None) if a is not None else None,
        audio_channels=(len(a.codec_context.layout.channels) or None) if a is not None else None,
        origin_s=float(origin),
        vstream=v,
        astream=a,
    )


def _stream_duration(s: Any) -> float:
    if s is None or not s.duration or not s.time_base:
        return 0.0
    d = float(s.duration * s.time_base)
    return d if math.isfinite(d) and d > 0 else 0.0


def _check_index(v: Any, a: Any, source: Source) -> None:
    """A sample index (MP4/MOV moov, AVI idx1) that points past the end of the file means the
    upload was cut short, even when every header is intact (a "faststart" MP4 cut anywhere)."""
    for s in (v, a):
        if s is None:
            continue
        try:
            entries = s.index_entries
            n = len(entries)
            end = max((entries[i].pos + entries[i].size for i in (n - 1, n // 2) if n), default=0)
        except (AttributeError, IndexError, TypeError):  # an older PyAV without index access
            return
        if end > source.size:
            raise CorruptMediaError(
                f"{source.label} is truncated: its index points to byte {end} but the file "
                f"ends at byte {source.size}"
            )


def _codec_name(stream: Any) -> str:
    """The codec's canonical name ("mp3", not the decoder's "mp3float")."""
    codec = stream.codec_context.codec
    return str(getattr(codec, "canonical_name", None) or codec.name)


def _container_name(container: Any, v: Any, a: Any) -> str:
    """A short name for FFmpeg's demuxer: "mp4", "mov", "webm", "matroska", "mpeg", "avi", ..."""
    names = container.format.name.split(",")
    if "mov" in names:
        brand = str(container.metadata.get("major_brand", "")).strip()
        return "mov" if brand == "qt" else "mp4"
    if "matroska" in names:
        vc = _codec_name(v) if v is not None else None
        ac = _codec_name(a) if a is not None else None
        webm = vc in (None, "vp8", "vp9", "av1") and ac in (None, "opus", "vorbis")
        return "webm" if webm else "matroska"
    return str(names[0])


def check_resolution(
    width: int, height: int, cfg: MediaConfig, *, label: str, declared: bool
) -> None:
    """Refuse a frame size over the limits (either orientation) before anything is allocated."""
    fits = (width <= cfg.max_width and height <= cfg.max_height) or (
        height <= cfg.max_width and width <= cfg.max_height
    )
    if not fits or width * height > cfg.max_pixels:
        said = "declares" if declared else "decodes to"
        raise MediaLimitError(
            f"{label} {said} frames of {width}x{height}, over the limit of "
            f"{cfg.max_width}x{cfg.max_height} / {cfg.max_pixels / 1e6:.1f} Mpx",
            hint="Record at 1080p or less, or raise [media] max_width/max_height/max_pixels.",
        )


def check_duration(duration_s: float, cfg: MediaConfig, *, label: str) -> None:
    if duration_s > cfg.max_duration_s:
        raise MediaLimitError(
            f"{label} lasts {duration_s:.2f} s, over the {cfg.max_duration_s:g} s limit",
            hint="Record a shorter clip (just the digits), or raise [media] max_duration_s.",
        )
    if duration_s < cfg.min_duration_s:
        raise MediaLimitError(
            f"{label} lasts {duration_s:.2f} s, under the {cfg.min_duration_s:g} s minimum",
            hint="Record the whole challenge; the clip must be long enough to read the digits.",
        )


def _guard_decoder(cc: Any, cfg: MediaConfig) -> None:
    """Backstop inside FFmpeg: its decoder refuses to allocate frames far beyond our limit (a
    stream that switches to a giant size mid-clip). Frames up to 4x the limit still decode, so
    our own per-frame check reports them with a MediaLimitError."""
    cc.options = {**dict(cc.options or {}), "max_pixels": str(4 * cfg.max_pixels)}


def _rotation_of(frame: Any) -> int:
    """Clockwise display rotation in {0, 90, 180, 270} from the frame's display matrix."""
    try:
        ccw = float(frame.rotation)
    except (AttributeError, TypeError, ValueError):
        return 0
    if not math.isfinite(ccw):
        return 0
    return int(round(-ccw / 90.0)) % 4 * 90


def probe_container(source: Source, cfg: MediaConfig) -> ClipInfo:
    """Read the container's header; decode only the first video frame (for its rotation).

    A duration the container does not declare is measured by reading packets (not decoding them).
    """
    with _opened(source) as container:
        hdr = _read_header(container, source, cfg)
        rotation = 0
        if hdr.vstream is not None:
            _guard_decoder(hdr.vstream.codec_context, cfg)
            try:
                for frame in container.decode(hdr.vstream):
                    check_resolution(
                        frame.width, frame.height, cfg, label=source.label, declared=False
                    )
                    hdr.width, hdr.height = frame.width, frame.height
                    rotation = _rotation_of(frame)
                    break
            except av.FFmpegError as exc:
                raise CorruptMediaError(
                    f"{source.label}: the first video frame cannot be decoded: {_ffmsg(exc)}"
                ) from None
    duration = hdr.duration_s
    if duration <= 0:
        # Read packets from a fresh open: raw streams cannot seek back to the start.
        with _opened(source) as container:
            duration = _measure_duration(
                container, _read_header(container, source, cfg), source, cfg
            )
    return hdr.info(rotation=rotation, size=source.size, duration_s=duration)


def _measure_duration(container: Any, hdr: _Header, source: Source, cfg: MediaConfig) -> float:
    end = 0.0
    limit = cfg.max_duration_s * 4 + 10  # enough to report "too long" without reading forever
    streams = [s for s in (hdr.vstream, hdr.astream) if s is not None]
    try:
        for packet in container.demux(*streams):
            if packet.pts is None or packet.time_base is None:
                continue
            t = float((packet.pts + (packet.duration or 0)) * packet.time_base) - hdr.origin_s
            end = max(end, t)
            if end > limit:
                break
    except av.FFmpegError as exc:
        raise CorruptMediaError(f"{source.label}: damaged data: {_ffmsg(exc)}") from None
    return end


def decode_container(
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
    """Decode the clip; ``video=False`` or ``audio_track=False`` leaves that stream undecoded
    (its frames, or its samples, come back empty) so that the two can be decoded apart."""
    label = source.label
    with _opened(source) as container:
        hdr = _read_header(container, source, cfg)
        if hdr.vstream is None and video:
            raise MissingStreamError(f"{label} has no video stream (audio only)")
        if hdr.astream is None and require_audio:
            raise MissingStreamError(f"{label} has no audio stream (the microphone was off)")
        if hdr.duration_s > 0:
            check_duration(hdr.duration_s, cfg, label=label)
        vcc = hdr.vstream.codec_context if hdr.vstream is not None else None
        if vcc is not None:
            _guard_decoder(vcc, cfg)
            vcc.thread_count = cfg.decode_threads
            if cfg.decode_threads != 1:
                vcc.thread_type = "AUTO"
        streams = ([hdr.vstream] if video else []) + (
            [hdr.astream] if audio_track and hdr.astream is not None else []
        )

        # Guards against a container that lies: time past the limit (plus a margin for audio
        # priming and rounding), and a frame count no honest clip of that length can reach.
        max_t = cfg.max_duration_s + 0.5
        max_decoded = int(cfg.max_duration_s * 250) + 25
        # Expected number of kept frames, to fill one preallocated array (no second copy at the
        # end, and no doubled peak memory); it grows if the estimate was short.
        dur = hdr.video_duration_s or hdr.duration_s or cfg.max_duration_s
        rate = hdr.fps or 30.0
        if every_nth is not None:
            rate /= every_nth
        elif target_fps is not None:
            rate = min(rate, target_fps)
        frames = _FrameBuffer(math.ceil(dur * rate) + 2, label)
        times: list[float] = []
        audio = AudioAccumulator()
        rotation: int | None = None
        n_decoded = 0
        first_t: float | None = None
        last_t = 0.0
        prev_t: float | None = None
        next_slot = 0  # for target_fps sampling: index of the next time slot to fill
        errors = 0
        nominal = 1.0 / hdr.fps if hdr.fps > 0 else 1.0 / 25.0

        demux = container.demux(*streams)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.FFmpegError as exc:
                raise CorruptMediaError(
                    f"{label}: the data stops or is damaged after {last_t:.2f} s "
                    f"(truncated upload?): {_ffmsg(exc)}"
                ) from None
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                if packet.stream.type == "video" and vcc is not None:
                    # FFmpeg's max_pixels backstop refused a giant frame: say so, typed.
                    check_resolution(vcc.width, vcc.height, cfg, label=label, declared=False)
                errors += 1
                if errors > _MAX_PACKET_ERRORS:
                    raise CorruptMediaError(
                        f"{label}: more than {_MAX_PACKET_ERRORS} packets failed to decode"
                    ) from None
                continue
            for frame in decoded:
                if packet.stream.type == "audio":
                    t0 = frame.time - hdr.origin_s if frame.time is not None else None
                    audio.add(frame_to_mono(frame), frame.sample_rate, t0)
                    if audio.seconds > max_t:
                        raise _too_long(label, audio.seconds, hdr, cfg, "audio")
                    continue
                n_decoded += 1
                if n_decoded > max_decoded:
                    raise _too_long(label, n_decoded * nominal, hdr, cfg, "frames")
                if frame.time is not None:
                    t = float(frame.time) - hdr.origin_s
                else:
                    t = (prev_t + nominal) if prev_t is not None else 0.0
                prev_t = t
                if t > max_t:
                    raise _too_long(label, t, hdr, cfg, "video")
                check_resolution(frame.width, frame.height, cfg, label=label, declared=False)
                if rotation is None:
                    rotation = _rotation_of(frame)
                    hdr.width, hdr.height = frame.width, frame.height
                if first_t is None:
                    first_t = t
                last_t = max(last_t, t)
                # Sampling: decide before converting, so a skipped frame costs only its decode.
                if every_nth is not None:
                    keep = (n_decoded - 1) % every_nth == 0
                elif target_fps is not None:
                    slot = math.floor((t - first_t) * target_fps + 1e-6)
                    keep = slot >= next_slot
                    if keep:
                        next_slot = slot + 1
                else:
                    keep = True
                if keep:
                    img = _to_bgr(frame, rotation, cfg.max_frame_side)
                    frames.add(img)
                    times.append(t)
                    if on_frame is not None:
                        on_frame(frames.n - 1, t, img)

        if video and not frames.n:
            raise CorruptMediaError(f"{label}: no video frame could be decoded")
        rotation = rotation or 0
        span = last_t - (first_t or 0.0) + nominal
        measured = max(span, audio.seconds)
        for what, got, declared in (
            ("video", span, hdr.video_duration_s if video else 0.0),
            (
                "audio",
                audio.seconds,
                hdr.audio_duration_s if require_audio and audio_track else 0.0,
            ),
        ):
            if declared > 0 and got < _MIN_DECODED_SHARE * declared:
                raise CorruptMediaError(
                    f"{label}: only {got:.2f} s of {what} decoded of the {declared:.2f} s the "
                    "container declares (truncated upload?)"
                )
        check_duration(hdr.duration_s if hdr.duration_s > 0 else measured, cfg, label=label)
        if require_audio and audio_track and audio.seconds <= 0:
            raise MissingStreamError(f"{label}: the audio stream holds no decodable sound")
        info = hdr.info(
            rotation=rotation,
            size=source.size,
            duration_s=hdr.duration_s if hdr.duration_s > 0 else measured,
        )
    return Clip(
        frames=frames.result(),
        timestamps=np.asarray(times, dtype=np.float64),
        audio=audio.result(cfg.audio_rate),
        audio_rate=cfg.audio_rate,
        info=info,
        sha256=source.sha256(),
    )


class _FrameBuffer:
    def __init__(self, capacity: int, label: str) -> None:
        self.capacity = max(1, capacity)
        self.label = label
        self.n = 0
        self.buf: np.ndarray | None = None

    def add(self, img: np.ndarray) -> None:
        if self.buf is None:
            self.buf = np.empty((self.capacity, *img.shape), dtype=np.uint8)
        elif img.shape != self.buf.shape[1:]:
            h0, w0 = self.buf.shape[1:3]
            raise UnsupportedMediaError(
                f"{self.label}: the frame size changes mid-clip from {w0}x{h0} to "
                f"{img.shape[1]}x{img.shape[0]}",
                hint="Record one continuous clip without switching cameras or resolution.",
            )
        if self.n == self.buf.shape[0]:
            grown = np.empty((self.n + self.n // 2 + 8, *img.shape), dtype=np.uint8)
            grown[: self.n] = self.buf
            self.buf = grown
        self.buf[self.n] = img
        self.n += 1

    def result(self) -> np.ndarray:
        if self.buf is None:
            return np.zeros((0, 0, 0, 3), dtype=np.uint8)
        if self.n == self.buf.shape[0]:
            return self.buf
        if self.n >= 0.9 * self.buf.shape[0]:
            return self.buf[: self.n]  # a view; the few spare slots are not worth a copy
        return self.buf[: self.n].copy()


def _too_long(label: str, t: float, hdr: _Header, cfg: MediaConfig, what: str) -> MediaError:
    said = f" (the container declares {hdr.duration_s:.2f} s)" if hdr.duration_s > 0 else ""
    return MediaLimitError(
        f"{label}: {what} runs past {t:.2f} s, over the {cfg.max_duration_s:g} s limit{said}",
        hint="Record a shorter clip (just the digits), or raise [media] max_duration_s.",
    )


def _to_bgr(frame: Any, rotation: int, max_side: int | None) -> np.ndarray:
    w, h = frame.width, frame.height
    if max_side and max(w, h) > max_side:
        scale = max_side / max(w, h)
        w2, h2 = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
        img = frame.to_ndarray(format="bgr24", width=w2, height=h2, interpolation="AREA")
    else:
        img = frame.to_ndarray(format="bgr24")
    if rotation:
        img = cv2.rotate(img, _ROTATE[rotation])
    return np.ascontiguousarray(img)
