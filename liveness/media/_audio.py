"""Audio: PyAV frames to mono float32, then a real resampler (soxr) to the engine's rate."""

from __future__ import annotations

import numpy as np
import soxr

__all__ = ["AudioAccumulator", "frame_to_mono", "resample"]

_INT_SCALE = {"s16": 32768.0, "s32": 2147483648.0, "s64": 9.223372036854775808e18}


def frame_to_mono(frame: object) -> np.ndarray:
    """One ``av.AudioFrame`` as mono float32 at its own rate (channels averaged)."""
    arr = frame.to_ndarray()  # type: ignore[attr-defined]
    fmt = frame.format  # type: ignore[attr-defined]
    nch = max(1, len(frame.layout.channels))  # type: ignore[attr-defined]
    if not fmt.is_planar:
        arr = arr.reshape(-1, nch).T  # packed: (1, n * ch) interleaved
    base = fmt.name.rstrip("p")
    if base in ("flt", "dbl"):
        x = arr.astype(np.float32, copy=False)
    elif base == "u8":
        x = (arr.astype(np.float32) - 128.0) / 128.0
    elif base in _INT_SCALE:
        x = (arr.astype(np.float64) / _INT_SCALE[base]).astype(np.float32)
    else:  # pragma: no cover - FFmpeg has no other sample formats today
        raise ValueError(f"unknown audio sample format {fmt.name}")
    mono = x.mean(axis=0, dtype=np.float32) if x.shape[0] > 1 else x[0]
    return np.ascontiguousarray(mono, dtype=np.float32)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality); clipped to [-1, 1]."""
    x = np.asarray(x, dtype=np.float32)
    if rate_in != rate_out and x.size:
        x = np.asarray(soxr.resample(x, rate_in, rate_out, quality="HQ"), dtype=np.float32)
    out: np.ndarray = np.clip(x, -1.0, 1.0).astype(np.float32, copy=False)
    return out


class AudioAccumulator:
    """Places decoded mono chunks on the clip's time axis: gaps become silence, the front is
    padded (audio starting after the clip start) or trimmed (audio starting before it)."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self._chunks: list[np.ndarray] = []
        self._n = 0  # samples placed so far (after the origin)

    @property
    def seconds(self) -> float:
        return self._n / self.rate if self.rate else 0.0

    def add(self, mono: np.ndarray, rate: int, start_s: float | None) -> None:
        if self.rate is None:
            self.rate = rate
        elif rate != self.rate:
            mono = soxr.resample(mono, rate, self.rate, quality="HQ").astype(np.float32)
        if start_s is not None:
            offset = int(round(start_s * self.rate))
            if offset < self._n - int(0.5 * self.rate) and self._n:
                return  # a chunk far behind what we have: a duplicate, not new audio
            if offset > self._n + max(1, self.rate // 100):  # a gap of more than 10 ms
                self._append(np.zeros(offset - self._n, dtype=np.float32))
            elif offset < 0:
                mono = mono[-offset:]
        self._append(mono)

    def _append(self, x: np.ndarray) -> None:
        if x.size:
            self._chunks.append(x)
            self._n += int(x.size)

    def result(self, rate_out: int) -> np.ndarray:
        if not self._chunks or self.rate is None:
            return np.zeros(0, dtype=np.float32)
        return resample(np.concatenate(self._chunks), self.rate, rate_out)
