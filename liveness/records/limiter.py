"""Attempt limiting (GB/T 38671): too many failed certifications lock a subject for a while.

At most ``max_failures`` failed attempts per subject within ``failure_window_s``; the one that
reaches the limit locks the subject for ``lock_s``. While locked, ``check`` returns the lock and
the engine answers ``TOO_MANY_ATTEMPTS`` without looking at the clip. A PASS clears the count.
State lives in the record database, so every process serving the subject sees the same lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveness.config import RecordConfig
from liveness.records._db import Database
from liveness.results import Decision, Reason, Verdict

__all__ = ["AttemptLimiter", "Lock"]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS attempt_failures (
        subject_id TEXT NOT NULL,
        at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS attempt_failures_subject ON attempt_failures (subject_id, at)",
    """CREATE TABLE IF NOT EXISTS attempt_locks (
        subject_id TEXT PRIMARY KEY,
        locked_at REAL NOT NULL,
        until REAL NOT NULL,
        failures INTEGER NOT NULL
    )""",
]


@dataclass(frozen=True, slots=True)
class Lock:
    """A subject locked out after too many failed attempts."""

    subject_id: str
    locked_at: float
    until: float
    failures: int
    reason: Reason = Reason.TOO_MANY_ATTEMPTS

    def retry_after(self, now: float | None = None) -> float:
        """Seconds until the lock lifts."""
        return max(0.0, self.until - (time.time() if now is None else now))

    def decision(self, *, challenge_nonce: str = "", config_hash: str = "") -> Decision:
        """The FAIL decision to return (and record) for an attempt made while locked."""
        return Decision(
            verdict=Verdict.FAIL,
            reasons=(Reason.TOO_MANY_ATTEMPTS,),
            subject_id=self.subject_id,
            challenge_nonce=challenge_nonce,
            config_hash=config_hash,
            details={"locked_until": self.until, "failures": self.failures},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id,
            "reason": str(self.reason),
            "locked_at": self.locked_at,
            "until": self.until,
            "failures": self.failures,
        }


class AttemptLimiter:
    """Counts failed attempts per subject in the record database and locks after too many."""

    def __init__(self, db: Database, cfg: RecordConfig | None = None) -> None:
        self.db = db
        self.cfg = cfg or RecordConfig()
        db.ensure_schema("attempts", SCHEMA)

    @classmethod
    def open(cls, path: str | Path, cfg: RecordConfig | None = None) -> AttemptLimiter:
        return cls(Database.open(path, cfg), cfg)

    def check(self, subject_id: str, *, now: float | None = None) -> Lock | None:
        """The lock on ``subject_id`` if one is in force at ``now``, else None."""
        t = time.time() if now is None else now
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT locked_at, until, failures FROM attempt_locks WHERE subject_id = ?",
                (subject_id,),
            ).fetchone()
        if row is None or row[1] <= t:
            return None
        return Lock(subject_id, float(row[0]), float(row[1]), int(row[2]))

    def record_failure(self, subject_id: str, *, now: float | None = None) -> Lock | None:
        """Count one failed attempt; returns the lock if the subject is (now) locked."""
        t = time.time() if now is None else now
        cfg = self.cfg
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT locked_at, until, failures FROM attempt_locks WHERE subject_id = ?",
                (subject_id,),
            ).fetchone()
            if row is not None and row[1] > t:
                return Lock(subject_id, float(row[0]), float(row[1]), int(row[2]))
            conn.execute(
                "DELETE FROM attempt_failures WHERE subject_id = ? AND at <= ?",
                (subject_id, t - cfg.failure_window_s),
            )
            conn.execute(
                "INSERT INTO attempt_failures (subject_id, at) VALUES (?, ?)", (subject_id, t)
            )
            (count,) = conn.execute(
                "SELECT count(*) FROM attempt_failures WHERE subject_id = ?", (subject_id,)
            ).fetchone()
            if count < cfg.max_failures:
                return None
            until = t + cfg.lock_s
            conn.execute(
                "INSERT OR REPLACE INTO attempt_locks VALUES (?, ?, ?, ?)",
                (subject_id, t, until, int(count)),
            )
            # the lock replaces the count: after it lifts, the subject starts afresh
            conn.execute("DELETE FROM attempt_failures WHERE subject_id = ?", (subject_id,))
            return Lock(subject_id, t, until, int(count))

    def record_success(self, subject_id: str) -> None:
        """A PASS clears the failure count (it does not lift a lock in force)."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM attempt_failures WHERE subject_id = ?", (subject_id,))

    def observe(self, decision: Decision, *, now: float | None = None) -> Lock | None:
        """Count ``decision`` as the config says (FAIL and RETRY by default)."""
        if decision.verdict is Verdict.PASS:
            self.record_success(decision.subject_id)
            return None
        if Reason.TOO_MANY_ATTEMPTS in decision.reasons:
            return self.check(decision.subject_id, now=now)  # the refusal is not an attempt
        if str(decision.verdict) in self.cfg.failure_verdicts:
            return self.record_failure(decision.subject_id, now=now)
        return None

    def failures(self, subject_id: str, *, now: float | None = None) -> int:
        """Failed attempts counted in the current window."""
        t = time.time() if now is None else now
        with self.db.read() as conn:
            (n,) = conn.execute(
                "SELECT count(*) FROM attempt_failures WHERE subject_id = ? AND at > ?",
                (subject_id, t - self.cfg.failure_window_s),
            ).fetchone()
        return int(n)

    def unlock(self, subject_id: str) -> None:
        """Lift a lock and forget the failures (an operator's decision, e.g. after a call)."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM attempt_locks WHERE subject_id = ?", (subject_id,))
            conn.execute("DELETE FROM attempt_failures WHERE subject_id = ?", (subject_id,))
