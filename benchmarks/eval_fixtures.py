"""Evaluate the engine over the fixture families, in ISO/IEC 30107-3 vocabulary.

    .venv/bin/python benchmarks/eval_fixtures.py [--data ../shared/data] [--seeds 3]
        [--grid-pairs 12] [--json out.json]

Every case is certified through ``Engine.certify`` with a real challenge token: GRID cases with a
1-digit challenge equal to the clip's digit; synthetic cases with a random 6-digit challenge that
is issued first and then read by espeak-ng in the generated clip (as a phone records after seeing
the challenge). Printed:

* BPCER (bona fide presentation classification error rate): bona fide presentations (genuine
  GRID and genuine synthetic clips) not given PASS; RETRY is counted separately and included;
* APCER per attack family (PAI species): attack presentations given PASS;
* speech: false rejection (genuine clips whose digits the speech stage rejected) and false
  acceptance (wrong_digits clips it accepted);
* face: FNMR (genuine clips whose face distance failed) and FMR (other_person clips whose face
  distance passed);
* lip-sync on GRID with the project's own face tracker, independent of the speech stage: AUC of
  the correlation score for true against swapped audio, and the share of swapped pairs that the
  correlation and lag criteria alone would accept.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from liveness import fixtures  # noqa: E402
from liveness.challenge import ChallengeAuthority  # noqa: E402
from liveness.config import ChallengeConfig, Config  # noqa: E402
from liveness.results import Decision, Reason  # noqa: E402

SYNTH = fixtures.SYNTHETIC_FAMILIES


TTL_S = 900.0


class _Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _run_case(engine: Any, case: fixtures.FixtureCase, token: str, clock: _Clock) -> Decision:
    def go() -> Decision:
        return engine.certify(case.clip, case.reference, token, subject_id=case.subject_id)

    if case.challenge == "reused":
        go()
        return go()
    if case.challenge == "expired":
        clock.offset = TTL_S + 1.0
        try:
            return go()
        finally:
            clock.offset = 0.0
    return go()


def _sync_auc(engine: Any, data: Path) -> dict[str, Any]:
    """True vs swapped audio on the GRID clips, mouth signal from the project's face tracker."""
    from liveness.checks.sync import check_sync, mouth_signal
    from liveness.media import open_clip

    cfg = engine.cfg
    clips = {}
    for p in fixtures.grid_clips(data):
        clip = open_clip(
            str(p), cfg.media, target_fps=max(cfg.media.target_fps or 0, cfg.sync.video_fps)
        )
        track = engine.face.tracker.track(clip.frames)
        lms = [f.landmarks if f is not None else None for f in track.faces]
        clips[p.stem] = (mouth_signal(clip.frames, lms), clip.timestamps, clip.audio)
    pos, neg = [], []
    lag_ok_pos, lag_ok_neg = [], []
    for a, (m, ts, _) in clips.items():
        for b, (_, _, audio) in clips.items():
            r = check_sync(m, ts, audio, 16_000, [], cfg.sync)
            near = r.peak_score - r.score < cfg.sync.lag_tolerance
            lag_ok = abs(r.lag_s) <= cfg.sync.max_lag_s or near
            (pos if a == b else neg).append(r.score)
            (lag_ok_pos if a == b else lag_ok_neg).append(lag_ok)
    p, n = np.array(pos), np.array(neg)
    auc = float(np.mean(p[:, None] > n[None, :]) + 0.5 * np.mean(p[:, None] == n[None, :]))
    sweep = {}
    for thr in sorted({0.3, 0.35, 0.4, 0.45, 0.5, cfg.sync.min_score}):
        tp = int(np.sum((p >= thr) & np.array(lag_ok_pos)))
        fp = int(np.sum((n >= thr) & np.array(lag_ok_neg)))
        sweep[str(thr)] = f"true {tp}/{len(p)}, swapped {fp}/{len(n)}"
    return {
        "auc": round(auc, 3),
        "true_pairs": len(p),
        "swapped_pairs": len(n),
        "true_min_corr": round(float(p.min()), 3),
        "threshold_sweep": sweep,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="shared data folder (default: found from the repo)")
    ap.add_argument("--seeds", type=int, default=3, help="synthetic seeds (each a new challenge)")
    ap.add_argument("--grid-pairs", type=int, default=12, help="GRID pairs for other_person/dubbed")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--out", help="folder for generated clips (default: a temp folder)")
    ap.add_argument("--sync-only", action="store_true", help="only the GRID lip-sync AUC")
    args = ap.parse_args(argv)

    from liveness.engine import Engine

    data = fixtures.find_shared_data(args.data, start=REPO)
    if args.sync_only:
        eng = Engine.from_config(Config(), challenges=ChallengeAuthority(secrets.token_bytes(32)))
        print(json.dumps(_sync_auc(eng, data), indent=2))
        eng.close()
        return 0
    clock = _Clock()
    # generating a seed's nine clips takes longer than the default 120 s TTL on a busy machine
    auth = ChallengeAuthority(
        secrets.token_bytes(32), cfg=ChallengeConfig(ttl_s=TTL_S), clock=clock
    )
    engine = Engine.from_config(Config(), challenges=auth)
    out = Path(args.out or tempfile.mkdtemp(prefix="liveness-eval-"))
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    jobs: list[tuple[fixtures.FixtureCase, str]] = []
    grid_cases = fixtures.generate(
        out / "grid", data, digits="0", seed=0, grid_pairs=args.grid_pairs,
        families=["genuine_grid", "other_person", "dubbed"],
    )  # fmt: skip
    for c in grid_cases:
        jobs.append((c, fixtures.issue_for_digits(auth, c.subject_id, c.digits).token))
    for seed in range(args.seeds):
        tokens = {f: auth.issue("synthetic-subject") for f in SYNTH}
        made = fixtures.generate(
            out / f"synthetic_{seed}", data, digits={f: t.digits for f, t in tokens.items()},
            seed=seed, families=SYNTH,
        )  # fmt: skip
        for c in made:
            jobs.append((c, tokens[c.family].token))
            # tokens expire after the configured TTL: certify each seed's cases right away
        for c, tok in jobs[-len(made) :]:
            rows.append(_row(c, _run_case(engine, c, tok, clock)))
    for c, tok in jobs[: len(grid_cases)]:
        rows.append(_row(c, _run_case(engine, c, tok, clock)))
    sync = _sync_auc(engine, data)
    engine.close()
    elapsed = time.perf_counter() - t0

    report = _report(rows, sync)
    report["elapsed_s"] = round(elapsed, 1)
    print(_markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, **report}, indent=2))
    return 0


def _row(case: fixtures.FixtureCase, d: Decision) -> dict[str, Any]:
    dist = d.score("face_distance")
    margin = d.score("speech_margin")
    return {
        "name": case.name,
        "family": case.family,
        "attack": case.attack,
        "expected_verdict": case.expected_verdict,
        "expected_reasons": list(case.expected_reasons),
        "verdict": str(d.verdict),
        "reasons": [str(r) for r in d.reasons],
        "as_expected": str(d.verdict) == case.expected_verdict
        and (
            not case.expected_reasons or bool(set(case.expected_reasons) & set(map(str, d.reasons)))
        ),
        "face_passed": None if dist is None else dist.passed,
        "speech_passed": None if margin is None else Reason.CHALLENGE_MISMATCH not in d.reasons,
        "digits": case.digits,
        "heard": d.digits_heard,
        "total_s": round(d.timings.get("total", 0.0), 3),
    }


def _rate(k: int, n: int) -> str:
    return f"{k}/{n} = {100.0 * k / n:.1f}%" if n else "n/a"


def _report(rows: list[dict[str, Any]], sync: dict[str, Any]) -> dict[str, Any]:
    fam: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        fam[r["family"]].append(r)
    bona = [r for r in rows if not r["attack"]]
    bpcer = {
        "all": _rate(sum(r["verdict"] != "PASS" for r in bona), len(bona)),
        "retry_only": _rate(sum(r["verdict"] == "RETRY" for r in bona), len(bona)),
    }
    for f in fixtures.BONA_FIDE_FAMILIES:
        bpcer[f] = _rate(sum(r["verdict"] != "PASS" for r in fam[f]), len(fam[f]))
    apcer = {
        f: {
            "apcer": _rate(sum(r["verdict"] == "PASS" for r in fam[f]), len(fam[f])),
            "caught_by_expected_reason": _rate(sum(r["as_expected"] for r in fam[f]), len(fam[f])),
            "reasons_seen": sorted({x for r in fam[f] for x in r["reasons"]}),
        }
        for f in fixtures.ATTACK_FAMILIES
        if fam[f]
    }
    sp_gen = [r for r in bona if r["speech_passed"] is not None]
    sp_wrong = [r for r in fam["wrong_digits"] if r["speech_passed"] is not None]
    face_gen = [r for r in bona if r["face_passed"] is not None]
    face_imp = [r for r in fam["other_person"] if r["face_passed"] is not None]
    return {
        "bpcer": bpcer,
        "apcer": apcer,
        "speech": {
            "false_reject_genuine": _rate(sum(not r["speech_passed"] for r in sp_gen), len(sp_gen)),
            "false_reject_synthetic": _rate(
                sum(not r["speech_passed"] for r in sp_gen if r["family"] == "genuine_synthetic"),
                sum(r["family"] == "genuine_synthetic" for r in sp_gen),
            ),
            "false_accept_wrong_digits": _rate(
                sum(r["speech_passed"] for r in sp_wrong), len(sp_wrong)
            ),
        },
        "face": {
            "fnmr_genuine": _rate(sum(not r["face_passed"] for r in face_gen), len(face_gen)),
            "fmr_other_person": _rate(sum(r["face_passed"] for r in face_imp), len(face_imp)),
        },
        "lip_sync_grid": sync,
    }


def _markdown(rep: dict[str, Any]) -> str:
    lines = ["| presentations | metric | value |", "|---|---|---|"]
    for k, v in rep["bpcer"].items():
        lines.append(f"| bona fide: {k} | BPCER | {v} |")
    for f, v in rep["apcer"].items():
        lines.append(
            f"| attack: {f} | APCER | {v['apcer']} (caught by the designed reason: "
            f"{v['caught_by_expected_reason']}; reasons: {', '.join(v['reasons_seen'])}) |"
        )
    for k, v in rep["speech"].items():
        lines.append(f"| speech | {k} | {v} |")
    for k, v in rep["face"].items():
        lines.append(f"| face | {k} | {v} |")
    s = rep["lip_sync_grid"]
    lines.append(f"| lip-sync alone, GRID true vs swapped audio | AUC | {s['auc']} |")
    for thr, v in s["threshold_sweep"].items():
        lines.append(f"| lip-sync alone, min_score {thr} | accepted (corr + lag) | {v} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
