"""``compile()`` arguments in Keras 3's ``compile_config`` form, both ways.

Keras 3 stores what ``compile`` received: strings as they are, Keras objects serialized with their module
(``{"module": "keras.losses", "class_name": "Huber", "config": {...}}``), functions as
``{"class_name": "function", "config": "mean_squared_error"}``. onnxforge's ``get_compile_config`` has the
same shape without the modules (and a ``seed``, which Keras's ``compile`` does not take, so it is left out
of a ``.keras`` file).

Example:
    >>> to_keras_compile_config({"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1}},
    ...                          "loss": "mse", "loss_weights": None, "metrics": ["mae"],
    ...                          "weighted_metrics": None, "seed": 3})["optimizer"]["module"]
    'keras.optimizers'
    >>> from_keras_compile_config({"optimizer": {"module": "keras.optimizers", "class_name": "SGD",
    ...     "config": {"learning_rate": 0.1}, "registered_name": None}, "loss": "mse"})["optimizer"].learning_rate
    0.1
"""
from __future__ import annotations

__all__ = ["to_keras_compile_config", "from_keras_compile_config"]

import re
from collections.abc import Callable, Mapping
from typing import Any

from ... import losses as losses_module
from ... import metrics as metrics_module
from ... import optimizers as optimizers_module

_KERAS_DEFAULTS = {"run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}
#: tf.keras 2 optimizer settings about how the update runs, not what it computes.
_EXECUTION_ONLY = ("jit_compile", "is_legacy_optimizer")
_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'|not recognized: \{'(\w+)'")


# ------------------------------------------------------------------------------------------ to Keras
def _with_module(value: Any, module: str) -> Any:
    if isinstance(value, list):
        return [_with_module(v, module) for v in value]
    if isinstance(value, Mapping):
        if "class_name" in value and "config" in value:
            config = value["config"]
            if isinstance(config, Mapping) and isinstance(config.get("learning_rate"), Mapping):
                config = dict(config, learning_rate=_with_module(config["learning_rate"],
                                                                 "keras.optimizers.schedules"))
            return {"module": value.get("module", module), "class_name": value["class_name"], "config": config,
                    "registered_name": value.get("registered_name")}
        return {k: _with_module(v, module) for k, v in value.items()}
    return value


def to_keras_compile_config(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """onnxforge's ``get_compile_config()`` as Keras 3 writes ``compile_config`` (``None`` stays ``None``)."""
    if config is None:
        return None
    out = {"optimizer": _with_module(config.get("optimizer"), "keras.optimizers"),
           "loss": _with_module(config.get("loss"), "keras.losses"),
           "loss_weights": config.get("loss_weights"),
           "metrics": _with_module(config.get("metrics"), "keras.metrics"),
           "weighted_metrics": _with_module(config.get("weighted_metrics"), "keras.metrics")}
    out.update(_KERAS_DEFAULTS)
    return out


# ------------------------------------------------------------------------------------------ from Keras
def _inert(value: Any) -> bool:
    return value is None or value is False or value in ("float32", "sum_over_batch_size") or (
        isinstance(value, Mapping) and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"))


def _construct(factory: Callable[[Any], Any], entry: dict, what: str) -> Any:
    """``factory(entry)``, dropping config keys onnxforge does not take when their value changes nothing."""
    config = dict(entry.get("config") or {})
    for _ in range(len(config) + 1):
        try:
            return factory({"class_name": entry["class_name"], "config": config})
        except (TypeError, ValueError) as e:
            match = _UNEXPECTED.search(str(e))
            key = match and (match.group(1) or match.group(2))
            if not key or key not in config or not _inert(config[key]):
                raise ValueError(f"{what}: {entry['class_name']} with config {config} cannot be rebuilt by "
                                 f"onnxforge ({e})") from None
            del config[key]
    raise AssertionError("unreachable")


def _lookup(name: str, custom_objects: Mapping[str, Any] | None) -> Any:
    from ...keras_objects import _REGISTERED

    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in _REGISTERED:
        return _REGISTERED[name]
    short = {key.split(">", 1)[1]: cls for key, cls in _REGISTERED.items()}
    return short.get(name)


def _object(value: Any, kind: str, custom_objects: Mapping[str, Any] | None) -> Any:
    """One loss / metric entry of a Keras compile config as what onnxforge's ``compile`` takes."""
    if value is None or isinstance(value, (str, int, float, bool)):
        if isinstance(value, str):
            custom = _lookup(value, custom_objects)
            return custom if custom is not None else value
        return value
    if isinstance(value, list):
        return [_object(v, kind, custom_objects) for v in value]
    if not isinstance(value, Mapping):
        return value
    if "class_name" not in value:
        return {k: _object(v, kind, custom_objects) for k, v in value.items()}
    class_name = value["class_name"]
    if class_name == "__tuple__":
        return [_object(v, kind, custom_objects) for v in (value.get("config") or {}).get("value", [])]
    registered = value.get("registered_name")
    if class_name == "function":      # a function, by name: Keras's built-ins map to onnxforge's by the same name
        name = value.get("config")
        custom = _lookup(registered, custom_objects) if isinstance(registered, str) and registered != "function" \
            else None
        return custom or _lookup(str(name), custom_objects) or name
    custom = _lookup(registered, custom_objects) if isinstance(registered, str) else None
    custom = custom or _lookup(class_name, custom_objects)
    if isinstance(custom, type):
        return custom.from_config(dict(value.get("config") or {}))
    if custom is not None:
        return custom
    factory = losses_module.get if kind == "loss" else lambda e: metrics_module.get(e, kind)
    return _construct(factory, dict(value), f"compile_config[{kind!r}]")


def _optimizer(value: Any, custom_objects: Mapping[str, Any] | None) -> Any:
    if value is None or isinstance(value, str):
        return value
    entry = dict(value)
    config = {k: v for k, v in (entry.get("config") or {}).items() if k not in _EXECUTION_ONLY}
    schedule = config.get("learning_rate")
    if isinstance(schedule, Mapping) and "class_name" in schedule:
        config["learning_rate"] = {"class_name": schedule["class_name"], "config": schedule.get("config") or {}}
        # A schedule class of the user's (Keras's guide subclasses LearningRateSchedule), named in custom_objects
        # or registered, is rebuilt here: the optimizer's reader knows onnxforge's schedules only.
        names = [n for n in (schedule.get("registered_name"), schedule["class_name"]) if isinstance(n, str)]
        custom = next((c for c in (_lookup(n, custom_objects) for n in names) if isinstance(c, type)), None)
        if custom is not None:
            config["learning_rate"] = custom.from_config(dict(schedule.get("config") or {}))
    entry["config"] = config
    registered = entry.get("registered_name")
    custom = _lookup(registered, custom_objects) if isinstance(registered, str) else None
    custom = custom or _lookup(str(entry.get("class_name")), custom_objects)
    if isinstance(custom, type):
        return custom.from_config(config)
    return _construct(optimizers_module.deserialize, entry, "compile_config['optimizer']")


def from_keras_compile_config(config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None
                              ) -> dict[str, Any]:
    """Keyword arguments for onnxforge's ``model.compile`` from a Keras 3 ``compile_config``.

    Raises:
        ValueError: naming the entry onnxforge cannot rebuild (an unknown class, an unsupported argument).
    """
    return {"optimizer": _optimizer(config.get("optimizer"), custom_objects),
            "loss": _object(config.get("loss"), "loss", custom_objects),
            "loss_weights": config.get("loss_weights"),
            "metrics": _object(config.get("metrics"), "metrics", custom_objects),
            "weighted_metrics": _object(config.get("weighted_metrics"), "weighted_metrics", custom_objects)}
