"""RFC 8785 canonical JSON: number formatting, member order, escapes, strictness."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.errors import RecordError
from liveness.records.canonical import canonical_json, format_number, parse_canonical

# RFC 8785 Appendix B: IEEE-754 bit patterns and their canonical text.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "text"), RFC8785_NUMBERS)
def test_numbers_match_rfc8785_appendix_b(bits: str, text: str) -> None:
    x = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert format_number(x) == text


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinity_are_refused(bits: str) -> None:
    x = struct.unpack(">d", bytes.fromhex(bits))[0]
    with pytest.raises(RecordError):
        canonical_json({"x": x})


def test_members_sorted_by_utf16_code_units() -> None:
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB01 in UTF-16
    # although its code point is larger.
    value = {"\ufb01": 2, "\U0001f600": 1, "b": 0, "a": 0, "\u00e9": 0}
    out = canonical_json(value).decode("utf-8")
    assert out == '{"a":0,"b":0,"\u00e9":0,"\U0001f600":1,"\ufb01":2}'


def test_string_escapes_are_the_ecmascript_ones() -> None:
    s = '"\\\b\f\n\r\t\x00\x1f\x7f\u2028\u20ac/'
    out = canonical_json([s]).decode("utf-8")
    assert out == '["\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\x7f\u2028\u20ac/"]'


def test_rfc8785_section_3_2_3_example() -> None:
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": '\u20ac$\u000f\nA\'B"\\\\"/',
        "literals": [None, True, False],
    }
    want = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(value).decode("utf-8") == want


@pytest.mark.parametrize(
    "bad",
    [{1: "x"}, {"x": 2**53}, {"x": -(2**53)}, {"x": b"bytes"}, {"x": {1, 2}}, {"x": "\ud800"}],
)
def test_values_json_cannot_carry_exactly_are_refused(bad: object) -> None:
    with pytest.raises(RecordError):
        canonical_json(bad)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1.0}',  # integral float written with a fraction
        b'{"a":-0}',
        b'{"a":1E+21}',
        b'{"a":1e-05}',  # Python's form, not ECMAScript's 0.00001
        b'{"b":1,"a":2}',  # member order
        b'{"a": 1}',  # whitespace
        b'{"a":1,"a":1}',  # duplicate member
        b'{"a":"\\u00e9"}',  # escaped non-ASCII
        b'{"a":"\\/"}',  # escaped solidus
        b'{"a":"\\u001F"}',  # upper-case hex
        b"\xff",
    ],
)
def test_parse_canonical_rejects_non_canonical_text(text: bytes) -> None:
    with pytest.raises(RecordError):
        parse_canonical(text)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonical_bytes_parse_back_to_the_same_value_and_are_accepted(value: object) -> None:
    try:
        blob = canonical_json(value)
    except RecordError:
        assert _has_surrogate(value)  # the only thing hypothesis can generate that we refuse
        return
    back = parse_canonical(blob)
    assert canonical_json(back) == blob
    assert _same(back, value)


def _has_surrogate(value: object) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(value, ensure_ascii=False))


def _same(a: object, b: object) -> bool:
    """Equal as JSON values: numbers compare by value (1 == 1.0), -0.0 equals 0."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
