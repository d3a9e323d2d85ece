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

__all__ = ["DTypePolicy", "FloatDTypePolicy", "Policy", "get", "serialize", "deserialize", "set_dtype_policy",
           "dtype_policy", "set_global_policy", "global_policy"]

from typing import Any

import numpy as np

from . import backend_config

_QUANTIZED_PREFIXES = ("int8", "float8", "int4", "gptq", "awq")
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
            raise ValueError(f"Quantized dtype policies are not supported by onnxforge. Received: {name!r}")
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


def serialize(policy: DTypePolicy) -> dict[str, Any]:
    """Keras 3's layer-config form: ``{"module": "keras", "class_name": "DTypePolicy", "config": {...}}``."""
    return {"module": "keras", "class_name": "DTypePolicy", "config": policy.get_config(), "registered_name": None}


def deserialize(config: dict[str, Any]) -> DTypePolicy:
    """The policy of a serialized config (``DTypePolicy`` / ``FloatDTypePolicy``)."""
    name = config.get("class_name")
    if name not in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
        raise ValueError(f"Unknown dtype policy class {name!r}. onnxforge supports DTypePolicy "
                         f"(float32, float64, mixed_float16, ...). Received: {config!r}")
    return DTypePolicy(**(config.get("config") or {}))


def get(identifier: Any) -> DTypePolicy:
    """A policy from ``None`` (the global one), a name, a serialized dict, a dtype or a policy."""
    if identifier is None:
        return dtype_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return DTypePolicy(identifier)
    try:
        return DTypePolicy(_dtype_name(getattr(identifier, "name", identifier)))
    except (TypeError, ValueError):
        raise ValueError("Cannot interpret `dtype` argument. Expected a string or an instance of DTypePolicy. "
                         f"Received: dtype={identifier!r}") from None
