"""Keras 3 model <-> onnxforge model, through the Keras config and the weights.

onnxforge's layers mirror Keras 3's names, arguments and weight layouts, so a Keras ``Sequential`` or
functional model is rebuilt from its own config (``keras.saving.serialize_keras_object``) by
``onnxforge.layers.deserialize`` and its weights copied layer by layer with ``set_weights``. Arguments newer
Keras releases add with an inert default (``quantization_config=None``, ``renorm=False``,
``input_axes=None`` on initializers, ...) are dropped; anything else onnxforge does not implement is refused
up front, with one error naming every unsupported layer class and argument.

Any Keras backend can read the model (no TensorFlow needed): ``KERAS_BACKEND=torch`` works with the
PyTorch install the tests already use; ``numpy`` needs jax for some of its imports.

Example:
    >>> import os; os.environ.setdefault("KERAS_BACKEND", "torch")           # doctest: +SKIP
    >>> import keras                                                          # doctest: +SKIP
    >>> k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")])  # doctest: +SKIP
    >>> model = from_keras(k)                                                 # doctest: +SKIP
    >>> model.compile(optimizer="adam", loss="mse"); model.fit(x, y)         # doctest: +SKIP
    >>> k2 = to_keras(model)                                                  # doctest: +SKIP
"""
from __future__ import annotations

__all__ = ["from_keras", "to_keras", "keras_config_to_onnxforge", "UnsupportedKerasLayerError"]

import os
from typing import Any

import numpy as np

import onnxforge
from onnxforge.layers.serialization import deserialize, serialize
# The config conversion lives in onnxforge (``.keras`` files use it too); re-exported here for callers.
from onnxforge.saving.keras_format.config import (UnsupportedKerasLayerError, keras_config_to_onnxforge,
                                                  onnxforge_config_to_keras)
from onnxforge.saving.keras_format.config import _is_inert  # noqa: F401  (conformance tests read the rule)


def _keras():
    try:
        import keras  # noqa: F401  (the backend comes from KERAS_BACKEND)
    except ImportError as e:
        raise ImportError("from_keras() / to_keras() need Keras 3: `pip install keras` (any backend; "
                          "KERAS_BACKEND=torch or jax reads models without TensorFlow).") from e
    return keras


def _pairs(src: Any, dst: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, source layer, destination layer) for every layer holding weights, matched by name."""
    by_name = {layer.name: layer for layer in dst.layers}
    out = []
    for layer in src.layers:
        if not layer.weights:
            continue
        twin = by_name.get(layer.name)
        if twin is None:
            raise ValueError(f"Layer {path}{layer.name!r} has no counterpart in the rebuilt model "
                             f"(its layers: {sorted(by_name)}).")
        if hasattr(layer, "layers") and hasattr(twin, "layers") and not hasattr(layer, "cell"):
            out += _pairs(layer, twin, f"{path}{layer.name}/")
        else:
            out.append((f"{path}{layer.name}", layer, twin))
    return out


def _copy_weights(src: Any, dst: Any) -> None:
    for path, a, b in _pairs(src, dst):
        weights = [np.asarray(w) for w in a.get_weights()]
        expected = [tuple(w.shape) for w in b.weights]
        got = [tuple(w.shape) for w in weights]
        if got != expected:
            raise ValueError(f"Layer {path!r} ({type(a).__name__}): weight shapes {got} do not match the rebuilt "
                             f"layer's {expected}.")
        b.set_weights(weights)


def _copy_vocabularies(src: Any, dst: Any) -> None:
    """Adapted lookup vocabularies (StringLookup, IntegerLookup, TextVectorization) live outside Keras's
    config and weights: copy them by layer name, with their tf-idf weights."""
    by_name = {layer.name: layer for layer in dst.layers}
    for layer in src.layers:
        twin = by_name.get(layer.name)
        if hasattr(layer, "layers") and hasattr(twin, "layers"):
            _copy_vocabularies(layer, twin)
            continue
        if twin is None or not hasattr(layer, "get_vocabulary") or not hasattr(twin, "set_vocabulary"):
            continue
        vocab = [v.decode("utf-8") if isinstance(v, bytes) else v for v in layer.get_vocabulary()]
        lookup = getattr(layer, "_lookup_layer", layer)
        if len(vocab) <= lookup._token_start_index():
            continue  # nothing learned or set
        idf = None
        if getattr(lookup, "output_mode", None) == "tf_idf":
            idf = np.asarray(lookup.idf_weights_const)[: len(vocab)]
        twin.set_vocabulary(vocab, idf)


def from_keras(model_or_path: Any, custom_objects: dict | None = None) -> onnxforge.Model:
    """The same model in onnxforge: a Keras 3 ``Sequential`` or functional model (or a ``.keras`` file).

    Args:
        model_or_path: a ``keras.Model`` or a path loaded with ``keras.saving.load_model`` (Keras's safe mode
            stays on: no code in the file runs).
        custom_objects: onnxforge classes for custom layers, by Keras class name.

    Returns:
        An uncompiled ``onnxforge.Sequential`` / ``onnxforge.Model`` with the Keras model's layer names,
        configs and weights: ``predict`` gives the Keras model's predictions.

    Raises:
        UnsupportedKerasLayerError: naming every layer class / argument onnxforge lacks.
        TypeError: for subclassed Keras models (they have no config to rebuild from).
    """
    keras = _keras()
    kmodel = keras.saving.load_model(os.fspath(model_or_path)) if isinstance(model_or_path, (str, os.PathLike)) \
        else model_or_path
    if not isinstance(kmodel, keras.Model):
        raise TypeError(f"from_keras() expects a keras.Model or a path to a .keras file. Received: "
                        f"{type(model_or_path).__name__}")
    if not isinstance(kmodel, keras.Sequential) and type(kmodel).__name__ != "Functional":
        raise TypeError(f"from_keras(): {type(kmodel).__name__} is a subclassed Keras model, which has no config "
                        "to rebuild from. Convert Sequential or functional models, or export it to ONNX and use "
                        "onnxforge.Model.from_onnx.")
    # A live model's Lambda functions are this program's own code: rebuild them from their bytecode
    # (Keras itself refuses that for files, in safe mode, before we see them).
    from onnxforge.layers.safe_mode import SafeModeScope

    with SafeModeScope(safe_mode=isinstance(model_or_path, (str, os.PathLike))):
        entry = keras_config_to_onnxforge(keras.saving.serialize_keras_object(kmodel), custom_objects)
        model = deserialize(entry, custom_objects)
    _copy_weights(kmodel, model)
    _copy_vocabularies(kmodel, model)
    return model


def to_keras(model: Any) -> Any:
    """The same model in Keras 3 (needs ``keras`` installed): config and weights of an onnxforge
    ``Sequential`` / functional ``Model``.

    Raises:
        TypeError: for models Keras cannot rebuild (``from_onnx`` graphs, subclassed models).
    """
    keras = _keras()
    from onnxforge.models.onnx_model import OnnxModel

    if isinstance(model, OnnxModel) or getattr(model, "_graph", None) is None and \
            not isinstance(model, onnxforge.Sequential):
        raise TypeError(f"to_keras() converts onnxforge Sequential and functional models. Received: "
                        f"{type(model).__name__} {getattr(model, 'name', '')!r}")
    entry = onnxforge_config_to_keras(serialize(model))
    # The model is live in this process: its Lambda bytecode is the caller's own code (Keras refuses it by default).
    kmodel = keras.saving.deserialize_keras_object(entry, safe_mode=False)
    _copy_weights(model, kmodel)
    return kmodel
