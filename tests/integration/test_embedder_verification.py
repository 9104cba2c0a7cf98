"""Whole photos -> detect (MTCNN) -> align -> embed -> match, on the shared face photos."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from liveness.checks.align import align_chip
from liveness.checks.match import match_faces
from liveness.config import Config
from liveness.inference.detector import FaceDetector
from liveness.inference.embedder import FaceEmbedder
from liveness.results import Reason
from tests.conftest import require_models, shared

PEOPLE = {
    "obama_1": "obama",
    "obama_2": "obama",
    "obama_3": "obama",
    "obama_1_240p": "obama",
    "biden_1": "biden",
    "biden_2": "biden",
    "kit_harington_1": "kit",
    "kit_harington_2": "kit",
    "rose_leslie_1": "rose",
    "rose_leslie_2": "rose",
    "alex_lacamoire_1": "alex",
}


@pytest.fixture(scope="module")
def embeddings() -> dict[str, np.ndarray]:
    require_models("mtcnn", "dlib_resnet")
    cfg = Config()
    detector = FaceDetector.from_config(cfg)
    embedder = FaceEmbedder.from_config(cfg)
    chips = []
    for name in PEOPLE:
        image = cv2.imread(str(shared("faces", f"{name}.jpg")))
        faces = detector.detect(image)
        assert len(faces) == 1, name
        chips.append(align_chip(image, faces[0].landmarks))
    return dict(zip(PEOPLE, embedder.embed(np.stack(chips)), strict=True))


def _pairs(genuine: bool) -> list[tuple[str, str]]:
    return [
        (a, b) for a, b in itertools.combinations(PEOPLE, 2) if (PEOPLE[a] == PEOPLE[b]) is genuine
    ]


def test_all_genuine_pairs_match(embeddings: dict[str, np.ndarray]) -> None:
    threshold = Config().face.match_threshold
    pairs = _pairs(True)
    assert len(pairs) == 9
    for a, b in pairs:
        result = match_faces(embeddings[a], embeddings[b], threshold=threshold)
        assert result.passed, (a, b, result.distance)
        assert result.reasons == ()


def test_all_impostor_pairs_rejected(embeddings: dict[str, np.ndarray]) -> None:
    threshold = Config().face.match_threshold
    pairs = _pairs(False)
    assert len(pairs) == 46
    for a, b in pairs:
        result = match_faces(embeddings[a], embeddings[b], threshold=threshold)
        assert not result.passed, (a, b, result.distance)
        assert result.reasons == (Reason.FACE_MISMATCH,)


def test_low_resolution_copy_still_matches(embeddings: dict[str, np.ndarray]) -> None:
    result = match_faces(embeddings["obama_2"], embeddings["obama_1_240p"])
    assert result.passed and result.distance < Config().face.match_threshold


def test_reference_against_several_frames(embeddings: dict[str, np.ndarray]) -> None:
    # enrolled obama_2 against three "frames" of Obama: median passes; against Biden's: fails
    frames = np.stack([embeddings[n] for n in ("obama_1", "obama_3", "obama_1_240p")])
    ok = match_faces(embeddings["obama_2"], frames, frame_ids=[4, 9, 14])
    assert ok.passed and ok.frames == (4, 9, 14) and len(ok.distances) == 3
    bad = match_faces(embeddings["biden_1"], frames)
    assert not bad.passed and bad.reasons == (Reason.FACE_MISMATCH,)


def test_identity_change_between_people(embeddings: dict[str, np.ndarray]) -> None:
    from liveness.checks.match import identity_continuity

    same = [embeddings[n] for n in ("obama_1", "obama_2", "obama_3", "obama_1_240p")]
    assert not identity_continuity(np.stack(same), window=2).changed
    swapped = same[:2] + [embeddings["biden_1"], embeddings["biden_2"]]
    res = identity_continuity(np.stack(swapped), window=2)
    assert res.changed and res.change_at == 2 and res.reasons == (Reason.FACE_CHANGED,)
