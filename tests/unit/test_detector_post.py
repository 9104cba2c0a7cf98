"""Pure parts of the MTCNN detector: NMS, box geometry, crops, pyramid, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from liveness.config import FaceConfig
from liveness.errors import MediaError
from liveness.inference.detector import (
    Face,
    FaceDetector,
    _crops,
    _net_input,
    _regress,
    _square,
    check_image,
    nms,
)


def test_nms_keeps_best_of_overlapping_and_disjoint_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.8, 0.9, 0.5, 0.7], np.float32)
    keep = nms(boxes, scores, 0.5)
    assert keep.tolist() == [1, 2]  # box 1 beats 0 and 3 (IoU 0.68 and 0.68); box 2 is apart


def test_nms_min_mode_drops_a_box_inside_another() -> None:
    boxes = np.array([[0, 0, 100, 100], [10, 10, 30, 30]], np.float32)
    scores = np.array([0.9, 0.95], np.float32)
    assert sorted(nms(boxes, scores, 0.7).tolist()) == [0, 1]  # IoU 0.04: both kept
    assert nms(boxes, scores, 0.7, mode="min").tolist() == [1]  # inside: overlap/min = 1


def test_nms_empty() -> None:
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).size == 0


def test_square_keeps_centre_and_takes_longer_side() -> None:
    sq = _square(np.array([[10, 20, 30, 60]], np.float32))
    assert sq.tolist() == [[0, 20, 40, 60]]


def test_regress_scales_offsets_by_box_size() -> None:
    out = _regress(
        np.array([[10, 10, 30, 50]], np.float32), np.array([[0.1, -0.1, 0.5, 0.25]], np.float32)
    )
    np.testing.assert_allclose(out, [[12, 6, 40, 60]])


def test_crops_zero_fill_outside_the_image() -> None:
    img = np.full((10, 10, 3), 200, np.uint8)
    out = _crops(img, np.array([[-10, 0, 10, 10], [0, 0, 10, 10]], np.int32), 4)
    assert out.shape == (2, 4, 4, 3)
    # left half outside; the anti-aliasing blur mixes the two middle columns, not the outer ones
    assert (out[0, :, 0] == 0).all() and (out[0, :, 3] == 200).all()
    assert (out[1] == 200).all()


def test_net_input_is_normalised_and_transposed() -> None:
    rgb = np.zeros((1, 2, 3, 3), np.uint8)  # H=2, W=3
    rgb[0, 1, 2] = 255
    x = _net_input(rgb)
    assert x.shape == (1, 3, 2, 3)  # width first
    assert x[0, 2, 1, 0] == pytest.approx((255 - 127.5) / 128)
    assert x[0, 0, 0, 0] == pytest.approx(-127.5 / 128)


def test_pyramid_starts_at_min_face_and_stops_at_the_window() -> None:
    det = FaceDetector.__new__(FaceDetector)
    det.cfg = FaceConfig(min_face_frac=0.25, pyramid_factor=0.5)
    scales = det._scales(400, 600, 0.25)  # min face 100 px -> first scale 12/100
    assert scales[0] == pytest.approx(0.12)
    assert all(400 * s >= 12 for s in scales)
    assert 400 * scales[-1] * 0.5 < 12
    assert len(scales) == 3  # 48, 24, 12 px short side


def test_face_scaled_maps_box_and_landmarks() -> None:
    f = Face(
        box=np.array([10, 20, 30, 40], np.float32),
        score=0.9,
        landmarks=np.arange(10, dtype=np.float32).reshape(5, 2),
    )
    g = f.scaled(2.0)
    assert g.box.tolist() == [20, 40, 60, 80] and g.landmarks[4].tolist() == [16, 18]
    assert g.score == 0.9 and f.width == 20 and f.area == 400 and f.center == (20, 30)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [[1, 2, 3]],
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 10, 3), np.uint8),
    ],
)
def test_check_image_rejects_what_is_not_a_bgr_image(bad: object) -> None:
    with pytest.raises(MediaError):
        check_image(bad)
