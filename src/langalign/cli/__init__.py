"""The ``langalign`` command line: a thin shell over the library.

Each command group lives in its own module exposing ``register(subparsers)``;
handlers return an exit code. Errors that langalign raises on purpose are
printed as one line (``langalign: error: ...``) with exit code 2, warnings as
``langalign: warning: ...``; a traceback appears only with ``--debug``.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from .._version import __version__
from ..errors import LangAlignError

# Command modules, imported lazily so `langalign --help` stays fast.
_COMMAND_MODULES = [
    "langalign.cli.core_commands",
    "langalign.cli.data_commands",
    "langalign.cli.scale_commands",
    "langalign.cli.benchmark_commands",
    "langalign.cli.serve_commands",
    "langalign.cli.tune_commands",
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
    # OpenMP threads that spin while waiting collapse on a busy machine (torch with 2 threads ran MiniLM 3-4x
    # slower than with 1 while other work shared the 2 cores; sleeping waiters kept 2 threads at least as fast
    # as 1: bench/encoders.py and docs/encoding-speed.md). Set before torch loads; the user's value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if os.environ.get("LANGALIGN_THREADS", "").strip():  # torch's threads too (read when torch loads)
        os.environ.setdefault("OMP_NUM_THREADS", os.environ["LANGALIGN_THREADS"].strip())
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        with warnings.catch_warnings():
            if not args.debug:  # one line each, like errors; --debug keeps Python's form (with the source line)
                warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        hint = " (the last checkpoint is kept; run the same command with --resume)" \
            if getattr(args, "checkpoint_dir", None) else ""
        print(f"langalign: interrupted{hint}", file=sys.stderr)
        return 130
    except (LangAlignError, OSError, ValueError, TypeError, UnicodeError, MemoryError, RecursionError) as e:
        # OSError covers missing files, folders given as files, permissions, a full disk.
        if args.debug:
            raise
        print(f"langalign: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug: still one line, never a traceback unless asked for
        if args.debug:
            raise
        if _is_safetensor_error(e):  # a write failed (full disk, ...) where no layer named the file
            print(f"langalign: error: a safetensors file could not be written or read: {_one_line(e)}",
                  file=sys.stderr)
            return 2
        print(f"langalign: internal error: {type(e).__name__}: {_one_line(e)} (rerun with --debug for the "
              "traceback, and please report it)", file=sys.stderr)
        return 3


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"langalign: warning: {_one_line(message)}", file=sys.stderr)


def _is_safetensor_error(e: BaseException) -> bool:
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - a core dependency
        return False
    return isinstance(e, SafetensorError)


def _one_line(e: BaseException | Warning | str) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 2000 else text[:2000] + " ..."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
