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

import inspect
import json
import os
import re
from typing import Any

import numpy as np

import onnxforge
from onnxforge.layers.base import Layer
from onnxforge.layers.serialization import deserialize, get_registered_object, serialize

#: Arguments of Keras layers (and initializers) onnxforge does not take, with the value that makes them
#: inert; ``None`` / ``False`` are always inert. A callable decides from the whole config.
_INERT: dict[str, Any] = {
    "renorm_momentum": lambda cfg: not cfg.get("renorm"),   # only read when renorm=True
    "synchronized": False, "optional": False, "sparse": False, "ragged": False,
    "lora_rank": None, "lora_alpha": None, "quantization_config": None,
}


class UnsupportedKerasLayerError(NotImplementedError):
    """The Keras model uses layer classes or arguments onnxforge does not implement.

    Attributes:
        problems: one line per unsupported layer (its name, class and, where relevant, the argument).
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("from_keras(): onnxforge cannot rebuild this Keras model:\n  - " + "\n  - ".join(problems))


def _keras():
    try:
        import keras  # noqa: F401  (the backend comes from KERAS_BACKEND)
    except ImportError as e:
        raise ImportError("from_keras() / to_keras() need Keras 3: `pip install keras` (any backend; "
                          "KERAS_BACKEND=torch or jax reads models without TensorFlow).") from e
    return keras


_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def _drop_inert_arguments(cls: type, config: dict, owner: str, problems: list[str]) -> None:
    """Construct ``cls`` from ``config`` (unbuilt, cheap), dropping inert arguments it rejects, in place.

    Trying beats reading signatures: layers such as LSTM pass ``**kwargs`` on to their cell."""
    for _ in range(len(config) + 1):
        try:
            cls.from_config(dict(config)) if hasattr(cls, "from_config") else cls(**config)
            return
        except TypeError as e:
            match = _UNEXPECTED.search(str(e))
            if match is None or match.group(1) not in config:
                problems.append(f"{owner}: {e}")
                return
            key = match.group(1)
            if not _is_inert(key, config[key], config):
                problems.append(f"{owner}: argument {key}={config[key]!r} is not supported by onnxforge")
                return
            del config[key]
        except (ValueError, NotImplementedError) as e:
            problems.append(f"{owner}: {e}")
            return


def _drop_unused_call_kwargs(cls: type, config: dict) -> None:
    """Keras records call arguments such as ``mask=None`` in functional configs; drop the ``None`` ones a
    layer's ``call`` does not take (they change nothing)."""
    try:
        params = inspect.signature(cls.call).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    for node in config.get("inbound_nodes") or []:
        kwargs = node.get("kwargs") if isinstance(node, dict) else None
        if isinstance(kwargs, dict):
            for key in [k for k, v in kwargs.items() if v is None and k not in params]:
                del kwargs[key]


def _is_inert(key: str, value: Any, config: dict) -> bool:
    if value is None or value is False:
        return True
    rule = _INERT.get(key, ...)
    if callable(rule):
        return bool(rule(config))
    return rule is not ... and rule == value


def _object_class(entry: dict) -> type | None:
    """The onnxforge class a serialized Keras object names (initializers and regularizers)."""
    module = entry.get("module") or ""
    namespace = {"keras.initializers": onnxforge.initializers, "keras.regularizers": onnxforge.regularizers}.get(module)
    cls = getattr(namespace, entry.get("class_name", ""), None) if namespace is not None else None
    return cls if isinstance(cls, type) else None


def _clean(entry: dict, owner: str, problems: list[str], custom_objects: dict | None) -> None:
    """Make one serialized Keras object (layer, model, initializer, ...) readable by onnxforge, in place.

    Nested objects first, so a wrapper (Bidirectional) is tried with an already cleaned inner layer."""
    class_name = entry.get("class_name")
    module = entry.get("module") or ""
    config = entry.get("config")
    if not isinstance(config, dict):
        return
    is_model = module == "keras" and class_name in ("Sequential", "Functional", "Model")
    if module.startswith("keras.layers") or is_model:
        registered = entry.get("registered_name")
        cls = get_registered_object(registered if isinstance(registered, str) else class_name, custom_objects)
        if cls is None or not issubclass(cls, Layer):
            problems.append(f"layer {config.get('name', '?')!r}: class {class_name} (module {module}) has no "
                            "onnxforge counterpart")
            return
        owner = f"layer {config.get('name', '?')!r} ({class_name})"
    elif module.startswith("keras.constraints"):
        problems.append(f"{owner}: weight constraints are not supported ({class_name})")
        return
    else:
        cls = _object_class(entry)
    count = len(problems)
    for value in config.values():
        _walk(value, owner, problems, custom_objects)
    if cls is not None and not is_model and len(problems) == count:
        _drop_inert_arguments(cls, config, owner, problems)
    if cls is not None and "inbound_nodes" in entry:
        _drop_unused_call_kwargs(cls, entry)


def _walk(value: Any, owner: str, problems: list[str], custom_objects: dict | None) -> None:
    if isinstance(value, dict):
        if "class_name" in value and isinstance(value.get("config"), dict) and value.get("class_name") not in (
                "__keras_tensor__", "DTypePolicy", "FloatDTypePolicy"):
            _clean(value, owner, problems, custom_objects)
        else:
            for v in value.values():
                _walk(v, owner, problems, custom_objects)
    elif isinstance(value, list):
        for v in value:
            _walk(v, owner, problems, custom_objects)


def keras_config_to_onnxforge(entry: dict, custom_objects: dict | None = None) -> dict:
    """A serialized Keras model (``keras.saving.serialize_keras_object``) made readable by
    ``onnxforge.layers.deserialize``: inert new arguments dropped, tuples as lists.

    Raises:
        UnsupportedKerasLayerError: naming every unsupported layer class or argument at once.
    """
    entry = json.loads(json.dumps(entry, default=_jsonable))
    problems: list[str] = []
    _clean(entry, "model", problems, custom_objects)
    if problems:
        raise UnsupportedKerasLayerError(problems)
    return entry


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"from_keras(): the model's config holds a {type(value).__name__} ({value!r}), which is not "
                    "plain data.")


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


def _keras_modules(value: Any) -> None:
    """onnxforge writes functional models under module ``keras``; Keras looks them up where it defines them."""
    if isinstance(value, dict):
        if value.get("class_name") == "Functional" and value.get("module") == "keras":
            value["module"], value["registered_name"] = "keras.src.models.functional", "Functional"
        for v in value.values():
            _keras_modules(v)
    elif isinstance(value, list):
        for v in value:
            _keras_modules(v)


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
    entry = json.loads(json.dumps(serialize(model), default=_jsonable))
    _keras_modules(entry)
    # The model is live in this process: its Lambda bytecode is the caller's own code (Keras refuses it by default).
    kmodel = keras.saving.deserialize_keras_object(entry, safe_mode=False)
    _copy_weights(model, kmodel)
    return kmodel
