"""Loaders for the paper's evaluation tasks over the shared reference data.

Each returns a :class:`LabelledDataset`; NLI and STS carry ``text_pairs``
(premise/hypothesis, sentence1/sentence2). Labels are normalised:

* NLI: ``"entailment"``, ``"neutral"``, ``"contradiction"``
* sentiment: ``"positive"``, ``"negative"``
* STS: float similarity scores 0-5

Which file serves which (language, split) is in the ``_*_SOURCES`` tables
below; English is the training language, Korean/Japanese/Chinese the test
languages. Every loader takes ``max_examples``/``seed`` for a seeded subsample
(original order kept) and ``root`` to point at another copy of the data.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DataError
from .corpus import TOO_SHORT, LabelledDataset, ParallelCorpus, ReadSummary
from .home import find_reference_data
from .langcodes import normalize_lang
from .readers import PairCleaner, read_labelled
from .records import decode_utf8, normalize_text, split_lines

NLI_LABELS = ("entailment", "neutral", "contradiction")
SENTIMENT_LABELS = ("positive", "negative")
NEUTRAL_DROPPED = "neutral (binary task)"
_NLI_ALIASES = {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction",
                "contradictory": "contradiction"}
SST2_MIN_WORDS = 6


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root) if root is not None else find_reference_data()


def _finish(ds: LabelledDataset, max_examples: int | None, seed: int, **meta: Any) -> LabelledDataset:
    ds.meta = {**(ds.meta or {}), **meta}
    return ds.sample(max_examples, seed)


def _filter(ds: LabelledDataset, keep: Callable[[int], bool], reason: str) -> LabelledDataset:
    """Keep the rows where ``keep(i)``; count the others in the summary under ``reason``."""
    idx = [i for i in range(len(ds)) if keep(i)]
    dropped = len(ds) - len(idx)
    out = ds.subset(idx)
    if dropped:
        out.summary.drop(reason, dropped)
        out.summary.kept -= dropped
    return out


def _map_labels(ds: LabelledDataset, mapping: dict[str, Any], path: Path) -> LabelledDataset:
    labels = []
    for lab in ds.labels:
        key = str(lab).strip().lower()
        if key not in mapping:
            raise DataError(f"{path}: unexpected label {lab!r}; expected one of {', '.join(sorted(mapping))}")
        labels.append(mapping[key])
    ds.labels = labels
    return ds


def _split_check(split: str, table: dict[tuple[str, str], Any], lang: str, task: str) -> Any:
    key = (lang, split)
    if key not in table:
        have = ", ".join(f"{l}/{s}" for l, s in table)
        raise DataError(f"no {task} data for language {lang!r} split {split!r}; available: {have}")
    return table[key]


# ---------------------------------------------------------------- NLI

def _snli(root: Path) -> LabelledDataset:
    """SNLI dev + test from the e-SNLI one-item-per-line files: 19,666 pairs."""
    folder = root / "nli" / "snli_esnli"
    summary = ReadSummary(origin=str(folder / "{s1,s2,labels}.{dev,test}"))
    texts: list[str] = []
    pairs: list[str] = []
    labels: list[str] = []
    for part in ("dev", "test"):
        cols = []
        for name in ("s1", "s2", "labels"):
            p = folder / f"{name}.{part}"
            if not p.is_file():
                raise DataError(f"{p}: no such file")
            cols.append(split_lines(decode_utf8(p.read_bytes(), p)))
        if not len(cols[0]) == len(cols[1]) == len(cols[2]):
            raise DataError(f"{folder}: s1/s2/labels.{part} have {len(cols[0])}/{len(cols[1])}/{len(cols[2])} "
                            f"lines; they must be line-aligned")
        for a, b, lab in zip(*cols, strict=True):
            summary.rows_read += 1
            a, b, lab = normalize_text(a), normalize_text(b), lab.strip().lower()
            if not a or not b or lab not in _NLI_ALIASES:
                summary.drop("empty text" if not a or not b else "unknown label")
                continue
            texts.append(a)
            pairs.append(b)
            labels.append(_NLI_ALIASES[lab])
            summary.kept += 1
    return LabelledDataset(texts, labels, pairs, None, summary)


def _nli_file(path: Path, text: Any, pair: Any, label: Any, fmt: str | None = None) -> LabelledDataset:
    ds = read_labelled(path, text=text, text_pair=pair, label=label, format=fmt)
    return _map_labels(ds, _NLI_ALIASES, path)


def _xnli_zh(path: Path) -> LabelledDataset:
    # label_map.json gives the ids; labels may be names or ids, both map to the canonical names.
    label_map = json.loads((path.parent / "label_map.json").read_text(encoding="utf-8"))
    by_id: dict[int, str] = {}
    for name, i in label_map.items():
        by_id.setdefault(int(i), _NLI_ALIASES[name])
    mapping = {name.lower(): _NLI_ALIASES[name] for name in label_map}
    mapping.update({str(i): name for i, name in by_id.items()})
    ds = read_labelled(path, text="text_a", text_pair="text_b", label="label")
    return _map_labels(ds, mapping, path)


_NLI_SOURCES: dict[tuple[str, str], Callable[[Path], LabelledDataset]] = {
    ("en", "train"): _snli,
    ("en", "dev"): lambda r: _nli_file(r / "nli/xnli_xtreme/dev-en.tsv", 0, 1, 2),
    ("ko", "dev"): lambda r: _nli_file(r / "nli/kornli/xnli.dev.ko.tsv", "sentence1", "sentence2", "gold_label"),
    ("ko", "test"): lambda r: _nli_file(r / "nli/kornli/xnli.test.ko.tsv", "sentence1", "sentence2", "gold_label"),
    ("ja", "dev"): lambda r: _nli_file(r / "nli/jnli/valid-v1.3.json", "sentence1", "sentence2", "label", "jsonl"),
    ("ja", "test"): lambda r: _nli_file(r / "nli/jnli/test-v1.3.json", "sentence1", "sentence2", "label", "jsonl"),
    ("zh", "dev"): lambda r: _xnli_zh(r / "nli/xnli_zh_ernie/dev.tsv"),
    ("zh", "test"): lambda r: _xnli_zh(r / "nli/xnli_zh_ernie/test.tsv"),
}


def load_nli(lang: str, split: str, *, max_examples: int | None = None, seed: int = 0,
             root: str | os.PathLike | None = None) -> LabelledDataset:
    """3-way NLI: en/train = SNLI dev+test (19,666); ko/test = KorNLI (5,010); ja/test = JNLI (2,508);
    zh/test = XNLI-zh (5,010). Dev sets: en = XNLI dev-en, ko = KorNLI dev, ja = JNLI valid, zh = XNLI-zh dev."""
    code = normalize_lang(lang)
    loader = _split_check(split, _NLI_SOURCES, code, "NLI")
    return _finish(loader(_root(root)), max_examples, seed, task="nli", lang=code, split=split)


def load_xnli_dev_parallel(lang: str, *, dedupe: bool = True, root: str | os.PathLike | None = None
                           ) -> ParallelCorpus:
    """English-``lang`` parallel sentences from the row-aligned XNLI dev sets (premises and hypotheses).

    The rows are checked to be aligned (identical label sequence, same row
    count); a mismatch raises DataError. Premises repeat over three rows, so
    with ``dedupe`` (default) each pair is kept once; repeats are counted.
    ``meta``: per-pair ``row`` (0-based XNLI dev row), ``field`` (premise/hypothesis), ``label``.
    """
    code = normalize_lang(lang)
    r = _root(root)
    sources = {"zh": lambda: _nli_file(r / "nli/xnli_xtreme/dev-zh.tsv", 0, 1, 2),
               "ko": lambda: _nli_file(r / "nli/kornli/xnli.dev.ko.tsv", "sentence1", "sentence2", "gold_label")}
    if code not in sources:
        raise DataError(f"no XNLI dev translation for {code!r}; available: {', '.join(sources)}")
    en = _nli_file(r / "nli/xnli_xtreme/dev-en.tsv", 0, 1, 2)
    other = sources[code]()
    if len(en) != len(other) or en.labels != other.labels:
        raise DataError(f"XNLI dev en and {code} are not row-aligned ({len(en)} vs {len(other)} rows, "
                        f"labels {'differ' if len(en) == len(other) else 'not comparable'})")
    assert en.text_pairs is not None and other.text_pairs is not None
    summary = ReadSummary(origin=f"XNLI dev en-{code}")
    cleaner = PairCleaner(summary, dedupe=dedupe, drop_identical=True)
    src, tgt, rows, fields, labels = [], [], [], [], []
    for field, a, b in (("premise", en.texts, other.texts), ("hypothesis", en.text_pairs, other.text_pairs)):
        for i, (s, t) in enumerate(zip(a, b, strict=True)):
            summary.rows_read += 1
            pair = cleaner.clean(f"row {i + 1} {field}", s, t)
            if pair is None:
                continue
            src.append(pair[0])
            tgt.append(pair[1])
            rows.append(i)
            fields.append(field)
            labels.append(en.labels[i])
    return ParallelCorpus(src, tgt, {"row": rows, "field": fields, "label": labels, "lang": code}, summary)


# ---------------------------------------------------------------- sentiment

_BINARY = {"1": "positive", "0": "negative", "positive": "positive", "negative": "negative",
           "pos": "positive", "neg": "negative"}


def _binary_file(path: Path, text: str, label: str, fmt: str | None = None) -> LabelledDataset:
    return _map_labels(read_labelled(path, text=text, label=label, format=fmt), _BINARY, path)


def _sst2(path: Path, min_words: int) -> LabelledDataset:
    ds = _binary_file(path, "sentence", "label")
    if min_words:
        ds = _filter(ds, lambda i: len(ds.texts[i].split()) >= min_words, f"{TOO_SHORT} (< {min_words} words)")
    return ds


def _jrte(path: Path, split: str) -> LabelledDataset:
    """JRTE pn.tsv (no header: id, label, text, judges, usage); neutral (0) dropped and counted."""
    ds = read_labelled(path, text=2, label=1, extra_columns=(4, 0))
    # extra columns are keyed by their position, as strings
    assert ds.meta is not None
    ds.meta = {"usage": ds.meta.pop("4"), "id": ds.meta.pop("0")}
    if split != "all":
        usage = ds.meta["usage"]
        ds = _filter(ds, lambda i: usage[i] == split, f"other split than {split}")
    ds = _filter(ds, lambda i: ds.labels[i] != "0", NEUTRAL_DROPPED)
    return _map_labels(ds, {"1": "positive", "-1": "negative"}, path)


_SENTIMENT_SOURCES: dict[tuple[str, str], Callable[[Path, int], LabelledDataset]] = {
    ("en", "train"): lambda r, w: _sst2(r / "sentiment/sst2/train.tsv", w),
    ("en", "dev"): lambda r, w: _sst2(r / "sentiment/sst2/dev.tsv", w),
    # the folder's test.tsv is the official GLUE SST-2 dev set (872 full sentences)
    ("en", "test"): lambda r, w: _sst2(r / "sentiment/sst2/test.tsv", 0),
    ("ko", "test"): lambda r, w: _binary_file(r / "sentiment/nsmc/ratings_test.txt", "document", "label", "tsv"),
    ("ja", "train"): lambda r, w: _jrte(r / "sentiment/jrte_pn/pn.tsv", "train"),
    ("ja", "dev"): lambda r, w: _jrte(r / "sentiment/jrte_pn/pn.tsv", "dev"),
    ("ja", "test"): lambda r, w: _jrte(r / "sentiment/jrte_pn/pn.tsv", "test"),
    ("ja", "all"): lambda r, w: _jrte(r / "sentiment/jrte_pn/pn.tsv", "all"),
    ("zh", "train"): lambda r, w: _binary_file(r / "sentiment/chnsenticorp/train.tsv", "text_a", "label"),
    ("zh", "dev"): lambda r, w: _binary_file(r / "sentiment/chnsenticorp/dev.tsv", "text_a", "label"),
    ("zh", "test"): lambda r, w: _binary_file(r / "sentiment/chnsenticorp/test.tsv", "text_a", "label"),
}


def load_sentiment(lang: str, split: str, *, max_examples: int | None = None, seed: int = 0,
                   min_words: int = SST2_MIN_WORDS, root: str | os.PathLike | None = None) -> LabelledDataset:
    """Binary sentiment: en/train = SST-2 train sentences of ``min_words``+ words (phrases dropped,
    counted); en/test = GLUE SST-2 dev (872; the folder's test.tsv); ko/test = NSMC (50,000);
    ja/test = JRTE pn.tsv usage=test without neutral (``split="all"``: every usage); zh/test = ChnSentiCorp."""
    code = normalize_lang(lang)
    loader = _split_check(split, _SENTIMENT_SOURCES, code, "sentiment")
    return _finish(loader(_root(root), min_words), max_examples, seed, task="sentiment", lang=code, split=split)


# ---------------------------------------------------------------- STS

def _stsb_csv(path: Path) -> LabelledDataset:
    return _scores(read_labelled(path, text=0, text_pair=1, label=2, format="csv"), path)


def _korsts(path: Path) -> LabelledDataset:
    return _scores(read_labelled(path, text="sentence1", text_pair="sentence2", label="score"), path)


def _scores(ds: LabelledDataset, path: Path) -> LabelledDataset:
    out = []
    for lab in ds.labels:
        try:
            out.append(float(lab))
        except ValueError:
            raise DataError(f"{path}: similarity score {lab!r} is not a number") from None
    ds.labels = out
    return ds


def load_sts(lang: str, split: str, *, max_examples: int | None = None, seed: int = 0,
             root: str | os.PathLike | None = None) -> LabelledDataset:
    """STS-B similarity (0-5 float labels): en/ja/zh from stsb_multi_mt, ko from KorSTS;
    splits train/dev/test = 5,749 / 1,500 / 1,379, row-parallel across languages."""
    code = normalize_lang(lang)
    if split not in ("train", "dev", "test"):
        raise DataError(f"unknown STS split {split!r}; expected train, dev or test")
    r = _root(root)
    if code == "ko":
        ds = _korsts(r / "sts/korsts" / f"sts-{split}.tsv")
    elif code in ("en", "ja", "zh"):
        ds = _stsb_csv(r / "sts/stsb_multi_mt" / f"stsb-{code}-{split}.csv")
    else:
        raise DataError(f"no STS data for {code!r}; available: en, ko, ja, zh")
    return _finish(ds, max_examples, seed, task="sts", lang=code, split=split)


__all__ = ["load_nli", "load_xnli_dev_parallel", "load_sentiment", "load_sts", "NLI_LABELS",
           "SENTIMENT_LABELS"]
