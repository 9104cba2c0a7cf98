"""vosk digit recognition: one model per process, a grammar-constrained recogniser per clip."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from liveness.checks.speech import EN_WORDS, ZH_DIGITS, challenge_satisfied, voice_activity
from liveness.inference.speech.base import Hearing, SpeechResult, assemble

__all__ = ["KO_DIGITS", "VoskVerifier", "digit_words"]

RATE = 16_000
KO_DIGITS = {
    "영": "0",
    "공": "0",
    "일": "1",
    "이": "2",
    "삼": "3",
    "사": "4",
    "오": "5",
    "육": "6",
    "칠": "7",
    "팔": "8",
    "구": "9",
}


def digit_words(language: str) -> dict[str, str]:
    if language == "zh":
        return dict(ZH_DIGITS)
    if language == "en":
        return dict(EN_WORDS)
    if language == "ko":
        return dict(KO_DIGITS)
    raise ValueError(f"vosk backend: unsupported language {language!r}")


class VoskVerifier:
    """Verify a challenge with a loaded vosk model and a runtime digit grammar."""

    def __init__(
        self, model: Any, language: str, *, contiguous: bool = True, min_speech_s: float = 0.3
    ) -> None:
        self._model = model
        self._lang = language
        self._contiguous = contiguous
        self._min_speech_s = min_speech_s
        words = digit_words(language)
        known = [w for w in words if model.vosk_model_find_word(w) >= 0]
        self._words = {w: words[w] for w in known}
        self._grammar = json.dumps([*known, "[unk]"], ensure_ascii=False)

    @property
    def backend(self) -> str:
        return f"vosk:{self._lang}"

    @property
    def language(self) -> str:
        return self._lang

    def recognise(self, audio: npt.NDArray[np.float32]) -> list[dict[str, Any]]:
        """Word results (word, start, end, conf) of the grammar-constrained recogniser."""
        import vosk

        rec = vosk.KaldiRecognizer(self._model, RATE, self._grammar)
        rec.SetWords(True)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        out: list[dict[str, Any]] = []
        step = RATE * 2 // 2  # half a second of 16-bit samples
        for i in range(0, len(pcm), step):
            if rec.AcceptWaveform(pcm[i : i + step]):
                out.extend(json.loads(rec.Result()).get("result", []))
        out.extend(json.loads(rec.FinalResult()).get("result", []))
        return out

    def verify(self, audio: npt.NDArray[np.float32], digits: str) -> SpeechResult:
        x = np.ascontiguousarray(audio, dtype=np.float32).ravel()
        t0 = time.perf_counter()
        vad = voice_activity(x, RATE)
        words = self.recognise(x)
        runs: list[str] = []
        cur: list[str] = []
        digit_words_: list[dict[str, Any]] = []
        for w in words:
            d = self._words.get(str(w.get("word", "")))
            if d is None:
                if cur:
                    runs.append("".join(cur))
                    cur = []
                continue
            cur.append(d)
            digit_words_.append(w)
        if cur:
            runs.append("".join(cur))
        heard = "".join(runs)
        ok = challenge_satisfied(runs, digits, contiguous=self._contiguous)
        tail = digit_words_[-len(digits) :] if ok else []
        windows = tuple((float(w["start"]), float(w["end"])) for w in tail)
        conf = tuple(float(w.get("conf", 0.0)) for w in tail)
        hearing = Hearing(
            digits_heard=heard,
            accepted=ok,
            windows=windows,
            digit_conf=conf,
            confidence=float(np.mean(conf)) if conf else 0.0,
            margin=None,
        )
        return assemble(
            hearing,
            vad,
            digits,
            backend=self.backend,
            min_speech_s=self._min_speech_s,
            timings_s={"recognise": time.perf_counter() - t0},
        )
