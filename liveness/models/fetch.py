"""`liveness models fetch`: download upstream model files, only when the user asks.

Nothing here runs at import or inside the engine. Every source pins a sha256; a download is
written to a temporary file, checked, and only then moved into place (so a failed or altered
download never replaces a good file). Archives are unpacked into a temporary folder first,
refusing members that would escape it.

Converter modules declare their sources as ``FETCH_SOURCES: list[FetchSource]``; the modules are
listed in ``SOURCE_MODULES``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from liveness.errors import ModelError, ModelIntegrityError

__all__ = ["FetchSource", "all_sources", "fetch", "fetch_file"]

SOURCE_MODULES = ["liveness.models.minifasnet", "liveness.models.vosk"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchSource:
    """One downloadable file. ``target`` is relative to the destination folder.

    ``unpack``: "" keeps the file as is; "zip" / "tar" unpack it into ``target`` (a folder).
    """

    name: str  # what the user types: `liveness models fetch NAME`
    url: str
    sha256: str
    target: str
    unpack: str = ""
    size: int | None = None  # expected bytes, when known (guards against endless streams)
    note: str = ""


def all_sources() -> dict[str, list[FetchSource]]:
    out: dict[str, list[FetchSource]] = {}
    for modname in SOURCE_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError:
            continue
        for s in getattr(mod, "FETCH_SOURCES", []):
            out.setdefault(s.name, []).append(s)
    return out


def fetch_file(
    url: str,
    sha256: str,
    dest: Path,
    *,
    max_bytes: int = 2 << 30,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest`` atomically if its sha256 matches; else raise, dest untouched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.sha256()
    total = 0
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (user-asked)
                    while chunk := resp.read(1 << 20):
                        total += len(chunk)
                        if total > max_bytes:
                            raise ModelError(
                                f"download of {url} exceeds {max_bytes} bytes; refused"
                            )
                        h.update(chunk)
                        f.write(chunk)
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                raise ModelError(
                    f"cannot download {url}: {exc}",
                    hint="Check the network, or copy the file by hand and use `models build`.",
                ) from None
            f.flush()
            os.fsync(f.fileno())
        got = h.hexdigest()
        if got != sha256:
            raise ModelIntegrityError(
                f"download of {url} has sha256 {got}, expected {sha256}; discarded",
                hint="The server sent other bytes than the pinned release; do not use them.",
            )
        os.replace(tmp, dest)
        return dest
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _safe_members_dir(root: Path, name: str) -> Path:
    target = (root / name).resolve()
    if not str(target).startswith(str(root.resolve()) + os.sep) and target != root.resolve():
        raise ModelError(f"archive member {name!r} would escape the destination; refused")
    return target


def _unpack(archive: Path, kind: str, dest: Path) -> None:
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as z:
                for n in z.namelist():
                    _safe_members_dir(tmpdir, n)
                z.extractall(tmpdir)
        elif kind == "tar":
            with tarfile.open(archive) as t:
                t.extractall(tmpdir, filter="data")
        else:
            raise ModelError(f"unknown archive kind {kind!r}")
        # an archive with one top folder: use its content
        items = list(tmpdir.iterdir())
        src = items[0] if len(items) == 1 and items[0].is_dir() else tmpdir
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(src, dest)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _pinned(sources: list[FetchSource], sha256: str | None) -> list[FetchSource]:
    """The sources with their sha256 pins; ``sha256`` (the user's ``--sha256``) supplies the pin
    of a single-file source that has none, and never overrides a known one."""
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ModelError(f"--sha256 must be 64 hex digits, got {sha256!r}")
        if len(sources) != 1:
            raise ModelError(f"--sha256 names one file; {sources[0].name!r} has {len(sources)}")
        known = sources[0].sha256
        if known and known != sha256:
            raise ModelIntegrityError(
                f"--sha256 {sha256} differs from the pinned {known} for {sources[0].name!r}",
                hint="Drop --sha256 to use the pinned release.",
            )
        return [replace(sources[0], sha256=sha256)]
    for s in sources:
        if not s.sha256:
            raise ModelError(
                f"{s.name!r} has no known sha256 pin ({s.url}); nothing was downloaded",
                hint=f"Pass the archive's sha256: `liveness models fetch {s.name} --sha256 HEX`"
                + (f" ({s.note})" if s.note else ""),
            )
    return sources


def fetch(
    name: str, dest_dir: Path, *, base_url: str | None = None, sha256: str | None = None
) -> list[Path]:
    """Fetch every file of source ``name`` into ``dest_dir``.

    ``base_url`` replaces the scheme+host+path prefix up to the file name (for mirrors and tests):
    the file name of each source URL is appended to it. ``sha256`` pins a source that has no
    known pin (see ``_pinned``); a source without any pin is refused before downloading.
    """
    sources = all_sources()
    if name not in sources:
        raise ModelError(
            f"no fetchable model named {name!r}", hint=f"known: {', '.join(sorted(sources))}"
        )
    out: list[Path] = []
    for s in _pinned(sources[name], sha256):
        url = s.url if base_url is None else base_url.rstrip("/") + "/" + s.url.rsplit("/", 1)[1]
        target = dest_dir / s.target
        if s.unpack:
            archive = dest_dir / (".download-" + s.url.rsplit("/", 1)[1])
            fetch_file(url, s.sha256, archive, max_bytes=s.size or (2 << 30))
            try:
                _unpack(archive, s.unpack, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    archive.unlink()
        else:
            fetch_file(url, s.sha256, target, max_bytes=s.size or (2 << 30))
        out.append(target)
    return out
