"""Concurrent bindings (threads, and two processes) never break a family rule."""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

from liveness.family import FamilyAccounts, FamilyRefused
from liveness.results import Decision, Verdict

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # JPEG magic; photo content is not examined at binding


def _bind(fam: FamilyAccounts, member: str, relation: str) -> str:
    try:
        fam.bind(
            "acct",
            member,
            relation,
            birth_date="1950-01-01",
            card_photo=JPEG,
            face_verified=Decision(verdict=Verdict.PASS, subject_id=member),
        )
    except FamilyRefused as exc:
        return exc.rule
    return "ok"


def test_threads_racing_for_parent_places(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    FamilyAccounts.open(db).close()
    results: list[str] = []
    barrier = threading.Barrier(12)

    def worker(i: int) -> None:
        fam = FamilyAccounts.open(db)  # own connection, like separate request handlers
        barrier.wait()
        results.append(_bind(fam, f"p{i}", "parent"))
        fam.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count("ok") == 4
    assert results.count("relation_limit") == 8
    assert len(FamilyAccounts.open(db).members("acct")) == 4


def _process(db: str, start: int, count: int, relation: str, out: mp.Queue, go: object) -> None:  # type: ignore[type-arg]
    fam = FamilyAccounts.open(db)
    go.wait()  # type: ignore[attr-defined]  # both processes start binding together
    res = [_bind(fam, f"m{start + i}", relation) for i in range(count)]
    fam.close()
    out.put(res)


def test_two_processes_racing_for_the_last_slots(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    fam = FamilyAccounts.open(db)
    # use 6 slots (bind and unbind: the slots stay used), leaving 4
    for i in range(6):
        assert _bind(fam, f"old{i}", "other") == "ok"
        fam.unbind("acct", f"old{i}")
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    go = ctx.Barrier(2)
    # each process tries 4 parents (4 parents allowed, but only 4 slots left for both)
    procs = [
        ctx.Process(target=_process, args=(str(db), 100 * k, 4, "parent", q, go)) for k in range(2)
    ]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    flat = [r for rs in results for r in rs]
    assert flat.count("ok") == 4
    assert set(flat) <= {"ok", "slot_quota", "relation_limit"}
    assert fam.slots_left("acct") == 0
    assert len(fam.members("acct")) == 4
    assert sorted(b.slot for b in fam.history("acct")) == list(range(1, 11))
