"""Record store throughput: append + sign, and verification of a 100k-record chain.

Run: .venv/bin/pytest benchmarks/bench_records.py --benchmark-enable --benchmark-min-rounds=3

Verification is single-threaded, so its benchmarks use CPU time (time.process_time) of this one
process: "seconds on one core", independent of what else the shared machine is doing. The
baseline is the bare Ed25519 verification (``cryptography``) of as many signatures, measured in
the same run: full verification can never beat it, and the ratio says what our checks add.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liveness.records import RecordStore, SigningKeys
from liveness.results import Decision, Reason, Score, Verdict

N_CHAIN = 100_000


def decision(i: int) -> Decision:
    """A realistic record: three scores, three model versions, hashes, a reason on failures."""
    passed = i % 4 != 0
    return Decision(
        verdict=Verdict.PASS if passed else Verdict.FAIL,
        reasons=() if passed else (Reason.LIP_SYNC_MISMATCH,),
        subject_id=f"subject-{i % 20_000:05d}",
        challenge_nonce=f"{i:032x}",
        scores=(
            Score(
                name="face_distance",
                value=0.31 + (i % 97) / 1000,
                threshold=0.6,
                higher_is_better=False,
            ),
            Score(name="live", value=0.93, threshold=0.5),
            Score(name="lip_sync", value=0.41, threshold=0.2),
        ),
        model_versions={
            "detector": "mtcnn-onnx-1",
            "embedder": "dlib-resnet-v1",
            "antispoof": "minifasnet-v2",
        },
        config_hash="c" * 64,
        clip_sha256=f"{i:064x}",
    )


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RecordStore, SigningKeys]]:
    keys = SigningKeys.generate()
    store = RecordStore.open(tmp_path_factory.mktemp("bench") / "records.db", keys)
    batch = 5_000
    t0 = time.perf_counter()
    for start in range(0, N_CHAIN, batch):
        store.append_many([decision(i) for i in range(start, start + batch)])
    print(f"\nbuilt {N_CHAIN} records in {time.perf_counter() - t0:.1f} s")
    yield store, keys
    store.close()


def test_append_and_sign_one_durable_record(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One certification = one transaction = one fsync (synchronous=FULL)."""
    store = RecordStore.open(tmp_path / "r.db", SigningKeys.generate())
    counter = iter(range(10**9))
    benchmark(lambda: store.append_decision(decision(next(counter))))
    benchmark.extra_info["records_per_s"] = round(1 / benchmark.stats.stats.median, 1)


def test_append_and_sign_batch_of_100(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = RecordStore.open(tmp_path / "r.db", SigningKeys.generate())
    decisions = [decision(i) for i in range(100)]
    benchmark(lambda: store.append_many(decisions))
    benchmark.extra_info["records_per_s"] = round(100 / benchmark.stats.stats.median, 1)


@pytest.mark.benchmark(timer=time.process_time)
def test_baseline_bare_ed25519_verify_10k(benchmark) -> None:  # type: ignore[no-untyped-def]
    key = Ed25519PrivateKey.generate()
    msg = b"x" * 900  # about the size of a record's signing input
    sig, pub = key.sign(msg), key.public_key()

    def run() -> None:
        for _ in range(10_000):
            pub.verify(sig, msg)

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["signatures_per_s"] = round(10_000 / benchmark.stats.stats.median)


@pytest.mark.benchmark(timer=time.process_time)
def test_verify_100k_chain_only(benchmark, chain) -> None:  # type: ignore[no-untyped-def]
    """Every link, header, kid, canonical form and index column; the newest signature."""
    store, keys = chain
    pub = keys.public_keys()
    rep = benchmark.pedantic(
        lambda: store.verify(pub, every_signature=False), rounds=3, iterations=1
    )
    assert rep.ok and rep.records == N_CHAIN
    benchmark.extra_info["records_per_s"] = round(N_CHAIN / benchmark.stats.stats.median)


@pytest.mark.benchmark(timer=time.process_time)
def test_verify_100k_every_signature(benchmark, chain) -> None:  # type: ignore[no-untyped-def]
    """What `liveness records verify` does by default: all of the above and every signature."""
    store, keys = chain
    pub = keys.public_keys()
    rep = benchmark.pedantic(lambda: store.verify(pub), rounds=1, iterations=1)
    assert rep.ok and rep.records == N_CHAIN
    benchmark.extra_info["records_per_s"] = round(N_CHAIN / benchmark.stats.stats.median)
