"""Durability: SIGKILL in the middle of a burst of appends loses nothing acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from liveness.records import RecordStore, SigningKeys

WRITER = textwrap.dedent(
    """
    import sys
    from liveness.records import RecordStore, SigningKeys
    from liveness.results import Decision, Score, Verdict

    keys = SigningKeys.from_pem(sys.argv[2])
    store = RecordStore.open(sys.argv[1], keys)
    i = 0
    while True:
        d = Decision(verdict=Verdict.PASS if i % 3 else Verdict.FAIL, subject_id=f"s{i % 17}",
                     challenge_nonce=f"n{i}", config_hash="c" * 64, clip_sha256="a" * 64,
                     scores=(Score(name="live", value=0.9, threshold=0.5),))
        rec = store.append_decision(d)
        # acknowledged: append_decision returned, so the record must survive anything now
        sys.stdout.write(rec.record_id + "\\n")
        sys.stdout.flush()
        i += 1
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("writers", [1, 2])
def test_sigkill_mid_burst_keeps_every_acknowledged_record(tmp_path: Path, writers: int) -> None:
    keys = SigningKeys.generate()
    pem = keys.save_pem(tmp_path / "k.pem")
    db = tmp_path / "records.db"
    RecordStore.open(db).close()  # create the schema once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(pem)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for _ in range(writers)
    ]
    acked: list[str] = []
    try:
        # read until each writer has acknowledged some records, then kill them mid-burst
        for p in procs:
            assert p.stdout is not None
            for _ in range(40):
                line = p.stdout.readline()
                assert line, "writer died before acknowledging records"
                acked.append(line.strip())
        for p in procs:
            p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait(timeout=30)
            assert p.stdout is not None
            # anything printed before the kill was acknowledged too
            acked.extend(x.strip() for x in p.stdout.read().splitlines() if x.strip())
            assert p.returncode == -signal.SIGKILL
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    store = RecordStore.open(db)
    rep = store.verify(keys.public_jwks())
    assert rep.ok, rep.errors
    stored = {rec.record_id for rec in (store.get(a) for a in acked) if rec is not None}
    missing = [a for a in acked if a not in stored]
    assert not missing
    assert rep.records >= len(acked)
