"""Typed results: stable reason codes, scores and the certification ``Decision``.

Reason values are written into signed records: never rename or reuse one; add new ones.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Decision", "DigitTiming", "Reason", "Score", "Verdict"]


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    RETRY = "RETRY"  # a fixable capture problem (dark, face left the frame, no speech heard)


class Reason(StrEnum):
    """Why a certification did not pass (or what was noted). Stable: part of signed records."""

    # face
    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    FACE_MISMATCH = "FACE_MISMATCH"
    FACE_CHANGED = "FACE_CHANGED"
    FACE_LOST = "FACE_LOST"  # the face left the frame for part of the clip
    LOW_QUALITY = "LOW_QUALITY"
    TOO_DARK = "TOO_DARK"
    REFERENCE_UNUSABLE = "REFERENCE_UNUSABLE"  # enrolled photo has no / several faces
    # liveness
    SPOOF_SUSPECTED = "SPOOF_SUSPECTED"
    LIP_SYNC_MISMATCH = "LIP_SYNC_MISMATCH"
    # speech / challenge
    NO_SPEECH = "NO_SPEECH"
    CHALLENGE_MISMATCH = "CHALLENGE_MISMATCH"  # the digits heard are not the challenge
    SPEECH_OUTSIDE_CLIP = "SPEECH_OUTSIDE_CLIP"
    CHALLENGE_INVALID = "CHALLENGE_INVALID"
    CHALLENGE_EXPIRED = "CHALLENGE_EXPIRED"
    CHALLENGE_REUSED = "CHALLENGE_REUSED"
    CHALLENGE_SUBJECT_MISMATCH = "CHALLENGE_SUBJECT_MISMATCH"
    # records / accounts
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    NOT_BOUND = "NOT_BOUND"  # proxy certification for a member who is not (or no longer) bound
    PROXY_NOT_ALLOWED = "PROXY_NOT_ALLOWED"  # a card holder tried to certify someone else


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """One measured score beside the threshold it was judged against.

    ``higher_is_better`` says the direction: a score passes when it is >= threshold (or <= when
    lower is better, as for a face distance).
    """

    name: str
    value: float
    threshold: float
    higher_is_better: bool = True

    @property
    def passed(self) -> bool:
        if self.higher_is_better:
            return self.value >= self.threshold
        return self.value <= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(float(self.value), 6),
            "threshold": float(self.threshold),
            "higher_is_better": self.higher_is_better,
            "passed": self.passed,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitTiming:
    """One digit heard in the audio, with its time span in seconds from the clip start."""

    digit: str
    start: float
    end: float
    confidence: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "digit": self.digit,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "confidence": round(self.confidence, 4),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The outcome of one certification attempt.

    A backend stores or signs this; a phone client should be told only ``verdict``.
    """

    verdict: Verdict
    reasons: tuple[Reason, ...] = ()
    scores: tuple[Score, ...] = ()
    subject_id: str = ""
    challenge_nonce: str = ""
    digits_heard: str = ""
    digit_timings: tuple[DigitTiming, ...] = ()
    best_frame_jpeg: bytes | None = field(default=None, repr=False)
    model_versions: dict[str, str] = field(default_factory=dict)
    config_hash: str = ""
    clip_sha256: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def score(self, name: str) -> Score | None:
        for s in self.scores:
            if s.name == name:
                return s
        return None

    def to_dict(self, *, include_frame: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": str(self.verdict),
            "reasons": [str(r) for r in self.reasons],
            "scores": [s.to_dict() for s in self.scores],
            "subject_id": self.subject_id,
            "challenge_nonce": self.challenge_nonce,
            "digits_heard": self.digits_heard,
            "digit_timings": [d.to_dict() for d in self.digit_timings],
            "model_versions": dict(self.model_versions),
            "config_hash": self.config_hash,
            "clip_sha256": self.clip_sha256,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "details": self.details,
        }
        if include_frame and self.best_frame_jpeg is not None:
            out["best_frame_jpeg_b64"] = base64.b64encode(self.best_frame_jpeg).decode("ascii")
        return out
