"""The pieces a ``FeatureSpace`` is made of, under the names and configs Keras 3 gives them: ``Feature`` (an
input's dtype, preprocessing layer and encoding), ``Cross`` (features crossed by hashing) and the two
pass-through layers ``TFDIdentity`` / ``TFDConcat``.

Example:
    >>> Cross(("a", "b"), crossing_dim=8).name
    'a_X_b'
"""
from __future__ import annotations

__all__ = ["Feature", "Cross", "TFDIdentity", "TFDConcat", "FEATURE_SPACE_MODULE", "serialized", "from_entry"]

from typing import Any

from ..graph import Value
from ..keras_objects import register_builtin_classes
from ..layers.base import Layer
from ..layers.serialization import deserialize, serialize

#: Where Keras 3 defines these classes (written into configs so that Keras finds them).
FEATURE_SPACE_MODULE = "keras.src.layers.preprocessing.feature_space"


def serialized(obj: Any) -> dict:
    """``obj`` (a Feature or Cross) as Keras's ``serialize_keras_object`` writes it."""
    return {"module": FEATURE_SPACE_MODULE, "class_name": type(obj).__name__, "config": obj.get_config(),
            "registered_name": type(obj).__name__}


def from_entry(entry: Any, kinds: tuple[type, ...], what: str) -> Any:
    """A Feature or Cross from its serialized entry (or the object itself)."""
    if isinstance(entry, kinds):
        return entry
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"Invalid {what}: expected a serialized {' or '.join(k.__name__ for k in kinds)} dict. "
                         f"Received: {entry!r}")
    cls = {k.__name__: k for k in kinds}.get(entry.get("class_name"))
    if cls is None:
        raise ValueError(f"Invalid {what}: unknown class {entry.get('class_name')!r}. Expected one of "
                         f"{[k.__name__ for k in kinds]}.")
    return cls.from_config(entry["config"])


class Cross:
    """Features crossed with ``HashedCrossing`` into ``crossing_dim`` bins (``FeatureSpace.cross``).

    Args:
        feature_names: the names of the crossed features.
        crossing_dim: the number of hash bins.
        output_mode: ``"one_hot"`` (default) or ``"int"``.
    """

    def __init__(self, feature_names: Any, crossing_dim: int, output_mode: str = "one_hot"):
        if output_mode not in {"int", "one_hot"}:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of {'int', 'one_hot'}. "
                             f"Received: output_mode={output_mode}")
        self.feature_names = tuple(feature_names)
        self.crossing_dim = crossing_dim
        self.output_mode = output_mode

    @property
    def name(self) -> str:
        """The names of the crossed features joined by ``_X_`` (the cross's output key)."""
        return "_X_".join(self.feature_names)

    def get_config(self) -> dict:
        return {"feature_names": self.feature_names, "crossing_dim": self.crossing_dim,
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config: dict) -> Cross:
        return cls(**config)


class Feature:
    """One input of a FeatureSpace: its ``dtype``, its ``preprocessor`` layer and its ``output_mode``
    (``"float"``, ``"int"`` or ``"one_hot"``).

    Args:
        dtype: the dtype of the feature's ``keras.Input``.
        preprocessor: a layer (or a serialized one).
        output_mode: how the preprocessed value is encoded.
    """

    def __init__(self, dtype: str, preprocessor: Any, output_mode: str):
        if output_mode not in {"int", "one_hot", "float"}:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of {'int', 'one_hot', "
                             f"'float'}}. Received: output_mode={output_mode}")
        self.dtype = dtype
        if isinstance(preprocessor, dict):
            preprocessor = deserialize(preprocessor)
        if not isinstance(preprocessor, Layer):
            raise TypeError(f"A feature's `preprocessor` must be a layer. Received: preprocessor={preprocessor!r}")
        self.preprocessor = preprocessor
        self.output_mode = output_mode

    def get_config(self) -> dict:
        return {"dtype": self.dtype, "preprocessor": serialize(self.preprocessor), "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config: dict) -> Feature:
        return cls(**config)


class TFDIdentity(Layer):
    """Passes its input through (the preprocessor of ``FeatureSpace.float`` features)."""

    _keras_module = FEATURE_SPACE_MODULE

    def call(self, x: Value) -> Value:
        return x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


class TFDConcat(Layer):
    """Concatenates a list of tensors along ``axis`` (the ``concat`` output of a FeatureSpace)."""

    _keras_module = FEATURE_SPACE_MODULE

    def __init__(self, axis: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, xs: list[Value]) -> Value:
        return xs[0].builder.op("Concat", list(xs), axis=self.axis % len(xs[0].shape))

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


register_builtin_classes({"TFDIdentity": TFDIdentity, "TFDConcat": TFDConcat})
