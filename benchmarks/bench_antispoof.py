"""Passive anti-spoofing: MiniFASNet per face (each model, batch 1 and 8, and the ensemble with
its crops), the model-free cues, and the whole passive stage on a 3 s GRID clip (30 frames at
10 fps, faces from our detector computed once outside the timing).

Run: .venv/bin/pytest benchmarks/bench_antispoof.py --benchmark-enable --benchmark-min-rounds=3
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from benchmarks.conftest import require_models, shared
from liveness.checks.spoof import moire_cue, motion_cues
from liveness.config import Config
from liveness.inference.antispoof import AntiSpoof
from liveness.inference.detector import Face, FaceDetector
from liveness.stages.spoof import PassiveStage

Clip3s = tuple[np.ndarray, np.ndarray, list[Face | None]]


@pytest.fixture(scope="module")
def antispoof() -> AntiSpoof:
    require_models("minifasnet")
    return AntiSpoof.from_config(Config())


@pytest.fixture(scope="module")
def clip() -> Clip3s:
    from liveness.media import open_clip

    require_models("mtcnn")
    c = open_clip(shared("grid", "bbaf2n.mpg"))
    det = FaceDetector.from_config(Config())
    faces = [max(f, key=lambda z: z.area) if f else None for f in det.detect_many(list(c.frames))]
    return c.frames, c.timestamps, faces


def _batch(clip: Clip3s, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    frames, _, faces = clip
    idx = [i for i, f in enumerate(faces) if f is not None][:n]
    return [frames[i] for i in idx], [faces[i].box for i in idx]  # type: ignore[union-attr]


@pytest.mark.parametrize("model", [0, 1], ids=["v2", "v1se"])
@pytest.mark.parametrize("n", [1, 8])
def test_model_infer(
    benchmark: Any, antispoof: AntiSpoof, clip: Clip3s, model: int, n: int
) -> None:
    """One model's session.run on n pre-cropped faces (inference only)."""
    imgs, boxes = _batch(clip, n)
    x = antispoof.preprocess(imgs, boxes)[model]
    m = antispoof._models[model]
    m.session.run(None, {m.input_name: x})
    out = benchmark(m.session.run, None, {m.input_name: x})
    assert out[0].shape == (n, 3)
    benchmark.extra_info["faces_per_call"] = n


@pytest.mark.parametrize("n", [1, 8])
def test_ensemble_with_crops(benchmark: Any, antispoof: AntiSpoof, clip: Clip3s, n: int) -> None:
    """Both models, crops included: what the stage pays per batch of faces."""
    imgs, boxes = _batch(clip, n)
    antispoof.live_scores(imgs, boxes)
    out = benchmark(antispoof.live_scores, imgs, boxes)
    assert out.shape == (n,)
    benchmark.extra_info["faces_per_call"] = n


def test_moire_cue_8_frames(benchmark: Any, clip: Clip3s) -> None:
    frames, _, faces = clip
    imgs, boxes = _batch(clip, 8)
    grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in imgs]
    r = benchmark(moire_cue, grays, boxes, threshold=6.0)
    assert r.decided


def test_motion_cues_3s(benchmark: Any, clip: Clip3s) -> None:
    frames, ts, faces = clip
    grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    boxes = [f.box if f is not None else None for f in faces]
    planar, still = benchmark(
        motion_cues, grays, ts, boxes, planar_threshold=0.8, still_threshold=0.4
    )
    assert still.decided


def test_passive_stage_3s(benchmark: Any, clip: Clip3s) -> None:
    require_models("minifasnet")
    stage = PassiveStage.from_config(Config())
    frames, ts, faces = clip
    stage.run(frames, ts, faces)
    r = benchmark(stage.run, frames, ts, faces)
    assert r.passed
    benchmark.extra_info["frames"] = len(frames)
