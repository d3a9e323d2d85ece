"""Keras 3's ``Model.compute_loss`` hook inside compiled training and evaluation programs.

Keras's default ``train_step`` / ``test_step`` get their loss from ``self.compute_loss(x, y, y_pred,
sample_weight, training)``; a model that overrides it (knowledge distillation: the teacher's soft labels are
computed from ``x`` inside it) keeps ``fit`` / ``evaluate`` and their compiled metrics. Here the override is
traced on the program's graph values: ``x``, ``y``, ``y_pred`` and ``sample_weight`` come in the structure
of the model's inputs and outputs (one value, a list, or a dict by name), and the scalar it returns is the
loss the step differentiates and reports as ``loss``. ``super().compute_loss(...)`` gives the compiled losses
(weighted per output) plus the layers' ``add_loss`` terms, as in Keras.

Example:
    >>> from onnxforge.models import Model
    >>> class Plain(Model):
    ...     pass
    >>> overrides_compute_loss(Plain())
    False
"""
from __future__ import annotations

__all__ = ["overrides_compute_loss", "custom_objective", "default_compute_loss", "mark_default"]

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ..losses import batch_size, reduce
from ..tracing import active_trace
from ..graph import contract

_FLOAT = onnx.TensorProto.FLOAT


def mark_default(fn: Callable) -> Callable:
    """Tag the base class's ``compute_loss``: a model that inherits it unchanged uses the compiled objective."""
    fn._default_compute_loss = True  # type: ignore[attr-defined]
    return fn


def overrides_compute_loss(model: Any) -> bool:
    """Whether ``model``'s class writes its own ``compute_loss``."""
    fn = getattr(type(model), "compute_loss", None)
    return fn is not None and not getattr(fn, "_default_compute_loss", False)


def _pack(values: list, keys: list[str], as_dict: bool) -> Any:
    if as_dict:
        return dict(zip(keys, values))
    return values[0] if len(values) == 1 else list(values)


def _unpack(struct: Any, keys: list[str], what: str) -> list:
    """One entry per output (in ``keys`` order) from a single value, a list or a dict by output name."""
    if isinstance(struct, Mapping):
        missing = [k for k in keys if k not in struct]
        if missing:
            raise ValueError(f"compute_loss(): `{what}` is a dict without the output(s) {missing}. Expected keys "
                             f"{keys}. Received keys: {list(struct)}")
        return [struct[k] for k in keys]
    if isinstance(struct, (list, tuple)) and len(keys) > 1:
        if len(struct) != len(keys):
            raise ValueError(f"compute_loss(): `{what}` holds {len(struct)} values for the model's {len(keys)} "
                             f"outputs {keys}.")
        return list(struct)
    return [struct] * len(keys) if struct is None else [struct]


def custom_objective(t: Any, config: Any) -> tuple[Value, list[tuple[str, str, Value]]]:
    """Trace ``model.compute_loss`` on a program's values: the loss and the ``loss`` tracker's batch sums."""
    model, b = t.model, t.b
    keys = [o.name for o in config.outputs]
    dict_out = isinstance(getattr(model, "_outputs_struct", None), Mapping)
    inputs = getattr(model, "_inputs_struct", None)
    if inputs is None:
        inputs = getattr(model, "_input_specs", None)
    x = _pack(list(t.xs), list(model.input_names), isinstance(inputs, Mapping))
    y = _pack([t.targets[k] for k in keys], keys, dict_out)
    y_pred = _pack(list(t.preds), keys, dict_out)
    sample_weight = _pack([t.weights[k] for k in keys], keys, dict_out)
    kwargs = {"training": t.training} if _takes_training(model.compute_loss) else {}
    with t.ctx.active():
        loss = model.compute_loss(x, y, y_pred, sample_weight, **kwargs)
    if not isinstance(loss, Value):
        raise ValueError(f"{type(model).__name__}.compute_loss() must return the loss computed from its arguments "
                         f"(a scalar tensor). Received: {loss!r} of type {type(loss).__name__}")
    if loss.shape not in ((), None) and any(d != 1 for d in loss.shape):
        raise ValueError(f"{type(model).__name__}.compute_loss() must return a scalar loss. Received a tensor of "
                         f"shape {loss.shape}: reduce it (for example with keras.ops.mean).")
    if loss.dtype not in (None, _FLOAT):
        loss = b.op("Cast", [loss], to=_FLOAT)
    if loss.shape != ():
        loss = reduce("ReduceSum", loss, None)
    n = batch_size(t.preds[0])
    return loss, [(contract.LOSS, "total", loss * n), (contract.LOSS, "count", n)]


def _takes_training(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "training" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def default_compute_loss(model: Any, x: Any, y: Any, y_pred: Any, sample_weight: Any) -> Any:
    """Keras's base ``compute_loss``: the compiled losses of each output (times its loss weight) plus the loss
    terms layers added with ``add_loss`` during the forward pass; symbolic inside a program, NumPy outside."""
    from .config import outputs_of, resolve_config

    if not getattr(model, "compiled", False):
        raise ValueError(f"compute_loss(): model {model.name!r} has no compiled loss. Call `compile()` first.")
    config = getattr(model, "_compiled_config", None)
    if config is None:
        args = model._compile_args
        config = resolve_config(outputs_of(model, y_pred), None, args["loss"], args["loss_weights"], None, None)
    keys = [o.name for o in config.outputs]
    ys, preds = _unpack(y, keys, "y"), _unpack(y_pred, keys, "y_pred")
    weights = _unpack(sample_weight, keys, "sample_weight")
    terms = []
    for o, target, pred, w in zip(config.outputs, ys, preds, weights):
        if o.loss is None:
            continue
        if target is None:
            raise ValueError(f"compute_loss(): output {o.name!r} has a loss but `y` has no target for it.")
        value = o.loss(target, pred, w)
        terms.append(value if o.loss_weight == 1.0 else value * float(o.loss_weight))
    trace = active_trace()
    if trace is not None:
        terms += [r if r.shape == () else reduce("ReduceSum", r, None) for r in trace.losses]
    else:
        terms += [np.sum(np.asarray(v)) for v in getattr(model, "losses", [])]
    if not terms:
        raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`.")
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
