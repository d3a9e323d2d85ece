"""``Wrapper`` (the base class of layers that wrap one layer) and ``Pipeline`` (preprocessing layers applied
in turn), as Keras 3's."""
from __future__ import annotations

__all__ = ["Wrapper", "Pipeline"]

from typing import Any

from .base import Layer


def _serialize(layer: Layer) -> dict:
    from .serialization import serialize

    return serialize(layer)


def _deserialize(config: Any, custom_objects: dict | None = None) -> Layer:
    if isinstance(config, Layer):
        return config
    from .serialization import deserialize

    return deserialize(config, custom_objects)


class Wrapper(Layer):
    """Base class for a layer that wraps another (``self.layer``), for custom wrappers to subclass.

    Example:
        >>> from onnxforge.layers import Dense, Input, Wrapper
        >>> class Twice(Wrapper):
        ...     def call(self, x):
        ...         return self.layer(self.layer(x))
        >>> Twice(Dense(3))(Input(shape=(3,))).shape
        (None, 3)
    """

    def __init__(self, layer: Layer, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError(f"Layer {layer} supplied to Wrapper isn't a supported layer type. Please ensure wrapped "
                             "layer is a valid Keras layer.")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer._maybe_build(input_shape)

    def get_config(self):
        return {**super().get_config(), "layer": _serialize(self.layer)}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Wrapper:
        config = dict(config)
        layer = _deserialize(config.pop("layer"), custom_objects)
        return cls(layer, **config)


class Pipeline(Layer):
    """Applies ``layers`` one after the other (a preprocessing chain, Keras 3's ``Pipeline``); each gets the
    call's ``training`` flag.

    Example:
        >>> from onnxforge.layers import Input, Pipeline, RandomFlip, Rescaling
        >>> Pipeline([Rescaling(1 / 255), RandomFlip()])(Input(shape=(4, 4, 3))).shape
        (None, 4, 4, 3)
    """

    def __init__(self, layers: list, name: str | None = None, **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self._pipeline_layers = list(layers)

    @property
    def layers(self) -> list:
        return list(self._pipeline_layers)

    def call(self, inputs, training=True):
        x = inputs
        for layer in self._pipeline_layers:
            x = layer(x, training=training) if layer._call_accepts("training") else layer(x)
        return x

    def get_config(self):
        return {"layers": [_serialize(layer) for layer in self._pipeline_layers], "name": self.name}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Pipeline:
        layers = config.get("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError("`Pipeline` config must contain a `layers` key mapping to a list of serialized layers. "
                             f"Received config with layers={layers}.")
        config = {**config, "layers": [_deserialize(x, custom_objects) for x in layers]}
        return cls(**config)
