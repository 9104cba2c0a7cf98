"""Face match and identity continuity on synthetic embeddings (exact arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest

from liveness.checks.match import face_distances, identity_continuity, match_faces
from liveness.errors import ConfigError, MediaError
from liveness.results import Reason


def _at(distance: float, axis: int = 0) -> np.ndarray:
    v = np.zeros(128)
    v[axis] = distance
    return v


def test_distances_are_euclidean() -> None:
    ref = np.zeros(128)
    np.testing.assert_allclose(face_distances(ref, np.stack([_at(0.3), _at(0.4, 5)])), [0.3, 0.4])


def test_median_of_k_passes_with_one_bad_frame() -> None:
    frames = np.stack([_at(0.3), _at(0.9, 1), _at(0.4, 2)])
    r = match_faces(np.zeros(128), frames, threshold=0.6, frame_ids=[3, 7, 11])
    assert r.passed and r.reasons == ()
    assert r.distance == pytest.approx(0.4)
    assert r.distances == pytest.approx((0.3, 0.9, 0.4)) and r.frames == (3, 7, 11)
    (score,) = r.scores
    assert score.name == "face_distance" and not score.higher_is_better and score.passed


def test_median_of_k_rejects_one_lucky_frame() -> None:
    frames = np.stack([_at(0.5), _at(0.8, 1), _at(0.9, 2)])
    r = match_faces(np.zeros(128), frames, threshold=0.6)
    assert not r.passed and r.reasons == (Reason.FACE_MISMATCH,)
    assert match_faces(np.zeros(128), frames, threshold=0.6, aggregate="min").passed


def test_threshold_is_inclusive() -> None:
    r = match_faces(np.zeros(128), _at(0.5), threshold=0.5)
    assert r.passed


@pytest.mark.parametrize(
    ("ref", "frames"),
    [
        (np.zeros(127), np.zeros((1, 128))),
        (np.zeros(128), np.zeros((0, 128))),
        (np.zeros(128), np.full((2, 128), np.nan)),
        (np.zeros((2, 128)), np.zeros((1, 128))),
    ],
)
def test_bad_embeddings_are_media_errors(ref: np.ndarray, frames: np.ndarray) -> None:
    with pytest.raises(MediaError):
        match_faces(ref, frames)


@pytest.mark.parametrize(
    ("kw"), [{"threshold": 0.0}, {"threshold": float("nan")}, {"aggregate": "mode"}]
)
def test_bad_settings_are_config_errors(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        match_faces(np.zeros(128), np.zeros((1, 128)), **kw)  # type: ignore[arg-type]


def test_continuity_flags_a_swap_and_where() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.01, (6, 128))
    b = rng.normal(0, 0.01, (6, 128)) + _at(1.0)
    res = identity_continuity(np.vstack([a, b]), threshold=0.6, window=3)
    assert res.changed and res.change_at == 6 and res.reasons == (Reason.FACE_CHANGED,)
    assert len(res.segment_distances) == 4 and res.segment_distances[0] == 0.0
    assert res.max_distance > 0.9


def test_continuity_accepts_a_steady_track() -> None:
    rng = np.random.default_rng(1)
    track = rng.normal(0, 0.02, (12, 128))
    res = identity_continuity(track, threshold=0.6, window=3)
    assert not res.changed and res.change_at is None and res.reasons == ()
    assert res.scores[0].passed


def test_continuity_short_track_uses_single_frames() -> None:
    res = identity_continuity(np.stack([np.zeros(128), _at(0.7)]), threshold=0.6, window=3)
    assert res.changed and res.change_at == 1


def test_continuity_bad_window() -> None:
    with pytest.raises(ConfigError):
        identity_continuity(np.zeros((3, 128)), window=0)
