"""Micro-batching: concurrent requests share one encoder call.

Encoders are far faster per text on a batch than one text at a time (one
forward pass, one matrix product). The batcher collects the texts of requests
that arrive within ``max_wait_ms`` of each other (or until ``max_texts`` are
waiting), encodes them in one call on a worker thread, and hands every request
its own rows back. While a batch is encoding, new requests queue up and form the
next batch, so under load batches grow by themselves. The wait is skipped when a
request is alone (nothing else in flight, ``in_flight``, and the previous batch was not
shared): it has nobody to wait for.

A failing batch is retried request by request, so one bad input fails only its
own request.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from collections.abc import Callable

import numpy as np


class MicroBatcher:
    """Batch calls of ``fn(texts) -> (n, dim) array`` from concurrent coroutines."""

    def __init__(self, fn: Callable[[list[str]], np.ndarray], max_texts: int = 64, max_wait_ms: float = 5.0,
                 name: str = "encoder", in_flight: Callable[[], int] | None = None):
        self.fn = fn
        self.in_flight = in_flight
        self.max_texts = int(max_texts)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.name = name
        self._pending: deque[tuple[list[str], asyncio.Future]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        # One worker thread per encoder: encoders are not re-entrant, and their math is multi-threaded already.
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")
        self.batches = 0  # statistics, for tests
        self.texts = 0
        self.waits = 0  # batches that waited for company
        self._last_requests = 0  # requests in the previous batch

    async def submit(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run())
        fut: asyncio.Future = loop.create_future()
        self._pending.append((texts, fut))
        assert self._wakeup is not None
        self._wakeup.set()
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
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

    def _others_coming(self) -> bool:
        """May other requests join this batch soon? Yes if some are in flight but not queued here yet, or if
        the previous batch was shared (under load, requests still being read are not counted in flight)."""
        if self.in_flight is None or self._last_requests > 1:
            return True
        return self.in_flight() > sum(1 for _, f in self._pending if not f.done())

    def _waiting(self) -> int:
        return sum(len(t) for t, f in self._pending if not f.done())

    def _take(self) -> list[tuple[list[str], asyncio.Future]]:
        batch: list[tuple[list[str], asyncio.Future]] = []
        n = 0
        while self._pending:
            texts, fut = self._pending[0]
            if fut.done():  # the client went away
                self._pending.popleft()
                continue
            if batch and n + len(texts) > self.max_texts:
                break  # starts the next batch; a request larger than max_texts goes alone
            batch.append(self._pending.popleft())
            n += len(texts)
        return batch

    async def _encode(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[list[str], asyncio.Future]]) -> None:
        texts = [t for ts, _ in batch for t in ts]
        self._last_requests = len(batch)
        try:
            out = await loop.run_in_executor(self._pool, self.fn, texts)
        except Exception as e:
            if len(batch) == 1:
                _settle(batch[0][1], exc=e)
                return
            for ts, fut in batch:  # find the culprit: each request on its own
                try:
                    _settle(fut, await loop.run_in_executor(self._pool, self.fn, ts))
                except Exception as e2:
                    _settle(fut, exc=e2)
            return
        self.batches += 1
        self.texts += len(texts)
        pos = 0
        for ts, fut in batch:
            _settle(fut, out[pos : pos + len(ts)])
            pos += len(ts)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _settle(fut: asyncio.Future, result: np.ndarray | None = None, exc: BaseException | None = None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
