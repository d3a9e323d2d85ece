"""The data-parallel step as programs: the gradient program cut into stages at its exchanges, then the update.

``compiler.replicated`` traces one replica's gradient program (gradients of its share of the global loss,
in buckets) and the update program (the optimizer's own graph). A model without synchronized
BatchNormalization runs the gradient program in one piece: shard -> gradients -> all-reduce -> update. With
``BatchNormalization(synchronized=True)`` the replicas must sum batch moments in the middle of the forward
pass and the gradients of those sums in the middle of the backward pass, so the program is cut there
(``onnxforge.graph.partition``) into stages; between two stages the runtime all-reduces that round's
values. Independent layers share a round; a chain of ``k`` synchronized layers makes ``2k`` rounds and
``2k + 1`` stages, and no node runs twice: activations a later stage needs stay on the device.

Example:
    >>> programs = build_replica_programs(model, model._compiled_config, trainable, rng)   # doctest: +SKIP
    >>> len(programs.stages), [len(r) for r in programs.rounds]                             # doctest: +SKIP
    (1, [])
"""
from __future__ import annotations

__all__ = ["ReplicaPrograms", "build_replica_programs"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import onnx

from ..compiler import Program
from ..compiler.config import CompileConfig
from ..compiler.replicated import Cut, ReplicaGrads, build_apply_step, build_replica_grads
from ..graph.partition import plan_stages, split_stages
from ..variables import Variable
from .buckets import DEFAULT_BUCKET_BYTES, plan_buckets


@dataclass
class ReplicaPrograms:
    """Everything one rank runs per training step.

    Attributes:
        grads: the whole gradient program and its exchange layout (buckets, averaged state, cuts).
        stages: the gradient program's stages, in order (one model when nothing is exchanged mid-step).
        rounds: ``rounds[s]``: the cuts all-reduced after stage ``s`` (empty after the last).
        apply: the update program.
    """

    grads: ReplicaGrads
    stages: list[onnx.ModelProto]
    rounds: list[list[Cut]]
    apply: Program


def build_replica_programs(model: Any, config: CompileConfig, trainable: Sequence[Variable],
                           rng_state: Variable | None, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> ReplicaPrograms:
    """Trace, cut and bucket one replica's training step (see the module docstring)."""
    grads = build_replica_grads(model, config, trainable, rng_state,
                                lambda variables: plan_buckets(variables, bucket_bytes))
    whole = grads.program.model
    if not grads.cuts:
        stages, rounds = [whole], [[]]
    else:
        stage_of = plan_stages(whole, [(c.source, c.result) for c in grads.cuts])
        stages = split_stages(whole, stage_of)
        rounds = [[c for c in grads.cuts if stage_of[c.result] == s + 1] for s in range(len(stages))]
    apply = build_apply_step(config.optimizer, grads.trained, grads.buckets, grads.averaged)
    return ReplicaPrograms(grads, stages, rounds, apply)
