"""Family accounts in the record database: bindings, the slot quota, and who may certify whom.

Every change runs in one ``BEGIN IMMEDIATE`` transaction that re-reads the counts it checks, so
two bindings racing (threads or processes) cannot both take the last slot or the last place of a
relation; unique indexes back this up (one slot number per account, one live binding per member).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from liveness.config import FamilyConfig, RecordConfig
from liveness.errors import FamilyError
from liveness.family.rules import (
    FamilyRefused,
    Relation,
    age_on,
    check_card_number,
    check_limits,
    parse_birth_date,
)
from liveness.records._db import Database
from liveness.records.record import CertRecord
from liveness.results import Decision, Reason, Verdict

__all__ = ["Binding", "FamilyAccounts", "ProxyRefusal"]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS family_bindings (
        id INTEGER PRIMARY KEY,
        operator_id TEXT NOT NULL,
        member_id TEXT NOT NULL,
        relation TEXT NOT NULL,
        slot INTEGER NOT NULL,
        birth_date TEXT NOT NULL,
        minor INTEGER NOT NULL,
        evidence TEXT NOT NULL,
        bound_at REAL NOT NULL,
        bound_by TEXT NOT NULL,
        unbound_at REAL,
        unbound_by TEXT,
        UNIQUE (operator_id, slot)
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS family_live_binding
       ON family_bindings (operator_id, member_id) WHERE unbound_at IS NULL""",
    "CREATE INDEX IF NOT EXISTS family_member ON family_bindings (member_id)",
    """CREATE TABLE IF NOT EXISTS family_photos (
        binding_id INTEGER PRIMARY KEY REFERENCES family_bindings (id),
        kind TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        data BLOB NOT NULL
    )""",
]

_COLS = (
    "id, operator_id, member_id, relation, slot, birth_date, minor, evidence, bound_at, "
    "bound_by, unbound_at, unbound_by"
)


@dataclass(frozen=True, slots=True)
class Binding:
    """One binding of a member to an operator's family account (current or ended)."""

    binding_id: int
    operator_id: str
    member_id: str
    relation: Relation
    slot: int  # 1..total_slots, never reused
    birth_date: date
    minor: bool
    bound_at: float
    bound_by: str
    unbound_at: float | None = None
    unbound_by: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.unbound_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "binding_id": self.binding_id,
            "operator_id": self.operator_id,
            "member_id": self.member_id,
            "relation": str(self.relation),
            "slot": self.slot,
            "birth_date": self.birth_date.isoformat(),
            "minor": self.minor,
            "bound_at": _iso(self.bound_at),
            "bound_by": self.bound_by,
            "unbound_at": _iso(self.unbound_at) if self.unbound_at is not None else None,
            "unbound_by": self.unbound_by,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class ProxyRefusal:
    """Why an operator may not certify a member: a stable reason and a sentence for people."""

    reason: Reason
    message: str
    unbound_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"reason": str(self.reason), "message": self.message, "unbound_at": self.unbound_at}


class FamilyAccounts:
    """Bind, unbind and list family members; decide who may certify whom."""

    def __init__(self, db: Database, cfg: FamilyConfig | None = None) -> None:
        self.db = db
        self.cfg = cfg or FamilyConfig()
        db.ensure_schema("family", SCHEMA)

    @classmethod
    def open(
        cls,
        path: str | Path,
        cfg: FamilyConfig | None = None,
        *,
        records: RecordConfig | None = None,
    ) -> FamilyAccounts:
        return cls(Database.open(path, records), cfg)

    def close(self) -> None:
        self.db.close()

    # --- changes -------------------------------------------------------------------------
    def bind(
        self,
        operator_id: str,
        member_id: str,
        relation: Relation | str,
        *,
        birth_date: date | str,
        card_number: str | None = None,
        one_inch_photo: bytes | str | os.PathLike[str] | None = None,
        card_photo: bytes | str | os.PathLike[str] | None = None,
        face_verified: bool | Decision | CertRecord | None = None,
        now: float | None = None,
    ) -> Binding:
        """Bind ``member_id`` to ``operator_id``'s account, using one of its lifetime slots.

        A minor needs ``card_number`` and ``one_inch_photo``; an adult needs ``card_photo`` and
        ``face_verified``: the PASS decision (or its record) of the adult's in-person face check
        against the card photo. ``True`` means the caller vouches that the check passed, and is
        recorded as such. Raises ``FamilyRefused`` (a ``FamilyError``) naming the broken rule.
        """
        t = time.time() if now is None else now
        today = datetime.fromtimestamp(t, tz=UTC).date()
        rel = _relation(relation)
        operator_id, member_id = _id(operator_id, "operator"), _id(member_id, "member")
        if operator_id == member_id:
            raise FamilyRefused("self_binding", "an account holder cannot bind themselves")
        birth = parse_birth_date(birth_date, today)
        minor = age_on(birth, today) < self.cfg.minor_age
        evidence: dict[str, Any]
        if minor:
            if not card_number:
                raise FamilyRefused(
                    "missing_evidence",
                    f"binding a minor (under {self.cfg.minor_age}) needs their social-security "
                    "card number",
                )
            if one_inch_photo is None:
                raise FamilyRefused(
                    "missing_evidence", "binding a minor needs a 1-inch photo of them"
                )
            number = check_card_number(card_number, birth)
            photo_kind, photo = "one_inch", self._photo(one_inch_photo, "1-inch photo")
            evidence = {
                "kind": "minor",
                "card_number_sha256": hashlib.sha256(number.encode()).hexdigest(),
                "card_number_masked": number[:3] + "*" * 11 + number[-4:],
            }
        else:
            if card_photo is None:
                raise FamilyRefused("missing_evidence", "binding an adult needs their card photo")
            photo_kind, photo = "card", self._photo(card_photo, "card photo")
            evidence = {
                "kind": "adult",
                "face_verification": self._face(face_verified, member_id, t),
            }
            if card_number:
                number = check_card_number(card_number, birth)
                evidence["card_number_sha256"] = hashlib.sha256(number.encode()).hexdigest()
        evidence["photo_sha256"] = hashlib.sha256(photo).hexdigest()
        with self.db.write() as conn:
            live = conn.execute(
                "SELECT relation, count(*) FROM family_bindings "
                "WHERE operator_id = ? AND unbound_at IS NULL GROUP BY relation",
                (operator_id,),
            ).fetchall()
            (used,) = conn.execute(
                "SELECT count(*) FROM family_bindings WHERE operator_id = ?", (operator_id,)
            ).fetchone()
            dup = conn.execute(
                "SELECT 1 FROM family_bindings WHERE operator_id = ? AND member_id = ? "
                "AND unbound_at IS NULL",
                (operator_id, member_id),
            ).fetchone()
            if dup:
                raise FamilyRefused(
                    "already_bound", f"{member_id} is already bound to this account"
                )
            check_limits(
                rel,
                bound_now={Relation(r): int(c) for r, c in live},
                slots_used=int(used),
                cfg=self.cfg,
            )
            cur = conn.execute(
                "INSERT INTO family_bindings (operator_id, member_id, relation, slot, birth_date, "
                "minor, evidence, bound_at, bound_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    operator_id,
                    member_id,
                    rel.value,
                    int(used) + 1,
                    birth.isoformat(),
                    int(minor),
                    json.dumps(evidence, sort_keys=True),
                    t,
                    operator_id,
                ),
            )
            bid = int(cur.lastrowid or 0)
            conn.execute(
                "INSERT INTO family_photos VALUES (?, ?, ?, ?)",
                (bid, photo_kind, evidence["photo_sha256"], photo),
            )
            row = conn.execute(
                f"SELECT {_COLS} FROM family_bindings WHERE id = ?", (bid,)
            ).fetchone()
        return _binding(row)

    def unbind(self, operator_id: str, member_id: str, *, now: float | None = None) -> Binding:
        """End the live binding (its slot stays used). Returns the ended binding."""
        t = time.time() if now is None else now
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT id FROM family_bindings WHERE operator_id = ? AND member_id = ? "
                "AND unbound_at IS NULL",
                (operator_id, member_id),
            ).fetchone()
            if row is None:
                raise FamilyRefused("not_bound", f"{member_id} is not bound to {operator_id}")
            conn.execute(
                "UPDATE family_bindings SET unbound_at = ?, unbound_by = ? WHERE id = ?",
                (t, operator_id, row[0]),
            )
            out = conn.execute(
                f"SELECT {_COLS} FROM family_bindings WHERE id = ?", (row[0],)
            ).fetchone()
        return _binding(out)

    # --- queries -------------------------------------------------------------------------
    def members(self, operator_id: str) -> list[Binding]:
        """The live bindings of an account, by slot."""
        with self.db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLS} FROM family_bindings WHERE operator_id = ? "
                "AND unbound_at IS NULL ORDER BY slot",
                (operator_id,),
            ).fetchall()
        return [_binding(r) for r in rows]

    def history(self, operator_id: str) -> list[Binding]:
        """Every binding the account ever made, ended ones included, by slot."""
        with self.db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLS} FROM family_bindings WHERE operator_id = ? ORDER BY slot",
                (operator_id,),
            ).fetchall()
        return [_binding(r) for r in rows]

    def slots_left(self, operator_id: str) -> int:
        with self.db.read() as conn:
            (used,) = conn.execute(
                "SELECT count(*) FROM family_bindings WHERE operator_id = ?", (operator_id,)
            ).fetchone()
        return max(0, self.cfg.total_slots - int(used))

    def authorize_proxy(self, operator_id: str, member_id: str) -> Binding | ProxyRefusal:
        """May ``operator_id`` run a proxy certification of ``member_id``? The live binding if so.

        Refusals: PROXY_NOT_ALLOWED for oneself (certify with your own card), NOT_BOUND for a
        member never bound to this account or unbound since (the message says which, and when).
        """
        if operator_id == member_id:
            return ProxyRefusal(
                Reason.PROXY_NOT_ALLOWED,
                "an account holder certifies themselves with their own card, not as a proxy",
            )
        with self.db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLS} FROM family_bindings WHERE operator_id = ? AND member_id = ? "
                "ORDER BY slot DESC",
                (operator_id, member_id),
            ).fetchall()
        if not rows:
            return ProxyRefusal(
                Reason.NOT_BOUND, f"{member_id} has never been bound to {operator_id}'s account"
            )
        latest = _binding(rows[0])
        if latest.unbound_at is not None:
            return ProxyRefusal(
                Reason.NOT_BOUND,
                f"{member_id} was unbound from {operator_id}'s account at "
                f"{_iso(latest.unbound_at)}",
                unbound_at=latest.unbound_at,
            )
        return latest

    @staticmethod
    def authorize_card(card_holder_id: str, subject_id: str) -> ProxyRefusal | None:
        """A card certifies only its own holder: None if allowed, else PROXY_NOT_ALLOWED."""
        if card_holder_id == subject_id:
            return None
        return ProxyRefusal(
            Reason.PROXY_NOT_ALLOWED,
            f"card holder {card_holder_id} cannot certify {subject_id} with their own card; "
            "bind them as a family member and use proxy certification",
        )

    def reference_photo(self, binding: Binding) -> bytes:
        """The member's photo kept at binding (card photo or 1-inch photo): what the clip of a
        proxy certification is matched against, never the operator's own photo."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT data FROM family_photos WHERE binding_id = ?", (binding.binding_id,)
            ).fetchone()
        if row is None:
            raise FamilyError(f"binding {binding.binding_id} has no reference photo")
        return bytes(row[0])

    # --- evidence ------------------------------------------------------------------------
    def _photo(self, value: bytes | str | os.PathLike[str], what: str) -> bytes:
        if isinstance(value, bytes | bytearray):
            data = bytes(value)
        else:
            try:
                p = Path(value)
                if p.stat().st_size > self.cfg.max_photo_bytes:
                    raise FamilyRefused("invalid_evidence", f"the {what} is too large")
                data = p.read_bytes()
            except OSError as exc:
                raise FamilyRefused(
                    "invalid_evidence", f"cannot read the {what} {value}: {exc.strerror}"
                ) from None
        if len(data) > self.cfg.max_photo_bytes:
            raise FamilyRefused("invalid_evidence", f"the {what} is too large")
        if not (
            data.startswith(b"\xff\xd8\xff")
            or data.startswith(b"\x89PNG\r\n\x1a\n")
            or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        ):
            raise FamilyRefused("invalid_evidence", f"the {what} is not a JPEG, PNG or WebP image")
        return data

    def _face(
        self, value: bool | Decision | CertRecord | None, member_id: str, now: float
    ) -> dict[str, Any]:
        if value is None or value is False:
            raise FamilyRefused(
                "face_not_verified",
                "binding an adult needs a face-verification PASS of the adult in person",
                hint="Run a certification of the adult against their card photo first.",
            )
        if value is True:
            return {"method": "asserted_by_caller"}
        if isinstance(value, CertRecord):
            if value.verdict is not Verdict.PASS or value.subject_id != member_id:
                raise FamilyRefused(
                    "face_not_verified",
                    f"record {value.record_id} is not a PASS of {member_id}",
                )
            age = now - value.issued_at
            if not -60 <= age <= self.cfg.face_verification_max_age_s:
                raise FamilyRefused(
                    "face_not_verified",
                    f"the face verification record is {age:.0f} s old; it must be made in "
                    f"person at binding (within {self.cfg.face_verification_max_age_s:.0f} s)",
                )
            return {"method": "record", "record_id": value.record_id, "record_hash": value.hash}
        if isinstance(value, Decision):
            if value.verdict is not Verdict.PASS:
                raise FamilyRefused(
                    "face_not_verified",
                    f"the adult's face verification did not pass ({value.verdict}: "
                    f"{', '.join(value.reasons) or 'no reason'})",
                )
            if value.subject_id != member_id:
                raise FamilyRefused(
                    "face_not_verified",
                    f"the face verification is of {value.subject_id!r}, not {member_id!r}",
                )
            return {
                "method": "decision",
                "clip_sha256": value.clip_sha256,
                "config_hash": value.config_hash,
                "challenge_nonce": value.challenge_nonce,
            }
        raise FamilyRefused(
            "face_not_verified", "face_verified must be a Decision, a record or True"
        )


def _relation(value: Relation | str) -> Relation:
    try:
        return Relation(str(value).lower())
    except ValueError:
        raise FamilyRefused(
            "invalid_evidence",
            f"unknown relation {value!r}; use one of {', '.join(r.value for r in Relation)}",
        ) from None


def _id(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FamilyRefused("invalid_evidence", f"the {what} id must be a non-empty string")
    return value


def _binding(row: Any) -> Binding:
    return Binding(
        binding_id=int(row[0]),
        operator_id=str(row[1]),
        member_id=str(row[2]),
        relation=Relation(row[3]),
        slot=int(row[4]),
        birth_date=date.fromisoformat(row[5]),
        minor=bool(row[6]),
        evidence=json.loads(row[7]),
        bound_at=float(row[8]),
        bound_by=str(row[9]),
        unbound_at=None if row[10] is None else float(row[10]),
        unbound_by=None if row[11] is None else str(row[11]),
    )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
