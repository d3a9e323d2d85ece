"""Weight constraints (Keras 3 formulas): projections applied to a weight after each optimizer update.

A constraint is any callable ``w -> projected w``. The optimizer calls it on the updated weight inside the
training program (``Optimizer.apply_graph``), so ``w`` is a graph ``Value`` there; called on an array it
returns an array (handy for checks). The built-in ones emit plain ``ai.onnx`` ops; a user's subclass may use
``keras.ops``, which act on graph values too.

Example:
    >>> import numpy as np
    >>> from onnxforge import constraints
    >>> constraints.NonNeg()(np.array([-1.0, 2.0], np.float32))
    array([0., 2.], dtype=float32)
    >>> constraints.get("max_norm").get_config()
    {'max_value': 2, 'axis': 0}
"""
from __future__ import annotations

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "max_norm", "min_max_norm", "non_neg",
           "unit_norm", "get", "serialize", "deserialize", "check_constraint"]

import inspect
from typing import Any

import numpy as np

from .backend_config import epsilon
from .graph import Value
from .keras_objects import get_registered_name, get_registered_object, object_config
from .trace_state import active_trace
from .variables import Variable


def _operand(w: Any) -> Any:
    """A graph value inside a trace (or when ``w`` already is one), else a numpy array."""
    if isinstance(w, Variable):
        return w.__onnx_value__() if active_trace() is not None else w.numpy()
    return w if isinstance(w, Value) else np.asarray(w)


def _axes(axis: Any) -> list[int]:
    return [int(a) for a in (axis if isinstance(axis, (list, tuple)) else [axis])]


def _norms(w: Any, axis: Any) -> Any:
    """``sqrt(sum(w², axis, keepdims=True))``, as Keras computes it."""
    if isinstance(w, Value):
        b = w.builder
        rank = len(w.shape) if w.shape is not None else None
        axes = [a % rank if rank else a for a in _axes(axis)]
        total = b.op("ReduceSum", [w * w, b.const(np.asarray(axes, np.int64))], keepdims=1)
        return b.op("Sqrt", [total])
    return np.sqrt(np.sum(np.square(w), axis=tuple(_axes(axis)), keepdims=True))


def _clip(x: Any, low: float, high: float) -> Any:
    if isinstance(x, Value):
        b = x.builder
        return b.op("Min", [b.op("Max", [x, b.const(low, x.dtype)]), b.const(high, x.dtype)])
    return np.clip(x, low, high).astype(x.dtype)


def _scale(w: Any, desired: Any, norms: Any) -> Any:
    """``w * (desired / (epsilon + norms))``: the rescaling MaxNorm and MinMaxNorm share."""
    if isinstance(w, Value):
        return w * (desired / (norms + epsilon()))
    return (w * (desired / (epsilon() + norms))).astype(w.dtype)


class Constraint:
    """Base class: ``__call__(w)`` returns the projected weight (this base returns ``w`` unchanged).

    Subclass it and override ``__call__``; ``get_config`` returns the ``__init__`` arguments.

    Example:
        >>> import numpy as np
        >>> class Clip(Constraint):
        ...     def __init__(self, c):
        ...         self.c = c
        ...     def __call__(self, w):
        ...         return np.clip(w, -self.c, self.c)
        ...     def get_config(self):
        ...         return {"c": self.c}
        >>> Clip.from_config({"c": 0.5})(np.array([2.0, -0.1]))
        array([ 0.5, -0.1])
    """

    def __call__(self, w: Any) -> Any:
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Constraint:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class MaxNorm(Constraint):
    """Each slice along ``axis`` (the weights into one unit: ``axis=0`` for Dense, ``[0, 1, 2]`` for a
    channels-last Conv2D kernel) rescaled to a norm of at most ``max_value``.

    Example:
        >>> import numpy as np
        >>> MaxNorm(1.0)(np.array([[3.0], [4.0]])).round(4).ravel().tolist()
        [0.6, 0.8]
    """

    def __init__(self, max_value: float = 2, axis: Any = 0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w: Any) -> Any:
        w = _operand(w)
        norms = _norms(w, self.axis)
        return _scale(w, _clip(norms, 0.0, float(self.max_value)), norms)

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Each slice's norm moved to ``rate * clip(norm, min_value, max_value) + (1 - rate) * norm``.

    Example:
        >>> import numpy as np
        >>> MinMaxNorm(2.0, 3.0)(np.array([[0.6], [0.8]])).round(4).ravel().tolist()
        [1.2, 1.6]
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Any = 0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w: Any) -> Any:
        w = _operand(w)
        norms = _norms(w, self.axis)
        desired = _clip(norms, float(self.min_value), float(self.max_value)) * float(self.rate) + \
            norms * (1.0 - float(self.rate))
        return _scale(w, desired, norms)

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


class NonNeg(Constraint):
    """``max(w, 0)``.

    Example:
        >>> import numpy as np
        >>> NonNeg()(np.array([-0.5, 0.5])).tolist()
        [0.0, 0.5]
    """

    def __call__(self, w: Any) -> Any:
        w = _operand(w)
        if isinstance(w, Value):
            return w.builder.op("Max", [w, w.builder.const(0.0, w.dtype)])
        return np.maximum(w, np.zeros((), w.dtype))


class UnitNorm(Constraint):
    """Each slice along ``axis`` divided by its norm (plus Keras's epsilon).

    Example:
        >>> import numpy as np
        >>> UnitNorm()(np.array([[3.0], [4.0]])).round(4).ravel().tolist()
        [0.6, 0.8]
    """

    def __init__(self, axis: Any = 0):
        self.axis = axis

    def __call__(self, w: Any) -> Any:
        w = _operand(w)
        norms = _norms(w, self.axis)
        if isinstance(w, Value):
            return w / (norms + epsilon())
        return (w / (epsilon() + norms)).astype(w.dtype)

    def get_config(self) -> dict:
        return {"axis": self.axis}


# Keras 3 exposes the snake-case names as aliases of the classes: ``constraints.max_norm(3)``.
max_norm = MaxNorm
min_max_norm = MinMaxNorm
non_neg = NonNeg
unit_norm = UnitNorm

_ALIASES: dict[str, type] = {}
for _cls, _snake in ((Constraint, "constraint"), (MaxNorm, "max_norm"), (MinMaxNorm, "min_max_norm"),
                     (NonNeg, "non_neg"), (UnitNorm, "unit_norm")):
    _ALIASES[_cls.__name__] = _ALIASES[_snake] = _cls


def serialize(constraint: Any) -> Any:
    """Keras 3's serialized form: a built-in constraint under ``keras.constraints``, a user's class under its
    module (with its ``"package>name"`` if registered), a function by name; ``None`` stays ``None``.

    Example:
        >>> serialize(NonNeg())["class_name"]
        'NonNeg'
    """
    if constraint is None:
        return None
    if isinstance(constraint, Constraint) and type(constraint).__module__ == __name__:
        return object_config(constraint, "keras.constraints")
    if not hasattr(constraint, "get_config"):
        name = getattr(constraint, "__name__", None)
        if not isinstance(name, str) or name == "<lambda>":
            raise TypeError(f"A constraint without get_config() is written by its name; a lambda has none. "
                            f"Received: {constraint!r}")
        return {"module": "builtins", "class_name": "function", "config": get_registered_name(constraint),
                "registered_name": "function"}
    registered = get_registered_name(type(constraint))
    return {"module": type(constraint).__module__, "class_name": type(constraint).__name__,
            "config": constraint.get_config(), "registered_name": registered if ">" in registered else None}


def deserialize(config: Any, custom_objects: dict | None = None) -> Any:
    """The constraint ``serialize`` described: ``custom_objects`` and registered classes (or functions) first,
    then the built-in ones.

    Example:
        >>> deserialize(serialize(MaxNorm(3))).max_value
        3
    """
    if config is None:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(f"Could not interpret constraint config: {config!r}")
    name, registered = config["class_name"], config.get("registered_name")
    if name == "function":
        fn = get_registered_object(str(config.get("config")), custom_objects)
        if fn is None:
            raise ValueError(f"Unknown constraint function: {config.get('config')!r}. Register it with "
                             "register_keras_serializable() or pass it in custom_objects.")
        return fn
    cls = get_registered_object(registered, custom_objects) if isinstance(registered, str) else None
    cls = cls or get_registered_object(name, custom_objects) or _ALIASES.get(name)
    if cls is None:
        raise ValueError(f"Unknown constraint: {name!r}. Known: {sorted(_ALIASES)}; a custom constraint must be "
                         "registered with register_keras_serializable() or passed in custom_objects.")
    return cls.from_config(config.get("config") or {})


def get(identifier: Any) -> Any:
    """A constraint from a name (``"non_neg"``), a config dict, a class, an instance or a callable (or ``None``).

    Example:
        >>> type(get("unit_norm")).__name__
        'UnitNorm'
    """
    if identifier is None:
        return None
    obj = identifier
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _ALIASES.get(identifier)
        if obj is None:
            raise ValueError(f"Could not interpret constraint identifier: {identifier!r}. Known: {sorted(_ALIASES)}")
    if inspect.isclass(obj):
        obj = obj()
    if not callable(obj):
        raise ValueError(f"Could not interpret constraint identifier: {identifier!r} (a constraint is a callable "
                         "taking the weight and returning its projection)")
    return obj


def check_constraint(owner: str, arg: str, value: Any) -> Any:
    """``get(value)``, with the layer and argument named when ``value`` is no constraint.

    Example:
        >>> check_constraint("dense", "kernel_constraint", 3)   # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Layer 'dense': invalid `kernel_constraint`. Could not interpret constraint identifier: 3 ...
    """
    try:
        return get(value)
    except ValueError as e:
        raise ValueError(f"Layer {owner!r}: invalid `{arg}`. {e}. Received: {arg}={value!r}") from None
