"""The ``langalign`` command line: a thin shell over the library.

Each command group lives in its own module exposing ``register(subparsers)``;
handlers return an exit code. Errors that langalign raises on purpose are
printed as one line (``langalign: error: ...``) with exit code 2; a traceback
appears only with ``--debug``.
"""
from __future__ import annotations

import argparse
import sys

from .._version import __version__
from ..errors import LangAlignError

# Command modules, imported lazily so `langalign --help` stays fast.
_COMMAND_MODULES = [
    "langalign.cli.core_commands",
    "langalign.cli.data_commands",
    "langalign.cli.scale_commands",
    "langalign.cli.benchmark_commands",
]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="langalign",
        description="Cross-lingual embedding alignment (LangAlign / Rev-LangAlign).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"langalign {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:  # a command group not built yet
            if e.name == modname:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("langalign: interrupted", file=sys.stderr)
        return 130
    except (LangAlignError, FileNotFoundError, IsADirectoryError, PermissionError, ValueError, TypeError) as e:
        if args.debug:
            raise
        print(f"langalign: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
