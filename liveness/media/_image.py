"""Still images (the enrolled reference photo, frames in a folder): JPEG, PNG, WebP, BMP.

The size is read from the file header first, so a photo that declares an absurd resolution is
refused before OpenCV allocates anything.
"""

from __future__ import annotations

import os
import struct

import cv2
import numpy as np

from liveness.config import MediaConfig
from liveness.errors import CorruptMediaError, MediaLimitError, UnsupportedMediaError
from liveness.media._source import Source, resolve

__all__ = ["image_header", "read_image"]


def read_image(src: str | os.PathLike[str] | bytes, cfg: MediaConfig | None = None) -> np.ndarray:
    """Decode a photo to BGR uint8 ``(H, W, 3)`` with its EXIF orientation applied.

    Raises MediaNotFoundError, EmptyMediaError, UnsupportedMediaError (not JPEG/PNG/WebP/BMP),
    MediaLimitError (file or declared resolution over the limits) or CorruptMediaError.
    """
    cfg = cfg or MediaConfig()
    source = resolve(src, max_bytes=cfg.max_image_bytes, what="image")
    return decode_image(source, cfg)


def decode_image(source: Source, cfg: MediaConfig, *, what: str = "image") -> np.ndarray:
    data = source.read_all()
    fmt, width, height = image_header(data, label=source.label, what=what)
    check_image_size(width, height, cfg, label=source.label, what=what)
    if fmt == "jpeg" and data.rfind(b"\xff\xd9") < 0:
        raise CorruptMediaError(f"{what} {source.label} is a truncated JPEG (no end marker)")
    buf = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_COLOR applies the EXIF orientation; anything with alpha or grey becomes 3-channel BGR.
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        raise CorruptMediaError(f"{what} {source.label} could not be decoded as {fmt.upper()}")
    return np.ascontiguousarray(img, dtype=np.uint8)


def check_image_size(width: int, height: int, cfg: MediaConfig, *, label: str, what: str) -> None:
    if width <= 0 or height <= 0:
        raise CorruptMediaError(f"{what} {label} declares an empty size {width}x{height}")
    if width * height > cfg.max_image_pixels:
        raise MediaLimitError(
            f"{what} {label} declares {width}x{height} = {width * height / 1e6:.1f} Mpx, over the "
            f"{cfg.max_image_pixels / 1e6:.1f} Mpx limit",
            hint="Send a smaller photo, or raise [media] max_image_pixels.",
        )


def image_header(
    data: bytes, *, label: str = "<bytes>", what: str = "image"
) -> tuple[str, int, int]:
    """(format, width, height) from the header alone; no pixel is decoded."""
    try:
        if data.startswith(b"\xff\xd8\xff"):
            return ("jpeg", *_jpeg_size(data))
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            if data[12:16] != b"IHDR":
                raise CorruptMediaError(f"{what} {label}: PNG without IHDR header")
            w, h = struct.unpack(">II", data[16:24])
            return "png", w, h
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return ("webp", *_webp_size(data))
        if data.startswith(b"BM") and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            return "bmp", w, abs(h)
    except (struct.error, IndexError):
        raise CorruptMediaError(f"{what} {label}: header is truncated") from None
    raise UnsupportedMediaError(f"{what} {label} is not a JPEG, PNG, WebP or BMP image")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise CorruptMediaError("JPEG marker expected; the file is damaged")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (seg_len,) = struct.unpack(">H", data[i + 2 : i + 4])
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + seg_len
    raise CorruptMediaError("JPEG without a frame header (truncated or damaged)")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        b = data[21:25]
        w = 1 + (((b[1] & 0x3F) << 8) | b[0])
        h = 1 + (((b[3] & 0x0F) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
        return w, h
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    raise CorruptMediaError("WebP with an unknown first chunk")
