"""liveness: an offline face-liveness certification engine.

The public API is what ``__all__`` lists; everything else is private. Heavy modules (ONNX
Runtime, CTranslate2, PyAV) load on first use of a name that needs them, so ``import liveness``
stays cheap for a backend that only verifies records or issues challenges.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from liveness.config import (
    AntiSpoofConfig,
    ChallengeConfig,
    Config,
    DecisionConfig,
    FaceConfig,
    FamilyConfig,
    MediaConfig,
    ModelConfig,
    RecordConfig,
    SpeechConfig,
    SyncConfig,
)
from liveness.errors import (
    ChallengeError,
    ChallengeExpiredError,
    ChallengeInvalidError,
    ChallengeReusedError,
    ChallengeSubjectError,
    ConfigError,
    CorruptMediaError,
    EmptyMediaError,
    FamilyError,
    LivenessError,
    MediaError,
    MediaLimitError,
    MediaNotFoundError,
    MissingStreamError,
    ModelError,
    ModelIntegrityError,
    ModelMissingError,
    RecordError,
    RecordIntegrityError,
    SigningKeyError,
    UnsafeModelError,
    UnsupportedMediaError,
)
from liveness.results import Decision, DigitTiming, Reason, Score, Verdict

__version__ = "0.1.0"

# name -> module that defines it, imported on first access
_LAZY: dict[str, str] = {
    "Engine": "liveness.engine",
    "Challenge": "liveness.challenge",
    "ChallengeAuthority": "liveness.challenge",
    "MemoryNonceStore": "liveness.challenge",
    "NonceStore": "liveness.challenge",
    "SQLiteNonceStore": "liveness.challenge",
    "Clip": "liveness.media",
    "ClipInfo": "liveness.media",
    "open_clip": "liveness.media",
    "probe": "liveness.media",
    "read_image": "liveness.media",
    "AttemptLimiter": "liveness.records",
    "CertRecord": "liveness.records",
    "InclusionProof": "liveness.records",
    "Lock": "liveness.records",
    "RecordStore": "liveness.records",
    "SigningKeys": "liveness.records",
    "TreeHead": "liveness.records",
    "VerifyReport": "liveness.records",
    "load_jwks": "liveness.records",
    "Binding": "liveness.family",
    "FamilyAccounts": "liveness.family",
    "FamilyRefused": "liveness.family",
    "ProxyCertifier": "liveness.family",
    "ProxyOutcome": "liveness.family",
    "ProxyRefusal": "liveness.family",
    "Relation": "liveness.family",
    "FaceStage": "liveness.stages.face",
    "PassiveStage": "liveness.stages.spoof",
    "SpeechStage": "liveness.stages.speech",
}

if TYPE_CHECKING:
    from liveness.challenge import (
        Challenge,
        ChallengeAuthority,
        MemoryNonceStore,
        NonceStore,
        SQLiteNonceStore,
    )
    from liveness.engine import Engine
    from liveness.family import (
        Binding,
        FamilyAccounts,
        FamilyRefused,
        ProxyCertifier,
        ProxyOutcome,
        ProxyRefusal,
        Relation,
    )
    from liveness.media import Clip, ClipInfo, open_clip, probe, read_image
    from liveness.records import (
        AttemptLimiter,
        CertRecord,
        InclusionProof,
        Lock,
        RecordStore,
        SigningKeys,
        TreeHead,
        VerifyReport,
        load_jwks,
    )
    from liveness.stages.face import FaceStage
    from liveness.stages.speech import SpeechStage
    from liveness.stages.spoof import PassiveStage


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'liveness' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AntiSpoofConfig",
    "AttemptLimiter",
    "Binding",
    "CertRecord",
    "Challenge",
    "ChallengeAuthority",
    "ChallengeConfig",
    "ChallengeError",
    "ChallengeExpiredError",
    "ChallengeInvalidError",
    "ChallengeReusedError",
    "ChallengeSubjectError",
    "Clip",
    "ClipInfo",
    "Config",
    "ConfigError",
    "CorruptMediaError",
    "Decision",
    "DecisionConfig",
    "DigitTiming",
    "EmptyMediaError",
    "Engine",
    "FaceConfig",
    "FaceStage",
    "FamilyAccounts",
    "FamilyConfig",
    "FamilyError",
    "FamilyRefused",
    "InclusionProof",
    "LivenessError",
    "Lock",
    "MediaConfig",
    "MediaError",
    "MediaLimitError",
    "MediaNotFoundError",
    "MemoryNonceStore",
    "MissingStreamError",
    "ModelConfig",
    "ModelError",
    "ModelIntegrityError",
    "ModelMissingError",
    "NonceStore",
    "PassiveStage",
    "ProxyCertifier",
    "ProxyOutcome",
    "ProxyRefusal",
    "Reason",
    "RecordConfig",
    "RecordError",
    "RecordIntegrityError",
    "RecordStore",
    "Relation",
    "SQLiteNonceStore",
    "Score",
    "SigningKeyError",
    "SigningKeys",
    "SpeechConfig",
    "SpeechStage",
    "SyncConfig",
    "TreeHead",
    "UnsafeModelError",
    "UnsupportedMediaError",
    "Verdict",
    "VerifyReport",
    "__version__",
    "load_jwks",
    "open_clip",
    "probe",
    "read_image",
]
