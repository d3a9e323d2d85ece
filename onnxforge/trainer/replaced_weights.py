"""What a model forgets when ``quantize`` replaces some of its float weights by int8 / int4 ones.

A model compiled before the replacement recorded its trainable weights (``_trainable_at_compile``) and its
optimizer made slots for them; the replaced float weights must leave both, or the training step would keep
updating a weight no layer reads and the saved optimizer state would list more variables than a reloaded model
builds. Keras keeps them (stale): its own ``.keras`` file of a model quantized after training then carries more
optimizer variables than the reloaded model has, and the loader drops the optimizer state entirely.
"""
from __future__ import annotations

__all__ = ["drop_replaced_weights", "ReplacedWeightsMixin"]

from collections.abc import Sequence
from typing import Any

from ..layers.quantization import quantizations, replaced_weights


class _Uid:
    """A stand-in carrying only ``uid``: the owner of optimizer slots that no layer holds any more."""

    def __init__(self, uid: int):
        self.uid = uid


def drop_replaced_weights(model: Any) -> bool:
    """Forget, in ``model``'s compile-time trainable list and its optimizer's slots, the weights ``quantize``
    replaced; whether any of them was this model's (its programs then need building again)."""
    live = {w.uid for w in model.weights}
    gone = replaced_weights() - live
    captured = model.__dict__.get("_trainable_at_compile") or []
    replaced = [w for w in captured if w.uid in gone]
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    slotted = [u for u in (getattr(optimizer, "_slots", None) or {}) if u in gone]
    if not replaced and not slotted:
        model.__dict__["_weights_mark"] = (*model.__dict__.get("_weights_mark", (0, 0))[:2], quantizations())
        return False
    if captured:
        model._trainable_at_compile = [w for w in captured if w.uid not in gone]
    if hasattr(optimizer, "forget_variables"):
        optimizer.forget_variables([_Uid(u) for u in slotted])
    return True


class ReplacedWeightsMixin:
    """Mixed into ``Model`` before ``TrainingMixin``: programs built before one of the model's layers was
    quantized (``layer.quantize`` on a built or compiled model) are built again on their next use, over the new
    weights; the weights marker records the quantization count beside ``TrainingMixin``'s."""

    def _ensure_programs(self, xs: Sequence[Any], method: str) -> None:
        mark = self.__dict__.get("_weights_mark", (0, 0, 0))
        if getattr(self, "_programs", None) and mark[2:] != (quantizations(),) and \
                (drop_replaced_weights(self) or len(self.weights) != mark[1]):   # type: ignore[attr-defined]
            self._programs = {}   # they read the float weights quantize() replaced
        super()._ensure_programs(xs, method)   # type: ignore[misc]

    def _mark_weights(self) -> None:
        super()._mark_weights()   # type: ignore[misc]
        self.__dict__["_weights_mark"] = (*self.__dict__["_weights_mark"][:2], quantizations())
