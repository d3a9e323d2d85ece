"""The metric contract: state as sums, a batch's sums as graph ops, the value from the sums on the host.

A metric's state is a few tensors of *sums* (``total`` and ``count`` for a mean, true/false positive counts
per threshold for AUC, a confusion matrix for IoU). ``batch_sums(y_true, y_pred, sample_weight)`` emits
graph ops that compute one batch's contribution to each sum; the host adds them up across batches (in
float64) and ``result_from(states)`` turns them into the number Keras would report. Every Keras 3 metric
fits this form because its update only ever adds to its variables.

The Keras stateful API (``update_state``, ``result``, ``reset_state``, calling the metric) works on arrays
too: ``update_state`` runs the same ops with onnxruntime, through a program compiled once per input
signature and kept on the metric.

Example:
    >>> import numpy as np
    >>> m = Mean()
    >>> m.update_state(np.array([1.0, 3.0, 5.0, 7.0]), sample_weight=np.array([1.0, 1.0, 0.0, 0.0]))
    >>> m.result()
    2.0
"""
from __future__ import annotations

__all__ = ["Metric", "Mean", "Sum", "MeanMetricWrapper", "mean_sums", "divide_no_nan", "EagerPrograms", "sum_of"]

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from ..eager_tensor import as_eager
from ..graph import GraphBuilder, Value, onnx_dtype
from ..keras_masks import get_keras_mask
from ..losses import (_snake, _rank, batch_size, cast, elementwise, mask_sample_weight, reduce,
                      squeeze_or_expand_to_same_rank)
from ..metric_tracing import trace_aware
from .result_values import MetricArray, MetricValue

_FLOAT = onnx.TensorProto.FLOAT
_FLOAT_DTYPES = (None, "float32", np.float32)


# ------------------------------------------------------------------------------------------ eager programs
def _host_array(a: Any) -> np.ndarray:
    """An input array as the eager program takes it: integers and booleans as int64, the rest float32."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):   # a torch tensor (Keras users pass them too)
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise TypeError(f"Metric inputs must hold numbers. Received an array of dtype {arr.dtype}.")
    return arr.astype(np.int64) if arr.dtype.kind in "iub" else arr.astype(np.float32)


class EagerPrograms:
    """Small ONNX programs built from a tracing function, cached by input signature (shapes and dtypes).

    ``run(fn, *arrays)`` traces ``fn`` on graph inputs shaped like ``arrays`` the first time a signature is
    seen, keeps the onnxruntime session, and runs it; a metric updated batch after batch reuses one session.

    Example:
        >>> progs = EagerPrograms()
        >>> progs.run(lambda x: x * 2.0, np.ones(3, np.float32)).tolist()
        [2.0, 2.0, 2.0]
    """

    def __init__(self, capacity: int = 8):
        self.capacity = capacity
        self._cache: OrderedDict[tuple, tuple[Any, list[str], bool]] = OrderedDict()

    def run(self, fn: Callable[..., Any], *arrays: Any) -> Any:
        host = [None if a is None else _host_array(a) for a in arrays]
        key = tuple(None if a is None else (a.shape, a.dtype.str) for a in host)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = self._build(fn, host)
            if len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        session, names, is_list = entry
        feeds = {f"arg{i}": a for i, a in enumerate(host) if a is not None}
        results = session.run(names, feeds)
        return results if is_list else results[0]

    @staticmethod
    def _build(fn: Callable[..., Any], host: list[np.ndarray | None]) -> tuple[Any, list[str], bool]:
        import onnxruntime as ort

        b = GraphBuilder()
        values = [None if a is None else b.input(f"arg{i}", onnx_dtype(a.dtype), a.shape) for i, a in enumerate(host)]
        out = fn(*values)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        names = []
        for k, o in enumerate(outs):
            b.output(o, f"out{k}")
            names.append(f"out{k}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1   # tiny programs: thread start-up costs more than it saves
        session = ort.InferenceSession(b.to_model().SerializeToString(), options, providers=["CPUExecutionProvider"])
        return session, names, isinstance(out, (list, tuple))


def divide_no_nan(x: Any, y: Any) -> Any:
    """``x / y`` where ``y != 0``, else 0 (host math in float64; a float for scalars)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = np.divide(x, y, out=np.zeros(np.broadcast(x, y).shape), where=y != 0)
    return float(out) if out.shape == () else out


# ------------------------------------------------------------------------------------------ base
class Metric:
    """A metric whose state is a list of sums, accumulated on the host.

    Subclasses define ``state_spec`` (names and shapes of the sums), ``batch_sums`` (graph ops) and
    ``result_from`` (host math). A metric whose state shape depends on the data (``F1Score``'s number of
    classes) learns it in ``batch_sums``, which the compiler calls before ``state_spec``.

    Args:
        name: the metric's name: its key in logs and ``History.history``.
        dtype: ``None`` or ``"float32"`` (metrics accumulate in float32 on the device, float64 on the host).
    """

    #: ``"up"`` when larger is better, ``"down"`` when smaller is better (``EarlyStopping(mode="auto")``).
    _direction: str | None = None

    def __init_subclass__(cls, **kwargs: Any):
        # update_state / result inside a traced custom train_step record the tracker (metric_tracing).
        super().__init_subclass__(**kwargs)
        trace_aware(cls)

    def __init__(self, name: str | None = None, dtype: Any = None):
        # Like Keras, a metric named by default takes a session-unique name: "auc", "auc_1", ...
        # (layers.base holds the counters ``clear_session`` resets; imported here to keep metrics below layers.)
        from ..layers.base import auto_name

        self.name = name or auto_name(_snake(type(self).__name__))
        if dtype not in _FLOAT_DTYPES:
            raise ValueError(f"Metric {self.name!r}: only float32 metrics are supported. Received: dtype={dtype!r}")
        self._dtype = "float32"
        self._states: list[np.ndarray] | None = None
        self._eager = EagerPrograms()
        self._metric_variables: list[Any] = []
        self._checked_additive = False

    @property
    def dtype(self) -> str:
        return self._dtype

    # ---------------------------------------------------------------- Keras-style variables
    def add_variable(self, shape: Any = (), initializer: Any = "zeros", dtype: Any = None, aggregation: str = "sum",
                     name: str | None = None) -> Any:
        """A state variable for a metric written the Keras way (see ``onnxforge.metrics.stateful``)."""
        from .stateful import MetricVariable

        if aggregation not in ("sum", "mean", "none", None):
            raise ValueError(f"Metric {self.name!r}: add_variable(aggregation=...) must be 'sum', 'mean' or 'none'. "
                             f"Received: aggregation={aggregation!r}")
        taken = {v.name for v in self._metric_variables}
        base = name or f"variable_{len(self._metric_variables)}"
        unique, k = base, 1
        while unique in taken:
            unique, k = f"{base}_{k}", k + 1
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape or ())
        var = MetricVariable(unique, shape, dtype or "float32", initializer)
        self._metric_variables.append(var)
        return var

    def add_weight(self, shape: Any = (), initializer: Any = "zeros", dtype: Any = None, name: str | None = None,
                   aggregation: str = "sum") -> Any:
        """Keras's older name of ``add_variable``."""
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, aggregation=aggregation, name=name)

    def _user_defined(self) -> bool:
        """A metric written the Keras way: its own update_state over variables from add_variable."""
        return bool(self._metric_variables) and type(self).update_state is not Metric.update_state

    def _delegating(self) -> bool:
        """A metric written the Keras way with no state of its own: its ``update_state`` updates other metrics
        (keras.io DDIM's ``KID`` feeds a ``Mean`` tracker), so in a trace that code runs as written."""
        return (not self._metric_variables and type(self).batch_sums is Metric.batch_sums
                and _raw(type(self).update_state) is not _raw(Metric.update_state))

    # ---------------------------------------------------------------- graph side
    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[(state name, shape), ...]`` of the sums this metric keeps."""
        if self._metric_variables:
            return [(v.name, v.shape) for v in self._metric_variables]
        raise NotImplementedError(f"{type(self).__name__} does not define state_spec()")

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        """One batch's contribution to each state sum, as graph values (float32)."""
        if self._user_defined():
            return self._traced_increments(y_true, y_pred, sample_weight)
        raise NotImplementedError(
            f"Metric {self.name!r} ({type(self).__name__}) has no graph form (batch_sums). onnxforge compiles a "
            "metric as per-batch sums: subclass MeanMetricWrapper with a function fn(y_true, y_pred) of graph ops, "
            "or implement state_spec / batch_sums / result_from.")

    def _traced_increments(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        from .stateful import check_additive, trace_increments

        update = _raw(type(self).update_state)   # the class's own code, traced on graph values
        args = _fit_arguments(update, (y_true, y_pred, sample_weight))
        if not self._checked_additive:
            specs = [None if a is None else (a.dtype, a.shape) for a in args]
            check_additive(self.name, self._metric_variables, lambda *values: update(self, *values), specs)
            self._checked_additive = True
        b = next(a.builder for a in args if isinstance(a, Value))
        return trace_increments(self._metric_variables, lambda: update(self, *args), b,
                                lambda var: b.const(np.zeros(var.shape, var._dtype)))

    # ---------------------------------------------------------------- host side
    def result_from(self, states: Sequence[np.ndarray]) -> Any:
        """The metric value from accumulated state sums."""
        if self._metric_variables:
            for var, value in zip(self._metric_variables, states):
                var._value = np.asarray(value).astype(var._dtype).reshape(var.shape)
            out = self.result()
            out = np.asarray(out.numpy() if hasattr(out, "numpy") else out)
            return float(out) if out.ndim == 0 else out
        raise NotImplementedError

    def merge_state(self, states: Sequence[np.ndarray]) -> None:
        """Add a batch's (or several batches') sums to this metric's host state."""
        if self._metric_variables:   # a metric written with add_variable: its variables hold the state
            for var, inc in zip(self._metric_variables, states):
                var._value = (var._value + np.asarray(inc).reshape(var.shape)).astype(var._dtype)
            return
        states = [np.asarray(s, np.float64) for s in states]
        self._states = states if self._states is None else [a + s for a, s in zip(self._states, states)]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Keras's stateful update on arrays (runs this metric's ops with onnxruntime)."""
        sums = self._eager.run(lambda t, p, w: list(self.batch_sums(t, p, w)), y_true, y_pred, sample_weight)
        self.merge_state(sums)

    def result(self) -> Any:
        """The metric value from everything seen since the last ``reset_state`` (a ``MetricValue`` float or an
        array)."""
        if self._states is None:
            out = self.result_from([np.zeros(s, np.float64) for _, s in self.state_spec()])
        else:
            out = self.result_from(self._states)
        if isinstance(out, float):
            return MetricValue(out)
        return out.view(MetricArray) if type(out) is np.ndarray else out

    def reset_state(self) -> None:
        """Forget every update."""
        self._states = None
        for var in self._metric_variables:
            var.reset()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``update_state(*args)``, then ``result()`` (Keras's ``Metric.__call__``)."""
        self.update_state(*args, **kwargs)
        return self.result()

    @property
    def variables(self) -> list[Any]:
        """The metric's state: its variables (a metric written with ``add_variable``), else views of the
        accumulated sums in ``state_spec`` order, named as Keras's variables (``name`` ``"total"``, ``path``
        ``"mean/total"``) with ``numpy()`` and ``assign()`` (``[v.numpy() for v in metric.variables]``)."""
        if self._metric_variables:
            return list(self._metric_variables)
        from ..layers.keras_attributes import metric_state_variables

        return metric_state_variables(self)

    def _state_arrays(self) -> list[Any]:
        """The accumulated sums (zeros before any update), in ``state_spec`` order, as tensors."""
        if self._states is None:
            return [as_eager(np.zeros(s, np.float32)) for _, s in self.state_spec()]
        return [as_eager(np.asarray(s, np.float32)) for s in self._states]

    def __getattr__(self, name: str) -> Any:
        # Keras's metrics hold their state as attributes named like it (``Mean.total``, ``Mean.count``,
        # ``AUC.true_positives``): here the state sums of ``variables``, by their ``state_spec`` names.
        if name.startswith("_") or self.__dict__.get("_reading_state_names"):
            raise AttributeError(name)
        self.__dict__["_reading_state_names"] = True   # a state_spec reading an unset attribute lands here
        try:
            names = [state for state, _ in self.state_spec()]
        except (NotImplementedError, AttributeError):
            names = []
        finally:
            del self.__dict__["_reading_state_names"]
        if name in names:
            return self._state_arrays()[names.index(name)]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


trace_aware(Metric)


def _fit_arguments(update: Any, args: tuple) -> tuple:
    """As many of ``(y_true, y_pred, sample_weight)`` as ``update(self, ...)`` takes positionally: a tracker's
    ``update_state(values, sample_weight=None)`` gets ``(values, sample_weight)``."""
    import inspect

    try:
        params = list(inspect.signature(update).parameters.values())[1:]
    except (TypeError, ValueError):
        return args
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return args
    n = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    if n >= len(args):
        return args
    if n == 2 and args[1] is None:   # (values, sample_weight) reached batch_sums as (values, None, weight)
        return (args[0], args[2])
    return args[:n]


def _raw(method: Any) -> Any:
    """A metric method without the trace-aware wrapper (``metric_tracing``): the code its class wrote."""
    return getattr(method, "__wrapped__", method)


# ------------------------------------------------------------------------------------------ means
def mean_sums(values: Value, sample_weight: Value | None) -> list[Value]:
    """``[total, count]`` of Keras's weighted ``Mean`` over per-sample (or per-entry) ``values``."""
    b = values.builder
    if _rank(values) is None:
        # A user function's result of unknown rank: one row per sample, averaged per sample.
        rows = b.op("Reshape", [values, b.const(np.asarray([0, -1], np.int64))], shape=("batch", None))
        values = reduce("ReduceMean", rows, [1])
    if sample_weight is None:
        if _rank(values) and _rank(values) > 1:
            values = reduce("ReduceMean", values, list(range(1, _rank(values))))
        count = batch_size(values) if _rank(values) else b.const(np.asarray(1.0, np.float32))
        return [reduce("ReduceSum", values, None), count]
    w = cast(sample_weight, _FLOAT)
    values, w = squeeze_or_expand_to_same_rank(values, w)
    wn, vn = _rank(w), _rank(values)
    if vn > wn:
        values = reduce("ReduceMean", values, list(range(wn, vn)))
    w = b.op("Expand", [w, b.op("Shape", [values])], shape=values.shape)
    values = elementwise("Mul", values, w)
    if wn > 1:
        w = reduce("ReduceMean", w, list(range(1, wn)))
    if _rank(values) > 1:
        values = reduce("ReduceMean", values, list(range(1, _rank(values))))
    return [reduce("ReduceSum", values, None), reduce("ReduceSum", w, None)]


class Mean(Metric):
    """The weighted mean of values: Keras's ``Mean`` (the ``loss`` trackers are ``Mean`` metrics).

    Unlike the other metrics, ``batch_sums`` and ``update_state`` take ``(values, sample_weight)``.

    Example:
        >>> import numpy as np
        >>> m = Mean()
        >>> m.update_state(np.array([1.0, 3.0, 5.0, 7.0]))
        >>> m.result()
        4.0
    """

    def __init__(self, name: str = "mean", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("total", ()), ("count", ())]

    def batch_sums(self, values: Value, sample_weight: Value | None = None, _unused: Any = None) -> list[Value]:
        return mean_sums(cast(values, _FLOAT), sample_weight)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        sums = self._eager.run(lambda v, w: self.batch_sums(v, w), values, sample_weight)
        self.merge_state(sums)

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        return divide_no_nan(states[0], states[1])


def sum_of(values: Value, sample_weight: Value | None) -> Value:
    """Keras's ``Sum``: values weighted per sample, summed over everything."""
    if sample_weight is not None:
        w = cast(sample_weight, _FLOAT)
        values, w = squeeze_or_expand_to_same_rank(values, w)
        wn, vn = _rank(w), _rank(values)
        if vn is not None and wn is not None and vn > wn:
            values = reduce("ReduceSum", values, list(range(wn, vn)))
        values = elementwise("Mul", values, w)
    return reduce("ReduceSum", values, None)


class Sum(Metric):
    """The (weighted) sum of every value seen (Keras ``Sum``).

    Example:
        >>> import numpy as np
        >>> m = Sum()
        >>> m.update_state(np.array([1.0, 3.0, 5.0, 7.0]))
        >>> m.result()
        16.0
    """

    def __init__(self, name: str = "sum", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("total", ())]

    def batch_sums(self, values: Value, sample_weight: Value | None = None, _unused: Any = None) -> list[Value]:
        return [sum_of(cast(values, _FLOAT), sample_weight)]

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        sums = self._eager.run(lambda v, w: self.batch_sums(v, w), values, sample_weight)
        self.merge_state(sums)

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        return float(np.asarray(states[0]))


class MeanMetricWrapper(Metric):
    """The weighted mean of a per-sample function ``fn(y_true, y_pred, **kwargs)`` over all samples seen.

    States: ``total`` (sum of weighted values) and ``count`` (sum of weights, or number of samples).
    Values with more than one axis are first averaged over the non-batch axes, as Keras does.

    Example:
        >>> import numpy as np
        >>> from onnxforge import losses
        >>> m = MeanMetricWrapper(losses.mean_absolute_error, name="mae")
        >>> m.update_state(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]], np.float32))
        >>> m.result()
        0.5
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None, dtype: Any = None, **kwargs: Any):
        super().__init__(name=name or getattr(fn, "__name__", None), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("total", ()), ("count", ())]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        mask = get_keras_mask(y_pred)
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        if isinstance(values, (int, float, np.ndarray)):
            values = y_pred.builder.const(np.asarray(values, np.float32))
        if mask is not None:
            # Keras 3 (MeanMetricWrapper): the prediction's mask joins the sample weight, so padded entries
            # count neither in the total nor in the count.
            mask = cast(mask, _FLOAT)
            if sample_weight is None:
                sample_weight = mask
            else:
                sample_weight = mask_sample_weight(mask, cast(sample_weight, _FLOAT))
        return mean_sums(cast(values, _FLOAT), sample_weight)

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        return divide_no_nan(states[0], states[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._fn_kwargs}
