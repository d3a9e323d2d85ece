"""``tf.keras.optimizers.legacy``: TensorFlow 2.11+'s home of the pre-2.11 optimizer classes, here the same
classes as ``tf.keras.optimizers``.

tf.keras 2 code names ``tf.keras.optimizers.legacy.Adam`` to keep the old optimizer implementation (for
speed on M1 Macs, or to load old checkpoints). onnxforge has one implementation of each optimizer, compiled
into the training graph, so each legacy name is a subclass of it that changes nothing but refuses a
nonzero ``decay``: the legacy classes divided the learning rate by ``1 + decay * iterations``, which the
current ones silently ignore (Keras 3 dropped the argument), so accepting it would train differently. The old ``lr`` alias of ``learning_rate`` is accepted.

Example:
    >>> import onnxforge as tf
    >>> opt = tf.keras.optimizers.legacy.Adam(learning_rate=0.01)
    >>> isinstance(opt, tf.keras.optimizers.Adam), opt.learning_rate
    (True, 0.01)
"""
from __future__ import annotations

from typing import Any

from .. import optimizers as _optimizers
from ..optimizers import Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad"]


def _legacy(base: type) -> type:
    def __init__(self: Any, *args: Any, decay: float = 0.0, **kwargs: Any) -> None:
        if "lr" in kwargs:  # the legacy classes took tf.keras 1's `lr` as an alias of `learning_rate`
            if "learning_rate" in kwargs or args:
                raise ValueError(f"tf.keras.optimizers.legacy.{base.__name__}: pass `lr` or `learning_rate`, not "
                                 f"both. Received: lr={kwargs['lr']!r}, learning_rate="
                                 f"{kwargs.get('learning_rate', args[0] if args else None)!r}")
            kwargs["learning_rate"] = kwargs.pop("lr")
        if decay:
            raise NotImplementedError(
                f"tf.keras.optimizers.legacy.{base.__name__}: the legacy `decay` argument (learning rate divided "
                f"by 1 + decay * iterations) is not supported; pass a learning-rate schedule instead. "
                f"Received: decay={decay}")
        base.__init__(self, *args, **kwargs)

    return type(base.__name__, (base,), {"__init__": __init__, "__module__": __name__,
                                         "__doc__": f"``tf.keras.optimizers.legacy.{base.__name__}``: "
                                                    f"``{base.__name__}`` without the legacy ``decay``."})


SGD, Adam, RMSprop, Adagrad = (_legacy(getattr(_optimizers, n)) for n in ("SGD", "Adam", "RMSprop", "Adagrad"))
