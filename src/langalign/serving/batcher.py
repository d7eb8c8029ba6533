"""Micro-batching with fair sharing: concurrent requests share encoder calls, and no request waits
behind another request's whole encoding.

Encoders are far faster per text on a batch than one text at a time (one
forward pass, one matrix product). The batcher collects the texts of requests
that arrive within ``max_wait_ms`` of each other (or until ``max_texts`` are
waiting), encodes them in one call on a worker thread, and hands every request
its own rows back. The wait is skipped when a request is alone (nothing else in
flight, ``in_flight``, and the previous batch was not shared): it has nobody to
wait for.

Fairness: a batch holds at most ``max_texts`` texts and ``max_chars`` characters,
and is filled round-robin, one text from each waiting request in turn. A request
of 256 long texts is therefore encoded as many batches, and a one-sentence request
that arrives meanwhile rides along in the next one: its wait is bounded by one
batch, not by the large request. A request whose client went away (its future is
cancelled) is dropped before its next batch, so abandoned work stops within one
batch.

A failing batch is retried request by request, so one bad input fails only its
own request.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False)
class _Job:
    texts: list[str]
    fut: asyncio.Future
    out: np.ndarray | None = None
    next: int = 0   # first text not yet handed to a batch
    done: int = 0   # texts encoded so far
    chars: list[int] = field(default_factory=list)


class MicroBatcher:
    """Batch calls of ``fn(texts) -> (n, dim) array`` from concurrent coroutines, fairly.

    ``on_batch(texts, chars, seconds)``, if given, is told about every encoder call (statistics).
    """

    def __init__(self, fn: Callable[[list[str]], np.ndarray], max_texts: int = 64, max_wait_ms: float = 5.0,
                 name: str = "encoder", in_flight: Callable[[], int] | None = None, max_chars: int = 32768,
                 on_batch: Callable[[int, int, float], None] | None = None):
        self.fn = fn
        self.in_flight = in_flight
        self.max_texts = int(max_texts)
        self.max_chars = int(max_chars)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.name = name
        self.on_batch = on_batch
        self._jobs: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        # One worker thread per encoder: encoders are not re-entrant, and their math is multi-threaded already.
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")
        self.batches = 0  # statistics, for tests
        self.texts = 0
        self.waits = 0  # batches that waited for company
        self.dropped = 0  # requests dropped because their client went away (or their deadline passed)
        self._last_requests = 0  # requests in the previous batch

    async def submit(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run())
        fut: asyncio.Future = loop.create_future()
        self._jobs.append(_Job(list(texts), fut, chars=[len(t) for t in texts]))
        assert self._wakeup is not None
        self._wakeup.set()
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._prune():
                if self.max_wait > 0 and self._waiting() < self.max_texts and self._others_coming():
                    # Give concurrent requests a moment to join the batch.
                    self.waits += 1
                    deadline = loop.time() + self.max_wait
                    while self._waiting() < self.max_texts and (left := deadline - loop.time()) > 0:
                        self._wakeup.clear()
                        try:
                            await asyncio.wait_for(self._wakeup.wait(), left)
                        except asyncio.TimeoutError:
                            break
                batch = self._take()
                if batch:
                    await self._encode(loop, batch)

    def _prune(self) -> bool:
        """Drop requests that are settled (cancelled: the client left or its deadline passed); any left?"""
        if any(j.fut.done() for j in self._jobs):
            kept = [j for j in self._jobs if not j.fut.done()]
            self.dropped += len(self._jobs) - len(kept)
            self._jobs = deque(kept)
        return any(j.next < len(j.texts) for j in self._jobs)

    def _others_coming(self) -> bool:
        """May other requests join this batch soon? Yes if some are in flight but not queued here yet, or if
        the previous batch was shared (under load, requests still being read are not counted in flight)."""
        if self.in_flight is None or self._last_requests > 1:
            return True
        return self.in_flight() > sum(1 for j in self._jobs if not j.fut.done())

    def _waiting(self) -> int:
        return sum(len(j.texts) - j.next for j in self._jobs if not j.fut.done())

    def _take(self) -> list[tuple[_Job, int, int]]:
        """The next batch as ``(job, start, stop)`` slices: one text from each waiting request in turn."""
        ready = [j for j in self._jobs if not j.fut.done() and j.next < len(j.texts)]
        if not ready:
            return []
        take = {id(j): 0 for j in ready}
        n = chars = 0
        progress = True
        while progress and n < self.max_texts:
            progress = False
            for j in ready:
                k = j.next + take[id(j)]
                if k >= len(j.texts) or n >= self.max_texts:
                    continue
                c = j.chars[k]
                if n and chars + c > self.max_chars:
                    continue  # too long for what is left of this batch; a later batch takes it
                take[id(j)] += 1
                n += 1
                chars += c
                progress = True
        batch = []
        for j in ready:
            k = take[id(j)]
            if k:
                batch.append((j, j.next, j.next + k))
                j.next += k
        # The next batch starts with the requests this one served last: nobody is always first.
        served = {id(j) for j, _, _ in batch}
        self._jobs = deque([j for j in self._jobs if id(j) not in served] + [j for j in self._jobs if id(j) in served])
        return batch

    async def _encode(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[_Job, int, int]]) -> None:
        texts = [t for j, a, b in batch for t in j.texts[a:b]]
        self._last_requests = len(batch)
        t0 = time.perf_counter()
        try:
            out = await loop.run_in_executor(self._pool, self.fn, texts)
        except Exception as e:
            if len(batch) == 1:
                self._fail(batch[0][0], e)
                return
            for j, a, b in batch:  # find the culprit: each request's slice on its own
                if j.fut.done():
                    continue
                try:
                    self._deliver(j, a, await loop.run_in_executor(self._pool, self.fn, j.texts[a:b]))
                except Exception as e2:
                    self._fail(j, e2)
            return
        self.batches += 1
        self.texts += len(texts)
        if self.on_batch is not None:
            self.on_batch(len(texts), sum(len(t) for t in texts), time.perf_counter() - t0)
        pos = 0
        for j, a, b in batch:
            self._deliver(j, a, out[pos : pos + (b - a)])
            pos += b - a

    def _deliver(self, job: _Job, start: int, rows: np.ndarray) -> None:
        if job.fut.done():
            return
        rows = np.asarray(rows)
        if job.out is None:
            if len(job.texts) == rows.shape[0]:
                job.out = rows  # the whole request in one piece: no copy
                job.done = rows.shape[0]
                job.fut.set_result(rows)
                self._forget(job)
                return
            job.out = np.empty((len(job.texts),) + rows.shape[1:], dtype=rows.dtype)
        job.out[start : start + rows.shape[0]] = rows
        job.done += rows.shape[0]
        if job.done == len(job.texts):
            job.fut.set_result(job.out)
            self._forget(job)

    def _fail(self, job: _Job, e: BaseException) -> None:
        if not job.fut.done():
            job.fut.set_exception(e)
        self._forget(job)

    def _forget(self, job: _Job) -> None:
        with contextlib.suppress(ValueError):  # already dropped
            self._jobs.remove(job)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
