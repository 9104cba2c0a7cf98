"""`liveness challenge new | verify` through the real entry point: exit codes, JSON, no key leak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liveness.cli import EXIT_CHALLENGE, EXIT_CONFIG, EXIT_OK, EXIT_USAGE, main

KEY_HEX = "5e" * 32


@pytest.fixture
def env_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LIVENESS_CHALLENGE_KEY", "hex:" + KEY_HEX)
    return KEY_HEX


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_new_then_verify_once(
    env_key: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run(
        capsys, "challenge", "new", "--subject", "card-9", "--length", "8", "--json"
    )
    assert code == EXIT_OK
    issued = json.loads(out)
    assert len(issued["digits"]) == 8 and issued["subject_id"] == "card-9"
    assert env_key not in out + err

    store = str(tmp_path / "nonces.db")
    token = issued["token"]
    code, out, err = _run(
        capsys, "challenge", "verify", token, "--subject", "card-9", "--store", store, "--json"
    )
    assert code == EXIT_OK
    assert json.loads(out)["digits"] == issued["digits"]
    # a second process (here: a second call) sees the nonce consumed in the store
    code, out, err = _run(capsys, "challenge", "verify", token, "--store", store)
    assert code == EXIT_CHALLENGE and "already used" in err
    code, out, err = _run(capsys, "challenge", "verify", token + "x", "--store", store)
    assert code == EXIT_CHALLENGE and ("base64url" in err or "signature" in err)


def test_wrong_subject_exit_code(env_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "challenge", "new", "--subject", "a", "--json")
    code, _, err = _run(capsys, "challenge", "verify", json.loads(out)["token"], "--subject", "b")
    assert code == EXIT_CHALLENGE and "another subject" in err


def test_missing_key_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LIVENESS_CHALLENGE_KEY", raising=False)
    code, _, err = _run(capsys, "challenge", "new", "--subject", "a")
    assert code == EXIT_CONFIG and "LIVENESS_CHALLENGE_KEY" in err


def test_bad_key_is_never_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIVENESS_CHALLENGE_KEY", "hex:0123SECRETVALUE")
    code, out, err = _run(capsys, "challenge", "new", "--subject", "a")
    assert code == EXIT_CONFIG
    assert "SECRETVALUE" not in out + err


@pytest.mark.parametrize("length", ["0", "9", "six"])
def test_length_out_of_range_is_a_usage_error(env_key: str, length: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["challenge", "new", "--subject", "a", "--length", length])
    assert exc.value.code == EXIT_USAGE


def test_empty_subject_is_a_usage_error(env_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "challenge", "new", "--subject", "  ")
    assert code == EXIT_USAGE and "subject_id" in err
