"""Running layers, models and ops on concrete arrays: each call signature compiles once into a small ONNX
program, run by onnxruntime with the Variables bound from where they live.

A call is traced like any program (``ProgramTrace``, the layers' ``call()`` emitting ONNX) on graph
inputs shaped like its arrays, cleaned up, and kept with a ``ProgramRunner`` under its signature (see
``onnxforge.eager.signature``): later calls with the same signature only bind the arrays and run.

* Variables are inputs bound from their device-resident values (the ``OrtValue`` a training step left
  there): an eager call after ``fit`` reads the trained weights without copying the model, and a call
  that changes state (BatchNormalization's moving statistics under ``training=True``, as Keras 3 updates
  them in eager calls; a ``SeedGenerator``'s counter) hands the new value to the Variable.
* Layers and models leave the leading (batch) axis free when every array shares it, so one program
  serves every batch size; a ``call()`` that needs concrete sizes is traced again with static shapes.
* Random draws without a seed take a fresh ``[seed, 0]`` per call from numpy's global generator
  (``keras.utils.set_random_seed`` / ``np.random.seed`` repeat them); an int seed is a fixed stream and a
  ``SeedGenerator`` advances its own state Variable, as in Keras 3.
* Results come back as ``EagerTensor``s (numpy arrays with ``.numpy()``).
* On the CPU a call whose program updates no state runs with the weights as constants while they do not
  change (``runtime.frozen``, as ``predict``): the seed CNN's ``model(x)`` on a batch of 128 in 4.1 instead of
  8.4 ms (2 threads, Intel Xeon).
"""
from __future__ import annotations

__all__ = ["EagerExecutor", "EagerProgram"]

import collections
import functools
import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ..graph.shape_inference import fill_shapes
from ..graph import contract
from ..compiler.cleanup import cleanup
from ..graph.rng import CounterRng
from ..compiler.program_trace import ProgramTrace, release
from ..eager_tensor import as_eager
from ..graph import GraphBuilder, Value, onnx_dtype
from ..keras_masks import get_keras_mask, set_keras_mask
from ..layers import array_attributes
from ..layers.keras_tensor import flatten, map_structure
from ..runtime import Device, ProgramRunner, variables_device
from ..runtime.frozen import FrozenProgram
from ..tracing import active_trace
from ..variables import Variable
from .signature import Uncacheable, array_leaves, map_arrays, shared_batch, signature
from .custom_runs import register_stored, store_regions
from .tape import record_run, wants_record

_INT64 = onnx.TensorProto.INT64
#: Programs kept per layer, and for all ops together (least recently used dropped first).
LAYER_CACHE_SIZE = 32
OPS_CACHE_SIZE = 256


class _Out:
    """Where output ``index`` of the program goes in the call's result structure."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


@dataclass
class EagerProgram:
    """One compiled call signature: its ONNX program, how to feed it and how to rebuild the result."""

    model: onnx.ModelProto
    inputs: list[str]
    outputs: list[str]
    template: Any
    params: list[tuple[Variable, str]]
    state: list[tuple[Variable, str, str]]
    seed_input: str | None = None
    runners: dict[Device, ProgramRunner] = field(default_factory=dict)
    #: Per device, the program run with constant weights while they do not change (``runtime.frozen``), or
    #: ``None`` where it cannot be.
    frozen: dict[Device, FrozenProgram | None] = field(default_factory=dict)
    #: ``(layer weakref, output indices)``: the ``add_loss`` values each layer recorded, as outputs, so
    #: ``layer.losses`` holds this call's numbers afterwards (Keras 3's eager semantics).
    loss_slots: list[tuple[Any, list[int]]] = field(default_factory=list)
    #: ``(metric weakref, output indices)``: the state sums of metrics updated inside ``call()``, added to
    #: each metric after a run (Keras's eager ``update_state``).
    metric_slots: list[tuple[Any, list[int]]] = field(default_factory=list)
    #: ``(layer weakref, attribute, output index)``: tensors a ``call()`` kept on a layer
    #: (``self.last_attention_weights = scores``), set to this run's arrays as TensorFlow's eager calls leave them.
    attribute_slots: list[tuple[Any, str, int]] = field(default_factory=list)
    #: The program's ``custom_gradient`` regions with their backward traced (``custom_runs.store_regions``).
    custom_regions: list[Any] = field(default_factory=list)

    def custom_gradient_regions(self, b: GraphBuilder, prefix: str) -> None:
        """Called by an eager tape's joined graph: this run's custom gradients, under ``prefix``."""
        if self.custom_regions:
            register_stored(b, prefix, self.custom_regions)

    def run(self, arrays: list[np.ndarray], originals: list[Any] | None = None) -> Any:
        """Run on ``arrays`` (one per host input); ``originals`` are the caller's objects they were converted
        from, by which an open eager GradientTape links this run to the runs that produced them."""
        device = self._device()
        runner = self.runners.get(device)
        if runner is None:
            runner = self.runners[device] = ProgramRunner(self.model, device, self.inputs, self.outputs,
                                                          params=self.params, state=self.state, name="eager")
        feeds = dict(zip(self.inputs, arrays))
        if self.seed_input is not None:
            feeds[self.seed_input] = np.asarray([np.random.randint(0, 2 ** 31 - 1), 0], np.int64)
        recordings = wants_record(arrays if originals is None else originals,
                                  [var for var, _ in self.params] + [var for var, _, _ in self.state])
        fixed = self._fixed(feeds) if recordings else {}
        if device not in self.frozen:
            self.frozen[device] = FrozenProgram.for_runner(self.model, runner)
        frozen = self.frozen[device]
        if frozen is None:
            values = runner.run(feeds)
        else:
            runner.check_feeds(feeds)
            values = frozen.run(feeds, lambda: runner.run(feeds, checked=True))
        results: list[tuple[Any, str]] = []
        for ref, indices in self.loss_slots:
            layer = ref()
            if layer is not None:
                losses = [as_eager(values[k]) for k in indices]
                results.extend((obj, self.outputs[k]) for obj, k in zip(losses, indices))
                layer.__dict__["_losses"] = losses
        for ref, indices in self.metric_slots:
            metric = ref()
            if metric is not None:
                metric.merge_state([values[k] for k in indices])
        for ref, attribute, k in self.attribute_slots:
            layer = ref()
            if layer is not None:
                layer.__dict__[attribute] = as_eager(values[k])

        def fill(leaf: Any) -> Any:
            if not isinstance(leaf, _Out):
                return leaf
            obj = as_eager(values[leaf.index])
            results.append((obj, self.outputs[leaf.index]))
            return obj

        out = map_structure(fill, self.template)
        if recordings:
            host = {name: (orig, a) for name, orig, a in zip(self.inputs, originals or arrays, arrays)}
            record_run(recordings, self, self.model, host, {name: var for var, name in self.params}, fixed,
                       results)
        return out

    def _fixed(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        """The seed and state values this run starts from (a gradient replays the run with them)."""
        fixed = {self.seed_input: feeds[self.seed_input]} if self.seed_input is not None else {}
        for var, name, _ in self.state:
            fixed[name] = np.array(var.numpy(), copy=True)
        return fixed

    def _device(self) -> Device:
        """Where the Variables live now (after a CUDA training run: there), else the CPU."""
        return variables_device(var for var, *_ in (*self.params, *self.state))


#: The keyword under which an eager layer call hands its input masks to the traced call (never a layer's own).
_MASKS = "__onnxforge_keras_masks__"


def _with_masks(out: Any, masks: list) -> Any:
    """``out`` with each leaf's Keras mask (computed in the same program) attached as ``_keras_mask``."""
    leaves = flatten(out)
    for leaf, mask in zip(leaves, masks):
        if mask is not None and isinstance(leaf, np.ndarray) and hasattr(leaf, "__dict__"):
            leaf._keras_mask = as_eager(mask)
    return out


def compile_call(call: Callable[..., Any], args: tuple, kwargs: dict, arrays: list[np.ndarray],
                 free_batch: bool, training: bool, owner: Any = None, training_given: bool = True) -> EagerProgram:
    """Trace ``call(*args, **kwargs)`` with the ``arrays`` among the arguments as graph inputs; ``owner``
    (the layer called) gets its and its sub-layers' ``add_loss`` values back after each run. Without
    ``training_given`` each layer takes its own ``call()`` default for ``training``, as in Keras 3."""
    b = GraphBuilder(float32_fallback=True)   # float64 layers run on onnxruntime's CPU provider too
    inputs: list[str] = []
    it = iter(arrays)

    def to_input(_: Any) -> Value:
        a = next(it)
        shape = tuple(a.shape)
        if free_batch and shape:
            shape = (contract.BATCH_DIM, *shape[1:])
        v = b.input(f"input_{len(inputs)}", onnx_dtype(a.dtype), shape)
        inputs.append(v.name)
        return v

    graph_args, graph_kwargs = map_arrays((args, kwargs), to_input)
    seed: list[Value] = []

    def read_seed() -> Value:
        if not seed:
            seed.append(b.input(release(b, b.fresh("eager_seed")), _INT64, (2,)))
        return seed[0]

    rng = CounterRng(read_seed)
    ctx = ProgramTrace(b, training=training, weights="inputs", random_uniform=rng.uniform)
    ctx.training_unspecified = not training_given
    with ctx.active():
        out = call(*graph_args, **graph_kwargs)
        out = map_structure(lambda leaf: leaf.__onnx_value__() if isinstance(leaf, Variable) else leaf, out)
    fill_shapes(b, 0)

    values: dict[str, int] = {}
    outputs: list[str] = []

    def mark(leaf: Any) -> Any:
        if not isinstance(leaf, Value):
            return leaf
        if leaf.name not in values:
            values[leaf.name] = len(outputs)
            name = release(b, b.fresh("eager_output"))
            b.output(leaf, name)
            outputs.append(name)
        return _Out(values[leaf.name])

    template = map_structure(mark, out)
    loss_slots = []
    if owner is not None:
        for layer in [owner, *owner._all_sublayers()]:
            recorded = [v for v in layer._own_losses() if isinstance(v, Value) and v.builder is b]
            if recorded:
                loss_slots.append((weakref.ref(layer), [mark(v).index for v in recorded]))
        attribute_slots = [(weakref.ref(layer), name, mark(v).index)
                           for layer in [owner, *owner._all_sublayers()] for name, v in vars(layer).items()
                           if isinstance(v, Value) and v.builder is b]
    else:
        attribute_slots = []
    metric_slots = [(weakref.ref(metric), [mark(v).index for v in sums])
                    for metric, sums in ctx.layer_metrics.values()]
    state: list[tuple[Variable, str, str]] = []
    # The state input is the value the program started from (``reads``), not a read after the update.
    pairs = [(var, ctx.reads[var.uid][1] if var.uid in ctx.reads else ctx.read(var), new)
             for var, new in ctx.updates.values()] + ctx.seed_streams.updates()
    for var, v_in, v_out in pairs:
        v_out.dtype = v_out.dtype or v_in.dtype
        v_out.shape = v_out.shape if v_out.shape is not None else v_in.shape
        out_name = contract.new_state(v_in.name)
        b.output(v_out, out_name)
        state.append((var, v_in.name, out_name))
    # Custom gradients: their backward is traced now, and the forward keeps its names (no clean-up), since
    # a tape's joined graph adds those nodes under this run's prefix.
    regions = store_regions(b, ctx) if b.custom_gradients else []
    state_ids = {var.uid for var, _, _ in state}
    params = [(var, v.name) for var, v in ctx.reads.values() if var.uid not in state_ids]
    host = inputs + [s.name for s in seed]
    model = b.to_model(name="onnxforge_eager")
    model, removed = cleanup(model, set(host) | {s[1] for s in state}) if not regions else (model, set())
    params = [(var, name) for var, name in params if name not in removed]
    if ctx.dim_checks:  # sizes only known at run time (a recurrent layer's sequence length)
        checks = ctx.dim_check_records()
        model.metadata_props.add(key=contract.DIM_CHECKS_KEY, value=json.dumps(checks))
    if ctx.value_checks:  # an Embedding's ids, checked on the host (ProgramRunner applies them)
        model.metadata_props.add(key=contract.VALUE_CHECKS_KEY, value=json.dumps(
            [{"input": n, "min": lo, "max": hi, "message": m} for n, lo, hi, m in ctx.value_checks]))
    return EagerProgram(model, host, outputs, template, params, state,
                        seed[0].name if seed else None, loss_slots=loss_slots, metric_slots=metric_slots,
                        attribute_slots=attribute_slots,
                        custom_regions=regions)


# ------------------------------------------------------------------------------------------ arrays
def layer_array(layer: Any, array: Any, dtype: Any = None) -> np.ndarray:
    """A call argument as the layer receives it: float arrays in the layer's (float) compute dtype, as
    Keras autocasts them; small or unsigned integers as int64 (onnxruntime lacks many of their kernels) unless
    the layer sets ``_keeps_integer_dtype`` (it casts them itself); ``dtype`` (a model input's) wins."""
    a = np.asarray(array)
    if dtype == "string":   # Keras's name for a string input; NumPy holds the texts as str, bytes or objects
        if a.dtype.kind not in "USO":
            raise ValueError(f"Layer {getattr(layer, 'name', layer)!r} expects a string input; received an array "
                             f"of dtype {a.dtype} with shape {a.shape}.")
        return a
    if dtype is not None:
        return a if a.dtype == np.dtype(dtype) else a.astype(dtype)
    if a.dtype.kind == "f":
        compute = np.dtype(getattr(layer, "compute_dtype", None) or "float32")
        target = compute if compute.kind == "f" else np.dtype(np.float32)
        return a if a.dtype == target else a.astype(target)
    if a.dtype.kind in "iu" and a.dtype not in (np.int32, np.int64):
        if getattr(layer, "_keeps_integer_dtype", False):
            # Keras on torch keeps the integer types torch has (a uint8 image resized stays uint8) and widens
            # the unsigned ones it lacks: uint16 to int32, uint32 / uint64 to int64.
            if a.dtype in (np.int8, np.int16, np.uint8):
                return a
            return a.astype(np.int32 if a.dtype == np.uint16 else np.int64)
        return a.astype(np.int64)
    return a


def op_array(array: Any) -> np.ndarray:
    """An op argument: float64 arrays, int32 and int64 keep their type, as Keras computes in it (``ops.erf`` of
    a float64 array is float64; float64 scalars and Python float lists take floatx); narrower integers
    become int32 (onnxruntime lacks many of their kernels: ReduceSum, Pow), uint32 and uint64 int64."""
    a = np.asarray(array)
    if a.dtype == np.float64 and a.ndim == 0:   # a NumPy float scalar: Keras reads it in floatx, as a number
        return a.astype(np.float32)
    if a.dtype.kind in "iu" and a.dtype not in (np.int32, np.int64):
        return a.astype(np.int32 if a.dtype.itemsize < 4 else np.int64)
    return a


def layout_array(array: Any) -> np.ndarray:
    """An argument of an op that only moves elements (``squeeze``, ``reshape``, ...): every integer type kept,
    as Keras keeps it (a uint8 image squeezed stays uint8); onnxruntime has these kernels for all types."""
    a = np.asarray(array)
    return a.astype(np.float32) if a.dtype == np.float64 and a.ndim == 0 else a


@functools.lru_cache(maxsize=1)
def _layout_ops() -> frozenset:
    from ..ops import numpy_shapes

    names = ("reshape", "transpose", "expand_dims", "squeeze", "tile", "broadcast_to")
    return frozenset(getattr(numpy_shapes, n).__wrapped__ for n in names)


def byte_array(array: Any) -> np.ndarray:
    """An argument of an op that moves, selects, joins or pads elements (``flip``, ``pad``, ``slice``, ``take``,
    ``concatenate``, ...): uint8 and int8 kept, as Keras and TensorFlow keep a cropped or padded uint8 image (
    ``tf.image.random_crop`` slices); wider integers as ``op_array`` (onnxruntime's Pad has no 16-bit kernels)."""
    a = np.asarray(array)
    return a if a.dtype in (np.uint8, np.int8) else op_array(a)


@functools.lru_cache(maxsize=1)
def _byte_ops() -> frozenset:
    from ..ops import arrays, control, numpy_shapes

    return frozenset([*(getattr(arrays, n).__wrapped__ for n in ("flip", "fliplr", "flipud", "roll", "pad", "split",
                                                                 "repeat")),
                      *(getattr(numpy_shapes, n).__wrapped__ for n in ("slice", "take", "concatenate", "stack")),
                      control.slice_update.__wrapped__])


def _cast_layer_args(layer: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    specs = None
    if getattr(layer, "_graph", None) is not None and args:
        # A dict for a list-input model: its values in the inputs' order, so each gets its input's dtype.
        standardize = getattr(layer, "_standardize_inputs", None)
        args = (standardize(args[0]), *args[1:]) if standardize else args
        specs = [t.dtype for t in layer.inputs]
        if len(array_leaves(args[0])) != len(specs):
            specs = None
    elif args and not getattr(layer, "built", True) and hasattr(layer, "_first_call_dtype"):
        # An unbuilt Sequential: the data is cast as the input its first call builds (uint8 images to float32).
        leaves = array_leaves(args[0])
        cast = layer._first_call_dtype(str(np.asarray(leaves[0]).dtype)) if len(leaves) == 1 else None
        specs = [cast] if cast is not None else None
    if specs is None:
        return map_arrays((args, kwargs), lambda a: layer_array(layer, a))
    it = iter(specs)
    first = map_arrays(args[0], lambda a: layer_array(layer, a, next(it)))
    rest = map_arrays((args[1:], kwargs), lambda a: layer_array(layer, a))
    return (first, *rest[0]), rest[1]


# ------------------------------------------------------------------------------------------ executor
_STATIC = object()   # marks a free-batch key whose call needs static shapes


class EagerExecutor:
    """Compiles and caches eager calls; registered with ``onnxforge.tracing`` when onnxforge is imported."""

    def __init__(self) -> None:
        self._layers: weakref.WeakKeyDictionary[Any, collections.OrderedDict] = weakref.WeakKeyDictionary()
        self._ops: collections.OrderedDict = collections.OrderedDict()
        self._shared: collections.OrderedDict = collections.OrderedDict()   # see _cache_of
        #: Programs compiled so far (a test hook: a second identical call must not add one).
        self.compiled = 0

    # ---------------------------------------------------------------- layers and models
    def call_layer(self, layer: Any, args: tuple, kwargs: dict) -> Any:
        """``layer(*args, **kwargs)`` on arrays: inside a trace they are constants; outside one, run now."""
        # Read before the cast: a cast array is a new array, without the caller's _keras_mask.
        in_masks = [getattr(a, "_keras_mask", None) for a in flatten(args[0]) if isinstance(a, np.ndarray)] \
            if args else []
        before = array_leaves((args, kwargs))
        args, kwargs = _cast_layer_args(layer, args, kwargs)
        origin = {id(cast): orig for cast, orig in zip(array_leaves((args, kwargs)), before)}
        ctx = active_trace()
        if ctx is not None:
            args, kwargs = map_arrays((args, kwargs), lambda a: ctx.b.const(a))
            return layer(*args, **kwargs)
        training = bool(kwargs.get("training") or False)
        given = kwargs.get("training") is not None
        if any(m is not None for m in in_masks):   # Keras masks ride on eager tensors as _keras_mask
            kwargs = {**kwargs, _MASKS: [np.asarray(m, bool) if m is not None else None for m in in_masks]}
        arrays = array_leaves((args, kwargs))
        originals = [origin.get(id(a), a) for a in arrays]
        # A Sequential that gained a layer is another program; so is a model whose array attributes were replaced.
        version = (getattr(layer, "_graph", None), array_attributes.snapshot(layer))
        cache = self._cache_of(layer)

        def call(*a: Any, **k: Any) -> Any:
            masks = k.pop(_MASKS, None)
            if masks is not None:
                for v, m in zip([v for v in flatten(a[0]) if isinstance(v, Value)], masks):
                    set_keras_mask(v, m)
            out = layer(*a, **k)
            return out, [get_keras_mask(v) for v in flatten(out)]

        try:
            free_key = (version, training, signature((args, kwargs), free_batch=True)[0])
            static_key = (version, training, signature((args, kwargs), free_batch=False)[0])
        except Uncacheable:
            return _with_masks(*compile_call(call, args, kwargs, arrays, False, training, owner=layer,
                                             training_given=given).run(arrays, originals))
        free = shared_batch(arrays) and cache.get(free_key) is not _STATIC
        key = free_key if free else static_key
        entry = cache.get(key)
        if entry is None:
            try:
                entry = self._compile(call, args, kwargs, arrays, free, training, layer, given)
            except Exception:
                if not free:
                    raise
                # A call() that computes with concrete sizes (x.shape[0]): trace it as Keras runs it eagerly.
                entry = self._compile(call, args, kwargs, arrays, False, training, layer, given)
                cache[free_key] = _STATIC
                key = static_key
            cache[key] = entry
            _trim(cache, LAYER_CACHE_SIZE)
        cache.move_to_end(key)
        return _with_masks(*entry.run(arrays, originals))

    def _cache_of(self, layer: Any) -> collections.OrderedDict:
        """The programs compiled for ``layer``: its own, or, for a layer without weights whose
        ``_eager_program_key()`` says what it computes (a lookup's config and vocabulary), those of every
        equal layer, since a ``Dataset.map`` function makes a new one for each row, as TensorFlow's traced
        map does once."""
        share = getattr(layer, "_eager_program_key", None)
        key = share() if callable(share) and not layer.weights else None
        if key is None:
            return self._layers.setdefault(layer, collections.OrderedDict())
        cache = self._shared.setdefault(key, collections.OrderedDict())
        self._shared.move_to_end(key)
        _trim(self._shared, LAYER_CACHE_SIZE)
        return cache

    # ---------------------------------------------------------------- ops
    def run_function(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """An op (written on graph values) applied to arrays and plain values, compiled per signature."""
        try:
            return self._run_function(fn, args, kwargs)
        except RuntimeError as e:
            if "no bfloat16 kernels" not in str(e):
                raise
            # The session's refusal names no op; the caller wants to know which call computed in bfloat16.
            raise RuntimeError(f"ops.{getattr(fn, '__name__', fn)} cannot compute on bfloat16 values here "
                               f"(dtype='bfloat16'): {e}") from e

    def _run_function(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        before = array_leaves((args, kwargs))
        args, kwargs = map_arrays((args, kwargs), layout_array if fn in _layout_ops() else
                                    byte_array if fn in _byte_ops() else op_array)
        arrays = array_leaves((args, kwargs))
        try:
            key = (fn, signature((args, kwargs), free_batch=False)[0])
        except Uncacheable:
            return compile_call(fn, args, kwargs, arrays, False, False).run(arrays, before)
        entry = self._ops.get(key)
        if entry is None:
            entry = self._ops[key] = self._compile(fn, args, kwargs, arrays, False, False)
            _trim(self._ops, OPS_CACHE_SIZE)
        self._ops.move_to_end(key)
        return entry.run(arrays, before)

    def _compile(self, call: Callable[..., Any], args: tuple, kwargs: dict, arrays: list[np.ndarray],
                 free_batch: bool, training: bool, owner: Any = None, training_given: bool = True) -> EagerProgram:
        program = compile_call(call, args, kwargs, arrays, free_batch, training, owner, training_given)
        self.compiled += 1
        return program

    def clear(self) -> None:
        """Forget every compiled program (``keras.backend.clear_session``)."""
        self._layers = weakref.WeakKeyDictionary()
        self._ops.clear()
        self._shared.clear()


def _trim(cache: collections.OrderedDict, size: int) -> None:
    while len(cache) > size:
        cache.popitem(last=False)
