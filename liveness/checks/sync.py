"""Lip-sync: is the face on screen the one speaking?

Pure functions over arrays (no I/O, no models). Two signals are compared:

* a **mouth-opening signal**, one value per video frame: the face is aligned by a similarity
  transform from its 5 landmarks to a fixed template, and the fraction of *dark* pixels inside the
  lips region is measured (an open mouth shows the dark oral cavity; closed lips do not). Dark is
  relative to the brightness of the lower face in the same frame, so lighting and face size cancel.
* a **speech envelope** from the audio: RMS energy in 40 ms windows of the second-formant band
  (800-2200 Hz by default, ``SyncConfig.envelope_low_hz/high_hz``), log-compressed, read at any
  time by interpolation. Lip opening shapes the F2 region's energy more directly than the F1
  region's, which is dominated by voicing and vowel height (Grant & Seitz 2000).

The check passes when (1) the normalised cross-correlation of the two signals peaks within
``SyncConfig.max_lag_s`` of zero lag, searching lags up to ``search_lag_s`` either way, (2) the
correlation at that peak reaches ``min_score``, and (3) the mouth moves during every spoken digit
(range of the mouth signal inside each digit's time span, slightly widened, at least
``min_digit_motion``). Lag sign: positive means the sound comes *after* the mouth movement.

A digit spoken while no face was tracked cannot be judged: when everything that could be seen
was in sync, the result is FACE_LOST (ask for a retry) rather than LIP_SYNC_MISMATCH.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, sosfiltfilt

from liveness.config import SyncConfig
from liveness.results import DigitTiming, Reason, Score

__all__ = [
    "SyncResult",
    "check_sync",
    "mouth_opening",
    "mouth_signal",
    "speech_envelope",
]

# 5-point template (left eye, right eye, nose, mouth left, mouth right) on a 112x112 canvas: the
# widely used ArcFace alignment layout. Only the mouth and lower-face boxes below depend on it.
_TEMPLATE = np.array(
    [
        [38.29, 51.70],
        [73.53, 51.50],
        [56.03, 71.74],
        [41.55, 92.37],
        [70.73, 92.20],
    ],
    dtype=np.float32,
)
_CANVAS = 112
# Lips region in template coordinates: mouth corners +-6 px wide, from just under the nose to
# below the lower lip when the jaw drops (x0, y0, x1, y1).
_MOUTH_BOX = (40, 80, 73, 110)
# Lower face (cheeks, upper lip, chin) whose brighter pixels give the skin reference.
_LOWER_FACE_BOX = (24, 62, 88, 112)
# A pixel is "dark" below these fractions of the skin reference; averaging three levels keeps the
# signal graded and less sensitive to lighting than any single threshold.
_DARK_RATIOS = (0.45, 0.6, 0.75)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    """Outcome of the lip-sync check, with the evidence behind it."""

    passed: bool
    score: float  # correlation at the best lag inside +-max_lag_s
    lag_s: float  # lag of the global correlation peak within +-search_lag_s
    peak_score: float  # correlation at that global peak
    digit_motion: tuple[float, ...]  # mouth-signal range during each spoken digit
    reasons: tuple[Reason, ...] = ()
    scores: tuple[Score, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


def _align(
    frame: NDArray[np.uint8], landmarks: NDArray[np.floating[Any]]
) -> NDArray[np.uint8] | None:
    """The 112 px grey chip of the face. Only the part of the frame the warp reads (its source
    footprint plus two pixels for the bilinear neighbours) is converted to grey: the same chip as
    converting the whole frame first, for a fraction of the cost on a 720p frame."""
    src = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    if not np.all(np.isfinite(src)):
        return None
    m, _ = cv2.estimateAffinePartial2D(src, _TEMPLATE, method=cv2.LMEDS)
    if m is None:
        return None
    h, w = frame.shape[:2]
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [_CANVAS, 0, 1], [0, _CANVAS, 1], [_CANVAS, _CANVAS, 1]], float)
    xy = corners @ inv.T
    x1 = int(np.clip(np.floor(xy[:, 0].min()) - 2, 0, w))
    y1 = int(np.clip(np.floor(xy[:, 1].min()) - 2, 0, h))
    x2 = int(np.clip(np.ceil(xy[:, 0].max()) + 3, 0, w))
    y2 = int(np.clip(np.ceil(xy[:, 1].max()) + 3, 0, h))
    if x2 <= x1 or y2 <= y1:  # the face maps entirely outside the frame
        x1, y1, x2, y2 = 0, 0, w, h
    if frame.ndim == 2:
        gray = frame
    else:  # grey where the warp reads, zeros (never read) elsewhere: the warp is unchanged
        gray = np.zeros((h, w), np.uint8)
        gray[y1:y2, x1:x2] = cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    return np.asarray(cv2.warpAffine(gray, m, (_CANVAS, _CANVAS), flags=cv2.INTER_LINEAR), np.uint8)


def mouth_opening(frame_bgr: NDArray[np.uint8], landmarks: NDArray[np.floating[Any]]) -> float:
    """Fraction of dark pixels inside the lips region of one face (0 = closed, ~0.3+ = wide open).

    Returns NaN when the landmarks cannot be aligned.
    """
    chip = _align(np.asarray(frame_bgr, np.uint8), landmarks)
    if chip is None:
        return float("nan")
    x0, y0, x1, y1 = _LOWER_FACE_BOX
    skin = float(np.percentile(chip[y0:y1, x0:x1], 75))
    if skin < 8.0:  # black frame: no usable contrast
        return float("nan")
    x0, y0, x1, y1 = _MOUTH_BOX
    mouth = chip[y0:y1, x0:x1].astype(np.float32)
    return float(np.mean([np.mean(mouth < r * skin) for r in _DARK_RATIOS]))


def mouth_signal(
    frames: NDArray[np.uint8] | Sequence[NDArray[np.uint8]],
    landmarks: Sequence[NDArray[np.floating[Any]] | None],
) -> NDArray[np.float64]:
    """Mouth opening per frame; NaN where there is no face (``landmarks[i] is None``)."""
    out = np.full(len(landmarks), np.nan, dtype=np.float64)
    for i, lm in enumerate(landmarks):
        if lm is not None:
            out[i] = mouth_opening(frames[i], lm)
    return out


def speech_envelope(
    audio: NDArray[np.floating[Any]],
    rate: int,
    *,
    band_hz: tuple[float, float] = (800.0, 2200.0),
    hop_s: float = 0.01,
    win_s: float = 0.04,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(times, log-RMS) of the audio band-passed to ``band_hz``, one value every ``hop_s`` s.

    Empty when the clip is shorter than one window or the band lies above the Nyquist limit.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    lo, hi = band_hz[0], min(band_hz[1], 0.45 * rate)
    if x.size < int(rate * win_s) + 1 or not 0 < lo < hi:
        return np.zeros(0), np.zeros(0)
    sos = butter(4, [lo, hi], btype="bandpass", fs=rate, output="sos")
    y = sosfiltfilt(sos, x)
    hop = max(1, int(round(rate * hop_s)))
    win = max(hop, int(round(rate * win_s)))
    power = np.convolve(y * y, np.ones(win) / win, mode="same")[::hop]
    times = np.arange(power.size, dtype=np.float64) * hop / rate
    peak = float(power.max()) if power.size else 0.0
    floor = max(peak * 1e-4, 1e-12)  # 40 dB below the loudest window
    return times, 0.5 * np.log10(np.maximum(power, floor))


def _detrend(
    x: NDArray[np.float64], t: NDArray[np.float64], window_s: float
) -> NDArray[np.float64]:
    """Subtract a centred moving average over ``window_s`` (keeps syllable-rate movement)."""
    if window_s <= 0 or x.size < 3:
        return x
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    n = max(1, int(round(window_s / max(dt, 1e-6))))
    return x - uniform_filter1d(x, n, mode="nearest")


def _corr(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


def check_sync(
    mouth: NDArray[np.float64],
    timestamps: NDArray[np.floating[Any]],
    audio: NDArray[np.floating[Any]],
    rate: int,
    digit_timings: Sequence[DigitTiming],
    cfg: SyncConfig | None = None,
) -> SyncResult:
    """Judge whether the mouth signal moves with the speech (see the module docstring)."""
    cfg = cfg or SyncConfig()
    ts = np.asarray(timestamps, dtype=np.float64)
    m = np.asarray(mouth, dtype=np.float64)
    valid = np.isfinite(m)
    band = (cfg.envelope_low_hz, cfg.envelope_high_hz)
    env_t, env = speech_envelope(audio, rate, band_hz=band)

    lags = np.arange(-cfg.search_lag_s, cfg.search_lag_s + 1e-9, cfg.lag_step_s)
    corrs = np.zeros(lags.size)
    usable = int(valid.sum()) >= cfg.min_frames and env.size > 0
    if usable:
        # Both signals lose their slow trend: every utterance opens the mouth and raises the
        # energy for a second or two, which would make any speech correlate with any talking face.
        tv = ts[valid]
        mv = _detrend(m[valid], tv, cfg.detrend_s)
        env_d = _detrend(env, env_t, cfg.detrend_s)
        for i, lag in enumerate(lags):
            # mouth at t against sound at t + lag; outside the audio the envelope is its floor
            e = np.interp(tv + lag, env_t, env_d, left=env_d.min(), right=env_d.min())
            corrs[i] = _corr(mv, e)
    near = np.abs(lags) <= cfg.max_lag_s + 1e-9
    score = float(corrs[near].max()) if usable else 0.0
    k = int(np.argmax(corrs))
    lag_s = float(lags[k]) if usable else 0.0
    peak = float(corrs[k]) if usable else 0.0

    motion: list[float] = []
    unseen = 0  # digits spoken while no face was visible: they cannot be judged
    for d in digit_timings:
        near_t = (ts >= d.start - cfg.digit_pad_s) & (ts <= d.end + cfg.digit_pad_s)
        sel = valid & near_t
        if int(sel.sum()) >= 2:
            motion.append(float(np.ptp(m[sel])))
        elif int(near_t.sum()) >= 2:
            unseen += 1
            motion.append(float("nan"))
        else:  # the clip has no frames there at all (speech outside the video)
            motion.append(0.0)
    judged = [v for v in motion if np.isfinite(v)]
    min_motion = min(judged) if judged else 0.0

    scores = (
        Score(name="sync.correlation", value=score, threshold=cfg.min_score),
        Score(name="sync.lag_s", value=abs(lag_s), threshold=cfg.max_lag_s, higher_is_better=False),
        Score(name="sync.digit_motion", value=min_motion, threshold=cfg.min_digit_motion),
    )
    # A peak elsewhere only disqualifies when it is clearly better than the best near-zero lag.
    lag_ok = abs(lag_s) <= cfg.max_lag_s or peak - score < cfg.lag_tolerance
    judged_ok = usable and bool(judged) and scores[0].passed and scores[2].passed and lag_ok
    passed = judged_ok and unseen == 0
    if passed:
        reasons: tuple[Reason, ...] = ()
    elif judged_ok:  # what could be seen was in sync; the face was away for some digits
        reasons = (Reason.FACE_LOST,)
    else:
        reasons = (Reason.LIP_SYNC_MISMATCH,)
    details = {
        "frames_used": int(valid.sum()),
        "lag_s": round(lag_s, 3),
        "peak_correlation": round(peak, 4),
        "digit_motion": [round(v, 4) if np.isfinite(v) else None for v in motion],
        "digits_without_face": unseen,
    }
    return SyncResult(
        passed=passed,
        score=score,
        lag_s=lag_s,
        peak_score=peak,
        digit_motion=tuple(motion),
        reasons=reasons,
        scores=scores,
        details=details,
    )
