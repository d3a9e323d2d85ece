"""Variables: the weights and state of layers and optimizers, shared by every program that uses them."""
from __future__ import annotations

__all__ = ["Variable", "set_tape_read", "tape_follows", "unique_variables"]

import itertools
from typing import Any

import numpy as np

from .eager_tensor import as_eager
from .trace_state import active_trace, assigns_on_host, current_trace

_ids = itertools.count()
_unnamed = itertools.count()


#: The innermost open ``keras.StatelessScope`` (``None`` outside one). A variable about to change inside it hands
#: the scope its value first, which the scope puts back on exit (``onnxforge.keras.state_scopes``).
_STATELESS: list[Any] = [None]


def _before_change(var: Any) -> None:
    scope = _STATELESS[0]
    if scope is not None:
        scope._remember(var)


def unique_variables(variables: Any) -> list[Any]:
    """``variables`` without repeats (by ``uid``), in first-seen order: a weight shared by two layers counts once."""
    seen: dict[int, Any] = {}
    for v in variables:
        seen.setdefault(v.uid, v)
    return list(seen.values())


def _elementwise_operand(o: Any) -> bool:
    """Whether ``variable == o`` compares values: ``o`` is a number, a NumPy array or scalar (an EagerTensor
    too) or a graph value, and not a Variable."""
    if isinstance(o, (bool, int, float, complex, np.ndarray, np.generic)):
        return True
    from .graph.value import Value
    return isinstance(o, Value)


def _default_name() -> str:
    """Keras 3's name for a variable created without one: ``variable``, then ``variable_1``, ..."""
    n = next(_unnamed)
    return "variable" if n == 0 else f"variable_{n}"


def _active_trace() -> Any:
    return active_trace()


#: Set by ``onnxforge.eager.tape`` while an eager GradientTape records: ``(read, follows)``: a Variable's value
#: for arithmetic, read through a recorded op when the tape follows the Variable (``None``: read the host
#: array), and whether an open tape follows it (eager ops then take the Variable itself, not its array).
_TAPE_READ: list[Any] = [None, None]


def set_tape_read(read: Any, follows: Any = None) -> None:
    """Install (or, with ``None``, remove) the eager tape's Variable read and follow test."""
    _TAPE_READ[:] = [read, follows]


def tape_follows(var: Any) -> bool:
    """Whether an open eager GradientTape follows ``var`` (so an eager op must read it as a Variable)."""
    follows = _TAPE_READ[1]
    return follows is not None and follows(var)


def _is_symbolic(value: Any) -> bool:
    if hasattr(value, "__onnx_value__") or type(value).__name__ == "Value":
        return True
    return isinstance(value, (list, tuple)) and any(_is_symbolic(v) for v in value)


class Variable:
    """A named tensor of state: a layer weight, a BatchNorm statistic, an optimizer slot.

    One ``Variable`` object exists per weight, however many models and compiled programs use it (GANs
    share layers between models). Its live value is either a host array or a device-resident
    onnxruntime ``OrtValue`` that the runtime swaps in after each training step; ``numpy()`` reads it
    back, ``assign()`` replaces it from the host.

    Inside a trace (see ``onnxforge.tracing``), a ``Variable`` used as an op input stands for its graph
    value, so layer code reads ``x @ self.kernel``.

    Example:
        >>> import numpy as np
        >>> v = Variable(np.zeros((2, 3), np.float32), name="dense/kernel")
        >>> v.shape, v.trainable
        ((2, 3), True)
        >>> v.assign(np.ones((2, 3))); float(v.numpy().sum())
        6.0
    """

    def __init__(self, value: Any, name: str | None = None, trainable: bool = True, regularizer: Any = None,
                 dtype: Any = np.float32, autocast: bool = True):
        self._host = np.array(value, dtype=dtype)
        self._device: Any = None  # an onnxruntime OrtValue, owned by the runtime
        #: Keras 3's ``path`` ("dense/kernel"): programs name state inputs, weight files and slots by it.
        self._path = name if name is not None else _default_name()
        self.trainable = trainable
        self.regularizer = regularizer
        #: Projection the optimizer applies after each update (``constraints``); Keras sets it after creation.
        self._constraint: Any = None
        #: Under a mixed-precision layer, reads in ``call`` are cast to the compute dtype (Keras's autocast).
        self.autocast = bool(autocast)
        self.uid = next(_ids)  # stable identity for dict keys across renames
        #: Whether a layer holds it as a weight: the first one names it (``layers/variable_tracking.py``).
        self._owned = False
        # Bumped by every new device value (a step's output, an upload after ``assign`` or ``numpy()`` handed
        # the host array out): constant-weight sessions compare it with the one they were built from
        # (``runtime.frozen``), after uploading whatever lives on the host.
        self._version = 0

    @property
    def constraint(self) -> Any:
        """Keras's ``variable.constraint``: a callable the optimizer applies to the updated value, or ``None``."""
        return self._constraint

    @constraint.setter
    def constraint(self, value: Any) -> None:
        if value is not None and not callable(value):
            raise ValueError("Invalid value for attribute `constraint`. Expected a callable (such as a "
                             f"`keras.constraints.Constraint` instance) or `None`. Received: constraint={value!r}")
        self._constraint = value

    @property
    def path(self) -> str:
        """Keras 3's ``variable.path``: the layers' names and the weight's own joined by ``/``
        (``"dense/kernel"``, ``"lstm/lstm_cell/kernel"``), unique among a model's weights: programs name their
        state inputs, weight files and optimizer slots by it. Unlike Keras 3, it does not start with the name of
        a ``Sequential`` or subclassed model the layer was built in (Keras: ``"sequential/dense/kernel"``); for a
        functional model's layers, or a layer built on its own, the two agree.

        Example:
            >>> Variable(np.zeros(2, np.float32), name="dense/bias").path
            'dense/bias'
        """
        return self._path

    @path.setter
    def path(self, value: str) -> None:
        self._path = str(value)

    @property
    def name(self) -> str:
        """Keras 3's ``variable.name``: the last part of ``path`` (``"kernel"`` for ``"dense/kernel"``).

        Example:
            >>> Variable(np.zeros(2, np.float32), name="dense/bias").name
            'bias'
        """
        return self._path.rsplit("/", 1)[-1]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._host.shape) if self._device is None else tuple(self._device.shape())

    @property
    def dtype(self) -> np.dtype:
        return self._host.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numpy(self) -> np.ndarray:
        """A copy of the current value as a host array, as TensorFlow's and Keras's ``numpy()`` give: writing
        into it (style transfer's ``deprocess_image(x.numpy())`` adds the channel means in place) leaves the
        Variable as it was."""
        return self._read().copy()

    def _read(self) -> np.ndarray:
        """The host array itself (copied back from the device if it lives there): for reads that do not write."""
        if self._device is not None:
            self._host = np.array(self._device.numpy(), copy=True)
            self._device = None  # host is authoritative again until the runtime uploads it
        return self._host

    def assign(self, value: Any) -> Any:
        """Replace the value. The shape must match.

        From the host, the value is copied now. Inside a traced program (a custom ``train_step``, a layer's
        ``call`` in any mode: ``fit``, ``evaluate``, ``predict``, an eager call) a symbolic value is assigned
        in the graph instead: later reads in the same step see it, and the program outputs it as the
        Variable's new state, which persists after the run, as Keras's ``assign`` does. In a custom
        ``train_step`` a host value is assigned in the graph too (every step, like the code says).
        """
        ctx = _active_trace()
        if ctx is not None and (_is_symbolic(value) or not assigns_on_host()):
            return ctx.assign_variable(self, value, in_inference=True)
        array = np.asarray(value, dtype=self.dtype)
        if array.shape != self.shape:
            raise ValueError(f"Cannot assign a value of shape {array.shape} to variable {self.path!r} "
                             f"of shape {self.shape}.")
        _before_change(self)
        self._host = array.copy()
        self._device = None
        return None

    def assign_add(self, delta: Any) -> Any:
        """``assign(self + delta)`` (in the graph inside a traced program, like ``assign``)."""
        ctx = _active_trace()
        if ctx is not None and (_is_symbolic(delta) or not assigns_on_host()):
            return ctx.assign_variable(self, self.__onnx_value__() + delta, in_inference=True)
        return self.assign(self._read() + np.asarray(delta, dtype=self.dtype))

    def assign_sub(self, delta: Any) -> Any:
        """``assign(self - delta)`` (in the graph inside a traced program, like ``assign``)."""
        ctx = _active_trace()
        if ctx is not None and (_is_symbolic(delta) or not assigns_on_host()):
            return ctx.assign_variable(self, self.__onnx_value__() - delta, in_inference=True)
        return self.assign(self._read() - np.asarray(delta, dtype=self.dtype))

    @property
    def value(self) -> Any:
        """The graph value inside a trace, else the host array (Keras's ``variable.value``)."""
        return self.__onnx_value__() if _active_trace() is not None else self.numpy()

    # Arithmetic, as Keras Variables allow (``self.count + 1``): on the graph value inside a trace, on the
    # host array outside one. ``ndarray + variable`` defers to __radd__ instead of looping in numpy.
    __array_ufunc__ = None

    def _operand(self) -> Any:
        if _active_trace() is not None:
            return self.__onnx_value__()
        read = _TAPE_READ[0]
        recorded = read(self) if read is not None else None
        # An EagerTensor, not a bare array: ``v + 1.0`` is a tensor (``.numpy()``, a tape source) as in
        # TensorFlow and Keras, and a scalar Variable's arithmetic does not decay to a NumPy scalar.
        return recorded if recorded is not None else as_eager(self._read())

    def __add__(self, o: Any) -> Any:
        return self._operand() + o

    def __radd__(self, o: Any) -> Any:
        return o + self._operand()

    def __sub__(self, o: Any) -> Any:
        return self._operand() - o

    def __rsub__(self, o: Any) -> Any:
        return o - self._operand()

    def __mul__(self, o: Any) -> Any:
        return self._operand() * o

    def __rmul__(self, o: Any) -> Any:
        return o * self._operand()

    def __truediv__(self, o: Any) -> Any:
        return self._operand() / o

    def __rtruediv__(self, o: Any) -> Any:
        return o / self._operand()

    def __pow__(self, o: Any) -> Any:
        return self._operand() ** o

    def __matmul__(self, o: Any) -> Any:
        return self._operand() @ o

    def __rmatmul__(self, o: Any) -> Any:
        return o @ self._operand()

    def __neg__(self) -> Any:
        return -self._operand()

    def __getitem__(self, key: Any) -> Any:
        return self._operand()[key]

    # Comparisons give bool tensors, as Keras's and TensorFlow's do. ``==`` / ``!=`` compare elementwise only
    # against numbers, arrays and tensors (``x_star == x_old`` after an update, TensorFlow's optimizer guide);
    # against a Variable or anything else they stay identity (NotImplemented falls back to ``is``): Variables are
    # dict keys and list members throughout the compiler and the runtime (``v in weights``).
    def __eq__(self, o: Any) -> Any:
        return self._operand() == o if _elementwise_operand(o) else NotImplemented

    def __ne__(self, o: Any) -> Any:
        return self._operand() != o if _elementwise_operand(o) else NotImplemented

    def __gt__(self, o: Any) -> Any:
        return self._operand() > o

    def __ge__(self, o: Any) -> Any:
        return self._operand() >= o

    def __lt__(self, o: Any) -> Any:
        return self._operand() < o

    def __le__(self, o: Any) -> Any:
        return self._operand() <= o

    __hash__ = object.__hash__

    # Host conversions (``np.asarray(layer.kernel)``, ``int(optimizer.iterations)``): the current value outside a
    # trace. Inside one the value is not known yet; the graph value's own conversions raise and say why.
    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        value = self._operand()
        if not isinstance(value, np.ndarray):
            return value.__array__(dtype)  # a graph value: raises with its explanation
        if copy is False:
            if dtype is not None and np.dtype(dtype) != value.dtype:
                raise ValueError(f"Variable {self.path!r}: converting {value.dtype} to {np.dtype(dtype)} needs a "
                                 "copy, and copy=False was given.")
            return value
        # A copy: writing into the result must not change the weight behind the runtime's back.
        return np.array(value, dtype=dtype, copy=True)

    def __float__(self) -> float:
        return float(self._operand())

    def __int__(self) -> int:
        return int(self._operand())

    def __index__(self) -> int:
        value = self._operand()
        if isinstance(value, np.ndarray) and value.dtype.kind not in "iub":
            raise TypeError(f"Variable {self.path!r} of dtype {value.dtype} cannot be used as an index.")
        return int(value)

    def __bool__(self) -> bool:
        return bool(self._operand())  # numpy's rule: only a one-element value has a truth value

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError(f"len() of a scalar Variable ({self.path!r}, shape ()).")
        return self.shape[0]

    # Runtime hooks: the device copy is swapped in without touching the host.
    def _set_device(self, ortvalue: Any) -> None:
        _before_change(self)
        self._device = ortvalue
        self._version += 1

    def _get_device(self) -> Any:
        return self._device

    def __onnx_value__(self):
        return current_trace().read_autocast(self)

    def __repr__(self) -> str:
        return f"<Variable {self.path!r} shape={self.shape} trainable={self.trainable}>"
