"""Pure cue functions of liveness.checks.spoof on synthetic arrays with known answers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

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

H, W = 288, 360
BOX = np.array([130.0, 90.0, 230.0, 210.0], np.float32)  # a 100x120 "face"


def _texture(seed: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """Natural-ish texture: blurred noise at several scales (a smooth 1/f-like spectrum)."""
    rng = np.random.default_rng(seed)
    img = np.zeros(shape, np.float32)
    for sigma, amp in ((8, 60), (3, 35), (1, 20)):
        img += amp * cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), sigma)
    return np.clip(128 + img * 1.5, 0, 255).astype(np.uint8)


# --- helpers -----------------------------------------------------------------------------------


def test_trimmed_mean() -> None:
    assert trimmed_mean([1, 2, 3, 4, 100]) == 3.0  # drops 1 and 100
    assert trimmed_mean([0.2, 0.4]) == pytest.approx(0.3)
    assert trimmed_mean([5.0]) == 5.0
    assert trimmed_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.2) == 5.5
    assert math.isnan(trimmed_mean([]))


def test_spaced_indices() -> None:
    assert spaced_indices(list(range(30)), 4) == [0, 10, 19, 29]
    assert spaced_indices([3, 5], 8) == [3, 5]
    assert spaced_indices([], 3) == []
    assert spaced_indices([1, 2, 3], 0) == []


# --- moire ---------------------------------------------------------------------------------------


def test_moire_fires_on_a_fine_grating_only() -> None:
    base = _texture(0)
    yy, xx = np.mgrid[0:H, 0:W]
    grating = 12 * np.sin(2 * np.pi * (0.31 * xx + 0.07 * yy))  # a resampled pixel grid
    screen = np.clip(base + grating, 0, 255).astype(np.uint8)
    clean = moire_cue([base] * 3, [BOX] * 3, threshold=6.0)
    moire = moire_cue([screen] * 3, [BOX] * 3, threshold=6.0)
    assert not clean.fired and clean.score < 6.0
    assert moire.fired and moire.score > 15.0
    fx, fy = moire.evidence["peak_cycles_per_px"]
    assert abs(abs(fx) - 0.31) <= 1 / 64 and abs(abs(fy) - 0.07) <= 1 / 64  # one FFT bin


def test_moire_ignores_codec_block_lattice() -> None:
    base = _texture(1).astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W]
    blocks = 10 * (((xx % 8) == 0) | ((yy % 8) == 0))  # 8x8 block edges, like MPEG/JPEG
    img = np.clip(base + blocks, 0, 255).astype(np.uint8)
    assert not moire_cue([img], [BOX], threshold=6.0).fired


def test_moire_undecided_on_tiny_region() -> None:
    img = _texture(2)
    r = moire_cue([img], [np.array([10, 10, 20, 20], np.float32)], threshold=6.0)
    assert not r.decided and not r.fired


# --- display gamut ----------------------------------------------------------------------------


def test_display_gamut_higher_for_lifted_blacks_and_dull_colours() -> None:
    rng = np.random.default_rng(3)
    scene = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    shown = (40 + scene.astype(np.float32) * 0.6).astype(np.uint8)  # grey black, less gamut
    a = display_gamut_cue([scene], [BOX], threshold=0.5)
    b = display_gamut_cue([shown], [BOX], threshold=0.5)
    assert a.score < 0.25 and not a.fired  # random colours: saturated, p1 luma ~27
    assert b.score > 0.5 and b.fired
    assert b.evidence["black_level"] >= 40


# --- border ---


def test_border_counts_framing_edges() -> None:
    img = np.full((H, W), 90, np.uint8)
    img[BOX[1].astype(int) : BOX[3].astype(int), BOX[0].astype(int) : BOX[2].astype(int)] = 160
    framed = img.copy()
    cv2.rectangle(framed, (60, 20), (300, 270), 250, 3)
    assert border_cue([img], [BOX], threshold=0.75).score == 0.0
    r = border_cue([framed], [BOX], threshold=0.75)
    assert r.score == 1.0 and r.fired
    # three sides only (the bottom edge out of the picture): still 0.75
    three = img.copy()
    cv2.line(three, (60, 20), (300, 20), 250, 3)
    cv2.line(three, (60, 20), (60, 287), 250, 3)
    cv2.line(three, (300, 20), (300, 287), 250, 3)
    assert border_cue([three], [BOX], threshold=0.75).score == 0.75


# --- motion ---


def _warp(img: np.ndarray, dx: float, dy: float, angle: float) -> np.ndarray:
    m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _clip(kind: str, n: int = 20) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """10 fps frames of a textured scene with a textured 'face' patch.

    planar: the whole picture moves rigidly (a held-up photo);
    live:   the background stays still, the face moves and its lower half deforms (talking).
    """
    bg = _texture(10)
    face = _texture(11, (120, 100))
    frames, boxes = [], []
    x0, y0 = int(BOX[0]), int(BOX[1])
    for k in range(n):
        t = k / 10
        dx, dy, ang = 3 * math.sin(2.1 * t), 2 * math.cos(1.3 * t), 0.8 * math.sin(1.7 * t)
        if kind == "planar":
            scene = bg.copy()
            scene[y0 : y0 + 120, x0 : x0 + 100] = face
            frames.append(_warp(scene, dx, dy, ang))
            boxes.append(BOX + np.array([dx, dy, dx, dy], np.float32))
        else:
            f = face.copy()
            jaw = 6 * math.sin(2 * math.pi * 1.1 * t)  # the mouth opening and closing
            mapx, mapy = np.meshgrid(
                np.arange(100, dtype=np.float32), np.arange(120, dtype=np.float32)
            )
            mapy = mapy - jaw * np.clip((mapy - 60) / 60, 0, 1)
            f = cv2.remap(face, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            scene = bg.copy()
            ix, iy = int(round(dx)), int(round(dy))
            scene[y0 + iy : y0 + iy + 120, x0 + ix : x0 + ix + 100] = f
            frames.append(scene)
            boxes.append(BOX + np.array([ix, iy, ix, iy], np.float32))
    return frames, np.arange(n) / 10.0, boxes


def test_motion_cues_flag_a_rigid_photo() -> None:
    frames, ts, boxes = _clip("planar")
    planar, still = motion_cues(frames, ts, boxes, planar_threshold=0.8, still_threshold=0.4)
    assert planar.decided and planar.fired and planar.score >= 0.9
    assert still.decided and still.fired and still.score < 0.4


def test_motion_cues_pass_a_talking_face_on_a_still_background() -> None:
    frames, ts, boxes = _clip("live")
    planar, still = motion_cues(frames, ts, boxes, planar_threshold=0.8, still_threshold=0.4)
    assert not still.fired and still.score > 1.0
    assert not planar.fired


def test_motion_cues_undecided_without_faces() -> None:
    frames, ts, _ = _clip("planar", 6)
    planar, still = motion_cues(frames, ts, [None] * 6, planar_threshold=0.8, still_threshold=0.4)
    assert not planar.decided and not still.decided
    assert not planar.fired and not still.fired


# --- fusion ---


def _cue(name: str, fired: bool) -> CueResult:
    return CueResult(name=name, score=1.0 if fired else 0.0, threshold=0.5, fired=fired)


STRONG = ("moire", "still_image", "planar_motion")


@pytest.mark.parametrize(
    ("live", "fired", "want"),
    [
        (0.9, [], ()),
        (0.2, [], ("model",)),
        (0.9, ["moire"], ("moire",)),
        (0.9, ["border"], ()),  # one weak cue alone is not enough
        (0.9, ["border", "display_gamut"], ("display_gamut", "border")),  # in cue order
        (0.1, ["still_image", "border"], ("model", "still_image")),
        (float("nan"), [], ()),
    ],
)
def test_fuse(live: float, fired: list[str], want: tuple[str, ...]) -> None:
    names = ["moire", "display_gamut", "border", "planar_motion", "still_image"]
    cues = [_cue(n, n in fired) for n in names]
    spoof, why = fuse(live, 0.5, cues, strong_cues=STRONG, weak_cues_needed=2)
    assert why == want and spoof == bool(want)
