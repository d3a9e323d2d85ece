"""``Model.from_onnx``: any ONNX inference graph as an onnxforge model that trains on stock onnxruntime.

An :class:`OnnxModel` is a (subclassed) ``Model`` whose ``call()`` re-emits the ONNX graph's nodes into the
program being traced. Its float initializers become ``Variable``s named after them (``fc1.weight``), so in a
training program they are graph inputs with gradients from onnxforge's autodiff and optimizer updates, and in
an exported inference graph they are initializers again under the same names. Everything else -- integer
tensors, ``Constant`` nodes, hyper-parameter inputs such as ``Resize`` scales or ``Clip`` bounds, scalars --
stays a constant of the graph.

Which initializers train:
    * ``trainable=None``: every float initializer that is a weight (rank >= 1 and not read as a
      hyper-parameter, see ``CONSTANT_INPUTS``); ``BatchNormalization`` running statistics are state
      (non-trainable, updated by training programs when ``training_mode=True``).
    * ``trainable=[names]``: exactly those; the other weights are non-trainable state (frozen).

Training-mode nodes follow ``training_mode``:
    * ``False`` (default): ``BatchNormalization`` always uses its running statistics and ``Dropout`` is the
      identity, in every program (fine-tuning a model as exported for inference).
    * ``True``: in training programs (``fit``), ``BatchNormalization`` normalizes with batch statistics
      and updates its running statistics (ONNX's ``momentum`` semantics) and ``Dropout`` draws its mask
      from the program's seeded counter RNG; inference programs (``predict``, ``export``) use the running
      statistics and no dropout, as Keras layers do.

``get_config()`` carries the graph without the weights' data (a base64 ``ModelProto`` plus the weights'
names, dtypes and shapes), so ``model.save`` / ``onnxforge.keras.models.load_model`` need no source file:
the config rebuilds the model and the saved weights fill it, as for any Keras model. Nodes inside
control-flow bodies (If / Loop / Scan) are re-emitted as they are (their BatchNormalization / Dropout are
not rewritten).

Example:
    >>> import numpy as np, onnx
    >>> from onnx import helper, numpy_helper, TensorProto as T
    >>> w = numpy_helper.from_array(np.ones((3, 2), np.float32), "fc.weight")
    >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "fc.weight"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", T.FLOAT, ["batch", 3])],
    ...     [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 2])], [w])
    >>> model = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]))
    >>> model.input_names, model.output_names, [v.name for v in model.trainable_weights]
    (['x'], ['y'], ['fc.weight'])
    >>> model.predict(np.ones((4, 3), np.float32), verbose=0).tolist()[0]
    [3.0, 3.0]
"""
from __future__ import annotations

__all__ = ["OnnxModel", "from_onnx", "CONSTANT_INPUTS", "STATE_INPUTS"]

import base64
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import Value, protos
from ..graph.untrusted import DEFAULT_MAX_BYTES, OnnxLoadError
from ..layers import allocation
from ..layers.keras_tensor import KerasTensor, flatten
from ..tracing import current_trace
from ..variables import Variable
from .model import Model
from .onnx_emitter import _Emitter
# The loading helpers and the two input tables moved to onnx_loading; they stay importable from here
# (exporters.ort_training_compat reads _classify, _load and _normalize).
from .onnx_loading import (CONSTANT_INPUTS, STATE_INPUTS, _checked_config, _classify, _constant_values,  # noqa: F401
                           _keras_shape, _load, _normalize, _select, _type_of)

# ------------------------------------------------------------------------------------------ the model
class OnnxModel(Model):
    """An ONNX graph as a Keras model: its float initializers are Variables, its nodes the forward pass.

    Build one with :func:`from_onnx` / ``onnxforge.Model.from_onnx``; the constructor takes an already
    loaded, normalized ``ModelProto``.

    Args:
        onnx_model: the graph (inputs and outputs as they should appear on the model).
        trainable_initializers: ``None`` (every float weight trains) or the initializer names to train.
        training_mode: how BatchNormalization / Dropout nodes behave in training programs (see the module
            docstring).
        name: the model's name; defaults to ``onnx_model``, ``onnx_model_1``, ...
        trainable: Keras's layer flag: ``False`` freezes every weight.
    """

    def __init__(self, onnx_model: onnx.ModelProto, trainable_initializers: Sequence[str] | None = None,
                 training_mode: bool = False, name: str | None = None, trainable: bool = True,
                 dtype: Any = None):
        if not isinstance(training_mode, (bool, np.bool_)):
            raise ValueError("from_onnx(): `training_mode` must be a boolean. "
                             f"Received: training_mode={training_mode!r}")
        super().__init__(name=name, trainable=trainable, dtype=dtype)
        self.training_mode = bool(training_mode)
        self._proto = onnx_model
        graph = onnx_model.graph
        init_arrays = {t.name: protos.array_from_tensor(t) for t in graph.initializer}
        train_names, frozen_names = _classify(graph, trainable_initializers)
        self._variables: dict[str, Variable] = {}
        for names, flag, bucket in ((train_names, True, self._trainable_variables),
                                    (frozen_names, False, self._non_trainable_variables)):
            for n in names:
                array = init_arrays[n]
                var = Variable(array, name=n, trainable=flag and self.trainable, dtype=array.dtype)
                self._variables[n] = var
                bucket.append(var)
        self._constants = {n: a for n, a in init_arrays.items() if n not in self._variables}
        self._known = _constant_values(graph, self._constants)
        try:
            inferred = onnx.shape_inference.infer_shapes(onnx_model, data_prop=True)
        except Exception:  # inference is a help: the trace fills what it can node by node
            inferred = onnx_model
        self._types = {vi.name: _type_of(vi) for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
        inits = set(init_arrays)
        specs = []
        for vi in graph.input:
            if vi.name in inits:
                continue
            elem, dims = _type_of(vi)
            if elem is None or dims is None:
                raise ValueError(f"from_onnx(): graph input {vi.name!r} needs a tensor type with a known rank. "
                                 f"Received: {vi.type}")
            specs.append(KerasTensor(_keras_shape(dims), elem, name=vi.name))
            self._types[vi.name] = (elem, dims)
        self._input_specs = specs
        self._onnx_output_names = [o.name for o in graph.output]
        outs = [self._types.get(o.name, _type_of(o)) for o in graph.output]
        if all(e is not None and d is not None for e, d in outs):
            specs = [KerasTensor(_keras_shape(d), e, name=o.name) for (e, d), o in zip(outs, graph.output)]
            # One output is one array from predict() (as from a Keras model's call), several a list.
            self._output_specs = specs[0] if len(specs) == 1 else specs
        self.built = True

    # ------------------------------------------------------------ Keras model surface
    def build(self, input_shape: Any = None) -> None:
        self.built = True  # the graph fixes the input shapes

    @property
    def output_names(self) -> list[str]:
        """The ONNX graph's output names (predictions come back under them)."""
        return list(self._onnx_output_names)

    @property
    def onnx_model(self) -> onnx.ModelProto:
        """The source graph (initializers at their import-time values)."""
        return self._proto

    def get_config(self) -> dict:
        """The graph without its weights' data, plus their names, dtypes and shapes (weights are saved apart)."""
        stripped = onnx.ModelProto()
        stripped.CopyFrom(self._proto)
        keep = [t for t in stripped.graph.initializer if t.name not in self._variables]
        del stripped.graph.initializer[:]
        stripped.graph.initializer.extend(keep)
        weights = [[v.path, np.dtype(v.dtype).name, list(v.shape)] for v in self._variables.values()]
        return {"name": self.name, "trainable": self.trainable,
                "onnx": base64.b64encode(stripped.SerializeToString()).decode("ascii"),
                "weights": weights, "trainable_initializers": [v.path for v in self._trainable_variables],
                "training_mode": self.training_mode}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> OnnxModel:
        """The model of ``get_config`` with zero weights (``set_weights`` / ``load_weights`` fill them).

        The config may come from a file, so everything in it is checked before use: the embedded graph
        goes through the same checks as ``onnxforge.saving.load_onnx`` (external data refused: it could
        read any file next to the program), and the declared weights must be float tensors whose sizes
        the file being loaded really stores (see ``onnxforge.layers.allocation``), or, outside a load, at
        most ``DEFAULT_MAX_BYTES`` together. Errors are ``OnnxLoadError`` naming the config entry.
        """
        name = config.get("name")
        source = f"config of OnnxModel {name!r}" if isinstance(name, str) else "config of an OnnxModel"
        proto, weights = _checked_config(config, source)
        total = 0
        for wname, dtype, shape in weights:
            allocation.claim(name if isinstance(name, str) else "onnx_model", wname, shape)
            total += math.prod(shape) * np.dtype(dtype).itemsize
            if total > DEFAULT_MAX_BYTES:
                raise OnnxLoadError(source, f"the declared weights take more than {DEFAULT_MAX_BYTES} bytes "
                                    f"(at {wname!r}, shape {list(shape)})", key="weights")
        for wname, dtype, shape in weights:
            proto.graph.initializer.append(protos.tensor_from_array(np.zeros(shape, dtype), wname))
        return cls(proto, trainable_initializers=config.get("trainable_initializers"),
                   training_mode=config.get("training_mode", False), name=name,
                   trainable=config.get("trainable", True))

    # ------------------------------------------------------------ tracing
    def call(self, inputs: Any, training: bool | None = None) -> Any:
        ctx = current_trace()
        b = ctx.b
        xs = [inputs] if isinstance(inputs, Value) else [v for v in flatten(inputs) if isinstance(v, Value)]
        specs = self._input_specs
        if len(xs) != len(specs):
            raise ValueError(f"Model {self.name!r} expects {len(specs)} input(s) {[s.name for s in specs]}. "
                             f"Received {len(xs)}.")
        env: dict[str, str] = {}
        for spec, x in zip(specs, xs):
            elem = self._types[spec.name][0]
            if x.dtype is not None and x.dtype != elem:  # e.g. int32 token ids into an int64 Gather
                x = b.op("Cast", [x], to=elem, shape=x.shape)
            env[spec.name] = x.name
        symbols = self._symbol_map(xs)
        emitter = _Emitter(self, ctx, env, symbols, bool(training) and self.training_mode)
        for node in self._proto.graph.node:
            emitter.emit(node)
        outs = [b.value(emitter.resolve(n)) for n in self._onnx_output_names]
        return outs[0] if len(outs) == 1 else outs

    def _symbol_map(self, xs: list[Value]) -> dict[str, Any]:
        """The source graph's symbolic dims as the trace's (``batch_size`` -> ``batch``); others unknown."""
        out: dict[str, Any] = {}
        for spec, x in zip(self._input_specs, xs):
            dims = self._types[spec.name][1] or ()
            if x.shape is None or len(x.shape) != len(dims):
                continue
            for d, t in zip(dims, x.shape):
                if isinstance(d, str):
                    out.setdefault(d, t)
        return out


# ------------------------------------------------------------------------------------------ entry point
def from_onnx(source: Any, trainable: Sequence[str] | None = None, inputs: Sequence[str] | None = None,
              outputs: Sequence[str] | None = None, training_mode: bool = False, name: str | None = None) -> OnnxModel:
    """Wrap an ONNX inference graph as an onnxforge model that compiles, fits, evaluates, predicts, exports.

    Args:
        source: an ``onnx.ModelProto``, its serialized bytes, or a path (loaded with
            ``onnxforge.saving.load_onnx``, which refuses unsafe files).
        trainable: ``None`` to train every float weight initializer, or the initializer names to train (the
            others become frozen, non-trainable state).
        inputs: value names to use as the model's inputs (default: the graph's inputs); intermediate values
            cut the graph there.
        outputs: value names to use as the model's outputs (default: the graph's outputs).
        training_mode: whether BatchNormalization / Dropout nodes behave as in training inside ``fit``
            (see the module docstring).
        name: the model's name.

    Returns:
        An :class:`OnnxModel`. Ops on the path to the loss without a gradient rule fail at ``compile`` with
        the autodiff engine's error naming the op and node.

    Example:
        >>> model = from_onnx("model.onnx", trainable=["fc.weight", "fc.bias"])       # doctest: +SKIP
        >>> model.compile(optimizer="sgd", loss="mse"); model.fit(x, y, epochs=1)      # doctest: +SKIP
    """
    proto = _select(_normalize(_load(source)), inputs, outputs)
    return OnnxModel(proto, trainable_initializers=trainable, training_mode=training_mode, name=name)
