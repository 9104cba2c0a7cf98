"""The converted dlib ResNet (ONNX) against our numpy reference and against dlib itself."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.config import Config
from liveness.inference.embedder import FaceEmbedder
from liveness.models import dlib_resnet
from liveness.models.registry import pinned_sha256
from tests.conftest import require_models, shared

DATA = Path(__file__).resolve().parents[1] / "data" / "embedder"


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    require_models("dlib_resnet")
    return FaceEmbedder.from_config(Config())


@pytest.fixture(scope="module")
def johns() -> tuple[list[str], np.ndarray]:
    files = sorted(shared("faces", "johns").glob("*.jpg"))
    chips = np.stack([cv2.imread(str(f)) for f in files])
    return [f.name for f in files], chips


@pytest.fixture(scope="module")
def johns_embeddings(embedder: FaceEmbedder, johns: tuple[list[str], np.ndarray]) -> np.ndarray:
    return embedder.embed(johns[1])


def test_johns_are_55_aligned_chips(johns: tuple[list[str], np.ndarray]) -> None:
    names, chips = johns
    assert chips.shape == (55, 150, 150, 3)
    assert names == (DATA / "johns_files.txt").read_text().split()


def test_onnx_equals_numpy_reference(
    embedder: FaceEmbedder, johns: tuple[list[str], np.ndarray], johns_embeddings: np.ndarray
) -> None:
    net = dlib_resnet.parse(dlib_resnet.find_source().read_bytes())
    ref = dlib_resnet.reference_forward(net, embedder.preprocess(johns[1]))
    assert ref.shape == (55, 128)
    # Both are float32 over the same weights; they differ only in summation order and in the
    # ONNX graph's affine layers being folded into the convolutions (measured max 2e-7).
    np.testing.assert_allclose(johns_embeddings, ref, rtol=0, atol=1e-4)


def test_onnx_equals_dlib_descriptors(johns_embeddings: np.ndarray) -> None:
    # Computed once with dlib-bin 20.0.1 (tests/data/embedder/make_reference.py). dlib runs the
    # same float32 network with its own BLAS kernels: measured max difference 3.3e-7; 1e-4 is
    # still ~3 orders of magnitude below the 0.6 decision threshold.
    dlib_ref = np.load(DATA / "johns_dlib_descriptors.npy")
    assert dlib_ref.shape == (55, 128)
    np.testing.assert_allclose(johns_embeddings, dlib_ref, rtol=0, atol=1e-4)


def test_batched_equals_single(embedder: FaceEmbedder, johns: tuple[list[str], np.ndarray]) -> None:
    chips = johns[1][:8]
    batch = embedder.embed(chips)
    single = np.stack([embedder.embed_one(c) for c in chips])
    # same kernels, different batch shapes: float32 rounding only
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-5)


def test_conversion_is_deterministic_and_pinned() -> None:
    blob, _ = dlib_resnet.convert(dlib_resnet.find_source())
    assert hashlib.sha256(blob).hexdigest() == pinned_sha256("face_embedder")


def test_johns_identities_separate_at_default_threshold(
    johns: tuple[list[str], np.ndarray], johns_embeddings: np.ndarray
) -> None:
    names = [n.rsplit("_", 2)[0] for n in johns[0]]  # John_Salley_000179_02159509.jpg
    same = np.array(names)[:, None] == np.array(names)[None, :]
    d = np.linalg.norm(johns_embeddings[:, None] - johns_embeddings[None, :], axis=2)
    iu = np.triu_indices(len(names), 1)
    genuine, impostor = d[iu][same[iu]], d[iu][~same[iu]]
    assert len(set(names)) == 5 and genuine.size == 275 and impostor.size == 1210
    threshold = Config().face.match_threshold
    assert impostor.min() > threshold  # no false match
    assert genuine.max() <= threshold  # no false non-match
