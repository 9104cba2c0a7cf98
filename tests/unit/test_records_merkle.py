"""RFC 6962 Merkle tree: roots, inclusion proofs, signed tree heads, truncation checkpoints."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.errors import RecordIntegrityError
from liveness.records import RecordStore, SigningKeys
from liveness.records.merkle import (
    InclusionProof,
    TreeHead,
    inclusion_path,
    leaf_hash,
    merkle_root,
    verify_inclusion,
)
from liveness.records.verify import verify_path
from liveness.results import Decision, Verdict


def mth(d: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written as the RFC writes it (over leaf inputs)."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def inputs(n: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 100])
def test_root_matches_the_rfc_definition(n: int) -> None:
    d = inputs(n)
    assert merkle_root([leaf_hash(x) for x in d]) == mth(d)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_every_inclusion_proof_verifies_and_a_wrong_one_does_not(
    n: int, data: st.DataObject
) -> None:
    leaves = [leaf_hash(x) for x in inputs(n)]
    root = merkle_root(leaves)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    path = inclusion_path(i, leaves)
    assert verify_inclusion(i, n, leaves[i], path, root)
    other = (i + 1) % n
    if other != i:
        assert not verify_inclusion(other, n, leaves[i], path, root)
        assert not verify_inclusion(i, n, leaves[other], path, root)
    if path:
        bad = [*path]
        bad[0] = hashlib.sha256(bad[0]).digest()
        assert not verify_inclusion(i, n, leaves[i], bad, root)
        assert not verify_inclusion(i, n, leaves[i], path[:-1], root)


def _store(tmp_path: Path, n: int) -> tuple[RecordStore, SigningKeys]:
    keys = SigningKeys.generate()
    store = RecordStore.open(tmp_path / "r.db", keys)
    store.append_many(
        [
            Decision(verdict=Verdict.PASS, subject_id=f"s{i}", challenge_nonce=str(i))
            for i in range(n)
        ]
    )
    return store, keys


def test_a_third_party_checks_one_record_with_its_proof(tmp_path: Path) -> None:
    store, keys = _store(tmp_path, 11)
    head = store.tree_head(now=1_800_000_000)
    rec = store.history("s6")[0]
    proof = store.inclusion_proof(rec.record_id, head)
    back = InclusionProof.from_dict(proof.to_dict())
    got = back.verify(keys.public_keys())
    assert got.tree_size == 11 and got.head_hash == store.head()[1]
    # swapping in another record of the same store fails
    other = store.history("s7")[0]
    forged = InclusionProof(other.jws, proof.index, proof.tree_head, proof.path)
    with pytest.raises(RecordIntegrityError):
        forged.verify(keys.public_keys())
    # a tree head from another key fails
    stranger = SigningKeys.generate()
    with pytest.raises(RecordIntegrityError, match="unknown key"):
        TreeHead.verify(
            TreeHead(11, head.root_hash, None, 0).sign(stranger).jws, keys.public_keys()
        )


def test_checkpoint_catches_records_removed_from_the_end(tmp_path: Path) -> None:
    store, keys = _store(tmp_path, 6)
    head = TreeHead.verify(store.tree_head().jws, keys.public_keys())
    store.append_decision(Decision(verdict=Verdict.FAIL, subject_id="late"))
    assert store.verify(keys.public_jwks(), checkpoint=head).ok  # the chain extends the head
    con = sqlite3.connect(store.db.path)
    con.execute("DROP TRIGGER records_no_delete")
    con.execute("DELETE FROM records WHERE seq >= 6")
    con.commit()
    con.close()
    assert store.verify(keys.public_jwks()).ok  # the chain alone cannot tell
    rep = verify_path(store.db.path, keys.public_keys(), checkpoint=head)
    assert rep.first_error is not None and rep.first_error.kind == "checkpoint"
    assert rep.first_error.position == 6
