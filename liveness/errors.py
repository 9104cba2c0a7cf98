"""The exception tree of the engine.

Raise only when no decision is possible (unreadable media, missing model, broken store, a
challenge that cannot be trusted). A rejected certification is a normal ``Decision``, not an
exception. Every error says what was wrong (``str(err)``) and what to do (``err.hint``)::

    LivenessError
    ├── ConfigError                 a config value or file is invalid
    ├── MediaError                  a clip or photo cannot be used
    │   ├── MediaNotFoundError      the path does not exist
    │   ├── EmptyMediaError         zero bytes
    │   ├── UnsupportedMediaError   not a container / image format we read
    │   ├── CorruptMediaError       truncated or undecodable data
    │   ├── MissingStreamError      no audio or no video stream
    │   └── MediaLimitError         too large, too long, too short, too many pixels
    ├── ModelError                  a model file is missing, altered or unreadable
    │   ├── ModelMissingError
    │   ├── ModelIntegrityError     sha256 does not match the manifest
    │   └── UnsafeModelError        a weights file tries to run code
    ├── ChallengeError              a challenge token cannot be accepted
    │   ├── ChallengeInvalidError   malformed, forged or altered
    │   ├── ChallengeExpiredError
    │   ├── ChallengeReusedError    its nonce was already consumed
    │   └── ChallengeSubjectError   bound to another subject
    ├── RecordError                 the record store or a signature is broken
    │   ├── RecordIntegrityError    a signature or the hash chain does not verify
    │   └── SigningKeyError         a signing key is missing or unusable
    └── FamilyError                 a family-account rule forbids the operation
"""

from __future__ import annotations

__all__ = [
    "ChallengeError",
    "ChallengeExpiredError",
    "ChallengeInvalidError",
    "ChallengeReusedError",
    "ChallengeSubjectError",
    "ConfigError",
    "CorruptMediaError",
    "EmptyMediaError",
    "FamilyError",
    "LivenessError",
    "MediaError",
    "MediaLimitError",
    "MediaNotFoundError",
    "MissingStreamError",
    "ModelError",
    "ModelIntegrityError",
    "ModelMissingError",
    "RecordError",
    "RecordIntegrityError",
    "SigningKeyError",
    "UnsafeModelError",
    "UnsupportedMediaError",
]


class LivenessError(Exception):
    """Root of every error the engine raises on purpose.

    ``str(err)`` says what was wrong; ``err.hint`` says what the caller can do about it.
    ``err.code`` is a stable machine-readable name (the class name in snake case by default).
    """

    default_hint = "See the message for details."

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint

    @property
    def code(self) -> str:
        name = type(self).__name__.removesuffix("Error") or "Liveness"
        out = []
        for i, ch in enumerate(name):
            if ch.isupper() and i:
                out.append("_")
            out.append(ch.lower())
        return "".join(out)

    def diagnostics(self) -> str:
        """Message and hint, formatted for a log line or a CLI."""
        return f"{self.message}\n  hint: {self.hint}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigError(LivenessError):
    default_hint = "Fix the named config key; `liveness config show` prints the defaults."


class MediaError(LivenessError):
    default_hint = "Check the file is a complete recording or photo in a supported format."


class MediaNotFoundError(MediaError):
    default_hint = "Check the path; it must point to an existing file or frames folder."


class EmptyMediaError(MediaError):
    default_hint = "The upload is empty; ask the client to record and upload again."


class UnsupportedMediaError(MediaError):
    default_hint = (
        "Send MP4/MOV (H.264/HEVC + AAC), WebM (VP8/VP9 + Opus), MPEG-1/2, AVI, or a folder of "
        "frames plus a WAV; photos as JPEG, PNG or WebP."
    )


class CorruptMediaError(MediaError):
    default_hint = "The file is truncated or damaged; ask the client to upload it again."


class MissingStreamError(MediaError):
    default_hint = "Certification needs both the camera (video) and the microphone (audio)."


class MediaLimitError(MediaError):
    default_hint = "Record again within the configured limits (see config [media])."


class ModelError(LivenessError):
    default_hint = "Run `liveness models build` (and `liveness models list` to check)."


class ModelMissingError(ModelError):
    pass


class ModelIntegrityError(ModelError):
    default_hint = (
        "The model file differs from its manifest; rebuild it with `liveness models build --force`."
    )


class UnsafeModelError(ModelError):
    default_hint = "Only load weights from a trusted source; this file was refused unexecuted."


class ChallengeError(LivenessError):
    default_hint = "Issue a new challenge and record again."


class ChallengeInvalidError(ChallengeError):
    default_hint = "The token was altered, forged or signed with another key; issue a new one."


class ChallengeExpiredError(ChallengeError):
    pass


class ChallengeReusedError(ChallengeError):
    default_hint = "Each challenge is single-use; issue a new challenge for every attempt."


class ChallengeSubjectError(ChallengeError):
    default_hint = "The challenge was issued to another person; issue one for this subject."


class RecordError(LivenessError):
    default_hint = "Check the record store path and keys; run `liveness records verify`."


class RecordIntegrityError(RecordError):
    default_hint = "The store or record was altered; restore it from a verified backup."


class SigningKeyError(RecordError):
    default_hint = "Provide a valid Ed25519 private key (PEM file or environment variable)."


class FamilyError(LivenessError):
    default_hint = "See the family-account rules in the README."
