"""langalign.integrations: LangChain / LlamaIndex classes and Chroma / LanceDB / Qdrant collections.

Every store is the real embedded engine (Chroma's PersistentClient, LanceDB, qdrant-client's local
mode) in a temp folder, filled through the frameworks' own store classes (langchain-chroma,
langchain-qdrant, llama-index-vector-stores-lancedb) with langalign's embedding classes, or by
langalign itself; results are compared with langalign's own SearchIndex on the same vectors.
Fast tests use synthetic encoders; the integration tests a real MiniLM <- use-multilingual bridge
with Korean Tatoeba queries.
"""
from __future__ import annotations

import importlib
import json
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from _scale_helpers import CountingEncoder, paired_encoder

from langalign import LangAlign, encoders
from langalign.cli import main
from langalign.errors import EncoderMismatchError, LangAlignError
from langalign.index import SearchIndex
from langalign.integrations import (
    AlignerEmbedder,
    EncoderEmbedder,
    MissingExtraError,
    ServiceEmbedder,
    ServiceError,
    StoreError,
    open_collection,
    parse_store_spec,
)

pytest.importorskip("chromadb")
pytest.importorskip("lancedb")
pytest.importorskip("qdrant_client")
pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

KINDS = ["chroma", "lancedb", "qdrant"]
DOCS = [f"sentence number {i}" for i in range(300)]
IDS = [f"doc-{i}" for i in range(300)]
QUERIES = [f"sentence number {i}" for i in range(0, 300, 7)]  # read by the "target" encoder


@pytest.fixture(scope="module")
def toy():
    x, y = CountingEncoder("toy", 16), paired_encoder("toy-y", 16)
    align = LangAlign(x, y, held_out=0).fit(DOCS, DOCS)
    idx = SearchIndex(x, backend="numpy").build(DOCS, ids=IDS)
    return {"x": x, "y": y, "align": align, "index": idx}


def ids_of(results) -> list[list[str]]:
    return [[h.id for h in hits] for hits in results]


def reference(toy, queries=QUERIES, k=10) -> list[list[str]]:
    return ids_of(toy["index"].search(queries, top_k=k, aligner=toy["align"]))


def spec(tmp_path, kind, name="docs") -> str:
    return f"{kind}:{tmp_path / kind}/{name}"


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text, text
    return text


# ---------------------------------------------------------------- written by langalign

@pytest.mark.parametrize("kind", KINDS)
def test_collection_written_by_langalign_matches_search_index_and_is_stamped(toy, tmp_path, kind):
    with open_collection(spec(tmp_path, kind)) as col:
        col.add_texts(DOCS, toy["align"], ids=IDS)
        stamp = col.read_stamp()
        assert stamp["encoder"] == "toy" and stamp["dim"] == 16 and stamp["fingerprint"] == toy["x"].fingerprint()
        assert ids_of(col.search(QUERIES, toy["align"], top_k=10)) == reference(toy)
        assert col.check(toy["align"])["checked"] == "stamp"
    with open_collection(spec(tmp_path, kind)) as again:  # reopened from disk
        hits = again.search(QUERIES, toy["align"], top_k=10)
        assert ids_of(hits) == reference(toy)
        ref = toy["index"].search(QUERIES[:3], top_k=3, aligner=toy["align"])
        for got, want in zip(hits[:3], ref, strict=True):
            assert [h.text for h in got[:3]] == [h.text for h in want]
            np.testing.assert_allclose([h.score for h in got[:3]], [h.score for h in want], atol=1e-5)
        assert again.info()["count"] == 300


@pytest.mark.parametrize("kind", KINDS)
def test_adding_never_replaces_or_mixes(toy, tmp_path, kind):
    with open_collection(spec(tmp_path, kind)) as col:
        col.add_texts(DOCS[:10], toy["align"], ids=IDS[:10])
        col.add_texts(DOCS[10:20], toy["align"])  # default ids continue after the count
        assert col.count() == 20
        with pytest.raises(StoreError, match="already in the collection: 'doc-3'"):
            col.add_texts(["new text"], toy["align"], ids=["doc-3"])
        other = CountingEncoder("toy", 16, salt="another model")  # same name and dim, other vectors
        with pytest.raises(EncoderMismatchError, match="refusing to mix") as e:
            col.add_texts(["x"], EncoderEmbedder(other), ids=["z"])
        one_line(e.value)
        assert col.count() == 20


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("kind", KINDS)
def test_stamped_with_another_encoder_is_refused_with_one_line(toy, tmp_path, kind):
    other_x = CountingEncoder("other", 16, salt="o")
    with open_collection(spec(tmp_path, kind)) as col:
        col.add_texts(DOCS, EncoderEmbedder(other_x), ids=IDS)
    with open_collection(spec(tmp_path, kind)) as col:
        with pytest.raises(EncoderMismatchError) as e:
            col.search(QUERIES, toy["align"])
        msg = one_line(e.value)
        assert "stamped with encoder 'other'" in msg and "'toy'" in msg and "force=True" in msg
        with pytest.warns(RuntimeWarning, match="ignored: force=True"):
            assert len(col.search(QUERIES[:2], toy["align"], force=True)) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_same_name_other_fingerprint_is_refused(toy, tmp_path, kind):
    renamed = CountingEncoder("toy", 16, salt="retrained")  # a different model under the same name
    with open_collection(spec(tmp_path, kind)) as col:
        col.add_texts(DOCS[:50], EncoderEmbedder(renamed))
        with pytest.raises(EncoderMismatchError, match="fingerprints of 'toy' differ"):
            col.search(QUERIES, toy["align"])


@pytest.mark.parametrize("kind", KINDS)
def test_dimension_mismatch_is_refused_even_with_force(toy, tmp_path, kind):
    with open_collection(spec(tmp_path, kind)) as col:
        col.add_texts(DOCS[:20], EncoderEmbedder(CountingEncoder("wide", 24)))
        for force in (False, True):
            with pytest.raises(EncoderMismatchError, match="holds 24-d vectors") as e:
                col.search(QUERIES, toy["align"], force=force)
            one_line(e.value)


def _fill_natively(kind: str, path, V: np.ndarray, texts: list[str] | None) -> None:
    """A collection langalign did not write: the store's own client, no stamp."""
    if kind == "chroma":
        import chromadb

        col = chromadb.PersistentClient(path=str(path)).create_collection(
            "docs", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
        col.add(ids=IDS[: len(V)], embeddings=V, documents=texts)
    elif kind == "lancedb":
        import lancedb

        rows = [{"id": i, "vector": v.tolist(), **({"text": t} if texts else {})}
                for i, v, t in zip(IDS, V, texts or [None] * len(V), strict=False)]
        lancedb.connect(str(path)).create_table("docs", data=rows)
    else:
        from qdrant_client import QdrantClient, models

        c = QdrantClient(path=str(path))
        c.create_collection("docs", vectors_config=models.VectorParams(size=V.shape[1],
                                                                      distance=models.Distance.COSINE))
        c.upsert("docs", [models.PointStruct(id=i, vector=v.tolist(), payload={"text": t} if texts else {})
                          for i, (v, t) in enumerate(zip(V, texts or [None] * len(V), strict=True))])
        c.close()


@pytest.mark.parametrize("kind", KINDS)
def test_unstamped_collection_is_checked_by_a_sample_of_its_documents(toy, tmp_path, kind):
    good, bad = tmp_path / "good", tmp_path / "bad"
    _fill_natively(kind, good / kind, toy["x"].encode(DOCS[:40]), DOCS[:40])
    _fill_natively(kind, bad / kind, CountingEncoder("toy", 16, salt="b").encode(DOCS[:40]), DOCS[:40])
    with open_collection(spec(good, kind)) as col:
        assert col.read_stamp() is None
        report = col.check(toy["align"])
        assert report["checked"] == "sample" and report["sample_cosine"] > 0.99
        assert len(col.search(QUERIES[:3], toy["align"], top_k=5)[0]) == 5
        stamp = col.stamp(toy["align"])  # now checked by its stamp
        assert stamp["fingerprint"] == toy["x"].fingerprint()
    with open_collection(spec(good, kind)) as col:
        assert col.check(toy["align"])["checked"] == "stamp"
        with pytest.raises(EncoderMismatchError, match="never replaced"):
            col.stamp(EncoderEmbedder(CountingEncoder("other", 16)))
    with open_collection(spec(bad, kind)) as col:
        with pytest.raises(EncoderMismatchError, match="not 'toy' vectors of their texts") as e:
            col.search(QUERIES, toy["align"])
        one_line(e.value)
        with pytest.raises(EncoderMismatchError):
            col.stamp(toy["align"])
        assert col.read_stamp() is None
        with pytest.raises(StoreError, match="did not write"):
            col.add_texts(["more"], toy["align"], ids=["new"])


@pytest.mark.parametrize("kind", KINDS)
def test_unstamped_collection_without_texts_warns_that_only_the_dimension_was_checked(toy, tmp_path, kind):
    _fill_natively(kind, tmp_path / kind, toy["x"].encode(DOCS[:30]), None)
    with open_collection(spec(tmp_path, kind)) as col:
        with pytest.warns(RuntimeWarning, match="only its dimension"):
            hits = col.search(QUERIES[:2], toy["align"], top_k=3)
        assert [len(h) for h in hits] == [3, 3] and all(h.text is None for h in hits[0])


def test_each_aligner_is_checked_and_a_check_is_not_repeated(toy, toy_names, monkeypatch, tmp_path):
    _fill_natively("lancedb", tmp_path / "lancedb", toy["x"].encode(DOCS[:40]), DOCS[:40])
    toy["align"].save(tmp_path / "good")
    other = CountingEncoder("toy-b", 16, salt="b")
    monkeypatch.setitem(encoders._cache, "toy-b", other)
    LangAlign(other, toy["y"], held_out=0).fit(DOCS[:50], DOCS[:50]).save(tmp_path / "bad")
    with open_collection(spec(tmp_path, "lancedb")) as col:
        col.search(QUERIES[:2], toy["align"])  # unstamped: a sample of documents embedded again, once
        seen = toy["x"].texts_seen
        col.search(QUERIES[:2], toy["align"])
        assert toy["x"].texts_seen == seen  # the same aligner: the check is not repeated
        col.search(QUERIES[:2], str(tmp_path / "good"))
        for _ in range(3):  # a folder is loaded once per collection; another aligner is always checked
            with pytest.raises(EncoderMismatchError, match="not 'toy-b' vectors"):
                col.search(QUERIES[:2], str(tmp_path / "bad"))


def test_store_specs_and_missing_folders(tmp_path):
    assert parse_store_spec("chroma:a/b/docs") == ("chroma", __import__("pathlib").Path("a/b"), "docs")
    for bad in ("chroma", "pinecone:a/docs", "qdrant:docs", "lancedb:a/"):
        with pytest.raises(ValueError, match="KIND:PATH/COLLECTION|PATH/COLLECTION"):
            parse_store_spec(bad)
    for kind in KINDS:
        with pytest.raises(StoreError, match="no .* store at") as e:
            open_collection(spec(tmp_path, kind)).search(["q"], EncoderEmbedder(CountingEncoder("toy", 16)))
        one_line(e.value)
        assert not (tmp_path / kind).exists()  # reading never creates the store's folder


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_collection_names_the_ones_there(toy, tmp_path, kind):
    with open_collection(spec(tmp_path, kind, "there")) as col:
        col.add_texts(DOCS[:5], toy["align"])
    with open_collection(spec(tmp_path, kind, "missing")) as col, \
            pytest.raises(StoreError, match="no collection 'missing'.*it has: there"):
        col.info()


@pytest.mark.parametrize("module, extra", [
    ("langalign.integrations.langchain", "langchain"), ("langalign.integrations.llamaindex", "llamaindex")])
def test_a_missing_framework_is_one_line_naming_the_extra(monkeypatch, module, extra):
    blocked = "langchain_core.embeddings" if extra == "langchain" else "llama_index.core.base.embeddings.base"
    monkeypatch.setitem(sys.modules, blocked, None)  # import of it raises ImportError
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingExtraError, match=rf"pip install 'langalign\[{extra}\]'") as e:
        importlib.import_module(module)
    one_line(e.value)


@pytest.mark.parametrize("kind, blocked", [("chroma", "chromadb"), ("lancedb", "lancedb"),
                                           ("qdrant", "qdrant_client")])
def test_a_missing_store_package_is_one_line_naming_the_extra(monkeypatch, tmp_path, kind, blocked):
    monkeypatch.setitem(sys.modules, blocked, None)
    (tmp_path / kind).mkdir()
    with pytest.raises(MissingExtraError, match=rf"pip install 'langalign\[{kind}\]'"):
        open_collection(spec(tmp_path, kind)).exists()


# ---------------------------------------------------------------- framework classes

def test_langchain_and_llamaindex_classes_embed_documents_and_queries_apart(toy):
    from langalign.integrations.langchain import LangAlignEmbeddings
    from langalign.integrations.llamaindex import LangAlignEmbedding

    lc, li = LangAlignEmbeddings(toy["align"]), LangAlignEmbedding(toy["align"])
    docs = np.array(lc.embed_documents(DOCS[:4]), np.float32)
    want = toy["x"].encode(DOCS[:4])
    np.testing.assert_allclose(docs, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    q = toy["align"].to_source(["sentence number 3"])[0]
    np.testing.assert_allclose(lc.embed_query("sentence number 3"), q / np.linalg.norm(q), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(li.get_query_embedding("sentence number 3"), lc.embed_query("sentence number 3"))
    np.testing.assert_allclose(li.get_text_embedding_batch(DOCS[:4]), docs)
    raw = LangAlignEmbeddings(toy["align"], normalize=False)
    np.testing.assert_array_equal(np.array(raw.embed_query("sentence number 3"), np.float32), q)


def _framework_fill_and_query(kind: str, tmp_path, align, docs: list[str], ids: list[str], queries: list[str],
                              k: int) -> tuple[list[list[str]], str]:
    """Fill a collection through a framework's store class with langalign's class; its own top-k ids per query.

    Chroma and Qdrant through LangChain, LanceDB through LlamaIndex. Returns (ids, spec of the collection).
    """
    by_text = dict(zip(docs, ids, strict=True))
    path = tmp_path / f"fw-{kind}"
    if kind == "chroma":
        from langchain_chroma import Chroma

        from langalign.integrations.langchain import LangAlignEmbeddings

        store = Chroma.from_texts(docs, LangAlignEmbeddings(align), ids=ids, collection_name="docs",
                                  persist_directory=str(path),
                                  collection_configuration={"hnsw": {"space": "cosine", "ef_search": 2 * len(docs)}})
        got = [[d.id for d in store.similarity_search(q, k=k)] for q in queries]
    elif kind == "qdrant":
        from langchain_qdrant import QdrantVectorStore

        from langalign.integrations.langchain import LangAlignEmbeddings

        store = QdrantVectorStore.from_texts(docs, LangAlignEmbeddings(align), metadatas=[{"id": i} for i in ids],
                                             path=str(path), collection_name="docs")
        got = [[d.metadata["id"] for d in store.similarity_search(q, k=k)] for q in queries]
        store.client.close()  # local mode locks the folder
    else:
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.schema import TextNode
        from llama_index.vector_stores.lancedb import LanceDBVectorStore

        from langalign.integrations.llamaindex import LangAlignEmbedding

        vs = LanceDBVectorStore(uri=str(path), table_name="docs")
        index = VectorStoreIndex([TextNode(text=t, id_=i) for t, i in zip(docs, ids, strict=True)],
                                 storage_context=StorageContext.from_defaults(vector_store=vs),
                                 embed_model=LangAlignEmbedding(align))
        retriever = index.as_retriever(similarity_top_k=k)
        got = [[by_text[n.node.get_content()] for n in retriever.retrieve(q)] for q in queries]
    return got, f"{kind}:{path}/docs"


@pytest.mark.parametrize("kind", KINDS)
def test_collections_filled_through_the_frameworks_match_search_index(toy, tmp_path, kind):
    got, where = _framework_fill_and_query(kind, tmp_path, toy["align"], DOCS, IDS, QUERIES, 10)
    want = reference(toy)
    assert got == want
    with open_collection(where) as col:  # the same collection through langalign's adapter
        assert col.check(toy["align"])["checked"] == "sample"
        hits = col.search(QUERIES, toy["align"], top_k=10)
        texts = [[h.text for h in row] for row in hits]
        assert texts == [[DOCS[IDS.index(i)] for i in row] for row in want]


# ---------------------------------------------------------------- a running langalign serve

class _Server:
    def __init__(self, config):
        from langalign.serving import build_server

        self.server, self.sock, self.registry = build_server(config, log_level="warning", access_log=False)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        for _ in range(1200):  # bounded: 60 s
            if self.server.started and self.registry.state != "loading":
                break
            time.sleep(0.05)
        assert self.registry.state == "ready", self.registry.error

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


KEY = "integration-key-0123456789"


@pytest.fixture(scope="module")
def service(toy, tmp_path_factory):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from langalign.serving import AlignerSpec, ServeConfig

    d = tmp_path_factory.mktemp("svc")
    toy["align"].save(d / "bridge")
    s = _Server(ServeConfig(port=0, encoders=[toy["x"], toy["y"]], aligners={"br": AlignerSpec(d / "bridge")},
                            api_key=KEY))
    yield s
    s.stop()


def test_service_embedder_gives_the_in_process_vectors(toy, service):
    remote = ServiceEmbedder(service.url + "/v1", "br", api_key=KEY, batch_size=7)
    local = AlignerEmbedder(toy["align"])
    assert remote.space == {"name": "toy", "dim": 16, "fingerprint": toy["x"].fingerprint()}
    np.testing.assert_allclose(remote.embed_queries(QUERIES), local.embed_queries(QUERIES), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(remote.embed_documents(DOCS[:20]), local.embed_documents(DOCS[:20]), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_a_collection_written_and_queried_through_the_service(toy, service, tmp_path, kind):
    remote = ServiceEmbedder(service.url, "br", api_key=KEY)
    with open_collection(spec(tmp_path, kind)) as col:
        col.add_texts(DOCS, remote, ids=IDS)
        assert col.read_stamp()["fingerprint"] == toy["x"].fingerprint()  # stamped from the service's card
        assert ids_of(col.search(QUERIES, remote, top_k=10)) == reference(toy)
        assert ids_of(col.search(QUERIES, toy["align"], top_k=10)) == reference(toy)  # same stamp, in process


def test_service_framework_classes(toy, service):
    from langalign.integrations.langchain import LangAlignEmbeddings, LangAlignServiceEmbeddings
    from langalign.integrations.llamaindex import LangAlignServiceEmbedding

    lc = LangAlignServiceEmbeddings(service.url, "br", api_key=KEY)
    np.testing.assert_allclose(lc.embed_query("sentence number 5"),
                               LangAlignEmbeddings(toy["align"]).embed_query("sentence number 5"), rtol=1e-6, atol=1e-6)
    li = LangAlignServiceEmbedding(service.url, "br", api_key=KEY)
    np.testing.assert_allclose(li.get_query_embedding("sentence number 5"), lc.embed_query("sentence number 5"))
    np.testing.assert_allclose(li.get_text_embedding_batch(DOCS[:3]), lc.embed_documents(DOCS[:3]))


def test_service_errors_are_one_line(service):
    with pytest.raises(ServiceError, match="no aligner 'nope'.*serves: br") as e:
        ServiceEmbedder(service.url, "nope", api_key=KEY).embed_queries(["x"])
    one_line(e.value)
    with pytest.raises(ServiceError, match="answered 401.*API key"):
        ServiceEmbedder(service.url, "br", api_key="wrong-key-wrong-key").embed_queries(["x"])
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServiceError, match="cannot reach"):
        ServiceEmbedder(f"http://127.0.0.1:{port}", "br", timeout=5).embed_queries(["x"])


# ---------------------------------------------------------------- CLI

@pytest.fixture
def toy_names(monkeypatch, toy):
    monkeypatch.setitem(encoders._cache, "toy", toy["x"])
    monkeypatch.setitem(encoders._cache, "toy-y", toy["y"])


@pytest.mark.parametrize("kind", KINDS)
def test_cli_index_build_info_and_search_with_a_store(toy, toy_names, tmp_path, capsys, kind):
    (tmp_path / "docs.tsv").write_text("id\ttext\n" + "".join(f"{i}\t{t}\n" for i, t in zip(IDS, DOCS, strict=True)))
    (tmp_path / "queries.txt").write_text("\n".join(QUERIES) + "\n")
    toy["align"].save(tmp_path / "bridge")
    where = spec(tmp_path, kind)
    assert main(["index", "build", "--encoder", "toy", "--input", str(tmp_path / "docs.tsv"), "--id-column", "id",
                 "--store", where]) == 0
    assert "(stamped)" in capsys.readouterr().out
    assert main(["index", "info", "--store", where, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["count"] == 300 and info["stamp"]["encoder"] == "toy"
    assert main(["search", "--store", where, "--aligner", str(tmp_path / "bridge"), "--input",
                 str(tmp_path / "queries.txt"), "--top-k", "10", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [[h["id"] for h in r["hits"]] for r in rows] == reference(toy)
    # building over an existing collection is refused; another encoder's aligner is refused, one line
    assert main(["index", "build", "--encoder", "toy", "--input", str(tmp_path / "docs.tsv"), "--store", where]) == 2
    assert "already exists" in capsys.readouterr().err
    other = LangAlign(CountingEncoder("other", 16, salt="o"), toy["y"], held_out=0).fit(DOCS[:50], DOCS[:50])
    other.save(tmp_path / "other")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["search", "--store", where, "--aligner", str(tmp_path / "other"), "--query", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("langalign: error:") and "stamped with encoder" in err and len(err.splitlines()) == 1


def test_cli_index_stamp_and_add_with_a_store(toy, toy_names, tmp_path, capsys):
    _fill_natively("qdrant", tmp_path / "qdrant", toy["x"].encode(DOCS[:40]), DOCS[:40])
    where = spec(tmp_path, "qdrant")
    (tmp_path / "more.txt").write_text("another sentence\n")
    assert main(["index", "add", "--store", where, "--input", str(tmp_path / "more.txt")]) == 2
    assert "no langalign stamp" in capsys.readouterr().err
    assert main(["index", "stamp", "--store", where, "--encoder", "toy"]) == 0
    assert '"encoder": "toy"' in capsys.readouterr().out
    assert main(["index", "add", "--store", where, "--input", str(tmp_path / "more.txt")]) == 0
    assert "41 in all" in capsys.readouterr().out
    assert main(["search", "--store", where, "--query", "another sentence", "--top-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["text"] == "another sentence"


def test_langalign_error_base(tmp_path):
    assert issubclass(StoreError, LangAlignError) and issubclass(MissingExtraError, ImportError)


# ---------------------------------------------------------------- real models: Korean into English collections

def _english_training_texts(n: int) -> list[str]:
    """English training sentences from ../shared/data (SST-2 train), never Tatoeba: a small, fast bridge."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment" / "sst2" / "train.tsv"
    out, seen = [], set()
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        t = " ".join(line.split("\t")[0].split())
        if len(t.split()) >= 6 and t not in seen:
            seen.add(t)
            out.append(t)
        if len(out) == n:
            break
    return out


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from langalign.data import load_tatoeba
    from langalign.scale.cache import CachedEncoder, EmbeddingCache

    # a private embedding cache: each store re-embeds the same documents once, not once per store
    cache = EmbeddingCache(tmp_path_factory.mktemp("embedding-cache"))
    minilm, use = CachedEncoder("minilm", cache), CachedEncoder("use-multilingual", cache)
    bridge = LangAlign(minilm, use, mapper="ridge").fit_bridge(_english_training_texts(600))
    tatoeba = load_tatoeba("ko")
    docs, queries = tatoeba.source[:150], tatoeba.target[:50]
    ids = [f"eng-{i}" for i in range(len(docs))]
    idx = SearchIndex(minilm).build(docs, ids=ids)
    ref = [[h.id for h in row] for row in idx.search(queries, top_k=10, aligner=bridge)]
    # an aligner into another space (use-multilingual's 512-d), for the refusal
    other = LangAlign(use, use, mapper="centering").fit(docs[:50], docs[:50])
    return {"bridge": bridge, "docs": docs, "queries": queries, "ids": ids, "ref": ref, "other": other}


@pytest.mark.integration
@pytest.mark.parametrize("kind", KINDS)
def test_korean_queries_into_english_collections_filled_through_the_frameworks(real, tmp_path, kind):
    got, where = _framework_fill_and_query(kind, tmp_path, real["bridge"], real["docs"], real["ids"],
                                           real["queries"], 10)
    assert got == real["ref"]  # the framework's own query, through langalign's class: SearchIndex's top-10
    hits_top1 = sum(1 for i, row in enumerate(got) if row[0] == real["ids"][i])
    assert hits_top1 >= 0.3 * len(got)  # the bridge finds translations (MiniLM alone: about 0)
    with open_collection(where) as col:
        report = col.check(real["bridge"])
        assert report["checked"] == "sample" and report["sample_cosine"] > 0.99
        by_text = dict(zip(real["docs"], real["ids"], strict=True))
        assert [[by_text[h.text] for h in row] for row in col.search(real["queries"], real["bridge"])] == real["ref"]
        col.stamp(real["bridge"])
        assert col.read_stamp()["encoder"] == "minilm"
    # an aligner into another space is refused by the stamp, one line
    with open_collection(where) as col, pytest.raises(EncoderMismatchError, match="512") as e:
        col.search(real["queries"][:2], real["other"])
    one_line(e.value)


@pytest.mark.integration
def test_cli_search_a_chroma_collection_in_korean(real, tmp_path, capsys):
    real["bridge"].save(tmp_path / "bridge")
    (tmp_path / "docs.tsv").write_text("id\ttext\n" + "".join(
        f"{i}\t{t}\n" for i, t in zip(real["ids"], real["docs"], strict=True)), encoding="utf-8")
    (tmp_path / "ko.txt").write_text("\n".join(real["queries"]) + "\n", encoding="utf-8")
    where = f"chroma:{tmp_path / 'chroma'}/tatoeba"
    assert main(["index", "build", "--encoder", "minilm", "--input", str(tmp_path / "docs.tsv"), "--id-column", "id",
                 "--store", where]) == 0
    capsys.readouterr()
    assert main(["search", "--store", where, "--aligner", str(tmp_path / "bridge"), "--input",
                 str(tmp_path / "ko.txt"), "--top-k", "10", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [[h["id"] for h in r["hits"]] for r in rows] == real["ref"]
