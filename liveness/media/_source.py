"""Where media bytes come from: a path, a folder of frames, or bytes in memory.

Checks that need no decoding happen here, first: existence, emptiness and the size limit. The
leading bytes are sniffed so that an unreadable file can be called *corrupt* (it starts like a
container we read) or *unsupported* (it does not).
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from liveness.errors import EmptyMediaError, MediaLimitError, MediaNotFoundError

__all__ = ["Source", "resolve", "sniff_container"]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Source:
    """One input: exactly one of ``path`` (a file or a folder) or ``data``."""

    path: Path | None
    data: bytes | None
    size: int
    is_dir: bool = False

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else f"<{self.size} bytes in memory>"

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.path is None:  # resolve() never builds this; keeps the type checker honest
            raise ValueError("Source has neither path nor data")
        try:
            return open(self.path, "rb")  # noqa: SIM115 - the caller closes it
        except OSError as exc:  # permission denied, removed since resolve(), ...
            raise MediaNotFoundError(
                f"{self.path} cannot be opened: {exc.strerror or exc}",
                hint="Check the file exists and the service may read it.",
            ) from None

    def head(self, n: int = 64) -> bytes:
        if self.data is not None:
            return self.data[:n]
        with self.open() as fh:
            return fh.read(n)

    def read_all(self) -> bytes:
        if self.data is not None:
            return self.data
        with self.open() as fh:
            return fh.read()

    def sha256(self) -> str:
        h = hashlib.sha256()
        if self.data is not None:
            h.update(self.data)
        else:
            with self.open() as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
        return h.hexdigest()


def resolve(
    src: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    max_bytes: int,
    what: str = "clip",
    allow_dir: bool = False,
) -> Source:
    """Check a source exists, is not empty and is within ``max_bytes``; nothing is decoded."""
    if isinstance(src, bytes | bytearray | memoryview):
        data = bytes(src)
        if not data:
            raise EmptyMediaError(f"the {what} given as bytes is empty (0 bytes)")
        _check_size(len(data), max_bytes, what, "the bytes given")
        return Source(path=None, data=data, size=len(data))
    if not isinstance(src, str | os.PathLike):
        raise TypeError(f"expected a path or bytes, got {type(src).__name__}")
    path = Path(src)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MediaNotFoundError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise MediaNotFoundError(f"{what} cannot be read: {path} ({exc.strerror})") from None
    if path.is_dir():
        if not allow_dir:
            raise MediaNotFoundError(f"{what} path is a folder, not a file: {path}")
        return Source(path=path, data=None, size=0, is_dir=True)
    if st.st_size == 0:
        raise EmptyMediaError(f"{what} is empty (0 bytes): {path}")
    _check_size(st.st_size, max_bytes, what, str(path))
    return Source(path=path, data=None, size=st.st_size)


def _check_size(size: int, max_bytes: int, what: str, label: str) -> None:
    if size > max_bytes:
        raise MediaLimitError(
            f"{what} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit: {label}",
            hint="Record a shorter or smaller clip, or raise [media] max_file_bytes.",
        )


def sniff_container(head: bytes) -> str | None:
    """The container family the leading bytes announce, or None if none we read."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return "mpeg"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"OggS"):
        return "ogg"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return "mpegts"
    return None
