r"""Records out of files: formats, decoding, the input limits, and iterating rows of TSV, CSV, JSON Lines and Parquet.

The layer under the readers (:mod:`langalign.data.readers`), shared by them, the corpus builders and the CLI.
Every problem is a :class:`~langalign.errors.DataError` naming the file and the line (or row, or byte offset).

* Text is decoded strictly as UTF-8 (a leading BOM is removed); undecodable
  bytes are reported with line and byte offset.
* A line ends at ``\r\n``, ``\r`` or ``\n``, in every reader (:func:`split_lines`,
  :func:`iter_file_lines`); other Unicode separators (U+2028, ...) are text.
* TSV is read *without* quote handling (``csv.QUOTE_NONE`` semantics: a ``"``
  is an ordinary character), so a TSV field can hold anything except a tab or
  a line break. CSV follows the usual quoting rules.
* A column is named by its header (``"source"``) or, for header-less TSV/CSV
  files, by its 0-based position (``0``); all requested columns must be of the
  same kind.

Limits (what one file may expand to; each refusal is a DataError naming the file):

* :data:`MAX_CELL_CHARS` characters per cell: a TSV/CSV field, a JSON or Parquet
  value, a line of a ``.txt`` file; the same in every reader and command.
* :data:`MAX_ROWS` data rows per file (``max_rows=``, or ``$LANGALIGN_MAX_ROWS``
  for the CLI, raises it). Parquet's count comes from its footer, before reading.
* :data:`MAX_BYTES` bytes of text per file (``max_bytes=`` / ``$LANGALIGN_MAX_BYTES``):
  the file size for the text formats, which are read whole; for Parquet, which
  compresses, the decompressed size of the columns read (from the footer) and
  their decoded size (dictionary values counted per use), checked batch by batch
  before any value becomes a Python object.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError, LangAlignError
from .corpus import BLANK_LINE, ReadSummary

FORMATS = ("tsv", "csv", "jsonl", "json", "parquet")
#: Data rows one input file may hold (a 136 KB Parquet file can hold 20M repeated rows).
MAX_ROWS = 10_000_000
#: Bytes of text one input file may decode to (2 GiB).
MAX_BYTES = 2 * 1024**3
#: Characters one cell may hold (a TSV/CSV field, a JSON/Parquet value, a .txt line).
MAX_CELL_CHARS = 20_000_000
ENV_MAX_ROWS = "LANGALIGN_MAX_ROWS"
ENV_MAX_BYTES = "LANGALIGN_MAX_BYTES"
_PARQUET_BATCH = 8192
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


def _limit(value: int | None, env: str, default: int, name: str) -> int:
    """``value``, else ``$env``, else ``default``: a positive integer."""
    source = name
    if value is None:
        raw = os.environ.get(env)
        if raw is None:
            return default
        source = f"${env}"
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"{source} must be a whole number, got {raw!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{source} must be a whole number >= 1, got {value!r}")
    return value


def _existing_file(path: str | os.PathLike, expected: str) -> Path:
    """``path`` as a Path, or a DataError when it is missing or a folder (``expected``: "text file", ...)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if p.is_dir():
        raise DataError(f"{p}: is a folder, expected a {expected}")
    return p


class _Limits:
    """The resolved row and byte limits of one read, with the messages that name them."""

    def __init__(self, max_rows: int | None, max_bytes: int | None) -> None:
        self.rows = _limit(max_rows, ENV_MAX_ROWS, MAX_ROWS, "max_rows")
        self.bytes = _limit(max_bytes, ENV_MAX_BYTES, MAX_BYTES, "max_bytes")

    def too_many_rows(self, path: Path, n: int | str) -> DataError:
        return DataError(f"{path}: holds {n} rows, more than the {self.rows:,} one input file may hold; "
                         f"pass max_rows= (CLI: set {ENV_MAX_ROWS}) to raise the limit")

    def too_many_bytes(self, path: Path, what: str) -> DataError:
        return DataError(f"{path}: {what}, more than the {self.bytes:,} bytes of text one input file may expand "
                         f"to; pass max_bytes= (CLI: set {ENV_MAX_BYTES}) to raise the limit")

    def check_size(self, path: Path) -> None:
        size = path.stat().st_size
        if size > self.bytes:
            raise self.too_many_bytes(path, f"the file is {size:,} bytes")

    def count(self, path: Path, summary: ReadSummary) -> None:
        if summary.rows_read > self.rows:
            raise self.too_many_rows(path, f"more than {self.rows:,}")


_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")


def _bad_utf8(path: Any, line: int, byte: int, offset: int, column: int) -> DataError:
    return DataError(
        f"{path}: line {line}: invalid UTF-8 byte 0x{byte:02x} at byte offset {offset} "
        f"(column {column} of the line); the file must be UTF-8 - re-save or convert it "
        f"(e.g. iconv -f cp949 -t utf-8)")


def decode_utf8(data: bytes, path: str | os.PathLike) -> str:
    """Decode strictly; on bad bytes say where they are instead of a bare codec error."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line, start = 1, 0
        for m in _BREAK_BYTES.finditer(data, 0, e.start):
            line, start = line + 1, m.end()
        raise _bad_utf8(path, line, data[e.start], e.start, e.start - start + 1) from None
    return text[1:] if text.startswith("\ufeff") else text


def split_lines(text: str) -> list[str]:
    """The lines of ``text``, each ended by ``\r\n``, ``\r`` or ``\n`` (or the end of the text).

    The same rule as :func:`iter_file_lines`. Not ``str.splitlines``, which also
    breaks at U+2028, U+0085, form feeds and more: those are part of a text.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":  # the break that ends the last line starts no new one
        lines.pop()
    return lines


def iter_file_lines(path: str | os.PathLike, block: int = 1 << 20) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 file, read lazily: :func:`split_lines` in bounded memory.

    A leading BOM is removed; bad bytes raise the DataError :func:`decode_utf8` raises.
    """
    with open(path, "rb") as f:
        buf = bytearray()
        n = 0
        offset = 0  # file offset of buf[0]
        scanned = 0  # buf[:scanned] holds no line break (a long line is scanned once)
        bom = True  # the first bytes are still to be checked for a BOM
        while True:
            chunk = f.read(block)
            at_end = not chunk
            buf += chunk
            if bom and (len(buf) >= 3 or at_end):
                bom = False
                if buf.startswith(b"\xef\xbb\xbf"):
                    del buf[:3]
                    offset = 3
            if bom:
                continue
            # A final "\r" may be the first half of "\r\n": wait for the next block.
            limit = len(buf) if at_end or not buf.endswith(b"\r") else len(buf) - 1
            pos = 0
            for m in _BREAK_BYTES.finditer(buf, scanned, limit):
                n += 1
                yield n, _decode_line(path, buf, pos, m.start(), n, offset)
                pos = m.end()
            if at_end:
                if pos < len(buf):
                    n += 1
                    yield n, _decode_line(path, buf, pos, len(buf), n, offset)
                return
            del buf[:pos]
            offset += pos
            scanned = limit - pos


def _decode_line(path: Any, buf: bytearray, start: int, end: int, n: int, offset: int) -> str:
    try:
        return buf[start:end].decode("utf-8")
    except UnicodeDecodeError as e:
        at = offset + start + e.start  # in the file
        line_start = 0 if n == 1 else offset + start  # columns count a BOM, as decode_utf8 does
        raise _bad_utf8(path, n, buf[start + e.start], at, at - line_start + 1) from None


def no_text_error(path: Any, n_lines: int) -> DataError:
    """What every reader of one-text-per-line files says when no line holds text."""
    return DataError(f"{path}: no text: the file is empty" if not n_lines else
                     f"{path}: no text: all {n_lines} lines are blank")


def cell_too_long(path: Any, where: str, what: str, n: int | None = None) -> DataError:
    """The one message for a cell (field, value, line) over :data:`MAX_CELL_CHARS`."""
    held = f"holds {n:,} characters, more than" if n is not None else "holds more characters than"
    return DataError(f"{path}: {where}: {what} {held} the {MAX_CELL_CHARS:,} one cell may hold")


def duplicate_column(path: Any, name: Any, positions: list[int]) -> DataError:
    where = ", ".join(str(i + 1) for i in positions)
    return DataError(f"{path}: column {name!r} appears {len(positions)} times in the header (columns {where}); "
                     "rename one so it is clear which to read")


def _check_cells(path: Any, where: str, columns: Sequence[Any], values: Sequence[Any]) -> None:
    # Called only for a line longer than the limit: no cell of a shorter one can exceed it.
    for c, v in zip(columns, values, strict=True):
        if isinstance(v, str) and len(v) > MAX_CELL_CHARS:
            raise cell_too_long(path, where, f"column {c!r}", len(v))


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    return decode_utf8(data, path)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    return enumerate(split_lines(text), 1)


def read_lines(path: str | os.PathLike, normalize: str | None = "NFC", max_rows: int | None = None,
               max_bytes: int | None = None) -> list[str]:
    """Texts of a one-text-per-line file, normalised; blank lines kept (rows stay aligned with the file).

    A file without any text is refused (:func:`no_text_error`), as are lines over
    :data:`MAX_CELL_CHARS` and files over the row and byte limits.
    """
    _check_normal_form(normalize)
    p = _existing_file(path, "text file")
    limits = _Limits(max_rows, max_bytes)
    limits.check_size(p)
    out = []
    for n, line in iter_file_lines(p):
        if len(line) > MAX_CELL_CHARS:
            raise cell_too_long(p, f"line {n}", "the line", len(line))
        if n > limits.rows:
            raise limits.too_many_rows(p, f"more than {limits.rows:,}")
        out.append(normalize_text(line, normalize))
    if not any(out):
        raise no_text_error(p, len(out))
    return out


def _resolve(path: Path, header: list[str], columns: Sequence[Column]) -> list[int]:
    idx = []
    for c in columns:
        if c not in header:
            raise DataError(f"{path}: missing column {c!r}; columns found: {', '.join(map(repr, header))}")
        at = [i for i, h in enumerate(header) if h == c]
        if len(at) > 1:
            raise duplicate_column(path, c, at)
        idx.append(at[0])
    return idx


def _positional(columns: Sequence[Column]) -> bool:
    kinds = {isinstance(c, int) for c in columns}
    if len(kinds) > 1:
        raise ValueError(f"columns must be all names or all positions, got {list(columns)}")
    return kinds == {True}


def _iter_delimited(path: Path, fmt: str, columns: Sequence[Column], summary: ReadSummary, limits: _Limits
                    ) -> Iterator[tuple[str, list[str]]]:
    limits.check_size(path)
    text = _read_text(path)
    positional = _positional(columns)
    if fmt == "tsv":
        rows: Iterator[tuple[int, list[str]]] = ((n, line.split("\t")) for n, line in _lines(text))
        long_lines = len(text) > MAX_CELL_CHARS
    else:
        if csv.field_size_limit() < MAX_CELL_CHARS:  # the module's default is 131,072
            csv.field_size_limit(MAX_CELL_CHARS)
        # Someone else may have raised the module's limit beyond ours: then check ourselves.
        long_lines = csv.field_size_limit() > MAX_CELL_CHARS and len(text) > MAX_CELL_CHARS
        # newline="": the csv module ends a record at "\r\n", "\r" or "\n" and keeps
        # line breaks inside quoted fields as they are.
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)

        def csv_rows() -> Iterator[tuple[int, list[str]]]:
            start = 1
            try:
                for row in reader:
                    yield start, row
                    start = reader.line_num + 1
            except csv.Error as e:
                if "field larger than field limit" in str(e):
                    raise cell_too_long(path, f"line {reader.line_num}", "a field") from None
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
        limits.count(path, summary)
        values = [fields[i] for i in idx]
        if long_lines:
            _check_cells(path, f"line {line_no}", columns, values)
        yield f"line {line_no}", values
    if not seen_data:
        raise DataError(f"{path}: no data rows" + (" (only a header)" if header else ""))


def _cell(path: Path, where: str, obj: dict, col: str, keys: list[str]) -> Any:
    if col not in obj:
        raise DataError(f"{path}: {where}: missing column {col!r}; columns found: {', '.join(map(repr, keys))}")
    if col in getattr(obj, "duplicates", ()):
        raise DataError(f"{path}: {where}: key {col!r} appears more than once in the record; "
                        "JSON would silently keep the last, so say which one is meant")
    return obj[col]


class _Record(dict):
    """A JSON object that remembers which keys it held more than once."""

    duplicates: frozenset = frozenset()


def loads_record(text: str, columns: Sequence[Any]) -> Any:
    """``json.loads``, but a record holding a requested key twice remembers it (see :class:`_Record`).

    The exact check costs 2-3x the parse, so it runs only where a duplicate is possible.
    """
    if "\\u" in text:
        return _RECORD_DECODER.decode(text)
    for c in columns:
        if text.count(f'"{c}"') > 1:
            return _RECORD_DECODER.decode(text)
    return json.loads(text)


def _object(pairs: list[tuple[str, Any]]) -> dict:
    obj = _Record(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dups = set()
        for k, _ in pairs:
            if k in seen:
                dups.add(k)
            seen.add(k)
        obj.duplicates = frozenset(dups)
    return obj


_RECORD_DECODER = json.JSONDecoder(object_pairs_hook=_object)


def _iter_json(path: Path, fmt: str, columns: Sequence[Column], summary: ReadSummary, limits: _Limits
               ) -> Iterator[tuple[str, list[Any]]]:
    if any(isinstance(c, int) for c in columns):
        raise ValueError("JSON records are addressed by key; column positions are for TSV/CSV only")
    limits.check_size(path)
    text = _read_text(path)
    long_text = len(text) > MAX_CELL_CHARS
    records: Iterator[tuple[str, Any]]
    if fmt == "json" and text.lstrip().startswith("["):
        try:
            items = loads_record(text, columns)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
        except RecursionError:
            raise DataError(f"{path}: JSON nested too deeply to read") from None
        records = ((f"record {i}", obj) for i, obj in enumerate(items, 1))
    else:
        def jsonl() -> Iterator[tuple[str, Any]]:
            for n, line in _lines(text):
                if not line.strip():
                    continue
                try:
                    yield f"line {n}", loads_record(line, columns)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}: line {n}: invalid JSON ({e.msg} at column {e.colno}); "
                                    f"expected one JSON object per line") from None
                except RecursionError:
                    raise DataError(f"{path}: line {n}: JSON nested too deeply to read; "
                                    f"expected one flat JSON object per line") from None
        records = jsonl()
    seen = False
    for where, obj in records:
        if not isinstance(obj, dict):
            raise DataError(f"{path}: {where}: expected a JSON object, found {type(obj).__name__}")
        keys = list(obj)
        seen = True
        summary.rows_read += 1
        limits.count(path, summary)
        values = [_cell(path, where, obj, str(c), keys) for c in columns]
        if long_text:
            _check_cells(path, where, columns, values)
        yield where, values
    if not seen:
        raise DataError(f"{path}: no data rows")


def _iter_parquet(path: Path, columns: Sequence[Column], summary: ReadSummary, limits: _Limits
                  ) -> Iterator[tuple[str, list[Any]]]:
    """Rows of the requested columns, streamed a batch at a time.

    Parquet compresses (and dictionary-encodes repeated values), so the file size
    says nothing about what it holds: the row count is checked from the footer and
    the decoded text size batch by batch, before anything becomes a Python object.
    """
    pq = _pyarrow_parquet()
    import pyarrow as pa

    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid etc.
        raise DataError(f"{path}: not a readable Parquet file: {e}") from None
    names = list(schema.names)
    for c in columns:
        if not isinstance(c, str) or c not in names:
            raise DataError(f"{path}: missing column {c!r}; columns found: {', '.join(map(repr, names))}")
        if names.count(c) > 1:
            raise duplicate_column(path, c, [i for i, h in enumerate(names) if h == c])
    wanted = list(dict.fromkeys(str(c) for c in columns))
    texty = [c for c in wanted if _is_text_type(pa, schema.field(c).type)]
    try:
        # Repeated strings stay dictionary-encoded, so a batch costs what the file does.
        pf = pq.ParquetFile(path, read_dictionary=texty)
        meta = pf.metadata
        groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
        n_rows = max(meta.num_rows, sum(g.num_rows for g in groups))
        # What the columns read take once decompressed (values stored once per dictionary).
        stored = sum(g.column(j).total_uncompressed_size for g in groups for j in range(g.num_columns)
                     if g.column(j).path_in_schema.split(".")[0] in wanted)
    except Exception as e:
        raise DataError(f"{path}: not a readable Parquet file: {e}") from None
    if n_rows == 0:
        raise DataError(f"{path}: no data rows")
    if n_rows > limits.rows:
        raise limits.too_many_rows(path, f"{n_rows:,}")
    if stored > limits.bytes:
        raise limits.too_many_bytes(path, f"the columns read take {stored:,} bytes decompressed")
    decoded = 0
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=_PARQUET_BATCH, columns=wanted):
            arrays = {c: batch.column(c) for c in wanted}
            decoded += sum(_decoded_size(pa, a) for a in arrays.values())
            for c, a in arrays.items():
                longest, at = _longest_text(pa, a)
                if longest > MAX_CELL_CHARS:
                    raise cell_too_long(path, f"row {row + at + 1}", f"column {c!r}", longest)
            if decoded > limits.bytes:
                raise limits.too_many_bytes(path, f"the columns read decode to more than {decoded:,} bytes "
                                                  f"by row {row + batch.num_rows:,}")
            if row + batch.num_rows > limits.rows:  # a footer may understate its row count
                raise limits.too_many_rows(path, f"more than {limits.rows:,}")
            data = [_to_list(pa, arrays[str(c)]) for c in columns]
            for i in range(batch.num_rows):
                row += 1
                summary.rows_read += 1
                yield f"row {row}", [col[i] for col in data]
    except DataError:
        raise
    except Exception as e:  # a corrupt page surfaces only when it is read
        raise DataError(f"{path}: row {row + 1}: unreadable Parquet data: {e}") from None


def _is_text_type(pa: Any, t: Any) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or \
        pa.types.is_large_binary(t)


def _to_list(pa: Any, arr: Any) -> list[Any]:
    """Python values of a column batch; a dictionary's values are made once, then shared."""
    if pa.types.is_dictionary(arr.type):
        if len(arr.dictionary) > len(arr):  # a row group's dictionary, most of it unused here
            return arr.dictionary.take(arr.indices).to_pylist()
        values = arr.dictionary.to_pylist()  # DictionaryArray.to_pylist is ~100x slower
        return [None if i is None else values[i] for i in arr.indices.to_pylist()]
    return arr.to_pylist()


def _longest_text(pa: Any, arr: Any) -> tuple[int, int]:
    """(characters, index) of the longest string in a batch column; (0, 0) for other types."""
    import pyarrow.compute as pc

    def is_str(t: Any) -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    if pa.types.is_dictionary(arr.type) and is_str(arr.type.value_type):
        lengths = pc.take(pc.utf8_length(arr.dictionary), arr.indices)
    elif is_str(arr.type):
        lengths = pc.utf8_length(arr)
    else:
        return 0, 0
    longest = pc.max(lengths).as_py()
    if not longest:
        return 0, 0
    return int(longest), int(pc.index(lengths, longest).as_py())


def _decoded_size(pa: Any, arr: Any) -> int:
    """Bytes the values of ``arr`` take once decoded (a dictionary's values counted per use)."""
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type) and _is_text_type(pa, arr.type.value_type):
        lengths = pc.take(pc.binary_length(arr.dictionary), arr.indices)
        return int(pc.sum(lengths).as_py() or 0) + len(arr)
    if _is_text_type(pa, arr.type):
        return int(pc.sum(pc.binary_length(arr)).as_py() or 0) + len(arr)
    return int(arr.nbytes)


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq  # optional: only Parquet needs it
    except ImportError:
        raise LangAlignError("reading or writing Parquet needs pyarrow: pip install 'langalign[parquet]'") from None
    return pq


def iter_records(path: str | os.PathLike, columns: Sequence[Column], format: str | None = None,
                 summary: ReadSummary | None = None, max_rows: int | None = None,
                 max_bytes: int | None = None) -> Iterator[tuple[str, list[Any]]]:
    """Yield ``(where, values)`` for each data row, ``values`` in the order of ``columns``.

    ``where`` is ``"line N"`` (TSV/CSV/JSONL) or ``"row N"`` (Parquet) for messages.
    Raises DataError for a missing file, column, bad bytes or malformed rows, and
    for a file beyond ``max_rows`` / ``max_bytes`` (default :data:`MAX_ROWS`,
    :data:`MAX_BYTES`, or ``$LANGALIGN_MAX_ROWS`` / ``$LANGALIGN_MAX_BYTES``).
    """
    p = _existing_file(path, "data file")
    fmt = detect_format(p, format)
    limits = _Limits(max_rows, max_bytes)
    summary = summary if summary is not None else ReadSummary(origin=str(p))
    if fmt in ("tsv", "csv"):
        rows = _iter_delimited(p, fmt, columns, summary, limits)
    elif fmt in ("jsonl", "json"):
        rows = _iter_json(p, fmt, columns, summary, limits)
    else:
        rows = _iter_parquet(p, columns, summary, limits)
    return rows


def as_text(path: Any, where: str, col: Column, value: Any) -> str:
    """A cell as text: None -> "", a string as is, anything else a :class:`DataError` naming file, row and column."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{path}: {where}: column {col!r} holds {type(value).__name__} {value!r}, expected text")
    return value
