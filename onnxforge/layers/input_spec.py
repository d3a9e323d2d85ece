"""``InputSpec``: what a layer accepts (rank, dtype, axes), checked when it is called, with Keras's errors."""
from __future__ import annotations

__all__ = ["InputSpec"]

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Layer


# ---------------------------------------------------------------- input specs
class InputSpec:
    """What a layer accepts: rank (``ndim`` / ``min_ndim`` / ``max_ndim``) and fixed axis sizes (``axes``)."""

    # Keras's (and tf.keras 2's) positional order: ``InputSpec("float32", (None, 3))``.
    def __init__(self, dtype: Any = None, shape: tuple | None = None, ndim: int | None = None,
                 max_ndim: int | None = None, min_ndim: int | None = None, axes: dict[int, int] | None = None,
                 allow_last_axis_squeeze: bool = False, name: str | None = None, optional: bool = False):
        self.ndim = len(shape) if shape is not None else ndim
        self.min_ndim, self.max_ndim = min_ndim, max_ndim
        self.axes = dict(axes or {})
        self.shape = None if shape is None else tuple(shape)
        self.dtype = dtype
        # Keras: a rank-N spec also takes rank N+1 inputs whose last axis is 1, and rank N-1 inputs when
        # the spec's last axis is 1 (a functional model expands or squeezes them).
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        self.name, self.optional = name, optional

    def __repr__(self) -> str:
        parts = [f"{k}={v}" for k, v in vars(self).items() if v not in (None, {}, False)]
        return f"InputSpec({', '.join(parts)})"


def _display_shape(shape: Any) -> tuple | None:
    return None if shape is None else tuple(d if isinstance(d, int) else None for d in shape)


def _check_spec(layer: Layer, index: int, spec: InputSpec, shape: tuple | None) -> None:
    if shape is None:
        return
    shape = _display_shape(shape)
    ndim = len(shape)
    prefix = f'Input {index} of layer "{layer.name}" is incompatible with the layer:'
    if spec.ndim is not None and ndim != spec.ndim and not spec.allow_last_axis_squeeze:
        raise ValueError(f"{prefix} expected ndim={spec.ndim}, found ndim={ndim}. Full shape received: {shape}")
    if spec.min_ndim is not None and ndim < spec.min_ndim:
        raise ValueError(f"{prefix} expected min_ndim={spec.min_ndim}, found ndim={ndim}. "
                         f"Full shape received: {shape}")
    if spec.max_ndim is not None and ndim > spec.max_ndim:
        raise ValueError(f"{prefix} expected max_ndim={spec.max_ndim}, found ndim={ndim}. "
                         f"Full shape received: {shape}")
    for axis, value in spec.axes.items():
        if value is None:
            continue
        if not -ndim <= axis < ndim or shape[axis] not in (value, None):
            raise ValueError(f"{prefix} expected axis {axis} of input shape to have value {value}, "
                             f"but received input with shape {shape}")
    if spec.shape is not None:
        spec_shape = spec.shape
        if spec.allow_last_axis_squeeze:
            if ndim not in (len(spec_shape) - 1, len(spec_shape), len(spec_shape) + 1):
                raise ValueError(f"{prefix} expected ndim={len(spec_shape)}, found ndim={ndim}. "
                                 f"Full shape received: {shape}")
            shape = shape[:-1] if shape and shape[-1] == 1 else shape
            spec_shape = spec_shape[:-1] if spec_shape and spec_shape[-1] == 1 else spec_shape
        for expected, got in zip(spec_shape, shape):
            if expected is not None and got is not None and expected != got:
                raise ValueError(f"{prefix} expected shape={spec.shape}, found shape={shape}")


