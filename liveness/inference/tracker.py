"""Follow the one face of a clip: full MTCNN on key frames, O-Net refinement between them.

``FaceTracker.track(frames)``:

1. Key frames get a full detection (R-Net and O-Net batched over all of them): with the clip's
   timestamps, the first frame, then the first frame at least ``face.detect_interval_s`` after
   the previous key frame, and the last frame (so the detection rate does not follow the decoding
   rate: lip-sync decodes at 25 fps); without timestamps, every ``face.detect_every``-th frame
   plus the last. Every key frame looks for faces down to
   ``face.min_face_frac``: a larger limit on later key frames would save about a third of
   P-Net's time but miss a second, smaller face (Biden in group_obama_and_biden).
2. The track's face on each key frame is the face that continues the previous key frame's (IoU,
   then centre distance); the first key frame with a face starts with its largest face. A key
   frame whose faces do not continue the track restarts it on its largest face and is noted as a
   jump (a hint of a swap, judged by the embeddings in the face stage).
3. Any other face on a key frame counts towards ``MULTIPLE_FACES``, raised when seen on at least
   ``face.multiple_faces_min_frames`` key frames (a single false detection must not fail a person).
4. Frames between key frames start from the box interpolated between the neighbouring key faces
   and are refined by O-Net alone, in one batched call, on a crop around that box (the same
   pixels O-Net would see in the whole frame, without shrinking and converting the whole frame);
   where O-Net loses the face, a full detection on that frame gets a second chance.
5. A frame counts as lost when no face is found or the face's landmarks leave the image (the face
   is partly out of frame). ``FACE_LOST`` when more than ``face.max_lost_frac`` of the frames are
   lost; ``NO_FACE`` when none has a face.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from liveness.config import FaceConfig
from liveness.errors import ConfigError, MediaError
from liveness.inference.detector import Face, FaceDetector
from liveness.results import Reason, Score

__all__ = [
    "FaceTracker",
    "KeyframeClock",
    "Track",
    "box_iou",
    "keyframe_indices",
    "keyframe_times",
    "spaced_indices",
]

_CONTINUE_IOU = 0.3  # a key-frame face with at least this IoU continues the track
_CONTINUE_SHIFT = 0.5  # ... or whose centre moved less than this fraction of the face width
_CROP_MARGIN = 8  # pixels (at detection scale) kept around O-Net's square so filters see the same


@dataclass(frozen=True, slots=True, kw_only=True)
class Track:
    """The clip's face, frame by frame, and what was noticed while following it."""

    faces: tuple[Face | None, ...]  # one per frame; None where lost
    keyframes: tuple[int, ...]  # frames that had a full detection
    refined: tuple[int, ...]  # frames found by O-Net refinement alone
    multi_face_frames: tuple[int, ...]  # key frames where another face was seen
    lost_frames: tuple[int, ...]
    jumps: tuple[int, ...]  # key frames where the track restarted on a face elsewhere
    reasons: tuple[Reason, ...]  # NO_FACE, MULTIPLE_FACES, FACE_LOST
    scores: tuple[Score, ...]

    @property
    def found(self) -> tuple[int, ...]:
        return tuple(i for i, f in enumerate(self.faces) if f is not None)

    @property
    def coverage(self) -> float:
        return len(self.found) / len(self.faces) if self.faces else 0.0


def box_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    ax1, ay1, ax2, ay2 = (float(v) for v in np.asarray(a).reshape(4))
    bx1, by1, bx2, by2 = (float(v) for v in np.asarray(b).reshape(4))
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = max(ax2 - ax1, 0) * max(ay2 - ay1, 0) + max(bx2 - bx1, 0) * max(by2 - by1, 0) - inter
    return inter / union if union > 0 else 0.0


def keyframe_indices(n: int, every: int) -> tuple[int, ...]:
    """0, every, 2*every, ... and the last frame."""
    if n <= 0:
        return ()
    ks = list(range(0, n, max(1, every)))
    if ks[-1] != n - 1:
        ks.append(n - 1)
    return tuple(ks)


class KeyframeClock:
    """Key frames by clip time, decided frame by frame as a clip decodes: the first frame, then
    each first frame ``interval_s`` or more after the previous key (``keyframe_times`` adds the
    last frame once the clip is complete)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: float | None = None

    def is_key(self, t: float) -> bool:
        """Whether the next frame, shown at ``t`` seconds, is a key frame."""
        if self._last is None or t - self._last >= self.interval_s - 1e-6:
            self._last = t
            return True
        return False


def keyframe_times(timestamps: npt.ArrayLike, interval_s: float) -> tuple[int, ...]:
    """The first frame, each first frame ``interval_s`` or more after the previous key, the last."""
    t = np.asarray(timestamps, np.float64).reshape(-1)
    if t.size == 0:
        return ()
    clock = KeyframeClock(interval_s)
    ks = [i for i in range(t.size) if clock.is_key(float(t[i]))]
    if ks[-1] != t.size - 1:
        ks.append(t.size - 1)
    return tuple(ks)


def spaced_indices(candidates: Sequence[int], k: int) -> tuple[int, ...]:
    """``k`` indices spread evenly over ``candidates`` (all of them when there are fewer)."""
    c = list(candidates)
    if k <= 0 or not c:
        return ()
    if len(c) <= k:
        return tuple(c)
    pos = np.linspace(0, len(c) - 1, k)
    return tuple(c[int(round(p))] for p in pos)


def _continues(prev: Face, cand: Face) -> bool:
    if box_iou(prev.box, cand.box) >= _CONTINUE_IOU:
        return True
    (px, py), (cx, cy) = prev.center, cand.center
    return bool(np.hypot(px - cx, py - cy) < _CONTINUE_SHIFT * max(prev.width, 1.0))


def _closest(prev: Face, faces: Sequence[Face]) -> Face | None:
    """The face among ``faces`` that continues ``prev`` best, or None."""
    best: Face | None = None
    best_iou = -1.0
    for f in faces:
        if _continues(prev, f):
            iou = box_iou(prev.box, f.box)
            if iou > best_iou:
                best, best_iou = f, iou
    return best


def _in_frame(face: Face, width: int, height: int) -> bool:
    lm = face.landmarks
    return bool(
        (lm[:, 0] >= 0).all() and (lm[:, 0] < width).all()
        and (lm[:, 1] >= 0).all() and (lm[:, 1] < height).all()
    )  # fmt: skip


class FaceTracker:
    """One track per clip over a ``FaceDetector``; see the module docstring."""

    def __init__(self, detector: FaceDetector, cfg: FaceConfig | None = None) -> None:
        self.detector = detector
        self.cfg = cfg or detector.cfg
        if self.cfg.detect_every < 1:
            raise ConfigError(f"face.detect_every must be >= 1, got {self.cfg.detect_every}")
        if self.cfg.detect_interval_s is not None and not self.cfg.detect_interval_s > 0:
            raise ConfigError(
                f"face.detect_interval_s must be > 0 or unset, got {self.cfg.detect_interval_s}"
            )

    def keyframe_rule(self) -> Callable[[int, float], bool]:
        """``track``'s choice of key frames for a clip with timestamps, made one decoded frame at
        a time (index, seconds): by ``face.detect_interval_s`` of clip time, or every
        ``face.detect_every``-th frame when no interval is set. ``track`` adds the last frame,
        known only once the clip is complete. Callers that detect key frames while decoding
        use this, so they detect exactly the frames ``track`` will ask for."""
        if self.cfg.detect_interval_s is not None:
            clock = KeyframeClock(self.cfg.detect_interval_s)
            return lambda _i, t: clock.is_key(t)
        every = self.cfg.detect_every
        return lambda i, _t: i % every == 0

    def track(
        self,
        frames: npt.NDArray[np.uint8] | Sequence[npt.NDArray[np.uint8]],
        timestamps: npt.ArrayLike | None = None,
        *,
        detected: Mapping[int, Sequence[Face]] | None = None,
    ) -> Track:
        """Follow the face through ``frames`` ((T, H, W, 3) BGR uint8, or a list of frames).

        ``timestamps`` (seconds, one per frame) space the key frames by ``face.detect_interval_s``
        of clip time; without them (or with no interval set) every ``face.detect_every``-th
        frame is a key frame. ``detected``: full detections of some key frames made already
        (``detector.detect`` while the clip decoded, see ``KeyframeClock``); the other key
        frames are detected here.
        """
        n = len(frames)
        if n == 0:
            raise MediaError("the clip has no frames to track a face in")
        cfg = self.cfg
        if timestamps is not None and cfg.detect_interval_s is not None:
            ts = np.asarray(timestamps, np.float64).reshape(-1)
            if ts.size != n:
                raise MediaError(f"{n} frames but {ts.size} timestamps")
            keys = keyframe_times(ts, cfg.detect_interval_s)
        else:
            keys = keyframe_indices(n, cfg.detect_every)
        done = detected or {}
        todo_keys = [k for k in keys if k not in done]
        fresh = dict(
            zip(todo_keys, self.detector.detect_many([frames[k] for k in todo_keys]), strict=True)
        )
        detections = [done[k] if k in done else fresh[k] for k in keys]

        faces: list[Face | None] = [None] * n
        multi: list[int] = []
        jumps: list[int] = []
        prev: Face | None = None
        for k, found in zip(keys, detections, strict=True):
            if len(found) > 1:
                multi.append(k)
            if not found:
                continue
            cont = _closest(prev, found) if prev is not None else None
            if cont is None:
                if prev is not None:
                    jumps.append(k)
                cont = found[0]  # largest
            faces[k] = prev = cont

        # between key frames: O-Net from the interpolated box, all in one call
        todo: list[int] = []
        priors: list[npt.NDArray[np.float32]] = []
        for a, b in zip(keys, keys[1:], strict=False):
            fa, fb = faces[a], faces[b]
            for i in range(a + 1, b):
                if fa is not None and fb is not None and b not in jumps:
                    t = (i - a) / (b - a)
                    box = (1 - t) * fa.box + t * fb.box
                elif fa is not None:
                    box = fa.box
                elif fb is not None:
                    box = fb.box
                else:
                    continue
                todo.append(i)
                priors.append(box.astype(np.float32))
        refined: list[int] = []
        if todo:
            got = self._refine([frames[i] for i in todo], priors)
            missed: list[tuple[int, npt.NDArray[np.float32]]] = []
            for i, prior, face in zip(todo, priors, got, strict=True):
                if face is not None and box_iou(face.box, prior) > 0:
                    faces[i] = face
                    refined.append(i)
                else:
                    missed.append((i, prior))
            if missed:
                second = self.detector.detect_many([frames[i] for i, _ in missed])
                for (i, prior), found in zip(missed, second, strict=True):
                    ref = Face(box=prior, score=1.0, landmarks=np.zeros((5, 2), np.float32))
                    faces[i] = _closest(ref, found)

        lost: list[int] = []
        for i, f in enumerate(faces):
            h, w = frames[i].shape[:2]
            if f is None or not _in_frame(f, w, h):
                faces[i] = None
                lost.append(i)

        reasons: list[Reason] = []
        coverage = 1.0 - len(lost) / n
        if len(lost) == n:
            reasons.append(Reason.NO_FACE)
        elif len(lost) > cfg.max_lost_frac * n:
            reasons.append(Reason.FACE_LOST)
        if len(multi) >= min(cfg.multiple_faces_min_frames, len(keys)) and multi:
            reasons.append(Reason.MULTIPLE_FACES)
        scores = (
            Score(name="face_coverage", value=coverage, threshold=1.0 - cfg.max_lost_frac),
            Score(
                name="multiple_face_keyframes",
                value=float(len(multi)),
                threshold=float(min(cfg.multiple_faces_min_frames, len(keys))) - 0.5,
                higher_is_better=False,
            ),
        )
        return Track(
            faces=tuple(faces),
            keyframes=keys,
            refined=tuple(i for i in refined if faces[i] is not None),
            multi_face_frames=tuple(multi),
            lost_frames=tuple(lost),
            jumps=tuple(jumps),
            reasons=tuple(reasons),
            scores=scores,
        )

    def _refine(
        self, images: Sequence[npt.NDArray[np.uint8]], priors: Sequence[npt.NDArray[np.float32]]
    ) -> list[Face | None]:
        """``detector.refine_many`` on crops around each prior box instead of whole frames.

        The detector shrinks a large frame (pyrDown octaves) to ``detect_max_side`` before O-Net;
        a crop whose offset is aligned to those octaves, shrunk the same way, holds the same
        pixels around the box (borders ``_CROP_MARGIN`` px away), so O-Net sees the same input
        for a fraction of the cost. Frames whose scale is not a pure octave step use the frame.
        """
        crops: list[npt.NDArray[np.uint8]] = []
        boxes: list[npt.NDArray[np.float32]] = []
        places: list[tuple[float, float, float]] = []  # x offset, y offset (crop scale), scale
        for img, prior in zip(images, priors, strict=True):
            cut = self._crop_for(img, prior)
            if cut is None:
                crops.append(img)
                boxes.append(prior)
                places.append((0.0, 0.0, 1.0))
                continue
            crop, ox, oy, f = cut
            crops.append(crop)
            boxes.append(
                (prior * np.float32(f)).astype(np.float32) - np.array([ox, oy, ox, oy], np.float32)
            )
            places.append((ox, oy, f))
        got = self.detector.refine_many(crops, boxes)
        out: list[Face | None] = []
        for face, (ox, oy, f) in zip(got, places, strict=True):
            if face is None or (ox, oy, f) == (0.0, 0.0, 1.0):
                out.append(face)
                continue
            shift = np.array([ox, oy], np.float32)
            out.append(
                Face(
                    box=(
                        (face.box + np.array([ox, oy, ox, oy], np.float32)) / np.float32(f)
                    ).astype(np.float32),
                    score=face.score,
                    landmarks=((face.landmarks + shift) / np.float32(f)).astype(np.float32),
                )
            )
        return out

    def _crop_for(
        self, img: npt.NDArray[np.uint8], prior: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.uint8], float, float, float] | None:
        """(crop at detection scale, its x and y offset at that scale, the scale), or None."""
        h, w = img.shape[:2]
        side = self.detector.cfg.detect_max_side
        f = min(1.0, side / max(h, w))
        octaves = 0
        if f < 1.0:
            tw, th = max(1, round(w * f)), max(1, round(h * f))
            cw, ch = w, h
            while cw >= 2 * tw and ch >= 2 * th:
                cw, ch = (cw + 1) // 2, (ch + 1) // 2
                octaves += 1
            if (cw, ch) != (tw, th) or f != 0.5**octaves:
                return None
        step = 2 ** (octaves + 1)  # an even offset at detection scale keeps O-Net's rounding
        b = np.asarray(prior, np.float64).reshape(4) * f
        half = max(b[2] - b[0], b[3] - b[1]) / 2 + _CROP_MARGIN + 2
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        if not np.isfinite([cx, cy, half]).all():
            return None
        x1 = max(0, int(np.floor((cx - half) / f)) // step * step)
        y1 = max(0, int(np.floor((cy - half) / f)) // step * step)
        x2 = min(w, -(-int(np.ceil((cx + half) / f)) // step) * step)
        y2 = min(h, -(-int(np.ceil((cy + half) / f)) // step) * step)
        if x2 - x1 < step or y2 - y1 < step:
            return None
        crop = img[y1:y2, x1:x2]
        for _ in range(octaves):
            crop = cv2.pyrDown(crop)  # type: ignore[assignment]
        if max(crop.shape[:2]) > side:
            return None  # a face filling the frame: the detector would shrink the crop again
        return np.ascontiguousarray(crop), x1 * f, y1 * f, f
