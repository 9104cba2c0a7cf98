"""Digit normalisation, token classes, the contiguity policy and one-edit variants (pure)."""

from __future__ import annotations

import itertools

import pytest

from liveness.checks.speech import (
    END,
    OTHER,
    SEP,
    STOP,
    ZH_DIGITS,
    challenge_satisfied,
    digit_run_spans,
    digit_runs,
    normalise_digits,
    one_edit_variants,
    token_class,
)

ZH_STD = "零一二三四五六七八九"


@pytest.mark.parametrize("d", range(10))
def test_zh_every_standard_digit(d: int) -> None:
    assert normalise_digits(ZH_STD[d], "zh") == str(d)


@pytest.mark.parametrize(("ch", "digit"), sorted(ZH_DIGITS.items()))
def test_zh_every_character_and_variant(ch: str, digit: str) -> None:
    assert normalise_digits(ch, "zh") == digit
    assert normalise_digits(f"{ch}{ch}", "zh") == digit * 2


def test_zh_spoken_variants() -> None:
    assert normalise_digits("幺两洞", "zh") == "120"
    assert normalise_digits("〇", "zh") == "0"
    assert normalise_digits("八幺二两零洞", "zh") == "812200"


def test_zh_all_two_character_strings() -> None:
    # every pair of digit characters (incl. variants) normalises to the pair of digits
    for a, b in itertools.product(ZH_DIGITS, repeat=2):
        assert normalise_digits(a + b, "zh") == ZH_DIGITS[a] + ZH_DIGITS[b]


def test_zh_arabic_and_full_width_digits() -> None:
    assert normalise_digits("711066", "zh") == "711066"
    assert normalise_digits("７１１０６６", "zh") == "711066"
    assert normalise_digits("七1一0六6", "zh") == "711066"


def test_zh_separators_and_fillers_are_transparent() -> None:
    assert digit_runs("七、一，一。零 六六", "zh") == ("711066",)
    assert digit_runs("嗯，七一一零六六", "zh") == ("711066",)
    assert digit_runs("七一一呃零六六", "zh") == ("711066",)


def test_zh_other_words_split_runs() -> None:
    assert digit_runs("七一，不对，七一一零六六", "zh") == ("71", "711066")
    assert digit_runs("我的号码是五八零三五一", "zh") == ("580351",)
    assert digit_runs("十一", "zh") == ("1",)  # 十 is not a digit read one by one
    assert digit_runs("", "zh") == ()
    assert digit_runs("你好", "zh") == ()


@pytest.mark.parametrize(
    ("word", "digit"),
    [
        ("zero", "0"),
        ("oh", "0"),
        ("one", "1"),
        ("two", "2"),
        ("three", "3"),
        ("four", "4"),
        ("five", "5"),
        ("six", "6"),
        ("seven", "7"),
        ("eight", "8"),
        ("nine", "9"),
    ],
)
def test_en_every_word(word: str, digit: str) -> None:
    assert normalise_digits(word, "en") == digit
    assert normalise_digits(word.upper(), "en") == digit
    assert normalise_digits(word.capitalize() + ".", "en") == digit


def test_en_arabic_digits_and_grouping() -> None:
    assert normalise_digits("1,0001 90210 01803", "en") == "100019021001803"
    assert normalise_digits("1-0-0-0-1", "en") == "10001"
    assert normalise_digits("4 7 1 2 5 6.", "en") == "471256"
    assert normalise_digits("１２３", "en") == "123"


def test_en_mixed_words_and_digits() -> None:
    assert normalise_digits("nine oh two 1 oh", "en") == "90210"


def test_en_double_triple() -> None:
    assert normalise_digits("double three four", "en") == "334"
    assert normalise_digits("triple 7", "en") == "777"
    assert normalise_digits("one double oh", "en") == "100"
    # "double" followed by a non-digit word repeats nothing
    assert digit_runs("double trouble 5", "en") == ("5",)


def test_en_fillers_and_restarts() -> None:
    assert digit_runs("Um, 4 7 1 2 5 6", "en") == ("471256",)
    assert digit_runs("4 7 uh 1 2 5 6", "en") == ("471256",)
    assert digit_runs("4 7, sorry, 4 7 1 2 5 6", "en") == ("47", "471256")
    assert digit_runs("my code is 3 2 1", "en") == ("321",)
    assert digit_runs("", "en") == ()
    assert digit_runs("hello there", "en") == ()


def test_unknown_language_is_an_error() -> None:
    with pytest.raises(ValueError, match="language"):
        digit_runs("1", "fr")


def test_policy_contiguous_exact() -> None:
    assert challenge_satisfied(("471256",), "471256")
    assert not challenge_satisfied(("4712567",), "471256")  # an extra digit
    assert not challenge_satisfied(("47125",), "471256")  # a missing digit
    assert not challenge_satisfied(("652174",), "471256")  # wrong order
    assert challenge_satisfied(("47", "1256"), "471256")  # a filler-free split still reads it
    assert challenge_satisfied(("47", "471256"), "471256")  # restart after a prefix
    assert challenge_satisfied(("4", "7", "471256"), "471256")
    assert not challenge_satisfied(("99", "471256"), "471256")  # not a restart: other digits
    assert not challenge_satisfied(("471256", "5"), "471256")  # a digit after the challenge
    assert challenge_satisfied(("4", "47", "471256"), "471256")  # two false starts
    assert not challenge_satisfied(("471256471256",), "471256")  # read twice: not a restart
    assert not challenge_satisfied((), "471256")
    assert not challenge_satisfied(("",), "")


def test_policy_non_contiguous() -> None:
    assert challenge_satisfied(("4712", "9", "56"), "471256", contiguous=False)
    assert challenge_satisfied(("94719256",), "471256", contiguous=False)
    assert not challenge_satisfied(("471265",), "471256", contiguous=False)


def test_one_edit_variants_complete_and_unique() -> None:
    v = one_edit_variants("12")
    assert len(v) == len(set(v))
    assert "12" not in v
    for s in v:
        # every variant is exactly one edit away
        assert _edit_distance(s, "12") == 1
    # all strings within one edit of "12", brute force over lengths 1..3
    brute = {
        "".join(p)
        for n in (1, 2, 3)
        for p in itertools.product("0123456789", repeat=n)
        if _edit_distance("".join(p), "12") == 1
    }
    assert set(v) == brute


def test_one_edit_variants_count_for_six_digits() -> None:
    v = one_edit_variants("471256")
    assert all(_edit_distance(s, "471256") == 1 for s in v)
    assert len(v) == 6 * 9 + 6 + len({s for s in v if len(s) == 7})


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@pytest.mark.parametrize(
    ("text", "language", "cls"),
    [
        (" 1", "en", 1),
        ("1", "en", 1),
        (" 100", "en", 1),
        (" one", "en", 1),
        (" Oh", "en", 0),
        (" zero", "en", 0),
        (" Nine.", "en", 9),
        (" on", "en", OTHER),
        (" o", "en", OTHER),
        (",", "en", SEP),
        (" ", "en", SEP),
        (".", "en", STOP),
        ("?", "en", STOP),
        (" -", "en", SEP),
        (" sorry", "en", OTHER),
        ("七", "zh", 7),
        ("幺", "zh", 1),
        ("两", "zh", 2),
        ("洞", "zh", 0),
        ("71", "zh", 7),
        ("，", "zh", SEP),
        ("。", "zh", STOP),
        ("好", "zh", OTHER),
        (" one", "zh", OTHER),
    ],
)
def test_token_class(text: str, language: str, cls: int) -> None:
    assert token_class(text, language) == cls


def test_token_class_end() -> None:
    assert token_class("<|endoftext|>", "en", is_end=True) == END


@pytest.mark.parametrize(
    ("text", "language", "runs"),
    [
        (" Set white with P2 soon.", "en", [("2", 17, 18)]),
        ("4 7, sorry, 4 7 1 2 5 6.", "en", [("47", 0, 3), ("471256", 12, 23)]),
        ("Um, double three four", "en", [("334", 4, 21)]),
        ("call ONE two", "en", [("12", 5, 12)]),
        ("１２ go", "en", [("12", 0, 2)]),
        ("我的号码是五八零，三五一。谢谢", "zh", [("580351", 5, 12)]),
        ("嗯，七一不对七一一", "zh", [("71", 2, 4), ("711", 6, 9)]),
    ],
)
def test_digit_run_spans_place_each_run_in_the_text(
    text: str, language: str, runs: list[tuple[str, int, int]]
) -> None:
    got = digit_run_spans(text, language)
    assert [(r.digits, r.start, r.end) for r in got] == runs
    assert tuple(r.digits for r in got) == digit_runs(text, language)
    for r in got:  # the span starts and ends on what was read, not on a separator
        assert normalise_digits(text[r.start : r.end], language) == r.digits
