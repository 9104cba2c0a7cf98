"""`liveness certify` and `liveness demo` through the real command line entry point."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from liveness import fixtures
from liveness.challenge import ChallengeAuthority
from liveness.cli import main
from liveness.config import ChallengeConfig
from tests.conftest import REPO, SHARED_DATA, require_models, shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _models() -> None:
    shared("grid")
    require_models("mtcnn", "dlib_resnet", "minifasnet", "whisper")


def test_certify_pass_then_replay_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = secrets.token_bytes(32)
    monkeypatch.setenv("LIVENESS_CHALLENGE_KEY", "hex:" + key.hex())
    store = str(tmp_path / "nonces.sqlite")
    (case,) = [
        c
        for c in fixtures.load_cases(REPO / "data" / "fixtures", shared=SHARED_DATA)
        if c.family == "genuine_synthetic"
    ]
    auth = ChallengeAuthority(key, cfg=ChallengeConfig(nonce_store=store))
    token = fixtures.issue_for_digits(auth, case.subject_id, case.digits).token
    argv = ["certify", case.clip, "--reference", case.reference, "--challenge", token,
            "--store", store, "--json", "--best-frame", str(tmp_path / "best.jpg")]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "PASS" and out["digits_heard"] == case.digits
    assert {s["name"] for s in out["scores"]} >= {"face_distance", "sync.correlation"}
    assert (tmp_path / "best.jpg").read_bytes()[:2] == b"\xff\xd8"
    # the same token again, in a new engine: the SQLite nonce store remembers it
    assert main(argv[:-2]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "FAIL" and out["reasons"] == ["CHALLENGE_REUSED"]


def test_certify_unreadable_clip_is_a_media_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = secrets.token_bytes(32)
    monkeypatch.setenv("LIVENESS_CHALLENGE_KEY", "hex:" + key.hex())
    bad = tmp_path / "clip.mp4"
    bad.write_text("not a video")
    token = ChallengeAuthority(key).issue("s").token
    code = main(["certify", str(bad), "--reference", str(bad), "--challenge", token])
    assert code == 3
    assert "error:" in capsys.readouterr().err


def test_demo_certifies_a_grid_clip(capsys: pytest.CaptureFixture[str]) -> None:
    # one clip whose digit tiny.en hears (the digit of lbax4n or lbbc2a is misheard, so a
    # random pick over every clip would fail now and then: tests/integration/test_engine.py)
    code = main(
        ["demo", "--data", str(SHARED_DATA), "--source", "grid", "--clip", "bbaf2n", "--json"]
    )
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    assert "challenge: read the digit" in captured.err
    digit = captured.err.split("read the digit ")[1][0]
    assert d["digits_heard"] == digit
    face = {s["name"]: s for s in d["scores"]}["face_distance"]
    assert face["passed"]
    assert code == (0 if d["verdict"] == "PASS" else 1)


def test_demo_without_shared_data_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--data", str(tmp_path)]) == 2
    assert "not the shared data folder" in capsys.readouterr().err
