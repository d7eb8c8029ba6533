"""Parallel pairs for a distilled bridge trained on translations too (issue 24).

Writes a TSV (``english``, ``translation``) of a seeded sample of STS-B *train* translation pairs per
language (ja/zh: stsb_multi_mt, DeepL; ko: KorSTS), the sentences of every train pair, both sides of it.
Train split only: Tatoeba and SIB-200/FLORES, where the bridge is measured, share no sentence with it.

    python bench/distil_pairs.py --per-lang 1000 --out /tmp/sts-pairs.tsv
    langalign tune --base e5-small --mode distil --teacher minilm --pairs /tmp/sts-pairs.tsv \\
        --source-column english --target-column translation --start-map --max-seq-length 64 \\
        --output tuned/e5-in-minilm-pairs
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from langalign.benchmark.tasks import load_sts_task
from langalign.data.home import find_reference_data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-lang", type=int, default=1000, help="pairs per language (seeded sample)")
    ap.add_argument("--langs", default="ko,ja,zh")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="TSV to write (must not exist)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists: choose a new file (nothing is overwritten)")
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    task = load_sts_task(langs, find_reference_data(), args.seed)
    rows: list[tuple[str, str, str]] = []
    for lang in langs:
        en, xx = task.parallel[lang]
        rng = np.random.default_rng(args.seed)
        keep = np.sort(rng.choice(len(en), min(args.per_lang, len(en)), replace=False))
        rows += [(en[i], xx[i], lang) for i in keep]
        print(f"{lang}: {len(keep):,} of {len(en):,} STS-B train pairs", file=sys.stderr)
    # Interleave the languages so every batch and the tuner's held-out dev share hold all of them
    order = np.random.default_rng(args.seed).permutation(len(rows))
    with open(out, "x", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(["english", "translation", "lang"])
        for i in order:
            w.writerow(rows[i])
    print(f"wrote {len(rows):,} pairs to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
