"""Proxy certification: the member's photo is the reference, the record names both."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.config import RecordConfig
from liveness.errors import FamilyError
from liveness.family import FamilyAccounts, ProxyCertifier
from liveness.records import AttemptLimiter, RecordStore, SigningKeys
from liveness.results import Decision, Reason, Verdict

NOW = 1_800_000_000.0


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (40, 30, 3), dtype=np.uint8))
    assert ok
    return bytes(buf)


MUM_PHOTO, SON_PHOTO = jpeg(1), jpeg(2)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[ProxyCertifier, RecordStore, AttemptLimiter, SigningKeys]:
    keys = SigningKeys.generate()
    cfg = RecordConfig(max_failures=2)
    store = RecordStore.open(tmp_path / "r.db", keys, cfg)
    fam = FamilyAccounts(store.db)  # same database as the records
    fam.bind(
        "son",
        "mum",
        "parent",
        birth_date="1948-02-03",
        card_photo=MUM_PHOTO,
        face_verified=Decision(verdict=Verdict.PASS, subject_id="mum"),
        now=NOW,
    )
    limiter = store.limiter()
    return ProxyCertifier(fam, store, limiter), store, limiter, keys


def engine_like(photos_seen: list[bytes]):  # type: ignore[no-untyped-def]
    """Stands in for Engine.certify with the clip bound in: passes only the mother's photo."""

    def certify(reference: bytes) -> Decision:
        photos_seen.append(reference)
        ok = reference == MUM_PHOTO
        return Decision(
            verdict=Verdict.PASS if ok else Verdict.FAIL,
            reasons=() if ok else (Reason.FACE_MISMATCH,),
            subject_id="mum",
            challenge_nonce="n1",
            clip_sha256="c" * 64,
        )

    return certify


def test_member_is_matched_against_their_own_photo_and_record_names_both(setup) -> None:  # type: ignore[no-untyped-def]
    proxy, store, _, keys = setup
    seen: list[bytes] = []
    out = proxy.certify("son", "mum", engine_like(seen), now=NOW + 10)
    assert seen == [MUM_PHOTO] and SON_PHOTO not in seen
    assert out.decision.passed and out.record is not None
    rec = out.record
    assert (rec.subject_id, rec.operator_id, rec.relationship) == ("mum", "son", "parent")
    assert rec.channel == "family" and rec.proxy
    assert store.current("mum", now=NOW + 20) == rec
    assert store.current("son", now=NOW + 20) is None
    assert store.verify(keys.public_jwks()).ok


def test_unbound_and_never_bound_members_are_refused_without_a_record(setup) -> None:  # type: ignore[no-untyped-def]
    proxy, store, _, _ = setup
    seen: list[bytes] = []
    never = proxy.certify("son", "neighbour", engine_like(seen))
    assert never.refusal is not None and never.decision.reasons == (Reason.NOT_BOUND,)
    assert never.record is None and seen == []
    proxy.family.unbind("son", "mum", now=NOW + 5)
    since = proxy.certify("son", "mum", engine_like(seen))
    assert since.decision.reasons == (Reason.NOT_BOUND,) and since.record is None
    assert "unbound" in since.decision.details["refusal"]
    self_ = proxy.certify("son", "son", engine_like(seen))
    assert self_.decision.reasons == (Reason.PROXY_NOT_ALLOWED,)
    assert len(store) == 0 and seen == []


def test_a_decision_about_someone_else_is_an_error(setup) -> None:  # type: ignore[no-untyped-def]
    proxy, store, _, _ = setup
    with pytest.raises(FamilyError, match="not the member"):
        proxy.certify("son", "mum", lambda ref: Decision(verdict=Verdict.PASS, subject_id="son"))
    assert len(store) == 0


def test_failures_lock_the_member_and_the_lock_is_a_reason(setup) -> None:  # type: ignore[no-untyped-def]
    proxy, store, limiter, _ = setup

    def wrong(reference: bytes) -> Decision:
        return Decision(verdict=Verdict.FAIL, reasons=(Reason.SPOOF_SUSPECTED,), subject_id="mum")

    proxy.certify("son", "mum", wrong, now=NOW)
    proxy.certify("son", "mum", wrong, now=NOW + 1)  # 2nd failure: max_failures=2 locks
    seen: list[bytes] = []
    locked = proxy.certify("son", "mum", engine_like(seen), now=NOW + 2)
    assert locked.decision.reasons == (Reason.TOO_MANY_ATTEMPTS,) and seen == []
    assert limiter.check("mum", now=NOW + 2) is not None
    assert len(store) == 2  # the two real attempts are on record
