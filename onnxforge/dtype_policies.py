"""Dtype policies (``keras.DTypePolicy``, ``keras.mixed_precision``): a layer's variable and compute dtypes.

A policy named after a dtype (``"float32"``, ``"float64"``) computes and stores weights in that dtype.
``"mixed_float16"`` / ``"mixed_bfloat16"`` keep float32 weights (the master copy the optimizer updates)
and compute in float16 / bfloat16: a layer casts its floating inputs to the compute dtype and reads its
weights through a Cast, so in the compiled graph the gradient flows back through the Cast to the float32
weights. The global policy is what layers created without ``dtype=`` get; ``compile`` wraps the optimizer
in a ``LossScaleOptimizer`` when the model's policy is ``"mixed_float16"``, as Keras does.

Example:
    >>> policy = DTypePolicy("mixed_float16")
    >>> policy.compute_dtype, policy.variable_dtype
    ('float16', 'float32')
    >>> serialize(policy)["config"]
    {'name': 'mixed_float16'}
    >>> get({"class_name": "DTypePolicy", "config": {"name": "float64"}})
    <DTypePolicy "float64">
"""
from __future__ import annotations

__all__ = ["DTypePolicy", "FloatDTypePolicy", "QuantizedDTypePolicy", "QuantizedFloat8DTypePolicy", "Int4DTypePolicy",
           "GPTQDTypePolicy", "AWQDTypePolicy", "DTypePolicyMap", "QUANTIZATION_MODES", "Policy", "get", "serialize", "deserialize", "set_dtype_policy",
           "dtype_policy", "set_global_policy", "global_policy"]

from typing import Any

import numpy as np

from . import backend_config

#: Keras 3's quantization modes (``layer.quantize(mode)``); onnxforge computes ``"int8"`` (see
#: ``layers/quantization.py``) and refuses the others by name.
QUANTIZATION_MODES = ("int8", "float8", "int4", "gptq", "awq")
_QUANTIZED_PREFIXES = QUANTIZATION_MODES
_MIXED = {"mixed_float16": ("float16", "float32"), "mixed_bfloat16": ("bfloat16", "float32")}


def _dtype_name(name: str) -> str:
    if name == "bfloat16":
        return name
    return np.dtype(name).name


class DTypePolicy:
    """A layer's computation and variable dtypes, named ``"float32"``, ``"float64"``, ``"mixed_float16"``, ...

    Args:
        name: the policy name; ``None`` copies the global policy's name.

    Example:
        >>> DTypePolicy("float64").compute_dtype
        'float64'
    """

    def __init__(self, name: str | None = None):
        if name is None:
            name = dtype_policy().name
        self._name = name
        self._compute_dtype, self._variable_dtype = self._parse_name(name)
        self._quantization_mode = None

    @staticmethod
    def _parse_name(name: Any) -> tuple[str, str]:
        if not isinstance(name, str):
            raise TypeError(f"'name' must be a string, such as 'mixed_float16'. Received: name={name!r} "
                            f"(of type {type(name)})")
        if name in _MIXED:
            return _MIXED[name]
        if name.startswith(_QUANTIZED_PREFIXES):
            raise ValueError(f"A quantized policy name such as {name!r} makes a QuantizedDTypePolicy "
                             f"(dtype_policies.get({name!r})), not a DTypePolicy. Received: name={name!r}")
        try:
            dtype = _dtype_name(name)
        except TypeError:
            raise ValueError(f"Cannot convert '{name}' to a mixed precision DTypePolicy. Valid policies include "
                             "'mixed_float16', 'mixed_bfloat16', and the name of any float dtype such as "
                             "'float32'.") from None
        return dtype, dtype

    @property
    def name(self) -> str:
        return self._name

    @property
    def compute_dtype(self) -> str:
        """The dtype layers compute in (their floating inputs are cast to it; so are their outputs)."""
        return self._compute_dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype layers create their weights in."""
        return self._variable_dtype

    @property
    def quantization_mode(self) -> None:
        return self._quantization_mode

    @property
    def is_mixed(self) -> bool:
        """Whether weights and computations use different dtypes (``mixed_float16``, ``mixed_bfloat16``)."""
        return self._compute_dtype != self._variable_dtype

    def get_config(self) -> dict[str, Any]:
        return {"name": self._name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DTypePolicy:
        return cls(**config)

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self._name}">'

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DTypePolicy) and self._name == other._name

    def __hash__(self) -> int:
        return hash(("DTypePolicy", self._name))


class FloatDTypePolicy(DTypePolicy):
    """Keras's alias of ``DTypePolicy``."""


class QuantizedDTypePolicy(DTypePolicy):
    """The policy of a quantized layer: ``"int8_from_float32"`` computes in float32 with int8 weights.

    Args:
        mode: the quantization mode (one of ``QUANTIZATION_MODES``).
        source_name: the policy the layer had before quantizing (its compute and variable dtypes);
            ``None`` takes the global policy's name.

    Example:
        >>> policy = QuantizedDTypePolicy("int8", "float32")
        >>> policy.name, policy.quantization_mode, policy.compute_dtype
        ('int8_from_float32', 'int8', 'float32')
    """

    def __init__(self, mode: str, source_name: str | None = None):
        if source_name is None:
            source_name = dtype_policy().name
        self._compute_dtype, self._variable_dtype = self._parse_name(source_name)
        if mode not in QUANTIZATION_MODES:
            raise ValueError(f"Invalid quantization mode. Expected one of {QUANTIZATION_MODES}. Received: mode={mode!r}")
        if self._compute_dtype == "float16" and mode == "int8":
            raise ValueError(f"Quantization mode='{mode}' doesn't work well with compute_dtype='float16'. "
                             f"Received: source_name={source_name!r}")
        self._name = f"{mode}_from_{source_name}"
        self._source_name = source_name
        self._quantization_mode = mode

    @property
    def quantization_mode(self) -> str:   # type: ignore[override]
        return self._quantization_mode

    def get_config(self) -> dict[str, Any]:
        return {"mode": self._quantization_mode, "source_name": self._source_name}

    def __repr__(self) -> str:
        return f'<{type(self).__name__} "{self._name}">'

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._name == other._name   # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._name))


class QuantizedFloat8DTypePolicy(QuantizedDTypePolicy):
    """Keras's ``float8`` policy (with its amax history length); a layer refuses to quantize to float8."""

    default_amax_history_length = 1024

    def __init__(self, mode: str, source_name: str | None = None, amax_history_length: int = 1024):
        super().__init__(mode, source_name)
        if isinstance(amax_history_length, bool) or not isinstance(amax_history_length, int):
            raise TypeError(f"`amax_history_length` must be an integer. "
                            f"Received: amax_history_length={amax_history_length!r}")
        self._amax_history_length = amax_history_length

    @property
    def amax_history_length(self) -> int:
        return self._amax_history_length

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "amax_history_length": self._amax_history_length}


class Int4DTypePolicy(QuantizedDTypePolicy):
    """Keras's ``"int4/<block_size>"`` policy (``-1``: per channel); named ``"int4/-1_from_float32"``."""

    def __init__(self, mode: str, source_name: str | None = None):
        parts = str(mode).split("/")
        if len(parts) != 2 or parts[0] != "int4":
            raise ValueError(f"Invalid mode for Int4DTypePolicy. Expected format 'int4/<block_size>', but got {mode!r}.")
        try:
            block_size = int(parts[1])
        except ValueError:
            raise ValueError(f"Invalid mode for Int4DTypePolicy. <block_size> must be an integer. Expected format "
                             f"'int4/<block_size>', but got {mode!r}.") from None
        if block_size < -1 or block_size == 0:
            raise ValueError(f"Invalid block_size in mode. Supported values are -1 (per-channel) or a positive "
                             f"integer (sub-channel), but got {block_size} from {mode!r}.")
        super().__init__("int4", source_name)
        self._name = f"{mode}_from_{self._source_name}"
        self.mode, self.block_size = "int4", block_size

    def get_config(self) -> dict[str, Any]:
        return {"mode": f"int4/{self.block_size}", "source_name": self._source_name}


class GPTQDTypePolicy(QuantizedDTypePolicy):
    """Keras's GPTQ policy (``"gptq/<bits>/<group>_from_float32"``): refused by name, as onnxforge does not compute
    GPTQ layers."""

    def __init__(self, mode: str, source_name: str | None = None, **kwargs: Any):
        raise NotImplementedError(f"GPTQ-quantized layers (dtype policy mode {mode!r}) are not supported by "
                                  "onnxforge; the supported modes are 'int8' and 'int4'.")


class AWQDTypePolicy(QuantizedDTypePolicy):
    """Keras's AWQ policy: refused by name, as ``GPTQDTypePolicy``."""

    def __init__(self, mode: str, source_name: str | None = None, **kwargs: Any):
        raise NotImplementedError(f"AWQ-quantized layers (dtype policy mode {mode!r}) are not supported by "
                                  "onnxforge; the supported modes are 'int8' and 'int4'.")


class DTypePolicyMap:
    """Keras's map from layer paths to policies (``default_policy`` for the rest), as a model's ``dtype``.

    Example:
        >>> m = DTypePolicyMap(); m["model/dense"] = "int8_from_float32"
        >>> m["model/dense"].name, m["model/other"].name
        ('int8_from_float32', 'float32')
    """

    def __init__(self, default_policy: Any = None, policy_map: dict | None = None):
        if isinstance(default_policy, DTypePolicyMap):
            raise ValueError("`default_policy` cannot be a `DTypePolicyMap`.")
        if policy_map is not None and not isinstance(policy_map, dict):
            raise TypeError(f"If specified, `policy_map` must be a dict. Received: policy_map={policy_map!r} of "
                            f"type {type(policy_map)}")
        self._default_policy_arg = default_policy
        self._default_policy = get(default_policy)
        self._policy_map = {k: get(v) for k, v in (policy_map or {}).items()}

    @property
    def default_policy(self) -> DTypePolicy:
        return get(self._default_policy)

    @property
    def name(self) -> str:
        return "map_" + self.default_policy._name

    @property
    def compute_dtype(self) -> str:
        return self.default_policy.compute_dtype

    @property
    def variable_dtype(self) -> str:
        return self.default_policy.variable_dtype

    @property
    def quantization_mode(self) -> Any:
        return self.default_policy.quantization_mode

    @property
    def is_mixed(self) -> bool:
        return self.default_policy.is_mixed

    def __getitem__(self, key: str) -> DTypePolicy:
        return self._policy_map.get(key, self.default_policy)

    def __setitem__(self, key: str, policy: Any) -> None:
        if key in self._policy_map:
            raise ValueError(f"{key} already exist in the DTypePolicyMap with value {self._policy_map[key]}. "
                             "Please make sure to not use duplicated keys.")
        self._policy_map[key] = get(policy)

    def __delitem__(self, key: str) -> None:
        self._policy_map.pop(key)

    def __contains__(self, key: object) -> bool:
        return key in self._policy_map

    def __len__(self) -> int:
        return len(self._policy_map)

    def __iter__(self) -> Any:
        return iter(self._policy_map)

    def get_config(self) -> dict[str, Any]:
        default = self._default_policy_arg
        if isinstance(default, DTypePolicy):
            default = serialize(default)
        return {"default_policy": default, "policy_map": {k: serialize(v) for k, v in self._policy_map.items()}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DTypePolicyMap:
        config = dict(config)
        config["policy_map"] = {k: deserialize(v) for k, v in (config.get("policy_map") or {}).items()}
        return cls(**config)

    def __repr__(self) -> str:
        return f'<DTypePolicyMap "{self.name}">'


#: The legacy ``keras.mixed_precision.Policy`` name.
Policy = DTypePolicy

_global: DTypePolicy | None = None


def set_dtype_policy(policy: str | DTypePolicy) -> None:
    """Set the policy of layers created from now on without ``dtype=``.

    Example:
        >>> set_dtype_policy("mixed_float16"); dtype_policy().compute_dtype
        'float16'
        >>> set_dtype_policy("float32")
    """
    global _global
    if isinstance(policy, str):
        policy = DTypePolicy(policy)
    elif not isinstance(policy, DTypePolicy):
        raise ValueError("Invalid `policy` argument. Expected the string name of a policy (such as "
                         f"'mixed_float16') or a `DTypePolicy` instance. Received: policy={policy!r} "
                         f"(of type {type(policy)})")
    _global = policy


def dtype_policy() -> DTypePolicy:
    """The global policy (made from ``floatx()`` the first time it is asked for, as in Keras)."""
    global _global
    if _global is None:
        _global = DTypePolicy(backend_config.floatx())
    return _global


set_global_policy = set_dtype_policy
global_policy = dtype_policy


_CLASSES: dict[str, type] = {"DTypePolicy": DTypePolicy, "FloatDTypePolicy": DTypePolicy, "Policy": DTypePolicy,
                              "QuantizedDTypePolicy": QuantizedDTypePolicy,
                              "QuantizedFloat8DTypePolicy": QuantizedFloat8DTypePolicy,
                              "Int4DTypePolicy": Int4DTypePolicy, "DTypePolicyMap": DTypePolicyMap,
                              "GPTQDTypePolicy": GPTQDTypePolicy, "AWQDTypePolicy": AWQDTypePolicy}


def serialize(policy: Any) -> dict[str, Any]:
    """Keras 3's layer-config form: ``{"module": "keras", "class_name": "DTypePolicy", "config": {...}}`` (the
    quantized policies and the map live in ``keras.dtype_policies``, as Keras writes them)."""
    name = "DTypePolicy" if type(policy) in (DTypePolicy, FloatDTypePolicy) else type(policy).__name__
    module = "keras" if name == "DTypePolicy" else "keras.dtype_policies"
    return {"module": module, "class_name": name, "config": policy.get_config(), "registered_name": None}


def deserialize(config: dict[str, Any]) -> Any:
    """The policy of a serialized config (``DTypePolicy``, the quantized policies, ``DTypePolicyMap``)."""
    name = config.get("class_name")
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"Unknown dtype policy class {name!r}. onnxforge supports {sorted(_CLASSES)}. "
                         f"Received: {config!r}")
    args = config.get("config") or {}
    if not isinstance(args, dict):
        raise ValueError(f"The config of a {name} must be a dict. Received: config={args!r}")
    if cls is DTypePolicyMap:
        return DTypePolicyMap.from_config(args)
    try:
        return cls(**args)
    except TypeError as e:
        raise ValueError(f"Cannot rebuild a {name} from config={args!r}: {e}") from None


def _quantized_by_name(name: str) -> QuantizedDTypePolicy:
    """``"int8_from_float32"`` and the like, as Keras's ``dtype_policies.get`` reads them."""
    parts = name.split("_from_")
    if len(parts) != 2:
        raise ValueError("Cannot convert `policy` into a valid pair (`mode`, `source_name`) to instantiate "
                         f"`QuantizedDTypePolicy`. Received: policy={name!r}")
    mode, source = parts
    if mode.startswith("gptq"):
        return GPTQDTypePolicy(mode, source)
    if mode.startswith("awq"):
        return AWQDTypePolicy(mode, source)
    if mode.startswith("int4") and "/" in mode:
        return Int4DTypePolicy(mode, source)
    if mode.startswith("float8"):
        return QuantizedFloat8DTypePolicy(mode, source)
    return QuantizedDTypePolicy(mode, source)


def get(identifier: Any) -> DTypePolicy:
    """A policy from ``None`` (the global one), a name, a serialized dict, a dtype or a policy."""
    if identifier is None:
        return dtype_policy()
    if isinstance(identifier, (DTypePolicy, DTypePolicyMap)):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier.startswith(QUANTIZATION_MODES):
            return _quantized_by_name(identifier)
        return DTypePolicy(identifier)
    try:
        return DTypePolicy(_dtype_name(getattr(identifier, "name", identifier)))
    except (TypeError, ValueError):
        raise ValueError("Cannot interpret `dtype` argument. Expected a string or an instance of DTypePolicy. "
                         f"Received: dtype={identifier!r}") from None
