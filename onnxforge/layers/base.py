"""The ``Layer`` base class: Keras 3's ``__init__`` / ``build`` / ``call`` / ``get_config`` contract.

A layer is called in one of three worlds:

* on ``KerasTensor``s (functional model construction): it builds its weights from the static input shape,
  validates the input, records a ``Node`` and returns KerasTensors with ``compute_output_shape`` shapes;
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
    >>> layer.build((None, 3)); [(w.name, w.path) for w in layer.weights]
    [('w', 'scale/w')]
"""
from __future__ import annotations

__all__ = ["Layer", "InputSpec", "clear_session", "auto_name", "to_snake_case"]

import collections
import contextlib
import functools
import inspect
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import dtype_policies
from .. import initializers as initializers_mod
from .. import regularizers as regularizers_mod
from ..constraints import check_constraint
from ..variables import Variable, unique_variables
from . import allocation, array_attributes, auto_config
from .host_inputs import wrap_compute_mask
from .input_spec import InputSpec
from .keras_tensor import Node, flatten, standardize_dtype
from .layer_calling import _BASE_KWARGS, CallingMixin, _as_structure
from .layer_losses import LossesMixin
from .layer_metrics import MetricsMixin
from .seed_state import VariablesMixin
from .stateless import StatelessCallMixin
from .variable_tracking import UNTRACKED, TrackedVariables, claim_name
from .weight_arguments import positional_weight_arguments

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


class Layer(CallingMixin, LossesMixin, MetricsMixin, StatelessCallMixin, VariablesMixin):
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
        wrap_compute_mask(cls)
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
                if self.__dict__.get("_build_shapes") is None and len(args) + len(kw) == 1:  # built by hand: Keras
                    self.__dict__["_build_shapes"] = (*args, *kw.values())[0]   # records the build config too
                    by_hand = getattr(self, "_built_by_hand", None)
                    if by_hand is not None:
                        by_hand(self.__dict__["_build_shapes"])
                elif self.__dict__.get("_build_shapes") is None and len(args) + len(kw) > 1:
                    # Keras records every build() argument given a shape by name: {"shapes_dict": {"query_shape":
                    # ..., "value_shape": ...}} (a MultiHeadAttention called without a key records no key_shape)
                    bound = inspect.signature(original).bind(self, *args, **kw).arguments
                    self.__dict__["_build_arguments"] = {k: v for k, v in list(bound.items())[1:] if v is not None}

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
        if name is not None and (not isinstance(name, str) or "/" in name):
            raise ValueError(f"Layer name must be a string without '/'. Received: name={name!r}")
        self.name = name if name is not None else auto_name(to_snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        try:
            self._dtype_policy = dtype_policies.get(dtype)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Layer {self.name!r}: {e} Received: dtype={dtype!r}") from None
        self.autocast = bool(autocast)
        self.activity_regularizer = regularizers_mod.get(activity_regularizer)
        self._tracker()  # kept if a subclass already assigned a Variable before calling this
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
    def __setattr__(self, name: str, value: Any) -> None:
        # Keras 3 tracks Variables assigned to attributes (alone or in containers) as the layer's weights, in
        # the order the layer first holds them; sub-layers are found when asked (``_flat_sublayers``).
        if name not in UNTRACKED and isinstance(value, (Variable, list, tuple, dict)):
            self._tracker().track(value, self)
        array_attributes.note_assignment(value)
        super().__setattr__(name, value)

    def _tracker(self) -> TrackedVariables:
        tracked = self.__dict__.get("_tracked")
        if tracked is None:
            tracked = self.__dict__["_tracked"] = TrackedVariables()
        return tracked

    def _synced_tracker(self) -> TrackedVariables:
        """The tracked variables, with those added to attribute containers since (``self.vs.append(v)``)."""
        tracked = self._tracker()
        tracked.sync(self)
        return tracked

    @property
    def _trainable_variables(self) -> list[Variable]:
        """Own trainable variables (``add_weight`` and attributes), in tracking order (Keras's list)."""
        return self._synced_tracker().trainable

    @property
    def _non_trainable_variables(self) -> list[Variable]:
        return self._synced_tracker().non_trainable

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
    @contextlib.contextmanager
    def _state_unlocked(self) -> Iterator[None]:
        """``add_weight`` on a built layer outside ``build`` (Keras's ``_tracker.unlock()``, as ``enable_lora``
        uses it): inside the block the layer counts as being built."""
        saved = {k: self.__dict__.get(k) for k in ("_build_depth", "_state_locked")}
        self.__dict__["_build_depth"], self.__dict__["_state_locked"] = 1, False
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    self.__dict__.pop(key, None)
                else:
                    self.__dict__[key] = value

    def add_weight(self, *args: Any, shape: Any = None, initializer: Any = None, name: str | None = None,
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
            constraint: projection the optimizer applies to the weight after each update (a name such as
                ``"non_neg"``, a ``constraints.Constraint`` or a callable), stored as ``variable.constraint``.
            autocast: under a mixed policy, whether ``call`` reads the weight cast to the compute dtype
                (Keras's ``autocast``; normalization layers keep their statistics in float32).
        """
        shape, initializer, dtype = positional_weight_arguments(args, shape, initializer, dtype)  # Keras's order
        if self.built and (not self.__dict__.get("_build_depth") or self.__dict__.get("_state_locked")):
            raise ValueError(f"Layer {self.name!r} is already built: cannot add weight {name!r}. All state must "
                             "be created in the `__init__()` method or in the `build()` method.")
        constraint = check_constraint(self.name, "constraint", constraint)
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
        wname = claim_name(self, name or "variable")
        # Frozen layer: the weight starts frozen (Keras: the layer's flag governs). Layer named '': no path prefix.
        variable = Variable(value, name=f"{self.name}/{wname}".lstrip("/"), trainable=bool(trainable) and
                            self._trainable, regularizer=regularizers_mod.get(regularizer), dtype=dtype,
                            autocast=autocast)
        variable.constraint = constraint
        self._tracker().add(variable, bool(trainable))
        variable._owned = True
        return variable

    add_variable = add_weight

    def _own_weights(self) -> list[Variable]:
        tracked = self._synced_tracker()
        return tracked.trainable + tracked.non_trainable

    @property
    def weights(self) -> list[Variable]:
        """Own weights (created trainable first, then non-trainable) then sub-layers', deduplicated."""
        return unique_variables(self._own_weights() + [w for layer in self._flat_sublayers() for w in layer.weights])

    @property
    def trainable_weights(self) -> list[Variable]:
        return [w for w in self.weights if w.trainable] if self.trainable else []

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [w for w in self.weights if not w.trainable] if self.trainable else self.weights

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

    def quantize(self, mode: Any = None, type_check: bool = True, config: Any = None) -> None:
        """Keras 3's in-place quantization: ``Dense``, ``EinsumDense`` and ``Embedding`` implement ``"int8"``
        (``layers/quantization.py``); other layers raise ``NotImplementedError`` as Keras's do (a model's
        ``quantize`` skips them with a warning)."""
        raise NotImplementedError(f"Layer {type(self).__name__} does not have a `quantize()` method implemented. "
                                  f"Received: mode={mode!r}")

    @property
    def quantization_mode(self) -> Any:
        """The layer's quantization mode (``"int8"`` once quantized), ``None`` otherwise."""
        return getattr(self.dtype_policy, "quantization_mode", None)

    # ------------------------------------------------------------ contract
    def build(self, input_shape: Any) -> None:
        """Create the weights for ``input_shape`` (batch dim ``None``). Override in layers with weights."""
        self.built = True

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Emit the layer's ops on graph ``Value``s (inside a trace). Override."""
        raise NotImplementedError(f"Layer {type(self).__name__} does not implement call().")

    @auto_config.mark_default
    def get_config(self) -> dict:
        """The constructor arguments (JSON-friendly); ``from_config`` rebuilds an equal, unbuilt layer."""
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                                  "dtype": dtype_policies.serialize(self.dtype_policy)}
        recorded = self.__dict__.get("_auto_config")
        if recorded is None and auto_config.uses_default_config(self) \
                and not type(self).__module__.startswith("onnxforge."):
            # Keras 3 raises here too, at save time: a config without the constructor's arguments would write a
            # file that cannot be loaded (keras.io's Switch Transformer block takes its feed-forward layer).
            raise NotImplementedError(
                f"Layer {type(self).__name__} was created by passing non-serializable argument values in "
                "`__init__()` (only strings, numbers, booleans, None and lists / dicts of them are recorded "
                "automatically), and therefore must override `get_config()` in order to be serializable.")
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

    def _keras_saved_variables(self) -> list:   # Dense & co. override it: Keras saves a fixed list for them
        return self._trainable_variables + self._non_trainable_variables

    def save_own_variables(self, store: Any) -> None:
        """Write this layer's variables into ``store`` as ``"0"``, ``"1"``... (Keras 3's ``.keras`` layout)."""
        for i, v in enumerate(self._keras_saved_variables()):
            store[str(i)] = v.numpy()

    def load_own_variables(self, store: Any) -> None:
        """Assign this layer's own variables from ``store`` (what ``save_own_variables`` wrote)."""
        if len(store.keys()) != len(own := self._keras_saved_variables()):
            raise ValueError(f"Layer '{self.name}' expected {len(own)} variables, but received {len(store.keys())} "
                             f"variables during loading. Expected: {[v.name for v in own]}")
        for i, v in enumerate(own):
            v.assign(store[str(i)])

    def get_build_config(self) -> dict | None:
        if self._build_shapes is None and self.__dict__.get("_build_arguments") is not None:
            return {"shapes_dict": dict(self.__dict__["_build_arguments"])}
        return None if self._build_shapes is None else {"input_shape": self._build_shapes}

    def build_from_config(self, config: dict | None) -> None:
        if config and "shapes_dict" in config and not self.built:
            if not isinstance(config["shapes_dict"], dict):
                raise TypeError(f"Layer {self.name!r}: build_config['shapes_dict'] must be a dict of build() "
                                f"arguments. Received: {type(config['shapes_dict']).__name__}")
            self.build(**config["shapes_dict"])
        if config and "input_shape" in config and not self.built:
            shape = _as_structure(config["input_shape"])
            if hasattr(type(self), "fit"):
                # A model's recorded shape carries the batch size of the call that built it (Keras 3 writes the
                # fit batch, (8, 4)); the rebuilt model takes any batch, as Keras's does.
                shape = _free_batch(shape)
            self._maybe_build(shape)

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
        if what == "output":   # Keras 3: the flat list of output tensors, one tensor unwrapped
            flat = flatten(node.outputs)
            return flat[0] if len(flat) == 1 else flat
        return node.args[0] if node.args else node.input_tensors

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _free_batch(shape: Any) -> Any:
    """``shape`` (one tuple or a list of them) with each leading dimension left open."""
    if isinstance(shape, tuple):
        return (None, *shape[1:]) if shape else shape
    return [_free_batch(s) for s in shape]
