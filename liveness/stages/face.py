"""The face stage: enrolled photo -> reference embedding; clip -> track -> quality -> match.

``FaceStage.run(clip, reference)``:

1. track the face through every frame of the clip (``liveness.inference.tracker``):
   ``NO_FACE``, ``MULTIPLE_FACES``, ``FACE_LOST``;
2. measure quality on every tracked frame and choose the best K frames for matching, spaced
   apart, and the audit best frame (``liveness.checks.quality``): ``TOO_DARK``, ``LOW_QUALITY``;
3. align and embed, in one batch, the best K frames plus ``face.identity_frames`` frames spread
   evenly along the track;
4. match the best K against the reference (median distance, ``liveness.checks.match``):
   ``FACE_MISMATCH``; and check identity continuity over all embedded frames in time order:
   ``FACE_CHANGED``.

Reference photo rule (``reference``): no face -> ``REFERENCE_UNUSABLE``. Several faces -> the
largest is used when it is at least ``face.reference_dominance`` times as wide as the next one
(a bystander far behind the subject), otherwise ``REFERENCE_UNUSABLE``: we cannot tell whom the
photo enrols.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from liveness.checks.align import align_chip
from liveness.checks.match import MatchResult, identity_continuity, match_faces
from liveness.checks.quality import FaceQuality, QualitySummary, face_quality, summarize_quality
from liveness.config import Config
from liveness.errors import MediaError
from liveness.inference.detector import Face, FaceDetector, check_image
from liveness.inference.tracker import FaceTracker, Track, spaced_indices
from liveness.results import Reason, Score

if TYPE_CHECKING:
    from liveness.inference.embedder import FaceEmbedder
    from liveness.media import Clip

__all__ = ["FaceStage", "FaceStageResult", "ReferenceFace"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceFace:
    """The enrolled photo's face: its embedding, or why there is none."""

    embedding: npt.NDArray[np.float32] | None  # (128,); None when unusable
    face: Face | None
    quality: FaceQuality | None
    faces_found: int
    reasons: tuple[Reason, ...]  # () or (REFERENCE_UNUSABLE,)

    @property
    def usable(self) -> bool:
        return self.embedding is not None

    @classmethod
    def from_embedding(cls, embedding: npt.ArrayLike) -> ReferenceFace:
        """A reference from a stored (128,) embedding (the photo was processed before)."""
        e = np.asarray(embedding, np.float32).reshape(-1)
        if e.shape != (128,) or not np.isfinite(e).all():
            raise MediaError(f"a reference embedding must be 128 finite numbers, got {e.shape}")
        return cls(embedding=e, face=None, quality=None, faces_found=1, reasons=())


@dataclass(frozen=True, slots=True, kw_only=True)
class FaceStageResult:
    """Everything the face stage found in one clip (see the module docstring)."""

    faces: tuple[Face | None, ...]  # one per clip frame, None where the face was not found
    best_index: int | None  # the audit best frame
    match: MatchResult | None  # None when there was no face or no usable reference
    quality: QualitySummary | None
    track: Track | None
    embedded_frames: tuple[int, ...]  # frames whose chips were embedded, in time order
    continuity_distances: tuple[float, ...]
    reasons: tuple[Reason, ...]
    scores: tuple[Score, ...]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def details(self) -> dict[str, Any]:
        """A JSON-friendly summary for ``Decision.details``."""
        best_q = (
            self.quality.per_frame[self.best_index]
            if self.quality is not None and self.best_index is not None
            else None
        )
        return {
            "frames": len(self.faces),
            "frames_with_face": sum(f is not None for f in self.faces),
            "best_index": self.best_index,
            "match_frames": list(self.match.frames) if self.match else [],
            "match_distances": [round(d, 4) for d in self.match.distances] if self.match else [],
            "embedded_frames": list(self.embedded_frames),
            "continuity_distances": [round(d, 4) for d in self.continuity_distances],
            "best_quality": best_q.to_dict() if best_q is not None else None,
            "multi_face_frames": list(self.track.multi_face_frames) if self.track else [],
            "track_jumps": list(self.track.jumps) if self.track else [],
        }


def _dedupe(reasons: list[Reason]) -> tuple[Reason, ...]:
    return tuple(dict.fromkeys(reasons))


class FaceStage:
    """Detector + tracker + embedder, loaded once and reused for every clip."""

    def __init__(self, detector: FaceDetector, embedder: FaceEmbedder, cfg: Config) -> None:
        self.cfg = cfg
        self.detector = detector
        self.embedder = embedder
        self.tracker = FaceTracker(detector, cfg.face)

    @classmethod
    def from_config(cls, cfg: Config) -> FaceStage:
        from liveness.inference.embedder import FaceEmbedder

        return cls(FaceDetector.from_config(cfg), FaceEmbedder.from_config(cfg), cfg)

    def reference(self, image_bgr: npt.NDArray[np.uint8]) -> ReferenceFace:
        """Detect, align and embed the enrolled photo's face (rule in the module docstring)."""
        img = check_image(image_bgr, "reference photo")
        faces = self.detector.detect(img)  # largest first
        unusable = ReferenceFace(
            embedding=None,
            face=None,
            quality=None,
            faces_found=len(faces),
            reasons=(Reason.REFERENCE_UNUSABLE,),
        )
        if not faces:
            return unusable
        if len(faces) > 1 and faces[0].width < self.cfg.face.reference_dominance * faces[1].width:
            return unusable
        face = faces[0]
        chip = align_chip(img, face.landmarks)
        emb = self.embedder.embed(chip[None])[0]
        return ReferenceFace(
            embedding=emb,
            face=face,
            quality=face_quality(img, face, self.cfg.face),
            faces_found=len(faces),
            reasons=(),
        )

    def run(self, clip: Clip, reference: ReferenceFace | npt.ArrayLike) -> FaceStageResult:
        """Track, check and match the clip's face against the reference (``track`` then
        ``finish``; the engine calls the two apart, to overlap other work with them).

        ``reference``: a ``ReferenceFace``; or an array, read as a stored (128,) embedding when it
        has 128 values and as the enrolled photo (H, W, 3) BGR uint8 otherwise.
        """
        t0 = time.perf_counter()
        ref = self._as_reference(reference)
        ref_s = time.perf_counter() - t0 if ref is not reference else None
        track, track_s = self.track(clip)
        res = self.finish(clip, ref, track, track_s=track_s)
        if ref_s is not None:
            res.timings["face_reference"] = ref_s
        res.timings["face_total"] = time.perf_counter() - t0
        return res

    def track(
        self, clip: Clip, *, detected: Mapping[int, Sequence[Face]] | None = None
    ) -> tuple[Track, float]:
        """Follow the clip's face (the first half of ``run``): the track and its seconds.
        ``detected``: key-frame detections made while the clip decoded (``FaceTracker.track``)."""
        frames = clip.frames
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[0] == 0:
            raise MediaError("the clip has no video frames for the face stage")
        t = time.perf_counter()
        track = self.tracker.track(frames, clip.timestamps, detected=detected)
        return track, time.perf_counter() - t

    def finish(
        self, clip: Clip, ref: ReferenceFace, track: Track, *, track_s: float = 0.0
    ) -> FaceStageResult:
        """Quality, embedding and match on a track (the second half of ``run``)."""
        t0 = time.perf_counter()
        frames = clip.frames
        timings: dict[str, float] = {"face_track": track_s}
        reasons: list[Reason] = list(ref.reasons) + list(track.reasons)
        scores: list[Score] = list(track.scores)
        if Reason.NO_FACE in track.reasons:
            timings["face_total"] = track_s + time.perf_counter() - t0
            return FaceStageResult(
                faces=track.faces,
                best_index=None,
                match=None,
                quality=None,
                track=track,
                embedded_frames=(),
                continuity_distances=(),
                reasons=_dedupe(reasons),
                scores=tuple(scores),
                timings=timings,
            )

        t = time.perf_counter()
        quality = summarize_quality(frames, track.faces, self.cfg.face)
        timings["face_quality"] = time.perf_counter() - t
        reasons += quality.reasons
        scores += quality.scores

        t = time.perf_counter()
        spaced = spaced_indices(track.found, self.cfg.face.identity_frames)
        embedded = tuple(sorted(set(spaced) | set(quality.best_frames)))
        chips = np.stack([align_chip(frames[i], track.faces[i].landmarks) for i in embedded])  # type: ignore[union-attr]
        emb = self.embedder.embed(chips)
        timings["face_embed"] = time.perf_counter() - t

        t = time.perf_counter()
        match: MatchResult | None = None
        if ref.embedding is not None and quality.best_frames:
            rows = [embedded.index(i) for i in quality.best_frames]
            match = match_faces(
                ref.embedding,
                emb[rows],
                threshold=self.cfg.face.match_threshold,
                aggregate=self.cfg.face.match_aggregate,
                frame_ids=quality.best_frames,
            )
            reasons += match.reasons
            scores += match.scores
        continuity = identity_continuity(
            emb, threshold=self.cfg.face.change_threshold, window=self.cfg.face.change_window
        )
        reasons += continuity.reasons
        scores += continuity.scores
        timings["face_match"] = time.perf_counter() - t
        timings["face_total"] = track_s + time.perf_counter() - t0
        return FaceStageResult(
            faces=track.faces,
            best_index=quality.best_index,
            match=match,
            quality=quality,
            track=track,
            embedded_frames=embedded,
            continuity_distances=continuity.segment_distances,
            reasons=_dedupe(reasons),
            scores=tuple(scores),
            timings=timings,
        )

    def _as_reference(self, reference: ReferenceFace | npt.ArrayLike) -> ReferenceFace:
        if isinstance(reference, ReferenceFace):
            return reference
        arr = np.asarray(reference)
        if arr.size == 128 and arr.ndim <= 2:
            return ReferenceFace.from_embedding(arr)
        return self.reference(arr)
