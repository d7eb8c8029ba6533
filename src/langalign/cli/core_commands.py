"""``langalign fit | transform | train | predict | evaluate | demo``: thin shells over the library."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, LangAlignError
from .outputs import artefact_output, file_output, folder_output

TEXT_FORMATS = ".txt, .tsv, .csv, .jsonl or .parquet"


def _formatter():
    return argparse.RawDescriptionHelpFormatter


# -- input / output helpers ----------------------------------------------------------
def read_texts(path: str, column: str = "text") -> list[str]:
    """Texts from a .txt file (one per line) or a column of a table file."""
    from ..data.records import as_text, iter_records, normalize_text, read_lines

    p = Path(path)
    if p.suffix.lower() in (".txt", ".text", ""):
        # Blank lines among texts are kept (rows stay aligned with the input); a file
        # with no text at all is almost certainly the wrong file.
        return read_lines(p)
    return [normalize_text(as_text(p, where, column, v[0])) for where, v in iter_records(p, [column])]


def read_input(path: str, column: str = "text") -> np.ndarray | list[str]:
    """Vectors from .npy, otherwise texts."""
    p = Path(path)
    if p.suffix.lower() == ".npy":
        if not p.is_file():
            raise DataError(f"{p}: no such file" if not p.exists() else f"{p}: is not a file")
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, EOFError, OSError) as e:
            if isinstance(e, (PermissionError, IsADirectoryError)):
                raise
            raise DataError(f"{p}: not a readable numeric .npy array ({type(e).__name__}: {e})") from None
        if not isinstance(arr, np.ndarray):  # np.load opens a zip (.npz) whatever the file is called
            if hasattr(arr, "close"):
                arr.close()
            raise DataError(f"{p}: is a zip archive of arrays (.npz), not a .npy array; save one array with "
                            "numpy.save")
        if arr.ndim != 2 or arr.dtype.kind not in "fiu":
            raise DataError(f"{p}: expected a 2-D numeric array, got shape {arr.shape} dtype {arr.dtype}")
        return arr.astype(np.float32, copy=False)
    return read_texts(path, column)


def write_vectors(path: str, arr: np.ndarray) -> None:
    from .._io import atomic_path

    p = Path(path)
    if p.suffix.lower() != ".npy":
        raise ValueError(f"vector output must end in .npy, got {p.name}")
    with atomic_path(p) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)


def _labelled(path: str, args) -> Any:
    from ..data import read_labelled

    return read_labelled(path, text=args.text_column, label=args.label_column,
                         text_pair=getattr(args, "pair_column", None))


def _examples(ds) -> list[Any]:
    return list(zip(ds.texts, ds.text_pairs, strict=True)) if ds.text_pairs is not None else list(ds.texts)


# -- commands ------------------------------------------------------------------------
def cmd_fit(args) -> int:
    from ..aligner import LangAlign, check_held_out
    from ..data import read_parallel

    mapper_params = _json_object(args.mapper_params, "--mapper-params") if args.mapper_params else {}
    if args.resume and not args.checkpoint_dir:
        raise ValueError("--resume needs --checkpoint-dir DIR (the folder the interrupted run wrote)")
    try:
        check_held_out(args.held_out)
    except ValueError:
        raise ValueError(f"--held-out must be a fraction in [0, 1) (e.g. 0.1 keeps 10% of the pairs aside to "
                         f"score the maps, 0 keeps none), got {args.held_out}") from None
    # Before any work: a bad --output fails now, not after the fit (and never deletes a file).
    artefact_output(args.output, "aligner", args.overwrite,
                    [args.pairs, args.english, args.source_embeddings, args.target_embeddings, args.checkpoint_dir])
    # From texts the default encoder encodes them; from vectors none is implied (recorded as unknown).
    src = args.source_encoder or ("use-multilingual" if args.pairs or args.english else None)
    align = LangAlign(src, args.target_encoder or src, mapper=args.mapper,
                      reverse=not args.no_reverse, held_out=args.held_out, seed=args.seed,
                      mapper_params=mapper_params)
    ckpt = {"checkpoint_dir": args.checkpoint_dir, "resume": args.resume}
    if args.english:
        # The English-only bridge: every English sentence pairs with itself, one side per encoder
        # (LangAlign.fit_bridge); with --pairs too, those pairs join the fit (in-domain weight).
        english = [t for t in read_texts(args.english, args.text_column) if t.strip()]
        if len(english) < 2:
            raise DataError(f"{args.english}: need at least 2 English texts for a bridge, found {len(english)}")
        parallel = None
        if args.pairs:
            corpus = read_parallel(args.pairs, source=args.source_column, target=args.target_column)
            print(f"pairs: {corpus.summary}", file=sys.stderr)
            parallel = (corpus.source, corpus.target)
        print(f"English bridge: {len(english):,} texts", file=sys.stderr)
        with _diverged("--mapper-params"):
            align.fit_bridge(english, parallel, **ckpt)
    elif args.pairs:
        corpus = read_parallel(args.pairs, source=args.source_column, target=args.target_column)
        print(f"pairs: {corpus.summary}", file=sys.stderr)
        if len(corpus) < 2:
            raise DataError(f"{args.pairs}: need at least 2 usable pairs, found {len(corpus)}")
        with _diverged("--mapper-params"):
            align.fit(corpus.source, corpus.target, **ckpt)
    else:
        if not (args.source_embeddings and args.target_embeddings):
            raise ValueError("give --pairs FILE, or both --source-embeddings and --target-embeddings "
                             "(.npy files or shard folders)")
        dirs = [Path(p).is_dir() for p in (args.source_embeddings, args.target_embeddings)]
        if any(dirs):
            if not all(dirs):
                raise ValueError("--source-embeddings and --target-embeddings must both be shard folders "
                                 "(from 'langalign encode') or both .npy files")
            with _diverged("--mapper-params"):
                align.fit_shards(args.source_embeddings, args.target_embeddings, **ckpt)
            _report_fit(align, args)
            return 0
        X, Y = read_input(args.source_embeddings), read_input(args.target_embeddings)
        if isinstance(X, list) or isinstance(Y, list):
            raise ValueError("--source-embeddings and --target-embeddings must be .npy files")
        with _diverged("--mapper-params"):
            align.fit_embeddings(X, Y, **ckpt)
    _report_fit(align, args)
    return 0


@contextmanager
def _diverged(flag: str) -> Iterator[None]:
    """A numerical blow-up during training is the user's settings, not a bug: say what to change."""
    try:
        yield
    except FloatingPointError as e:
        raise LangAlignError(f"training diverged: {_first_line(e)} (training parameters such as lr are set "
                             f"with {flag})") from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _report_fit(align, args) -> None:
    align.save(args.output, overwrite=args.overwrite)
    held = align.scores_.get("forward")
    msg = f"saved aligner {align.side_label('source')} -> {align.side_label('target')} ({args.mapper}) to {args.output}"
    if held:
        msg += f"; held-out forward cosine {held['mean_cosine']:.3f}, top-1 {held['top1']:.3f}"
    print(msg)


def cmd_transform(args) -> int:
    from ..aligner import LangAlign

    file_output(args.output, "--output", (".npy",))
    align = LangAlign.load(args.aligner, args.source_encoder, args.target_encoder, force=args.force)
    data = read_input(args.input, args.column)
    out = align.to_target(data) if args.direction == "to-target" else align.to_source(data)
    write_vectors(args.output, out)
    print(f"wrote {out.shape[0]} x {out.shape[1]} vectors ({args.direction}) to {args.output}")
    return 0


def cmd_train(args) -> int:
    from ..aligner import LangAlign
    from ..transfer import CrossLingualClassifier

    head_params = _json_object(args.head_params, "--head-params") if args.head_params else {}
    artefact_output(args.output, "classifier", args.overwrite, [args.data, args.aligner])
    if args.mode == "zero-shot":
        if not args.encoder:
            raise ValueError("--mode zero-shot needs --encoder NAME (one multilingual encoder for both sides)")
        clf = CrossLingualClassifier(args.encoder, mode="zero-shot", head=args.head, head_params=head_params)
    else:
        if not args.aligner:
            raise ValueError(f"--mode {args.mode} needs --aligner DIR (from 'langalign fit')")
        align = LangAlign.load(args.aligner, args.source_encoder, args.target_encoder, force=args.force)
        clf = CrossLingualClassifier(align, mode=args.mode, head=args.head, head_params=head_params)
    ds = _labelled(args.data, args)
    print(f"training data: {ds.summary}", file=sys.stderr)
    with _diverged("--head-params"):
        clf.fit(_examples(ds), ds.labels)
    clf.save(args.output, overwrite=args.overwrite)
    print(f"saved {args.mode} classifier ({args.head}, {len(ds)} examples, "
          f"{len(clf._require_head().classes_)} classes) to {args.output}")
    return 0


def cmd_predict(args) -> int:
    from ..data import write_table
    from ..transfer import CrossLingualClassifier

    if args.output is not None:
        from ..data.records import detect_format

        file_output(args.output, "--output")
        detect_format(args.output)
    clf = CrossLingualClassifier.load(args.model, args.source_encoder, args.target_encoder, force=args.force)
    if clf.pair_task_:
        if not args.pair_column:
            raise ValueError("this model classifies sentence pairs; give --pair-column")
        from ..data.records import as_text, iter_records, normalize_text

        rows = [(normalize_text(as_text(args.input, w, args.column, v[0])),
                 normalize_text(as_text(args.input, w, args.pair_column, v[1])))
                for w, v in iter_records(args.input, [args.column, args.pair_column])]
        texts: list[Any] = rows
    else:
        texts = read_texts(args.input, args.column)
    labels = clf.predict(texts).tolist() if texts else []  # native: an integer class stays one in .jsonl
    shown = [t if isinstance(t, str) else " ||| ".join(t) for t in texts]
    if args.output:
        write_table(args.output, {"text": shown, "label": labels})
        print(f"wrote {len(labels)} predictions to {args.output}")
    else:
        for t, lab in zip(shown, labels, strict=True):
            print(f"{lab}\t{t}")
    return 0


def cmd_evaluate(args) -> int:
    from ..evaluation import format_report
    from ..transfer import CrossLingualClassifier

    file_output(args.json, "--json")
    clf = CrossLingualClassifier.load(args.model, args.source_encoder, args.target_encoder, force=args.force)
    ds = _labelled(args.data, args)
    print(f"test data: {ds.summary}", file=sys.stderr)
    # Labels as read (TSV: strings, JSONL: native); evaluate matches them with the model's classes.
    report = clf.evaluate(_examples(ds), ds.labels)
    print(format_report(report))
    if args.json:
        from .._io import write_json_atomic

        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    return 0


def cmd_demo(args) -> int:
    from ..demo import run_demo

    folder_output(args.out, "--out")
    run_demo(langs=args.langs, out_dir=args.out, max_pairs=args.max_pairs, corpus_from=args.corpus_from,
             bridge_pool=args.bridge_pool, full=args.full, backend=args.backend)
    return 0


def _json_object(text: str, flag: str) -> dict:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag} is not valid JSON ({e.msg}); e.g. '{{\"epochs\": 20}}'") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{flag} must be a JSON object, got {type(obj).__name__}")
    return obj


def _load_args(p) -> None:
    """Options of every command that loads an artefact: encoder overrides and --force."""
    p.add_argument("--source-encoder", default=None,
                   help="use this source encoder instead of the recorded one (checked against its fingerprint)")
    p.add_argument("--target-encoder", default=None,
                   help="use this target encoder instead of the recorded one (checked against its fingerprint)")
    p.add_argument("--force", action="store_true",
                   help="use the artefact even if the encoder's name or fingerprint differs from the recorded one")


# -- registration --------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser("fit", help="fit an aligner from parallel pairs", formatter_class=_formatter(),
                       description="Fit LangAlign maps (forward and reverse) from parallel sentence pairs.",
                       epilog="examples:\n"
                              "  langalign fit --pairs en-ko.tsv --source-encoder minilm "
                              "--target-encoder use-multilingual --output aligners/en-ko\n"
                              "  langalign fit --source-embeddings X.npy --target-embeddings Y.npy "
                              "--source-encoder minilm --target-encoder use-multilingual --mapper procrustes "
                              "--output aligners/p\n"
                              "  langalign fit --source-embeddings shards/en --target-embeddings shards/ko "
                              "--output aligners/big   # shard folders: bounded memory\n"
                              "  langalign fit --english english.txt --source-encoder tuned/topic "
                              "--target-encoder e5-small --output aligners/self-bridge   # no parallel data")
    p.add_argument("--pairs", help=f"parallel file ({TEXT_FORMATS[5:]}) with source/target columns")
    p.add_argument("--source-column", default="source")
    p.add_argument("--target-column", default="target")
    p.add_argument("--english", help="English-only bridge (LangAlign.fit_bridge): English texts (.txt one per line, "
                                     "or a table's --text-column) read by both encoders; --pairs, if given, join in")
    p.add_argument("--text-column", default="text", help="column of --english in a table file")
    p.add_argument("--source-embeddings", help="source vectors (.npy, or a shard folder from 'langalign encode' "
                                               "for bounded memory), instead of --pairs")
    p.add_argument("--target-embeddings", help="target vectors (.npy or shard folder), row-aligned with "
                                               "--source-embeddings")
    p.add_argument("--source-encoder", default=None, help="encoder name (default use-multilingual with --pairs; "
                   "with embeddings: the encoder that made them, recorded as unknown when not given)")
    p.add_argument("--target-encoder", default=None, help="encoder name (default: same as source)")
    p.add_argument("--mapper", default="default",
                   help="default, linear, procrustes, centering, mlp, autoencoder, contrastive, bridge (the "
                        "English-only bridge's MLP), ...")
    p.add_argument("--no-reverse", action="store_true", help="skip the target -> source map")
    p.add_argument("--held-out", type=float, default=0.1, help="fraction of pairs kept to score the maps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mapper-params", help='JSON object of mapper parameters, e.g. \'{"epochs": 20}\'')
    p.add_argument("--checkpoint-dir", help="neural mappers: checkpoint every epoch into this folder")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --checkpoint-dir")
    p.add_argument("--output", required=True, help="artefact folder to write: new, empty, or an aligner saved "
                                                   "before (replaced); any other folder is refused")
    p.add_argument("--overwrite", action="store_true",
                   help="also replace a langalign artefact of another kind (never a folder with other files)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("transform", help="map texts or vectors with a saved aligner", formatter_class=_formatter(),
                       epilog="examples:\n"
                              "  langalign transform --aligner aligners/en-ko --direction to-source "
                              "--input korean.txt --output korean_in_english_space.npy\n"
                              "  langalign transform --aligner aligners/en-ko --direction to-target "
                              "--input english.npy --output mapped.npy")
    p.add_argument("--aligner", required=True)
    p.add_argument("--direction", choices=["to-target", "to-source"], default="to-target")
    p.add_argument("--input", required=True, help=f"{TEXT_FORMATS} (texts) or .npy (vectors)")
    p.add_argument("--column", default="text", help="text column for table inputs")
    p.add_argument("--output", required=True, help=".npy file to write")
    _load_args(p)
    p.set_defaults(func=cmd_transform)

    def labelled_args(q):
        q.add_argument("--text-column", default="text")
        q.add_argument("--label-column", default="label")
        q.add_argument("--pair-column", default=None, help="second text column for sentence-pair tasks (NLI)")

    p = sub.add_parser("train", help="train a cross-lingual classifier on English data", formatter_class=_formatter(),
                       epilog="examples:\n"
                              "  langalign train --aligner aligners/en-ko --mode reverse --data train_en.tsv "
                              "--output models/topic-ko\n"
                              "  langalign train --encoder use-multilingual --mode zero-shot --data train_en.tsv "
                              "--output models/zs\n"
                              "  langalign train --aligner aligners/en-ko --mode forward --data snli.jsonl "
                              "--text-column premise --pair-column hypothesis --output models/nli-ko")
    p.add_argument("--data", required=True, help=f"labelled training file ({TEXT_FORMATS[5:]})")
    labelled_args(p)
    p.add_argument("--mode", choices=["forward", "reverse", "zero-shot"], default="reverse")
    p.add_argument("--aligner", help="aligner folder (forward/reverse modes)")
    p.add_argument("--encoder", help="encoder name (zero-shot mode)")
    p.add_argument("--head", choices=["logreg", "mlp"], default="logreg")
    p.add_argument("--head-params", help='JSON object of head parameters, e.g. \'{"C": 2.0}\'')
    p.add_argument("--output", required=True, help="classifier folder to write: new, empty, or a classifier "
                                                   "saved before (replaced); any other folder is refused")
    p.add_argument("--overwrite", action="store_true",
                   help="also replace a langalign artefact of another kind (never a folder with other files)")
    _load_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="classify target-language input with a saved classifier",
                       formatter_class=_formatter(),
                       epilog="examples:\n"
                              "  langalign predict --model models/topic-ko --input korean.txt\n"
                              "  langalign predict --model models/topic-ko --input test_ko.tsv --column text "
                              "--output predictions.tsv")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help=TEXT_FORMATS)
    p.add_argument("--column", default="text")
    p.add_argument("--pair-column", default=None)
    p.add_argument("--output", help="predictions file (.tsv/.csv/.jsonl); default: print to stdout")
    _load_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="accuracy, macro-F1 and confusion matrix on labelled data",
                       formatter_class=_formatter(),
                       epilog="example:\n"
                              "  langalign evaluate --model models/topic-ko --data test_ko.tsv "
                              "--label-column category --json report.json")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    labelled_args(p)
    p.add_argument("--json", help="also write the report as JSON here")
    _load_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="the end-to-end demo (offline, bundled models)", formatter_class=_formatter(),
                       description="Build (or reuse) the English pool and the LibreOffice help corpus. First the "
                                   "English-only MiniLM system: its classifiers and index read Korean/Japanese/"
                                   "Chinese through an English-only bridge, next to re-embedding with "
                                   "use-multilingual. Then one multilingual encoder with aligners fitted on "
                                   "LibreOffice pairs, against zero-shot.",
                       epilog="example:\n  langalign demo --langs ko,ja --out reports/demo")
    p.add_argument("--langs", default="ko,ja,zh")
    p.add_argument("--out", default="reports/demo", help="folder for the report (Markdown + JSON)")
    p.add_argument("--full", action="store_true",
                   help="the full-size demo: every LibreOffice train pair (up to --max-pairs) and the whole train "
                        "split for the in-domain head (default: 4,000 pairs per language)")
    p.add_argument("--max-pairs", type=int, default=None,
                   help="LibreOffice pairs per language to fit on (default 4,000; 20,000 with --full)")
    p.add_argument("--backend", choices=("torch", "onnx"), default=None,
                   help="how MiniLM runs: onnx (ONNX Runtime, the same vectors; the default when onnxruntime is "
                        "installed) or torch")
    p.add_argument("--bridge-pool", type=int, default=20000,
                   help="English pool sentences the MiniLM -> use-multilingual bridge is fitted on")
    p.add_argument("--corpus-from", default=None,
                   help="folder of LibreOffice help .deb files or extracted trees (machines without apt)")
    p.set_defaults(func=cmd_demo)
