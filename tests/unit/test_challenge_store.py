"""Consumed-nonce stores: single use under thread and process races."""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

import pytest

from liveness.challenge import ChallengeAuthority, MemoryNonceStore, SQLiteNonceStore
from liveness.config import ChallengeConfig
from liveness.errors import ChallengeError, ChallengeReusedError

KEY = b"\x42" * 32


def _race_threads(auth: ChallengeAuthority, token: str, n: int = 16) -> list[str]:
    barrier = threading.Barrier(n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            auth.verify(token)
            res = "ok"
        except ChallengeReusedError:
            res = "reused"
        with lock:
            outcomes.append(res)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_threads_racing_on_one_token_exactly_one_wins(kind: str, tmp_path: Path) -> None:
    store = MemoryNonceStore() if kind == "memory" else SQLiteNonceStore(tmp_path / "n.db")
    auth = ChallengeAuthority(KEY, store=store)
    for _ in range(3):
        token = auth.issue("s").token
        outcomes = _race_threads(auth, token)
        assert outcomes.count("ok") == 1, outcomes
        assert outcomes.count("reused") == len(outcomes) - 1


def _consume_in_child(db: str, token: str, start: object, q: object) -> None:
    auth = ChallengeAuthority(KEY, cfg=ChallengeConfig(nonce_store=db))
    start.wait()  # type: ignore[attr-defined]
    wins = 0
    try:
        auth.verify(token)
        wins = 1
    except ChallengeReusedError:
        pass
    q.put(wins)  # type: ignore[attr-defined]


def test_two_processes_racing_exactly_one_wins(tmp_path: Path) -> None:
    db = str(tmp_path / "nonces.sqlite")
    issuer = ChallengeAuthority(KEY, cfg=ChallengeConfig(nonce_store=db))
    ctx = mp.get_context("spawn")  # a fresh interpreter each, as two server workers would be
    for _ in range(2):
        token = issuer.issue("s").token
        start = ctx.Event()
        q = ctx.Queue()
        procs = [
            ctx.Process(target=_consume_in_child, args=(db, token, start, q)) for _ in range(2)
        ]
        for p in procs:
            p.start()
        start.set()
        wins = [q.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert sorted(wins) == [0, 1]
        # and the parent, a third consumer, sees it consumed too
        with pytest.raises(ChallengeReusedError):
            issuer.verify(token)


def test_sqlite_store_survives_reopen(tmp_path: Path) -> None:
    db = tmp_path / "n.db"
    token = ChallengeAuthority(KEY, store=SQLiteNonceStore(db)).issue("s").token
    ChallengeAuthority(KEY, store=SQLiteNonceStore(db)).verify(token)
    with pytest.raises(ChallengeReusedError):
        ChallengeAuthority(KEY, store=SQLiteNonceStore(db)).verify(token)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_expired_nonces_are_pruned(kind: str, tmp_path: Path) -> None:
    store = MemoryNonceStore() if kind == "memory" else SQLiteNonceStore(tmp_path / "n.db")
    assert store.consume("a" * 22, expires_at=100.0, now=0.0)
    assert not store.consume("a" * 22, expires_at=100.0, now=50.0)
    # long after expiry (past the grace period) the nonce is forgotten; the token itself is
    # refused by its expiry long before this point, so forgetting is safe.
    assert store.consume("b" * 22, expires_at=1e9, now=1e6)
    assert store.consume("a" * 22, expires_at=100.0, now=1e6 + 61)


def test_unwritable_store_path_is_a_challenge_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ChallengeError, match="cannot be opened"):
        SQLiteNonceStore(blocker / "sub" / "n.db")
