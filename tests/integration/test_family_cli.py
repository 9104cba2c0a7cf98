"""`liveness family bind | unbind | list` with --json, on the record store's database."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.cli import EXIT_FAMILY, main
from liveness.records import RecordStore, SigningKeys
from liveness.results import Decision, Verdict


def card_number(birth: date) -> str:
    body = "110105" + birth.strftime("%Y%m%d") + "456"
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    photo = tmp_path / "photo.jpg"
    ok, buf = cv2.imencode(".jpg", np.full((64, 48, 3), 128, np.uint8))
    assert ok
    photo.write_bytes(bytes(buf))
    return {"db": tmp_path / "records.db", "photo": photo}


def fam(env: dict[str, Path], capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["family", *argv, "--db", str(env["db"]), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_bind_minor_and_adult_list_unbind(
    env: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    kid_birth = date(date.today().year - 8, 1, 2)
    code, out = fam(
        env, capsys, "bind", "dad", "kid", "--relation", "child",
        "--birth-date", kid_birth.isoformat(), "--card-number", card_number(kid_birth),
        "--one-inch-photo", str(env["photo"]),
    )  # fmt: skip
    assert code == 0 and out["ok"] and out["binding"]["slot"] == 1 and out["binding"]["minor"]
    assert out["slots_left"] == 9
    # an adult needs the record of their face verification, made just now
    code, out = fam(
        env, capsys, "bind", "dad", "grandma", "--relation", "parent", "--birth-date", "1945-03-04",
        "--card-photo", str(env["photo"]),
    )  # fmt: skip
    assert code == EXIT_FAMILY and out["rule"] == "face_not_verified"
    store = RecordStore.open(env["db"], SigningKeys.generate())
    rec = store.append_decision(
        Decision(verdict=Verdict.PASS, subject_id="grandma"), now=time.time()
    )
    code, out = fam(
        env, capsys, "bind", "dad", "grandma", "--relation", "parent", "--birth-date", "1945-03-04",
        "--card-photo", str(env["photo"]), "--face-record", rec.record_id,
    )  # fmt: skip
    assert (
        code == 0 and out["binding"]["evidence"]["face_verification"]["record_id"] == rec.record_id
    )
    code, out = fam(env, capsys, "list", "dad")
    assert code == 0 and [m["member_id"] for m in out["members"]] == ["kid", "grandma"]
    code, out = fam(env, capsys, "unbind", "dad", "kid")
    assert code == 0 and out["binding"]["unbound_at"] and out["slots_left"] == 8
    code, out = fam(env, capsys, "unbind", "dad", "kid")
    assert code == EXIT_FAMILY and out["rule"] == "not_bound"
    code, out = fam(env, capsys, "list", "dad", "--all")
    assert [m["slot"] for m in out["members"]] == [1, 2] and out["slots_left"] == 8


def test_family_cli_in_a_real_process(env: dict[str, Path]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "liveness", "family", "bind", "a", "b", "--relation", "spouse",
         "--birth-date", "1970-01-01", "--db", str(env["db"]), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == EXIT_FAMILY
    assert json.loads(r.stdout)["rule"] == "missing_evidence"
    r2 = subprocess.run(
        [sys.executable, "-m", "liveness", "family", "list", "a", "--db", str(env["db"])],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r2.returncode == 0 and "0 bound, 10 slots left" in r2.stdout
