"""Ed25519 signature checks spread over worker processes (``verify(..., jobs=N)``).

Only the signatures go to the workers; the chain, which must be walked in order, stays in the
calling process. Workers are spawned (never forked from a process that may hold threads and
SQLite connections) and get raw public keys, never private material.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from liveness.errors import RecordError
from liveness.records.keys import PublicKey

# (position, kid, signing input, signature)
Item = tuple[int, str, bytes, bytes]
CHUNK = 2000


def _verify_chunk(pubkeys: dict[str, bytes], chunk: list[Item]) -> list[int]:
    keys = {kid: Ed25519PublicKey.from_public_bytes(raw) for kid, raw in pubkeys.items()}
    bad: list[int] = []
    for pos, kid, data, sig in chunk:
        try:
            keys[kid].verify(sig, data)
        except InvalidSignature:
            bad.append(pos)
    return bad


class ParallelSignatures:
    """Collects signature checks and runs them in ``jobs`` worker processes."""

    def __init__(self, keys: dict[str, PublicKey], jobs: int) -> None:
        self._pub = {kid: k.raw for kid, k in keys.items()}
        self._pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
        self._jobs = jobs
        self._chunk: list[Item] = []
        self._pending: list[Future[list[int]]] = []
        self._bad: list[int] = []

    def add(self, position: int, kid: str, data: bytes, sig: bytes) -> None:
        self._chunk.append((position, kid, data, sig))
        if len(self._chunk) >= CHUNK:
            self._submit()

    def _submit(self) -> None:
        if self._chunk:
            self._pending.append(self._pool.submit(_verify_chunk, self._pub, self._chunk))
            self._chunk = []
        # bound the memory held by queued work
        while len(self._pending) > 2 * self._jobs:
            self._bad.extend(_result(self._pending.pop(0)))

    def failures(self) -> list[int]:
        """Positions whose signature does not verify (waits for every check)."""
        try:
            self._submit()
            for f in self._pending:
                self._bad.extend(_result(f))
            self._pending = []
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return sorted(self._bad)


def _result(f: Future[list[int]]) -> list[int]:
    try:
        return f.result()
    except BrokenProcessPool:
        raise RecordError(
            "a signature-checking worker process died",
            hint='Run with jobs=1, or call verify from under `if __name__ == "__main__":` '
            "(worker processes are spawned and re-import the main module).",
        ) from None
