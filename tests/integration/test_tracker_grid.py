"""The tracker on real GRID talking-head clips (every frame, 25 fps)."""

from __future__ import annotations

import numpy as np
import pytest

from liveness.config import Config
from liveness.inference.detector import FaceDetector
from liveness.inference.tracker import FaceTracker, box_iou
from liveness.media import open_clip
from liveness.results import Reason
from tests.conftest import require_models, shared

CLIPS = ["bbaf2n", "brbk7n", "lbax4n", "lbbc2a", "lrwp9a", "lwbsza", "pwij3p", "sbia1a", "swwp2s"]


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    require_models("mtcnn")
    return FaceTracker(FaceDetector.from_config(Config()))


@pytest.mark.parametrize("name", CLIPS)
def test_one_stable_track_over_all_75_frames(tracker: FaceTracker, name: str) -> None:
    clip = open_clip(shared("grid", f"{name}.mpg"), target_fps=None)
    assert clip.n_frames == 75
    track = tracker.track(clip.frames)
    assert track.reasons == ()
    assert len(track.found) == 75 and track.jumps == () and track.multi_face_frames == ()
    assert len(track.refined) > 50  # most frames came from O-Net refinement alone
    faces = [f for f in track.faces if f is not None]
    for a, b in zip(faces, faces[1:], strict=False):
        # a seated speaker: consecutive boxes (40 ms apart) overlap heavily
        assert box_iou(a.box, b.box) > 0.6
        # eyes move less than 15% of the eye distance per frame (head motion + landmark jitter)
        eye = float(np.linalg.norm(a.landmarks[1] - a.landmarks[0]))
        assert np.abs(a.landmarks[:2] - b.landmarks[:2]).max() < 0.15 * eye


def test_face_leaving_the_frame_is_face_lost(tracker: FaceTracker) -> None:
    clip = open_clip(shared("grid", "bbaf2n.mpg"), target_fps=None)
    frames = clip.frames.copy()
    frames[45:] = 0  # camera covered for the last 30 frames (40%)
    track = tracker.track(frames)
    assert Reason.FACE_LOST in track.reasons
    assert set(track.lost_frames) == set(range(45, 75))


def test_blank_clip_is_no_face(tracker: FaceTracker) -> None:
    track = tracker.track(np.zeros((12, 288, 360, 3), np.uint8))
    assert track.reasons == (Reason.NO_FACE,) and track.found == ()


def test_a_second_person_is_multiple_faces(tracker: FaceTracker) -> None:
    a = open_clip(shared("grid", "bbaf2n.mpg"))
    b = open_clip(shared("grid", "lbax4n.mpg"))
    n = min(a.n_frames, b.n_frames)
    side_by_side = np.concatenate([a.frames[:n], b.frames[:n]], axis=2)  # two speakers, 720x288
    track = tracker.track(side_by_side)
    assert Reason.MULTIPLE_FACES in track.reasons
    assert len(track.multi_face_frames) == len(track.keyframes)
    # still one track: it stays on one speaker's side
    xs = [f.center[0] for f in track.faces if f is not None]
    assert len(xs) == n and (max(xs) < 360 or min(xs) >= 360)


def test_key_frames_detected_while_decoding_give_the_same_track(tracker: FaceTracker) -> None:
    """The engine detects key frames as they decode (keyframe_rule) and hands them to track():
    the track must be the one track() makes alone, and the rule must pick its key frames."""
    from liveness.inference.tracker import keyframe_times

    clip = open_clip(shared("grid", "bbaf2n.mpg"), target_fps=None)
    interval = tracker.cfg.detect_interval_s
    assert interval is not None
    is_key = tracker.keyframe_rule()
    early = [i for i, t in enumerate(clip.timestamps) if is_key(i, float(t))]
    keys = keyframe_times(clip.timestamps, interval)
    assert early == list(keys[:-1]) and keys[-1] == clip.n_frames - 1  # the last comes at the end
    detected = {i: tracker.detector.detect(clip.frames[i]) for i in early}
    alone = tracker.track(clip.frames, clip.timestamps)
    given = tracker.track(clip.frames, clip.timestamps, detected=detected)
    assert given.keyframes == alone.keyframes and given.reasons == alone.reasons
    assert given.refined == alone.refined and given.lost_frames == alone.lost_frames
    for a, b in zip(alone.faces, given.faces, strict=True):
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            # one image per call instead of a batch: onnxruntime's sums may round differently
            np.testing.assert_allclose(a.box, b.box, atol=1e-2)
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-2)
