"""Speech stage: time to verify a 4 s clip (tiny.en), against the encoder alone as baseline."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from liveness.config import Config
from liveness.stages.speech import SpeechStage

WAV = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "speech"
    / "en_digits_vosk_test.wav"
)


@pytest.fixture(scope="module")
def setup() -> tuple[SpeechStage, np.ndarray]:
    if not WAV.exists():
        pytest.skip(f"shared data not found at {WAV}")
    from tests.conftest import require_models

    require_models("whisper")
    with wave.open(str(WAV)) as w:
        a = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    return SpeechStage.from_config(Config()), a[: 4 * 16000]


def test_bench_speech_verify_4s(benchmark, setup) -> None:  # type: ignore[no-untyped-def]
    stage, audio = setup
    r = benchmark(stage.run, audio, 16000, "10001")
    assert r.margin is not None


def test_bench_speech_encoder_only(benchmark, setup) -> None:  # type: ignore[no-untyped-def]
    stage, audio = setup
    v = stage.verifier("en")
    benchmark(v.encode, audio)  # type: ignore[attr-defined]


def test_bench_speech_verify_digit_in_a_sentence(benchmark, setup) -> None:  # type: ignore[no-untyped-def]
    """The slow path: a 3 s GRID sentence ("set white with p two soon"), challenge "2": the
    forced pass after the prompt rejects, so the clip is transcribed and scored again after the
    words heard before the digit."""
    stage, _ = setup
    grid = WAV.parents[1] / "grid" / "swwp2s.mpg"
    if not grid.exists():
        pytest.skip(f"shared data not found at {grid}")
    from liveness.media import open_clip

    audio = open_clip(grid).audio
    r = benchmark(stage.run, audio, 16000, "2")
    assert r.satisfied
