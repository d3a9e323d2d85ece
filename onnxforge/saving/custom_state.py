"""What ``save`` / ``load_model`` need beyond ``model.optimizer``: custom-step models (a GAN's ``train_step``).

A model with its own ``train_step`` usually overrides ``compile`` too (``compile(d_optimizer, g_optimizer,
loss_fn)``), trains with several optimizers and draws noise from RNG state Variables. To resume it exactly
the file keeps:

* the custom ``compile`` arguments, read back from the attributes of the same name (``model.d_optimizer``):
  optimizers by config, Keras loss objects by ``onnxforge.losses.serialize``, plain JSON values as they
  are. Anything else (a bare function, a lambda) cannot be rebuilt without running code, so ``save``
  refuses it, naming the attribute;
* every optimizer's variables (step counter and slots) and the model weights it was built for (indices
  into ``model.weights``), so its slots are recreated in the same order before the values go back;
* every RNG state Variable (``model.rng_variables()``: the program RNG and each ``SeedGenerator``).

Example:
    >>> import onnxforge as of
    >>> model = of.Sequential([of.layers.Dense(1, input_shape=(2,))])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> custom_compile_config(model) is None      # the standard compile needs nothing extra
    True
"""
from __future__ import annotations

__all__ = ["custom_compile_config", "compile_custom", "optimizer_entries", "restore_optimizer",
           "seed_generator_variables", "attribute_of"]

import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

_BASE_ARGS = ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "seed")


def _base_compile() -> Callable[..., Any]:
    from ..trainer.mixin import TrainingMixin

    return TrainingMixin.compile


def attribute_of(model: Any, obj: Any) -> str | None:
    """The name of the attribute of ``model`` holding ``obj`` (``"d_optimizer"``), if any."""
    for key, value in vars(model).items():
        if value is obj:
            return key
    return None


# ------------------------------------------------------------------------------------------ compile
def _custom_params(model: Any) -> tuple[list[inspect.Parameter], bool, set[str]] | None:
    compile_fn = getattr(type(model), "compile", None)
    if compile_fn is None or compile_fn is _base_compile():
        return None
    params = list(inspect.signature(compile_fn).parameters.values())[1:]   # drop self
    base = set(inspect.signature(_base_compile()).parameters)
    own = [p for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in base]
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params)
    named_base = {p.name for p in params if p.name in base}
    return own, takes_kwargs, named_base


def _serialize_arg(model: Any, name: str, value: Any) -> dict[str, Any]:
    from .. import losses, optimizers

    if isinstance(value, optimizers.Optimizer):
        return {"optimizer": optimizers.serialize(value)}
    if _storable_loss(value):
        return {"loss": losses.serialize(value)}
    if value is None or isinstance(value, (str, bool, int, float)):
        return {"value": value}
    raise ValueError(
        f"save(): {type(model).__name__}.compile() takes `{name}`, held as the attribute `{name}` = {value!r}, "
        "which cannot be stored as data (only optimizers, Keras loss objects such as "
        "onnxforge.losses.BinaryCrossentropy(), strings and numbers can). Use a Keras loss object, or save "
        f"with model.save_weights() and compile the rebuilt model yourself. Received: {name}={value!r}")


def _storable_loss(value: Any) -> bool:
    """A Keras loss object whose class the loader has: a built-in one or a registered one (a bare
    ``LossFunctionWrapper`` wraps a function, which cannot be stored)."""
    from .. import losses
    from ..keras_objects import _REGISTERED_NAMES

    if not isinstance(value, losses.Loss) or type(value) is losses.LossFunctionWrapper:
        return False
    return type(value).__name__ in losses._CLASSES or type(value) in _REGISTERED_NAMES


def custom_compile_config(model: Any) -> dict[str, Any] | None:
    """The arguments of a ``compile`` override, read back from the model's attributes, as JSON data.

    Returns ``None`` when ``type(model).compile`` is onnxforge's own. Raises ``ValueError`` naming the
    attribute when one cannot be stored (suggesting ``save_weights``).
    """
    found = _custom_params(model)
    if found is None:
        return None
    own, takes_kwargs, named_base = found
    args: dict[str, Any] = {}
    for p in own:
        if p.name not in vars(model):
            if p.default is not p.empty:
                continue   # not kept on the model: the default is what compile gets again
            raise ValueError(
                f"save(): {type(model).__name__}.compile() takes `{p.name}` but the model has no attribute "
                f"`{p.name}` holding it, so it cannot be stored. Keep it as `self.{p.name}` in compile(), or save "
                "with model.save_weights() and compile the rebuilt model yourself.")
        args[p.name] = _serialize_arg(model, p.name, vars(model)[p.name])
    base = sorted(_BASE_ARGS if takes_kwargs else set(_BASE_ARGS) & named_base)
    return {"args": args, "base_args": base}


def _deserialize_arg(entry: Mapping[str, Any], custom_objects: Mapping[str, Any] | None) -> Any:
    from .. import losses, optimizers
    from .model_reading import _resolve_custom

    if "optimizer" in entry:
        return optimizers.deserialize(entry["optimizer"])
    if "loss" in entry:
        resolved = _resolve_custom(entry["loss"], custom_objects)
        return resolved if not isinstance(resolved, dict) else losses.get(resolved, "loss")
    return entry.get("value")


def compile_custom(model: Any, compile_config: Mapping[str, Any], custom: Mapping[str, Any],
                   custom_objects: Mapping[str, Any] | None) -> None:
    """Call the model's own ``compile`` with the stored arguments (fresh optimizers and losses)."""
    kwargs = {name: _deserialize_arg(entry, custom_objects) for name, entry in custom.get("args", {}).items()}
    for name in custom.get("base_args", []):
        if name not in compile_config:
            continue
        value = compile_config[name]
        if name == "optimizer" and isinstance(value, dict):
            from .. import optimizers

            value = optimizers.deserialize(value)
        kwargs[name] = value
    model.compile(**kwargs)


# ------------------------------------------------------------------------------------------ optimizers
def optimizer_entries(model: Any, store: Callable[[str, np.ndarray], str]) -> list[dict[str, Any]]:
    """Every optimizer held as an attribute other than ``model.optimizer``: attribute, built-for, tensors."""
    tracked = model.tracked_optimizers() if hasattr(model, "tracked_optimizers") else []
    out = []
    for opt in tracked:
        if opt is getattr(model, "optimizer", None):
            continue
        attr = attribute_of(model, opt)
        if attr is None:
            continue
        out.append({"attribute": attr, "built_for": built_for(model, opt),
                    "variables": [[v.path, store(v.path, v.numpy())] for v in opt.variables]})
    return out


def built_for(model: Any, opt: Any) -> list[int] | None:
    """Indices into ``model.weights`` of the variables ``opt`` has slots for, in slot-creation order."""
    index = {w.uid: k for k, w in enumerate(model.weights)}
    uids = list(getattr(opt, "_slots", {}))
    if any(u not in index for u in uids):
        return None   # it trains a Variable the model does not list: its slots cannot be rebuilt by index
    return [index[u] for u in uids]


def restore_optimizer(model: Any, opt: Any, indices: Sequence[int] | None, arrays: Sequence[np.ndarray],
                      what: str) -> bool:
    """Rebuild ``opt``'s slots for the stored weights, then assign its variables. False (warned) if they do
    not fit."""
    if indices is not None and not opt.built:
        weights = model.weights
        if all(0 <= i < len(weights) for i in indices):
            opt.build([weights[i] for i in indices])
    variables = opt.variables
    if len(arrays) == 1 and len(variables) >= 1:   # saved before it was built: its step only
        variables = variables[:1]
    if len(variables) != len(arrays) or any(tuple(v.shape) != a.shape for v, a in zip(variables, arrays)):
        warnings.warn(f"{what}: the saved state of optimizer {opt.name!r} ({len(arrays)} variables) does not fit "
                      f"the rebuilt optimizer ({len(variables)} variables); it starts fresh.", stacklevel=3)
        return False
    for var, array in zip(variables, arrays):
        var.assign(array)
    opt._step_mirror = None
    return True


# ------------------------------------------------------------------------------------------ RNG
def seed_generator_variables(model: Any) -> list[Any]:
    """``model.rng_variables()`` without the program RNG (``_rng_state``, stored on its own)."""
    if not hasattr(model, "rng_variables"):
        return []
    main = getattr(model, "_rng_state", None)
    return [v for v in model.rng_variables() if v is not main]
