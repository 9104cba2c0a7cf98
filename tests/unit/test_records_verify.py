"""Offline verification: every kind of tampering is detected and located; rotation works."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from liveness.errors import RecordIntegrityError
from liveness.records import RecordStore, SigningKeys, load_jwks, verify_records
from liveness.records.keys import b64url_decode, b64url_encode
from liveness.records.record import sign_payload
from liveness.records.verify import verify_path
from liveness.results import Decision, Reason, Score, Verdict

T0 = 1_800_000_000
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def decision(subject: str, verdict: Verdict = Verdict.PASS) -> Decision:
    return Decision(
        verdict=verdict,
        reasons=() if verdict is Verdict.PASS else (Reason.SPOOF_SUSPECTED,),
        subject_id=subject,
        challenge_nonce="n-" + subject,
        scores=(Score(name="live", value=0.93, threshold=0.5),),
        model_versions={"antispoof": "minifasnet-v2"},
        config_hash="c" * 64,
        clip_sha256="a" * 64,
    )


@pytest.fixture
def chain(tmp_path: Path) -> tuple[RecordStore, SigningKeys, list[str]]:
    keys = SigningKeys.generate()
    store = RecordStore.open(tmp_path / "r.db", keys)
    for i in range(3):
        store.append_decision(
            decision(f"s{i}", Verdict.PASS if i % 2 == 0 else Verdict.FAIL), now=T0 + i
        )
    return store, keys, list(store.iter_jws())


def _verify(lines: list[str], keys: SigningKeys) -> list[str]:
    rep = verify_records(lines, keys.public_keys())
    return [e.kind for e in rep.errors]


def test_an_untouched_chain_verifies(chain: tuple[RecordStore, SigningKeys, list[str]]) -> None:
    store, keys, lines = chain
    rep = store.verify(keys.public_jwks())
    assert rep.ok and rep.records == 3 and rep.kids == {keys.kid: 3}
    assert verify_records(lines, load_jwks(keys.public_jwks())).ok
    rep.raise_for_errors()


def test_every_single_character_change_is_detected(
    chain: tuple[RecordStore, SigningKeys, list[str]],
) -> None:
    _, keys, lines = chain
    pub = keys.public_keys()
    for li, line in enumerate(lines):
        for pos, ch in enumerate(line):
            # a different base64url character (or a dot turned into one)
            repl = B64[(B64.index(ch) + 1) % 64] if ch in B64 else "A"
            changed = [*lines]
            changed[li] = line[:pos] + repl + line[pos + 1 :]
            rep = verify_records(changed, pub)
            assert not rep.ok, (li, pos)
            assert rep.first_error is not None and rep.first_error.position == li + 1


def test_every_payload_byte_change_resigned_by_an_outsider_is_detected(
    chain: tuple[RecordStore, SigningKeys, list[str]],
) -> None:
    # flipping bits in the decoded payload (not just in its base64 text)
    _, keys, lines = chain
    h, p, s = lines[1].split(".")
    body = b64url_decode(p)
    for pos in range(len(body)):
        bad = bytearray(body)
        bad[pos] ^= 0x01
        forged = f"{h}.{b64url_encode(bytes(bad))}.{s}"
        rep = verify_records([lines[0], forged, lines[2]], keys.public_keys())
        assert not rep.ok
        assert rep.first_error is not None and rep.first_error.position == 2


def test_removed_record_is_located(chain: tuple[RecordStore, SigningKeys, list[str]]) -> None:
    _, keys, lines = chain
    rep = verify_records([lines[0], lines[2]], keys.public_keys())
    assert rep.first_error is not None
    assert rep.first_error.position == 2 and rep.first_error.kind == "sequence"
    assert rep.first_error.seq == 3
    # removing the first record: the new first one has a predecessor it cannot show
    assert _verify(lines[1:], keys)[0] == "sequence"


def test_reordered_records_are_detected(chain: tuple[RecordStore, SigningKeys, list[str]]) -> None:
    _, keys, lines = chain
    rep = verify_records([lines[0], lines[2], lines[1]], keys.public_keys())
    assert not rep.ok and rep.first_error is not None and rep.first_error.position == 2


def test_inserted_record_signed_with_the_real_key_is_detected(
    chain: tuple[RecordStore, SigningKeys, list[str]], tmp_path: Path
) -> None:
    # even a record correctly signed (say, from another store) breaks the chain where it lands
    store, keys, lines = chain
    other = RecordStore.open(tmp_path / "other.db", keys)
    intruder = other.append_decision(decision("x"), now=T0).jws
    rep = verify_records([lines[0], intruder, *lines[1:]], keys.public_keys())
    assert rep.first_error is not None and rep.first_error.position == 2


def test_record_signed_by_unknown_kid_is_detected(
    chain: tuple[RecordStore, SigningKeys, list[str]],
) -> None:
    _, keys, lines = chain
    stranger = SigningKeys.generate()
    payload = verify_payload(lines[1])
    forged, _ = sign_payload(payload, stranger)
    rep = verify_records([lines[0], forged, lines[2]], keys.public_keys())
    assert rep.first_error is not None
    assert rep.first_error.kind == "unknown_kid" and rep.first_error.position == 2
    assert stranger.kid in rep.first_error.message


def verify_payload(jws: str) -> dict[str, object]:
    import json

    out: dict[str, object] = json.loads(b64url_decode(jws.split(".")[1]))
    return out


def test_edited_db_row_is_located(chain: tuple[RecordStore, SigningKeys, list[str]]) -> None:
    store, keys, lines = chain
    con = sqlite3.connect(store.db.path)
    con.execute("DROP TRIGGER records_no_update")
    # an attacker extends a FAIL into a PASS in the index columns only
    con.execute("UPDATE records SET verdict = 'PASS', valid_until = 9999999999 WHERE seq = 2")
    con.commit()
    rep = store.verify(keys.public_jwks())
    assert rep.first_error is not None
    assert rep.first_error.kind == "index_mismatch" and rep.first_error.seq == 2
    # and deleting a row in the middle
    con.execute("DROP TRIGGER records_no_delete")
    con.execute("DELETE FROM records WHERE seq = 2")
    con.commit()
    con.close()
    rep = store.verify(keys.public_jwks())
    assert rep.first_error is not None and rep.first_error.kind == "sequence"
    with pytest.raises(RecordIntegrityError):
        rep.raise_for_errors()


def test_rotation_keeps_old_records_verifiable(tmp_path: Path) -> None:
    keys = SigningKeys.generate()
    store = RecordStore.open(tmp_path / "r.db", keys)
    store.append_decision(decision("a"), now=T0)
    old = keys.kid
    keys.rotate(now=T0 + 10)
    store.append_decision(decision("b"), now=T0 + 20)
    rep = store.verify(keys.public_jwks())
    assert rep.ok and rep.kids == {old: 1, keys.kid: 1}
    # without the retired key, the old record is unknown
    only_new = {"keys": [keys.public_jwks()["keys"][-1]]}
    rep2 = store.verify(only_new)
    assert rep2.first_error is not None and rep2.first_error.kind == "unknown_kid"
    assert rep2.first_error.position == 1


def test_retired_key_cannot_sign_new_records(tmp_path: Path) -> None:
    keys = SigningKeys.generate()
    keys.save_pem(tmp_path / "old.pem")
    leaked = SigningKeys.from_pem(tmp_path / "old.pem")
    keys.rotate(now=T0)
    store = RecordStore.open(tmp_path / "r.db", leaked)
    store.append_decision(decision("a"), now=T0 + 100)  # signed after retirement
    rep = store.verify(keys.public_jwks())
    assert rep.first_error is not None and rep.first_error.kind == "key_window"


def test_fast_chain_mode_still_catches_content_edits_but_checks_one_signature(
    chain: tuple[RecordStore, SigningKeys, list[str]],
) -> None:
    _, keys, lines = chain
    assert verify_records(lines, keys.public_keys(), every_signature=False).ok
    h, p, s = lines[0].split(".")
    body = bytearray(b64url_decode(p))
    body[body.index(b"PASS")] = ord("F")
    forged = f"{h}.{b64url_encode(bytes(body))}.{s}"
    rep = verify_records([forged, *lines[1:]], keys.public_keys(), every_signature=False)
    assert not rep.ok  # the next record's prev_hash no longer matches
    bad_head = lines[2][:-3] + ("AAA" if not lines[2].endswith("AAA") else "BBB")
    assert not verify_records([*lines[:2], bad_head], keys.public_keys(), every_signature=False).ok


def test_verify_path_reads_db_and_jsonl(
    chain: tuple[RecordStore, SigningKeys, list[str]], tmp_path: Path
) -> None:
    store, keys, lines = chain
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(lines) + "\n\n")
    assert verify_path(export, keys.public_keys()).ok
    assert verify_path(store.db.path, keys.public_keys()).ok
    export.write_text("\n".join([lines[0], "garbage", lines[2]]))
    rep = verify_path(export, keys.public_keys())
    assert rep.first_error is not None and rep.first_error.kind == "malformed"
    assert rep.first_error.position == 2


def test_parallel_signature_checks_give_the_same_report(tmp_path: Path) -> None:
    keys = SigningKeys.generate()
    store = RecordStore.open(tmp_path / "r.db", keys)
    store.append_many([decision(f"s{i}") for i in range(2500)])  # more than one worker chunk
    lines = list(store.iter_jws())
    assert store.verify(keys.public_jwks(), jobs=2).ok
    # a bad signature deep in the chain, and a content edit earlier
    h, p, s = lines[2100].split(".")
    lines[2100] = f"{h}.{p}.{s[:10]}{'A' if s[10] != 'A' else 'B'}{s[11:]}"
    del lines[700]
    serial = verify_records(lines, keys.public_keys())
    parallel = verify_records(lines, keys.public_keys(), jobs=2)
    assert [e.to_dict() for e in parallel.errors] == [e.to_dict() for e in serial.errors]
    assert [e.kind for e in serial.errors] == ["sequence", "signature"]
    assert serial.errors[1].position == 2100
