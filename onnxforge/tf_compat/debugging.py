"""``tf.debugging``: TensorFlow's assertions (``assert_equal``, ``assert_less``, ``assert_near``, ``assert_rank``,
``assert_shapes``, ``Assert``, ``check_numerics`` ...) and the top-level ``tf.assert_*`` / ``tf.Assert``.

On concrete tensors (eager code, NumPy constants in a trace) an assertion checks its values as TensorFlow
does and raises TensorFlow's error type: ``tf.errors.InvalidArgumentError`` for a value that fails,
``ValueError`` for a static rank / shape mismatch, ``TypeError`` for a wrong dtype. It returns ``None`` (what
TensorFlow's eager assertions return; ``None`` also stands for the operation in a traced function, as
``tf.no_op`` does, so ``tf.control_dependencies([tf.debugging.assert_equal(...)])`` works).

Rank, shape and dtype checks are static, so they run while tracing too, exactly as in TensorFlow. A value
check whose operands are only known when the ONNX program runs (a model input inside a ``tf.function`` or a
model's ``call``) is *not* checked: standard ONNX has no operator that stops a run with an error, so
onnxforge skips it rather than emit a graph that could not fail. ``check_numerics`` / ``assert_all_finite``
then return their tensor unchanged. Dimensions unknown while tracing are likewise not compared.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> tf.debugging.assert_less(np.array([1.0, 2.0]), 3.0) is None
    True
    >>> try:
    ...     tf.debugging.assert_equal(np.array([1, 2]), [1, 3], message="labels")
    ... except tf.errors.InvalidArgumentError as e:
    ...     print(str(e).splitlines()[:2])
    ['labels', 'Condition x == y did not hold element-wise:']
"""
from __future__ import annotations

__all__ = ["debugging", "Assert", "assert_equal", "assert_greater", "assert_less", "assert_rank"]

import builtins
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import Value
from ..trace_state import active_trace
from ..variables import Variable
from .errors import InvalidArgumentError

_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _concrete(x: Any) -> np.ndarray | None:
    """``x``'s values when they exist now; ``None`` for a tensor only the running program will hold."""
    if isinstance(x, Variable):
        return None if active_trace() is not None else np.asarray(x.numpy())
    if isinstance(x, (np.ndarray, np.generic, builtins.int, builtins.float, builtins.bool, builtins.complex)):
        return _converted(x)
    if isinstance(x, (list, tuple)):
        leaves = [_concrete(v) for v in x]
        return None if builtins.any(v is None for v in leaves) else _converted(x)
    return None   # a graph Value, a functional model's KerasTensor


def _converted(x: Any) -> np.ndarray:
    # TensorFlow's conversion of Python values: floats are float32, ints int32.
    if isinstance(x, np.ndarray):
        return x.view(np.ndarray)
    a = np.asarray(x)
    if not isinstance(x, np.generic):
        a = a.astype({"f": "float32", "i": "int32"}.get(a.dtype.kind, a.dtype))
    return a


def _shape(x: Any) -> tuple[Any, ...]:
    if isinstance(x, Variable):
        return tuple(x.shape)
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(_converted(x))


def _dtype(x: Any) -> str:
    if isinstance(x, Value):
        from .. import ops

        return ops.dtype(x)
    return np.dtype(getattr(x, "dtype", None) or _converted(x).dtype).name


def _shown(a: np.ndarray, summarize: int | None) -> str:
    flat = a.ravel()
    n = flat.size if summarize is None or summarize < 0 else builtins.min(summarize, flat.size)
    return f"x (shape={a.shape} dtype={a.dtype.name}) = {flat[:n].tolist()}"


def _compare(x: Any, y: Any, condition: str, test: Callable[[np.ndarray, np.ndarray], np.ndarray],
             message: str | None, summarize: int | None) -> None:
    a, b = _concrete(x), _concrete(y)
    if a is None or b is None:
        return None   # known only when the program runs: not checkable in ONNX (module docstring)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise InvalidArgumentError(f"Incompatible shapes: {list(a.shape)} vs. {list(b.shape)}") from None
    if not bool(np.all(test(a, b))):
        y_text = _shown(b, summarize).replace("x (", "y (", 1)
        raise InvalidArgumentError(f"{message or ''}\nCondition {condition} did not hold element-wise:\n"
                                   f"{_shown(a, summarize)}\n{y_text}".lstrip("\n"))
    return None


def assert_equal(x: Any, y: Any, message: str | None = None, summarize: int | None = None,
                 name: str | None = None) -> None:
    """``tf.debugging.assert_equal``: ``x == y`` element-wise (broadcast), else ``InvalidArgumentError``."""
    return _compare(x, y, "x == y", np.equal, message, summarize)


def assert_none_equal(x: Any, y: Any, message: str | None = None, summarize: int | None = None,
                      name: str | None = None) -> None:
    """``tf.debugging.assert_none_equal``: ``x != y`` for every element."""
    return _compare(x, y, "x != y", np.not_equal, message, summarize)


def assert_less(x: Any, y: Any, message: str | None = None, summarize: int | None = None,
                name: str | None = None) -> None:
    """``tf.debugging.assert_less``: ``x < y`` element-wise."""
    return _compare(x, y, "x < y", np.less, message, summarize)


def assert_less_equal(x: Any, y: Any, message: str | None = None, summarize: int | None = None,
                      name: str | None = None) -> None:
    """``tf.debugging.assert_less_equal``: ``x <= y`` element-wise."""
    return _compare(x, y, "x <= y", np.less_equal, message, summarize)


def assert_greater(x: Any, y: Any, message: str | None = None, summarize: int | None = None,
                   name: str | None = None) -> None:
    """``tf.debugging.assert_greater``: ``x > y`` element-wise."""
    return _compare(x, y, "x > y", np.greater, message, summarize)


def assert_greater_equal(x: Any, y: Any, message: str | None = None, summarize: int | None = None,
                         name: str | None = None) -> None:
    """``tf.debugging.assert_greater_equal``: ``x >= y`` element-wise."""
    return _compare(x, y, "x >= y", np.greater_equal, message, summarize)


def _sign_check(condition: str, test: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., None]:
    def check(x: Any, message: str | None = None, summarize: int | None = None, name: str | None = None) -> None:
        a = _concrete(x)
        return None if a is None else _compare(a, np.zeros((), a.dtype), f"x {condition} 0", test, message, summarize)

    check.__doc__ = f"``x {condition} 0`` element-wise, else ``InvalidArgumentError``."
    return check


assert_positive = _sign_check(">", np.greater)
assert_negative = _sign_check("<", np.less)
assert_non_negative = _sign_check(">=", np.greater_equal)
assert_non_positive = _sign_check("<=", np.less_equal)


def assert_near(x: Any, y: Any, rtol: Any = None, atol: Any = None, message: str | None = None,
                summarize: int | None = None, name: str | None = None) -> None:
    """``tf.debugging.assert_near``: ``|x - y| <= atol + rtol * |y|`` element-wise; both tolerances default to
    ten times the float dtype's epsilon, as in TensorFlow."""
    a, b = _concrete(x), _concrete(y)
    if a is None or b is None:
        return None
    eps = 10 * np.finfo(a.dtype if a.dtype.kind in "fc" else np.float32).eps
    rtol = eps if rtol is None else rtol
    atol = eps if atol is None else atol
    return _compare(a, b, "|x - y| <= atol + rtol * |y|", lambda p, q: np.abs(p - q) <= atol + rtol * np.abs(q),
                    message or f"x and y not equal to tolerance rtol = {rtol}, atol = {atol}", summarize)


def _rank_error(x: Any, what: str, message: str | None) -> ValueError:
    shape = _shape(x)
    return ValueError(f"{message or ''}Tensor {getattr(x, 'name', '')} must have rank {what}.  Received rank "
                      f"{len(shape)}, shape {shape}")


def assert_rank(x: Any, rank: int, message: str | None = None, name: str | None = None) -> None:
    """``tf.debugging.assert_rank``: a static check; a different rank raises ``ValueError``."""
    if len(_shape(x)) != builtins.int(rank):
        raise _rank_error(x, str(builtins.int(rank)), message)


def assert_rank_at_least(x: Any, rank: int, message: str | None = None, name: str | None = None) -> None:
    """``tf.debugging.assert_rank_at_least``: ``ValueError`` when ``x`` has fewer than ``rank`` axes."""
    if len(_shape(x)) < builtins.int(rank):
        raise _rank_error(x, f"at least {builtins.int(rank)}", message)


def assert_rank_in(x: Any, ranks: Any, message: str | None = None, name: str | None = None) -> None:
    """``tf.debugging.assert_rank_in``: ``ValueError`` unless ``x``'s rank is one of ``ranks``."""
    ranks = builtins.tuple(builtins.int(r) for r in ranks)
    if len(_shape(x)) not in ranks:
        raise _rank_error(x, f"in {ranks}", message)


def assert_scalar(tensor: Any, name: str | None = None, message: str | None = None) -> Any:
    """``tf.debugging.assert_scalar``: ``tensor`` itself when it has rank 0, else ``ValueError``."""
    if len(_shape(tensor)) != 0:
        raise ValueError(f"{message or ''}Expected scalar shape, saw shape: {_shape(tensor)}.")
    return tensor


def assert_integer(x: Any, message: str | None = None, name: str | None = None) -> None:
    """``tf.debugging.assert_integer``: ``TypeError`` unless ``x`` has an integer dtype."""
    if _dtype(x) not in _INT_DTYPES:
        raise TypeError(f'{message or ""}Expected "x" to be integer type.  Found: tensor of dtype {_dtype(x)}')


def assert_type(tensor: Any, tf_type: Any, message: str | None = None, name: str | None = None) -> None:
    """``tf.debugging.assert_type``: ``TypeError`` unless ``tensor``'s dtype is ``tf_type``."""
    want = np.dtype(tf_type).name if not isinstance(tf_type, str) else tf_type
    if _dtype(tensor) != want:
        raise TypeError(f"{message or ''}tensor must be of type {want}; got {_dtype(tensor)}")


def assert_same_float_dtype(tensors: Any = None, dtype: Any = None) -> str:
    """``tf.debugging.assert_same_float_dtype``: the float dtype ``tensors`` (and ``dtype``) share; ``ValueError``
    when they differ or are not floats."""
    found = {_dtype(t) for t in (tensors or [])} | ({np.dtype(dtype).name} if dtype is not None else set())
    if len(found) > 1:
        raise ValueError(f"Expected the same float dtype for all tensors. Received: {sorted(found)}")
    got = found.pop() if found else "float32"
    if got not in _FLOAT_DTYPES:
        raise ValueError(f"Expected floating point type, got {got}.")
    return got


def assert_shapes(shapes: Any, data: Any = None, summarize: int | None = None, message: str | None = None,
                  name: str | None = None) -> None:
    """``tf.debugging.assert_shapes``: each ``(tensor, spec)`` (a list of pairs or a dict) has the spec's rank
    and sizes; a spec entry is an int, a name that must mean the same size everywhere, or ``"."`` for any
    size; a leading ``"*"`` or ``"..."`` allows any number of leading axes. Mismatch: ``ValueError``."""
    pairs = list(shapes.items()) if isinstance(shapes, dict) else list(shapes)
    sizes: dict[str, tuple[int, Any, int]] = {}
    for tensor, spec in pairs:
        spec = [spec] if isinstance(spec, (str, builtins.int)) and spec not in ("*", "...") else list(spec)
        shape = _shape(tensor)
        tail = bool(spec) and spec[0] in ("*", "...")
        spec = spec[1:] if tail else spec
        if len(shape) != len(spec) and not (tail and len(shape) >= len(spec)):
            what = f"at least {len(spec)}" if tail else str(len(spec))
            raise ValueError(f"{message or ''}Specified by tensor {getattr(tensor, 'name', '')} must have rank "
                             f"{what}.  Received rank {len(shape)}, shape {shape}")
        for axis, (want, got) in enumerate(zip(spec, shape[len(shape) - len(spec):])):
            axis += len(shape) - len(spec)
            if not isinstance(got, (builtins.int, np.integer)) or want == ".":
                continue   # unknown while tracing, or any size allowed
            if isinstance(want, str):
                first = sizes.setdefault(want, (builtins.int(got), shape, axis))
                if first[0] != got:
                    raise ValueError(f"{message or ''}Specified by tensor shape={first[1]} dimension {first[2]}.  "
                                     f"Tensor shape={shape} dimension {axis} must have size {first[0]}.  "
                                     f"Received size {got}, shape {shape}")
            elif builtins.int(want) != got:
                raise ValueError(f"{message or ''}Tensor shape={shape} dimension {axis} must have size {want}.  "
                                 f"Received size {got}, shape {shape}")


def check_numerics(tensor: Any, message: str, name: str | None = None) -> Any:
    """``tf.debugging.check_numerics``: ``tensor`` unchanged; ``InvalidArgumentError`` when a concrete one holds
    NaN or Inf (TensorFlow's message: ``"<message> : Tensor had NaN values"``). Floats only."""
    dtype = _dtype(tensor)
    if dtype not in _FLOAT_DTYPES:
        raise InvalidArgumentError(f"tf.debugging.check_numerics: the tensor must be bfloat16, half, float or "
                                   f"double. Received: dtype {dtype}")
    a = _concrete(tensor)
    if a is not None:
        for kind, bad in (("NaN", np.isnan(a)), ("Inf", np.isinf(a))):
            if bool(bad.any()):
                raise InvalidArgumentError(f"{message} : Tensor had {kind} values")
    return tensor


def assert_all_finite(t: Any, msg: str, name: str | None = None, x: Any = None, message: str | None = None) -> Any:
    """``tf.debugging.assert_all_finite``: ``check_numerics`` under its other name."""
    return check_numerics(t if x is None else x, msg if message is None else message)


def Assert(condition: Any, data: Any, summarize: int | None = None, name: str | None = None) -> None:  # noqa: N802
    """``tf.debugging.Assert``: ``InvalidArgumentError`` showing ``data`` when a concrete ``condition`` is false
    (a condition known only when the program runs is not checked: module docstring)."""
    cond = _concrete(condition)
    if cond is None:
        return None
    if cond.shape != ():
        raise ValueError(f"tf.debugging.Assert: condition must be a scalar bool. Received shape {cond.shape}")
    if not bool(cond):
        shown = [v if isinstance(v, str) else np.asarray(_concrete(v) if _concrete(v) is not None else v)
                 for v in (data if isinstance(data, (list, tuple)) else [data])]
        n = summarize if summarize is not None else 3
        text = ", ".join(v if isinstance(v, str) else ", ".join(str(e) for e in v.ravel()[:n].tolist())
                         for v in shown)
        raise InvalidArgumentError(f"Expected '{bool(cond)}' to be true. Summarized data: {text}")
    return None


def assert_proper_iterable(values: Any) -> None:
    """``tf.debugging.assert_proper_iterable``: ``TypeError`` for a string, bytes or a tensor (iterables whose
    iteration is rarely what an ``assert_*`` caller meant)."""
    if isinstance(values, (str, bytes, np.ndarray, Value)) or not hasattr(values, "__iter__"):
        raise TypeError(f'Expected argument "values" to be a "proper" iterable.  Found: {type(values)}')


def is_numeric_tensor(tensor: Any) -> bool:
    """``tf.debugging.is_numeric_tensor``: whether ``tensor`` is a tensor of a number dtype."""
    return hasattr(tensor, "dtype") and not isinstance(tensor, (builtins.int, builtins.float)) and \
        _dtype(tensor) in (*_INT_DTYPES, *_FLOAT_DTYPES, "complex64", "complex128")


def _accepted(*args: Any, **kwargs: Any) -> None:
    return None   # device placement logs and TensorFlow's traceback filtering have no counterpart here


debugging = types.SimpleNamespace(
    Assert=Assert, assert_equal=assert_equal, assert_none_equal=assert_none_equal, assert_less=assert_less,
    assert_less_equal=assert_less_equal, assert_greater=assert_greater, assert_greater_equal=assert_greater_equal,
    assert_near=assert_near, assert_positive=assert_positive, assert_negative=assert_negative,
    assert_non_negative=assert_non_negative, assert_non_positive=assert_non_positive, assert_rank=assert_rank,
    assert_rank_at_least=assert_rank_at_least, assert_rank_in=assert_rank_in, assert_scalar=assert_scalar,
    assert_integer=assert_integer, assert_type=assert_type, assert_same_float_dtype=assert_same_float_dtype,
    assert_shapes=assert_shapes, check_numerics=check_numerics, assert_all_finite=assert_all_finite,
    assert_proper_iterable=assert_proper_iterable, is_numeric_tensor=is_numeric_tensor,
    enable_check_numerics=_accepted, disable_check_numerics=_accepted, set_log_device_placement=_accepted,
    enable_traceback_filtering=_accepted, disable_traceback_filtering=_accepted,
    is_traceback_filtering_enabled=lambda: True, get_log_device_placement=lambda: False)
