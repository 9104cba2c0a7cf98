"""Single-use spoken-digit challenges: issue, hand to the phone, verify once.

A challenge is a short string of random digits (``secrets``, the OS CSPRNG) bound to a subject
id, a nonce and an expiry. Its token is self-verifying, so the backend keeps no state until the
clip comes back::

    token = base64url(payload) "." base64url(signature)
    payload = canonical JSON {"v": 1, "alg": "HS256" | "EdDSA", "sub", "d", "n", "iat", "exp"}
    signature = HMAC-SHA256(key, "liveness-challenge." + base64url(payload))   (HS256)
              | Ed25519(key, "liveness-challenge." + base64url(payload))        (EdDSA)

Verification checks, in order: the token's shape and signature (ChallengeInvalidError), its
expiry (ChallengeExpiredError), the subject (ChallengeSubjectError), and finally consumes the
nonce in the store (ChallengeReusedError if it was consumed before). Base64 is decoded strictly
(re-encoding must give back the same text), so no two token strings verify as the same challenge.

Keys: HS256 takes the shared secret as bytes (at least 16; 32 random bytes recommended). EdDSA
takes an ``Ed25519PrivateKey`` (issue and verify) or an ``Ed25519PublicKey`` (verify only), or the
32-byte raw private key as bytes when ``ChallengeConfig.algorithm = "EdDSA"``.
``ChallengeAuthority.from_env()`` reads the key from ``LIVENESS_CHALLENGE_KEY``: ``hex:...``,
``base64:...``, a PEM Ed25519 private key, or bare hex (else base64). The key never appears in
``repr``, ``str``, errors or logs, and an authority refuses to be pickled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from liveness.config import ChallengeConfig
from liveness.errors import (
    ChallengeError,
    ChallengeExpiredError,
    ChallengeInvalidError,
    ChallengeReusedError,
    ChallengeSubjectError,
    ConfigError,
)

__all__ = [
    "ENV_KEY",
    "Challenge",
    "ChallengeAuthority",
    "MemoryNonceStore",
    "NonceStore",
    "SQLiteNonceStore",
    "is_readable",
]

ENV_KEY = "LIVENESS_CHALLENGE_KEY"
_DOMAIN = b"liveness-challenge."
_VERSION = 1
_MIN_HMAC_KEY = 16
_MAX_SUBJECT = 256
_MAX_TOKEN = 4096
# An issue time this far in the future means a token from a clock we do not trust.
_FUTURE_LEEWAY_S = 300.0
# Nonces are pruned only this long after their expiry, so processes whose clocks differ a little
# never prune a nonce another still considers live.
_PRUNE_GRACE_S = 3600.0
_B64_RE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """An issued (or verified) challenge. ``token`` is what the phone gets and gives back."""

    digits: str
    subject_id: str
    nonce: str
    issued_at: float
    expires_at: float
    token: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "digits": self.digits,
            "subject_id": self.subject_id,
            "nonce": self.nonce,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "token": self.token,
        }


def is_readable(digits: str, max_run: int = 2) -> bool:
    """True if ``digits`` are all digits and no digit repeats more than ``max_run`` times in a row
    (people do not read "7777" at an even pace, so the speech timing check cannot use it)."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    run = 1
    for prev, cur in zip(digits, digits[1:], strict=False):
        run = run + 1 if cur == prev else 1
        if run > max_run:
            return False
    return True


# --------------------------------------------------------------------------- nonce stores


@runtime_checkable
class NonceStore(Protocol):
    """Remembers consumed nonces until they expire."""

    def consume(self, nonce: str, expires_at: float, now: float) -> bool:
        """Record ``nonce``; True if it was not consumed before (atomic), False if it was."""
        ...


class MemoryNonceStore:
    """In-process store (the default): safe across threads, forgotten when the process ends."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def consume(self, nonce: str, expires_at: float, now: float) -> bool:
        with self._lock:
            if now >= self._next_prune:
                cutoff = now - _PRUNE_GRACE_S
                self._seen = {n: e for n, e in self._seen.items() if e >= cutoff}
                self._next_prune = now + 60.0
            if nonce in self._seen:
                return False
            self._seen[nonce] = expires_at
            return True

    def __len__(self) -> int:
        return len(self._seen)

    def __repr__(self) -> str:
        return f"MemoryNonceStore({len(self._seen)} nonces)"


class SQLiteNonceStore:
    """A file store shared by threads and processes: one atomic INSERT per consumption.

    The nonce is the primary key, so of any number of racing consumers exactly one INSERT
    succeeds. Each call opens its own connection (WAL journal, busy timeout), so the store is
    safe to share between threads and to fork.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._timeout = timeout_s
        self._next_prune = 0.0
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS consumed_nonce ("
                    " nonce TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID"
                )
                db.execute(
                    "CREATE INDEX IF NOT EXISTS consumed_nonce_exp ON consumed_nonce(expires_at)"
                )
        except (sqlite3.Error, OSError) as exc:
            raise ChallengeError(
                f"nonce store {self.path} cannot be opened: {exc}",
                hint="Point [challenge] nonce_store at a writable SQLite file path.",
            ) from None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)

    def consume(self, nonce: str, expires_at: float, now: float) -> bool:
        try:
            with closing(self._connect()) as db:
                if now >= self._next_prune:
                    db.execute(
                        "DELETE FROM consumed_nonce WHERE expires_at < ?", (now - _PRUNE_GRACE_S,)
                    )
                    self._next_prune = now + 60.0
                try:
                    db.execute(
                        "INSERT INTO consumed_nonce (nonce, expires_at) VALUES (?, ?)",
                        (nonce, float(expires_at)),
                    )
                except sqlite3.IntegrityError:
                    return False
                return True
        except sqlite3.Error as exc:
            raise ChallengeError(
                f"nonce store {self.path} failed: {exc}",
                hint="Check the SQLite file is writable and not corrupted; the token was not used.",
            ) from None

    def __repr__(self) -> str:
        return f"SQLiteNonceStore({str(self.path)!r})"


# --------------------------------------------------------------------------- tokens


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d_strict(text: str) -> bytes:
    """Decode unpadded base64url; reject anything that does not re-encode to the same text."""
    if not _B64_RE.fullmatch(text):
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if _b64e(raw) != text:
        raise ValueError("non-canonical base64url")
    return raw


def _canonical(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class ChallengeAuthority:
    """Issues and verifies challenges with one key, one nonce store and one clock."""

    __slots__ = ("_alg", "_clock", "_hmac_key", "_key_id", "_private", "_public", "cfg", "store")

    def __init__(
        self,
        key: bytes | Ed25519PrivateKey | Ed25519PublicKey,
        *,
        cfg: ChallengeConfig | None = None,
        store: NonceStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg or ChallengeConfig()
        self._clock = clock
        self._hmac_key: bytes | None = None
        self._private: Ed25519PrivateKey | None = None
        self._public: Ed25519PublicKey | None = None
        if isinstance(key, Ed25519PrivateKey):
            self._alg, self._private, self._public = "EdDSA", key, key.public_key()
        elif isinstance(key, Ed25519PublicKey):
            self._alg, self._public = "EdDSA", key
        elif isinstance(key, bytes | bytearray):
            if self.cfg.algorithm == "EdDSA":
                if len(key) != 32:
                    raise ConfigError(
                        "an EdDSA challenge key given as bytes must be the 32-byte raw private key",
                        hint="Generate one with Ed25519PrivateKey.generate().private_bytes_raw().",
                    )
                self._alg = "EdDSA"
                self._private = Ed25519PrivateKey.from_private_bytes(bytes(key))
                self._public = self._private.public_key()
            else:
                if len(key) < _MIN_HMAC_KEY:
                    raise ConfigError(
                        f"the HS256 challenge key is {len(key)} bytes; at least "
                        f"{_MIN_HMAC_KEY} are needed",
                        hint="Use 32 random bytes, e.g. `python -c 'import secrets; "
                        "print(secrets.token_hex(32))'`.",
                    )
                self._alg, self._hmac_key = "HS256", bytes(key)
        else:
            raise TypeError(f"unsupported challenge key type {type(key).__name__}")
        self._key_id = self._fingerprint()
        if store is None:
            store = (
                SQLiteNonceStore(self.cfg.nonce_store)
                if self.cfg.nonce_store
                else MemoryNonceStore()
            )
        self.store = store

    # -- construction helpers -------------------------------------------------------------

    @classmethod
    def from_env(
        cls,
        var: str = ENV_KEY,
        *,
        cfg: ChallengeConfig | None = None,
        store: NonceStore | None = None,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> ChallengeAuthority:
        """Build from the key in environment variable ``var`` (see the module docstring)."""
        env = os.environ if environ is None else environ
        value = env.get(var, "").strip()
        if not value:
            raise ConfigError(
                f"no challenge key: the environment variable {var} is not set",
                hint=f"Set {var} to a key, e.g. hex: followed by 32 random bytes in hex "
                "(`python -c 'import secrets; print(secrets.token_hex(32))'`).",
            )
        return cls(parse_key(value, var=var), cfg=cfg, store=store, clock=clock)

    # -- public API -------------------------------------------------------------------------

    @property
    def algorithm(self) -> str:
        return self._alg

    @property
    def key_id(self) -> str:
        """A short fingerprint of the (public) key: safe to log, useless to forge with."""
        return self._key_id

    def issue(self, subject_id: str, *, length: int | None = None) -> Challenge:
        """A fresh challenge for ``subject_id``: ``length`` digits (default ``cfg.length``;
        1..8 when given explicitly) with no digit repeated more than ``cfg.max_run`` times."""
        if self._alg == "EdDSA" and self._private is None:
            raise ConfigError(
                "this challenge authority holds only a public key; it can verify, not issue",
                hint="Give the Ed25519 private key to the service that issues challenges.",
            )
        _check_subject(subject_id)
        n = self.cfg.length if length is None else length
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 8:
            raise ValueError(f"challenge length must be an int from 1 to 8, got {n!r}")
        digits = _random_digits(n, self.cfg.max_run)
        now = float(self._clock())
        payload = {
            "v": _VERSION,
            "alg": self._alg,
            "sub": subject_id,
            "d": digits,
            "n": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + float(self.cfg.ttl_s),
        }
        body = _b64e(_canonical(payload))
        token = f"{body}.{_b64e(self._sign(body.encode('ascii')))}"
        return _challenge(payload, token)

    def verify(
        self, token: str, *, subject_id: str | None = None, consume: bool = True
    ) -> Challenge:
        """Check ``token`` and (by default) consume it. See the module docstring for the order."""
        challenge = self.decode(token)
        now = float(self._clock())
        if now >= challenge.expires_at:
            raise ChallengeExpiredError(
                f"the challenge expired {now - challenge.expires_at:.0f} s ago "
                f"(it was valid for {challenge.expires_at - challenge.issued_at:.0f} s)",
                hint="Issue a new challenge and record again promptly.",
            )
        if challenge.issued_at > now + _FUTURE_LEEWAY_S:
            raise ChallengeInvalidError(
                "the challenge claims to be issued in the future; clocks disagree",
                hint="Check the issuing server's clock, then issue a new challenge.",
            )
        if subject_id is not None and not hmac.compare_digest(
            challenge.subject_id.encode(), subject_id.encode()
        ):
            raise ChallengeSubjectError(
                "the challenge was issued to another subject than the one being certified"
            )
        if consume and not self.store.consume(challenge.nonce, challenge.expires_at, now):
            raise ChallengeReusedError("this challenge was already used once")
        return challenge

    def decode(self, token: str) -> Challenge:
        """Check the signature and shape only (no expiry, subject or nonce check)."""
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            raise ChallengeInvalidError("the challenge token is empty, too long or not text")
        parts = token.split(".")
        if len(parts) != 2:
            raise ChallengeInvalidError("the challenge token is malformed (expected 2 parts)")
        body, sig_text = parts
        try:
            sig = _b64d_strict(sig_text)
            raw = _b64d_strict(body)
        except ValueError:
            raise ChallengeInvalidError("the challenge token is not valid base64url") from None
        if not self._check(body.encode("ascii"), sig):
            raise ChallengeInvalidError(
                "the challenge token's signature does not verify (altered, forged, or signed "
                "with another key)"
            )
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise ChallengeInvalidError("the challenge token's payload is not JSON") from None
        return _challenge_from(payload, token, self._alg)

    # -- internals --------------------------------------------------------------------------

    def _sign(self, msg: bytes) -> bytes:
        if self._hmac_key is not None:
            return hmac.new(self._hmac_key, _DOMAIN + msg, hashlib.sha256).digest()
        if self._private is None:  # issue() checked; keeps the type checker honest
            raise ConfigError("no private key to sign with")
        return self._private.sign(_DOMAIN + msg)

    def _check(self, msg: bytes, sig: bytes) -> bool:
        if self._hmac_key is not None:
            expected = hmac.new(self._hmac_key, _DOMAIN + msg, hashlib.sha256).digest()
            return hmac.compare_digest(expected, sig)
        if self._public is None:
            return False
        try:
            self._public.verify(sig, _DOMAIN + msg)
        except InvalidSignature:
            return False
        return True

    def _fingerprint(self) -> str:
        if self._public is not None:
            material = self._public.public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        else:
            # A hash of an HMAC of a constant: identifies the key without exposing it.
            material = hmac.new(self._hmac_key or b"", b"key-id", hashlib.sha256).digest()
        return hashlib.sha256(material).hexdigest()[:12]

    def __repr__(self) -> str:
        return (
            f"ChallengeAuthority(alg={self._alg!r}, key_id={self._key_id!r}, store={self.store!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a ChallengeAuthority holds a secret key and cannot be pickled")


def parse_key(value: str, *, var: str = ENV_KEY) -> bytes | Ed25519PrivateKey:
    """A key from text: ``hex:...``, ``base64:...``, a PEM Ed25519 private key, bare hex or base64.

    The value is never echoed back in an error.
    """
    value = value.strip()
    try:
        if value.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(value.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigError(f"{var} holds a PEM key that is not Ed25519")
            return key
        if value.startswith("hex:"):
            return bytes.fromhex(value[4:])
        if value.startswith("base64:"):
            return _b64_any(value[7:])
        if len(value) % 2 == 0 and re.fullmatch(r"[0-9a-fA-F]+", value):
            return bytes.fromhex(value)
        return _b64_any(value)
    except ConfigError:
        raise
    except (ValueError, binascii.Error, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{var} is not a usable key (expected hex:..., base64:..., or an Ed25519 PEM)",
            hint="Generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`.",
        ) from None


def _b64_any(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    text = text.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _check_subject(subject_id: str) -> None:
    if not isinstance(subject_id, str) or not subject_id.strip():
        raise ValueError("subject_id must be a non-empty string")
    if len(subject_id) > _MAX_SUBJECT or any(ord(c) < 32 for c in subject_id):
        raise ValueError(f"subject_id must be at most {_MAX_SUBJECT} printable characters")


def _random_digits(n: int, max_run: int) -> str:
    """Uniform over the readable strings of length ``n``: draw whole strings, reject bad ones."""
    while True:
        digits = "".join(str(secrets.randbelow(10)) for _ in range(n))
        if is_readable(digits, max_run):
            return digits


def _challenge(payload: Mapping[str, Any], token: str) -> Challenge:
    return Challenge(
        digits=payload["d"],
        subject_id=payload["sub"],
        nonce=payload["n"],
        issued_at=float(payload["iat"]),
        expires_at=float(payload["exp"]),
        token=token,
    )


def _challenge_from(payload: Any, token: str, alg: str) -> Challenge:
    """Validate a signed payload's fields (a valid signature does not make a payload sane)."""
    ok = (
        isinstance(payload, dict)
        and set(payload) == {"v", "alg", "sub", "d", "n", "iat", "exp"}
        and payload["v"] == _VERSION
        and payload["alg"] == alg
        and isinstance(payload["sub"], str)
        and isinstance(payload["n"], str)
        and len(payload["n"]) >= 16
        and isinstance(payload["d"], str)
        and 1 <= len(payload["d"]) <= 8
        and payload["d"].isascii()
        and payload["d"].isdigit()
        and all(
            isinstance(payload[k], int | float) and not isinstance(payload[k], bool)
            for k in ("iat", "exp")
        )
        and payload["exp"] > payload["iat"]
    )
    if not ok:
        raise ChallengeInvalidError("the challenge token's payload is not a valid challenge")
    return _challenge(payload, token)
