"""MiniFASNet passive anti-spoofing on ONNX Runtime: face boxes in, live probabilities out.

Two models, each fed its own crop of the same face (upstream Silent-Face-Anti-Spoofing
convention): the face box scaled about its centre (2.7x for V2, 4.0x for V1SE, read from the
manifest entry), shifted to lie inside the image, resized to 80x80, BGR with raw 0..255 values.
Each returns a softmax over (spoof-print, real, spoof-replay); class 1 is real. The ensemble score
is the mean of the two models' probabilities, as upstream.

The models score almost any patch as real (uniform noise gets ~0.99), so a score is only
meaningful on a detected, tracked face; ``liveness.stages.spoof`` makes sure of that and fuses
it with model-free cues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from liveness.config import Config, ModelConfig
from liveness.errors import MediaError, ModelError
from liveness.models.registry import ModelEntry, load_session

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["MODEL_NAMES", "AntiSpoof", "crop_box", "crop_patch"]

MODEL_NAMES = ("antispoof_v2", "antispoof_v1se")
F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


def crop_box(
    image_shape: tuple[int, ...], box: npt.ArrayLike, scale: float
) -> tuple[int, int, int, int]:
    """Inclusive pixel bounds ``(x1, y1, x2, y2)`` of the upstream crop around a face box.

    The box (x1, y1, x2, y2) is scaled about its centre by ``scale`` (reduced if the image is too
    small for it), then shifted so it lies inside the image; coordinates are truncated to int.
    """
    h_img, w_img = int(image_shape[0]), int(image_shape[1])
    b = np.asarray(box, dtype=np.float64).reshape(4)
    bw, bh = b[2] - b[0], b[3] - b[1]
    if not (np.all(np.isfinite(b)) and bw > 0 and bh > 0):
        raise MediaError(f"face box {b.tolist()} is empty or not finite")
    s = min((h_img - 1) / bh, (w_img - 1) / bw, scale)
    cx, cy = b[0] + bw / 2, b[1] + bh / 2
    x1, x2 = cx - bw * s / 2, cx + bw * s / 2
    y1, y2 = cy - bh * s / 2, cy + bh * s / 2
    if x1 < 0:
        x2 -= x1
        x1 = 0.0
    if y1 < 0:
        y2 -= y1
        y1 = 0.0
    if x2 > w_img - 1:
        x1 -= x2 - w_img + 1
        x2 = w_img - 1.0
    if y2 > h_img - 1:
        y1 -= y2 - h_img + 1
        y2 = h_img - 1.0
    return int(x1), int(y1), int(x2), int(y2)


def crop_patch(image_bgr: U8, box: npt.ArrayLike, scale: float, size: int = 80) -> U8:
    """The ``size`` x ``size`` BGR patch a model sees for one face box."""
    x1, y1, x2, y2 = crop_box(image_bgr.shape, box, scale)
    return np.asarray(cv2.resize(image_bgr[y1 : y2 + 1, x1 : x2 + 1], (size, size)), np.uint8)


@dataclass(frozen=True, slots=True)
class _Model:
    session: ort.InferenceSession
    entry: ModelEntry
    input_name: str
    scale: float
    size: int
    live_class: int


class AntiSpoof:
    """The MiniFASNet ensemble. Build once per process (``from_config``) and reuse."""

    def __init__(self, models: Sequence[tuple[ort.InferenceSession, ModelEntry]]) -> None:
        if not models:
            raise ModelError("AntiSpoof needs at least one model")
        out = []
        for sess, e in models:
            try:
                scale = float(e.extra["crop_scale"])
                live = int(e.extra.get("live_class", 1))
                size = int(e.input_size[-1])
            except (KeyError, TypeError, ValueError, IndexError):
                raise ModelError(
                    f"manifest entry {e.name!r} lacks crop_scale / input_size",
                    hint="Rebuild it with `liveness models build minifasnet --force`.",
                ) from None
            out.append(_Model(sess, e, sess.get_inputs()[0].name, scale, size, live))
        self._models = tuple(out)

    @classmethod
    def from_config(cls, cfg: Config | ModelConfig | None = None) -> AntiSpoof:
        mcfg = cfg.models if isinstance(cfg, Config) else cfg
        return cls([load_session(name, mcfg) for name in MODEL_NAMES])

    @property
    def model_versions(self) -> dict[str, str]:
        return {m.entry.name: f"{m.entry.version}:{m.entry.sha256[:12]}" for m in self._models}

    def preprocess(self, images_bgr: Sequence[U8], boxes: npt.ArrayLike) -> list[F32]:
        """One NCHW float32 batch per model: image ``i``'s crop around ``boxes[i]``."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(images_bgr) != len(b):
            raise ValueError(f"{len(images_bgr)} images but {len(b)} boxes")
        batches = []
        for m in self._models:
            patches = np.zeros((len(b), m.size, m.size, 3), np.uint8)
            for i, (img, box) in enumerate(zip(images_bgr, b, strict=True)):
                patches[i] = crop_patch(img, box, m.scale, m.size)
            batches.append(np.ascontiguousarray(patches.transpose(0, 3, 1, 2), dtype=np.float32))
        return batches

    def infer(self, batches: Sequence[F32]) -> list[F32]:
        """Softmax probabilities (N, 3) of each model on its batch."""
        out = []
        for m, x in zip(self._models, batches, strict=True):
            if len(x) == 0:
                out.append(np.zeros((0, 3), np.float32))
                continue
            out.append(np.asarray(m.session.run(None, {m.input_name: x})[0], dtype=np.float32))
        return out

    def postprocess(self, probs: Sequence[F32]) -> F32:
        """Ensemble live score per face: mean over models of P(real)."""
        live = [p[:, m.live_class] for m, p in zip(self._models, probs, strict=True)]
        return np.mean(np.stack(live), axis=0).astype(np.float32)

    def predict_probs(self, images_bgr: Sequence[U8], boxes: npt.ArrayLike) -> F32:
        """Mean softmax (N, 3) of the models for face ``i`` in image ``i`` (one batch per model)."""
        probs = self.infer(self.preprocess(images_bgr, boxes))
        return np.mean(np.stack(probs), axis=0).astype(np.float32)

    def live_scores(self, images_bgr: Sequence[U8], boxes: npt.ArrayLike) -> F32:
        """Ensemble P(real) for face ``i`` in image ``i``, all faces in one batch per model."""
        return self.postprocess(self.infer(self.preprocess(images_bgr, boxes)))
