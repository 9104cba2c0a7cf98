"""Face image quality: size, sharpness, exposure and pose, and the choice of the best frames.

Pure functions over arrays and ``Face`` values (no models, no I/O).

Measures, per face:

* ``size``: box width / the frame's shorter side;
* ``sharpness``: variance of the Laplacian of the grey face, cut to the inner part of the box
  (no background edges) and resized to ``SHARPNESS_WIDTH`` px wide, so that the value does not
  depend on how large the face is in the frame;
* ``brightness``: mean luma (0..255) of the same inner region;
* pose from the five landmarks: ``yaw`` = horizontal offset of the nose from the eyes' midpoint,
  over the eye distance (0 frontal, about +-0.5 in half profile), ``roll`` = angle of the eye
  line in degrees, ``pitch`` = where the nose sits between the eye line and the mouth line
  (about 0.5 frontal; smaller looking up, larger looking down).

Clip-level reasons: ``TOO_DARK`` when the median face brightness over the tracked frames is below
``face.min_brightness``; ``LOW_QUALITY`` when no tracked frame is usable (sharp enough, frontal
enough, large enough).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from liveness.config import FaceConfig
from liveness.inference.detector import Face
from liveness.results import Reason, Score

__all__ = [
    "SHARPNESS_WIDTH",
    "FaceQuality",
    "QualitySummary",
    "face_quality",
    "pick_best",
    "pose_from_landmarks",
    "summarize_quality",
    "usable",
]

SHARPNESS_WIDTH = 112  # px; the face is resized to this width before the Laplacian
_INNER = 0.15  # fraction of the box trimmed on each side before measuring


@dataclass(frozen=True, slots=True, kw_only=True)
class FaceQuality:
    """Quality measures of one face in one frame (see the module docstring)."""

    size: float
    sharpness: float
    brightness: float
    yaw: float
    roll: float
    pitch: float
    detection_score: float
    value: float  # overall rank in [0, 1]: higher is better

    def to_dict(self) -> dict[str, float]:
        return {
            "size": round(self.size, 4),
            "sharpness": round(self.sharpness, 2),
            "brightness": round(self.brightness, 2),
            "yaw": round(self.yaw, 4),
            "roll": round(self.roll, 2),
            "pitch": round(self.pitch, 4),
            "detection_score": round(self.detection_score, 4),
            "value": round(self.value, 4),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class QualitySummary:
    """Quality over a clip's tracked frames and the frames chosen from it."""

    per_frame: tuple[FaceQuality | None, ...]  # aligned with the clip's frames
    best_index: int | None  # the audit "best frame"
    best_frames: tuple[int, ...]  # for matching, best first
    median_brightness: float
    median_sharpness: float
    usable_frames: int
    reasons: tuple[Reason, ...]  # TOO_DARK, LOW_QUALITY
    scores: tuple[Score, ...]


def pose_from_landmarks(landmarks: npt.ArrayLike) -> tuple[float, float, float]:
    """(yaw, roll in degrees, pitch) from the five MTCNN landmarks; see the module docstring."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    le, re, nose, ml, mr = lm
    eye_mid = (le + re) / 2
    mouth_mid = (ml + mr) / 2
    eye_vec = re - le
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 1e-6:
        return 1.0, 0.0, 0.5  # degenerate: report as far from frontal
    roll = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
    # project onto the eye axis and its normal so roll does not leak into yaw and pitch
    ux = eye_vec / eye_dist
    uy = np.array([-ux[1], ux[0]])
    yaw = float(np.dot(nose - eye_mid, ux) / eye_dist)
    down = float(np.dot(mouth_mid - eye_mid, uy))
    pitch = float(np.dot(nose - eye_mid, uy) / down) if abs(down) > 1e-6 else 0.5
    return yaw, roll, pitch


def _inner_grey(image_bgr: npt.NDArray[np.uint8], box: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    dx, dy = (x2 - x1) * _INNER, (y2 - y1) * _INNER
    h, w = image_bgr.shape[:2]
    ix1, iy1 = max(int(round(x1 + dx)), 0), max(int(round(y1 + dy)), 0)
    ix2, iy2 = min(int(round(x2 - dx)), w), min(int(round(y2 - dy)), h)
    if ix2 - ix1 < 2 or iy2 - iy1 < 2:
        return np.zeros((0, 0), np.uint8)
    return cv2.cvtColor(image_bgr[iy1:iy2, ix1:ix2], cv2.COLOR_BGR2GRAY)  # type: ignore[return-value]


def face_quality(image_bgr: npt.NDArray[np.uint8], face: Face, cfg: FaceConfig) -> FaceQuality:
    """Measure one face in its frame."""
    h, w = image_bgr.shape[:2]
    size = face.width / max(min(h, w), 1)
    grey = _inner_grey(image_bgr, face.box)
    if grey.size == 0:
        sharp, bright = 0.0, 0.0
    else:
        bright = float(grey.mean())
        gh, gw = grey.shape
        th = max(2, int(round(gh * SHARPNESS_WIDTH / gw)))
        interp = cv2.INTER_AREA if gw > SHARPNESS_WIDTH else cv2.INTER_LINEAR
        norm = cv2.resize(grey, (SHARPNESS_WIDTH, th), interpolation=interp)
        sharp = float(cv2.Laplacian(norm, cv2.CV_64F).var())
    yaw, roll, pitch = pose_from_landmarks(face.landmarks)
    value = _rank(size, sharp, bright, yaw, face.score, cfg)
    return FaceQuality(
        size=size,
        sharpness=sharp,
        brightness=bright,
        yaw=yaw,
        roll=roll,
        pitch=pitch,
        detection_score=face.score,
        value=value,
    )


def _rank(size: float, sharp: float, bright: float, yaw: float, det: float, c: FaceConfig) -> float:
    """Overall quality in [0, 1]: each term saturates once comfortably past its threshold."""
    s_sharp = min(1.0, sharp / (3.0 * c.min_sharpness)) if c.min_sharpness > 0 else 1.0
    s_pose = max(0.0, 1.0 - abs(yaw) / c.max_yaw) if c.max_yaw > 0 else 1.0
    s_bright = float(np.clip((bright - c.min_brightness) / 60.0, 0.0, 1.0))
    s_size = min(1.0, size / (3.0 * c.min_face_frac)) if c.min_face_frac > 0 else 1.0
    return float(det * (0.35 * s_sharp + 0.35 * s_pose + 0.15 * s_bright + 0.15 * s_size))


def usable(q: FaceQuality, cfg: FaceConfig) -> bool:
    """Sharp, frontal and large enough to match on."""
    return (
        q.sharpness >= cfg.min_sharpness
        and abs(q.yaw) <= cfg.max_yaw
        and q.size >= cfg.min_face_frac
    )


def pick_best(
    qualities: Sequence[FaceQuality | None], k: int, *, min_gap: int = 1
) -> tuple[int, ...]:
    """Up to ``k`` frame indices by quality, best first, at least ``min_gap`` frames apart.

    Neighbouring frames of a video are nearly the same picture, so spacing them gives the match
    independent looks at the face. When spacing leaves fewer than ``k``, the gap is relaxed.
    """
    order = sorted(
        (i for i, q in enumerate(qualities) if q is not None),
        key=lambda i: (-qualities[i].value, i),  # type: ignore[union-attr]
    )
    chosen: list[int] = []
    for gap in (max(1, min_gap), 1):
        for i in order:
            if len(chosen) >= k:
                break
            if i not in chosen and all(abs(i - j) >= gap for j in chosen):
                chosen.append(i)
    return tuple(chosen)


def summarize_quality(
    frames: Sequence[npt.NDArray[np.uint8]] | npt.NDArray[np.uint8],
    faces: Sequence[Face | None],
    cfg: FaceConfig,
) -> QualitySummary:
    """Measure every tracked face, choose the best frames, and give the clip's quality reasons."""
    per: list[FaceQuality | None] = [
        face_quality(frames[i], f, cfg) if f is not None else None for i, f in enumerate(faces)
    ]
    measured = [q for q in per if q is not None]
    good = [q if q is not None and usable(q, cfg) else None for q in per]
    n_good = sum(q is not None for q in good)
    # prefer usable frames; fall back to all measured ones so a result still names frames
    pool = good if n_good else per
    gap = max(1, len(faces) // (2 * max(cfg.best_k, 1)))
    best = pick_best(pool, cfg.best_k, min_gap=gap)
    best_index = best[0] if best else None
    bright = float(np.median([q.brightness for q in measured])) if measured else 0.0
    sharp = float(np.median([q.sharpness for q in measured])) if measured else 0.0
    reasons: list[Reason] = []
    if measured and bright < cfg.min_brightness:
        reasons.append(Reason.TOO_DARK)
    if measured and n_good == 0:
        reasons.append(Reason.LOW_QUALITY)
    best_sharp = max((q.sharpness for q in measured), default=0.0)
    scores = (
        Score(name="face_brightness", value=bright, threshold=cfg.min_brightness),
        Score(name="face_sharpness", value=best_sharp, threshold=cfg.min_sharpness),
        Score(name="usable_face_frames", value=float(n_good), threshold=1.0),
    )
    return QualitySummary(
        per_frame=tuple(per),
        best_index=best_index,
        best_frames=best,
        median_brightness=bright,
        median_sharpness=sharp,
        usable_frames=n_good,
        reasons=tuple(reasons),
        scores=scores,
    )
