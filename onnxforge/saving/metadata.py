"""Reading a saved model's ``metadata_props`` as untrusted data: JSON with bounded nesting, and types checked.

Every value ``load_model`` / ``load_weights`` act on comes through here first. A failure is an
``OnnxLoadError`` that names the key (``onnxforge.saved_state``) and the entry inside it
(``optimizer[2]``), never a ``RecursionError``, ``TypeError`` or ``AttributeError`` from deeper code.

Example:
    >>> import onnx
    >>> m = onnx.ModelProto()
    >>> _ = m.metadata_props.add(key="onnxforge.saved_state", value="[]")
    >>> try:
    ...     saved_state(meta_dict(m, "demo.onnx"), "demo.onnx")
    ... except OnnxLoadError as e:
    ...     print(e.reason)
    metadata_props['onnxforge.saved_state'] must be a JSON object. Received: list
"""
from __future__ import annotations

__all__ = ["MAX_JSON_DEPTH", "meta_dict", "parse_json", "weight_names", "saved_state", "input_shapes"]

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import onnx

from ..graph import contract
from ..graph.untrusted import OnnxLoadError

#: Deeper JSON than this is refused: Keras configs nest a few levels per nested model, far below it,
#: and deeper values would exhaust the interpreter's stack in the code that walks them.
MAX_JSON_DEPTH = 256

_Path = str | os.PathLike[str]



def meta_dict(proto: onnx.ModelProto, path: _Path) -> dict[str, str]:
    """``metadata_props`` as a dict; an ``onnxforge.*`` key given twice is refused (which one counts?)."""
    out: dict[str, str] = {}
    for entry in proto.metadata_props:
        if entry.key in out and entry.key.startswith(contract.KEY_PREFIX):
            raise OnnxLoadError(path, f"metadata_props[{entry.key!r}] appears more than once", key=entry.key)
        out.setdefault(entry.key, entry.value)
    return out


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return True


def parse_json(meta: Mapping[str, str], key: str, path: _Path, kind: type | None = None) -> Any:
    """The JSON value of ``meta[key]`` (which must exist), nested at most ``MAX_JSON_DEPTH`` deep.

    Args:
        kind: ``dict`` or ``list`` to require that type at the top.
    """
    if key not in meta:
        raise OnnxLoadError(path, f"metadata_props[{key!r}] is missing", key=key)
    try:
        value = json.loads(meta[key])
    except RecursionError:
        raise OnnxLoadError(path, f"metadata_props[{key!r}] is JSON nested too deeply "
                            f"(over {MAX_JSON_DEPTH} levels)", key=key) from None
    except (ValueError, TypeError) as e:   # JSONDecodeError is a ValueError
        raise OnnxLoadError(path, f"metadata_props[{key!r}] is not valid JSON ({e})", key=key) from None
    if not _depth_ok(value, MAX_JSON_DEPTH):
        raise OnnxLoadError(path, f"metadata_props[{key!r}] is JSON nested too deeply (over {MAX_JSON_DEPTH} "
                            "levels)", key=key)
    if kind is not None and not isinstance(value, kind):
        what = "a JSON object" if kind is dict else "a JSON list"
        raise OnnxLoadError(path, f"metadata_props[{key!r}] must be {what}. Received: {type(value).__name__}",
                            key=key)
    return value


def weight_names(meta: Mapping[str, str], key: str, path: _Path, allow_null: bool = False) -> list[str | None]:
    """The initializer names listed under ``key`` (``onnxforge.weights``): strings, each once."""
    names = parse_json(meta, key, path, list)
    seen: set[str] = set()
    for k, name in enumerate(names):
        if name is None and allow_null:
            continue
        if not isinstance(name, str):
            raise OnnxLoadError(path, f"metadata_props[{key!r}][{k}] must be a tensor name (a string). Received: "
                                f"{name!r:.80}", key=key)
        if name in seen:
            raise OnnxLoadError(path, f"metadata_props[{key!r}] lists the tensor {name!r} twice", key=key)
        seen.add(name)
    return names


# ------------------------------------------------------------------------------------------ saved state
class _Checker:
    """Type checks that name the entry: ``onnxforge.saved_state: optimizer[2] must be ...``."""

    def __init__(self, path: _Path, key: str) -> None:
        self.path, self.key = path, key

    def fail(self, where: str, expected: str, value: Any) -> OnnxLoadError:
        return OnnxLoadError(self.path, f"metadata_props[{self.key!r}]: {where} must be {expected}. Received: "
                             f"{value!r:.100}", key=self.key)

    def is_int(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def name_pairs(self, value: Any, where: str) -> list[list[str]]:
        if not isinstance(value, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in value):
            raise self.fail(where, "a list of [variable name, tensor name] pairs", value)
        return value

    def indices(self, value: Any, where: str) -> list[int] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(self.is_int(i) and i >= 0 for i in value):
            raise self.fail(where, "null or a list of non-negative ints", value)
        return value

    def optional(self, value: Any, where: str, check: Callable[[Any], bool], expected: str) -> Any:
        if value is not None and not check(value):
            raise self.fail(where, f"null or {expected}", value)
        return value


def input_shapes(value: Any, c: _Checker) -> list[list[int | None]]:
    if not isinstance(value, list) or not all(
            isinstance(s, list) and len(s) <= 64 and all(d is None or (c.is_int(d) and d >= 0) for d in s)
            for s in value):
        raise c.fail("input_shapes", "a list of shapes (lists of non-negative ints or null)", value)
    return value


def saved_state(meta: Mapping[str, str], path: _Path) -> dict[str, Any]:
    """``onnxforge.saved_state`` (absent in old files: ``{}``), with every entry's type checked.

    Missing entries get their empty defaults; unknown entries are ignored (a later format may add some).
    """
    if contract.SAVED_STATE_KEY not in meta:
        return {"input_shapes": [], "optimizer": None, "optimizers": [], "seed_generators": [], "rng": None,
                "numpy_rng": None, "custom_compile": None, "optimizer_built_for": None}
    raw = parse_json(meta, contract.SAVED_STATE_KEY, path, dict)
    c = _Checker(path, contract.SAVED_STATE_KEY)
    state: dict[str, Any] = {
        "input_shapes": input_shapes(raw.get("input_shapes", []), c),
        "optimizer": None if raw.get("optimizer") is None else c.name_pairs(raw["optimizer"], "optimizer"),
        "optimizer_built_for": c.indices(raw.get("optimizer_built_for"), "optimizer_built_for"),
        "seed_generators": c.name_pairs(raw.get("seed_generators") or [], "seed_generators"),
        "rng": c.optional(raw.get("rng"), "rng", lambda v: isinstance(v, str), "a tensor name"),
    }
    optimizers = raw.get("optimizers") or []
    if not isinstance(optimizers, list):
        raise c.fail("optimizers", "a list of objects", optimizers)
    checked = []
    for k, entry in enumerate(optimizers):
        if not isinstance(entry, dict) or not isinstance(entry.get("attribute"), str):
            raise c.fail(f"optimizers[{k}]", 'an object with a string "attribute"', entry)
        checked.append({"attribute": entry["attribute"],
                        "built_for": c.indices(entry.get("built_for"), f"optimizers[{k}].built_for"),
                        "variables": c.name_pairs(entry.get("variables") or [], f"optimizers[{k}].variables")})
    state["optimizers"] = checked
    numpy_rng = raw.get("numpy_rng")
    parts = ("keys", "pos_has_gauss", "cached_gaussian")
    if numpy_rng is not None and not (isinstance(numpy_rng, dict) and set(numpy_rng) == set(parts)
                                      and all(isinstance(v, str) for v in numpy_rng.values())):
        raise c.fail("numpy_rng", f"null or an object mapping {list(parts)} to tensor names", numpy_rng)
    state["numpy_rng"] = numpy_rng
    custom = raw.get("custom_compile")
    if custom is not None:
        args = custom.get("args", {}) if isinstance(custom, dict) else None
        base = custom.get("base_args", []) if isinstance(custom, dict) else None
        if not isinstance(args, dict) or not all(
                isinstance(v, dict) and len(v) == 1 and next(iter(v)) in ("optimizer", "loss", "value")
                for v in args.values()):
            raise c.fail("custom_compile.args", 'an object of {"optimizer" | "loss" | "value": ...} entries', args)
        if not isinstance(base, list) or not all(isinstance(b, str) for b in base):
            raise c.fail("custom_compile.base_args", "a list of strings", base)
        for name, entry in args.items():
            value = entry.get("value")
            if "value" in entry and not (value is None or isinstance(value, (str, bool, int, float))):
                raise c.fail(f"custom_compile.args[{name!r}].value", "a string, number, boolean or null", value)
            if "optimizer" in entry and not isinstance(entry["optimizer"], dict):
                raise c.fail(f"custom_compile.args[{name!r}].optimizer", "an optimizer config object",
                             entry["optimizer"])
        custom = {"args": args, "base_args": base}
    state["custom_compile"] = custom
    return state
