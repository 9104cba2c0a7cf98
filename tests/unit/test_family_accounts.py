"""Family-account rules: slots, relation limits, evidence, authorisation of proxies."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveness.config import FamilyConfig
from liveness.errors import FamilyError
from liveness.family import FamilyAccounts, FamilyRefused, ProxyRefusal, Relation
from liveness.family.rules import age_on, check_card_number
from liveness.records import RecordStore, SigningKeys
from liveness.results import Decision, Reason, Verdict

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC).timestamp()


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (48, 36, 3), dtype=np.uint8))
    assert ok
    return bytes(buf)


def card_number(birth: date, serial: str = "123") -> str:
    """A well-formed 18-character number (GB 11643 check character), for test members."""
    body = "110105" + birth.strftime("%Y%m%d") + serial
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def face_pass(member: str) -> Decision:
    return Decision(verdict=Verdict.PASS, subject_id=member, clip_sha256="f" * 64)


def bind_adult(fam: FamilyAccounts, op: str, member: str, rel: str = "parent", **kw: object):  # type: ignore[no-untyped-def]
    return fam.bind(
        op,
        member,
        rel,
        birth_date="1950-05-04",
        card_photo=jpeg(hash(member) % 1000),
        face_verified=face_pass(member),
        now=kw.pop("now", NOW),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def fam(tmp_path: Path) -> FamilyAccounts:
    return FamilyAccounts.open(tmp_path / "r.db")


def test_card_number_check_matches_the_published_example() -> None:
    assert check_card_number("11010519491231002x", date(1949, 12, 31)) == "11010519491231002X"
    with pytest.raises(FamilyRefused, match="check character"):
        check_card_number("110105194912310021", date(1949, 12, 31))
    with pytest.raises(FamilyRefused, match="birth date"):
        check_card_number("11010519491231002X", date(1949, 12, 30))
    assert card_number(date(1949, 12, 31), "002") == "11010519491231002X"


def test_age_counts_completed_years() -> None:
    assert age_on(date(2011, 3, 2), date(2027, 3, 1)) == 15
    assert age_on(date(2011, 3, 1), date(2027, 3, 1)) == 16


def test_minor_needs_card_number_and_one_inch_photo(fam: FamilyAccounts) -> None:
    birth = date(2015, 6, 1)
    with pytest.raises(FamilyRefused, match="card number") as e:
        fam.bind("op", "kid", "child", birth_date=birth, one_inch_photo=jpeg(1), now=NOW)
    assert e.value.rule == "missing_evidence"
    with pytest.raises(FamilyRefused, match="1-inch"):
        fam.bind("op", "kid", "child", birth_date=birth, card_number=card_number(birth), now=NOW)
    with pytest.raises(FamilyRefused, match="not a JPEG"):
        fam.bind(
            "op", "kid", "child", birth_date=birth, card_number=card_number(birth),
            one_inch_photo=b"GIF89a....", now=NOW,
        )  # fmt: skip
    b = fam.bind(
        "op", "kid", "child", birth_date=birth, card_number=card_number(birth),
        one_inch_photo=jpeg(1), now=NOW,
    )  # fmt: skip
    assert b.minor and b.slot == 1 and b.bound_by == "op" and b.bound_at == NOW
    assert b.evidence["card_number_masked"].endswith(card_number(birth)[-4:])
    assert card_number(birth) not in str(b.to_dict())  # only a hash and a masked form kept


def test_sixteen_today_is_an_adult(fam: FamilyAccounts) -> None:
    birth = date(2011, 3, 1)
    with pytest.raises(FamilyRefused, match="card photo"):
        fam.bind("op", "teen", "child", birth_date=birth, card_number=card_number(birth),
                 one_inch_photo=jpeg(2), now=NOW)  # fmt: skip


def test_adult_needs_card_photo_and_a_face_pass_of_that_adult(
    fam: FamilyAccounts, tmp_path: Path
) -> None:
    common = {"birth_date": "1950-05-04", "now": NOW}
    with pytest.raises(FamilyRefused, match="face-verification") as e:
        fam.bind("op", "mum", "parent", card_photo=jpeg(3), **common)  # type: ignore[arg-type]
    assert e.value.rule == "face_not_verified"
    failed = Decision(verdict=Verdict.FAIL, reasons=(Reason.FACE_MISMATCH,), subject_id="mum")
    with pytest.raises(FamilyRefused, match="FACE_MISMATCH"):
        fam.bind("op", "mum", "parent", card_photo=jpeg(3), face_verified=failed, **common)  # type: ignore[arg-type]
    with pytest.raises(FamilyRefused, match="not 'mum'"):
        fam.bind("op", "mum", "parent", card_photo=jpeg(3), face_verified=face_pass("op"), **common)  # type: ignore[arg-type]
    # a signed PASS record works if it was made at binding, not last year
    store = RecordStore.open(tmp_path / "r.db", SigningKeys.generate())
    old = store.append_decision(face_pass("mum"), now=NOW - 86400)
    with pytest.raises(FamilyRefused, match="in person"):
        fam.bind("op", "mum", "parent", card_photo=jpeg(3), face_verified=old, **common)  # type: ignore[arg-type]
    fresh = store.append_decision(face_pass("mum"), now=NOW - 60)
    photo = tmp_path / "mum.jpg"
    photo.write_bytes(jpeg(3))
    b = fam.bind("op", "mum", "parent", card_photo=photo, face_verified=fresh, **common)  # type: ignore[arg-type]
    assert not b.minor and b.evidence["face_verification"]["record_id"] == fresh.record_id
    assert fam.reference_photo(b) == jpeg(3)


def test_relation_limits(fam: FamilyAccounts) -> None:
    for i in range(3):
        bind_adult(fam, "op", f"c{i}", "child")
    with pytest.raises(FamilyRefused, match="at most 3 child") as e:
        bind_adult(fam, "op", "c3", "child")
    assert e.value.rule == "relation_limit"
    for i in range(4):
        bind_adult(fam, "op", f"p{i}", "parent")
    with pytest.raises(FamilyRefused, match="at most 4 parent"):
        bind_adult(fam, "op", "p4", "parent")
    for i in range(2):
        bind_adult(fam, "op", f"o{i}", "other")
    with pytest.raises(FamilyRefused, match="at most 2 other"):
        bind_adult(fam, "op", "o2", "other")
    bind_adult(fam, "op", "wife", "spouse")
    assert len(fam.members("op")) == 10 and fam.slots_left("op") == 0
    assert fam.members("someone-else") == []
    bind_adult(fam, "op2", "wife", "spouse")
    with pytest.raises(FamilyRefused, match="at most 1 spouse"):
        bind_adult(fam, "op2", "wife2", "spouse")


def test_unbinding_frees_the_relation_but_never_the_slot(fam: FamilyAccounts) -> None:
    bind_adult(fam, "op", "wife", "spouse")
    ended = fam.unbind("op", "wife", now=NOW + 1)
    assert ended.unbound_at == NOW + 1 and not ended.active
    again = bind_adult(fam, "op", "wife", "spouse")  # rebinding the same person: a new slot
    assert again.slot == 2 and fam.slots_left("op") == 8
    with pytest.raises(FamilyRefused) as e:
        fam.unbind("op", "nobody")
    assert e.value.rule == "not_bound"
    # burn the quota by binding and unbinding
    for i in range(8):
        bind_adult(fam, "op", f"x{i}", "other")
        fam.unbind("op", f"x{i}")
    with pytest.raises(FamilyRefused, match="all 10 family slots") as e2:
        bind_adult(fam, "op", "late", "parent")
    assert e2.value.rule == "slot_quota"
    assert [b.slot for b in fam.history("op")] == list(range(1, 11))


def test_self_and_duplicate_bindings_are_refused(fam: FamilyAccounts) -> None:
    with pytest.raises(FamilyRefused) as e:
        bind_adult(fam, "op", "op")
    assert e.value.rule == "self_binding"
    bind_adult(fam, "op", "mum")
    with pytest.raises(FamilyRefused) as e2:
        bind_adult(fam, "op", "mum", "other")
    assert e2.value.rule == "already_bound"
    with pytest.raises(FamilyRefused, match="unknown relation"):
        bind_adult(fam, "op", "x", "cousin")
    with pytest.raises(FamilyRefused, match="future"):
        fam.bind("op", "x", "other", birth_date="2030-01-01", now=NOW)
    assert isinstance(e.value, FamilyError)


def test_authorize_proxy_gives_a_clear_reason(fam: FamilyAccounts) -> None:
    b = bind_adult(fam, "son", "mum")
    assert fam.authorize_proxy("son", "mum") == b
    never = fam.authorize_proxy("son", "stranger")
    assert isinstance(never, ProxyRefusal) and never.reason is Reason.NOT_BOUND
    assert "never" in never.message
    fam.unbind("son", "mum", now=NOW + 3600)
    since = fam.authorize_proxy("son", "mum")
    assert isinstance(since, ProxyRefusal) and since.reason is Reason.NOT_BOUND
    assert since.unbound_at == NOW + 3600 and "unbound" in since.message
    self_ = fam.authorize_proxy("son", "son")
    assert isinstance(self_, ProxyRefusal) and self_.reason is Reason.PROXY_NOT_ALLOWED
    # another account's binding does not authorise this operator
    bind_adult(fam, "daughter", "dad")
    assert isinstance(fam.authorize_proxy("son", "dad"), ProxyRefusal)
    assert FamilyAccounts.authorize_card("mum", "mum") is None
    card = FamilyAccounts.authorize_card("son", "mum")
    assert card is not None and card.reason is Reason.PROXY_NOT_ALLOWED


# --- property test: random bind/unbind sequences never break a rule ---------------------------

ops = st.lists(
    st.tuples(
        st.sampled_from(["bind", "bind", "unbind"]),
        st.sampled_from(list(Relation)),
        st.integers(min_value=0, max_value=6),  # a small pool of people, so rebinds happen
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seq=ops)
def test_no_sequence_exceeds_a_limit_or_returns_a_slot(
    tmp_path_factory: pytest.TempPathFactory, seq: list[tuple[str, Relation, int]]
) -> None:
    cfg = FamilyConfig()
    limits = {Relation.PARENT: 4, Relation.CHILD: 3, Relation.SPOUSE: 1, Relation.OTHER: 2}
    fam = FamilyAccounts.open(tmp_path_factory.mktemp("fam") / "r.db", cfg)
    model: dict[str, Relation] = {}  # live bindings: member -> relation
    used = 0
    for op, rel, who in seq:
        member = f"m{who}"
        if op == "bind":
            expect_ok = (
                member not in model
                and used < cfg.total_slots
                and sum(1 for r in model.values() if r is rel) < limits[rel]
            )
            try:
                bind_adult(fam, "acct", member, rel.value)
            except FamilyRefused:
                assert not expect_ok
            else:
                assert expect_ok
                model[member] = rel
                used += 1
        else:
            try:
                fam.unbind("acct", member)
            except FamilyRefused:
                assert member not in model
            else:
                del model[member]
        live = fam.members("acct")
        assert {b.member_id: b.relation for b in live} == model
        for r, lim in limits.items():
            assert sum(1 for b in live if b.relation is r) <= lim
        history = fam.history("acct")
        assert len(history) == used <= cfg.total_slots
        assert fam.slots_left("acct") == cfg.total_slots - used  # unbinding never gave one back
        assert sorted(b.slot for b in history) == list(range(1, used + 1))
    fam.close()
