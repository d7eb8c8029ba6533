"""ONNX Runtime backends for sentence-transformers encoders: the same model, run by another engine.

``load_encoder("minilm", backend="onnx")`` (or the name ``"minilm+onnx"``) exports the
encoder's whole sentence-transformers pipeline (transformer, pooling, normalisation, any
dense layer) once with ``torch.onnx.export`` into the data home, checks the graph against
torch on fixed sentences, and from then on runs the forward pass in ONNX Runtime.
Tokenisation (and any prompt) stays sentence-transformers' own, so only the arithmetic moves.

- ``onnx``: float32. Its vectors equal torch's to float32 rounding (checked at export:
  at most :data:`FP32_MAX_DIFF` apart), so the encoder keeps its name and fingerprint.
- ``onnx-int8``: ONNX Runtime's dynamic int8 quantisation (weights per channel) of that
  graph. Its vectors are close to float32 (cosine about 0.99) but not equal, so it is a
  different encoder: its name gets the suffix ``+onnx-int8``, artefacts record that name,
  and using it with an artefact fitted on float32 vectors is refused unless forced.
  Dynamic quantisation scales activations per batch, so a text's int8 vector also moves
  slightly with the texts it is batched with (by up to ~0.03 per number on MiniLM).

The exported files live in ``<data home>/onnx/<model digest>/`` (``model.onnx``,
``model.int8.onnx``, ``export.json``): the digest hashes the model's weights and modules,
so an edited or re-trained model never reuses another's graph. Needs ``onnxruntime`` and
``onnx`` (``pip install 'langalign[onnx]'``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EncoderNotAvailableError

BACKENDS = ("torch", "onnx", "onnx-int8")
# Backends whose vectors differ from float32 torch beyond rounding carry their name in the encoder's.
NAME_SUFFIX = {"torch": "", "onnx": "", "onnx-int8": "+onnx-int8"}
# The float32 graph must reproduce torch this closely on the check sentences (observed: ~2e-7).
FP32_MAX_DIFF = 1e-4
# A quantised graph whose check sentences fall below this mean cosine is broken, not merely rounded.
INT8_MIN_COSINE = 0.95
EXPORT_FORMAT = 1
_CHECK_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "오늘 날씨가 정말 좋네요.",
    "A much longer sentence, with commas, numbers like 3.14 and 42, and a few rarer words such as "
    "photosynthesis, to exercise the padding of a batch whose texts differ in length.",
    "",
    "x",
)
_export_lock = threading.Lock()


def check_backend(backend: str | None) -> str:
    """The backend's canonical name; ``None`` means ``"torch"``. One-line ``ValueError`` otherwise."""
    b = "torch" if backend is None else str(backend).strip().lower()
    if b not in BACKENDS:
        raise ValueError(f"unknown encoder backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return b


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise EncoderNotAvailableError("the onnx backends need onnxruntime and onnx: "
                                       "pip install 'langalign[onnx]'") from None
    return onnxruntime


def _tensor_features(model: Any, texts: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tokenised ``texts`` as sentence-transformers builds them: (tensor inputs, other entries)."""
    prep = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers >= 6 / older
    feats = prep(texts)
    import torch

    tensors = {k: v for k, v in feats.items() if isinstance(v, torch.Tensor)}
    others = {k: v for k, v in feats.items() if not isinstance(v, torch.Tensor)}
    return tensors, others


def model_digest(model: Any) -> str:
    """Hash of a sentence-transformers model's weights, module layout and sequence limit."""
    h = hashlib.sha256()
    h.update(repr(model).encode("utf-8"))
    h.update(str(getattr(model, "max_seq_length", None)).encode())
    for key, t in sorted(model.state_dict().items()):
        a = t.detach().cpu().contiguous()
        h.update(f"{key}|{a.dtype}|{tuple(a.shape)}".encode())
        h.update((a.float() if a.is_floating_point() else a).numpy().tobytes())
    return h.hexdigest()[:20]


def export_root() -> Path:
    from .data.home import data_home

    return data_home() / "onnx"


class _Pipeline:
    """``torch.nn.Module`` factory: the whole sentence-transformers stack with positional tensor inputs."""

    @staticmethod
    def build(model: Any, names: list[str], others: dict[str, Any]) -> Any:
        import torch

        class Forward(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                feats: dict[str, Any] = dict(zip(names, tensors, strict=True))
                feats.update(others)
                return self.model(feats)["sentence_embedding"]

        return Forward().eval()


def _torch_reference(model: Any, texts: list[str]) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for t in texts:  # one at a time: no padding in the reference
            tensors, others = _tensor_features(model, [t])
            out.append(model({**tensors, **others})["sentence_embedding"].float().numpy())
    return np.concatenate(out)


def export(model: Any, folder: Path) -> dict[str, Any]:
    """Write ``model.onnx`` (float32) and ``model.int8.onnx`` of ``model`` into ``folder`` and check them."""
    import torch

    ort = _require_onnxruntime()
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:  # pragma: no cover - onnxruntime without the onnx package
        raise EncoderNotAvailableError("the onnx-int8 backend needs the onnx package: "
                                       "pip install 'langalign[onnx]'") from None
    tensors, others = _tensor_features(model, ["a short one", "and a somewhat longer second sentence"])
    names = list(tensors)
    module = _Pipeline.build(model, names, others)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"sentence_embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(module, tuple(tensors[n] for n in names), str(folder / "model.onnx"),
                          input_names=names, output_names=["sentence_embedding"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    import logging

    quiet = logging.getLogger()  # the quantiser logs advice about pre-processing to the root logger
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(folder / "model.onnx"), str(folder / "model.int8.onnx"), per_channel=True,
                         weight_type=QuantType.QInt8)
    finally:
        quiet.setLevel(level)
    ref = _torch_reference(model, list(_CHECK_SENTENCES))
    checks: dict[str, Any] = {}
    for backend, file in (("onnx", "model.onnx"), ("onnx-int8", "model.int8.onnx")):
        runner = OnnxRunner(folder / file, names, others, ort=ort)
        got = runner(model, list(_CHECK_SENTENCES))
        cos = np.sum(got * ref, 1) / np.maximum(np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1), 1e-12)
        checks[backend] = {"max_abs_diff": float(np.abs(got - ref).max()), "mean_cosine": float(cos.mean()),
                           "min_cosine": float(cos.min())}
    if not checks["onnx"]["max_abs_diff"] <= FP32_MAX_DIFF:
        raise EncoderNotAvailableError(f"the ONNX export differs from torch by {checks['onnx']['max_abs_diff']:.2g} "
                                       f"(more than {FP32_MAX_DIFF:g}); this model cannot use the onnx backend")
    if not checks["onnx-int8"]["mean_cosine"] >= INT8_MIN_COSINE:
        raise EncoderNotAvailableError(f"the int8 graph's vectors have mean cosine "
                                       f"{checks['onnx-int8']['mean_cosine']:.3f} to float32 (under "
                                       f"{INT8_MIN_COSINE}); this model cannot use the onnx-int8 backend")
    return {"inputs": names, "others": {k: v for k, v in others.items() if isinstance(v, (str, int, float))},
            "checks": checks}


def ensure_exported(model: Any, name: str) -> tuple[Path, dict[str, Any]]:
    """The export folder of ``model`` (exported now if missing) and its ``export.json``."""
    import torch

    digest = model_digest(model)
    folder = export_root() / digest
    meta_path = folder / "export.json"
    with _export_lock:
        if not meta_path.is_file():
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=folder.parent))
            tmp.chmod(0o755)
            try:
                info = export(model, tmp)
                meta = {"format": "langalign", "kind": "onnx-export", "format_version": EXPORT_FORMAT,
                        "encoder": name, "digest": digest, "torch": torch.__version__,
                        "onnxruntime": _require_onnxruntime().__version__, **info}
                (tmp / "export.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
                try:
                    os.replace(tmp, folder)  # atomic: another process may have won the race
                except OSError:
                    if not meta_path.is_file():
                        raise
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format_version") != EXPORT_FORMAT or meta.get("digest") != digest:
        raise EncoderNotAvailableError(f"{meta_path} is not an export of this model; delete the folder {folder}")
    return folder, meta


class OnnxRunner:
    """One ONNX Runtime session running a sentence-transformers forward pass."""

    def __init__(self, path: Path, names: list[str], others: dict[str, Any], ort: Any = None,
                 threads: int | None = None):
        ort = ort or _require_onnxruntime()
        import torch

        so = ort.SessionOptions()
        from ._threads import THREADS_ENV, default_threads

        # the same threads as torch unless LANGALIGN_THREADS says otherwise
        so.intra_op_num_threads = int(threads or (default_threads() if os.environ.get(THREADS_ENV)
                                                  else torch.get_num_threads()))
        so.inter_op_num_threads = 1
        # Spinning worker threads win a little on an idle machine but starve everything else
        # on a busy one (torch in the same process included): measured in bench/encoders.py.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.names = list(names)
        self.others = dict(others)
        self.path = Path(path)

    def __call__(self, model: Any, texts: list[str]) -> np.ndarray:
        tensors, others = _tensor_features(model, texts)
        if list(tensors) != self.names or any(others.get(k) != v for k, v in self.others.items()
                                             if isinstance(v, (str, int, float))):
            raise RuntimeError(f"the model's inputs ({', '.join(tensors)}) differ from the exported graph's "
                               f"({', '.join(self.names)}); use backend='torch'")
        feed = {n: tensors[n].numpy() for n in self.names}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)
