"""Whisper (CTranslate2 / faster-whisper) digit verification.

Per clip: the log-mel features of the clip padded to a whole number of seconds (not to Whisper's
30 s window), the encoder run once, then

* forced scoring: one teacher-forced decoder pass over the expected digits, reading the
  next-token distribution at each digit position (and after the last, for the end of text).
  Tokens are grouped by the digit they begin, so the expected string is compared with every
  one-digit substitution, deletion and insertion at once; it is accepted when it wins by
  ``SpeechConfig.margin`` at every position. The challenge never enters the prompt.
* free transcription (greedy, bounded by ``max_new_tokens``) for the digits heard;
* alignment of the expected tokens (cross-attention DTW) for per-digit times, later refined
  by voice activity.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveness.checks.speech import (
    END,
    OTHER,
    ForcedScore,
    challenge_satisfied,
    class_logprobs,
    digit_run_spans,
    digit_runs,
    forced_margin,
    normalise_digits,
    refine_windows,
    token_class,
    voice_activity,
)
from liveness.errors import ModelError
from liveness.inference.speech.base import Hearing, SpeechResult, assemble
from liveness.results import DigitTiming, Score

__all__ = ["Placement", "WhisperModel", "WhisperVerifier"]

RATE = 16_000
_MAX_WINDOW_S = 30
_ZH_RENDER = dict(zip("0123456789", "零一二三四五六七八九", strict=True))


class WhisperModel:
    """A loaded CTranslate2 Whisper model and its tokenizer; safe to share between threads."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        compute_type: str = "int8",
        threads: int = 1,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach for a hub
        import ctranslate2
        import tokenizers

        p = Path(path)
        if not (p / "model.bin").is_file() or not (p / "tokenizer.json").is_file():
            raise ModelError(
                f"{p} is not a CTranslate2 Whisper model folder (needs model.bin, tokenizer.json)",
                hint="Run `liveness models build whisper`, or point [speech].whisper_model at one.",
            )
        t0 = time.perf_counter()
        try:
            self._model = ctranslate2.models.Whisper(
                str(p),
                device="cpu",
                compute_type=compute_type,
                intra_threads=threads,
                inter_threads=1,
            )
            self._hf_tok = tokenizers.Tokenizer.from_file(str(p / "tokenizer.json"))
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load Whisper model {p}: {exc}") from None
        self.load_s = time.perf_counter() - t0
        self.name = name
        self.path = p
        self.multilingual = bool(self._model.is_multilingual)
        self.n_mels = int(self._model.n_mels)
        from faster_whisper.feature_extractor import FeatureExtractor

        self._features = FeatureExtractor(feature_size=self.n_mels)
        self._classes: dict[str, npt.NDArray[np.int8]] = {}
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        return self._model

    def tokenizer(self, language: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        lang = language if self.multilingual else None
        return Tokenizer(self._hf_tok, self.multilingual, task="transcribe", language=lang)

    def classes(self, language: str) -> npt.NDArray[np.int8]:
        """The digit class (``checks.speech.token_class``) of every vocabulary token."""
        with self._lock:
            got = self._classes.get(language)
            if got is not None:
                return got
            tok = self.tokenizer(language)
            size = self._hf_tok.get_vocab_size(with_added_tokens=True)
            out = np.full(size, OTHER, dtype=np.int8)
            for i in range(min(size, tok.eot)):
                out[i] = token_class(self._hf_tok.decode([i]), language)
            out[tok.eot] = END
            # Characters that take several byte-level tokens (零, 幺, 洞, 〇): their first token
            # counts for their digit; a spelling of another digit never overrides it.
            for d, variants in _digit_spellings(language).items():
                for v in variants:
                    ids = tok.encode(v)
                    if len(ids) > 1 and out[ids[0]] < 0:
                        out[ids[0]] = d
            self._classes[language] = out
            return out

    def features(
        self, audio: npt.NDArray[np.float32], min_window_s: float = 10.0
    ) -> tuple[npt.NDArray[np.float32], float]:
        """Log-mel of ``audio`` padded with silence to a whole number of seconds: at least
        ``min_window_s`` (Whisper reads very short windows badly), at most 30."""
        secs = int(np.ceil(max(min_window_s, audio.size / RATE + 0.5)))
        secs = min(_MAX_WINDOW_S, secs)
        x = np.zeros(secs * RATE, dtype=np.float32)
        n = min(audio.size, x.size)
        x[:n] = audio[:n]
        f = self._features(x, padding=0)
        frames = min(f.shape[1] // 2 * 2, 2 * 1500)
        return np.ascontiguousarray(f[None, :, :frames], dtype=np.float32), float(secs)


def _digit_spellings(language: str) -> dict[int, list[str]]:
    if language == "zh":
        from liveness.checks.speech import ZH_DIGITS

        out: dict[int, list[str]] = {}
        for ch, d in ZH_DIGITS.items():
            out.setdefault(int(d), []).extend([ch, " " + ch])
        return out
    return {}


class WhisperVerifier:
    """Verify a digit challenge in one language with a loaded ``WhisperModel``."""

    def __init__(
        self,
        model: WhisperModel,
        language: str,
        *,
        margin: float,
        max_new_tokens: int,
        contiguous: bool,
        min_speech_s: float,
        render: str = "auto",
        window_s: float = 10.0,
    ) -> None:
        if language not in ("en", "zh"):
            raise ModelError(f"Whisper backend: unsupported language {language!r}")
        if language != "en" and not model.multilingual:
            raise ModelError(
                f"Whisper model {model.name} is English-only; it cannot verify {language!r}",
                hint="Use the multilingual base model for Mandarin ([speech].whisper_model).",
            )
        self._m = model
        self._lang = language
        self._tok = model.tokenizer(language)
        self._classes = model.classes(language)
        self._margin = margin
        self._max_new = max_new_tokens
        self._contiguous = contiguous
        self._min_speech_s = min_speech_s
        self._render = ("zh" if language == "zh" else "spaced") if render == "auto" else render
        self._prompt = [*self._tok.sot_sequence, self._tok.no_timestamps]
        self._window_s = window_s

    @property
    def backend(self) -> str:
        return f"whisper:{self._m.name}"

    @property
    def language(self) -> str:
        return self._lang

    def _digit_tokens(self, digits: str, *, glued: bool = False) -> list[list[int]]:
        """Tokens of each expected digit, in the rendering the decoder is forced through.

        ``glued``: the first digit follows the prefix's last word without a space, as the model
        itself wrote it ("F2").
        """
        if self._render == "zh":
            return [self._tok.encode(_ZH_RENDER[d]) for d in digits]
        if self._render == "spaced":
            return [
                self._tok.encode(d if glued and i == 0 else " " + d) for i, d in enumerate(digits)
            ]
        raise ModelError(f"unknown Whisper digit rendering {self._render!r}")

    def encode(self, audio: npt.NDArray[np.float32]) -> tuple[Any, int]:
        import ctranslate2

        feats, _secs = self._m.features(audio, self._window_s)
        sv = ctranslate2.StorageView.from_array(feats)
        return self._m.model.encode(sv, to_cpu=True), feats.shape[2]

    def transcript_ids(self, enc: Any) -> list[int]:
        """Greedy free transcription (bounded by ``max_new_tokens``): the text tokens."""
        res = self._m.model.generate(
            enc,
            [self._prompt],
            beam_size=1,
            max_length=len(self._prompt) + self._max_new,
            suppress_blank=True,
        )
        return [int(i) for i in res[0].sequences_ids[0] if i < self._tok.eot]

    def transcribe_encoded(self, enc: Any) -> str:
        return str(self._tok.decode(self.transcript_ids(enc))).strip()

    def locate_digits(self, audio: npt.NDArray[np.float32]) -> tuple[str, list[DigitTiming]]:
        """Free transcription, and every digit in it with its aligned time (no challenge)."""
        x = np.ascontiguousarray(audio, dtype=np.float32).ravel()
        enc, n_frames = self.encode(x)
        ids = self.transcript_ids(enc)
        text = str(self._tok.decode(ids)).strip()
        if not ids:
            return text, []
        windows = self.align_encoded(enc, [[i] for i in ids], min(n_frames, max(2, x.size // 160)))
        vad = voice_activity(x, RATE)
        windows = refine_windows(windows, vad) if windows else []
        out: list[DigitTiming] = []
        for i, (s, e) in zip(ids, windows, strict=False):
            for d in normalise_digits(self._tok.decode([i]), self._lang):
                out.append(DigitTiming(digit=d, start=round(s, 3), end=round(e, 3)))
        return text, out

    def transcribe(self, audio: npt.NDArray[np.float32]) -> str:
        """Free transcription of the clip (greedy, bounded)."""
        enc, _ = self.encode(audio)
        return self.transcribe_encoded(enc)

    def score_encoded(
        self,
        enc: Any,
        digits: str,
        prefix: Sequence[int] = (),
        *,
        glued: bool = False,
        words_end: bool = False,
    ) -> tuple[npt.NDArray[np.float64], list[list[int]], npt.NDArray[np.float64]]:
        """Teacher-forced class log-probs at each digit (and the end), the digit tokens, and the
        log-probability of every forced digit token.

        ``prefix``: text tokens the decoder is forced through before the digits (the model's own
        transcript of the words before them), after the start-of-transcript prompt.
        ``words_end``: after the last digit, a word ends the digits as the end of text does.
        """
        per_digit = self._digit_tokens(digits, glued=glued)
        flat = [t for ts in per_digit for t in ts]
        n = len(flat)
        k = len(prefix)
        # The decoder returns one row per token after the prompt, prefix included, and counts
        # max_length over all of them; leave room for the end.
        res = self._m.model.generate(
            enc,
            [[*self._prompt, *prefix, *flat]],
            beam_size=1,
            max_length=2 * (k + n + 1) + len(self._prompt) + 2,
            return_logits_vocab=True,
            suppress_blank=False,
            suppress_tokens=[],
        )
        logits = res[0].logits[0]
        if len(logits) < k + n + 1:
            raise ModelError(
                f"Whisper returned {len(logits)} decoder steps for {k + n + 1} forced ones"
            )
        rows = np.stack([np.asarray(x, dtype=np.float32).ravel() for x in logits[k : k + n + 1]])
        full = rows.astype(np.float64)
        full -= np.logaddexp.reduce(full, axis=1, keepdims=True)
        token_lp = np.array([full[i, t] for i, t in enumerate(flat)])
        starts = np.cumsum([0] + [len(ts) for ts in per_digit])
        pick = [*starts[:-1].tolist(), n]  # first token of each digit, then the end
        cls = self._classes
        if cls.size < rows.shape[1]:  # special tokens past the tokenizer's table
            cls = np.concatenate([cls, np.full(rows.shape[1] - cls.size, OTHER, np.int8)])
        # After a prefix of the model's own words (words_end), a word where the last digit
        # should be means the digits ended before it (else an inserted last digit is scored on
        # the digits' leftover probability and can win by chance), and a word after the last
        # digit ends the digits as the end of text does. Right after the prompt, words are left
        # out as before: Mandarin homophones (班 for 八) would count against the digit.
        last = len(pick) - 2
        word_rows = (last, last + 1) if words_end else ()
        clp = class_logprobs(
            rows[pick], cls[: rows.shape[1]], final_rows=(len(pick) - 1,), word_rows=word_rows
        )
        return clp, per_digit, token_lp

    def forced_score(
        self,
        enc: Any,
        digits: str,
        prefix: Sequence[int] = (),
        *,
        glued: bool = False,
        words_end: bool = False,
    ) -> ForcedScore:
        """The expected digits (after ``prefix``) against every one-digit alternative."""
        clp, _, _ = self.score_encoded(enc, digits, prefix, glued=glued, words_end=words_end)
        fs = forced_margin(clp, digits)
        if fs.margins[-1] < self._margin:
            last = clp[-1]
            d = int(np.argmax(last[:END]))
            clp2, _, _ = self.score_encoded(
                enc, digits + str(d), prefix, glued=glued, words_end=words_end
            )
            fs = _rescore_end(fs, last, d, clp2)
        return fs

    def align_encoded(
        self,
        enc: Any,
        per_digit: list[list[int]],
        n_frames: int,
        prefix: Sequence[int] = (),
    ) -> list[tuple[float, float]]:
        """Per-digit (start, end) seconds from the cross-attention alignment of ``prefix`` and the
        digits (faster-whisper's way: the start-of-transcript sequence, the end-of-text after the
        text, so the last token has an end and a short token is not squeezed to zero width)."""
        flat = [t for ts in per_digit for t in ts]
        k = len(prefix)
        res = self._m.model.align(
            enc, list(self._tok.sot_sequence), [[*prefix, *flat, self._tok.eot]], n_frames
        )
        pairs = res[0].alignments
        if not pairs:
            return []
        text_idx = np.array([p[0] for p in pairs])
        time_idx = np.array([p[1] for p in pairs])
        jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
        jump_times = time_idx[jumps] * 0.02  # one encoder frame = 20 ms
        bounds = k + np.cumsum([0] + [len(ts) for ts in per_digit])
        if jump_times.size < bounds[-1] + 1:
            jump_times = np.pad(jump_times, (0, bounds[-1] + 1 - jump_times.size), mode="edge")
        return [
            (float(jump_times[a]), float(jump_times[b]))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]

    def place(self, ids: Sequence[int], digits: str) -> Placement | None:
        """Where the challenge sits in a free transcript: the run of digits closest to it (the
        later one on a tie, so a restart reads the repeat), the transcript's tokens before it as
        a forced prefix, and whether the digits heard keep the contiguity policy (as many at that
        place as in the challenge; elsewhere none, or false starts before it). None when the
        transcript has no digits."""
        text = str(self._tok.decode(list(ids)))
        runs = digit_run_spans(text, self._lang)
        if not runs:
            return None
        best = min(range(len(runs)), key=lambda i: (_edit_distance(runs[i].digits, digits), -i))
        run = runs[best]
        around = [r.digits for r in runs[:best]] + [digits] + [r.digits for r in runs[best + 1 :]]
        policy_ok = challenge_satisfied(around, digits, contiguous=self._contiguous)
        # Exact: the digits heard there are as many as the challenge's. After a word, the forced
        # pass cannot see an extra or a missing digit at the end behind a separator ("6, 9,").
        policy_ok = policy_ok and (not self._contiguous or len(run.digits) <= len(digits))
        before = text[: run.start]
        if not before.strip():
            return Placement(prefix=(), glued=False, policy_ok=policy_ok, run=run.digits)
        # the model's own tokens up to the run; a word glued to the first digit ("F2") whose
        # token also holds the digit is re-encoded from the text
        k = 0
        for n in range(1, len(ids) + 1):
            head = str(self._tok.decode(list(ids[:n])))
            if "\ufffd" in head:  # a character split over tokens: not a clean boundary
                continue
            if len(head) > len(before) or not before.startswith(head):
                break
            k = n
        prefix = list(ids[:k])
        rest = before[len(str(self._tok.decode(prefix))) :]
        if rest.strip():
            prefix += self._tok.encode(rest.rstrip())
        glued = not before[-1].isspace()
        return Placement(prefix=tuple(prefix), glued=glued, policy_ok=policy_ok, run=run.digits)

    def verify(self, audio: npt.NDArray[np.float32], digits: str) -> SpeechResult:
        return self.verify_all(audio, [digits])[0]

    def verify_all(
        self,
        audio: npt.NDArray[np.float32],
        challenges: Sequence[str],
        *,
        force_prefix: bool = False,
    ) -> list[SpeechResult]:
        """Verify several challenges against one clip, encoding and transcribing it once.

        Per challenge: the forced pass right after the prompt; when it does not accept, the free
        transcript (made once) places the digits, and the forced pass is repeated after the
        words the model heard before them. ``force_prefix`` (evaluation) always takes the second
        way, to measure what the prefix alone accepts.
        """
        for digits in challenges:
            if not digits or not digits.isascii() or not digits.isdigit():
                raise ValueError(f"challenge must be a non-empty string of digits, got {digits!r}")
        x = np.ascontiguousarray(audio, dtype=np.float32).ravel()
        shared: dict[str, float] = {}
        t0 = time.perf_counter()
        vad = voice_activity(x, RATE)
        shared["vad"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        enc, n_frames = self.encode(x)
        shared["encode"] = time.perf_counter() - t0
        # alignment over the audio's own frames (10 ms mel hop), not the silence padding
        frames = min(n_frames, max(2, x.size // 160))
        ids: list[int] | None = None
        out: list[SpeechResult] = []
        for digits in challenges:
            t = dict(shared)
            t0 = time.perf_counter()
            prefix: tuple[int, ...] = ()
            glued = False
            fs: ForcedScore | None = None
            accepted = False
            if not force_prefix:
                fs = self.forced_score(enc, digits)
                accepted = fs.margin >= self._margin  # False for NaN
            t["score"] = time.perf_counter() - t0
            # When the forced pass accepts, the expected string beat every one-digit
            # alternative, so it is the best reading and the free transcription is skipped.
            heard = digits
            if not accepted:
                t0 = time.perf_counter()
                if ids is None:
                    ids = self.transcript_ids(enc)
                    t["transcribe"] = time.perf_counter() - t0
                heard = "".join(digit_runs(str(self._tok.decode(ids)), self._lang))
                where = self.place(ids, digits)
                t0 = time.perf_counter()
                if where is not None:
                    # after the words heard before the digits, and words may follow them; the
                    # transcript's other digits must keep the policy
                    fs2 = self.forced_score(
                        enc, digits, where.prefix, glued=where.glued, words_end=True
                    )
                    accepted = fs2.margin >= self._margin and where.policy_ok
                    if fs is None or accepted:
                        fs, prefix, glued = fs2, where.prefix, where.glued
                t["rescore"] = time.perf_counter() - t0
                if accepted:
                    heard = digits
            if fs is None:  # force_prefix, and nothing heard to place: score after the prompt
                fs = self.forced_score(enc, digits)
                accepted = fs.margin >= self._margin
            t0 = time.perf_counter()
            per_digit = self._digit_tokens(digits, glued=glued)
            windows = self.align_encoded(enc, per_digit, frames, prefix)
            t["align"] = time.perf_counter() - t0
            conf = float(np.exp(np.mean(np.log(np.maximum(fs.probs, 1e-12)))))
            scores = [Score(name="speech_margin", value=fs.margin, threshold=self._margin)]
            hearing = Hearing(
                digits_heard=heard,
                accepted=accepted,
                windows=tuple(windows),
                digit_conf=tuple(round(p, 4) for p in fs.probs[:-1]),
                confidence=conf,
                margin=fs.margin,
                scores=tuple(scores),
            )
            out.append(
                assemble(
                    hearing,
                    vad,
                    digits,
                    backend=self.backend,
                    min_speech_s=self._min_speech_s,
                    timings_s=t,
                )
            )
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class Placement:
    """Where a challenge sits in a free transcript (``WhisperVerifier.place``)."""

    prefix: tuple[int, ...]  # transcript tokens before the digits, forced after the prompt
    glued: bool  # the first digit follows the last word without a space ("F2")
    policy_ok: bool  # the other digits heard keep the contiguity policy
    run: str  # the transcript's digits at that place


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _rescore_end(
    fs: ForcedScore, last: npt.NDArray[np.float64], d: int, with_d: npt.NDArray[np.float64]
) -> ForcedScore:
    """Judge the end against the likeliest insertion ``d`` as a whole string.

    After the last digit, the next-token step alone compares the end with a digit that would still
    have to be followed by the end; Whisper keeps some hope of more digits after any string. So
    the best extra digit d is decoded too (``with_d``: the class log-probs of the string with d),
    and the end is judged against P(d) * P(end | ... d), the insertion's own probability.
    """
    insertion = float(last[d] + with_d[-1][END])
    end_margin = float(last[END] - insertion)
    margins = (*fs.margins[:-1], end_margin)
    return dataclasses.replace(fs, margins=margins, margin=min(margins))
