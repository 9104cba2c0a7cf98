"""Regenerate johns_dlib_descriptors.npy with dlib itself (dev-only; needs `pip install dlib-bin`).

Run from the repo root:  .venv/bin/python tests/data/embedder/make_reference.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import dlib
import numpy as np

from liveness.models.dlib_resnet import find_source

HERE = Path(__file__).resolve().parent
JOHNS = HERE.parents[2] / ".." / "shared" / "data" / "faces" / "johns"


def main() -> None:
    files = sorted(JOHNS.glob("*.jpg"))
    model = dlib.face_recognition_model_v1(str(find_source()))
    out = []
    for f in files:
        rgb = np.ascontiguousarray(cv2.imread(str(f))[:, :, ::-1])  # the file is the chip
        out.append(np.asarray(model.compute_face_descriptor(rgb), dtype=np.float32))
    np.save(HERE / "johns_dlib_descriptors.npy", np.stack(out))
    (HERE / "johns_files.txt").write_text("".join(f"{f.name}\n" for f in files))


if __name__ == "__main__":
    main()
