"""`liveness models fetch vosk-en --sha256 ...` against a local HTTP server (no network).

The vosk archives have no sha256 pin we could verify offline, so the user supplies one; the
download must match it byte for byte, and a mismatch leaves the destination as it was.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from liveness.errors import ModelError, ModelIntegrityError
from liveness.models.fetch import fetch
from tests.conftest import LocalServers

ARCHIVE = "vosk-model-small-en-us-0.15.zip"
TARGET = "vosk-model-small-en-us-0.15"


def _model_zip(folder: Path) -> str:
    """A small zip laid out like the official archive (one top folder); returns its sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ARCHIVE
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{TARGET}/am/final.mdl", b"\x00acoustic model bytes" * 100)
        z.writestr(f"{TARGET}/conf/model.conf", b"--sample-frequency=16000\n")
        z.writestr(f"{TARGET}/graph/words.txt", b"<eps> 0\none 1\ntwo 2\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LIVENESS_VOSK_EN_SHA256", "LIVENESS_VOSK_CN_SHA256")
    }
    return subprocess.run(
        [sys.executable, "-m", "liveness", "models", "fetch", "vosk-en", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_fetch_vosk_en_with_sha256_cli(serve: LocalServers, tmp_path: Path) -> None:
    good = _model_zip(tmp_path / "srv")
    url = serve(tmp_path / "srv")
    dest = tmp_path / "models"
    ok = _cli("--dest", str(dest), "--base-url", url, "--sha256", good)
    assert ok.returncode == 0, ok.stderr
    model = dest / TARGET
    assert ok.stdout.strip() == str(model)
    assert (model / "graph" / "words.txt").read_bytes() == b"<eps> 0\none 1\ntwo 2\n"
    assert (model / "conf" / "model.conf").is_file()
    assert sorted(p.name for p in dest.iterdir()) == [TARGET]  # no archive or temp left behind


def test_fetch_vosk_en_altered_bytes_refused(serve: LocalServers, tmp_path: Path) -> None:
    good = _model_zip(tmp_path / "srv")
    data = bytearray((tmp_path / "srv" / ARCHIVE).read_bytes())
    data[len(data) // 3] ^= 0x01  # one flipped bit
    (tmp_path / "srv" / ARCHIVE).write_bytes(bytes(data))
    url = serve(tmp_path / "srv")
    dest = tmp_path / "models"
    (dest / TARGET / "graph").mkdir(parents=True)
    (dest / TARGET / "graph" / "words.txt").write_text("a previous good model\n")
    refused = _cli("--dest", str(dest), "--base-url", url, "--sha256", good)
    assert refused.returncode == 4, refused.stderr  # EXIT_MODEL
    assert "sha256" in refused.stderr
    # the destination is untouched: the old model is intact and nothing else was written
    assert (dest / TARGET / "graph" / "words.txt").read_text() == "a previous good model\n"
    assert sorted(p.name for p in dest.iterdir()) == [TARGET]
    assert sorted(p.name for p in (dest / TARGET).iterdir()) == ["graph"]


def test_fetch_without_any_pin_downloads_nothing(
    serve: LocalServers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liveness.models.vosk as vm

    _model_zip(tmp_path / "srv")
    url = serve(tmp_path / "srv")
    serve.requests.clear()
    unpinned = [type(s)(**{**_fields(s), "sha256": ""}) for s in vm.FETCH_SOURCES]
    monkeypatch.setattr(vm, "FETCH_SOURCES", unpinned)
    with pytest.raises(ModelError, match="no known sha256 pin") as exc:
        fetch("vosk-en", tmp_path / "models", base_url=url)
    assert "--sha256" in exc.value.diagnostics()  # the error says how to fix it
    assert serve.requests == []  # refused before any transfer
    assert not (tmp_path / "models").exists()
    with pytest.raises(ModelError, match="64 hex"):
        fetch("vosk-en", tmp_path / "models", base_url=url, sha256="abc")


def test_sha256_never_overrides_a_known_pin(tmp_path: Path) -> None:
    # the antispoof weights are pinned in the code; a different --sha256 is refused outright
    with pytest.raises(ModelError):
        fetch("antispoof", tmp_path, base_url="http://127.0.0.1:9/", sha256="0" * 64)
    assert not any(tmp_path.iterdir())


def _fields(s: object) -> dict[str, object]:
    from dataclasses import fields

    return {f.name: getattr(s, f.name) for f in fields(s)}  # type: ignore[arg-type]


def test_known_pin_mismatch_is_an_integrity_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liveness.models.vosk as vm

    pinned = [type(s)(**{**_fields(s), "sha256": "1" * 64}) for s in vm.FETCH_SOURCES]
    monkeypatch.setattr(vm, "FETCH_SOURCES", pinned)
    with pytest.raises(ModelIntegrityError, match="differs from the pinned"):
        fetch("vosk-en", tmp_path, base_url="http://127.0.0.1:9/", sha256="2" * 64)
