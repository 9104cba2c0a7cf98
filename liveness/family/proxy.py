"""Proxy certification: a family member runs the certification of a bound relative.

The operator picks a bound member; the clip must show the *member*, matched against the photo
kept when the member was bound (never the operator's); the record names both, with the
relationship. An operator who may not certify the member gets a refusal with a stable reason,
and nothing is recorded (a stranger must not be able to write into someone's history).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from liveness.errors import FamilyError
from liveness.family.accounts import Binding, FamilyAccounts, ProxyRefusal
from liveness.records.limiter import AttemptLimiter
from liveness.records.record import CertRecord
from liveness.records.store import RecordStore
from liveness.results import Decision, Verdict

__all__ = ["ProxyCertifier", "ProxyOutcome"]


@dataclass(frozen=True, slots=True)
class ProxyOutcome:
    """What happened: the decision, the signed record (None if refused before certifying)."""

    decision: Decision
    record: CertRecord | None
    binding: Binding | None
    refusal: ProxyRefusal | None = None


class ProxyCertifier:
    """Runs ``certify(reference_photo) -> Decision`` for a bound member and records the result.

    ``certify`` is the engine call with the member's challenge and clip already bound in, for
    example ``lambda ref: engine.certify(clip, ref, challenge)``; it receives the member's
    reference photo (bytes) from the family account.
    """

    def __init__(
        self,
        family: FamilyAccounts,
        store: RecordStore,
        limiter: AttemptLimiter | None = None,
        *,
        channel: str = "family",
    ) -> None:
        self.family = family
        self.store = store
        self.limiter = limiter
        self.channel = channel

    def certify(
        self,
        operator_id: str,
        member_id: str,
        certify: Callable[[bytes], Decision],
        *,
        now: float | None = None,
    ) -> ProxyOutcome:
        auth = self.family.authorize_proxy(operator_id, member_id)
        if isinstance(auth, ProxyRefusal):
            refused = Decision(
                verdict=Verdict.FAIL,
                reasons=(auth.reason,),
                subject_id=member_id,
                details={"refusal": auth.message, "operator_id": operator_id},
            )
            return ProxyOutcome(refused, None, None, auth)
        if self.limiter is not None:
            lock = self.limiter.check(member_id, now=now)
            if lock is not None:
                return ProxyOutcome(lock.decision(), None, auth)
        decision = certify(self.family.reference_photo(auth))
        if decision.subject_id != member_id:
            raise FamilyError(
                f"the decision is about {decision.subject_id!r}, not the member {member_id!r}",
                hint="Issue the challenge to the member (the one in the clip), not the operator.",
            )
        # the binding may have ended while the clip was being judged: check again
        again = self.family.authorize_proxy(operator_id, member_id)
        if isinstance(again, ProxyRefusal):
            return ProxyOutcome(
                Decision(verdict=Verdict.FAIL, reasons=(again.reason,), subject_id=member_id),
                None,
                None,
                again,
            )
        record = self.store.append_decision(
            decision,
            operator_id=operator_id,
            relationship=str(auth.relation),
            channel=self.channel,
            now=now,
        )
        if self.limiter is not None:
            self.limiter.observe(decision, now=now)
        return ProxyOutcome(decision, record, auth)
