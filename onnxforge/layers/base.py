"""The ``Layer`` base class: Keras 3's ``__init__`` / ``build`` / ``call`` / ``get_config`` contract.

A layer is called in one of three worlds:

* on ``KerasTensor``s (functional model construction): it builds its weights from the static input
  shape, validates the input, records a ``Node`` and returns KerasTensors with ``compute_output_shape``
  shapes;
* on graph ``Value``s inside an active ``TraceContext`` (compilation): ``call()`` emits ONNX nodes.
  Variables used as op inputs are resolved through the trace; weight regularization is added to the
  trace's losses in training programs;
* on concrete arrays (numpy, ``EagerTensor``) outside any trace: the call runs now, compiled into a small
  ONNX program cached by signature (``onnxforge.eager``, reached through ``tracing.eager_executor()``).

Example:
    >>> import numpy as np
    >>> from onnxforge.layers import Layer
    >>> class Scale(Layer):
    ...     def build(self, input_shape):
    ...         self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")
    ...     def call(self, x):
    ...         return x * self.w
    ...     def compute_output_shape(self, input_shape):
    ...         return input_shape
    >>> layer = Scale()
    >>> layer.build((None, 3)); [w.name for w in layer.weights]
    ['scale/w']
"""
from __future__ import annotations

__all__ = ["Layer", "InputSpec", "clear_session", "auto_name", "to_snake_case"]

import collections
import functools
import inspect
import re
import weakref
from typing import Any

import numpy as np
import onnx

from .. import dtype_policies
from .. import initializers as initializers_mod
from .. import regularizers as regularizers_mod
from ..graph import GraphBuilder, Value
from ..tracing import TraceContext, autocast_dtype, autocast_scope, current_trace, eager_executor
from ..variables import Variable
from . import _ops, allocation, auto_config
from .keras_tensor import KerasTensor, Node, flatten, is_shape, map_structure, standardize_dtype

# ---------------------------------------------------------------- naming
_name_uids: collections.Counter[str] = collections.Counter()


def to_snake_case(name: str) -> str:
    """Keras's class-name to layer-name rule: ``Conv2DTranspose`` -> ``conv2d_transpose``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def auto_name(prefix: str) -> str:
    """``prefix`` the first time, then ``prefix_1``, ``prefix_2``, ... (Keras's unique layer names)."""
    _name_uids[prefix] += 1
    uid = _name_uids[prefix]
    return prefix if uid == 1 else f"{prefix}_{uid - 1}"


def clear_session() -> None:
    """Reset the automatic layer-name counters (``keras.backend.clear_session``)."""
    _name_uids.clear()


# ---------------------------------------------------------------- input specs
class InputSpec:
    """What a layer accepts: rank (``ndim`` / ``min_ndim`` / ``max_ndim``) and fixed axis sizes (``axes``)."""

    def __init__(self, ndim: int | None = None, min_ndim: int | None = None, max_ndim: int | None = None,
                 axes: dict[int, int] | None = None, shape: tuple | None = None, dtype: Any = None,
                 allow_last_axis_squeeze: bool = False, name: str | None = None, optional: bool = False):
        self.ndim = len(shape) if shape is not None else ndim
        self.min_ndim, self.max_ndim = min_ndim, max_ndim
        self.axes = dict(axes or {})
        self.shape = None if shape is None else tuple(shape)
        self.dtype = dtype
        # Keras: a rank-N spec also takes rank N+1 inputs whose last axis is 1, and rank N-1 inputs when
        # the spec's last axis is 1 (a functional model expands or squeezes them).
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        self.name, self.optional = name, optional

    def __repr__(self) -> str:
        parts = [f"{k}={v}" for k, v in vars(self).items() if v not in (None, {}, False)]
        return f"InputSpec({', '.join(parts)})"


def _display_shape(shape: Any) -> tuple | None:
    return None if shape is None else tuple(d if isinstance(d, int) else None for d in shape)


def _check_spec(layer: Layer, index: int, spec: InputSpec, shape: tuple | None) -> None:
    if shape is None:
        return
    shape = _display_shape(shape)
    ndim = len(shape)
    prefix = f'Input {index} of layer "{layer.name}" is incompatible with the layer:'
    if spec.ndim is not None and ndim != spec.ndim and not spec.allow_last_axis_squeeze:
        raise ValueError(f"{prefix} expected ndim={spec.ndim}, found ndim={ndim}. Full shape received: {shape}")
    if spec.min_ndim is not None and ndim < spec.min_ndim:
        raise ValueError(f"{prefix} expected min_ndim={spec.min_ndim}, found ndim={ndim}. "
                         f"Full shape received: {shape}")
    if spec.max_ndim is not None and ndim > spec.max_ndim:
        raise ValueError(f"{prefix} expected max_ndim={spec.max_ndim}, found ndim={ndim}. "
                         f"Full shape received: {shape}")
    for axis, value in spec.axes.items():
        if value is None:
            continue
        if not -ndim <= axis < ndim or shape[axis] not in (value, None):
            raise ValueError(f"{prefix} expected axis {axis} of input shape to have value {value}, "
                             f"but received input with shape {shape}")
    if spec.shape is not None:
        spec_shape = spec.shape
        if spec.allow_last_axis_squeeze:
            if ndim not in (len(spec_shape) - 1, len(spec_shape), len(spec_shape) + 1):
                raise ValueError(f"{prefix} expected ndim={len(spec_shape)}, found ndim={ndim}. "
                                 f"Full shape received: {shape}")
            shape = shape[:-1] if shape and shape[-1] == 1 else shape
            spec_shape = spec_shape[:-1] if spec_shape and spec_shape[-1] == 1 else spec_shape
        for expected, got in zip(spec_shape, shape):
            if expected is not None and got is not None and expected != got:
                raise ValueError(f"{prefix} expected shape={spec.shape}, found shape={shape}")


# ---------------------------------------------------------------- call context
# The ``training`` flag of the enclosing layer calls: an inner layer called without ``training`` inherits
# it (as Keras's call context does), and the trace's own flag is the outermost default.
_training_stack: list[bool] = []
# Regularized variables already added to a trace's losses (a shared layer is penalized once).
_regularized: weakref.WeakKeyDictionary[TraceContext, set[int]] = weakref.WeakKeyDictionary()

_BASE_KWARGS = ("input_shape", "batch_input_shape", "input_dim", "batch_size")


def _spec_of(x: Any) -> Any:
    if isinstance(x, KerasTensor):
        return x.shape
    if isinstance(x, Value):
        return _ops.static_shape(x)
    return None


def _dtype_of(x: Any) -> str | None:
    if isinstance(x, KerasTensor):
        return x.dtype
    if isinstance(x, Value) and x.dtype:
        return standardize_dtype(x.dtype)
    return None


class Layer:
    """Base class of all layers (Keras 3 semantics).

    Args:
        trainable: whether the layer's weights are trained.
        name: unique name; defaults to the snake-cased class name plus a counter (``dense_1``).
        dtype: the dtype policy: a dtype name (``"float64"``), a policy name (``"mixed_float16"``: float32
            weights, float16 computations), a ``DTypePolicy`` or its serialized dict; default the global
            policy (``keras.config.set_dtype_policy``).
        autocast: whether floating inputs are cast to the compute dtype (and, under a mixed policy, weights
            read in ``call`` are cast to it too), as Keras's ``autocast``.
        activity_regularizer: penalty on the layer's outputs (divided by the batch size, as Keras 3).
        input_shape / batch_input_shape / input_dim / batch_size: the model input shape, when this layer
            starts a ``Sequential`` model.
    """

    #: onnxforge's own layers, besides Keras's ``autocast``, cast integer inputs to the compute dtype (ONNX ops
    #: do not mix types); layers that take integers (Embedding) turn it off, and so does every layer class
    #: defined outside onnxforge (Keras leaves integer inputs alone).
    _autocast: bool = True
    #: Keras's switch for converting call arguments at all (functional models leave it to their layers).
    _convert_input_args: bool = True
    #: Whether the layer passes an incoming Keras mask (padding steps) on to its output unchanged.
    supports_masking: bool = False

    def __init_subclass__(cls, **kwargs: Any):
        # Like Keras's build wrapper: a finished build() marks the layer built, and state can only be
        # created in __init__ or inside build() (a second build() would silently duplicate weights).
        super().__init_subclass__(**kwargs)
        if not cls.__module__.startswith("onnxforge.") and "_autocast" not in cls.__dict__:
            # A user's layer sees what Keras gives it: integer inputs stay integers (an index stays an index).
            cls._autocast = False
        original = cls.__dict__.get("build")
        if original is None or getattr(original, "_wrapped_build", False):
            return

        @functools.wraps(original)
        def build(self: Layer, *args: Any, **kw: Any) -> None:
            depth = self.__dict__.get("_build_depth", 0)
            if depth == 0:
                self.__dict__["_state_locked"] = bool(self.__dict__.get("built"))
            self.__dict__["_build_depth"] = depth + 1
            try:
                original(self, *args, **kw)
            finally:
                self.__dict__["_build_depth"] = depth
            if depth == 0:
                self.built = True

        build._wrapped_build = True  # type: ignore[attr-defined]
        cls.build = build  # type: ignore[method-assign]

    def __new__(cls, *args: Any, **kwargs: Any) -> Layer:
        obj = super().__new__(cls)
        # Keras 3's automatic config: a user's layer without get_config() still clones and saves.
        obj.__dict__["_auto_config"] = auto_config.capture_init_args(cls, args, kwargs)
        return obj

    def __init__(self, trainable: bool = True, name: str | None = None, dtype: Any = None, autocast: bool = True,
                 activity_regularizer: Any = None, **kwargs: Any):
        unknown = [k for k in kwargs if k not in _BASE_KWARGS]
        if unknown:
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                            f"{unknown[0]!r}. Received: {unknown[0]}={kwargs[unknown[0]]!r}")
        if not isinstance(trainable, (bool, np.bool_)):
            raise ValueError(f"Expected `trainable` to be a boolean. Received: trainable={trainable!r}")
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"Layer name must be a non-empty string without '/'. Received: name={name!r}")
        self.name = name or auto_name(to_snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        try:
            self._dtype_policy = dtype_policies.get(dtype)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Layer {self.name!r}: {e} Received: dtype={dtype!r}") from None
        self.autocast = bool(autocast)
        self.activity_regularizer = regularizers_mod.get(activity_regularizer)
        self._trainable_variables: list[Variable] = []
        self._non_trainable_variables: list[Variable] = []
        self._weight_names: set[str] = set()
        self._inbound_nodes: list[Node] = []
        self._losses: list[Any] = []  # add_loss() values of the latest outermost call (Keras 3)
        self.built = False
        self._build_shapes: Any = None
        self.input_spec: Any = None
        # The model input shape this layer declares (Sequential turns it into an InputLayer).
        batch_shape = kwargs.get("batch_input_shape")
        if batch_shape is None:
            shape = (kwargs["input_dim"],) if kwargs.get("input_dim") is not None else kwargs.get("input_shape")
            if shape is not None:
                batch_shape = (kwargs.get("batch_size"), *tuple(shape))
        self._batch_input_shape = None if batch_shape is None else tuple(batch_shape)

    # ------------------------------------------------------------ tracking
    def _flat_sublayers(self) -> list[Layer]:
        """Sub-layers held in attributes (alone, or in a list / tuple / dict), in assignment order.

        Found when asked rather than recorded on assignment, so ``self.blocks.append(Dense(...))`` after
        ``self.blocks = []`` counts too (Keras tracks such lists).
        """
        out: list[Layer] = []
        for key, value in self.__dict__.items():
            if key == "_inbound_nodes":
                continue
            items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) \
                else (value,)
            for item in items:
                if isinstance(item, Layer) and item is not self and all(item is not o for o in out):
                    out.append(item)
        return out

    @property
    def dtype_policy(self) -> dtype_policies.DTypePolicy:
        return self._dtype_policy

    @dtype_policy.setter
    def dtype_policy(self, value: Any) -> None:
        self._dtype_policy = dtype_policies.get(value)

    @property
    def dtype(self) -> str:
        """Alias of ``variable_dtype`` (Keras 3)."""
        return self._dtype_policy.variable_dtype

    @property
    def compute_dtype(self) -> str:
        """The dtype of the layer's computations: floating inputs are cast to it."""
        return self._dtype_policy.compute_dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype of the layer's weights."""
        return self._dtype_policy.variable_dtype

    @property
    def input_dtype(self) -> str:
        """The dtype floating inputs are converted to."""
        return self.compute_dtype

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        # Keras 3: freezing a layer freezes its variables and its sub-layers.
        value = bool(value)
        self._trainable = value
        for v in self._trainable_variables:
            v.trainable = value
        for layer in self._flat_sublayers():
            layer.trainable = value

    # ------------------------------------------------------------ weights
    def add_weight(self, shape: Any = None, initializer: Any = None, name: str | None = None,
                   trainable: bool = True, regularizer: Any = None, dtype: Any = None,
                   constraint: Any = None, autocast: bool = True) -> Variable:
        """Create a weight ``Variable`` named ``f"{layer.name}/{name}"`` and track it.

        Args:
            shape: a fully defined shape (``()`` for a scalar).
            initializer: name, instance or callable ``(shape, dtype) -> array``; default glorot_uniform for
                floats, zeros otherwise.
            name: the weight's own name (``"kernel"``).
            trainable: non-trainable weights are state (BatchNorm statistics), updated by the layer.
            regularizer: penalty added to the training loss.
            autocast: under a mixed policy, whether ``call`` reads the weight cast to the compute dtype
                (Keras's ``autocast``; normalization layers keep their statistics in float32).
        """
        if self.built and (not self.__dict__.get("_build_depth") or self.__dict__.get("_state_locked")):
            raise ValueError(f"Layer {self.name!r} is already built: cannot add weight {name!r}. All state must "
                             "be created in the `__init__()` method or in the `build()` method.")
        if constraint is not None:
            raise NotImplementedError(f"Layer {self.name!r}: weight constraints are not supported by onnxforge. "
                                      f"Received: constraint={constraint!r}")
        shape = tuple(() if shape is None else shape)
        if any(d is None or int(d) < 0 for d in shape):
            raise ValueError(f"Layer {self.name!r}: weight {name!r} needs a fully defined shape. "
                             f"Received: shape={shape}")
        dtype = standardize_dtype(dtype or self.variable_dtype)
        # While a file is being loaded, the weight must match a tensor the file stores, checked before
        # the initializer allocates anything (a config saying Dense(10**12) is only a few bytes).
        allocation.claim(self.name, name, shape)
        if initializer is None:
            initializer = "glorot_uniform" if "float" in dtype else "zeros"
        init = initializers_mod.get(initializer)
        value = np.asarray(init(shape, dtype=dtype), dtype=dtype)
        if value.shape != shape:
            raise ValueError(f"Layer {self.name!r}: initializer of weight {name!r} returned shape {value.shape}, "
                             f"expected {shape}.")
        base = name or "variable"
        wname, k = base, 0
        while wname in self._weight_names:
            k += 1
            wname = f"{base}_{k}"
        self._weight_names.add(wname)
        # A weight added to a frozen layer starts frozen (Keras: the layer's flag governs).
        variable = Variable(value, name=f"{self.name}/{wname}", trainable=bool(trainable) and self._trainable,
                            regularizer=regularizers_mod.get(regularizer), dtype=dtype, autocast=autocast)
        (self._trainable_variables if trainable else self._non_trainable_variables).append(variable)
        return variable

    add_variable = add_weight

    def _own_weights(self) -> list[Variable]:
        return self._trainable_variables + self._non_trainable_variables

    @property
    def weights(self) -> list[Variable]:
        """Own weights (created trainable first, then non-trainable) then sub-layers', deduplicated."""
        out: list[Variable] = []
        seen: set[int] = set()
        for w in self._own_weights() + [w for layer in self._flat_sublayers() for w in layer.weights]:
            if w.uid not in seen:
                seen.add(w.uid)
                out.append(w)
        return out

    variables = weights

    @property
    def trainable_weights(self) -> list[Variable]:
        return [w for w in self.weights if w.trainable] if self.trainable else []

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [w for w in self.weights if not w.trainable] if self.trainable else self.weights

    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights' values, in ``weights`` order (Keras layouts)."""
        return [np.array(w.numpy(), copy=True) for w in self.weights]

    def set_weights(self, weights: list) -> None:
        """Assign values in ``weights`` order; lengths and shapes must match."""
        own = self.weights
        if len(own) != len(weights):
            raise ValueError(f"You called `set_weights(weights)` on layer '{self.name}' with a weight list of "
                             f"length {len(weights)}, but the layer was expecting {len(own)} weights.")
        for variable, value in zip(own, weights):
            value = np.asarray(value)
            if tuple(variable.shape) != tuple(value.shape):
                raise ValueError(f"Layer {self.name} weight shape {tuple(variable.shape)} is not compatible with "
                                 f"provided weight shape {tuple(value.shape)}.")
        for variable, value in zip(own, weights):
            variable.assign(value)

    def count_params(self) -> int:
        """Number of scalars in the weights; the layer must be built."""
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer '{self.name}', but the layer isn't "
                             "built. You can build it manually via: `layer.build(input_shape)`.")
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    # ------------------------------------------------------------ losses
    def add_loss(self, loss: Any) -> None:
        """Add a scalar (or tensor, summed) loss from inside ``call()``, as Keras 3's ``Layer.add_loss``.

        Inside a compiled program the value joins the training loss (and ``val_loss``); ``layer.losses``
        lists it until the next outermost call of a layer that contains this one clears it.

        Example:
            >>> from onnxforge import ops
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

    def _all_sublayers(self) -> list[Layer]:
        out: list[Layer] = []
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
        from ..tracing import _stack

        ctx = _stack[-1] if _stack else None
        for w in self.trainable_weights:
            if w.regularizer is not None:
                out.append(w.regularizer(ctx.read(w) if ctx is not None else w.numpy()))
        return out

    # ------------------------------------------------------------ contract
    def build(self, input_shape: Any) -> None:
        """Create the weights for ``input_shape`` (batch dim ``None``). Override in layers with weights."""
        self.built = True

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Emit the layer's ops on graph ``Value``s (inside a trace). Override."""
        raise NotImplementedError(f"Layer {type(self).__name__} does not implement call().")

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Output shape(s) for ``input_shape``; by default found by tracing ``call`` on a scratch graph."""
        out = self._spec_by_tracing((_shape_specs(input_shape, self.compute_dtype),), {})
        return out.shape if isinstance(out, KerasTensor) else map_structure(lambda t: t.shape, out)

    def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
        """Output KerasTensor(s) (no history) for symbolic arguments."""
        if type(self).compute_output_shape is Layer.compute_output_shape:
            return self._spec_by_tracing(args, kwargs)
        first = args[0]
        shapes = map_structure(lambda t: t.shape, first) if not isinstance(first, KerasTensor) else first.shape
        out = self.compute_output_shape(shapes)
        dtype = self._output_dtype([_dtype_of(t) for t in flatten(first)])
        return _shape_specs(out, dtype)

    def _output_dtype(self, input_dtypes: list[str | None]) -> str:
        return self.compute_dtype

    @auto_config.mark_default
    def get_config(self) -> dict:
        """The constructor arguments (JSON-friendly); ``from_config`` rebuilds an equal, unbuilt layer."""
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                                  "dtype": dtype_policies.serialize(self.dtype_policy)}
        recorded = self.__dict__.get("_auto_config")
        if recorded is not None and auto_config.uses_default_config(self):
            config.update(recorded)
            if not auto_config.accepts_name(type(self)):
                config.pop("name")
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers_mod.serialize(self.activity_regularizer)
        if self._batch_input_shape is not None and type(self).__name__ != "InputLayer":
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def get_build_config(self) -> dict | None:
        return None if self._build_shapes is None else {"input_shape": self._build_shapes}

    def build_from_config(self, config: dict | None) -> None:
        if config and "input_shape" in config and not self.built:
            self._maybe_build(_as_structure(config["input_shape"]))

    # ------------------------------------------------------------ symbolic info
    @property
    def input(self) -> Any:
        """The input tensor(s) of the first call on symbolic tensors."""
        return self._node_attr("input")

    @property
    def output(self) -> Any:
        """The output tensor(s) of the first call on symbolic tensors."""
        return self._node_attr("output")

    def _node_attr(self, what: str) -> Any:
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has never been called on a symbolic tensor and thus has "
                                 f"no defined {what}.")
        node = self._inbound_nodes[0]
        if what == "output":
            return node.outputs
        return node.args[0] if node.args else node.input_tensors

    # ------------------------------------------------------------ calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args:
            # Keras binds the first argument of call() by its own name too (``layer(logits=x, targets=t)``).
            first = _first_call_argument(type(self).call)
            key = first if first in kwargs else "inputs" if "inputs" in kwargs else None
            if key is None:
                raise TypeError(f"Layer '{self.name}' must be called with its inputs as first argument "
                                f"({first or 'inputs'}=...). Received only keyword arguments {sorted(kwargs)}.")
            args = (kwargs.pop(key),)
        leaves = flatten((args, kwargs))
        if any(isinstance(t, KerasTensor) for t in leaves):
            return self._symbolic_call(args, kwargs)
        if any(isinstance(t, Value) for t in leaves):
            return self._traced_call(args, kwargs)
        if any(isinstance(t, (np.ndarray, np.generic)) for t in leaves):
            # Concrete arrays: run now (a compiled, cached program), or constants inside a trace.
            return eager_executor().call_layer(self, args, kwargs)
        raise TypeError(
            f"Layer '{self.name}' was called on {type(args[0]).__name__} values. Call layers on symbolic "
            "inputs (keras.Input(...)) to build models, or on numpy arrays to compute outputs now.")

    def _assert_input_compatibility(self, first: Any) -> None:
        if self.input_spec is None:
            return
        specs = self.input_spec if isinstance(self.input_spec, (list, tuple)) else [self.input_spec]
        tensors = [t for t in flatten(first) if isinstance(t, (KerasTensor, Value))]
        if len(specs) != len(tensors):
            raise ValueError(f'Layer "{self.name}" expects {len(specs)} input(s), but it received '
                             f"{len(tensors)} input tensors. Inputs received: {first!r}")
        for i, (spec, t) in enumerate(zip(specs, tensors)):
            if spec is not None:
                _check_spec(self, i, spec, _spec_of(t))

    def _maybe_build(self, shapes: Any, dtypes: Any = None) -> None:
        if self.built:
            return
        self._build_shapes = shapes
        self.build(shapes)
        self.built = True

    def _input_structure_specs(self, first: Any) -> tuple[Any, Any]:
        shapes = _spec_of(first) if isinstance(first, (KerasTensor, Value)) else map_structure(_spec_of, first)
        dtypes = _dtype_of(first) if isinstance(first, (KerasTensor, Value)) else map_structure(_dtype_of, first)
        return shapes, dtypes

    def _symbolic_call(self, args: tuple, kwargs: dict) -> Any:
        first = args[0]
        self._assert_input_compatibility(first)
        self._maybe_build(*self._input_structure_specs(first))
        self._assert_input_compatibility(first)
        cast_args, cast_kwargs = self._autocast_inputs(args, kwargs)   # the node keeps the original tensors
        spec = self.compute_output_spec(*cast_args, **cast_kwargs)
        outputs = map_structure(lambda t: KerasTensor(t.shape, t.dtype) if isinstance(t, KerasTensor) else t, spec)
        Node(self, args, dict(kwargs), outputs)
        return outputs

    def _call_accepts(self, arg: str, explicit: bool = False) -> bool:
        try:
            params = inspect.signature(self.call).parameters
        except (TypeError, ValueError):
            return False
        return arg in params or (not explicit and any(p.kind is p.VAR_KEYWORD for p in params.values()))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The output mask for an input ``mask`` (bool ``(batch, time)``): passed on if ``supports_masking``."""
        return mask if self.supports_masking else None

    def _traced_call(self, args: tuple, kwargs: dict) -> Any:
        ctx = current_trace()
        first = args[0]
        self._assert_input_compatibility(first)
        shapes, dtypes = self._input_structure_specs(first)
        self._maybe_build(shapes, dtypes)
        self._assert_input_compatibility(first)
        args, kwargs = self._autocast_inputs(args, kwargs)
        first = args[0]
        training = kwargs.get("training")
        if training is None:
            training = _training_stack[-1] if _training_stack else ctx.training
        kwargs = dict(kwargs)
        from .recurrent.masking import get_keras_mask, set_keras_mask  # the masks' side table

        in_values = [v for v in flatten(first) if isinstance(v, Value)]
        in_masks = [get_keras_mask(v) for v in in_values]
        previous_mask = None if all(m is None for m in in_masks) else (
            in_masks[0] if isinstance(first, Value) else in_masks)
        if previous_mask is not None and kwargs.get("mask") is None and self._call_accepts("mask", explicit=True):
            kwargs["mask"] = previous_mask  # Keras feeds the upstream mask to a call() that takes one
        if self._call_accepts("training"):
            kwargs["training"] = bool(training)
        else:
            kwargs.pop("training", None)
        b = ctx.b
        start = len(b.nodes)
        if not _training_stack:
            self._clear_losses()  # Keras: the outermost call starts a fresh list of add_loss values
        fallbacks = len(b.float32_fallbacks)
        _training_stack.append(bool(training))
        try:
            with autocast_scope(self._variable_autocast_dtype()):
                outputs = self.call(*args, **kwargs)
        finally:
            _training_stack.pop()
        _warn_float64_fallback(self, b, fallbacks)
        self._propagate_mask(first, outputs, previous_mask, set_keras_mask, get_keras_mask)
        _ops.fill_shapes(b, start)
        self._annotate_output_shapes(args[0], shapes, outputs)
        # What summary() shows for layers of subclassed models, which have no nodes.
        self._last_io_shapes = (flatten_shapes(shapes) if shapes is not None else [],
                                [_batchless(v) for v in flatten(outputs) if isinstance(v, Value)])
        # Regularization terms join every loss, evaluation included (Keras reports them in val_loss);
        # inference programs never read ctx.losses, so the clean-up pass drops them there.
        start = len(b.nodes)
        self._add_regularization(ctx, outputs)
        _ops.fill_shapes(b, start)
        return outputs

    def _propagate_mask(self, first: Any, outputs: Any, previous_mask: Any, set_mask: Any, get_mask: Any) -> None:
        out_values = [v for v in flatten(outputs) if isinstance(v, Value)]
        if not out_values or any(get_mask(v) is not None for v in out_values):
            return  # the layer attached its own output mask (recurrent layers, Masking)
        mask = self.compute_mask(first, previous_mask)
        if mask is None:
            return
        masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(out_values)
        for v, m in zip(out_values, masks):
            if isinstance(m, Value):
                set_mask(v, m)

    def _autocast_inputs(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Keras's input conversion: floating tensors anywhere in the call's arguments are cast to the compute
        dtype (when ``autocast``); onnxforge's own layers also cast integer tensors of the first argument
        (``_autocast``). Graph values get a Cast node; KerasTensors a spec of the new dtype."""
        compute = self.compute_dtype
        if "float" not in compute or not self._convert_input_args:
            return args, kwargs
        to = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(compute)) if compute != "bfloat16" \
            else onnx.TensorProto.BFLOAT16

        def cast_float(x: Any) -> Any:
            if isinstance(x, Value) and x.is_float and x.dtype != to:
                return _cast_keeping_mask(x, to)
            if isinstance(x, KerasTensor) and "float" in x.dtype and x.dtype != compute:
                return KerasTensor(x.shape, compute)
            return x

        def cast_int(x: Any) -> Any:
            if isinstance(x, Value) and x.dtype is not None and not x.is_float and x.dtype != onnx.TensorProto.STRING:
                return _cast_keeping_mask(x, to)
            if isinstance(x, KerasTensor) and "float" not in x.dtype and x.dtype != "string":
                return KerasTensor(x.shape, compute)
            return x

        if self.autocast:
            args, kwargs = map_structure(cast_float, args), map_structure(cast_float, kwargs)
        if self._autocast:
            args = (map_structure(cast_int, args[0]), *args[1:])
        return args, kwargs

    def _variable_autocast_dtype(self) -> str | None:
        """The dtype weights read in ``call`` are cast to: Keras's autocast scope rules (a mixed policy
        opens one; a layer with another compute dtype or without ``autocast`` replaces the outer one)."""
        current = autocast_dtype()
        if current is not None:
            if not self.autocast or "float" not in self.compute_dtype:
                return None
            return self.compute_dtype
        return self.compute_dtype if self.compute_dtype != self.variable_dtype else None

    def _annotate_output_shapes(self, first: Any, shapes: Any, outputs: Any) -> None:
        if type(self).compute_output_shape is Layer.compute_output_shape:
            return  # call() itself is the only description of the outputs
        batch: Any = "batch"
        for v in flatten(first):
            if isinstance(v, Value) and v.shape:
                batch = v.shape[0]
                break
        computed = self.compute_output_shape(shapes)
        computed = [computed] if is_shape(computed) else flatten_shapes(computed)
        values = [v for v in flatten(outputs) if isinstance(v, Value)]
        if len(values) != len(computed):
            return
        for v, s in zip(values, computed):
            if s is not None:
                v.shape = _ops.merge_shape(s, v.shape, batch)

    def _add_regularization(self, ctx: TraceContext, outputs: Any) -> None:
        done = _regularized.setdefault(ctx, set())
        for w in self._own_weights():
            if w.regularizer is not None and w.trainable and self.trainable and w.uid not in done:
                done.add(w.uid)
                ctx.add_loss(w.regularizer(ctx.read(w)))
        if self.activity_regularizer is not None:
            for v in flatten(outputs):
                if isinstance(v, Value):
                    b = v.builder
                    loss = self.activity_regularizer(v)
                    first = b.const(np.array(0, np.int64))
                    batch = b.op("Cast", [b.op("Gather", [b.op("Shape", [v]), first])], to=v.dtype, shape=())
                    ctx.add_loss(loss / batch)
                    self.__dict__.setdefault("_losses", []).append(ctx.losses[-1])

    def _spec_by_tracing(self, args: tuple, kwargs: dict) -> Any:
        """Output specs found by tracing ``call`` on a scratch graph and running ONNX shape inference."""
        b = GraphBuilder()
        ctx = TraceContext(b, training=False, weights="inputs",
                           random_uniform=lambda like: b.op("RandomUniformLike", [like], shape=like.shape))
        counter = iter(range(10**9))

        def to_value(t: Any) -> Any:
            if not isinstance(t, KerasTensor):
                return t
            k = next(counter)
            shape = tuple(("batch" if i == 0 else f"unk{k}_{i}") if d is None else d for i, d in enumerate(t.shape))
            elem = onnx.TensorProto.STRING if t.dtype == "string" else \
                onnx.helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype))
            return b.input(f"spec_input_{k}", elem, shape)

        with ctx.active():
            out = self._traced_call(map_structure(to_value, args), map_structure(to_value, kwargs))
        self._clear_losses()  # values of the scratch graph are no layer's losses
        values = [v for v in flatten(out) if isinstance(v, Value)]
        for v in values:
            b.output(v)
        inferred = {}
        try:
            model = b.to_model()
            model = onnx.shape_inference.infer_shapes(model, data_prop=True)
            for vi in model.graph.output:
                tt = vi.type.tensor_type
                dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim) \
                    if tt.HasField("shape") else None
                inferred[vi.name] = (dims, tt.elem_type)
        except Exception:  # inference is a help: fall back on what the layers annotated
            pass

        def to_spec(v: Any) -> Any:
            if not isinstance(v, Value):
                return v
            dims, elem = inferred.get(v.name, (None, None))
            shape = _ops.static_shape(v) if v.shape is not None else dims
            if shape is None:
                raise ValueError(f"Layer '{self.name}': could not infer the output shape of call(); implement "
                                 "compute_output_shape(input_shape).")
            if dims is not None and len(dims) == len(shape):
                shape = tuple(s if s is not None else d for s, d in zip(shape, dims))
            return KerasTensor(shape, standardize_dtype(v.dtype or elem or self.compute_dtype))

        return map_structure(to_spec, out)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


_float64_warned: set[tuple[str, str]] = set()
# builder -> indices into its float32_fallbacks already reported by an inner layer.
_fallbacks_claimed: weakref.WeakKeyDictionary[GraphBuilder, set[int]] = weakref.WeakKeyDictionary()


def _warn_float64_fallback(layer: Layer, b: GraphBuilder, start: int) -> None:
    """Say once per layer that some of its float64 ops run in float32 (onnxruntime has no float64 kernel).
    The innermost layer that emitted them speaks; the models around it stay quiet."""
    claimed = _fallbacks_claimed.setdefault(b, set())
    mine = [k for k in range(start, len(b.float32_fallbacks)) if k not in claimed]
    claimed.update(mine)
    ops = {b.float32_fallbacks[k][0] for k in mine if b.float32_fallbacks[k][1] == onnx.TensorProto.DOUBLE}
    new = sorted(op for op in ops if (layer.name, op) not in _float64_warned)
    if not new:
        return
    _float64_warned.update((layer.name, op) for op in new)
    import warnings

    warnings.warn(f"Layer '{layer.name}' ({type(layer).__name__}) computes in float64, but onnxruntime's CPU "
                  f"provider has no float64 kernel for {', '.join(new)}: onnxforge runs "
                  f"{'that op' if len(new) == 1 else 'those ops'} in float32 between Casts (their results, and "
                  "gradients, have float32 precision). The rest of the layer stays float64.", UserWarning,
                  stacklevel=4)


def _cast_keeping_mask(x: Value, to: int) -> Value:
    from .recurrent.masking import get_keras_mask, set_keras_mask  # the masks' side table

    y = x.builder.op("Cast", [x], to=to, shape=x.shape)
    mask = get_keras_mask(x)
    if mask is not None:
        set_keras_mask(y, mask)
    return y


def _batchless(v: Value) -> tuple | None:
    shape = _ops.static_shape(v)
    return None if shape is None else (None, *shape[1:]) if shape else shape


def _shape_specs(shapes: Any, dtype: str) -> Any:
    """KerasTensors for one shape (a tuple) or a (nested) list of shapes."""
    if is_shape(shapes):
        return KerasTensor(tuple(shapes), dtype)
    return [_shape_specs(s, dtype) for s in shapes]


def _as_structure(shape: Any) -> Any:
    """One shape stays a tuple; a list of shapes becomes a list of tuples."""
    if is_shape(shape):
        return tuple(shape)
    return [_as_structure(s) for s in shape]


def flatten_shapes(shapes: Any) -> list:
    if shapes is None or is_shape(shapes):
        return [tuple(shapes)]
    if isinstance(shapes, dict):
        return [s for k in sorted(shapes) for s in flatten_shapes(shapes[k])]
    return [s for item in shapes for s in flatten_shapes(item)]


@functools.lru_cache(maxsize=None)
def _first_call_argument(call: Any) -> str | None:
    """The name of ``call``'s first parameter after ``self`` (what Keras binds the inputs to)."""
    try:
        params = list(inspect.signature(call).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    first = params[0] if params else None
    if first is None or first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
        return None
    return first.name
