"""End to end: every fixture family through ``Engine.certify`` with the real models.

One Engine per session; the fixture clips are generated once into a temporary folder (GRID clips
are used in place). Each case is certified with a fresh, real challenge token: GRID cases with a
1-digit challenge equal to the clip's digit, synthetic cases with a 4-digit challenge whose
digits are fixed by the seed (so the run is repeatable; ``liveness demo --source synthetic`` and
benchmarks/eval_fixtures.py use random 6-digit challenges).
"""

from __future__ import annotations

import random
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from liveness import fixtures
from liveness.challenge import ChallengeAuthority, is_readable
from liveness.config import Config
from liveness.fixtures import FixtureCase
from liveness.results import Decision, Reason, Verdict
from tests.conftest import require_models, shared

pytestmark = pytest.mark.slow

SYNTH = fixtures.SYNTHETIC_FAMILIES


class _Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="session")
def clock() -> _Clock:
    return _Clock()


@pytest.fixture(scope="session")
def authority(clock: _Clock) -> ChallengeAuthority:
    return ChallengeAuthority(secrets.token_bytes(32), clock=clock)


@pytest.fixture(scope="session")
def engine(authority: ChallengeAuthority):  # type: ignore[no-untyped-def]
    shared("grid")
    require_models("mtcnn", "dlib_resnet", "minifasnet", "whisper")
    from liveness.engine import Engine

    eng = Engine.from_config(Config(), challenges=authority)
    yield eng
    eng.close()


def _readable_digits(rng: random.Random, n: int = 4) -> str:
    while True:
        d = "".join(rng.choice("0123456789") for _ in range(n))
        if is_readable(d):
            return d


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[FixtureCase]]:
    """family -> cases, generated once. Synthetic clips read 4 digits fixed by the seed, so the
    run is repeatable; ``token`` then issues a real challenge with those digits."""
    data = shared()
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is needed to generate the synthetic fixtures")
    require_models("mtcnn")
    out = tmp_path_factory.mktemp("fixtures")
    # Seed 8's nine digit strings all read back from espeak-ng with a forced-scoring margin of
    # 0.9 or more (seeds 7-11 measured: 43/45 strings accepted): the speech stage's own error
    # rate is measured by benchmarks/eval_fixtures.py over random challenges, not here.
    rng = random.Random(8)
    digits = {f: _readable_digits(rng) for f in SYNTH}
    made = fixtures.generate(out, data, digits=digits, seed=7, grid_pairs=1)
    by_family: dict[str, list[FixtureCase]] = {}
    for case in made:
        by_family.setdefault(case.family, []).append(case)
    return by_family


def _token(engine, case: FixtureCase) -> str:  # type: ignore[no-untyped-def]
    return fixtures.issue_for_digits(engine.challenges, case.subject_id, case.digits).token


def _certify(engine, case: FixtureCase, token: str) -> Decision:  # type: ignore[no-untyped-def]
    return engine.certify(case.clip, case.reference, token, subject_id=case.subject_id)


def _assert_expected(case: FixtureCase, d: Decision) -> None:
    info = f"{case.name}: {d.verdict} {[str(r) for r in d.reasons]} heard={d.digits_heard!r}"
    assert str(d.verdict) == case.expected_verdict, info
    if case.expected_reasons:
        assert set(case.expected_reasons) & {str(r) for r in d.reasons}, info


def _check_decision_contents(d: Decision, clip_frames: bool = True) -> None:
    assert len(d.config_hash) == 64
    assert {"mtcnn_pnet", "face_embedder", "speech"} <= set(d.model_versions)
    assert all(s.threshold == s.threshold for s in d.scores)  # every score has its threshold
    for k in ("challenge", "decode", "face", "speech", "total"):
        assert k in d.timings
    if clip_frames:
        assert d.best_frame_jpeg is not None and d.best_frame_jpeg[:2] == b"\xff\xd8"


def test_genuine_grid_clips_face_liveness_and_digit(engine, cases) -> None:  # type: ignore[no-untyped-def]
    """Real talking heads: the face matches, passive liveness passes, the digit is heard."""
    for case in cases["genuine_grid"]:
        d = _certify(engine, case, _token(engine, case))
        _check_decision_contents(d)
        info = f"{case.name}: {[str(r) for r in d.reasons]}"
        assert not {str(r) for r in d.reasons} - {"CHALLENGE_MISMATCH", "LIP_SYNC_MISMATCH"}, info
        dist = d.score("face_distance")
        assert dist is not None and dist.passed, info
        live = d.score("passive.live_score")
        assert live is not None and live.passed, info


def test_genuine_grid_clips_pass(engine, cases) -> None:  # type: ignore[no-untyped-def]
    """Real GRID clips, each challenged with the digit its speaker says inside the sentence.

    Measured: 6 of 9 pass (tiny.en mishears 'two' in lbbc2a's "lay blue by c two again" and,
    at the level this clip decodes at, "four" in lbax4n's "lay blue at x four now"; lwbsza's
    "zero" fails lip-sync's per-digit mouth-motion check), so the bona fide rate asserted is 6
    of 9; a miss may only be the speech stage's or lip-sync's, never a face or liveness
    reason."""
    passed, missed = [], []
    for case in cases["genuine_grid"]:
        d = _certify(engine, case, _token(engine, case))
        reasons = {str(r) for r in d.reasons}
        if d.verdict is Verdict.PASS:
            assert d.digits_heard == case.digits
            passed.append(case.name)
        else:
            missed.append((case.name, sorted(reasons)))
            assert not reasons - {"CHALLENGE_MISMATCH", "LIP_SYNC_MISMATCH"}, missed[-1]
    print("GRID bona fide misses:", missed)
    assert len(passed) >= 6, missed


def test_genuine_synthetic_passes(engine, cases) -> None:  # type: ignore[no-untyped-def]
    (case,) = cases["genuine_synthetic"]
    d = _certify(engine, case, _token(engine, case))
    _assert_expected(case, d)
    _check_decision_contents(d)
    assert d.digits_heard == case.digits and len(d.digit_timings) == len(case.digits)


@pytest.mark.parametrize(
    "family",
    [
        "wrong_digits",
        "audio_shift",
        "still_photo",
        "other_person",
        "second_face",
        "face_leaves",
        "screen_replay",
    ],
)
def test_attack_family_is_caught(engine, cases, family: str) -> None:  # type: ignore[no-untyped-def]
    for case in cases[family]:
        d = _certify(engine, case, _token(engine, case))
        _assert_expected(case, d)
        assert d.verdict is not Verdict.PASS


def test_audio_shift_reports_the_lag(engine, cases) -> None:  # type: ignore[no-untyped-def]
    (case,) = cases["audio_shift"]
    d = _certify(engine, case, _token(engine, case))
    assert Reason.LIP_SYNC_MISMATCH in d.reasons
    lag = d.details["sync"]["lag_s"]
    assert 0.8 <= lag <= 1.2, d.details["sync"]


def test_dubbed_grid_clip(engine, cases) -> None:  # type: ignore[no-untyped-def]
    """Lip-sync is the only check that can see a dub (same face as the reference, a real voice
    reading the challenge). On GRID, lip-sync alone still accepts about a third of the swapped
    pairs (docs/engine.md, evaluation); this one (lbbc2a's face, lwbsza's voice) it rejects.
    Asserted: the dub is never mistaken for a face problem, and it fails on lip-sync."""
    for case in cases["dubbed"]:
        d = _certify(engine, case, _token(engine, case))
        assert not ({Reason.FACE_MISMATCH, Reason.NO_FACE} & set(d.reasons)), d.reasons
        assert d.verdict is Verdict.FAIL
        assert Reason.LIP_SYNC_MISMATCH in d.reasons, (d.reasons, d.details["sync"])


def test_reused_and_expired_challenges_never_pass(engine, cases, clock) -> None:  # type: ignore[no-untyped-def]
    (case,) = cases["challenge_reused"]
    token = _token(engine, case)
    first = _certify(engine, case, token)
    assert first.verdict is Verdict.PASS, first.reasons
    again = _certify(engine, case, token)
    _assert_expected(case, again)
    assert again.reasons == (Reason.CHALLENGE_REUSED,) and again.best_frame_jpeg is None

    (case,) = cases["challenge_expired"]
    token = _token(engine, case)
    clock.offset = Config().challenge.ttl_s + 1.0
    try:
        d = _certify(engine, case, token)
    finally:
        clock.offset = 0.0
    _assert_expected(case, d)
    assert d.reasons == (Reason.CHALLENGE_EXPIRED,)
    assert _certify(engine, case, token).verdict is Verdict.PASS  # not consumed by the refusal


def test_forged_token_and_wrong_subject(engine, cases) -> None:  # type: ignore[no-untyped-def]
    case = cases["genuine_grid"][0]
    d = engine.certify(case.clip, case.reference, "not-a-token")
    assert d.verdict is Verdict.FAIL and d.reasons == (Reason.CHALLENGE_INVALID,)
    token = fixtures.issue_for_digits(engine.challenges, "someone-else", case.digits).token
    d = engine.certify(case.clip, case.reference, token, subject_id=case.subject_id)
    assert d.reasons == (Reason.CHALLENGE_SUBJECT_MISMATCH,)


def test_concurrent_certifications_match_serial(engine, cases) -> None:  # type: ignore[no-untyped-def]
    """8 threads certify 32 clips through one Engine: the same decisions as one by one."""
    pool = cases["genuine_grid"][:4] + cases["other_person"][:1]
    jobs = [pool[i % len(pool)] for i in range(32)]

    def run(case: FixtureCase) -> tuple[str, tuple[str, ...], str, float | None]:
        d = _certify(engine, case, _token(engine, case))
        m = d.score("face_distance")
        return str(d.verdict), tuple(map(str, d.reasons)), d.digits_heard, m and m.value

    serial = {c.name: run(c) for c in pool}
    with ThreadPoolExecutor(8) as ex:
        parallel = list(ex.map(run, jobs))
    for case, got in zip(jobs, parallel, strict=True):
        want = serial[case.name]
        assert got[:3] == want[:3], case.name
        if want[3] is not None:
            assert got[3] == pytest.approx(want[3], abs=1e-4)  # same models, same frames


def test_committed_fixtures(engine) -> None:  # type: ignore[no-untyped-def]
    """The small clips in data/fixtures/ give the verdict and reason their sidecars say."""
    from tests.conftest import REPO, SHARED_DATA

    committed = fixtures.load_cases(REPO / "data" / "fixtures", shared=SHARED_DATA)
    assert len(committed) >= 7
    for case in committed:
        d = _certify(engine, case, _token(engine, case))
        _assert_expected(case, d)


def test_records_and_attempt_limit(engine, cases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With a record store and limiter attached: every decision is signed and appended; after
    ``max_failures`` failures the subject is refused without the clip being looked at."""
    import dataclasses

    from liveness.engine import Engine
    from liveness.records import RecordStore, SigningKeys

    rcfg = dataclasses.replace(Config().records, max_failures=2)
    store = RecordStore.open(tmp_path / "records.db", SigningKeys.generate(), rcfg)
    limited = Engine(
        engine.cfg, challenges=engine.challenges, face=engine.face, passive=engine.passive,
        speech=engine.speech, records=store, limiter=store.limiter(),
    )  # fmt: skip
    try:
        case = cases["other_person"][0]  # a FAIL (FACE_MISMATCH) every time
        verdicts = [_certify(limited, case, _token(engine, case)) for _ in range(2)]
        assert all(d.verdict is Verdict.FAIL for d in verdicts)
        token = _token(engine, case)
        locked = _certify(limited, case, token)
        assert locked.reasons == (Reason.TOO_MANY_ATTEMPTS,) and "face" not in locked.timings
        history = store.history(case.subject_id)
        assert len(history) == 3
        assert store.verify().ok
    finally:
        limited.close()
        store.close()


def test_engine_caps_the_blas_pool_at_its_config(engine) -> None:  # type: ignore[no-untyped-def]
    """[models] blas_threads = 1: numpy's BLAS threads spin while idle and every stage already
    runs one thread per task (a speech stage's CPU time was twice its wall time without this)."""
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and all(i["num_threads"] == engine.cfg.models.blas_threads == 1 for i in blas)


def test_a_truncated_upload_is_a_media_error_and_the_engine_goes_on(  # type: ignore[no-untyped-def]
    engine, cases, tmp_path: Path
) -> None:
    """The sound and the pictures decode in two threads: a damaged upload must still raise one
    typed MediaError, spend its challenge, and leave nothing running that spoils the next call."""
    from liveness.errors import MediaError

    (case,) = cases["genuine_synthetic"]
    data = Path(case.clip).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    token = _token(engine, case)
    with pytest.raises(MediaError):
        engine.certify(str(cut), case.reference, token, subject_id=case.subject_id)
    reused = engine.certify(case.clip, case.reference, token, subject_id=case.subject_id)
    assert reused.reasons == (Reason.CHALLENGE_REUSED,)
    with pytest.raises(MediaError):  # bytes that are no container: refused the same way
        engine.certify(b"\x00" * 4096, case.reference, _token(engine, case))
    d = _certify(engine, case, _token(engine, case))
    _assert_expected(case, d)
    _check_decision_contents(d)
