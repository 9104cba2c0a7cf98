"""MTCNN on the shared photos: face counts, landmark layout, refinement, dlib cross-check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liveness.config import Config
from liveness.errors import MediaError
from liveness.inference.detector import Face, FaceDetector
from liveness.media import read_image
from tests.conftest import require_models, shared

SINGLE = [
    "alex_lacamoire_1",
    "biden_1",
    "biden_2",
    "kit_harington_1",
    "kit_harington_2",
    "obama_1",
    "obama_1_240p",
    "obama_2",
    "obama_3",
    "obama_partial_face",
    "rose_leslie_1",
    "rose_leslie_2",
]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    require_models("mtcnn")
    return FaceDetector.from_config(Config())


def _photo(name: str) -> np.ndarray:
    return read_image(shared("faces", f"{name}.jpg"))


def _assert_plausible(face: Face) -> None:
    x1, y1, x2, y2 = face.box.tolist()
    le, re, nose, ml, mr = face.landmarks.tolist()
    for x, y in face.landmarks.tolist():
        assert x1 <= x <= x2 and y1 <= y <= y2, "landmark outside its box"
    assert le[0] < re[0] and ml[0] < mr[0], "left/right swapped"
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1]), "eyes, nose, mouth not top to bottom"
    assert le[0] < nose[0] < re[0]


@pytest.mark.parametrize("name", SINGLE)
def test_one_face_per_portrait(detector: FaceDetector, name: str) -> None:
    faces = detector.detect(_photo(name))
    assert len(faces) == 1, [(f.box.tolist(), f.score) for f in faces]
    assert faces[0].score > 0.9
    if name != "obama_partial_face":  # cut off at the left edge: landmarks may fall outside
        _assert_plausible(faces[0])


def test_low_resolution_copy_finds_the_same_face(detector: FaceDetector) -> None:
    full = detector.detect(_photo("obama_1"))[0]
    low_img = _photo("obama_1_240p")
    low = detector.detect(low_img)[0]
    # the 240p copy is obama_1 resized (and padded to 427 wide): compare in relative units
    f = low_img.shape[0] / _photo("obama_1").shape[0]
    eye = float(np.linalg.norm(low.landmarks[0] - low.landmarks[1]))
    pad = (low_img.shape[1] - _photo("obama_1").shape[1] * f) / 2
    moved = full.landmarks * f + np.array([pad, 0], np.float32)
    # the copy is also shifted ~3 px vertically (measured: every landmark moves the same way),
    # so compare the layout after removing the mean translation
    diff = (moved - moved.mean(0)) - (low.landmarks - low.landmarks.mean(0))
    # 10% of the eye distance: ~2 px at 240p, where one pixel is 4% of it
    assert np.abs(diff).max() < 0.1 * eye
    assert np.abs(moved - low.landmarks).max() < 0.25 * eye  # and the same place in the frame


@pytest.mark.parametrize(("name", "at_least"), [("group_obama_and_biden", 2), ("group_many", 10)])
def test_group_photos_give_several_faces(detector: FaceDetector, name: str, at_least: int) -> None:
    faces = detector.detect(_photo(name))
    assert len(faces) >= at_least
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    frontal = [f for f in faces if f.score > 0.99]
    for f in frontal[:at_least]:
        _assert_plausible(f)


def test_no_face_among_dogs(detector: FaceDetector) -> None:
    assert detector.detect(_photo("no_face_dogs")) == []


def test_blank_and_tiny_images_give_no_face(detector: FaceDetector) -> None:
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((5, 7, 3), 128, np.uint8)) == []  # smaller than P-Net's window


def test_bad_input_is_a_media_error(detector: FaceDetector) -> None:
    with pytest.raises(MediaError):
        detector.detect(np.zeros((480, 640), np.uint8))


def test_detect_many_equals_detect_one_by_one(detector: FaceDetector) -> None:
    imgs = [_photo("obama_2"), _photo("biden_2"), _photo("no_face_dogs"), _photo("obama_2")]
    together = detector.detect_many(imgs)
    alone = [detector.detect(i) for i in imgs]
    assert [len(a) for a in together] == [len(a) for a in alone] == [1, 1, 0, 1]
    for a, b in zip(together, alone, strict=True):
        for fa, fb in zip(a, b, strict=True):
            # same crops through the same nets; batching only changes float summation order
            np.testing.assert_allclose(fa.box, fb.box, atol=1e-2)


def test_refine_recovers_a_face_from_a_shifted_box(detector: FaceDetector) -> None:
    img = _photo("obama_1")
    face = detector.detect(img)[0]
    w = face.width
    shifted = face.box + np.array([0.15 * w, -0.1 * w, 0.15 * w, -0.1 * w], np.float32)
    got = detector.refine(img, shifted)
    assert got is not None and got.score > 0.9
    # O-Net's regression pulls the box back: landmarks within 10% of the box width of the detected
    assert np.abs(got.landmarks - face.landmarks).max() < 0.1 * w
    far = np.array([0, 0, w, w], np.float32)  # top-left corner: curtain and flag, no face
    assert detector.refine(img, far) is None


@pytest.mark.parametrize("name", ["obama_1", "biden_2", "kit_harington_2", "rose_leslie_2"])
def test_landmarks_agree_with_dlib_68_point_model(detector: FaceDetector, name: str) -> None:
    """Independent check of the channel order / transpose: dlib's own landmark model."""
    dlib = pytest.importorskip("dlib", reason="dlib-bin is a dev-only tool")
    frm = pytest.importorskip("face_recognition_models")
    img = _photo(name)
    face = detector.detect(img)[0]
    predictor = dlib.shape_predictor(str(Path(frm.pose_predictor_model_location())))
    rgb = np.ascontiguousarray(img[:, :, ::-1])
    hog = dlib.get_frontal_face_detector()(rgb, 0)
    assert len(hog) >= 1
    pts = np.array([[p.x, p.y] for p in predictor(rgb, hog[0]).parts()], np.float32)
    ref = np.stack(
        [pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]]
    )  # eye centres, nose tip, mouth corners
    eye = float(np.linalg.norm(ref[1] - ref[0]))
    err = np.linalg.norm(face.landmarks - ref, axis=1) / eye
    # two different models, different definitions of "mouth corner" and "nose tip": MTCNN puts
    # them ~10-20% of the eye distance from dlib's; a swapped or transposed layout gives >50%
    assert err.max() < 0.3, err
