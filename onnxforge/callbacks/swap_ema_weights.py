"""``SwapEMAWeights``: evaluate (and optionally checkpoint) with the optimizer's moving-average weights."""
from __future__ import annotations

__all__ = ["SwapEMAWeights"]

from typing import Any

from ..optimizers.ema import swap_with_averages
from .callback import Callback


class SwapEMAWeights(Callback):
    """Puts the optimizer's EMA weights (``use_ema=True``) into the model for evaluation, and the trained
    weights back afterwards, as Keras 3 does.

    The model's trained weights and the optimizer's ``average`` Variables exchange values (host-side
    ``assign``, so the device-resident copies are refreshed on the next run) at ``on_test_begin`` and again at
    ``on_test_end``: ``evaluate`` and ``fit``'s validation see the averages, training goes on from the
    trained weights. With ``swap_on_epoch=True`` the swap also happens at each ``on_epoch_end`` (so other
    callbacks such as ``ModelCheckpoint`` see the averages) and is undone at the next ``on_epoch_begin``;
    after the last epoch the averages are also copied back to the optimizer, so the weights ``fit`` leaves are
    the averages. Like Keras 3.15, ``on_predict_begin`` swaps the averages in and ``on_predict_end`` leaves
    them there.

    Args:
        swap_on_epoch: also swap around epoch boundaries (default False).

    Example:
        >>> import numpy as np
        >>> import onnxforge as tf
        >>> model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
        >>> model.compile(optimizer=tf.keras.optimizers.SGD(0.1, use_ema=True), loss="mse")
        >>> x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
        >>> _ = model.fit(x, y, validation_data=(x, y), callbacks=[SwapEMAWeights()], verbose=0)
    """

    def __init__(self, swap_on_epoch: bool = False):
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._ema_weights_in_model = False

    def _optimizer(self) -> Any:
        optimizer = self.model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if not getattr(optimizer, "use_ema", False) or not optimizer.averaged_pairs():
            raise ValueError("SwapEMAWeights must be used when `use_ema=True` is set on the optimizer (and the "
                             "optimizer has been built by training). Received: use_ema="
                             f"{getattr(optimizer, 'use_ema', None)}")
        return optimizer

    def _swap(self) -> None:
        swap_with_averages(self._optimizer())

    def _copy_weights_to_averages(self) -> None:
        for var, average in self._optimizer().averaged_pairs():
            average.assign(var.numpy())

    def _swap_in(self) -> None:
        if not self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = True

    def _swap_out(self) -> None:
        if self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap_out()

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap_in()
            if epoch == self.params.get("epochs", 0) - 1:
                self._copy_weights_to_averages()

    def on_test_begin(self, logs=None):
        self._swap_in()

    def on_test_end(self, logs=None):
        self._swap_out()

    def on_predict_begin(self, logs=None):
        self._swap_in()

    def on_predict_end(self, logs=None):
        # Keras 3.15 tests the flag the wrong way round here, so predict leaves the averages in the model;
        # kept as Keras behaves, since Keras programs and their results depend on it.
        if not self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = False
