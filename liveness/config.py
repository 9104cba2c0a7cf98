"""Frozen, keyword-only configuration.

``Config()`` gives the defaults; ``Config.from_toml(path)`` overrides any of them from a TOML file
with one table per section (``[media]``, ``[face]``, ...). Unknown keys are an error, not ignored,
so a typo cannot silently leave a default in place. ``config_hash()`` goes into every decision.

Each section is owned by the module named in its docstring; add fields there, with a default and
a comment that says where the default comes from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from liveness.errors import ConfigError

__all__ = [
    "AntiSpoofConfig",
    "ChallengeConfig",
    "Config",
    "DecisionConfig",
    "FaceConfig",
    "FamilyConfig",
    "MediaConfig",
    "ModelConfig",
    "RecordConfig",
    "SpeechConfig",
    "SyncConfig",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaConfig:
    """Decoding limits and sampling (liveness.media). Limits are enforced before decoding."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_duration_s: float = 20.0
    min_duration_s: float = 1.0
    max_width: int = 3840
    max_height: int = 3840
    max_pixels: int = 3840 * 2160
    audio_rate: int = 16_000
    target_fps: float | None = 10.0  # None: every frame
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    decode_threads: int = 1  # 0 = let FFmpeg choose; 1 is fastest per core on shared 2-core hosts
    # Frames whose longest side exceeds this are downscaled (in the same swscale pass as the colour
    # conversion): bounds memory (20 s of 4K at 10 fps would be 5 GB) while keeping 720p intact.
    # None keeps the decoded size.
    max_frame_side: int | None = 1280
    # Frame rate of a folder of frames (+ WAV) that has no fps.txt; 25 is GRID's and PAL's rate.
    folder_fps: float = 25.0

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_width", "max_height", "max_pixels", "audio_rate",
                     "max_image_bytes", "max_image_pixels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[media] {name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.min_duration_s < self.max_duration_s:
            raise ConfigError(
                f"[media] need 0 <= min_duration_s < max_duration_s, got "
                f"{self.min_duration_s} and {self.max_duration_s}"
            )
        if self.target_fps is not None and not self.target_fps > 0:
            raise ConfigError(f"[media] target_fps must be > 0 or unset, got {self.target_fps}")
        if self.max_frame_side is not None and self.max_frame_side < 16:
            raise ConfigError(f"[media] max_frame_side must be >= 16, got {self.max_frame_side}")
        if self.decode_threads < 0:
            raise ConfigError(f"[media] decode_threads must be >= 0, got {self.decode_threads}")
        if not self.folder_fps > 0:
            raise ConfigError(f"[media] folder_fps must be > 0, got {self.folder_fps}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeConfig:
    """Spoken-digit challenges (liveness.challenge)."""

    length: int = 6
    ttl_s: float = 120.0
    max_run: int = 2  # no more than this many identical digits in a row
    algorithm: str = "HS256"  # "HS256" (HMAC-SHA256, shared server key) or "EdDSA"
    nonce_store: str | None = None  # SQLite path for consumed nonces; None = in memory

    def __post_init__(self) -> None:
        # 4..8: fewer digits are guessable, more are hard to read in one breath. (An explicit
        # ChallengeAuthority.issue(length=...) may ask for 1..8, e.g. for single-digit tests.)
        if not 4 <= self.length <= 8:
            raise ConfigError(f"[challenge] length must be 4..8, got {self.length}")
        if not self.ttl_s > 0:
            raise ConfigError(f"[challenge] ttl_s must be > 0, got {self.ttl_s}")
        if self.max_run < 1:
            raise ConfigError(f"[challenge] max_run must be >= 1, got {self.max_run}")
        if self.algorithm not in ("HS256", "EdDSA"):
            raise ConfigError(
                f"[challenge] algorithm must be 'HS256' or 'EdDSA', got {self.algorithm!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    """Where converted models live (liveness.models). None = the user's cache dir."""

    cache_dir: str | None = None
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    # numpy's BLAS thread pool, set for the whole process when an Engine starts (threadpoolctl;
    # None leaves it alone). Its idle threads spin: a 5 s clip's speech stage used 0.22 s of CPU
    # for 0.11 s of wall time with the default pool and 0.12 / 0.12 s with one thread, and every
    # stage of the engine already runs one thread per task.
    blas_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.blas_threads is not None and self.blas_threads < 1:
            raise ConfigError(
                f"[models] blas_threads must be >= 1 or unset, got {self.blas_threads}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class FaceConfig:
    """Detection, tracking, quality and matching (liveness.inference.detector, checks.match)."""

    # --- detection, tracking, quality (owner: detector/tracker) ---
    # min face width as a fraction of the shorter frame side. Measured on ../shared/data/faces:
    # 0.12 misses Biden (0.119) in group_obama_and_biden; 0.06 adds false faces in obama_1/partial
    min_face_frac: float = 0.08
    detect_max_side: int = 640  # detect on a copy downscaled to this longest side
    best_k: int = 3
    # MTCNN's published P/R/O-Net thresholds and pyramid step (Zhang et al. 2016; ipazc/mtcnn)
    stage_thresholds: tuple[float, ...] = (0.6, 0.7, 0.7)
    pyramid_factor: float = 0.709
    refine_threshold: float = 0.7  # O-Net score to keep a tracked face between full detections
    detect_every: int = 5  # full detection on every n-th frame of a clip, O-Net refinement between
    # full detection every this much clip time when timestamps are known (tracker), O-Net between:
    # 0.5 s is detect_every=5 at the 10 fps the tracker was measured at; None = every n-th frame
    detect_interval_s: float | None = 0.5
    multiple_faces_min_frames: int = 2  # a 2nd face must be seen on this many full detections
    max_lost_frac: float = 0.2  # FACE_LOST when the face is missing from more of the frames
    identity_frames: int = 4  # spaced frames embedded (with the best K) for FACE_CHANGED
    # quality (liveness/checks/quality.py), measured on ../shared/data (grid at 10 fps, faces/):
    # face luma: GRID 139-149, photos 74-168, a GRID frame darkened x0.25: 34-38
    min_brightness: float = 50.0  # TOO_DARK below this median face luma (0..255)
    # Laplacian variance on a 112-px face: GRID (MPEG-1) 12.9-29.4, photos 44-663, a GRID frame
    # after a Gaussian blur of sigma 2: 3.1-3.4
    min_sharpness: float = 7.0  # LOW_QUALITY when no frame is this sharp (and frontal, large)
    max_yaw: float = 0.35  # |nose offset| / eye distance; GRID <= 0.08, photos <= 0.29
    reference_dominance: float = 2.0  # reference photo: largest face this many times wider wins
    # --- embedding & match (owner: embedder) ---
    # Euclidean distance on the dlib embedding. 0.6 is dlib's published operating point; on the
    # shared data it passes every genuine pair and no impostor (models/README.md, "Face match").
    match_threshold: float = 0.6
    match_aggregate: str = "median"  # over the best K frames: median | min | mean | max
    # identity continuity along a track (FACE_CHANGED): segment centroids vs the first segment
    change_threshold: float = 0.6  # same scale as match_threshold; see checks.match
    change_window: int = 3  # frames per segment


@dataclass(frozen=True, slots=True, kw_only=True)
class AntiSpoofConfig:
    """Passive anti-spoofing (liveness.inference.antispoof, checks.spoof, stages.spoof).

    Thresholds measured on ../shared/data (GRID clips live; print and screen attacks that
    tests/integration/test_antispoof_attacks.py renders from faces/*.jpg); see models/README.md.
    """

    live_threshold: float = 0.5  # MiniFASNet ensemble P(real); upstream's argmax is ~0.5
    frames: int = 8  # well-spaced face frames scored by the model per clip (one batch)
    trim: float = 0.2  # trimmed mean of the per-frame model scores (drops >=1 low and high)
    min_frames: int = 3  # fewer usable face frames: LOW_QUALITY, no passive verdict
    min_face_px: float = 40.0  # faces narrower than this (pixels) are not scored
    min_face_score: float = 0.9  # detector confidence needed for a frame to be used
    # cues (liveness.checks.spoof); measured: GRID live vs. synthetic print / screen attacks
    moire_threshold: float = 6.0  # dB; GRID 2.3-4.4, prints 2.6-4.6, screens 7.6-12.1
    still_threshold: float = 0.4  # % face width; GRID 0.53-2.62, prints 0.17-0.24
    planar_threshold: float = 0.8  # ring fraction; GRID 0-0.70, prints 0.84-1.0, screens <=0.24
    border_threshold: float = 0.75  # sides framed; GRID 0-0.25, prints/screens 0.375-1.0
    gamut_threshold: float = 0.5  # 0..1; GRID 0.32-0.47, attacks 0.21-0.63 (weak cue)
    motion_gap_s: float = 0.3  # frame pairs this far apart for the motion cues
    min_motion_px: float = 1.0  # planar cue judges only pairs where the face moved this much
    strong_cues: tuple[str, ...] = ("moire", "still_image", "planar_motion")  # fire alone
    weak_cues_needed: int = 2  # other cues fire only this many together


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechConfig:
    """Spoken-digit verification (liveness.inference.speech, checks.speech)."""

    language: str = "en"  # "en" or "zh"
    backend: str = "whisper"  # "whisper" or "vosk"
    whisper_model: str | None = None  # path; None = the model installed from PyPI for the language
    vosk_model: str | None = None  # path to a vosk model folder
    contiguous: bool = True  # the digits must be read in one run, exactly
    # --- owner: speech (liveness.inference.speech, checks.speech) ---
    vosk_language: str | None = None  # language of vosk_model; None = `language`
    margin: float = 0.5  # nats the expected digit must beat any other digit/end at every position
    window_s: float = 10.0  # min Whisper encoder window (s); shorter reads badly (README: Whisper)
    max_new_tokens: int = 48  # bound on free transcription, so a bad clip cannot loop
    whisper_compute_type: str = "int8"  # CTranslate2 compute type
    threads: int = 1  # CTranslate2 intra_threads (1 is fastest per clip on small machines)
    min_speech_s: float = 0.3  # less voiced audio than this is NO_SPEECH


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncConfig:
    """Lip-sync between mouth movement and speech (liveness.checks.sync)."""

    max_lag_s: float = 0.2  # the correlation peak must lie within this lag (issue 7: +-200 ms)
    # normalised correlation at the best near-zero lag: 0.1 below the weakest of the 9 GRID true
    # pairs (0.55 with the F2-band envelope), the same margin the earlier 0.3 kept below 0.40
    # with the 250-3500 Hz envelope (docs/engine.md, lip-sync)
    min_score: float = 0.45
    # speech envelope band: the second-formant region, where lip area follows the acoustic
    # envelope more closely than in the F1 region or the wide band (Grant & Seitz 2000, bands
    # F1 100-800, F2 800-2200, F3 2200-6500 Hz); fixed from that, not fitted to GRID
    envelope_low_hz: float = 800.0
    envelope_high_hz: float = 2200.0
    search_lag_s: float = 1.2  # lags searched either way for the global peak
    lag_step_s: float = 0.02
    detrend_s: float = 0.4  # moving-average window removed from both signals before correlating
    lag_tolerance: float = 0.02  # a far peak fails only when it beats the near one by this much
    min_digit_motion: float = 0.02  # mouth-signal range (dark fraction) inside each digit
    digit_pad_s: float = 0.1  # widen each digit's span by this much either side
    min_frames: int = 8  # fewer frames with a face: the check cannot be made
    # the engine decodes video at up to this rate for lip-sync: on GRID the true-vs-swapped-audio
    # AUC was 0.94 at 25 fps and 0.89 at 12.5 fps (docs/engine.md)
    video_fps: float = 25.0

    def __post_init__(self) -> None:
        if not 0 < self.envelope_low_hz < self.envelope_high_hz:
            raise ConfigError(
                f"[sync] need 0 < envelope_low_hz < envelope_high_hz, got "
                f"{self.envelope_low_hz} and {self.envelope_high_hz}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionConfig:
    """Which reasons are fatal (FAIL) and which ask for a new recording (RETRY).

    See liveness.checks.decide: no reason -> PASS; only retry reasons -> RETRY; else FAIL.
    """

    # capture problems the person can fix by recording again
    retry_reasons: tuple[str, ...] = (
        "NO_FACE",
        "FACE_LOST",
        "LOW_QUALITY",
        "TOO_DARK",
        "NO_SPEECH",
    )
    # never waived, reported first: the challenge or the attempt budget cannot be trusted
    fatal_reasons: tuple[str, ...] = (
        "CHALLENGE_INVALID",
        "CHALLENGE_EXPIRED",
        "CHALLENGE_REUSED",
        "CHALLENGE_SUBJECT_MISMATCH",
        "TOO_MANY_ATTEMPTS",
    )
    # recorded in the decision but not blocking a PASS (empty: every check must pass)
    advisory_reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordConfig:
    """Signed records, their store and attempt limiting (liveness.records)."""

    db_path: str | None = None  # SQLite file; None = records.db in the user's data dir
    # A PASS stays valid this many calendar months: the yearly certification cycle.
    validity_months: int = 12
    # GB/T 38671 attempt limiting: at most max_failures failed attempts per subject within
    # failure_window_s, then a lock of lock_s. Defaults: 5 in 3 minutes (issue 6), 10 min lock.
    max_failures: int = 5
    failure_window_s: float = 180.0
    lock_s: float = 600.0
    failure_verdicts: tuple[str, ...] = ("FAIL", "RETRY")  # what counts as a failed attempt
    busy_timeout_s: float = 30.0  # how long a writer waits for another one's transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class FamilyConfig:
    """Family-account rules (liveness.family). Defaults are the e-card guide's."""

    total_slots: int = 10
    max_parents: int = 4
    max_children: int = 3
    max_spouses: int = 1
    max_others: int = 2
    minor_age: int = 16
    # An adult's in-person face verification (a PASS record) must be this recent when binding.
    face_verification_max_age_s: float = 900.0
    max_photo_bytes: int = 20 * 1024 * 1024  # 1-inch / card photo kept as the member's reference


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """All settings of one engine. Frozen: make a new one with ``dataclasses.replace``."""

    media: MediaConfig = field(default_factory=MediaConfig)
    challenge: ChallengeConfig = field(default_factory=ChallengeConfig)
    models: ModelConfig = field(default_factory=ModelConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    antispoof: AntiSpoofConfig = field(default_factory=AntiSpoofConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    records: RecordConfig = field(default_factory=RecordConfig)
    family: FamilyConfig = field(default_factory=FamilyConfig)

    @classmethod
    def defaults(cls) -> Config:
        return cls()

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Config:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Config:
        return _build(cls, raw, "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of every setting (recorded in each decision)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _build(cls: type[T], raw: Any, where: str) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(f"config section [{where or 'root'}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{where}.{key}" if where else key
        if key not in known:
            raise ConfigError(
                f"unknown config key {name!r}",
                hint=f"known keys here: {', '.join(sorted(known))}",
            )
        typ = hints[key]
        if dataclasses.is_dataclass(typ):
            kwargs[key] = _build(typ, value, name)  # type: ignore[arg-type]
        else:
            kwargs[key] = _coerce(typ, value, name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid config [{where or 'root'}]: {exc}") from None


def _coerce(typ: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, name)
            except ConfigError:
                continue
        raise ConfigError(f"config key {name!r}: {value!r} is not a {typ}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {name!r} must be a list")
        return tuple(_coerce(args[0], v, name) for v in value)
    if typ is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if typ in (int, str, bool) and type(value) is typ:
        return value
    expected = getattr(typ, "__name__", typ)
    raise ConfigError(f"config key {name!r}: expected {expected}, got {value!r}")
