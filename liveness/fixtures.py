"""Recorded-clip fixtures: genuine clips and one clip per attack family, each with a sidecar.

Deterministic from a seed (and the challenge digits, which the caller gets from a real
``ChallengeAuthority``): the same inputs give the same frames and audio. Built from
``../shared/data`` (GRID talking heads, face photos) and, for synthetic speech, ``espeak-ng``
(needed only when a case reads digits aloud; a clear ``FixtureToolMissing`` otherwise).

Families (``FAMILIES``), with the reason each is designed to be caught by:

=====================  =========================================================  ==================
family                 clip                                                       expected
=====================  =========================================================  ==================
genuine_grid           a GRID clip; challenge = its spoken digit                  PASS
genuine_synthetic      a face photo, mouth warped open/shut with espeak-ng        PASS
                       reading the challenge, head motion, sensor noise, MP4
wrong_digits           the synthetic clip reading other digits                    CHALLENGE_MISMATCH
audio_shift            the genuine synthetic clip with its audio 1 s late         LIP_SYNC_MISMATCH
still_photo            the right audio over a still photo moved by hand           SPOOF_SUSPECTED or
                                                                                  LIP_SYNC_MISMATCH
other_person           another person's genuine GRID clip                         FACE_MISMATCH
dubbed                 a GRID face with another GRID clip's audio                 LIP_SYNC_MISMATCH
second_face            a second face enters the genuine synthetic clip            MULTIPLE_FACES
face_leaves            the face leaves the frame for ~40% of the clip             FACE_LOST (RETRY)
screen_replay          the genuine synthetic clip re-displayed on a screen        SPOOF_SUSPECTED
challenge_reused       the genuine synthetic clip certified twice with one token  CHALLENGE_REUSED
challenge_expired      the genuine synthetic clip, token past its expiry          CHALLENGE_EXPIRED
=====================  =========================================================  ==================
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import wave
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ATTACK_FAMILIES",
    "FAMILIES",
    "SYNTHETIC_FAMILIES",
    "FixtureCase",
    "FixtureToolMissing",
    "encode_mp4",
    "espeak_digits",
    "find_shared_data",
    "generate",
    "grid_clips",
    "grid_digit",
    "issue_for_digits",
    "load_cases",
    "talking_head",
]

RATE = 16_000
U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]

BONA_FIDE_FAMILIES = ("genuine_grid", "genuine_synthetic")
ATTACK_FAMILIES = (
    "wrong_digits",
    "audio_shift",
    "still_photo",
    "other_person",
    "dubbed",
    "second_face",
    "face_leaves",
    "screen_replay",
    "challenge_reused",
    "challenge_expired",
)
FAMILIES = BONA_FIDE_FAMILIES + ATTACK_FAMILIES
# families made from a shared face photo animated to read the challenge (the rest come from GRID)
SYNTHETIC_FAMILIES = (
    "genuine_synthetic",
    "wrong_digits",
    "audio_shift",
    "still_photo",
    "second_face",
    "face_leaves",
    "screen_replay",
    "challenge_reused",
    "challenge_expired",
)

_GRID_WORD_DIGIT = {"z": "0"}
_SYNTH_PHOTO = "obama_1.jpg"  # the face animated in the synthetic clips
_SYNTH_REFERENCE = "obama_2.jpg"  # the enrolled photo they are matched against
_INTRUDER_PHOTO = "biden_1.jpg"  # the second face that enters


class FixtureToolMissing(RuntimeError):
    """A tool the fixture generator needs (espeak-ng) is not installed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FixtureCase:
    """One fixture clip and what certifying it must give (the sidecar's content)."""

    name: str
    family: str
    attack: bool
    clip: str  # path of the clip (absolute, or relative to the sidecar's folder)
    reference: str  # path of the enrolled reference photo
    digits: str  # the challenge the clip must be certified against
    subject_id: str
    expected_verdict: str
    expected_reasons: tuple[str, ...]  # the decision must carry at least one of these
    challenge: str = "fresh"  # "fresh", "reused" (certify twice), "expired"
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["expected_reasons"] = list(self.expected_reasons)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: Path | None = None) -> FixtureCase:
        d = dict(d)
        d["expected_reasons"] = tuple(d.get("expected_reasons", ()))
        case = cls(**d)
        if base is not None:
            case = _rebase(case, base)
        return case

    def write_sidecar(self, folder: Path) -> Path:
        path = folder / f"{self.name}.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _with_paths(case: FixtureCase, fix: Callable[[str], str]) -> FixtureCase:
    """The case with its clip and reference paths passed through ``fix``."""
    d = case.to_dict()
    d["clip"], d["reference"] = fix(case.clip), fix(case.reference)
    d["expected_reasons"] = tuple(d["expected_reasons"])
    return FixtureCase(**d)


def _rebase(case: FixtureCase, base: Path) -> FixtureCase:
    def fix(p: str) -> str:
        q = Path(p)
        return str(q if q.is_absolute() else (base / q).resolve())

    return _with_paths(case, fix)


SHARED_PREFIX = "@shared/"  # a sidecar path inside ../shared/data (never copied into git)


def load_cases(folder: str | Path, shared: str | Path | None = None) -> list[FixtureCase]:
    """Every sidecar (``*.json``) in ``folder``, with paths resolved against it (and paths
    starting with ``@shared/`` against the shared data folder, found if not given)."""
    base = Path(folder)
    out = []
    for p in sorted(base.glob("*.json")):
        raw = json.loads(p.read_text(encoding="utf-8"))
        for key in ("clip", "reference"):
            if str(raw[key]).startswith(SHARED_PREFIX):
                root = Path(shared) if shared is not None else find_shared_data(start=base)
                raw[key] = str(root / raw[key][len(SHARED_PREFIX) :])
        out.append(FixtureCase.from_dict(raw, base))
    return out


def _portable(case: FixtureCase, out: Path, shared: Path) -> FixtureCase:
    """The case with paths relative to ``out`` or marked ``@shared/`` (for committed sidecars)."""

    def rel(p: str) -> str:
        q = Path(p).resolve()
        if q.is_relative_to(shared.resolve()):
            return SHARED_PREFIX + q.relative_to(shared.resolve()).as_posix()
        return q.relative_to(out.resolve()).as_posix()

    return _with_paths(case, rel)


# -- shared data -----------------------------------------------------------------------------


def find_shared_data(explicit: str | Path | None = None, start: Path | None = None) -> Path:
    """The shared data folder: ``explicit``, else ``shared/data`` or ``../shared/data`` from
    ``start`` (default: the current directory) or any parent. Raises FileNotFoundError."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if (p / "grid").is_dir() or (p / "faces").is_dir():
            return p.resolve()
        raise FileNotFoundError(
            f"{p} is not the shared data folder (it has no grid/ or faces/ sub-folder)"
        )
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        for cand in (d / "shared" / "data", d / ".." / "shared" / "data", d / "data"):
            if (cand / "grid").is_dir():
                return cand.resolve()
    raise FileNotFoundError(
        "shared data not found: looked for shared/data and ../shared/data (with a grid/ folder) "
        f"from {here} upwards; pass --data PATH"
    )


def grid_digit(path: str | Path) -> str:
    """The digit spoken in a GRID clip, from its file name (5th letter; 'z' is zero)."""
    ch = Path(path).stem[4]
    return _GRID_WORD_DIGIT.get(ch, ch)


# GRID clips in ../shared/data spoken by the same person: measured with the project's face
# embedder (dlib ResNet, 3 frames averaged), pwij3p-swwp2s are 0.19 apart; every other pair of
# the nine clips is 0.60 or more apart (the match threshold is 0.6).
_GRID_SAME_SPEAKER = (frozenset({"pwij3p", "swwp2s"}),)


def _different_speakers(a: Path, b: Path) -> bool:
    return a != b and frozenset({a.stem, b.stem}) not in _GRID_SAME_SPEAKER


def grid_clips(shared: Path) -> list[Path]:
    return sorted((shared / "grid").glob("*.mpg"))


# -- speech ------------------------------------------------------------------------------------


def espeak_digits(digits: str, *, voice: str = "en", wpm: int = 140, gap: int = 10) -> F32:
    """``digits`` read aloud by espeak-ng, as float32 mono at 16 kHz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FixtureToolMissing(
            "espeak-ng is not installed; it is needed to synthesise spoken digits "
            "(Debian/Ubuntu: apt-get install espeak-ng), or use the GRID clips instead"
        )
    text = " ".join(digits)
    out = subprocess.run(
        [exe, "-v", voice, "-s", str(wpm), "-g", str(gap), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate, n = w.getframerate(), w.getnframes()
        pcm = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
    import soxr

    return np.asarray(soxr.resample(pcm, rate, RATE), dtype=np.float32)


def _frame_energy(audio: F32, times: NDArray[np.float64], win_s: float = 0.04) -> F32:
    half = int(win_s * RATE / 2)
    out = np.zeros(times.size, np.float32)
    for i, t in enumerate(times):
        c = int(round(t * RATE))
        seg = audio[max(0, c - half) : max(0, c + half)]
        out[i] = float(np.sqrt(np.mean(seg * seg))) if seg.size else 0.0
    return out


def openness_from_audio(audio: F32, times: NDArray[np.float64]) -> F32:
    """How open the mouth is at each time (0..1), from the loudness of the speech around it."""
    e = _frame_energy(audio, times)
    peak = float(e.max()) if e.size else 0.0
    if peak <= 0:
        return np.zeros_like(e)
    db = 20 * np.log10(np.maximum(e / peak, 1e-4))
    a = np.clip((db + 30.0) / 24.0, 0.0, 1.0)  # -30 dB closed .. -6 dB fully open
    k = np.array([0.25, 0.5, 0.25], np.float32)
    return np.asarray(np.convolve(a, k, mode="same"), np.float32)


# -- video -------------------------------------------------------------------------------------


def encode_mp4(
    path: str | Path, frames: Sequence[U8] | U8, fps: float, audio: F32, rate: int = RATE
) -> Path:
    """H.264 (yuv420p) + AAC in MP4, like a phone recording. Deterministic for the same input."""
    import av

    path = Path(path)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=int(round(fps)))
        vs.width, vs.height, vs.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        vs.options = {"crf": "23", "preset": "veryfast", "threads": "1"}
        aud = out.add_stream("aac", rate=rate)
        aud.layout = "mono"
        for f in frames:
            vf = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(f[: vs.height, : vs.width]), "bgr24"
            )
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        x = np.clip(np.asarray(audio, np.float32), -1, 1)
        step = 1024
        for i in range(0, x.size, step):
            chunk = x[i : i + step].reshape(1, -1)
            af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            af.sample_rate = rate
            af.pts = i
            for p in aud.encode(af):
                out.mux(p)
        for p in aud.encode():
            out.mux(p)
    return path


def _detect_one(image: U8) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Box and landmarks of the largest face, with the project's own detector."""
    from liveness.config import Config
    from liveness.inference.detector import FaceDetector

    faces = FaceDetector.from_config(Config()).detect(image)
    if not faces:
        raise ValueError("no face found in the fixture photo")
    f = max(faces, key=lambda q: q.area)
    return np.asarray(f.box, np.float32), np.asarray(f.landmarks, np.float32)


@dataclass(frozen=True, slots=True)
class _Head:
    layer: U8  # the head and shoulders, cropped from the photo and scaled into canvas pixels
    mask: F32  # feathered ellipse over the face and hair (the part that moves), 0..1
    body: F32  # feathered mask of the neck and shoulders (they stay put while the head moves)
    landmarks: F32  # in layer coordinates


def _head(photo: U8, box: F32, lms: F32, face_h: float) -> _Head:
    bw = float(box[2] - box[0])
    scale = face_h / max(1.0, float(box[3] - box[1]))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = 1.0 * bw, 1.35 * bw
    x0, y0 = int(cx - half_w), int(cy - half_h * 0.95)
    x1, y1 = int(cx + half_w), int(cy + half_h * 1.05)
    pad = max(0, -x0, -y0, x1 - photo.shape[1], y1 - photo.shape[0])
    src = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else photo
    crop = src[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    layer = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = layer.shape[:2]
    fb = (np.asarray(box, np.float32) - [x0, y0, x0, y0]) * scale
    fw, fh = float(fb[2] - fb[0]), float(fb[3] - fb[1])
    fcx, fcy = float(fb[0] + fb[2]) / 2, float(fb[1] + fb[3]) / 2
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (int(fcx), int(fcy - 0.08 * fh)), (int(0.66 * fw), int(0.78 * fh)), 0, 0,
                360, 1.0, -1)  # fmt: skip
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, fw * 0.04))
    body = np.zeros((h, w), np.float32)
    cv2.ellipse(body, (w // 2, h), (int(w * 0.5), int(h - fcy - 0.2 * fh)), 0, 180, 360, 1.0, -1)
    body = cv2.GaussianBlur(body, (0, 0), max(1.0, fw * 0.04))
    return _Head(
        cast(U8, layer), cast(F32, mask), cast(F32, body), cast(F32, (lms - [x0, y0]) * scale)
    )


def _background(h: int, w: int, rng: np.random.Generator, photo: U8 | None = None) -> U8:
    """A still room: the photo itself, scaled to cover the frame and out of focus (a camera
    focused on the face), with seeded shapes and texture so the tracker has structure."""
    if photo is not None:
        ph, pw = photo.shape[:2]
        s = max(h / ph, w / pw)
        room = cv2.resize(photo, (int(pw * s) + 1, int(ph * s) + 1), interpolation=cv2.INTER_AREA)
        y0, x0 = (room.shape[0] - h) // 2, (room.shape[1] - w) // 2
        room = cv2.GaussianBlur(room[y0 : y0 + h, x0 : x0 + w].astype(np.float32), (0, 0), 9)
    base = np.array(rng.uniform(90, 200, 3), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grad = (0.8 + 0.35 * (xx / w) - 0.15 * (yy / h))[..., None]
    tex = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 6)[..., None]
    img = base * grad + 40.0 * tex
    # a few soft shapes, so the background has structure a tracker can hold on to
    for _ in range(6):
        c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        col = tuple(float(v) for v in rng.uniform(40, 230, 3))
        cv2.rectangle(
            img, c, (c[0] + int(rng.uniform(30, 120)), c[1] + int(rng.uniform(30, 160))), col, -1
        )
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    if photo is not None:
        img = 0.7 * room + 0.3 * img
    return np.clip(img, 0, 255).astype(np.uint8)


def _open_mouth(layer: U8, lms: F32, a: float) -> U8:
    """The head layer with the jaw dropped by ``a`` (0..1) and a dark mouth cavity between lips."""
    if a <= 0.02:
        return layer
    ml, mr = lms[3], lms[4]
    cx, cy = float((ml[0] + mr[0]) / 2), float((ml[1] + mr[1]) / 2)
    mw = float(np.hypot(*(mr - ml)))
    d = a * 0.3 * mw
    h, w = layer.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wx = np.clip(1.0 - np.abs(xx - cx) / (1.1 * mw), 0.0, 1.0) ** 0.7
    below = yy - cy
    wy = np.where(below < 0, 0.0, np.clip(1.0 - (below - 1.2 * mw) / (0.8 * mw), 0.0, 1.0))
    shift = d * wx * wy
    out = cv2.remap(layer, xx, yy - shift.astype(np.float32), cv2.INTER_LINEAR)
    cav = np.zeros((h, w), np.float32)
    axes = (max(1, int(0.36 * mw)), max(1, int(d / 2)))
    cv2.ellipse(cav, (int(cx), int(cy + d / 2)), axes, 0, 0, 360, 1.0, -1)
    cav = cast(F32, cv2.GaussianBlur(cav, (0, 0), 1.2))[..., None]
    dark = np.array([28, 22, 55], np.float32)
    return (out.astype(np.float32) * (1 - cav) + dark * cav).astype(np.uint8)


def _paste(canvas: U8, layer: U8, mask: F32, m: NDArray[np.float64]) -> None:
    h, w = canvas.shape[:2]
    lw = cv2.warpAffine(layer, m, (w, h), flags=cv2.INTER_LINEAR)
    mw = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)
    canvas[:] = cv2.blendLinear(lw, canvas, mw, 1.0 - mw)


class _Noise:
    """Seeded Gaussian sensor noise, drawn once as a bank of frames and rolled per frame."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...], std: float) -> None:
        self.rng, self.std = rng, std
        self.bank = [
            (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.int16) for _ in range(6)
        ]

    def add(self, img: U8) -> U8:
        if self.std <= 0:
            return img
        k = int(self.rng.integers(len(self.bank)))
        dy, dx = (int(v) for v in self.rng.integers(0, 64, 2))
        n = np.roll(self.bank[k], (dy, dx), axis=(0, 1))
        return np.clip(img.astype(np.int16) + n, 0, 255).astype(np.uint8)


def _wobble(rng: np.random.Generator, n: int, fps: float, amp: float) -> NDArray[np.float64]:
    t = np.arange(n) / fps
    out = np.zeros(n)
    for _ in range(3):
        f, ph = rng.uniform(0.15, 0.8), rng.uniform(0, 2 * math.pi)
        out += np.sin(2 * math.pi * f * t + ph)
    return amp * out / 3


@dataclass(frozen=True, slots=True, kw_only=True)
class _Scene:
    size: tuple[int, int] = (640, 480)  # (width, height)
    fps: float = 25.0
    mouth: bool = True  # animate the mouth with the speech
    head_motion: bool = True  # the head moves against a still background
    planar: bool = False  # the whole picture moves as one plane (a photo held up)
    noise: float = 3.0  # sensor noise, std in grey levels
    leave: tuple[float, float] | None = None  # the head is off-frame between these fractions
    intruder: U8 | None = None  # a second face photo that enters from the right at 45%


def talking_head(
    photo: U8,
    audio: F32,
    duration_s: float,
    *,
    seed: int = 0,
    mouth_audio: F32 | None = None,
    scene: _Scene | None = None,
    detect: Callable[[U8], tuple[NDArray[np.float32], NDArray[np.float32]]] = _detect_one,
) -> list[U8]:
    """Frames of ``photo`` as a talking head whose mouth follows ``mouth_audio`` (or ``audio``)."""
    sc = scene or _Scene()
    rng = np.random.default_rng(seed)
    w, h = sc.size
    n = int(round(duration_s * sc.fps))
    times = np.arange(n) / sc.fps
    box, lms = detect(photo)
    head = _head(photo, box, lms, face_h=0.42 * h)
    lh, lw = head.layer.shape[:2]
    bg = _background(h, w, rng, photo)
    base_x, base_y = (w - lw) / 2, (h - lh) / 2 + 0.04 * h
    # neck and shoulders are part of the still scene: a real head moves against its body and room
    _paste(bg, head.layer, head.body, np.array([[1, 0, base_x], [0, 1, base_y]], np.float64))
    openness = (
        openness_from_audio(mouth_audio if mouth_audio is not None else audio, times)
        if sc.mouth
        else np.zeros(n, np.float32)
    )
    amp = 1.0 if sc.head_motion or sc.planar else 0.0
    dx, dy = _wobble(rng, n, sc.fps, 7 * amp), _wobble(rng, n, sc.fps, 5 * amp)
    rot, zoom = _wobble(rng, n, sc.fps, 1.8 * amp), _wobble(rng, n, sc.fps, 0.012 * amp)
    intruder = None
    if sc.intruder is not None:
        ib, il = detect(sc.intruder)
        intruder = _head(sc.intruder, ib, il, face_h=0.3 * h)
    noise = _Noise(rng, (h, w, 3), sc.noise)
    frames: list[U8] = []
    for i in range(n):
        frac = i / max(1, n - 1)
        canvas = bg.copy()
        layer = _open_mouth(head.layer, head.landmarks, float(openness[i]))
        off_x = 0.0
        if sc.leave is not None:
            a, b = sc.leave
            ramp = 0.06
            k = (
                np.clip(min((frac - a) / ramp, (b - frac) / ramp), 0.0, 1.0)
                if a - ramp < frac < b + ramp
                else 0.0
            )
            off_x = float(k) * (w * 0.5 + lw)
        cxl, cyl = lw / 2, lh / 2
        if sc.planar:
            m_head = cv2.getRotationMatrix2D((cxl, cyl), 0.0, 1.0)
        else:
            m_head = cv2.getRotationMatrix2D((cxl, cyl), float(rot[i]), 1.0 + float(zoom[i]))
        m_head[:, 2] += [
            base_x + (0 if sc.planar else dx[i]) + off_x,
            base_y + (0 if sc.planar else dy[i]),
        ]
        _paste(canvas, layer, head.mask, cast(NDArray[np.float64], m_head))
        if intruder is not None and frac > 0.45:
            ih, iw = intruder.layer.shape[:2]
            slide = min(1.0, (frac - 0.45) / 0.15)
            m_i = np.array([[1, 0, w - iw * 0.9 * slide], [0, 1, h * 0.1]], np.float64)
            _paste(canvas, intruder.layer, intruder.mask, m_i)
        if sc.planar:  # the printed photo (face and its surroundings) moves as one plane
            m_all = cv2.getRotationMatrix2D((w / 2, h / 2), float(rot[i]), 1.0 + float(zoom[i]))
            m_all[:, 2] += [dx[i], dy[i]]
            canvas = cast(U8, cv2.warpAffine(canvas, m_all, (w, h), borderMode=cv2.BORDER_REFLECT))
        frames.append(noise.add(canvas))
    return frames


def screen_replay(frames: Sequence[U8], *, seed: int = 0) -> list[U8]:
    """The frames as a camera sees them re-displayed on an LCD: RGB sub-pixel stripes beating
    against the camera's sampling (moire), display gamma, a dark bezel, glare and new noise."""
    rng = np.random.default_rng(seed)
    h, w = frames[0].shape[:2]
    # the screen shows the video at 0.82 of the camera frame; each screen pixel is 3 stripes
    sw, sh = int(w * 0.82), int(h * 0.82)
    stripes = np.full((sh, sw * 3, 3), 0.25, np.float32)
    for c in range(3):
        stripes[:, c::3, 2 - c] = 1.6  # R, G, B stripes (BGR order), the rest leaks a little
    stripes[::4] *= 0.7  # darker rows between pixel lines
    src = np.array([[0, 0], [sw * 3, 0], [sw * 3, sh], [0, sh]], np.float32)
    x0, y0 = (w - sw) / 2, (h - sh) / 2
    dst = np.array(
        [
            [x0 + 6, y0 + 3],
            [x0 + sw - 4, y0 + 9],
            [x0 + sw + 2, y0 + sh - 2],
            [x0 - 3, y0 + sh + 4],
        ],
        np.float32,
    )
    m = cv2.getPerspectiveTransform(src, dst)
    screen_mask = cv2.warpPerspective(np.ones((sh, sw * 3), np.float32), m, (w, h))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    glare = 18.0 * np.exp(-(((xx - 0.7 * w) / (0.25 * w)) ** 2 + ((yy - 0.3 * h) / (0.3 * h)) ** 2))
    glare3 = cv2.merge([glare, glare, glare])
    bezel = np.full((h, w, 3), 22, np.uint8)
    gamma = np.clip(((np.arange(256) / 255.0) ** 1.25) * 255.0, 0, 255).astype(np.uint8)
    noise = _Noise(rng, (h, w, 3), 2.5)
    out: list[U8] = []
    for f in frames:
        img = cv2.LUT(cv2.resize(f, (sw * 3, sh), interpolation=cv2.INTER_NEAREST), gamma)
        lit = cv2.multiply(img.astype(np.float32), stripes)
        lit = cv2.GaussianBlur(lit, (0, 0), 0.9)  # the camera lens: stripes mostly average out
        cam = cv2.warpPerspective(lit, m, (w, h), flags=cv2.INTER_LINEAR)
        cam = np.clip(cam + glare3, 0, 255).astype(np.uint8)
        out.append(noise.add(cast(U8, cv2.blendLinear(cam, bezel, screen_mask, 1.0 - screen_mask))))
    return out


# -- the fixture set -------------------------------------------------------------------------


def _write_jpeg(path: Path, img: U8) -> Path:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise ValueError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())
    return path


def _read_grid(path: Path) -> tuple[list[U8], float, F32]:
    from liveness.media import open_clip

    clip = open_clip(str(path), target_fps=None)
    return list(clip.frames), float(clip.info.fps), np.asarray(clip.audio, np.float32)


def _other_digits(digits: str, rng: np.random.Generator) -> str:
    """A different readable digit string of the same length (every digit changed)."""
    out: list[str] = []
    for d in digits:
        choices = [c for c in "0123456789" if c != d and (not out or c != out[-1])]
        out.append(str(rng.choice(choices)))
    return "".join(out)


def _pad(audio: F32, lead_s: float, total_s: float) -> F32:
    out = np.zeros(int(round(total_s * RATE)), np.float32)
    start = int(round(lead_s * RATE))
    seg = audio[: max(0, out.size - start)]
    out[start : start + seg.size] = seg
    return out


def generate(
    out_dir: str | Path,
    shared: str | Path,
    *,
    digits: str | Mapping[str, str],
    seed: int = 0,
    families: Iterable[str] = FAMILIES,
    size: tuple[int, int] = (640, 480),
    grid_pairs: int | None = 1,
) -> list[FixtureCase]:
    """Write fixture clips, reference photos and sidecars into ``out_dir``; return the cases.

    ``digits`` is the challenge for the synthetic clips (issue it first, then generate), or a
    mapping from family to challenge digits (tokens are single-use, so each certified case needs
    its own challenge). GRID cases use each clip's own digit. ``grid_pairs``: how many
    (face, other) GRID pairs per pairwise family (other_person, dubbed); None = every ordered pair.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shared = Path(shared)
    fams = list(families)
    unknown = set(fams) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown fixture families: {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    cases: list[FixtureCase] = []
    grids = grid_clips(shared)
    faces = shared / "faces"

    def add(case: FixtureCase) -> None:
        case.write_sidecar(out)
        cases.append(case)

    grid_refs: dict[str, Path] = {}

    def grid_ref(p: Path) -> Path:
        if p.stem not in grid_refs:
            frames, _, _ = _read_grid(p)
            grid_refs[p.stem] = _write_jpeg(out / f"ref_grid_{p.stem}.jpg", frames[len(frames) - 3])
        return grid_refs[p.stem]

    def grid_case(
        name: str,
        fam: str,
        clip: Path,
        *,
        enrolled: Path,
        spoken: Path,
        verdict: str,
        reasons: tuple[str, ...],
        notes: str,
    ) -> None:
        """A GRID case: ``clip`` certified for ``enrolled``'s person (reference from their own
        clip) against the digit spoken in the GRID clip ``spoken``."""
        add(
            FixtureCase(
                name=name,
                family=fam,
                attack=fam != "genuine_grid",
                clip=str(clip),
                reference=str(grid_ref(enrolled)),
                digits=grid_digit(spoken),
                subject_id=f"grid-{enrolled.stem}",
                expected_verdict=verdict,
                expected_reasons=reasons,
                notes=notes,
            )
        )

    if "genuine_grid" in fams:
        for p in grids:
            grid_case(
                f"genuine_grid_{p.stem}",
                "genuine_grid",
                p,
                enrolled=p,
                spoken=p,
                verdict="PASS",
                reasons=(),
                notes="real talking head; reference from a later frame",
            )

    pairs = [(a, b) for a in grids for b in grids if _different_speakers(a, b)]
    if grid_pairs is not None:
        order = rng.permutation(len(pairs))[:grid_pairs]
        pairs = [pairs[i] for i in order]
    if "other_person" in fams:
        for a, b in pairs:
            grid_case(
                f"other_person_{a.stem}_as_{b.stem}",
                "other_person",
                a,
                enrolled=b,
                spoken=a,
                verdict="FAIL",
                reasons=("FACE_MISMATCH",),
                notes=f"{a.stem}'s genuine clip against {b.stem}'s enrolled frame",
            )
    if "dubbed" in fams:
        for a, b in pairs:
            fa, fps, _ = _read_grid(a)
            _, _, audio_b = _read_grid(b)
            clip = encode_mp4(out / f"dubbed_{a.stem}_with_{b.stem}.mp4", fa, fps, audio_b)
            grid_case(
                f"dubbed_{a.stem}_with_{b.stem}",
                "dubbed",
                clip,
                enrolled=a,
                spoken=b,
                verdict="FAIL",
                reasons=("LIP_SYNC_MISMATCH",),
                notes=f"{a.stem}'s face, {b.stem}'s voice (same grammar, same timing)",
            )

    synth = [f for f in fams if f in SYNTHETIC_FAMILIES]
    if synth:
        photo = cast(U8, cv2.imread(str(faces / _SYNTH_PHOTO)))
        if photo is None:
            raise FileNotFoundError(f"face photo {faces / _SYNTH_PHOTO} not found")
        ref = faces / _SYNTH_REFERENCE
        lead, tail = 0.6, 1.6
        scene = _Scene(size=size)
        made: dict[str, tuple[F32, F32, float, list[U8]]] = {}

        def genuine(d: str) -> tuple[F32, F32, float, list[U8]]:
            """(speech, padded audio, duration, frames) of the genuine clip reading ``d``."""
            if d not in made:
                speech = espeak_digits(d)
                dur = lead + speech.size / RATE + tail
                audio = _pad(speech, lead, dur)
                frames = talking_head(photo, audio, dur, seed=seed, scene=scene)
                made[d] = (speech, audio, dur, frames)
            return made[d]

        def synth_case(
            fam: str, d: str, frames: list[U8], aud: F32, verdict: str, reasons: tuple[str, ...],
            notes: str, *, challenge: str = "fresh",
        ) -> None:  # fmt: skip
            name = f"{fam}_en_{len(d)}digits"
            clip = encode_mp4(out / f"{name}.mp4", frames, scene.fps, aud)
            add(
                FixtureCase(
                    name=name,
                    family=fam,
                    attack=fam != "genuine_synthetic",
                    clip=str(clip),
                    reference=str(ref),
                    digits=d,
                    subject_id="synthetic-subject",
                    expected_verdict=verdict,
                    expected_reasons=reasons,
                    challenge=challenge,
                    notes=notes,
                )
            )

        def dig(fam: str) -> str:
            return digits if isinstance(digits, str) else digits[fam]

        def restaged(
            fam: str, sc: _Scene, verdict: str, reasons: tuple[str, ...], notes: str
        ) -> None:
            """The genuine clip's audio over the photo filmed anew in scene ``sc``."""
            d = dig(fam)
            _, audio, dur, _ = genuine(d)
            frames = talking_head(photo, audio, dur, seed=seed, scene=sc)
            synth_case(fam, d, frames, audio, verdict, reasons, notes)

        if "genuine_synthetic" in fams:
            d = dig("genuine_synthetic")
            _, audio, _, frames = genuine(d)
            synth_case(
                "genuine_synthetic",
                d,
                frames,
                audio,
                "PASS",
                (),
                "photo with the mouth warped in time with espeak-ng; head motion; noise",
            )
        if "wrong_digits" in fams:
            d = dig("wrong_digits")
            wrong = _other_digits(d, rng)
            _, audio, _, frames = genuine(wrong)
            synth_case(
                "wrong_digits", d, frames, audio, "FAIL", ("CHALLENGE_MISMATCH",), f"reads {wrong}"
            )
        if "audio_shift" in fams:
            d = dig("audio_shift")
            speech, _, dur, frames = genuine(d)
            synth_case(
                "audio_shift",
                d,
                frames,
                _pad(speech, lead + 1.0, dur),
                "FAIL",
                ("LIP_SYNC_MISMATCH",),
                "the genuine clip with its audio 1 s late",
            )
        if "still_photo" in fams:
            restaged(
                "still_photo",
                _Scene(size=size, mouth=False, head_motion=False, planar=True),
                "FAIL",
                ("SPOOF_SUSPECTED", "LIP_SYNC_MISMATCH"),
                "the right audio over a still photo held up by hand",
            )
        if "second_face" in fams:
            restaged(
                "second_face",
                _Scene(size=size, intruder=cast(U8, cv2.imread(str(faces / _INTRUDER_PHOTO)))),
                "FAIL",
                ("MULTIPLE_FACES",),
                "another face slides in from the right at 45% of the clip",
            )
        if "face_leaves" in fams:
            restaged(
                "face_leaves",
                _Scene(size=size, leave=(0.35, 0.75)),
                "RETRY",
                ("FACE_LOST",),
                "the head slides out of frame for 40% of the clip",
            )
        for fam, mode, reason in (
            ("challenge_reused", "reused", "CHALLENGE_REUSED"),
            ("challenge_expired", "expired", "CHALLENGE_EXPIRED"),
        ):
            if fam in fams:
                d = dig(fam)
                _, audio, _, frames = genuine(d)
                synth_case(
                    fam,
                    d,
                    frames,
                    audio,
                    "FAIL",
                    (reason,),
                    "a genuine clip; the token is the attack (first use passes)",
                    challenge=mode,
                )
        if "screen_replay" in fams:
            d = dig("screen_replay")
            _, audio, _, frames = genuine(d)
            synth_case(
                "screen_replay",
                d,
                screen_replay(frames, seed=seed),
                audio,
                "FAIL",
                ("SPOOF_SUSPECTED",),
                "the genuine clip filmed off an LCD screen",
            )
    return cases


def issue_for_digits(
    authority: Any, subject_id: str, digits: str, *, max_tries: int = 200_000
) -> Any:
    """A real challenge from ``authority`` whose digits are ``digits`` (for recorded fixtures).

    ``ChallengeAuthority`` draws digits from the OS CSPRNG and offers no way to choose them (as it
    should); a fixture recorded in advance needs a token for its digits, so this issues
    challenges until one matches: ~10 tries for 1 digit, ~10**4 for 4. Longer strings are refused.
    """
    if not digits.isdigit() or len(digits) > 4:
        raise ValueError(
            "issue_for_digits works for 1 to 4 digits; generate the clip after issuing"
        )
    for _ in range(max_tries):
        ch = authority.issue(subject_id, length=len(digits))
        if ch.digits == digits:
            return ch
    raise RuntimeError(f"no challenge with digits {digits!r} after {max_tries} tries")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m liveness.fixtures --out data/fixtures --digits F=1234 ...``: write fixtures
    with portable sidecars (paths relative to the folder, shared data as ``@shared/...``)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m liveness.fixtures", description=main.__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", help="shared data folder (default: found from the cwd)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--digits", nargs="+", required=True, help="FAMILY=DIGITS, or DIGITS for all")
    ap.add_argument("--grid-pairs", type=int, default=1)
    args = ap.parse_args(argv)
    fams = [f for f in args.families.split(",") if f]
    if len(args.digits) == 1 and "=" not in args.digits[0]:
        digits: str | dict[str, str] = args.digits[0]
    else:
        digits = dict(x.split("=", 1) for x in args.digits)
    shared = find_shared_data(args.data)
    out = Path(args.out)
    for case in generate(out, shared, digits=digits, seed=args.seed, families=fams,
                         grid_pairs=args.grid_pairs):  # fmt: skip
        _portable(case, out, shared).write_sidecar(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
