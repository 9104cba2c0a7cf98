"""Config sections owned by media and challenge: defaults, TOML loading, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveness.config import ChallengeConfig, Config, MediaConfig
from liveness.errors import ConfigError


def test_defaults() -> None:
    cfg = Config()
    assert cfg.media.max_duration_s == 20.0 and cfg.media.audio_rate == 16_000
    assert cfg.media.target_fps == 10.0 and cfg.media.max_frame_side == 1280
    assert cfg.challenge.length == 6 and cfg.challenge.ttl_s == 120.0
    assert cfg.challenge.max_run == 2 and cfg.challenge.nonce_store is None


def test_from_toml_overrides_media_and_challenge(tmp_path: Path) -> None:
    p = tmp_path / "liveness.toml"
    p.write_text(
        "[media]\nmax_duration_s = 12\ntarget_fps = 5\nmax_frame_side = 640\n"
        '[challenge]\nlength = 8\nttl_s = 60\nnonce_store = "/var/lib/liveness/nonces.db"\n'
    )
    cfg = Config.from_toml(p)
    assert cfg.media.max_duration_s == 12.0 and isinstance(cfg.media.max_duration_s, float)
    assert cfg.media.target_fps == 5.0 and cfg.media.max_frame_side == 640
    assert cfg.challenge.length == 8 and cfg.challenge.nonce_store == "/var/lib/liveness/nonces.db"
    # a change in either section changes the hash recorded with every decision
    assert cfg.config_hash() != Config().config_hash()


@pytest.mark.parametrize(
    "section",
    [
        {"media": {"max_duration_s": 0.5, "min_duration_s": 1.0}},
        {"media": {"max_file_bytes": 0}},
        {"media": {"target_fps": -1}},
        {"media": {"max_frame_side": 4}},
        {"media": {"folder_fps": 0}},
        {"media": {"max_duration_s": "long"}},
        {"media": {"max_durations": 3}},
        {"challenge": {"length": 3}},
        {"challenge": {"length": 9}},
        {"challenge": {"ttl_s": 0}},
        {"challenge": {"max_run": 0}},
        {"challenge": {"algorithm": "none"}},
    ],
)
def test_invalid_values_are_config_errors(section: dict[str, dict[str, object]]) -> None:
    with pytest.raises(ConfigError):
        Config.from_dict(section)


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ConfigError):
        MediaConfig(min_duration_s=30.0)
    with pytest.raises(ConfigError):
        ChallengeConfig(length=2)
    assert MediaConfig(target_fps=None).target_fps is None


def test_blas_threads_must_be_positive_or_unset() -> None:
    from liveness.config import ModelConfig

    assert ModelConfig().blas_threads == 1
    assert ModelConfig(blas_threads=None).blas_threads is None
    with pytest.raises(ConfigError, match="blas_threads"):
        ModelConfig(blas_threads=0)
