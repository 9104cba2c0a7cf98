"""The dlib .dat parser refuses damaged files with a ModelError (never a crash or a hang)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liveness.errors import ModelError, ModelMissingError
from liveness.models import dlib_resnet
from liveness.models.build import BuildOptions


@pytest.fixture(scope="module")
def dat() -> bytes:
    try:
        return dlib_resnet.find_source().read_bytes()
    except ModelMissingError as exc:
        pytest.skip(f"face_recognition_models not installed: {exc}")


def test_parses_the_real_file(dat: bytes) -> None:
    net = dlib_resnet.parse(dat)
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14 and kinds[-1] == "fc"
    assert net.chip_size == 150
    np.testing.assert_allclose(net.mean_rgb, (122.782, 117.001, 104.298), atol=1e-4)


@pytest.mark.parametrize("keep", [0, 1, 40, 300, 5000, 1_000_000])
def test_truncated_file_is_a_model_error(dat: bytes, keep: int) -> None:
    with pytest.raises(ModelError, match="not a valid"):
        dlib_resnet.parse(dat[:keep])


def test_trailing_bytes_are_a_model_error(dat: bytes) -> None:
    with pytest.raises(ModelError, match="trailing"):
        dlib_resnet.parse(dat + b"\x00")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_garbage_is_a_model_error(seed: int) -> None:
    junk = np.random.default_rng(seed).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    with pytest.raises(ModelError):
        dlib_resnet.parse(junk)


def test_altered_structure_is_a_model_error(dat: bytes) -> None:
    # the version run after the loss layer encodes the topology; change one tag into a layer
    i = dat.index(b"\x01\x01", 40)
    bad = dat[:i] + b"\x01\x02" + dat[i + 2 :]
    with pytest.raises(ModelError, match="structure"):
        dlib_resnet.parse(bad)


def test_build_from_a_truncated_source_fails_cleanly(
    dat: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.dat"
    broken.write_bytes(dat[: len(dat) // 2])
    monkeypatch.setattr(dlib_resnet, "find_source", lambda: broken)
    with pytest.raises(ModelError):
        dlib_resnet.build(tmp_path / "out", BuildOptions(force=True))
    assert not (tmp_path / "out" / "face_embedder.onnx").exists()
