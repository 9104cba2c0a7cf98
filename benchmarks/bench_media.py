"""Decoding speed through the public API: a 5 s 720p H.264 + AAC clip, full and sampled.

Run: ``.venv/bin/pytest benchmarks/bench_media.py --benchmark-enable`` (add
``--benchmark-min-rounds=3`` for a quick pass). The clip is encoded once per run, from real GRID
frames scaled to 1280x720 and GRID speech, like a phone upload (H.264 High profile with
B-frames, AAC 48 kHz stereo). The ``media-720p`` group compares the decodes in one process:
pytest-benchmark prints each median with its ratio to the fastest in brackets.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from benchmarks.conftest import shared
from liveness.config import MediaConfig
from liveness.media import open_clip, probe
from tests.integration.test_media_encoded import encode_clip, grid_source

SECONDS, FPS = 5, 25


@pytest.fixture(scope="module")
def clip720(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames, audio48, rate = grid_source()
    # 360x288 -> 1280x1024, centre crop to 1280x720: real picture content at 720p
    big = [cv2.resize(f, (1280, 1024), interpolation=cv2.INTER_CUBIC)[152:872] for f in frames]
    n = SECONDS * FPS
    seq = np.stack([big[i % len(big)] for i in range(n)])
    audio = np.tile(audio48, 2)[: SECONDS * rate]
    path = tmp_path_factory.mktemp("bench") / "phone_720p_5s.mp4"
    # x264 "veryfast": CABAC, deblocking and B-frames, as phone encoders use (ultrafast has none
    # of them and would decode unrealistically fast)
    encode_clip(path, seq, audio, fps=FPS, video_options={"preset": "veryfast", "crf": "23"})
    info = probe(path)
    assert (info.width, info.height, info.n_frames) == (1280, 720, n)
    return path


@pytest.mark.benchmark(group="media-720p")
def test_decode_720p_full(benchmark: Any, clip720: Path) -> None:
    clip = benchmark(open_clip, clip720, target_fps=None)
    assert clip.frames.shape == (SECONDS * FPS, 720, 1280, 3)


@pytest.mark.benchmark(group="media-720p")
def test_decode_720p_sampled_10fps(benchmark: Any, clip720: Path) -> None:
    clip = benchmark(open_clip, clip720, target_fps=10.0)
    assert clip.n_frames == SECONDS * 10


@pytest.mark.benchmark(group="media-720p-pair")
def test_decode_720p_sampled_over_full_ratio(
    benchmark: Any, clip720: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Full and 10 fps decodes interleaved in one loop, so load from other processes on a shared
    machine hits both alike; the ratio of medians (wall and this process's CPU time) is printed."""
    wall: dict[str, list[float]] = {"full": [], "10fps": []}
    cpu: dict[str, list[float]] = {"full": [], "10fps": []}

    def pair() -> None:
        for name, fps in (("full", None), ("10fps", 10.0)):
            w, c = time.perf_counter(), time.process_time()
            open_clip(clip720, target_fps=fps)
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)

    benchmark.pedantic(pair, rounds=5, warmup_rounds=1)
    ratio_wall = statistics.median(wall["10fps"]) / statistics.median(wall["full"])
    ratio_cpu = statistics.median(cpu["10fps"]) / statistics.median(cpu["full"])
    benchmark.extra_info.update(
        {
            "full_median_s": statistics.median(wall["full"]),
            "sampled_10fps_median_s": statistics.median(wall["10fps"]),
            "ratio_sampled_over_full_wall": ratio_wall,
            "ratio_sampled_over_full_cpu": ratio_cpu,
        }
    )
    with capsys.disabled():
        print(
            f"\n[media] 720p 5 s H.264: full {statistics.median(wall['full']) * 1e3:.0f} ms, "
            f"10 fps {statistics.median(wall['10fps']) * 1e3:.0f} ms (wall medians); "
            f"sampled/full = {ratio_wall:.2f} wall, {ratio_cpu:.2f} CPU"
        )
    assert ratio_cpu > 0  # speed is reported, not asserted


@pytest.mark.benchmark(group="media-720p")
def test_probe_720p(benchmark: Any, clip720: Path) -> None:
    assert benchmark(probe, clip720).duration_s == pytest.approx(SECONDS, abs=0.1)


@pytest.mark.benchmark(group="media-grid")
def test_decode_grid_3s_full(benchmark: Any) -> None:
    path = shared("grid", "bbaf2n.mpg")
    assert benchmark(open_clip, path, target_fps=None).n_frames == 75


@pytest.mark.benchmark(group="media-grid")
def test_decode_grid_3s_threads_auto(benchmark: Any) -> None:
    path = shared("grid", "bbaf2n.mpg")
    cfg = MediaConfig(decode_threads=0)
    assert benchmark(open_clip, path, cfg, target_fps=None).n_frames == 75
