"""Inference programs with their weights baked in as constants, once the weights stop changing.

onnxruntime reaches its fastest CPU kernels only through constant weights: its NCHWc layout pass turns a Conv
into blocked direct convolutions, and MatMul / Gemm pre-pack a constant operand, only when the weights are
initializers. Compiled programs take the weights as inputs (training changes them every step), so ``predict``
on the seed CNN ran 2.2x slower than the same model exported and served by stock onnxruntime (batch 128: 9.2 vs
4.1 ms per batch; one 3x3 conv of it 87 vs 140 GFLOP/s per core, ``bench/kernels.py``).

``FrozenProgram`` keeps a second session of the program in which every parameter is an initializer holding
its current value, and runs it while the parameters still hold those values: each ``Variable`` counts its new
device values (``_version``; a training step's output, an upload after ``assign``), and the frozen session
remembers the counts it was built from. It is built on the first batch under new weights, so a model whose
weights do not change answers every ``predict`` from one session, bit for bit alike. Where the weights change
after every single batch (a GAN loop's ``predict`` between training steps: three such sets of weights in a
row), builds wait until they pay, ski-rental style: until the batches run under the current weights (two or
more) have cost as much time as the last build took.

Eager calls (``model(x)``, ``layer(x)`` on arrays) run their programs the same way. The constant copies all
programs hold together stay under ``FROZEN_BUDGET_BYTES``: a build past it releases the least recently built
sessions first (they are rebuilt when next used, as after a change of weights).

``ONNXFORGE_FROZEN_INFERENCE=0`` turns this off (every batch then runs the program as compiled).
"""
from __future__ import annotations

__all__ = ["FROZEN_BUDGET_BYTES", "FrozenProgram", "frozen_bytes", "frozen_inference_enabled"]

import collections
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from ..eager_tensor import text_feed
from ..graph import protos
from ..variables import Variable
from .device import Device
from .session import computes_in_bfloat16, create_session

# After this many sets of weights in a row that each ran a single batch, builds wait until they pay.
_CHURN = 3
# Until a build has been timed, assume one costs this much (a small CNN's takes 3-10 ms, a ResNet's ~0.3 s).
_FIRST_BUILD_ESTIMATE_S = 0.05
# Past this many bytes of parameters a second, constant copy of them is not worth its memory.
MAX_FROZEN_BYTES = 1 << 30
#: The constant copies every live constant-weight session holds, together, at most (least recently built
#: released first): a model called eagerly with many signatures, or many models, each hold one.
FROZEN_BUDGET_BYTES = 1 << 30

_live: collections.OrderedDict[int, weakref.ref] = collections.OrderedDict()   # built sessions, oldest first
_live_lock = threading.Lock()


def _param_bytes(params: Sequence[tuple[Variable, str]]) -> int:
    return sum(int(np.prod(var.shape)) * np.dtype(var.dtype).itemsize for var, _ in params)


def frozen_bytes() -> int:
    """Bytes of parameters the live constant-weight sessions hold now."""
    with _live_lock:
        return sum(p.nbytes for p in (ref() for ref in _live.values()) if p is not None and p._session is not None)


def _admit(program: FrozenProgram) -> None:
    """Record ``program``'s new session as the most recent; release the oldest others past the budget."""
    with _live_lock:
        _live.pop(id(program), None)
        _live[id(program)] = weakref.ref(program)   # programs collected since are dropped below
        total = 0
        holders = []
        for key, ref in list(_live.items()):
            held = ref()
            if held is None or held._session is None:
                _live.pop(key, None)
                continue
            total += held.nbytes
            holders.append(held)
        for held in holders:   # oldest first; the new one is last and never released here
            if total <= FROZEN_BUDGET_BYTES or held is program:
                break
            if held._lock.acquire(blocking=False):   # one running or building now keeps its session
                try:
                    if held._session is not None:
                        held._release()
                        total -= held.nbytes
                finally:
                    held._lock.release()
            _live.pop(id(held), None)


def frozen_inference_enabled() -> bool:
    """``False`` where the environment sets ``ONNXFORGE_FROZEN_INFERENCE=0``."""
    value = os.environ.get("ONNXFORGE_FROZEN_INFERENCE", "1").strip()
    if value not in ("0", "1"):
        raise ValueError("Environment variable ONNXFORGE_FROZEN_INFERENCE must be 0 or 1. "
                         f"Received: ONNXFORGE_FROZEN_INFERENCE={value!r}")
    return value == "1"


class FrozenProgram:
    """One inference program (no state it updates) on the CPU, run from a constant-weight session whenever the
    parameters hold the values that session was built with.

    Args:
        model: the program; ``params`` name graph inputs fed from Variables.
        device: a CPU device.
        inputs: the inputs fed from host arrays each call.
        outputs: the outputs returned, in order.
        params: ``(variable, input name)`` pairs.
        name: the program's name, for error messages.

    Example:
        >>> import numpy as np, onnx
        >>> from onnxforge.graph import GraphBuilder
        >>> b = GraphBuilder()
        >>> x = b.input("x", onnx.TensorProto.FLOAT, (None, 2))
        >>> w = b.input("w", onnx.TensorProto.FLOAT, (2, 2))
        >>> b.output(b.op("MatMul", [x, w]), "y")
        >>> weight = Variable(np.eye(2, dtype=np.float32), name="w")
        >>> frozen = FrozenProgram(b.to_model(), Device("cpu"), ["x"], ["y"], [(weight, "w")])
        >>> regular = lambda: [np.full((1, 2), 7.0, np.float32)]   # stands in for the compiled program's run
        >>> x = {"x": np.ones((1, 2), np.float32)}
        >>> frozen.run(x, regular)[0].tolist(), frozen.builds   # built at once: the constant-weight session
        ([[1.0, 1.0]], 1)
        >>> weight.assign(2 * np.eye(2, dtype=np.float32))   # new weights: a new session
        >>> frozen.run(x, regular)[0].tolist(), frozen.builds
        ([[2.0, 2.0]], 2)
    """

    def __init__(self, model: onnx.ModelProto, device: Device, inputs: Sequence[str], outputs: Sequence[str],
                 params: Sequence[tuple[Variable, str]], name: str = "program"):
        self.model = model
        self.device = device
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.params = list(params)
        self.name = name
        #: Constant-weight sessions built so far (each change of the weights that was worth one builds one).
        self.builds = 0
        self._session: Any = None
        self._built_for: tuple[int, ...] | None = None  # the parameters' write counts the session holds
        self._seen: tuple[int, ...] | None = None       # the counts the current batches ran under
        self._batches = 0                                # batches run under ``_seen``
        self._spent = 0.0                                # seconds of compiled-program runs under ``_seen``
        self._estimate = _FIRST_BUILD_ESTIMATE_S        # seconds the next build is expected to take
        self._eager = True                               # build on the first batch under new weights
        self._singles = 0                                # sets of weights in a row that ran one batch each
        self._lock = threading.Lock()
        #: Why constant-weight sessions stopped being built (a build failed), or ``None``.
        self.disabled: str | None = None
        #: Bytes of parameters a constant-weight session of this program holds.
        self.nbytes = _param_bytes(self.params)

    @classmethod
    def eligible(cls, model: onnx.ModelProto, device: Device, params: Sequence[tuple[Variable, str]],
                 state: Sequence[Any]) -> bool:
        """Whether a program may run frozen: on the CPU, updating no state, not too big, no string tensors, not
        in bfloat16 (which the CPU provider refuses: the compiled program's run says so)."""
        if device.kind != "cpu" or state or not params or not frozen_inference_enabled():
            return False
        if computes_in_bfloat16(model):
            return False
        strings = any(vi.type.tensor_type.elem_type == onnx.TensorProto.STRING
                      for vi in [*model.graph.input, *model.graph.output])
        return _param_bytes(params) <= MAX_FROZEN_BYTES and not strings

    @classmethod
    def for_runner(cls, model: onnx.ModelProto, runner: Any) -> FrozenProgram | None:
        """The frozen twin of the program ``runner`` (a ``ProgramRunner``) runs, or ``None`` where it is not
        ``eligible``."""
        if not cls.eligible(model, runner.device, runner.params, runner.state):
            return None
        return cls(model, runner.device, runner.inputs, runner.outputs, runner.params, name=runner.name)

    def _versions(self) -> tuple[int, ...]:
        from .session_runner import device_value

        for var, _ in self.params:   # a value written on the host since is uploaded now, bumping its count
            if var._get_device() is None:
                device_value(var, self.device)
        return tuple(var._version for var, _ in self.params)

    def run(self, feeds: Mapping[str, np.ndarray], regular: Callable[[], list[np.ndarray]]) -> list[np.ndarray]:
        """The outputs for ``feeds`` (host arrays by input name): from the constant-weight session when it
        holds the current weights or building it now pays, else from ``regular()`` (the compiled program)."""
        with self._lock:
            versions = self._versions()
            if versions != self._built_for or self.disabled is not None:
                if versions != self._seen:
                    self._new_weights(versions)
                self._batches += 1
                wanted = self._eager or (self._batches > 1 and self._spent >= self._estimate)
                if self.disabled is not None or not wanted:
                    start = time.perf_counter()
                    values = regular()
                    self._spent += time.perf_counter() - start
                    return values
                try:
                    self._build(versions)
                except Exception as e:  # a model onnxruntime cannot load with constants (2 GB protobuf limit...)
                    self.disabled = str(e)
                    warnings.warn(f"onnxforge: the {self.name} program cannot run with constant weights, so it "
                                  f"keeps running as compiled: {e}", RuntimeWarning, stacklevel=2)
                    return regular()
                _admit(self)
                self._eager = True
            session = self._session
        try:
            return session.run(self.outputs, {name: text_feed(feeds[name]) for name in self.inputs})
        except Exception as e:  # onnxruntime raises its own exception types
            raise RuntimeError(f"onnxruntime failed while running the {self.name} program: {e}") from e

    def _new_weights(self, versions: tuple[int, ...]) -> None:
        """Book-keeping when the weights changed: after ``_CHURN`` sets of weights in a row that ran one batch
        each (a GAN loop's predict between training steps), stop building at once."""
        if self._seen is not None:
            self._singles = self._singles + 1 if self._batches == 1 else 0
            if self._singles >= _CHURN:
                self._eager = False
        self._seen, self._batches, self._spent = versions, 0, 0.0

    def _release(self) -> None:
        """Free the constant-weight session (the caller holds ``_lock``) for the budget's sake; it is rebuilt
        once the batches run without it have cost as much as its build did (so that two programs the budget
        cannot hold together do not rebuild on every call)."""
        self._session = None
        self._built_for = None
        self._seen = None
        self._eager = False

    def _build(self, versions: tuple[int, ...]) -> None:
        start = time.perf_counter()
        self._session = None   # the old one's weights are stale: freed before the new copy is made
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        graph = model.graph
        names = {name for _, name in self.params}
        kept = [vi for vi in graph.input if vi.name not in names]
        del graph.input[:]
        graph.input.extend(kept)
        for var, name in self.params:
            graph.initializer.append(protos.tensor_from_array(var._get_device().numpy(), name))
        self._session = create_session(model, self.device, f"{self.name} (constant weights)",
                                       layout_optimizations=True)
        self._built_for = versions
        self._estimate = time.perf_counter() - start
        self.builds += 1
