"""Head defaults from a dev protocol: preprocessing x regularisation, chosen on train/dev splits only.

Compares ``LogisticRegressionHead`` preprocessing (L2-normalise on/off, standardise
on/off, centre only) and C over several tasks with the ``use-multilingual`` encoder:
an English-trained head applied to target-language text (zero-shot), and, where
in-domain pairs are cheap, through the default Rev-LangAlign aligner.

Only ``train`` and ``dev`` splits are ever loaded (:func:`load_split` refuses
anything else, and SNLI is read from its dev files alone), so nothing here can be
tuned on a test set:

* SIB-200: 5-fold cross-validation over the 800 train+dev sentences (the same
  ``index_id`` is the same sentence in every language): the head learns on the
  English rows of four folds and is scored on the en/ko/ja/zh rows of the fifth;
  the reverse aligner is fitted on 300 pairs drawn from the four training folds.
* sentiment: SST-2 train (seeded 10,000 of the 6+ word sentences) -> SST-2 dev
  (en, seeded 2,000), JRTE dev (ja), ChnSentiCorp dev (zh); NSMC (ko) has no dev split.
* NLI: SNLI *dev* (seeded 5,000 of 9,842 pairs) -> XNLI dev-en, KorNLI dev,
  JNLI valid, XNLI-zh dev (seeded 1,000 pairs each); macro-F1 (JNLI is skewed).
* LibreOffice help modules: English sides of a seeded 4,000 en-ko train pairs ->
  the dev split (pages disjoint from train; seeded 1,000 per language); macro-F1;
  reverse aligner on a seeded 2,000 train pairs per language.
* STS does not apply: it trains no head (cosine similarity of the raw vectors).

The default is the configuration with the best mean rank over all columns,
among those never more than ``--max-gap`` points below the best of a column
(so a setting that wins one set and loses elsewhere is not chosen).

    python bench/head_protocol.py --out results            # writes head_protocol.md / .json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np

import langalign as la
from langalign.scale.cache import CachedEncoder
from langalign.data import (load_libreoffice_help, load_nli, load_sentiment, load_sib200)
from langalign.data.home import find_reference_data
from langalign.data.records import normalize_text
from langalign.evaluation import classification_report
from langalign.heads import LogisticRegressionHead, MLPHead, pair_features
from langalign.mappers import make_mapper

LANGS = ("ko", "ja", "zh")
ALLOWED_SPLITS = ("train", "dev")
SST2_TRAIN = 10_000
SST2_DEV = 2_000
SNLI_TRAIN = 5_000
NLI_DEV = 1_000
LO_TRAIN = 4_000
LO_PAIRS = 2_000
LO_DEV = 1_000
SIB_FOLDS = 5
SIB_PAIRS = 300

# (name, normalize, standardize, centre): centre = subtract the training mean, no scaling.
PREPS = [
    ("raw", False, False, False),
    ("centre", False, False, True),
    ("l2", True, False, False),
    ("l2+centre", True, False, True),
    ("std", False, True, False),
    ("l2+std", True, True, False),
]
CS = [0.1, 0.3, 1.0, 3.0, 10.0]
OLD_DEFAULT = ("l2+std", 1.0)


def library_option(config: str) -> bool:
    """Configs a library default may take (the rest are in the table for reference).

    * L2-normalised only: a default must serve encoders whose vectors have any norm. On
      unnormalised inputs scaled by s, a logistic regression with C behaves like one with
      C * s^2 on the unscaled inputs, so its best C depends on the encoder (in the table,
      ``raw C=10`` is ``raw C=3`` on vectors 1.8x longer) and on how much a map shrinks them.
    * no ``centre``: with an unpenalised intercept it is the same model as without (the
      table shows the equivalence), so it is not a separate option.
    """
    prep = config.split(" ")[0]
    return prep.startswith("l2") and "centre" not in prep
MLP_PREPS = [("l2+std", True, True), ("l2", True, False), ("raw", False, False)]


def load_split(loader: Callable[..., Any], lang: str, split: str, **kw: Any) -> Any:
    """Every data access goes through here: a test split is never read by this protocol."""
    if split not in ALLOWED_SPLITS:
        raise RuntimeError(f"the dev protocol reads train/dev splits only, not {split!r}")
    return loader(lang, split, **kw)


def snli_dev(root: Path) -> tuple[list[str], list[str], list[str]]:
    """SNLI dev alone (the project's ``load_nli('en', 'train')`` is SNLI dev + *test*)."""
    folder = root / "nli" / "snli_esnli"
    cols = [(folder / f"{name}.dev").read_text(encoding="utf-8").split("\n") for name in ("s1", "s2", "labels")]
    a, b, y = [], [], []
    for s1, s2, lab in zip(*cols, strict=True):
        s1, s2, lab = normalize_text(s1), normalize_text(s2), lab.strip().lower()
        if s1 and s2 and lab in ("entailment", "neutral", "contradiction"):
            a.append(s1)
            b.append(s2)
            y.append(lab)
    return a, b, y


def seeded(n_total: int, n: int, seed: int) -> list[int]:
    if n >= n_total:
        return list(range(n_total))
    return sorted(random.Random(seed).sample(range(n_total), n))


class Vectors:
    """Encode each text once: the on-disk embedding cache plus an in-process memo."""

    def __init__(self, encoder: str = "use-multilingual"):
        self.enc = CachedEncoder(la.load_encoder(encoder))
        self.memo: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if todo:
            t0 = time.perf_counter()
            for t, v in zip(todo, self.enc.encode(todo), strict=True):
                self.memo[t] = v
            self.seconds += time.perf_counter() - t0
        return np.stack([self.memo[t] for t in texts]) if texts else np.empty((0, self.enc.dim), np.float32)

    def pairs(self, a: list[str], b: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return self(a), self(b)


@dataclass
class Fold:
    """One training set and the sets its head is scored on (column -> (features, labels))."""

    X: np.ndarray
    y: list[Any]
    evals: dict[str, tuple[np.ndarray, list[Any]]] = field(default_factory=dict)
    # column -> its own training vectors (forward LangAlign: the English vectors mapped to the target space)
    train_for: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DevTask:
    name: str
    metric: str
    folds: list[Fold]
    notes: list[str] = field(default_factory=list)


def _reverse(Xp: np.ndarray, Yp: np.ndarray, mapper: str = "default") -> Any:
    """The target -> English map of the benchmark's Rev-LangAlign default (LinearMapper, CV toward
    the identity, all pairs used for fitting)."""
    return make_mapper(mapper).fit(Yp, Xp)


def _forward(Xp: np.ndarray, Yp: np.ndarray, mapper: str = "default") -> Any:
    """The English -> target map of the default aligner (forward LangAlign)."""
    return make_mapper(mapper).fit(Xp, Yp)


def sib200_data(vec: Vectors, root: Path, seed: int) -> tuple[dict[str, np.ndarray], list[str], np.ndarray]:
    """SIB-200 train+dev joined on ``index_id``: vectors per language, labels, and each row's CV fold."""
    sets = {lang: [load_split(load_sib200, lang, s, root=root / "sib200") for s in ALLOWED_SPLITS]
            for lang in ("en", *LANGS)}
    by_id: dict[str, dict[str, tuple[str, str]]] = {}
    for lang, parts in sets.items():
        by_id[lang] = {i: (t, lab) for ds in parts
                       for i, t, lab in zip(ds.meta["index_id"], ds.texts, ds.labels, strict=True)}
    ids = sorted(by_id["en"])
    for lang in LANGS:
        assert set(by_id[lang]) == set(ids), f"SIB-200 {lang} does not share the English index_ids"
    labels = [by_id["en"][i][1] for i in ids]
    V = {lang: vec([by_id[lang][i][0] for i in ids]) for lang in ("en", *LANGS)}
    order = np.random.default_rng(seed).permutation(len(ids))
    fold_of = np.empty(len(ids), dtype=int)
    fold_of[order] = np.arange(len(ids)) % SIB_FOLDS
    return V, labels, fold_of


def sib200_pairs(fold_of: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Rows whose en/xx sentences are the aligner's pairs in fold ``k``: from its training folds only."""
    return np.sort(np.random.default_rng(seed + k).permutation(np.flatnonzero(fold_of != k))[:SIB_PAIRS])


def sib200_task(vec: Vectors, root: Path, seed: int, reverse: bool = True) -> DevTask:
    V, labels, fold_of = sib200_data(vec, root, seed)
    folds = []
    for k in range(SIB_FOLDS):
        tr, te = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        f = Fold(V["en"][tr], [labels[i] for i in tr])
        y_te = [labels[i] for i in te]
        f.evals["en"] = (V["en"][te], y_te)
        for lang in LANGS:
            f.evals[lang] = (V[lang][te], y_te)
        if reverse:
            pick = sib200_pairs(fold_of, k, seed)
            for lang in LANGS:
                rev = _reverse(V["en"][pick], V[lang][pick])
                f.evals[f"{lang} rev"] = (rev.transform(V[lang][te]), y_te)
                f.evals[f"{lang} fwd"] = (V[lang][te], y_te)
                f.train_for[f"{lang} fwd"] = _forward(V["en"][pick], V[lang][pick]).transform(f.X)
        folds.append(f)
    return DevTask("sib200", "accuracy", folds,
                   [f"{SIB_FOLDS}-fold CV over SIB-200 train+dev ({len(labels)} sentences); rev/fwd = default "
                    f"aligner on {SIB_PAIRS} pairs from the training folds"])


def sentiment_task(vec: Vectors, root: Path, seed: int) -> DevTask:
    tr = load_split(load_sentiment, "en", "train", root=root).sample(SST2_TRAIN, seed)
    f = Fold(vec(list(tr.texts)), list(tr.labels))
    en = load_split(load_sentiment, "en", "dev", root=root).sample(SST2_DEV, seed)
    f.evals["en"] = (vec(list(en.texts)), list(en.labels))
    for lang in ("ja", "zh"):
        ds = load_split(load_sentiment, lang, "dev", root=root)
        f.evals[lang] = (vec(list(ds.texts)), list(ds.labels))
    return DevTask("sentiment", "accuracy", [f],
                   [f"SST-2 train: seeded {len(tr):,} sentences of 6+ words; en dev: seeded {len(en):,} of the "
                    "SST-2 dev split; ja = JRTE dev (neutral dropped), zh = ChnSentiCorp dev; ko has no dev set"])


def _pair_feats(vec: Vectors, a: list[str], b: list[str], transform=None) -> np.ndarray:
    U, W = vec.pairs(a, b)
    if transform is not None:
        U, W = transform(U), transform(W)
    return pair_features(U, W)


def nli_task(vec: Vectors, root: Path, seed: int) -> DevTask:
    a, b, y = snli_dev(root)
    idx = seeded(len(a), SNLI_TRAIN, seed)
    f = Fold(_pair_feats(vec, [a[i] for i in idx], [b[i] for i in idx]), [y[i] for i in idx])
    for lang in ("en", *LANGS):
        ds = load_split(load_nli, lang, "dev", root=root).sample(NLI_DEV, seed)
        f.evals[lang] = (_pair_feats(vec, list(ds.texts), list(ds.text_pairs)), list(ds.labels))
    return DevTask("nli", "macro_f1", [f],
                   [f"SNLI dev: seeded {len(idx):,} of {len(a):,} pairs (never SNLI test); dev sets: XNLI dev-en, "
                    f"KorNLI dev, JNLI valid, XNLI-zh dev, seeded {NLI_DEV:,} pairs each"])


def libreoffice_task(vec: Vectors, home: Path | None, seed: int, reverse: bool = True) -> DevTask:
    tr = load_split(load_libreoffice_help, "ko", "train", home=home).sample(LO_TRAIN, seed)
    f = Fold(vec(list(tr.source)), list(tr.meta["label"]))
    labels = set(f.y)
    en = load_split(load_libreoffice_help, "ko", "dev", home=home).sample(LO_DEV, seed)
    keep = [i for i, lab in enumerate(en.meta["label"]) if lab in labels]
    f.evals["en"] = (vec([en.source[i] for i in keep]), [en.meta["label"][i] for i in keep])
    for lang in LANGS:
        dev = load_split(load_libreoffice_help, lang, "dev", home=home).sample(LO_DEV, seed)
        keep = [i for i, lab in enumerate(dev.meta["label"]) if lab in labels]
        Yd, yd = vec([dev.target[i] for i in keep]), [dev.meta["label"][i] for i in keep]
        f.evals[lang] = (Yd, yd)
        if reverse:
            par = load_split(load_libreoffice_help, lang, "train", home=home).sample(LO_PAIRS, seed)
            Xp, Yp = vec(list(par.source)), vec(list(par.target))
            f.evals[f"{lang} rev"] = (_reverse(Xp, Yp).transform(Yd), yd)
            f.evals[f"{lang} fwd"] = (Yd, yd)
            f.train_for[f"{lang} fwd"] = _forward(Xp, Yp).transform(f.X)
    return DevTask("libreoffice", "macro_f1", [f],
                   [f"English sides of a seeded {LO_TRAIN:,} en-ko train pairs; dev split (pages disjoint from "
                    f"train), seeded {LO_DEV:,} per language; rev/fwd = default aligner on a seeded {LO_PAIRS:,} "
                    "train pairs per language"])


def load_tasks(names: list[str], vec: Vectors, seed: int, home: Path | None = None,
               log: Callable[[str], None] = print) -> list[DevTask]:
    root = find_reference_data()
    builders = {"sib200": lambda: sib200_task(vec, root, seed), "sentiment": lambda: sentiment_task(vec, root, seed),
                "nli": lambda: nli_task(vec, root, seed), "libreoffice": lambda: libreoffice_task(vec, home, seed)}
    tasks = []
    for name in names:
        t0 = time.perf_counter()
        tasks.append(builders[name]())
        log(f"[{name}] ready in {time.perf_counter() - t0:.0f}s (encoding so far {vec.seconds:.0f}s)")
    return tasks


# ------------------------------------------------------------------ evaluation

def _score(metric: str, y: list[Any], pred: np.ndarray) -> float:
    return float(classification_report(list(y), list(pred))[metric])


class _Centred:
    """A head on inputs centred with the training mean (after L2-normalising, when asked)."""

    def __init__(self, head: Any, normalize: bool):
        self.head, self.normalize = head, normalize

    def _prep(self, X: np.ndarray) -> np.ndarray:
        X = X.astype(np.float64)
        return X / np.linalg.norm(X, axis=1, keepdims=True) if self.normalize else X

    def fit(self, X: np.ndarray, y: list[Any]) -> _Centred:
        Z = self._prep(X)
        self.shift = Z.mean(0)
        self.head.fit(Z - self.shift, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.head.predict(self._prep(X) - self.shift)


def logreg_factory(prep: tuple[str, bool, bool, bool], C: float | str) -> Callable[[], Any]:
    _, normalize, standardize, centre = prep
    if centre:
        return lambda: _Centred(LogisticRegressionHead(C=C, normalize=False, standardize=standardize), normalize)
    return lambda: LogisticRegressionHead(C=C, normalize=normalize, standardize=standardize)


def evaluate(task: DevTask, new_head: Callable[[], Any]) -> dict[str, float]:
    """Score of every column, over all folds; a column with its own training set gets its own head."""
    preds: dict[str, list[np.ndarray]] = {}
    gold: dict[str, list[Any]] = {}
    for f in task.folds:
        shared = new_head().fit(f.X, f.y)
        for col, (E, y) in f.evals.items():
            head = new_head().fit(f.train_for[col], f.y) if col in f.train_for else shared
            preds.setdefault(col, []).append(head.predict(E))
            gold.setdefault(col, []).extend(y)
    return {col: _score(task.metric, gold[col], np.concatenate(p)) for col, p in preds.items()}


def rank_configs(table: dict[str, dict[str, float]], max_gap: float,
                 eligible: Callable[[str], bool] = lambda c: True) -> tuple[dict[str, dict[str, float]], str]:
    """Per config: mean over target columns, task-balanced mean rank, worst gap to a column's best.

    The rank is averaged within each task first, then over tasks, so a task with many
    columns (languages x modes) does not outvote one with few. Chosen: the best such rank
    among the ``eligible`` configs whose worst gap is within ``max_gap`` of the smallest
    worst gap any config achieves (never far from the best anywhere, as far as any config can be).
    """
    configs = list(table)
    cols = list(next(iter(table.values())))
    M = np.array([[table[c][col] for col in cols] for c in configs])
    # rank 1 = best; ties share the mean rank
    ranks = np.zeros_like(M)
    for j in range(M.shape[1]):
        order = -M[:, j]
        for i in range(M.shape[0]):
            ranks[i, j] = (order < order[i]).sum() + ((order == order[i]).sum() + 1) / 2
    gaps = M.max(0) - M
    target = [j for j, col in enumerate(cols) if not col.endswith(":en")]
    tasks = list(dict.fromkeys(col.split(":")[0] for col in cols))
    by_task = [[j for j, col in enumerate(cols) if col.split(":")[0] == t] for t in tasks]
    summary = {c: {"mean_target": float(M[i, target].mean()), "mean_all": float(M[i].mean()),
                   "mean_rank": float(np.mean([ranks[i, js].mean() for js in by_task])),
                   "mean_rank_columns": float(ranks[i].mean()), "worst_gap": float(gaps[i].max())}
               for i, c in enumerate(configs)}
    floor = min(s["worst_gap"] for s in summary.values())
    ok = [c for c in configs if summary[c]["worst_gap"] <= floor + max_gap and eligible(c)]
    chosen = min(ok, key=lambda c: (summary[c]["mean_rank"], -summary[c]["mean_all"]))
    return summary, chosen


def to_markdown(table: dict[str, dict[str, float]], summary: dict[str, dict[str, float]], chosen: str,
                tasks: list[DevTask], meta: dict[str, Any]) -> str:
    cols = list(next(iter(table.values())))
    order = sorted(table, key=lambda c: summary[c]["mean_rank"])
    lines = ["# Head protocol: preprocessing x C for LogisticRegressionHead (dev splits only)", "",
             f"Encoder `use-multilingual`, seed {meta['seed']}. Columns are `task:lang` dev scores (x100; "
             "accuracy for sib200/sentiment, macro-F1 for nli/libreoffice); `rev` = through the default "
             "Rev-LangAlign aligner; the rest are zero-shot (English head on target-language vectors). "
             "`mean tgt` averages the non-English columns; `rank` is the mean rank (within each task, then "
             "over tasks); `gap` is the worst shortfall against a column's best.", "",
             f"Chosen default: **{chosen}**: the best rank among the configs a library default may take "
             "(L2-normalised, so that C means the same for every encoder; `centre` is the same model as "
             "without it) whose worst gap is within "
             f"{meta['max_gap']:.1f} points of the smallest worst gap, {100 * meta['gap_floor']:.1f}. "
             f"Best rank over all configs: {meta['best_any']}. Old default: {meta['old_default']}.", ""]
    head = ["config"] + cols + ["mean tgt", "rank", "gap"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in order:
        s = summary[c]
        mark = f"**{c}**" if c == chosen else (f"{c} (old default)" if c == meta["old_default"] else c)
        cells = [f"{100 * table[c][col]:.1f}" for col in cols]
        lines.append("| " + " | ".join([mark, *cells, f"{100 * s['mean_target']:.1f}", f"{s['mean_rank']:.1f}",
                                        f"{100 * s['worst_gap']:.1f}"]) + " |")
    lines += ["", "Data (train/dev splits only; test splits are never loaded):", ""]
    lines += [f"- {t.name} ({t.metric}): " + "; ".join(t.notes) for t in tasks]
    lines += ["- STS does not apply here: it trains no head.",
              "- `centre` subtracts the training mean only; with an unpenalised intercept (lbfgs) a logistic "
              "regression is invariant to it, so `centre` ~ `raw` and `l2+centre` ~ `l2` up to solver tolerance.",
              "", f"Command: `{meta['command']}` ({meta['seconds']:.0f}s, "
              f"of which encoding {meta['encode_seconds']:.0f}s).", ""]
    return "\n".join(lines)


def mlp_markdown(table: dict[str, dict[str, float]], summary: dict[str, dict[str, float]], chosen: str) -> str:
    cols = list(next(iter(table.values())))
    lines = ["## MLPHead preprocessing (default MLP parameters; old default: mlp l2+std)", "",
             f"Best by the same rule: **{chosen}**.", ""]
    head = ["config"] + cols + ["mean tgt", "rank", "gap"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(table, key=lambda c: summary[c]["mean_rank"]):
        s = summary[c]
        cells = [f"{100 * table[c][col]:.1f}" for col in cols]
        lines.append("| " + " | ".join([f"**{c}**" if c == chosen else c, *cells, f"{100 * s['mean_target']:.1f}",
                                        f"{s['mean_rank']:.1f}", f"{100 * s['worst_gap']:.1f}"]) + " |")
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", default="sib200,sentiment,nli,libreoffice")
    ap.add_argument("--max-gap", type=float, default=2.0, help="points; configs whose worst gap exceeds the "
                    "smallest worst gap by more are not chosen")
    ap.add_argument("--mlp", action="store_true", help="also compare MLPHead preprocessing (default MLP params)")
    ap.add_argument("--candidates", default=None,
                    help="only these configs, e.g. 'l2 C=3,l2 C=1,l2 C=cv' (C=cv: LogisticRegressionHead(C='cv'), "
                         "C chosen per training set by 5-fold CV on it); writes head_protocol_cv.{md,json}")
    ap.add_argument("--encoder", default="use-multilingual")
    args = ap.parse_args(argv)
    if args.candidates:
        return candidates_main(args, argv)
    t_start = time.perf_counter()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    vec = Vectors(args.encoder)
    tasks = load_tasks(args.tasks.split(","), vec, args.seed, log=log)
    table: dict[str, dict[str, float]] = {}
    for prep in PREPS:
        for C in CS:
            name = f"{prep[0]} C={C:g}"
            t0 = time.perf_counter()
            row: dict[str, float] = {}
            for task in tasks:
                row.update({f"{task.name}:{col}": v for col, v in evaluate(task, logreg_factory(prep, C)).items()})
            table[name] = row
            log(f"{name:<18} mean {100 * np.mean(list(row.values())):.1f}  ({time.perf_counter() - t0:.0f}s)")
    summary, chosen = rank_configs(table, args.max_gap / 100, library_option)
    old = f"{OLD_DEFAULT[0]} C={OLD_DEFAULT[1]:g}"
    mlp_table, mlp_summary, mlp_chosen = {}, {}, None
    if args.mlp:
        for name, normalize, standardize in MLP_PREPS:
            t0 = time.perf_counter()
            factory = lambda n=normalize, s=standardize: MLPHead(normalize=n, standardize=s, device="cpu")  # noqa: E731
            row = {}
            for task in tasks:
                row.update({f"{task.name}:{col}": v for col, v in evaluate(task, factory).items()})
            mlp_table[f"mlp {name}"] = row
            log(f"mlp {name:<14} mean {100 * np.mean(list(row.values())):.1f}  ({time.perf_counter() - t0:.0f}s)")
        mlp_summary, mlp_chosen = rank_configs(mlp_table, args.max_gap / 100,
                                               lambda c: library_option(c.removeprefix("mlp ")))
    meta = {"seed": args.seed, "max_gap": args.max_gap, "old_default": old, "chosen": chosen,
            "gap_floor": min(s["worst_gap"] for s in summary.values()), "mlp_chosen": mlp_chosen,
            "best_any": rank_configs(table, args.max_gap / 100)[1],
            "command": "python bench/head_protocol.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "seconds": time.perf_counter() - t_start, "encode_seconds": vec.seconds,
            "splits_read": list(ALLOWED_SPLITS), "preps": {p[0]: {"normalize": p[1], "standardize": p[2],
                                                                  "centre": p[3]} for p in PREPS}, "C": CS}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "head_protocol.json").write_text(json.dumps(
        {"meta": meta, "tasks": {t.name: {"metric": t.metric, "notes": t.notes} for t in tasks},
         "scores": table, "summary": summary, "mlp_scores": mlp_table, "mlp_summary": mlp_summary},
        indent=1), encoding="utf-8")
    md = to_markdown(table, summary, chosen, tasks, meta)
    if mlp_table:
        md += mlp_markdown(mlp_table, mlp_summary, mlp_chosen)
    (out / "head_protocol.md").write_text(md, encoding="utf-8")
    log(f"chosen: {chosen}; wrote {out / 'head_protocol.md'} and .json")


def candidates_main(args: argparse.Namespace, argv: list[str] | None) -> None:
    """A short rerun of the protocol over named configs (e.g. the cross-validated C against fixed ones)."""
    t_start = time.perf_counter()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    vec = Vectors(args.encoder)
    tasks = load_tasks(args.tasks.split(","), vec, args.seed, log=log)
    preps = {p[0]: p for p in PREPS}
    table: dict[str, dict[str, float]] = {}
    chosen_C: dict[str, list[float]] = {}
    for name in [c.strip() for c in args.candidates.split(",") if c.strip()]:
        prep_name, C_text = name.rsplit(" C=", 1)
        C: float | str = "cv" if C_text == "cv" else float(C_text)
        t0 = time.perf_counter()
        row: dict[str, float] = {}
        for task in tasks:
            made: list[Any] = []

            def factory(prep=preps[prep_name], C=C, made=made):
                head = logreg_factory(prep, C)()
                made.append(head)
                return head
            row.update({f"{task.name}:{col}": v for col, v in evaluate(task, factory).items()})
            if C == "cv":
                chosen_C[task.name] = sorted(float(getattr(h, "C_", float("nan"))) for h in made)
        table[name] = row
        log(f"{name:<18} mean {100 * np.mean(list(row.values())):.1f}  ({time.perf_counter() - t0:.0f}s)")
    summary, chosen = rank_configs(table, args.max_gap / 100, library_option)
    meta = {"seed": args.seed, "max_gap": args.max_gap, "chosen": chosen, "encoder": args.encoder,
            "gap_floor": min(s["worst_gap"] for s in summary.values()),
            "command": "python bench/head_protocol.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "seconds": time.perf_counter() - t_start, "encode_seconds": vec.seconds, "cv_chosen_C": chosen_C,
            "splits_read": list(ALLOWED_SPLITS)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "head_protocol_cv.json").write_text(json.dumps(
        {"meta": meta, "tasks": {t.name: {"metric": t.metric, "notes": t.notes} for t in tasks},
         "scores": table, "summary": summary}, indent=1), encoding="utf-8")
    cols = list(next(iter(table.values())))
    lines = [f"# Head protocol: cross-validated C against fixed C (encoder `{args.encoder}`, dev splits only)", "",
             "Same tasks, folds and columns as `head_protocol.md` (x100; accuracy for sib200/sentiment, macro-F1 "
             "for nli/libreoffice). `C=cv` is `LogisticRegressionHead(C=\"cv\")`: C chosen from "
             "0.3/1/3/10 by stratified 5-fold cross-validation on each head's own English training set. "
             f"Chosen by the same rule (best task-balanced rank among configs whose worst gap is within "
             f"{args.max_gap:.1f} points of the smallest): **{chosen}**.", ""]
    head = ["config"] + cols + ["mean tgt", "rank", "gap"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(table, key=lambda c: summary[c]["mean_rank"]):
        s = summary[c]
        cells = [f"{100 * table[c][col]:.1f}" for col in cols]
        lines.append("| " + " | ".join([f"**{c}**" if c == chosen else c, *cells, f"{100 * s['mean_target']:.1f}",
                                        f"{s['mean_rank']:.1f}", f"{100 * s['worst_gap']:.1f}"]) + " |")
    lines += ["", "C chosen by cross-validation, per head fitted (folds x columns with their own training set):", ""]
    lines += [f"- {t}: " + ", ".join(f"{c:g}" for c in cs) for t, cs in chosen_C.items()]
    lines += ["", f"Command: `{meta['command']}` ({meta['seconds']:.0f}s, of which encoding "
              f"{meta['encode_seconds']:.0f}s).", ""]
    (out / "head_protocol_cv.md").write_text("\n".join(lines), encoding="utf-8")
    log(f"chosen: {chosen}; wrote {out / 'head_protocol_cv.md'} and .json")


if __name__ == "__main__":
    main()
