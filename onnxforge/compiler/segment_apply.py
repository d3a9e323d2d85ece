"""The optimizer update cut into element ranges that separate programs apply side by side.

A sharded step (``trainer.core_parallel``) ends with one update of every weight from the shards' summed
gradients. On one core that update is a string of elementwise passes over all weights and slots (Adam: ~13,
1.75 ms of the seed CNN's 31 ms step, while the other cores wait). Where the optimizer's update is elementwise
(each new weight element and slot element depends on the same element of the weight, its slots and its
gradient, plus per-step scalars), any cut of the flat weights into ranges gives programs that together compute
exactly the whole update, so ``parts`` programs run it on ``parts`` cores.

``plan_segments`` cuts the gradient bucket's elements (variables in bucket order) into ``parts`` ranges of about
equal size, at multiples of ``ALIGN`` elements so no two programs write the same cache line; a range may start
or end inside a variable. ``build_segment_apply`` emits the program of one range: its inputs are 1-D pieces
(each shard's gradient piece, the weight piece, each slot's piece), the learning rate and the step counter;
its outputs are the new pieces, and for the program that ``advance``\\ s, the new step counter. The runner
binds the pieces straight into the variables' buffers (``trainer.segment_update``).

Example:
    >>> [[(s.start, s.size) for s in part] for part in plan_segments([(None, 0, 40), (None, 40, 24)], 2, align=16)]
    [[(0, 32)], [(32, 8), (0, 24)]]
"""
from __future__ import annotations

__all__ = ["ALIGN", "Segment", "SegmentProgram", "elementwise_update", "plan_segments", "build_segment_apply"]

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ..graph import GraphBuilder, contract
from ..optimizers import Optimizer
from ..variables import Variable
from .cleanup import cleanup
from .program_trace import declare_input
from .overridden_apply import overrides_apply
from .programs import _typed

#: Ranges start at multiples of this many elements (64 bytes of float32: one cache line).
ALIGN = 16
LEARNING_RATE = "segment/learning_rate"
ITERATIONS = "segment/iterations"
NEW_ITERATIONS = "segment/iterations:new"


@dataclass(frozen=True)
class Segment:
    """Elements ``[start, start + size)`` of ``var`` (flat, C order), at ``offset`` in the gradient bucket."""

    var: Variable
    start: int
    size: int
    offset: int


@dataclass
class SegmentProgram:
    """One range's update program and the names of its pieces, in segment order."""

    model: onnx.ModelProto
    segments: list[Segment]
    shards: int
    advance: bool
    grads: list[list[str]] = field(default_factory=list)        # [segment][shard]
    params: list[tuple[str, str]] = field(default_factory=list)  # [segment] (input, output)
    slots: list[list[tuple[Variable, str, str]]] = field(default_factory=list)  # [segment] (slot var, in, out)


def elementwise_update(optimizer: Any) -> tuple[bool, str]:
    """Whether ``optimizer``'s update may be cut into element ranges, and if not, why.

    Built-in optimizers (SGD, Adam, AdamW, Nadam, Adamax, Adadelta, Lion, RMSprop, Adagrad, Ftrl) update element
    by element (Nadam's momentum-schedule product is a per-step scalar); Lamb's trust ratio and Adafactor's
    factored moments and RMS read whole tensors (``Optimizer.elementwise``); clipping by norm looks at a whole tensor
    (``clipnorm``) or at all of them (``global_clipnorm``), and a subclass that overrides the update may look
    anywhere.
    """
    if not isinstance(optimizer, Optimizer):
        return False, f"optimizer {type(optimizer).__name__} is not an onnxforge optimizer"
    kind = type(optimizer)
    if kind.update_graph is not Optimizer.update_graph or not kind.update_step.__module__.startswith(
            "onnxforge.optimizers"):
        return False, f"{kind.__name__} defines its own update"
    if overrides_apply(optimizer):
        return False, f"{kind.__name__} overrides apply() (it may look at whole gradients)"
    if not kind.elementwise:
        return False, f"{kind.__name__}'s update reads whole tensors (norms, means)"
    if optimizer.clipnorm or optimizer.global_clipnorm:
        return False, "clipping by norm reads whole tensors"
    if optimizer.gradient_accumulation_steps:
        return False, "gradient accumulation keeps whole-tensor sums between steps"
    if optimizer.loss_scale_factor is not None:
        return False, "loss_scale_factor"
    if optimizer.use_ema:
        return False, "use_ema (the averages are kept by the one-program update)"
    return True, ""


def plan_segments(members: Sequence[tuple[Any, int, int]], parts: int, align: int = ALIGN) -> list[list[Segment]]:
    """Cut the bucket's ``members`` (``(variable, offset, size)``, consecutive) into ``parts`` ranges of about
    equal size; each range as the pieces of the variables it covers."""
    total = sum(size for _, _, size in members)
    bounds = [0] + [(total * j // parts) // align * align for j in range(1, parts)] + [total]
    plan: list[list[Segment]] = []
    for lo, hi in zip(bounds, bounds[1:]):
        part = []
        for var, offset, size in members:
            a, z = max(lo, offset), min(hi, offset + size)
            if a < z:
                part.append(Segment(var, a - offset, z - a, a))
        plan.append(part)
    return plan


def build_segment_apply(optimizer: Optimizer, segments: Sequence[Segment], shards: int,
                        advance: bool) -> SegmentProgram:
    """The update of ``segments``: the shards' gradient pieces summed, then the optimizer's own
    ``update_graph`` on 1-D pieces (exact for ``elementwise_update`` optimizers)."""
    b = GraphBuilder()
    lr = declare_input(b, LEARNING_RATE, np.float32, ())
    iterations = declare_input(b, ITERATIONS, np.int64, ())
    program = SegmentProgram(model=onnx.ModelProto(), segments=list(segments), shards=shards, advance=advance)
    params, grads, slot_values = [], [], []
    for i, seg in enumerate(segments):
        dtype = np.dtype(seg.var.dtype)
        names = [f"segment{i}/grad/{r}" for r in range(shards)]
        parts = [declare_input(b, name, dtype, (seg.size,)) for name in names]
        grads.append(b.op("Sum", parts, dtype=parts[0].dtype, shape=(seg.size,)) if shards > 1 else parts[0])
        program.grads.append(names)
        params.append(declare_input(b, f"segment{i}/param", dtype, (seg.size,)))
        program.params.append((f"segment{i}/param", f"segment{i}/param:new"))
        values, slots = {}, []
        for key, slot in optimizer.slots(seg.var).items():
            name = f"segment{i}/slot/{key}"
            values[key] = declare_input(b, name, np.dtype(slot.dtype), (seg.size,))
            slots.append((slot, name, name + ":new"))
        slot_values.append(values)
        program.slots.append(slots)
    new_params, new_slots = optimizer.update_graph(b, [s.var for s in segments], params, grads, slot_values, lr,
                                                   iterations)
    for i, (p_in, p_new) in enumerate(zip(params, new_params)):
        b.output(_typed(p_new, p_in), program.params[i][1])
        for slot, name, out in program.slots[i]:
            key = name.rsplit("/", 1)[1]
            b.output(_typed(new_slots[i][key], slot_values[i][key]), out)
    if advance:
        b.output(_typed(iterations + 1, iterations), NEW_ITERATIONS)
    model = b.to_model(name="onnxforge_segment_apply")
    keep = {i.name for i in model.graph.input}
    program.model, _ = cleanup(model, keep)
    program.model.metadata_props.add(key=contract.PROGRAM_KEY, value="segment_apply")
    return program
