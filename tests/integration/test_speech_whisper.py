"""Whisper digit verification on real speech (and espeak-ng speech made at test time)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from liveness.config import Config
from liveness.results import Reason
from liveness.stages.speech import SpeechStage
from tests.conftest import require_models, shared

EN_TRUTH = (
    "100019021001803"  # "one zero zero zero one, nine oh two one oh, zero one eight zero three"
)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        raw = w.readframes(w.getnframes())
        return np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0, w.getframerate()


@pytest.fixture(scope="session")
def stage() -> SpeechStage:
    require_models("whisper")
    return SpeechStage.from_config(Config())


def espeak(text: str, tmp: Path, *, speed: int = 160) -> tuple[np.ndarray, int]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    out = tmp / "tts.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", str(speed), "-w", str(out), text], check=True)
    a, rate = read_wav(out)
    pad = np.zeros(rate // 2, np.float32)  # half a second of room before and after, as a recording
    return np.concatenate([pad, a, pad]), rate


def test_real_recording_verifies_the_true_string(stage: SpeechStage) -> None:
    audio, rate = read_wav(shared("speech", "en_digits_vosk_test.wav"))
    r = stage.run(audio, rate, EN_TRUTH, language="en")
    assert r.satisfied, (r.margin, r.reasons)
    assert r.reasons == ()
    assert r.digits_heard == EN_TRUTH
    assert r.backend == "whisper:tiny.en"
    assert r.speech_span is not None and 0.0 < r.speech_span[0] < r.speech_span[1] < 8.4
    # per-digit times: one per digit, in order, inside the recording
    assert [t.digit for t in r.timings] == list(EN_TRUTH)
    starts = [t.start for t in r.timings]
    assert starts == sorted(starts)
    assert all(0.0 <= t.start <= t.end <= 8.4 for t in r.timings)
    # the pause between the first two groups of five is found (about a second in the audio)
    assert r.timings[5].start - r.timings[4].end > 0.3


def test_real_recording_digit_times_cover_each_digit(stage: SpeechStage) -> None:
    # The groups are spoken over about 0.87-2.96, 3.94-4.90 and 6.29-8.08 s (energy stretches).
    # Regression: the last digit of the second group spanned the pause (4.78-6.34 s) and the "8"
    # had zero width at 7.2 s; lip-sync needs each window to cover when its digit was said.
    audio, rate = read_wav(shared("speech", "en_digits_vosk_test.wav"))
    r = stage.run(audio, rate, EN_TRUTH, language="en")
    assert r.satisfied
    for t in r.timings:
        # a digit at this pace lasts 0.1-0.7 s (measured 0.115-0.685)
        assert 0.1 <= t.end - t.start <= 0.75, t
    group_ends = [r.timings[4].end, r.timings[9].end]
    group_starts = [r.timings[5].start, r.timings[10].start]
    assert group_ends[1] < 5.0 and group_starts[1] > 6.2  # the pause belongs to no digit
    assert group_ends[0] < 3.05 and group_starts[0] > 3.85
    ends = [t.end for t in r.timings]
    starts = [t.start for t in r.timings]
    assert all(e <= s2 + 1e-9 for e, s2 in zip(ends, starts[1:], strict=False))  # no overlap


def test_real_recording_rejects_one_digit_variants(stage: SpeechStage) -> None:
    from liveness.checks.speech import forced_margin, one_edit_variants
    from liveness.inference.speech.whisper import WhisperVerifier

    audio, _ = read_wav(shared("speech", "en_digits_vosk_test.wav"))
    v = stage.verifier("en")
    assert isinstance(v, WhisperVerifier)
    enc, _ = v.encode(audio)
    every = one_edit_variants(EN_TRUTH)
    assert len(every) > 250
    # each variant costs a decoder pass (~0.2 s here); 40 spread over kinds and positions: every
    # deletion, a substitution at each position, and insertions at start, middle and end
    dels = [v for v in every if len(v) < len(EN_TRUTH)]
    subs = [v for v in every if len(v) == len(EN_TRUTH)][::9]
    ins = [v for v in every if len(v) > len(EN_TRUTH)][::15]
    variants = dels + subs + ins
    accepted = []
    for alt in variants:
        clp, _, _ = v.score_encoded(enc, alt)
        if forced_margin(clp, alt).margin >= Config().speech.margin:
            accepted.append(alt)
    assert accepted == []
    # the whole verification, and the sentence mode alone (scored after the transcript's words,
    # with words allowed after the digits): measured 0/292 either way
    for force_prefix in (False, True):
        results = v.verify_all(audio, variants[::2], force_prefix=force_prefix)
        assert [r.satisfied for r in results] == [False] * len(results), force_prefix


def test_real_recording_rejects_a_wrong_challenge_end_to_end(stage: SpeechStage) -> None:
    audio, rate = read_wav(shared("speech", "en_digits_vosk_test.wav"))
    r = stage.run(audio, rate, "100019021001804")
    assert not r.satisfied
    assert Reason.CHALLENGE_MISMATCH in r.reasons
    assert r.margin is not None and r.margin < 0


GRID = ["bbaf2n", "brbk7n", "lbax4n", "lbbc2a", "lrwp9a", "lwbsza", "pwij3p", "sbia1a", "swwp2s"]


def test_grid_digit_found_with_a_time_inside_the_clip(stage: SpeechStage) -> None:
    from liveness.inference.speech.whisper import WhisperVerifier
    from liveness.media import open_clip

    v = stage.verifier("en")
    assert isinstance(v, WhisperVerifier)
    found = 0
    for name in GRID:
        clip = open_clip(shared("grid", f"{name}.mpg"))
        want = "0" if name[4] == "z" else name[4]
        _text, digits = v.locate_digits(clip.audio)
        hits = [d for d in digits if d.digit == want]
        if hits:
            found += 1
            assert 0.0 < hits[0].start < hits[0].end <= clip.info.duration_s
            assert 0.8 < hits[0].start < 2.6  # the digit is the fifth of six words
    # measured 7/9: "c two again" is transcribed "c to again" (a homophone, not a digit), and
    # lbax4n's "x four" is heard as "attacks for": a coin flip for tiny.en, whose forced margin
    # on that clip jumps between -1.7 and +5.3 nats as the level moves in 2 dB steps (measured
    # at -20..-6 dBFS; an earlier machine heard it, this one does not)
    assert found >= 7


def test_grid_digit_time_matches_the_reference_alignment(stage: SpeechStage) -> None:
    from liveness.inference.speech.whisper import WhisperVerifier
    from liveness.media import open_clip

    words = {}
    for line in shared("grid", "swwp2s.align").read_text().split("\n"):
        parts = line.split()
        if len(parts) == 3:
            words[parts[2]] = (int(parts[0]) / 25000, int(parts[1]) / 25000)
    v = stage.verifier("en")
    assert isinstance(v, WhisperVerifier)
    _text, digits = v.locate_digits(open_clip(shared("grid", "swwp2s.mpg")).audio)
    two = [d for d in digits if d.digit == "2"][0]
    ref_start, ref_end = words["two"]
    # within 0.15 s: a few 20 ms encoder frames plus the energy onset's 10 ms hop
    assert abs(two.start - ref_start) < 0.15
    assert two.end > ref_start and two.start < ref_end


def fixture_reading(digits: str) -> tuple[np.ndarray, int]:
    """``digits`` read as the engine's genuine synthetic fixtures read them (liveness.fixtures:
    espeak-ng en, 140 wpm, 60 ms word gaps), with the fixtures' 0.6 s lead and 1.6 s tail."""
    from liveness.fixtures import FixtureToolMissing, espeak_digits

    try:
        speech = espeak_digits(digits)
    except FixtureToolMissing as exc:
        pytest.skip(str(exc))
    pad = np.zeros(16000 * 16 // 10, np.float32)
    return np.concatenate([pad[: 16000 * 6 // 10], speech, pad]), 16000


def test_espeak_clean_strings_verified(stage: SpeechStage) -> None:
    from liveness.challenge import is_readable
    from liveness.checks.speech import forced_margin, one_edit_variants
    from liveness.inference.speech.whisper import WhisperVerifier

    v = stage.verifier("en")
    assert isinstance(v, WhisperVerifier)
    rng = np.random.default_rng(20240601)
    challenges: list[str] = []
    while len(challenges) < 10:  # as the engine issues them: no digit three times in a row
        d = "".join(rng.choice(list("0123456789"), 6))
        if is_readable(d, 2):
            challenges.append(d)
    ok = 0
    for d in challenges:
        audio, rate = fixture_reading(d)
        r = stage.run(audio, rate, d, language="en")
        ok += r.satisfied
        if r.satisfied:
            assert [t.digit for t in r.timings] == list(d)
        # a sample of one-digit substitutions, deletions and insertions is never accepted
        enc, _ = v.encode(audio)
        alts = one_edit_variants(d)
        for alt in [alts[int(i)] for i in rng.choice(len(alts), 6, replace=False)]:
            clp, _, _ = v.score_encoded(enc, alt)
            assert forced_margin(clp, alt).margin < Config().speech.margin, (d, alt)
    # measured 53/60 over three other seeds (/tmp/sp2/final.py --seed 11/12/13: 19, 17, 17) and
    # 0/2400 one-edit false accepts; the misses are espeak's "nine" dropped by tiny.en.
    # This seed: 10/10 when written; 8 leaves room for the machine's int8 kernels.
    assert ok >= 8


def test_espeak_wrong_digit_and_wrong_order_rejected(stage: SpeechStage) -> None:
    audio, rate = fixture_reading("305714")
    for challenge in ("305774", "417503", "30571", "3057142"):
        r = stage.run(audio, rate, challenge, language="en")
        assert not r.satisfied, challenge
        assert Reason.CHALLENGE_MISMATCH in r.reasons, challenge


def test_silence_and_noise_rejected(stage: SpeechStage) -> None:
    silent = np.zeros(16000 * 3, np.float32)
    r = stage.run(silent, 16000, "305714")
    assert not r.satisfied and Reason.NO_SPEECH in r.reasons
    noise = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
    r = stage.run(noise, 16000, "305714")
    assert not r.satisfied


def test_speech_cut_at_the_start_is_outside_the_clip(stage: SpeechStage, tmp_path: Path) -> None:
    audio, rate = espeak("3 0 5 7 1 4", tmp_path)
    start = int(np.flatnonzero(np.abs(audio) > 0.05)[0]) + rate // 20
    r = stage.run(audio[start:], rate, "305714")
    assert Reason.SPEECH_OUTSIDE_CLIP in r.reasons
    assert not r.satisfied


def test_resampled_input_gives_the_same_verdict(stage: SpeechStage) -> None:
    import soxr

    audio, rate = read_wav(shared("speech", "en_digits_vosk_test.wav"))
    a48 = soxr.resample(audio, rate, 48000)
    r = stage.run(a48, 48000, EN_TRUTH)
    assert r.satisfied
