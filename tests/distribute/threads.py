"""Ranks as threads in one process: a ``Communicator`` over a barrier, so the data-parallel logic (shards,
partial batches, exchanges, callbacks) is tested without MPI. ``test_mpi.py`` runs the real thing."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from onnxforge.distribute import Communicator, MPIStrategy
from onnxforge.runtime.session import set_intra_op_threads


class ThreadGroup:
    def __init__(self, size: int, timeout: float = 60.0):
        self.size = size
        self.timeout = timeout
        self.barrier = threading.Barrier(size)
        self.slots: list[Any] = [None] * size


class ThreadComm(Communicator):
    """The collectives of ``Communicator`` between threads (sums in rank order)."""

    def __init__(self, group: ThreadGroup, rank: int):   # no MPI: nothing of the base __init__ applies
        self.group = group
        self.rank, self.size = rank, group.size
        self.local_rank, self.local_size = rank, group.size
        self.timeout = group.timeout
        self.seconds, self.bytes, self.calls = 0.0, 0, 0
        self.activity, self.broken = "starting up", None
        self.log: list[str] = []

    def _exchange(self, value: Any, what: str) -> list[Any]:
        self.log.append(what)
        self.group.slots[self.rank] = value
        self.group.barrier.wait(self.group.timeout)
        values = list(self.group.slots)
        self.group.barrier.wait(self.group.timeout)
        self.calls += 1
        return values

    def allreduce(self, buffers, what):
        values = self._exchange([np.array(b, copy=True) for b in buffers], what)
        for i, b in enumerate(buffers):
            total = values[0][i].copy()
            for v in values[1:]:
                total += v[i]
            b[...] = total

    def broadcast(self, buffer, what, root=0):
        buffer[...] = self._exchange(np.array(buffer, copy=True), what)[root]

    def allgather(self, send, what):
        return np.stack(self._exchange(np.array(send, copy=True), what))

    def allgatherv(self, send, counts, what):
        parts = self._exchange(np.array(send, copy=True).reshape(-1), what)
        assert [p.size for p in parts] == list(counts), (parts, counts)
        return np.concatenate(parts)


def strategies(size: int, **kwargs: Any) -> list[MPIStrategy]:
    group = ThreadGroup(size)
    out = [MPIStrategy(comm=ThreadComm(group, r), **kwargs) for r in range(size)]
    set_intra_op_threads(None)   # a strategy sets it process-wide; tests share the process
    return out


def run_ranks(fns: list[Callable[[], Any]]) -> list[Any]:
    """Run one function per rank in its own thread; return their results (re-raise the first error)."""
    results: list[Any] = [None] * len(fns)
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            results[i] = fns[i]()
        except BaseException as e:   # noqa: BLE001 - handed to the test thread
            errors.append(e)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results
