"""``keras.utils.FeatureSpace``: one object that preprocesses a dict of structured-data columns (numbers,
integer and string categories, crosses) into the features a model trains on, with Keras 3's semantics.

Each feature has a preprocessing layer (``Normalization``, ``Discretization``, ``IntegerLookup``,
``StringLookup``, ``Rescaling``, ...) that ``adapt()`` fits on a dataset of dicts; crosses hash pairs of
preprocessed categories with ``HashedCrossing``; categories are one-hot encoded with ``CategoryEncoding``;
``output_mode="concat"`` joins everything into one float vector per row, ``"dict"`` keeps them by name.

Called on a dict of arrays the FeatureSpace computes now (as in a ``Dataset.map``); its symbolic side
(``get_inputs()`` / ``get_encoded_features()``) builds the same layers into a functional model, which
compiles to ONNX. ``save("x.keras")`` writes the archive Keras writes (``keras.saving.load_model`` reads it,
and onnxforge reads Keras's).

Example:
    >>> import numpy as np
    >>> fs = FeatureSpace({"x": FeatureSpace.float_normalized(), "c": FeatureSpace.string_categorical()})
    >>> fs.adapt({"x": np.array([1.0, 3.0]), "c": np.array(["a", "b"])})
    >>> fs({"x": np.array([1.0, 3.0]), "c": np.array(["b", "z"])}).tolist()
    [[0.0, 1.0, 0.0, -1.0], [1.0, 0.0, 0.0, 1.0]]
"""
from __future__ import annotations

__all__ = ["FeatureSpace", "Feature", "Cross"]

import builtins
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..eager_tensor import as_eager
from ..keras_objects import register_builtin_classes
from ..layers import Input
from ..layers.base import Layer, auto_name
from ..layers.keras_tensor import KerasTensor, flatten
from ..layers.preprocessing import (CategoryEncoding, Discretization, HashedCrossing, Hashing, IntegerLookup,
                                    Normalization, Rescaling, StringLookup, TextVectorization)
from .dataset import Dataset
from .feature_parts import Cross, Feature, TFDConcat, TFDIdentity, from_entry, serialized

_BATCH = 32   # Keras batches a dataset of scalar rows by 32 for adapt()


def _host(value: Any) -> np.ndarray:
    array = np.asarray(value)
    return array.astype(object) if array.dtype.kind in "US" else array


class FeatureSpace(Layer):
    """Preprocesses a dict of structured-data features (Keras 3's ``keras.utils.FeatureSpace``).

    Args:
        features: ``{name: Feature or one of "float", "float_rescaled", "float_normalized",
            "float_discretized", "integer_categorical", "string_categorical", "integer_hashed",
            "string_hashed"}``.
        output_mode: ``"concat"`` (one float vector per row) or ``"dict"``.
        crosses: ``FeatureSpace.cross(...)`` objects or tuples of feature names (then ``crossing_dim`` bins).
        crossing_dim: bins of the crosses given as tuples.
        hashing_dim: bins of the ``"*_hashed"`` features given by name.
        num_discretization_bins: bins of ``"float_discretized"`` features given by name.

    Example:
        >>> import numpy as np
        >>> fs = FeatureSpace({"a": "integer_categorical", "b": "integer_categorical"}, crosses=[("a", "b")],
        ...                   crossing_dim=4, output_mode="dict")
        >>> fs.adapt({"a": np.array([1, 2]), "b": np.array([5, 5])})
        >>> sorted(fs({"a": np.array([1]), "b": np.array([5])}))
        ['a', 'a_X_b', 'b']
    """

    _keras_module = "keras.utils"

    # ------------------------------------------------------------------ feature helpers (Keras's classmethods)
    @classmethod
    def cross(cls, feature_names: Any, crossing_dim: int, output_mode: str = "one_hot") -> Cross:
        """Cross the named features into ``crossing_dim`` hash bins."""
        return Cross(feature_names, crossing_dim, output_mode=output_mode)

    @classmethod
    def feature(cls, dtype: str, preprocessor: Layer, output_mode: str) -> Feature:
        """A feature with your own ``preprocessor`` layer."""
        return Feature(dtype, preprocessor, output_mode)

    @classmethod
    def float(cls, name: str | None = None) -> Feature:
        """A float feature used as it is."""
        name = name or auto_name("float")
        return Feature("float32", TFDIdentity(dtype="float32", name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_rescaled(cls, scale: builtins.float = 1.0, offset: builtins.float = 0.0,
                       name: str | None = None) -> Feature:
        """A float feature mapped to ``x * scale + offset``."""
        name = name or auto_name("float_rescaled")
        return Feature("float32", Rescaling(scale=scale, offset=offset, name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_normalized(cls, name: str | None = None) -> Feature:
        """A float feature standardized with the mean and variance ``adapt()`` finds."""
        name = name or auto_name("float_normalized")
        return Feature("float32", Normalization(axis=-1, name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_discretized(cls, num_bins: int, bin_boundaries: Any = None, output_mode: str = "one_hot",
                          name: str | None = None) -> Feature:
        """A float feature bucketed into ``num_bins`` quantile bins (or by ``bin_boundaries``)."""
        name = name or auto_name("float_discretized")
        layer = Discretization(num_bins=num_bins, bin_boundaries=bin_boundaries, name=f"{name}_preprocessor")
        return Feature("float32", layer, output_mode)

    @classmethod
    def integer_categorical(cls, max_tokens: int | None = None, num_oov_indices: int = 1,
                            output_mode: str = "one_hot", name: str | None = None) -> Feature:
        """An integer category, indexed by the vocabulary ``adapt()`` finds."""
        name = name or auto_name("integer_categorical")
        layer = IntegerLookup(name=f"{name}_preprocessor", max_tokens=max_tokens, num_oov_indices=num_oov_indices)
        return Feature("int32", layer, output_mode)

    @classmethod
    def string_categorical(cls, max_tokens: int | None = None, num_oov_indices: int = 1,
                           output_mode: str = "one_hot", name: str | None = None) -> Feature:
        """A string category, indexed by the vocabulary ``adapt()`` finds."""
        name = name or auto_name("string_categorical")
        layer = StringLookup(name=f"{name}_preprocessor", max_tokens=max_tokens, num_oov_indices=num_oov_indices)
        return Feature("string", layer, output_mode)

    @classmethod
    def string_hashed(cls, num_bins: int, output_mode: str = "one_hot", name: str | None = None) -> Feature:
        """A string category hashed into bins by Keras's ``Hashing`` layer (on arrays: in the data pipeline)."""
        name = name or auto_name("string_hashed")
        return Feature("string", Hashing(name=f"{name}_preprocessor", num_bins=num_bins), output_mode)

    @classmethod
    def integer_hashed(cls, num_bins: int, output_mode: str = "one_hot", name: str | None = None) -> Feature:
        """An integer category hashed into bins by Keras's ``Hashing`` layer (on arrays: in the data pipeline)."""
        name = name or auto_name("integer_hashed")
        return Feature("int32", Hashing(name=f"{name}_preprocessor", num_bins=num_bins), output_mode)

    # ------------------------------------------------------------------ construction
    def __init__(self, features: dict, output_mode: str = "concat", crosses: Any = None, crossing_dim: int = 32,
                 hashing_dim: int = 32, num_discretization_bins: int = 32, name: str | None = None, **kwargs: Any):
        super().__init__(name=name, **kwargs)
        if not features:
            raise ValueError("The `features` argument cannot be None or empty.")
        if not isinstance(features, dict):
            raise TypeError(f"`features` must be a dict of feature names to features. Received: features={features!r}")
        self.crossing_dim, self.hashing_dim = crossing_dim, hashing_dim
        self.num_discretization_bins = num_discretization_bins
        self.features = {name: self._standardize_feature(name, value) for name, value in features.items()}
        self.crosses: list[Cross] = []
        for cross in crosses or []:
            if isinstance(cross, (Cross, dict)):
                self.crosses.append(from_entry(cross, (Cross,), "cross"))
                continue
            if not crossing_dim:
                raise ValueError("When specifying `crosses`, the argument `crossing_dim` (dimensionality of the "
                                 "crossing space) should be specified as well.")
            if isinstance(cross, str) or any(key not in features for key in cross):
                raise ValueError("All features referenced in the `crosses` argument should be present in the "
                                 f"`features` dict. Received unknown features: {cross}")
            self.crosses.append(Cross(cross, crossing_dim=crossing_dim))
        for cross in self.crosses:
            unknown = [key for key in cross.feature_names if key not in self.features]
            if unknown:
                raise ValueError("All features referenced in the `crosses` argument should be present in the "
                                 f"`features` dict. Received unknown features: {unknown}")
        self.crosses_by_name = {cross.name: cross for cross in self.crosses}
        if output_mode not in {"dict", "concat"}:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of {'dict', 'concat'}. "
                             f"Received: output_mode={output_mode}")
        self.output_mode = output_mode
        self.inputs = {name: Input(shape=(1,), dtype=f.dtype, name=name) for name, f in self.features.items()}
        self.preprocessors = {name: f.preprocessor for name, f in self.features.items()}
        self.encoded_features: Any = None
        self.crossers = {c.name: HashedCrossing(c.crossing_dim, name=c.name) for c in self.crosses}
        self.one_hot_encoders: dict[str, Layer] = {}
        self._is_adapted = False
        self.concat: Layer | None = None
        self._preprocessed_features_names: list[str] | None = None
        self._crossed_features_names: list[str] | None = None
        self._sublayers_built = False

    def _standardize_feature(self, name: str, feature: Any) -> Feature:
        if isinstance(feature, (Feature, dict)):
            return from_entry(feature, (Feature,), f"feature {name!r}")
        makers = {"float": lambda: self.float(name=name), "float_normalized": lambda: self.float_normalized(name=name),
                  "float_rescaled": lambda: self.float_rescaled(name=name),
                  "float_discretized": lambda: self.float_discretized(self.num_discretization_bins, name=name),
                  "integer_categorical": lambda: self.integer_categorical(name=name),
                  "string_categorical": lambda: self.string_categorical(name=name),
                  "integer_hashed": lambda: self.integer_hashed(self.hashing_dim, name=name),
                  "string_hashed": lambda: self.string_hashed(self.hashing_dim, name=name)}
        if not isinstance(feature, str) or feature not in makers:
            raise ValueError(f"Invalid feature type: {feature}")
        return makers[feature]()

    # ------------------------------------------------------------------ adapt
    def _list_adaptable_preprocessors(self) -> list[str]:
        names = []
        for name in self.features:
            layer = self.preprocessors[name]
            if isinstance(layer, Normalization) and layer.input_mean is not None:
                continue   # given statistics: nothing to learn
            if isinstance(layer, TextVectorization) and getattr(layer, "_has_input_vocabulary", False):
                continue
            if hasattr(layer, "adapt"):
                names.append(name)
        return names

    def adapt(self, dataset: Any) -> None:
        """Fit every adaptable preprocessor on its column of ``dataset``: a ``Dataset`` (or any iterable) of
        dicts, batched or not, or a dict of arrays / lists (one row per element)."""
        if isinstance(dataset, dict):
            dataset = Dataset.from_tensor_slices({k: _host(v) for k, v in dataset.items()})
        elif isinstance(dataset, (str, bytes)) or not hasattr(dataset, "__iter__"):
            raise ValueError("`adapt()` can only be called on a tf.data.Dataset or a dict of arrays/lists. "
                             f"Received instead: {dataset} (of type {type(dataset)})")
        for name in self._list_adaptable_preprocessors():
            self.preprocessors[name].adapt(_Column(dataset, name))
        self._is_adapted = True
        self.get_encoded_features()   # builds the encoders and the concatenation
        self.built = True
        self._sublayers_built = True

    # ------------------------------------------------------------------ symbolic side
    def get_inputs(self) -> dict[str, KerasTensor]:
        """The ``keras.Input`` of each feature (shape ``(None, 1)``), by name."""
        self._check_if_built()
        return self.inputs

    def get_encoded_features(self) -> Any:
        """The encoded features computed from ``get_inputs()`` (a KerasTensor, or a dict of them)."""
        self._check_if_adapted()
        if self.encoded_features is None:
            preprocessed = self._preprocess_features(self.inputs)
            self.encoded_features = self._merge_features(preprocessed, self._cross_features(preprocessed))
        return self.encoded_features

    def _preprocess_features(self, features: dict) -> dict:
        return {name: self.preprocessors[name](features[name]) for name in features}

    def _cross_features(self, features: dict) -> dict:
        return {c.name: self.crossers[c.name]([features[n] for n in c.feature_names]) for c in self.crosses}

    def _cardinality(self, name: str, layer: Any) -> int | None:
        if isinstance(layer, (IntegerLookup, StringLookup)):
            return layer.vocabulary_size()
        if isinstance(layer, CategoryEncoding):
            return layer.num_tokens
        if isinstance(layer, (Discretization, HashedCrossing, Hashing)):
            return layer.num_bins
        raise ValueError(f"Feature '{name}' has `output_mode='one_hot'`. However it isn't a standard feature and the "
                         "dimensionality of its output space is not known, thus it cannot be one-hot encoded. Try "
                         "using `output_mode='int'`.")

    def _build_encoders(self, names: list[str], values: list[Any]) -> None:
        """First pass (symbolic): the one-hot encoders and the concatenation, with Keras's checks."""
        specs = [self.features[n] for n in self._preprocessed_features_names] + \
            [self.crosses_by_name[n] for n in self._crossed_features_names]
        for name, value, spec in zip(names, values, specs):
            dtype = _dtype(value)
            if spec.output_mode == "one_hot":
                if not dtype.startswith("int"):
                    raise ValueError(f"Feature '{name}' has `output_mode='one_hot'`. Thus its preprocessor should "
                                     f"return an integer dtype. Instead it returns a {dtype} dtype.")
                layer = self.preprocessors.get(name) or self.crossers.get(name)
                cardinality = self._cardinality(name, layer)
                if cardinality is not None:
                    self.one_hot_encoders[name] = CategoryEncoding(num_tokens=cardinality, output_mode="multi_hot")
                    dtype = "float32"
            if self.output_mode == "concat" and (dtype.startswith("int") or dtype == "string"):
                raise ValueError(f"Cannot concatenate features because feature '{name}' has not been encoded (it "
                                 f"has dtype {dtype}). Consider using `output_mode='dict'`.")
        if self.output_mode == "concat":
            self.concat = TFDConcat(axis=-1)

    def _merge_features(self, preprocessed: dict, crossed: dict) -> Any:
        if not self._preprocessed_features_names:
            self._preprocessed_features_names = sorted(preprocessed)
            self._crossed_features_names = sorted(crossed)
        names = self._preprocessed_features_names + self._crossed_features_names
        values = [preprocessed[n] for n in self._preprocessed_features_names] + \
            [crossed[n] for n in self._crossed_features_names]
        if not self._sublayers_built and not self.one_hot_encoders and self.concat is None:
            self._build_encoders(names, values)
        encoded = {}
        for name, value in zip(names, values):
            encoder = self.one_hot_encoders.get(name)
            encoded[name] = encoder(value) if encoder is not None else value
        if self.output_mode == "dict":
            return encoded
        return self.concat([encoded[n] for n in names])

    def _check_if_adapted(self) -> None:
        if not self._is_adapted:
            if self._list_adaptable_preprocessors():
                raise ValueError("You need to call `.adapt(dataset)` on the FeatureSpace before you can start "
                                 "using it.")
            self._is_adapted = True

    def _check_if_built(self) -> None:
        if not self._sublayers_built:
            self._check_if_adapted()
            self.get_encoded_features()
            self._sublayers_built = True

    # ------------------------------------------------------------------ calling on data
    def __call__(self, data: Any) -> Any:
        """Preprocess ``data`` (a dict of arrays, lists or scalars; batched or one row) now; a dict of
        KerasTensors builds the layers into a functional model instead."""
        self._check_if_built()
        if not isinstance(data, dict):
            raise ValueError(f"A FeatureSpace can only be called with a dict. Received: data={data} (of type "
                             f"{type(data)}")
        missing = [name for name in self.features if name not in data]
        if missing:
            raise ValueError(f"The FeatureSpace's input dict lacks the features {missing}. Expected keys: "
                             f"{sorted(self.features)}. Received keys: {sorted(data)}")
        data = {name: data[name] for name in self.features}
        if any(isinstance(v, KerasTensor) for v in data.values()):
            preprocessed = self._preprocess_features(data)
            return self._merge_features(preprocessed, self._cross_features(preprocessed))
        arrays, rebatched = {}, False
        for name, value in data.items():
            x = _host(value)
            if x.ndim == 0:
                x, rebatched = x.reshape(1, 1), True
            elif x.ndim == 1:
                x = x[:, None]
            arrays[name] = self._as_input_dtype(name, x)
        preprocessed = {k: _host(v) for k, v in self._preprocess_features(arrays).items()}
        merged = self._merge_features(preprocessed, {k: _host(v) for k, v in self._cross_features(preprocessed).items()})
        if not rebatched:
            return merged
        if self.output_mode == "concat":
            return as_eager(np.squeeze(np.asarray(merged), axis=0))
        return {k: as_eager(np.squeeze(np.asarray(v), axis=0)) if np.ndim(v) == 2 and np.shape(v)[0] == 1 else v
                for k, v in merged.items()}

    def _as_input_dtype(self, name: str, x: np.ndarray) -> np.ndarray:
        """Floats for the float features (Keras's layers cast to their float32 compute dtype); other columns
        keep their own dtype, as tf.convert_to_tensor gives it."""
        wanted = self.features[name].dtype
        if wanted.startswith("float") and x.dtype.kind in "iufb":
            return x.astype(wanted)
        return x

    # ------------------------------------------------------------------ config and saving
    def get_config(self) -> dict:
        return {"features": {name: serialized(f) for name, f in self.features.items()},
                "output_mode": self.output_mode, "crosses": [serialized(c) for c in self.crosses],
                "crossing_dim": self.crossing_dim, "hashing_dim": self.hashing_dim,
                "num_discretization_bins": self.num_discretization_bins}

    @classmethod
    def from_config(cls, config: dict) -> FeatureSpace:
        return cls(**config)

    def get_build_config(self) -> dict:
        return {name: f.preprocessor.get_build_config() for name, f in self.features.items()}

    def build_from_config(self, config: dict | None) -> None:
        for name in (config or {}):
            if name not in self.features:
                raise ValueError(f"The FeatureSpace's build config names an unknown feature {name!r}. Expected "
                                 f"one of {sorted(self.features)}.")
            layer = self.features[name].preprocessor
            if not layer.built:
                layer.build_from_config(config[name])
        self._is_adapted = True

    def save(self, filepath: str | os.PathLike[str]) -> None:
        """Write the FeatureSpace (configuration and learned state) to a ``.keras`` archive, which
        ``keras.saving.load_model`` reads back (in Keras or onnxforge)."""
        if not os.fspath(filepath).endswith(".keras"):
            raise ValueError("The filename must end in `.keras`. Received: filepath=" + repr(os.fspath(filepath)))
        from ..saving.keras_format import save_keras
        save_keras(self, filepath)

    def save_own_variables(self, store: Any) -> None:
        return

    def load_own_variables(self, store: Any) -> None:
        return


def _dtype(value: Any) -> str:
    if isinstance(value, KerasTensor):
        return value.dtype
    first = flatten(value)[0] if isinstance(value, (list, tuple, dict)) else value
    array = np.asarray(first)
    return "string" if array.dtype.kind in "USO" else str(array.dtype)


class _Column:
    """One feature's column of a dataset of dicts, as batches of shape ``(batch, 1)`` (Keras's adapt feed:
    scalar rows batched by 32, rank-1 batches given a trailing axis). Re-iterable."""

    def __init__(self, dataset: Any, name: str):
        self.dataset, self.name = dataset, name

    def __iter__(self) -> Iterator[np.ndarray]:
        pending: list[np.ndarray] = []
        for element in self.dataset:
            if not isinstance(element, dict):
                raise ValueError("FeatureSpace.adapt() expects a dataset of dicts (feature name -> values), without "
                                 f"labels: map `lambda x, y: x` over it first. Received an element of type "
                                 f"{type(element).__name__}")
            if self.name not in element:
                raise ValueError(f"FeatureSpace.adapt(): the dataset has no feature {self.name!r}. Its keys: "
                                 f"{sorted(element)}")
            x = _host(element[self.name])
            if x.ndim == 0:
                pending.append(x)
                if len(pending) == _BATCH:
                    yield np.stack(pending)[:, None]
                    pending = []
                continue
            yield x[:, None] if x.ndim == 1 else x
        if pending:
            yield np.stack(pending)[:, None]


register_builtin_classes({"FeatureSpace": FeatureSpace})
