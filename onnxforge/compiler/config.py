"""What ``compile()`` asked for, resolved per model output: loss, loss weight, metrics, target layout."""
from __future__ import annotations

__all__ = ["OutputConfig", "CompileConfig", "resolve_config", "outputs_of", "keras_dtype"]

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph.value import np_dtype
from .. import losses as losses_module
from .. import metrics as metrics_module
from ..optimizers import Optimizer
from ..graph import contract
from ..layers.base import to_snake_case


def keras_dtype(dtype: Any) -> np.dtype:
    """A numpy dtype from whatever a KerasTensor carries (``"float32"``, a numpy dtype, an ONNX enum)."""
    if dtype is None:
        return np.dtype(np.float32)
    if isinstance(dtype, int) and not isinstance(dtype, bool):
        return np_dtype(dtype)
    if dtype == "string":
        return np.dtype(object)  # ONNX STRING tensors are object arrays of str in numpy / onnxruntime
    return np.dtype(getattr(dtype, "name", dtype) if not isinstance(dtype, str) else dtype)


def user_metric(metric: Any) -> bool:
    """Whether ``metric``'s update is the user's code (a ``Metric`` subclass over ``add_variable``, or a function
    of theirs wrapped in a ``MeanMetricWrapper``), which Keras hands the targets exactly as they were fed."""
    if getattr(metric, "_user_defined", lambda: False)():
        return True
    fn = getattr(metric, "_fn", None)
    return fn is not None and not (getattr(fn, "__module__", None) or "").startswith("onnxforge.")


@dataclass
class OutputConfig:
    """One model output and everything compiled against it."""

    name: str
    index: int
    shape: tuple            # Keras shape, ``None`` for unknown dims (the batch)
    loss: losses_module.Loss | None = None
    loss_weight: float = 1.0
    metrics: list[tuple[str, metrics_module.Metric]] = field(default_factory=list)          # unweighted
    weighted_metrics: list[tuple[str, metrics_module.Metric]] = field(default_factory=list)
    #: Targets fed even without a loss or metric: a model's own ``compute_loss`` reads them.
    needs_target: bool = False
    #: The targets' shape as fed (batch ``None``), where a user loss function fixes none and the data's differs
    #: from the output's (TensorFlow's masked sequence losses: ``(batch, steps)`` ids for ``(batch, steps,
    #: vocab)`` logits); set by ``trainer/target_shapes.py``.
    fed_target_shape: tuple | None = None
    #: Sparse targets came with a trailing unit axis (``(batch, 1)`` class ids): the metrics whose code is the
    #: user's see them so, as Keras hands ``update_state`` the targets as fed (the built-in losses and metrics
    #: read the squeezed ids); set by ``trainer/target_shapes.py``.
    sparse_unit_axis: bool = False
    #: Sparse class ids came as floats with fractional parts (bilinearly resized masks): they are fed as float32,
    #: which Keras's sparse losses truncate to integers and ``SparseCategoricalAccuracy`` compares as floats (a
    #: fractional id matches no class); set by ``trainer/target_shapes.py``.
    fractional_labels: bool = False

    @property
    def free_target_shape(self) -> bool:
        """Whether the loss is the user's (a function, or a ``Loss`` subclass of theirs), which (as in Keras)
        takes targets of whatever shape are fed. So does a model's own ``compute_loss`` (a ``Distiller`` given
        class ids for ``(batch, classes)`` logits) when no compiled loss or metric fixes the targets' layout."""
        if self.loss is None and self.needs_target and not self.sparse_labels:
            return not (self.metrics or self.weighted_metrics)
        if self.loss is None or self.sparse_labels or self.sequence_labels:
            return False
        code = getattr(self.loss, "fn", None) or type(self.loss)
        return not (getattr(code, "__module__", None) or "").startswith("onnxforge.losses")

    @property
    def sparse_labels(self) -> bool:
        """Whether the targets are integer class ids (sparse crossentropy) rather than output-shaped."""
        if self.loss is not None:
            return bool(getattr(self.loss, "sparse_labels", False))
        return any(getattr(m, "sparse_labels", False) for _, m in self.metrics + self.weighted_metrics)

    @property
    def user_metrics(self) -> bool:
        """Whether a metric of this output runs the user's code on the targets (see ``user_metric``)."""
        return any(user_metric(m) for _, m in self.metrics + self.weighted_metrics)

    @property
    def sequence_labels(self) -> bool:
        """Whether the targets are integer sequences ``(batch, max_length)`` whatever the output's shape (CTC)."""
        return bool(getattr(self.loss, "sequence_labels", False))

    @property
    def has_target(self) -> bool:
        return self.loss is not None or bool(self.metrics) or bool(self.weighted_metrics) or self.needs_target

    @property
    def target_shape(self) -> tuple:
        if self.sequence_labels:
            return (self.shape[0], None)
        if self.sparse_labels:
            return self.shape[:-1]
        return self.fed_target_shape if self.fed_target_shape is not None else self.shape

    @property
    def target_dtype(self) -> np.dtype:
        if self.sparse_labels and self.fractional_labels:
            return np.dtype(np.float32)
        return np.dtype(np.int64) if self.sparse_labels or self.sequence_labels else np.dtype(np.float32)


@dataclass
class CompileConfig:
    """The resolved ``compile()`` arguments of a model."""

    optimizer: Optimizer | None
    outputs: list[OutputConfig]
    #: Output names in the order Keras lists their ``<output>_loss`` values (a dict of losses given for a
    #: dict-output model keeps its own key order; otherwise the outputs' order).
    loss_order: list[str] = field(default_factory=list)
    #: Tracker name -> the name the metric was asked by (before the output prefix and de-duplication).
    raw_names: dict[str, str] = field(default_factory=dict)
    #: The model overrides Keras's ``compute_loss``: its result is the loss (see ``compiler.custom_loss``).
    custom_loss: bool = False

    @property
    def has_loss(self) -> bool:
        return self.custom_loss or any(o.loss is not None for o in self.outputs)

    @property
    def per_output_losses(self) -> bool:
        """Keras logs ``<output>_loss`` when more than one output has a loss."""
        return sum(o.loss is not None for o in self.outputs) > 1

    def trackers(self) -> list[tuple[str, metrics_module.Metric]]:
        """Every reported quantity in Keras's order (that of ``evaluate``'s list): ``loss``; the metrics whose
        log key is the name they were asked by (a single output's); the per-output losses; then every other
        metric (prefixed by its output, or renamed to be unique) sorted by name, as Keras's
        ``_flatten_metrics_in_order`` does."""
        out: list[tuple[str, metrics_module.Metric]] = [(contract.LOSS, metrics_module.Mean(name=contract.LOSS))]
        metrics = [item for o in self.outputs for item in o.metrics + o.weighted_metrics]
        out += [(n, m) for n, m in metrics if self.raw_names.get(n, n) == n]
        if self.per_output_losses:
            with_loss = {o.name for o in self.outputs if o.loss is not None}
            out += [(f"{name}_loss", metrics_module.Mean(name=f"{name}_loss"))
                    for name in self.loss_order if name in with_loss]
        out += sorted(((n, m) for n, m in metrics if self.raw_names.get(n, n) != n), key=lambda item: item[0])
        return out


# ------------------------------------------------------------------------------------------ resolution
def _per_output(value: Any, output_names: list[str], argument: str, leaf: type | tuple) -> list[Any]:
    """Spread a compile argument over the outputs: one value for all, a list in order, or a dict by name."""
    n = len(output_names)
    if isinstance(value, Mapping) and "class_name" in value and "class_name" not in output_names:
        return [value] * n   # one serialized object, not a dict per output
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in output_names]
        if unknown:
            raise ValueError(f"In compile(), the `{argument}` dict has key(s) {unknown} that are not model outputs. "
                             f"Expected keys among {output_names}. Received: {argument}={value!r}")
        return [value.get(name) for name in output_names]
    if isinstance(value, (list, tuple)) and n > 1 and len(value) == n and not isinstance(value, leaf):
        return list(value)
    if isinstance(value, (list, tuple)) and n > 1 and len(value) != n and argument == "loss":
        raise ValueError(f"In compile(), `{argument}` is a list of {len(value)} entries but the model has {n} "
                         f"outputs {output_names}. Pass one entry per output, or a dict keyed by output names. "
                         f"Received: {argument}={value!r}")
    return [value] * n


def _metrics_per_output(value: list | tuple, output_names: list[str], argument: str) -> list[Any]:
    """Keras 3's rule for a list of metrics (``CompileMetrics.build``): with one output every metric applies to
    it (nested lists flattened); with several, the list must have one entry per output, matched by position
    (an entry is a metric, a list of them, or ``None``), and any other length is an error.

    Example:
        >>> _metrics_per_output(["mae", "acc"], ["score", "cls"], "metrics")
        ['mae', 'acc']
        >>> _metrics_per_output([["mae", ["mse"]]], ["y"], "metrics")
        [['mae', 'mse']]
    """
    if len(output_names) == 1:
        return [_flatten(value)]
    if len(value) != len(output_names):
        raise ValueError(f"In compile(), `{argument}` is a list of {len(value)} entries but the model has "
                         f"{len(output_names)} outputs {output_names}. As in Keras 3, a list of metrics on a model "
                         "with several outputs has one entry per output (a metric, a list of metrics, or None), "
                         f"or use a dict keyed by output names. Received: {argument}={list(value)!r}")
    return list(value)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _flatten(v)]
    return [] if value is None else [value]


def _metric_list(value: Any, argument: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _plain_function(identifier: Any) -> bool:
    """A user's ``fn(y_true, y_pred)``: callable, named, and neither a Metric/Loss object nor a class."""
    return (callable(identifier) and hasattr(identifier, "__name__") and not isinstance(identifier, type)
            and not isinstance(identifier, (metrics_module.Metric, losses_module.Loss)))


def _resolve_metric(identifier: Any, out: OutputConfig, argument: str, n_outputs: int, taken: set[str],
                    raw_names: dict[str, str]) -> tuple[str, metrics_module.Metric]:
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        last = out.shape[-1] if out.shape else None
        metric = metrics_module.resolve_accuracy(identifier, last, out.sparse_labels)
    else:
        metric = metrics_module.get(identifier, argument)
        if not isinstance(identifier, str) and isinstance(identifier, metrics_module.Metric) and \
                any(m is metric for _, m in out.metrics + out.weighted_metrics):
            raise ValueError(f"In compile(), the metric object {metric!r} is listed twice for output {out.name!r}.")
    if _plain_function(identifier):
        # Keras 3 names a metric given as a function by its snake-cased __name__ (``PSNR`` logs ``psnr``,
        # ``DiceCoef`` logs ``dice_coef``), as it names layers after their classes.
        metric.__dict__.setdefault("_variable_prefix", metric.name)
        metric.name = to_snake_case(identifier.__name__)
    raw = identifier if isinstance(identifier, str) else metric.name
    if isinstance(identifier, str):
        # Keras names a metric built from a string after that string ("mae", not "mean_absolute_error"): a
        # custom test_step's `{m.name: m.result() for m in self.metrics}` logs the key the user asked for. Its
        # variables were made under the class's own name and keep it ("mean_absolute_error/total").
        metric.__dict__.setdefault("_variable_prefix", metric.name)
        metric.name = identifier
    prefix = f"{out.name}_" if n_outputs > 1 else ""
    name = prefix + raw
    if argument == "weighted_metrics" and name in taken:   # Keras: "<output>_weighted_<name>"
        name = f"{prefix}weighted_{raw}"
    base, k = name, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    raw_names[name] = raw
    return name, metric


def resolve_config(model: Any, optimizer: Any, loss: Any, loss_weights: Any, metrics: Any,
                   weighted_metrics: Any) -> CompileConfig:
    """Resolve ``compile()`` arguments against the model's outputs (Keras-style errors for bad values)."""
    from .. import optimizers as optimizers_module

    opt = optimizers_module.get(optimizer, "optimizer") if optimizer is not None else None
    # A model built on a dict of outputs is compiled by its keys (``loss={"x": ...}``, logs ``x_loss``).
    output_names = list(getattr(model, "output_keys", None) or model.output_names)
    shapes = [tuple(t.shape) for t in model.outputs]
    outs = [OutputConfig(name, i, shape) for i, (name, shape) in enumerate(zip(output_names, shapes))]

    for out, l in zip(outs, _per_output(loss, output_names, "loss", (str,))):
        out.loss = losses_module.get(l, "loss") if l is not None else None
    if loss_weights is not None:
        if not isinstance(loss_weights, (Mapping, list, tuple, int, float)):
            raise ValueError(f"In compile(), `loss_weights` must be a float, a list or a dict keyed by output names. "
                             f"Received: loss_weights={loss_weights!r}")
        if isinstance(loss_weights, (list, tuple)) and len(loss_weights) != len(outs):
            raise ValueError(f"In compile(), `loss_weights` has {len(loss_weights)} entries but the model has "
                             f"{len(outs)} outputs {output_names}. Received: loss_weights={loss_weights!r}")
        # A list holds one weight per output, a single output's too (Keras takes loss_weights=[2.0]).
        weights = list(loss_weights) if isinstance(loss_weights, (list, tuple)) else \
            _per_output(loss_weights, output_names, "loss_weights", (str,))
        for out, w in zip(outs, weights):
            if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float, np.number))):
                raise ValueError(f"In compile(), each entry of `loss_weights` must be a number. Received: "
                                 f"loss_weights={loss_weights!r} (entry for output {out.name!r}: {w!r})")
            out.loss_weight = 1.0 if w is None else float(w)

    taken = {contract.LOSS} | {f"{o.name}_loss" for o in outs}
    raw_names: dict[str, str] = {}
    for argument, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
        if value is None:
            continue
        if isinstance(value, Mapping) and not ("class_name" in value and "class_name" not in output_names):
            per = _per_output(value, output_names, argument, ())
        elif isinstance(value, (list, tuple)):
            per = _metrics_per_output(value, output_names, argument)
        elif isinstance(value, str) or isinstance(value, metrics_module.Metric) or callable(value):
            per = [value] * len(outs)
        else:
            raise ValueError(f"In compile(), `{argument}` must be a list of metrics, or a list/dict of them per "
                             f"output. Received: {argument}={value!r}")
        for out, items in zip(outs, per):
            target = out.metrics if argument == "metrics" else out.weighted_metrics
            for identifier in _metric_list(items, argument):
                target.append(_resolve_metric(identifier, out, argument, len(outs), taken, raw_names))
    dict_outputs = getattr(model, "output_keys", output_names) != getattr(model, "output_names", output_names) or \
        isinstance(getattr(model, "_outputs_struct", None), Mapping)
    if isinstance(loss, Mapping) and dict_outputs:
        loss_order = [k for k in loss if k in output_names] + [n for n in output_names if n not in loss]
    else:
        loss_order = list(output_names)
    from .custom_loss import overrides_compute_loss

    custom = overrides_compute_loss(model)
    for out in outs:
        out.needs_target = custom
    return CompileConfig(optimizer=opt, outputs=outs, loss_order=loss_order, raw_names=raw_names, custom_loss=custom)


class _PredictedOutputs:
    """The outputs of a model that has none of its own (no ``call()``: keras.io's masked autoencoder), read
    from the ``y_pred`` its step hands to ``compiled_loss`` / ``compiled_metrics``, as Keras's compile
    loss and metrics take them from the structure of ``y_pred``."""

    def __init__(self, model: Any, y_pred: Any):
        if isinstance(y_pred, Mapping):
            self.output_keys = list(y_pred)
            values = list(y_pred.values())
        else:
            values = list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]
            self.output_keys = None
        self.output_names = self.output_keys or (
            [f"output_{k}" for k in range(len(values))] if len(values) > 1 else [f"{model.name}_output"])
        self.outputs = [types.SimpleNamespace(shape=tuple(v.shape if hasattr(v, "shape") else np.shape(v)))
                        for v in values]


def _count(y_pred: Any) -> int:
    return len(y_pred) if isinstance(y_pred, (list, tuple, Mapping)) else 1


def outputs_of(model: Any, y_pred: Any) -> Any:
    """What ``resolve_config`` reads the outputs from: the model, or for a model without defined outputs
    (a subclass whose ``train_step`` calls its parts, never itself) the predictions its step computed."""
    try:
        model.output_names   # noqa: B018 (raises for a model without inputs and outputs)
        if y_pred is not None and _count(y_pred) != len(model.outputs):
            # A step scoring fewer predictions than call() returns (keras.io's PatchConvNet: call() gives
            # logits and attention maps, compiled_metrics gets the logits): Keras on TensorFlow resolves the
            # compiled metrics against that y_pred (measured); the model's outputs would not line up with it.
            return _PredictedOutputs(model, y_pred)
        return model
    except ValueError:
        if y_pred is None:
            raise
        return _PredictedOutputs(model, y_pred)
