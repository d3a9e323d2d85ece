"""Running one stage of a replica's gradient program with its outputs where the next step wants them.

Unlike ``runtime.ProgramRunner`` (whose fetched outputs are fresh host arrays), a stage writes each gradient
bucket into a buffer allocated once: on the CPU a numpy array onnxruntime writes into directly, which MPI
then reduces in place and the update program reads, with no copy; on a GPU a device buffer copied to a host
staging array for MPI (see ``bench/data_parallel.py`` for the CUDA-aware alternative). Values a later stage
reads stay on the device as ``OrtValue``s; the random streams' state outputs become their Variables' values.

Example:
    >>> runner = StageRunner(stage_model, Device("cpu"), "replica_grads", params, state, preset)  # doctest: +SKIP
    >>> host, carried = runner.run(feeds, carried={})                                           # doctest: +SKIP
"""
from __future__ import annotations

__all__ = ["StageRunner"]

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from ..runtime import Device, create_session
from ..variables import Variable


def device_value(var: Variable, device: Device) -> Any:
    """``var``'s live value on ``device`` (uploaded from the host once, when it is not there)."""
    import onnxruntime as ort

    current = var._get_device()
    if current is not None and current.device_name().lower() == device.ort_device:
        return current
    host = np.array(var.numpy(), copy=True, order="C")
    value = ort.OrtValue.ortvalue_from_numpy(host, device.ort_device, device.device_id)
    var._set_device(value)
    return value


class StageRunner:
    """One stage: binds host feeds, Variables and carried device values; routes its outputs.

    Args:
        model: the stage's model.
        device: where it runs.
        name: for error messages.
        params: ``{input name: Variable}`` read-only.
        state: ``{input name: (Variable, output name)}``: the output becomes the Variable's new value.
        preset: ``{output name: OrtValue}`` written in place (gradient buckets).
        carry: output names later stages read: kept as device ``OrtValue``s.
        fetch: output names copied to the host (metric sums, exchange sources).
    """

    def __init__(self, model: onnx.ModelProto, device: Device, name: str, params: Mapping[str, Variable],
                 state: Mapping[str, tuple[Variable, str]], preset: Mapping[str, Any], carry: Sequence[str],
                 fetch: Sequence[str]):
        self.model = model
        self.device = device
        self.name = name
        self.inputs = [i.name for i in model.graph.input]
        self.outputs = [o.name for o in model.graph.output]
        self.params = {k: v for k, v in params.items() if k in self.inputs}
        self.state = {k: v for k, v in state.items() if k in self.inputs}
        self.preset = {k: v for k, v in preset.items() if k in self.outputs}
        self.carry = [o for o in self.outputs if o in set(carry)]
        self.host = [o for o in self.outputs if o in set(fetch)]
        self._session = None
        self._io = None

    def run(self, feeds: Mapping[str, np.ndarray], carried: Mapping[str, Any]) -> tuple[dict[str, np.ndarray],
                                                                                            dict[str, Any]]:
        """One run. Returns the host outputs (metric sums, exchange sources) and the carried device values."""
        if self._session is None:
            self._session = create_session(self.model, self.device, self.name)
            self._io = self._session.io_binding()
        io = self._io
        for name in self.inputs:
            if name in self.params:
                io.bind_ortvalue_input(name, device_value(self.params[name], self.device))
            elif name in self.state:
                io.bind_ortvalue_input(name, device_value(self.state[name][0], self.device))
            elif name in carried:
                io.bind_ortvalue_input(name, carried[name])
            else:
                io.bind_cpu_input(name, np.asarray(feeds[name], order="C"))
        for name in self.outputs:
            if name in self.preset:
                io.bind_ortvalue_output(name, self.preset[name])
            elif name in self.carry:   # (also fetched when in `fetch`: a copy from the device value)
                io.bind_output(name, self.device.ort_device, self.device.device_id)
            elif name in self.host:
                io.bind_output(name, "cpu")
            else:   # a state output: a fresh device buffer each run (random streams: a few bytes)
                io.bind_output(name, self.device.ort_device, self.device.device_id)
        try:
            self._session.run_with_iobinding(io)
        except Exception as e:
            raise RuntimeError(f"onnxruntime failed while running the {self.name} program: {e}") from e
        values = dict(zip(self.outputs, io.get_outputs()))
        # The binding would keep its inputs and outputs referenced until this stage runs again: released now,
        # a carried value lives only as long as the later stages that read it (a synchronized-BatchNorm step
        # in 15 stages otherwise held every stage's values at once, ~0.7 GB on the residual CNN of bench/).
        io.clear_binding_inputs()
        io.clear_binding_outputs()
        for var, out in self.state.values():
            var._set_device(values[out])
        host = {name: values[name].numpy() for name in self.host}
        carried_out = {name: values[name] for name in self.carry}
        return host, carried_out
