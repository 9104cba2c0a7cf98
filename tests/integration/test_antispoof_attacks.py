"""The passive stage on real talking heads (GRID) and on attacks built from the shared photos.

Attacks are rendered here, deterministically, at GRID's size (360x288, 3 s at 10 fps):

* ``print``: a face photo printed with a paper margin, held up in front of a room (another
  real photo) with small hand-held motion (smooth tremor: shifts of a few pixels, about a degree
  of roll and a little perspective tilt), paper's lifted blacks, sensor noise, JPEG.
* ``screen``: the same photo shown on a phone (black bezel) with an RGB-stripe sub-pixel grid,
  display gamma and lifted black, seen by the camera at ~0.8 camera pixels per screen pixel
  (the camera undersamples the grid, which aliases into moire), same motion, noise and JPEG.
* ``replay``: a real GRID talking-head clip played on that screen and re-filmed (the face
  talks, so the motion cues cannot help; the screen's own signs must).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from liveness.config import Config
from liveness.inference.detector import FaceDetector
from liveness.results import Reason
from liveness.stages.spoof import PassiveResult, PassiveStage
from tests.conftest import require_models, shared

W, H = 360, 288
FPS = 10.0
SECONDS = 3.0
ATTACK_PHOTOS = (
    "obama_1.jpg",
    "biden_1.jpg",
    "kit_harington_1.jpg",
    "rose_leslie_1.jpg",
    "alex_lacamoire_1.jpg",
)
REPLAYED_CLIPS = ("bbaf2n", "swwp2s")
GRID_CLIPS = (
    "bbaf2n",
    "brbk7n",
    "lbax4n",
    "lbbc2a",
    "lrwp9a",
    "lwbsza",
    "pwij3p",
    "sbia1a",
    "swwp2s",
)


@dataclass(frozen=True)
class SynthClip:
    frames: np.ndarray  # (T, H, W, 3) BGR uint8
    timestamps: np.ndarray


def _room(rng: np.random.Generator) -> np.ndarray:
    img = cv2.imread(str(shared("faces", "no_face_dogs.jpg")))
    h, w = img.shape[:2]
    s = max(W / w, H / h) * 1.2
    img = cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    y0 = int(rng.integers(0, img.shape[0] - H + 1))
    x0 = int(rng.integers(0, img.shape[1] - W + 1))
    return np.ascontiguousarray(img[y0 : y0 + H, x0 : x0 + W])


def _face_crop(photo: np.ndarray) -> np.ndarray:
    """A portrait (3:4) crop of the photo around its face (found by our detector), the face
    about 45% of the crop's width, as someone would print or show it."""
    faces = FaceDetector.from_config(Config()).detect(photo)
    assert faces, "the attack photo must show a face"
    f = max(faces, key=lambda z: z.area)
    cx, cy = f.center
    tw = f.width / 0.45
    th = tw * 4 / 3
    h, w = photo.shape[:2]
    x0 = int(np.clip(cx - tw / 2, 0, max(0, w - tw)))
    y0 = int(np.clip(cy - th * 0.45, 0, max(0, h - th)))
    return photo[y0 : int(y0 + th), x0 : int(x0 + tw)]


def _tremor(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-frame (dx, dy, roll_deg, tilt_x, tilt_y, scale): smooth hand tremor around rest."""
    t = np.arange(n) / FPS
    out = np.zeros((n, 6))
    amp = (4.0, 3.0, 1.2, 3e-4, 3e-4, 0.015)
    for k, a in enumerate(amp):
        for _ in range(2):
            f = rng.uniform(0.3, 1.5)
            out[:, k] += a / 2 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return out


def _homography(p: np.ndarray, size: tuple[int, int], place: np.ndarray) -> np.ndarray:
    """Map from the source (w, h) to the camera: placement, then the tremor about the centre."""
    w, h = size
    cx, cy = W / 2, H / 2
    dx, dy, roll, px, py, sc = p
    a = np.deg2rad(roll)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    persp = np.array([[1, 0, 0], [0, 1, 0], [px, py, 1]])
    c = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    ci = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    s = np.diag([1 + sc, 1 + sc, 1])
    t = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]])
    return t @ c @ rot @ s @ persp @ ci @ place


def _finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = img.astype(np.float32) + rng.normal(0, 2.0, img.shape)
    out = np.clip(noisy, 0, 255).astype(np.uint8)
    ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return np.asarray(cv2.imdecode(enc, cv2.IMREAD_COLOR))


def _composite(room: np.ndarray, src: np.ndarray, h: np.ndarray, scale: int = 1) -> np.ndarray:
    """Warp ``src`` into the room; with ``scale`` > 1, render at that multiple and area-average
    down (the sensor integrating over its pixels)."""
    big = (W * scale, H * scale)
    hs = np.diag([scale, scale, 1.0]) @ h
    warped = cv2.warpPerspective(src, hs, big, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(
        np.full(src.shape[:2], 255, np.uint8), hs, big, flags=cv2.INTER_LINEAR
    )
    if scale > 1:
        warped = cv2.resize(warped, (W, H), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, (W, H), interpolation=cv2.INTER_AREA)
    a = alpha.astype(np.float32)[..., None] / 255.0
    return (warped.astype(np.float32) * a + room.astype(np.float32) * (1 - a)).astype(np.uint8)


def make_print_attack(photo_name: str, seed: int = 0) -> SynthClip:
    rng = np.random.default_rng(seed)
    room = _room(rng)
    photo = _face_crop(cv2.imread(str(shared("faces", photo_name))))
    ph = int(H * 0.85)
    pw = int(ph * photo.shape[1] / photo.shape[0])
    pic = cv2.resize(photo, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
    pic = 22 + pic * (225 - 22) / 255  # paper: black is grey, white is not 255
    m = int(0.05 * ph)
    paper = np.full((ph + 2 * m, pw + 2 * m, 3), 235, np.float32)
    paper[m : m + ph, m : m + pw] = pic
    paper_u8 = paper.astype(np.uint8)
    place = np.array(
        [[1, 0, (W - paper.shape[1]) / 2], [0, 1, (H - paper.shape[0]) / 2], [0, 0, 1]]
    )
    n = int(SECONDS * FPS)
    motion = _tremor(rng, n)
    frames = [
        _finish(_composite(room, paper_u8, _homography(motion[k], paper.shape[1::-1], place)), rng)
        for k in range(n)
    ]
    return SynthClip(np.stack(frames), np.arange(n) / FPS)


def _screen_image(photo: np.ndarray, screen_px: tuple[int, int]) -> np.ndarray:
    """The photo on an RGB-stripe panel, 3x3 device sub-samples per screen pixel, with bezel."""
    sw, sh = screen_px
    pic = cv2.resize(photo, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    pic = 0.09 + 0.91 * pic ** (1 / 1.25)  # display gamma and a lifted, glowing black
    pic[..., 0] *= 1.05  # panels run a little blue
    big = np.repeat(np.repeat(pic, 3, axis=0), 3, axis=1)
    stripe = np.full((3, 3, 3), 0.3, np.float32)  # lens blur leaks light between sub-pixels
    for c, ch in enumerate((2, 1, 0)):  # R, G, B columns left to right (BGR channel index)
        stripe[:, c, ch] = 1.0
    stripe[2, :, :] *= 0.6  # the darker gap between pixel rows
    stripe /= stripe.mean(axis=(0, 1), keepdims=True)  # an emissive panel keeps its brightness
    big = np.clip(big * np.tile(stripe, (sh, sw, 1)), 0, 1)
    bez = 18
    out = np.full((big.shape[0] + 2 * bez, big.shape[1] + 2 * bez, 3), 12, np.float32)
    out[bez:-bez, bez:-bez] = big * 255
    return out.astype(np.uint8)


def make_screen_attack(photo_name: str, seed: int = 0) -> SynthClip:
    rng = np.random.default_rng(seed + 1000)
    room = _room(rng)
    photo = _face_crop(cv2.imread(str(shared("faces", photo_name))))
    sh = 300  # screen pixels over the visible picture height
    sw = int(sh * photo.shape[1] / photo.shape[0])
    screen = _screen_image(photo, (sw, sh))
    # 1 screen pixel = 3 device samples; on the camera it spans ~0.8 px, so the camera
    # undersamples the sub-pixel grid and it aliases into moire
    k = 0.8 / 3
    place = np.array(
        [[k, 0, (W - screen.shape[1] * k) / 2], [0, k, (H - screen.shape[0] * k) / 2], [0, 0, 1]]
    )
    n = int(SECONDS * FPS)
    motion = _tremor(rng, n)
    frames = [
        _finish(
            _composite(room, screen, _homography(motion[i], screen.shape[1::-1], place), 2), rng
        )
        for i in range(n)
    ]
    return SynthClip(np.stack(frames), np.arange(n) / FPS)


def make_video_replay(grid_name: str, seed: int = 0) -> SynthClip:
    """A real talking-head clip (GRID) played on the simulated phone screen and re-filmed: the
    face talks, so only the screen's own signs can give it away."""
    rng = np.random.default_rng(seed + 2000)
    room = _room(rng)
    src = grid_clip(grid_name)
    sh = 320
    sw = int(sh * src.frames.shape[2] / src.frames.shape[1])
    k = 0.8 / 3
    n = len(src.frames)
    motion = _tremor(rng, n)
    frames = []
    for i in range(n):
        screen = _screen_image(src.frames[i], (sw, sh))
        place = np.array(
            [
                [k, 0, (W - screen.shape[1] * k) / 2],
                [0, k, (H - screen.shape[0] * k) / 2],
                [0, 0, 1],
            ]
        )
        h = _homography(motion[i], screen.shape[1::-1], place)
        frames.append(_finish(_composite(room, screen, h, 2), rng))
    return SynthClip(np.stack(frames), src.timestamps)


def grid_clip(name: str) -> SynthClip:
    from liveness.media import open_clip

    clip = open_clip(shared("grid", f"{name}.mpg"))
    return SynthClip(clip.frames, clip.timestamps)


def iter_cases() -> Iterator[tuple[str, str, bool]]:
    for p in ATTACK_PHOTOS:
        yield "print", p, False
        yield "screen", p, False
    for g in REPLAYED_CLIPS:
        yield "replay", g, False
    for g in GRID_CLIPS:
        yield "grid", g, True


def load_case(kind: str, name: str) -> SynthClip:
    if kind == "print":
        return make_print_attack(name)
    if kind == "screen":
        return make_screen_attack(name)
    if kind == "replay":
        return make_video_replay(name)
    return grid_clip(name)


@pytest.fixture(scope="module")
def models_ready() -> None:
    require_models("mtcnn", "minifasnet")


@dataclass(frozen=True)
class Judged:
    kind: str
    name: str
    live: bool
    result: PassiveResult


def _judge_case(kind: str, name: str, live: bool, det: FaceDetector, stage: PassiveStage) -> Judged:
    clip = load_case(kind, name)
    found = det.detect_many(list(clip.frames))
    faces = [max(f, key=lambda z: z.area) if f else None for f in found]
    return Judged(kind, name, live, stage.run(clip.frames, clip.timestamps, faces))


@pytest.fixture(scope="module")
def judged(models_ready: None) -> dict[tuple[str, str], Judged]:
    cfg = Config()
    det = FaceDetector.from_config(cfg)
    stage = PassiveStage.from_config(cfg)
    return {(k, n): _judge_case(k, n, live, det, stage) for k, n, live in iter_cases()}


def _fired(j: Judged) -> str:
    r = j.result
    cues = ", ".join(f"{c.name}={c.score:.3g}{'*' if c.fired else ''}" for c in r.cues)
    return f"{j.kind}/{j.name}: live_score={r.live_score:.3f} fired={r.fired} [{cues}]"


@pytest.mark.parametrize("name", GRID_CLIPS)
def test_grid_talking_heads_judged_live(judged: dict[tuple[str, str], Judged], name: str) -> None:
    j = judged[("grid", name)]
    assert j.result.reasons == (), _fired(j)
    assert j.result.live_score >= 0.5, _fired(j)
    assert len(j.result.frame_scores) == 8


@pytest.mark.parametrize("photo", ATTACK_PHOTOS)
def test_held_up_print_judged_spoof(judged: dict[tuple[str, str], Judged], photo: str) -> None:
    j = judged[("print", photo)]
    assert j.result.reasons == (Reason.SPOOF_SUSPECTED,), _fired(j)
    # a photo never talks: caught by the motion cue whatever the model says
    assert "still_image" in j.result.fired, _fired(j)


@pytest.mark.parametrize("photo", ATTACK_PHOTOS)
def test_screen_replay_judged_spoof(judged: dict[tuple[str, str], Judged], photo: str) -> None:
    j = judged[("screen", photo)]
    assert j.result.reasons == (Reason.SPOOF_SUSPECTED,), _fired(j)
    assert "moire" in j.result.fired, _fired(j)


@pytest.mark.parametrize("name", REPLAYED_CLIPS)
def test_video_replay_judged_spoof(judged: dict[tuple[str, str], Judged], name: str) -> None:
    j = judged[("replay", name)]
    assert j.result.reasons == (Reason.SPOOF_SUSPECTED,), _fired(j)
    assert "moire" in j.result.fired, _fired(j)


def test_error_rates(judged: dict[tuple[str, str], Judged]) -> None:
    """APCER per attack type and BPCER on GRID (ISO/IEC 30107-3 terms), printed with -s."""
    lines = []
    for kind in ("print", "screen", "replay", "grid"):
        js = [j for (k, _), j in judged.items() if k == kind]
        wrong = [j for j in js if (not j.result.reasons) != j.live]
        label = "BPCER" if kind == "grid" else f"APCER[{kind}]"
        lines.append(f"{label} = {len(wrong)}/{len(js)}")
        # the model alone, for comparison: how many it gets right at live_threshold 0.5
        model_ok = sum((j.result.live_score >= 0.5) == j.live for j in js)
        lines.append(f"  model alone correct on {model_ok}/{len(js)}")
        lines.extend("  " + _fired(j) for j in js)
    print("\n".join(lines))
    assert all(j.result.passed == j.live for j in judged.values()), "\n".join(lines)


def test_no_usable_face_gives_low_quality(models_ready: None) -> None:
    stage = PassiveStage.from_config(Config())
    clip = grid_clip("bbaf2n")
    r = stage.run(clip.frames, clip.timestamps, [None] * len(clip.frames))
    assert r.reasons == (Reason.LOW_QUALITY,)
    assert np.isnan(r.live_score) and r.frame_scores == ()


def test_bad_input_is_a_typed_error(models_ready: None) -> None:
    from liveness.errors import MediaError

    stage = PassiveStage.from_config(Config())
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises(MediaError):
        stage.run(frames, np.arange(3) / 10, [None] * 4)
    with pytest.raises(MediaError):
        stage.run(frames[..., 0], np.arange(4) / 10, [None] * 4)


@pytest.mark.parametrize(("kind", "name"), [("grid", "bbaf2n"), ("print", ATTACK_PHOTOS[0])])
def test_motion_cues_in_an_executor_give_the_same_result(
    models_ready: None, kind: str, name: str
) -> None:
    """The engine runs the motion cues in its pool: the result must be the serial one."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = Config()
    det = FaceDetector.from_config(cfg)
    stage = PassiveStage.from_config(cfg)
    clip = load_case(kind, name)
    found = det.detect_many(list(clip.frames))
    faces = [max(f, key=lambda z: z.area) if f else None for f in found]
    serial = stage.run(clip.frames, clip.timestamps, faces)
    with ThreadPoolExecutor(1) as pool:
        pooled = stage.run(clip.frames, clip.timestamps, faces, executor=pool)
    assert pooled.details() == serial.details()
    assert pooled.reasons == serial.reasons and pooled.scores == serial.scores
