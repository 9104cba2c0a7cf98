"""The decision policy (liveness.checks.decide): exact, no models."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liveness.checks.decide import decide, order_reasons, validate_policy
from liveness.config import Config, DecisionConfig
from liveness.errors import ConfigError
from liveness.results import Reason, Verdict

R = Reason


def test_no_reason_is_pass() -> None:
    assert decide([]) == (Verdict.PASS, ())


@pytest.mark.parametrize("reason", [R.NO_FACE, R.FACE_LOST, R.LOW_QUALITY, R.TOO_DARK, R.NO_SPEECH])
def test_capture_problems_alone_ask_for_retry(reason: Reason) -> None:
    assert decide([reason]) == (Verdict.RETRY, (reason,))


@pytest.mark.parametrize(
    "reason",
    [
        R.FACE_MISMATCH,
        R.SPOOF_SUSPECTED,
        R.LIP_SYNC_MISMATCH,
        R.CHALLENGE_MISMATCH,
        R.MULTIPLE_FACES,
        R.FACE_CHANGED,
        R.CHALLENGE_REUSED,
        R.CHALLENGE_EXPIRED,
    ],
)
def test_attack_signs_fail(reason: Reason) -> None:
    assert decide([reason])[0] is Verdict.FAIL


def test_fail_wins_over_retry_and_reasons_are_ordered() -> None:
    verdict, reasons = decide([R.TOO_DARK, R.LIP_SYNC_MISMATCH, R.CHALLENGE_REUSED, R.TOO_DARK])
    assert verdict is Verdict.FAIL
    assert reasons == (R.CHALLENGE_REUSED, R.LIP_SYNC_MISMATCH, R.TOO_DARK)


def test_advisory_reasons_do_not_block() -> None:
    cfg = DecisionConfig(advisory_reasons=("LOW_QUALITY",), retry_reasons=("NO_FACE",))
    assert decide([R.LOW_QUALITY], cfg) == (Verdict.PASS, (R.LOW_QUALITY,))
    assert decide([R.LOW_QUALITY, R.NO_FACE], cfg) == (Verdict.RETRY, (R.NO_FACE, R.LOW_QUALITY))


def test_policy_from_toml_dict() -> None:
    cfg = Config.from_dict({"decision": {"retry_reasons": ["TOO_DARK"]}}).decision
    assert decide([R.NO_SPEECH], cfg)[0] is Verdict.FAIL
    assert decide([R.TOO_DARK], cfg)[0] is Verdict.RETRY


@pytest.mark.parametrize(
    "cfg",
    [
        DecisionConfig(retry_reasons=("NOT_A_REASON",)),
        DecisionConfig(retry_reasons=("TOO_DARK",), advisory_reasons=("TOO_DARK",)),
        DecisionConfig(fatal_reasons=("NO_FACE",)),  # NO_FACE is also a default retry reason
        DecisionConfig(advisory_reasons=("CHALLENGE_REUSED",)),
    ],
)
def test_invalid_policies_are_config_errors(cfg: DecisionConfig) -> None:
    with pytest.raises(ConfigError):
        validate_policy(cfg)


@given(st.lists(st.sampled_from(list(Reason)), max_size=8))
def test_verdict_properties(reasons: list[Reason]) -> None:
    verdict, ordered = decide(reasons)
    assert set(ordered) == set(reasons) and len(ordered) == len(set(reasons))
    assert order_reasons(ordered) == ordered  # idempotent
    retry = set(DecisionConfig().retry_reasons)
    if not reasons:
        assert verdict is Verdict.PASS
    elif all(r.value in retry for r in reasons):
        assert verdict is Verdict.RETRY
    else:
        assert verdict is Verdict.FAIL
    # challenge problems and the attempt lock never pass and are listed first
    fatal = set(DecisionConfig().fatal_reasons)
    first = [r for r in ordered if r.value in fatal]
    if first:
        assert verdict is Verdict.FAIL and list(ordered[: len(first)]) == first
