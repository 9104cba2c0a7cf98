"""Pure helpers of the face tracker."""

from __future__ import annotations

import pytest

from liveness.inference.tracker import box_iou, keyframe_indices, keyframe_times, spaced_indices


def test_keyframes_every_nth_and_the_last() -> None:
    assert keyframe_indices(12, 5) == (0, 5, 10, 11)
    assert keyframe_indices(11, 5) == (0, 5, 10)
    assert keyframe_indices(1, 5) == (0,)
    assert keyframe_indices(0, 5) == ()
    assert keyframe_indices(3, 1) == (0, 1, 2)


def test_keyframes_by_clip_time_and_the_last() -> None:
    at_25fps = [i / 25 for i in range(75)]  # a 3 s GRID clip decoded at 25 fps
    assert keyframe_times(at_25fps, 0.5) == (0, 13, 26, 39, 52, 65, 74)  # 0.48 s is not 0.5 s
    at_10fps = [i / 10 for i in range(12)]
    assert keyframe_times(at_10fps, 0.5) == keyframe_indices(12, 5)
    assert keyframe_times([0.0, 0.1, 0.7, 0.8], 0.5) == (0, 2, 3)  # a gap in the frames
    assert keyframe_times([0.0], 0.5) == (0,)
    assert keyframe_times([], 0.5) == ()


def test_spaced_indices_cover_the_track_evenly() -> None:
    assert spaced_indices(range(10), 4) == (0, 3, 6, 9)
    assert spaced_indices([2, 3, 7], 5) == (2, 3, 7)
    assert spaced_indices([], 3) == ()
    assert spaced_indices(range(10), 0) == ()


def test_box_iou() -> None:
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0


def test_keyframe_rule_follows_the_config_without_the_last_frame() -> None:
    """The rule the engine detects by while decoding: track()'s key frames but the last."""
    import dataclasses

    from liveness.config import FaceConfig
    from liveness.inference.tracker import FaceTracker

    class _NoDetector:
        cfg = FaceConfig()

    at_25fps = [i / 25 for i in range(75)]
    timed = FaceTracker(_NoDetector(), FaceConfig()).keyframe_rule()  # type: ignore[arg-type]
    assert (
        tuple(i for i, t in enumerate(at_25fps) if timed(i, t))
        == keyframe_times(at_25fps, 0.5)[:-1]
    )
    every = FaceTracker(
        _NoDetector(),  # type: ignore[arg-type]
        dataclasses.replace(FaceConfig(), detect_interval_s=None, detect_every=5),
    ).keyframe_rule()
    assert tuple(i for i in range(12) if every(i, 0.0)) == keyframe_indices(12, 5)[:-1]
