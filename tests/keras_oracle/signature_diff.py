"""Call signatures and default configs of ``onnxforge.keras`` against real Keras 3 (torch backend).

For every public callable both sides name (classes through ``__init__``, functions, and the methods of
``keras.Model`` / ``keras.Layer``) it reports what a program written for Keras would hit:

- ``missing``: a named parameter Keras takes that ours does not name (``TypeError: unexpected keyword``, or a
  keyword silently swallowed by ``**kwargs``);
- ``positional``: Keras's positional parameters are not a prefix of ours (a positional call binds a different
  argument);
- ``default``: the same parameter with another default value (or required on our side only);
- ``required``: a parameter ours requires that Keras does not name.

``config_differences`` then builds classes with their defaults (plus the few required arguments in
``REQUIRED_ARGS``) on both sides and compares ``get_config()``.

Run it as a script for the whole report (needs no network)::

    KERAS_BACKEND=torch python tests/keras_oracle/signature_diff.py [module ...]
"""
from __future__ import annotations

import inspect
import math
import os
import sys
from typing import Any, Callable

os.environ.setdefault("KERAS_BACKEND", "torch")

#: The modules walked, in the order the report lists them.
MODULES = ("layers", "losses", "metrics", "optimizers", "optimizers.schedules", "callbacks", "initializers",
           "regularizers", "constraints", "activations", "ops", "random", "utils", "models")

#: The methods of ``keras.Model`` and ``keras.Layer`` compared.
MODEL_METHODS = ("compile", "fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch",
                 "save", "save_weights", "load_weights", "summary", "get_layer", "to_json", "get_config",
                 "export", "compute_loss", "compute_metrics", "train_step", "test_step", "predict_step",
                 "make_train_function", "get_compile_config", "compile_from_config", "stateless_call",
                 "set_weights", "get_weights", "build", "call", "__init__")
LAYER_METHODS = ("__init__", "__call__", "build", "call", "add_weight", "add_loss", "add_metric", "get_config",
                 "compute_output_shape", "compute_output_spec", "compute_mask", "set_weights", "get_weights",
                 "get_build_config", "build_from_config", "load_own_variables", "save_own_variables",
                 "stateless_call", "count_params", "quantize", "from_config", "rematerialized_call")

_MISSING = "<required>"


def _default(p: inspect.Parameter) -> Any:
    return _MISSING if p.default is inspect.Parameter.empty else p.default


def _same_default(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_default(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    if isinstance(a, type) or callable(a):   # a default class or function: same name is the same thing
        return getattr(a, "__name__", a) == getattr(b, "__name__", b)
    try:
        return bool(a == b)
    except Exception:   # arrays and other objects without a plain truth value
        return repr(a) == repr(b)


def _signature(obj: Any) -> inspect.Signature | None:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if inspect.isclass(obj) and params and params[0].name == "self":
        sig = sig.replace(parameters=params[1:])
    return sig


def _positional(sig: inspect.Signature) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.kind in kinds and p.name != "self"]


def _named(sig: inspect.Signature) -> dict[str, inspect.Parameter]:
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {n: p for n, p in sig.parameters.items() if p.kind not in variadic and n != "self"}


def _inherited(cls: type) -> dict[str, inspect.Parameter]:
    """The named parameters a class's ``**kwargs`` hands on: those of its bases' ``__init__`` (ours forward
    their ``**kwargs`` to ``super().__init__``)."""
    out: dict[str, inspect.Parameter] = {}
    for base in cls.__mro__[1:]:
        if base is object or "__init__" not in vars(base):
            continue
        sig = _signature(base)
        if sig is None:
            break
        out = {**_named(sig), **out}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return out


def signature_differences(theirs: Any, ours: Any) -> list[str]:
    """The differences a Keras program would hit calling ``ours`` the way it calls ``theirs``."""
    k_sig, f_sig = _signature(theirs), _signature(ours)
    if k_sig is None or f_sig is None:
        return []
    k_named, f_named = _named(k_sig), _named(f_sig)
    accepted = dict(f_named)
    if inspect.isclass(ours) and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in f_sig.parameters.values()):
        accepted = {**_inherited(ours), **f_named}
    out = [f"missing {n}={_default(p)!r}" for n, p in k_named.items() if n not in accepted]
    k_pos, f_pos = _positional(k_sig), _positional(f_sig)
    shared = [n for n in k_pos if n in accepted]
    # Keras's positional parameters must open ours in the same order; from the first one ours takes by
    # keyword only, a positional call fails (a TypeError, not a wrong binding).
    prefix = [n for n in shared if n in f_pos]
    cut = next((i for i, n in enumerate(shared) if n not in f_pos), len(shared))
    if f_pos[:len(prefix)] != prefix or shared[:cut] != prefix[:cut]:
        out.append(f"positional Keras {tuple(k_pos)} ours {tuple(f_pos)}")
    elif cut < len(shared):
        out.append(f"keyword-only from {shared[cut]!r} (Keras position {k_pos.index(shared[cut]) + 1})")
    for n in k_named.keys() & accepted.keys():
        kd, fd = _default(k_named[n]), _default(accepted[n])
        if not _same_default(kd, fd):
            out.append(f"default {n}: Keras {kd!r} ours {fd!r}")
    out += [f"required {n} (Keras has no such parameter)" for n, p in f_named.items()
            if n not in k_named and p.default is inspect.Parameter.empty]
    return sorted(out)


def _public(module: Any) -> dict[str, Any]:
    return {n: getattr(module, n) for n in dir(module) if not n.startswith("_")}


def _resolve(root: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


def module_differences(keras: Any, fkeras: Any, module: str) -> dict[str, list[str]]:
    """``{"module.Name": differences}`` for every callable both sides name in ``module``."""
    theirs, ours = _public(_resolve(keras, module)), _public(_resolve(fkeras, module))
    out = {}
    for name in sorted(theirs.keys() & ours.keys()):
        k, f = theirs[name], ours[name]
        if inspect.ismodule(k) or not callable(k) or not callable(f):
            continue
        diffs = signature_differences(k, f)
        if diffs:
            out[f"{module}.{name}"] = diffs
    return out


def method_differences(k_cls: type, f_cls: type, methods: tuple[str, ...], prefix: str) -> dict[str, list[str]]:
    """``{"Model.fit": differences}`` for the named methods both classes have."""
    out = {}
    for name in methods:
        k, f = getattr(k_cls, name, None), getattr(f_cls, name, None)
        if k is None:
            continue
        if f is None:
            out[f"{prefix}.{name}"] = ["method missing"]
            continue
        diffs = signature_differences(k, f)
        if diffs:
            out[f"{prefix}.{name}"] = diffs
    return out


def all_signature_differences(keras: Any, fkeras: Any, modules: tuple[str, ...] = MODULES) -> dict[str, list[str]]:
    """The whole signature report: each module of ``modules``, then Model's and Layer's methods."""
    out: dict[str, list[str]] = {}
    for module in modules:
        out.update(module_differences(keras, fkeras, module))
    out.update(method_differences(keras.Model, fkeras.Model, MODEL_METHODS, "Model"))
    out.update(method_differences(keras.Layer, fkeras.Layer, LAYER_METHODS, "Layer"))
    return out


# ------------------------------------------------------------------------------------------------- configs
def required_args(lib: Any) -> dict[str, dict[str, Any]]:
    """``{"module.Name": kwargs}``: the fewest arguments the classes compared by config need."""
    return {
        "optimizers.schedules.ExponentialDecay": dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
        "optimizers.schedules.InverseTimeDecay": dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
        "optimizers.schedules.PolynomialDecay": dict(initial_learning_rate=0.1, decay_steps=10),
        "optimizers.schedules.CosineDecay": dict(initial_learning_rate=0.1, decay_steps=10),
        "optimizers.schedules.CosineDecayRestarts": dict(initial_learning_rate=0.1, first_decay_steps=10),
        "optimizers.schedules.PiecewiseConstantDecay": dict(boundaries=[5], values=[0.1, 0.01]),
        "initializers.Constant": {}, "initializers.STFT": {},
        "regularizers.OrthogonalRegularizer": {},
        "constraints.MinMaxNorm": {},
    }


_IDENTITY_KEYS = {"name", "dtype", "module", "registered_name", "build_config"}
#: Modules whose classes Keras serializes with ``get_config``; layers, losses, metrics and optimizers have
#: their own default-config test in ``tests/test_keras_conformance.py``.
CONFIG_MODULES = ("optimizers.schedules", "initializers", "regularizers", "constraints")


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _IDENTITY_KEYS}
    if isinstance(value, tuple):
        return [_strip(v) for v in value]
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _config_diff(expected: Any, got: Any, where: str) -> list[str]:
    if isinstance(expected, dict) and isinstance(got, dict):
        out = [f"{where}.{k} only in Keras (= {expected[k]!r})" for k in expected if k not in got]
        out += [f"{where}.{k} only in onnxforge (= {got[k]!r})" for k in got if k not in expected]
        for k in sorted(expected.keys() & got.keys()):
            out += _config_diff(expected[k], got[k], f"{where}.{k}")
        return out
    if isinstance(expected, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return [] if math.isclose(expected, got, rel_tol=1e-6) else [f"{where}: Keras {expected!r}, ours {got!r}"]
    return [] if _same_default(expected, got) else [f"{where}: Keras {expected!r}, ours {got!r}"]


def config_differences(keras: Any, fkeras: Any, modules: tuple[str, ...] = CONFIG_MODULES) -> dict[str, list[str]]:
    """``{"module.Name": differences}`` between the default configs of the classes of ``modules``."""
    k_args, f_args = required_args(keras), required_args(fkeras)
    out = {}
    for module in modules:
        theirs, ours = _public(_resolve(keras, module)), _public(_resolve(fkeras, module))
        for name in sorted(theirs.keys() & ours.keys()):
            k, f, path = theirs[name], ours[name], f"{module}.{name}"
            if not (inspect.isclass(k) and inspect.isclass(f)) or inspect.isabstract(k):
                continue
            try:
                k_obj = k(**k_args.get(path, {}))
            except Exception:   # Keras itself needs arguments we do not list: not a default to compare
                continue
            if not hasattr(k_obj, "get_config"):
                continue
            try:
                got = _strip(f(**f_args.get(path, {})).get_config())
            except Exception as e:   # noqa: BLE001 - the report names the failure
                out[path] = [f"ours fails with the Keras arguments: {type(e).__name__}: {e}"]
                continue
            try:
                expected = _strip(k_obj.get_config())
            except NotImplementedError:
                continue
            diffs = _config_diff(expected, got, name)
            if diffs:
                out[path] = diffs
    return out


def _main(argv: list[str]) -> int:
    import keras
    import onnxforge.keras as fkeras
    modules = tuple(argv) or MODULES
    report: Callable[[dict[str, list[str]]], None] = lambda d: [print(f"{k}: {'; '.join(v)}") for k, v in d.items()]
    print("# signatures")
    report(all_signature_differences(keras, fkeras, modules))
    print("# configs")
    report(config_differences(keras, fkeras, tuple(m for m in CONFIG_MODULES if not argv or m in argv)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
