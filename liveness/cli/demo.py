"""`liveness demo`: a real certification on sample data, start to finish.

1. a challenge authority with a fresh random key issues a challenge;
2. a sample clip that reads it (``--source auto``, the default: synthetic when espeak-ng is
   installed, else GRID): ``--source grid`` picks a real GRID talking-head clip
   from the shared data and issues a 1-digit challenge until it equals a digit spoken in one of
   them (the clips are pre-recorded; a phone would record after seeing the challenge);
   ``--source synthetic`` issues a 6-digit challenge and makes a clip of a face photo reading it
   (espeak-ng);
3. the Engine certifies the clip against the enrolled photo (for GRID, a later frame of the same
   clip) and prints the decision.

The shared data is found from the current directory (``shared/data`` or ``../shared/data``
upwards) or given with ``--data``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path

from liveness.cli import EXIT_NO, EXIT_OK, EXIT_USAGE, load_config
from liveness.cli.certify import print_decision
from liveness.results import Verdict


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("demo", help="issue a challenge, certify a sample clip, print the decision")
    p.add_argument("--data", help="the shared data folder (default: found from the cwd)")
    p.add_argument(
        "--source", choices=("auto", "grid", "synthetic"), default="auto",
        help="auto (default): synthetic when espeak-ng is installed, else grid",
    )  # fmt: skip
    p.add_argument("--clip", help="GRID clip name to use (e.g. bbaf2n); default: any that fits")
    p.add_argument("--seed", type=int, default=0, help="seed for the synthetic clip")
    p.add_argument("--keep", help="folder to keep the generated clip and reference in")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from liveness import fixtures
    from liveness.challenge import ChallengeAuthority
    from liveness.engine import Engine

    try:
        data = fixtures.find_shared_data(args.data)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cfg = load_config(args)
    auth = ChallengeAuthority(secrets.token_bytes(32), cfg=cfg.challenge)
    subject = "demo-subject"
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="liveness-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    log = sys.stderr
    source = args.source
    if source == "auto":
        import shutil

        source = "synthetic" if shutil.which("espeak-ng") else "grid"
    if source == "grid":
        clips = fixtures.grid_clips(data)
        if args.clip:
            clips = [c for c in clips if c.stem == args.clip]
        if not clips:
            print(f"error: no GRID clip {args.clip or ''} in {data / 'grid'}", file=log)
            return EXIT_USAGE
        by_digit = {fixtures.grid_digit(c): c for c in reversed(clips)}
        for _ in range(1000):
            challenge = auth.issue(subject, length=1)
            if challenge.digits in by_digit:
                break
        else:  # pragma: no cover - 1000 misses has probability < 1e-40 with 7 usable digits
            print("error: could not issue a challenge that a sample clip reads", file=log)
            return EXIT_NO
        clip = by_digit[challenge.digits]
        from liveness.media import open_clip

        frames = open_clip(str(clip), cfg.media, target_fps=None).frames
        reference = fixtures._write_jpeg(work / f"reference_{clip.stem}.jpg", frames[-3])
        print(f"challenge: read the digit {challenge.digits}", file=log)
        print(f"clip:      {clip} (GRID speaker saying '{challenge.digits}')", file=log)
    else:
        challenge = auth.issue(subject)
        print(f"challenge: read the digits {challenge.digits}", file=log)
        try:
            (case,) = fixtures.generate(
                work, data, digits=challenge.digits, seed=args.seed,
                families=["genuine_synthetic"],
            )  # fmt: skip
        except fixtures.FixtureToolMissing as exc:
            print(f"error: {exc}", file=log)
            return EXIT_USAGE
        clip, reference = Path(case.clip), Path(case.reference)
        print(f"clip:      {clip} (a face photo reading it, made with espeak-ng)", file=log)
    print(f"reference: {reference}", file=log)
    with Engine.from_config(cfg, challenges=auth) as engine:
        d = engine.certify(str(clip), str(reference), challenge.token, subject_id=subject)
    print_decision(d, as_json=args.json)
    return EXIT_OK if d.verdict is Verdict.PASS else EXIT_NO
