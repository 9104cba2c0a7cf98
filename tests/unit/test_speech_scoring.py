"""Forced-scoring margins, class log-probs, voice activity and onset refinement (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from liveness.checks.speech import (
    END,
    N_CLASSES,
    OTHER,
    SEP,
    STOP,
    class_logprobs,
    forced_margin,
    refine_windows,
    voice_activity,
)


def _rows(dist: list[dict[int, float]]) -> np.ndarray:
    out = np.full((len(dist), N_CLASSES), 1e-6)
    for i, d in enumerate(dist):
        for k, v in d.items():
            out[i, k] = v
    out /= out.sum(axis=1, keepdims=True)
    return np.log(out)


def test_class_logprobs_groups_and_renormalises() -> None:
    classes = np.array([1, 1, 2, END, SEP, OTHER], dtype=np.int8)
    logits = np.log(np.array([[0.1, 0.1, 0.2, 0.1, 0.3, 0.2]]))
    lp = class_logprobs(logits, classes)
    p = np.exp(lp[0])
    # SEP and OTHER are left out: 0.2 (digit 1) : 0.2 (digit 2) : 0.1 (END)
    assert p[1] == pytest.approx(0.4)
    assert p[2] == pytest.approx(0.4)
    assert p[END] == pytest.approx(0.2)
    assert p[0] == 0.0
    with pytest.raises(ValueError, match="vocabulary"):
        class_logprobs(logits[:, :5], classes)


def test_full_stop_ends_the_reading_only_after_the_last_digit() -> None:
    classes = np.array([3, STOP, END, OTHER], dtype=np.int8)
    logits = np.log(np.array([[0.2, 0.6, 0.1, 0.1], [0.2, 0.6, 0.1, 0.1]]))
    lp = np.exp(class_logprobs(logits, classes, final_rows=(1,)))
    assert lp[0, 3] == pytest.approx(2 / 3)  # mid-string: the stop is a separator
    assert lp[1, END] == pytest.approx(7 / 9)  # after the last digit: the stop is the end


def test_forced_margin_accepts_clear_reading() -> None:
    lp = _rows([{4: 0.9, 5: 0.1}, {7: 0.8, 1: 0.2}, {END: 0.95, 3: 0.05}])
    fs = forced_margin(lp, "47")
    assert fs.margin == pytest.approx(min(np.log(9), np.log(4), np.log(19)), rel=1e-3)
    assert fs.best == "47"
    assert len(fs.margins) == 3


def test_forced_margin_sees_substitution_deletion_insertion() -> None:
    # substitution: another digit is likelier at position 1
    sub = forced_margin(_rows([{4: 0.9}, {7: 0.3, 2: 0.7}, {END: 0.9}]), "47")
    assert sub.margin < 0 and sub.best == "42"
    # deletion of the rest: the end is likelier than the expected last digit
    dele = forced_margin(_rows([{4: 0.9}, {7: 0.2, END: 0.8}, {END: 0.9}]), "47")
    assert dele.margin < 0
    # insertion: after the last digit another digit is likelier than the end
    ins = forced_margin(_rows([{4: 0.9}, {7: 0.9}, {END: 0.3, 3: 0.7}]), "47")
    assert ins.margin < 0 and ins.margins[-1] < 0
    with pytest.raises(ValueError):
        forced_margin(_rows([{4: 1.0}]), "47")


def _tone(rate: int, start: float, end: float, total: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(total * rate)) / rate
    x = np.zeros_like(t)
    on = (t >= start) & (t < end)
    x[on] = amp * np.sin(2 * np.pi * 220 * t[on])
    return x.astype(np.float32)


def test_voice_activity_span_of_a_burst() -> None:
    x = _tone(16000, 0.5, 1.5, 2.0)
    vad = voice_activity(x, 16000)
    span = vad.span
    assert span is not None
    assert span[0] == pytest.approx(0.5, abs=0.03)
    assert span[1] == pytest.approx(1.5, abs=0.03)
    assert not vad.touches_start and not vad.touches_end
    assert vad.voiced_s == pytest.approx(1.0, abs=0.05)


def test_voice_activity_silence_and_steady_noise_are_not_speech() -> None:
    assert voice_activity(np.zeros(32000, np.float32), 16000).span is None
    noise = np.random.default_rng(0).normal(0, 0.3, 32000).astype(np.float32)
    assert voice_activity(noise, 16000).voiced_s < 0.1
    assert voice_activity(np.zeros(10, np.float32), 16000).span is None


def test_voice_activity_flags_speech_cut_at_the_edges() -> None:
    vad = voice_activity(_tone(16000, 0.0, 1.0, 2.0), 16000)
    assert vad.touches_start and not vad.touches_end
    vad = voice_activity(_tone(16000, 1.0, 2.0, 2.0), 16000)
    assert vad.touches_end


def test_refine_windows_moves_start_to_onset() -> None:
    x = _tone(16000, 0.5, 0.8, 2.0) + _tone(16000, 1.2, 1.5, 2.0)
    vad = voice_activity(x, 16000, max_gap_s=0.05)
    out = refine_windows([(0.1, 0.9), (0.9, 1.6)], vad)
    assert out[0][0] == pytest.approx(0.5, abs=0.03)
    assert out[0][1] == pytest.approx(0.8, abs=0.04)
    assert out[1][0] == pytest.approx(1.2, abs=0.03)
    assert out[1][1] == pytest.approx(1.5, abs=0.04)
    # a window with nothing voiced stays as it is
    assert refine_windows([(1.7, 1.9)], vad) == [(1.7, 1.9)]
    # starts never go backwards
    out = refine_windows([(1.0, 1.1), (0.2, 0.3)], vad)
    assert out[1][0] >= out[0][0]


def test_words_count_as_the_end_only_in_word_rows() -> None:
    classes = np.array([3, 4, END, OTHER], dtype=np.int8)
    logits = np.log(np.array([[0.2, 0.1, 0.1, 0.6]] * 2))
    lp = np.exp(class_logprobs(logits, classes, word_rows=(1,)))
    assert lp[0, 3] == pytest.approx(0.5)  # a word is left out: 0.2 : 0.1 : 0.1
    assert lp[1, END] == pytest.approx(0.7)  # a word there ends the digits
    assert lp[1, 3] == pytest.approx(0.2)


def test_refine_windows_keeps_a_pause_out_of_both_neighbours() -> None:
    # two groups of speech with a long pause; the aligner gave the pause to the first group's
    # last digit and started the next digit a little after its onset
    x = _tone(16000, 0.5, 1.0, 3.0) + _tone(16000, 2.0, 2.6, 3.0)
    vad = voice_activity(x, 16000)
    (a_start, a_end), (b_start, b_end) = refine_windows([(0.7, 2.06), (2.06, 2.4)], vad)
    assert a_start == pytest.approx(0.7)
    assert a_end == pytest.approx(1.0, abs=0.04)  # not 2.06: the pause and the next onset
    assert b_start == pytest.approx(2.0, abs=0.03)  # back to the onset the aligner missed
    assert b_end == pytest.approx(2.4)
    # but never back over words that came before (a digit said inside a sentence)
    ((s, e),) = refine_windows([(2.3, 2.5)], vad)
    assert s == pytest.approx(2.3, abs=0.011) and e == pytest.approx(2.5)
    # a stretch after a pause that ends inside the window stays (a word with a gap in it)
    ((s, e),) = refine_windows([(0.4, 2.7)], vad)
    assert s == pytest.approx(0.5, abs=0.03) and e == pytest.approx(2.6, abs=0.04)
