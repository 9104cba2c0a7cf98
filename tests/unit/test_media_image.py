"""Photos: header sizes without decoding, EXIF orientation, formats."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.config import MediaConfig
from liveness.errors import CorruptMediaError, MediaLimitError, UnsupportedMediaError
from liveness.media import read_image
from liveness.media._image import image_header
from tests.conftest import shared

PHOTOS = ["obama_1.jpg", "biden_1.jpg", "kit_harington_2.jpg", "no_face_dogs.jpg"]


@pytest.mark.parametrize("name", PHOTOS)
def test_jpeg_header_size_matches_decoded_size(name: str) -> None:
    data = shared("faces", name).read_bytes()
    fmt, w, h = image_header(data)
    img = cv2.imdecode(
        np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    )
    assert fmt == "jpeg" and (h, w) == img.shape[:2]


@pytest.mark.parametrize(
    ("ext", "params"),
    [
        (".png", []),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 90]),  # lossy VP8
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless VP8L
        (".bmp", []),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    ],
)
def test_other_formats_roundtrip(ext: str, params: list[int]) -> None:
    src = read_image(shared("faces", "rose_leslie_1.jpg"))
    src = src[:301, :199]  # odd sizes catch off-by-one header parsing
    ok, buf = cv2.imencode(ext, src, params)
    assert ok
    data = buf.tobytes()
    fmt, w, h = image_header(data)
    assert (w, h) == (199, 301)
    img = read_image(data)
    assert img.shape == (301, 199, 3) and img.dtype == np.uint8
    if ext in (".png", ".bmp") or params == [cv2.IMWRITE_WEBP_QUALITY, 101]:
        np.testing.assert_array_equal(img, src)  # lossless


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    tiff = (
        b"MM\x00\x2a\x00\x00\x00\x08"
        + struct.pack(">H", 1)
        + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
        + struct.pack(">I", 0)
    )
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    return jpeg[:2] + app1 + jpeg[2:]


@pytest.mark.parametrize(
    ("orientation", "expect"),
    [
        (1, lambda a: a),
        (3, lambda a: cv2.rotate(a, cv2.ROTATE_180)),
        (6, lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)),
        (8, lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)),
    ],
)
def test_exif_orientation_is_applied(orientation: int, expect: object) -> None:
    """A phone photo stores sensor-orientation pixels plus an EXIF tag; we return it upright."""
    ok, buf = cv2.imencode(".jpg", read_image(shared("faces", "obama_1_240p.jpg")))
    plain = buf.tobytes()
    stored = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_COLOR)
    img = read_image(_with_exif_orientation(plain, orientation))
    np.testing.assert_array_equal(img, expect(stored))  # type: ignore[operator]


def test_grey_and_alpha_images_become_bgr(tmp_path: Path) -> None:
    grey = np.tile(np.arange(64, dtype=np.uint8), (32, 1))
    bgra = np.dstack([cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), np.full_like(grey, 128)])
    for name, arr in (("grey.png", grey), ("alpha.png", bgra)):
        cv2.imwrite(str(tmp_path / name), arr)
        img = read_image(tmp_path / name)
        assert img.shape == (32, 64, 3)
        np.testing.assert_array_equal(img[..., 0], grey)


def test_image_limits() -> None:
    data = shared("faces", "obama_1.jpg").read_bytes()
    with pytest.raises(MediaLimitError, match="Mpx"):
        read_image(data, MediaConfig(max_image_pixels=100_000))
    with pytest.raises(MediaLimitError, match="MB limit"):
        read_image(data, MediaConfig(max_image_bytes=1000))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"GIF89a" + b"\x00" * 100, UnsupportedMediaError),
        (b"\xff\xd8\xff", CorruptMediaError),  # JPEG signature and nothing else
        (b"\x89PNG\r\n\x1a\n\x00\x00", CorruptMediaError),
        (b"RIFF\x00\x00\x00\x00WEBPVP8Z" + b"\x00" * 20, CorruptMediaError),
    ],
)
def test_broken_headers(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_image(data)
