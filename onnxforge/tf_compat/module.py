"""``tf.Module`` and ``tf.name_scope``: the base class of TensorFlow's "Introduction to modules" and "Basic
training loops", which find a module's Variables and submodules by walking its attributes.

The walk follows TensorFlow's: a module's attributes in sorted name order, each flattened as ``tf.nest``
does (lists, tuples, dict values by sorted key), each object once; the attributes' own Variables come
before those of the submodules, which are walked depth first in the order met. A Keras layer or model held
in an attribute is a submodule whose variables are its ``weights`` (tf.keras 2's layers were Modules).
Name scopes only name things in TensorFlow's graphs; onnxforge names its Variables itself, so
``name_scope`` and ``with_name_scope`` keep their interface and leave names as they are.

Example:
    >>> import onnxforge as tf
    >>> class Dense(tf.Module):
    ...     def __init__(self, n_in, n_out, name=None):
    ...         super().__init__(name=name)
    ...         self.w = tf.Variable(tf.ones([n_in, n_out]), name="w")
    ...         self.b = tf.Variable(tf.zeros([n_out]), name="b", trainable=False)
    ...     def __call__(self, x):
    ...         return tf.matmul(x, self.w) + self.b
    >>> layer = Dense(2, 3)
    >>> layer.name, len(layer.variables), len(layer.trainable_variables), layer(tf.ones([1, 2])).tolist()
    ('dense', 2, 1, [[2.0, 2.0, 2.0]])
"""
from __future__ import annotations

__all__ = ["Module", "name_scope"]

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from ..variables import Variable
from . import nest

_VALID_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")


def _snake_case(name: str) -> str:
    """``SequentialModule`` -> ``sequential_module``, as TensorFlow names a module after its class."""
    step = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", step).lower()


class name_scope:  # noqa: N801 (TensorFlow's name)
    """``tf.name_scope(name)``: a context manager whose ``__enter__`` gives the scope's name (``"name/"``).

    Example:
        >>> with name_scope("block") as scope:
        ...     scope
        'block/'
    """

    def __init__(self, name: str):
        if not isinstance(name, str):
            raise TypeError(f"tf.name_scope: name must be a string. Received: name={name!r}")
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def __enter__(self) -> str:
        return self._name + "/" if self._name and not self._name.endswith("/") else self._name

    def __exit__(self, *exc: Any) -> None:
        return None


def _is_layer(obj: Any) -> bool:
    """A Keras layer or model: a Module whose Variables are its ``weights``."""
    return not isinstance(obj, Module) and hasattr(obj, "trainable_weights") and hasattr(obj, "weights")


def _walk(module: Any, predicate: Callable[[Any], bool], seen: set[int], stack: list[int]) -> Iterator[Any]:
    """TensorFlow's traversal: this module's attributes (sorted), then each submodule met, depth first."""
    if _is_layer(module):
        for var in module.weights:
            if id(var) not in seen:
                seen.add(id(var))
                if predicate(var):
                    yield var
        return
    submodules = []
    attributes = vars(module)
    for key in sorted(attributes):
        for leaf in nest.flatten(attributes[key]):
            if id(leaf) in seen:
                continue
            seen.add(id(leaf))
            if predicate(leaf):
                yield leaf
            if (isinstance(leaf, Module) or _is_layer(leaf)) and id(leaf) not in stack:
                submodules.append(leaf)
    stack.append(id(module))
    for sub in submodules:
        yield from _walk(sub, predicate, seen, stack)
    stack.pop()


class Module:
    """``tf.Module(name=None)``: a named container of Variables and submodules.

    Args:
        name: the module's name; by default its class name in snake case (``SequentialModule`` ->
            ``sequential_module``). It must be a valid Python identifier-like name, as TensorFlow requires.
    """

    def __init__(self, name: str | None = None):
        if name is None:
            name = _snake_case(type(self).__name__)
        elif not isinstance(name, str) or not _VALID_NAME.match(name):
            raise ValueError(f"tf.Module: {name!r} is not a valid module name. Module names must be valid Python "
                             f"identifiers (e.g. a valid class name). Received: name={name!r}")
        self._name = name
        self._scope_name = name + "/"

    @property
    def name(self) -> str:
        """The name given to ``__init__`` (or derived from the class)."""
        return self._name

    @property
    def name_scope(self) -> name_scope:
        """The module's name scope (``with module.name_scope: ...``)."""
        return name_scope(self._name)

    def _flatten(self, predicate: Callable[[Any], bool]) -> tuple[Any, ...]:
        return tuple(_walk(self, predicate, {id(self)}, []))

    @property
    def variables(self) -> tuple[Variable, ...]:
        """Every Variable of this module and its submodules, each once, in TensorFlow's walk order."""
        return self._flatten(lambda x: isinstance(x, Variable))

    @property
    def trainable_variables(self) -> tuple[Variable, ...]:
        """The trainable Variables of this module and its submodules (what ``tape.gradient`` takes)."""
        return self._flatten(lambda x: isinstance(x, Variable) and x.trainable)

    @property
    def non_trainable_variables(self) -> tuple[Variable, ...]:
        """The Variables made with ``trainable=False``, in this module and its submodules."""
        return self._flatten(lambda x: isinstance(x, Variable) and not x.trainable)

    @property
    def submodules(self) -> tuple[Any, ...]:
        """Every module (and Keras layer) reachable from this one's attributes, itself excluded."""
        return self._flatten(lambda x: isinstance(x, Module) or _is_layer(x))

    @classmethod
    def with_name_scope(cls, method: Callable[..., Any]) -> Callable[..., Any]:
        """A decorator running ``method`` inside its module's ``name_scope``."""
        @functools.wraps(method)
        def wrapped(self: Module, *args: Any, **kwargs: Any) -> Any:
            with self.name_scope:
                return method(self, *args, **kwargs)
        return wrapped

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} object named {self._name!r}>"
