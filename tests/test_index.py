"""SearchIndex: build, add, search (cosine, CSLS, through an aligner), save/load, damaged files, CLI."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from _scale_helpers import CountingEncoder, paired_encoder, text_vectors

from langalign import LangAlign, encoders
from langalign.cli import main
from langalign.errors import ArtefactError, EncoderMismatchError
from langalign.index import SearchIndex
from langalign.scale.retrieval_faiss import faiss_available, retrieve

DOCS = [f"document number {i}" for i in range(300)]
BACKENDS = ["numpy"] + (["faiss"] if faiss_available() else [])


@pytest.fixture
def enc():
    return CountingEncoder("toy", 16)


@pytest.fixture(scope="module")
def bridge():
    x, y = CountingEncoder("toy", 16), paired_encoder("toy-y", 16)
    return LangAlign(x, y, held_out=0).fit(DOCS, DOCS), x, y


def _ids(hits):
    return [[h.id for h in row] for row in hits]


@pytest.mark.parametrize("backend", BACKENDS)
def test_build_search_finds_each_document_itself(enc, backend):
    idx = SearchIndex(enc, backend=backend).build(DOCS)
    hits = idx.search(DOCS[:20], top_k=3)
    assert [row[0].id for row in hits] == [str(i) for i in range(20)]
    assert all(row[0].text == DOCS[i] for i, row in enumerate(hits))
    assert all(abs(row[0].score - 1.0) < 1e-5 and row[0].score >= row[1].score >= row[2].score for row in hits)
    assert len(idx) == 300


def test_backends_agree(enc):
    if not faiss_available():
        pytest.skip("faiss not installed")
    Q = text_vectors(DOCS[:40], 16) + np.random.default_rng(1).standard_normal((40, 16)).astype(np.float32)
    a = SearchIndex(enc, backend="numpy").build(DOCS).search_vectors(Q, 5)
    b = SearchIndex(enc, backend="faiss").build(DOCS).search_vectors(Q, 5)
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    assert (a[1][:, 0] == b[1][:, 0]).all()


def test_add_encodes_only_new_documents_and_keeps_ids(enc):
    idx = SearchIndex(enc).build(DOCS[:200], ids=[f"d{i}" for i in range(200)])
    seen = enc.texts_seen
    idx.add(DOCS[200:])
    assert enc.texts_seen - seen == 100  # the first 200 were not re-encoded
    assert len(idx) == 300
    hits = idx.search([DOCS[5], DOCS[250]], top_k=1)
    assert _ids(hits) == [["d5"], ["250"]]  # default ids are row numbers


def test_duplicate_ids_are_refused_and_leave_the_index_unchanged(enc):
    idx = SearchIndex(enc).build(DOCS[:10], ids=[f"d{i}" for i in range(10)])
    with pytest.raises(ValueError, match="d3"):
        idx.add(["new a", "new b"], ids=["new", "d3"])
    with pytest.raises(ValueError, match="more than once"):
        idx.add(["x", "y"], ids=["z", "z"])
    assert len(idx) == 10
    assert idx.documents([9]) == [("d9", DOCS[9])]
    idx.add(["new a"], ids=["new"])  # the failed transaction left no partial rows behind
    assert idx.search(["new a"], 1)[0][0].id == "new"


def test_bad_inputs_are_clear_errors(enc):
    idx = SearchIndex(enc)
    with pytest.raises(ValueError, match="empty"):
        idx.build([])
    with pytest.raises(TypeError, match="single str"):
        idx.build("one text")
    with pytest.raises(ValueError, match="empty"):
        SearchIndex(enc).build_embeddings(np.zeros((2, 16)), ["a", "b"]).search_vectors(np.zeros((0, 16)))
    idx.build(DOCS[:5])
    with pytest.raises(ValueError, match="top_k"):
        idx.search(["a"], top_k=0)
    with pytest.raises(ValueError, match="dimension"):
        idx.search_vectors(np.ones((1, 8)))
    with pytest.raises(ValueError, match="ids"):
        idx.add(["a", "b"], ids=["only one"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_round_trip(enc, tmp_path, backend):
    idx = SearchIndex(enc, backend=backend).build(DOCS, ids=[f"doc-{i}" for i in range(300)])
    before = idx.search(DOCS[:30:3], top_k=4)
    idx.save(tmp_path / "idx")
    cfg = json.loads((tmp_path / "idx" / "config.json").read_text())
    assert cfg["kind"] == "search-index" and cfg["encoder"]["name"] == "toy"
    assert cfg["encoder"]["fingerprint"] == enc.fingerprint()
    back = SearchIndex.load(tmp_path / "idx", encoder=enc, backend=backend)
    assert back.search(DOCS[:30:3], top_k=4) == before


def test_load_checks_the_encoder_fingerprint(enc, tmp_path):
    SearchIndex(enc).build(DOCS[:20]).save(tmp_path / "idx")
    other = CountingEncoder("toy", 16, salt="another model")
    with pytest.raises(EncoderMismatchError, match="probe sentences differ"):
        SearchIndex.load(tmp_path / "idx", encoder=other)
    with pytest.raises(EncoderMismatchError, match="dimension"):
        SearchIndex.load(tmp_path / "idx", encoder=CountingEncoder("toy", 8))


def test_add_after_reload_links_old_segments_and_writes_only_new_rows(enc, tmp_path):
    SearchIndex(enc).build(DOCS[:200]).save(tmp_path / "idx")
    (old_seg,) = (tmp_path / "idx").glob("vectors-*.safetensors")
    inode = old_seg.stat().st_ino
    idx = SearchIndex.load(tmp_path / "idx", encoder=enc)
    idx.add(DOCS[200:])
    idx.save(tmp_path / "idx")
    segs = sorted((tmp_path / "idx").glob("vectors-*.safetensors"))
    assert len(segs) == 2
    assert any(s.name == old_seg.name and s.stat().st_ino == inode for s in segs)  # linked, not rewritten
    back = SearchIndex.load(tmp_path / "idx", encoder=enc)
    assert len(back) == 300 and back.search([DOCS[299]], 1)[0][0].id == "299"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_save_refuses_to_replace_a_folder_that_is_not_an_index(enc, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(ArtefactError, match="refusing"):
        SearchIndex(enc).build(DOCS[:3]).save(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


def _truncate_segment(folder: Path) -> str:
    seg = next(folder.glob("vectors-*.safetensors"))
    seg.write_bytes(seg.read_bytes()[:50])
    return seg.name


def _edit_docs(folder: Path) -> str:
    db = folder / "docs.sqlite"
    os.chmod(db, 0o644)
    con = sqlite3.connect(db)
    con.execute("UPDATE docs SET text = 'tampered' WHERE row = 0")
    con.commit()
    con.close()
    return "docs.sqlite"


def _delete_docs(folder: Path) -> str:
    (folder / "docs.sqlite").unlink()
    return "docs.sqlite"


def _garble_config(folder: Path) -> str:
    (folder / "config.json").write_text("{not json")
    return "config.json"


def _traversal_name(folder: Path) -> str:
    cfg = json.loads((folder / "config.json").read_text())
    cfg["segments"][0]["file"] = "../outside.safetensors"
    (folder / "config.json").write_text(json.dumps(cfg))
    return "malformed segment"


def _symlink_out(folder: Path, tmp: Path) -> str:
    seg = next(folder.glob("vectors-*.safetensors"))
    outside = tmp / "elsewhere.safetensors"
    outside.write_bytes(seg.read_bytes())
    seg.unlink()
    seg.symlink_to(outside)
    return "outside the index folder"


def _wrong_count(folder: Path) -> str:
    cfg = json.loads((folder / "config.json").read_text())
    cfg["count"] = 7
    (folder / "config.json").write_text(json.dumps(cfg))
    return "count"


@pytest.mark.parametrize("damage", [_truncate_segment, _edit_docs, _delete_docs, _garble_config, _traversal_name,
                                    _symlink_out, _wrong_count])
def test_damaged_index_gives_a_clear_artefact_error(enc, tmp_path, damage):
    folder = tmp_path / "idx"
    SearchIndex(enc).build(DOCS[:50]).save(folder)
    args = (folder, tmp_path) if damage is _symlink_out else (folder,)
    expected = damage(*args)
    with pytest.raises(ArtefactError) as e:
        SearchIndex.load(folder, encoder=enc)
    assert expected in str(e.value)


@pytest.mark.parametrize("edit, message", [
    ({"kind": "aligner"}, "holds a 'aligner' artefact, expected 'search-index'"),
    ({"format_version": 99}, "was written by a newer langalign (format 99"),
    ({"format_version": "1"}, "missing or invalid format_version '1'"),
    ({"format": "other"}, "is not a langalign config"),
])
def test_index_config_gets_the_checks_of_every_artefact(enc, tmp_path, edit, message):
    """An index's config.json is read by artefacts.read_config_file, like an aligner's: the same errors."""
    folder = tmp_path / "idx"
    SearchIndex(enc).build(DOCS[:20]).save(folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, **edit}))
    with pytest.raises(ArtefactError) as e:
        SearchIndex.load(folder, encoder=enc)
    assert message in str(e.value) and str(folder / "config.json") in str(e.value)


def test_missing_index_folder(tmp_path):
    with pytest.raises(ArtefactError, match="does not exist"):
        SearchIndex.load(tmp_path / "nope")


def test_queries_through_an_aligner_reach_the_index(bridge):
    align, x, y = bridge
    idx = SearchIndex(x).build(DOCS)
    queries = DOCS[::10]
    gold = [str(i) for i in range(0, 300, 10)]
    bridged = [row[0].id for row in idx.search(queries, 1, aligner=align)]  # read by toy-y, mapped to toy
    raw = [str(r) for r in idx.search_vectors(y.encode(queries), 1)[1][:, 0]]  # toy-y vectors, no map
    acc_bridged = np.mean(np.array(bridged) == np.array(gold))
    assert acc_bridged > np.mean(np.array(raw) == np.array(gold))
    assert acc_bridged >= 0.9
    # vectors in the aligner's target space work the same as texts
    assert idx.search(y.encode(queries[:3]), 1, aligner=align) == idx.search(queries[:3], 1, aligner=align)


def test_an_aligner_into_another_space_is_refused(bridge):
    align, x, y = bridge
    idx = SearchIndex(y).build(DOCS[:20])  # index in toy-y space; the aligner maps into toy
    with pytest.raises(EncoderMismatchError, match="toy"):
        idx.search(["q"], 1, aligner=align)


@pytest.mark.parametrize("backend", BACKENDS)
def test_csls_matches_bitext_csls_and_needs_reference_queries(enc, backend, tmp_path):
    idx = SearchIndex(enc, backend=backend).build(DOCS)
    rng = np.random.default_rng(0)
    Q = (text_vectors(DOCS[:60], 16) + 0.9 * rng.standard_normal((60, 16))).astype(np.float32)
    scores, rows = idx.search_vectors(Q, 5, csls=True)
    ref = retrieve(Q, text_vectors(DOCS, 16), k=5, method="csls", backend="numpy")
    np.testing.assert_allclose(scores, ref.scores, atol=2e-5)
    assert (rows[:, 0] == ref.indices[:, 0]).mean() > 0.95  # equal up to float32 near-ties
    assert (rows[:, 0] != idx.search_vectors(Q, 1)[1][:, 0]).any()  # CSLS really re-ranks here
    with pytest.raises(ValueError, match="calibrate_csls"):
        idx.search_vectors(Q[:3], 5, csls=True)
    idx.calibrate_csls(Q)  # now one query at a time gets the same CSLS ranking as the batch
    one = idx.search_vectors(Q[7:8], 5, csls=True)
    np.testing.assert_allclose(one[0][0], scores[7], atol=2e-5)
    idx.save(tmp_path / "idx")
    back = SearchIndex.load(tmp_path / "idx", encoder=enc, backend=backend)
    np.testing.assert_allclose(back.search_vectors(Q[7:8], 5, csls=True)[0], one[0], atol=1e-6)
    back.add(["a brand new document"])  # its hubness comes from the stored reference queries
    assert back.search_vectors(Q[:2], 3, csls=True)[0].shape == (2, 3)


# ---------------------------------------------------------------- CLI

@pytest.fixture
def toy_named(monkeypatch, enc):
    monkeypatch.setitem(encoders._cache, "toy", enc)  # load_encoder("toy") returns it
    return enc


def test_cli_build_add_info_search(toy_named, tmp_path, capsys):
    docs = tmp_path / "docs.tsv"
    docs.write_text("id\ttext\n" + "".join(f"d{i}\t{t}\n" for i, t in enumerate(DOCS[:50])), encoding="utf-8")
    more = tmp_path / "more.txt"
    more.write_text("\n".join(DOCS[50:60]) + "\n", encoding="utf-8")
    idx = tmp_path / "idx"
    assert main(["index", "build", "--encoder", "toy", "--input", str(docs), "--id-column", "id",
                 "--output", str(idx)]) == 0
    assert "indexed 50 documents" in capsys.readouterr().out
    assert main(["index", "add", "--index", str(idx), "--input", str(more)]) == 0
    assert "60 in all" in capsys.readouterr().out
    assert main(["index", "info", "--index", str(idx), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 60
    assert main(["search", "--index", str(idx), "--query", DOCS[3], "--query", DOCS[55], "--top-k", "2",
                 "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["hits"][0]["id"] for r in lines] == ["d3", "55"]


def test_cli_damaged_index_is_one_line_error(toy_named, tmp_path, capsys):
    SearchIndex(toy_named).build(DOCS[:5]).save(tmp_path / "idx")
    _truncate_segment(tmp_path / "idx")
    assert main(["search", "--index", str(tmp_path / "idx"), "--query", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("langalign: error:") and "checksum" in err and err.count("\n") == 1


def test_an_encoder_recorded_as_a_path_is_never_loaded_from_the_config(tmp_path, monkeypatch):
    path_named = CountingEncoder("/models/my-encoder", 16)
    SearchIndex(path_named).build(DOCS[:20]).save(tmp_path / "idx")
    with pytest.raises(ArtefactError, match="local path"):
        SearchIndex.load(tmp_path / "idx").search(["q"], 1)
    # the caller may name it, by object or by path; it is checked against the recorded fingerprint
    assert SearchIndex.load(tmp_path / "idx", encoder=path_named).search([DOCS[4]], 1)[0][0].id == "4"
    monkeypatch.setitem(encoders._cache, "/models/my-encoder", path_named)
    assert SearchIndex.load(tmp_path / "idx", encoder="/models/my-encoder").search([DOCS[4]], 1)[0][0].id == "4"
