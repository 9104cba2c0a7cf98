"""FaceEmbedder's pure parts (pre/post-processing, input checks) on a tiny real ONNX session."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from liveness.errors import MediaError, ModelError
from liveness.inference.embedder import DEFAULT_MEAN_RGB, FaceEmbedder
from liveness.models.registry import make_session


def _tiny_model(out_dim: int = 128, in_size: int = 150) -> bytes:
    """input (N,3,S,S) -> per-channel mean -> (N,3) @ W (3,out_dim): a real, checkable graph."""
    w = np.zeros((3, out_dim), dtype=np.float32)
    w[0, 0] = w[1, 1] = w[2, 2] = 1.0
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["gap"]),
            helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, in_size, in_size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", out_dim])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder(make_session(_tiny_model()), max_batch=4)


def test_preprocess_is_rgb_minus_mean_over_256(embedder: FaceEmbedder) -> None:
    chips = np.zeros((2, 150, 150, 3), dtype=np.uint8)
    chips[..., 0] = 10  # blue
    chips[..., 2] = 250  # red
    x = embedder.preprocess(chips)
    assert x.shape == (2, 3, 150, 150) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[:, 0], (250 - DEFAULT_MEAN_RGB[0]) / 256, rtol=1e-6)
    np.testing.assert_allclose(x[:, 1], (0 - DEFAULT_MEAN_RGB[1]) / 256, rtol=1e-6)
    np.testing.assert_allclose(x[:, 2], (10 - DEFAULT_MEAN_RGB[2]) / 256, rtol=1e-6)


def test_embed_batches_and_keeps_order(embedder: FaceEmbedder) -> None:
    chips = np.stack([np.full((150, 150, 3), v, dtype=np.uint8) for v in range(0, 100, 10)])
    out = embedder.embed(chips)  # 10 chips through batches of 4
    assert out.shape == (10, 128) and out.dtype == np.float32
    want = (np.arange(0, 100, 10) - DEFAULT_MEAN_RGB[0]) / 256
    # float32 average over 22,500 pixels in the pool: ~3e-5 rounding
    np.testing.assert_allclose(out[:, 0], want, rtol=0, atol=1e-4)
    assert embedder.embed(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)


@pytest.mark.parametrize(
    "chips",
    [
        np.zeros((150, 150, 3), np.uint8),
        np.zeros((1, 112, 112, 3), np.uint8),
        np.zeros((1, 150, 150, 3), np.float32),
        [[0]],
    ],
)
def test_bad_chips_are_media_errors(embedder: FaceEmbedder, chips: object) -> None:
    with pytest.raises(MediaError):
        embedder.embed(chips)  # type: ignore[arg-type]


def test_wrong_model_shapes_are_model_errors() -> None:
    with pytest.raises(ModelError):
        FaceEmbedder(make_session(_tiny_model(in_size=112)))
    wrong_dim = FaceEmbedder(make_session(_tiny_model(out_dim=64)))
    with pytest.raises(ModelError, match="128"):
        wrong_dim.embed(np.zeros((1, 150, 150, 3), np.uint8))


def test_non_finite_output_is_a_model_error() -> None:
    with pytest.raises(ModelError):
        FaceEmbedder.postprocess(np.full((1, 128), np.nan, dtype=np.float32))


def test_garbage_model_bytes_are_a_model_error() -> None:
    with pytest.raises(ModelError):
        make_session(b"not an onnx model")
    onnx.checker.check_model(onnx.load_from_string(_tiny_model()))
