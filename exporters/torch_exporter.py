"""PyTorch ``nn.Module`` -> onnxforge model (and trained weights back into the module).

``from_torch`` exports the module with ``torch.onnx.export`` and wraps the graph with
``onnxforge.Model.from_onnx``. Two exporters, one contract -- every parameter stays a graph initializer
under its ``state_dict`` name (``fc1.weight``), so it can be trained:

* ``dynamo=True`` (the default, as in ``torch.onnx.export``; needs ``onnxscript``): torch's
  ``torch.export``-based exporter with its graph optimizer off. The optimizer folds constants, which turns
  weights into anonymous transposed copies, deduplicates equal initializers (freshly initialized LayerNorm
  weights are all ones) and folds eval-mode BatchNorm into the convolution before it. A tied parameter
  (GPT-2's ``lm_head.weight`` is ``wte.weight``) is exported once, under whichever alias the tracer met
  first: it is renamed to the module's canonical name. Every parameter that influences the outputs must
  arrive as an initializer; one the export turned into a constant is an error that names it.
* ``dynamo=False``: the TorchScript exporter, with constant folding off.

The module is traced in training mode, so Dropout nodes are in the graph and BatchNorm is not fused; a
module in training mode is exported with batch-statistics BatchNormalization (``training_mode=1``), as
it computes. ``training_mode`` then decides how the graph's BatchNormalization / Dropout nodes behave
inside ``fit``; the module's own state is left as it was.

After ``fit``, ``to_torch_state_dict(model, module)`` writes the trained weights back into the module.

Note on BatchNormalization running variance: ONNX updates it with the batch's population variance, PyTorch
with the unbiased one (a factor ``n / (n - 1)`` on the batch term); losses and running means agree.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> model = from_torch(net, torch.zeros(2, 4))
    >>> [v.name for v in model.trainable_weights]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> _ = model.fit(torch.randn(16, 4).numpy(), torch.randn(16, 3).numpy(), verbose=0)
    >>> state = to_torch_state_dict(model, net)      # net now holds the trained weights
"""
from __future__ import annotations

__all__ = ["from_torch", "to_torch_state_dict", "export_torch"]

import copy
import inspect
import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from onnxforge.graph import protos
from onnxforge.models.onnx_model import OnnxModel, from_onnx

#: The opset torch exports at by default; from_onnx converts it to onnxforge's opset. 23 and 24 work too
#: (scaled-dot-product attention then becomes the Attention op).
TORCH_OPSET = 20


def _as_tuple(example_inputs: Any) -> tuple:
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)


def _default_input_names(module: Any, count: int) -> list[str]:
    try:
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params[:count]]
    if len(names) < count:
        names = ["input" if k == 0 else f"input_{k}" for k in range(count)]
    return names


def _count_outputs(module: Any, args: tuple) -> int:
    import torch

    with torch.no_grad():
        out = module(*args)
    return len(out) if isinstance(out, (tuple, list)) else 1


def export_torch(module: Any, example_inputs: Any, dynamic_batch: bool = True,
                 input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
                 opset: int = TORCH_OPSET, *, dynamo: bool = True, **export_kwargs: Any) -> onnx.ModelProto:
    """The module as an ONNX ``ModelProto``, parameters under their ``state_dict`` names.

    The module is traced in training mode without constant folding (see the module docstring); its
    parameters, buffers and ``training`` flag are restored afterwards.

    Args:
        module: a ``torch.nn.Module``.
        example_inputs: a tensor or a tuple of tensors, as ``module(*example_inputs)`` takes them.
        dynamic_batch: make axis 0 of every input (and output) symbolic, so any batch size runs.
        input_names / output_names: graph names (default: ``forward``'s argument names; ``output``,
            ``output_1``, ...).
        opset: the opset torch writes.
        dynamo: torch's default ``torch.export``-based exporter (needs ``onnxscript``); ``False`` for the
            TorchScript one.
        **export_kwargs: passed to ``torch.onnx.export`` (``dynamic_axes`` / ``dynamic_shapes`` to add more
            symbolic axes...).

    Raises:
        ValueError: a parameter that influences the outputs is not an initializer of the exported graph
            (the export made it a constant, so it could never be trained); the message names it.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch() expects a torch.nn.Module. Received: {type(module).__name__}")
    args = _as_tuple(example_inputs)
    bad = [type(a).__name__ for a in args if not isinstance(a, torch.Tensor)]
    if bad:
        raise TypeError(f"from_torch(): example_inputs must be tensors. Received: {bad}")
    state = copy.deepcopy(module.state_dict())
    was_training = module.training
    try:
        in_names = list(input_names) if input_names is not None else _default_input_names(module, len(args))
        if output_names is None:
            n_out = _count_outputs(module, args)
            output_names = ["output" if k == 0 else f"output_{k}" for k in range(n_out)]
        out_names = list(output_names)
        if len(in_names) != len(args):
            raise ValueError(f"from_torch(): {len(args)} example input(s) but {len(in_names)} input name(s). "
                             f"Received: input_names={input_names!r}")
        if dynamo:
            proto = _export_dynamo(module, args, in_names, out_names, opset, dynamic_batch, export_kwargs)
        else:
            proto = _export_torchscript(module, args, in_names, out_names, opset, dynamic_batch, export_kwargs)
    finally:
        module.load_state_dict(state)  # tracing in training mode moved BatchNorm statistics
        module.train(was_training)
    if dynamo:
        _canonical_parameter_names(module, proto)
        if was_training:
            _batch_statistics(module, proto)
        _check_parameters_kept(module, args, proto, state)
    _padding_rows_untrained(module, proto)
    # The exporter serialized the parameters after its tracing forward passes: put back the values the
    # module had (BatchNorm running statistics moved during those passes).
    for t in proto.graph.initializer:
        if t.name in state:
            t.CopyFrom(protos.tensor_from_array(state[t.name].detach().cpu().numpy(), t.name))
    return proto


def _export_torchscript(module, args: tuple, in_names: list[str], out_names: list[str], opset: int,
                        dynamic_batch: bool, export_kwargs: dict) -> onnx.ModelProto:
    import torch

    axes = dict(export_kwargs.pop("dynamic_axes", None) or {})
    if dynamic_batch:
        for n in in_names + out_names:
            axes.setdefault(n, {})
            if isinstance(axes[n], dict):
                axes[n].setdefault(0, "batch")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and training-mode notices
        torch.onnx.export(module, args, buffer, input_names=in_names, output_names=out_names,
                          opset_version=opset, dynamic_axes=axes or None, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.TRAINING, dynamo=False, **export_kwargs)
    return onnx.load_from_string(buffer.getvalue())


def _export_dynamo(module, args: tuple, in_names: list[str], out_names: list[str], opset: int,
                   dynamic_batch: bool, export_kwargs: dict) -> onnx.ModelProto:
    import torch

    try:
        import onnxscript  # noqa: F401  (torch's exporter imports it lazily; fail early and clearly)
    except ImportError:
        raise ImportError("from_torch(dynamo=True) uses torch's default ONNX exporter, which needs the "
                          "onnxscript package (pip install onnxscript); pass dynamo=False for the TorchScript "
                          "exporter.") from None
    if dynamic_batch and "dynamic_shapes" not in export_kwargs and "dynamic_axes" not in export_kwargs:
        batch = torch.export.Dim.DYNAMIC
        export_kwargs["dynamic_shapes"] = tuple({0: batch} if a.dim() > 0 else None for a in args)
    module.train()  # Dropout stays in the graph; BatchNorm is not folded (see the module docstring)
    export_kwargs.setdefault("optimize", False)  # its constant folding turns weights into anonymous copies
    export_kwargs.setdefault("verbose", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, input_names=in_names, output_names=out_names,
                                    opset_version=opset, dynamo=True, **export_kwargs)
    return program.model_proto


def _canonical_parameter_names(module, proto: onnx.ModelProto) -> None:
    """Rename initializers exported under an alias of a tied parameter or buffer to the name
    ``named_parameters()`` / ``named_buffers()`` give it (the first one registered)."""
    canonical: dict[int, str] = {}
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        canonical.setdefault(id(t), name)
    rename = {}
    for name, t in list(module.named_parameters(remove_duplicate=False)) + \
            list(module.named_buffers(remove_duplicate=False)):
        if canonical.get(id(t), name) != name:
            rename[name] = canonical[id(t)]
    inits = {t.name for t in proto.graph.initializer}
    rename = {a: c for a, c in rename.items() if a in inits and c not in inits}
    if rename:
        _rename_everywhere(proto.graph, rename)
    # The module's own order (what named_parameters() and the TorchScript exporter give), then the rest.
    order = {name: k for k, name in enumerate(module.state_dict())}
    ordered = sorted(proto.graph.initializer, key=lambda t: order.get(t.name, len(order)))
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(ordered)


def _rename_everywhere(graph: onnx.GraphProto, rename: dict[str, str]) -> None:
    for t in graph.initializer:
        t.name = rename.get(t.name, t.name)
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        vi.name = rename.get(vi.name, vi.name)
    for node in graph.node:
        node.input[:] = [rename.get(i, i) for i in node.input]
        for a in node.attribute:  # subgraphs read outer names too
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _rename_everywhere(g, rename)


def _batch_statistics(module, proto: onnx.ModelProto) -> None:
    """BatchNormalization nodes of BatchNorm modules in training mode normalize with batch statistics
    (``training_mode=1``), as the module does: torch's exporter writes them in inference form."""
    import torch

    running = {f"{name}.running_mean" for name, m in module.named_modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats}
    taken = {o for n in proto.graph.node for o in n.output} | {i for n in proto.graph.node for i in n.input}
    for node in proto.graph.node:
        if node.op_type == "BatchNormalization" and len(node.input) > 3 and node.input[3] in running:
            for a in list(node.attribute):
                if a.name == "training_mode":
                    node.attribute.remove(a)
            node.attribute.append(protos.attribute("training_mode", 1))
            while len(node.output) < 3:  # training mode has the updated running statistics as outputs too
                name = f"{node.output[0]}_running_{'mean' if len(node.output) == 1 else 'var'}"
                while name in taken:
                    name += "_"
                taken.add(name)
                node.output.append(name)
    # The running statistics become overridable inputs (initializers as defaults), as they are state: an
    # onnxruntime session otherwise merges equal constant initializers (fresh statistics equal the fresh
    # scale and bias) and its training-mode kernel then writes the updated statistics over the shared
    # buffer, corrupting the normalization (onnxruntime 1.32, CPU, default optimizations).
    inputs = {i.name for i in proto.graph.input}
    for t in proto.graph.initializer:
        if t.name in running or t.name.removesuffix("running_var") + "running_mean" in running:
            if t.name not in inputs:
                proto.graph.input.append(protos.value_info(t.name, t.data_type, list(t.dims)))


def _padding_rows_untrained(module, proto: onnx.ModelProto) -> None:
    """``nn.Embedding(padding_idx=p)`` never sends gradient to row ``p`` from its lookups; the exported
    ``Gather`` would. Each lookup of such a table becomes ``Where(ids == p, row_p, Gather(W, ids))``: the
    same values, and no gradient to row ``p`` through the lookup (other uses of a tied weight still give
    it one, as in torch)."""
    import torch

    pads = {f"{name}.weight": int(m.padding_idx) for name, m in module.named_modules()
            if isinstance(m, torch.nn.Embedding) and m.padding_idx is not None}
    if not pads:
        return
    inits = {t.name: t for t in proto.graph.initializer}
    taken = {o for n in proto.graph.node for o in n.output} | set(inits) | {i.name for i in proto.graph.input}

    def fresh(hint: str) -> str:
        name = hint
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    nodes = []
    for node in proto.graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        table = inits.get(node.input[0]) if node.op_type == "Gather" and node.input else None
        if table is None or node.input[0] not in pads or axis != 0:
            nodes.append(node)
            continue
        pad = pads[node.input[0]]
        weight = protos.array_from_tensor(table)
        row, index = fresh(f"{table.name}.padding_row"), fresh(f"{table.name}.padding_idx")
        proto.graph.initializer.extend([protos.tensor_from_array(weight[pad].copy(), row),
                                        protos.tensor_from_array(np.array(pad, np.int64), index)])
        looked_up, ids, is_pad = fresh(f"{node.output[0]}_lookup"), fresh(f"{node.output[0]}_ids"), \
            fresh(f"{node.output[0]}_is_padding")
        out = node.output[0]
        node.output[0] = looked_up
        nodes += [node, protos.node("Cast", [node.input[1]], [ids], to=onnx.TensorProto.INT64),
                  protos.node("Equal", [ids, index], [is_pad]),
                  protos.node("Unsqueeze", [is_pad, fresh(f"{out}_last_axis")], [fresh(f"{out}_mask")])]
        proto.graph.initializer.append(protos.tensor_from_array(np.array([-1], np.int64),
                                                                    nodes[-1].input[1]))
        nodes.append(protos.node("Where", [nodes[-1].output[0], row, looked_up], [out]))
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)


def _check_parameters_kept(module, args: tuple, proto: onnx.ModelProto, state: dict) -> None:
    """Every parameter that influences the module's outputs must be a graph initializer."""
    import torch

    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    inits = {t.name for t in proto.graph.initializer}
    missing = [(n, p) for n, p in params if n not in inits]
    if not missing:
        return
    try:
        with torch.enable_grad():
            out = module(*args)
        outs = [o for o in (out if isinstance(out, (tuple, list)) else [out])
                if isinstance(o, torch.Tensor) and o.is_floating_point() and o.requires_grad]
        grads = torch.autograd.grad([o.sum() for o in outs], [p for _, p in missing], allow_unused=True) \
            if outs else [None] * len(missing)
    finally:
        module.load_state_dict(state)
    lost = [f"{n} {tuple(p.shape)}" for (n, p), g in zip(missing, grads) if g is not None]
    if lost:
        raise ValueError(f"from_torch(): torch's exporter turned parameter(s) {lost} into constants of the graph "
                         f"(they influence the outputs but are not initializers), so they could never be "
                         f"trained. Initializers it kept: {sorted(inits)[:20]}. Try dynamo=False (the "
                         f"TorchScript exporter) or a different opset.")


def from_torch(module: Any, example_inputs: Any, dynamic_batch: bool = True, *,
               input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
               trainable: Sequence[str] | None = None, training_mode: bool | None = None,
               name: str | None = None, opset: int = TORCH_OPSET, dynamo: bool = True,
               **export_kwargs: Any) -> OnnxModel:
    """An onnxforge model computing ``module``, its weights named as in ``module.state_dict()``.

    Args:
        module: a ``torch.nn.Module`` (left unchanged).
        example_inputs: a tensor or tuple of tensors for ``module(*example_inputs)``.
        dynamic_batch: axis 0 of every input and output is symbolic, so any batch size runs.
        input_names / output_names: the model's input and output names.
        trainable: the parameter names to train; default: every parameter with ``requires_grad``
            (buffers such as BatchNorm running statistics are state).
        training_mode: whether BatchNorm / Dropout behave as in ``module.train()`` inside ``fit``;
            default ``module.training``.
        name: the onnxforge model's name.
        opset: the opset torch exports at.
        dynamo: torch's default ``torch.export``-based exporter (needs ``onnxscript``); ``False`` for the
            TorchScript one.
        **export_kwargs: passed to ``torch.onnx.export``.

    Returns:
        An ``OnnxModel``: ``compile`` / ``fit`` / ``evaluate`` / ``predict`` / ``export`` like any model.
    """
    proto = export_torch(module, example_inputs, dynamic_batch, input_names, output_names, opset, dynamo=dynamo,
                         **export_kwargs)
    if trainable is None:
        inits = {t.name for t in proto.graph.initializer}
        trainable = [n for n, p in module.named_parameters() if p.requires_grad and n in inits]
    if training_mode is None:
        training_mode = bool(module.training)
    return from_onnx(proto, trainable=list(trainable), training_mode=training_mode, name=name)


def to_torch_state_dict(model: Any, module: Any = None, strict: bool = True) -> dict[str, Any]:
    """The model's weights as a torch ``state_dict``; with ``module``, loaded into it too.

    Args:
        model: an onnxforge model made by ``from_torch`` (weights named like the module's state).
        module: the ``nn.Module`` to write the weights into (in place), or ``None``.
        strict: with ``module``, every weight of the model must match one of its entries (name and shape).

    Returns:
        ``{name: tensor}``: with ``module``, its whole ``state_dict`` after the update; else the model's
        weights only.
    """
    import torch

    weights = {v.path: torch.from_numpy(v.numpy().copy()) for v in model.weights}
    if module is None:
        return weights
    own = module.state_dict()
    unknown = [n for n in weights if n not in own]
    mismatched = [f"{n}: {tuple(w.shape)} vs {tuple(own[n].shape)}" for n, w in weights.items()
                  if n in own and tuple(w.shape) != tuple(own[n].shape)]
    if strict and (unknown or mismatched):
        raise ValueError(f"to_torch_state_dict(): the model's weights do not match the module's state_dict. "
                         f"Unknown names: {unknown}; shape mismatches: {mismatched}")
    update = {n: w.to(dtype=own[n].dtype) for n, w in weights.items() if n in own and not
              any(m.startswith(f"{n}:") for m in mismatched)}
    own.update(update)
    module.load_state_dict(own)
    return module.state_dict()
