"""Alignment: similarity estimation is exact for exact data; chips have the right geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveness.checks.align import align_chip, chip_template, similarity_transform
from liveness.errors import MediaError


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


@pytest.mark.parametrize(
    "params", [(1.0, 0.0, 0.0, 0.0), (0.37, 0.4, 12.5, -3.0), (2.5, -1.2, -40.0, 77.0)]
)
def test_known_similarity_is_recovered(params: tuple[float, float, float, float]) -> None:
    m = _similarity(*params)
    src = np.random.default_rng(1).uniform(0, 500, (5, 2))
    dst = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(similarity_transform(src, dst), m, atol=1e-9)


def test_reflection_is_not_fitted() -> None:
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mirrored = src * [-1.0, 1.0]
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) >= 0


def test_template_scales_like_dlib() -> None:
    t150 = chip_template()
    assert t150.shape == (5, 2)
    assert t150[0, 0] < t150[1, 0] and t150[3, 0] < t150[4, 0]  # left points have smaller x
    np.testing.assert_allclose(chip_template(300), 2 * t150)
    # padding 0 stretches the unit face over the whole chip around the centre
    p0 = chip_template(150, 0.0)
    np.testing.assert_allclose((p0 - 75) / 1.5, t150 - 75)


def test_chip_of_landmarks_on_the_template_is_the_identity_crop() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
    chip = align_chip(image, chip_template())
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    np.testing.assert_array_equal(chip, image)


def test_chip_undoes_a_known_similarity() -> None:
    # a smooth image warped by a known similarity: aligning with the warped landmarks recovers it
    yy, xx = np.mgrid[0:150, 0:150]
    base = np.dstack([xx * 1.5, yy * 1.5, (xx + yy) * 0.75]).astype(np.uint8)
    m = _similarity(1.6, 0.3, 120.0, 10.0)  # keeps the warped image inside the canvas
    big = cv2.warpAffine(base, m, (400, 400), flags=cv2.INTER_LINEAR)
    lm = chip_template() @ m[:, :2].T + m[:, 2]
    chip = align_chip(big, lm)
    inner = (slice(10, 140), slice(10, 140))
    # two bilinear resamplings of a smooth ramp: at most a couple of grey levels apart
    assert np.abs(chip[inner].astype(int) - base[inner].astype(int)).max() <= 3


def test_large_face_is_area_downsampled() -> None:
    # a face 8x larger than the chip: a 1-px checkerboard must average to grey, not alias
    image = (np.indices((1200, 1200)).sum(axis=0) % 2 * 255).astype(np.uint8)
    image = np.dstack([image] * 3)
    lm = chip_template() * 8
    chip = align_chip(image, lm)
    assert abs(float(chip[20:130, 20:130].mean()) - 127.5) < 3
    assert chip[20:130, 20:130].std() < 10


def test_face_outside_the_image_gives_black() -> None:
    image = np.full((100, 100, 3), 200, dtype=np.uint8)
    chip = align_chip(image, chip_template() + 1000)
    assert chip.shape == (150, 150, 3) and chip.max() == 0


@pytest.mark.parametrize(
    ("image", "landmarks"),
    [
        (np.zeros((10, 10), np.uint8), chip_template()),
        (np.zeros((10, 10, 3), np.float32), chip_template()),
        ("not an image", chip_template()),
        (np.zeros((10, 10, 3), np.uint8), np.zeros((4, 2))),
        (np.zeros((10, 10, 3), np.uint8), np.full((5, 2), np.nan)),
        (np.zeros((10, 10, 3), np.uint8), np.ones((5, 2))),
    ],
)
def test_bad_input_is_a_media_error(image: object, landmarks: np.ndarray) -> None:
    with pytest.raises(MediaError):
        align_chip(image, landmarks)  # type: ignore[arg-type]
