"""Issue 10, items 6, 8 and 12: shard manifests, bounded readers, consistent text readers.

6: a shard manifest is input like any other: its files stay inside the folder and
   its counts and dims are what the files hold, checked before any work.
8: a small Parquet file cannot expand without bound; the reader streams.
12: every text reader splits lines, limits cells and refuses empty input the same way.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langalign.encoders import FunctionEncoder
from langalign.errors import DataError
from langalign.scale.streaming import encode_to, iter_pair_chunks, load_shards, read_pair_manifests, read_shards

# ================================================================ item 6: shard manifests

N, DIM = 30, 4


def _rows_encoder(A: np.ndarray, name: str = "rows") -> FunctionEncoder:
    return FunctionEncoder(lambda texts: A[[int(t) for t in texts]], name, A.shape[1])


def _shard_folder(path: Path, A: np.ndarray, shard_size: int = 10) -> Path:
    encode_to(_rows_encoder(A), path, (str(i) for i in range(A.shape[0])), shard_size=shard_size)
    return path


def _arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, DIM)).astype(np.float32)
    return X, (X @ rng.standard_normal((DIM, DIM)) + 0.1).astype(np.float32)


def _edit(folder: Path, fn) -> None:
    p = folder / "manifest.json"
    m = json.loads(p.read_text())
    fn(m)
    p.write_text(json.dumps(m))


@pytest.fixture
def pair(tmp_path):
    X, Y = _arrays()
    x, y = _shard_folder(tmp_path / "x", X), _shard_folder(tmp_path / "y", Y)
    # A same-shaped array outside the folders: reading it would "work", silently.
    (tmp_path / "secret").mkdir()
    np.save(tmp_path / "secret" / "secret.npy", np.full((10, DIM), 7.0, np.float32))
    return x, y, X, Y


@pytest.mark.parametrize("name", ["../secret/secret.npy", "ABS", "sub/../../secret/secret.npy"])
def test_shard_file_outside_the_folder_is_refused(pair, name):
    x, y, _, _ = pair
    name = str(x.parent / "secret" / "secret.npy") if name == "ABS" else name
    _edit(x, lambda m: m["shards"][1].update(file=name))
    for read in (lambda: load_shards(x), lambda: list(read_shards(x)), lambda: read_pair_manifests(x, y)):
        with pytest.raises(DataError, match=r"manifest\.json: shards\[1\].*outside the shard folder"):
            read()


def test_cli_fit_on_a_forged_manifest_is_a_one_line_error(pair, tmp_path, capsys, monkeypatch):
    from langalign.cli import main

    x, y, _, _ = pair
    monkeypatch.setenv("LANGALIGN_DATA_HOME", str(tmp_path / "home"))
    base = ["fit", "--source-embeddings", str(x), "--target-embeddings", str(y), "--source-encoder", "rows"]
    _edit(x, lambda m: m["shards"][0].update(file="../secret/secret.npy"))
    assert main(base + ["--output", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "shards[0]" in err and "outside the shard folder" in err
    _edit(x, lambda m: m["shards"][0].update(file="shard-00000.npy"))
    for folder in (x, y):
        _edit(folder, lambda m: m.update(count=10**9))
    assert main(base + ["--output", str(tmp_path / "b")]) == 2
    assert "'count' is 1000000000 but its shards hold 30 rows" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_symlink_leading_out_and_non_regular_files_are_refused(pair):
    x, y, _, _ = pair
    shard = x / "shard-00001.npy"
    shard.unlink()
    shard.symlink_to(x.parent / "secret" / "secret.npy")
    with pytest.raises(DataError, match=r"shards\[1\] \(shard-00001\.npy\): leads outside the shard folder"):
        load_shards(x)
    shard.unlink()
    os.mkfifo(shard)  # opening a FIFO would block forever
    with pytest.raises(DataError, match=r"shards\[1\] \(shard-00001\.npy\): not a regular file"):
        read_pair_manifests(x, y)
    shard.unlink()
    shard.mkdir()
    with pytest.raises(DataError, match="not a regular file"):
        load_shards(x)


def test_symlink_inside_the_folder_is_fine(pair):
    x, _, X, _ = pair
    (x / "shard-00001.npy").rename(x / "real.npy")
    (x / "shard-00001.npy").symlink_to("real.npy")
    np.testing.assert_array_equal(load_shards(x), X)


def test_manifest_count_beyond_the_files_is_refused_before_any_work(pair):
    from langalign import LangAlign

    x, y, _, _ = pair
    for folder in (x, y):  # both sides claim 10**7 rows, consistently with their entries
        _edit(folder, lambda m: (m.update(count=10**7 - 20, shard_size=10**7), m["shards"][0].update(count=10**7 - 40)))
    with pytest.raises(DataError, match=r"shards\[0\].*shape \(10, 4\).*manifest says \(9999960, 4\)"):
        read_pair_manifests(x, y)
    with pytest.raises(DataError, match="manifest says"):
        LangAlign("rows", "rows", held_out=0.1).fit_shards(x, y)
    for folder in (x, y):  # 10**12: must not hang, nor allocate
        _edit(folder, lambda m: (m.update(count=10**12 - 20, shard_size=10**12),
                                 m["shards"][0].update(count=10**12 - 40)))
    with pytest.raises(DataError, match="manifest says"):
        load_shards(x)
    with pytest.raises(DataError, match="manifest says"):
        LangAlign("rows", "rows").fit_shards(x, y)


def test_manifest_total_must_equal_its_shards(pair):
    x, y, _, _ = pair
    for folder in (x, y):
        _edit(folder, lambda m: m.update(count=10**9))
    with pytest.raises(DataError, match=r"'count' is 1000000000 but its shards hold 30 rows"):
        read_pair_manifests(x, y)


def test_a_wrong_count_or_dim_late_in_the_folder_stops_before_the_first_chunk(pair):
    x, y, _, _ = pair
    np.save(x / "shard-00002.npy", np.zeros((9, DIM), np.float32))  # one row short, manifest unchanged
    chunks = iter_pair_chunks(x, y)
    with pytest.raises(DataError, match=r"shards\[2\] \(shard-00002\.npy\): shape \(9, 4\)"):
        next(chunks)
    np.save(x / "shard-00002.npy", np.zeros((10, DIM + 1), np.float32))
    with pytest.raises(DataError, match=r"shape \(10, 5\).*manifest says \(10, 4\)"):
        next(iter_pair_chunks(x, y))
    _edit(x, lambda m: m.update(dim=DIM + 1))
    with pytest.raises(DataError, match=r"shards\[0\] \(shard-00000\.npy\): shape \(10, 4\).*\(10, 5\)"):
        read_pair_manifests(x, y)


def test_truncated_or_foreign_shard_is_refused_from_its_header(pair):
    x, y, _, _ = pair
    f = x / "shard-00002.npy"
    f.write_bytes(f.read_bytes()[:-4])
    with pytest.raises(DataError, match="truncated or altered"):
        read_pair_manifests(x, y)
    f.write_bytes(b"PK\x03\x04 a zip, not an array")
    with pytest.raises(DataError, match=r"shards\[2\].*not a \.npy array"):
        read_pair_manifests(x, y)


# Random values for every field of a manifest and of a shard entry: each must be
# refused with a DataError (or, where it changes nothing, read the true data), never
# hang, raise something else, or read the array outside the folder.
_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([10**9, 10**12, 0, -1, 1, 10, 30]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["../secret/secret.npy", "/etc/passwd", "..", ".", "", "shard-00000.npy", "float32",
                     "shard-00001.npy", "sub/../shard-00000.npy", "\0", "rows"]),
)
_json_value = st.recursive(_json_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                   st.dictionaries(st.text(max_size=5), inner,
                                                                                   max_size=3)), max_leaves=6)
_TOP_FIELDS = ["format", "version", "encoder", "dim", "fingerprint", "dtype", "shard_size", "count", "complete",
               "shards"]
_ENTRY_FIELDS = ["file", "count", "sha256", "input_sha256"]
_MANIFEST_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_root():
    d = Path(tempfile.mkdtemp(prefix="langalign-manifest-fuzz-"))
    X, Y = _arrays(1)
    _shard_folder(d / "x", X)
    _shard_folder(d / "y", Y)
    (d / "secret").mkdir()
    np.save(d / "secret" / "secret.npy", np.full((10, DIM), 7.0, np.float32))
    np.save(d / "secret.npy", np.full((10, DIM), 7.0, np.float32))
    yield d, X, Y
    shutil.rmtree(d, ignore_errors=True)


def _check_reads(x: Path, y: Path, X: np.ndarray, Y: np.ndarray, exact: bool = True) -> None:
    from langalign.mappers.linear import LinearMapper
    from langalign.scale.sharded_fit import fit_mapper_from_shards

    for read in (lambda: load_shards(x), lambda: np.concatenate([a for a, _ in iter_pair_chunks(x, y)])):
        try:
            got = read()
        except DataError:
            continue
        assert not (got == 7.0).any(), "read the array outside the shard folder"
        if exact:
            np.testing.assert_array_equal(got, X)
        else:  # a manifest may list some of the shards: then it reads those, in its order
            assert got.shape[1] == DIM and all((row == X).all(axis=1).any() for row in got)
    with contextlib.suppress(DataError):
        fit_mapper_from_shards(LinearMapper(alpha=1.0), x, y)


@_MANIFEST_FUZZ
@given(where=st.sampled_from(["top", "entry", "delete-top", "delete-entry"]), field=st.integers(0, 20),
       shard=st.integers(0, 2), value=_json_value)
def test_fuzz_manifest_fields(fuzz_root, where, field, shard, value):
    root, X, Y = fuzz_root
    x = root / "x"
    manifest = x / "manifest.json"
    original = manifest.read_bytes()
    try:
        m = json.loads(original)
        if where == "top":
            m[_TOP_FIELDS[field % len(_TOP_FIELDS)]] = value
        elif where == "delete-top":
            m.pop(_TOP_FIELDS[field % len(_TOP_FIELDS)])
        elif where == "entry":
            m["shards"][shard][_ENTRY_FIELDS[field % len(_ENTRY_FIELDS)]] = value
        else:
            m["shards"][shard].pop(_ENTRY_FIELDS[field % len(_ENTRY_FIELDS)])
        manifest.write_text(json.dumps(m))
        _check_reads(x, root / "y", X, Y)
    finally:
        manifest.write_bytes(original)


@_MANIFEST_FUZZ
@given(st.lists(st.fixed_dictionaries({"file": _json_value, "count": _json_value}), max_size=4),
       st.one_of(st.integers(-5, 10**13), _json_value))
def test_fuzz_manifest_shard_lists(fuzz_root, shards, count):
    root, X, Y = fuzz_root
    x = root / "x"
    manifest = x / "manifest.json"
    original = manifest.read_bytes()
    try:
        m = json.loads(original)
        m["shards"], m["count"] = shards, count
        manifest.write_text(json.dumps(m))
        _check_reads(x, root / "y", X, Y, exact=False)
    finally:
        manifest.write_bytes(original)


# ================================================================ item 8: bounded readers

def _parquet(path: Path, **columns) -> Path:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def _repeated(pa, text: str, n: int):
    return pa.array([text]).take(pa.array(np.zeros(n, dtype=np.int32)))  # n rows, one stored value


def test_parquet_row_count_is_checked_from_the_footer_before_reading(tmp_path, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from langalign.data import read_parallel, records

    path = _parquet(tmp_path / "bomb.parquet", source=_repeated(pa, "hello", 5000),
                    target=_repeated(pa, "annyeong", 5000))
    assert path.stat().st_size < 5000  # thousands of rows in a few hundred bytes
    monkeypatch.setattr(records, "MAX_ROWS", 1000)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda *a, **k: pytest.fail("read rows past the limit"))
    with pytest.raises(DataError, match=r"bomb\.parquet: holds 5,000 rows, more than the 1,000 .*max_rows="):
        read_parallel(path)
    monkeypatch.undo()
    monkeypatch.setattr(records, "MAX_ROWS", 1000)
    assert len(read_parallel(path, max_rows=5000)) == 1  # the parameter raises it
    monkeypatch.setenv("LANGALIGN_MAX_ROWS", "5000")
    assert read_parallel(path).summary.rows_read == 5000  # and so does the environment (for the CLI)
    monkeypatch.setenv("LANGALIGN_MAX_ROWS", "lots")
    with pytest.raises(ValueError, match=r"\$LANGALIGN_MAX_ROWS must be a whole number"):
        read_parallel(path)


def test_parquet_dictionary_expansion_is_bounded_by_decoded_bytes(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from langalign.data import read_labelled

    big = "x" * 50_000
    path = _parquet(tmp_path / "dict.parquet", text=_repeated(pa, big, 2000), label=pa.array(np.arange(2000) % 3))
    assert path.stat().st_size < 20_000  # 100 MB of text once decoded
    with pytest.raises(DataError, match=r"dict\.parquet: the columns read decode to more than .* max_bytes="):
        read_labelled(path, max_bytes=10_000_000)
    ds = read_labelled(path, max_bytes=200_000_000)
    assert len(ds) == 2000 and ds.texts[0] == big and ds.labels[:3] == [0, 1, 2]


def test_parquet_reads_only_the_columns_asked_for(tmp_path):
    pytest.importorskip("pyarrow")
    from langalign.data import read_parallel

    rng = np.random.default_rng(0)
    noise = ["".join(map(chr, rng.integers(0x4E00, 0x9FFF, 2000))) for _ in range(300)]  # ~1.8 MB, not read
    path = _parquet(tmp_path / "wide.parquet", source=[f"s{i}" for i in range(300)],
                    target=[f"t{i}" for i in range(300)], notes=noise)
    assert len(read_parallel(path, max_bytes=100_000)) == 300
    with pytest.raises(DataError, match="the columns read take [\\d,]+ bytes decompressed"):
        read_parallel(path, max_bytes=100_000, extra_columns=("notes",))


def test_parquet_streams_in_batches_and_keeps_values(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from langalign.data import read_labelled, records

    n = 3 * records._PARQUET_BATCH + 5
    labels = pa.array([None if i % 7 == 0 else f"c{i % 4}" for i in range(n)]).dictionary_encode()
    path = _parquet(tmp_path / "s.parquet", text=[f"t {i}" for i in range(n)], label=labels)
    ds = read_labelled(path)
    assert ds.summary.rows_read == n and len(ds) == n - len(range(0, n, 7))
    assert ds.texts[:2] == ["t 1", "t 2"] and ds.labels[:2] == ["c1", "c2"]


def test_text_formats_are_bounded_by_file_size_and_rows(tmp_path, monkeypatch):
    from langalign.data import read_parallel, records

    body = "source\ttarget\n" + "".join(f"a{i}\tb{i}\n" for i in range(50))
    for ext, text in (("tsv", body), ("csv", body.replace("\t", ",")),
                      ("jsonl", "".join(json.dumps({"source": f"a{i}", "target": f"b{i}"}) + "\n" for i in range(50)))):
        path = tmp_path / f"t.{ext}"
        path.write_text(text)
        with pytest.raises(DataError, match=rf"t\.{ext}: the file is [\d,]+ bytes, more than the 100 bytes"):
            read_parallel(path, max_bytes=100)
        with pytest.raises(DataError, match=rf"t\.{ext}: holds more than 10 rows"):
            read_parallel(path, max_rows=10)
        assert len(read_parallel(path, max_rows=50)) == 50
        monkeypatch.setattr(records, "MAX_ROWS", 49)
        with pytest.raises(DataError, match="more than 49 rows"):
            read_parallel(path)
        monkeypatch.undo()


def test_cli_refuses_an_expanding_file_in_one_line(tmp_path, monkeypatch, capsys):
    pa = pytest.importorskip("pyarrow")
    from langalign.cli import main

    path = _parquet(tmp_path / "bomb.parquet", source=_repeated(pa, "a b", 3000), target=_repeated(pa, "c d", 3000))
    monkeypatch.setenv("LANGALIGN_MAX_ROWS", "1000")
    monkeypatch.setenv("LANGALIGN_DATA_HOME", str(tmp_path / "home"))
    rc = main(["fit", "--pairs", str(path), "--output", str(tmp_path / "al")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0 and "holds 3,000 rows" in err and "LANGALIGN_MAX_ROWS" in err
    assert not (tmp_path / "al").exists()


# ================================================================ item 12: consistent readers

def _all_text_readers(tmp_path: Path, texts: list[str], ends: list[str], final: bool) -> dict[str, list[str]]:
    """The texts every reader finds in the same lines written as .txt, .tsv, .csv and .jsonl."""
    from langalign.cli.core_commands import read_texts
    from langalign.cli.scale_commands import iter_texts
    from langalign.data import normalize_text, read_labelled
    from langalign.data.benchmarks import _read_lines

    def write(name: str, header: str | None, lines: list[str]) -> Path:
        rows = ([header] if header is not None else []) + lines
        body = "".join(r + e for r, e in zip(rows, ends, strict=False))  # ends has one spare for a header
        if not final:
            body = body[: len(body) - len(ends[len(rows) - 1])]
        path = tmp_path / name
        path.write_bytes(body.encode("utf-8"))
        return path

    ends = (ends * (len(texts) + 1))[: len(texts) + 1]
    txt = write("t.txt", None, texts)
    tsv = write("t.tsv", "text\tlabel", [f"{t}\tL" for t in texts])
    csv_ = write("t.csv", "text,label", ['"' + t.replace('"', '""') + '",L' for t in texts])
    jsonl = write("t.jsonl", None, [json.dumps({"text": t, "label": "L"}) for t in texts])
    found = {
        "read_texts .txt": read_texts(str(txt)),
        "encode .txt": [normalize_text(t) for t in iter_texts(txt)],
        "benchmark lines": [normalize_text(t) for t in _read_lines(txt)],
        "encode .tsv": [normalize_text(t) for t in iter_texts(tsv, "text")],
        "encode .jsonl": [normalize_text(t) for t in iter_texts(jsonl, "text")],
    }
    for path in (tsv, csv_, jsonl):
        found[f"read_texts {path.suffix}"] = read_texts(str(path), "text")
        found[f"read_labelled {path.suffix}"] = read_labelled(path).texts
    return found


def test_cr_only_line_endings_are_line_breaks_everywhere(tmp_path):
    found = _all_text_readers(tmp_path, ["one", "two", "three"], ["\r"], final=True)
    for reader, texts in found.items():
        assert texts == ["one", "two", "three"], reader


def test_cr_only_file_errors_name_the_right_line(tmp_path):
    from langalign.cli.scale_commands import iter_texts
    from langalign.data import read_parallel

    (tmp_path / "b.tsv").write_bytes(b"source\ttarget\ra\tb\rc\xff\td\r")
    with pytest.raises(DataError, match=r"b\.tsv: line 3: invalid UTF-8 byte 0xff at byte offset 19 \(column 2"):
        read_parallel(tmp_path / "b.tsv")
    with pytest.raises(DataError, match=r"b\.tsv: line 3: invalid UTF-8 byte 0xff at byte offset 19 \(column 2"):
        list(iter_texts(tmp_path / "b.tsv", "source"))
    (tmp_path / "c.tsv").write_bytes(b"source\ttarget\ra\tb\rc\r")
    with pytest.raises(DataError, match=r"c\.tsv: line 3: expected 2 fields"):
        read_parallel(tmp_path / "c.tsv")


def test_streamed_lines_split_a_crlf_across_blocks(tmp_path):
    from langalign.data.records import iter_file_lines, split_lines

    data = "\ufeffab\r\ncd\r\ref\n\ngh\r".encode("utf-8")
    (tmp_path / "x.txt").write_bytes(data)
    want = split_lines(data.decode("utf-8")[1:])
    assert want == ["ab", "cd", "", "ef", "", "gh"]
    for block in (1, 2, 3, 4, 5, 1 << 20):  # every cut, "\r" | "\n" included
        assert [t for _, t in iter_file_lines(tmp_path / "x.txt", block=block)] == want


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from([b"\r", b"\n", b"\r\n", b"\xef\xbb\xbf", b"\xc3\xa9", b""]),
                                st.binary(max_size=6)), max_size=12), block=st.integers(1, 9))
def test_streamed_lines_equal_whole_file_lines_for_any_bytes_and_block(tmp_path_factory, parts, block):
    from langalign.data.records import decode_utf8, iter_file_lines, split_lines

    data = b"".join(parts)
    path = tmp_path_factory.getbasetemp() / "stream.bin"
    path.write_bytes(data)
    try:
        want: list[str] | str = split_lines(decode_utf8(data, path))
    except DataError as e:
        want = str(e)
    try:
        got: list[str] | str = [t for _, t in iter_file_lines(path, block=block)]
    except DataError as e:
        got = str(e)
    assert got == want


_line_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\t\ufeff"),
                     min_size=1, max_size=12).filter(lambda t: t.strip())


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(_line_text, min_size=1, max_size=6),
       ends=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=7), final=st.booleans())
def test_every_reader_splits_any_mix_of_line_endings_the_same(texts, ends, final):
    from langalign.data import normalize_text

    with tempfile.TemporaryDirectory() as d:
        found = _all_text_readers(Path(d), texts, ends, final)
    want = [normalize_text(t) for t in texts]
    for reader, got in found.items():
        assert got == want, reader


def test_csv_cells_have_the_limit_of_every_other_reader(tmp_path):
    from langalign.cli.core_commands import read_texts
    from langalign.data import read_labelled

    long = "가" * 200_000  # over the csv module's default limit of 131,072
    (tmp_path / "l.csv").write_text(f"text,label\n{long},x\n", encoding="utf-8")
    (tmp_path / "l.txt").write_text(long + "\n", encoding="utf-8")
    assert read_labelled(tmp_path / "l.csv").texts == [long] == read_texts(str(tmp_path / "l.txt"))


def test_one_cell_limit_for_every_reader(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    from langalign.cli.core_commands import read_texts
    from langalign.cli.scale_commands import iter_texts
    from langalign.data import read_labelled, records

    monkeypatch.setattr(records, "MAX_CELL_CHARS", 1000)
    ok, long = "o" * 1000, "x" * 1001
    files = {
        "c.csv": f"text,label\n{ok},a\n{long},b\n", "c.tsv": f"text\tlabel\n{ok}\ta\n{long}\tb\n",
        "c.jsonl": json.dumps({"text": ok, "label": "a"}) + "\n" + json.dumps({"text": long, "label": "b"}) + "\n",
        "c.json": json.dumps([{"text": ok, "label": "a"}, {"text": long, "label": "b"}]),
        "c.txt": f"{ok}\n{long}\n",
    }
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    _parquet(tmp_path / "c.parquet", text=[ok, long], label=["a", "b"])
    msg = ": column 'text' holds 1,001 characters, more than the 1,000 one cell may hold"
    for name, where in (("c.csv", "line 3"), ("c.tsv", "line 3"), ("c.jsonl", "line 2"), ("c.json", "record 2"),
                        ("c.parquet", "row 2")):
        with pytest.raises(DataError, match=re.escape(f"{name}: {where}{msg}")):
            read_labelled(tmp_path / name)
    with pytest.raises(DataError, match=r"c\.txt: line 2: .*holds 1,001 characters, more than the 1,000"):
        read_texts(str(tmp_path / "c.txt"))
    for name, col in (("c.txt", None), ("c.tsv", "text"), ("c.jsonl", "text")):
        with pytest.raises(DataError, match=r"holds 1,001 characters, more than the 1,000 one cell may hold"):
            list(iter_texts(tmp_path / name, col))


def test_the_real_cell_limit_in_csv(tmp_path):
    from langalign.data import read_labelled, records

    n = records.MAX_CELL_CHARS
    (tmp_path / "ok.csv").write_text(f"text,label\n{'a' * n},x\n")
    assert len(read_labelled(tmp_path / "ok.csv").texts[0]) == n
    (tmp_path / "big.csv").write_text(f"text,label\n{'a' * (n + 1)},x\n")
    # the csv module's own limit, or ours if someone raised the module's: the same message either way
    with pytest.raises(DataError, match=rf"big\.csv: line 2: .* holds (more characters than|{n + 1:,} characters, more "
                                        rf"than) the {n:,} one cell may hold"):
        read_labelled(tmp_path / "big.csv")


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    from langalign import encoders

    from _reliability_helpers import hashed_encoder

    monkeypatch.setitem(encoders._cache, "fake-a", hashed_encoder("fake-a"))
    monkeypatch.setenv("LANGALIGN_NO_PROGRESS", "1")
    monkeypatch.setenv("LANGALIGN_DATA_HOME", str(tmp_path / "home"))


def _error(capsys, *args) -> str:
    from langalign.cli import main

    rc = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and err.startswith("langalign: error: "), err
    return err


@pytest.mark.parametrize("name,body,column,expect", [
    ("h.tsv", "text\tlabel\n", "text", r"h\.tsv: no data rows \(only a header\)"),
    ("h2.tsv", "text\tlabel\n\n\n", "text", r"h2\.tsv: no data rows \(only a header\)"),
    ("b.txt", "\n  \n\t\n", None, r"b\.txt: no text: all 3 lines are blank"),
    ("e.txt", "", None, r"e\.txt: no text: the file is empty"),
    ("e.jsonl", "\n\n", "text", r"e\.jsonl: file is empty"),
])
def test_encode_refuses_what_every_other_command_refuses(tmp_path, capsys, cli_env, name, body, column, expect):
    from langalign.cli.core_commands import read_texts

    path = tmp_path / name
    path.write_text(body)
    col = ["--column", column] if column else []
    enc = _error(capsys, "encode", "--encoder", "fake-a", "--input", path, "--output", tmp_path / "emb", *col)
    assert re.search(expect, enc)
    assert not (tmp_path / "emb").exists()
    with pytest.raises(DataError) as other:  # what transform and predict read with
        read_texts(str(path), column or "text")
    assert enc == f"langalign: error: {other.value}"


def test_encode_still_keeps_blank_lines_among_texts(tmp_path, capsys, cli_env):
    from langalign.cli import main

    (tmp_path / "in.txt").write_text("\n\nhello\n\n")
    assert main(["encode", "--encoder", "fake-a", "--input", str(tmp_path / "in.txt"), "--output",
                 str(tmp_path / "emb"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 4


@pytest.mark.parametrize("name,body", [
    ("d.tsv", "text\tlabel\ttext\na\tx\tb\n"),
    ("d.csv", "text,label,text\na,x,b\n"),
])
def test_duplicate_header_names_are_refused(tmp_path, name, body):
    from langalign.cli.scale_commands import iter_texts
    from langalign.data import read_labelled

    (tmp_path / name).write_text(body)
    with pytest.raises(DataError,
                       match=rf"{re.escape(name)}: column 'text' appears 2 times in the header \(columns 1, 3\)"):
        read_labelled(tmp_path / name)
    assert read_labelled(tmp_path / name, text="label", label="label").texts == ["x"]  # unambiguous columns read
    if name.endswith(".tsv"):
        with pytest.raises(DataError, match=r"d\.tsv: column 'text' appears 2 times"):
            list(iter_texts(tmp_path / name, "text"))


def test_duplicate_parquet_columns_and_json_keys_are_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from langalign.cli.scale_commands import iter_texts
    from langalign.data import read_labelled

    t = pa.Table.from_arrays([pa.array(["a"]), pa.array(["x"]), pa.array(["b"])], names=["text", "label", "text"])
    pq.write_table(t, tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"d\.parquet: column 'text' appears 2 times"):
        read_labelled(tmp_path / "d.parquet")
    (tmp_path / "d.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "a", "label": "x", "text": "b"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl: line 2: key 'text' appears more than once"):
        read_labelled(tmp_path / "d.jsonl")
    with pytest.raises(DataError, match=r"d\.jsonl: line 2: key 'text' appears more than once"):
        list(iter_texts(tmp_path / "d.jsonl", "text"))
    (tmp_path / "e.jsonl").write_text('{"\\u0074ext": "a", "label": "x", "text": "b"}\n')  # an escaped twin
    with pytest.raises(DataError, match="appears more than once"):
        read_labelled(tmp_path / "e.jsonl")
    (tmp_path / "n.jsonl").write_text('{"text": "a", "label": "x", "meta": {"k": 1, "k": 2}}\n')
    assert read_labelled(tmp_path / "n.jsonl").texts == ["a"]  # only the columns read must be unambiguous


def test_parquet_plain_columns_are_bounded_from_the_footer(tmp_path, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from langalign.data import read_parallel

    long = "a" * 100_000
    pq.write_table(pa.table({"source": [long + str(i) for i in range(200)], "target": [f"t{i}" for i in range(200)]}),
                   tmp_path / "plain.parquet", use_dictionary=False, compression="zstd")
    assert (tmp_path / "plain.parquet").stat().st_size < 200_000  # 20 MB of text
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda *a, **k: pytest.fail("decoded past the limit"))
    with pytest.raises(DataError, match=r"plain\.parquet: the columns read take [\d,]+ bytes decompressed, more "
                                        r"than the 5,000,000 bytes"):
        read_parallel(tmp_path / "plain.parquet", max_bytes=5_000_000)


def test_the_same_shard_file_twice_is_refused(pair):
    x, _, _, _ = pair
    _edit(x, lambda m: m["shards"][1].update(file="./shard-00000.npy"))
    with pytest.raises(DataError, match=r"shards\[1\] \(\./shard-00000\.npy\): is the same file as shards\[0\]"):
        load_shards(x)
