"""How a ``Layer`` is called: ``__call__`` on KerasTensors (symbolic), graph values (tracing) or arrays
(eager), input checks and autocasting, masks, weight and activity regularization, output shapes by tracing.

``CallingMixin`` holds these methods; ``Layer`` (``layers.base``) is composed from it and keeps the state,
weights, losses and config.
"""
from __future__ import annotations

__all__ = ["CallingMixin", "flatten_shapes"]

import functools
import inspect
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from ..graph import GraphBuilder, Value
from ..graph import emit as _ops
from ..graph.shape_inference import fill_shapes
from ..graph.size_limits import building, size_limits
from ..graph.value import onnx_dtype
from ..keras_masks import get_keras_mask, set_keras_mask
from ..tracing import TraceContext, autocast_dtype, autocast_scope, current_trace
from ..trace_state import host_assigns
from ..variables import Variable
from .host_inputs import call_arguments
from .eager_call import eager_call
from .input_spec import _check_spec
from .keras_attributes import LayerAttributesMixin
from .keras_tensor import KerasTensor, Node, flatten, is_shape, map_structure, standardize_dtype
from .call_masks import call_mask_kwargs
from .symbolic_masks import attach_symbolic_masks, fresh_tensor, symbolic_masks

if TYPE_CHECKING:
    from .base import Layer



# ---------------------------------------------------------------- call context
# The ``training`` flag of enclosing layer calls: an inner layer called without it inherits it (Keras's call
# context); the trace's flag is the outermost default. ``None`` (an eager ``layer(x)``): each layer takes its
# ``call()``'s default, as Keras 3 (True for augmentation layers, so a ``tf.data`` map augments; False: Dropout).
_training_stack: list[bool | None] = []
_CALL_DEFAULTS: dict[type, bool | None] = {}


def _call_default_training(layer: Any) -> bool | None:
    """The default of ``training`` in ``layer.call``'s signature (``None`` where it has none)."""
    cls = type(layer)
    if cls not in _CALL_DEFAULTS:
        try:
            param = inspect.signature(layer.call).parameters.get("training")
        except (TypeError, ValueError):
            param = None
        default = None if param is None or param.default is inspect.Parameter.empty else param.default
        _CALL_DEFAULTS[cls] = default if isinstance(default, bool) else None
    return _CALL_DEFAULTS[cls]
# Regularized variables already added to a trace's losses (a shared layer is penalized once).
_regularized: weakref.WeakKeyDictionary[TraceContext, set[int]] = weakref.WeakKeyDictionary()

_BASE_KWARGS = ("input_shape", "batch_input_shape", "input_dim", "batch_size")


def _spec_of(x: Any) -> Any:
    if isinstance(x, KerasTensor):
        return x.shape
    if isinstance(x, Value):
        return _ops.static_shape(x)
    if isinstance(x, np.ndarray):
        return tuple(x.shape)   # Keras converts arrays among a call's inputs to tensors (a GNN's edge list)
    return None


def _dtype_of(x: Any) -> str | None:
    if isinstance(x, KerasTensor):
        return x.dtype
    if isinstance(x, Value) and x.dtype:
        return standardize_dtype(x.dtype)
    if isinstance(x, np.ndarray):
        return standardize_dtype(x.dtype)
    return None


def _takes_no_arguments(method: Any) -> bool:
    try:
        return not inspect.signature(method).parameters   # a bound method: ``self`` is not listed
    except (TypeError, ValueError):
        return False


class CallingMixin(LayerAttributesMixin):
    """The calling half of ``Layer`` (see the module docstring)."""

    # ------------------------------------------------------------ calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args:
            # Keras binds the first argument of call() by its own name too (``layer(logits=x, targets=t)``).
            first = _first_call_argument(type(self).call)
            key = first if first in kwargs else "inputs" if "inputs" in kwargs else None
            if key is None:
                raise TypeError(f"Layer '{self.name}' must be called with its inputs as first argument "
                                f"({first or 'inputs'}=...). Received only keyword arguments {sorted(kwargs)}.")
            args = (kwargs.pop(key),)
        args, kwargs = call_arguments(self, args, kwargs)
        leaves = flatten((args, kwargs))
        if any(isinstance(t, KerasTensor) for t in leaves):
            return self._symbolic_call(args, kwargs)
        if any(isinstance(t, Value) for t in leaves):
            return self._traced_call(args, kwargs)
        if any(isinstance(t, (np.ndarray, np.generic, Variable)) for t in leaves):
            with size_limits(getattr(self, "_size_limits", None)):   # a loaded file's model, called eagerly
                return eager_call(self, args, kwargs)   # concrete arrays: run now (eager_call.py)
        raise TypeError(f"Layer '{self.name}' was called on {type(args[0]).__name__} values. Call layers on symbolic "
                        "inputs (keras.Input(...)) to build models, or on numpy arrays (or other frameworks' tensors "
                        "holding values) to compute outputs now; a symbolic tensor of another framework (inside "
                        "tf.function or tf.data's map) has no values to compute with.")

    def _assert_input_compatibility(self, first: Any) -> None:
        if self.input_spec is None:
            return
        specs = self.input_spec if isinstance(self.input_spec, (list, tuple)) else [self.input_spec]
        names = [getattr(spec, "name", None) for spec in specs]
        if isinstance(first, dict) and all(names):
            # Keras: named specs take a dict's values by name (a functional model built on a list of inputs).
            missing = [n for n in names if n not in first]
            if missing:
                raise ValueError(f'Layer "{self.name}": missing data for input(s) {missing}. You passed a data '
                                 f"dictionary with keys {list(first)}. Expected the following keys: {names}")
            first = [first[n] for n in names]
        tensors = [t for t in flatten(first) if isinstance(t, (KerasTensor, Value))]
        if len(specs) != len(tensors):
            raise ValueError(f'Layer "{self.name}" expects {len(specs)} input(s), but it received '
                             f"{len(tensors)} input tensors. Inputs received: {first!r}")
        for i, (spec, t) in enumerate(zip(specs, tensors)):
            if spec is not None:
                _check_spec(self, i, spec, _spec_of(t))

    def _maybe_build(self, shapes: Any, dtypes: Any = None) -> None:
        if self.built:
            return
        self._build_shapes = shapes
        with host_assigns():   # build() runs once, even when first reached inside a traced call
            if _takes_no_arguments(self.build):
                self.build()   # Keras passes a shape only to a build() that names one (``def build(self):``)
            else:
                self.build(shapes)
        self.built = True

    def _input_structure_specs(self, first: Any) -> tuple[Any, Any]:
        shapes = _spec_of(first) if isinstance(first, (KerasTensor, Value)) else map_structure(_spec_of, first)
        dtypes = _dtype_of(first) if isinstance(first, (KerasTensor, Value)) else map_structure(_dtype_of, first)
        return shapes, dtypes

    def _symbolic_call(self, args: tuple, kwargs: dict) -> Any:
        first = args[0]
        self._assert_input_compatibility(first)
        self._maybe_build(*self._input_structure_specs(first))
        self._assert_input_compatibility(first)
        cast_args, cast_kwargs = self._autocast_inputs(args, kwargs)   # the node keeps the original tensors
        in_masks = [getattr(t, "_keras_mask", None) for t in flatten(first) if isinstance(t, KerasTensor)]
        token = symbolic_masks.set(in_masks if any(m is not None for m in in_masks) else None)
        try:
            with building(f"layer {self.name!r}"):   # a loaded file's size refusals name the layer
                spec = self.compute_output_spec(*cast_args, **cast_kwargs)
        finally:
            symbolic_masks.reset(token)
        outputs = map_structure(fresh_tensor, spec)
        if type(self).compute_output_shape is not CallingMixin.compute_output_shape:
            # call() was not traced: ask compute_mask
            attach_symbolic_masks(self, first, in_masks, outputs, CallingMixin.compute_mask)
        Node(self, args, dict(kwargs), outputs)
        return outputs

    def _call_accepts(self, arg: str, explicit: bool = False) -> bool:
        try:
            params = inspect.signature(self.call).parameters
        except (TypeError, ValueError):
            return False
        return arg in params or (not explicit and any(p.kind is p.VAR_KEYWORD for p in params.values()))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The output mask for an input ``mask`` (bool ``(batch, time)``): passed on if ``supports_masking``."""
        return mask if self.supports_masking else None

    def _traced_call(self, args: tuple, kwargs: dict) -> Any:
        ctx = current_trace()
        first = args[0]
        self._assert_input_compatibility(first)
        shapes, dtypes = self._input_structure_specs(first)
        self.__dict__["_build_inputs"] = first   # a subclassed model's build may read the values of constant inputs
        try:
            self._maybe_build(shapes, dtypes)
        finally:
            self.__dict__.pop("_build_inputs", None)
        self._assert_input_compatibility(first)
        args, kwargs = self._autocast_inputs(args, kwargs)
        first = args[0]
        training = kwargs.get("training")
        if training is None:
            if _training_stack:
                training = _training_stack[-1]
            elif not getattr(ctx, "training_unspecified", False):
                training = ctx.training
        if training is None:
            training = _call_default_training(self)
        kwargs = dict(kwargs)

        in_values = [v for v in flatten(first) if isinstance(v, Value)]
        in_masks = [get_keras_mask(v) for v in in_values]
        previous_mask = None if all(m is None for m in in_masks) else (
            in_masks[0] if isinstance(first, Value) else in_masks)
        kwargs.update(call_mask_kwargs(self.call, args, kwargs, previous_mask))
        # As Keras: only a call() naming ``training`` gets it; one taking ``**kwargs`` never does, even when the
        # caller passed it (``super().call(inputs, *args, **kwargs)`` forwards its kwargs on).
        if self._call_accepts("training", explicit=True):
            kwargs["training"] = bool(training)
        else:
            kwargs.pop("training", None)
        b = ctx.b
        start = len(b.nodes)
        if not _training_stack:
            self._clear_losses()  # Keras: the outermost call starts a fresh list of add_loss values
        fallbacks = len(b.float32_fallbacks)
        _training_stack.append(training)
        try:
            with autocast_scope(self._variable_autocast_dtype()), building(f"layer {self.name!r}"):
                outputs = self.call(*args, **kwargs)
        finally:
            _training_stack.pop()
        _warn_float64_fallback(self, b, fallbacks)
        self._propagate_mask(first, outputs, previous_mask, set_keras_mask, get_keras_mask)
        fill_shapes(b, start)
        self._annotate_output_shapes(args[0], shapes, outputs)
        # What summary() shows for layers of subclassed models, which have no nodes.
        self._last_io_shapes = (flatten_shapes(shapes) if shapes is not None else [],
                                [_batchless(v) for v in flatten(outputs) if isinstance(v, Value)])
        # Regularization terms join every loss, evaluation included (Keras reports them in val_loss);
        # inference programs never read ctx.losses, so the clean-up pass drops them there.
        start = len(b.nodes)
        self._add_regularization(ctx, outputs)
        fill_shapes(b, start)
        return outputs

    def _propagate_mask(self, first: Any, outputs: Any, previous_mask: Any, set_mask: Any, get_mask: Any) -> None:
        out_values = [v for v in flatten(outputs) if isinstance(v, Value)]
        if not out_values or any(get_mask(v) is not None for v in out_values):
            return  # the layer attached its own output mask (recurrent layers, Masking)
        mask = self.compute_mask(first, previous_mask)
        if mask is None:
            return
        masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(out_values)
        for v, m in zip(out_values, masks):
            if isinstance(m, Value):
                set_mask(v, m)

    def _autocast_inputs(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Keras's input conversion: floating tensors anywhere in the call's arguments are cast to the compute
        dtype (when ``autocast``); onnxforge's own layers also cast integer tensors of the first argument
        (``_autocast``). Graph values get a Cast node; KerasTensors a spec of the new dtype."""
        compute = self.compute_dtype
        if "float" not in compute or not self._convert_input_args:
            return args, kwargs
        to = onnx_dtype(compute) if compute != "bfloat16" \
            else onnx.TensorProto.BFLOAT16

        def cast_float(x: Any) -> Any:
            if isinstance(x, Value) and x.is_float and x.dtype != to:
                return _cast_keeping_mask(x, to)
            if isinstance(x, KerasTensor) and "float" in x.dtype and x.dtype != compute:
                return KerasTensor(x.shape, compute)
            return x

        def cast_int(x: Any) -> Any:
            if isinstance(x, Value) and x.dtype is not None and not x.is_float and x.dtype != onnx.TensorProto.STRING:
                return _cast_keeping_mask(x, to)
            if isinstance(x, KerasTensor) and "float" not in x.dtype and x.dtype != "string":
                return KerasTensor(x.shape, compute)
            return x

        if self.autocast:
            args, kwargs = map_structure(cast_float, args), map_structure(cast_float, kwargs)
        if self._autocast:
            args = (map_structure(cast_int, args[0]), *args[1:])
        return args, kwargs

    def _variable_autocast_dtype(self) -> str | None:
        """The dtype weights read in ``call`` are cast to: Keras's autocast scope rules (a mixed policy
        opens one; a layer with another compute dtype or without ``autocast`` replaces the outer one)."""
        current = autocast_dtype()
        if current is not None:
            if not self.autocast or "float" not in self.compute_dtype:
                return None
            return self.compute_dtype
        return self.compute_dtype if self.compute_dtype != self.variable_dtype else None

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Output shape(s) for ``input_shape``; by default found by tracing ``call`` on a scratch graph."""
        out = self._spec_by_tracing((_shape_specs(input_shape, self.compute_dtype),), {})
        return out.shape if isinstance(out, KerasTensor) else map_structure(lambda t: t.shape, out)

    def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
        """Output KerasTensor(s) (no history) for symbolic arguments."""
        if type(self).compute_output_shape is CallingMixin.compute_output_shape:
            return self._spec_by_tracing(args, kwargs)
        first = args[0]
        shapes = map_structure(lambda t: t.shape, first) if not isinstance(first, KerasTensor) else first.shape
        out = self.compute_output_shape(shapes)
        dtype = self._output_dtype([_dtype_of(t) for t in flatten(first)])
        return _shape_specs(out, dtype)

    def _output_dtype(self, input_dtypes: list[str | None]) -> str:
        return self.compute_dtype

    def _annotate_output_shapes(self, first: Any, shapes: Any, outputs: Any) -> None:
        if type(self).compute_output_shape is CallingMixin.compute_output_shape:
            return  # the default traces call(): call() itself is the only description of the outputs
        batch: Any = "batch"
        for v in flatten(first):
            if isinstance(v, Value) and v.shape:
                batch = v.shape[0]
                break
        computed = self.compute_output_shape(shapes)
        computed = [computed] if is_shape(computed) else flatten_shapes(computed)
        values = [v for v in flatten(outputs) if isinstance(v, Value)]
        if len(values) != len(computed):
            return
        for v, s in zip(values, computed):
            if s is not None and not _ops.contradicts(s, v.shape):
                v.shape = _ops.merge_shape(s, v.shape, batch)

    def _add_regularization(self, ctx: TraceContext, outputs: Any) -> None:
        done = _regularized.setdefault(ctx, set())
        for w in self._own_weights():
            if w.regularizer is not None and w.trainable and self.trainable and w.uid not in done:
                done.add(w.uid)
                ctx.add_loss(w.regularizer(ctx.read(w)))
        if self.activity_regularizer is not None:
            for v in flatten(outputs):
                if isinstance(v, Value):
                    b = v.builder
                    loss = self.activity_regularizer(v)
                    first = b.const(np.array(0, np.int64))
                    batch = b.op("Cast", [b.op("Gather", [b.op("Shape", [v]), first])], to=v.dtype, shape=())
                    ctx.add_loss(loss / batch)
                    self.__dict__.setdefault("_losses", []).append(ctx.losses[-1])

    def _spec_by_tracing(self, args: tuple, kwargs: dict) -> Any:
        """Output specs found by tracing ``call`` on a scratch graph and running ONNX shape inference."""
        b = GraphBuilder()
        ctx = TraceContext(b, training=False, weights="inputs",
                           random_uniform=lambda like: b.op("RandomUniformLike", [like], shape=like.shape))
        ctx.training_unspecified = True   # layers at their call()'s training default, as Keras builds (MelGAN)
        counter = iter(range(10**9))

        def to_value(t: Any) -> Any:
            if not isinstance(t, KerasTensor):
                return t
            if getattr(t, "_known_value", None) is not None:
                return b.const(t._known_value)   # a constant the build call received (see Model.build)
            k = next(counter)
            shape = tuple(("batch" if i == 0 else f"unk{k}_{i}") if d is None else d for i, d in enumerate(t.shape))
            elem = onnx.TensorProto.STRING if t.dtype == "string" else \
                onnx_dtype(t.dtype)
            return b.input(f"spec_input_{k}", elem, shape)

        def with_mask(t: Any) -> Any:
            # Keras 3: call() gets the upstream masks while the model is built, too (every tensor argument's:
            # a call() with several tensor arguments reads them as ``<argument>_mask``).
            v = to_value(t)
            m = getattr(t, "_keras_mask", None)
            if isinstance(v, Value) and isinstance(m, KerasTensor):
                set_keras_mask(v, b.input(f"spec_mask_{next(counter)}", onnx.TensorProto.BOOL,
                                          tuple("batch" if i == 0 else d for i, d in enumerate(m.shape))))
            return v

        masks = symbolic_masks.get()
        firsts = flatten(args[0]) if args else []
        if masks is not None:   # the first argument's masks, as _symbolic_call found them
            for t, m in zip([t for t in firsts if isinstance(t, KerasTensor)], masks):
                if m is not None and getattr(t, "_keras_mask", None) is None:
                    t._keras_mask = m
        with ctx.active():
            out = self._traced_call(map_structure(with_mask, args), map_structure(with_mask, kwargs))
        self._clear_losses()  # values of the scratch graph are no layer's losses
        values = [v for v in flatten(out) if isinstance(v, Value)]
        for v in values:
            b.output(v)
        inferred = {}
        try:
            model = b.to_model()
            model = onnx.shape_inference.infer_shapes(model, data_prop=True)
            for vi in model.graph.output:
                tt = vi.type.tensor_type
                dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim) \
                    if tt.HasField("shape") else None
                inferred[vi.name] = (dims, tt.elem_type)
        except Exception:  # inference is a help: fall back on what the layers annotated
            pass

        def to_spec(v: Any) -> Any:
            if not isinstance(v, Value):
                return v
            dims, elem = inferred.get(v.name, (None, None))
            shape = _ops.static_shape(v) if v.shape is not None else dims
            if shape is None:
                raise ValueError(f"Layer '{self.name}': could not infer the output shape of call(); implement "
                                 "compute_output_shape(input_shape).")
            if dims is not None and len(dims) == len(shape):
                shape = tuple(s if s is not None else d for s, d in zip(shape, dims))
            spec = KerasTensor(shape, standardize_dtype(v.dtype or elem or self.compute_dtype))
            mask = get_keras_mask(v)
            if mask is not None and mask.shape is not None:
                spec._keras_mask = KerasTensor(tuple(d if isinstance(d, int) else None for d in mask.shape), "bool")
            return spec

        return map_structure(to_spec, out)


_float64_warned: set[tuple[str, str]] = set()
# builder -> indices into its float32_fallbacks already reported by an inner layer.
_fallbacks_claimed: weakref.WeakKeyDictionary[GraphBuilder, set[int]] = weakref.WeakKeyDictionary()


def _warn_float64_fallback(layer: Layer, b: GraphBuilder, start: int) -> None:
    """Say once per layer that some of its float64 ops run in float32 (onnxruntime has no float64 kernel).
    The innermost layer that emitted them speaks; the models around it stay quiet."""
    claimed = _fallbacks_claimed.setdefault(b, set())
    mine = [k for k in range(start, len(b.float32_fallbacks)) if k not in claimed]
    claimed.update(mine)
    ops = {b.float32_fallbacks[k][0] for k in mine if b.float32_fallbacks[k][1] == onnx.TensorProto.DOUBLE}
    new = sorted(op for op in ops if (layer.name, op) not in _float64_warned)
    if not new:
        return
    _float64_warned.update((layer.name, op) for op in new)
    import warnings

    warnings.warn(f"Layer '{layer.name}' ({type(layer).__name__}) computes in float64, but onnxruntime's CPU "
                  f"provider has no float64 kernel for {', '.join(new)}: onnxforge runs "
                  f"{'that op' if len(new) == 1 else 'those ops'} in float32 between Casts (their results, and "
                  "gradients, have float32 precision). The rest of the layer stays float64.", UserWarning,
                  stacklevel=4)


def _cast_keeping_mask(x: Value, to: int) -> Value:

    y = x.builder.op("Cast", [x], to=to, shape=x.shape)
    mask = get_keras_mask(x)
    if mask is not None:
        set_keras_mask(y, mask)
    return y


def _batchless(v: Value) -> tuple | None:
    shape = _ops.static_shape(v)
    return None if shape is None else (None, *shape[1:]) if shape else shape


def _shape_specs(shapes: Any, dtype: str) -> Any:
    """KerasTensors for one shape (a tuple) or a (nested) list or tuple of shapes, kept a tuple where the
    shapes were (``RNN(return_state=True)`` gives a tuple in Keras 3)."""
    if is_shape(shapes):
        return KerasTensor(tuple(shapes), dtype)
    specs = [_shape_specs(s, dtype) for s in shapes]
    return tuple(specs) if isinstance(shapes, tuple) else specs


def _as_structure(shape: Any, depth: int = 0) -> Any:
    """One shape stays a tuple; a list of shapes becomes a list of tuples; else a ValueError (a config's NaN,
    string or dict was iterated, a string forever)."""
    if is_shape(shape):
        return tuple(shape)
    if not isinstance(shape, (list, tuple)) or depth >= 64:
        raise ValueError("An input shape must be a list of dimensions (integers or None), or a list of such "
                         f"shapes nested at most 64 deep. Received: {str(shape)[:200]!r} ({type(shape).__name__})")
    return [_as_structure(s, depth + 1) for s in shape]


def flatten_shapes(shapes: Any) -> list:
    if shapes is None or isinstance(shapes, (str, bytes)):   # not a tensor (a number; a string iterates forever)
        return []
    if is_shape(shapes):
        return [tuple(shapes)]
    if isinstance(shapes, dict):
        return [s for k in sorted(shapes) for s in flatten_shapes(shapes[k])]
    return [s for item in shapes for s in flatten_shapes(item)]


@functools.lru_cache(maxsize=None)
def _first_call_argument(call: Any) -> str | None:
    """The name of ``call``'s first parameter after ``self`` (what Keras binds the inputs to)."""
    try:
        params = list(inspect.signature(call).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    first = params[0] if params else None
    if first is None or first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
        return None
    return first.name
