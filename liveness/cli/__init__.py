"""The `liveness` command line: a thin shell over the public API.

Each sub-command lives in its own module here, exposing ``register(subparsers)``; the handler it
sets with ``set_defaults(func=...)`` takes the parsed args and returns an exit code.

Exit codes: 0 ok / PASS; 1 the answer is "no" (a FAIL or RETRY decision, a store that does not
verify); 2 usage error; 3 bad media or input; 4 model problem; 5 challenge rejected;
6 record store or key problem; 7 family rule refused; 8 config error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from liveness.errors import (
    ChallengeError,
    ConfigError,
    FamilyError,
    LivenessError,
    MediaError,
    ModelError,
    RecordError,
)

if TYPE_CHECKING:
    from liveness.config import Config

__all__ = ["main"]

EXIT_OK, EXIT_NO, EXIT_USAGE, EXIT_MEDIA, EXIT_MODEL, EXIT_CHALLENGE, EXIT_RECORD = range(7)
EXIT_FAMILY, EXIT_CONFIG = 7, 8

_SUBCOMMANDS = ["probe", "challenge", "models", "records", "family", "certify", "demo"]


def exit_code_for(exc: LivenessError) -> int:
    for cls, code in (
        (MediaError, EXIT_MEDIA),
        (ModelError, EXIT_MODEL),
        (ChallengeError, EXIT_CHALLENGE),
        (RecordError, EXIT_RECORD),
        (FamilyError, EXIT_FAMILY),
        (ConfigError, EXIT_CONFIG),
    ):
        if isinstance(exc, cls):
            return code
    return EXIT_MEDIA


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveness", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="TOML config file (defaults otherwise)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"liveness.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"liveness.cli.{name}":
                continue  # that sub-command is not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except LivenessError as exc:
        print(f"error: {exc.diagnostics()}", file=sys.stderr)
        return exit_code_for(exc)


def load_config(args: argparse.Namespace) -> Config:
    """The Config named by --config, or the defaults."""
    from liveness.config import Config

    path = getattr(args, "config", None)
    return Config.from_toml(path) if path else Config()
