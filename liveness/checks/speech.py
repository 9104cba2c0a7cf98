"""Pure helpers for spoken-digit verification: no models, no I/O.

* digit normalisation of transcripts (Mandarin and English) into runs of digits;
* the challenge policy (contiguous and exact, tolerating fillers and one restart);
* the class of a decoder token (which digit it starts, end of text, separator, other);
* forced-scoring margins from teacher-forced next-token class probabilities;
* one-edit alternatives of a digit string;
* energy voice activity, the speech span, and onset refinement of per-digit windows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "END",
    "OTHER",
    "SEP",
    "STOP",
    "DigitRun",
    "ForcedScore",
    "VoiceActivity",
    "challenge_satisfied",
    "class_logprobs",
    "digit_run_spans",
    "digit_runs",
    "forced_margin",
    "normalise_digits",
    "one_edit_variants",
    "refine_windows",
    "token_class",
    "voice_activity",
]

END = 10  # class of the end-of-text token
SEP = -1  # punctuation / whitespace: neutral, excluded from the digit distribution
OTHER = -2  # any other word: excluded too
STOP = -3  # sentence-final punctuation: the end of the reading after the last digit, else SEP
N_CLASSES = 11  # digits 0..9 and END

ZH_DIGITS: dict[str, str] = {
    "零": "0",
    "〇": "0",
    "洞": "0",
    "一": "1",
    "幺": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
ZH_FILLERS = frozenset("嗯呃啊额哦噢唔")

EN_WORDS: dict[str, str] = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
EN_REPEATS: dict[str, int] = {"double": 2, "triple": 3}
EN_FILLERS = frozenset({"um", "umm", "uh", "uhh", "er", "erm", "ah", "hmm", "mm", "eh"})

# Punctuation that may sit between digits without breaking a run ("1-0-0", "1, 0", "七、一").
_SEPARATOR_CHARS = frozenset(" \t\n,.;:-–—/、，。；：！？!?…'\"“”‘’()（）")
_STOP_CHARS = frozenset(".。!?！？…")


def _nfkc(text: str) -> str:
    # NFKC folds full-width digits (０-９) to ASCII; it leaves CJK digit characters alone.
    return unicodedata.normalize("NFKC", text)


def _is_ascii_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


_EN_TOKEN = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]")


@dataclass(frozen=True, slots=True)
class DigitRun:
    """One run of digits read in a transcript: its digits and where it lies in the text.

    ``text[start:end]`` is the run as written, from its first digit (or "double"/"triple") to
    its last digit, separators and fillers inside included.
    """

    digits: str
    start: int
    end: int


def _normalised(text: str, *, lower: bool) -> tuple[str, list[int]]:
    """NFKC (and lower case) character by character, with each output character's index in
    ``text``, so runs found in the normalised text can be placed in the original."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        n = _nfkc(ch)
        if lower:
            n = n.lower()
        out.append(n)
        where.extend([i] * len(n))
    where.append(len(text))
    return "".join(out), where


def _runs_en(text: str) -> list[DigitRun]:
    norm, where = _normalised(text, lower=True)
    runs: list[DigitRun] = []
    cur: list[str] = []
    start = end = 0
    pending_repeat = 0
    repeat_start = 0

    def close() -> None:
        nonlocal cur
        if cur:
            runs.append(DigitRun("".join(cur), where[start], where[end]))
            cur = []

    for m in _EN_TOKEN.finditer(norm):
        tok = m.group()
        if tok in _SEPARATOR_CHARS:
            continue
        digit = tok if _is_ascii_digit(tok) else EN_WORDS.get(tok)
        if digit is not None:
            if not cur:
                start = repeat_start if pending_repeat else m.start()
            cur.append(digit * (pending_repeat or 1))
            end = m.end()
            pending_repeat = 0
        elif tok in EN_REPEATS:
            pending_repeat = EN_REPEATS[tok]
            repeat_start = m.start()
        elif tok in EN_FILLERS:
            continue
        else:
            pending_repeat = 0
            close()
    close()
    return runs


def _runs_zh(text: str) -> list[DigitRun]:
    norm, where = _normalised(text, lower=False)
    runs: list[DigitRun] = []
    cur: list[str] = []
    start = end = 0
    for i, ch in enumerate(norm):
        digit = ch if _is_ascii_digit(ch) else ZH_DIGITS.get(ch)
        if digit is not None:
            if not cur:
                start = i
            cur.append(digit)
            end = i + 1
        elif ch in _SEPARATOR_CHARS or ch in ZH_FILLERS or ch.isspace():
            continue
        elif cur:
            runs.append(DigitRun("".join(cur), where[start], where[end]))
            cur = []
    if cur:
        runs.append(DigitRun("".join(cur), where[start], where[end]))
    return runs


def digit_run_spans(text: str, language: str) -> tuple[DigitRun, ...]:
    """The runs of digits read in a transcript, in order, with where each lies in ``text``
    (``digit_runs`` says which words count)."""
    if language == "zh":
        return tuple(_runs_zh(text))
    if language == "en":
        return tuple(_runs_en(text))
    raise ValueError(f"unsupported language {language!r}; expected 'en' or 'zh'")


def digit_runs(text: str, language: str) -> tuple[str, ...]:
    """The runs of digits read in a transcript, in order.

    Separators (punctuation, spaces) and filler words ("um", "嗯") are transparent; any other word
    ends a run. English: digits, "zero"/"oh" and "one".."nine", "double X"/"triple X". Mandarin:
    零〇一二三四五六七八九 with the spoken variants 幺 (1), 两 (2), 洞 (0); Arabic digits (ASCII or
    full width) in both languages.
    """
    return tuple(r.digits for r in digit_run_spans(text, language))


def normalise_digits(text: str, language: str) -> str:
    """Every digit read in a transcript, as one string of ASCII digits."""
    return "".join(digit_runs(text, language))


def _restarts(head: str, expected: str) -> bool:
    """Whether ``head`` is one or more false starts: proper prefixes of ``expected`` in a row."""
    ok = [True] + [False] * len(head)
    for i in range(len(head)):
        if ok[i]:
            for j in range(i + 1, min(len(head), i + len(expected) - 1) + 1):
                if expected.startswith(head[i:j]):
                    ok[j] = True
                else:
                    break
    return ok[len(head)]


def challenge_satisfied(runs: Sequence[str], expected: str, *, contiguous: bool = True) -> bool:
    """Whether the digit runs heard read the challenge as the policy requires.

    contiguous (default): the digits heard are exactly the challenge, possibly after false
    starts that are prefixes of it ("4 7, sorry, 4 7 1 2 5 6"); nothing else, nothing after.
    Otherwise: the challenge digits appear in order among the digits heard (a subsequence).
    """
    if not expected:
        return False
    heard = "".join(runs)
    if contiguous:
        if not heard.endswith(expected):
            return False
        return _restarts(heard[: len(heard) - len(expected)], expected)
    it = iter(heard)
    return all(ch in it for ch in expected)


def one_edit_variants(digits: str) -> list[str]:
    """Every string one substitution, deletion or insertion away from ``digits`` (no duplicates)."""
    out: dict[str, None] = {}
    alphabet = "0123456789"
    for i, ch in enumerate(digits):
        for c in alphabet:
            if c != ch:
                out[digits[:i] + c + digits[i + 1 :]] = None
        out[digits[:i] + digits[i + 1 :]] = None
    for i in range(len(digits) + 1):
        for c in alphabet:
            out[digits[:i] + c + digits[i:]] = None
    out.pop(digits, None)
    return list(out)


def token_class(text: str, language: str, *, is_end: bool = False) -> int:
    """Which digit a decoder token begins (0..9), ``END``, ``STOP``, ``SEP`` or ``OTHER``.

    A token begins a digit when its text (after leading spaces) starts with an Arabic digit, a
    Mandarin digit character, or (English) is a whole digit word ("one", "oh"). Multi-digit tokens
    (" 100") count for their first digit: they are another spelling of the same next digit.
    """
    if is_end:
        return END
    t = _nfkc(text).strip()
    if not t:
        return SEP
    first = t[0]
    if _is_ascii_digit(first):
        return int(first)
    if language == "zh":
        if first in ZH_DIGITS:
            return int(ZH_DIGITS[first])
    elif language == "en":
        word = t.lower().rstrip(".,!?;:")
        if word in EN_WORDS:
            return int(EN_WORDS[word])
    else:
        raise ValueError(f"unsupported language {language!r}")
    if all(ch in _STOP_CHARS for ch in t):
        return STOP
    if all(ch in _SEPARATOR_CHARS for ch in t):
        return SEP
    return OTHER


def class_logprobs(
    logits: npt.NDArray[np.floating],
    classes: npt.NDArray[np.int8],
    *,
    final_rows: Sequence[int] = (),
    word_rows: Sequence[int] = (),
) -> npt.NDArray[np.float64]:
    """Log-probabilities of the 11 classes (digits, END) at each row of decoder logits.

    ``logits``: [positions, vocab]; ``classes``: [vocab] from ``token_class``. Separator and other
    tokens are left out and the rest renormalised, so the result says which digit (or the end)
    the model expects next, given that it expects one of them. In ``final_rows`` (after the last
    expected digit) a full stop ends the reading as surely as the end-of-text token, so ``STOP``
    tokens count as ``END`` there; elsewhere they are separators. In ``word_rows`` any other
    word counts as ``END`` too: after the last digit, words may follow the digits ("... 4 7 now")
    and only another digit is an insertion; at a digit, a word there means the digits are not.
    """
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != classes.shape[0]:
        raise ValueError(
            f"logits shape {x.shape} does not match a vocabulary of {classes.shape[0]}"
        )
    final = set(final_rows)
    words = set(word_rows)
    out = np.zeros((x.shape[0], N_CLASSES))
    for row in range(x.shape[0]):
        cls = classes.astype(np.int64)
        if row in final:
            cls = np.where(cls == STOP, END, cls)
        if row in words:
            cls = np.where(cls == OTHER, END, cls)
        keep = cls >= 0
        sub = x[row, keep]
        p = np.exp(sub - sub.max())
        out[row] = np.bincount(cls[keep], weights=p, minlength=N_CLASSES)
    total = out.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(out) - np.log(total)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForcedScore:
    """The expected string against its closest one-edit alternatives, position by position.

    ``margins[i]``: log-probability of the expected class at position i minus the best other class
    (another digit, or the end, which is a deletion of the rest; at the last position the end
    against any digit, an insertion). ``margin`` is the smallest: the expected string wins over
    every one-digit substitution, deletion and insertion by at least this much.
    """

    margin: float
    margins: tuple[float, ...]
    probs: tuple[float, ...]  # probability of the expected class at each position
    best: str  # the best class at each digit position, as digits ("" past an END)


def forced_margin(class_lp: npt.NDArray[np.float64], expected: str) -> ForcedScore:
    """Score ``expected`` from teacher-forced class log-probs (rows: each digit, then the end)."""
    n = len(expected)
    if class_lp.shape != (n + 1, N_CLASSES):
        raise ValueError(f"need {n + 1} rows of {N_CLASSES} classes, got {class_lp.shape}")
    want = [int(c) for c in expected] + [END]
    margins: list[float] = []
    probs: list[float] = []
    best: list[str] = []
    for row, w in zip(class_lp, want, strict=True):
        others = np.delete(row, w)
        m = float(row[w] - others.max())
        margins.append(m if np.isfinite(m) else (-np.inf if row[w] == -np.inf else np.inf))
        probs.append(float(np.exp(row[w])))
        if w != END:
            b = int(np.argmax(row))
            best.append(str(b) if b != END else "")
    return ForcedScore(
        margin=min(margins), margins=tuple(margins), probs=tuple(probs), best="".join(best)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceActivity:
    """Frame-level voice activity: ``voiced[i]`` covers [i*hop_s, i*hop_s + win_s)."""

    voiced: npt.NDArray[np.bool_]
    hop_s: float
    win_s: float
    duration_s: float

    @property
    def span(self) -> tuple[float, float] | None:
        idx = np.flatnonzero(self.voiced)
        if idx.size == 0:
            return None
        return float(idx[0] * self.hop_s), float(
            min(idx[-1] * self.hop_s + self.win_s, self.duration_s)
        )

    @property
    def voiced_s(self) -> float:
        return float(self.voiced.sum() * self.hop_s)

    @property
    def touches_start(self) -> bool:
        return bool(self.voiced.size and self.voiced[0])

    @property
    def touches_end(self) -> bool:
        return bool(self.voiced.size and self.voiced[-1])


def _fill_gaps(mask: npt.NDArray[np.bool_], max_gap: int) -> npt.NDArray[np.bool_]:
    out = mask.copy()
    idx = np.flatnonzero(mask)
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if 1 < b - a <= max_gap + 1:
            out[a:b] = True
    return out


def _drop_short(mask: npt.NDArray[np.bool_], min_len: int) -> npt.NDArray[np.bool_]:
    out = mask.copy()
    n = mask.size
    i = 0
    while i < n:
        if mask[i]:
            j = i
            while j < n and mask[j]:
                j += 1
            if j - i < min_len:
                out[i:j] = False
            i = j
        else:
            i += 1
    return out


def voice_activity(
    audio: npt.NDArray[np.floating],
    rate: int,
    *,
    win_s: float = 0.025,
    hop_s: float = 0.010,
    floor_dbfs: float = -50.0,
    above_noise_db: float = 12.0,
    min_run_s: float = 0.05,
    max_gap_s: float = 0.15,
) -> VoiceActivity:
    """Energy voice activity: frames louder than both an absolute floor and the noise floor.

    The noise floor is the 10th percentile of frame energies, so steady noise (hiss, fan, white
    noise) is not speech however loud it is. Short blips are dropped, short gaps filled.
    """
    x = np.asarray(audio, dtype=np.float64).ravel()
    duration = x.size / rate if rate > 0 else 0.0
    win = max(1, round(win_s * rate))
    hop = max(1, round(hop_s * rate))
    if x.size < win:
        return VoiceActivity(
            voiced=np.zeros(0, bool), hop_s=hop_s, win_s=win_s, duration_s=duration
        )
    n = 1 + (x.size - win) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n]
    energy = np.mean(frames * frames, axis=1)
    db = 10.0 * np.log10(energy + 1e-12)
    noise = float(np.percentile(db, 10))
    voiced = (db > floor_dbfs) & (db > noise + above_noise_db)
    voiced = _fill_gaps(voiced, round(max_gap_s / hop_s))
    voiced = _drop_short(voiced, max(1, round(min_run_s / hop_s)))
    return VoiceActivity(voiced=voiced, hop_s=hop_s, win_s=win_s, duration_s=duration)


def _stretches(voiced: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """First and one-past-last frame of every voiced stretch."""
    edges = np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def refine_windows(
    windows: Sequence[tuple[float, float]], vad: VoiceActivity, *, max_back_s: float = 0.2
) -> list[tuple[float, float]]:
    """Fit each digit's aligned window to the voiced audio in it.

    Aligners let a word absorb the pause before it (and the last word of a group the pause after
    it), and put a boundary that falls in a pause anywhere in it. So a start moves forward to the
    first voiced frame in the window, or back (at most ``max_back_s``) to the onset of the voiced
    stretch it falls in when that stretch began after the previous digit ended; an end moves back
    to the end of the last voiced stretch in the window, leaving out a stretch that starts after a
    pause and runs on past the window (the next word's onset). A window with no voiced frame is
    kept as it is. Starts stay non-decreasing.
    """
    hop = vad.hop_s
    on, off = _stretches(vad.voiced)
    out: list[tuple[float, float]] = []
    prev_start = 0.0
    prev_end = 0.0
    for start, end in windows:
        s, e = float(start), float(max(end, start))
        lo = int(np.floor(s / hop))
        hi = int(np.ceil(e / hop))
        hit = np.flatnonzero((on < hi) & (off > lo))  # stretches overlapping [lo, hi)
        if hit.size:
            first = hit[0]
            keep = [k for k in hit if k == first or off[k] <= hi]
            s2 = max(int(on[first]), lo) * hop
            if on[first] < lo and on[first] * hop >= max(prev_end, s - max_back_s):
                s2 = on[first] * hop  # the stretch began in the pause after the previous digit
            e2 = min((int(off[keep[-1]]) - 1) * hop + vad.win_s, e)
            s, e = s2, max(e2, s2)
        s = max(s, prev_start)
        e = max(e, s)
        out.append((s, e))
        prev_start, prev_end = s, e
    return out
