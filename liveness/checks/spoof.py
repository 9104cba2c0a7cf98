"""Model-free presentation-attack cues and their fusion (pure: arrays in, results out).

The MiniFASNet ensemble calls almost any patch "real", so the passive stage never relies on it
alone. Each cue here measures one physical sign of a presentation attack, returns its score next
to the threshold it is judged against, and keeps its evidence for audit:

``moire``         periodic high-frequency peaks in the face-and-surroundings spectrum (a screen's
                  pixel grid resampled by the camera). dB above the local spectral background.
``display_gamut`` signs of a re-displayed picture: the darkest tones lifted (a screen's or a
                  print's black is grey under room light) and colour saturation compressed.
``planar_motion`` the surroundings of the face move exactly as the face does (fraction of points
                  around the face that follow the face's homography, over pairs where it moved):
                  a photo or screen held up moves as one plane, a head in front of a room not.
``border``        straight edges framing the face on several sides (a print's or a phone's edge).
``still_image``   no non-rigid motion inside the face over the clip (the residual of face points
                  after the best homography, in % of the face width): a photo never talks.

A cue with too little evidence (too few tracked points, no motion to judge) reports
``decided=False`` and does not fire. ``fuse`` turns fired cues into a verdict with the rules in
``AntiSpoofConfig``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

__all__ = [
    "CueResult",
    "border_cue",
    "display_gamut_cue",
    "fuse",
    "moire_cue",
    "motion_cues",
    "spaced_indices",
    "trimmed_mean",
]

U8 = npt.NDArray[np.uint8]
Box = npt.ArrayLike  # (x1, y1, x2, y2)


@dataclass(frozen=True, slots=True, kw_only=True)
class CueResult:
    """One cue: its score, the threshold it is judged against, and whether it fired.

    ``higher_is_spoof`` gives the direction: the cue fires when ``score >= threshold`` (or
    ``score < threshold`` when False, as for ``still_image`` where little motion is suspicious).
    """

    name: str
    score: float
    threshold: float
    fired: bool
    higher_is_spoof: bool = True
    decided: bool = True
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": round(float(self.score), 6),
            "threshold": float(self.threshold),
            "fired": self.fired,
            "higher_is_spoof": self.higher_is_spoof,
            "decided": self.decided,
            "evidence": self.evidence,
        }


def _judge(
    name: str, score: float, threshold: float, *, higher_is_spoof: bool = True,
    decided: bool = True, **evidence: Any,
) -> CueResult:  # fmt: skip
    fired = decided and (score >= threshold if higher_is_spoof else score < threshold)
    return CueResult(
        name=name, score=float(score), threshold=float(threshold), fired=bool(fired),
        higher_is_spoof=higher_is_spoof, decided=decided, evidence=evidence,
    )  # fmt: skip


# --- helpers ---------------------------------------------------------------------------------


def trimmed_mean(values: Sequence[float] | npt.ArrayLike, trim: float = 0.2) -> float:
    """Mean after dropping the ``trim`` fraction of lowest and of highest values (at least one
    each when there are 5 or more values). NaN for no values."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if v.size == 0:
        return float("nan")
    k = int(math.floor(v.size * trim))
    if v.size >= 5:
        k = max(k, 1)
    if 2 * k >= v.size:
        k = (v.size - 1) // 2
    return float(v[k : v.size - k].mean())


def spaced_indices(valid: Sequence[int], k: int) -> list[int]:
    """Up to ``k`` entries of ``valid`` spread evenly over it (first and last included)."""
    n = len(valid)
    if k <= 0 or n == 0:
        return []
    if n <= k:
        return list(valid)
    pos = np.linspace(0, n - 1, k)
    return [valid[int(round(p))] for p in pos]


def _box(b: Box) -> npt.NDArray[np.float64]:
    return np.asarray(b, dtype=np.float64).reshape(4)


def _expand(
    b: npt.NDArray[np.float64], f: float, shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """Box scaled by ``f`` about its centre, clipped to the image, as int (x1, y1, x2, y2)."""
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    hw, hh = (b[2] - b[0]) * f / 2, (b[3] - b[1]) * f / 2
    h, w = int(shape[0]), int(shape[1])
    return (
        max(0, int(cx - hw)), max(0, int(cy - hh)), min(w, int(math.ceil(cx + hw))),
        min(h, int(math.ceil(cy + hh))),
    )  # fmt: skip


def _gray(img: U8) -> U8:
    return img if img.ndim == 2 else np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), np.uint8)


# --- moire -----------------------------------------------------------------------------------

_TILE = 64
_BLOCK = 8  # codec block size: its lattice (multiples of 1/8 cycle/pixel) is not a screen's
_HANN = np.outer(np.hanning(_TILE), np.hanning(_TILE)).astype(np.float32)


def _tile_spectrum(gray: U8, region: tuple[int, int, int, int]) -> tuple[np.ndarray, int]:
    x1, y1, x2, y2 = region
    roi = gray[y1:y2, x1:x2].astype(np.float32)
    h, w = roi.shape
    if h < _TILE or w < _TILE:
        return np.zeros((_TILE, _TILE)), 0
    step = _TILE // 2
    # every half-overlapping tile at once (one batched FFT instead of a Python loop of them)
    tiles = sliding_window_view(roi, (_TILE, _TILE))[::step, ::step].reshape(-1, _TILE, _TILE)
    tiles = (tiles - tiles.mean(axis=(1, 2), keepdims=True)) * _HANN
    spec = np.abs(scipy.fft.fft2(tiles)) ** 2
    return spec.sum(axis=0, dtype=np.float64), len(tiles)


def _moire_mask() -> npt.NDArray[np.bool_]:
    f = np.fft.fftfreq(_TILE)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    r = np.hypot(fx, fy)
    mask = r >= 0.12  # below this, faces and backgrounds have their own structure
    idx = np.arange(_TILE)
    lattice = (idx % (_TILE // _BLOCK)) == 0  # codec block lattice rows / columns
    near = lattice | np.roll(lattice, 1) | np.roll(lattice, -1)
    mask &= ~near[:, None] & ~near[None, :]
    return mask


_MOIRE_MASK = _moire_mask()


def moire_cue(
    grays: Sequence[U8], boxes: Sequence[Box], *, threshold: float, region_scale: float = 2.0
) -> CueResult:
    """Strongest isolated peak of the high-frequency spectrum around the face, in dB.

    Power spectra of 64x64 Hann-windowed tiles of the region (face box x ``region_scale``) are
    averaged over tiles and frames at native resolution; each bin is compared with the median
    of its 7x7 neighbourhood in log power. Natural images and sensor noise have smooth spectra
    (a few dB of ripple after averaging); a resampled pixel grid gives sharp peaks. Rows and
    columns of the 8-pixel codec block lattice are ignored (MPEG/JPEG blocking is not moire).
    """
    acc = np.zeros((_TILE, _TILE), np.float64)
    tiles = 0
    for g, b in zip(grays, boxes, strict=True):
        gray = _gray(g)
        spec, n = _tile_spectrum(gray, _expand(_box(b), region_scale, gray.shape))
        acc += spec
        tiles += n
    if tiles == 0:
        return _judge("moire", 0.0, threshold, decided=False, tiles=0)
    logp = np.log10(acc / tiles + 1e-9)
    logp = np.fft.fftshift(logp)
    mask = np.fft.fftshift(_MOIRE_MASK)
    bg = ndimage.median_filter(logp, size=7, mode="wrap")
    prom = 10.0 * (logp - bg)
    prom[~mask] = -np.inf
    k = int(np.argmax(prom))
    peak = float(prom.flat[k])
    iy, ix = divmod(k, _TILE)
    freq = ((ix - _TILE // 2) / _TILE, (iy - _TILE // 2) / _TILE)
    return _judge(
        "moire", peak, threshold, tiles=tiles, frames=len(grays),
        peak_cycles_per_px=[round(freq[0], 4), round(freq[1], 4)],
    )  # fmt: skip


# --- display gamut -----------------------------------------------------------------------------


def display_gamut_cue(
    frames_bgr: Sequence[U8], boxes: Sequence[Box], *, threshold: float, region_scale: float = 2.0
) -> CueResult:
    """Lifted blacks and compressed saturation around the face (0..1, higher = more display-like).

    score = mean of ``black`` (1st percentile of luma, over 64 levels, capped at 1) and
    ``1 - sat`` (99th percentile of HSV saturation / 255). A camera looking at a real person in a
    room sees deep shadows (hair, nostrils, clothing folds) and fully saturated tones somewhere;
    a picture on a screen or paper, re-photographed, has a grey black and a narrower gamut.
    """
    blacks, sats = [], []
    for img, b in zip(frames_bgr, boxes, strict=True):
        if img.ndim != 3:
            continue
        x1, y1, x2, y2 = _expand(_box(b), region_scale, img.shape)
        roi = img[y1:y2, x1:x2]
        if roi.size == 0:
            continue
        hsv = cv2.cvtColor(roi, cv2.COLOR_BGR2HSV)
        luma = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
        blacks.append(float(np.percentile(luma, 1)))
        sats.append(float(np.percentile(hsv[..., 1], 99)))
    if not blacks:
        return _judge("display_gamut", 0.0, threshold, decided=False)
    black = float(np.median(blacks))
    sat = float(np.median(sats))
    score = 0.5 * min(black / 64.0, 1.0) + 0.5 * (1.0 - sat / 255.0)
    return _judge(
        "display_gamut", score, threshold, black_level=round(black, 2),
        saturation_p99=round(sat, 2), frames=len(blacks),
    )  # fmt: skip


# --- border ------------------------------------------------------------------------------------


def _median_u8(img: U8) -> float:
    """``np.median`` of a uint8 image from its histogram (exact, several times faster)."""
    counts = np.cumsum(cv2.calcHist([img], [0], None, [256], [0, 256]).ravel())
    n = int(img.size)
    upper = int(np.searchsorted(counts, n // 2, side="right"))  # value at sorted index n // 2
    if n % 2:
        return float(upper)
    lower = int(np.searchsorted(counts, n // 2 - 1, side="right"))
    return (lower + upper) / 2.0


def _sides(gray: U8, b: npt.NDArray[np.float64], max_tilt_deg: float) -> set[str]:
    h_img, w_img = gray.shape
    fw, fh = b[2] - b[0], b[3] - b[1]
    blur = np.asarray(cv2.GaussianBlur(gray, (5, 5), 0), np.uint8)
    med = _median_u8(blur)
    edges = cv2.Canny(blur, max(10.0, 0.66 * med), min(255.0, max(30.0, 1.33 * med)))
    min_len = 0.7 * min(fw, fh)
    lines = cv2.HoughLinesP(
        edges, 1, np.pi / 180, threshold=int(min_len * 0.5), minLineLength=min_len, maxLineGap=4
    )
    found: set[str] = set()
    if lines is None:
        return found
    tan = math.tan(math.radians(max_tilt_deg))
    margin_x, margin_y = 0.15 * fw, 0.15 * fh
    for x1, y1, x2, y2 in np.asarray(lines, np.float64).reshape(-1, 4):
        dx, dy = abs(x2 - x1), abs(y2 - y1)
        if dx <= tan * dy:  # near vertical
            x = (x1 + x2) / 2
            overlap = min(max(y1, y2), b[3]) - max(min(y1, y2), b[1])
            if overlap < 0.5 * fh or x <= 2 or x >= w_img - 3:  # frame edges are not borders
                continue
            if x < b[0] - margin_x:
                found.add("left")
            elif x > b[2] + margin_x:
                found.add("right")
        elif dy <= tan * dx:  # near horizontal
            y = (y1 + y2) / 2
            overlap = min(max(x1, x2), b[2]) - max(min(x1, x2), b[0])
            if overlap < 0.5 * fw or y <= 2 or y >= h_img - 3:
                continue
            if y < b[1] - margin_y:
                found.add("top")
            elif y > b[3] + margin_y:
                found.add("bottom")
    return found


def border_cue(
    grays: Sequence[U8], boxes: Sequence[Box], *, threshold: float, max_tilt_deg: float = 15.0
) -> CueResult:
    """Fraction of the four sides of the face framed by a long straight edge (median over frames).

    An edge counts for a side when it is nearly parallel to it, lies outside the face box (plus a
    15% margin), is at least 0.7 face-sizes long and runs alongside at least half the face.
    """
    per_frame: list[float] = []
    seen: dict[str, int] = {"left": 0, "right": 0, "top": 0, "bottom": 0}
    for g, b in zip(grays, boxes, strict=True):
        sides = _sides(_gray(g), _box(b), max_tilt_deg)
        for s in sides:
            seen[s] += 1
        per_frame.append(len(sides) / 4.0)
    if not per_frame:
        return _judge("border", 0.0, threshold, decided=False)
    return _judge(
        "border", float(np.median(per_frame)), threshold, frames=len(per_frame), sides_seen=seen
    )


# --- motion --------------------------------------------------------------------------------------

_LK = {
    "winSize": (15, 15),
    "maxLevel": 3,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
}


_MOTION_MARGIN = 64  # px around the tracked region: LK's 15-px window at pyramid level 3 spans 120
_LK_ALIGN = 2 ** _LK["maxLevel"]  # type: ignore[operator]


def _track(a: U8, b: U8, pts: np.ndarray, fb_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Points tracked a -> b with a forward-backward check; returns (src, dst) that passed."""
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, None, **_LK)  # type: ignore[call-overload]
    back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, fwd, None, **_LK)  # type: ignore[call-overload]
    err = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (err < fb_max)
    return pts.reshape(-1, 2)[ok], fwd.reshape(-1, 2)[ok]


def _apply(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.c_[p, np.ones(len(p))] @ h.T
    return np.asarray(q[:, :2] / q[:, 2:3])


def motion_cues(
    grays: Sequence[U8] | U8,
    timestamps: npt.ArrayLike,
    boxes: Sequence[Box | None],
    *,
    planar_threshold: float,
    still_threshold: float,
    gap_s: float = 0.3,
    max_pairs: int = 12,
    min_motion_px: float = 1.0,
    min_points: int = 12,
) -> tuple[CueResult, CueResult]:
    """``planar_motion`` and ``still_image`` from points tracked inside and around the face.

    ``grays``: the clip's frames, grey or BGR (only the region around the face of the paired
    frames is converted). For up to ``max_pairs`` frame pairs about ``gap_s`` apart (both with a
    face), on a crop around the region: corners inside
    the face box (inner 90%) and in the ring out to 2x the box are tracked with pyramidal
    Lucas-Kanade (forward-backward checked); a homography is fitted to the face points (RANSAC).

    * still_image: the 90th percentile of face-point residuals from that homography, as % of
      the face width; the 75th percentile over pairs (speech moves the face in bursts). Speech,
      blinks and a head's 3-D turn leave residuals a plane cannot absorb; a photo or a frozen
      frame leaves only tracking noise.
    * planar_motion: over pairs where the face moved at least ``min_motion_px``, the fraction
      of ring points that follow the face's homography (within max(1 px, 25% of the motion));
      median over pairs. A held-up photo or screen drags its surroundings along; a real head
      moves against a room.
    """
    t = np.asarray(timestamps, dtype=np.float64)
    valid = [i for i, b in enumerate(boxes) if b is not None]
    pairs: list[tuple[int, int]] = []
    for i in valid:
        later = [j for j in valid if j > i and t[j] - t[i] >= gap_s * 0.95]
        if later and t[later[0]] - t[i] <= 2.5 * gap_s:
            pairs.append((i, later[0]))
    if len(pairs) > max_pairs:
        pick = np.linspace(0, len(pairs) - 1, max_pairs).round().astype(int)
        pairs = [pairs[k] for k in pick]

    nonrigid: list[float] = []
    planar: list[float] = []
    motions: list[float] = []
    for i, j in pairs:
        b = _box(boxes[i])  # type: ignore[arg-type]
        fw = b[2] - b[0]
        if fw <= 0:
            continue
        # Only the face's surroundings matter: work on a crop around them (with room for the
        # flow pyramid's window) in that crop's coordinates, converting only it to grey.
        # The crop starts on the pyramid's coarsest grid, so every level samples the same pixels.
        h_img, w_img = grays[i].shape[:2]
        cx1, cy1, cx2, cy2 = _expand(b, 2.0, (h_img, w_img))
        cx1 = max(0, cx1 - _MOTION_MARGIN) // _LK_ALIGN * _LK_ALIGN
        cy1 = max(0, cy1 - _MOTION_MARGIN) // _LK_ALIGN * _LK_ALIGN
        cx2 = min(w_img, -(-(cx2 + _MOTION_MARGIN) // _LK_ALIGN) * _LK_ALIGN)
        cy2 = min(h_img, -(-(cy2 + _MOTION_MARGIN) // _LK_ALIGN) * _LK_ALIGN)
        gi = _gray(grays[i][cy1:cy2, cx1:cx2])
        gj = _gray(grays[j][cy1:cy2, cx1:cx2])
        b = b - np.array([cx1, cy1, cx1, cy1], np.float64)
        x1, y1, x2, y2 = _expand(b, 2.0, gi.shape)
        mask = np.zeros(gi.shape, np.uint8)
        mask[y1:y2, x1:x2] = 255
        pts = cv2.goodFeaturesToTrack(
            gi, maxCorners=400, qualityLevel=0.005, minDistance=3, mask=mask
        )
        if pts is None:
            continue
        src, dst = _track(gi, gj, pts.astype(np.float32), fb_max=0.5)
        fx1, fy1, fx2, fy2 = _expand(b, 0.9, gi.shape)
        inside = (src[:, 0] >= fx1) & (src[:, 0] < fx2) & (src[:, 1] >= fy1) & (src[:, 1] < fy2)
        ox1, oy1, ox2, oy2 = _expand(b, 1.15, gi.shape)
        outside = ~((src[:, 0] >= ox1) & (src[:, 0] < ox2) & (src[:, 1] >= oy1) & (src[:, 1] < oy2))
        fs, fd = src[inside], dst[inside]
        if len(fs) < min_points:
            continue
        h, _ = cv2.findHomography(fs, fd, cv2.RANSAC, 1.0)
        if h is None or not np.all(np.isfinite(h)):
            continue
        res = np.linalg.norm(_apply(h, fs) - fd, axis=1)
        nonrigid.append(float(np.percentile(res, 90)) / fw * 100.0)
        motion = float(np.median(np.linalg.norm(_apply(h, fs) - fs, axis=1)))
        motions.append(motion)
        rs, rd = src[outside], dst[outside]
        if motion >= min_motion_px and len(rs) >= min_points:
            rres = np.linalg.norm(_apply(h, rs) - rd, axis=1)
            planar.append(float(np.mean(rres <= max(1.0, 0.25 * motion))))

    motion_ev: dict[str, Any] = {
        "pairs": len(pairs),
        "pairs_measured": len(nonrigid),
        "face_motion_px_median": round(float(np.median(motions)), 3) if motions else 0.0,
    }
    if nonrigid:
        still = _judge(
            "still_image", float(np.percentile(nonrigid, 75)), still_threshold,
            higher_is_spoof=False,
            nonrigid_pct_per_pair=[round(v, 3) for v in nonrigid], **motion_ev,
        )  # fmt: skip
    else:
        still = _judge(
            "still_image", 0.0, still_threshold, higher_is_spoof=False, decided=False, **motion_ev
        )
    if planar:
        plan = _judge(
            "planar_motion", float(np.median(planar)), planar_threshold,
            ring_inlier_frac_per_pair=[round(v, 3) for v in planar], **motion_ev,
        )  # fmt: skip
    else:
        plan = _judge(
            "planar_motion", 0.0, planar_threshold, decided=False, pairs_moving=0, **motion_ev
        )
    return plan, still


# --- fusion ----------------------------------------------------------------------------------


def fuse(
    live_score: float,
    live_threshold: float,
    cues: Sequence[CueResult],
    *,
    strong_cues: Sequence[str],
    weak_cues_needed: int,
) -> tuple[bool, tuple[str, ...]]:
    """(spoof suspected, what fired). A strong cue fires alone; other cues count only when at
    least ``weak_cues_needed`` of them fire together; the model fires when its live score is
    below ``live_threshold`` (NaN, no score, does not fire)."""
    why: list[str] = []
    if not math.isnan(live_score) and live_score < live_threshold:
        why.append("model")
    strong = [c.name for c in cues if c.fired and c.name in strong_cues]
    weak = [c.name for c in cues if c.fired and c.name not in strong_cues]
    why.extend(strong)
    if weak and len(weak) >= weak_cues_needed:
        why.extend(weak)
    return bool(why), tuple(why)
