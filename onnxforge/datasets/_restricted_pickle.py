"""Unpickling dataset files (CIFAR batches, IMDB / Reuters object arrays) as untrusted input.

These formats are pickles of builtin containers (dicts, lists, bytes, ints) and numpy arrays. A plain
``pickle.load`` runs any callable a file names, and even an unpickler that only admits numpy's array
globals is not safe: ``ndarray.__setstate__`` trusts the shape it is given, so a crafted object array (a
shape of a million, a list of one) crashes the interpreter, and ``ndarray(shape)`` called from a pickle
allocates whatever shape it names. So no numpy constructor is handed to the pickle machine: the globals a
numpy pickle names resolve to stand-ins that record what was asked, and an array is only built once its
shape, dtype and data have been checked against each other and against a size bound. Every other global
is refused with an ``UnpicklingError`` naming it.
"""
from __future__ import annotations

__all__ = ["MAX_ARRAY_BYTES", "loads"]

import io
import math
import pickle
import re
from typing import Any, Callable

import numpy as np

#: The most bytes one array of a dataset file may take (CIFAR-100's training images take 154 MB).
MAX_ARRAY_BYTES = 1 << 30

# The dtypes these datasets use: booleans, numbers, Python objects, short byte or text strings.
_DTYPE_SPEC = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|c(8|16)|O[48]?|[SU]\d{1,4})")


def _refuse(what: str, why: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(f"{what}: refused to unpickle it: {why}. The file may be corrupted or "
                                  "malicious; delete it and put the original in its place.")


class _DtypeStub:
    """``numpy.dtype(spec, align, copy)`` as a pickle asks for it; the byte order arrives in its state."""

    def __init__(self, spec: Any = None, align: Any = False, copy: Any = True) -> None:
        if isinstance(spec, bytes):     # Python 2 pickles (CIFAR's) read with encoding="bytes"
            spec = spec.decode("latin1")
        if not isinstance(spec, str) or not _DTYPE_SPEC.fullmatch(spec):
            raise pickle.UnpicklingError(f"a numpy dtype {spec!r} that these dataset files never hold")
        self.dtype = np.dtype(spec)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) >= 2 and isinstance(state[1], bytes):
            state = (state[0], state[1].decode("latin1"), *state[2:])
        if not (isinstance(state, tuple) and len(state) >= 2 and state[1] in ("<", ">", "|", "=")):
            raise pickle.UnpicklingError(f"a numpy dtype state {state!r:.80} that is not a plain dtype's")
        if any(part is not None for part in state[2:5]):     # sub-array, field names, fields
            raise pickle.UnpicklingError("a structured numpy dtype, which these dataset files never hold")
        if state[1] in "<>" and self.dtype.kind not in "OSb":
            self.dtype = self.dtype.newbyteorder(state[1])


def _dtype(value: Any) -> np.dtype:
    if isinstance(value, _DtypeStub):
        return value.dtype
    raise pickle.UnpicklingError(f"an array whose dtype is a {type(value).__name__}, not a numpy dtype")


def _shape(value: Any) -> tuple[int, ...]:
    if not (isinstance(value, tuple) and len(value) <= 32
            and all(type(d) is int and d >= 0 for d in value)):
        raise pickle.UnpicklingError(f"an array shape {value!r:.80} that is not a tuple of sizes")
    return value


def _count(shape: tuple[int, ...], dtype: np.dtype) -> int:
    count = math.prod(shape)
    if count * max(dtype.itemsize, 1) > MAX_ARRAY_BYTES:
        raise pickle.UnpicklingError(f"an array of shape {shape} and dtype {dtype}, more than the "
                                     f"{MAX_ARRAY_BYTES} bytes a dataset array may take")
    return count


class _NdarrayMarker:
    """Stands for ``numpy.ndarray``, which pickles name only as ``_reconstruct``'s first argument."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise pickle.UnpicklingError("a call of numpy.ndarray(...), which numpy's own pickles never make")


_NDARRAY = _NdarrayMarker()


class _ArrayStub:
    """``_reconstruct(ndarray, shape, dtype)``: the array is built from the state that follows."""

    def __init__(self, subtype: Any, shape: Any, dtype: Any) -> None:
        if subtype is not _NDARRAY:
            raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[3], bool)):
            raise pickle.UnpicklingError(f"an array state {state!r:.80} that is not numpy's")
        _, shape, dtype, fortran, data = state
        shape, dtype = _shape(shape), _dtype(dtype)
        count = _count(shape, dtype)
        order = "F" if fortran else "C"
        if dtype.hasobject:
            if not isinstance(data, list) or len(data) != count:
                raise pickle.UnpicklingError(f"an object array of shape {shape} whose state holds "
                                             f"{len(data) if isinstance(data, list) else type(data).__name__} items")
            flat = np.empty(count, dtype=object)
            for i, item in enumerate(data):
                flat[i] = item
            self.array = flat.reshape(shape, order=order)
            return
        self.array = _from_bytes(data, dtype, shape, order)


def _from_bytes(data: Any, dtype: np.dtype, shape: tuple[int, ...], order: str) -> np.ndarray:
    if isinstance(data, str):           # Python 2 pickles of numeric arrays, read without encoding="bytes"
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"array data of type {type(data).__name__}, not bytes")
    count = _count(shape, dtype)
    if len(data) != count * dtype.itemsize:
        raise pickle.UnpicklingError(f"an array of shape {shape} and dtype {dtype} ({count * dtype.itemsize} "
                                     f"bytes) whose data holds {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order=order).copy(order="K")


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """numpy's protocol-5 array pickles: ``_frombuffer(bytes, dtype, shape, order)``."""
    dtype = _dtype(dtype)
    if dtype.hasobject or order not in ("C", "F"):
        raise pickle.UnpicklingError(f"_frombuffer of dtype {dtype} and order {order!r}")
    return _from_bytes(bytes(buffer) if isinstance(buffer, memoryview) else buffer, dtype, _shape(shape), order)


def _scalar(dtype: Any, data: Any = None) -> Any:
    """numpy scalars (``np.int64(3)`` in a label list): ``scalar(dtype, bytes)``."""
    dtype = _dtype(dtype)
    if dtype.hasobject:
        return data
    return _from_bytes(data, dtype, (), "C")[()]


def _latin1(text: Any, encoding: Any = "utf-8") -> bytes:
    """``_codecs.encode``, which protocol-2 pickles use for bytes; only its latin-1 use is allowed."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}, not latin1")
    return text.encode("latin1")


_GLOBALS: dict[tuple[str, str], Callable[..., Any] | _NdarrayMarker] = {("numpy", "ndarray"): _NDARRAY,
                                                                       ("numpy", "dtype"): _DtypeStub,
                                                                       ("_codecs", "encode"): _latin1}
for _core in ("numpy.core", "numpy._core"):
    _GLOBALS[(f"{_core}.multiarray", "_reconstruct")] = _ArrayStub
    _GLOBALS[(f"{_core}.multiarray", "scalar")] = _scalar
    _GLOBALS[(f"{_core}.numeric", "_frombuffer")] = _frombuffer


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, what: str) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self._what = what

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        raise _refuse(self._what, f"it names the global `{module}.{name}`, and a dataset file may only "
                      "hold numpy arrays, numbers, strings, lists, tuples and dicts")

    def persistent_load(self, pid: Any) -> Any:
        raise _refuse(self._what, "it holds a persistent reference")


def _resolve(value: Any, seen: dict[int, Any]) -> Any:
    """The unpickled structure with every stand-in replaced by the array or dtype it stands for."""
    key = id(value)
    if key in seen:
        return seen[key]
    if isinstance(value, _ArrayStub):
        if value.array is None:
            raise pickle.UnpicklingError("an array whose state never came")
        seen[key] = value.array
        return _resolve(value.array, seen)
    if isinstance(value, _DtypeStub):
        seen[key] = value.dtype
    elif isinstance(value, (_NdarrayMarker, type)) or callable(value):
        raise pickle.UnpicklingError("a bare numpy global where data was expected")
    elif isinstance(value, list):
        seen[key] = value
        value[:] = [_resolve(v, seen) for v in value]
    elif isinstance(value, dict):
        seen[key] = value
        items = [(_resolve(k, seen), _resolve(v, seen)) for k, v in value.items()]
        value.clear()
        value.update(items)
    elif isinstance(value, tuple):
        seen[key] = value
        seen[key] = tuple(_resolve(v, seen) for v in value)
    elif isinstance(value, np.ndarray) and value.dtype.hasobject:
        seen[key] = value
        for index, item in np.ndenumerate(value):
            value[index] = _resolve(item, seen)
    else:
        seen[key] = value
    return seen[key]


def loads(data: bytes, what: str) -> Any:
    """The object pickled in ``data``, read as the module docstring says; ``what`` names it in errors.

    Raises:
        pickle.UnpicklingError: the pickle names a global other than numpy's array ones, or an array whose
            shape, dtype and data disagree or exceed ``MAX_ARRAY_BYTES``.

    Example:
        >>> import pickle, numpy as np
        >>> loads(pickle.dumps({b"labels": [1, 2], b"data": np.zeros((2, 3), np.uint8)}), "a batch")[b"data"].shape
        (2, 3)
    """
    try:
        value = _Unpickler(data, what).load()
        return _resolve(value, {})
    except pickle.UnpicklingError as e:
        if str(e).startswith(what):
            raise
        raise _refuse(what, str(e)) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError,
            MemoryError, RecursionError) as e:
        raise pickle.UnpicklingError(f"{what}: not a readable pickle ({type(e).__name__}: {e})") from None
