"""The model cache: where built models live, their manifest, and verified ONNX sessions.

Layout of the cache directory (``ModelConfig.cache_dir``, else ``$LIVENESS_MODEL_DIR``, else the
user's cache dir)::

    <cache>/manifest.json      {"models": {name: ModelEntry...}}
    <cache>/<file>             each model file named by its entry

``liveness/models/pins.json`` (shipped with the package, linked from the repo's ``models/``) pins
the sha256 that each deterministic converter must produce; ``build`` refuses a result that differs.
Loading always re-checks the file against the cache manifest, so an altered file fails with a
``ModelIntegrityError`` instead of running.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liveness.config import ModelConfig
from liveness.errors import ModelError, ModelIntegrityError, ModelMissingError

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "ModelEntry",
    "atomic_write_bytes",
    "cache_dir",
    "entry",
    "load_session",
    "pinned_sha256",
    "read_manifest",
    "register",
    "sha256_file",
]

MANIFEST = "manifest.json"
_PINS = Path(__file__).with_name("pins.json")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelEntry:
    """One built model: file name in the cache, its sha256, and how to feed it."""

    name: str
    file: str
    sha256: str
    version: str
    kind: str = "onnx"  # "onnx" file, or "dir" (a folder: sha256 over its files, sorted)
    input_size: tuple[int, ...] = ()
    normalisation: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelEntry:
        d = dict(d)
        d["input_size"] = tuple(d.get("input_size", ()))
        return cls(**d)


def cache_dir(cfg: ModelConfig | None = None) -> Path:
    if cfg is not None and cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    env = os.environ.get("LIVENESS_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("liveness")) / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_dir(path: Path) -> str:
    """sha256 over (relative name, file sha256) of every file in a folder, sorted."""
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(p.relative_to(path).as_posix().encode())
        h.update(b"\0")
        h.update(sha256_file(p).encode())
        h.update(b"\n")
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so readers see the old content or the new, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_manifest(directory: Path) -> dict[str, ModelEntry]:
    path = directory / MANIFEST
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {k: ModelEntry.from_dict(v) for k, v in raw.get("models", {}).items()}
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(
            f"model manifest {path} is unreadable: {exc}",
            hint="Delete it and run `liveness models build`.",
        ) from None


_manifest_lock = threading.Lock()


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with _manifest_lock, open(directory / ".manifest.lock", "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)


def register(directory: Path, new: ModelEntry) -> None:
    """Add or replace one entry in the cache manifest (atomic, safe across processes)."""
    with _locked(directory):
        models = read_manifest(directory)
        models[new.name] = new
        blob = {"models": {k: v.to_dict() for k, v in sorted(models.items())}}
        atomic_write_bytes(directory / MANIFEST, (json.dumps(blob, indent=2) + "\n").encode())


def pinned_sha256(name: str) -> str | None:
    """The sha256 the repo pins for a built model, or None if not pinned."""
    if not _PINS.exists():
        return None
    pins = json.loads(_PINS.read_text(encoding="utf-8"))
    value = pins.get(name, {}).get("sha256")
    return str(value) if value else None


def entry(
    name: str, cfg: ModelConfig | None = None, *, verify: bool = True
) -> tuple[ModelEntry, Path]:
    """The manifest entry and path of a built model, checked against its sha256."""
    directory = cache_dir(cfg)
    models = read_manifest(directory)
    if name not in models:
        raise ModelMissingError(
            f"model {name!r} is not in the model cache {directory}",
            hint="Run `liveness models build` (or set [models].cache_dir / LIVENESS_MODEL_DIR).",
        )
    e = models[name]
    path = directory / e.file
    if not path.exists():
        raise ModelMissingError(f"model file {path} is listed in the manifest but missing")
    if verify:
        got = sha256_dir(path) if e.kind == "dir" else sha256_file(path)
        if got != e.sha256:
            raise ModelIntegrityError(
                f"model {name!r} at {path} has sha256 {got[:16]}..., "
                f"the manifest says {e.sha256[:16]}..."
            )
    return e, path


_sessions: dict[tuple[str, str, int, int], ort.InferenceSession] = {}
_sessions_lock = threading.Lock()


def load_session(
    name: str, cfg: ModelConfig | None = None
) -> tuple[ort.InferenceSession, ModelEntry]:
    """A verified ONNX Runtime session for a built model, created once per process and reused."""
    cfg = cfg or ModelConfig()
    e, path = entry(name, cfg)
    key = (str(path), e.sha256, cfg.intra_op_threads, cfg.inter_op_threads)
    with _sessions_lock:
        sess = _sessions.get(key)
        if sess is None:
            sess = make_session(path, cfg)
            _sessions[key] = sess
    return sess, e


def make_session(path: Path | bytes, cfg: ModelConfig | None = None) -> ort.InferenceSession:
    import onnxruntime as ort

    cfg = cfg or ModelConfig()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = cfg.intra_op_threads
    opts.inter_op_num_threads = cfg.inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        src = path if isinstance(path, bytes) else str(path)
        return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(
            f"cannot load ONNX model {path if not isinstance(path, bytes) else '<bytes>'}: {exc}"
        ) from None
