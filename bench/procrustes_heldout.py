"""Procrustes on held-out pairs: plain rotation vs the identity-shrunk default (dev splits only).

Fits en -> xx maps on the 701 SIB-200 train pairs (use-multilingual on both sides)
and scores them on the 99 SIB-200 dev pairs, and on 2,000 LibreOffice-help train
pairs scored on 1,000 dev pairs (pages disjoint from train): mean cosine of the
mapped English vector to its translation, against the unmapped vectors.

    python bench/procrustes_heldout.py --out results   # writes procrustes_heldout.md / .json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import head_protocol as hp  # noqa: E402

from langalign.data import load_libreoffice_help, load_sib200_parallel  # noqa: E402
from langalign.mappers import make_mapper  # noqa: E402

MAPPERS = ("procrustes-plain", "procrustes", "linear")


def _cos(A: np.ndarray, B: np.ndarray) -> float:
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return float(np.mean(np.sum(A * B, axis=1)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    vec = hp.Vectors()
    root = hp.find_reference_data() / "sib200"
    rows = []
    for lang in hp.LANGS:
        sets = {"SIB-200": [hp.load_split(lambda l, s: load_sib200_parallel("en", l, s, root), lang, s)
                            for s in ("train", "dev")],
                "LibreOffice": [hp.load_split(load_libreoffice_help, lang, "train").sample(2000, args.seed),
                                hp.load_split(load_libreoffice_help, lang, "dev").sample(1000, args.seed)]}
        for corpus, (tr, dev) in sets.items():
            X, Y = vec(list(tr.source)), vec(list(tr.target))
            Xd, Yd = vec(list(dev.source)), vec(list(dev.target))
            row = {"corpus": corpus, "lang": lang, "n_train": len(X), "n_dev": len(Xd), "unmapped": _cos(Xd, Yd)}
            for name in MAPPERS:
                m = make_mapper(name).fit(X, Y)
                row[name] = _cos(m.transform(Xd), Yd)
                row[f"{name} choice"] = getattr(m, "choice_", "")
            rows.append(row)
            print(row, flush=True)
    lines = ["# Procrustes on held-out pairs (dev splits only)", "",
             "Mean cosine between the mapped English vector and its translation on held-out pairs "
             "(use-multilingual, en -> xx). `procrustes-plain` is the old `procrustes`; `procrustes` now shrinks "
             "toward the identity with the strength chosen by cross-validation on the training pairs.", "",
             "| pairs (train -> dev) | lang | unmapped | procrustes-plain | procrustes | procrustes choice | linear |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['corpus']} ({r['n_train']:,} -> {r['n_dev']:,}) | {r['lang']} | {r['unmapped']:.3f} | "
                     f"{r['procrustes-plain']:.3f} | {r['procrustes']:.3f} | {r['procrustes choice']} | "
                     f"{r['linear']:.3f} |")
    cmd = "python bench/procrustes_heldout.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines += ["", f"Command: `{cmd}` ({time.perf_counter() - t0:.0f}s).", ""]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "procrustes_heldout.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1), encoding="utf-8")
    (out / "procrustes_heldout.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
