"""Running one program step after step with device-resident state.

Parameters, optimizer slots, statistics and RNG state are ``Variable``s whose live value is an
onnxruntime ``OrtValue`` on the program's device. Each run binds them through ``IOBinding``, has
onnxruntime write the state outputs into device buffers the runner keeps (two per state, used in turn),
and hands the new ``OrtValue``s to the Variables: the only host transfers are the batch in and the
fetched outputs (predictions or metric sums) out. A feed that is already an ``OrtValue`` on the program's
device (a batch kept there) is bound as it is, read-only host arrays (constant sample weights) are uploaded
once and reused, and ``run(..., fetch=False)`` leaves the outputs on the device without waiting for them, so
a loop that reads its metric sums only every few steps never waits on the device in between.
"""
from __future__ import annotations

__all__ = ["ProgramRunner", "device_value", "ort_empty_like", "value_checks"]

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from ..eager_tensor import text_feed
from ..graph.contract import DIM_CHECKS_KEY, VALUE_CHECKS_KEY
from ..variables import Variable
from .device import Device
from .session import create_session

_MAX_CONSTANTS = 8  # read-only host feeds kept uploaded per runner (one per batch size in practice)


class ProgramRunner:
    """Drives one program on one device.

    Args:
        model: the program.
        device: where it runs.
        inputs: names of the inputs fed from host arrays each call.
        outputs: names of the outputs copied back to the host, in order.
        params: ``(variable, input name)`` bound read-only from the variable's device value.
        state: ``(variable, input name, output name)``: the output becomes the variable's new value.
        learning_rate: the name of a scalar float input fed through ``run(learning_rate=...)``.
        name: the program's name, for error messages.
        threads: intra-op threads of its session (default: ``session.intra_op_threads()``).

    The session is created on the first run and reused.

    Example:
        >>> import numpy as np, onnx
        >>> from onnxforge.graph import GraphBuilder
        >>> b = GraphBuilder()
        >>> x = b.input("x", onnx.TensorProto.FLOAT, (2,))
        >>> c = b.input("c", onnx.TensorProto.FLOAT, (2,))
        >>> b.output(x + c, "y"); b.output(c + 1.0, "c:new")
        >>> counter = Variable(np.zeros(2, np.float32), name="c", trainable=False)
        >>> runner = ProgramRunner(b.to_model(), Device("cpu"), ["x"], ["y"], state=[(counter, "c", "c:new")])
        >>> _ = runner.run({"x": np.ones(2, np.float32)}); runner.run({"x": np.ones(2, np.float32)})[0].tolist()
        [2.0, 2.0]
        >>> counter.numpy().tolist()
        [2.0, 2.0]
    """

    def __init__(self, model: onnx.ModelProto, device: Device, inputs: Sequence[str], outputs: Sequence[str],
                 params: Sequence[tuple[Variable, str]] = (), state: Sequence[tuple[Variable, str, str]] = (),
                 learning_rate: str | None = None, name: str = "program", threads: int | None = None):
        self.model = model
        self.threads = threads
        self.device = device
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        # Decided once from the graph, not per step: which fetched outputs need the bfloat16 conversion.
        bf16 = {o.name for o in model.graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.BFLOAT16}
        self._fetchers = [host_array if name in bf16 else _ort_numpy for name in self.outputs]
        self.params = list(params)
        self.state = list(state)
        self.learning_rate = learning_rate
        self.name = name
        self._session = None
        self._lr_cache: tuple[float, Any] | None = None
        # Two IOBindings used in turn (ping-pong): each state output is written into the buffer that held the
        # state before the previous step, which nothing references any more. In steady state every binding
        # already holds the right buffers, so a step binds only the batch and allocates no state tensors.
        self._bindings: list[_Binding] = []
        self._other: dict[str, Any] = {}     # state output name -> the buffer its next value goes to
        self._resident: dict[str, Any] = {}  # input name -> the device value last bound or handed out
        #: Host-side checks of feed values (an Embedding's ids), also run by callers on raw arrays before
        #: they cast them (a cast would wrap 2**63 to 0 or saturate 1e19 before these could see it).
        self.value_checks = value_checks(model, self.inputs)
        self._dim_checks = _dim_checks(model, self.inputs) + self.value_checks
        self._constants: dict[int, tuple[np.ndarray, Any]] = {}  # id of a read-only host array -> its upload
        self._run_options: Any = None
        # onnxruntime cannot bind string tensors: programs with text in or out run through session.run.
        self._has_strings = any(vi.type.tensor_type.elem_type == onnx.TensorProto.STRING
                                for vi in [*model.graph.input, *model.graph.output])
        self.runs = 0
        self._lock = threading.RLock()

    @property
    def session(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = create_session(self.model, self.device, self.name, self.threads)
        return self._session

    # ---------------------------------------------------------------- device values
    def _on_device(self, value: Any) -> bool:
        return value.device_name().lower() == self.device.ort_device

    def device_value(self, var: Variable) -> Any:
        """``var``'s live value on this runner's device (uploaded from the host once, when needed)."""
        return device_value(var, self.device)

    def _lr_value(self, lr: float) -> Any:
        import onnxruntime as ort

        if self._lr_cache is None or self._lr_cache[0] != lr:
            array = np.asarray(lr, np.float32)
            self._lr_cache = (lr, ort.OrtValue.ortvalue_from_numpy(array, self.device.ort_device,
                                                                   self.device.device_id))
        return self._lr_cache[1]

    # ---------------------------------------------------------------- running
    def run(self, feeds: Mapping[str, Any], learning_rate: float | None = None,
            fetch: bool = True, checked: bool = False) -> list[Any]:
        """One run: bind the batch, the variables and the learning rate; return the fetched outputs.

        Thread-safe: the bindings, the state buffers and the run counter are shared by every caller, so
        runs of one program take turns (``predict`` from several threads on one model gives each thread
        its own answer; onnxruntime still uses its own threads inside each run).

        Args:
            feeds: host arrays, or ``OrtValue``s already on this runner's device, by input name.
            learning_rate: the value of the learning-rate input, if the program has one.
            fetch: ``True``: the outputs as host arrays. ``False``: as ``OrtValue``s left where the program
                wrote them (call ``.numpy()`` later); on CUDA the run then returns without synchronizing.
            checked: the caller already ran ``check_feeds`` on these feeds.
        """
        if not checked:
            self.check_feeds(feeds)
        with self._lock:
            return self._run(feeds, learning_rate, fetch)

    def check_feeds(self, feeds: Mapping[str, Any]) -> None:
        """The run-time checks of ``run`` (sizes the graph needs, an Embedding's ids), for callers that cut the
        feeds up before running them (sharded steps, data-parallel ranks)."""
        for check in self._dim_checks:
            check(feeds)

    def _run(self, feeds: Mapping[str, Any], learning_rate: float | None, fetch: bool) -> list[Any]:
        sess = self.session
        if self._has_strings:
            return self._run_host(feeds, learning_rate)
        if len(self._bindings) < 2:
            io = sess.io_binding()
            for name in self.outputs:  # bound first: get_outputs() lists outputs in binding order
                io.bind_output(name, "cpu")
            self._bindings.append(_Binding(io))
        binding = self._bindings[self.runs % len(self._bindings)]
        io = binding.io
        for name in self.inputs:
            self._bind_feed(io, name, feeds[name])
        for var, name in self.params:
            binding.input(name, self._resident_value(var, name))
        olds, news = [], []
        for var, name, out in self.state:
            current = self._resident_value(var, name)
            other = self._other.get(out)
            if other is None or other is current:
                other = ort_empty_like(current, var.dtype, self.device)
            binding.input(name, current)
            binding.output(out, other)
            olds.append(current)
            news.append(other)
        if self.learning_rate is not None:
            if learning_rate is None:
                raise ValueError(f"The {self.name} program needs a learning rate.")
            binding.input(self.learning_rate, self._lr_value(float(learning_rate)))
        where = "cpu" if fetch else self.device.ort_device
        for name in self.outputs:
            # Rebound every run (in place, keeping its position): a bound output keeps its last buffer,
            # whose shape may not fit this batch, and a deferred output must keep its own.
            io.bind_output(name, where, self.device.device_id if where != "cpu" else 0)
        try:
            sess.run_with_iobinding(io, None if fetch else self._deferred_options())
        except Exception as e:
            raise RuntimeError(f"onnxruntime failed while running the {self.name} program: {e}") from e
        # The raw vector, not get_outputs(): that wraps every state output too, and only the fetched ones
        # (bound first) are read here.
        raw = getattr(io, "get_outputs_as_ortvaluevector", io.get_outputs)
        values = raw()
        fetched = [self._fetchers[i](values[i]) if fetch else values[i] for i in range(len(self.outputs))]
        for (var, name, out), old, new in zip(self.state, olds, news):
            var._set_device(new)
            self._resident[name] = new
            self._other[out] = old
        self.runs += 1
        return fetched

    def _bind_feed(self, io: Any, name: str, value: Any) -> None:
        import onnxruntime as ort

        if isinstance(value, (ort.OrtValue, ort.capi.onnxruntime_pybind11_state.OrtValue)):
            if not self._on_device(value):
                raise ValueError(f"The {self.name} program runs on {self.device}; input {name!r} is an OrtValue on "
                                 f"{value.device_name()}. Pass a host array or an OrtValue on {self.device}.")
            if not isinstance(value, ort.OrtValue):   # a raw output of another run (``fetch=False``)
                value = ort.OrtValue(value)
            io.bind_ortvalue_input(name, value)
        elif isinstance(value, np.ndarray) and value.dtype.name == "bfloat16":
            # onnxruntime binds no ml_dtypes array: its bits go in as an OrtValue typed bfloat16.
            bits = np.ascontiguousarray(value).view(np.uint16)
            io.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
                bits, onnx.TensorProto.BFLOAT16))
        elif isinstance(value, np.ndarray) and not value.flags.writeable:
            # Read-only host arrays (the trainer's cached unit sample weights) cannot change: upload once.
            cached = self._constants.get(id(value))
            if cached is None or cached[0] is not value:
                device_value = ort.OrtValue.ortvalue_from_numpy(np.asarray(value, order="C"), self.device.ort_device,
                                                                self.device.device_id)
                if len(self._constants) >= _MAX_CONSTANTS:  # a stream of read-only batches must not pile up
                    self._constants.pop(next(iter(self._constants)))
                cached = self._constants[id(value)] = (value, device_value)
            io.bind_ortvalue_input(name, cached[1])
        else:
            io.bind_cpu_input(name, np.asarray(value, order="C"))

    def _deferred_options(self) -> Any:
        if self._run_options is None:
            import onnxruntime as ort

            self._run_options = ort.RunOptions()
            # Return once the work is queued: the caller reads the outputs (and waits) later.
            self._run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        return self._run_options

    def _run_host(self, feeds: Mapping[str, np.ndarray], learning_rate: float | None) -> list[np.ndarray]:
        """A run through ``session.run`` with host arrays (string tensors cannot be bound as OrtValues)."""
        import onnxruntime as ort

        host = {name: text_feed(feeds[name]) for name in self.inputs}
        for var, name in self.params:
            host[name] = self._resident_value(var, name).numpy()
        for var, name, _ in self.state:
            host[name] = self._resident_value(var, name).numpy()
        if self.learning_rate is not None:
            if learning_rate is None:
                raise ValueError(f"The {self.name} program needs a learning rate.")
            host[self.learning_rate] = np.asarray(learning_rate, np.float32)
        names = self.outputs + [out for _, _, out in self.state]
        try:
            values = self.session.run(names, host)
        except Exception as e:
            raise RuntimeError(f"onnxruntime failed while running the {self.name} program: {e}") from e
        for (var, name, _), new in zip(self.state, values[len(self.outputs):]):
            value = ort.OrtValue.ortvalue_from_numpy(np.asarray(new, order="C"), self.device.ort_device,
                                                     self.device.device_id)
            var._set_device(value)
            self._resident[name] = value
        self.runs += 1
        return values[:len(self.outputs)]

    def _resident_value(self, var: Variable, name: str) -> Any:
        """``device_value(var)``, skipping the device check for the value this runner last handed out."""
        value = var._get_device()
        if value is None or value is not self._resident.get(name):
            value = self._resident[name] = self.device_value(var)
        return value


class _Binding:
    """An ``IOBinding`` and the device values it holds, so unchanged bindings are not redone."""

    def __init__(self, io: Any):
        self.io = io
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}

    def input(self, name: str, value: Any) -> None:
        if self.inputs.get(name) is not value:
            self.io.bind_ortvalue_input(name, value)
            self.inputs[name] = value

    def output(self, name: str, value: Any) -> None:
        if self.outputs.get(name) is not value:
            self.io.bind_ortvalue_output(name, value)
            self.outputs[name] = value


def _ort_numpy(value: Any) -> np.ndarray:
    return value.numpy()


def host_array(value: Any) -> np.ndarray:
    """A fetched (CPU) OrtValue as a NumPy array; bfloat16, which ``OrtValue.numpy()`` refuses, as an
    ``ml_dtypes.bfloat16`` array (what Keras's ``convert_to_numpy`` gives for one)."""
    if value.data_type() != "tensor(bfloat16)":
        return value.numpy()
    import ctypes

    import ml_dtypes

    shape = tuple(value.shape())
    size = int(np.prod(shape, dtype=np.int64))
    raw = np.ctypeslib.as_array((ctypes.c_uint16 * size).from_address(value.data_ptr())) if size else \
        np.zeros(0, np.uint16)
    return raw.copy().view(ml_dtypes.bfloat16).reshape(shape)


def device_value(var: Variable, device: Device) -> Any:
    """``var``'s live value on ``device`` (uploaded from the host once, when needed)."""
    import onnxruntime as ort

    current = var._get_device()
    if current is not None and current.device_name().lower() == device.ort_device:
        return current
    # A private copy: the host array stays untouched while the device value evolves.
    host = np.array(var.numpy(), copy=True, order="C")
    value = ort.OrtValue.ortvalue_from_numpy(host, device.ort_device, device.device_id)
    var._set_device(value)
    return value


def ort_empty_like(value: Any, dtype: np.dtype, device: Device) -> Any:
    """An uninitialized ``OrtValue`` shaped like ``value`` on ``device``."""
    import onnxruntime as ort

    return ort.OrtValue.ortvalue_from_shape_and_type(value.shape(), dtype, device.ort_device, device.device_id)


def _dim_checks(model: onnx.ModelProto, inputs: Sequence[str]) -> list[Callable[[Mapping[str, Any]], None]]:
    """The program's run-time dim checks (``metadata_props["onnxforge.dim_checks"]``) as functions of the
    feeds: each raises ``ValueError`` with the layer's message before onnxruntime sees a bad size."""
    import json


    raw = next((p.value for p in model.metadata_props if p.key == DIM_CHECKS_KEY), None)
    if raw is None:
        return []
    where: dict[str, tuple[str, int]] = {}  # dim symbol -> (host input, axis) that carries it
    for vi in model.graph.input:
        if vi.name in inputs:
            for axis, d in enumerate(vi.type.tensor_type.shape.dim):
                if d.dim_param:
                    where.setdefault(d.dim_param, (vi.name, axis))
    checks = []
    for entry in json.loads(raw):
        places = [where.get(d) for d in entry["dims"]]
        if None in places:
            continue  # a symbol no host input carries: nothing to check on the host
        checks.append(_make_check(places, entry["min"], entry["message"], entry.get("max")))
    return checks


def _make_check(places: list[tuple[str, int]], minimum: int | None, message: str,
                maximum: int | None = None) -> Callable[[Mapping[str, Any]], None]:
    def check(feeds: Mapping[str, Any]) -> None:
        shapes = [_shape(feeds[name]) if name in feeds else None for name, _ in places]
        if any(s is None or len(s) <= axis for s, (_, axis) in zip(shapes, places)):
            return  # missing or mis-ranked feeds are reported by the caller's own checks
        sizes = [s[axis] for s, (_, axis) in zip(shapes, places)]
        got = ", ".join(f"input {name!r} of shape {tuple(s)}" for (name, _), s in zip(places, shapes))
        if (minimum is not None and sizes[0] < minimum) or (maximum is not None and sizes[0] > maximum) or \
                (minimum is None and len(set(sizes)) > 1):
            raise ValueError(f"{message} Received: {got}")

    return check


def value_checks(model: onnx.ModelProto, inputs: Sequence[str]) -> list[Callable[[Mapping[str, Any]], None]]:
    """The program's run-time value checks (``metadata_props["onnxforge.value_checks"]``) on host feeds:
    each raises ``ValueError`` with the layer's message when an element lies outside ``[min, max]`` (an
    Embedding id past its table, negative, huge or not a finite number), naming the value received."""
    import json


    raw = next((p.value for p in model.metadata_props if p.key == VALUE_CHECKS_KEY), None)
    if raw is None:
        return []
    return [_make_value_check(e["input"], int(e["min"]), int(e["max"]), str(e["message"]))
            for e in json.loads(raw) if e.get("input") in inputs]


def _make_value_check(name: str, minimum: int, maximum: int, message: str) -> Callable[[Mapping[str, Any]], None]:
    def check(feeds: Mapping[str, Any]) -> None:
        if name not in feeds or callable(getattr(feeds[name], "data_type", None)):
            return  # absent, or an OrtValue on the device: its values are not read back to be checked
        a = np.asarray(feeds[name])
        if a.size == 0 or a.dtype.kind not in "iuf":
            return
        integral = a.dtype.kind in "iu"
        if not integral:
            finite = np.isfinite(a)
            if not finite.all():
                raise ValueError(f"{message} Received: {a[~finite].flat[0]} in input {name!r}")
            a = np.trunc(a)   # what the graph's Cast to int does
        low, high = a.min(), a.max()
        if low < minimum or high > maximum:
            def show(x: Any) -> Any:
                return int(x) if integral or abs(float(x)) < 2**53 else float(x)

            bad = low if low < minimum else high
            raise ValueError(f"{message} Received: {show(bad)} in input {name!r} (its values span "
                             f"[{show(low)}, {show(high)}]; expected [{minimum}, {maximum}])")

    return check


def _shape(value: Any) -> tuple:
    """The shape of a host array or an ``OrtValue``."""
    shape = getattr(value, "shape", None)
    return tuple(shape()) if callable(shape) else np.shape(value)
