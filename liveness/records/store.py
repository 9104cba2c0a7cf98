"""The record store: an append-only, hash-chained table of signed records in SQLite.

Each append happens in one ``BEGIN IMMEDIATE`` transaction: read the chain head, build and sign
the next record (its ``prev_hash`` is the head's hash), insert, commit with
``synchronous=FULL``. When ``append_decision`` returns, the record is on disk. Triggers refuse
UPDATE and DELETE on the table; ``verify`` catches anyone who bypasses them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from liveness.config import RecordConfig
from liveness.errors import RecordError, SigningKeyError
from liveness.records._db import Database
from liveness.records.keys import PublicKey, SigningKeys, load_jwks
from liveness.records.limiter import AttemptLimiter
from liveness.records.merkle import (
    InclusionProof,
    TreeHead,
    inclusion_path,
    leaf_hash,
    merkle_root,
)
from liveness.records.record import CertRecord, build_payload, sign_payload
from liveness.records.verify import VerifyReport, verify_records
from liveness.results import Decision

__all__ = ["RecordStore", "default_db_path"]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS records (
        seq INTEGER PRIMARY KEY,
        record_id TEXT NOT NULL UNIQUE,
        subject_id TEXT NOT NULL,
        operator_id TEXT NOT NULL,
        verdict TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        valid_until INTEGER,
        hash TEXT NOT NULL,
        jws TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS records_subject ON records (subject_id, seq)",
    "CREATE INDEX IF NOT EXISTS records_valid ON records (verdict, valid_until)",
    """CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
       BEGIN SELECT RAISE(ABORT, 'records are append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
       BEGIN SELECT RAISE(ABORT, 'records are append-only'); END""",
]

_INDEX_COLS = ("seq", "record_id", "subject_id", "operator_id", "verdict", "issued_at")
_SELECT = (
    "SELECT seq, record_id, subject_id, operator_id, verdict, issued_at, valid_until, hash, jws"
)


class RecordStore:
    """Signed certification records in one SQLite file (WAL; one writer, many readers)."""

    def __init__(
        self, db: Database, keys: SigningKeys | None = None, cfg: RecordConfig | None = None
    ) -> None:
        self.db = db
        self.keys = keys
        self.cfg = cfg or RecordConfig()
        db.ensure_schema("records", SCHEMA)

    @classmethod
    def open(
        cls,
        path: str | Path,
        keys: SigningKeys | None = None,
        cfg: RecordConfig | None = None,
    ) -> RecordStore:
        """Open (creating if needed) the store at ``path``. ``keys`` is needed only to append."""
        return cls(Database.open(path, cfg), keys, cfg)

    def close(self) -> None:
        self.db.close()

    def limiter(self) -> AttemptLimiter:
        """The attempt limiter kept in this store's database (same config)."""
        return AttemptLimiter(self.db, self.cfg)

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------
    def append_decision(
        self,
        decision: Decision,
        *,
        operator_id: str | None = None,
        relationship: str | None = None,
        channel: str = "app",
        now: float | None = None,
    ) -> CertRecord:
        """Sign and append a record of ``decision``; durable on disk when this returns.

        ``operator_id`` defaults to the subject (self-certification); a different operator needs
        the ``relationship`` (FamilyAccounts supplies both for proxy certification).
        """
        return self.append_many(
            [decision], operator_id=operator_id, relationship=relationship, channel=channel, now=now
        )[0]

    def append_many(
        self,
        decisions: Iterable[Decision],
        *,
        operator_id: str | None = None,
        relationship: str | None = None,
        channel: str = "app",
        now: float | None = None,
    ) -> list[CertRecord]:
        """Append several decisions in one transaction (one fsync): all or none."""
        keys = self.keys
        if keys is None:
            raise SigningKeyError(
                "this record store was opened without a signing key",
                hint="Pass SigningKeys to RecordStore.open to append records.",
            )
        out: list[CertRecord] = []
        with self.db.write() as conn:
            head = conn.execute(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (int(head[0]), str(head[1])) if head else (0, None)
            issued = int(time.time() if now is None else now)
            rows = []
            for decision in decisions:
                seq += 1
                payload = build_payload(
                    decision,
                    seq=seq,
                    prev_hash=prev,
                    issued_at=issued,
                    validity_months=self.cfg.validity_months,
                    operator_id=operator_id,
                    relationship=relationship,
                    channel=channel,
                )
                jws, body = sign_payload(payload, keys)
                digest = hashlib.sha256(body).hexdigest()
                rows.append(
                    (
                        seq,
                        payload["record_id"],
                        payload["subject_id"],
                        payload["operator_id"],
                        payload["verdict"],
                        issued,
                        payload["valid_until"],
                        digest,
                        jws,
                    )
                )
                out.append(CertRecord.from_payload(payload, digest, keys.kid, jws))
                prev = digest
            conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return out

    # --- queries -------------------------------------------------------------------------
    def __len__(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])

    def get(self, record_id: str) -> CertRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT jws FROM records WHERE record_id = ?", (record_id,)
            ).fetchone()
        return CertRecord.from_jws(row[0]) if row else None

    def history(self, subject_id: str, *, limit: int | None = None) -> list[CertRecord]:
        """Every record about ``subject_id``, newest first (the card's "查看认证记录")."""
        sql = "SELECT jws FROM records WHERE subject_id = ? ORDER BY seq DESC"
        args: tuple[Any, ...] = (subject_id,)
        if limit is not None:
            sql += " LIMIT ?"
            args += (int(limit),)
        with self.db.read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [CertRecord.from_jws(r[0]) for r in rows]

    def current(self, subject_id: str, *, now: float | None = None) -> CertRecord | None:
        """The newest PASS record of ``subject_id`` still valid at ``now``, if any.

        A later FAIL does not revoke an earlier valid certification.
        """
        t = time.time() if now is None else now
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT jws FROM records WHERE subject_id = ? AND verdict = 'PASS' "
                "AND issued_at <= ? AND valid_until > ? ORDER BY seq DESC LIMIT 1",
                (subject_id, t, t),
            ).fetchone()
        return CertRecord.from_jws(row[0]) if row else None

    def expiring_within(self, days: float, *, now: float | None = None) -> list[CertRecord]:
        """Subjects whose current certification ends within ``days`` (for reminders).

        One record per subject (their newest PASS), soonest expiry first; subjects whose newest
        PASS has already expired are not included.
        """
        t = time.time() if now is None else now
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT r.jws FROM records r JOIN ("
                "  SELECT subject_id, max(seq) AS seq FROM records WHERE verdict = 'PASS' "
                "  AND issued_at <= ? GROUP BY subject_id) last ON r.seq = last.seq "
                "WHERE r.valid_until > ? AND r.valid_until <= ? ORDER BY r.valid_until, r.seq",
                (t, t, t + days * 86400.0),
            ).fetchall()
        return [CertRecord.from_jws(r[0]) for r in rows]

    def iter_jws(self, *, batch: int = 2000) -> Iterator[str]:
        """Every record's JWS in chain order (for export)."""
        for row in self._iter_rows(batch):
            yield str(row[8])

    def _iter_rows(self, batch: int) -> Iterator[tuple[Any, ...]]:
        last = 0
        while True:
            with self.db.read() as conn:
                rows = conn.execute(
                    f"{_SELECT} FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (last, batch)
                ).fetchall()
            if not rows:
                return
            yield from rows
            last = int(rows[-1][0])

    def head(self) -> tuple[int, str | None]:
        """(number of records, hash of the last one)."""
        with self.db.read() as conn:
            row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, None)

    # --- verification --------------------------------------------------------------------
    def verify(
        self,
        jwks: dict[str, Any] | str | Path | dict[str, PublicKey] | None = None,
        *,
        keep_hashes: bool = False,
        every_signature: bool = True,
        checkpoint: TreeHead | None = None,
        jobs: int = 1,
    ) -> VerifyReport:
        """Check every signature and the whole chain against ``jwks`` (default: the store's
        own keys, which only proves self-consistency; pass the published JWKS to trust it).

        The index columns the queries use must agree with the signed records too.
        """
        keys = _resolve_keys(jwks, self.keys)

        def items() -> Iterator[tuple[str, dict[str, Any]]]:
            for row in self._iter_rows(5000):
                index = dict(zip(_INDEX_COLS, row[:6], strict=True))
                index["valid_until"] = row[6]
                index["hash"] = row[7]
                yield str(row[8]), index

        return verify_records(
            items(),
            keys,
            keep_hashes=keep_hashes,
            every_signature=every_signature,
            checkpoint=checkpoint,
            jobs=jobs,
        )

    # --- Merkle tree ------------------------------------------------------------------------
    def _leaves(self, tree_size: int | None) -> list[bytes]:
        sql = "SELECT hash FROM records ORDER BY seq"
        args: tuple[Any, ...] = ()
        if tree_size is not None:
            sql = "SELECT hash FROM records WHERE seq <= ? ORDER BY seq"
            args = (tree_size,)
        with self.db.read() as conn:
            rows = conn.execute(sql, args).fetchall()
        if tree_size is not None and len(rows) != tree_size:
            raise RecordError(f"the store has {len(rows)} records, fewer than {tree_size}")
        return [leaf_hash(bytes.fromhex(r[0])) for r in rows]

    def tree_head(self, *, now: float | None = None) -> TreeHead:
        """A signed tree head over the whole chain, to publish (e.g. daily) as a checkpoint."""
        if self.keys is None:
            raise SigningKeyError("signing a tree head needs the signing key")
        with self.db.read() as conn:
            rows = conn.execute("SELECT hash FROM records ORDER BY seq").fetchall()
        leaves = [leaf_hash(bytes.fromhex(r[0])) for r in rows]
        head = TreeHead(
            tree_size=len(rows),
            root_hash=merkle_root(leaves).hex(),
            head_hash=str(rows[-1][0]) if rows else None,
            issued_at=int(time.time() if now is None else now),
        )
        return head.sign(self.keys)

    def inclusion_proof(self, record_id: str, tree_head: TreeHead) -> InclusionProof:
        """Proof that ``record_id`` is in the tree ``tree_head`` publishes."""
        rec = self.get(record_id)
        if rec is None:
            raise RecordError(f"no record {record_id!r} in this store")
        if rec.seq > tree_head.tree_size:
            raise RecordError(
                f"record {record_id} (seq {rec.seq}) is newer than the tree head "
                f"({tree_head.tree_size} records); publish a newer head first"
            )
        leaves = self._leaves(tree_head.tree_size)
        path = inclusion_path(rec.seq - 1, leaves)
        return InclusionProof(rec.jws, rec.seq - 1, tree_head.jws, tuple(p.hex() for p in path))


def _resolve_keys(
    jwks: dict[str, Any] | str | Path | dict[str, PublicKey] | None, own: SigningKeys | None
) -> dict[str, PublicKey]:
    if jwks is None:
        if own is None:
            raise RecordError("verify needs a JWKS of the trusted public keys")
        return own.public_keys()
    if isinstance(jwks, dict) and jwks and all(isinstance(v, PublicKey) for v in jwks.values()):
        return {str(k): v for k, v in jwks.items() if isinstance(v, PublicKey)}
    return load_jwks(jwks)


def default_db_path(cfg: RecordConfig | None = None) -> Path:
    """``records.db_path`` if set, else ``records.db`` in the user's data folder (created)."""
    if cfg is not None and cfg.db_path:
        return Path(cfg.db_path).expanduser()
    import platformdirs

    folder = Path(platformdirs.user_data_dir("liveness"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "records.db"
