"""``langalign data ...`` run as a real subprocess: output and exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from langalign.data import find_reference_data
from langalign.errors import DataError


def run(args, home: Path, **env):
    e = dict(os.environ, LANGALIGN_DATA_HOME=str(home), LANGALIGN_NO_PROGRESS="1", **env)
    return subprocess.run([sys.executable, "-m", "langalign.cli", *args], capture_output=True, text=True,
                          env=e, timeout=300)


@pytest.fixture(scope="module")
def reference() -> Path:
    try:
        return find_reference_data()
    except DataError:
        pytest.skip("shared reference data not available")


def test_list_empty_home(tmp_path):
    r = run(["data", "list"], tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert "data home:" in r.stdout and "no corpora yet" in r.stdout
    r = run(["data", "list", "--json"], tmp_path / "home")
    assert json.loads(r.stdout)["corpora"] == []


def test_import_then_list(tmp_path, reference):
    home = tmp_path / "home"
    r = run(["data", "import", "sib200", str(reference / "sib200"), "--langs", "en,ko"], home)
    assert r.returncode == 0, r.stderr
    assert "imported sib200" in r.stdout and "2,008 rows" in r.stdout
    r = run(["data", "import", "tatoeba", str(reference / "tatoeba")], home)
    assert r.returncode == 0, r.stderr
    r = run(["data", "list"], home)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert any(l.startswith("sib200") and "2,008" in l for l in lines)
    assert any(l.startswith("tatoeba") and "3,000" in l for l in lines)
    data = json.loads(run(["data", "list", "--json", "--verify"], home).stdout)
    by_name = {c["name"]: c for c in data["corpora"]}
    assert by_name["sib200"]["counts"]["kor_Hang"] == {"train": 701, "dev": 99, "test": 204}
    assert by_name["tatoeba"]["problems"] == []


def test_import_missing_folder_is_one_line_error(tmp_path):
    r = run(["data", "import", "sib200", str(tmp_path / "nope")], tmp_path / "home")
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("langalign: error:") and "nope" in err[0]
    assert "Traceback" not in r.stderr


def test_import_bad_file_names_file_and_line(tmp_path):
    bad = tmp_path / "src" / "kor_Hang"
    bad.mkdir(parents=True)
    (bad / "train.tsv").write_text("index_id\tcategory\ttext\n1\ttravel\n", encoding="utf-8")
    (bad / "dev.tsv").write_text("index_id\tcategory\ttext\n1\ttravel\tx\n", encoding="utf-8")
    (bad / "test.tsv").write_text("index_id\tcategory\ttext\n1\ttravel\tx\n", encoding="utf-8")
    r = run(["data", "import", "sib200", str(tmp_path / "src")], tmp_path / "home")
    assert r.returncode == 2
    assert "train.tsv: line 2: expected 3 fields" in r.stderr


def test_build_from_missing_folder(tmp_path):
    r = run(["data", "build", "libreoffice-help", "--langs", "ko", "--from", str(tmp_path / "none")],
            tmp_path / "home")
    assert r.returncode == 2 and "no such folder" in r.stderr


def test_bad_language_code(tmp_path):
    r = run(["data", "build", "libreoffice-help", "--langs", "xx", "--from", str(tmp_path)], tmp_path / "home")
    assert r.returncode == 2 and "unknown language 'xx'" in r.stderr


def test_download_offline_message(tmp_path):
    # An unroutable proxy makes the download fail fast even where a network exists.
    r = run(["data", "download", "sib200", "--langs", "ko", "--timeout", "2"], tmp_path / "home",
            https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    assert r.returncode == 2
    assert "langalign data import sib200 DIR" in r.stderr


@pytest.mark.parametrize("cmd", [["data"], ["data", "list"], ["data", "import"], ["data", "download"],
                                 ["data", "build"]])
def test_help_has_examples(cmd, tmp_path):
    r = run([*cmd, "--help"], tmp_path / "home")
    assert r.returncode == 0 and "examples:" in r.stdout and "langalign data" in r.stdout
