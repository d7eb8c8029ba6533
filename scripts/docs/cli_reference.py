"""The command-line reference, generated from langalign.cli's argparse parsers (nothing retyped).

Every command and subcommand gets a section with its one-line summary and the exact text its `--help`
prints (usage, arguments, examples), at a fixed width so that the page does not depend on the terminal.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

WIDTH = "100"


@contextmanager
def _columns(width: str) -> Iterator[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width  # argparse's formatter reads the width from here
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order --help lists them."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias of a command already listed
                    continue
                seen.add(id(sub))
                out.append((name, helps.get(name, ""), sub))
    return out


def _walk(parser: argparse.ArgumentParser, path: list[str], level: int) -> list[str]:
    lines: list[str] = []
    for name, summary, sub in _subcommands(parser):
        full = [*path, name]
        anchor = "-".join(full)
        lines += [f"{'#' * level} `langalign {' '.join(full)}` {{#{anchor}}}", ""]
        if summary:
            lines += [summary[0].upper() + summary[1:] + ".", ""]
        lines += ["```text", sub.format_help().rstrip(), "```", ""]
        lines += _walk(sub, full, min(level + 1, 4))
    return lines


def render() -> str:
    from langalign.cli import build_parser

    with _columns(WIDTH):
        parser = build_parser()
        commands = _subcommands(parser)
        lines = ["| command | what it does |", "|---|---|"]
        for name, summary, sub in commands:
            lines.append(f"| [`{name}`](#{name}) | {summary} |")
            for subname, subsummary, _ in _subcommands(sub):
                lines.append(f"| [`{name} {subname}`](#{name}-{subname}) | {subsummary} |")
        lines += ["", "## `langalign` {#langalign}", "", "```text", parser.format_help().rstrip(), "```", ""]
        lines += _walk(parser, [], 2)
    return "\n".join(lines)
