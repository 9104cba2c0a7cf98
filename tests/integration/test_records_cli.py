"""`liveness records ...` end to end: keys, list, verify (DB and export), proofs, exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from liveness.cli import EXIT_NO, EXIT_OK, EXIT_RECORD, main
from liveness.records import RecordStore, SigningKeys
from liveness.results import Decision, Reason, Verdict


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh process, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "liveness", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "LIVENESS_SIGNING_KEY"},
    )


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    key, jwks, db = tmp_path / "key.pem", tmp_path / "keys.json", tmp_path / "records.db"
    assert main(["records", "keys", "generate", "--key", str(key), "--jwks", str(jwks)]) == EXIT_OK
    store = RecordStore.open(db, SigningKeys.from_pem(key))
    store.append_decision(Decision(verdict=Verdict.PASS, subject_id="gran"), now=1_700_000_000)
    store.append_decision(
        Decision(verdict=Verdict.FAIL, reasons=(Reason.FACE_MISMATCH,), subject_id="gran"),
        operator_id="grandson",
        relationship="parent",
        now=1_700_000_100,
    )
    store.append_decision(Decision(verdict=Verdict.PASS, subject_id="other"), now=1_700_000_200)
    store.close()
    return {"key": key, "jwks": jwks, "db": db, "dir": tmp_path}


def test_keys_generate_keeps_the_private_key_out_of_stdout(tmp_path: Path) -> None:
    key, jwks = tmp_path / "k.pem", tmp_path / "k.json"
    r = run("records", "keys", "generate", "--key", str(key), "--jwks", str(jwks))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pem_body = "".join(key.read_text().splitlines()[1:-1])
    assert pem_body not in r.stdout + r.stderr and "PRIVATE" not in r.stdout
    pub = json.loads(jwks.read_text())
    assert len(pub["keys"]) == 1 and "d" not in pub["keys"][0]
    # refuses to clobber a key by accident
    again = run("records", "keys", "generate", "--key", str(key), "--jwks", str(jwks))
    assert again.returncode == 2
    exported = run("records", "keys", "export", "--key", str(key))
    (got,) = json.loads(exported.stdout)["keys"]
    assert (got["kid"], got["x"]) == (pub["keys"][0]["kid"], pub["keys"][0]["x"])
    assert pem_body not in exported.stdout and "d" not in got


def test_list_json_newest_first(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["records", "list", "--subject", "gran", "--db", str(world["db"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    recs = out["records"]
    assert [r["verdict"] for r in recs] == ["FAIL", "PASS"]
    assert recs[0]["operator_id"] == "grandson" and recs[0]["relationship"] == "parent"
    assert recs[1]["valid_until_utc"] == "2024-11-14T22:13:20Z"
    assert main(["records", "list", "--subject", "gran", "--db", str(world["db"])]) == 0
    text = capsys.readouterr().out
    assert "FACE_MISMATCH" in text and "by grandson (parent)" in text


def test_verify_db_and_export_then_detect_a_tampered_export(world: dict[str, Path]) -> None:
    db, jwks, d = str(world["db"]), str(world["jwks"]), world["dir"]
    ok = run("records", "verify", db, "--jwks", jwks, "--json")
    assert ok.returncode == 0, ok.stderr
    rep = json.loads(ok.stdout)
    assert rep["ok"] and rep["records"] == 3 and rep["first_error"] is None
    export = d / "export.jsonl"
    assert run("records", "export", "--db", db, "--out", str(export)).returncode == 0
    assert run("records", "verify", str(export), "--jwks", jwks).returncode == 0
    lines = export.read_text().splitlines()
    export.write_text("\n".join([lines[0], lines[2]]) + "\n")  # drop the middle record
    bad = run("records", "verify", str(export), "--jwks", jwks, "--json")
    assert bad.returncode == EXIT_NO
    err = json.loads(bad.stdout)["first_error"]
    assert err["position"] == 2 and err["kind"] == "sequence" and err["seq"] == 3
    text = run("records", "verify", str(export), "--jwks", jwks)
    assert text.returncode == EXIT_NO and text.stdout.startswith("BROKEN: record 2 (seq 3)")


def test_verify_with_a_foreign_jwks_fails_with_unknown_kid(world: dict[str, Path]) -> None:
    other = world["dir"] / "other.json"
    other.write_text(json.dumps(SigningKeys.generate().public_jwks()))
    r = run("records", "verify", str(world["db"]), "--jwks", str(other), "--json")
    assert r.returncode == EXIT_NO
    assert json.loads(r.stdout)["first_error"]["kind"] == "unknown_kid"


def test_rotation_through_the_cli_keeps_old_records_verifiable(world: dict[str, Path]) -> None:
    key, jwks, db = world["key"], world["jwks"], world["db"]
    old_kid = json.loads(jwks.read_text())["keys"][0]["kid"]
    r = run("records", "keys", "rotate", "--key", str(key), "--jwks", str(jwks))
    assert r.returncode == 0, r.stderr
    keys = json.loads(jwks.read_text())["keys"]
    assert [k["kid"] for k in keys][0] == old_kid and "exp" in keys[0] and len(keys) == 2
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    store = RecordStore.open(db, SigningKeys.from_pem(key, known=jwks))
    store.append_decision(Decision(verdict=Verdict.PASS, subject_id="new"))
    store.close()
    rep = json.loads(run("records", "verify", str(db), "--jwks", str(jwks), "--json").stdout)
    assert rep["ok"] and len(rep["kids"]) == 2


def test_tree_head_proof_and_checkpoint(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, key, jwks, d = str(world["db"]), str(world["key"]), str(world["jwks"]), world["dir"]
    head = d / "head.jws"
    assert main(["records", "head", "--db", db, "--key", key, "--out", str(head)]) == 0
    rid = RecordStore.open(db).history("other")[0].record_id
    capsys.readouterr()
    assert main(["records", "prove", rid, "--head", str(head), "--db", db]) == 0
    proof = d / "proof.json"
    proof.write_text(capsys.readouterr().out)
    assert main(["records", "check-proof", str(proof), "--jwks", jwks, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["record"]["subject_id"] == "other"
    forged = json.loads(proof.read_text())
    forged["leaf_index"] = 0
    proof.write_text(json.dumps(forged))
    assert main(["records", "check-proof", str(proof), "--jwks", jwks]) == EXIT_NO
    assert main(["records", "verify", db, "--jwks", jwks, "--checkpoint", str(head)]) == 0


def test_missing_store_and_bad_jwks_are_record_errors(world: dict[str, Path]) -> None:
    d = world["dir"]
    assert main(["records", "list", "--subject", "x", "--db", str(d / "nope.db")]) == EXIT_RECORD
    (d / "bad.json").write_text("{not json")
    assert (
        main(["records", "verify", str(world["db"]), "--jwks", str(d / "bad.json")]) == EXIT_RECORD
    )
