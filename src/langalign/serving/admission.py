"""Admission control: the service takes on only the work it can serve, and says when to come back.

One :class:`Admission` per service, on the event loop (no locks needed):

- **Requests in flight** (reading a body, waiting, being encoded) are at most
  ``limits.max_in_flight``; one more is answered at once with 429 and ``Retry-After``,
  before its body is read.
- **Queued work**: the texts (and their characters) of admitted requests not yet
  answered are at most ``limits.max_queued_texts`` / ``limits.max_queued_chars``. A
  request that would go over is answered 429 with ``Retry-After`` (the queued
  characters over the measured encoding rate). A request is always admitted when
  nothing else is queued, so every request the per-request limits accept can be served.
- **Deadline**: an admitted request is answered within ``limits.request_timeout_s``
  (503 ``deadline_exceeded`` otherwise) and its remaining work is dropped.
- **Clients that leave**: their remaining work is dropped (see :mod:`.batcher`).

Every counter the service keeps lives in :class:`ServiceStats` (``Admission.stats``),
so exposing them (Prometheus ``GET /metrics``, :mod:`.metrics`) reads one object. They are
exact: each is changed on the event loop, once per event, never sampled.
"""
from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Histogram buckets (upper bounds). Seconds: from a cached one-text call to the default 120 s deadline.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Texts per encoder call: powers of two up to beyond the largest sensible batch.max_texts.
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)


class Rejected(Exception):
    """Not admitted now: answer 429 with ``Retry-After: retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int, reason: str):
        super().__init__(message)
        self.message, self.retry_after, self.reason = message, retry_after, reason


class Histogram:
    """Observations counted into fixed buckets (Prometheus' cumulative ``le`` buckets are made when read)."""

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # bucket i holds bounds[i-1] < v <= bounds[i]
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= it)``, ending with ``(inf, count)``."""
        out, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


@dataclass
class ServiceStats:
    """Everything the service counts, in one place.

    ``model`` labels are names of served models (or ``""``: none chosen yet, e.g. a request refused before
    its body was read, or an unknown name), so a client cannot grow the tables; ``route`` is one of
    :data:`.frontdoor.ROUTES` or ``"other"``.
    """

    requests: Counter = field(default_factory=Counter)   # (route, model, status) -> answered requests
    latency: dict = field(default_factory=dict)          # (route, model) -> Histogram of 2xx answers, seconds
    rejected: Counter = field(default_factory=Counter)   # reason -> 429s ("in_flight", "queued_texts", ...)
    deadline_exceeded: int = 0      # requests answered 503 because their deadline passed
    client_gone: int = 0            # requests whose client disconnected before the answer
    slow_clients: int = 0           # bodies not received within body_timeout_s (408)
    in_flight: int = 0              # requests being served now
    queued_texts: int = 0           # texts of admitted requests not answered yet
    queued_chars: int = 0
    batches: int = 0                # encoder calls
    batch_texts: int = 0            # texts in them
    batch_chars: int = 0
    encode_seconds: float = 0.0
    chars_per_second: float | None = None  # smoothed encoding rate (for Retry-After)
    batch_sizes: dict = field(default_factory=dict)      # encoder -> Histogram of texts per encoder call
    batch_seconds: dict = field(default_factory=dict)    # encoder -> Histogram of an encoder call's seconds
    encoder_chars: Counter = field(default_factory=Counter)  # encoder -> characters encoded

    def snapshot(self) -> dict[str, Any]:
        return {"requests": {f"{r} {m or '-'} {s}": n for (r, m, s), n in sorted(self.requests.items())},
                "rejected": dict(self.rejected), "deadline_exceeded": self.deadline_exceeded,
                "client_gone": self.client_gone, "slow_clients": self.slow_clients, "in_flight": self.in_flight,
                "queued_texts": self.queued_texts, "queued_chars": self.queued_chars, "batches": self.batches,
                "batch_texts": self.batch_texts, "batch_chars": self.batch_chars,
                "encode_seconds": round(self.encode_seconds, 3), "chars_per_second": self.chars_per_second}


class Admission:
    """The service's admission rules (see the module docstring); ``limits`` is a :class:`~.config.Limits`."""

    def __init__(self, limits: Any):
        self.limits = limits
        self.stats = ServiceStats()

    # -- requests in flight -------------------------------------------------------------
    def enter(self) -> None:
        """A request arrives; raises :class:`Rejected` when ``max_in_flight`` are being served already."""
        if self.stats.in_flight >= self.limits.max_in_flight:
            self.stats.rejected["in_flight"] += 1
            raise Rejected(f"the service is busy ({self.stats.in_flight} requests in flight, the limit is "
                           f"{self.limits.max_in_flight}); retry after the time in Retry-After",
                           self.retry_after(), "in_flight")
        self.stats.in_flight += 1

    def leave(self) -> None:
        self.stats.in_flight -= 1

    # -- queued work --------------------------------------------------------------------
    def admit(self, texts: list[str]) -> Ticket:
        """Admit a request's texts or raise :class:`Rejected`; release the ticket when it is answered."""
        n, chars = len(texts), sum(len(t) for t in texts)
        s, lim = self.stats, self.limits
        if s.queued_texts > 0:  # an empty queue takes any request the per-request limits allow
            for what, have, add, limit in (("queued_texts", s.queued_texts, n, lim.max_queued_texts),
                                           ("queued_chars", s.queued_chars, chars, lim.max_queued_chars)):
                if have + add > limit:
                    s.rejected[what] += 1
                    unit = "texts" if what == "queued_texts" else "characters"
                    raise Rejected(f"the service is busy: {have} {unit} are queued and this request adds {add} "
                                   f"(the limit is {limit}); retry after the time in Retry-After",
                                   self.retry_after(), what)
        s.queued_texts += n
        s.queued_chars += chars
        return Ticket(self, n, chars)

    def retry_after(self) -> int:
        """Seconds until the queued work is likely done: queued characters over the measured rate, 1..60."""
        rate = self.stats.chars_per_second
        if not rate or self.stats.queued_chars <= 0:
            return 1
        return int(min(60, max(1, math.ceil(self.stats.queued_chars / rate))))

    # -- statistics ---------------------------------------------------------------------
    def on_batch(self, texts: int, chars: int, seconds: float, encoder: str = "") -> None:
        s = self.stats
        if encoder not in s.batch_sizes:
            s.batch_sizes[encoder] = Histogram(BATCH_BUCKETS)
            s.batch_seconds[encoder] = Histogram(LATENCY_BUCKETS)
        s.batch_sizes[encoder].observe(texts)
        s.batch_seconds[encoder].observe(seconds)
        s.encoder_chars[encoder] += chars
        s.batches += 1
        s.batch_texts += texts
        s.batch_chars += chars
        s.encode_seconds += seconds
        if seconds > 0 and chars > 0:
            rate = chars / seconds
            s.chars_per_second = rate if s.chars_per_second is None else 0.8 * s.chars_per_second + 0.2 * rate

    def answered(self, route: str, status: int, model: str = "", seconds: float | None = None) -> None:
        """A response was sent (or the request ended without one): count it, and time it if it succeeded."""
        s = self.stats
        s.requests[(route, model, int(status))] += 1
        if seconds is not None and 200 <= status < 300:
            h = s.latency.get((route, model))
            if h is None:
                h = s.latency[(route, model)] = Histogram(LATENCY_BUCKETS)
            h.observe(seconds)


class Ticket:
    """An admitted request's share of the queue, returned once (idempotent)."""

    def __init__(self, admission: Admission, texts: int, chars: int):
        self._admission, self._texts, self._chars = admission, texts, chars

    def release(self) -> None:
        if self._admission is not None:
            self._admission.stats.queued_texts -= self._texts
            self._admission.stats.queued_chars -= self._chars
            self._admission = None  # type: ignore[assignment]
