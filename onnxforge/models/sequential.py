"""``Sequential``: a linear stack of layers, built as a functional graph once its input shape is known."""
from __future__ import annotations

__all__ = ["Sequential"]

from typing import Any

from ..layers.base import Layer, auto_name
from .. import dtype_policies
from ..backend_config import floatx
from ..layers.input_layer import InputLayer
from ..layers.keras_tensor import KerasTensor, is_shape
from ..layers.layer_calling import _as_structure
from .model import Model


class Sequential(Model):
    """Layers applied one after the other.

    The input shape comes from an ``Input`` / ``InputLayer`` added first, from ``input_shape=`` on the
    first layer, from ``build(input_shape)``, or from the first call; until then the model is unbuilt.

    Example:
        >>> from onnxforge.models import Sequential
        >>> from onnxforge.layers import Dense
        >>> model = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(1)])
        >>> model.built, [layer.name for layer in model.layers] == [model.layers[0].name, model.layers[1].name]
        (True, True)
    """

    def __init__(self, layers: list | None = None, trainable: bool = True, name: str | None = None):
        super().__init__(trainable=trainable, name=name or auto_name("sequential"))
        self._seq: list[Layer] = []
        for layer in layers or []:
            self.add(layer, rebuild=False)
        if self._seq:
            self._maybe_rebuild()

    # ------------------------------------------------------------ stacking
    def add(self, layer: Any, rebuild: bool = True) -> None:
        """Append a layer (or an ``Input`` tensor, which sets the input shape)."""
        if isinstance(layer, KerasTensor) and isinstance(getattr(layer._keras_history, "layer", None), InputLayer):
            layer = layer._keras_history.layer
        if not isinstance(layer, Layer):
            raise TypeError("Only instances of `keras.Layer` can be added to a Sequential model. "
                            f"Received: {layer!r} (of type {type(layer).__name__})")
        if any(existing.name == layer.name for existing in self._seq):
            raise ValueError("All layers added to a Sequential model should have unique names. Name "
                             f"'{layer.name}' is already the name of a layer in this model. Update the `name` "
                             "argument to pass a unique name.")
        if isinstance(layer, InputLayer) and self._seq:
            if isinstance(self._seq[0], InputLayer):
                raise ValueError(f"Sequential model '{self.name}' has already been configured to use input shape "
                                 f"{self._seq[0].batch_shape}. You cannot add a different Input layer to it.")
            raise ValueError(f"Sequential model '{self.name}': an Input layer must come first.")
        if not self._seq and not isinstance(layer, InputLayer) and layer._batch_input_shape is not None:
            self._seq.append(InputLayer(batch_shape=layer._batch_input_shape))
        self._seq.append(layer)
        if rebuild:
            self._maybe_rebuild()
        else:
            self.built, self._graph = False, None

    def pop(self, rebuild: bool = True) -> Layer:
        """Remove and return the last layer."""
        if not self.layers:
            raise TypeError("There are no layers in the model.")
        layer = self._seq.pop()
        self.built, self._graph = False, None
        if rebuild:
            self._maybe_rebuild()
        return layer

    def _maybe_rebuild(self) -> None:
        self.built, self._graph = False, None
        first = self._seq[0] if self._seq else None
        if isinstance(first, InputLayer) and len(self._seq) > 1:
            self._build_graph(first.batch_shape, first.dtype)
        elif isinstance(first, Model) and first._graph is not None and len(first.inputs) == 1:
            self._build_graph(first.inputs[0].shape, first.inputs[0].dtype)

    def _build_graph(self, batch_shape: Any, dtype: Any) -> None:
        if not self._seq:
            raise ValueError(f"Sequential model {self.name} cannot be built because it has no layers. "
                             "Call `model.add(layer)`.")
        if not is_shape(batch_shape):
            raise ValueError(f"Sequential model {self.name} has exactly one input. Received: "
                             f"input_shape={batch_shape!r}")
        batch_shape = tuple(batch_shape)
        first = self._seq[0]
        if isinstance(first, InputLayer):
            if len(first.batch_shape) != len(batch_shape) or any(
                    a is not None and b is not None and a != b for a, b in zip(first.batch_shape[1:], batch_shape[1:])):
                raise ValueError(f"Sequential model '{self.name}' has already been configured to use input shape "
                                 f"{first.batch_shape}. Received: input_shape={batch_shape}")
        else:
            first = InputLayer(batch_shape=batch_shape, dtype=dtype)
            self._seq.insert(0, first)
        x = first.output
        for layer in self._seq[1:]:
            x = layer(x)
        self._init_graph(first.output, x)
        # Keras's Sequential runs its graph without checking the input against the shape it was built for:
        # one built by a first call on (batch, 7, 16) serves (1, 1, 16) later (a Transformer's feed-forward
        # block in a greedy decoding loop); its layers check what they need themselves.
        self.input_spec = None

    def build(self, input_shape: Any = None) -> None:
        """Build for ``input_shape`` (batch dim ``None``), or from the model's Input if it has one."""
        if input_shape is None:
            if self._seq and isinstance(self._seq[0], InputLayer):
                input_shape = self._seq[0].batch_shape
            else:
                raise ValueError(f"Sequential model {self.name!r}: you must provide an `input_shape` argument.")
        if self.built and self._graph is not None:
            current = self._graph.inputs[0].shape
            if len(current) == len(input_shape) and all(a is None or b is None or a == b
                                                        for a, b in zip(current[1:], tuple(input_shape)[1:])):
                return
            raise ValueError(f"Sequential model {self.name!r} is built for input shape {current}. "
                             f"Received: input_shape={tuple(input_shape)}")
        self._build_graph(input_shape, self._first_compute_dtype())

    def _maybe_build(self, shapes: Any, dtypes: Any = None) -> None:
        if self.built:
            return
        given = dtypes if isinstance(dtypes, str) else None
        self._build_graph(shapes, (given if given is not None and self._first_call_dtype(given) is None
                                   else self._first_compute_dtype()))

    def _first_call_dtype(self, given: str) -> str | None:
        """The dtype a first call's data of dtype ``given`` is cast to, ``None`` where it keeps its own.

        Keras builds the input in the first layer's compute dtype and casts the data to it, so uint8 images fed to
        ``Sequential([Resizing, Rescaling])`` are resized as float32. Integer ids fed to a layer that reads ids
        (Embedding, the lookups, CategoryEncoding) keep their type here: Keras casts them to float32 and back,
        which loses ids above 2**24 and would give the exported model a float input for ids. Text stays text.
        """
        numeric = given.startswith(("float", "bfloat", "int", "uint", "bool"))
        first = next((layer for layer in self._seq if not isinstance(layer, InputLayer)), None)
        if not numeric or (given.startswith(("int", "uint")) and getattr(first, "_reads_ids", False)):
            return None
        return self._first_compute_dtype()

    def _first_compute_dtype(self) -> str:
        first = next((layer for layer in self._seq if not isinstance(layer, InputLayer)), None)
        if getattr(first, "reads_strings", False):   # TextVectorization first: the model is fed text
            return "string"
        dtype = getattr(first, "compute_dtype", None)
        return dtype if isinstance(dtype, str) and "float" in dtype else floatx()

    # ------------------------------------------------------------ views
    @property
    def layers(self) -> list[Layer]:
        """The stacked layers (without the InputLayer)."""
        return [layer for layer in self._seq if not isinstance(layer, InputLayer)]

    def _flat_sublayers(self) -> list[Layer]:
        return self.layers

    def _require_built(self) -> None:
        if self._graph is None:
            raise ValueError(f"Sequential model {self.name!r} has not been built yet: give the first layer an "
                             "`input_shape`, add an `Input(...)`, or call `model.build(input_shape)`.")

    # ------------------------------------------------------------ config
    def get_config(self) -> dict:
        from ..layers.serialization import serialize

        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                                  "dtype": dtype_policies.serialize(self.dtype_policy),
                                  "layers": [serialize(layer) for layer in self._seq]}
        if self._graph is not None:
            config["build_input_shape"] = list(self._graph.inputs[0].shape)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        from ..layers.serialization import deserialize
        from .functional_config_check import layer_failure

        layers = config.get("layers", [])
        if not isinstance(layers, list):
            raise ValueError(f"Sequential config: 'layers' must be a list of serialized layers. Received: "
                             f"{str(layers)[:200]!r} ({type(layers).__name__})")
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for i, entry in enumerate(layers):
            try:
                layer = deserialize(entry, custom_objects)
            except (TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
                raise layer_failure(i, entry if isinstance(entry, dict) else {}, e, "Sequential") from None
            model.add(layer, rebuild=False)
        if model._seq:
            model._maybe_rebuild()
        if not model.built and config.get("build_input_shape"):
            model.build(_as_structure(config["build_input_shape"]))
        return model
