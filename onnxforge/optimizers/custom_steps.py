"""The optimizer calls a custom training step makes: ``apply_gradients``, ``apply``, ``minimize``, ``scale_loss``.

Inside a traced ``train_step`` they emit the update into the one training graph (through the trace's
``apply_gradients``); outside any trace they run an eager step (``onnxforge.trainer.eager_apply`` registers how,
since the trainer sits above the optimizers). ``Optimizer`` inherits this mixin.
"""
from __future__ import annotations

__all__ = ["CustomStepMixin", "set_eager_apply"]

from collections.abc import Callable, Sequence
from typing import Any

from ..graph import Value
from ..variables import Variable

#: ``apply_gradients`` outside a trace, and the ``GradientTape`` class ``minimize`` records with
#: (``onnxforge.trainer.eager_apply`` registers both when imported: they sit above optimizers in the flow).
_EAGER_APPLY: list[Callable[..., Any]] = []
_TAPE: list[Any] = []


def set_eager_apply(fn: Callable[..., Any], tape_class: Any) -> None:
    """Register how ``apply_gradients`` runs on arrays outside a trace, and the tape ``minimize`` uses."""
    _EAGER_APPLY[:] = [fn]
    _TAPE[:] = [tape_class]


class CustomStepMixin:
    """Custom-step entry points of ``Optimizer`` (which supplies ``scale_loss_graph`` and ``loss_scale_factor``)."""

    def apply_gradients(self, grads_and_vars: Any) -> Value:
        """Emit this optimizer's update of ``(gradient, Variable)`` pairs into a traced custom ``train_step``.

        The update becomes part of the one training graph: the Variables, this optimizer's slots and
        ``iterations`` are state of the program, and reads of the Variables later in the step see their
        updated values (eager order). Pairs with a ``None`` gradient are skipped with a warning, as in Keras.

        Returns:
            The step counter after the update (a graph value).

        Example:
            >>> grads = tape.gradient(d_loss, d.trainable_weights)                  # doctest: +SKIP
            >>> d_optimizer.apply_gradients(zip(grads, d.trainable_weights))       # doctest: +SKIP
        """
        from ..tracing import current_trace

        try:
            ctx = current_trace()
        except RuntimeError:
            ctx = None
        apply = getattr(ctx, "apply_gradients", None)
        if apply is None and ctx is None and _EAGER_APPLY:
            return _EAGER_APPLY[0](self, grads_and_vars)   # an eager training loop
        if apply is None:
            raise RuntimeError(
                f"{type(self).__name__}.apply_gradients emits the update into a compiled training graph, so it "
                "works inside a Model subclass's train_step(self, data), which fit() / train_on_batch() trace "
                "into one ONNX program. To train a model on arrays outside such a step, use "
                "model.compile(optimizer=..., loss=...) and model.fit(...).")
        return apply(self, grads_and_vars)

    def minimize(self, loss: Any, var_list: Any, tape: Any = None) -> Any:
        """One update step of ``var_list`` on ``loss`` (tf.keras 2's ``minimize``): ``loss`` is a callable
        taking no arguments, or a tensor that ``tape`` (a ``GradientTape``) recorded; ``var_list`` a list of
        Variables or a callable returning one. Eagerly or inside a traced step.

        Example:
            >>> import onnxforge as tf
            >>> x = tf.Variable(3.0)
            >>> opt = tf.keras.optimizers.SGD(0.1)
            >>> _ = opt.minimize(lambda: x ** 2, [x])
            >>> round(float(x.numpy()), 4)
            2.4
        """
        if callable(loss):
            with _TAPE[0]() as tape:
                loss = loss()
        elif tape is None:
            raise ValueError(f"{type(self).__name__}.minimize: `tape` is required when a tensor loss is passed "
                             f"(a callable loss is recorded here). Received: loss={loss!r}, tape=None.")
        variables = list(var_list() if callable(var_list) else var_list)
        grads = tape.gradient(loss, variables)
        return self.apply_gradients(zip(grads, variables))

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Variable] | None = None) -> Value:
        """Keras 3 spelling of ``apply_gradients(zip(grads, trainable_variables))``; without
        ``trainable_variables``, the variables the optimizer was built with, in that order (as Keras)."""
        grads = list(grads)
        if trainable_variables is None:
            known = list(getattr(self, "_trainable_variables", []))
            if not known:
                raise ValueError("When passing `grads` without `variables`, the optimizer must already be built on "
                                 "a list of variables. Call `optimizer.build(trainable_variables)` first. "
                                 f"Received: {len(grads)} gradients, trainable_variables=None")
            if len(grads) != len(known):
                raise ValueError(f"When passing `grads` as a list of gradient tensors, the gradients must match "
                                 f"`optimizer.variables` one-to-one. Received a list of {len(grads)} gradients, "
                                 f"but the optimizer is tracking {len(known)} trainable variables.")
            trainable_variables = known
        return self.apply_gradients(zip(grads, trainable_variables))

    def scale_loss(self, loss: Any) -> Any:
        """``loss * loss_scale_factor`` (when set): call it on the loss before ``GradientTape.gradient`` in a
        custom step, since ``apply_gradients`` divides the gradients by the factor (Keras 3)."""
        if isinstance(loss, Value):
            from ..tracing import current_trace

            return self.scale_loss_graph(loss, current_trace().read)
        return loss * float(self.loss_scale_factor) if self.loss_scale_factor is not None else loss
