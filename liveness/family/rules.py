"""Family-account (亲情账户) rules from the e-card guide, as pure functions.

* 10 slots per account, a lifetime quota: binding uses one, unbinding never returns it, and
  rebinding the same person uses a new one.
* At most 4 parents, 3 children, 1 spouse and 2 other relations bound at the same time.
* A minor (under 16 on the day of binding) needs their social-security card number and a
  1-inch photo; an adult needs their card photo and a face-verification PASS in person.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from liveness.config import FamilyConfig
from liveness.errors import FamilyError

__all__ = [
    "FamilyRefused",
    "Relation",
    "age_on",
    "check_card_number",
    "check_limits",
    "parse_birth_date",
    "relation_limit",
]


class Relation(StrEnum):
    """Who the member is to the operator (the account holder). Stable: written in records."""

    PARENT = "parent"
    CHILD = "child"
    SPOUSE = "spouse"
    OTHER = "other"


class FamilyRefused(FamilyError):
    """A family rule forbids the operation. ``rule`` names it for machines:

    slot_quota, relation_limit, already_bound, not_bound, self_binding, missing_evidence,
    invalid_evidence, face_not_verified, birth_date.
    """

    def __init__(self, rule: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.rule = rule


def relation_limit(relation: Relation, cfg: FamilyConfig) -> int:
    return {
        Relation.PARENT: cfg.max_parents,
        Relation.CHILD: cfg.max_children,
        Relation.SPOUSE: cfg.max_spouses,
        Relation.OTHER: cfg.max_others,
    }[relation]


def parse_birth_date(value: date | str, today: date) -> date:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise FamilyRefused(
                "birth_date", f"birth date {value!r} is not a date (use YYYY-MM-DD)"
            ) from None
    if value > today:
        raise FamilyRefused("birth_date", f"birth date {value.isoformat()} is in the future")
    if today.year - value.year > 130:
        raise FamilyRefused("birth_date", f"birth date {value.isoformat()} is implausibly early")
    return value


def age_on(birth: date, today: date) -> int:
    """Completed years of age on ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def check_card_number(number: str, birth: date) -> str:
    """Validate an 18-character social-security card (citizen ID) number; returns it upper-cased.

    The check character is ISO 7064 MOD 11-2 (GB 11643), and characters 7-14 must be the
    member's birth date.
    """
    n = number.strip().upper()
    if len(n) != 18 or not n[:17].isdigit() or not (n[17].isdigit() or n[17] == "X"):
        raise FamilyRefused(
            "invalid_evidence",
            "the social-security card number must be 18 characters (17 digits and a digit or X)",
        )
    total = sum(int(c) * w for c, w in zip(n[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != n[17]:
        raise FamilyRefused(
            "invalid_evidence",
            "the social-security card number's check character is wrong (mistyped?)",
        )
    if n[6:14] != birth.strftime("%Y%m%d"):
        raise FamilyRefused(
            "invalid_evidence",
            "the birth date in the card number does not match the birth date given",
        )
    return n


def check_limits(
    relation: Relation, *, bound_now: dict[Relation, int], slots_used: int, cfg: FamilyConfig
) -> None:
    """Raise FamilyRefused if one more binding of ``relation`` would break a limit."""
    if slots_used >= cfg.total_slots:
        raise FamilyRefused(
            "slot_quota",
            f"all {cfg.total_slots} family slots of this account have been used "
            "(unbinding does not return a slot)",
            hint="The slot quota is for the account's lifetime; it cannot be raised here.",
        )
    limit = relation_limit(relation, cfg)
    if bound_now.get(relation, 0) >= limit:
        raise FamilyRefused(
            "relation_limit",
            f"at most {limit} {relation.value} relation(s) can be bound at once",
            hint="Unbind one first (its slot is not returned).",
        )
