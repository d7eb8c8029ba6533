"""Every snippet of docs/integrations.md runs: its ```python and ```bash blocks, in order, in an empty folder.

Python blocks share one namespace (as a reader pasting them into one session would); bash blocks run
the installed ``langalign`` command. A real ``langalign serve`` (in this process, 127.0.0.1, a free
port) answers the page's service snippet, found through ``LANGALIGN_URL`` as the page reads it.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

for _mod in ("langchain_core", "langchain_chroma", "llama_index.core", "chromadb", "lancedb", "qdrant_client",
             "fastapi", "uvicorn"):
    pytest.importorskip(_mod)

PAGE = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(PAGE.read_text(encoding="utf-8"))]


def test_the_page_has_runnable_blocks_for_each_integration():
    text = "\n".join(code for _, code in blocks())
    for needle in ("LangAlignEmbeddings", "LangAlignEmbedding(", "chroma:", "lancedb:", "qdrant:",
                   "LangAlignServiceEmbeddings", "LangAlignServiceEmbedding(", "langalign search --store"):
        assert needle in text, needle


@pytest.mark.integration
def test_every_snippet_runs(tmp_path, tmp_path_factory, monkeypatch):
    from langalign import encoders
    from langalign.scale.cache import CachedEncoder, EmbeddingCache
    from langalign.serving import AlignerSpec, ServeConfig, build_server

    # The page embeds the same English documents into four stores; in this process MiniLM answers a
    # repeated text from a private cache (same model, same vectors), so the test encodes each once.
    cache = EmbeddingCache(tmp_path_factory.mktemp("embedding-cache"))
    monkeypatch.setitem(encoders._cache, "minilm", CachedEncoder(encoders.load_encoder("minilm"), cache))
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HF_HUB_OFFLINE": "1", "LANGALIGN_NO_PROGRESS": "1"}
    ns: dict = {"__name__": "__docs__"}
    server = thread = None
    outputs = []
    try:
        for i, (lang, code) in enumerate(blocks()):
            if "LANGALIGN_URL" in code and server is None:  # the service the page talks to
                server, sock, registry = build_server(
                    ServeConfig(port=0, aligners={"bridge": AlignerSpec(tmp_path / "aligners" / "bridge")}),
                    log_level="warning", access_log=False)
                thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
                thread.start()
                for _ in range(2400):  # bounded: 120 s
                    if server.started and registry.state != "loading":
                        break
                    time.sleep(0.05)
                assert registry.state == "ready", registry.error
                monkeypatch.setenv("LANGALIGN_URL", f"http://127.0.0.1:{sock.getsockname()[1]}")
                monkeypatch.delenv("LANGALIGN_API_KEY", raising=False)
            if lang == "python":
                exec(compile(code, f"{PAGE.name} block {i}", "exec"), ns)  # noqa: S102 - our own page
            else:
                r = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env,
                                   capture_output=True, text=True, timeout=600)
                assert r.returncode == 0, f"block {i} failed:\n{code}\n{r.stderr[-3000:]}"
                outputs.append(r.stdout)
    finally:
        if server is not None:
            server.should_exit = True
            thread.join(20)
    # what the page says happened, happened
    assert ns["col"].read_stamp()["encoder"] == "minilm"
    assert ns["lance"].read_stamp()["dim"] == 384
    lines = "\n".join(outputs).splitlines()
    at = lines.index("When does the train leave?")  # the English query, by the collection's stamped encoder
    assert "The train leaves at noon." in lines[at + 1]


def test_readme_integration_excerpts_come_from_the_page():
    # The README shows each integration in a few lines; each line is taken from a block of the page that
    # test_every_snippet_runs executes, so the README cannot drift from code that runs.
    readme = (PAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your English vector store, queried in Korean", 1)[1].split("\n## ", 1)[0]
    excerpt = section.split("```text\n", 1)[1].split("```", 1)[0]
    run = "\n".join(code for _, code in blocks())
    lines = [ln for ln in excerpt.splitlines() if ln.strip() and not ln.startswith("# ")]
    assert len(lines) >= 8
    missing = [ln for ln in lines if ln not in run]
    assert not missing, missing
