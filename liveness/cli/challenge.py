"""`liveness challenge new | verify`: issue and check single-use digit challenges.

The key comes from the environment variable LIVENESS_CHALLENGE_KEY (``hex:<64 hex digits>``,
``base64:...``, or an Ed25519 PEM private key; see ``liveness.challenge``). It is never printed.
Consumed nonces are kept in the SQLite file given by ``--store`` or ``[challenge] nonce_store``;
without one, single use is only enforced within one process, so ``verify`` warns.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime

from liveness.challenge import ChallengeAuthority
from liveness.cli import EXIT_OK, EXIT_USAGE, load_config
from liveness.config import ChallengeConfig


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("challenge", help="issue or verify a spoken-digit challenge")
    csub = p.add_subparsers(dest="challenge_command", metavar="ACTION")

    n = csub.add_parser("new", help="issue a challenge for a subject")
    n.add_argument("--subject", required=True, help="the subject (card holder) id")
    n.add_argument("--length", type=_length, help="number of digits, 1..8 (default: config, 6)")
    n.add_argument("--json", action="store_true")
    n.set_defaults(func=_new)

    v = csub.add_parser("verify", help="verify (and consume) a challenge token")
    v.add_argument("token")
    v.add_argument("--subject", help="the subject the challenge must be bound to")
    v.add_argument("--no-consume", action="store_true", help="check only; leave it usable")
    v.add_argument("--store", help="SQLite file of consumed nonces (default: [challenge])")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)


def _length(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= n <= 8:
        raise argparse.ArgumentTypeError("the length must be from 1 to 8")
    return n


def _authority(args: argparse.Namespace) -> tuple[ChallengeAuthority, ChallengeConfig]:

    cfg = load_config(args).challenge
    store = getattr(args, "store", None)
    if store:
        cfg = dataclasses.replace(cfg, nonce_store=store)
    return ChallengeAuthority.from_env(cfg=cfg), cfg


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _new(args: argparse.Namespace) -> int:
    auth, _ = _authority(args)
    try:
        c = auth.issue(args.subject, length=args.length)
    except ValueError as exc:  # e.g. an empty or over-long subject id
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({**c.to_dict(), "algorithm": auth.algorithm, "key_id": auth.key_id}))
    else:
        print(f"digits   {c.digits}")
        print(f"subject  {c.subject_id}")
        print(f"expires  {_iso(c.expires_at)}")
        print(f"token    {c.token}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    auth, cfg = _authority(args)
    if not cfg.nonce_store and not args.no_consume:
        print(
            "warning: no nonce store configured (--store or [challenge] nonce_store); "
            "this process cannot remember that the token was used",
            file=sys.stderr,
        )
    c = auth.verify(args.token, subject_id=args.subject, consume=not args.no_consume)
    if args.json:
        print(json.dumps({"valid": True, "consumed": not args.no_consume, **c.to_dict()}))
    else:
        state = "checked (not consumed)" if args.no_consume else "consumed"
        print(f"valid: digits {c.digits} for {c.subject_id}, {state}")
    return EXIT_OK
