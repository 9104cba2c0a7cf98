"""Face embeddings: dlib's face-recognition ResNet, run as ONNX (see liveness.models.dlib_resnet).

Input: aligned 150x150 BGR uint8 chips (``liveness.checks.align.align_chip``), output: one
128-d float32 descriptor per chip, comparable by Euclidean distance (``liveness.checks.match``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from liveness.errors import MediaError, ModelError

if TYPE_CHECKING:
    import onnxruntime as ort

    from liveness.config import Config

__all__ = ["CHIP_SIZE", "EMBEDDING_DIM", "FaceEmbedder"]

MODEL_NAME = "face_embedder"
CHIP_SIZE = 150
EMBEDDING_DIM = 128
# Per-channel RGB mean stored in dlib's input layer (input_rgb_image_sized); input = (x - mean)/256.
DEFAULT_MEAN_RGB = (122.782, 117.001, 104.298)
DEFAULT_SCALE = 1.0 / 256.0


class FaceEmbedder:
    """Wraps one ONNX Runtime session of the converted dlib ResNet.

    ``embed`` = ``postprocess(infer(preprocess(chips)))``; ``preprocess`` and ``postprocess`` are
    pure numpy, ``infer`` only calls ``session.run``. All chips go through in one batch (split
    into ``max_batch`` pieces to bound memory).
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        *,
        mean_rgb: tuple[float, float, float] = DEFAULT_MEAN_RGB,
        scale: float = DEFAULT_SCALE,
        max_batch: int = 32,
        version: str = "",
    ) -> None:
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                f"face embedder model has {len(inputs)} inputs and {len(outputs)} outputs, "
                "expected 1 and 1"
            )
        shape = inputs[0].shape
        if len(shape) != 4 or list(shape[1:]) != [3, CHIP_SIZE, CHIP_SIZE]:
            raise ModelError(f"face embedder input shape {shape} is not (N, 3, 150, 150)")
        if max_batch < 1:
            raise ModelError(f"max_batch must be >= 1, got {max_batch}")
        self.session = session
        self.input_name: str = inputs[0].name
        self.output_name: str = outputs[0].name
        self._mean = np.asarray(mean_rgb, dtype=np.float32).reshape(1, 1, 1, 3)
        self._scale = np.float32(scale)
        self.max_batch = max_batch
        self.version = version

    @classmethod
    def from_config(cls, cfg: Config) -> FaceEmbedder:
        """Load the verified, cached session named ``face_embedder`` from the model manifest."""
        from liveness.models.registry import load_session

        session, entry = load_session(MODEL_NAME, cfg.models)
        mean = entry.extra.get("mean_rgb", DEFAULT_MEAN_RGB)
        scale = entry.extra.get("scale", DEFAULT_SCALE)
        if len(mean) != 3:
            raise ModelError(f"manifest entry {MODEL_NAME!r} has a bad mean_rgb {mean!r}")
        return cls(
            session,
            mean_rgb=(float(mean[0]), float(mean[1]), float(mean[2])),
            scale=float(scale),
            version=entry.version,
        )

    def preprocess(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) BGR uint8 -> (N, 3, 150, 150) float32, RGB, mean-subtracted, /256."""
        chips = _check_chips(chips)
        rgb = chips[..., ::-1].astype(np.float32)
        x = (rgb - self._mean) * self._scale
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def infer(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: x})[0]
        return np.asarray(out)

    @staticmethod
    def postprocess(raw: np.ndarray) -> np.ndarray:
        """Model output -> (N, 128) float32 (dlib's descriptors are used as is, not normalised)."""
        out = np.asarray(raw, dtype=np.float32).reshape(raw.shape[0], -1)
        if out.shape[1] != EMBEDDING_DIM:
            raise ModelError(f"face embedder returned {out.shape[1]} values, expected 128")
        if not np.isfinite(out).all():
            raise ModelError("face embedder returned non-finite values")
        return out

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Embed aligned chips: (N, 150, 150, 3) BGR uint8 -> (N, 128) float32."""
        x = self.preprocess(chips)
        if x.shape[0] == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        parts = [
            self.postprocess(self.infer(x[i : i + self.max_batch]))
            for i in range(0, x.shape[0], self.max_batch)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def embed_one(self, chip: np.ndarray) -> np.ndarray:
        """Embed a single (150, 150, 3) chip -> (128,)."""
        return self.embed(np.asarray(chip)[None])[0]


def _check_chips(chips: np.ndarray) -> np.ndarray:
    if not isinstance(chips, np.ndarray):
        raise MediaError(f"face chips must be a numpy array, got {type(chips).__name__}")
    if chips.ndim == 3:
        raise MediaError(
            f"face chips must be a batch (N, 150, 150, 3), got one chip {chips.shape}",
            hint="Use embed_one() for a single chip, or add a leading batch axis.",
        )
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise MediaError(
            f"face chips must have shape (N, 150, 150, 3), got {chips.shape}",
            hint="Align faces with liveness.checks.align.align_chip first.",
        )
    if chips.dtype != np.uint8:
        raise MediaError(f"face chips must be uint8 BGR, got {chips.dtype}")
    return chips
