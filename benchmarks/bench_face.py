"""Face detection and the whole face stage, through the public classes, after warm-up.

Run: ``.venv/bin/pytest benchmarks/bench_face.py --benchmark-enable`` (add
``--benchmark-min-rounds=3`` for a quick pass). Single-threaded ONNX Runtime sessions.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from benchmarks.conftest import require_models, shared
from liveness.config import Config
from liveness.inference.detector import FaceDetector
from liveness.media import open_clip, read_image
from liveness.stages.face import FaceStage


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    require_models("mtcnn")
    return FaceDetector.from_config(Config())


@pytest.fixture(scope="module")
def stage() -> FaceStage:
    require_models("mtcnn", "dlib_resnet")
    return FaceStage.from_config(Config())


def _frame(width: int, height: int) -> np.ndarray:
    """obama_1 letterboxed into a width x height frame (a face ~1/3 of the height)."""
    img = read_image(shared("faces", "obama_1.jpg"))
    f = height / img.shape[0]
    img = cv2.resize(img, (round(img.shape[1] * f), height), interpolation=cv2.INTER_AREA)
    out = np.zeros((height, width, 3), np.uint8)
    x = (width - img.shape[1]) // 2
    out[:, x : x + img.shape[1]] = img
    return out


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720)])
def test_detect_frame(benchmark: Any, detector: FaceDetector, width: int, height: int) -> None:
    frame = _frame(width, height)
    assert len(detector.detect(frame)) == 1
    faces = benchmark(detector.detect, frame)
    assert len(faces) == 1


def test_refine_frame_640(benchmark: Any, detector: FaceDetector) -> None:
    frame = _frame(640, 480)
    box = detector.detect(frame)[0].box
    assert benchmark(detector.refine, frame, box) is not None


@pytest.mark.parametrize("fps", [10, None], ids=["10fps", "25fps"])
def test_face_stage_grid_3s(benchmark: Any, stage: FaceStage, fps: int | None) -> None:
    """Decode excluded: the clip is decoded once; the reference embedding is computed once."""
    clip = open_clip(shared("grid", "bbaf2n.mpg"), target_fps=fps)
    ref = stage.reference(clip.frames[0])
    stage.run(clip, ref)
    res = benchmark(stage.run, clip, ref)
    assert res.reasons == ()
