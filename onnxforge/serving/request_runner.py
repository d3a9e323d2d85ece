"""One onnxruntime session plus the checks that turn a JSON request into valid feeds.

Only onnxruntime, numpy and the standard library are used here, so a served model needs nothing else.
"""
from __future__ import annotations

__all__ = ["ModelRunner", "RequestError", "TensorSpec"]

import os
from collections.abc import Mapping, Sequence
from itertools import chain
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import onnx
import onnxruntime as ort

from onnxforge.runtime.session_runner import value_checks
from onnxforge.graph.safe_load import iter_tensors, load_onnx

Dim = Union[int, str, None]

#: onnxruntime type strings that JSON values can be turned into, and the numpy dtype fed for each.
_ORT_DTYPES: dict[str, np.dtype] = {
    f"tensor({name})": np.dtype(dt)
    for name, dt in (("float", np.float32), ("double", np.float64), ("float16", np.float16),
                     ("int8", np.int8), ("int16", np.int16), ("int32", np.int32), ("int64", np.int64),
                     ("uint8", np.uint8), ("uint16", np.uint16), ("uint32", np.uint32),
                     ("uint64", np.uint64), ("bool", np.bool_), ("string", np.str_))
}


class RequestError(ValueError):
    """A request the model cannot take (bad JSON shape, missing input, wrong shape or dtype): HTTP 400."""


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output as the service describes it.

    Attributes:
        name: The graph input/output name.
        type: onnxruntime's type string, e.g. ``"tensor(float)"``.
        shape: One entry per axis: an int (fixed), a str (a named dynamic dim such as ``"N"``) or None
            (dynamic, unnamed). None for the whole shape if the rank is unknown.
    """

    name: str
    type: str
    shape: tuple[Dim, ...] | None

    @property
    def dtype(self) -> np.dtype | None:
        """The numpy dtype fed for this tensor, or None if JSON cannot express it."""
        return _ORT_DTYPES.get(self.type)

    def describe(self) -> str:
        """The shape as a reader writes it, e.g. ``[N, 3]``."""
        if self.shape is None:
            return "[any rank]"
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"

    def to_json(self) -> dict[str, Any]:
        """``{"name", "dtype", "shape"}`` with numpy dtype names (``"float32"``) and dynamic dims as str/None."""
        inner = self.type[len("tensor("):-1] if self.type.startswith("tensor(") else self.type
        dtype = self.dtype
        name = dtype.name if dtype is not None and dtype.kind != "U" else inner
        return {"name": self.name, "dtype": name, "shape": None if self.shape is None else list(self.shape)}


def _spec(arg: ort.NodeArg) -> TensorSpec:
    shape = arg.shape
    dims: tuple[Dim, ...] | None = None
    if shape is not None:
        dims = tuple(d if isinstance(d, (int, str)) and d != "" else None for d in shape)
        # onnxruntime reports an unnamed dynamic dim as None or a negative number, depending on version.
        dims = tuple(None if isinstance(d, int) and d < 0 else d for d in dims)
    return TensorSpec(arg.name, arg.type, dims)


def _default_providers() -> list[str]:
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class ModelRunner:
    """An onnxruntime session for one model, with request validation.

    Args:
        model: A path to an ``.onnx`` file (loaded through :func:`onnxforge.saving.load_onnx`, so an
            untrusted file fails cleanly) or an ``onnx.ModelProto``.
        providers: onnxruntime execution providers, in priority order. Defaults to CUDA (if
            available) then CPU.
        session_options: Passed to ``onnxruntime.InferenceSession``.
        max_input_bytes: The most bytes one request's input arrays may take together (string inputs count
            every value padded to the longest, as numpy stores them); checked on the decoded JSON before
            any array is built.

    Example:
        >>> import numpy as np, onnx
        >>> from onnx import helper, TensorProto
        >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
        >>> m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
        >>> r = ModelRunner(m)
        >>> r.batch_symbol
        'N'
        >>> r.run(r.parse_request({"inputs": {"x": [[-1, 2]]}}))["y"].tolist()
        [[0.0, 2.0]]
    """

    def __init__(self, model: str | os.PathLike[str] | onnx.ModelProto, *,
                 providers: Sequence[str] | None = None,
                 session_options: ort.SessionOptions | None = None,
                 max_input_bytes: int = 256 * 2**20) -> None:
        if not isinstance(max_input_bytes, int) or isinstance(max_input_bytes, bool) or max_input_bytes < 1:
            raise ValueError(f"max_input_bytes must be a positive int. Received: max_input_bytes={max_input_bytes!r}")
        self.max_input_bytes = max_input_bytes
        providers = list(providers) if providers is not None else _default_providers()
        if isinstance(model, onnx.ModelProto):
            self.source = "<ModelProto>"
            proto = model
            source: str | bytes = model.SerializeToString()
        else:
            self.source = str(model)
            # Validates the file and every external-data reference before onnxruntime touches it.
            proto = load_onnx(model, load_external_data=False)
            external = any(t.data_location == onnx.TensorProto.EXTERNAL for t, _ in iter_tensors(proto))
            # onnxruntime reads external data relative to the path itself; otherwise feed the bytes
            # already read, so the session sees exactly what was validated.
            source = str(Path(model)) if external else proto.SerializeToString()
        self.session = ort.InferenceSession(source, sess_options=session_options, providers=providers)
        self.inputs: list[TensorSpec] = [_spec(a) for a in self.session.get_inputs()]
        self.outputs: list[TensorSpec] = [_spec(a) for a in self.session.get_outputs()]
        for spec in self.inputs:
            if spec.dtype is None:
                raise ValueError(
                    f"Model input '{spec.name}' has type {spec.type}, which JSON requests cannot carry; "
                    "the server feeds tensors of bool, int, uint, float16/32/64 or string.")
        self.output_names = [o.name for o in self.outputs]
        self.batch_symbol = self._find_batch_symbol()
        #: The graph as validated (external data not loaded): what the batching analysis reads.
        self.proto = proto
        # Ids an Embedding gathers with (onnxforge exports record the check): a bad id is a 400 naming the
        # layer, not onnxruntime's failure inside Gather, nor a silent wrap of -1 to the last row.
        self._value_checks = value_checks(proto, [s.name for s in self.inputs])

    def _find_batch_symbol(self) -> str | None:
        """The named dim that leads every input, if every output leads with it too; else None.

        Outputs must share it (or leave their first dim unnamed, which the batcher then checks at run
        time): a model whose output is, say, a sum over the batch cannot be split back into answers.
        """
        leads = {s.shape[0] if s.shape else 0 for s in self.inputs}
        if len(leads) != 1:
            return None
        symbol = leads.pop()
        if not isinstance(symbol, str):
            return None
        for out in self.outputs:
            if not out.shape or out.shape[0] not in (symbol, None):
                return None
        return symbol

    @property
    def batchable(self) -> bool:
        """Whether requests can be concatenated along the first axis."""
        return self.batch_symbol is not None

    def describe(self) -> dict[str, Any]:
        """Inputs and outputs as JSON-ready dicts (what ``GET /healthz`` reports)."""
        return {"inputs": [s.to_json() for s in self.inputs], "outputs": [s.to_json() for s in self.outputs]}

    # -- requests -------------------------------------------------------------------------------

    def parse_request(self, payload: Any) -> dict[str, np.ndarray]:
        """Turn a decoded JSON request into validated feeds.

        Accepts ``{"inputs": {name: nested list}}`` (or ``{"inputs": nested list}`` for a one-input model)
        and ``{"instances": [...]}`` (one entry per example: the value itself for a one-input model, or
        a ``{name: value}`` object).

        Raises:
            RequestError: Naming the input and what was received versus expected.
        """
        if not isinstance(payload, Mapping) or ("inputs" in payload) == ("instances" in payload):
            raise RequestError('The request body must be a JSON object with exactly one of "inputs" '
                               '(an object mapping input names to nested lists) or "instances" (a list). '
                               f"Received: {_brief(payload)}")
        names = [s.name for s in self.inputs]
        if "instances" in payload:
            values = self._from_instances(payload["instances"], names)
        else:
            values = payload["inputs"]
            if isinstance(values, list) and len(names) == 1:
                values = {names[0]: values}
            if not isinstance(values, Mapping):
                raise RequestError(f'"inputs" must be an object mapping input names ({", ".join(names)}) '
                                   f"to nested lists. Received: {_brief(values)}")
        unknown = [k for k in values if k not in names]
        if unknown:
            raise RequestError(f"Unknown input {unknown[0]!r}; the model's inputs are: {', '.join(names)}")
        missing = [n for n in names if n not in values]
        if missing:
            raise RequestError(f"Missing input '{missing[0]}'; the model's inputs are: {', '.join(names)}")
        feeds: dict[str, np.ndarray] = {}
        left = self.max_input_bytes
        for spec in self.inputs:
            feeds[spec.name] = _to_array(spec, values[spec.name], left)
            left -= feeds[spec.name].nbytes
        self._check_named_dims(feeds)
        for check in self._value_checks:
            try:
                check(feeds)
            except ValueError as e:
                raise RequestError(str(e)) from None
        return feeds

    @staticmethod
    def _from_instances(instances: Any, names: list[str]) -> dict[str, Any]:
        if not isinstance(instances, list):
            raise RequestError(f'"instances" must be a list with one entry per example. '
                               f"Received: {_brief(instances)}")
        if instances and all(isinstance(i, Mapping) for i in instances):
            columns: dict[str, list[Any]] = {}
            for row, inst in enumerate(instances):
                for key in inst:
                    if key not in names:
                        raise RequestError(f"Unknown input {key!r} in instances[{row}]; the model's inputs "
                                           f"are: {', '.join(names)}")
                for n in names:
                    if n not in inst:
                        raise RequestError(f"Missing input '{n}' in instances[{row}]")
                    columns.setdefault(n, []).append(inst[n])
            return columns
        if len(names) != 1:
            raise RequestError(f'This model has {len(names)} inputs ({", ".join(names)}): give "instances" as '
                               'a list of objects {name: value}, or use "inputs".')
        return {names[0]: instances}

    def _check_named_dims(self, feeds: dict[str, np.ndarray]) -> None:
        seen: dict[str, tuple[int, str]] = {}
        for spec in self.inputs:
            for axis, dim in enumerate(spec.shape or ()):
                if isinstance(dim, str):
                    size = feeds[spec.name].shape[axis]
                    if dim in seen and seen[dim][0] != size:
                        other_size, other = seen[dim]
                        raise RequestError(
                            f"Input '{spec.name}' has {dim}={size} (axis {axis}) but input '{other}' has "
                            f"{dim}={other_size}; the model needs them equal.")
                    seen.setdefault(dim, (size, spec.name))

    # -- running --------------------------------------------------------------------------------

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the session on validated feeds; returns ``{output name: array}``."""
        results = self.session.run(self.output_names, dict(feeds))
        return dict(zip(self.output_names, results))


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


#: The Python types a JSON leaf may have for each numpy dtype kind (bool is not an int here: JSON keeps them apart).
_LEAF_TYPES: dict[str, tuple[type, ...]] = {"f": (int, float), "i": (int,), "u": (int,), "b": (bool,), "U": (str,)}
_SEQUENCES = {list, tuple}
_JSON_NAMES = {bool: "bool", int: "integer", float: "float", str: "string", type(None): "null", dict: "object"}


def _nested_shape(name: str, value: Any) -> tuple[list[int], list[Any]]:
    """The shape and the flat leaves of a rectangular nested list, walked one depth at a time.

    No numpy and no recursion: numpy would build the array before anything is checked (strings pad to the
    longest one, so a small body of one long string and many empty ones becomes gigabytes), and a nesting
    depth only the JSON parser bounds must not meet Python's recursion limit. Each depth costs a few passes
    in C (``map``, ``set``, ``chain``), so a large request is checked about as fast as numpy reads it.
    """
    shape: list[int] = []
    level = [value]
    while level:
        types = set(map(type, level))
        if not types <= _SEQUENCES:
            if types & _SEQUENCES:
                raise RequestError(f"Input '{name}' is not a rectangular nested list of values: lists and values "
                                   f"are mixed at depth {len(shape)}.")
            break
        sizes = set(map(len, level))
        if len(sizes) > 1:
            raise RequestError(f"Input '{name}' is not a rectangular nested list of values: the lists at depth "
                               f"{len(shape)} have lengths {sorted(sizes)[:4]}.")
        shape.append(sizes.pop())
        level = list(chain.from_iterable(level))
    return shape, level


def _to_array(spec: TensorSpec, value: Any, max_bytes: int) -> np.ndarray:
    """One JSON value -> an array of the input's dtype and shape, or a RequestError saying why not.

    Everything is checked on the decoded JSON (shape, leaf types, value range, the bytes the array will
    take, at most ``max_bytes``) before numpy allocates anything.
    """
    want = spec.dtype
    assert want is not None
    if isinstance(value, np.ndarray):   # a Python caller's array: the same checks, on its values
        value = value.tolist()
    shape, leaves = _nested_shape(spec.name, value)
    bad = set(map(type, leaves)).difference(_LEAF_TYPES[want.kind])
    if bad:
        wrong = next(v for v in leaves if type(v) in bad)
        got = _JSON_NAMES.get(type(wrong), type(wrong).__name__)
        raise RequestError(f"Input '{spec.name}' expects {want.name} values; received {got} values "
                           f"(e.g. {_brief(wrong)}).")
    if spec.shape is not None:
        ok = len(shape) == len(spec.shape) and all(
            not isinstance(d, int) or d == s for d, s in zip(spec.shape, shape))
        if not ok:
            dynamic = [d for d in spec.shape if not isinstance(d, int)]
            note = " (named or ? dims take any size)" if dynamic else ""
            raise RequestError(f"Input '{spec.name}' expects shape {spec.describe()}{note}; received shape "
                               f"{shape}.")
    itemsize = 4 * max(map(len, leaves), default=1) if want.kind == "U" else want.itemsize
    if len(leaves) * itemsize > max_bytes:
        raise RequestError(f"Input '{spec.name}' would take {len(leaves) * itemsize} bytes as "
                           f"{'strings' if want.kind == 'U' else want.name} "
                           f"({len(leaves)} values{' padded to the longest' if want.kind == 'U' else ''}); the "
                           f"request's inputs may take only {max_bytes} more bytes (max_input_bytes).")
    if leaves and want.kind in "iu":
        info, low, high = np.iinfo(want), min(leaves), max(leaves)
        if low < info.min or high > info.max:
            raise RequestError(f"Input '{spec.name}' expects {want.name} values in [{info.min}, {info.max}]; "
                               f"received values in [{low}, {high}] ({'too large' if high > info.max else 'too small'}).")
    if want.kind == "f":
        beyond = RequestError(f"Input '{spec.name}' has values beyond the {want.name} range "
                              f"(max {float(np.finfo(want).max):g}).")
        try:   # float64 holds every JSON number closely enough to check the range; a huge int overflows here
            wide = np.array(leaves, dtype=np.float64)
        except OverflowError:
            raise beyond from None
        finite = wide[np.isfinite(wide)]
        if finite.size and np.abs(finite).max() > np.finfo(want).max:
            raise beyond
        return wide.astype(want, copy=False).reshape(shape)
    return np.array(leaves, dtype=want).reshape(shape)
