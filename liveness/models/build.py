"""`liveness models build`: build every model into the cache from installed packages.

Each converter module exposes ``build(out_dir: Path, opts: BuildOptions) -> list[ModelEntry]``;
it writes its files atomically into ``out_dir`` and returns their entries (sha256 computed). This
module checks each result against the sha256 pinned in ``pins.json`` and registers it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from liveness.config import ModelConfig
from liveness.errors import ModelError, ModelIntegrityError
from liveness.models.registry import ModelEntry, cache_dir, pinned_sha256, read_manifest, register

__all__ = ["BUILDERS", "BuildOptions", "BuildReport", "build_models"]

# group name -> "module:function". A group may produce several models.
BUILDERS: dict[str, str] = {
    "mtcnn": "liveness.models.mtcnn:build",
    "dlib_resnet": "liveness.models.dlib_resnet:build",
    "minifasnet": "liveness.models.minifasnet:build",
    "whisper": "liveness.models.whisper:build",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    force: bool = False
    antispoof_weights: Path | None = None  # folder with the two MiniFASNet .pth files


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildReport:
    built: tuple[ModelEntry, ...]
    failed: tuple[tuple[str, str], ...]  # (group, message)


def _resolve(spec: str) -> Callable[[Path, BuildOptions], list[ModelEntry]]:
    mod, _, fn = spec.partition(":")
    builder: Callable[[Path, BuildOptions], list[ModelEntry]] = getattr(
        importlib.import_module(mod), fn
    )
    return builder


def build_models(
    cfg: ModelConfig | None = None,
    opts: BuildOptions | None = None,
    only: list[str] | None = None,
) -> BuildReport:
    opts = opts or BuildOptions()
    out = cache_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    built: list[ModelEntry] = []
    failed: list[tuple[str, str]] = []
    groups = only or list(BUILDERS)
    for group in groups:
        if group not in BUILDERS:
            failed.append((group, f"unknown model group; known: {', '.join(BUILDERS)}"))
            continue
        try:
            entries = _resolve(BUILDERS[group])(out, opts)
            for e in entries:
                pin = pinned_sha256(e.name)
                if pin is not None and pin != e.sha256:
                    raise ModelIntegrityError(
                        f"built {e.name!r} has sha256 {e.sha256}, pins.json pins {pin}",
                        hint="The source package or converter changed; check the source version.",
                    )
                register(out, e)
                built.append(e)
        except ModelError as exc:
            failed.append((group, exc.diagnostics()))
        except ModuleNotFoundError as exc:
            failed.append((group, f"converter not available: {exc}"))
    return BuildReport(built=tuple(built), failed=tuple(failed))


def list_models(cfg: ModelConfig | None = None) -> dict[str, ModelEntry]:
    return read_manifest(cache_dir(cfg))
