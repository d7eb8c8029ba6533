"""Issue 21 (reliability, round three), items 6, 11, 12, 13, 14, 15: no download named by a config, tuning
that diverges says so, tuned folders are what they claim, the pool builder keeps the readers' limits and
never follows links out, weighted fits are bounded, select_classifier names its metrics."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from _scale_helpers import CountingEncoder
from test_english_pool import _reference, _tree
from test_tuning import FAST, build_tiny_model, toy_task

import langalign as la
from langalign.cli import main
from langalign.data import pool_sources
from langalign.data.english_pool import build_english_pool, load_english_pool_table
from langalign.errors import ArtefactError, DataError
from langalign.transfer import CrossLingualClassifier, select_classifier
from langalign.tuning import EncoderTuner

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- item 6: no download named by a config

_LOAD_RECORDED = """
from langalign import LangAlign
try:
    LangAlign.load({folder!r}).to_source(["x"])
    print("LOADED")
except Exception as e:
    print(type(e).__name__, e)
"""


def test_an_aligner_config_naming_a_hub_id_never_reaches_the_network(tmp_path):
    """Before: loading an aligner whose config names `attacker-org/evil-model` asked the Hub for it (here: a
    local listener standing in for the Hub counts the connections)."""
    evil = CountingEncoder("attacker-org/evil-model", 8)
    la.LangAlign(evil, CountingEncoder("attacker-org/evil-target", 8), held_out=0).fit(
        [f"t {i}" for i in range(40)], [f"t {i}" for i in range(40)]).save(tmp_path / "al")
    hub = socket.socket()
    hub.bind(("127.0.0.1", 0))
    hub.listen(16)
    hub.settimeout(0.2)
    connections = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                c, _ = hub.accept()
            except OSError:
                continue
            connections.append(c)
            c.close()

    t = threading.Thread(target=accept)
    t.start()
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0",
               "HF_ENDPOINT": f"http://127.0.0.1:{hub.getsockname()[1]}", "HF_HOME": str(tmp_path / "hf"),
               "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
        r = subprocess.run([sys.executable, "-c", _LOAD_RECORDED.format(folder=str(tmp_path / "al"))], env=env,
                           capture_output=True, text=True, timeout=300)
    finally:
        stop.set()
        t.join(10)
        hub.close()
    assert connections == []
    assert r.stdout.startswith("EncoderNotAvailableError") and "never makes langalign download" in r.stdout, r


# ---------------------------------------------------------------- items 11, 12: tuning

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny"))


@pytest.fixture(scope="module")
def tuned_folder(tiny, tmp_path_factory):
    X, y = toy_task(24, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuner = EncoderTuner(tiny, epochs=1, **FAST).fit(X, y, dev=toy_task(12, 2))
    out = tmp_path_factory.mktemp("tuned") / "enc"
    tuner.save(out)
    return out


def test_cli_tune_with_a_huge_lr_says_it_diverged(tiny, tmp_path, capsys):
    """Before: `langalign tune --lr 1e30` ended with "X has NaN or inf values" (from the dev-score head)."""
    X, y = toy_task(24, 1)
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in zip(X, y, strict=True)))
    rc = main(["tune", "--base", tiny, "--data", str(train), "--output", str(tmp_path / "out"), "--epochs", "1",
               "--lr", "1e30", "--batch-size", "8", "--device", "cpu", "--no-freeze-embeddings"])
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("langalign:")]
    assert rc == 2 and len(err) == 1, err
    assert "diverged" in err[0] and "lower lr" in err[0] and "NaN or inf values" not in err[0]
    assert not (tmp_path / "out").exists()


def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest, symlinks=True)
    return dest


def test_a_tuned_folder_whose_weights_were_edited_is_refused(tuned_folder, tmp_path):
    """Before: it loaded under its recorded tuned:<base>:<fingerprint> name while fingerprint() said another."""
    from safetensors.numpy import load_file, save_file

    f = _copy(tuned_folder, tmp_path / "edited")
    w = load_file(str(f / "model.safetensors"))
    key = next(k for k in w if k.endswith("word_embeddings.weight"))
    w[key] = (w[key] + np.random.default_rng(0).standard_normal(w[key].shape)).astype(w[key].dtype)
    save_file(w, str(f / "model.safetensors"))
    with pytest.raises(ArtefactError, match="do not match the fingerprint recorded when it was tuned"):
        la.load_encoder(str(f))
    assert la.load_encoder(str(tuned_folder)).name.startswith("tuned:")  # the untouched one loads


def test_a_tuned_folder_with_a_link_leading_out_is_refused(tuned_folder, tmp_path):
    f = _copy(tuned_folder, tmp_path / "linked")
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(f / "model.safetensors", outside)
    (f / "model.safetensors").symlink_to(outside)
    with pytest.raises(ArtefactError, match="outside the tuned encoder's folder"):
        la.load_encoder(str(f))


@pytest.mark.parametrize("name", ["tuned:../../etc:0123456789abcdef", "tuned:tiny/x:0123456789abcdef",
                                  "tuned:tiny:not-the-fingerprint", "tuned:tiny"])
def test_a_tuned_folder_recording_a_malformed_name_is_refused(tuned_folder, tmp_path, name):
    f = _copy(tuned_folder, tmp_path / "named")
    meta = json.loads((f / "langalign_tuning.json").read_text())
    meta["encoder_name"] = name
    (f / "langalign_tuning.json").write_text(json.dumps(meta))
    with pytest.raises(ArtefactError, match="is not 'tuned:<base>:<fingerprint>'"):
        la.load_encoder(str(f))


# ---------------------------------------------------------------- item 13: the pool builder

def test_pool_reference_file_linked_out_is_refused_without_echoing_it(tmp_path):
    """Before: a reference file symlinked to /etc/passwd was read and its first line echoed in the error."""
    ref = _reference(tmp_path / "ref")
    secret = tmp_path / "secret.tsv"
    secret.write_text("root:x:0:0:secret-line\n")
    train = ref / "sib200/eng_Latn/train.tsv"
    train.unlink()
    train.symlink_to(secret)
    with pytest.raises(DataError) as e:
        build_english_pool(["sib200-train"], reference=ref, home=tmp_path / "home", show_progress=False)
    assert "link leading out of the reference data" in str(e.value) and "secret-line" not in str(e.value)


def test_pool_files_linked_out_of_a_package_tree_are_skipped(tmp_path):
    """Before: a source tree's link to a file outside it was read into the pool."""
    ref, tree = _reference(tmp_path / "ref"), _tree(tmp_path / "tree")
    outside = tmp_path / "private.txt"
    outside.write_text("My private diary sentence should never be in the pool.\n%\n")
    fort = tree / "fortunes/usr/share/games/fortunes"
    (fort / "diary").symlink_to(outside)
    folder = build_english_pool(["fortunes"], debs=[tree], reference=ref, home=tmp_path / "home",
                                show_progress=False)
    texts, _ = load_english_pool_table(home=tmp_path / "home")
    assert not any("diary" in t for t in texts) and "Look before you leap, my friend." in texts
    counts = json.loads((folder / "manifest.json").read_text())["sources"]["fortunes"]["counts"]
    assert counts["dropped"]["links leading out of the tree"] == 1


def test_pool_tree_whose_package_folder_links_out_is_not_read(tmp_path):
    ref, tree = _reference(tmp_path / "ref"), tmp_path / "tree"
    elsewhere = _tree(tmp_path / "elsewhere")
    tree.mkdir()
    (tree / "fortunes").symlink_to(elsewhere / "fortunes")
    with pytest.raises(DataError, match="no sentences survived"):
        build_english_pool(["fortunes"], debs=[tree], reference=ref, home=tmp_path / "home", show_progress=False)


def test_pool_cells_over_the_readers_limit_are_refused(tmp_path, monkeypatch):
    """Before: a 50 MB single cell was accepted (the readers' 20M-character limit did not apply). Shown with
    the limit lowered to 1,000 characters to keep the test small."""
    monkeypatch.setattr(pool_sources, "MAX_CELL_CHARS", 1000)
    ref = _reference(tmp_path / "ref")
    with open(ref / "sib200/eng_Latn/train.tsv", "a", encoding="utf-8") as f:
        f.write("9\ttravel\t" + "word " * 400 + "\n")
    with pytest.raises(DataError, match="2,000 characters, more than"):
        build_english_pool(["sib200-train"], reference=ref, home=tmp_path / "home", show_progress=False)
    # in a package file the file is skipped (one unreadable file must not stop a build), and counted
    tree = _tree(tmp_path / "tree")
    fort = tree / "fortunes/usr/share/games/fortunes"
    (fort / "huge").write_text("A sentence of many words " * 100 + "\n%\n")
    ref2 = _reference(tmp_path / "ref2")
    folder = build_english_pool(["fortunes"], debs=[tree], reference=ref2, home=tmp_path / "home2",
                                show_progress=False)
    counts = json.loads((folder / "manifest.json").read_text())["sources"]["fortunes"]["counts"]
    assert counts["dropped"]["unreadable files"] == 1


# ---------------------------------------------------------------- item 14: bounded weighted fits

def test_sample_weight_expanding_past_the_bound_is_refused_before_allocating():
    """Before: fit_embeddings(sample_weight=10**7) tried to allocate 13 GiB."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((100, 8)).astype(np.float32), rng.standard_normal((100, 8)).astype(np.float32)
    al = la.LangAlign(None, None, held_out=0)
    with pytest.raises(ValueError, match=r"expands the fit to 1,000,000,000 rows .* more than the 10,000,000"):
        al.fit_embeddings(X, Y, sample_weight=np.full(100, 10 ** 7))
    al.fit_embeddings(X, Y, sample_weight=np.full(100, 3))  # a sane weight still works


def test_pair_weight_past_the_bound_is_refused_before_encoding():
    """Before: fit_bridge(pair_weight=10**12) tried to allocate 14 TiB."""
    src, tgt = CountingEncoder("s", 8), CountingEncoder("t", 8)
    al = la.LangAlign(src, tgt, held_out=0)
    with pytest.raises(ValueError, match="pair_weight=1,000,000,000,000 makes 3 pairs count as"):
        al.fit_bridge([f"english {i}" for i in range(50)], parallel=(["a", "b", "c"], ["x", "y", "z"]),
                      pair_weight=10 ** 12)
    assert src.texts_seen == 0 and tgt.texts_seen == 0


# ---------------------------------------------------------------- item 15: select_classifier metrics

@pytest.mark.parametrize("metric", ["__class__", "f1", "", None, 3])
def test_select_classifier_refuses_an_unknown_metric_naming_the_metrics(metric):
    """Before: metric="__class__" raised a bare KeyError."""
    enc = CountingEncoder("toy", 8)
    al = la.LangAlign(enc, enc, held_out=0).fit([f"t {i}" for i in range(40)], [f"t {i}" for i in range(40)])
    clf = CrossLingualClassifier(al, mode="reverse").fit([f"t {i}" for i in range(40)], [i % 2 for i in range(40)])
    with pytest.raises(ValueError, match="metric must be one of 'accuracy', 'macro_f1'"):
        select_classifier({"a": clf}, dev=(["t 1", "t 2"], [1, 0]), metric=metric)
    assert select_classifier({"a": clf}, dev=(["t 1", "t 2"], [1, 0]), metric="macro_f1")["chosen"] == "a"


# ---------------------------------------------------------------- item 16: deterministic training

def test_a_neural_fit_is_bit_for_bit_with_the_same_seed_and_restores_torch_settings():
    import torch

    from langalign.mappers import make_mapper

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 16)).astype(np.float32)
    Y = np.tanh(X @ rng.standard_normal((16, 12)).astype(np.float32))
    before = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    a = make_mapper("bridge", epochs=3, hidden_dim=32).fit(X, Y)
    b = make_mapper("bridge", epochs=3, hidden_dim=32).fit(X, Y)
    assert (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()) == before
    assert a.transform(X).tobytes() == b.transform(X).tobytes()
    np.testing.assert_array_equal([h["val_loss"] for h in a.history_], [h["val_loss"] for h in b.history_])


def test_corpus_builds_record_their_inputs_and_reproduce_them(tmp_path):
    """A build records the hash of every input it read; `like=` its manifest rebuilds the same corpus from
    the same inputs and refuses (writing nothing) to build from other ones."""
    from test_data_libreoffice import _make_tree

    from langalign.data import build_libreoffice_help

    ref, tree, home = _reference(tmp_path / "ref"), _tree(tmp_path / "tree"), tmp_path / "home"
    folder = build_english_pool(["sib200-train", "fortunes"], debs=[tree], reference=ref, home=home,
                                max_per_source=3, seed=5, show_progress=False)
    m = json.loads((folder / "manifest.json").read_text())
    assert set(m["inputs"]) == {"sib200-train", "fortunes", "evaluation files"}
    assert m["inputs"]["fortunes"]["files"] == 1 and len(m["inputs"]["fortunes"]["sha256"]) == 64
    first = (folder / "sentences.txt").read_bytes()
    saved = tmp_path / "pool-manifest.json"
    saved.write_text(json.dumps(m))
    again = build_english_pool(debs=[tree], reference=ref, home=home, like=saved, show_progress=False)
    assert (again / "sentences.txt").read_bytes() == first  # same sources, settings, seed (5) and inputs
    fort = tree / "fortunes/usr/share/games/fortunes/wisdom"
    fort.write_text(fort.read_text() + "A new fortune appears in a later package version.\n%\n")
    with pytest.raises(DataError, match="the inputs differ from the recorded ones: fortunes"):
        build_english_pool(debs=[tree], reference=ref, home=home, like=saved, show_progress=False)
    assert (folder / "sentences.txt").read_bytes() == first  # nothing written

    lo_src = _make_tree(tmp_path / "lo")
    lo = build_libreoffice_help(["ko"], debs=lo_src, home=tmp_path / "lohome", min_label_pairs=1, seed=3,
                                show_progress=False, workers=1)
    lm = json.loads((lo / "manifest.json").read_text())
    assert set(lm["inputs"]) == {"en", "ko"} and lm["inputs"]["ko"]["version"] == "extracted tree"
    pairs = (lo / "en-ko.train.tsv").read_bytes()
    build_libreoffice_help(debs=lo_src, home=tmp_path / "lohome", like=lo, show_progress=False, workers=1)
    assert (lo / "en-ko.train.tsv").read_bytes() == pairs
    page = next((lo_src).rglob("*.html"))
    page.write_text(page.read_text().replace("</p>", " changed</p>", 1))
    with pytest.raises(DataError, match="the inputs differ"):
        build_libreoffice_help(debs=lo_src, home=tmp_path / "lohome", like=lm, show_progress=False, workers=1)
