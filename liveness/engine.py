"""The certification engine: the one call a backend makes.

``Engine.from_config(cfg, challenges=authority)`` loads every model once (face detector and
embedder, the MiniFASNet ensemble, the speech recogniser); an engine is safe to share between
threads. Making one caps numpy's BLAS thread pool for the whole process at ``[models]
blas_threads`` (1 by default; None leaves it alone): every stage runs one thread per task, and
the pool's idle threads spin. ``engine.certify(clip, reference_photo, challenge_token)`` returns
a ``Decision``:

1. the challenge: the token is decoded; if an ``AttemptLimiter`` is attached and the subject is
   locked, the answer is FAIL / TOO_MANY_ATTEMPTS without touching the clip (the token is not
   consumed); otherwise the token is verified and consumed. A rejected token (forged, expired,
   reused, another subject) is **a FAIL decision** with the matching ``CHALLENGE_*`` reason, not
   an exception, so the backend records the attempt like any other; nothing else is looked at.
   A consumed challenge is spent whatever happens next: an upload that cannot be decoded raises
   a ``MediaError`` and the phone must ask for a new challenge.
2. decode the clip in two threads: the sound alone in the engine's pool, where the speech
   stage (digits heard, when) runs on it at once, and the pictures here (video sampled at
   ``max(media.target_fps, sync.video_fps)``). Each key frame of the face tracker goes to the
   pool for its full detection as soon as it is decoded, and the reference photo is embedded
   there too (onnxruntime and CTranslate2 release the GIL, so the work overlaps on two cores);
3. the face track is finished here from those detections (O-Net refinement between them);
4. face quality, embedding and match, the mouth-opening signal and the passive motion cues run
   in the pool while MiniFASNet and the frame cues of passive anti-spoofing run here; then
   lip-sync against the speech envelope and the digit times;
5. the decision policy (``liveness.checks.decide``); the record store, if attached, signs and
   appends the decision, and the limiter counts it.

Passive anti-spoofing and lip-sync are judged only when they can be: with a face tracked through
the clip (not NO_FACE / FACE_LOST, which already ask for a retry and never pass), and lip-sync
also needs digit times from the speech stage. A PASS
always needs it: when every other check passed but lip-sync could not be judged, the decision
carries LIP_SYNC_MISMATCH.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from liveness.checks.decide import decide, validate_policy
from liveness.checks.sync import SyncResult, check_sync, mouth_signal
from liveness.config import Config
from liveness.errors import (
    ChallengeError,
    ChallengeExpiredError,
    ChallengeInvalidError,
    ChallengeReusedError,
    ChallengeSubjectError,
    MediaError,
)
from liveness.results import Decision, Reason, Score

if TYPE_CHECKING:
    from liveness.challenge import ChallengeAuthority
    from liveness.media import Clip, FrameCallback
    from liveness.records import AttemptLimiter, RecordStore
    from liveness.stages.face import FaceStage, FaceStageResult
    from liveness.stages.speech import SpeechResult, SpeechStage
    from liveness.stages.spoof import PassiveResult, PassiveStage

__all__ = ["Engine"]

T = TypeVar("T")
ClipSource = str | os.PathLike[str] | bytes
PhotoSource = str | os.PathLike[str] | bytes | npt.NDArray[np.uint8]

_CHALLENGE_REASONS: tuple[tuple[type[ChallengeError], Reason], ...] = (
    (ChallengeExpiredError, Reason.CHALLENGE_EXPIRED),
    (ChallengeReusedError, Reason.CHALLENGE_REUSED),
    (ChallengeSubjectError, Reason.CHALLENGE_SUBJECT_MISMATCH),
    (ChallengeInvalidError, Reason.CHALLENGE_INVALID),
)
_MODEL_PREFIXES = ("mtcnn_", "face_embedder", "antispoof_")
_BEST_FRAME_MAX_SIDE = 640


def _challenge_reason(exc: ChallengeError) -> Reason:
    for cls, reason in _CHALLENGE_REASONS:
        if isinstance(exc, cls):
            return reason
    return Reason.CHALLENGE_INVALID


@dataclass(frozen=True, slots=True)
class _Timed:
    value: Any
    seconds: float


def _timed(fn: Callable[..., T], *args: Any) -> _Timed:
    t = time.perf_counter()
    out = fn(*args)
    return _Timed(out, time.perf_counter() - t)


class Engine:
    """Models loaded once; ``certify`` is safe to call from many threads at once."""

    def __init__(
        self,
        cfg: Config,
        *,
        challenges: ChallengeAuthority,
        face: FaceStage,
        passive: PassiveStage,
        speech: SpeechStage,
        records: RecordStore | None = None,
        limiter: AttemptLimiter | None = None,
        workers: int = 2,
    ) -> None:
        validate_policy(cfg.decision)  # a bad policy fails at start-up, not on the first clip
        _limit_blas(cfg.models.blas_threads)
        self.cfg = cfg
        self.challenges = challenges
        self.face = face
        self.passive = passive
        self.speech = speech
        self.records = records
        self.limiter = limiter
        self._config_hash = cfg.config_hash()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="liveness")
        self._closed = False
        self._lock = threading.Lock()
        self._model_versions = _manifest_versions(cfg)

    @classmethod
    def from_config(
        cls,
        cfg: Config | None = None,
        *,
        challenges: ChallengeAuthority | None = None,
        records: RecordStore | None = None,
        limiter: AttemptLimiter | None = None,
        workers: int = 2,
    ) -> Engine:
        """Load every model named by ``cfg`` (raises ``ModelError`` if one is missing or altered).

        ``challenges``: the authority whose key verifies tokens; default: built from the
        ``LIVENESS_CHALLENGE_KEY`` environment variable (``ConfigError`` when it is not set).
        """
        from liveness.challenge import ChallengeAuthority
        from liveness.stages.face import FaceStage
        from liveness.stages.speech import SpeechStage
        from liveness.stages.spoof import PassiveStage

        cfg = cfg or Config()
        validate_policy(cfg.decision)
        if challenges is None:
            challenges = ChallengeAuthority.from_env(cfg=cfg.challenge)
        return cls(
            cfg,
            challenges=challenges,
            face=FaceStage.from_config(cfg),
            passive=PassiveStage.from_config(cfg),
            speech=SpeechStage.from_config(cfg),
            records=records,
            limiter=limiter,
            workers=workers,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker threads (models stay loaded until the engine is dropped)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def config_hash(self) -> str:
        return self._config_hash

    @property
    def model_versions(self) -> dict[str, str]:
        return dict(self._model_versions)

    # -- the call ------------------------------------------------------------------------------

    def certify(
        self,
        clip: ClipSource | Clip,
        reference_photo: PhotoSource,
        challenge_token: str,
        *,
        subject_id: str | None = None,
    ) -> Decision:
        """Certify one recording against the enrolled photo and the challenge it was read for.

        ``clip``: a path, the file's bytes, or an already decoded ``Clip``. ``reference_photo``:
        a path, bytes, or a BGR uint8 array. ``subject_id``: when given, the challenge must have
        been issued to this subject. Raises only when no decision is possible (``MediaError``,
        ``ModelError``); everything else is a ``Decision``.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("this Engine is closed")
        t_start = time.perf_counter()
        timings: dict[str, float] = {}

        # 1. the challenge
        t = time.perf_counter()
        try:
            decoded = self.challenges.decode(challenge_token)
        except ChallengeError as exc:
            return self._rejected(exc, subject_id or "", "", timings, t_start)
        subject = subject_id or decoded.subject_id
        if self.limiter is not None:
            lock = self.limiter.check(subject)
            if lock is not None:
                d = lock.decision(challenge_nonce=decoded.nonce, config_hash=self._config_hash)
                return self._finish(d, t_start, timings)
        try:
            challenge = self.challenges.verify(challenge_token, subject_id=subject_id)
        except ChallengeError as exc:
            return self._rejected(exc, subject, decoded.nonce, timings, t_start)
        timings["challenge"] = time.perf_counter() - t

        # 2. decode: the sound in the pool, where the speech stage then runs on it at once, and
        # the pictures here; meanwhile the pool embeds the enrolled photo's face and runs the
        # full face detection of each key frame as soon as it is decoded
        t = time.perf_counter()
        photo = self._decode_photo(reference_photo)
        timings["decode_photo"] = time.perf_counter() - t
        pending: list[Future[_Timed]] = []
        try:
            speech_future = self._submit(pending, self._hear, clip, challenge.digits)
            ref_future = self._submit(pending, self.face.reference, photo)
            keys: dict[int, Future[_Timed]] = {}
            is_key = self.face.tracker.keyframe_rule()

            def on_frame(i: int, t_s: float, img: npt.NDArray[np.uint8]) -> None:
                if is_key(i, t_s):
                    keys[i] = self._submit(pending, self.face.detector.detect, img)

            t = time.perf_counter()
            clip_obj = self._decode_clip(clip, on_frame=on_frame, audio=False)
            timings["decode"] = time.perf_counter() - t

            # 3. the face track here, from the key frames detected already (speech goes on)
            detected = {i: f.result().value for i, f in keys.items()}
            track, track_s = self.face.track(clip_obj, detected=detected)
            ref_t = ref_future.result()
            timings["face_reference"] = ref_t.seconds

            # 4. quality, embedding and match, and the mouth signal, in the pool while passive
            # anti-spoofing runs here (its motion cues in the pool too); then lip-sync. Passive
            # and lip-sync judge a face tracked through the clip; without one the track's
            # NO_FACE / FACE_LOST already asks for a retry, which never passes.
            finish_future = self._submit(
                pending, partial(self.face.finish, track_s=track_s), clip_obj, ref_t.value, track
            )  # fmt: skip
            tracked = not ({Reason.NO_FACE, Reason.FACE_LOST} & set(track.reasons))
            mouth_future: Future[_Timed] | None = None
            passive_res: PassiveResult | None = None
            if tracked:
                lms = [f.landmarks if f is not None else None for f in track.faces]
                mouth_future = self._submit(pending, mouth_signal, clip_obj.frames, lms)
                t = time.perf_counter()
                passive_res = self.passive.run(
                    clip_obj.frames, clip_obj.timestamps, track.faces, executor=self._pool
                )
                timings["passive"] = time.perf_counter() - t
            finish_t = finish_future.result()
            face_res: FaceStageResult = finish_t.value
            timings["face"] = track_s + finish_t.seconds
            mouth: npt.NDArray[np.float64] | None = None
            if mouth_future is not None:
                mouth_t = mouth_future.result()
                mouth, timings["mouth"] = mouth_t.value, mouth_t.seconds
            speech_t = speech_future.result()
            sound, speech_res, timings["decode_audio"] = speech_t.value
            timings["speech"] = speech_t.seconds - timings["decode_audio"]
            if sound is not clip_obj:
                clip_obj = dataclasses.replace(clip_obj, audio=sound.audio)
            sync_res: SyncResult | None = None
            if (
                mouth is not None
                and speech_res.timings
                and Reason.NO_SPEECH not in speech_res.reasons
            ):
                t = time.perf_counter()
                sync_res = check_sync(
                    mouth,
                    clip_obj.timestamps,
                    clip_obj.audio,
                    clip_obj.audio_rate,
                    speech_res.timings,
                    self.cfg.sync,
                )
                timings["sync"] = time.perf_counter() - t
        finally:
            for f in pending:  # never leave a pool task running behind an error
                if not f.cancel():
                    f.exception()  # waits; an error here was already raised by .result()

        # 5. decide
        reasons: list[Reason] = [*face_res.reasons]
        if passive_res is not None:
            reasons += passive_res.reasons
        reasons += speech_res.reasons
        if sync_res is not None:
            reasons += sync_res.reasons
        elif not reasons:
            reasons.append(Reason.LIP_SYNC_MISMATCH)  # never PASS without a lip-sync judgement
        verdict, ordered = decide(reasons, self.cfg.decision)
        scores: list[Score] = [*face_res.scores]
        if passive_res is not None:
            scores += passive_res.scores
        scores += speech_res.scores
        if sync_res is not None:
            scores += sync_res.scores
        versions = dict(self._model_versions)
        if passive_res is not None:
            versions.update(passive_res.model_versions)
        versions["speech"] = speech_res.backend
        stage_timings = {
            **{f"face.{k}": v for k, v in face_res.timings.items()},
            **{f"speech.{k}": v for k, v in speech_res.timings_s.items()},
            **({f"passive.{k}": v for k, v in passive_res.timings.items()} if passive_res else {}),
        }
        details: dict[str, Any] = {
            "face": face_res.details(),
            "passive": passive_res.details() if passive_res is not None else None,
            "speech": {
                "satisfied": speech_res.satisfied,
                "confidence": round(float(speech_res.confidence), 4),
                "margin": None if speech_res.margin is None else round(float(speech_res.margin), 4),
                "speech_span": speech_res.speech_span,
            },
            "sync": sync_res.details if sync_res is not None else None,
            "frames": int(clip_obj.n_frames),
            "duration_s": round(float(clip_obj.info.duration_s), 3),
            "stage_timings": {k: round(v, 4) for k, v in stage_timings.items()},
        }
        decision = Decision(
            verdict=verdict,
            reasons=ordered,
            scores=tuple(scores),
            subject_id=subject,
            challenge_nonce=challenge.nonce,
            digits_heard=speech_res.digits_heard,
            digit_timings=tuple(speech_res.timings),
            best_frame_jpeg=_jpeg(clip_obj.frames, face_res),
            model_versions=versions,
            config_hash=self._config_hash,
            clip_sha256=clip_obj.sha256,
            timings=timings,
            details=details,
        )
        return self._finish(decision, t_start, timings)

    # -- helpers -------------------------------------------------------------------------------

    def _submit(
        self, pending: list[Future[_Timed]], fn: Callable[..., Any], *args: Any
    ) -> Future[_Timed]:
        f = self._pool.submit(_timed, fn, *args)
        pending.append(f)
        return f

    def _face_run(self, clip: Clip, photo: npt.NDArray[np.uint8]) -> FaceStageResult:
        ref = self.face.reference(photo)
        return self.face.run(clip, ref)

    def _hear(self, clip: ClipSource | Clip, digits: str) -> tuple[Clip, SpeechResult, float]:
        """Decode the clip's sound alone and run the speech stage on it: (the sound as a Clip
        without frames, or ``clip`` itself when it was decoded already; the result; seconds
        spent decoding)."""
        t = time.perf_counter()
        sound = self._decode_clip(clip, video=False)
        decode_s = time.perf_counter() - t
        return sound, self.speech.run(sound.audio, sound.audio_rate, digits), decode_s

    def _decode_clip(
        self,
        clip: ClipSource | Clip,
        *,
        on_frame: FrameCallback | None = None,
        video: bool = True,
        audio: bool = True,
    ) -> Clip:
        from liveness.media import Clip as ClipType
        from liveness.media import open_clip

        if isinstance(clip, ClipType):
            return clip
        if not isinstance(clip, str | bytes | os.PathLike):
            raise MediaError(f"clip must be a path, bytes or a Clip, not {type(clip).__name__}")
        media = self.cfg.media
        fps = media.target_fps
        if fps is not None:
            fps = max(fps, self.cfg.sync.video_fps)
        return open_clip(
            clip,
            media,
            target_fps=fps,
            on_frame=on_frame,
            decode_video=video,
            decode_audio=audio,
        )

    def _decode_photo(self, photo: PhotoSource) -> npt.NDArray[np.uint8]:
        from liveness.media import read_image

        if isinstance(photo, np.ndarray):
            if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
                raise MediaError(
                    f"the reference photo array must be (H, W, 3) BGR uint8, "
                    f"got {photo.shape} {photo.dtype}"
                )
            return photo
        if not isinstance(photo, str | bytes | os.PathLike):
            raise MediaError(
                f"reference_photo must be a path, bytes or an array, not {type(photo).__name__}"
            )
        return read_image(photo if isinstance(photo, bytes) else os.fspath(photo), self.cfg.media)

    def _rejected(
        self,
        exc: ChallengeError,
        subject: str,
        nonce: str,
        timings: dict[str, float],
        t_start: float,
    ) -> Decision:
        reason = _challenge_reason(exc)
        verdict, ordered = decide([reason], self.cfg.decision)
        timings["challenge"] = time.perf_counter() - t_start
        d = Decision(
            verdict=verdict,
            reasons=ordered,
            subject_id=subject,
            challenge_nonce=nonce,
            config_hash=self._config_hash,
            model_versions=dict(self._model_versions),
            timings=timings,
            details={"challenge_error": exc.message},
        )
        return self._finish(d, t_start, timings)

    def _finish(self, decision: Decision, t_start: float, timings: dict[str, float]) -> Decision:
        timings["total"] = time.perf_counter() - t_start
        if self.records is not None and decision.subject_id:
            self.records.append_decision(decision)
        if self.limiter is not None and decision.subject_id:
            self.limiter.observe(decision)
        return decision


def _limit_blas(threads: int | None) -> None:
    """Cap numpy's BLAS pool for the process (``[models] blas_threads``; see liveness.config)."""
    if threads is None:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


def _jpeg(frames: npt.NDArray[np.uint8], face: FaceStageResult) -> bytes | None:
    if face.best_index is None:
        return None
    img = frames[face.best_index]
    h, w = img.shape[:2]
    scale = _BEST_FRAME_MAX_SIDE / max(h, w)
    if scale < 1:
        img = cv2.resize(img, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else None


def _manifest_versions(cfg: Config) -> dict[str, str]:
    """``name -> "version sha256:<12 hex>"`` for the face and anti-spoofing models in use."""
    from liveness.models.registry import cache_dir, read_manifest

    out: dict[str, str] = {}
    for name, e in read_manifest(Path(cache_dir(cfg.models))).items():
        if name.startswith(_MODEL_PREFIXES):
            out[name] = f"{e.version} sha256:{e.sha256[:12]}"
    return out
