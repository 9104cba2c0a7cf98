"""Ed25519 signing keys for records: one active private key plus the public keys it replaced.

The private key lives only inside ``SigningKeys``: never in a repr, an error, a log line or a
record, and the object refuses to be pickled or copied. Key ids are RFC 7638 JWK thumbprints,
so the same key always has the same ``kid`` wherever it is loaded.

Rotation makes a new active key; the previous one keeps only its public half, marked with the
time it was retired (JWK member ``exp``, epoch seconds). A verifier accepts a record signed by a
retired key only if it was issued before that key's ``exp``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from liveness.errors import RecordError, SigningKeyError
from liveness.records.canonical import canonical_json

__all__ = ["PublicKey", "SigningKeys", "b64url_decode", "b64url_encode", "load_jwks"]


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url (RFC 7515 section 2); raises ValueError on anything else."""
    if "=" in text or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if b64url_encode(raw) != text:  # non-canonical trailing bits
        raise ValueError("not canonical base64url")
    return raw


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One verification key from a JWKS: its kid, key, and the window it may have signed in."""

    kid: str
    key: Ed25519PublicKey
    not_before: int | None = None  # JWK "nbf": created at (epoch s)
    not_after: int | None = None  # JWK "exp": retired at (epoch s); None while active

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def to_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url_encode(self.raw),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }
        if self.not_before is not None:
            jwk["nbf"] = self.not_before
        if self.not_after is not None:
            jwk["exp"] = self.not_after
        return jwk

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def _thumbprint(raw_public: bytes) -> str:
    """RFC 7638 thumbprint of an Ed25519 JWK (RFC 8037 section 2)."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw_public)}
    return b64url_encode(hashlib.sha256(canonical_json(members)).digest())


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_jwks(jwks: dict[str, Any] | str | os.PathLike[str]) -> dict[str, PublicKey]:
    """Parse a JWKS (dict, JSON text or path) into ``{kid: PublicKey}``; Ed25519 keys only.

    Each key's ``kid`` must equal its RFC 7638 thumbprint, so a JWKS cannot relabel a key.
    """
    if not isinstance(jwks, dict):
        text = str(jwks)
        if not text.lstrip().startswith("{"):
            try:
                text = Path(text).read_text(encoding="utf-8")
            except OSError as exc:
                raise RecordError(
                    f"cannot read JWKS file {jwks}: {exc.strerror}",
                    hint="Pass the public key set exported by `liveness records keys export`.",
                ) from None
        try:
            jwks = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(f"JWKS is not valid JSON: {exc}") from None
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise RecordError('a JWKS must be an object with a "keys" list')
    out: dict[str, PublicKey] = {}
    for i, jwk in enumerate(keys):
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue  # other key types are not ours; ignore like any JOSE library
        if "d" in jwk:
            raise SigningKeyError(
                f"JWKS key {i} contains private material",
                hint="Publish only public keys (`liveness records keys export`).",
            )
        try:
            raw = b64url_decode(str(jwk.get("x", "")))
            if len(raw) != 32:
                raise ValueError("x must be 32 bytes")
            key = Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise RecordError(f"JWKS key {i} is not a valid Ed25519 public key: {exc}") from None
        kid = _thumbprint(raw)
        if jwk.get("kid", kid) != kid:
            raise RecordError(
                f"JWKS key {i} has kid {jwk.get('kid')!r} but its thumbprint is {kid!r}",
                hint="Key ids are RFC 7638 thumbprints; re-export the JWKS.",
            )
        nbf, exp = jwk.get("nbf"), jwk.get("exp")
        out[kid] = PublicKey(
            kid,
            key,
            int(nbf) if isinstance(nbf, int | float) else None,
            int(exp) if isinstance(exp, int | float) else None,
        )
    return out


class SigningKeys:
    """An Ed25519 keyring: the active signing key and the retired public keys.

    Build one with ``generate()``, ``from_pem(path)`` or ``from_env(var)``; pass a previous JWKS
    (``known=``) to keep retired keys in ``public_jwks()``. ``rotate()`` switches to a new key.
    """

    __slots__ = ("_active", "_active_kid", "_created", "_retired")

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        created_at: int | None = None,
        known: dict[str, Any] | str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise SigningKeyError("the signing key must be an Ed25519 private key")
        self._active = private_key
        self._active_kid = _thumbprint(_raw_public(private_key))
        self._retired: dict[str, PublicKey] = {}
        self._created: int | None = created_at
        if known is not None:
            for kid, pk in load_jwks(known).items():
                if kid == self._active_kid:
                    if pk.not_after is not None:
                        raise SigningKeyError(
                            f"the signing key {kid} was retired at {pk.not_after}",
                            hint="Load the current key; a retired key must not sign again.",
                        )
                    self._created = pk.not_before if self._created is None else self._created
                else:
                    if pk.not_after is None:  # a key the JWKS still lists as active
                        pk = PublicKey(pk.kid, pk.key, pk.not_before, int(time.time()))
                    self._retired[kid] = pk

    # --- constructors -------------------------------------------------------------------
    @classmethod
    def generate(cls) -> SigningKeys:
        return cls(Ed25519PrivateKey.generate(), created_at=int(time.time()))

    @classmethod
    def from_pem(
        cls,
        path: str | os.PathLike[str],
        *,
        known: dict[str, Any] | str | os.PathLike[str] | None = None,
    ) -> SigningKeys:
        """Load the active key from a PKCS#8 PEM file (unencrypted)."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"cannot read signing key file {p}: {exc.strerror}") from None
        return cls(_parse_private(data, f"file {p}"), known=known)

    @classmethod
    def from_env(
        cls,
        var: str = "LIVENESS_SIGNING_KEY",
        *,
        known: dict[str, Any] | str | os.PathLike[str] | None = None,
    ) -> SigningKeys:
        """Load the active key from an environment variable: PEM text, or the base64(url) of
        the 32-byte raw private key."""
        value = os.environ.get(var)
        if not value:
            raise SigningKeyError(
                f"environment variable {var} is not set or empty",
                hint=f"Set {var} to a PKCS#8 PEM Ed25519 key or its base64 32-byte seed.",
            )
        if "-----BEGIN" in value:
            return cls(_parse_private(value.encode("utf-8"), f"${var}"), known=known)
        seed: bytes | None = None
        for dec in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                cand = dec(value.strip() + "=" * (-len(value.strip()) % 4))
            except (binascii.Error, ValueError):
                continue
            if len(cand) == 32:
                seed = cand
                break
        if seed is None:
            raise SigningKeyError(f"${var} is neither a PEM key nor a base64 32-byte seed")
        return cls(Ed25519PrivateKey.from_private_bytes(seed), known=known)

    # --- use ------------------------------------------------------------------------------
    @property
    def kid(self) -> str:
        """The key id of the active signing key."""
        return self._active_kid

    def sign(self, data: bytes) -> bytes:
        return self._active.sign(data)

    def rotate(self, *, now: float | None = None) -> str:
        """Switch to a freshly generated key; the old one stays as a retired public key."""
        t = int(time.time() if now is None else now)
        old = PublicKey(self._active_kid, self._active.public_key(), self._created, t)
        self._retired[old.kid] = old
        self._active = Ed25519PrivateKey.generate()
        self._active_kid = _thumbprint(_raw_public(self._active))
        self._created = t
        return self._active_kid

    def public_keys(self) -> dict[str, PublicKey]:
        out = dict(self._retired)
        out[self._active_kid] = PublicKey(
            self._active_kid, self._active.public_key(), self._created, None
        )
        return out

    def public_jwks(self) -> dict[str, Any]:
        """The public keys, active last, as an RFC 7517 JWK Set (no private members)."""
        keys = sorted(self._retired.values(), key=lambda k: (k.not_after or 0, k.kid))
        active = self.public_keys()[self._active_kid]
        return {"keys": [k.to_jwk() for k in [*keys, active]]}

    def save_pem(self, path: str | os.PathLike[str]) -> Path:
        """Write the active private key as PKCS#8 PEM, readable by the owner only (0600)."""
        p = Path(path)
        pem = self._active.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = p.with_name(p.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, pem)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, p)
        except OSError as exc:
            raise SigningKeyError(f"cannot write signing key file {p}: {exc.strerror}") from None
        return p

    # --- never leak ---------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"SigningKeys(kid={self._active_kid!r}, retired={len(self._retired)})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("SigningKeys cannot be pickled (it holds a private key)")

    def __copy__(self) -> Any:
        raise TypeError("SigningKeys cannot be copied (it holds a private key)")

    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError("SigningKeys cannot be copied (it holds a private key)")


def _parse_private(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningKeyError(
            f"the signing key in {where} is encrypted",
            hint="Provide an unencrypted PKCS#8 key (protect it with file permissions or a KMS).",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        # never echo the content: it may be a (broken) private key
        raise SigningKeyError(f"{where} does not hold a readable PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"the key in {where} is not an Ed25519 key")
    return key
