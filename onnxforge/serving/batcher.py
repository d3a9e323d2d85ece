"""Dynamic batching: requests that arrive together run as one session call along the batch axis.

A collector thread takes the first waiting request, then keeps collecting for at most ``timeout_s``
(or until ``max_batch`` rows), concatenates compatible requests along axis 0, runs once and hands each
request its slice of the outputs. One session run over 32 rows costs far less than 32 runs of one row.
"""
from __future__ import annotations

__all__ = ["Batcher"]

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

Feeds = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]


@dataclass
class _Pending:
    feeds: Feeds
    rows: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Outputs | None = None
    error: BaseException | None = None

    def signature(self) -> tuple:
        # Only requests whose non-batch dims and dtypes agree can be concatenated.
        return tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(self.feeds.items()))


_STOP = object()


class Batcher:
    """Collects concurrent requests into batches and runs them with ``run``.

    Args:
        run: Runs feeds (arrays with the batch on axis 0) and returns ``{output name: array}`` whose
            axis 0 is the same batch.
        max_batch: The most rows one run may take; a single larger request still runs, alone.
        timeout_s: How long to wait for more requests after the first one of a batch arrives.

    Example:
        >>> import numpy as np
        >>> b = Batcher(lambda feeds: {"y": feeds["x"] * 2}, max_batch=8, timeout_s=0.001)
        >>> b.submit({"x": np.ones((2, 3))})["y"].shape
        (2, 3)
        >>> b.close()
    """

    def __init__(self, run: Callable[[Feeds], Outputs], *, max_batch: int = 64, timeout_s: float = 0.002) -> None:
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive int. Received: max_batch={max_batch!r}")
        if not timeout_s >= 0:
            raise ValueError(f"timeout_s must be >= 0. Received: timeout_s={timeout_s!r}")
        self._run = run
        self.max_batch = max_batch
        self.timeout_s = float(timeout_s)
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        #: Counters for monitoring and tests: requests served, session runs, most requests in one run.
        self.stats = {"requests": 0, "runs": 0, "max_requests_per_run": 0}
        self._thread = threading.Thread(target=self._loop, name="onnxforge-batcher", daemon=True)
        self._thread.start()

    def submit(self, feeds: Feeds, timeout: float | None = None) -> Outputs:
        """Queue one request (batch on axis 0) and block until its outputs are ready.

        Raises:
            RuntimeError: If the batcher is closed.
            TimeoutError: If ``timeout`` seconds pass first.
            Exception: Whatever the run raised for this request.
        """
        rows = int(next(iter(feeds.values())).shape[0])
        pending = _Pending(feeds, rows)
        with self._lock:
            if self._closed:
                raise RuntimeError("The batcher is shut down; no new requests are accepted.")
            self._queue.put(pending)
        if not pending.done.wait(timeout):
            raise TimeoutError(f"No result within {timeout} s")
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def close(self, timeout: float | None = 30.0) -> None:
        """Finish every queued request, then stop the collector thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    # -- collector thread -----------------------------------------------------------------------

    def _loop(self) -> None:
        carry: _Pending | None = None
        stopping = False
        while True:
            if carry is not None:
                first, carry = carry, None
            elif stopping:
                try:
                    first = self._queue.get_nowait()  # drain what was queued before close()
                except queue.Empty:
                    return
            else:
                first = self._queue.get()
            if first is _STOP:
                stopping = True
                continue
            batch, rows = [first], first.rows
            deadline = time.monotonic() + self.timeout_s
            while rows < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                if rows + item.rows > self.max_batch:
                    carry = item  # starts the next batch
                    break
                batch.append(item)
                rows += item.rows
            try:
                self._run_batch(batch)
            except Exception as e:  # the collector must outlive any failure; waiting requests get it
                for p in batch:
                    if not p.done.is_set():
                        p.error = e
                        p.done.set()

    def _run_batch(self, batch: list[_Pending]) -> None:
        groups: dict[tuple, list[_Pending]] = {}
        for p in batch:
            groups.setdefault(p.signature(), []).append(p)
        for group in groups.values():
            try:
                self._run_group(group)
            except Exception:
                # One request's data may make the whole run fail; give every request its own verdict.
                for p in group:
                    self._run_one(p)

    def _run_one(self, p: _Pending) -> None:
        try:
            p.result = self._run(p.feeds)
            self._count(1)
        except Exception as e:  # delivered to the waiting request thread
            p.error = e
        finally:
            p.done.set()

    def _run_group(self, group: list[_Pending]) -> None:
        if len(group) == 1:
            self._run_one(group[0])
            return
        names = list(group[0].feeds)
        feeds = {n: np.concatenate([p.feeds[n] for p in group], axis=0) for n in names}
        outputs = self._run(feeds)
        total = sum(p.rows for p in group)
        for name, out in outputs.items():
            if out.ndim == 0 or out.shape[0] != total:
                raise ValueError(f"output '{name}' has shape {list(out.shape)}, not {total} rows along axis 0")
        self._count(len(group))
        start = 0
        for p in group:
            p.result = {name: out[start:start + p.rows] for name, out in outputs.items()}
            start += p.rows
            p.done.set()

    def _count(self, requests: int) -> None:
        with self._lock:
            self.stats["requests"] += requests
            self.stats["runs"] += 1
            self.stats["max_requests_per_run"] = max(self.stats["max_requests_per_run"], requests)
