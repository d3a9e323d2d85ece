"""Standalone ``.onnx`` files of a model's programs: what any onnxruntime, in any language, can run.

Three exports, each one self-contained file in standard ``ai.onnx`` ops that passes
``onnx.checker.check_model(full_check=True)``:

* :func:`export_inference` -- the ``infer`` program with every weight stored as an initializer named after
  its variable (``dense/kernel``): model inputs -> model outputs, Keras input / output names, a dynamic
  ``batch`` axis (and ``sequence`` axis where a single input has one).
* :func:`export_training` -- the compiled ``train_step`` program with its I/O contract (see
  ``onnxforge.graph.contract``): every state tensor (weights, optimizer slots, step counter, BatchNorm
  statistics, RNG state) is a true input (no initializer default) and, as ``<name>:new``, an output; the
  pairs are listed in ``metadata_props["onnxforge.state"]``. The state's value at export time goes to a
  companion model ``<name>.init.onnx`` with no inputs whose outputs, named after the inputs, are that
  state (format and reasons: ``onnxforge.saving.portable``).
* :func:`export_eval` -- the ``eval_step`` program (loss and metric batch sums), weights as true inputs,
  their current values in the companion model.
* ``export_inference(..., weights="inputs")`` -- the inference graph in the same form, to predict with
  weights trained elsewhere.

Every file carries ``doc_string`` and ``metadata_props``: producer, onnxforge version, the program kind,
the role of every input and output, the input layout (``NHWC``...), and class names when given. Files
whose tensors exceed protobuf's 2 GB limit keep their weights in an external-data file beside them.
Writes are atomic (see :func:`onnxforge.saving.atomic_write`).

Example:
    >>> import os, tempfile, onnx
    >>> import onnxforge as tf
    >>> tf.keras.backend.clear_session()   # layer names count from zero again
    >>> model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,), name="out")])
    >>> path = export_inference(model, os.path.join(tempfile.mkdtemp(), "model.onnx"))
    >>> m = onnx.load(path)
    >>> [i.name for i in m.graph.input], [o.name for o in m.graph.output]
    (['input_layer'], ['out'])

The ``ModelProto`` of each program is built in ``export_protos``, files are written by ``onnx_file``; this
module holds the three entry points (and re-exports the others' public names).
"""
from __future__ import annotations

__all__ = [
    "EXTERNAL_DATA_LIMIT", "export_inference", "export_training", "export_eval", "inference_proto",
    "inference_parts", "training_proto", "training_parts", "eval_proto", "eval_parts", "write_onnx", "write_step",
    "upgrade_training",
]

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..graph import contract
from . import portable
from ..graph.safe_load import OnnxLoadError
from .export_protos import eval_parts, eval_proto, inference_parts, inference_proto, training_parts, training_proto
from .onnx_file import EXTERNAL_DATA_LIMIT, _checked_write, write_onnx, write_step


def upgrade_training(source: str | os.PathLike[str], target: str | os.PathLike[str] | None = None,
                     external_data: bool | None = None) -> Path:
    """Rewrite a step file of the first format (state inputs with initializer defaults) as a portable pair.

    Args:
        source: a file from ``export_training`` / ``export_eval`` of onnxforge <= 0.1.
        target: where to write the step graph (default: ``source`` itself); its companion goes beside it.
        external_data: see :func:`write_onnx`.

    Returns:
        The written step graph's path.

    Raises:
        OnnxLoadError: ``source`` is unreadable, not an onnxforge step file, or already portable.
    """
    loaded = portable.load_training(source)
    if loaded.version != 1:
        raise OnnxLoadError(source, f"it is already format {loaded.metadata.get(contract.FORMAT_KEY)!r} "
                                    f"(its initial state is '{loaded.init_path.name}'); nothing to upgrade")
    items = [(i.name, loaded.state[i.name]) for i in loaded.proto.graph.input if i.name in loaded.state]
    return write_step(loaded.proto, items, target if target is not None else source, external_data,
                      "upgrade_training")


# ------------------------------------------------------------------------------------------ public
def export_inference(model: Any, path: str | os.PathLike[str], opset: int | None = None,
                     class_names: Sequence[str] | None = None, external_data: bool | None = None,
                     weights: str = "initializers") -> Path:
    """Write ``model``'s inference graph to ``path`` (what ``model.export(path)`` does).

    Args:
        model: a built model (compiled or not).
        path: the ``.onnx`` file to write (atomically).
        opset: the ``ai.onnx`` opset to emit, in ``[MIN_OPSET, MAX_OPSET]`` (default: onnxforge's pinned
            opset). Other opsets are reached with ``onnx.version_converter`` and verified against the
            original on random inputs.
        class_names: optional names of the classes (the first output's last axis), stored in
            ``metadata_props["onnxforge.class_names"]``.
        external_data: see :func:`write_onnx` (default: only past 2 GB).
        weights: ``"initializers"`` (default): the weights are inside, the graph has the model's inputs only.
            ``"inputs"``: every weight is a true input and ``<name>.init.onnx`` beside ``path`` holds their
            values (as :func:`export_training` writes), for runtimes that train the weights themselves.

    Returns:
        The written path.
    """
    if weights == "inputs":
        return write_step(*inference_parts(model, opset, class_names), path, external_data, "export")
    if weights != "initializers":
        raise ValueError(f"export(): weights must be 'initializers' or 'inputs'. Received: weights={weights!r}")
    proto, _ = inference_proto(model, opset, class_names)
    return _checked_write(proto, path, external_data, "export")


def export_training(model: Any, path: str | os.PathLike[str], opset: int | None = None,
                    external_data: bool | None = None) -> Path:
    """Write the compiled training step to ``path`` and its initial state to ``<name>.init.onnx`` beside it.

    Every state tensor is a true graph input (no initializer defaults, so every onnxruntime binding lists
    and accepts it) and, as ``<name>:new``, an output; ``metadata_props["onnxforge.state"]`` pairs them.
    The companion model has no inputs; its outputs, named after the inputs they feed, are the state now.
    With onnxruntime alone (JavaScript: ``await init.run({})`` and the same loop)::

        sess = ort.InferenceSession(path)
        meta = sess.get_modelmeta().custom_metadata_map
        init = ort.InferenceSession(os.path.join(os.path.dirname(path), meta["onnxforge.init_model"]))
        state = dict(zip([o.name for o in init.get_outputs()], init.run(None, {})))
        pairs = json.loads(meta["onnxforge.state"])      # [[input, output], ...]
        for x, y in batches:
            feeds = {"input_layer": x, "target/dense": y, "sample_weight/dense": np.ones(len(x), "f"),
                     "learning_rate": np.asarray(0.01, np.float32), **state}
            out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
            state.update({i: out[o] for i, o in pairs})
            loss = out["sums/loss/total"] / out["sums/loss/count"]

    ``onnxforge.saving.load_training`` reads the pair (and files of the earlier one-file format).
    """
    proto, state = training_parts(model, opset)
    return write_step(proto, state, path, external_data, "export_training")


def export_eval(model: Any, path: str | os.PathLike[str], opset: int | None = None,
                external_data: bool | None = None) -> Path:
    """Write the compiled evaluation step (loss and metric sums) to ``path``, weights as true inputs, and
    their current values to ``<name>.init.onnx`` (feed a training loop's state instead to evaluate it)."""
    proto, state = eval_parts(model, opset)
    return write_step(proto, state, path, external_data, "export_eval")
