"""`liveness family bind | unbind | list`: the family-account (亲情账户) bindings.

Bindings live in the record store's database (``--db``, as for `liveness records`). Binding an
adult needs the record id of their in-person face-verification PASS (``--face-record``), made
within ``[family] face_verification_max_age_s`` before binding.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liveness.cli import EXIT_FAMILY, EXIT_OK, load_config
from liveness.errors import RecordError

if TYPE_CHECKING:
    from liveness.family import Binding, FamilyAccounts


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("family", help="bind, unbind and list family-account members")
    fsub = p.add_subparsers(dest="family_command", metavar="ACTION")

    b = fsub.add_parser("bind", help="bind a member to an account (uses one of its 10 slots)")
    b.add_argument("operator", help="the account holder's id")
    b.add_argument("member", help="the member's id (their card holder id)")
    b.add_argument("--relation", required=True, choices=["parent", "child", "spouse", "other"])
    b.add_argument("--birth-date", required=True, help="the member's birth date, YYYY-MM-DD")
    b.add_argument("--card-number", help="social-security card number (needed for a minor)")
    b.add_argument("--one-inch-photo", help="1-inch photo file (needed for a minor)")
    b.add_argument("--card-photo", help="card photo file (needed for an adult)")
    b.add_argument("--face-record", help="record id of the adult's face-verification PASS (adults)")
    _common(b)
    b.set_defaults(func=_bind)

    u = fsub.add_parser("unbind", help="end a binding (the slot is not returned)")
    u.add_argument("operator")
    u.add_argument("member")
    _common(u)
    u.set_defaults(func=_unbind)

    ls = fsub.add_parser("list", help="an account's members and slots")
    ls.add_argument("operator")
    ls.add_argument("--all", action="store_true", help="include ended bindings")
    _common(ls)
    ls.set_defaults(func=_list)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="record store (default: [records] db_path or the data folder)")
    p.add_argument("--json", action="store_true")


def _open(args: argparse.Namespace) -> Any:
    from liveness.family import FamilyAccounts
    from liveness.records.store import default_db_path

    cfg = load_config(args)
    path = Path(args.db) if args.db else default_db_path(cfg.records)
    return FamilyAccounts.open(path, cfg.family, records=cfg.records)


def _refused(args: argparse.Namespace, exc: Any) -> int:
    if args.json:
        print(json.dumps({"ok": False, "rule": exc.rule, "error": exc.message, "hint": exc.hint}))
        return EXIT_FAMILY
    raise exc


def _print_changed(fam: FamilyAccounts, operator: str, b: Binding) -> None:
    """The --json answer of bind and unbind: the binding as it now stands and the slots left."""
    print(
        json.dumps(
            {"ok": True, "binding": b.to_dict(), "slots_left": fam.slots_left(operator)},
            indent=2,
        )
    )


def _bind(args: argparse.Namespace) -> int:
    from liveness.family import FamilyRefused
    from liveness.records import RecordStore

    fam = _open(args)
    face: Any = None
    if args.face_record:
        rec = RecordStore(fam.db).get(args.face_record)
        if rec is None:
            raise RecordError(f"no record {args.face_record!r} in {fam.db.path}")
        face = rec
    try:
        b = fam.bind(
            args.operator,
            args.member,
            args.relation,
            birth_date=args.birth_date,
            card_number=args.card_number,
            one_inch_photo=args.one_inch_photo,
            card_photo=args.card_photo,
            face_verified=face,
        )
    except FamilyRefused as exc:
        return _refused(args, exc)
    if args.json:
        _print_changed(fam, args.operator, b)
    else:
        print(
            f"bound {b.member_id} as {b.relation} of {b.operator_id} in slot {b.slot} "
            f"({fam.slots_left(args.operator)} slots left)"
        )
    return EXIT_OK


def _unbind(args: argparse.Namespace) -> int:
    from liveness.family import FamilyRefused

    fam = _open(args)
    try:
        b = fam.unbind(args.operator, args.member)
    except FamilyRefused as exc:
        return _refused(args, exc)
    if args.json:
        _print_changed(fam, args.operator, b)
    else:
        print(f"unbound {b.member_id} from {b.operator_id}; slot {b.slot} stays used")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    fam = _open(args)
    rows = fam.history(args.operator) if args.all else fam.members(args.operator)
    left = fam.slots_left(args.operator)
    if args.json:
        print(
            json.dumps(
                {
                    "operator_id": args.operator,
                    "slots_left": left,
                    "members": [b.to_dict() for b in rows],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    print(f"{args.operator}: {len(fam.members(args.operator))} bound, {left} slots left")
    for b in rows:
        state = "bound" if b.active else f"unbound {b.to_dict()['unbound_at']}"
        minor = " minor" if b.minor else ""
        print(f"  slot {b.slot:>2}  {b.member_id:<20} {b.relation:<7}{minor}  {state}")
    return EXIT_OK
