"""The passive liveness stage: MiniFASNet on the tracked face, fused with model-free cues.

``PassiveStage.run(frames, timestamps, faces)`` takes the clip's frames and the face stage's
per-frame faces (``None`` where the face was not found):

1. usable frames: a face at least ``antispoof.min_face_px`` wide with detector confidence
   ``antispoof.min_face_score``; fewer than ``antispoof.min_frames`` -> ``LOW_QUALITY`` and no
   passive verdict (the model would score anything "real", so it is never run on a guess);
2. the MiniFASNet ensemble on ``antispoof.frames`` well-spaced usable frames, one batch per
   model; the clip's ``live_score`` is their trimmed mean, the per-frame scores are kept;
3. the cues of ``liveness.checks.spoof`` on the same frames (moire, display gamut, border) and
   on pairs of usable frames (planar motion, still image: the cue converts only the region
   around the face of the frames it pairs, not the whole clip, to grey);
4. fusion (``checks.spoof.fuse``): ``SPOOF_SUSPECTED`` when the model or a strong cue fires, or
   enough weak cues fire together; ``fired`` lists which.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from liveness.checks.spoof import (
    CueResult,
    border_cue,
    display_gamut_cue,
    fuse,
    moire_cue,
    motion_cues,
    spaced_indices,
    trimmed_mean,
)
from liveness.config import AntiSpoofConfig, Config
from liveness.errors import MediaError
from liveness.inference.antispoof import AntiSpoof
from liveness.results import Reason, Score

if TYPE_CHECKING:
    from liveness.inference.detector import Face

__all__ = ["PassiveResult", "PassiveStage"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PassiveResult:
    """What the passive stage measured on one clip, and its verdict."""

    live_score: float  # trimmed mean of the model's per-frame P(real); NaN when not run
    frame_scores: tuple[tuple[int, float], ...]  # (frame index, score) kept for audit
    cues: tuple[CueResult, ...]
    reasons: tuple[Reason, ...]  # (SPOOF_SUSPECTED,), (LOW_QUALITY,) or ()
    scores: tuple[Score, ...]  # every score with its threshold
    fired: tuple[str, ...] = ()  # what made SPOOF_SUSPECTED: "model" and/or cue names
    model_versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def details(self) -> dict[str, Any]:
        """A JSON-friendly summary for ``Decision.details``."""
        return {
            "live_score": None if math.isnan(self.live_score) else round(self.live_score, 6),
            "frame_scores": [[i, round(s, 6)] for i, s in self.frame_scores],
            "cues": [c.to_dict() for c in self.cues],
            "fired": list(self.fired),
            "reasons": [str(r) for r in self.reasons],
        }


class PassiveStage:
    """Build once per process (``from_config``); ``run`` once per clip."""

    def __init__(self, antispoof: AntiSpoof, cfg: AntiSpoofConfig | None = None) -> None:
        self._model = antispoof
        self._cfg = cfg or AntiSpoofConfig()

    @classmethod
    def from_config(cls, cfg: Config) -> PassiveStage:
        return cls(AntiSpoof.from_config(cfg), cfg.antispoof)

    def usable(self, faces: Sequence[Face | None]) -> list[int]:
        """Indices of frames whose face is large and confident enough to judge."""
        c = self._cfg
        return [
            i
            for i, f in enumerate(faces)
            if f is not None and f.width >= c.min_face_px and f.score >= c.min_face_score
        ]

    def run(
        self,
        frames: npt.NDArray[np.uint8],
        timestamps: npt.ArrayLike,
        faces: Sequence[Face | None],
        *,
        executor: Executor | None = None,
    ) -> PassiveResult:
        """Judge the clip's tracked face (see the module docstring). With an ``executor``, the
        motion cues run there while the model and the other cues run in the calling thread."""
        c = self._cfg
        t0 = time.perf_counter()
        frames = np.asarray(frames)
        ts = np.asarray(timestamps, dtype=np.float64)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise MediaError(
                f"frames must be (T, H, W, 3) uint8 BGR, got {frames.shape} {frames.dtype}"
            )
        if not (len(frames) == len(ts) == len(faces)):
            raise MediaError(
                f"{len(frames)} frames, {len(ts)} timestamps and {len(faces)} faces differ"
            )
        usable = self.usable(faces)
        timings: dict[str, float] = {}
        if len(usable) < c.min_frames:
            timings["passive_total"] = time.perf_counter() - t0
            return PassiveResult(
                live_score=float("nan"),
                frame_scores=(),
                cues=(),
                reasons=(Reason.LOW_QUALITY,),
                scores=(),
                model_versions=self._model.model_versions,
                timings=timings,
            )

        keep = set(usable)
        track_boxes = [
            f.box if (i in keep and f is not None) else None for i, f in enumerate(faces)
        ]

        def motion() -> tuple[tuple[CueResult, CueResult], float]:
            t = time.perf_counter()
            cues = motion_cues(
                frames, ts, track_boxes, planar_threshold=c.planar_threshold,
                still_threshold=c.still_threshold, gap_s=c.motion_gap_s,
                min_motion_px=c.min_motion_px,
            )  # fmt: skip
            return cues, time.perf_counter() - t

        pending = executor.submit(motion) if executor is not None else None
        try:
            picked = spaced_indices(usable, c.frames)
            boxes = [faces[i].box for i in picked]  # type: ignore[union-attr]
            t = time.perf_counter()
            per_frame = self._model.live_scores([frames[i] for i in picked], boxes)
            live = trimmed_mean(per_frame, c.trim)
            timings["passive_model"] = time.perf_counter() - t
            t = time.perf_counter()
            pg = [np.asarray(cv2.cvtColor(frames[i], cv2.COLOR_BGR2GRAY), np.uint8) for i in picked]
            frame_cues = (
                moire_cue(pg, boxes, threshold=c.moire_threshold),
                display_gamut_cue([frames[i] for i in picked], boxes, threshold=c.gamut_threshold),
                border_cue(pg, boxes, threshold=c.border_threshold),
            )
            timings["passive_cues"] = time.perf_counter() - t
        except BaseException:
            if pending is not None and not pending.cancel():
                pending.exception()  # never leave the motion cues running behind an error
            raise
        (planar, still), timings["passive_motion"] = (
            pending.result() if pending is not None else motion()
        )
        cues = (*frame_cues, planar, still)

        spoof, fired = fuse(
            live, c.live_threshold, cues, strong_cues=c.strong_cues,
            weak_cues_needed=c.weak_cues_needed,
        )  # fmt: skip
        scores = [Score(name="passive.live_score", value=live, threshold=c.live_threshold)]
        for cue in cues:
            if cue.decided:
                scores.append(
                    Score(
                        name=f"passive.{cue.name}", value=cue.score, threshold=cue.threshold,
                        higher_is_better=not cue.higher_is_spoof,
                    )
                )  # fmt: skip
        timings["passive_total"] = time.perf_counter() - t0
        return PassiveResult(
            live_score=live,
            frame_scores=tuple((int(i), float(s)) for i, s in zip(picked, per_frame, strict=True)),
            cues=cues,
            reasons=(Reason.SPOOF_SUSPECTED,) if spoof else (),
            scores=tuple(scores),
            fired=fired,
            model_versions=self._model.model_versions,
            timings=timings,
        )
