"""``Layer.add_loss`` and ``Layer.losses``: the losses a layer adds from ``call()`` and its weight penalties.

Kept apart from ``base.py`` so the ``Layer`` class stays one concern per module; ``Layer`` inherits this mixin.

Example:
    >>> from onnxforge import layers, regularizers
    >>> dense = layers.Dense(2, kernel_regularizer=regularizers.L2(0.5), kernel_initializer="ones")
    >>> dense.build((None, 1)); [round(float(p), 3) for p in dense.losses]
    [1.0]
"""
from __future__ import annotations

__all__ = ["LossesMixin"]

from typing import Any

from ..graph import Value
from ..tracing import active_trace, current_trace, eager_executor
from ..variables import Variable, tape_follows


class LossesMixin:
    """``add_loss`` / ``losses`` for ``Layer`` (which supplies ``_flat_sublayers`` and ``trainable_weights``)."""

    def add_loss(self, loss: Any) -> None:
        """Add a scalar (or tensor, summed) loss from inside ``call()``, as Keras 3's ``Layer.add_loss``.

        Inside a compiled program the value joins the training loss (and ``val_loss``); ``layer.losses``
        lists it until the next outermost call of a layer that contains this one clears it.

        Example:
            >>> from onnxforge import ops
            >>> from onnxforge.layers import Layer
            >>> class Penalized(Layer):
            ...     def call(self, x):
            ...         self.add_loss(ops.mean(ops.square(x)) * 0.1)
            ...         return x
        """
        from .keras_tensor import flatten as _flatten

        values = _flatten(loss)
        for v in values:
            if not isinstance(v, Value):
                raise ValueError("`add_loss()` can only be called from inside `build()` or `call()`, on a tensor "
                                 f"input. Received invalid value: {v!r} (layer {self.name!r})")
        ctx = current_trace()
        for v in values:
            ctx.add_loss(v)
            self.__dict__.setdefault("_losses", []).append(v)

    def _own_losses(self) -> list[Any]:
        return list(self.__dict__.get("_losses", []))

    def _all_sublayers(self) -> list[Any]:
        out: list[Any] = []
        for layer in self._flat_sublayers():
            out.append(layer)
            out.extend(layer._all_sublayers())
        return out

    def _clear_losses(self) -> None:
        self.__dict__["_losses"] = []
        for layer in self._all_sublayers():
            layer.__dict__["_losses"] = []

    @property
    def losses(self) -> list[Any]:
        """``add_loss`` values of this layer and its sub-layers, then the weight-regularization penalties.

        Inside a trace (a custom ``train_step``) these are graph values of the current program; outside,
        the penalties are floats computed from the current weights.
        """
        out = self._own_losses()
        for layer in self._all_sublayers():
            out.extend(layer._own_losses())

        ctx = active_trace()
        for w in self.trainable_weights:
            if w.regularizer is None:
                continue
            if ctx is not None:
                out.append(w.regularizer(ctx.read(w)))
            elif tape_follows(w):   # an eager GradientTape records the penalty, so it is differentiable
                out.append(eager_executor().run_function(_penalty, (w.regularizer, w), {}))
            else:
                out.append(w.regularizer(w.numpy()))
        return out


def _penalty(regularizer: Any, var: Variable) -> Any:
    """``regularizer`` of ``var``'s value in the program being traced (an eager call's)."""
    return regularizer(current_trace().read(var))
