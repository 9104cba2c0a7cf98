"""RFC 6962 / RFC 9162 Merkle tree over the record chain: signed tree heads and inclusion proofs.

Leaf ``i`` is the record at seq ``i + 1``; its leaf input is the 32-byte record hash (SHA-256 of
the canonical payload), so ``leaf_hash = SHA-256(0x00 || record_hash)`` and an inner node is
``SHA-256(0x01 || left || right)``. A signed tree head (a JWS of ``typ: liveness-tree-head``)
publishes the root of the first ``tree_size`` records; with an inclusion proof a third party
checks one record against it without the store, and ``verify(checkpoint=...)`` proves that a
store still extends a published head, so truncating the newest records is detected too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from liveness.errors import RecordError, RecordIntegrityError
from liveness.records.canonical import parse_canonical
from liveness.records.keys import PublicKey, SigningKeys, b64url_decode
from liveness.records.record import sign_payload

__all__ = [
    "TREE_HEAD_TYP",
    "InclusionProof",
    "TreeHead",
    "inclusion_path",
    "leaf_hash",
    "merkle_root",
    "verify_inclusion",
]

TREE_HEAD_TYP = "liveness-tree-head"


def leaf_hash(record_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + record_hash).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 6962 2.1), in O(n) with a stack of perfect subtrees."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    stack: list[tuple[int, bytes]] = []  # (size, hash), sizes strictly decreasing
    for leaf in leaves:
        size, h = 1, leaf
        while stack and stack[-1][0] == size:
            s, left = stack.pop()
            size, h = s + size, _node(left, h)
        stack.append((size, h))
    h = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        h = _node(left, h)
    return h


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaves`` (RFC 6962 2.1.1)."""
    if not 0 <= index < len(leaves):
        raise RecordError(f"leaf {index} is outside a tree of {len(leaves)}")
    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            path.append(merkle_root(leaves[lo + k : hi]))
            hi = lo + k
        else:
            path.append(merkle_root(leaves[lo : lo + k]))
            lo = lo + k
    path.reverse()
    return path


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``path`` prove leaf ``index`` in the tree with this root?"""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The Merkle root of the first ``tree_size`` records, signed when published."""

    tree_size: int
    root_hash: str
    head_hash: str | None  # hash of record ``tree_size`` (the chain head then)
    issued_at: int
    jws: str = ""

    def payload(self) -> dict[str, Any]:
        return {
            "v": 1,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "head_hash": self.head_hash,
            "issued_at": self.issued_at,
        }

    def sign(self, keys: SigningKeys) -> TreeHead:
        jws, _ = sign_payload(self.payload(), keys, TREE_HEAD_TYP)
        return TreeHead(self.tree_size, self.root_hash, self.head_hash, self.issued_at, jws)

    @classmethod
    def parse(cls, jws: str) -> TreeHead:
        """Read a signed tree head WITHOUT checking its signature (use ``verify`` to trust it)."""
        head, _, _ = cls._split(jws)
        return head

    @classmethod
    def verify(cls, jws: str, keys: Mapping[str, PublicKey]) -> TreeHead:
        """Parse a signed tree head, checking its signature; RecordIntegrityError if bad."""
        head, kid, (signing_input, sig) = cls._split(jws)
        key = keys.get(kid)
        if key is None:
            raise RecordIntegrityError(f"tree head signed by unknown key {kid!r}")
        if not key.verify(sig, signing_input):
            raise RecordIntegrityError("the tree head's signature does not verify")
        return head

    @classmethod
    def _split(cls, jws: str) -> tuple[TreeHead, str, tuple[bytes, bytes]]:
        try:
            h, p, s = jws.strip().split(".")
            header = json.loads(b64url_decode(h))
            payload = parse_canonical(b64url_decode(p))
            sig = b64url_decode(s)
        except (ValueError, RecordError) as exc:
            raise RecordIntegrityError(f"not a signed tree head: {exc}") from None
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise RecordIntegrityError("not a signed tree head (not JSON objects)")
        if header.get("alg") != "EdDSA" or header.get("typ") != TREE_HEAD_TYP:
            raise RecordIntegrityError("not a signed tree head (wrong alg or typ)")
        try:
            head = cls(
                int(payload["tree_size"]),
                str(payload["root_hash"]),
                payload["head_hash"],
                int(payload["issued_at"]),
                jws.strip(),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordIntegrityError(f"malformed tree head: {exc}") from None
        return head, str(header.get("kid")), (f"{h}.{p}".encode("ascii"), sig)

    def to_dict(self) -> dict[str, Any]:
        return {**self.payload(), "jws": self.jws}


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Everything a third party needs to check one record offline (with the JWKS)."""

    record_jws: str
    index: int  # 0-based leaf index = seq - 1
    tree_head: str  # signed tree head JWS
    path: tuple[str, ...]  # hex hashes, leaf to root

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": self.record_jws,
            "leaf_index": self.index,
            "tree_head": self.tree_head,
            "audit_path": list(self.path),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InclusionProof:
        try:
            return cls(
                str(d["record"]),
                int(d["leaf_index"]),
                str(d["tree_head"]),
                tuple(str(x) for x in d["audit_path"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"not an inclusion proof: {exc}") from None

    def verify(self, keys: Mapping[str, PublicKey]) -> TreeHead:
        """Check the record's signature, the tree head's signature and the audit path."""
        from liveness.records.verify import verify_records

        head = TreeHead.verify(self.tree_head, keys)
        parts = self.record_jws.split(".")
        rep = verify_records([self.record_jws], keys, standalone=True)
        if not rep.ok or len(parts) != 3:
            raise RecordIntegrityError(f"the record does not verify: {rep.first_error}")
        try:
            body = b64url_decode(parts[1])
            seq = json.loads(body)["seq"]
            path = [bytes.fromhex(x) for x in self.path]
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordIntegrityError(f"malformed inclusion proof: {exc}") from None
        if seq != self.index + 1:
            raise RecordIntegrityError(
                f"the proof is for leaf {self.index} but the record is {seq}"
            )
        leaf = leaf_hash(hashlib.sha256(body).digest())
        if not verify_inclusion(
            self.index, head.tree_size, leaf, path, bytes.fromhex(head.root_hash)
        ):
            raise RecordIntegrityError("the audit path does not lead to the signed root")
        return head
