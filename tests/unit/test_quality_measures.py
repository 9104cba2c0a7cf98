"""Face quality measures and best-frame choice, on synthetic images with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveness.checks.quality import (
    FaceQuality,
    face_quality,
    pick_best,
    pose_from_landmarks,
    summarize_quality,
    usable,
)
from liveness.config import FaceConfig
from liveness.inference.detector import Face
from liveness.results import Reason

CFG = FaceConfig()
FRONTAL = np.array([[40, 40], [80, 40], [60, 60], [45, 80], [75, 80]], np.float32)


def _face(landmarks: np.ndarray = FRONTAL, box: tuple[int, ...] = (20, 10, 100, 110)) -> Face:
    return Face(box=np.array(box, np.float32), score=0.99, landmarks=landmarks.astype(np.float32))


def _textured(level: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(60, 200, (120, 120, 3)).astype(np.float32) * level
    return np.clip(img, 0, 255).astype(np.uint8)


def test_pose_of_a_frontal_layout() -> None:
    yaw, roll, pitch = pose_from_landmarks(FRONTAL)
    assert yaw == pytest.approx(0.0)
    assert roll == pytest.approx(0.0)
    assert pitch == pytest.approx(0.5)  # nose halfway between eye line and mouth line


def test_pose_yaw_and_roll() -> None:
    turned = FRONTAL.copy()
    turned[2, 0] += 10  # nose 10 px right of the eyes' midpoint, eye distance 40
    assert pose_from_landmarks(turned)[0] == pytest.approx(0.25)
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    rotated = FRONTAL @ np.array([[c, s], [-s, c]], np.float32)
    yaw, roll, pitch = pose_from_landmarks(rotated)
    assert roll == pytest.approx(30.0, abs=1e-3)
    assert yaw == pytest.approx(0.0, abs=1e-6) and pitch == pytest.approx(0.5, abs=1e-6)


def test_blur_lowers_sharpness_and_darkness_lowers_brightness() -> None:
    img = _textured()
    sharp = face_quality(img, _face(), CFG)
    blurred = face_quality(cv2.GaussianBlur(img, (0, 0), 3), _face(), CFG)
    dark = face_quality(_textured(0.2), _face(), CFG)
    assert sharp.sharpness > 10 * blurred.sharpness
    assert sharp.sharpness > CFG.min_sharpness > blurred.sharpness
    assert dark.brightness < CFG.min_brightness < sharp.brightness
    assert sharp.value > blurred.value and sharp.value > dark.value


def test_face_outside_the_image_measures_zero() -> None:
    q = face_quality(_textured(), _face(box=(500, 500, 600, 600)), CFG)
    assert q.sharpness == 0.0 and q.brightness == 0.0 and not usable(q, CFG)


def _q(value: float) -> FaceQuality:
    return FaceQuality(
        size=0.3, sharpness=50, brightness=120, yaw=0, roll=0, pitch=0.5,
        detection_score=1.0, value=value,
    )  # fmt: skip


def test_pick_best_orders_by_value_and_keeps_a_gap() -> None:
    qs = [_q(0.5), _q(0.9), _q(0.8), None, _q(0.7), _q(0.1)]
    assert pick_best(qs, 2) == (1, 2)
    assert pick_best(qs, 2, min_gap=2) == (1, 4)  # 2 and 0 are next to 1, 5 next to 4
    assert pick_best(qs, 3, min_gap=2) == (1, 4, 2)  # no third at gap 2: relaxed to 1
    assert pick_best(qs, 5, min_gap=3) == (1, 4, 2, 0, 5)  # gap relaxed to fill k
    assert pick_best([None, None], 3) == ()


def test_summary_flags_a_dark_clip_and_a_blurred_one() -> None:
    faces = [_face()] * 4
    ok = summarize_quality([_textured(seed=i) for i in range(4)], faces, CFG)
    assert ok.reasons == () and ok.usable_frames == 4 and len(ok.best_frames) == 3
    assert ok.best_index == ok.best_frames[0]
    dark = summarize_quality([_textured(0.2, seed=i) for i in range(4)], faces, CFG)
    assert Reason.TOO_DARK in dark.reasons
    soft = [cv2.GaussianBlur(_textured(seed=i), (0, 0), 3) for i in range(4)]
    blurred = summarize_quality(soft, faces, CFG)
    assert blurred.reasons == (Reason.LOW_QUALITY,)
    assert blurred.best_index is not None  # still names a frame for the audit
    none = summarize_quality([_textured()] * 2, [None, None], CFG)
    assert none.best_index is None and none.reasons == ()
