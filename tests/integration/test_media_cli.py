"""`liveness probe` through the real entry point on real and bad media."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liveness.cli import EXIT_MEDIA, EXIT_OK, main
from tests.conftest import shared


def test_probe_grid_clip_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = shared("grid", "swwp2s.mpg")
    assert main(["probe", str(path), "--json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["info"]["container"] == "mpeg"
    assert (out["info"]["width"], out["info"]["height"]) == (360, 288)
    assert out["decoded"]["frames"] == 75
    assert out["decoded"]["audio_seconds"] == pytest.approx(3.0, abs=0.05)
    assert out["decoded"]["audio_rms_dbfs"] > -40  # real speech, not silence


def test_probe_text_output_and_header_only(capsys: pytest.CaptureFixture[str]) -> None:
    path = shared("grid", "bbaf2n.mpg")
    assert main(["probe", str(path)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "mpeg1video" in text and "75 frames" in text and "16000 Hz" in text
    assert main(["probe", str(path), "--no-decode", "--json"]) == EXIT_OK
    assert "decoded" not in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("content", [None, b"", b"plain text, not a clip\n" * 10])
def test_probe_bad_input_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    path = tmp_path / "upload.mp4"
    if content is not None:
        path.write_bytes(content)
    assert main(["probe", str(path)]) == EXIT_MEDIA
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "hint:" in err
