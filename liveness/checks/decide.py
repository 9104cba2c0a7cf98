"""The decision policy: from the reasons every check raised to PASS / FAIL / RETRY.

Pure: takes reason codes and scores, returns a verdict and the reasons in a stable order.

* No reason at all -> PASS. By default a PASS therefore needs every check to have run and passed:
  face found and matched, passive liveness, the challenge digits heard, and lip-sync. A check that
  could not run must add a reason (e.g. NO_SPEECH, NO_FACE); silence is never a pass.
* Any reason listed in ``DecisionConfig.retry_reasons`` alone -> RETRY: a capture problem the
  person can fix by recording again (too dark, face left the frame, nothing heard).
* Any other reason -> FAIL, and a FAIL always wins over a RETRY: one attack sign in a dark clip is
  still an attack sign. Reasons listed in ``fatal_reasons`` also override everything (challenge
  replay, expiry, forgery, attempt lock), although as non-retry reasons they fail anyway; the list
  exists so the order of reported reasons puts them first.
* ``advisory_reasons`` are recorded but do not change the verdict (empty by default).

Reasons are reported fatal first, then the other FAIL reasons, then RETRY reasons, then advisory
ones, each group in the order the checks raised them, without duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from liveness.config import DecisionConfig
from liveness.errors import ConfigError
from liveness.results import Reason, Verdict

__all__ = ["Verdict", "decide", "order_reasons", "validate_policy"]


@dataclass(frozen=True, slots=True)
class _Policy:
    fatal: frozenset[Reason]
    retry: frozenset[Reason]
    advisory: frozenset[Reason]


def _reasons(names: Iterable[str], key: str) -> frozenset[Reason]:
    out = set()
    for n in names:
        try:
            out.add(Reason(n))
        except ValueError:
            raise ConfigError(
                f"config key 'decision.{key}': {n!r} is not a reason code",
                hint=f"known reasons: {', '.join(r.value for r in Reason)}",
            ) from None
    return frozenset(out)


def validate_policy(cfg: DecisionConfig) -> _Policy:
    """Check the configured reason lists (unknown codes, a reason in two lists) and parse them."""
    p = _Policy(
        fatal=_reasons(cfg.fatal_reasons, "fatal_reasons"),
        retry=_reasons(cfg.retry_reasons, "retry_reasons"),
        advisory=_reasons(cfg.advisory_reasons, "advisory_reasons"),
    )
    for a, b, na, nb in (
        (p.fatal, p.retry, "fatal_reasons", "retry_reasons"),
        (p.fatal, p.advisory, "fatal_reasons", "advisory_reasons"),
        (p.retry, p.advisory, "retry_reasons", "advisory_reasons"),
    ):
        both = a & b
        if both:
            names = sorted(r.value for r in both)
            raise ConfigError(f"reasons {names} are in both decision.{na} and decision.{nb}")
    for r in p.advisory:
        if r.value.startswith("CHALLENGE_") or r in (Reason.TOO_MANY_ATTEMPTS,):
            raise ConfigError(
                f"decision.advisory_reasons may not contain {r.value}: a rejected challenge or an "
                "attempt lock can never be waived"
            )
    return p


def order_reasons(
    reasons: Iterable[Reason], cfg: DecisionConfig | None = None
) -> tuple[Reason, ...]:
    """Deduplicate and order: fatal, other FAIL, RETRY, advisory (stable within each group)."""
    p = validate_policy(cfg or DecisionConfig())
    seen: dict[Reason, None] = dict.fromkeys(Reason(r) for r in reasons)

    def group(r: Reason) -> int:
        if r in p.fatal:
            return 0
        if r in p.advisory:
            return 3
        if r in p.retry:
            return 2
        return 1

    return tuple(sorted(seen, key=group))  # sorted is stable


def decide(
    reasons: Iterable[Reason], cfg: DecisionConfig | None = None
) -> tuple[Verdict, tuple[Reason, ...]]:
    """The verdict for a set of raised reasons, and those reasons in reporting order."""
    cfg = cfg or DecisionConfig()
    p = validate_policy(cfg)
    ordered = order_reasons(reasons, cfg)
    blocking = [r for r in ordered if r not in p.advisory]
    if not blocking:
        return Verdict.PASS, ordered
    if all(r in p.retry for r in blocking):
        return Verdict.RETRY, ordered
    return Verdict.FAIL, ordered
