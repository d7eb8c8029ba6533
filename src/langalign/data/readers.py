"""Readers and writers for parallel and labelled text files (TSV, CSV, JSON Lines, Parquet).

Every problem is reported as a :class:`~langalign.errors.DataError` naming the
file and the line (or row), and every row a reader drops is counted in the
returned :class:`ReadSummary`; nothing is dropped silently.

Conventions (formats, decoding and the input limits: :mod:`langalign.data.records`):

* Texts are Unicode-normalised (NFC by default; ``normalize=None`` disables it)
  and stripped of leading/trailing whitespace.
* The TSV writer refuses texts with a tab or a line break rather than mangling
  them (TSV is read without quote handling); use CSV or JSON Lines for those.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_path
from ..errors import DataError
from .corpus import DUPLICATE, EMPTY, EMPTY_LABEL, IDENTICAL, LabelledDataset, ParallelCorpus, ReadSummary
from .records import Column, _check_normal_form, _pyarrow_parquet, as_text, detect_format, iter_records, normalize_text

log = logging.getLogger("langalign.data")


# ---------------------------------------------------------------- cleaning

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
                  extra_columns: Sequence[Column] = (), max_rows: int | None = None,
                  max_bytes: int | None = None) -> ParallelCorpus:
    """Read a parallel corpus: one translation pair per row.

    ``extra_columns`` are returned unchanged in ``meta`` as per-row lists
    (for example ``("label",)``). Empty pairs are dropped and counted (or raise
    with ``strict=True``); duplicate pairs and pairs whose two sides are
    identical are dropped and counted unless ``dedupe``/``drop_identical`` is False.
    ``max_rows`` / ``max_bytes`` raise the limits on one file (see the module notes).
    """
    summary = ReadSummary(origin=str(path))
    cleaner = PairCleaner(summary, normalize=normalize, strict=strict, dedupe=dedupe,
                          drop_identical=drop_identical)
    src: list[str] = []
    tgt: list[str] = []
    extras: dict[str, list[Any]] = {str(c): [] for c in extra_columns}
    for where, values in iter_records(path, [source, target, *extra_columns], format, summary, max_rows,
                                      max_bytes):
        pair = cleaner.clean(where, as_text(path, where, source, values[0]),
                             as_text(path, where, target, values[1]))
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
                  normalize: str | None = "NFC", extra_columns: Sequence[Column] = (),
                  max_rows: int | None = None, max_bytes: int | None = None) -> LabelledDataset:
    """Read labelled texts (or text pairs, with ``text_pair``): one example per row.

    Labels are returned as found (str for TSV/CSV, native JSON/Parquet values),
    stripped when they are strings. A label is a string or an integer, one type per
    file (:mod:`langalign._labels`): a NaN, float or boolean label, or a file mixing
    ``1`` and ``"1"``, is a DataError naming the line. Rows with an empty text or label are dropped
    and counted (or raise with ``strict=True``). Labelled sets are not deduplicated:
    a benchmark's examples are kept as published. ``max_rows`` / ``max_bytes`` as in
    :func:`read_parallel`.
    """
    _check_normal_form(normalize)
    summary = ReadSummary(origin=str(path))
    cols: list[Column] = [text, label] + ([text_pair] if text_pair is not None else []) + list(extra_columns)
    texts: list[str] = []
    labels: list[Any] = []
    pairs: list[str] | None = [] if text_pair is not None else None
    extras: dict[str, list[Any]] = {str(c): [] for c in extra_columns}
    n_fixed = 3 if text_pair is not None else 2
    first_label: tuple[str, Any] | None = None
    for where, values in iter_records(path, cols, format, summary, max_rows, max_bytes):
        t = normalize_text(as_text(path, where, text, values[0]), normalize)
        lab = values[1].strip() if isinstance(values[1], str) else values[1]
        if lab is not None and lab != "":
            first_label = _check_label(path, where, label, lab, first_label)
        tp = normalize_text(as_text(path, where, text_pair, values[2]), normalize) if text_pair is not None else "x"
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


def _check_label(path: Any, where: str, col: Column, lab: Any, first: tuple[str, Any] | None
                 ) -> tuple[str, Any]:
    """``lab`` must be a label of the same type as the file's first one; returns the first one."""
    from .._labels import describe

    why = describe(lab)
    if why is not None:
        raise DataError(f"{path}: {where}: the label in column {col!r} is {why}; a label is a string or an integer")
    if first is not None and isinstance(first[1], str) != isinstance(lab, str):
        kind = "a string" if isinstance(lab, str) else "an integer"
        raise DataError(f"{path}: {where}: label {lab!r} is {kind} but the label at {first[0]} is {first[1]!r}; "
                        "one file's labels must be all strings or all integers (1 and \"1\" are never merged)")
    return first if first is not None else (where, lab)


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
