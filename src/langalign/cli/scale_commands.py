"""``langalign encode`` (streaming, sharded, resumable) and ``langalign cache info|clear``."""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DataError

_FMT = argparse.RawDescriptionHelpFormatter


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "encode", help="encode a text file to sharded embeddings (streaming, resumable)", formatter_class=_FMT,
        description="Encode one text per line (.txt) or one column of a .tsv / .jsonl file into "
                    "OUTPUT/shard-00000.npy ... plus manifest.json. The input is read lazily, so memory stays "
                    "bounded whatever its size; running the same command again after an interruption resumes "
                    "and skips finished shards.",
        epilog="examples:\n  langalign encode --encoder use-multilingual --input sents.txt --output emb/\n"
               "  langalign encode --encoder minilm --input pairs.tsv --column source --output emb-en --cache\n"
               "  langalign encode --encoder minilm --input data.jsonl --column text --output emb --shard-size 50000")
    p.add_argument("--encoder", required=True, help="encoder name (use-multilingual, minilm, a hub id or folder)")
    p.add_argument("--input", required=True, type=Path, help=".txt (one text per line), .tsv (header row) or .jsonl")
    p.add_argument("--column", help="the text column of a .tsv/.jsonl input (name; 0-based index for .tsv "
                                    "without header)")
    p.add_argument("--output", required=True, type=Path, help="output folder (created; resumed if it exists)")
    p.add_argument("--shard-size", type=int, default=10_000, help="texts per shard (default: 10000)")
    p.add_argument("--batch-size", type=int, default=256, help="texts per encoder call (default: 256)")
    p.add_argument("--cache", action="store_true", help="use the embedding cache in the data home")
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    p.set_defaults(func=cmd_encode)

    cache = subparsers.add_parser(
        "cache", help="embedding cache: size report, clear", formatter_class=_FMT,
        description="The embedding cache (<data home>/cache) keeps every encoded text per encoder, so "
                    "encoding it again is free.",
        epilog="examples:\n  langalign cache info\n  langalign cache clear --encoder minilm\n  langalign cache clear")
    cache.set_defaults(func=lambda args: (cache.print_help(), 1)[1])
    sub = cache.add_subparsers(dest="cache_command", metavar="SUBCOMMAND")
    q = sub.add_parser("info", help="entries and bytes per encoder", formatter_class=_FMT,
                       epilog="examples:\n  langalign cache info\n  langalign cache info --json")
    q.add_argument("--json", action="store_true", help="print machine-readable JSON")
    q.set_defaults(func=cmd_cache_info)
    q = sub.add_parser("clear", help="delete cached embeddings (all, or one encoder's)", formatter_class=_FMT,
                       epilog="examples:\n  langalign cache clear\n  langalign cache clear --encoder use-multilingual")
    q.add_argument("--encoder", help="only this encoder's entries (its name as shown by 'langalign cache info')")
    q.set_defaults(func=cmd_cache_clear)


# ---------------------------------------------------------------- input

def _open_lines(path: Path) -> Iterator[tuple[int, str]]:
    # The readers' line rule ("\r\n", "\r" or "\n"), BOM and UTF-8 messages, streamed.
    from ..data.records import iter_file_lines

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected a text file")
    return iter_file_lines(path)


def iter_texts(path: Path, column: str | None = None) -> Iterator[str]:
    """Texts of a .txt / .tsv / .jsonl file, read lazily; malformed rows raise DataError naming the line.

    Argument problems (file type, missing --column) are raised at once, not on first read.
    Input without any text raises at the end, with the message the other commands give.
    """
    suffix = path.suffix.lower()
    if suffix in (".txt", "") and column is not None:
        raise ValueError("--column applies to .tsv/.jsonl input, not .txt (one text per line)")
    if suffix in (".tsv", ".jsonl", ".ndjson") and column is None:
        raise ValueError(f"{path}: give --column (a header name{', or a 0-based index' if suffix == '.tsv' else ''})")
    if suffix not in (".txt", "", ".tsv", ".jsonl", ".ndjson"):
        raise DataError(f"{path}: unsupported input type {suffix!r}; use .txt, .tsv or .jsonl")
    return _iter_texts(path, suffix, column)


def check_has_text(path: Path, column: str | None = None) -> None:
    """Refuse, before any work, input the other commands refuse: no data rows, or only blank lines.

    Reads only up to the first text (the whole file only when there is none).
    """
    for text in iter_texts(path, column):
        if text.strip() or path.suffix.lower() not in (".txt", ""):
            return


def _cell(path: Path, n: int, text: str, limit: int) -> str:
    if len(text) > limit:  # the per-cell limit every reader has
        from ..data.records import cell_too_long

        raise cell_too_long(path, f"line {n}", "the text", len(text))
    return text


def _iter_texts(path: Path, suffix: str, column: str | None) -> Iterator[str]:
    from ..data import records
    from ..data.records import duplicate_column, no_text_error

    limit = records.MAX_CELL_CHARS
    blank = True  # nothing but whitespace so far
    if suffix in (".txt", ""):
        n = 0
        for n, line in _open_lines(path):
            blank = blank and not line.strip()
            yield _cell(path, n, line, limit)
        if blank:
            raise no_text_error(path, n)
    elif suffix == ".tsv":
        assert column is not None
        idx: int | None = int(column) if column.isdigit() else None
        width = None
        rows = 0
        header = False
        for n, line in _open_lines(path):
            blank = blank and not line.strip()
            fields = line.split("\t")
            if fields == [""]:
                continue  # blank line
            if idx is None:  # the first line is the header
                names = [f.strip() for f in fields]
                if column not in names:
                    raise DataError(f"{path}: no column {column!r}; columns found: {', '.join(map(repr, names))}")
                if names.count(column) > 1:
                    raise duplicate_column(path, column, [i for i, h in enumerate(names) if h == column])
                idx, width, header = names.index(column), len(names), True
                continue
            if width is None:
                width = len(fields)
                if idx >= width:
                    raise DataError(f"{path}: line {n}: column {idx} requested but rows have {width} fields")
            if len(fields) != width:
                raise DataError(f"{path}: line {n}: expected {width} fields but found {len(fields)}")
            rows += 1
            yield _cell(path, n, fields[idx], limit)
        if not rows:
            raise DataError(f"{path}: file is empty" if blank else
                            f"{path}: no data rows" + (" (only a header)" if header else ""))
    else:  # .jsonl
        from ..data.records import loads_record

        rows = 0
        for n, line in _open_lines(path):
            if not line.strip():
                continue
            blank = False
            try:
                obj = loads_record(line, [column])
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {n}: invalid JSON ({e.msg})") from None
            except RecursionError:
                raise DataError(f"{path}: line {n}: JSON nested too deeply to read") from None
            if not isinstance(obj, dict) or column not in obj:
                raise DataError(f"{path}: line {n}: no key {column!r}")
            if column in getattr(obj, "duplicates", ()):
                raise DataError(f"{path}: line {n}: key {column!r} appears more than once in the record; "
                                "JSON would silently keep the last, so say which one is meant")
            if not isinstance(obj[column], str):
                raise DataError(f"{path}: line {n}: {column!r} is {type(obj[column]).__name__}, expected a string")
            rows += 1
            yield _cell(path, n, obj[column], limit)
        if not rows:
            raise DataError(f"{path}: file is empty" if blank else f"{path}: no data rows")


# ---------------------------------------------------------------- handlers

def cmd_encode(args: argparse.Namespace) -> int:
    from ..encoders import load_encoder
    from ..scale.streaming import encode_to
    from .outputs import folder_output

    if args.shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1, got {args.shard_size}")
    if not args.input.exists():
        raise FileNotFoundError(f"{args.input}: no such file")
    check_has_text(args.input, args.column)  # before loading a model or creating the output
    texts = iter_texts(args.input, args.column)
    folder_output(args.output, "--output")
    enc = load_encoder(args.encoder)
    t0 = time.perf_counter()
    fresh = not args.output.exists()
    try:
        m = encode_to(enc, args.output, texts, shard_size=args.shard_size, batch_size=args.batch_size,
                      cache=True if args.cache else None)
    except BaseException:
        # A run that failed before writing anything leaves no empty output folder behind
        # (finished shards of a longer run stay: they are what a rerun resumes from).
        if fresh and args.output.is_dir() and not any(args.output.iterdir()):
            args.output.rmdir()
        raise
    secs = time.perf_counter() - t0
    summary = {"output": str(args.output), "encoder": m["encoder"], "dim": m["dim"], "count": m["count"],
               "shards": len(m["shards"]), "encoded_shards": m["encoded_shards"],
               "reused_shards": m["reused_shards"], "seconds": round(secs, 3)}
    if args.json:
        print(json.dumps(summary))
    else:
        resumed = f", {m['reused_shards']} reused from an earlier run" if m["reused_shards"] else ""
        print(f"encoded {m['count']} texts with {m['encoder']} ({m['dim']}-d) into {len(m['shards'])} shard(s) "
              f"at {args.output}{resumed} in {secs:.1f}s")
    return 0


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def cmd_cache_info(args: argparse.Namespace) -> int:
    from ..scale.cache import EmbeddingCache

    rep = EmbeddingCache().size_report()
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(f"cache: {rep['root']}")
    if not rep["encoders"]:
        print("  (empty)")
        return 0
    width = max(len(n) for n in rep["encoders"])
    for name, e in sorted(rep["encoders"].items()):
        extra = f"  ERROR: {e['error']}" if "error" in e else ""
        print(f"  {name:<{width}}  {e['entries']:>10,} entries  {_human(e['bytes']):>9}  dim {e['dim']}{extra}")
    print(f"  {'total':<{width}}  {rep['entries']:>10,} entries  {_human(rep['bytes']):>9}")
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    from ..scale.cache import EmbeddingCache

    cache = EmbeddingCache()
    if args.encoder is not None:
        known = cache.size_report()["encoders"]
        if args.encoder not in known:
            from ..encoders import canonical_encoder_name

            name = canonical_encoder_name(args.encoder)
            if name not in known:
                shown = ", ".join(sorted(known)) or "none"
                raise ValueError(f"no cache for encoder {args.encoder!r} (cached encoders: {shown})")
            args.encoder = name
    removed = cache.clear(args.encoder)
    what = f"encoder {args.encoder}" if args.encoder else "all encoders"
    print(f"removed {removed:,} cached embeddings ({what}) from {cache.root}")
    return 0
