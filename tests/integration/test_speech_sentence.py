"""Digits said inside a sentence (issue 5's filler/restart policy), on real GRID speech.

Each GRID clip reads one six-word command, "bin blue at f two now", whose fifth word is the digit
in the file name (z is zero). The challenge is that one digit; the words around it must be
tolerated, and every other digit must still be rejected.
"""

from __future__ import annotations

import numpy as np
import pytest

from liveness.config import Config
from liveness.inference.speech.whisper import WhisperVerifier
from liveness.results import Reason
from liveness.stages.speech import SpeechStage
from tests.conftest import require_models, shared

GRID = ["bbaf2n", "brbk7n", "lbax4n", "lbbc2a", "lrwp9a", "lwbsza", "pwij3p", "sbia1a", "swwp2s"]
DURATION_S = 3.0  # every GRID clip: 75 frames at 25 fps


def grid_digit(name: str) -> str:
    return "0" if name[4] == "z" else name[4]


@pytest.fixture(scope="module")
def verifier() -> WhisperVerifier:
    require_models("whisper")
    v = SpeechStage.from_config(Config()).verifier("en")
    assert isinstance(v, WhisperVerifier)
    return v


@pytest.fixture(scope="module")
def grid_audio() -> dict[str, np.ndarray]:
    from liveness.media import open_clip

    return {n: open_clip(shared("grid", f"{n}.mpg")).audio for n in GRID}


def test_grid_digit_in_a_sentence_verified_and_wrong_digits_rejected(
    verifier: WhisperVerifier, grid_audio: dict[str, np.ndarray]
) -> None:
    verified: list[str] = []
    false_accepts: list[tuple[str, str]] = []
    for name, audio in grid_audio.items():
        want = grid_digit(name)
        wrong = [d for d in "0123456789" if d != want]
        first, *others = verifier.verify_all(audio, [want, *wrong])
        false_accepts += [(name, d) for d, r in zip(wrong, others, strict=True) if r.satisfied]
        for r in others:
            assert Reason.CHALLENGE_MISMATCH in r.reasons
        if first.satisfied:
            verified.append(name)
            assert first.reasons == ()
            assert first.digits_heard == want
            (t,) = first.timings
            assert t.digit == want
            # inside the clip, and where the fifth of six words is said (GRID's .align files put
            # it between about 1.2 and 2.0 s)
            assert 0.8 < t.start < t.end < 2.6
            assert t.end - t.start >= 0.06  # a spoken digit, not a point
    assert false_accepts == []  # 0/81 measured
    # measured 7/9: lbbc2a ("lay blue by c two again") is heard "Lay blue by c to again",
    # a homophone and no digit, so the challenge "2" is not read there by tiny.en; lbax4n's
    # "x four" is heard "attacks for" at the level it decodes at (its margin flips between -1.7
    # and +5.3 nats over 2 dB steps of gain: tests/integration/test_speech_whisper.py)
    assert len(verified) >= 7, verified


def test_the_prefix_alone_accepts_no_wrong_digit(
    verifier: WhisperVerifier, grid_audio: dict[str, np.ndarray]
) -> None:
    # always score after the transcript's own words, skipping the pass right after the prompt:
    # the prefix must not make any other digit win
    accepted = []
    for name, audio in grid_audio.items():
        want = grid_digit(name)
        wrong = [d for d in "0123456789" if d != want]
        for d, r in zip(wrong, verifier.verify_all(audio, wrong, force_prefix=True), strict=True):
            if r.satisfied:
                accepted.append((name, d))
    assert accepted == []


def test_grid_digit_time_matches_the_reference_alignment(
    verifier: WhisperVerifier, grid_audio: dict[str, np.ndarray]
) -> None:
    words = {}
    for line in shared("grid", "swwp2s.align").read_text().split("\n"):
        parts = line.split()
        if len(parts) == 3:
            words[parts[2]] = (int(parts[0]) / 25000, int(parts[1]) / 25000)
    ref_start, ref_end = words["two"]  # 1.44-1.73 s
    r = verifier.verify(grid_audio["swwp2s"], "2")
    assert r.satisfied, (r.margin, r.reasons)
    (t,) = r.timings
    # within 0.15 s: a few 20 ms encoder frames plus the energy onset's 10 ms hop
    assert abs(t.start - ref_start) < 0.15
    assert abs(t.end - ref_end) < 0.15


def test_extra_digits_around_the_challenge_break_the_policy(
    verifier: WhisperVerifier, grid_audio: dict[str, np.ndarray]
) -> None:
    # the clip reads "set white with p two soon": a two-digit challenge that adds a digit before
    # or after the one spoken is not what was read
    audio = grid_audio["swwp2s"]
    for challenge in ("22", "12", "23", "20", "02"):
        r = verifier.verify(audio, challenge)
        assert not r.satisfied, challenge


def test_placement_of_a_restart_and_of_extra_digits(verifier: WhisperVerifier) -> None:
    tok = verifier._tok  # the model's own tokenizer: placement works on its tokens
    ids = tok.encode(" 4 7, sorry, 4 7 1 2 5 6.")
    p = verifier.place(ids, "471256")
    assert p is not None and p.policy_ok and p.run == "471256"
    assert tok.decode(list(p.prefix)) == " 4 7, sorry,"
    assert not p.glued
    # digits after the challenge, or before it that are not a false start
    for text in (" 4 7 1 2 5 6, then 9.", " 9 9, 4 7 1 2 5 6."):
        p = verifier.place(tok.encode(text), "471256")
        assert p is not None and not p.policy_ok, text
    # more digits heard at that place than the challenge has
    p = verifier.place(tok.encode(" My code is 4 7 1 2 5 6 6."), "471256")
    assert p is not None and not p.policy_ok
    # a digit written against the word before it
    p = verifier.place(tok.encode(" Set white with P2 soon."), "2")
    assert p is not None and p.policy_ok and p.glued
    assert tok.decode(list(p.prefix)) == " Set white with P"
    assert verifier.place(tok.encode(" Hello there."), "2") is None
