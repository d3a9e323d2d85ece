"""``MPIStrategy``: synchronous data-parallel ``fit`` / ``evaluate`` / ``predict`` over MPI ranks.

The shape is ``tf.distribute``'s: create the strategy, build and compile the model inside its scope, then
train as usual; launch the script once per rank with ``mpirun``. ``batch_size`` is the GLOBAL batch (what one
process would use); each rank computes the gradients of its shard with the compiled graphs, MPI sums them,
and every rank applies the same optimizer update, so the weights stay identical and ``History`` is the same
on every rank. See ``replica`` (one step), ``program_split`` (the programs), ``loop`` (callbacks) and
``communicator`` (collectives and failures).

Example:
    >>> strategy = MPIStrategy()                                  # doctest: +SKIP
    >>> with strategy.scope():                                    # doctest: +SKIP
    ...     model = build_model()
    ...     model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> model.fit(x, y, batch_size=128, epochs=3)                 # doctest: +SKIP
    $ mpirun -np 4 python train.py
"""
from __future__ import annotations

__all__ = ["MPIStrategy"]

import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..runtime import Device
from ..runtime.session import set_intra_op_threads
from ..trainer import distribution
from .buckets import DEFAULT_BUCKET_BYTES
from .communicator import Communicator
from .loop import adapt_callbacks
from .replica import ReplicaDriver


class MPIStrategy:
    """Synchronous data parallelism over the ranks of an MPI job (``tf.distribute.MultiWorkerMirroredStrategy``'s
    role, on MPI).

    Args:
        timeout: seconds a rank waits in any one collective before it fails with ``DistributedError`` and the
            job is aborted (default: ``$ONNXFORGE_MPI_TIMEOUT``, else 600).
        bucket_bytes: the most gradient bytes per all-reduce message (default 25 MiB, as PyTorch DDP).
        intra_op_threads: onnxruntime threads per rank; default: this machine's cores divided by the ranks on it
            (at least 1), so co-located ranks do not fight over cores.
        comm: an ``mpi4py`` communicator to train over (default ``MPI.COMM_WORLD``), or a ready
            ``Communicator`` (its ``timeout`` then applies).

    Attributes:
        num_replicas_in_sync: the number of ranks (``tf.distribute``'s name).
        rank: this process's rank; rank 0 writes checkpoints, logs and progress bars.

    Example:
        >>> strategy = MPIStrategy()                              # doctest: +SKIP
        >>> strategy.num_replicas_in_sync                         # doctest: +SKIP
        2
    """

    def __init__(self, timeout: float | None = None, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 intra_op_threads: int | None = None, comm: Any = None):
        if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, (int, np.integer)) or bucket_bytes < 1:
            raise ValueError(f"MPIStrategy: `bucket_bytes` must be a positive integer. Received: "
                             f"bucket_bytes={bucket_bytes!r}")
        own = not isinstance(comm, Communicator)
        self.comm = Communicator(comm, timeout) if own else comm
        self.bucket_bytes = int(bucket_bytes)
        if intra_op_threads is None:
            intra_op_threads = max(1, (os.cpu_count() or 1) // self.comm.local_size)
        set_intra_op_threads(intra_op_threads)
        self.intra_op_threads = intra_op_threads
        if own and self.comm.size > 1:
            _report_termination(self.comm)

    # ------------------------------------------------------------------------------------ tf.distribute API
    @property
    def num_replicas_in_sync(self) -> int:
        return self.comm.size

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def is_chief(self) -> bool:
        """Whether this is rank 0 (the one that saves, logs and prints)."""
        return self.comm.rank == 0

    @contextlib.contextmanager
    def scope(self) -> Iterator[MPIStrategy]:
        """Models compiled inside train data-parallel under this strategy."""
        distribution.enter_scope(self)
        try:
            yield self
        finally:
            distribution.exit_scope(self)

    def __repr__(self) -> str:
        return f"<MPIStrategy rank {self.comm.rank} of {self.comm.size}>"

    # ------------------------------------------------------------------------------------ trainer hooks
    def on_compile(self, model: Any) -> None:
        """Each rank on its own GPU (``cuda:<local rank mod GPUs>``) when the model compiled for ``cuda`` /
        ``cuda:0`` and several ranks share the machine; a fresh replica (programs are rebuilt after a recompile)."""
        device = getattr(model, "_device", None)
        if device is not None and device.kind == "cuda" and device.device_id == 0 and self.comm.local_size > 1:
            model._device = Device("cuda", self.comm.local_rank % _gpu_count())
        model._replica_driver = ReplicaDriver(model, self)

    def _driver(self, model: Any) -> ReplicaDriver:
        driver = getattr(model, "_replica_driver", None)
        if driver is None:
            driver = model._replica_driver = ReplicaDriver(model, self)
        return driver

    def train_batch(self, model: Any, xs: Sequence[np.ndarray], ys: Any, sample_weight: Any) -> dict[str, np.ndarray]:
        return self._driver(model).train_batch(xs, ys, sample_weight)

    def eval_batch(self, model: Any, xs: Sequence[np.ndarray], ys: Any, sample_weight: Any) -> dict[str, np.ndarray]:
        return self._driver(model).eval_batch(xs, ys, sample_weight)

    def predict_batch(self, model: Any, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._driver(model).predict_batch(xs)

    def adapt_loop(self, model: Any, method: str, callbacks: Any, verbose: int) -> tuple[Any, int]:
        """Rank 0 keeps side effects; at ``fit`` every rank takes rank 0's weights (before the first batch) and
        numpy's global random state (the shuffle order), so the ranks cut the same global batches."""
        if method == "fit":
            self._driver(model).needs_sync = True
            _share_numpy_random_state(self.comm)
        return adapt_callbacks(self.comm, method, callbacks, verbose)


def _gpu_count() -> int:
    """GPUs this process sees: ``$CUDA_VISIBLE_DEVICES`` when set, else the CUDA driver's count, else 1."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return max(1, len([d for d in visible.split(",") if d.strip()]))
    try:
        import ctypes

        cuda = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        if cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0:
            return count.value
    except OSError:
        pass
    return 1


def _share_numpy_random_state(comm: Communicator) -> None:
    """Rank 0's ``np.random`` state on every rank (``fit`` shuffles with it)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    buffer = np.concatenate([np.asarray(keys, np.float64), [pos, has_gauss, cached]])
    comm.broadcast(buffer, "the broadcast of the shuffle's random state from rank 0")
    if comm.rank:
        np.random.set_state((kind, buffer[:-3].astype(np.uint32), int(buffer[-3]), int(buffer[-2]),
                             float(buffer[-1])))


def _report_termination(comm: Communicator) -> None:
    """On SIGTERM (what ``mpirun`` sends the other ranks when one dies), say so before the process ends."""
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return   # the application handles it
    except ValueError:
        return

    def handler(signum: int, frame: Any) -> None:
        sys.stderr.write(f"onnxforge.distribute: rank {comm.rank} of {comm.size} was terminated by SIGTERM while "
                         f"{comm.activity}: the MPI launcher ends every rank when one fails; see its "
                         "message for the rank that failed first.\n")
        sys.stderr.flush()
        os._exit(128 + signal.SIGTERM)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:   # not the main thread
        pass
