"""`liveness certify CLIP --reference PHOTO --challenge TOKEN [--json]`: one certification.

The challenge key comes from LIVENESS_CHALLENGE_KEY (as for `liveness challenge new`); consumed
nonces go to ``--store`` or ``[challenge] nonce_store`` so a token cannot be replayed across runs.
Exit code 0 for PASS, 1 for FAIL or RETRY (the decision is printed either way), 3 for media that
cannot be read, 4 for a missing model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TextIO

from liveness.cli import EXIT_NO, EXIT_OK, load_config
from liveness.results import Decision, Verdict


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("certify", help="certify one recorded clip against an enrolled photo")
    p.add_argument("clip", help="the recording (MP4/MOV/WebM/MPEG/AVI, or frames folder + WAV)")
    p.add_argument("--reference", required=True, help="the enrolled photo (JPEG/PNG/WebP)")
    p.add_argument("--challenge", required=True, help="the challenge token the clip answers")
    p.add_argument("--subject", help="the subject the challenge must be bound to")
    p.add_argument("--store", help="SQLite file of consumed nonces (default: [challenge])")
    p.add_argument("--best-frame", help="write the audit best frame (JPEG) to this file")
    p.add_argument("--json", action="store_true", help="print the whole decision as JSON")
    p.set_defaults(func=_certify)


def print_decision(d: Decision, *, as_json: bool, out: TextIO | None = None) -> None:
    """The decision for a person (or as JSON): verdict, reasons, digits heard, scores, timings."""
    out = out or sys.stdout
    if as_json:
        print(json.dumps(d.to_dict(), indent=2, default=str), file=out)
        return
    print(f"verdict   {d.verdict}", file=out)
    print(f"reasons   {', '.join(map(str, d.reasons)) or '-'}", file=out)
    print(f"subject   {d.subject_id}", file=out)
    heard = " ".join(f"{t.digit}@{t.start:.2f}-{t.end:.2f}s" for t in d.digit_timings)
    print(f"heard     {d.digits_heard or '-'}  {heard}", file=out)
    print("scores", file=out)
    for s in d.scores:
        op = ">=" if s.higher_is_better else "<="
        mark = "ok  " if s.passed else "FAIL"
        print(f"  {mark} {s.name:28s} {s.value:9.4f}  (needs {op} {s.threshold:g})", file=out)
    stages = "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in d.timings.items())
    print(f"timings   {stages}", file=out)
    print(f"config    {d.config_hash[:16]}...", file=out)


def _certify(args: argparse.Namespace) -> int:
    from liveness.challenge import ChallengeAuthority
    from liveness.engine import Engine

    cfg = load_config(args)
    if args.store:
        cfg = dataclasses.replace(
            cfg, challenge=dataclasses.replace(cfg.challenge, nonce_store=args.store)
        )
    auth = ChallengeAuthority.from_env(cfg=cfg.challenge)
    with Engine.from_config(cfg, challenges=auth) as engine:
        d = engine.certify(args.clip, args.reference, args.challenge, subject_id=args.subject)
    if args.best_frame and d.best_frame_jpeg:
        Path(args.best_frame).write_bytes(d.best_frame_jpeg)
    print_decision(d, as_json=args.json)
    return EXIT_OK if d.verdict is Verdict.PASS else EXIT_NO
