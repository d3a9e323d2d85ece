"""tf.keras 2's ``fit_generator`` / ``evaluate_generator`` / ``predict_generator``: Keras 3 removed them
because ``fit`` / ``evaluate`` / ``predict`` take generators and ``keras.utils.Sequence`` (``PyDataset``)
objects directly. Old scripts still call them, so each forwards to its modern method, as tf.keras 2.1+ did
itself (with a deprecation warning); the worker-pool arguments (``workers``, ``use_multiprocessing``,
``max_queue_size``) are accepted and ignored, since batches are read in the training loop's thread.

Example:
    >>> import numpy as np, onnxforge
    >>> model = onnxforge.keras.Sequential([onnxforge.keras.Input((2,)), onnxforge.keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> batches = [(np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32))] * 3
    >>> history = model.fit_generator(iter(batches), steps_per_epoch=3, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['loss']
"""
from __future__ import annotations

import warnings
from typing import Any

_POOL_ARGUMENTS = ("workers", "use_multiprocessing", "max_queue_size")


def _forward(old: str, new: str, kwargs: dict[str, Any]) -> None:
    for name in _POOL_ARGUMENTS:
        kwargs.pop(name, None)
    warnings.warn(f"`Model.{old}` is deprecated (Keras 3 removed it): `Model.{new}` takes generators and "
                  f"keras.utils.Sequence objects directly; use it instead.", DeprecationWarning, stacklevel=3)


class GeneratorMethodsMixin:
    """The ``*_generator`` spellings of ``fit`` / ``evaluate`` / ``predict``."""

    def fit_generator(self, generator: Any, steps_per_epoch: int | None = None, epochs: int = 1,
                      **kwargs: Any) -> Any:
        """tf.keras 2's ``fit_generator``: ``fit(generator, steps_per_epoch=..., epochs=..., ...)``."""
        _forward("fit_generator", "fit", kwargs)
        return self.fit(generator, steps_per_epoch=steps_per_epoch, epochs=epochs, **kwargs)

    def evaluate_generator(self, generator: Any, steps: int | None = None, **kwargs: Any) -> Any:
        """tf.keras 2's ``evaluate_generator``: ``evaluate(generator, steps=..., ...)``."""
        _forward("evaluate_generator", "evaluate", kwargs)
        kwargs.setdefault("verbose", 0)  # tf.keras 2's evaluate_generator printed nothing by default
        return self.evaluate(generator, steps=steps, **kwargs)

    def predict_generator(self, generator: Any, steps: int | None = None, **kwargs: Any) -> Any:
        """tf.keras 2's ``predict_generator``: ``predict(generator, steps=..., ...)``."""
        _forward("predict_generator", "predict", kwargs)
        kwargs.setdefault("verbose", 0)
        return self.predict(generator, steps=steps, **kwargs)
