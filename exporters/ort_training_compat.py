"""onnxruntime-training's artefacts, in standard ops: ``generate_artifacts`` for users of the discontinued tool.

``onnxruntime.training.artifacts.generate_artifacts`` wrote four pieces into a folder, which its
``TrainingSession`` (a special onnxruntime build, private ``*Grad`` ops) ran. This module writes the same
four pieces under the same names, as standard ``ai.onnx`` graphs that stock onnxruntime (any language, any
provider) runs and that pass the full ONNX checker:

``training_model.onnx``
    Inputs: the model's inputs; the labels (``labels``, int64 class ids, for ``CrossEntropyLoss``; else
    ``target``, shaped like the prediction); every trainable parameter under its name; for each,
    ``<param>_grad.accumulation.buffer``; and ``lazy_reset_grad`` (bool ``[1]``). Outputs: ``loss`` (and
    ``additional_output_names``), and ``<param>_grad.accumulation.out`` = the gradient when
    ``lazy_reset_grad`` is true, else buffer + gradient (onnxruntime-training's gradient accumulation, with
    its names). Gradients come from onnxforge's autodiff.
``eval_model.onnx``
    The same inputs without the accumulation ones; outputs ``loss`` (and the additional outputs).
``optimizer_model.onnx`` (when ``optimizer`` is given)
    Inputs: ``learning_rate`` (float32 scalar), ``step`` (int64 scalar: updates done so far), each parameter,
    its gradient ``<param>_grad.accumulation.out`` (the training model's output, same name) and its optimizer
    state ``<param>.<slot>`` (AdamW: ``momentum``, ``velocity``; SGD with momentum: ``momentum``). Outputs:
    ``<name>:new`` for every parameter, slot and ``step``, paired in ``metadata_props["onnxforge.state"]``
    like every onnxforge training program. Unlike onnxruntime's ``AdamWOptimizer`` op (tensor sequences,
    in-place updates) each tensor is its own input and output.
``checkpoint``
    The state, as an ONNX model with no inputs (protobuf, no pickle; ``onnxforge.saving.portable``'s
    initial-state form): its outputs, each named after the artefact input it feeds, are every parameter
    (trainable and frozen), the optimizer state, and the start of gradient accumulation (a zero
    ``<param>_grad.accumulation.buffer`` per trainable parameter and ``lazy_reset_grad`` = ``[true]``).
    Any onnxruntime binding reads it by running it: ``state = checkpoint.run({})``. ``metadata_props
    ["onnxforge.checkpoint"]`` (JSON) lists ``requires_grad``, ``frozen_params`` and ``optimizer_state``.
    Read and write it with :func:`load_checkpoint` / :func:`save_checkpoint`.

No graph input has an initializer default (onnxruntime's JavaScript API would not list such an input):
every artefact names the checkpoint in ``metadata_props["onnxforge.init_model"]``, and a loop feeds each
model the entries of its state that the model lists as inputs (``session.inputNames``), the training
model's ``*_grad.accumulation.out`` outputs to the optimizer model, and the optimizer's ``<name>:new``
outputs back into the state.

Differences from onnxruntime-training: ``requires_grad=None`` means every float weight initializer (not in
``frozen_params``); the optimizers are onnxforge's (Keras math: AdamW's epsilon is added to
``sqrt(v)`` before bias correction) with onnxruntime's defaults (AdamW: betas 0.9 / 0.999, epsilon 1e-8,
weight decay 0.01); ``ort_format``, ``custom_op_library``, ``nominal_checkpoint`` and custom ``onnxblock``
losses are not available (pass ``loss=None`` to train on a loss the model computes itself).

Example:
    >>> paths = generate_artifacts("model.onnx", requires_grad=["fc.weight", "fc.bias"],   # doctest: +SKIP
    ...                            loss=LossType.CrossEntropyLoss, optimizer=OptimType.AdamW,
    ...                            artifact_directory="artifacts")
    >>> sorted(paths)                                                                       # doctest: +SKIP
    ['checkpoint', 'eval_model', 'optimizer_model', 'training_model']
"""
from __future__ import annotations

__all__ = ["LossType", "OptimType", "generate_artifacts", "load_checkpoint", "save_checkpoint"]

import enum
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from onnxforge import optimizers as optimizers_lib
from onnxforge.autodiff import gradient_model
from onnxforge.graph import contract, onnx_dtype, protos
from onnxforge.graph import GraphBuilder
from onnxforge.models.onnx_model import _classify, _load, _normalize
from onnxforge.saving import load_onnx, portable
from onnxforge.saving.export import write_onnx
from onnxforge.variables import Variable



class LossType(enum.Enum):
    """The losses of ``onnxruntime.training.artifacts.LossType`` (same names and numbers)."""

    MSELoss = 1
    CrossEntropyLoss = 2
    BCEWithLogitsLoss = 3
    L1Loss = 4


class OptimType(enum.Enum):
    """The optimizers of ``onnxruntime.training.artifacts.OptimType``."""

    AdamW = 1
    SGD = 2


def _enum(value: Any, kind: type[enum.Enum], argument: str) -> enum.Enum:
    """An enum member from itself, onnxruntime's member of the same name, or its name as a string."""
    if isinstance(value, kind):
        return value
    name = getattr(value, "name", value)
    if isinstance(name, str):
        for member in kind:
            if member.name.lower() == name.lower():
                return member
    raise ValueError(f"generate_artifacts(): unknown {argument}. Expected one of {[m.name for m in kind]}. "
                     f"Received: {argument}={value!r}")


# ------------------------------------------------------------------------------------------ checkpoint
def save_checkpoint(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], requires_grad: Sequence[str],
                    frozen_params: Sequence[str] = (), optimizer_state: Sequence[str] = (),
                    external_data: bool | None = None) -> Path:
    """Write a checkpoint: an ONNX model with no inputs that outputs each tensor under its name.

    It also outputs the start of gradient accumulation for every ``requires_grad`` tensor (a zero
    ``<name>_grad.accumulation.buffer``) and ``lazy_reset_grad`` = ``[True]``, so running it gives every
    state input of the artefacts. Written atomically; ``external_data`` as for ``onnxforge``'s exports.

    Example:
        >>> import os, tempfile, numpy as np
        >>> p = save_checkpoint(os.path.join(tempfile.mkdtemp(), "checkpoint"), {"w": np.ones(2, np.float32)}, ["w"])
        >>> state = load_checkpoint(p); state["requires_grad"], state["tensors"]["w"].tolist()
        (['w'], [1.0, 1.0])
    """
    items = [(name, np.asarray(array)) for name, array in tensors.items()]
    items += [(f"{name}_grad.accumulation.buffer", np.zeros_like(np.asarray(tensors[name])))
              for name in requires_grad if name in tensors]
    items.append(("lazy_reset_grad", np.array([True])))
    model = portable.initial_state_model(items, doc_string=(
        "onnxforge checkpoint (onnxruntime-training layout): no inputs; its outputs are the initial value of "
        "every state input of the training, eval and optimizer models, by name."))
    model.graph.name = "onnxforge_checkpoint"
    model.metadata_props.add(key=contract.CHECKPOINT_KEY, value=json.dumps(
        {"format": 2, "requires_grad": list(requires_grad), "frozen_params": list(frozen_params),
         "optimizer_state": list(optimizer_state)}))
    model.metadata_props.add(key=contract.FORMAT_KEY, value=portable.INIT_FORMAT)
    onnx.checker.check_model(model, full_check=True)
    return write_onnx(model, Path(path), external_data=external_data)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint (through ``onnxforge.saving.load_onnx``): ``{"tensors": {name: array},
    "requires_grad": [...], "frozen_params": [...], "optimizer_state": [...]}``.

    ``tensors`` holds the parameters and the optimizer state (not the accumulation buffers). Checkpoints of
    the first format (tensors as initializers, outputs ``checkpoint/<name>``) load too.
    """
    model = load_onnx(path)
    meta = {p.key: p.value for p in model.metadata_props}
    if contract.CHECKPOINT_KEY not in meta:
        raise ValueError(f"load_checkpoint(): {os.fspath(path)!r} is an ONNX model but not an onnxforge checkpoint "
                         f"(no metadata_props[{contract.CHECKPOINT_KEY!r}]).")
    info = json.loads(meta[contract.CHECKPOINT_KEY])
    if info.get("format", 1) == 1:
        info["tensors"] = {t.name: protos.array_from_tensor(t) for t in model.graph.initializer}
        return info
    values = portable.initial_values(model, path)
    stored = list(info["requires_grad"]) + list(info["frozen_params"]) + list(info["optimizer_state"])
    info["tensors"] = {name: values[name] for name in values if name in set(stored)}
    return info


def _write(model: onnx.ModelProto, path: Path, checkpoint: str) -> Path:
    model.metadata_props.add(key=contract.INIT_MODEL_KEY, value=checkpoint)
    onnx.checker.check_model(model, full_check=True)
    return write_onnx(model, path)


# ------------------------------------------------------------------------------------------ graphs
def _expose(model: onnx.ModelProto, wanted: Sequence[str]) -> onnx.ModelProto:
    """Make the ``wanted`` initializers true graph inputs (no defaults: their values are the checkpoint's)."""
    inits = {t.name: t for t in model.graph.initializer}
    present = {i.name for i in model.graph.input}
    for name in wanted:
        if name in inits and name not in present:
            t = inits[name]
            model.graph.input.append(protos.value_info(name, t.data_type, list(t.dims)))
    kept = [t for t in model.graph.initializer if t.name not in set(wanted)]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def _with_loss(base: onnx.ModelProto, loss: LossType | None, loss_input: str,
               additional: Sequence[str]) -> tuple[onnx.ModelProto, list[str]]:
    """The base graph with the loss appended: outputs ``loss`` then ``additional``; returns the label inputs."""
    b = GraphBuilder.from_model(base)
    if loss_input not in b.values:
        raise ValueError(f"generate_artifacts(): no value named {loss_input!r} to compute the loss on. "
                         f"Received: loss_input_names=[{loss_input!r}]")
    pred = b.value(loss_input)
    if pred.dtype not in (None, TensorProto.FLOAT):
        pred = b.op("Cast", [pred], to=TensorProto.FLOAT, shape=pred.shape)
    labels: list[str] = []
    if loss is None:
        value = pred if pred.shape == () else b.op("ReduceSum", [pred], keepdims=0, dtype=TensorProto.FLOAT, shape=())
    elif loss is LossType.CrossEntropyLoss:
        if pred.shape is None or len(pred.shape) < 2:
            raise ValueError(f"generate_artifacts(): CrossEntropyLoss needs scores shaped (batch, classes, ...); "
                             f"{loss_input!r} has shape {pred.shape}.")
        shape = (pred.shape[0], *pred.shape[2:])
        target = b.input("labels", TensorProto.INT64, shape)
        labels.append(target.name)
        value = b.op("SoftmaxCrossEntropyLoss", [pred, target], reduction="mean", dtype=TensorProto.FLOAT, shape=())
    else:
        target = b.input("target", TensorProto.FLOAT, pred.shape)
        labels.append(target.name)
        if loss is LossType.MSELoss:
            diff = pred - target
            per = diff * diff
        elif loss is LossType.L1Loss:
            per = b.op("Abs", [pred - target])
        else:  # BCEWithLogitsLoss: max(x, 0) - x * t + log(1 + exp(-|x|)), stable for any logit
            per = b.op("Relu", [pred]) - pred * target + b.op("Softplus", [b.op("Neg", [b.op("Abs", [pred])])])
        value = b.op("ReduceMean", [per], keepdims=0, dtype=TensorProto.FLOAT, shape=())
    b.outputs = []
    b.output(value, "loss")
    for name in additional:
        if name not in b.values:
            raise ValueError(f"generate_artifacts(): additional output {name!r} is not a value of the graph.")
        b.output(b.value(name))
    model = b.to_model(name=base.graph.name or "model")
    return model, labels


def _accumulating(grad_model: onnx.ModelProto, params: Sequence[str]) -> onnx.ModelProto:
    """Replace each ``<p>_grad`` output by onnxruntime-training's accumulated ``<p>_grad.accumulation.out``."""
    b = GraphBuilder.from_model(grad_model)
    reset = b.input("lazy_reset_grad", TensorProto.BOOL, (1,))
    reset_scalar = b.op("Squeeze", [reset], dtype=TensorProto.BOOL, shape=())
    grads = {f"{p}_grad" for p in params}
    b.outputs = [o for o in b.outputs if o.name not in grads]
    for p in params:
        g = b.value(f"{p}_grad")
        buffer = b.input(f"{p}_grad.accumulation.buffer", g.dtype, g.shape)
        total = b.op("Where", [reset_scalar, g, buffer + g], dtype=g.dtype, shape=g.shape)
        b.output(total, f"{p}_grad.accumulation.out")
    return b.to_model(name=grad_model.graph.name)   # the checkpoint starts the buffers (zeros, reset)


def _optimizer_model(optimizer: Any, params: Mapping[str, np.ndarray]) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The update of every parameter; returns the model and the optimizer state's initial values."""
    b = GraphBuilder()
    lr = b.input(contract.LEARNING_RATE, TensorProto.FLOAT, ())
    step = b.input("step", TensorProto.INT64, ())
    variables, values, grads, slots = [], [], [], []
    state: dict[str, np.ndarray] = {"step": np.array(0, np.int64)}
    for name, array in params.items():
        var = Variable(array, name=name, dtype=array.dtype)
        elem = onnx_dtype(array.dtype)
        variables.append(var)
        values.append(b.input(name, elem, array.shape))
        grads.append(b.input(f"{name}_grad.accumulation.out", elem, array.shape))
        own = {}
        for slot, init in optimizer.slot_specs():
            own[slot] = b.input(f"{name}.{slot}", elem, array.shape)
            state[f"{name}.{slot}"] = np.full(array.shape, init, array.dtype)
        slots.append(own)
    new_params, new_slots = optimizer.update_graph(b, variables, values, grads, slots, lr, step)
    pairs = []
    for value, new in zip(values, new_params):
        b.output(new, contract.new_state(value.name))
        pairs.append([value.name, contract.new_state(value.name)])
    for own, news in zip(slots, new_slots):
        for slot, value in own.items():
            b.output(news[slot], contract.new_state(value.name))
            pairs.append([value.name, contract.new_state(value.name)])
    b.output(step + 1, contract.new_state("step"))
    pairs.append(["step", contract.new_state("step")])
    for out in b.outputs:  # every output carries its input's type
        source = b.values.get(out.name.removesuffix(":new"))
        if source is not None:
            out.dtype, out.shape = source.dtype, source.shape
    model = b.to_model(name="onnxforge_optimizer")   # the state's initial values go to the checkpoint
    model.metadata_props.add(key=contract.STATE_KEY, value=json.dumps(pairs))
    return model, state


def _optimizer(optimizer: Any) -> Any:
    if isinstance(optimizer, optimizers_lib.Optimizer):
        return optimizer
    kind = _enum(optimizer, OptimType, "optimizer")
    if kind is OptimType.AdamW:  # onnxruntime-training's (and torch's) AdamW defaults
        return optimizers_lib.AdamW(weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    return optimizers_lib.SGD()


def _describe(model: onnx.ModelProto, kind: str, **roles: Any) -> onnx.ModelProto:
    model.metadata_props.add(key=contract.ARTIFACT_KEY, value=json.dumps({"kind": kind, **roles}))
    model.doc_string = (f"onnxforge {kind} (onnxruntime-training layout, standard ai.onnx ops). Every input but "
                        "the batch and learning_rate starts as the output of the same name of the model named by "
                        "metadata_props['onnxforge.init_model'] (the checkpoint: no inputs).")
    return model


# ------------------------------------------------------------------------------------------ entry point
def generate_artifacts(model: Any, requires_grad: Sequence[str] | None = None,
                       frozen_params: Sequence[str] | None = None, loss: Any = None, optimizer: Any = None,
                       artifact_directory: str | os.PathLike[str] | None = None, prefix: str = "",
                       ort_format: bool = False, custom_op_library: Any = None,
                       additional_output_names: Sequence[str] | None = None, nominal_checkpoint: bool = False,
                       loss_input_names: Sequence[str] | None = None) -> dict[str, Path]:
    """Write ``training_model.onnx``, ``eval_model.onnx``, ``optimizer_model.onnx`` and ``checkpoint``.

    Args:
        model: the forward (inference) model: an ``onnx.ModelProto``, a path (read with
            ``onnxforge.saving.load_onnx``), or an onnxforge model (its inference graph is used).
        requires_grad: initializer names to train; default every float weight not in ``frozen_params``.
        frozen_params: parameters kept fixed (stored in the checkpoint, fed as inputs with defaults).
        loss: a ``LossType`` (or its name, or onnxruntime's enum member); ``None`` when the model's first
            output (or ``loss_input_names[0]``) already is the loss (summed if not a scalar).
        optimizer: an ``OptimType`` / name, an ``onnxforge.optimizers.Optimizer``, or ``None`` (no optimizer
            model).
        artifact_directory: where to write (created if needed); default the working directory.
        prefix: prepended to every file name.
        ort_format, custom_op_library, nominal_checkpoint: onnxruntime-training options with no standard-op
            equivalent; must stay at their defaults.
        additional_output_names: graph values the training and eval models also output.
        loss_input_names: the value the loss is computed on (default the model's first output).

    Returns:
        ``{"training_model": path, "eval_model": path, "optimizer_model": path, "checkpoint": path}`` (no
        ``optimizer_model`` without an optimizer).
    """
    for option, value, default in (("ort_format", ort_format, False), ("custom_op_library", custom_op_library, None),
                                   ("nominal_checkpoint", nominal_checkpoint, False)):
        if value != default:
            raise NotImplementedError(f"generate_artifacts(): {option} is an onnxruntime-training option with no "
                                      f"standard-op equivalent (the artefacts are plain .onnx files for stock "
                                      f"onnxruntime). Received: {option}={value!r}")
    from onnxforge.models.model import Model

    if isinstance(model, Model):
        from onnxforge.compiler import build_infer

        base = build_infer(model, weights="initializers").model
    else:
        base = _load(model)
    base = _normalize(base)
    loss_kind = None if loss is None else _enum(loss, LossType, "loss")
    frozen = list(frozen_params or [])
    if requires_grad is None:
        trainable, _ = _classify(base.graph, None)
        trainable = [n for n in trainable if n not in frozen]
    else:
        trainable = list(requires_grad)
    both = sorted(set(trainable) & set(frozen))
    if both:
        raise ValueError(f"generate_artifacts(): a parameter cannot be frozen and require gradient computation at "
                         f"the same time. Received both in requires_grad and frozen_params: {both}")
    inits = {t.name: t for t in base.graph.initializer}
    missing = [n for n in trainable + frozen if n not in inits]
    if missing:
        raise ValueError(f"generate_artifacts(): {missing} are not initializers of the model. Initializers: "
                         f"{sorted(inits)[:30]}")
    loss_input = (list(loss_input_names) if loss_input_names else [base.graph.output[0].name])[0]

    with_loss, labels = _with_loss(base, loss_kind, loss_input, list(additional_output_names or []))
    params = trainable + frozen
    data_inputs = [i.name for i in base.graph.input if i.name not in inits]
    outputs = ["loss", *(additional_output_names or [])]
    eval_model = onnx.ModelProto()
    eval_model.CopyFrom(with_loss)
    eval_model = _describe(_expose(eval_model, params), "eval_model", inputs=data_inputs, labels=labels,
                           requires_grad=trainable, frozen_params=frozen, outputs=outputs)
    training = _accumulating(gradient_model(with_loss, "loss", trainable), trainable)
    training = _describe(_expose(training, params), "training_model", inputs=data_inputs, labels=labels,
                         requires_grad=trainable, frozen_params=frozen, outputs=outputs,
                         gradients=[f"{p}_grad.accumulation.out" for p in trainable],
                         accumulation_buffers=[f"{p}_grad.accumulation.buffer" for p in trainable],
                         lazy_reset_grad="lazy_reset_grad")

    folder = Path(artifact_directory) if artifact_directory is not None else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = f"{prefix}checkpoint"
    tensors = {n: protos.array_from_tensor(inits[n]) for n in params}
    state: dict[str, np.ndarray] = {}
    models = {"training_model": training, "eval_model": eval_model}
    if optimizer is not None:
        opt = _optimizer(optimizer)
        optim_model, state = _optimizer_model(opt, {n: tensors[n] for n in trainable})
        models["optimizer_model"] = _describe(optim_model, "optimizer_model", optimizer=type(opt).__name__,
                                              config=optimizers_lib.serialize(opt)["config"], requires_grad=trainable)
    # The checkpoint first: every model written after it names it as its initial state.
    paths = {"checkpoint": save_checkpoint(folder / checkpoint, {**tensors, **state}, trainable, frozen, list(state))}
    for kind, model_proto in models.items():
        paths[kind] = _write(model_proto, folder / f"{prefix}{kind}.onnx", checkpoint)
    return {k: paths[k] for k in ("training_model", "eval_model", "optimizer_model", "checkpoint") if k in paths}
