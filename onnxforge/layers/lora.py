"""Keras 3's LoRA (low-rank adaptation) on ``Dense``, ``EinsumDense``, ``Embedding`` and ``Conv1D/2D/3D``.

``layer.enable_lora(rank)`` freezes the layer's main weight ``W`` and adds two trainable factors, ``A`` of shape
``W.shape[:-1] + (rank,)`` (He-uniform) and ``B`` of shape ``(rank, W.shape[-1])`` (zeros); the layer then
computes with ``W + (lora_alpha / rank) * (A @ B)``, so training moves only ``A`` and ``B``. As in Keras:

* ``lora_rank=`` in the constructor (and so a config read back from a file) enables it at build time;
* the ``.keras`` file stores the *merged* weight where ``W`` goes, and loading it into a LoRA layer sets the
  frozen weight to that merged value and zeroes ``A`` and ``B`` (Keras 3's save/load contract);
* ``get_weights`` lists ``W``, the bias (if any), then ``A`` and ``B``.

One difference: ``layer.kernel`` (``layer.embeddings``) stays the frozen ``Variable`` here, where Keras 3's
property returns the merged tensor; ``layer.merged_lora_weight()`` gives the merged array.

Example:
    >>> import numpy as np
    >>> from onnxforge.layers import Dense, Input
    >>> layer = Dense(3)
    >>> _ = layer(Input(shape=(4,)))
    >>> layer.enable_lora(2)
    >>> [w.path for w in layer.trainable_weights], layer.lora_kernel_a.shape
    (['dense/bias', 'dense/lora_kernel_a', 'dense/lora_kernel_b'], (4, 2))
"""
from __future__ import annotations

__all__ = ["LoraMixin", "lora_enablings"]

from typing import Any

import numpy as np

from .. import initializers as initializers_mod
from . import allocation
from ..tracing import active_trace


_ENABLINGS = [0]


def lora_enablings() -> int:
    """How many times ``enable_lora`` has run in this process: a model compares it with the count at the time
    its programs were built, so a layer that gained LoRA weights since is noticed before the next run."""
    return _ENABLINGS[0]


def _check_rank(layer: str, arg: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Layer {layer!r}: {arg} must be a positive integer (or None). Received: {arg}={value!r}")
    return int(value)


def _check_alpha(layer: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"Layer {layer!r}: lora_alpha must be a positive number (or None). "
                         f"Received: lora_alpha={value!r}")
    return value


class LoraMixin:
    """Adds Keras 3's ``enable_lora`` to a layer whose main weight is the attribute ``_lora_target``."""

    #: The attribute holding the weight LoRA adapts, and the names of its two factors.
    _lora_target = "kernel"
    _lora_factor_names = ("lora_kernel_a", "lora_kernel_b")
    #: The constraint argument that rules LoRA out (Keras refuses a constrained weight).
    _lora_constraint = "kernel_constraint"
    #: Keras's Dense and Embedding enable a configured ``lora_rank`` at build time without its
    #: ``lora_alpha`` (so it falls back to the rank); EinsumDense and the convolutions pass it on.
    _lora_alpha_at_build = True

    def __init__(self, *args: Any, lora_rank: Any = None, lora_alpha: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._init_lora(lora_rank, lora_alpha)

    def get_config(self) -> dict:
        config = super().get_config()   # type: ignore[misc]
        return {**config, "lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha} if self.lora_rank else config

    def _init_lora(self, lora_rank: Any, lora_alpha: Any) -> None:
        self.lora_rank = _check_rank(self.name, "lora_rank", lora_rank)
        alpha = _check_alpha(self.name, lora_alpha)
        self.lora_alpha = alpha if alpha is not None else self.lora_rank
        self.lora_enabled = False

    def _build_lora(self) -> None:
        """Called at the end of ``build``: a configured ``lora_rank`` is enabled there, as in Keras."""
        if self.lora_rank and not self.lora_enabled:
            self.enable_lora(self.lora_rank, lora_alpha=self.lora_alpha if self._lora_alpha_at_build else None)

    def enable_lora(self, rank: int, lora_alpha: float | None = None, a_initializer: Any = "he_uniform",
                    b_initializer: Any = "zeros") -> None:
        """Freeze the layer's weight and train a rank-``rank`` update ``(lora_alpha / rank) * A @ B`` instead.

        The layer must be built; call ``model.compile`` again afterwards, as in Keras, so the training step
        sees the new trainable weights.
        """
        if getattr(self, self._lora_constraint, None) is not None:
            raise ValueError(f"Layer {self.name!r}: Lora is incompatible with {self._lora_constraint.split('_')[0]} "
                             f"constraints. Remove the `{self._lora_constraint}` argument to enable lora. Received: "
                             f"{self._lora_constraint}={getattr(self, self._lora_constraint)!r}")
        if not self.built:
            raise ValueError(f"Layer {self.name!r}: cannot enable lora on a layer that isn't yet built.")
        if self.lora_enabled:
            raise ValueError(f"Layer {self.name!r}: lora is already enabled. This can only be done once per layer.")
        rank = _check_rank(self.name, "rank", rank)
        if rank is None:
            raise ValueError(f"Layer {self.name!r}: enable_lora needs a positive integer rank. Received: rank=None")
        alpha = _check_alpha(self.name, lora_alpha)
        weight = getattr(self, self._lora_target)
        shape = tuple(weight.shape)
        regularizer = getattr(self, self._lora_target + "_regularizer", None)
        name_a, name_b = self._lora_factor_names
        # A loaded file stores only the merged weight: the factors claim none of its tensors, and may each
        # be at most as large as the weight (rank <= its fan-in and fan-out, all LoRA ever needs).
        with self._state_unlocked(), allocation.unstored_weights(int(np.prod(shape))):
            # float32 factors whatever the policy, as Keras: they are small and trained in full precision.
            factor_a = self.add_weight(shape=shape[:-1] + (rank,), initializer=initializers_mod.get(a_initializer),
                                       name=name_a, dtype="float32", regularizer=regularizer)
            factor_b = self.add_weight(shape=(rank, shape[-1]), initializer=initializers_mod.get(b_initializer),
                                       name=name_b, dtype="float32", regularizer=regularizer)
        setattr(self, name_a, factor_a)
        setattr(self, name_b, factor_b)
        weight.trainable = False
        self.lora_enabled = True
        _ENABLINGS[0] += 1
        self.lora_rank = rank
        self.lora_alpha = alpha if alpha is not None else rank

    def _lora_weight(self) -> Any:
        """The weight ``call`` computes with: the variable itself, or (LoRA enabled, inside a trace) the graph
        value ``W + (alpha / rank) * A @ B`` in the dtype ``W`` is read in."""
        weight = getattr(self, self._lora_target)
        if not getattr(self, "lora_enabled", False) or active_trace() is None:
            return weight
        name_a, name_b = self._lora_factor_names
        w = weight.__onnx_value__()
        delta = getattr(self, name_a).__onnx_value__() @ getattr(self, name_b).__onnx_value__()
        if delta.dtype != w.dtype:   # float32 factors beside a float16 weight
            delta = delta.builder.op("Cast", [delta], to=int(w.dtype), shape=delta.shape)
        return w + delta * (float(self.lora_alpha) / float(self.lora_rank))

    def merged_lora_weight(self) -> np.ndarray:
        """The weight with the LoRA update folded in, as a NumPy array (the weight itself without LoRA)."""
        weight = getattr(self, self._lora_target)
        if not getattr(self, "lora_enabled", False):
            return np.array(weight.numpy(), copy=True)
        name_a, name_b = self._lora_factor_names
        a, b = getattr(self, name_a).numpy(), getattr(self, name_b).numpy()
        delta = np.matmul(a.astype(np.float32), b.astype(np.float32))
        return (weight.numpy().astype(np.float32) + (float(self.lora_alpha) / float(self.lora_rank)) * delta) \
            .astype(weight.dtype)

    # ----------------------------------------------------------------- the .keras file (Keras 3's contract)
    def save_own_variables(self, store: Any) -> None:
        if not getattr(self, "lora_enabled", False):
            return super().save_own_variables(store)   # type: ignore[misc]
        saved = self._keras_saved_variables()
        target = getattr(self, self._lora_target)
        for i, variable in enumerate(saved):
            store[str(i)] = self.merged_lora_weight() if variable is target else variable.numpy()

    def load_own_variables(self, store: Any) -> None:
        super().load_own_variables(store)   # type: ignore[misc]
        if getattr(self, "lora_enabled", False):
            for name in self._lora_factor_names:
                factor = getattr(self, name)
                factor.assign(np.zeros(factor.shape, dtype=factor.dtype))

    # Without LoRA the loaders' default path (``_keras_saved_variables``) reads and writes these layers.
    save_own_variables._overrides_only_if = "lora_enabled"   # type: ignore[attr-defined]
    load_own_variables._overrides_only_if = "lora_enabled"   # type: ignore[attr-defined]

