"""What every speech backend returns, and the protocol it implements.

A backend hears the digits (and when each was said); ``assemble`` turns that into a
``SpeechResult`` with the shared voice-activity, timing-refinement and policy checks, so the
Whisper and vosk backends decide the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from liveness.checks.speech import VoiceActivity, refine_windows
from liveness.results import DigitTiming, Reason, Score

__all__ = ["Hearing", "SpeechResult", "SpeechVerifier", "assemble"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechResult:
    """The outcome of checking one clip's audio against a digit challenge."""

    digits_heard: str  # best reading of the digits ("" if none)
    timings: tuple[DigitTiming, ...]  # per expected digit: refined start/end seconds, confidence
    confidence: float
    satisfied: bool  # the challenge was read as the policy requires
    margin: float | None  # forced-scoring margin of the expected string over the best alternative
    speech_span: tuple[float, float] | None  # voice activity start/end seconds
    reasons: tuple[Reason, ...]  # NO_SPEECH, CHALLENGE_MISMATCH, SPEECH_OUTSIDE_CLIP
    scores: tuple[Score, ...]
    backend: str  # e.g. "whisper:tiny.en", "vosk:<model>"
    timings_s: dict[str, float] = field(default_factory=dict)  # stage timings


@runtime_checkable
class SpeechVerifier(Protocol):
    """One recogniser for one language: 16 kHz mono float audio + challenge -> result."""

    @property
    def backend(self) -> str: ...

    @property
    def language(self) -> str: ...

    def verify(self, audio: npt.NDArray[np.float32], digits: str) -> SpeechResult: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Hearing:
    """What a backend made of the audio, before the shared checks."""

    digits_heard: str
    accepted: bool  # the backend's own verdict on the challenge (forced margin / policy)
    windows: tuple[tuple[float, float], ...]  # per expected digit (empty if not aligned)
    digit_conf: tuple[float, ...]  # per expected digit
    confidence: float
    margin: float | None
    scores: tuple[Score, ...] = ()


def assemble(
    hearing: Hearing,
    vad: VoiceActivity,
    digits: str,
    *,
    backend: str,
    min_speech_s: float,
    timings_s: dict[str, float],
) -> SpeechResult:
    """Apply voice activity and onset refinement to a backend's hearing; give the reasons."""
    reasons: list[Reason] = []
    span = vad.span
    voiced = vad.voiced_s
    scores = [
        *hearing.scores,
        Score(name="speech_voiced_s", value=voiced, threshold=min_speech_s),
    ]
    if span is None or voiced < min_speech_s:
        reasons.append(Reason.NO_SPEECH)
    else:
        if vad.touches_start or vad.touches_end:
            reasons.append(Reason.SPEECH_OUTSIDE_CLIP)
    satisfied = hearing.accepted and Reason.NO_SPEECH not in reasons
    if not satisfied and Reason.NO_SPEECH not in reasons:
        reasons.append(Reason.CHALLENGE_MISMATCH)
    timings: tuple[DigitTiming, ...] = ()
    if hearing.windows and len(hearing.windows) == len(digits):
        refined = refine_windows(hearing.windows, vad)
        timings = tuple(
            DigitTiming(digit=d, start=round(s, 3), end=round(e, 3), confidence=c)
            for d, (s, e), c in zip(digits, refined, hearing.digit_conf, strict=True)
        )
    return SpeechResult(
        digits_heard=hearing.digits_heard,
        timings=timings,
        confidence=hearing.confidence,
        satisfied=satisfied and Reason.SPEECH_OUTSIDE_CLIP not in reasons,
        margin=hearing.margin,
        speech_span=span,
        reasons=tuple(reasons),
        scores=tuple(scores),
        backend=backend,
        timings_s=timings_s,
    )
