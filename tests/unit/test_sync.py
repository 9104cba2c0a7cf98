"""Lip-sync check (liveness.checks.sync) on constructed signals and drawn faces: no models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveness.checks.sync import check_sync, mouth_opening, speech_envelope
from liveness.config import SyncConfig
from liveness.errors import ConfigError
from liveness.results import DigitTiming, Reason

RATE = 16_000
FPS = 25.0


def _utterance(seed: int, n_syll: int = 8, dur: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """(audio, openness at 1 kHz): noise-excited syllables at random times, mouth open with them."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur * RATE)) / RATE
    gate = np.zeros_like(t)
    starts = np.sort(rng.uniform(0.4, dur - 0.6, n_syll))
    for s in starts:
        length = rng.uniform(0.12, 0.25)
        gate += np.exp(-0.5 * ((t - s - length / 2) / (length / 3)) ** 2)
    gate = np.clip(gate, 0, 1)
    carrier = np.sin(2 * np.pi * 180 * t) + 0.5 * rng.standard_normal(t.size)
    audio = (0.3 * gate * carrier + 0.003 * rng.standard_normal(t.size)).astype(np.float32)
    return audio, gate


def _mouth(gate: np.ndarray, seed: int, shift_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1000)
    ts = np.arange(0, gate.size / RATE, 1 / FPS)
    idx = np.clip(((ts - shift_s) * RATE).astype(int), 0, gate.size - 1)
    m = 0.02 + 0.25 * gate[idx] + 0.01 * rng.standard_normal(ts.size)
    return m, ts


DIGITS = [DigitTiming(digit="1", start=1.0, end=1.4), DigitTiming(digit="2", start=2.0, end=2.4)]


def _digits_on(gate: np.ndarray) -> list[DigitTiming]:
    """Digit spans where the constructed speech is loud (as a recogniser would report them)."""
    on = gate > 0.5
    edges = np.flatnonzero(np.diff(on.astype(int)))
    spans = [(edges[i] / RATE, edges[i + 1] / RATE) for i in range(0, len(edges) - 1, 2)]
    return [DigitTiming(digit=str(i % 10), start=a, end=b) for i, (a, b) in enumerate(spans)]


@pytest.mark.parametrize("seed", range(5))
def test_in_sync_passes_with_lag_near_zero(seed: int) -> None:
    audio, gate = _utterance(seed)
    m, ts = _mouth(gate, seed)
    r = check_sync(m, ts, audio, RATE, _digits_on(gate))
    assert r.passed, r.details
    assert abs(r.lag_s) <= 0.06
    assert r.score > 0.6
    assert r.reasons == ()


@pytest.mark.parametrize("seed", range(5))
def test_audio_shifted_one_second_fails_with_the_measured_lag(seed: int) -> None:
    audio, gate = _utterance(seed)
    m, ts = _mouth(gate, seed, shift_s=-1.0)  # the mouth moves 1 s before the sound
    r = check_sync(m, ts, audio, RATE, _digits_on(gate))
    assert not r.passed
    assert r.reasons == (Reason.LIP_SYNC_MISMATCH,)
    assert r.lag_s == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize("seed", range(5))
def test_another_utterance_does_not_pass(seed: int) -> None:
    audio, gate = _utterance(seed)
    _, other = _utterance(seed + 50)
    m, ts = _mouth(other, seed)
    r = check_sync(m, ts, audio, RATE, _digits_on(gate))
    assert not r.passed


def test_still_mouth_fails_on_digit_motion() -> None:
    audio, gate = _utterance(3)
    ts = np.arange(0, 4.0, 1 / FPS)
    m = 0.05 + 0.002 * np.random.default_rng(0).standard_normal(ts.size)
    r = check_sync(m, ts, audio, RATE, _digits_on(gate))
    assert not r.passed
    motion = r.scores[2]
    assert motion.name == "sync.digit_motion" and not motion.passed


def test_too_few_face_frames_cannot_pass() -> None:
    audio, gate = _utterance(1)
    m, ts = _mouth(gate, 1)
    m[5:] = np.nan
    r = check_sync(m, ts, audio, RATE, DIGITS)
    assert not r.passed and r.details["frames_used"] == 5


def test_no_digits_heard_cannot_pass() -> None:
    audio, gate = _utterance(2)
    m, ts = _mouth(gate, 2)
    assert not check_sync(m, ts, audio, RATE, []).passed


def test_scores_carry_thresholds() -> None:
    cfg = SyncConfig(min_score=0.5, max_lag_s=0.1)
    audio, gate = _utterance(4)
    m, ts = _mouth(gate, 4)
    r = check_sync(m, ts, audio, RATE, _digits_on(gate), cfg)
    names = {s.name: s for s in r.scores}
    assert names["sync.correlation"].threshold == 0.5
    assert names["sync.lag_s"].threshold == 0.1 and not names["sync.lag_s"].higher_is_better


def test_envelope_follows_loudness() -> None:
    audio, gate = _utterance(0)
    t, env = speech_envelope(audio, RATE)
    loud = env[np.interp(t, np.arange(gate.size) / RATE, gate) > 0.8]
    quiet = env[np.interp(t, np.arange(gate.size) / RATE, gate) < 0.01]
    assert loud.mean() > quiet.mean() + 1.0  # more than 20 dB apart
    assert speech_envelope(np.zeros(10, np.float32), RATE)[1].size == 0


def _tone(freq: float, dur: float = 1.0) -> np.ndarray:
    t = np.arange(int(dur * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_envelope_measures_the_f2_band_only() -> None:
    """A 1.5 kHz tone sits in the default 800-2200 Hz band; a 400 Hz tone (F1 region) of the same
    amplitude is filtered down to the envelope's floor, 40 dB below the loudest window."""
    audio = np.concatenate([_tone(1500.0), _tone(400.0)])
    t, env = speech_envelope(audio, RATE)
    in_band = env[(t > 0.2) & (t < 0.8)]
    out_band = env[(t > 1.2) & (t < 1.8)]
    assert in_band.mean() == pytest.approx(np.log10(0.3 / np.sqrt(2)), abs=0.02)
    assert in_band.mean() - out_band.mean() == pytest.approx(2.0, abs=1e-3)
    # the wide band the check used before (250-3500 Hz) keeps both tones within 1 dB
    _, wide = speech_envelope(audio, RATE, band_hz=(250.0, 3500.0))
    assert abs(wide[(t > 0.2) & (t < 0.8)].mean() - wide[(t > 1.2) & (t < 1.8)].mean()) < 0.05


def test_envelope_empty_when_the_band_is_above_nyquist() -> None:
    t, env = speech_envelope(_tone(100.0, dur=2.0), 1_000)  # Nyquist 500 Hz < 800 Hz
    assert t.size == 0 and env.size == 0


def test_check_sync_reads_the_configured_band() -> None:
    """Speech as a 300 Hz tone under steady broadband noise: in the default F2 band only the
    noise is heard, so the check fails; with the band moved over the tone it passes."""
    audio, gate = _utterance(0)
    t = np.arange(audio.size) / RATE
    low = (0.3 * gate * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    m, ts = _mouth(gate, 0)
    noise = np.random.default_rng(9).standard_normal(audio.size).astype(np.float32)
    band_noise = 0.3 * noise + low
    assert not check_sync(m, ts, band_noise, RATE, _digits_on(gate)).passed
    cfg = SyncConfig(envelope_low_hz=150.0, envelope_high_hz=500.0)
    assert check_sync(m, ts, band_noise, RATE, _digits_on(gate), cfg).passed


def test_sync_config_rejects_an_empty_band() -> None:
    with pytest.raises(ConfigError):
        SyncConfig(envelope_low_hz=2200.0, envelope_high_hz=800.0)
    with pytest.raises(ConfigError):
        SyncConfig(envelope_low_hz=0.0)


def _drawn_face(open_px: int) -> tuple[np.ndarray, np.ndarray]:
    img = np.full((240, 240, 3), 90, np.uint8)
    cv2.ellipse(img, (120, 120), (70, 95), 0, 0, 360, (150, 170, 200), -1)
    lm = np.array([[95, 95], [145, 95], [120, 125], [100, 155], [140, 155]], np.float32)
    for x, y in lm[:2]:
        cv2.circle(img, (int(x), int(y)), 6, (40, 40, 40), -1)
    cv2.line(img, (100, 155), (140, 155), (90, 90, 150), 3)
    if open_px:
        cv2.ellipse(img, (120, 157), (17, open_px), 0, 0, 360, (20, 20, 40), -1)
    return img, lm


def test_mouth_opening_grows_with_the_open_mouth() -> None:
    values = [mouth_opening(*_drawn_face(h)) for h in (0, 3, 6, 10, 14)]
    assert values == sorted(values)
    assert values[0] < 0.05 and values[-1] > 0.2
    # the same face at half the size gives the same opening (normalised by face size)
    img, lm = _drawn_face(10)
    small = cv2.resize(img, (120, 120), interpolation=cv2.INTER_AREA)
    assert mouth_opening(small, lm / 2) == pytest.approx(values[3], abs=0.04)


def test_mouth_opening_nan_on_black_frame() -> None:
    _, lm = _drawn_face(0)
    assert np.isnan(mouth_opening(np.zeros((240, 240, 3), np.uint8), lm))


def test_digit_spoken_while_the_face_was_away_asks_for_a_retry() -> None:
    audio, gate = _utterance(0)
    m, ts = _mouth(gate, 0)
    digits = _digits_on(gate)
    away = digits[len(digits) // 2]
    m[(ts >= away.start - 0.2) & (ts <= away.end + 0.2)] = np.nan
    r = check_sync(m, ts, audio, RATE, digits)
    assert not r.passed and r.reasons == (Reason.FACE_LOST,)
    assert r.details["digits_without_face"] == 1


@pytest.mark.parametrize(
    "shift",
    [(0.0, 0.0), (-150.0, 0.0), (0.0, -170.0), (420.0, 260.0), (-400.0, -400.0)],
    ids=["centre", "left edge", "top edge", "bottom right", "outside"],
)
def test_chip_from_the_warp_footprint_equals_the_whole_frame_in_grey(
    shift: tuple[float, float],
) -> None:
    """_align converts only the pixels the warp reads: exactly the chip of the whole grey frame,
    also where the face runs off the frame (the warp reads the constant border there)."""
    from liveness.checks.sync import _TEMPLATE, _align

    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    lm = (_TEMPLATE - 56.0) * 1.7 + np.array([320.0, 240.0]) + np.array(shift)
    lm = lm + rng.normal(0, 0.7, lm.shape)
    m, _ = cv2.estimateAffinePartial2D(lm.astype(np.float32), _TEMPLATE, method=cv2.LMEDS)
    whole = cv2.warpAffine(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), m, (112, 112))
    chip = _align(frame, lm)
    assert chip is not None
    np.testing.assert_array_equal(chip, whole)
