"""The small typed containers every loader returns, and the record of what was dropped.

Per-row extras (a label per pair, a page per pair, an ``index_id`` per example)
live in ``meta`` as lists the same length as the data, so subsetting keeps
them aligned; other ``meta`` entries (a language code, a split name) are scalars.
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# Reasons a row is dropped (or flagged and kept). One vocabulary for every reader,
# so summaries from different sources read the same way.
EMPTY = "empty text"
EMPTY_LABEL = "empty label"
BLANK_LINE = "blank line"
DUPLICATE = "duplicate"
IDENTICAL = "identical sides"
TOO_SHORT = "too short"


@dataclass
class ReadSummary:
    """What a reader saw: rows read, rows kept, rows dropped by reason.

    ``flagged`` counts rows that were noticed but kept on purpose (for example
    identical source/target pairs in a benchmark loaded with ``drop_identical=False``),
    so that nothing is either dropped or accepted silently.
    """

    origin: str = ""
    rows_read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def flag(self, reason: str, n: int = 1) -> None:
        self.flagged[reason] = self.flagged.get(reason, 0) + n

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "rows_read": self.rows_read, "kept": self.kept,
                "dropped": dict(self.dropped), "flagged": dict(self.flagged)}

    def __str__(self) -> str:
        where = f" from {self.origin}" if self.origin else ""
        text = f"read {self.rows_read:,} rows{where}: kept {self.kept:,}"
        if self.dropped:
            parts = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.dropped.items()))
            text += f", dropped {self.total_dropped:,} ({parts})"
        else:
            text += ", dropped 0"
        if self.flagged:
            parts = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.flagged.items()))
            text += f"; kept but flagged: {parts}"
        return text


def _subset_meta(meta: dict[str, Any] | None, n: int, idx: Sequence[int]) -> dict[str, Any] | None:
    if meta is None:
        return None
    out: dict[str, Any] = {}
    for k, v in meta.items():
        out[k] = [v[i] for i in idx] if isinstance(v, list) and len(v) == n else v
    return out


def _check_meta(meta: dict[str, Any] | None, n: int, what: str) -> None:
    if not meta:
        return
    for k, v in meta.items():
        if isinstance(v, list) and len(v) != n and n > 0 and len(v) > 0:
            raise ValueError(f"{what}: meta[{k!r}] has {len(v)} entries for {n} rows")


def _sample_indices(n: int, max_examples: int | None, seed: int) -> list[int] | None:
    if max_examples is None or max_examples >= n:
        return None
    if max_examples < 0:
        raise ValueError(f"max_examples must be >= 0, got {max_examples}")
    return sorted(random.Random(seed).sample(range(n), max_examples))


@dataclass
class ParallelCorpus:
    """Row-aligned translations: ``source[i]`` and ``target[i]`` say the same thing."""

    source: list[str]
    target: list[str]
    meta: dict[str, Any] | None = None
    summary: ReadSummary = field(default_factory=ReadSummary)

    def __post_init__(self) -> None:
        if len(self.source) != len(self.target):
            raise ValueError(f"source has {len(self.source)} texts but target has {len(self.target)}")
        _check_meta(self.meta, len(self.source), "ParallelCorpus")

    def __len__(self) -> int:
        return len(self.source)

    def pairs(self) -> Iterator[tuple[str, str]]:
        return zip(self.source, self.target, strict=True)

    def subset(self, indices: Sequence[int]) -> ParallelCorpus:
        idx = list(indices)
        return ParallelCorpus([self.source[i] for i in idx], [self.target[i] for i in idx],
                              _subset_meta(self.meta, len(self), idx), self.summary)

    def sample(self, max_examples: int | None, seed: int = 0) -> ParallelCorpus:
        """A seeded random subset of at most ``max_examples`` rows, in original order."""
        idx = _sample_indices(len(self), max_examples, seed)
        return self if idx is None else self.subset(idx)


@dataclass
class LabelledDataset:
    """Texts (or text pairs, for NLI/STS) with one label each; STS labels are floats."""

    texts: list[str]
    labels: list[Any]
    text_pairs: list[str] | None = None
    meta: dict[str, Any] | None = None
    summary: ReadSummary = field(default_factory=ReadSummary)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if self.text_pairs is not None and len(self.text_pairs) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.text_pairs)} text_pairs")
        _check_meta(self.meta, len(self.texts), "LabelledDataset")

    def __len__(self) -> int:
        return len(self.texts)

    def label_counts(self) -> dict[Any, int]:
        return dict(sorted(Counter(self.labels).items(), key=lambda kv: str(kv[0])))

    def subset(self, indices: Sequence[int]) -> LabelledDataset:
        idx = list(indices)
        pairs = None if self.text_pairs is None else [self.text_pairs[i] for i in idx]
        return LabelledDataset([self.texts[i] for i in idx], [self.labels[i] for i in idx], pairs,
                               _subset_meta(self.meta, len(self), idx), self.summary)

    def sample(self, max_examples: int | None, seed: int = 0) -> LabelledDataset:
        """A seeded random subset of at most ``max_examples`` rows, in original order."""
        idx = _sample_indices(len(self), max_examples, seed)
        return self if idx is None else self.subset(idx)
