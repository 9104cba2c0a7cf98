"""Offline verification of a chain of records: every signature, every link, in order.

Input is any ordered sequence of compact JWS records (a store, or an exported JSONL file) and a
JWKS of trusted public keys. The report names the first broken link precisely (position,
record id, what is wrong) and keeps going, re-anchoring on the record it has, so that one
edit produces one or two errors rather than a cascade.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liveness.errors import RecordError, RecordIntegrityError
from liveness.records._sigpool import ParallelSignatures
from liveness.records.canonical import canonical_json, parse_canonical
from liveness.records.keys import PublicKey, b64url_decode
from liveness.records.merkle import TreeHead, leaf_hash, merkle_root
from liveness.records.record import FORMAT_VERSION, PAYLOAD_FIELDS, RECORD_TYP

__all__ = ["BrokenLink", "VerifyReport", "iter_jsonl", "verify_path", "verify_records"]

MAX_ERRORS = 100


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """One verification failure.

    ``position`` is 1-based in the input (the line of a JSONL file, the row order of a store);
    ``kind`` is one of: malformed, bad_header, unknown_kid, signature, not_canonical, key_window,
    sequence, chain, index_mismatch, checkpoint.
    """

    position: int
    kind: str
    message: str
    record_id: str | None = None
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "seq": self.seq,
            "record_id": self.record_id,
            "kind": self.kind,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"record {self.position}"
        if self.seq is not None and self.seq != self.position:
            where += f" (seq {self.seq})"
        if self.record_id:
            where += f" [{self.record_id}]"
        return f"{where}: {self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of verifying a chain. ``ok`` only if there is no error at all."""

    records: int
    head_hash: str | None
    kids: dict[str, int]
    errors: tuple[BrokenLink, ...]
    truncated_errors: int = 0
    seconds: float = 0.0
    hashes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def first_error(self) -> BrokenLink | None:
        return self.errors[0] if self.errors else None

    def raise_for_errors(self) -> None:
        if self.errors:
            raise RecordIntegrityError(
                f"the record chain does not verify: {self.errors[0]}"
                + (f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else "")
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head_hash": self.head_hash,
            "kids": dict(self.kids),
            "first_error": self.first_error.to_dict() if self.first_error else None,
            "errors": [e.to_dict() for e in self.errors],
            "more_errors": self.truncated_errors,
            "seconds": round(self.seconds, 3),
        }


_Header = tuple[PublicKey | None, str | None]  # (key, error message)


def _check_header(seg: str, keys: Mapping[str, PublicKey], typ: str) -> _Header:
    try:
        raw = b64url_decode(seg)
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, "bad_header:the protected header is not base64url JSON"
    if not isinstance(header, dict):
        return None, "bad_header:the protected header is not a JSON object"
    if header.get("alg") != "EdDSA":
        return None, f"bad_header:alg must be EdDSA, got {header.get('alg')!r}"
    if header.get("typ") != typ:
        return None, f"bad_header:typ must be {typ!r}, got {header.get('typ')!r}"
    if set(header) != {"alg", "kid", "typ"}:
        return None, f"bad_header:unexpected header members {sorted(set(header))}"
    if canonical_json(header) != raw:
        return None, "not_canonical:the protected header is not in canonical form"
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        return None, f"unknown_kid:signed by key {kid!r}, which is not in the JWKS"
    return key, None


def verify_records(
    items: Iterable[str | tuple[str, Mapping[str, Any]]],
    keys: Mapping[str, PublicKey],
    *,
    typ: str = RECORD_TYP,
    keep_hashes: bool = False,
    every_signature: bool = True,
    standalone: bool = False,
    checkpoint: TreeHead | None = None,
    jobs: int = 1,
) -> VerifyReport:
    """Verify an ordered chain of compact JWS records against trusted public keys.

    An item is a JWS, or ``(jws, index)`` where ``index`` holds the columns a store keeps beside
    the JWS (``seq``, ``record_id``, ``subject_id``, ``verdict``, ``issued_at``,
    ``valid_until``, ``hash``...): those must agree with the signed payload, so that queries
    cannot be misled by an edited index.

    ``every_signature=False`` is the fast chain check: every link, header, kid, canonical form
    and index is still checked, but only the newest record's signature. Because each payload
    commits to the previous payload's hash, that one signature authenticates the content of the
    whole chain; it does not vouch for the older records' own signatures (a third party
    holding one old JWS needs those), so the full check remains the default.

    ``standalone=True`` checks records one by one, not as a chain (one record from a proof).
    ``checkpoint`` is a verified signed tree head the chain must extend: its first
    ``tree_size`` records must have that Merkle root, which catches a truncated store.
    ``jobs > 1`` checks the signatures in that many worker processes (same result, less time
    on a machine with free cores).
    """
    pool = ParallelSignatures(dict(keys), jobs) if jobs > 1 and every_signature else None
    sig_info: dict[int, tuple[Any, Any, str]] = {}
    if checkpoint is not None:
        keep_hashes = True
    t0 = time.perf_counter()
    headers: dict[str, _Header] = {}
    errors: list[BrokenLink] = []
    dropped = 0
    kids: dict[str, int] = {}
    hashes: list[str] = []
    prev_hash: str | None = None
    last_signed: tuple[PublicKey, bytes, str, str, Any, Any] | None = None
    expected_seq = 1
    n = 0

    def fail(kind: str, msg: str, rid: Any = None, seq: Any = None, at: int | None = None) -> None:
        nonlocal dropped
        if len(errors) < MAX_ERRORS:
            errors.append(
                BrokenLink(
                    n if at is None else at,
                    kind,
                    msg,
                    rid if isinstance(rid, str) else None,
                    seq if isinstance(seq, int) else None,
                )
            )
        else:
            dropped += 1

    for item in items:
        n += 1
        if isinstance(item, tuple):
            jws, index = item
        else:
            jws, index = item, None
        parts = jws.split(".") if isinstance(jws, str) else []
        if len(parts) != 3:
            fail("malformed", "not a compact JWS (three base64url parts)")
            prev_hash, expected_seq = None, expected_seq + 1
            continue
        hseg, pseg, sseg = parts
        hinfo = headers.get(hseg)
        if hinfo is None:
            hinfo = headers[hseg] = _check_header(hseg, keys, typ)
        key, herr = hinfo
        try:
            body = b64url_decode(pseg)
            sig = b64url_decode(sseg)
        except ValueError:
            body, sig = b"", b""
            herr = herr or "malformed:payload or signature is not base64url"
        payload: Any = None
        canon_err: str | None = None
        if body:
            try:
                payload = parse_canonical(body)
            except RecordError as exc:
                canon_err = exc.message
                try:
                    payload = json.loads(body)
                except (ValueError, UnicodeDecodeError):
                    payload = None
        rid = payload.get("record_id") if isinstance(payload, dict) else None
        seq = payload.get("seq") if isinstance(payload, dict) else None
        digest = hashlib.sha256(body).hexdigest()
        if herr is not None:
            kind, _, msg = herr.partition(":")
            fail(kind, msg, rid, seq)
        elif key is not None and (
            len(sig) != 64
            or (
                every_signature
                and pool is None
                and not key.verify(sig, (hseg + "." + pseg).encode("ascii"))
            )
        ):
            fail("signature", f"the Ed25519 signature does not verify with key {key.kid}", rid, seq)
        elif not isinstance(payload, dict) or key is None:
            fail("malformed", "the payload is not a JSON object", rid, seq)
        else:
            kids[key.kid] = kids.get(key.kid, 0) + 1
            err = (
                f"not_canonical:{canon_err}"
                if canon_err is not None and payload is not None
                else _check_payload(payload, key, prev_hash, expected_seq, standalone)
            )
            if err is not None:
                kind, _, msg = err.partition(":")
                fail(kind, msg, rid, seq)
            elif index is not None:
                bad = _check_index(index, payload, digest)
                if bad is not None:
                    fail("index_mismatch", bad, rid, seq)
        if pool is not None and key is not None and herr is None and len(sig) == 64:
            pool.add(n, key.kid, (hseg + "." + pseg).encode("ascii"), sig)
            sig_info[n] = (rid, seq, key.kid)
        last_signed = (key, sig, hseg, pseg, rid, seq) if key is not None else None
        prev_hash = digest
        expected_seq = (
            seq if isinstance(seq, int) and not isinstance(seq, bool) else expected_seq
        ) + 1
        if keep_hashes:
            hashes.append(digest)
    if pool is not None:
        for pos in pool.failures():
            rid, seq, kid = sig_info[pos]
            fail(
                "signature", f"the Ed25519 signature does not verify with key {kid}", rid, seq, pos
            )
        errors.sort(key=lambda e: (e.position, e.kind != "signature"))
        del errors[MAX_ERRORS:]
    if not every_signature and last_signed is not None:
        key, sig, hseg, pseg, rid, seq = last_signed
        if not key.verify(sig, (hseg + "." + pseg).encode("ascii")):
            fail(
                "signature",
                f"the newest record's signature does not verify with key {key.kid}",
                rid,
                seq,
            )
    if checkpoint is not None:
        n_cp = checkpoint.tree_size
        if len(hashes) < n_cp:
            fail(
                "checkpoint",
                f"the published tree head covers {n_cp} records but only {len(hashes)} are here "
                "(records removed from the end)",
                at=len(hashes) + 1,
            )
        else:
            root = merkle_root([leaf_hash(bytes.fromhex(h)) for h in hashes[:n_cp]])
            if root.hex() != checkpoint.root_hash:
                fail(
                    "checkpoint",
                    f"the first {n_cp} records do not have the published Merkle root "
                    f"{checkpoint.root_hash}",
                    at=n_cp,
                )
    return VerifyReport(
        records=n,
        head_hash=prev_hash,
        kids=kids,
        errors=tuple(errors),
        truncated_errors=dropped,
        seconds=time.perf_counter() - t0,
        hashes=tuple(hashes),
    )


def _check_payload(
    p: dict[str, Any], key: PublicKey, prev_hash: str | None, expected_seq: int, standalone: bool
) -> str | None:
    if p.get("v") != FORMAT_VERSION:
        return f"malformed:unknown record format version {p.get('v')!r}"
    if set(p) != PAYLOAD_FIELDS:
        extra = sorted(set(p) - PAYLOAD_FIELDS)
        missing = sorted(PAYLOAD_FIELDS - set(p))
        return f"malformed:record members differ from the format (extra {extra}, missing {missing})"
    seq = p["seq"]
    if not standalone and seq != expected_seq:
        return (
            f"sequence:expected seq {expected_seq}, found {seq!r} "
            "(a record removed, reordered or inserted)"
        )
    if not standalone and p["prev_hash"] != prev_hash:
        return (
            f"chain:prev_hash is {p['prev_hash']!r} but the previous record hashes to "
            f"{prev_hash!r} (a record removed, reordered, inserted or altered before this one)"
        )
    issued = p["issued_at"]
    if key.not_after is not None and isinstance(issued, int) and issued > key.not_after:
        return (
            f"key_window:signed by key {key.kid} at {issued}, after that key was retired "
            f"at {key.not_after}"
        )
    return None


def _check_index(index: Mapping[str, Any], p: dict[str, Any], digest: str) -> str | None:
    for col, val in index.items():
        want = digest if col == "hash" else p.get(col)
        if val != want:
            return f"the store's {col} column says {val!r} but the signed record says {want!r}"
    return None


def iter_jsonl(path: str | Path) -> Iterator[str]:
    """The JWS records of an export file: one compact JWS per line, blank lines ignored."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    yield line
    except OSError as exc:
        raise RecordError(f"cannot read record export {path}: {exc.strerror}") from None


def is_sqlite(path: str | Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror}") from None


def verify_path(
    path: str | Path,
    keys: Mapping[str, PublicKey],
    *,
    every_signature: bool = True,
    keep_hashes: bool = False,
    checkpoint: TreeHead | None = None,
    jobs: int = 1,
) -> VerifyReport:
    """Verify a record store (SQLite file) or an export (JSONL of JWS), chosen by content."""
    if is_sqlite(path):
        from liveness.records.store import RecordStore

        store = RecordStore.open(path)
        try:
            return store.verify(
                dict(keys),
                every_signature=every_signature,
                keep_hashes=keep_hashes,
                checkpoint=checkpoint,
                jobs=jobs,
            )
        finally:
            store.close()
    return verify_records(
        iter_jsonl(path),
        keys,
        every_signature=every_signature,
        keep_hashes=keep_hashes,
        checkpoint=checkpoint,
        jobs=jobs,
    )
