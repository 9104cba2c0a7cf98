"""Face embedder: ONNX per face at batch 1 and 8, alignment, and dlib's own descriptor side by side.

Run: .venv/bin/pytest benchmarks/bench_embedder.py --benchmark-enable
dlib (dev-only, `pip install dlib-bin`) runs on the same chips in the same process when it is
importable; compare its median with ``test_embed_batch1`` (the ratio is the speed-up).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.conftest import require_models, shared
from liveness.checks.align import align_chip
from liveness.config import Config
from liveness.inference.detector import FaceDetector
from liveness.inference.embedder import FaceEmbedder
from liveness.models.dlib_resnet import find_source


@pytest.fixture(scope="module")
def chips() -> np.ndarray:
    files = sorted(shared("faces", "johns").glob("*.jpg"))[:8]
    return np.stack([cv2.imread(str(f)) for f in files])


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    require_models("dlib_resnet")
    return FaceEmbedder.from_config(Config())


def test_embed_batch1(benchmark, embedder: FaceEmbedder, chips: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    one = chips[:1]
    embedder.embed(one)  # warm-up
    out = benchmark(embedder.embed, one)
    assert out.shape == (1, 128)


def test_embed_batch8(benchmark, embedder: FaceEmbedder, chips: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    embedder.embed(chips)
    out = benchmark(embedder.embed, chips)
    assert out.shape == (8, 128)
    benchmark.extra_info["faces_per_call"] = 8


def test_dlib_descriptor_batch1(benchmark, chips: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    dlib = pytest.importorskip("dlib", reason="dlib-bin not installed (dev-only baseline)")
    model = dlib.face_recognition_model_v1(str(find_source()))
    rgb = np.ascontiguousarray(chips[0][:, :, ::-1])
    model.compute_face_descriptor(rgb)
    out = benchmark(model.compute_face_descriptor, rgb)
    assert len(out) == 128


def test_align_chip(benchmark) -> None:  # type: ignore[no-untyped-def]
    require_models("mtcnn")
    image = cv2.imread(str(shared("faces", "obama_2.jpg")))
    (face,) = FaceDetector.from_config(Config()).detect(image)
    chip = benchmark(align_chip, image, face.landmarks)
    assert chip.shape == (150, 150, 3)
