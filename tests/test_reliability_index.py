"""Issue 21 (reliability, round three), the search index: a repeated or concurrent `index add` never loses or
corrupts documents, readers always see one whole version, a killed writer is undone, tampered databases and
huge query vectors are refused or handled, outputs are checked before any work (items 1, 2, 7, 8, 9, 10)."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from _scale_helpers import CountingEncoder, text_vectors
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from langalign import _io
from langalign.errors import ArtefactError
from langalign.index import SearchIndex, add_documents, delete_documents
from langalign.index import store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOCS = [f"document number {i}" for i in range(300)]


def toy_cli(*argv: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`langalign ARGV` in a subprocess, with the synthetic encoder "toy"."""
    e = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    return subprocess.run([sys.executable, str(HERE / "_toy_cli.py"), *argv], capture_output=True, text=True,
                          env=e, timeout=timeout)


def contents(folder: Path) -> dict[str, str]:
    idx = SearchIndex.load(folder, encoder=CountingEncoder("toy", 16))
    return dict(idx.documents(range(len(idx))))


# ---------------------------------------------------------------- item 1: repeated add

def test_the_issue_repro_adding_the_same_file_twice_keeps_both_copies_and_loads(tmp_path):
    """Before: both adds exited 0, then every load failed with a checksum error (segment file names were
    the hash of the vectors, so the second segment landed on the first)."""
    (tmp_path / "d.txt").write_text("alpha doc\nbeta doc\ngamma doc\n")
    (tmp_path / "m.txt").write_text("delta doc\nepsilon doc\n")
    r1 = tmp_path / "r1"
    assert toy_cli("index", "build", "--encoder", "toy", "--input", str(tmp_path / "d.txt"), "--output",
                   str(r1)).returncode == 0
    for _ in range(2):
        r = toy_cli("index", "add", "--index", str(r1), "--input", str(tmp_path / "m.txt"))
        assert r.returncode == 0, r.stderr
    r = toy_cli("index", "info", "--index", str(r1), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["documents"] == 7
    docs = contents(r1)
    assert sorted(docs.values()) == sorted(["alpha doc", "beta doc", "gamma doc"] + ["delta doc", "epsilon doc"] * 2)
    assert len(set(docs)) == 7  # every copy has its own id
    r = toy_cli("search", "--index", str(r1), "--query", "delta doc", "--top-k", "2", "--json")
    assert r.returncode == 0 and {h["text"] for h in json.loads(r.stdout)["hits"]} == {"delta doc"}


def test_a_repeated_add_with_ids_is_refused_in_one_line_and_changes_nothing(tmp_path):
    docs = tmp_path / "d.tsv"
    docs.write_text("id\ttext\n" + "".join(f"d{i}\t{t}\n" for i, t in enumerate(DOCS[:5])))
    more = tmp_path / "m.tsv"
    more.write_text("id\ttext\nm1\tnew one\nm2\tnew two\n")
    idx = tmp_path / "idx"
    assert toy_cli("index", "build", "--encoder", "toy", "--input", str(docs), "--id-column", "id", "--output",
                   str(idx)).returncode == 0
    assert toy_cli("index", "add", "--index", str(idx), "--input", str(more), "--id-column", "id").returncode == 0
    before = {p.name: p.read_bytes() for p in idx.iterdir()}
    r = toy_cli("index", "add", "--index", str(idx), "--input", str(more), "--id-column", "id")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "already in the index: 'm1', 'm2'" in r.stderr
    assert {p.name: p.read_bytes() for p in idx.iterdir()} == before
    assert len(contents(idx)) == 7


def test_segments_of_equal_vectors_get_distinct_files_and_old_versions_are_never_written_through(tmp_path):
    enc = CountingEncoder("toy", 16)
    folder = tmp_path / "idx"
    SearchIndex(enc).build(DOCS[:3]).save(folder)
    old_segment = next(folder.glob("vectors-*.safetensors"))
    keep = tmp_path / "kept-link"
    os.link(old_segment, keep)  # the old version's bytes, wherever they end up
    old_bytes = keep.read_bytes()
    for _ in range(2):
        idx = SearchIndex.load(folder, encoder=enc)
        idx.add(DOCS[:3])  # the very same vectors again
        idx.save(folder)
    cfg = json.loads((folder / "config.json").read_text())
    files = [s["file"] for s in cfg["segments"]]
    assert len(files) == len(set(files)) == 3
    assert keep.read_bytes() == old_bytes  # hard-linked, never rewritten
    back = SearchIndex.load(folder, encoder=enc)
    assert len(back) == 9 and [h.text for h in back.search([DOCS[1]], 3)[0]] == [DOCS[1]] * 3
    for s in cfg["segments"]:  # every recorded checksum is of the bytes on disk
        assert store.sha256_file(folder / s["file"]) == s["sha256"]


def test_python_add_with_existing_ids_is_one_value_error_and_adds_nothing():
    idx = SearchIndex(CountingEncoder("toy", 16)).build(DOCS[:4], ids=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"2 document id\(s\) already in the index: 'b', 'd'"):
        idx.add(["x", "y", "z"], ids=["b", "new", "d"])
    assert len(idx) == 4 and idx.documents([3]) == [("d", DOCS[3])]
    idx.add(["x"])  # default ids count on from the row number
    assert idx.documents([4]) == [("4", "x")]


def test_default_ids_are_never_reused_after_a_delete(tmp_path):
    enc = CountingEncoder("toy", 16)
    idx = SearchIndex(enc).build(DOCS[:3])  # ids 0, 1, 2
    assert idx.delete(["1"]) == 1
    idx.add(["new"])
    assert dict(idx.documents(range(len(idx)))) == {"0": DOCS[0], "2": DOCS[2], "3": "new"}
    idx.save(tmp_path / "idx")
    back = SearchIndex.load(tmp_path / "idx", encoder=enc)
    back.delete(["3"])
    back.add(["newer"])
    assert dict(back.documents(range(len(back)))) == {"0": DOCS[0], "2": DOCS[2], "4": "newer"}
    with pytest.raises(ValueError, match="not in the index: 'nope'"):
        back.delete(["nope", "0"])
    assert len(back) == 3


def test_cli_delete(tmp_path):
    (tmp_path / "d.txt").write_text("\n".join(DOCS[:6]) + "\n")
    idx = tmp_path / "idx"
    assert toy_cli("index", "build", "--encoder", "toy", "--input", str(tmp_path / "d.txt"), "--output",
                   str(idx)).returncode == 0
    r = toy_cli("index", "delete", "--index", str(idx), "--id", "2", "--id", "4")
    assert r.returncode == 0 and "removed 2 documents" in r.stdout and "(4 left)" in r.stdout
    assert set(contents(idx)) == {"0", "1", "3", "5"}
    r = toy_cli("index", "delete", "--index", str(idx), "--id", "2")
    assert r.returncode == 2 and "not in the index: '2'" in r.stderr and r.stderr.count("\n") == 1


# ---------------------------------------------------------------- item 2: concurrent writers and readers

def test_concurrent_cli_adds_keep_every_acknowledged_document(tmp_path):
    """Before: two `index add` at once both printed "added 200" and only one writer's documents remained."""
    (tmp_path / "d.txt").write_text("\n".join(DOCS[:10]) + "\n")
    idx = tmp_path / "idx"
    assert toy_cli("index", "build", "--encoder", "toy", "--input", str(tmp_path / "d.txt"), "--output",
                   str(idx)).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TOY_ENCODE_SLEEP": "0.3"}
    procs = []
    for w in range(4):
        f = tmp_path / f"w{w}.tsv"
        f.write_text("id\ttext\n" + "".join(f"w{w}-{i}\twriter {w} text {i}\n" for i in range(40)))
        procs.append(subprocess.Popen([sys.executable, str(HERE / "_toy_cli.py"), "index", "add", "--index",
                                       str(idx), "--input", str(f), "--id-column", "id", "--batch-size", "10"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1] for o in outs]
    assert all("added 40 documents" in o[0] for o in outs)
    docs = contents(idx)
    assert len(docs) == 10 + 160
    assert all(docs[f"w{w}-{i}"] == f"writer {w} text {i}" for w in range(4) for i in range(40))


def test_readers_during_writes_never_see_a_damaged_index(tmp_path):
    """Before: loads during a write failed with "damaged, rebuild the index" (31 of 2,692)."""
    enc = CountingEncoder("toy", 16)
    folder = tmp_path / "idx"
    SearchIndex(enc).build(DOCS[:20]).save(folder)
    errors: list[str] = []
    sizes: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                idx = SearchIndex.load(folder, encoder=enc)
                n = len(idx)
                assert len(idx.documents(range(n))) == n  # the docs table matches the vectors' version
                sizes.append(n)
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(f"{type(e).__name__}: {e}")

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(25):
            add_documents(folder, [f"added {i} {j}" for j in range(3)], encoder=enc)
    finally:
        stop.set()
        for t in readers:
            t.join(60)
    assert errors == []
    assert len(sizes) > 0 and all(20 <= n <= 95 and (n - 20) % 3 == 0 for n in sizes)
    assert len(SearchIndex.load(folder, encoder=enc)) == 95


def test_a_stale_in_memory_index_is_not_saved_over_another_writers_documents(tmp_path):
    enc = CountingEncoder("toy", 16)
    folder = tmp_path / "idx"
    SearchIndex(enc).build(DOCS[:5]).save(folder)
    mine = SearchIndex.load(folder, encoder=enc)
    add_documents(folder, ["someone else's document"], encoder=enc)
    mine.add(["my document"])
    with pytest.raises(ArtefactError, match="changed by another writer since this SearchIndex was loaded"):
        mine.save(folder)
    assert "someone else's document" in contents(folder).values()
    mine.save(tmp_path / "elsewhere")  # a copy elsewhere is fine
    fresh = SearchIndex(enc).build(["a whole new index"])
    fresh.save(folder)  # so is replacing it with a new build, as `index build` does
    assert list(contents(folder).values()) == ["a whole new index"]


def test_a_writer_waiting_too_long_for_the_lock_gets_one_clear_error(tmp_path):
    enc = CountingEncoder("toy", 16)
    folder = tmp_path / "idx"
    SearchIndex(enc).build(DOCS[:5]).save(folder)
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with store.writer_lock(folder):
            held.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(30)
        with pytest.raises(ArtefactError, match="another process is writing the index"):
            add_documents(folder, ["late"], encoder=enc, lock_timeout=0.2)
    finally:
        release.set()
        t.join(30)
    add_documents(folder, ["late"], encoder=enc)
    assert len(contents(folder)) == 6


_KILL_BETWEEN_RENAMES = """
import os, sys
sys.path.insert(0, {here!r})
from _scale_helpers import CountingEncoder
from langalign import _io
from langalign.index import SearchIndex
_io._exchange = lambda a, b: False          # the portable two-rename swap
real_replace = os.replace
calls = []
def replace(src, dst):
    calls.append(dst)
    if str(src).endswith("/x") or ".tmp-" not in str(src):
        return real_replace(src, dst)
    os._exit(9)                               # killed after moving the old version aside
os.replace = replace
enc = CountingEncoder("toy", 16)
idx = SearchIndex.load({folder!r}, encoder=enc)
idx.add(["never acknowledged"])
idx.save({folder!r})
"""


def test_a_writer_killed_between_the_two_renames_is_undone_on_the_next_open(tmp_path):
    """Before: the index was "not found" and its data sat in a hidden .NAME.old-* folder."""
    enc = CountingEncoder("toy", 16)
    folder = tmp_path / "idx"
    SearchIndex(enc).build(DOCS[:5]).save(folder)
    r = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_RENAMES.format(here=str(HERE), folder=str(folder))],
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 9, r.stderr
    assert not folder.exists() and list(tmp_path.glob(".idx.old-*/x"))  # the state the kill left
    back = SearchIndex.load(folder, encoder=enc)  # a reader puts the previous version back
    assert len(back) == 5 and folder.is_dir()
    assert not list(tmp_path.glob(".idx.old-*"))
    add_documents(folder, ["after"], encoder=enc)  # and the next writer cleans the rest
    assert len(contents(folder)) == 6


def test_the_swap_is_one_atomic_exchange_where_the_kernel_has_it(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "f").write_text("A")
    (b / "f").write_text("B")
    if not _io._exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    assert (a / "f").read_text() == "B" and (b / "f").read_text() == "A"


# ---------------------------------------------------------------- item 8: leftovers of killed writers

_KILL_INSIDE_WRITE = """
import os, sys
from pathlib import Path
from langalign._io import atomic_dir
with atomic_dir({target!r}) as tmp:
    (Path(tmp) / "half").write_text("half written")
    os._exit(9)
"""


def test_leftovers_of_a_killed_write_are_removed_by_the_next_write_but_not_while_their_writer_lives(tmp_path,
                                                                                                 monkeypatch):
    target = tmp_path / "art"
    r = subprocess.run([sys.executable, "-c", _KILL_INSIDE_WRITE.format(target=str(target))],
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=60)
    assert r.returncode == 9
    assert len(list(tmp_path.glob(".art.tmp-*"))) == 1
    live = Path(tempfile.mkdtemp(prefix=".art.tmp-", dir=tmp_path))
    live_fd = _io._open_locked_dir(live)  # another writer, alive, mid-write
    monkeypatch.setattr(_io, "LEFTOVER_GRACE_S", 0.0)
    try:
        with _io.atomic_dir(target) as tmp:
            (tmp / "f").write_text("done")
        left = list(tmp_path.glob(".art.*"))
        assert left == [live]  # the killed run's folder is gone, the living writer's is kept
    finally:
        os.close(live_fd)
    assert (target / "f").read_text() == "done"


_KILL_IN_SCRATCH = """
import os
from langalign._io import scratch_dir
with scratch_dir("langalign-pool-") as tmp:
    print(tmp, flush=True)
    os._exit(9)
"""


def test_scratch_folders_of_killed_runs_are_removed_by_the_next_run(monkeypatch):
    r = subprocess.run([sys.executable, "-c", _KILL_IN_SCRATCH], env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                       capture_output=True, text=True, timeout=60)
    stale = Path(r.stdout.strip())
    assert r.returncode == 9 and stale.is_dir()
    monkeypatch.setattr(_io, "LEFTOVER_GRACE_S", 0.0)
    with _io.scratch_dir("langalign-pool-") as mine:
        assert mine.is_dir() and not stale.exists()
    assert not mine.exists()


# ---------------------------------------------------------------- item 7: tampered docs.sqlite

def _retamper(folder: Path, sql: list[str]) -> None:
    """Edit docs.sqlite and update its checksum in config.json, as a deliberate tamperer would."""
    db = folder / "docs.sqlite"
    con = sqlite3.connect(db)
    for q in sql:
        con.execute(q)
    con.commit()
    con.close()
    cfg = json.loads((folder / "config.json").read_text())
    cfg["docs_sha256"] = store.sha256_file(db)
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("sql, fragment", [
    (["ALTER TABLE docs RENAME TO real_docs",
      "CREATE VIEW docs(row, id, text) AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
      "SELECT x, x, x FROM c"], "view docs"),
    (["CREATE TABLE d2 (row INTEGER PRIMARY KEY, id TEXT, text TEXT)", "INSERT INTO d2 SELECT * FROM docs",
      "DROP TABLE docs", "ALTER TABLE d2 RENAME TO docs"], "does not hold exactly the docs table"),
    (["CREATE TRIGGER t AFTER INSERT ON docs BEGIN SELECT 1; END"], "trigger t"),
    (["CREATE TABLE extra (x)"], "table extra"),
])
def test_a_docs_database_of_another_shape_is_refused_at_once(tmp_path, sql, fragment):
    """Before: a VIEW with a recursive CTE hung `index info` (and /health) forever; a table without UNIQUE ids
    loaded."""
    enc = CountingEncoder("toy", 16)
    folder = tmp_path / "idx"
    SearchIndex(enc).build(DOCS[:5]).save(folder)
    _retamper(folder, sql)
    with pytest.raises(ArtefactError) as e:
        SearchIndex.load(folder, encoder=enc)
    assert fragment in str(e.value) and "not a langalign index" in str(e.value)


def test_checking_the_documents_is_bounded_in_time(tmp_path, monkeypatch):
    enc = CountingEncoder("toy", 16)
    folder = tmp_path / "idx"
    SearchIndex(enc).build([f"text {i}" for i in range(5000)]).save(folder)
    monkeypatch.setattr(store, "DB_CHECK_SECONDS", 0.0)  # every check overruns its bound at once
    with pytest.raises(ArtefactError, match="took longer than 0 s"):
        SearchIndex.load(folder, encoder=enc)


def test_cli_info_on_the_recursive_view_answers_one_line(tmp_path):
    (tmp_path / "d.txt").write_text("a\nb\n")
    idx = tmp_path / "idx"
    assert toy_cli("index", "build", "--encoder", "toy", "--input", str(tmp_path / "d.txt"), "--output",
                   str(idx)).returncode == 0
    _retamper(idx, ["ALTER TABLE docs RENAME TO real_docs",
                    "CREATE VIEW docs(row, id, text) AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                    "FROM c) SELECT x, x, x FROM c"])
    r = toy_cli("index", "info", "--index", str(idx), timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("langalign: error:") and "view docs" in r.stderr


# ---------------------------------------------------------------- item 9: outputs checked before the work

def test_index_build_refuses_an_aligner_folder_before_encoding(tmp_path):
    """Before: refused only after encoding every document (49 s for 3,000)."""
    from langalign import LangAlign

    x = CountingEncoder("toy", 16)
    LangAlign(x, x, held_out=0).fit(DOCS[:50], DOCS[:50]).save(tmp_path / "aligner")
    before = {p.name: p.read_bytes() for p in (tmp_path / "aligner").iterdir()}
    (tmp_path / "d.txt").write_text("\n".join(DOCS) + "\n")
    r = toy_cli("index", "build", "--encoder", "toy", "--input", str(tmp_path / "d.txt"), "--output",
                str(tmp_path / "aligner"), env={"TOY_ENCODE_SLEEP": "600"}, timeout=60)
    assert r.returncode == 2 and "not a langalign search index" in r.stderr  # at once: no encoder call ran
    assert {p.name: p.read_bytes() for p in (tmp_path / "aligner").iterdir()} == before


@pytest.mark.parametrize("make", ["file", "user-folder", "input-inside"])
def test_index_build_refuses_other_outputs_before_reading(tmp_path, make):
    out = tmp_path / "out"
    (tmp_path / "d.txt").write_text("a\nb\n")
    inp = tmp_path / "d.txt"
    if make == "file":
        out.write_text("mine")
    elif make == "user-folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:
        out.mkdir()
        inp = out / "d.txt"
        inp.write_text("a\nb\n")
    r = toy_cli("index", "build", "--encoder", "toy", "--input", str(inp), "--output", str(out),
                env={"TOY_ENCODE_SLEEP": "600"}, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1


# ---------------------------------------------------------------- item 10: huge query vectors

@pytest.mark.parametrize("scale", [3e38, 1e-30])
def test_queries_of_huge_or_tiny_magnitude_score_like_unit_ones(scale):
    """Before: a query of magnitude 3e38 overflowed the norm and every score was 0, without a word."""
    enc = CountingEncoder("toy", 16)
    idx = SearchIndex(enc, backend="numpy").build(DOCS[:50])
    q = text_vectors([DOCS[7]], 16)
    q = q / np.abs(q).max()
    want = idx.search_vectors(q, 3)
    got = idx.search_vectors((q * np.float32(scale)).astype(np.float32), 3)
    assert got[1].tolist() == want[1].tolist()
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    assert abs(got[0][0, 0] - 1.0) < 1e-5
    # documents of such magnitudes too
    big = SearchIndex(enc, backend="numpy").build_embeddings(text_vectors(DOCS[:5], 16) * np.float32(1e37), DOCS[:5])
    assert big.search_vectors(text_vectors(DOCS[2:3], 16), 1)[1][0, 0] == 2


# ---------------------------------------------------------------- property test: operation sequences

class IndexOperations(RuleBasedStateMachine):
    """Random add / add with ids (duplicates included) / delete / save / reload / concurrent-writer add,
    checked against a plain dict of id -> text after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="la-index-ops-"))
        self.folder = self.tmp / "idx"
        self.enc = CountingEncoder("toy", 8)
        self.model: dict[str, str] = {}
        self.idx: SearchIndex | None = None
        self.saved: dict[str, str] | None = None

    def teardown(self) -> None:
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize(texts=st.lists(st.sampled_from(["a", "b", "c", "a b"]), min_size=1, max_size=4))
    def build(self, texts):
        self.idx = SearchIndex(self.enc).build(texts)
        self.model = {str(i): t for i, t in enumerate(texts)}

    @rule(texts=st.lists(st.sampled_from(["a", "b", "c", "d e"]), min_size=1, max_size=3))
    def add_without_ids(self, texts):
        assert self.idx is not None
        before = set(self.model)
        self.idx.add(texts)
        new = {i: t for i, t in dict(self.idx.documents(range(len(self.idx)))).items() if i not in before}
        assert sorted(new.values()) == sorted(texts) and len(new) == len(texts)
        self.model.update(new)

    @rule(ids=st.lists(st.sampled_from(["x", "y", "z", "0", "1", "7"]), min_size=1, max_size=3))
    def add_with_ids(self, ids):
        assert self.idx is not None
        texts = [f"text of {i}" for i in ids]
        if len(set(ids)) != len(ids) or set(ids) & set(self.model):
            with pytest.raises(ValueError):
                self.idx.add(texts, ids=ids)
        else:
            self.idx.add(texts, ids=ids)
            self.model.update(zip(ids, texts, strict=True))

    @precondition(lambda self: len(self.model) > 1)
    @rule(data=st.data())
    def delete(self, data):
        assert self.idx is not None
        gone = data.draw(st.lists(st.sampled_from(sorted(self.model)), min_size=1, max_size=len(self.model) - 1,
                                  unique=True))
        assert self.idx.delete(gone) == len(gone)
        for d in gone:
            del self.model[d]

    @rule()
    def delete_unknown(self):
        assert self.idx is not None
        with pytest.raises(ValueError, match="not in the index"):
            self.idx.delete(["never-an-id"])

    @rule()
    def save(self):
        assert self.idx is not None
        self.idx.save(self.folder)
        self.saved = dict(self.model)

    @precondition(lambda self: self.saved is not None)
    @rule()
    def reload(self):
        self.idx = SearchIndex.load(self.folder, encoder=self.enc)
        assert self.saved is not None
        self.model = dict(self.saved)

    @precondition(lambda self: self.saved is not None)
    @rule(texts=st.lists(st.sampled_from(["p", "q"]), min_size=1, max_size=2))
    def another_writer_adds(self, texts):
        """Another writer adds to the saved folder: our unsaved state can no longer be saved over it."""
        add_documents(self.folder, texts, encoder=self.enc)
        assert self.saved is not None
        on_disk = contents_of(self.folder, self.enc)
        assert {k: v for k, v in on_disk.items() if k in self.saved} == self.saved
        self.saved = on_disk
        with pytest.raises(ArtefactError, match="changed by another writer"):
            assert self.idx is not None
            self.idx.save(self.folder)
        self.idx = SearchIndex.load(self.folder, encoder=self.enc)
        self.model = dict(on_disk)

    @precondition(lambda self: self.saved is not None and len(self.saved) > 1)
    @rule()
    def another_writer_deletes(self):
        assert self.saved is not None
        victim = sorted(self.saved)[0]
        delete_documents(self.folder, [victim])
        self.saved = {k: v for k, v in self.saved.items() if k != victim}
        assert contents_of(self.folder, self.enc) == self.saved
        self.idx = SearchIndex.load(self.folder, encoder=self.enc)
        self.model = dict(self.saved)

    @invariant()
    def matches_the_model(self):
        if self.idx is None:
            return
        assert len(self.idx) == len(self.model)
        assert dict(self.idx.documents(range(len(self.idx)))) == self.model
        if self.model:
            some = sorted(self.model)[0]
            hits = self.idx.search([self.model[some]], top_k=len(self.model))[0]
            assert some in {h.id for h in hits} and abs(hits[0].score - 1.0) < 1e-5


def contents_of(folder: Path, enc) -> dict[str, str]:
    idx = SearchIndex.load(folder, encoder=enc)
    return dict(idx.documents(range(len(idx))))


TestIndexOperations = IndexOperations.TestCase
TestIndexOperations.settings = settings(max_examples=30, stateful_step_count=12, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
