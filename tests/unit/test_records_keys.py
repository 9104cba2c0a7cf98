"""Signing keys: load, rotate, export; the private key never shows."""

from __future__ import annotations

import copy
import json
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liveness.errors import RecordError, SigningKeyError
from liveness.records import SigningKeys, load_jwks


def _private_pem(keys: SigningKeys, tmp_path: Path) -> bytes:
    return keys.save_pem(tmp_path / "k.pem").read_bytes()


def test_pem_round_trip_keeps_the_kid_and_file_is_owner_only(tmp_path: Path) -> None:
    keys = SigningKeys.generate()
    path = keys.save_pem(tmp_path / "signing.pem")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = SigningKeys.from_pem(path)
    assert again.kid == keys.kid
    assert again.sign(b"x") == keys.sign(b"x")  # Ed25519 is deterministic


def test_env_accepts_pem_and_raw_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    monkeypatch.setenv("K_PEM", pem)
    import base64

    monkeypatch.setenv("K_SEED", base64.urlsafe_b64encode(seed).decode().rstrip("="))
    assert SigningKeys.from_env("K_PEM").kid == SigningKeys.from_env("K_SEED").kid


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of its example Ed25519 public key.
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    }
    keys = load_jwks({"keys": [jwk]})
    assert list(keys) == ["kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"]


def test_private_key_never_in_repr_str_errors_or_jwks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = SigningKeys.generate()
    pem = _private_pem(keys, tmp_path)
    body = b"".join(pem.splitlines()[1:-1]).decode()
    jwks = json.dumps(keys.public_jwks())
    for text in (repr(keys), str(keys), jwks):
        assert body not in text and body[:20] not in text
    assert all("d" not in k for k in keys.public_jwks()["keys"])
    with pytest.raises(TypeError):
        pickle.dumps(keys)
    with pytest.raises(TypeError):
        copy.deepcopy(keys)
    # a broken key must not be echoed in the error
    broken = pem.replace(b"A", b"B", 3)
    (tmp_path / "bad.pem").write_bytes(broken)
    with pytest.raises(SigningKeyError) as err:
        SigningKeys.from_pem(tmp_path / "bad.pem")
    assert body[:20] not in err.value.diagnostics()
    monkeypatch.setenv("K_BAD", "not-a-key-" + body[:30])
    with pytest.raises(SigningKeyError) as err2:
        SigningKeys.from_env("K_BAD")
    assert body[:30] not in err2.value.diagnostics()


def test_missing_or_wrong_keys_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError):
        SigningKeys.from_pem(tmp_path / "nope.pem")
    with pytest.raises(SigningKeyError):
        SigningKeys.from_env("LIVENESS_TEST_UNSET_VARIABLE")
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "ec.pem").write_bytes(other)
    with pytest.raises(SigningKeyError, match="not an Ed25519"):
        SigningKeys.from_pem(tmp_path / "ec.pem")
    with pytest.raises(RecordError):
        load_jwks({"nokeys": []})
    with pytest.raises(SigningKeyError):
        jwk = SigningKeys.generate().public_jwks()["keys"][0]
        load_jwks({"keys": [{**jwk, "d": "AAAA"}]})


def test_jwks_cannot_relabel_a_key() -> None:
    a, b = SigningKeys.generate(), SigningKeys.generate()
    jwk = dict(a.public_jwks()["keys"][0])
    jwk["kid"] = b.kid
    with pytest.raises(RecordError, match="thumbprint"):
        load_jwks({"keys": [jwk]})


def test_rotate_keeps_old_public_keys_with_their_retirement_time() -> None:
    keys = SigningKeys.generate()
    first = keys.kid
    second = keys.rotate(now=1_800_000_000)
    assert second != first and keys.kid == second
    jwks = keys.public_jwks()
    by_kid = {k["kid"]: k for k in jwks["keys"]}
    assert by_kid[first]["exp"] == 1_800_000_000
    assert "exp" not in by_kid[second]
    assert jwks["keys"][-1]["kid"] == second  # active last


def test_reloading_with_the_published_jwks_keeps_history(tmp_path: Path) -> None:
    keys = SigningKeys.generate()
    old = keys.kid
    keys.rotate(now=1_800_000_000)
    keys.save_pem(tmp_path / "k.pem")
    (tmp_path / "keys.json").write_text(json.dumps(keys.public_jwks()))
    again = SigningKeys.from_pem(tmp_path / "k.pem", known=tmp_path / "keys.json")
    assert set(again.public_keys()) == {old, keys.kid}
    assert again.public_keys()[old].not_after == 1_800_000_000
    # the retired key may not come back as the signer
    old_only = SigningKeys.generate()
    old_only.save_pem(tmp_path / "o.pem")
    old_only.rotate(now=1_800_000_000)
    (tmp_path / "o.json").write_text(json.dumps(old_only.public_jwks()))
    with pytest.raises(SigningKeyError, match="retired"):
        SigningKeys.from_pem(tmp_path / "o.pem", known=tmp_path / "o.json")
