"""The whole face stage on real clips and photos: match, mismatch, swap, and capture problems."""

from __future__ import annotations

import dataclasses
from functools import cache

import cv2
import numpy as np
import pytest

from liveness.config import Config
from liveness.media import Clip, open_clip, read_image
from liveness.results import Reason
from liveness.stages.face import FaceStage, ReferenceFace
from tests.conftest import require_models, shared


@pytest.fixture(scope="module")
def stage() -> FaceStage:
    require_models("mtcnn", "dlib_resnet")
    return FaceStage.from_config(Config())


@cache
def _grid(name: str) -> Clip:
    return open_clip(shared("grid", f"{name}.mpg"))  # the engine's default sampling (10 fps)


def _with_frames(clip: Clip, frames: np.ndarray) -> Clip:
    ts = np.arange(len(frames), dtype=np.float64) / 10.0
    return dataclasses.replace(clip, frames=np.ascontiguousarray(frames), timestamps=ts)


def _still(photo: str, n: int = 6) -> Clip:
    img = read_image(shared("faces", f"{photo}.jpg"))
    return _with_frames(_grid("bbaf2n"), np.repeat(img[None], n, axis=0))


def test_grid_clip_matches_its_own_frame(stage: FaceStage) -> None:
    clip = _grid("lbax4n")
    ref = stage.reference(clip.frames[0])
    res = stage.run(clip, ref)
    assert res.reasons == ()
    assert res.match is not None and res.match.passed
    assert len(res.match.frames) == 3 and res.best_index == res.match.frames[0]
    assert all(f is not None for f in res.faces) and len(res.faces) == clip.n_frames
    names = {s.name for s in res.scores}
    assert {"face_distance", "face_continuity", "face_coverage", "face_sharpness"} <= names


# pwij3p and swwp2s show the same speaker (first-frame embedding distance 0.26, measured); every
# other pair of GRID clips here is 0.65-0.94 apart
@pytest.mark.parametrize(("speaker", "other"), [("bbaf2n", "lbax4n"), ("swwp2s", "lbbc2a")])
def test_grid_clip_against_another_speaker_is_face_mismatch(
    stage: FaceStage, speaker: str, other: str
) -> None:
    res = stage.run(_grid(speaker), stage.reference(_grid(other).frames[0]))
    assert Reason.FACE_MISMATCH in res.reasons
    assert res.match is not None and res.match.distance > res.match.threshold


def test_spliced_speakers_are_face_changed(stage: FaceStage) -> None:
    a, b = _grid("bbaf2n"), _grid("lbax4n")
    spliced = _with_frames(a, np.concatenate([a.frames[:15], b.frames[15:30]]))
    res = stage.run(spliced, stage.reference(a.frames[0]))
    assert Reason.FACE_CHANGED in res.reasons
    plain = stage.run(a, stage.reference(a.frames[0]))
    assert Reason.FACE_CHANGED not in plain.reasons
    same = _grid("pwij3p")  # same person as swwp2s in another recording: not a change
    joined = _with_frames(same, np.concatenate([_grid("swwp2s").frames[:15], same.frames[15:30]]))
    assert Reason.FACE_CHANGED not in stage.run(joined, stage.reference(same.frames[0])).reasons


def test_obama_240p_matches_obama_2(stage: FaceStage) -> None:
    ref = stage.reference(read_image(shared("faces", "obama_2.jpg")))
    assert ref.usable and ref.reasons == ()
    res = stage.run(_still("obama_1_240p"), ref)
    assert res.reasons == ()
    assert res.match is not None and res.match.passed
    other = stage.run(_still("biden_1"), ref)
    assert Reason.FACE_MISMATCH in other.reasons


def test_reference_photos(stage: FaceStage) -> None:
    for name in ("group_obama_and_biden", "group_many", "no_face_dogs"):
        ref = stage.reference(read_image(shared("faces", f"{name}.jpg")))
        assert ref.reasons == (Reason.REFERENCE_UNUSABLE,) and not ref.usable, name
    stored = stage.reference(read_image(shared("faces", "obama_1.jpg")))
    assert stored.embedding is not None
    again = ReferenceFace.from_embedding(stored.embedding)
    res = stage.run(_still("obama_1_240p"), again.embedding)  # a stored embedding as an array
    assert res.match is not None and res.match.passed


def test_unusable_reference_still_tracks(stage: FaceStage) -> None:
    ref = stage.reference(read_image(shared("faces", "no_face_dogs.jpg")))
    res = stage.run(_grid("bbaf2n"), ref)
    assert res.reasons == (Reason.REFERENCE_UNUSABLE,) and res.match is None
    assert res.best_index is not None


def test_group_photo_clip_is_multiple_faces(stage: FaceStage) -> None:
    res = stage.run(_still("group_obama_and_biden"), stage.reference(_grid("bbaf2n").frames[0]))
    assert Reason.MULTIPLE_FACES in res.reasons


def test_dogs_clip_is_no_face(stage: FaceStage) -> None:
    res = stage.run(_still("no_face_dogs"), stage.reference(_grid("bbaf2n").frames[0]))
    assert res.reasons == (Reason.NO_FACE,) and res.match is None and res.best_index is None


def test_dark_and_blurred_clips(stage: FaceStage) -> None:
    clip = _grid("lrwp9a")
    ref = stage.reference(clip.frames[0])
    dark = stage.run(_with_frames(clip, (clip.frames * 0.25).astype(np.uint8)), ref)
    assert Reason.TOO_DARK in dark.reasons
    soft = np.stack([cv2.GaussianBlur(f, (0, 0), 2.5) for f in clip.frames])
    blurred = stage.run(_with_frames(clip, soft), ref)
    assert Reason.LOW_QUALITY in blurred.reasons
