"""Attempt limiting: 5 failures in 3 minutes lock the subject; the lock is a reason."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from liveness.config import RecordConfig
from liveness.records import AttemptLimiter, RecordStore, SigningKeys
from liveness.results import Decision, Reason, Verdict

T0 = 1_800_000_000.0


@pytest.fixture
def limiter(tmp_path: Path) -> AttemptLimiter:
    return AttemptLimiter.open(tmp_path / "r.db")


def fail(subject: str = "u1", verdict: Verdict = Verdict.FAIL) -> Decision:
    return Decision(verdict=verdict, reasons=(Reason.FACE_MISMATCH,), subject_id=subject)


def test_fifth_failure_within_window_locks(limiter: AttemptLimiter) -> None:
    for i in range(4):
        assert limiter.record_failure("u1", now=T0 + i * 30) is None
    assert limiter.check("u1", now=T0 + 121) is None
    lock = limiter.record_failure("u1", now=T0 + 150)
    assert lock is not None and lock.reason is Reason.TOO_MANY_ATTEMPTS
    assert lock.until == T0 + 150 + 600 and lock.failures == 5
    assert limiter.check("u1", now=T0 + 700) == lock
    assert limiter.check("u2", now=T0 + 700) is None  # per subject
    assert limiter.check("u1", now=T0 + 750) is None  # lifted
    assert lock.retry_after(now=T0 + 700) == 50
    d = lock.decision(challenge_nonce="n")
    assert d.verdict is Verdict.FAIL and d.reasons == (Reason.TOO_MANY_ATTEMPTS,)


def test_failures_outside_the_window_do_not_count(limiter: AttemptLimiter) -> None:
    for i in range(10):
        assert limiter.record_failure("u1", now=T0 + i * 50) is None  # 4 per 180 s at most
    assert limiter.failures("u1", now=T0 + 450) == 4  # 300, 350, 400, 450


def test_after_the_lock_the_count_starts_afresh(limiter: AttemptLimiter) -> None:
    for i in range(5):
        limiter.record_failure("u1", now=T0 + i)
    assert limiter.record_failure("u1", now=T0 + 10) is not None  # still locked
    assert limiter.record_failure("u1", now=T0 + 700) is None
    assert limiter.failures("u1", now=T0 + 700) == 1


def test_observe_counts_fail_and_retry_and_pass_clears(limiter: AttemptLimiter) -> None:
    for _ in range(3):
        limiter.observe(fail(verdict=Verdict.RETRY), now=T0)
    limiter.observe(Decision(verdict=Verdict.PASS, subject_id="u1"))
    assert limiter.failures("u1", now=T0 + 1) == 0
    for i in range(5):
        lock = limiter.observe(fail(), now=T0 + i)
    assert lock is not None
    # the refusal itself is not another attempt
    again = limiter.observe(lock.decision(), now=T0 + 10)
    assert again == lock


def test_config_changes_the_rule(tmp_path: Path) -> None:
    cfg = RecordConfig(max_failures=2, failure_window_s=10, lock_s=5, failure_verdicts=("FAIL",))
    lim = AttemptLimiter.open(tmp_path / "r.db", cfg)
    assert lim.observe(fail(verdict=Verdict.RETRY), now=T0) is None
    assert lim.failures("u1", now=T0) == 0
    lim.record_failure("u1", now=T0)
    lock = lim.record_failure("u1", now=T0 + 1)
    assert lock is not None and lock.until == T0 + 6
    lim.unlock("u1")
    assert lim.check("u1", now=T0 + 2) is None


def test_concurrent_failures_lock_exactly_once(tmp_path: Path) -> None:
    # threads sharing one store and threads with their own connection to the same file
    store = RecordStore.open(tmp_path / "r.db", SigningKeys.generate())
    shared = store.limiter()
    results: list[object] = []

    def worker(i: int) -> None:
        lim = shared if i % 2 else AttemptLimiter.open(tmp_path / "r.db")
        results.append(lim.record_failure("u1", now=T0 + 1))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    locks = [r for r in results if r is not None]
    assert len(results) == 12
    assert len(locks) == 8  # the 5th locks; the 7 after it see the lock
    assert len({(lk.locked_at, lk.until) for lk in locks}) == 1  # type: ignore[attr-defined]
