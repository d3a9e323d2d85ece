"""``Model``: a functional graph of layers (``Model(inputs, outputs)``) or a subclass with its own ``call``.

A model is a layer (it can be called inside another model: GANs, encoders) with the training methods of
``TrainingMixin``. The compiler calls ``model.trace(values, training)`` inside a ``TraceContext`` to emit a
program's forward graph.

Example:
    >>> from onnxforge.models import Model
    >>> from onnxforge.layers import Input, Dense
    >>> x = Input(shape=(3,), name="x")
    >>> model = Model(x, Dense(2, name="out")(Dense(4)(x)), name="mlp")
    >>> model.input_names, model.output_names, model.count_params()
    (['x'], ['out'], 26)
"""
from __future__ import annotations

__all__ = ["Model"]

import warnings
from collections.abc import Callable
from typing import Any

from ..graph import Value, unique_name
from ..graph.folding import known_value
from ..graph.size_limits import size_limits
from ..layers import auto_config
from ..layers.base import InputSpec, Layer, auto_name, to_snake_case
from ..layers.input_layer import InputLayer
from ..layers.keras_tensor import KerasTensor, flatten, is_shape, standardize_dtype
from ..tracing import current_trace
from ..trainer import TrainingMixin
from ..trainer.replaced_weights import ReplacedWeightsMixin, drop_replaced_weights
from .saving_methods import SavingMixin
from .functional_graph import FunctionalGraph, deserialize_graph, detach_inputs, pack_as, serialize_graph


class Model(ReplacedWeightsMixin, TrainingMixin, SavingMixin, Layer):
    """A Keras 3 model.

    Functional: ``Model(inputs, outputs, name=None)`` where ``inputs`` / ``outputs`` are KerasTensors (or
    lists of them). Subclassed: ``class M(Model)`` creating layers in ``__init__`` and using them in
    ``call(inputs, training=None)``; it is built on first use or by ``build(input_shape)``.
    """

    _autocast = False  # each layer casts for itself (an Embedding wants its integer input)

    @property
    def _convert_input_args(self) -> bool:
        # Keras: a functional model feeds its inputs to its layers as they come (each layer casts for
        # itself); a subclassed model is a layer and autocasts its floating inputs.
        return getattr(self, "_graph", None) is None

    def __init__(self, *args: Any, **kwargs: Any):
        inputs = kwargs.pop("inputs", None)
        outputs = kwargs.pop("outputs", None)
        if len(args) == 1 and args[0] is self:
            # TensorFlow's text-generation tutorial subclasses with ``super().__init__(self)``, which tf.keras 2
            # ignored; the model itself is never a functional input, so dropping it changes nothing else.
            args = ()
        if len(args) > 2:
            raise TypeError(f"Model() takes at most 2 positional arguments (inputs, outputs). Received {len(args)}.")
        if args:
            inputs = args[0]
        if len(args) > 1:
            outputs = args[1]
        if (inputs is None) != (outputs is None):
            raise ValueError("A functional Model needs both `inputs` and `outputs`. "
                             f"Received: inputs={inputs!r}, outputs={outputs!r}")
        if kwargs.get("name") is None:
            prefix = "functional" if type(self) is Model else to_snake_case(type(self).__name__)
            kwargs["name"] = auto_name(prefix)
        self._graph: FunctionalGraph | None = None
        self._input_specs: Any = None   # subclassed models: KerasTensor specs of the inputs once built
        self._output_specs: Any = None
        super().__init__(**kwargs)
        if inputs is not None:
            self._init_graph(inputs, outputs)

    # ------------------------------------------------------------ functional graph
    def _init_graph(self, inputs: Any, outputs: Any) -> None:
        for what, struct in (("inputs", inputs), ("outputs", outputs)):
            if isinstance(struct, dict) and not all(isinstance(k, str) for k in struct):
                raise ValueError(f"Model {self.name!r}: the keys of a dict of {what} must be strings. "
                                 f"Received keys: {list(struct)}")
        if isinstance(inputs, dict):
            for key, t in inputs.items():
                if isinstance(t, KerasTensor) and t.name != key:
                    warnings.warn(f"When providing `inputs` as a dict, all keys in the dict must match the names of "
                                  f"the corresponding tensors. Received key {key!r} mapping to value {t!r} which "
                                  f"has name {t.name!r}. Change the tensor name to {key!r} (via `Input(..., "
                                  f"name={key!r})`)", stacklevel=3)
        self._inputs_struct = list(inputs) if isinstance(inputs, tuple) else inputs
        # A tuple of outputs stays a tuple: Keras 3 returns it as such from call() and predict().
        self._outputs_struct = outputs
        for arg, value in (("inputs", self._inputs_struct), ("outputs", self._outputs_struct)):
            if not flatten(value):   # Keras 3 refuses these too: a model of nothing cannot be traced or run
                raise ValueError(f"`{arg}` argument cannot be empty. Received:\ninputs={inputs!r}\n"
                                 f"outputs={outputs!r}")
        self._inputs_struct, self._outputs_struct = detach_inputs(self._inputs_struct, self._outputs_struct)
        self._graph = FunctionalGraph(flatten(self._inputs_struct), flatten(self._outputs_struct), self.name)
        names: dict[str, int] = {}
        for layer in self._graph.layers:
            names[layer.name] = names.get(layer.name, 0) + 1
        for name, count in names.items():
            if count > 1:
                raise ValueError(f'The name "{name}" is used {count} times in the model {self.name!r}. '
                                 "All layer names should be unique.")
        # Keras names each spec after its Input, or after its key when the inputs are a flat dict (whose keys,
        # sorted as the graph's inputs are, then take a called dict's values, whatever the Inputs are named).
        struct = self._inputs_struct
        keys = (sorted(struct) if isinstance(struct, dict) and all(isinstance(t, KerasTensor) for t in struct.values())
                else None)
        self.input_spec = [InputSpec(shape=(None, *t.shape[1:]) if t.shape else t.shape, allow_last_axis_squeeze=True,
                                     name=keys[i] if keys else t.name) for i, t in enumerate(self._graph.inputs)]
        self.built = True

    def _flat_sublayers(self) -> list[Layer]:
        tracked = super()._flat_sublayers()
        if self._graph is None:
            return tracked
        graph_layers = [layer for layer in self._graph.layers if not isinstance(layer, InputLayer)]
        return graph_layers + [layer for layer in tracked if all(layer is not g for g in graph_layers)]

    @property
    def layers(self) -> list[Layer]:
        """Functional: every layer of the graph, InputLayers included, in Keras order (operators such as
        ``a + b`` are graph nodes but not layers, as in Keras); subclassed: the layers assigned as attributes."""
        if self._graph is not None:
            from ..layers.operators import OpCall, TensorOperator

            return [layer for layer in self._graph.layers if not isinstance(layer, (TensorOperator, OpCall))]
        return self._flat_sublayers()

    def quantize(self, mode: Any = None, config: Any = None, filters: Any = None, **kwargs: Any) -> None:
        """Keras 3's ``model.quantize("int8")`` / ``("int4")`` of the Dense, EinsumDense and Embedding layers that
        ``filters`` (a regex, a list of them, a callable on the layer) selects (``layers/quantization.py``)."""
        type_check = kwargs.pop("type_check", True)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        from ..layers.quantization import quantize_model

        quantize_model(self, mode, config, filters, type_check)
        drop_replaced_weights(self)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by ``name`` or by position ``index`` in ``layers``."""
        if name is not None and index is not None:
            raise ValueError(f"Provide only a layer name or a layer index. Received: index={index}, name={name}.")
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only has "
                                 f"{len(layers)} layers.")
            return layers[index]
        if name is not None:
            for layer in layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in layers]}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    # ------------------------------------------------------------ inputs / outputs
    def _require_built(self) -> None:
        if self._graph is None and self._input_specs is None:
            raise ValueError(f"Model {self.name!r} has no defined inputs yet: build it first with "
                             "`model.build(input_shape)` (or call it on an Input).")

    @property
    def inputs(self) -> list[KerasTensor]:
        """The input KerasTensors (``.shape``, ``.dtype``, ``.name``), as a flat list."""
        self._require_built()
        if self._graph is not None:
            return list(self._graph.inputs)
        return flatten(self._input_specs)

    @property
    def outputs(self) -> list[KerasTensor]:
        """The output KerasTensors, as a flat list."""
        self._require_built()
        if self._graph is not None:
            return list(self._graph.outputs)
        if self._output_specs is None:
            self._output_specs = self._spec_by_tracing((self._input_specs,), {})
        return [t for t in flatten(self._output_specs) if isinstance(t, KerasTensor)]

    @property
    def input(self) -> Any:
        if self._graph is not None and isinstance(self._inputs_struct, dict):
            return dict(self._inputs_struct)   # Keras 3 gives a dict-input model's inputs back as the dict
        inputs = self.inputs
        return inputs[0] if len(inputs) == 1 else inputs

    @property
    def output(self) -> Any:
        if self._graph is not None:   # Keras 3: the structure given as ``outputs`` (``[o]`` stays a list)
            struct = self._outputs_struct
            return dict(struct) if isinstance(struct, dict) else list(struct) if isinstance(struct, list) else struct
        outputs = self.outputs
        return outputs[0] if len(outputs) == 1 else outputs

    @property
    def input_shape(self) -> Any:
        """The input's shape tuple (``(None, 8)``), or a list of them for several inputs, as in Keras."""
        return self._io_shapes("inputs")

    @property
    def output_shape(self) -> Any:
        """The output's shape tuple, or a list of them for several outputs (dict outputs flatten by key)."""
        return self._io_shapes("outputs")

    def _io_shapes(self, which: str) -> Any:
        try:
            tensors = getattr(self, which)
        except ValueError as e:   # unbuilt: an AttributeError, as in Keras, so hasattr() answers False
            raise AttributeError(str(e)) from None
        shapes = [tuple(t.shape) for t in tensors]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def input_names(self) -> list[str]:
        """The names data is matched by (and the inference graph's input names): the dict keys of a model
        built on a dict of inputs (in sorted order, as the inputs flatten), else the input tensors' names."""
        if self._graph is not None and isinstance(self._inputs_struct, dict):
            return sorted(self._inputs_struct)
        return [t.name for t in self.inputs]

    @property
    def output_keys(self) -> list[str]:
        """The names ``compile()``, ``fit()`` and ``predict()`` key outputs by: the dict keys (sorted) of a model
        built with a dict of outputs, else ``output_names``. Logs are prefixed with them (``"x_loss"``)."""
        if self._graph is not None and isinstance(self._outputs_struct, dict):
            return sorted(self._outputs_struct)
        return self.output_names

    @property
    def output_names(self) -> list[str]:
        """Names of the layers producing the outputs (Keras style), made unique with ``_1``, ``_2``..."""
        names: list[str] = []
        taken: set[str] = set()
        for k, t in enumerate(self.outputs):
            base = t._keras_history.layer.name if t._keras_history is not None else ("output" if k == 0 else
                                                                                     f"output_{k}")
            names.append(unique_name(base, taken))
        return names

    def _pack_outputs(self, outputs: list) -> Any:
        """``predict``'s result, shaped as Keras 3 shapes it: a functional model's like what calling it returns
        (its ``outputs`` structure, nested lists, tuples and dicts kept, one level of a single item unwrapped);
        a subclassed model's like what its ``call`` returned when traced."""
        if self._graph is not None:
            return _unpack_singleton(pack_as(self._outputs_struct, outputs))
        specs = self.__dict__.get("_output_specs")
        if specs is not None and not isinstance(specs, KerasTensor) and len(flatten(specs)) == len(outputs) \
                and all(isinstance(t, KerasTensor) for t in flatten(specs)):
            return pack_as(specs, outputs)
        return outputs[0] if len(outputs) == 1 else outputs

    # ------------------------------------------------------------ building
    def build(self, input_shape: Any = None) -> None:
        """Create the weights of a subclassed model for ``input_shape`` (a shape or a list of shapes, batch
        dim ``None``). Functional models are built at construction."""
        if self._graph is not None:
            self.built = True
            return
        if input_shape is None:
            raise ValueError(f"Model {self.name!r}: build() needs an input_shape.")
        if self._input_specs is None:
            self._record_input_specs(input_shape, None)
        _attach_known_values(self._input_specs, self.__dict__.get("_build_inputs"))
        # get_build_config() reports it: a saved subclassed model is rebuilt (its weights created) from it.
        self._build_shapes = input_shape
        self.built = True
        # Tracing call() once on a scratch graph creates every sub-layer's weights (Keras does this too).
        self._output_specs = self._spec_by_tracing((self._input_specs,), {})

    def _record_input_specs(self, shapes: Any, dtypes: Any) -> None:
        if isinstance(shapes, dict):
            # A dict of inputs (``fit({"inputs": ..., "targets": ...})``): call() receives the same dict.
            dtypes = dtypes if isinstance(dtypes, dict) else {}
            self._input_specs = {k: KerasTensor(tuple(v), standardize_dtype(dtypes.get(k)), name=k)
                                 for k, v in shapes.items()}
            return
        if is_shape(shapes):
            dtype = dtypes if isinstance(dtypes, str) else None
            self._input_specs = KerasTensor(tuple(shapes), standardize_dtype(dtype), name="input")
            return
        dtypes = dtypes if isinstance(dtypes, (list, tuple)) else [None] * len(shapes)
        self._input_specs = [KerasTensor(tuple(s), standardize_dtype(d), name="input" if k == 0 else f"input_{k}")
                             for k, (s, d) in enumerate(zip(shapes, dtypes))]

    def _built_by_hand(self, input_shape: Any) -> None:
        """A subclassed model whose own build() ran on ``model.build(shape)``: its inputs are that shape (Keras
        then fits it on arrays of it; keras.io's TensorFlow-NumPy model builds its weights this way)."""
        if self._graph is None and self._input_specs is None and input_shape is not None:
            self._record_input_specs(input_shape, None)

    def _maybe_build(self, shapes: Any, dtypes: Any = None) -> None:
        if self.built:
            return
        self._record_input_specs(shapes, dtypes)
        self._build_shapes = shapes
        self.build(shapes)
        self.built = True

    # ------------------------------------------------------------ calling
    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        """Functional models evaluate their graph; subclasses override this."""
        if self._graph is None:
            raise NotImplementedError(f"Model {type(self).__name__} has no graph: a subclassed model must "
                                      "implement call().")
        def call_node(node: Any, args: tuple, kwargs: dict) -> Any:
            # Keras 3: the model's own `training` (when given) replaces a value recorded in a node's call,
            # such as the `training=True` default that preprocessing layers write into configs.
            if training is not None and "training" in kwargs:
                kwargs = {**kwargs, "training": training}
            return node.layer(*args, **kwargs)

        values = self._graph.run(self._adjust_input_rank(flatten(self._standardize_inputs(inputs))), call_node)
        return _unpack_singleton(self._restructure(values))   # Keras 3: Model(i, [o])(x) is one tensor

    def _standardize_inputs(self, inputs: Any) -> Any:
        """A dict given to a model built on a list (or one tensor) of inputs: its values by input name, as
        Keras's functional ``_standardize_inputs`` does (flattening the dict would order them by key)."""
        if not isinstance(inputs, dict) or isinstance(self._inputs_struct, dict):
            return inputs
        names = [t.name for t in self._graph.inputs]
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ValueError(f"Model {self.name!r}: the structure of `inputs` doesn't match the expected structure. "
                             f"A dict of inputs needs a key per input name {names}; missing {missing}. "
                             f"Received keys: {sorted(inputs)}")
        return [inputs[n] for n in names]

    def _adjust_input_rank(self, flat: list) -> list:
        """Keras's functional rule: an input one rank short of an ``Input`` whose last axis is 1 gets that
        axis (``(n, 28, 28)`` into ``Input((28, 28, 1))``), one extra trailing axis of size 1 is squeezed."""
        from .. import ops

        adjusted = []
        for x, ref in zip(flat, self._graph.inputs):
            shape = _shape_of(x)
            if shape is None or len(shape) == len(ref.shape):
                adjusted.append(x)
            elif len(shape) == len(ref.shape) + 1 and shape[-1] == 1:
                adjusted.append(ops.squeeze(x, axis=-1))
            elif len(shape) == len(ref.shape) - 1 and ref.shape[-1] == 1:
                adjusted.append(ops.expand_dims(x, axis=-1))
            else:
                raise ValueError(f"Invalid input shape for input {x!r} with name {ref.name!r} of model "
                                 f"{self.name!r}. Expected shape {ref.shape}, but input has incompatible shape "
                                 f"{tuple(shape)}")
        return adjusted

    def _restructure(self, flat: list) -> Any:
        return pack_as(self._outputs_struct, flat)

    def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
        if self._graph is None:
            return super().compute_output_spec(*args, **kwargs)
        specs = self._graph.run(self._adjust_input_rank(flatten(self._standardize_inputs(args[0]))),
                                lambda node, a, k: node.layer.compute_output_spec(*a, **k))
        return self._restructure(specs)

    def trace(self, inputs: list[Value], training: bool) -> list[Value]:
        """Emit the model's forward graph on ``inputs`` inside the active ``TraceContext``.

        Args:
            inputs: one graph value per model input, in ``inputs`` order.
            training: the Keras training flag for this program (Dropout, BatchNormalization).

        Returns:
            One graph value per model output, in ``outputs`` order.
        """
        ctx = current_trace()  # fail early, with the trace's own message, outside a compilation
        inputs = list(inputs)
        if self._graph is not None and len(inputs) != len(self._graph.inputs):
            raise ValueError(f"Model {self.name!r} expects {len(self._graph.inputs)} input(s) "
                             f"({self.input_names}), but trace() received {len(inputs)}.")
        flag = {"training": training}
        unspecified = getattr(ctx, "training_unspecified", False)
        if self._graph is None and not self._call_accepts("training", explicit=True):
            # Keras 3's steps call a model whose call() does not name `training` as `self(x)`: its layers run
            # at their own defaults (Dropout off, BatchNormalization on its moving statistics) in fit too.
            flag, ctx.training_unspecified = {}, True
        try:
            with size_limits(getattr(self, "_size_limits", None)):   # set by loaders of untrusted files
                if self._graph is None and isinstance(self._input_specs, dict):
                    out = self(pack_as(self._input_specs, inputs), **flag)
                else:
                    out = self(inputs[0] if len(inputs) == 1 else inputs, **flag)
        finally:
            ctx.training_unspecified = unspecified
        return [v for v in flatten(out) if isinstance(v, Value)]

    def _count_flops(self, input_shapes: list, output_shapes: list) -> int | None:
        from .summary import layer_flops

        if self._graph is None:
            return None
        total = 0
        for node in self._graph.nodes():
            if node.is_input:
                continue
            flops = layer_flops(node.layer, [t.shape for t in node.input_tensors],
                                [t.shape for t in node.output_tensors])
            if flops is None:
                return None
            total += flops
        return total

    # ------------------------------------------------------------ reporting
    def summary(self, line_length: int | None = None, positions: Any = None,
                print_fn: Callable[[str], Any] | None = None, expand_nested: bool = False,
                show_trainable: bool = False, layer_range: Any = None) -> None:
        """Print Keras's summary table, with a FLOPs column (per example, inference). Keras's positional
        order; ``line_length`` and ``positions`` (column widths) are accepted, the table sizes itself."""
        from .summary import print_summary

        if layer_range is not None:
            raise NotImplementedError(f"Model {self.name!r}: summary(layer_range=...) is not supported by "
                                      f"onnxforge. Received: layer_range={layer_range!r}")

        print_summary(self, print_fn)

    # ------------------------------------------------------------ config
    @auto_config.mark_default
    def get_config(self) -> dict:
        if self._graph is None:
            # Keras 3: a subclassed model's base config (for its own get_config() to extend), or the
            # constructor arguments recorded when they are plain values.
            if auto_config.uses_default_config(self) and self.__dict__.get("_auto_config") is None:
                raise NotImplementedError(f"Model {type(self).__name__} is a subclassed model created with "
                                          "non-serializable constructor arguments: implement get_config() (and "
                                          "from_config() if needed) to serialize it.")
            return Layer.get_config(self)
        return {"name": self.name, "trainable": self.trainable,
                **serialize_graph(self._graph, self._inputs_struct, self._outputs_struct)}

    @classmethod
    def from_onnx(cls, model: Any, trainable: list[str] | None = None, inputs: list[str] | None = None,
                  outputs: list[str] | None = None, training_mode: bool = False, name: str | None = None) -> Model:
        """Wrap an ONNX inference graph (proto, bytes or path) as a trainable model; see
        ``onnxforge.models.onnx_model.from_onnx``.

        Example:
            >>> model = Model.from_onnx("resnet.onnx", trainable=["fc.weight", "fc.bias"])  # doctest: +SKIP
        """
        from .onnx_model import from_onnx

        return from_onnx(model, trainable=trainable, inputs=inputs, outputs=outputs, training_mode=training_mode,
                         name=name)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Model:
        if "layers" in config and "input_layers" in config:
            inputs, outputs = deserialize_graph(config, custom_objects)
            model = cls(inputs=inputs, outputs=outputs, name=config.get("name"))
            if config.get("trainable") is False:
                model.trainable = False
            return model
        return cls(**config)


def _shape_of(x: Any) -> tuple | None:
    if isinstance(x, KerasTensor):
        return tuple(x.shape)
    if isinstance(x, Value):
        from ..graph.emit import static_shape

        return static_shape(x)
    shape = getattr(x, "shape", None)
    return None if shape is None else tuple(shape)


def _attach_known_values(specs: Any, inputs: Any) -> None:
    """Marks each input spec whose build-time input is a constant (``self([self.node_states, self.edges])`` in
    a custom ``train_step``) with its array: TensorFlow builds such a model on the values, and a call() that
    sizes its output from them (``num_segments=tf.reduce_max(edges[:, 0]) + 1``) needs them to be traced."""
    if inputs is None:
        return
    spec_leaves, input_leaves = flatten(specs), flatten(inputs)
    if len(spec_leaves) != len(input_leaves):
        return
    for spec, value in zip(spec_leaves, input_leaves):
        if isinstance(spec, KerasTensor) and isinstance(value, Value):
            spec._known_value = known_value(value)


def _unpack_singleton(x: Any) -> Any:
    """A one-item list or tuple as its item (Keras's ``functional.unpack_singleton``), anything else as is."""
    return x[0] if isinstance(x, (list, tuple)) and len(x) == 1 else x
