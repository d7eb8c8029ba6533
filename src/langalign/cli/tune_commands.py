"""``langalign tune``: fine-tune a sentence-transformers encoder before alignment (see :mod:`langalign.tuning`)."""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import ArtefactError, DataError, LangAlignError


def _inputs_overlap(output: str, inputs: list[str | None]) -> None:
    """Saving to ``output`` must not replace one of the command's own inputs."""
    out = os.path.realpath(output)
    for inp in inputs:
        if not inp:
            continue
        r = os.path.realpath(inp)
        if r == out or r.startswith(out.rstrip(os.sep) + os.sep):
            raise ArtefactError(f"refusing to save to {output}: saving would replace {inp}, which this command "
                                "reads or writes; choose another output folder")


def _distil_inputs(args):
    """(english, translations or None, dev or None) for --mode distil: the pool, plus --pairs when given."""
    from ..data import read_parallel

    if args.data:
        raise ValueError("--data is for --mode task; distil mode reads --pool (and optionally --pairs)")
    if not args.pool and not args.pairs:
        raise ValueError("--mode distil needs --pool english-pool (or a text file of English sentences)")
    if args.pool and args.pairs:
        raise ValueError("give --pool (English only) or --pairs (English and translations), not both")
    n = None if args.pool_size <= 0 else args.pool_size
    if args.pairs:
        corpus = read_parallel(args.pairs, source=args.source_column, target=args.target_column)
        print(f"pairs: {corpus.summary}", file=sys.stderr)
        X, y = list(corpus.source)[:n], list(corpus.target)[:n]
    elif args.pool == "english-pool":
        from ..data import load_english_pool

        from ..benchmark.tasks import BRIDGE_POOL_CORPUS

        # The first n of the benchmark's seeded sample (nested sizes; at 20k the demo's bridge pool, whose
        # vectors the embedding cache may already hold)
        X, y = load_english_pool(max_sentences=max(n or 0, BRIDGE_POOL_CORPUS) if n else None,
                                 seed=args.seed)[:n], None
        print(f"English pool: {len(X):,} sentences", file=sys.stderr)
    else:
        with open(args.pool, encoding="utf-8") as f:
            X = [line.strip() for line in f if line.strip()]
        if n is not None and len(X) > n:
            import numpy as np

            keep = np.sort(np.random.default_rng(args.seed).choice(len(X), n, replace=False))
            X = [X[i] for i in keep]
        y = None
        print(f"English sentences: {len(X):,} from {args.pool}", file=sys.stderr)
    dev = None
    if args.dev:
        dc = read_parallel(args.dev, source=args.source_column, target=args.target_column)
        print(f"dev pairs: {dc.summary}", file=sys.stderr)
        dev = (dc.source, dc.target)
    return X, y, dev


def cmd_tune(args) -> int:
    from ..data import read_labelled, read_parallel
    from ..tuning import EncoderTuner, check_tuned_destination

    if args.resume and not args.checkpoint_dir:
        raise ValueError("--resume needs --checkpoint-dir DIR (the folder the interrupted run wrote)")
    # Before any work: a bad --output fails now, not after the training (and never costs a file).
    check_tuned_destination(args.output, args.overwrite)
    from ..encoders import looks_like_path

    _inputs_overlap(args.output, [args.data, args.pairs, args.dev, args.checkpoint_dir,
                                  args.pool if args.pool and args.pool != "english-pool" else None,
                                  args.base if looks_like_path(args.base) else None])
    if args.mode != "distil" and (args.teacher or args.pool):
        raise ValueError("--teacher and --pool are for --mode distil")
    if args.mode == "distil":
        X, y, dev = _distil_inputs(args)
    elif args.mode == "task":
        if not args.data:
            raise ValueError("--mode task needs --data FILE (labelled English examples)")
        if args.pairs:
            raise ValueError("--pairs is for --mode parallel; task mode reads --data")

        def read(path: str):
            ds = read_labelled(path, text=args.text_column, label=args.label_column, text_pair=args.pair_column)
            X = list(zip(ds.texts, ds.text_pairs, strict=False)) if ds.text_pairs is not None else ds.texts
            return ds, X, ds.labels

        ds, X, y = read(args.data)
        print(f"training data: {ds.summary}", file=sys.stderr)
        dev = None
        if args.dev:
            dds, dX, dy = read(args.dev)
            print(f"dev data: {dds.summary}", file=sys.stderr)
            dev = (dX, dy)
    else:
        if not args.pairs:
            raise ValueError("--mode parallel needs --pairs FILE (English text and its translation per row)")
        if args.data:
            raise ValueError("--data is for --mode task; parallel mode reads --pairs")
        corpus = read_parallel(args.pairs, source=args.source_column, target=args.target_column)
        print(f"pairs: {corpus.summary}", file=sys.stderr)
        X, y = corpus.source, corpus.target
        dev = None
        if args.dev:
            dc = read_parallel(args.dev, source=args.source_column, target=args.target_column)
            print(f"dev pairs: {dc.summary}", file=sys.stderr)
            dev = (dc.source, dc.target)
    if not X:
        raise DataError(f"{args.data or args.pairs}: no usable examples")
    tuner = EncoderTuner(args.base, args.mode, loss=args.loss, epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, patience=None if args.patience < 0 else args.patience,
                         dev_fraction=args.dev_fraction, max_seq_length=args.max_seq_length,
                         freeze_embeddings=args.freeze_embeddings, seed=args.seed,
                         device=args.device, num_threads=args.threads,
                         teacher=(args.teacher or "minilm") if args.mode == "distil" else None,
                         start_map=args.start_map)
    try:
        tuner.fit(X, y, dev=dev, checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    except FloatingPointError as e:
        raise LangAlignError(f"training diverged: {str(e).splitlines()[0]} (--lr)") from None
    tuner.save(args.output, overwrite=args.overwrite)
    ds_ = tuner.dev_scores_
    print(f"saved tuned encoder {tuner.encoder_.name} ({args.mode}, loss {tuner.loss_}, {tuner.data_['n_train']} "
          f"training / {tuner.data_['n_dev']} dev examples, best epoch {tuner.best_epoch_} of "
          f"{len(tuner.history_)} run) to {args.output}; dev {ds_['metric']} {ds_['before']:.4f} -> {ds_['best']:.4f}; "
          f"{tuner.seconds_:.0f} s on {tuner.device_}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "tune", help="fine-tune a sentence-transformers encoder (optional first step)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fine-tune a sentence-transformers encoder (the bundled 'minilm' or 'e5-small', or a local "
                    "folder) before alignment. task mode: labelled English examples shape the embedding space for "
                    "the task; parallel mode: multilingual knowledge distillation (the student's embeddings of a "
                    "sentence and of its translation are pulled toward the frozen base model's embedding of the "
                    "English sentence). use-multilingual cannot be tuned (numpy only). The output is a "
                    "sentence-transformers folder plus langalign_tuning.json; use it wherever an encoder name "
                    "goes (--source-encoder PATH, --encoder PATH). Its fingerprint differs from the base's, so "
                    "aligners and classifiers fitted on the base refuse it (unless --force).",
        epilog="examples:\n"
               "  langalign tune --base minilm --data train_en.tsv --label-column category --output tuned/topic\n"
               "  langalign tune --base minilm --data snli.jsonl --text-column premise --pair-column hypothesis "
               "--output tuned/nli\n"
               "  langalign tune --base e5-small --mode parallel --pairs en-ko.tsv --output tuned/e5-ko\n"
               "  langalign tune --base e5-small --mode distil --teacher minilm --pool english-pool "
               "--max-seq-length 64 --output tuned/e5-in-minilm\n"
               "  langalign tune --base ./my-st-model --mode parallel --pairs en-ko.tsv --output tuned/ko "
               "--checkpoint-dir ckpt/ko\n"
               "  langalign fit --pairs english.tsv --source-encoder tuned/topic --target-encoder "
               "use-multilingual ... # then align and train as usual")
    p.add_argument("--base", default="minilm", help="encoder to tune: 'minilm' (default), 'e5-small' or a local "
                                                     "sentence-transformers folder")
    p.add_argument("--mode", choices=["task", "parallel", "distil"], default="task")
    p.add_argument("--teacher", help="distil mode: the encoder whose space the student learns (default: minilm)")
    p.add_argument("--pool", help="distil mode: English sentences, 'english-pool' (the built corpus, `langalign "
                                  "data build english-pool`) or a text file with one sentence per line")
    p.add_argument("--start-map", action="store_true",
                   help="distil mode: start from a ridge map student -> teacher as a last linear layer, tuned "
                        "with the rest (far fewer steps to a working bridge)")
    p.add_argument("--pool-size", type=int, default=20_000,
                   help="distil mode: the first N sentences of the pool's seeded sample (0: all)")
    p.add_argument("--data", help="task mode: labelled training file (.tsv, .csv, .jsonl, .parquet)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--pair-column", default=None, help="task mode: second text column for sentence-pair tasks")
    p.add_argument("--pairs", help="parallel mode: file with an English column and its translation")
    p.add_argument("--source-column", default="source", help="parallel mode: the English column")
    p.add_argument("--target-column", default="target", help="parallel mode: the translation column")
    p.add_argument("--dev", help="dev file for early stopping (same columns); default: hold out --dev-fraction")
    p.add_argument("--dev-fraction", type=float, default=0.15)
    p.add_argument("--loss", default="auto", help="task mode: contrastive (SetFit), softmax, or auto (contrastive "
                                                  "for single texts, softmax for pairs); parallel mode: mse")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--patience", type=int, default=2, help="stop after this many epochs without a better dev "
                                                           "score (-1: never)")
    p.add_argument("--max-seq-length", type=int, default=None, help="truncate inputs to this many tokens")
    p.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the token-embedding matrix fixed (default: yes in task mode, no in parallel mode)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the usable CPUs)")
    p.add_argument("--checkpoint-dir", help="checkpoint every epoch into this folder")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --checkpoint-dir")
    p.add_argument("--output", required=True, help="folder to write: new, empty, or a tuned encoder written "
                                                   "before (replaced); any other folder is refused")
    p.add_argument("--overwrite", action="store_true",
                   help="also replace a langalign artefact of another kind (never a folder with other files)")
    p.set_defaults(func=cmd_tune)
