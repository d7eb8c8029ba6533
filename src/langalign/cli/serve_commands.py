"""``langalign serve`` (the HTTP service), ``langalign index build|add|delete|info|stamp`` and ``langalign search``.

``--store`` (Chroma, LanceDB, Qdrant collections) is handled by :mod:`.store_commands`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..encoders import load_encoder
from ..errors import DataError, LangAlignError
from . import store_commands
from .store_commands import STORE_HELP

_FMT = argparse.RawDescriptionHelpFormatter


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="HTTP service: OpenAI-compatible embeddings, classify, cross-lingual search",
        formatter_class=_FMT,
        description="Serve encoders, saved aligners, classifiers and search indexes over HTTP (FastAPI + uvicorn; "
                    "pip install 'langalign[serve]'). Endpoints: POST /v1/embeddings (OpenAI-compatible), "
                    "POST /v1/classify, POST /v1/search, GET /v1/models, GET /health (200 once every model is "
                    "loaded and its encoder fingerprints checked), GET /metrics (Prometheus). Binds 127.0.0.1 "
                    "unless --host says otherwise; "
                    "answers only requests whose Host header is the bound address (or --allowed-host). Admits "
                    "at most --max-in-flight requests and --max-queued-texts/--max-queued-chars of queued work "
                    "(more: 429 with Retry-After); each response carries X-Request-ID. "
                    "Flags add to (and override) the --config file.",
        epilog="examples:\n"
               "  langalign serve --aligner bridge=aligners/bridge --index docs=indexes/docs\n"
               "  langalign serve --config serve.json --port 8080\n"
               "  LANGALIGN_API_KEY=... langalign serve --config serve.json --api-key-env LANGALIGN_API_KEY\n"
               "  langalign serve --config serve.json --check        # load everything, list the models, exit\n\n"
               "model names: an encoder by name ('use-multilingual'; 'e5-small' for queries and\n"
               "  'e5-small:passage' for documents); for an aligner NAME,\n"
               "  'ko->en:NAME' (= 'NAME:to-source': target text mapped into the source space) and\n"
               "  'en->ko:NAME' (= 'NAME:to-target'); languages from --target-langs (default ko,ja,zh)")
    p.add_argument("--config", type=Path, help="JSON config file (see langalign.serving.config)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one and prints it)")
    p.add_argument("--encoder", action="append", default=[], metavar="NAME", help="serve this encoder (repeatable)")
    p.add_argument("--aligner", action="append", default=[], metavar="NAME=PATH", help="a saved aligner (repeatable)")
    p.add_argument("--classifier", action="append", default=[], metavar="NAME=PATH",
                   help="a saved classifier (repeatable)")
    p.add_argument("--index", action="append", default=[], metavar="NAME=PATH",
                   help="a search index from 'langalign index build' (repeatable)")
    p.add_argument("--target-langs", help="language codes for the aligners' model names (default: ko,ja,zh)")
    p.add_argument("--source-lang", default=None, help="the aligners' source language code (default: en)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key-env", metavar="VAR", help="require 'Authorization: Bearer KEY', KEY from this variable")
    key.add_argument("--api-key-file", type=Path, metavar="PATH", help="the same, KEY from the first line of a file")
    p.add_argument("--max-items", type=int, help="texts per request (default 256)")
    p.add_argument("--max-chars", type=int, help="characters per text (default 8192)")
    p.add_argument("--max-body-bytes", type=int, help="request body size (default 4 MiB)")
    p.add_argument("--max-in-flight", type=int, help="requests served at once; more get 429 + Retry-After (default 64)")
    p.add_argument("--max-queued-texts", type=int,
                   help="texts of admitted requests not yet answered; beyond, 429 + Retry-After (default 2048)")
    p.add_argument("--max-queued-chars", type=int, help="the same, in characters (default 2097152)")
    p.add_argument("--request-timeout", type=float, help="seconds to answer an admitted request (default 120)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host header to accept besides the bound address (repeatable; '*' for any)")
    p.add_argument("--batch-max-texts", type=int, help="texts per batched encoder call (default 64)")
    p.add_argument("--batch-max-chars", type=int,
                   help="characters per batched encoder call (default 32768): big requests are split and shared")
    p.add_argument("--batch-wait-ms", type=float, help="how long a batch waits for more requests (default 5)")
    p.add_argument("--metrics", choices=["auth", "open", "off"],
                   help="GET /metrics (Prometheus): 'auth' asks for the API key when one is set (default), "
                        "'open' answers without it, 'off' removes the route")
    p.add_argument("--force", action="store_true", help="downgrade encoder name/fingerprint mismatches to warnings")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--no-access-log", action="store_true", help="do not log one line per request")
    p.add_argument("--check", action="store_true", help="load every model, print them as JSON and exit")
    p.set_defaults(func=cmd_serve)

    ix = subparsers.add_parser(
        "index", help="cross-lingual search index: build, add, info, stamp", formatter_class=_FMT,
        description="A folder holding documents encoded by one (English) encoder: vectors as safetensors, texts and "
                    "ids in SQLite, the encoder's identity in config.json. Queries in other languages reach it "
                    "through a saved aligner ('langalign search --aligner').",
        epilog="examples:\n  langalign index build --encoder minilm --input docs.tsv --column text --id-column id "
               "--output indexes/docs\n  langalign index add --index indexes/docs --input more.txt\n"
               "  langalign index delete --index indexes/docs --id d17\n"
               "  langalign index info --index indexes/docs\n\n"
               "documents without --id-column get new ids (so adding a file twice keeps both copies); an id\n"
               "already in the index is refused and nothing is added. Writers of one index take turns\n"
               "(a lock); readers always see one complete version.")
    ix.set_defaults(func=lambda args: (ix.print_help(), 1)[1])
    sub = ix.add_subparsers(dest="index_command", metavar="SUBCOMMAND")
    q = sub.add_parser("build", help="encode documents into a new index (replaces OUTPUT)", formatter_class=_FMT,
                       epilog="examples:\n  langalign index build --encoder minilm --input docs.txt --output idx\n"
                              "  langalign index build --encoder minilm --input docs.jsonl --column body "
                              "--id-column doc_id --output idx\n"
                              "  langalign index build --encoder e5-small --input docs.txt --output idx  "
                              "# documents as e5-small:passage")
    q.add_argument("--encoder", required=True, help="the index's encoder (e.g. minilm; e5-small encodes the "
                                                    "documents with its passage: prompt, queries with query:)")
    _doc_args(q)
    out = q.add_mutually_exclusive_group(required=True)
    out.add_argument("--output", type=Path, help="index folder (written atomically)")
    out.add_argument("--store", metavar="KIND:PATH/COLLECTION", help=f"instead: a new collection, {STORE_HELP}; "
                     "stamped with the encoder's name, dimension and fingerprint")
    q.set_defaults(func=cmd_index_build)
    q = sub.add_parser("add", help="encode more documents into an existing index", formatter_class=_FMT,
                       epilog="examples:\n  langalign index add --index idx --input new_docs.tsv --column text")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", type=Path, help="the index folder")
    where.add_argument("--store", metavar="KIND:PATH/COLLECTION", help=f"instead: {STORE_HELP}, stamped by langalign")
    _doc_args(q)
    q.add_argument("--encoder", help="the encoder, if the index records a local path (checked by fingerprint)")
    q.add_argument("--force", action="store_true", help="accept an encoder whose fingerprint differs")
    q.add_argument("--lock-timeout", type=float, default=120.0,
                   help="seconds to wait for another writer of the index to finish (default 120)")
    q.set_defaults(func=cmd_index_add)
    q = sub.add_parser("delete", help="remove documents by id", formatter_class=_FMT,
                       epilog="examples:\n  langalign index delete --index idx --id d17 --id d18\n"
                              "  langalign index delete --index idx --ids-file stale_ids.txt")
    q.add_argument("--index", required=True, type=Path, help="the index folder")
    q.add_argument("--id", action="append", default=[], help="a document id (repeatable)")
    q.add_argument("--ids-file", help="a .txt file of document ids, one per line")
    q.add_argument("--lock-timeout", type=float, default=120.0,
                   help="seconds to wait for another writer of the index to finish (default 120)")
    q.set_defaults(func=cmd_index_delete)
    q = sub.add_parser("info", help="documents, encoder and fingerprint of an index", formatter_class=_FMT,
                       epilog="examples:\n  langalign index info --index idx --json")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", type=Path)
    where.add_argument("--store", metavar="KIND:PATH/COLLECTION", help=f"instead: {STORE_HELP}")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_index_info)
    q = sub.add_parser("stamp", help="record the encoder of an existing Chroma/LanceDB/Qdrant collection",
                       formatter_class=_FMT,
                       description="Add langalign's stamp (encoder name, dimension, fingerprint) to the metadata of a "
                                   "collection langalign did not write, after checking that a sample of its stored "
                                   "vectors are that encoder's vectors of their texts. Only adds keys; an existing "
                                   "stamp of another encoder is never replaced.",
                       epilog="examples:\n  langalign index stamp --store chroma:stores/chroma/docs --encoder minilm")
    q.add_argument("--store", required=True, metavar="KIND:PATH/COLLECTION", help=STORE_HELP)
    q.add_argument("--encoder", required=True, help="the encoder that made the collection's vectors")
    q.add_argument("--force", action="store_true", help="stamp even if the sampled vectors do not match")
    q.set_defaults(func=cmd_index_stamp)

    s = subparsers.add_parser(
        "search", help="query a search index (other languages through a saved aligner)", formatter_class=_FMT,
        description="Print the top-k documents for each query. With --aligner, queries are read by the aligner's "
                    "target encoder and mapped into the index's space (Rev-LangAlign), so Korean, Japanese or "
                    "Chinese queries search an English index.",
        epilog="examples:\n  langalign search --index idx --query 'weather in Seoul'\n"
               "  langalign search --index idx --aligner aligners/bridge --query '서울 날씨' --top-k 3\n"
               "  langalign search --index idx --aligner aligners/bridge --input queries_ko.txt --csls --json\n"
               "  langalign search --store chroma:stores/chroma/docs --aligner aligners/bridge --query '서울 날씨'")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", type=Path, help="a langalign index folder")
    where.add_argument("--store", metavar="KIND:PATH/COLLECTION",
                       help=f"instead: {STORE_HELP}; its stamp (or a sample of its vectors) is checked first")
    s.add_argument("--aligner", type=Path, help="a saved aligner whose source encoder is the index's")
    s.add_argument("--query-encoder", metavar="NAME|FOLDER",
                   help="instead of --aligner: encode the queries with this encoder, whose vectors live in the "
                        "index's space (a student from 'langalign tune --mode distil', or 'langalign average')")
    s.add_argument("--query", action="append", default=[], help="a query (repeatable)")
    s.add_argument("--input", help="queries: .txt (one per line) or a table with --column")
    s.add_argument("--column", default="text", help="the query column of a table --input (default: text)")
    s.add_argument("--top-k", type=int, default=5)
    s.add_argument("--csls", action="store_true", help="re-rank by CSLS (needs >= 10 queries or a calibrated index)")
    s.add_argument("--json", action="store_true", help="one JSON object per query")
    s.add_argument("--force", action="store_true", help="--store: search although the collection's stamp or sampled "
                   "vectors name another encoder (a dimension mismatch is always refused)")
    s.set_defaults(func=cmd_search)
    a = subparsers.add_parser(
        "average", help="save a query encoder that averages routes into one space (students, bridges)",
        formatter_class=_FMT,
        description="Build and save an AveragedEncoder: the re-normalised mean of the unit vectors of each route. "
                    "A route is an encoder whose vectors live in the space (its own encoder, or a student from "
                    "'langalign tune --mode distil'), or a saved aligner whose source encoder is the space (its "
                    "reverse map reads target-language text). Tuned routes are copied into the folder. The folder "
                    "is an encoder: 'langalign search --query-encoder FOLDER', 'langalign serve --encoder FOLDER'.",
        epilog="examples:\n  langalign average --route students/distil --route aligners/bridge --output avg\n"
               "  langalign search --index idx --query-encoder avg --input queries_ko.txt --csls")
    a.add_argument("--route", action="append", required=True, metavar="NAME|FOLDER",
                   help="an encoder (name or folder) or a saved aligner folder; repeat, at least twice")
    a.add_argument("--weight", action="append", type=float, metavar="W",
                   help="one positive weight per --route, in order (default: equal)")
    a.add_argument("--name", help="the encoder's name (default: made from the routes')")
    a.add_argument("--output", required=True, type=Path, help="the folder to write (new, empty, or one it wrote)")
    a.add_argument("--overwrite", action="store_true", help="replace another kind of langalign artefact there")
    a.set_defaults(func=cmd_average)


def _doc_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--input", required=True, help="documents: .txt (one per line) or .tsv/.csv/.jsonl/.parquet")
    q.add_argument("--column", default="text", help="the text column of a table (default: text)")
    q.add_argument("--id-column", help="a column of unique document ids (default: row numbers)")
    q.add_argument("--batch-size", type=int, default=256, help="texts per encoder call (default 256)")


# ---------------------------------------------------------------- serve

def _named(items: list[str], flag: str) -> dict[str, Path]:
    out = {}
    for it in items:
        name, sep, path = it.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{flag} takes NAME=PATH, got {it!r}")
        out[name] = Path(path)
    return out


def _serve_config(args: argparse.Namespace) -> Any:
    from ..serving.config import AlignerSpec, ServeConfig, read_api_key

    cfg = ServeConfig.from_file(args.config) if args.config else ServeConfig()
    if args.host is not None:
        cfg.host = args.host
    if args.port is not None:
        cfg.port = args.port
    cfg.encoders += [e for e in args.encoder if e not in cfg.encoders]
    langs = tuple(x.strip() for x in args.target_langs.split(",") if x.strip()) if args.target_langs else None
    for name, path in _named(args.aligner, "--aligner").items():
        cfg.aligners[name] = AlignerSpec(path)
    for spec in cfg.aligners.values():
        if langs:
            spec.target_langs = langs
        if args.source_lang:
            spec.source_lang = args.source_lang
    cfg.classifiers.update(_named(args.classifier, "--classifier"))
    cfg.indexes.update(_named(args.index, "--index"))
    if args.api_key_env or args.api_key_file:
        cfg.api_key = read_api_key(args.api_key_env, args.api_key_file)
    cfg.allowed_hosts += [h for h in args.allowed_host if h not in cfg.allowed_hosts]
    for flag, obj, attr in (("max_items", cfg.limits, "max_items"), ("max_chars", cfg.limits, "max_chars"),
                            ("max_body_bytes", cfg.limits, "max_body_bytes"),
                            ("max_in_flight", cfg.limits, "max_in_flight"),
                            ("max_queued_texts", cfg.limits, "max_queued_texts"),
                            ("max_queued_chars", cfg.limits, "max_queued_chars"),
                            ("request_timeout", cfg.limits, "request_timeout_s"),
                            ("batch_max_texts", cfg.batch, "max_texts"), ("batch_max_chars", cfg.batch, "max_chars"),
                            ("batch_wait_ms", cfg.batch, "max_wait_ms")):
        if getattr(args, flag) is not None:
            setattr(obj, attr, getattr(args, flag))
    if args.metrics is not None:
        cfg.metrics = args.metrics
    cfg.force = cfg.force or args.force
    return cfg.check()


def _need_serve_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise LangAlignError("langalign serve needs FastAPI and uvicorn: pip install 'langalign[serve]'") from None


def cmd_serve(args: argparse.Namespace) -> int:
    cfg = _serve_config(args)
    if args.check:
        from ..serving.registry import Registry

        reg = Registry(cfg).load()
        print(json.dumps({"status": "ok", "models": reg.model_cards()}, indent=2, ensure_ascii=False))
        return 0
    _need_serve_extra()
    from ..serving.server import serve

    try:
        serve(cfg, log_level=args.log_level, access_log=not args.no_access_log)
    except KeyboardInterrupt:
        # uvicorn shuts down gracefully on Ctrl-C / SIGINT, then re-raises it: a requested stop, not a failure
        print("langalign: stopped", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- index

def _read_docs(args: argparse.Namespace) -> tuple[list[str], list[str] | None]:
    from ..data.records import as_text, iter_records, normalize_text
    from .core_commands import read_texts

    p = Path(args.input)
    if p.suffix.lower() in (".txt", ".text", ""):
        if args.id_column:
            raise ValueError("--id-column applies to table inputs (.tsv/.csv/.jsonl/.parquet), not .txt")
        texts = read_texts(str(p))
        return texts, None
    cols = [args.column] + ([args.id_column] if args.id_column else [])
    texts, ids = [], []
    for where, values in iter_records(p, cols):
        texts.append(normalize_text(as_text(p, where, args.column, values[0])))
        if args.id_column:
            v = values[1]
            if v is None or (isinstance(v, str) and not v.strip()):
                raise DataError(f"{p}: {where}: empty id in column {args.id_column!r}")
            ids.append(str(v).strip())
    if not texts:
        raise DataError(f"{p}: no documents")
    return texts, (ids if args.id_column else None)


def cmd_index_build(args: argparse.Namespace) -> int:
    from ..index import SearchIndex
    from ..index.store import check_index_destination

    if args.store:
        return store_commands.cmd_store_build(args, *_read_docs(args))
    check_index_destination(args.output)  # before reading and encoding, not after
    _refuse_output_holding_input(args.output, args.input)
    texts, ids = _read_docs(args)
    t0 = time.perf_counter()
    idx = SearchIndex(args.encoder).build(texts, ids=ids, batch_size=args.batch_size)
    idx.save(args.output)
    docs = f"; documents as {idx.document_encoder_name}" if idx.document_encoder_name != idx.encoder_name else ""
    print(f"indexed {len(idx)} documents with {idx.encoder_name} ({idx.dim}-d{docs}) at {args.output} in "
          f"{time.perf_counter() - t0:.1f}s")
    return 0


def cmd_index_add(args: argparse.Namespace) -> int:
    from ..index import SearchIndex, add_documents

    if args.store:
        if args.force:
            raise ValueError("--force does not apply to --store: a collection stamped with another encoder is "
                             "never written to")
        return store_commands.cmd_store_add(args, *_read_docs(args))
    SearchIndex.load(args.index, encoder=args.encoder, force=args.force)  # a bad index fails before reading
    texts, ids = _read_docs(args)
    t0 = time.perf_counter()
    added, total = add_documents(args.index, texts, ids=ids, encoder=args.encoder, force=args.force,
                                 batch_size=args.batch_size, lock_timeout=args.lock_timeout)
    print(f"added {added} documents to {args.index} ({total} in all) in {time.perf_counter() - t0:.1f}s")
    return 0


def cmd_index_delete(args: argparse.Namespace) -> int:
    from ..index import delete_documents
    from .core_commands import read_texts

    ids = list(args.id) + ([t.strip() for t in read_texts(args.ids_file) if t.strip()] if args.ids_file else [])
    if not ids:
        raise ValueError("give at least one --id ID or an --ids-file FILE")
    removed, left = delete_documents(args.index, ids, lock_timeout=args.lock_timeout)
    print(f"removed {removed} documents from {args.index} ({left} left)")
    return 0


def _refuse_output_holding_input(output: Path, input_file: str) -> None:
    """An index build must not replace the folder its own input file sits in."""
    import os

    try:
        out, inp = os.path.realpath(output), os.path.realpath(input_file)
    except OSError:
        return
    if inp == out or inp.startswith(out.rstrip(os.sep) + os.sep):
        raise ValueError(f"--output {output} holds the input file {input_file}; write the index to another folder")


def cmd_index_info(args: argparse.Namespace) -> int:
    from ..index import SearchIndex

    if args.store:
        return store_commands.cmd_store_info(args)
    info = SearchIndex.load(args.index).info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
    return 0


def cmd_index_stamp(args: argparse.Namespace) -> int:
    return store_commands.cmd_store_stamp(args)


def cmd_average(args: argparse.Namespace) -> int:
    from ..aligner import LangAlign
    from ..artefacts import artefact_kind
    from ..averaged_encoder import AveragedEncoder

    if len(args.route) < 2:
        raise ValueError(f"give at least two --route, got {len(args.route)}")
    if args.weight is not None and len(args.weight) != len(args.route):
        raise ValueError(f"give one --weight per --route ({len(args.route)}), got {len(args.weight)}")
    routes = [LangAlign.load(r) if Path(r).is_dir() and artefact_kind(Path(r) / "config.json") == "aligner"
              else load_encoder(r) for r in args.route]
    avg = AveragedEncoder(routes, weights=args.weight, name=args.name)
    folder = avg.save(args.output, overwrite=args.overwrite)
    space = avg.vector_space_
    print(f"saved {avg.name!r} ({len(routes)} routes into {space.get('name')!r}, {avg.dim}-d) to {folder}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from ..aligner import LangAlign
    from ..index import SearchIndex
    from .core_commands import read_texts

    queries = list(args.query)
    if args.input:
        queries += read_texts(args.input, args.column)
    if not queries:
        raise ValueError("give at least one --query TEXT or --input FILE")
    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    if args.store:
        if args.query_encoder:
            raise ValueError("--query-encoder searches a langalign index (--index); a store takes --aligner")
        return store_commands.cmd_store_search(args, queries)
    if args.force:
        raise ValueError("--force applies to --store; an index checks its aligner by fingerprint")
    if args.aligner and args.query_encoder:
        raise ValueError("give --aligner or --query-encoder, not both")
    idx = SearchIndex.load(args.index)
    aligner = LangAlign.load(args.aligner) if args.aligner else None
    encoder = load_encoder(args.query_encoder) if args.query_encoder else None
    results = idx.search(queries, top_k=args.top_k, aligner=aligner, csls=args.csls, encoder=encoder)
    for q, hits in zip(queries, results, strict=True):
        if args.json:
            print(json.dumps({"query": q, "hits": [h._asdict() for h in hits]}, ensure_ascii=False))
            continue
        print(q)
        for rank, h in enumerate(hits, 1):
            print(f"  {rank:>2}. {h.score:.4f}  [{h.id}]  {' '.join(h.text.split())[:160]}")
    sys.stdout.flush()
    return 0
