"""``MirroredStrategy`` on one device: the single-process form of ``tf.distribute.MirroredStrategy``.

keras.io's distributed-training guide creates ``tf.distribute.MirroredStrategy()``, prints
``num_replicas_in_sync`` and builds, compiles and fits its model inside ``strategy.scope()``. TensorFlow mirrors
the variables over every visible GPU (one replica on a CPU-only machine); an onnxforge process runs its graphs
on one device, so this strategy is that one replica and its scope changes nothing about training. Data
parallelism over several devices is ``MPIStrategy``, one process per device.

Example:
    >>> import onnxforge as tf
    >>> strategy = tf.distribute.MirroredStrategy()
    >>> strategy.num_replicas_in_sync
    1
    >>> with strategy.scope():
    ...     model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
    ...     model.compile(optimizer="adam", loss="mse")
"""
from __future__ import annotations

__all__ = ["MirroredStrategy"]

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any


class MirroredStrategy:
    """Synchronous training on the one device this process compiles for (``num_replicas_in_sync == 1``).

    Args:
        devices: ``None`` (the default device) or a list naming at most one device (``["/gpu:0"]``); more
            than one raises ``NotImplementedError``, since mirroring across devices needs one process each
            (``MPIStrategy`` under ``mpirun``).
        cross_device_ops: accepted for ``tf.distribute`` compatibility; with one replica nothing is reduced.
    """

    def __init__(self, devices: Sequence[str] | None = None, cross_device_ops: Any = None) -> None:
        if isinstance(devices, str):
            devices = [devices]
        if devices is not None and len(devices) > 1:
            raise NotImplementedError(
                f"MirroredStrategy(devices={list(devices)!r}): onnxforge runs one device per process, so it mirrors "
                "over one device only. For data parallelism over several devices use "
                "onnxforge.distribute.MPIStrategy with one process per device (mpirun -np N).")
        self._devices = tuple(devices) if devices else ()
        self._cross_device_ops = cross_device_ops

    @property
    def num_replicas_in_sync(self) -> int:
        """How many replicas train in step: always 1 here."""
        return 1

    @contextlib.contextmanager
    def scope(self) -> Iterator[MirroredStrategy]:
        """A context for building and compiling models; with one replica it places nothing differently."""
        yield self

    def __repr__(self) -> str:
        where = self._devices[0] if self._devices else "the default device"
        return f"<MirroredStrategy: 1 replica on {where}>"
