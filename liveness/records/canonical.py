"""RFC 8785 JSON Canonicalization Scheme (JCS), the byte form every record is signed in.

Why JCS: it is a published, strict canonical form with implementations in many languages, so a
benefit office can re-derive the signed bytes without our code. What it fixes:

* object members sorted by the UTF-16 code units of their names, no whitespace;
* strings escaped the ECMAScript way: only ``"``, ``\\`` and U+0000..U+001F, the five short
  escapes (``\\b \\t \\n \\f \\r``) where they exist, ``\\u00xx`` (lower-case hex) otherwise;
  everything else, non-ASCII included, is written as UTF-8;
* numbers as IEEE-754 doubles printed by ECMAScript's ``Number.prototype.toString`` (the
  shortest digits that round-trip; exponent form below 1e-6 and from 1e21 on).

Stricter than the RFC where it would otherwise lose information silently: NaN and infinities,
integers beyond +-(2**53 - 1), lone surrogates and non-string keys raise ``RecordError``.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Callable
from typing import Any

from liveness.errors import RecordError

__all__ = ["canonical_json", "format_number", "parse_canonical"]

_MAX_SAFE_INT = 2**53 - 1
# The standard library's string encoder escapes exactly what RFC 8785 escapes: '"', '\\',
# the short forms \b \t \n \f \r, and other U+0000..U+001F as lower-case \u00xx (tested).
_quote: Callable[[str], str] = json.encoder.encode_basestring


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON-compatible value.

    Accepts dict (str keys), list/tuple, str, int, float, bool and None.
    """
    parts: list[str] = []
    _write(value, parts.append, 0)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordError(
            "a string in the record is not valid Unicode (lone surrogate)",
            hint="Pass only well-formed text to the record store.",
        ) from exc


def _write(value: Any, emit: Callable[[str], None], depth: int) -> None:
    # Exact-type checks first: this runs for every member of every record verified.
    t = type(value)
    if t is str:
        emit(_quote(value))
    elif t is dict:
        if depth > 64:
            raise RecordError("record nests deeper than 64 levels")
        keys = list(value)
        for k in keys:
            if not isinstance(k, str):
                raise RecordError(f"record keys must be strings, got {type(k).__name__}")
        if all(k.isascii() for k in keys):
            keys.sort()  # code-point order equals UTF-16 order for ASCII
        else:
            keys.sort(key=_utf16_key)
        emit("{")
        first = True
        for k in keys:
            if first:
                first = False
            else:
                emit(",")
            emit(_quote(k))
            emit(":")
            _write(value[k], emit, depth + 1)
        emit("}")
    elif t is list or t is tuple:
        if depth > 64:
            raise RecordError("record nests deeper than 64 levels")
        emit("[")
        for i, item in enumerate(value):
            if i:
                emit(",")
            _write(item, emit, depth + 1)
        emit("]")
    elif value is None:
        emit("null")
    elif value is True:
        emit("true")
    elif value is False:
        emit("false")
    elif t is float:
        emit(format_number(value))
    elif isinstance(value, str):  # str subclasses, e.g. StrEnum members
        emit(_quote(str.__str__(value)))
    elif isinstance(value, int):
        if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            emit(str(int(value)))
        else:
            raise RecordError(
                f"integer {value} is outside the exactly representable range +-(2**53 - 1)",
                hint="Store large integers as strings.",
            )
    elif isinstance(value, float):
        emit(format_number(float(value)))
    elif isinstance(value, dict | list | tuple):
        _write(dict(value) if isinstance(value, dict) else list(value), emit, depth)
    else:
        raise RecordError(f"a {type(value).__name__} cannot be put in a record (JSON types only)")


def _utf16_key(s: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like the sequence of UTF-16 code units.
    return s.encode("utf-16-be", "surrogatepass")


def format_number(x: float) -> str:
    """ECMAScript ``Number.prototype.toString`` of a finite double (RFC 8785 section 3.2.2.3)."""
    if not math.isfinite(x):
        raise RecordError(
            f"{x} cannot be written in a record (JSON has no NaN or infinity)",
            hint="A score or time is not a finite number; fix the value before recording it.",
        )
    if x == 0:
        return "0"  # also -0
    r = repr(x)
    if "e" not in r:
        # repr() prints 1e-4 <= |x| < 1e16 in fixed notation with the same shortest digits as
        # ECMAScript; only the ".0" of integral values differs.
        return r[:-2] if r.endswith(".0") else r
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digits that round-trip, as ECMAScript requires.
    r = repr(abs(x))
    mantissa, _, exp_s = r.partition("e")
    exp = int(exp_s) if exp_s else 0
    int_part, _, frac_part = mantissa.partition(".")
    if frac_part == "0":
        frac_part = ""
    digits = int_part + frac_part
    # value = 0.digits * 10**n, with digits stripped of leading/trailing zeros
    n = len(int_part) + exp
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        esign = "+" if e >= 0 else "-"
        head = digits[0] + ("." + digits[1:] if k > 1 else "")
        body = f"{head}e{esign}{abs(e)}"
    return sign + body


class _NotCanonical(Exception):
    pass


def _number_parsers(
    flags: list[bool],
) -> tuple[Callable[[str], int | float], Callable[[str], float]]:
    """json.loads hooks that refuse non-canonical number text. ``flags`` gets an entry for any
    value whose Python repr() differs from its ECMAScript form, so the caller compares slowly."""

    def parse_float(text: str) -> float:
        v = float(text)
        if format_number(v) != text:
            raise _NotCanonical(text)
        if v.is_integer() or not 1e-4 <= abs(v) < 1e16:
            flags.append(True)
        return v

    def parse_int(text: str) -> int | float:
        v = int(text)
        if text != str(v):
            raise _NotCanonical(text)  # "-0"
        if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
            return v
        return parse_float(text)  # a large double printed without exponent (below 1e21)

    return parse_int, parse_float


_dumps_compact = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode


def parse_canonical(body: bytes) -> Any:
    """Parse ``body`` if it is exactly RFC 8785 canonical JSON; raise ``RecordError`` if not.

    Every number literal is checked against the ECMAScript form as it is parsed; the rest
    (member order, escapes, no whitespace, no duplicate names) by re-encoding with the standard
    library's C encoder, which agrees with RFC 8785 for ASCII member names and numbers >= 1e-4.
    Anything else takes the slow path through ``canonical_json``.
    """
    flags: list[bool] = []
    try:
        text = body.decode("utf-8")
        parse_int, parse_float = _number_parsers(flags)
        value = json.loads(text, parse_int=parse_int, parse_float=parse_float)
    except _NotCanonical as exc:
        raise RecordError(f"number {exc} is not in canonical form") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f"not UTF-8 JSON: {exc}") from None
    if not flags and body.isascii():
        ok = _dumps_compact(value) == text
    else:
        ok = canonical_json(value) == body
    if not ok:
        raise RecordError("the JSON is not in RFC 8785 canonical form")
    return value
