"""Digit challenges: issue, verify, and every way a token must be refused."""

from __future__ import annotations

import base64
import json
import pickle
import string

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.challenge import ChallengeAuthority, MemoryNonceStore, is_readable, parse_key
from liveness.config import ChallengeConfig, Config
from liveness.errors import (
    ChallengeExpiredError,
    ChallengeInvalidError,
    ChallengeReusedError,
    ChallengeSubjectError,
    ConfigError,
)

KEY = bytes(range(32))


class FrozenClock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def authority(clock: FrozenClock | None = None, **cfg: object) -> ChallengeAuthority:
    return ChallengeAuthority(
        KEY,
        cfg=ChallengeConfig(**cfg),
        clock=clock or FrozenClock(),  # type: ignore[arg-type]
    )


def test_issue_defaults_six_readable_digits_bound_to_subject() -> None:
    clock = FrozenClock()
    auth = authority(clock)
    c = auth.issue("card-001")
    assert len(c.digits) == 6 and c.digits.isdigit()
    assert is_readable(c.digits, 2)
    assert c.subject_id == "card-001"
    assert c.issued_at == clock.t and c.expires_at == clock.t + 120.0
    assert auth.verify(c.token, subject_id="card-001") == c


@pytest.mark.parametrize("n", range(1, 9))
def test_explicit_lengths_1_to_8(n: int) -> None:
    c = authority().issue("s", length=n)
    assert len(c.digits) == n


@pytest.mark.parametrize("n", [0, 9, -1])
def test_explicit_length_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="1 to 8"):
        authority().issue("s", length=n)


@pytest.mark.parametrize("n", [3, 9])
def test_config_length_outside_4_to_8_is_a_config_error(n: int) -> None:
    with pytest.raises(ConfigError, match="4..8"):
        ChallengeConfig(length=n)
    with pytest.raises(ConfigError):
        Config.from_dict({"challenge": {"length": n}})


def test_is_readable() -> None:
    assert is_readable("112233")
    assert not is_readable("111234")
    assert not is_readable("123444")
    assert is_readable("111", max_run=3)
    assert not is_readable("12a4")
    assert not is_readable("")
    assert not is_readable("١٢٣")  # Arabic-Indic digits are digits to str.isdigit, not to us


def test_digits_never_hold_a_run_longer_than_max_run_and_cover_all_digits() -> None:
    auth = authority(max_run=1)
    seen: set[str] = set()
    for _ in range(300):
        d = auth.issue("s", length=8).digits
        assert all(a != b for a, b in zip(d, d[1:], strict=False))
        seen.update(d)
    assert seen == set(string.digits)


def test_digit_distribution_is_roughly_uniform() -> None:
    # 600 challenges x 6 digits; each digit is expected 360 times. The run-rejection makes the
    # marginal exactly uniform by symmetry; +-30% is far outside sampling noise (sd ~ 18).
    auth = authority()
    counts = dict.fromkeys(string.digits, 0)
    for _ in range(600):
        for ch in auth.issue("s").digits:
            counts[ch] += 1
    assert all(250 < v < 470 for v in counts.values()), counts


def test_replay_is_rejected() -> None:
    auth = authority()
    c = auth.issue("s")
    auth.verify(c.token)
    with pytest.raises(ChallengeReusedError):
        auth.verify(c.token)


def test_verify_without_consume_does_not_burn_the_token() -> None:
    auth = authority()
    c = auth.issue("s")
    auth.verify(c.token, consume=False)
    auth.verify(c.token, consume=False)
    auth.verify(c.token)
    with pytest.raises(ChallengeReusedError):
        auth.verify(c.token)


def test_expiry_with_frozen_clock() -> None:
    clock = FrozenClock()
    auth = authority(clock, ttl_s=30)
    c = auth.issue("s")
    clock.t += 29.999
    auth.verify(c.token, consume=False)
    clock.t = c.expires_at
    with pytest.raises(ChallengeExpiredError):
        auth.verify(c.token)
    clock.t += 1000
    with pytest.raises(ChallengeExpiredError):
        auth.verify(c.token)


def test_expired_token_is_not_consumed() -> None:
    clock = FrozenClock()
    store = MemoryNonceStore()
    auth = ChallengeAuthority(KEY, store=store, clock=clock)
    c = auth.issue("s")
    clock.t += 500
    with pytest.raises(ChallengeExpiredError):
        auth.verify(c.token)
    assert len(store) == 0


def test_wrong_subject_is_rejected_and_does_not_consume() -> None:
    auth = authority()
    c = auth.issue("alice")
    with pytest.raises(ChallengeSubjectError):
        auth.verify(c.token, subject_id="bob")
    assert auth.verify(c.token, subject_id="alice").digits == c.digits


def test_other_key_is_rejected() -> None:
    c = authority().issue("s")
    other = ChallengeAuthority(b"\x01" * 32, clock=FrozenClock())
    with pytest.raises(ChallengeInvalidError, match="signature"):
        other.verify(c.token)


def test_forged_payload_with_valid_shape_is_rejected() -> None:
    auth = authority()
    c = auth.issue("alice")
    body, sig = c.token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["d"] = "123456"
    payload["sub"] = "mallory"
    forged_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(ChallengeInvalidError):
        auth.verify(f"{forged_body}.{sig}")


@pytest.mark.parametrize(
    "token", ["", ".", "a.b.c", "abc", "a.", ".b", "é.b", "a b.c", "x" * 5000, "YQ.YQ"]
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    with pytest.raises(ChallengeInvalidError):
        authority().verify(token)


_FIXED = authority().issue("subject-7")
_ALPHABET = string.ascii_letters + string.digits + "-_.=+/ "


@settings(max_examples=300, deadline=None)
@given(
    pos=st.integers(min_value=0, max_value=len(_FIXED.token) - 1),
    ch=st.sampled_from(_ALPHABET),
)
def test_any_single_character_change_is_rejected(pos: int, ch: str) -> None:
    tok = _FIXED.token
    altered = tok[:pos] + ch + tok[pos + 1 :]
    if altered == tok:
        return
    with pytest.raises(ChallengeInvalidError):
        authority().verify(altered)


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=len(_FIXED.token)),
    length=st.integers(min_value=0, max_value=8),
    insert=st.text(alphabet=_ALPHABET, max_size=8),
)
def test_any_splice_is_rejected(start: int, length: int, insert: str) -> None:
    tok = _FIXED.token
    altered = tok[:start] + insert + tok[start + length :]
    if altered == tok:
        return
    with pytest.raises(ChallengeInvalidError):
        authority().verify(altered)


@settings(max_examples=100, deadline=None)
@given(bit=st.integers(min_value=0, max_value=8 * 32 - 1))
def test_any_bit_flip_in_the_signature_is_rejected(bit: int) -> None:
    body, sig = _FIXED.token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[bit // 8] ^= 1 << (bit % 8)
    bad = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(ChallengeInvalidError):
        authority().verify(f"{body}.{bad}")


def test_ed25519_issue_and_verify_with_public_key_only() -> None:
    clock = FrozenClock()
    priv = Ed25519PrivateKey.generate()
    issuer = ChallengeAuthority(priv, clock=clock)
    assert issuer.algorithm == "EdDSA"
    c = issuer.issue("s", length=4)
    verifier = ChallengeAuthority(priv.public_key(), clock=clock)
    assert verifier.verify(c.token, subject_id="s").digits == c.digits
    with pytest.raises(ConfigError, match="public key"):
        verifier.issue("s")
    # an HS256 authority must not accept an EdDSA token (no algorithm confusion)
    with pytest.raises(ChallengeInvalidError):
        authority(clock).verify(c.token)


def test_raw_ed25519_bytes_with_eddsa_config() -> None:
    raw = Ed25519PrivateKey.generate().private_bytes_raw()
    auth = ChallengeAuthority(raw, cfg=ChallengeConfig(algorithm="EdDSA"), clock=FrozenClock())
    assert auth.algorithm == "EdDSA"
    auth.verify(auth.issue("s").token)


def test_short_hmac_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least"):
        ChallengeAuthority(b"short")


def test_key_never_in_repr_str_or_pickle() -> None:
    secret = b"\xab" * 32
    auth = ChallengeAuthority(secret)
    text = repr(auth) + str(auth)
    for form in (secret.hex(), base64.b64encode(secret).decode(), repr(secret)):
        assert form not in text
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(auth)


def test_from_env_formats() -> None:
    clock = FrozenClock()
    env_hex = {"LIVENESS_CHALLENGE_KEY": "hex:" + KEY.hex()}
    env_bare = {"LIVENESS_CHALLENGE_KEY": KEY.hex()}
    env_b64 = {"LIVENESS_CHALLENGE_KEY": "base64:" + base64.urlsafe_b64encode(KEY).decode()}
    tokens = [
        ChallengeAuthority.from_env(environ=e, clock=clock).issue("s").token
        for e in (env_hex, env_bare, env_b64)
    ]
    reference = authority(clock)
    for t in tokens:
        reference.verify(t)
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    ed = ChallengeAuthority.from_env(environ={"LIVENESS_CHALLENGE_KEY": pem})
    assert ed.algorithm == "EdDSA"


def test_from_env_missing_or_garbage_key_never_echoes_it() -> None:
    with pytest.raises(ConfigError, match="not set"):
        ChallengeAuthority.from_env(environ={})
    garbage = "hex:zz-not-a-key-SECRET"
    with pytest.raises(ConfigError) as err:
        parse_key(garbage)
    assert "SECRET" not in str(err.value) and "SECRET" not in err.value.hint
