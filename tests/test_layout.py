"""The package layout: imports go downward only, checked statically (``ast``, no imports run).

Every module under ``src/langalign`` is parsed and its imports of other langalign
modules collected, those inside functions too (lazy imports are still
dependencies; they just hide a cycle until the function runs). Imports built at
run time from strings (``importlib.import_module(name)`` with a computed name,
as the CLI does for its own command modules) are not seen.

One path per concept: the old alias modules (``langalign.cache``, ``langalign.streaming``, ...)
are gone, and a test checks they stay gone.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "langalign"

# Layers, lowest first. A module may import from its own layer and the layers
# below; a top-level module or subpackage of langalign not listed here fails
# test_imports_go_downward until it is given a layer.
LAYERS: list[tuple[str, set[str]]] = [
    ("base helpers", {"errors", "_io", "_validation", "_progress", "_labels", "_version", "_threads",
                      "artefacts"}),
    ("encoders, data, mappers, heads, evaluation", {"encoder_base", "encoders", "encoder_identity", "e5_model",
                                                    "onnx_backend", "data", "mappers", "heads",
                                                    "evaluation"}),
    ("scale (streaming, cache, sharded fit, FAISS, Ray)", {"scale"}),
    ("aligner", {"aligner", "domain_shift", "weights", "averaged_encoder"}),
    ("transfer, tuning (a package: inputs, environment, checkpoints, losses, training, tuner, distil)",
     {"transfer", "tuning"}),
    ("index, benchmark, demo", {"index", "benchmark", "demo"}),
    # LangChain / LlamaIndex classes and Chroma / LanceDB / Qdrant collections over aligners and indexes
    ("integrations", {"integrations"}),
    ("serving", {"serving"}),
    ("cli", {"cli"}),
    # The package's __init__ (""): nothing inside langalign imports it.
    ("entry point", {""}),
]


def module_names(root: Path) -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is_package)}`` for every ``.py`` file under ``root`` (a package folder)."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        mods[".".join(parts)] = (path, is_pkg)
    return mods


def _deepest_module(name: str, mods: dict) -> str | None:
    while name not in mods:
        if "." not in name:
            return None
        name = name.rpartition(".")[0]
    return name


def import_graph(root: Path) -> dict[str, set[str]]:
    """``{module: modules of the same package it imports}``, anywhere in the file (functions included)."""
    mods = module_names(root)
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in mods.items():
        here = name if is_pkg else name.rpartition(".")[0]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    up = here.split(".")
                    if node.level - 1 >= len(up):
                        continue  # beyond the package: not ours
                    base = ".".join(up[:len(up) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # `from pkg import sub` imports the module pkg.sub; `from mod import name` imports mod.
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "import_module" and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                targets.append(node.args[0].value)
        graph[name] = {t for t in (_deepest_module(t, mods) for t in targets) if t and t != name}
    return graph


def part(module: str) -> str:
    """The top-level module or subpackage of the package a module belongs to (``""``: its __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None. Iterative DFS (white/grey/black)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if state.get(child) == 1:
                    return path[path.index(child):] + [child]
                if not state.get(child):
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(sorted(graph.get(child, ())))))
                    break
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph collapsed to top-level parts (``langalign.scale.cache`` -> ``scale``)."""
    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        out.setdefault(part(a), set()).update(part(b) for b in targets if part(b) != part(a))
    return out


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """Problems with the layering: undeclared parts, and imports of a higher layer."""
    rank = {p: i for i, (_, parts) in enumerate(layers) for p in parts}
    problems = sorted({f"{part(m) or '__init__'} has no layer in LAYERS (tests/test_layout.py)"
                       for m in graph if part(m) not in rank})
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            if part(a) in rank and part(b) in rank and rank[part(b)] > rank[part(a)]:
                problems.append(f"{a} imports {b}: layer '{layers[rank[part(b)]][0]}' is above "
                                f"'{layers[rank[part(a)]][0]}'")
    return problems


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for b in graph.get(todo.pop(), ()):
            if b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


@pytest.fixture(scope="module")
def graph():
    return import_graph(SRC)


def test_graph_sees_the_package_and_imports_inside_functions(graph):
    assert {"langalign", "langalign.encoders", "langalign.scale", "langalign.scale.streaming",
            "langalign.cli.scale_commands"} <= set(graph)
    # aligner imports the shard fit inside LangAlign.fit_shards only: still an edge.
    assert "langalign.scale.sharded_fit" in graph["langalign.aligner"]
    assert "langalign.scale.cache" in graph["langalign.scale.streaming"]


def test_no_import_cycles_between_modules(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycles_between_packages(graph):
    cycle = find_cycle(package_graph(graph))
    assert cycle is None, "import cycle between parts of langalign: " + " -> ".join(cycle or [])


def test_encoders_know_nothing_of_scale(graph):
    """An encoder knows nothing of shards or caches, not even through another module."""
    for mod in [m for m in graph if part(m) == "encoders"]:
        bad = sorted(b for b in reachable(graph, mod) if part(b) == "scale")
        assert not bad, f"{mod} imports (directly or through others) {bad}"


def test_imports_go_downward(graph):
    problems = upward_imports(graph)
    assert not problems, "\n".join(problems)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "toy" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "toy"


def private_imports(root: Path) -> list[str]:
    """``from X import _name`` where X lies in another top-level part of the package than the importer.

    A helper two parts share gets a public name where it lives. Dunder names (``__version__``) and modules
    (the base helpers ``_io``, ``_validation``, ... are private to langalign, not to one part) are not counted.
    """
    mods = module_names(root)
    problems = []
    for name, (path, is_pkg) in mods.items():
        here = name if is_pkg else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                up = here.split(".")
                if node.level - 1 >= len(up):
                    continue
                base = ".".join(up[:len(up) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != root.name or part(base) == part(name):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.endswith("__")
                if private and f"{base}.{alias.name}" not in mods:
                    rel = path.relative_to(root.parent)
                    problems.append(f"{rel}:{node.lineno}: imports private {alias.name} from {base}")
    return problems


def test_no_private_name_is_imported_across_packages():
    problems = private_imports(SRC)
    assert not problems, "\n".join(problems)


def test_checks_catch_a_lazy_cycle_and_an_upward_import(tmp_path):
    """The checks above can fail: a toy package with a cycle hidden in a function, and a layer breach."""
    toy = _write(tmp_path, {
        "__init__.py": "",
        "encoders.py": "def f():\n    from .scale.streaming import encode_to\n    return encode_to\n",
        "scale/__init__.py": "from .streaming import encode_to\n",
        "scale/streaming.py": "from ..encoders import f\nfrom . import cache\n",
        "scale/cache.py": "import toy.encoders\n",
    })
    g = import_graph(toy)
    assert g["toy.encoders"] == {"toy.scale.streaming"}
    assert g["toy.scale.streaming"] == {"toy.encoders", "toy.scale.cache"}
    assert g["toy.scale.cache"] == {"toy.encoders"}
    cycle = find_cycle(g)
    assert cycle is not None and cycle[0] == cycle[-1] and "toy.encoders" in cycle
    assert find_cycle(package_graph(g)) is not None
    layers = [("low", {"encoders"}), ("high", {"scale", ""})]
    assert upward_imports(g, layers) == [
        "toy.encoders imports toy.scale.streaming: layer 'high' is above 'low'"]
    assert upward_imports(g, [("low", {"encoders"})])[0] == "__init__ has no layer in LAYERS (tests/test_layout.py)"
    (toy / "scale" / "cache.py").write_text("from ..encoders import _helper, __doc__\nfrom . import streaming\n")
    assert private_imports(toy) == ["toy/scale/cache.py:1: imports private _helper from toy.encoders"]
    (toy / "scale" / "cache.py").write_text("import toy.encoders\n")
    # Without the lazy import the toy is clean.
    (toy / "encoders.py").write_text("def f():\n    return None\n")
    g = import_graph(toy)
    assert find_cycle(g) is None and upward_imports(g, layers) == []


# -- old import paths ------------------------------------------------------------------

GONE = ["langalign.streaming", "langalign.cache", "langalign.sharded_fit", "langalign.retrieval_faiss",
        "langalign.distributed", "langalign.distributed.ray_backend"]


@pytest.mark.parametrize("old", GONE)
def test_old_alias_modules_are_gone(old):
    """One path per concept (0.x, no API promise): the old aliases of langalign.scale modules do not import."""
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_scale_package_exports():
    import langalign.scale as scale

    for name in scale.__all__:
        obj = getattr(scale, name)
        home = [m for m in ("streaming", "cache", "sharded_fit", "retrieval_faiss", "ray_backend")
                if name in getattr(scale, m).__all__]
        assert len(home) == 1 and getattr(getattr(scale, home[0]), name) is obj, name
    assert sorted(scale.__all__) == sorted(n for m in ("streaming", "cache", "sharded_fit", "retrieval_faiss",
                                                       "ray_backend") for n in getattr(scale, m).__all__)


def test_top_level_names_still_import():
    import langalign

    for name in langalign.__all__:
        assert getattr(langalign, name) is not None, name


def test_encoder_encode_to_points_to_the_scale_function():
    from langalign import FunctionEncoder

    enc = FunctionEncoder(lambda texts: [[1.0, 0.0]] * len(texts), dim=2, name="two")
    assert not hasattr(enc, "encode_to")
    with pytest.raises(AttributeError, match=r"langalign\.scale\.encode_to\(encoder, path, texts\)"):
        enc.encode_to("somewhere", ["a"])


def test_tuning_is_a_package_of_modules_under_700_lines():
    """Issue 26: the 1,000-line tuning.py became a package; its public names still import from the top."""
    pkg = SRC / "tuning"
    assert pkg.is_dir() and not (SRC / "tuning.py").exists()
    long = {p.name: n for p in pkg.glob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > 700}
    assert not long, long
    from langalign.tuning import (DEFAULT_TASK_LOSS, KIND, MODES, TASK_LOSSES, EncoderTuner,  # noqa: F401
                                  TuningError, check_tuned_destination, resolve_device, tune_encoder)
