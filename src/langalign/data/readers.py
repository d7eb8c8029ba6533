"""Readers and writers for parallel and labelled text files (TSV, CSV, JSON Lines, Parquet).

Every problem is reported as a :class:`~langalign.errors.DataError` naming the
file and the line (or row), and every row a reader drops is counted in the
returned :class:`ReadSummary`; nothing is dropped silently.

Conventions:

* Text is decoded strictly as UTF-8 (a leading BOM is removed); undecodable
  bytes are reported with line and byte offset.
* Texts are Unicode-normalised (NFC by default; ``normalize=None`` disables it)
  and stripped of leading/trailing whitespace.
* TSV is read *without* quote handling (``csv.QUOTE_NONE`` semantics: a ``"``
  is an ordinary character), so a TSV field can hold anything except a tab or
  a line break. The writer refuses such texts rather than mangling them; use
  CSV or JSON Lines for texts with tabs or newlines.
* CSV follows the usual quoting rules, so any text round-trips.
* A column is named by its header (``"source"``) or, for header-less TSV/CSV
  files, by its 0-based position (``0``); all requested columns must be of the
  same kind.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_path
from ..errors import DataError, LangAlignError
from .corpus import (BLANK_LINE, DUPLICATE, EMPTY, EMPTY_LABEL, IDENTICAL, LabelledDataset,
                     ParallelCorpus, ReadSummary)

log = logging.getLogger("langalign.data")

FORMATS = ("tsv", "csv", "jsonl", "json", "parquet")
_EXTENSIONS = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "json",
               ".parquet": "parquet", ".pq": "parquet"}
NORMAL_FORMS = ("NFC", "NFD", "NFKC", "NFKD")

Column = str | int


def normalize_text(text: str, form: str | None = "NFC") -> str:
    """The normalisation every reader applies: Unicode ``form`` (None: none), then strip."""
    if form:
        text = unicodedata.normalize(form, text)  # type: ignore[arg-type]  # a str form; ValueError if unknown
    return text.strip()


def detect_format(path: str | os.PathLike, format: str | None = None) -> str:
    """``format`` if given, else the format named by the file extension."""
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    ext = Path(path).suffix.lower()
    if ext not in _EXTENSIONS:
        raise DataError(f"{path}: cannot tell the format from extension {ext or '(none)'!r}; "
                        f"use .tsv, .csv, .jsonl, .json or .parquet, or pass format=")
    return _EXTENSIONS[ext]


def _check_normal_form(normalize: str | None) -> None:
    if normalize is not None and normalize not in NORMAL_FORMS:
        raise ValueError(f"normalize must be one of {', '.join(NORMAL_FORMS)} or None, got {normalize!r}")


# ---------------------------------------------------------------- decoding

def decode_utf8(data: bytes, path: str | os.PathLike) -> str:
    """Decode strictly; on bad bytes say where they are instead of a bare codec error."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(
            f"{path}: line {line}: invalid UTF-8 byte 0x{data[e.start]:02x} at byte offset {e.start} "
            f"(column {column} of the line); the file must be UTF-8 - re-save or convert it "
            f"(e.g. iconv -f cp949 -t utf-8)") from None
    return text[1:] if text.startswith("\ufeff") else text


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    return decode_utf8(data, path)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    # Split on "\n" only (str.splitlines would also break on U+2028, U+0085, ...).
    for i, line in enumerate(text.split("\n"), 1):
        yield i, line[:-1] if line.endswith("\r") else line


# ---------------------------------------------------------------- record iteration

def _resolve(path: Path, header: list[str], columns: Sequence[Column]) -> list[int]:
    idx = []
    for c in columns:
        if c not in header:
            raise DataError(f"{path}: missing column {c!r}; columns found: {', '.join(map(repr, header))}")
        idx.append(header.index(c))
    return idx


def _positional(columns: Sequence[Column]) -> bool:
    kinds = {isinstance(c, int) for c in columns}
    if len(kinds) > 1:
        raise ValueError(f"columns must be all names or all positions, got {list(columns)}")
    return kinds == {True}


def _iter_delimited(path: Path, fmt: str, columns: Sequence[Column], summary: ReadSummary
                    ) -> Iterator[tuple[str, list[str]]]:
    text = _read_text(path)
    positional = _positional(columns)
    if fmt == "tsv":
        lines = list(_lines(text))
        if lines and lines[-1][1] == "":  # the newline that ends the last line
            lines.pop()
        rows: Iterator[tuple[int, list[str]]] = ((n, line.split("\t")) for n, line in lines)
    else:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)

        def csv_rows() -> Iterator[tuple[int, list[str]]]:
            start = 1
            try:
                for row in reader:
                    yield start, row
                    start = reader.line_num + 1
            except csv.Error as e:
                raise DataError(f"{path}: line {reader.line_num}: malformed CSV: {e}") from None
        rows = csv_rows()

    header: list[str] | None = None
    width = 0
    idx: list[int] = []
    seen_data = False
    for line_no, fields in rows:
        if fields == [""] or fields == []:  # a blank line
            if header is not None or positional:
                summary.rows_read += 1
                summary.drop(BLANK_LINE)
            continue
        if header is None and not positional:
            header = [f.strip() for f in fields]
            width = len(header)
            idx = _resolve(path, header, columns)
            continue
        if not width:  # header-less: the first row fixes the width
            width = len(fields)
            for c in columns:
                if int(c) >= width:
                    raise DataError(f"{path}: line {line_no}: column {c} requested but rows have only "
                                    f"{width} fields")
            idx = [int(c) for c in columns]
        if len(fields) != width:
            hint = " (a truncated line, or a stray tab/comma inside a text?)"
            names = f" ({', '.join(header)})" if header else ""
            raise DataError(f"{path}: line {line_no}: expected {width} fields{names} but found "
                            f"{len(fields)}{hint}")
        seen_data = True
        summary.rows_read += 1
        yield f"line {line_no}", [fields[i] for i in idx]
    if not seen_data:
        raise DataError(f"{path}: no data rows" + (" (only a header)" if header else ""))


def _cell(path: Path, where: str, obj: dict, col: str, keys: list[str]) -> Any:
    if col not in obj:
        raise DataError(f"{path}: {where}: missing column {col!r}; columns found: {', '.join(map(repr, keys))}")
    return obj[col]


def _iter_json(path: Path, fmt: str, columns: Sequence[Column], summary: ReadSummary
               ) -> Iterator[tuple[str, list[Any]]]:
    if any(isinstance(c, int) for c in columns):
        raise ValueError("JSON records are addressed by key; column positions are for TSV/CSV only")
    text = _read_text(path)
    records: Iterator[tuple[str, Any]]
    if fmt == "json" and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
        records = ((f"record {i}", obj) for i, obj in enumerate(items, 1))
    else:
        def jsonl() -> Iterator[tuple[str, Any]]:
            for n, line in _lines(text):
                if not line.strip():
                    continue
                try:
                    yield f"line {n}", json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}: line {n}: invalid JSON ({e.msg} at column {e.colno}); "
                                    f"expected one JSON object per line") from None
        records = jsonl()
    seen = False
    for where, obj in records:
        if not isinstance(obj, dict):
            raise DataError(f"{path}: {where}: expected a JSON object, found {type(obj).__name__}")
        keys = list(obj)
        seen = True
        summary.rows_read += 1
        yield where, [_cell(path, where, obj, str(c), keys) for c in columns]
    if not seen:
        raise DataError(f"{path}: no data rows")


def _iter_parquet(path: Path, columns: Sequence[Column], summary: ReadSummary
                  ) -> Iterator[tuple[str, list[Any]]]:
    pq = _pyarrow_parquet()
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid etc.
        raise DataError(f"{path}: not a readable Parquet file: {e}") from None
    names = list(table.column_names)
    for c in columns:
        if not isinstance(c, str) or c not in names:
            raise DataError(f"{path}: missing column {c!r}; columns found: {', '.join(map(repr, names))}")
    if table.num_rows == 0:
        raise DataError(f"{path}: no data rows")
    data = [table.column(str(c)).to_pylist() for c in columns]
    for i in range(table.num_rows):
        summary.rows_read += 1
        yield f"row {i + 1}", [col[i] for col in data]


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq  # optional: only Parquet needs it
    except ImportError:
        raise LangAlignError("reading or writing Parquet needs pyarrow: pip install 'langalign[parquet]'") from None
    return pq


def iter_records(path: str | os.PathLike, columns: Sequence[Column], format: str | None = None,
                 summary: ReadSummary | None = None) -> Iterator[tuple[str, list[Any]]]:
    """Yield ``(where, values)`` for each data row, ``values`` in the order of ``columns``.

    ``where`` is ``"line N"`` (TSV/CSV/JSONL) or ``"row N"`` (Parquet) for messages.
    Raises DataError for a missing file, column, bad bytes or malformed rows.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if p.is_dir():
        raise DataError(f"{p}: is a folder, expected a data file")
    fmt = detect_format(p, format)
    summary = summary if summary is not None else ReadSummary(origin=str(p))
    if fmt in ("tsv", "csv"):
        return _iter_delimited(p, fmt, columns, summary)
    if fmt in ("jsonl", "json"):
        return _iter_json(p, fmt, columns, summary)
    return _iter_parquet(p, columns, summary)


# ---------------------------------------------------------------- cleaning

def _as_text(path: Any, where: str, col: Column, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{path}: {where}: column {col!r} holds {type(value).__name__} {value!r}, expected text")
    return value


class PairCleaner:
    """Normalise text pairs and decide which to keep, counting every drop in ``summary``.

    Shared by every parallel source (files, SIB-200 joins, Tatoeba, LibreOffice
    help) so that they all drop and report the same way. Order of checks:
    empty side, identical sides, duplicate pair.
    """

    def __init__(self, summary: ReadSummary, *, normalize: str | None = "NFC", strict: bool = False,
                 dedupe: bool = True, drop_identical: bool = True) -> None:
        _check_normal_form(normalize)
        self.summary, self.normalize, self.strict = summary, normalize, strict
        self.dedupe, self.drop_identical = dedupe, drop_identical
        self._seen: set[tuple[str, str]] = set()

    def clean(self, where: str, source: str, target: str) -> tuple[str, str] | None:
        s, t = normalize_text(source, self.normalize), normalize_text(target, self.normalize)
        if not s or not t:
            if self.strict:
                side = "source" if not s else "target"
                raise DataError(f"{self.summary.origin}: {where}: empty {side} text "
                                f"(pass strict=False to skip and count such rows)")
            self.summary.drop(EMPTY)
            return None
        if s == t:
            if self.drop_identical:
                self.summary.drop(IDENTICAL)
                return None
            self.summary.flag(IDENTICAL)
        if (s, t) in self._seen:
            if self.dedupe:
                self.summary.drop(DUPLICATE)
                return None
            self.summary.flag(DUPLICATE)
        self._seen.add((s, t))
        self.summary.kept += 1
        return s, t


# ---------------------------------------------------------------- public readers

def read_parallel(path: str | os.PathLike, source: Column = "source", target: Column = "target",
                  format: str | None = None, strict: bool = False, normalize: str | None = "NFC",
                  dedupe: bool = True, drop_identical: bool = True,
                  extra_columns: Sequence[Column] = ()) -> ParallelCorpus:
    """Read a parallel corpus: one translation pair per row.

    ``extra_columns`` are returned unchanged in ``meta`` as per-row lists
    (for example ``("label",)``). Empty pairs are dropped and counted (or raise
    with ``strict=True``); duplicate pairs and pairs whose two sides are
    identical are dropped and counted unless ``dedupe``/``drop_identical`` is False.
    """
    summary = ReadSummary(origin=str(path))
    cleaner = PairCleaner(summary, normalize=normalize, strict=strict, dedupe=dedupe,
                          drop_identical=drop_identical)
    src: list[str] = []
    tgt: list[str] = []
    extras: dict[str, list[Any]] = {str(c): [] for c in extra_columns}
    for where, values in iter_records(path, [source, target, *extra_columns], format, summary):
        pair = cleaner.clean(where, _as_text(path, where, source, values[0]),
                             _as_text(path, where, target, values[1]))
        if pair is None:
            continue
        src.append(pair[0])
        tgt.append(pair[1])
        for c, v in zip(extras, values[2:], strict=True):
            extras[c].append(v)
    log.info("%s", summary)
    return ParallelCorpus(src, tgt, extras or None, summary)


def read_labelled(path: str | os.PathLike, text: Column = "text", label: Column = "label",
                  text_pair: Column | None = None, format: str | None = None, strict: bool = False,
                  normalize: str | None = "NFC", extra_columns: Sequence[Column] = ()) -> LabelledDataset:
    """Read labelled texts (or text pairs, with ``text_pair``): one example per row.

    Labels are returned as found (str for TSV/CSV, native JSON/Parquet values),
    stripped when they are strings. Rows with an empty text or label are dropped
    and counted (or raise with ``strict=True``). Labelled sets are not deduplicated:
    a benchmark's examples are kept as published.
    """
    _check_normal_form(normalize)
    summary = ReadSummary(origin=str(path))
    cols: list[Column] = [text, label] + ([text_pair] if text_pair is not None else []) + list(extra_columns)
    texts: list[str] = []
    labels: list[Any] = []
    pairs: list[str] | None = [] if text_pair is not None else None
    extras: dict[str, list[Any]] = {str(c): [] for c in extra_columns}
    n_fixed = 3 if text_pair is not None else 2
    for where, values in iter_records(path, cols, format, summary):
        t = normalize_text(_as_text(path, where, text, values[0]), normalize)
        lab = values[1].strip() if isinstance(values[1], str) else values[1]
        tp = normalize_text(_as_text(path, where, text_pair, values[2]), normalize) if text_pair is not None else "x"
        if not t or not tp or lab is None or lab == "":
            reason = EMPTY_LABEL if t and tp else EMPTY
            if strict:
                raise DataError(f"{path}: {where}: {reason} (pass strict=False to skip and count such rows)")
            summary.drop(reason)
            continue
        texts.append(t)
        labels.append(lab)
        if pairs is not None:
            pairs.append(tp)
        for c, v in zip(extras, values[n_fixed:], strict=True):
            extras[c].append(v)
        summary.kept += 1
    log.info("%s", summary)
    return LabelledDataset(texts, labels, pairs, extras or None, summary)


# ---------------------------------------------------------------- writers

def write_table(path: str | os.PathLike, columns: dict[str, Sequence[Any]], format: str | None = None) -> Path:
    """Write named columns atomically in the format of ``path`` (with a header row).

    TSV refuses texts containing a tab or a line break (it has no quoting);
    CSV quotes as needed; JSON Lines writes one object per row.
    """
    p = Path(path)
    fmt = detect_format(p, format)
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    for k, v in columns.items():
        if len(v) != n:
            raise ValueError(f"column {k!r} has {len(v)} values, expected {n}")
    rows = list(zip(*columns.values(), strict=True))
    with atomic_path(p) as tmp:
        if fmt == "tsv":
            for i, row in enumerate(rows, 1):
                for name, v in zip(names, row, strict=True):
                    if isinstance(v, str) and any(ch in v for ch in "\t\n\r"):
                        raise DataError(f"{p}: row {i}, column {name!r}: TSV cannot hold a tab or line break; "
                                        f"write .csv or .jsonl instead")
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write("\t".join(names) + "\n")
                for row in rows:
                    f.write("\t".join("" if v is None else str(v) for v in row) + "\n")
        elif fmt == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
                w.writerow(names)
                w.writerows(rows)
        elif fmt in ("jsonl", "json"):
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                for row in rows:
                    f.write(json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False) + "\n")
        else:
            pq = _pyarrow_parquet()
            import pyarrow as pa
            pq.write_table(pa.table({k: list(v) for k, v in columns.items()}), tmp)
    return p


def write_parallel(corpus: ParallelCorpus, path: str | os.PathLike, format: str | None = None,
                   source: str = "source", target: str = "target") -> Path:
    """Write a ParallelCorpus (plus its per-row meta lists) so read_parallel reads it back."""
    cols: dict[str, Sequence[Any]] = {source: corpus.source, target: corpus.target}
    for k, v in (corpus.meta or {}).items():
        if isinstance(v, list) and len(v) == len(corpus):
            cols[k] = v
    return write_table(path, cols, format)
