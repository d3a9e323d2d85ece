"""The step programs of Keras's temporal sample weights: ``sample_weight`` of shape ``(samples, steps)`` for a
sequence output, one weight per loss entry.

The compiled programs take one weight per sample, ``(batch,)``: the common case keeps its programs, shards and
constant-weight sessions unchanged. A batch with higher-rank weights runs steps built for that rank instead,
once per compile and rank signature, on the same device-resident Variables (the runners share state through
them, as the portable and sharded steps do). They run whole: no core shards, no constant-weight session.
"""
from __future__ import annotations

__all__ = ["temporal_step", "weight_ranks"]

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..autodiff.tuning import session_threads
from ..compiler import Program, build_eval_step, build_train_step
from ..graph import contract
from ..runtime import ProgramRunner, fused_training_ops
from ..runtime.session import planned_threads


def weight_ranks(model: Any, feeds: Mapping[str, Any]) -> dict[str, int]:
    """Output name -> rank of its fed sample weights, for the outputs whose weights have a rank above 1."""
    ranks = {}
    for o in model._compiled_config.outputs:
        w = feeds.get(contract.sample_weight(o.name)) if o.has_target else None
        if isinstance(w, np.ndarray) and w.ndim > 1:
            ranks[o.name] = w.ndim
    return ranks


def temporal_step(model: Any, kind: str, feeds: Mapping[str, Any]) -> tuple[Program, ProgramRunner] | None:
    """``kind`` (``"train_step"`` or ``"eval_step"``) built for the weight ranks of ``feeds`` and its runner, or
    ``None`` where every weight is one per sample (the compiled program serves)."""
    ranks = weight_ranks(model, feeds)
    if not ranks:
        return None
    cache = getattr(model, "_temporal_steps", None)
    if cache is None or cache[0] is not model._programs:   # a recompile drops the steps built before it
        cache = model._temporal_steps = (model._programs, {})
    key = (kind, tuple(sorted(ranks.items())))
    if key not in cache[1]:
        from .mixin import _BUILD_LOCK   # tracing is process-global: builds take turns across threads

        with _BUILD_LOCK:
            if key not in cache[1]:
                program = _build(model, kind, ranks)
                cache[1][key] = (program, model._make_runner(program))
    return cache[1][key]


def _build(model: Any, kind: str, ranks: Mapping[str, int]) -> Program:
    config = model._compiled_config
    if kind == "eval_step":
        return build_eval_step(model, config, model._rng_stream(), weight_ranks=ranks)
    # The RNG Variable as it stands (never reseeded here: this step continues the run the compiled one began).
    with session_threads(planned_threads(model._device)):
        return build_train_step(model, config, model._compiled_trainable(), model._rng_stream(),
                                fused_ops=fused_training_ops(model._device), weight_ranks=ranks)
