"""Face match and identity continuity on dlib embeddings (pure: arrays in, frozen results out).

Distances are Euclidean between 128-d dlib descriptors (``liveness.inference.embedder``). The
default threshold (``FaceConfig.match_threshold`` = 0.6) is dlib's published operating point; on
the shared data it accepts every genuine pair and rejects every impostor pair (see models/README.md
"Face match threshold" for the measured distributions and the command).

Aggregation over the best K frames: the *median* distance by default. ``min`` would give an
impostor K tries at one lucky frame (raising false matches roughly K-fold at a fixed threshold);
``mean`` lets one blurred or misaligned frame fail a genuine person. The median ignores one outlier
in either direction for K >= 3 and equals the single distance for K = 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from liveness.errors import ConfigError, MediaError
from liveness.results import Reason, Score

__all__ = [
    "AGGREGATES",
    "ContinuityResult",
    "MatchResult",
    "face_distances",
    "identity_continuity",
    "match_faces",
]

AGGREGATES = ("median", "min", "mean", "max")
EMBEDDING_DIM = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchResult:
    """Reference photo vs the best K frames of a clip."""

    distances: tuple[float, ...]  # one per frame used, in the order given
    frames: tuple[int, ...]  # the caller's frame indices, same order as ``distances``
    distance: float  # aggregated
    aggregate: str
    threshold: float
    passed: bool
    scores: tuple[Score, ...]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinuityResult:
    """Whether the identity stays the same along one track."""

    segment_distances: tuple[float, ...]  # each segment's centroid vs the first segment's
    max_distance: float
    threshold: float
    changed: bool
    change_at: int | None  # index (into the embeddings) where the first deviating segment starts
    scores: tuple[Score, ...]
    reasons: tuple[Reason, ...]


def _as_embeddings(x: npt.ArrayLike, what: str) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != EMBEDDING_DIM:
        raise MediaError(f"{what} must be (N, 128) embeddings, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise MediaError(f"{what} contain NaN or infinity")
    return a


def face_distances(reference: npt.ArrayLike, others: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Euclidean distances from one (128,) reference to each of (N, 128) embeddings."""
    ref = _as_embeddings(reference, "reference embedding")
    if ref.shape[0] != 1:
        raise MediaError(f"reference must be one embedding, got {ref.shape[0]}")
    oth = _as_embeddings(others, "frame embeddings")
    return np.asarray(np.linalg.norm(oth - ref, axis=1), dtype=np.float64)


def _aggregate(d: npt.NDArray[np.float64], how: str) -> float:
    if how == "median":
        return float(np.median(d))
    if how == "min":
        return float(d.min())
    if how == "mean":
        return float(d.mean())
    if how == "max":
        return float(d.max())
    raise ConfigError(f"face match aggregate must be one of {', '.join(AGGREGATES)}, got {how!r}")


def _check_threshold(threshold: float, name: str) -> float:
    t = float(threshold)
    if not np.isfinite(t) or t <= 0:
        raise ConfigError(f"{name} must be a positive number, got {threshold!r}")
    return t


def match_faces(
    reference: npt.ArrayLike,
    frames: npt.ArrayLike,
    *,
    threshold: float = 0.6,
    aggregate: str = "median",
    frame_ids: Sequence[int] | None = None,
) -> MatchResult:
    """Compare the enrolled reference embedding with K frame embeddings.

    Passes when the aggregated distance is <= ``threshold``; otherwise the result carries
    ``Reason.FACE_MISMATCH``. ``frame_ids`` names the frames for the record (default 0..K-1).
    """
    t = _check_threshold(threshold, "face.match_threshold")
    d = face_distances(reference, frames)
    if d.size == 0:
        raise MediaError("no frame embeddings to match against the reference")
    ids = tuple(range(d.size)) if frame_ids is None else tuple(int(i) for i in frame_ids)
    if len(ids) != d.size:
        raise MediaError(f"{len(ids)} frame ids for {d.size} embeddings")
    agg = _aggregate(d, aggregate)
    score = Score(name="face_distance", value=agg, threshold=t, higher_is_better=False)
    return MatchResult(
        distances=tuple(float(v) for v in d),
        frames=ids,
        distance=agg,
        aggregate=aggregate,
        threshold=t,
        passed=score.passed,
        scores=(score,),
        reasons=() if score.passed else (Reason.FACE_MISMATCH,),
    )


def identity_continuity(
    embeddings: npt.ArrayLike, *, threshold: float = 0.6, window: int = 3
) -> ContinuityResult:
    """Flag an identity change along one track (a face swapped mid-clip).

    The track's embeddings (in time order) are cut into consecutive segments of ``window``; each
    segment's centroid (mean embedding, which averages out per-frame noise) is compared with the
    first segment's. A segment farther than ``threshold`` means another person: ``FACE_CHANGED``.
    A track shorter than two segments compares single frames with the first frame instead.
    """
    t = _check_threshold(threshold, "face.change_threshold")
    if int(window) < 1:
        raise ConfigError(f"face.change_window must be >= 1, got {window!r}")
    e = _as_embeddings(embeddings, "track embeddings")
    n = e.shape[0]
    w = int(window) if n >= 2 * int(window) else 1
    starts = list(range(0, n, w))
    cents = np.stack([e[s : s + w].mean(axis=0) for s in starts]) if n else e
    d = np.linalg.norm(cents - cents[:1], axis=1) if n else np.zeros(0)
    over = np.flatnonzero(d > t)
    max_d = float(d.max()) if d.size else 0.0
    changed = over.size > 0
    score = Score(name="face_continuity", value=max_d, threshold=t, higher_is_better=False)
    return ContinuityResult(
        segment_distances=tuple(float(v) for v in d),
        max_distance=max_d,
        threshold=t,
        changed=changed,
        change_at=starts[int(over[0])] if changed else None,
        scores=(score,),
        reasons=(Reason.FACE_CHANGED,) if changed else (),
    )
