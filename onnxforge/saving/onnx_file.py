"""Writing ``.onnx`` files: atomic, with external data past protobuf's 2 GB limit, and step graphs with their
initial-state companion; reading and writing ``metadata_props`` entries."""
from __future__ import annotations

__all__ = ["EXTERNAL_DATA_LIMIT", "write_onnx", "write_step"]

import json
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import onnx

from ..graph import contract
from ..graph.opset import DEFAULT_OPSET
from . import portable
from .atomic import atomic_write, remove_stale_temps


#: Protobuf cannot serialize a message over 2 GiB; past this many bytes of tensor data (leaving room
#: for the graph itself) weights go to an external-data file beside the ``.onnx`` file.
EXTERNAL_DATA_LIMIT = 2**31 - 2**27
#: Tensors smaller than this stay inside the ``.onnx`` file even when the rest goes external.
_EXTERNAL_MIN_BYTES = 1024
_ALIGN = 64


def _copy(proto: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    return out


def _opset_of(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), DEFAULT_OPSET)


def _set_meta(proto: onnx.ModelProto, key: str, value: str) -> None:
    for entry in proto.metadata_props:
        if entry.key == key:
            entry.value = value
            return
    proto.metadata_props.add(key=key, value=value)


def _get_meta(proto: onnx.ModelProto, key: str) -> str | None:
    return next((e.value for e in proto.metadata_props if e.key == key), None)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)


# ------------------------------------------------------------------------------------------ writing
def _tensor_bytes(proto: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in proto.graph.initializer)


def _data_name(path: Path) -> re.Pattern[str]:
    """The names of the external-data files that writes to ``path`` create: ``<name>.<8 hex>.data``."""
    return re.compile(re.escape(path.name) + r"\.[0-9a-f]{8}\.data\Z")


def _data_files(path: Path) -> list[Path]:
    pattern = _data_name(path)
    try:
        return [path.parent / n for n in os.listdir(path.parent) if pattern.match(n)]
    except FileNotFoundError:
        return []


def _remove_stale_data_temps(path: Path) -> None:
    """Half-written data files of earlier writes to ``path`` whose writer was killed: each has its own
    random name, so ``atomic_write``'s clean-up of the same target never meets them."""
    pattern = _data_name(path)
    remove_stale_temps(path.parent, lambda name: pattern.match(name) is not None)


def write_onnx(proto: onnx.ModelProto, path: str | os.PathLike[str], external_data: bool | None = None) -> Path:
    """Write ``proto`` to ``path`` atomically; big tensors go to an external-data file beside it.

    Args:
        proto: the model.
        path: the ``.onnx`` file; its folder must exist.
        external_data: ``True`` stores every initializer of 1 KiB or more in ``<file name>.<token>.data``
            beside ``path`` (ONNX external data, a location relative to the model's folder); ``None``
            (default) does so only when the tensors would exceed protobuf's 2 GB limit.

    The data file is written first under a fresh name, then the ``.onnx`` file is replaced, then data
    files of earlier writes to ``path`` are removed: a crash at any point leaves a consistent pair.

    Returns:
        The written path.
    """
    path = Path(os.fspath(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist.")
    _remove_stale_data_temps(path)
    if external_data is None:
        external_data = _tensor_bytes(proto) > EXTERNAL_DATA_LIMIT
    if external_data and not any(len(t.raw_data) >= _EXTERNAL_MIN_BYTES for t in proto.graph.initializer):
        external_data = False   # nothing big enough to move: one file
    if not external_data:
        atomic_write(path, proto.SerializeToString())
        for old in _data_files(path):
            old.unlink(missing_ok=True)
        return path

    location = f"{path.name}.{secrets.token_hex(4)}.data"
    moved: list[tuple[onnx.TensorProto, bytes]] = []
    offset = 0
    plan: list[tuple[int, bytes]] = []
    for t in proto.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.raw_data) < _EXTERNAL_MIN_BYTES:
            continue
        offset = (offset + _ALIGN - 1) // _ALIGN * _ALIGN
        blob = t.raw_data
        plan.append((offset, blob))
        moved.append((t, blob))
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(blob)))):
            t.external_data.add(key=key, value=value)
        offset += len(blob)

    def write_data(f: BinaryIO) -> None:
        pos = 0
        for start, blob in plan:
            f.write(b"\0" * (start - pos))
            f.write(blob)
            pos = start + len(blob)

    try:
        atomic_write(path.parent / location, write_data)
        atomic_write(path, proto.SerializeToString())
    except BaseException:
        (path.parent / location).unlink(missing_ok=True)
        raise
    finally:
        for t, blob in moved:   # hand the caller's proto back as it came
            del t.external_data[:]
            t.ClearField("data_location")
            t.raw_data = blob
    for old in _data_files(path):
        if old.name != location:
            old.unlink(missing_ok=True)
    return path


def _checked_write(proto: onnx.ModelProto, path: str | os.PathLike[str], external_data: bool | None,
                   what: str) -> Path:
    """Run the full checker, then write. A model with external data is checked from its written files
    (the checker reads the data through the path; in memory it would be over protobuf's limit)."""
    domains = {n.domain for n in proto.graph.node} - {"", "ai.onnx"}
    if domains:
        raise AssertionError(f"{what}: non-standard op domains {sorted(domains)}")
    if external_data is None:
        external_data = _tensor_bytes(proto) > EXTERNAL_DATA_LIMIT
    if not external_data:
        onnx.checker.check_model(proto, full_check=True)
        return write_onnx(proto, path, external_data=False)
    written = write_onnx(proto, path, external_data=True)
    onnx.checker.check_model(str(written), full_check=True)
    return written


def write_step(proto: onnx.ModelProto, state: Sequence[tuple[str, np.ndarray]], path: str | os.PathLike[str],
               external_data: bool | None = None, what: str = "export") -> Path:
    """Write a step graph and its initial-state companion (see ``onnxforge.saving.portable``).

    The companion (``<name>.init.onnx``) is written first, then the step graph that names it, each
    atomically and each checked by the full checker; both carry one fresh ``onnxforge.export_id``.
    ``external_data`` applies to each file (the companion holds the weights). ``proto`` gets the format
    metadata; the state inputs must have no initializer defaults (``portable.split_defaults`` removes them).

    Returns:
        The step graph's path.
    """
    path = Path(os.fspath(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist.")
    inputs = {i.name for i in proto.graph.input}
    defaults = sorted(inputs & {t.name for t in proto.graph.initializer})
    if defaults:
        raise ValueError(f"{what}: inputs {defaults[:5]} have initializer defaults, which onnxruntime's JavaScript "
                         "API does not list; move them to the initial state (portable.split_defaults).")
    unknown = [n for n, _ in state if n not in inputs]
    if unknown:
        raise ValueError(f"{what}: initial values for {unknown[:5]}, which are not inputs of the graph")
    init_path = portable.companion_path(path)
    kind = _get_meta(proto, contract.PROGRAM_KEY) or "train_step"
    export_id = secrets.token_hex(8)
    for key, value in ((contract.FORMAT_KEY, f"{kind}/{portable.STEP_VERSION}"),
                       (contract.INIT_MODEL_KEY, init_path.name), (contract.EXPORT_ID_KEY, export_id)):
        _set_meta(proto, key, value)
    proto.doc_string = (proto.doc_string + " " if proto.doc_string else "") + _loop_doc(proto, init_path.name)
    init = portable.initial_state_model(state, opset=_opset_of(proto), doc_string=(
        f"Initial state of '{path.name}' (onnxforge {kind}): no inputs; run it once and feed each output to "
        f"the input of the same name of '{path.name}'."))
    init.producer_version = proto.producer_version
    for key, value in ((contract.FORMAT_KEY, portable.INIT_FORMAT), (contract.INIT_FOR_KEY, path.name),
                       (contract.EXPORT_ID_KEY, export_id), (contract.PROGRAM_KEY, "initial_state")):
        _set_meta(init, key, value)
    _checked_write(init, init_path, external_data, what)
    return _checked_write(proto, path, external_data, what)


def _loop_doc(proto: onnx.ModelProto, init_name: str) -> str:
    """How to drive the step, from the graph's own roles (the doc_string any ONNX viewer shows)."""
    io = json.loads(_get_meta(proto, contract.IO_KEY) or "{}").get("inputs", {})
    batch = [n for key in ("data", "targets", "sample_weights") for n in io.get(key, [])]
    rates = ([io["learning_rate"]] if io.get("learning_rate") else []) + list(io.get("learning_rates", {}).values())
    text = (f"How to run it: (1) run '{init_name}' (same folder, no inputs) once: its outputs, by name, are the "
            f"initial value of every other input here (weights, optimizer slots, counters, statistics, RNG state); "
            f"keep them as the state. (2) Each step feed the batch ({', '.join(batch) or 'see onnxforge.io'})")
    if rates:
        text += f", the learning rate ({', '.join(rates)}: float32 scalar)"
    text += " and the state."
    if json.loads(_get_meta(proto, contract.STATE_KEY) or "[]"):
        text += (f" (3) For each [input, output] pair in metadata_props['{contract.STATE_KEY}'] the output is the "
                 "input's next value.")
    if any(o.name == contract.sum_output(contract.LOSS, "total") for o in proto.graph.output):
        text += " Batch loss = sums/loss/total / sums/loss/count."
    return text + f" Input roles: metadata_props['{contract.IO_KEY}']."
