"""`liveness records list | expiring | verify | export | head | prove | check-proof | keys`.

The store is the SQLite file given by ``--db`` (default: ``[records] db_path``, else records.db in
the user's data folder). Signing commands read the private key from ``--key FILE`` or the
environment variable LIVENESS_SIGNING_KEY; it is only ever written to a file created 0600,
never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from liveness.cli import EXIT_NO, EXIT_OK, EXIT_USAGE, load_config
from liveness.errors import RecordError, SigningKeyError

KEY_ENV = "LIVENESS_SIGNING_KEY"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("records", help="list, verify and export signed certification records")
    rsub = p.add_subparsers(dest="records_command", metavar="ACTION")

    ls = rsub.add_parser("list", help="a subject's records, newest first")
    ls.add_argument("--subject", required=True)
    ls.add_argument("--limit", type=int)
    _db_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    ex = rsub.add_parser("expiring", help="subjects whose certification ends within N days")
    ex.add_argument("--days", type=float, default=30.0)
    _db_arg(ex)
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(func=_expiring)

    v = rsub.add_parser("verify", help="check every signature and the whole chain, offline")
    v.add_argument("source", help="a record store (SQLite) or an export (JSONL of JWS)")
    v.add_argument("--jwks", required=True, help="trusted public keys (JWKS JSON file)")
    v.add_argument("--checkpoint", help="a published signed tree head the chain must extend")
    v.add_argument(
        "--chain-only",
        action="store_true",
        help="check every link but only the newest signature (faster; see docs/records.md)",
    )
    v.add_argument(
        "--jobs", type=int, default=1, help="check signatures in N worker processes (default 1)"
    )
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)

    e = rsub.add_parser("export", help="write every record as JSONL (one compact JWS a line)")
    _db_arg(e)
    e.add_argument("--out", help="output file (default: stdout)")
    e.set_defaults(func=_export)

    h = rsub.add_parser("head", help="sign a tree head (Merkle root) to publish as a checkpoint")
    _db_arg(h)
    _key_arg(h)
    h.add_argument("--out", help="write the signed head (JWS) here (default: stdout)")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=_head)

    pr = rsub.add_parser("prove", help="an inclusion proof of one record against a tree head")
    pr.add_argument("record_id")
    pr.add_argument("--head", required=True, help="signed tree head file (from `records head`)")
    _db_arg(pr)
    pr.set_defaults(func=_prove)

    cp = rsub.add_parser("check-proof", help="verify one record's inclusion proof offline")
    cp.add_argument("proof", help="proof JSON file (from `records prove`)")
    cp.add_argument("--jwks", required=True)
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(func=_check_proof)

    k = rsub.add_parser("keys", help="generate, rotate or export the signing keys")
    ksub = k.add_subparsers(dest="keys_command", metavar="ACTION")
    g = ksub.add_parser("generate", help="new private key file (0600) and its JWKS")
    g.add_argument("--key", required=True, help="private key file to create (PEM, 0600)")
    g.add_argument("--jwks", required=True, help="public JWKS file to write")
    g.add_argument("--force", action="store_true", help="overwrite an existing key file")
    g.set_defaults(func=_keys_generate)
    r = ksub.add_parser("rotate", help="replace the key; the old public key stays in the JWKS")
    r.add_argument("--key", required=True, help="private key file (replaced, 0600)")
    r.add_argument("--jwks", required=True, help="JWKS file (updated)")
    r.set_defaults(func=_keys_rotate)
    x = ksub.add_parser("export", help="print the public JWKS (never the private key)")
    _key_arg(x)
    x.add_argument("--jwks", help="previous JWKS, to keep the retired keys")
    x.set_defaults(func=_keys_export)


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="record store (default: [records] db_path or the data folder)")


def _key_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", help=f"private key PEM file (default: ${KEY_ENV})")


def _open(args: argparse.Namespace, *, signing: bool = False) -> Any:
    from liveness.records import RecordStore
    from liveness.records.store import default_db_path

    cfg = load_config(args).records
    path = Path(args.db) if getattr(args, "db", None) else default_db_path(cfg)
    if not signing and not path.exists():
        raise RecordError(f"no record store at {path}", hint="Pass --db or set [records] db_path.")
    return RecordStore.open(path, _keys(args) if signing else None, cfg)


def _keys(args: argparse.Namespace) -> Any:
    from liveness.records import SigningKeys

    known = getattr(args, "jwks", None)
    if getattr(args, "key", None):
        return SigningKeys.from_pem(args.key, known=known)
    return SigningKeys.from_env(KEY_ENV, known=known)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def _list(args: argparse.Namespace) -> int:
    store = _open(args)
    recs = store.history(args.subject, limit=args.limit)
    if args.json:
        _print_json({"subject_id": args.subject, "records": [r.to_dict() for r in recs]})
        return EXIT_OK
    if not recs:
        print(f"no records for {args.subject}")
    for r in recs:
        d = r.to_dict()
        who = "" if not r.proxy else f" by {r.operator_id} ({r.relationship})"
        until = f" valid until {d['valid_until_utc']}" if r.valid_until else ""
        reasons = f" [{', '.join(r.reasons)}]" if r.reasons else ""
        print(f"{d['issued_at_utc']}  {r.verdict:<5}{reasons}{who}{until}  {r.record_id}")
    return EXIT_OK


def _expiring(args: argparse.Namespace) -> int:
    recs = _open(args).expiring_within(args.days)
    if args.json:
        _print_json({"days": args.days, "records": [r.to_dict() for r in recs]})
        return EXIT_OK
    for r in recs:
        print(f"{r.to_dict()['valid_until_utc']}  {r.subject_id}  {r.record_id}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from liveness.records import load_jwks
    from liveness.records.merkle import TreeHead
    from liveness.records.verify import verify_path

    keys = load_jwks(args.jwks)
    checkpoint = None
    if args.checkpoint:
        checkpoint = TreeHead.verify(_read_text(args.checkpoint), keys)
    if not Path(args.source).exists():
        raise RecordError(f"{args.source} does not exist")
    rep = verify_path(args.source, keys, every_signature=not args.chain_only, checkpoint=checkpoint)
    if args.json:
        out = rep.to_dict()
        out["mode"] = "chain-only" if args.chain_only else "every-signature"
        _print_json(out)
    elif rep.ok:
        kids = ", ".join(f"{k} x{n}" for k, n in rep.kids.items())
        print(f"OK: {rep.records} records, chain intact, head {rep.head_hash} ({kids})")
    else:
        print(f"BROKEN: {rep.first_error}")
        for e in rep.errors[1:10]:
            print(f"  also: {e}")
        if len(rep.errors) > 10 or rep.truncated_errors:
            print(f"  ... {len(rep.errors) - 10 + rep.truncated_errors} more")
    return EXIT_OK if rep.ok else EXIT_NO


def _export(args: argparse.Namespace) -> int:
    store = _open(args)
    if args.out:
        n = 0
        with open(args.out, "w", encoding="ascii") as fh:
            for jws in store.iter_jws():
                fh.write(jws + "\n")
                n += 1
        print(f"exported {n} records to {args.out}", file=sys.stderr)
    else:
        for jws in store.iter_jws():
            sys.stdout.write(jws + "\n")
    return EXIT_OK


def _head(args: argparse.Namespace) -> int:
    store = _open(args, signing=True)
    head = store.tree_head()
    if args.out:
        Path(args.out).write_text(head.jws + "\n", encoding="ascii")
    if args.json:
        _print_json(head.to_dict())
    elif not args.out:
        print(head.jws)
    return EXIT_OK


def _prove(args: argparse.Namespace) -> int:
    from liveness.records.merkle import TreeHead

    store = _open(args)
    # no JWKS needed here: whoever reads the proof checks the head's signature with theirs
    head = TreeHead.parse(_read_text(args.head))
    _print_json(store.inclusion_proof(args.record_id, head).to_dict())
    return EXIT_OK


def _check_proof(args: argparse.Namespace) -> int:
    from liveness.errors import RecordIntegrityError
    from liveness.records import CertRecord, load_jwks
    from liveness.records.merkle import InclusionProof

    try:
        raw = json.loads(_read_text(args.proof))
    except json.JSONDecodeError as exc:
        raise RecordError(f"{args.proof} is not JSON: {exc}") from None
    proof = InclusionProof.from_dict(raw)
    try:
        head = proof.verify(load_jwks(args.jwks))
    except RecordIntegrityError as exc:
        if args.json:
            _print_json({"ok": False, "error": exc.message})
        else:
            print(f"BROKEN: {exc.message}")
        return EXIT_NO
    rec = CertRecord.from_jws(proof.record_jws)
    if args.json:
        _print_json({"ok": True, "record": rec.to_dict(), "tree_head": head.to_dict()})
    else:
        print(
            f"OK: record {rec.record_id} is #{rec.seq} of the {head.tree_size} in the signed head"
        )
    return EXIT_OK


def _keys_generate(args: argparse.Namespace) -> int:
    from liveness.records import SigningKeys

    key = Path(args.key)
    if key.exists() and not args.force:
        print(f"error: {key} exists; pass --force to replace it", file=sys.stderr)
        return EXIT_USAGE
    keys = SigningKeys.generate()
    keys.save_pem(key)
    _write_jwks(Path(args.jwks), keys.public_jwks())
    print(f"new signing key {keys.kid}: private key in {key} (0600), public keys in {args.jwks}")
    return EXIT_OK


def _keys_rotate(args: argparse.Namespace) -> int:
    from liveness.records import SigningKeys

    if not Path(args.jwks).exists():
        raise SigningKeyError(
            f"{args.jwks} does not exist",
            hint="Rotation keeps the old public keys in the JWKS: pass the published one.",
        )
    keys = SigningKeys.from_pem(args.key, known=args.jwks)
    old = keys.kid
    new = keys.rotate()
    keys.save_pem(args.key)  # the retired private key is overwritten, not kept
    _write_jwks(Path(args.jwks), keys.public_jwks())
    print(f"rotated: {old} retired, {new} now signs; publish the updated {args.jwks}")
    return EXIT_OK


def _keys_export(args: argparse.Namespace) -> int:
    _print_json(_keys(args).public_jwks())
    return EXIT_OK


def _write_jwks(path: Path, jwks: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jwks, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror}") from None
