"""The documentation site: it builds with --strict, and its code blocks run.

Convention (scripts/docs/codeblocks.py): every ```python / ```bash block in docs/ runs here unless the line
before it is `<!-- not-run: reason -->`. A page's blocks run in order in one fresh folder (with `../shared`
beside it, as next to a clone), its Python blocks sharing one namespace, with a private data home.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "scripts" / "docs"))

import codeblocks  # noqa: E402
import pins  # noqa: E402
import results_tables  # noqa: E402

PAGES = codeblocks.doc_pages(DOCS)
# Pages whose blocks a dedicated test runs, because they need more than an empty folder (a live server).
OWN_RUNNER = {"integrations.md": "tests/test_docs_integrations.py"}
RUNNABLE = [p for p in PAGES if str(p.relative_to(DOCS)) not in OWN_RUNNER
            and any(b.runnable for b in codeblocks.parse(p.read_text("utf-8"), str(p)))]


# -- the convention ------------------------------------------------------------------------------------------
def test_every_code_block_follows_the_convention():
    problems = [msg for page in PAGES
                for block in codeblocks.parse(page.read_text("utf-8"), str(page.relative_to(ROOT)))
                for msg in codeblocks.problems(block)]
    assert not problems, "\n".join(problems)


def test_code_block_parser():
    page = """text
<!-- not-run: needs a server -->

```bash
langalign serve
```

- a list item:

  ```python
  x = 1
  ```

```text
output
```
"""
    blocks = codeblocks.parse(page, "p.md")
    assert [(b.kind, b.not_run, b.runnable, b.line) for b in blocks] == [
        ("bash", "needs a server", False, 4), ("python", None, True, 10), ("data", None, False, 14)]
    assert blocks[1].code == "x = 1\n"
    assert codeblocks.problems(codeblocks.parse("```\nx\n```\n")[0])  # no language
    assert codeblocks.problems(codeblocks.parse("<!-- not-run: -->\n```python\nx\n```\n")[0])  # no reason
    with pytest.raises(ValueError, match="never closed"):
        codeblocks.parse("```python\nx = 1\n")


def test_pages_with_their_own_runner_exist():
    for page, runner in OWN_RUNNER.items():
        assert (DOCS / page).is_file() and (ROOT / runner).is_file(), (page, runner)


def test_some_pages_run_code():
    # the convention is only worth something if most examples run: guard against marking everything not-run
    blocks = [b for p in PAGES for b in codeblocks.parse(p.read_text("utf-8"), str(p)) if b.kind in ("python", "bash")]
    assert len(RUNNABLE) >= 5
    assert sum(b.runnable for b in blocks) >= len(blocks) / 2


# -- generated results tables ----------------------------------------------------------------------------------
def _row(task, lang, method, mode, acc, mapper=None, pairs=None, n=None, diff=None, p=None):
    vs = None if diff is None else {"accuracy_diff": diff, "mcnemar_p": p}
    return {"task": task, "lang": lang, "setting": "same", "method": method, "mode": mode, "mapper": mapper,
            "pairs": pairs, "n_pairs": n, "metrics": {"accuracy": acc}, "vs_zero_shot": vs}


def test_benchmark_headline_from_json(tmp_path):
    zs = {"ko": 0.80, "ja": 0.85, "zh": 0.83}
    rows = [_row("sib200", lang, "zero-shot (no map)", "zero-shot", a) for lang, a in zs.items()]
    rev = {"ko": (0.81, 0.3), "ja": (0.86, 0.01), "zh": (0.84, 0.5)}  # ja significant
    rows += [_row("sib200", lang, "Rev-LangAlign default [in-domain 300]", "reverse", zs[lang] + d, "default",
                  "in-domain", 300, d, p) for lang, (d, p) in ((k, (v[0] - zs[k], v[1])) for k, v in rev.items())]
    # a map without Japanese rows is listed per language
    rows += [_row("sib200", lang, "Rev-LangAlign default [LibreOffice 4000]", "reverse", zs[lang] - 0.02, "default",
                  "libreoffice", 4000, -0.02, 0.9) for lang in ("ko", "zh")]
    res = {"meta": {"tasks_completed": ["sib200"]}, "results": rows}
    (tmp_path / "b.json").write_text(json.dumps(res))
    table = results_tables.benchmark_headline(tmp_path, "same", file="b.json").splitlines()
    assert len(table) == 3
    cells = [c.strip() for c in table[2].split("|")[1:-1]]
    assert cells[1] == "82.7"                        # zero-shot mean (80 + 85 + 83) / 3
    assert cells[3] == "83.7 (+1.0; ja +1.0*)"       # mean, its difference, the significant language
    assert cells[4] == "same row"                    # the best langalign row is that one
    assert cells[5] == "ko 78.0 (-2.0), zh 81.0 (-2.0)"
    with pytest.raises(results_tables.ResultsError):
        results_tables.benchmark_headline(tmp_path, "same", file="missing.json")


def test_benchmark_headline_of_another_encoder_uses_its_own_zero_shot(tmp_path):
    rows = []
    for setting, zs in (("same", 0.80), ("same:e5-small", 0.90)):
        for lang in ("ko", "ja", "zh"):
            r = _row("sib200", lang, "zero-shot (no map)", "zero-shot", zs)
            rows.append({**r, "setting": setting})
            m = _row("sib200", lang, "Rev-LangAlign default [in-domain 300]", "reverse", zs + 0.01, "default",
                     "in-domain", 300, 0.01, 0.5)
            rows.append({**m, "setting": setting})
    (tmp_path / "b.json").write_text(json.dumps({"meta": {"tasks_completed": ["sib200"]}, "results": rows}))
    cells = [c.strip() for c in results_tables.benchmark_headline(tmp_path, "same:e5-small", file="b.json")
             .splitlines()[2].split("|")[1:-1]]
    assert cells[1] == "90.0" and cells[3] == "91.0 (+1.0; none significant)"  # e5's rows against e5's zero-shot
    with pytest.raises(results_tables.ResultsError, match="same:ENCODER"):
        results_tables.benchmark_headline(tmp_path, "other", file="b.json")


def test_prose_pins_notice_a_changed_result(tmp_path):
    f = tmp_path / "r.json"
    f.write_text('{"a": 1}')
    pin = f"<!-- prose-for: r.json@sha256:{pins.short_sha(f)} -->"
    assert pins.stale_pins(pin, tmp_path) == []
    f.write_text('{"a": 2}')
    (problem,) = pins.stale_pins(pin, tmp_path)
    assert f"r.json@sha256:{pins.short_sha(f)}" in problem  # says what to pin after rereading
    assert pins.stale_pins("<!-- prose-for: gone.json@sha256:000000000000 -->", tmp_path)
    assert pins.stale_pins("<!-- prose-for: r.json -->", tmp_path)


def test_the_docs_prose_is_pinned_to_the_committed_results():
    problems = [f"{p.relative_to(ROOT)}: {msg}" for p in PAGES for msg in pins.stale_pins(p.read_text("utf-8"), ROOT)]
    assert not problems, "\n".join(problems)


# -- the site builds --------------------------------------------------------------------------------------------
def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (site / "index.html").is_file()
    cli = (site / "reference" / "cli" / "index.html").read_text("utf-8")
    assert "langalign fit" in cli and "--source-encoder" in cli  # generated from the parsers
    results = (site / "results" / "index.html").read_text("utf-8")
    assert "generate:" not in results  # every directive was expanded
    assert (site / "results" / "benchmark.json").is_file()


# -- the code blocks run ------------------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(DOCS)) for p in RUNNABLE])
def test_docs_code_blocks_run(page, tmp_path, monkeypatch):
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared/data (the reference data) is not beside the repository")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(SHARED)  # `../shared/data` works as it does next to a clone
    env = {"LANGALIGN_DATA_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "LANGALIGN_NO_PROGRESS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(work)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    rel = str(page.relative_to(ROOT))
    for block in codeblocks.parse(page.read_text("utf-8"), rel):
        if not block.runnable:
            continue
        if block.kind == "python":
            exec(compile(block.code, block.where(), "exec"), namespace)  # noqa: S102 - our own docs
        else:
            assert shutil.which("bash")
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=work, env=os.environ.copy(),
                               capture_output=True, text=True, timeout=900)
            assert r.returncode == 0, f"{block.where()} failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
