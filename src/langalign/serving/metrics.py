"""``GET /metrics``: the service's counters in Prometheus' text exposition format (version 0.0.4).

Written here rather than with ``prometheus_client``: every number already lives in one object
(:class:`~.admission.ServiceStats`, changed on the event loop), so the exposition is a read of it,
with no second set of counters to keep in step and no process-wide registry shared by every
service in a process. The format is checked against ``prometheus_client``'s own parser in the tests.

Metrics (``model`` is a served model's name, ``""`` when the request named none that is served;
the full table, with an example scrape config, is in docs/guide/serving.md):

- counters: ``langalign_requests_total`` {route, model, status}, ``langalign_rejected_total`` {reason},
  ``langalign_deadline_exceeded_total``, ``langalign_client_disconnects_total``,
  ``langalign_slow_clients_total``, ``langalign_encoded_chars_total`` {encoder};
- histograms: ``langalign_request_duration_seconds`` {route, model} (2xx answers only),
  ``langalign_batch_size_texts`` and ``langalign_batch_duration_seconds`` {encoder};
- gauges: ``langalign_in_flight_requests``, ``langalign_queued_texts``, ``langalign_queued_chars``,
  ``langalign_limit`` {limit}, ``langalign_encode_chars_per_second``, ``langalign_model_info``
  {model, kind, encoder, fingerprint}, ``langalign_loaded_artefacts`` {kind}, ``langalign_ready``,
  ``langalign_build_info`` {version}.
"""
from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Iterable
from typing import Any

from .._version import __version__
from .admission import Histogram, ServiceStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REJECT_REASONS = ("in_flight", "queued_texts", "queued_chars")
_LIMITS = ("max_in_flight", "max_queued_texts", "max_queued_chars", "request_timeout_s", "max_items", "max_chars",
           "max_body_bytes")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    return repr(float(v))


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help: str) -> None:
        self.lines += [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self.lines.append(f"{name}{_labels(labels or {})} {_number(value)}")

    def histogram(self, name: str, h: Histogram, labels: dict[str, str]) -> None:
        for bound, n in h.cumulative():
            self.sample(f"{name}_bucket", n, {**labels, "le": _number(bound)})
        self.sample(f"{name}_sum", h.sum, labels)
        self.sample(f"{name}_count", h.count, labels)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


# A ready registry's models never change: their rows are made once per registry.
_MODEL_ROWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _model_rows(registry: Any) -> list[dict[str, str]]:
    if registry.state != "ready":
        return []
    rows = _MODEL_ROWS.get(registry)
    if rows is None:
        rows = _MODEL_ROWS[registry] = list(_models(registry))
    return rows


def _models(registry: Any) -> Iterable[dict[str, str]]:
    """One row per name a client can ask for: encoders and aligned models, classifiers, indexes."""
    for m in registry.embeddings.values():
        ident = _encoder_identity(m.encoder)
        yield {"model": m.id, "kind": m.kind, "encoder": ident.get("name") or m.encoder.name,
               "fingerprint": ident.get("fingerprint") or ""}
    for c in registry.classifiers.values():
        ident = _encoder_identity(c.encoder)
        yield {"model": c.id, "kind": "classifier", "encoder": ident.get("name") or c.encoder.name,
               "fingerprint": ident.get("fingerprint") or ""}
    for i in registry.indexes.values():
        ident = i.index.encoder_identity_ or {}
        yield {"model": i.id, "kind": "index", "encoder": ident.get("name") or i.index.encoder_name or "",
               "fingerprint": ident.get("fingerprint") or ""}


def _encoder_identity(enc: Any) -> dict[str, Any]:
    # computed and cached while the service loaded (Registry.load); a custom encoder that cannot encode the
    # probe sentences has a name and no fingerprint (its warning was given then)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return dict(enc.identity())
        except Exception:
            return {"name": getattr(enc, "name", "")}


def render(registry: Any) -> str:
    """The exposition of ``registry``'s service (a :class:`~.registry.Registry`), read on the event loop."""
    s: ServiceStats = registry.admission.stats
    limits = registry.config.limits
    w = _Writer()

    w.family("langalign_build_info", "gauge", "The langalign version serving (always 1).")
    w.sample("langalign_build_info", 1, {"version": __version__})
    w.family("langalign_ready", "gauge", "1 once every model is loaded and checked (GET /health answers 200).")
    w.sample("langalign_ready", 1 if registry.state == "ready" else 0)

    w.family("langalign_requests_total", "counter",
             "Requests answered, by route, served model ('' if none) and HTTP status.")
    for (route, model, status), n in sorted(s.requests.items()):
        w.sample("langalign_requests_total", n, {"route": route, "model": model, "status": str(status)})
    w.family("langalign_request_duration_seconds", "histogram",
             "Seconds from a request's arrival to the end of its answer, for answers with a 2xx status.")
    for (route, model), h in sorted(s.latency.items()):
        w.histogram("langalign_request_duration_seconds", h, {"route": route, "model": model})

    w.family("langalign_rejected_total", "counter",
             "Requests answered 429 with Retry-After by admission control, by the limit they met.")
    for reason in (*REJECT_REASONS, *sorted(set(s.rejected) - set(REJECT_REASONS))):
        w.sample("langalign_rejected_total", s.rejected.get(reason, 0), {"reason": reason})
    w.family("langalign_deadline_exceeded_total", "counter",
             "Admitted requests answered 503 because request_timeout_s passed; their remaining work was dropped.")
    w.sample("langalign_deadline_exceeded_total", s.deadline_exceeded)
    w.family("langalign_client_disconnects_total", "counter",
             "Requests whose client disconnected before the answer; their remaining work was dropped.")
    w.sample("langalign_client_disconnects_total", s.client_gone)
    w.family("langalign_slow_clients_total", "counter", "Request bodies not received within body_timeout_s (408).")
    w.sample("langalign_slow_clients_total", s.slow_clients)

    w.family("langalign_in_flight_requests", "gauge", "Requests being served now (bounded by max_in_flight).")
    w.sample("langalign_in_flight_requests", s.in_flight)
    w.family("langalign_queued_texts", "gauge", "Texts of admitted requests not answered yet.")
    w.sample("langalign_queued_texts", s.queued_texts)
    w.family("langalign_queued_chars", "gauge", "Characters of admitted requests not answered yet.")
    w.sample("langalign_queued_chars", s.queued_chars)
    w.family("langalign_limit", "gauge", "The service's configured limits (config limits.*).")
    for name in _LIMITS:
        w.sample("langalign_limit", getattr(limits, name), {"limit": name})

    w.family("langalign_batch_size_texts", "histogram", "Texts per encoder call (the micro-batcher's batches).")
    for enc, h in sorted(s.batch_sizes.items()):
        w.histogram("langalign_batch_size_texts", h, {"encoder": enc})
    w.family("langalign_batch_duration_seconds", "histogram", "Seconds per encoder call.")
    for enc, h in sorted(s.batch_seconds.items()):
        w.histogram("langalign_batch_duration_seconds", h, {"encoder": enc})
    w.family("langalign_encoded_chars_total", "counter", "Characters encoded, by encoder.")
    for enc, n in sorted(s.encoder_chars.items()):
        w.sample("langalign_encoded_chars_total", n, {"encoder": enc})
    w.family("langalign_encode_chars_per_second", "gauge",
             "Smoothed encoding rate that Retry-After is computed from (absent before the first batch).")
    if s.chars_per_second is not None:
        w.sample("langalign_encode_chars_per_second", s.chars_per_second)

    rows = _model_rows(registry)
    w.family("langalign_model_info", "gauge",
             "Served models (always 1): kind (encoder, aligned, classifier, index), the encoder that reads their "
             "input (an index: its documents' encoder) and its fingerprint.")
    for row in rows:
        w.sample("langalign_model_info", 1, row)
    w.family("langalign_loaded_artefacts", "gauge", "Loaded artefacts by kind (encoder, aligner, classifier, index).")
    if registry.state == "ready":
        counts = {"encoder": len(registry.encoders), "aligner": len(registry.config.aligners),
                  "classifier": len(registry.classifiers), "index": len(registry.indexes)}
        for kind, n in counts.items():
            w.sample("langalign_loaded_artefacts", n, {"kind": kind})
    return w.text()
