"""Data-parallel training across processes and machines on MPI (``tf.distribute``-style).

``MPIStrategy`` splits every global batch over the ranks of an MPI job; each rank computes its gradients
with the compiled graphs, ``MPI_Allreduce`` sums them in a few contiguous buckets, and every rank applies the
same optimizer update with the optimizer's own graph. Needs ``mpi4py`` and an MPI library
(``pip install "onnxforge[distributed]"`` brings both); importing this package does not start MPI.
``MirroredStrategy`` is the one-device form keras.io's single-machine guide uses (one replica, no MPI).

Example:
    >>> import onnxforge as tf
    >>> strategy = tf.distribute.MPIStrategy()                    # doctest: +SKIP
    >>> with strategy.scope():                                    # doctest: +SKIP
    ...     model = tf.keras.Sequential([...])
    ...     model.compile(optimizer="adam", loss="mse")
    >>> model.fit(x, y, batch_size=128)                           # doctest: +SKIP
"""
from __future__ import annotations

from .buckets import DEFAULT_BUCKET_BYTES, plan_buckets
from .communicator import Communicator, DistributedError
from .mirrored import MirroredStrategy
from .replica import shard_bounds
from .strategy import MPIStrategy

__all__ = ["MPIStrategy", "MirroredStrategy", "DistributedError", "Communicator", "plan_buckets", "shard_bounds",
           "DEFAULT_BUCKET_BYTES"]
