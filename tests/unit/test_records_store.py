"""The record store: content, durability contract, queries, append-only, validity."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from liveness.config import RecordConfig
from liveness.errors import RecordError, SigningKeyError
from liveness.records import CertRecord, RecordStore, SigningKeys
from liveness.records.record import PAYLOAD_FIELDS, add_months
from liveness.results import Decision, DigitTiming, Reason, Score, Verdict

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z


def decision(subject: str = "u1", verdict: Verdict = Verdict.PASS, **kw: object) -> Decision:
    base: dict[str, object] = {
        "verdict": verdict,
        "subject_id": subject,
        "challenge_nonce": "nonce-" + subject,
        "scores": (Score(name="match", value=0.41, threshold=0.6, higher_is_better=False),),
        "model_versions": {"embedder": "dlib-resnet-v1"},
        "config_hash": "c" * 64,
        "clip_sha256": "a" * 64,
    }
    base.update(kw)
    return Decision(**base)  # type: ignore[arg-type]


@pytest.fixture
def keys() -> SigningKeys:
    return SigningKeys.generate()


@pytest.fixture
def store(tmp_path: Path, keys: SigningKeys) -> RecordStore:
    return RecordStore.open(tmp_path / "records.db", keys)


def test_record_holds_exactly_the_listed_fields_and_no_biometrics(store: RecordStore) -> None:
    d = decision(
        best_frame_jpeg=b"\xff\xd8JPEGDATA",
        digits_heard="123456",
        digit_timings=(DigitTiming(digit="1", start=0.1, end=0.3),),
        details={"embedding": [0.1] * 128},
        reasons=(Reason.LOW_QUALITY,),
    )
    rec = store.append_decision(d, now=T0)
    payload = rec.payload()
    assert set(payload) == PAYLOAD_FIELDS
    blob = rec.jws
    assert "JPEGDATA" not in str(payload) and "embedding" not in blob
    assert "123456" not in str(payload) and "digit" not in str(payload)
    assert payload["clip_sha256"] == "a" * 64
    assert payload["operator_id"] == "u1" and payload["relationship"] == "self"
    assert payload["reasons"] == ["LOW_QUALITY"]
    assert payload["scores"][0] == {
        "name": "match",
        "value": 0.41,
        "threshold": 0.6,
        "higher_is_better": False,
        "passed": True,
    }
    assert payload["prev_hash"] is None and payload["seq"] == 1


def test_pass_valid_twelve_calendar_months_fail_has_no_validity(store: RecordStore) -> None:
    p = store.append_decision(decision(), now=T0)
    f = store.append_decision(decision(verdict=Verdict.FAIL), now=T0 + 10)
    assert p.valid_until == int(datetime(2028, 1, 15, 8, 0, tzinfo=UTC).timestamp())
    assert f.valid_until is None
    assert add_months(int(datetime(2027, 1, 31, tzinfo=UTC).timestamp()), 1) == int(
        datetime(2027, 2, 28, tzinfo=UTC).timestamp()
    )
    assert add_months(int(datetime(2028, 2, 29, tzinfo=UTC).timestamp()), 12) == int(
        datetime(2029, 2, 28, tzinfo=UTC).timestamp()
    )


def test_validity_is_configurable(tmp_path: Path, keys: SigningKeys) -> None:
    s = RecordStore.open(tmp_path / "r.db", keys, RecordConfig(validity_months=6))
    r = s.append_decision(decision(), now=T0)
    assert r.valid_until == int(datetime(2027, 7, 15, 8, tzinfo=UTC).timestamp())


def test_chain_links_each_record_to_the_previous_hash(store: RecordStore) -> None:
    recs = [store.append_decision(decision(f"u{i}"), now=T0 + i) for i in range(4)]
    for prev, cur in zip(recs, recs[1:], strict=False):
        assert cur.prev_hash == prev.hash and cur.seq == prev.seq + 1
    assert store.head() == (4, recs[-1].hash)
    assert len(store) == 4


def test_history_newest_first_and_current(store: RecordStore) -> None:
    a = store.append_decision(decision("u1"), now=T0)
    store.append_decision(decision("u2"), now=T0 + 1)
    b = store.append_decision(
        decision("u1", Verdict.FAIL, reasons=(Reason.FACE_MISMATCH,)), now=T0 + 2
    )
    hist = store.history("u1")
    assert [r.record_id for r in hist] == [b.record_id, a.record_id]
    assert store.history("nobody") == []
    # a later FAIL does not revoke the earlier PASS
    cur = store.current("u1", now=T0 + 100)
    assert cur is not None and cur.record_id == a.record_id
    assert store.current("u1", now=a.valid_until) is None  # expired exactly at valid_until
    assert store.current("u1", now=T0 - 1) is None  # not yet issued
    assert store.get(b.record_id) == b


def test_expiring_within_reports_each_subject_once_by_newest_pass(store: RecordStore) -> None:
    day = 86400
    store.append_decision(decision("old"), now=T0)  # expires T0 + 365 days
    store.append_decision(decision("renewed"), now=T0)
    store.append_decision(decision("renewed"), now=T0 + 200 * day)  # renewed later
    store.append_decision(decision("failed", Verdict.FAIL), now=T0)
    valid_until_old = add_months(T0, 12)
    now = valid_until_old - 10 * day
    got = store.expiring_within(30, now=now)
    assert [r.subject_id for r in got] == ["old"]
    assert store.expiring_within(5, now=now) == []
    assert store.expiring_within(30, now=valid_until_old + 1) == []  # already expired


def test_rows_cannot_be_updated_or_deleted(store: RecordStore, tmp_path: Path) -> None:
    store.append_decision(decision(), now=T0)
    con = sqlite3.connect(tmp_path / "records.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE records SET verdict = 'FAIL'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM records")
    con.close()


def test_append_without_key_or_subject_is_refused(tmp_path: Path, keys: SigningKeys) -> None:
    ro = RecordStore.open(tmp_path / "r.db")
    with pytest.raises(SigningKeyError):
        ro.append_decision(decision())
    s = RecordStore.open(tmp_path / "r.db", keys)
    with pytest.raises(RecordError, match="subject"):
        s.append_decision(decision(subject=""))
    with pytest.raises(RecordError, match="relationship"):
        s.append_decision(decision("u1"), operator_id="u2")
    nan = decision(scores=(Score(name="live", value=float("nan"), threshold=0.5),))
    with pytest.raises(RecordError, match="non-finite"):
        s.append_decision(nan)
    assert len(s) == 0  # nothing half-written


def test_proxy_record_names_operator_and_relationship(store: RecordStore) -> None:
    r = store.append_decision(decision("mother"), operator_id="son", relationship="parent")
    assert r.proxy and r.operator_id == "son" and r.relationship == "parent"
    assert r.subject_id == "mother"


def test_batch_append_is_all_or_nothing(store: RecordStore) -> None:
    good = decision("a")
    bad = decision("", verdict=Verdict.FAIL)
    with pytest.raises(RecordError):
        store.append_many([good, good, bad])
    assert len(store) == 0
    out = store.append_many([good, good])
    assert [r.seq for r in out] == [1, 2] and out[1].prev_hash == out[0].hash


def test_not_a_database_is_a_record_error(tmp_path: Path) -> None:
    p = tmp_path / "junk.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RecordError):
        RecordStore.open(p)
    with pytest.raises(RecordError):
        RecordStore.open(tmp_path / "missing-dir" / "r.db")


def test_cert_record_parses_back_from_jws(store: RecordStore) -> None:
    r = store.append_decision(decision(), now=T0)
    assert CertRecord.from_jws(r.jws) == r
    assert r.to_dict()["issued_at_utc"] == "2027-01-15T08:00:00Z"
    with pytest.raises(RecordError):
        CertRecord.from_jws("a.b.c")
