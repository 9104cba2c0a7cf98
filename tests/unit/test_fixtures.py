"""The fixture generator (liveness.fixtures): deterministic, round-trips through the decoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness import fixtures
from liveness.checks.sync import mouth_opening
from liveness.media import open_clip


def _face() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A drawn face photo with its box and 5 landmarks (no detector needed)."""
    img = np.full((400, 400, 3), 120, np.uint8)
    cv2.ellipse(img, (200, 200), (90, 120), 0, 0, 360, (140, 165, 205), -1)
    lms = np.array([[165, 170], [235, 170], [200, 210], [172, 250], [228, 250]], np.float32)
    for x, y in lms[:2]:
        cv2.circle(img, (int(x), int(y)), 8, (40, 40, 40), -1)
    cv2.line(img, (172, 250), (228, 250), (80, 80, 150), 4)
    box = np.array([115, 95, 285, 305], np.float32)
    return img, box, lms


def _detect(_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, box, lms = _face()
    return box, lms


def _syllables(dur: float = 3.0) -> np.ndarray:
    t = np.arange(int(dur * fixtures.RATE)) / fixtures.RATE
    gate = ((t > 0.8) & (t < 1.1)) | ((t > 1.6) & (t < 1.9))
    return (0.3 * gate * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "digit"), [("bbaf2n", "2"), ("lwbsza", "0"), ("pwij3p", "3"), ("sbia1a", "1")]
)
def test_grid_digit_from_file_name(name: str, digit: str) -> None:
    assert fixtures.grid_digit(f"/x/{name}.mpg") == digit


def test_sidecar_round_trip(tmp_path: Path) -> None:
    case = fixtures.FixtureCase(
        name="c1", family="dubbed", attack=True, clip="c1.mp4", reference="ref.jpg",
        digits="7", subject_id="s", expected_verdict="FAIL",
        expected_reasons=("LIP_SYNC_MISMATCH",), extra={"k": 1},
    )  # fmt: skip
    case.write_sidecar(tmp_path)
    (loaded,) = fixtures.load_cases(tmp_path)
    assert loaded.clip == str(tmp_path / "c1.mp4") and loaded.reference == str(tmp_path / "ref.jpg")
    assert loaded.expected_reasons == ("LIP_SYNC_MISMATCH",) and loaded.extra == {"k": 1}


def test_talking_head_is_deterministic_and_the_mouth_follows_the_sound() -> None:
    photo, _, _ = _face()
    audio = _syllables()
    scene = fixtures._Scene(size=(320, 240), head_motion=False, noise=0.0)
    a = fixtures.talking_head(photo, audio, 3.0, seed=3, scene=scene, detect=_detect)
    b = fixtures.talking_head(photo, audio, 3.0, seed=3, scene=scene, detect=_detect)
    assert len(a) == 75 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = fixtures.talking_head(photo, audio, 3.0, seed=4, scene=scene, detect=_detect)
    assert not np.array_equal(a[0], c[0])  # another seed, another background
    # the mouth opens during the two syllables and is shut in the silences
    openness = fixtures.openness_from_audio(audio, np.arange(75) / 25.0)
    assert openness[24:26].min() > 0.5 and openness[:15].max() == 0.0
    diff = [float(np.abs(f.astype(int) - a[0].astype(int)).sum()) for f in a]
    assert diff[24] > 0 and diff[10] == 0


def test_open_mouth_raises_the_mouth_signal() -> None:
    photo, _, lms = _face()
    values = [mouth_opening(fixtures._open_mouth(photo, lms, a), lms) for a in (0.0, 0.5, 1.0)]
    assert values[0] < values[1] < values[2]


def test_encode_mp4_round_trips_through_the_decoder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(50)]
    audio = _syllables(2.0)
    path = fixtures.encode_mp4(tmp_path / "x.mp4", frames, 25.0, audio)
    clip = open_clip(str(path), target_fps=None)
    assert clip.frames.shape[0] == 50 and clip.frames.shape[1:] == (120, 160, 3)
    assert clip.info.fps == pytest.approx(25.0)
    n = min(clip.audio.size, audio.size)
    assert abs(clip.audio.size - audio.size) < 0.05 * fixtures.RATE
    # AAC has a priming delay: compare loudness envelopes rather than samples
    env_in = np.abs(audio[:n]).reshape(-1, 400).mean(1)
    env_out = np.abs(clip.audio[:n]).reshape(-1, 400).mean(1)
    assert np.corrcoef(env_in, env_out)[0, 1] > 0.9


def test_screen_replay_keeps_size_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
    a, b = fixtures.screen_replay(frames, seed=2), fixtures.screen_replay(frames, seed=2)
    assert a[0].shape == (120, 160, 3) and np.array_equal(a[2], b[2])
    assert a[0][:3].mean() < 40  # the dark bezel around the screen


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_reads_digits() -> None:
    audio = fixtures.espeak_digits("4093")
    assert audio.dtype == np.float32 and 1.0 < audio.size / fixtures.RATE < 6.0
    assert float(np.abs(audio).max()) > 0.1


def test_missing_espeak_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixtures.shutil, "which", lambda _: None)
    with pytest.raises(fixtures.FixtureToolMissing, match="espeak-ng"):
        fixtures.espeak_digits("12")


def test_find_shared_data(tmp_path: Path) -> None:
    (tmp_path / "shared" / "data" / "grid").mkdir(parents=True)
    (tmp_path / "repo" / "sub").mkdir(parents=True)
    found = fixtures.find_shared_data(start=tmp_path / "repo" / "sub")
    assert found == (tmp_path / "shared" / "data").resolve()
    with pytest.raises(FileNotFoundError, match="--data"):
        fixtures.find_shared_data(start=Path("/proc/self"))
    with pytest.raises(FileNotFoundError, match="not the shared data"):
        fixtures.find_shared_data(tmp_path / "repo")


def test_unknown_family_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fixture families"):
        fixtures.generate(tmp_path, tmp_path, digits="1234", families=["nope"])


def test_portable_sidecars_resolve_shared_paths(tmp_path: Path) -> None:
    shared_dir = tmp_path / "shared"
    (shared_dir / "faces").mkdir(parents=True)
    out = tmp_path / "fx"
    out.mkdir()
    case = fixtures.FixtureCase(
        name="c", family="genuine_synthetic", attack=False, clip=str(out / "c.mp4"),
        reference=str(shared_dir / "faces" / "p.jpg"), digits="1234", subject_id="s",
        expected_verdict="PASS", expected_reasons=(),
    )  # fmt: skip
    portable = fixtures._portable(case, out, shared_dir)
    assert portable.clip == "c.mp4" and portable.reference == "@shared/faces/p.jpg"
    portable.write_sidecar(out)
    (loaded,) = fixtures.load_cases(out, shared=shared_dir)
    assert loaded.reference == str(shared_dir / "faces" / "p.jpg")
    assert loaded.clip == str((out / "c.mp4").resolve())
