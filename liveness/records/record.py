"""The certification record: what goes into it, and its JWS form.

A record is the RFC 8785 canonical JSON of the members below, signed as a compact JWS
(``alg: EdDSA``, ``kid``, ``typ: liveness-record``). Its ``hash`` is the SHA-256 of those
canonical payload bytes; the next record's ``prev_hash`` is that hash (the chain).

Never in a record: the clip, a frame, a photo, an embedding, the digits heard or their timings.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from liveness.errors import RecordError
from liveness.records.canonical import canonical_json
from liveness.records.keys import SigningKeys, b64url_decode, b64url_encode
from liveness.results import Decision, Verdict

__all__ = ["FORMAT_VERSION", "RECORD_TYP", "CertRecord", "add_months", "build_payload"]

FORMAT_VERSION = 1
RECORD_TYP = "liveness-record"
PAYLOAD_FIELDS = frozenset(
    {
        "v",
        "record_id",
        "seq",
        "subject_id",
        "operator_id",
        "relationship",
        "channel",
        "challenge_nonce",
        "verdict",
        "reasons",
        "scores",
        "model_versions",
        "config_hash",
        "clip_sha256",
        "issued_at",
        "valid_until",
        "prev_hash",
    }
)


def add_months(epoch_s: int, months: int) -> int:
    """``epoch_s`` plus whole calendar months (UTC), the day clamped to the month's end."""
    t = datetime.fromtimestamp(epoch_s, tz=UTC)
    m0 = t.month - 1 + months
    year, month = t.year + m0 // 12, m0 % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return int(t.replace(year=year, month=month, day=day).timestamp())


def _score_dict(
    name: str, value: float, threshold: float, hib: bool, passed: bool
) -> dict[str, Any]:
    for what, x in (("value", value), ("threshold", threshold)):
        if not math.isfinite(x):
            raise RecordError(
                f"score {name!r} has a non-finite {what} ({x}); it cannot be recorded",
                hint="The engine produced NaN or infinity for this score; this is a bug to report.",
            )
    return {
        "name": name,
        "value": round(float(value), 6),
        "threshold": float(threshold),
        "higher_is_better": bool(hib),
        "passed": bool(passed),
    }


def build_payload(
    decision: Decision,
    *,
    seq: int,
    prev_hash: str | None,
    issued_at: int,
    validity_months: int,
    operator_id: str | None,
    relationship: str | None,
    channel: str,
    record_id: str | None = None,
) -> dict[str, Any]:
    """The record members for one decision (only what the record format allows)."""
    if not decision.subject_id:
        raise RecordError(
            "the decision has no subject_id; a record must name whom it certifies",
            hint="Certify with a challenge issued to the subject.",
        )
    op = operator_id or decision.subject_id
    rel = relationship or ("self" if op == decision.subject_id else None)
    if rel is None:
        raise RecordError(
            f"operator {op!r} is not the subject {decision.subject_id!r}; name the relationship",
            hint="Proxy certifications go through FamilyAccounts, which supplies it.",
        )
    if op == decision.subject_id and rel != "self":
        raise RecordError("a subject certifying themselves must have relationship 'self'")
    valid_until = (
        add_months(issued_at, validity_months) if decision.verdict is Verdict.PASS else None
    )
    return {
        "v": FORMAT_VERSION,
        "record_id": record_id or str(uuid.uuid4()),
        "seq": seq,
        "subject_id": decision.subject_id,
        "operator_id": op,
        "relationship": rel,
        "channel": channel,
        "challenge_nonce": decision.challenge_nonce,
        "verdict": str(decision.verdict),
        "reasons": [str(r) for r in decision.reasons],
        "scores": [
            _score_dict(s.name, s.value, s.threshold, s.higher_is_better, s.passed)
            for s in decision.scores
        ],
        "model_versions": {str(k): str(v) for k, v in decision.model_versions.items()},
        "config_hash": decision.config_hash,
        "clip_sha256": decision.clip_sha256,
        "issued_at": issued_at,
        "valid_until": valid_until,
        "prev_hash": prev_hash,
    }


def sign_payload(
    payload: dict[str, Any], keys: SigningKeys, typ: str = RECORD_TYP
) -> tuple[str, bytes]:
    """Compact JWS of the canonical payload; returns (jws, payload bytes)."""
    body = canonical_json(payload)
    header = canonical_json({"alg": "EdDSA", "kid": keys.kid, "typ": typ})
    signing_input = b64url_encode(header) + "." + b64url_encode(body)
    sig = keys.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(sig), body


@dataclass(frozen=True, slots=True)
class CertRecord:
    """One signed certification record, as read back from the store or an export."""

    seq: int
    record_id: str
    subject_id: str
    operator_id: str
    relationship: str
    channel: str
    challenge_nonce: str
    verdict: Verdict
    reasons: tuple[str, ...]
    scores: tuple[dict[str, Any], ...]
    model_versions: dict[str, str]
    config_hash: str
    clip_sha256: str
    issued_at: int
    valid_until: int | None
    prev_hash: str | None
    hash: str
    kid: str
    jws: str = field(repr=False)

    @property
    def proxy(self) -> bool:
        """True when a family member ran the certification for the subject."""
        return self.operator_id != self.subject_id

    def is_valid_at(self, now: float) -> bool:
        return (
            self.verdict is Verdict.PASS
            and self.valid_until is not None
            and self.issued_at <= now < self.valid_until
        )

    def payload(self) -> dict[str, Any]:
        return _decode_payload(self.jws)

    def to_dict(self) -> dict[str, Any]:
        d = self.payload()
        d["hash"] = self.hash
        d["kid"] = self.kid
        d["issued_at_utc"] = _iso(self.issued_at)
        d["valid_until_utc"] = _iso(self.valid_until) if self.valid_until is not None else None
        return d

    @classmethod
    def from_jws(cls, jws: str) -> CertRecord:
        """Parse (without verifying the signature: use ``verify_records`` for that)."""
        try:
            h, b, _ = jws.split(".")
            header = json.loads(b64url_decode(h))
            body = b64url_decode(b)
            return cls.from_payload(
                json.loads(body), hashlib.sha256(body).hexdigest(), str(header["kid"]), jws
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RecordError(f"not a certification record JWS: {exc}") from None

    @classmethod
    def from_payload(cls, p: dict[str, Any], digest: str, kid: str, jws: str) -> CertRecord:
        try:
            return cls(
                seq=int(p["seq"]),
                record_id=str(p["record_id"]),
                subject_id=str(p["subject_id"]),
                operator_id=str(p["operator_id"]),
                relationship=str(p["relationship"]),
                channel=str(p["channel"]),
                challenge_nonce=str(p["challenge_nonce"]),
                verdict=Verdict(p["verdict"]),
                reasons=tuple(str(r) for r in p["reasons"]),
                scores=tuple(dict(s) for s in p["scores"]),
                model_versions={str(k): str(v) for k, v in p["model_versions"].items()},
                config_hash=str(p["config_hash"]),
                clip_sha256=str(p["clip_sha256"]),
                issued_at=int(p["issued_at"]),
                valid_until=None if p["valid_until"] is None else int(p["valid_until"]),
                prev_hash=p["prev_hash"],
                hash=digest,
                kid=kid,
                jws=jws,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RecordError(f"not a certification record JWS: {exc}") from None


def _decode_payload(jws: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(b64url_decode(jws.split(".")[1]))
    return out


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
