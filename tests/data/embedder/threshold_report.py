"""Print genuine/impostor face-distance distributions, EER and FNMR at zero false matches.

Run from the repo root (after `liveness models build mtcnn dlib_resnet`):
    .venv/bin/python tests/data/embedder/threshold_report.py
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np

from liveness.checks.align import align_chip
from liveness.config import Config
from liveness.inference.detector import FaceDetector
from liveness.inference.embedder import FaceEmbedder

FACES = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "faces"
PHOTOS = [
    "obama_1", "obama_2", "obama_3", "obama_1_240p", "biden_1", "biden_2",
    "kit_harington_1", "kit_harington_2", "rose_leslie_1", "rose_leslie_2", "alex_lacamoire_1",
]  # fmt: skip


def split(emb: np.ndarray, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    gen, imp = [], []
    for i, j in itertools.combinations(range(len(ids)), 2):
        d = float(np.linalg.norm(emb[i] - emb[j]))
        (gen if ids[i] == ids[j] else imp).append(d)
    return np.array(gen), np.array(imp)


def describe(name: str, gen: np.ndarray, imp: np.ndarray, threshold: float) -> None:
    q = [0, 25, 50, 75, 100]
    print(f"{name}: {gen.size} genuine, {imp.size} impostor pairs")
    print("  genuine  min/q1/median/q3/max", np.round(np.percentile(gen, q), 3).tolist())
    print("  impostor min/q1/median/q3/max", np.round(np.percentile(imp, q), 3).tolist())
    ts = np.unique(np.concatenate([gen, imp]))
    fnmr = np.array([(gen > t).mean() for t in ts])
    fmr = np.array([(imp <= t).mean() for t in ts])
    k = int(np.argmin(np.abs(fnmr - fmr)))
    print(f"  EER ~ {max(fnmr[k], fmr[k]):.4f} at t = {ts[k]:.3f}")
    first_false = float(imp.min())  # every t below this has zero false matches
    fnmr0 = float((gen >= first_false).mean())
    print(f"  zero FMR for t < {first_false:.3f}; FNMR just below it: {fnmr0:.4f}")
    print(f"  at default t = {threshold}: FNMR {(gen > threshold).mean():.4f}, "
          f"FMR {(imp <= threshold).mean():.4f}")  # fmt: skip


def main() -> None:
    cfg = Config()
    det, emb = FaceDetector.from_config(cfg), FaceEmbedder.from_config(cfg)
    chips = []
    for name in PHOTOS:
        image = cv2.imread(str(FACES / f"{name}.jpg"))
        (face,) = det.detect(image)
        chips.append(align_chip(image, face.landmarks))
    ids = [n.replace("_240p", "").rsplit("_", 1)[0] for n in PHOTOS]
    describe(
        "faces/ (detect, align, embed)",
        *split(emb.embed(np.stack(chips)), ids),
        cfg.face.match_threshold,
    )
    files = sorted((FACES / "johns").glob("*.jpg"))
    jchips = np.stack([cv2.imread(str(f)) for f in files])
    jids = [f.name.rsplit("_", 2)[0] for f in files]
    describe(
        "faces/johns (aligned chips)", *split(emb.embed(jchips), jids), cfg.face.match_threshold
    )


if __name__ == "__main__":
    main()
