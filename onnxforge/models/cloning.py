"""``clone_model``: a new model with the same architecture and freshly initialized weights (Keras 3).

Sequential and functional models are rebuilt node by node: each layer is copied once by ``clone_function``
(default: ``layer.__class__.from_config(layer.get_config())``, so custom layers with a ``get_config`` clone
too), so a layer shared by several calls stays shared in the copy, and the graph is re-run on new ``Input``
tensors (or on ``input_tensors``). A compiled model's copy is compiled with the same configuration (a new
optimizer). Subclassed models are rebuilt from their config.

Example:
    >>> from onnxforge.models import Sequential, clone_model
    >>> from onnxforge.layers import Dense, Input
    >>> model = Sequential([Input((3,)), Dense(2)])
    >>> twin = clone_model(model)
    >>> twin.count_params() == model.count_params(), twin.layers[0] is model.layers[0]
    (True, False)
"""
from __future__ import annotations

__all__ = ["clone_model"]

import inspect
from collections.abc import Callable
from typing import Any

from ..layers.base import Layer
from ..layers.input_layer import Input, InputLayer
from ..layers.keras_tensor import KerasTensor, flatten
from .graph import pack_as
from .model import Model
from .sequential import Sequential

CloneFn = Callable[[Layer], Layer]


def _default_clone(layer: Layer) -> Layer:
    return layer.__class__.from_config(layer.get_config())


def clone_model(model: Model, input_tensors: Any = None, clone_function: CloneFn | None = None,
                call_function: Callable[..., Any] | None = None, recursive: bool = False, **kwargs: Any) -> Model:
    """A copy of ``model``'s architecture with new layers (new weights), as ``keras.models.clone_model``.

    Args:
        model: a Sequential, functional or subclassed (with ``get_config``) model.
        input_tensors: KerasTensors to build the copy on, in the structure of ``model.input`` (Sequential and
            functional models only); new ``Input`` tensors of the same shapes, dtypes and names by default.
        clone_function: ``layer -> layer`` applied once per layer (so shared layers stay shared); by default
            the layer rebuilt from its config. ``lambda layer: layer`` reuses the layers (and weights).
        call_function: ``(layer, *args, **kwargs) -> outputs`` that calls each cloned layer in the graph
            (functional models only): it can insert layers before or after one.
        recursive: copy the Sequential / functional models nested in ``model`` with ``clone_model`` (the same
            functions) instead of with ``clone_function``.

    Returns:
        A ``Sequential`` for a Sequential model, a functional ``Model`` for a functional one, a new instance
        of the class of a subclassed model.

    Raises:
        ValueError: for unknown keyword arguments, a ``call_function`` on a Sequential model, arguments that
            need a layer graph on a subclassed model, or ``input_tensors`` of the wrong structure.

    Example:
        >>> from onnxforge.models import Model, clone_model
        >>> from onnxforge.layers import Dense, Input
        >>> x = Input((4,))
        >>> model = Model(x, Dense(3)(x))
        >>> def wider(layer):
        ...     config = layer.get_config()
        ...     config["units"] = 5
        ...     return layer.__class__.from_config(config)
        >>> clone_model(model, clone_function=wider).output.shape
        (None, 5)
    """
    cache = kwargs.pop("cache", None)
    if kwargs:
        raise ValueError(f"Unexpected keyword argument(s): {tuple(kwargs)}")
    if not isinstance(model, Model):
        raise ValueError(f"Expected `model` argument to be a `Model` instance. Received: model={model!r}")
    if clone_function is not None and not callable(clone_function):
        raise ValueError(f"Expected `clone_function` argument to be a callable. Received: "
                         f"clone_function={clone_function!r}")
    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError("`call_function` argument is not supported with Sequential models. In a Sequential "
                             "model, layers aren't called at model-construction time (they're merely listed). Use "
                             f"`call_function` with Functional models only. Received model of type "
                             f"'{type(model).__name__}', with call_function={call_function!r}")
        copy = _wrap(clone_function, None, recursive, cache)
        return _compiled_like(model, _clone_sequential(model, input_tensors, copy))
    if model._graph is not None:
        copy = _wrap(clone_function, call_function, recursive, cache)
        return _compiled_like(model, _clone_functional(model, input_tensors, copy, call_function))
    if clone_function is not None or input_tensors is not None:
        raise ValueError("Arguments `clone_function` and `input_tensors` are only supported for Sequential models "
                         f"or Functional models. Received model of type '{type(model).__name__}', with "
                         f"clone_function={clone_function!r} and input_tensors={input_tensors!r}")
    if call_function is not None:
        raise ValueError("Argument `call_function` is only supported for Functional models. Received model of "
                         f"type '{type(model).__name__}', with call_function={call_function!r}")
    return _compiled_like(model, _clone_subclassed(model))


def _wrap(clone_function: CloneFn | None, call_function: Callable[..., Any] | None, recursive: bool,
          cache: dict | None) -> CloneFn:
    """``clone_function`` applied once per layer (the cache keeps shared layers shared), recursing if asked."""
    fn = clone_function or _default_clone
    cache = {} if cache is None else cache

    def copy(layer: Layer) -> Layer:
        if id(layer) in cache:
            return cache[id(layer)]
        if recursive and isinstance(layer, Sequential):   # Keras: call_function never reaches a Sequential
            new = clone_model(layer, clone_function=fn, recursive=True, cache=cache)
        elif recursive and isinstance(layer, Model) and layer._graph is not None:
            new = clone_model(layer, clone_function=fn, call_function=call_function, recursive=True, cache=cache)
        else:
            new = fn(layer)
        cache[id(layer)] = new
        return new

    return copy


def _clone_sequential(model: Sequential, input_tensors: Any, copy: CloneFn) -> Sequential:
    layers = [copy(layer) for layer in model.layers]
    first = model._seq[0] if model._seq else None
    name = first.name if isinstance(first, InputLayer) else None
    if input_tensors is not None:
        if isinstance(input_tensors, (list, tuple)):
            if len(input_tensors) != 1:
                raise ValueError(f"Argument `input_tensors` must contain a single tensor. Received "
                                 f"{len(input_tensors)} values.")
            input_tensors = input_tensors[0]
        if not isinstance(input_tensors, KerasTensor):
            raise ValueError(f"Argument `input_tensors` must be a KerasTensor. Received invalid value: "
                             f"input_tensors={input_tensors!r}")
        head = [InputLayer(input_tensor=input_tensors, name=name)]
    elif isinstance(first, InputLayer):
        head = [InputLayer(batch_shape=first.batch_shape, dtype=first.dtype, name=name)]
    else:   # an unbuilt Sequential stays unbuilt, as in Keras
        head = []
    return Sequential(head + layers, trainable=model.trainable, name=model.name)


def _clone_functional(model: Model, input_tensors: Any, copy: CloneFn,
                      call_function: Callable[..., Any] | None) -> Model:
    if input_tensors is None:
        new_inputs = [Input(batch_shape=t.shape, dtype=t.dtype, name=t.name) for t in model.inputs]
        inputs_struct = pack_as(model._inputs_struct, new_inputs)
    else:
        given = flatten(input_tensors)
        if not all(isinstance(t, KerasTensor) for t in given):
            raise ValueError(f"All entries in `input_tensors` must be KerasTensors. Received invalid values: "
                             f"input_tensors={input_tensors!r}")
        if not _same_structure(input_tensors, model._inputs_struct):
            raise ValueError(f"`input_tensors` must have the same structure as model.input\nReference structure: "
                             f"{model._inputs_struct!r}\nReceived structure: {input_tensors!r}")
        new_inputs, inputs_struct = given, input_tensors
        # A tensor computed by other layers becomes an input of the copy (Keras adopts it the same way).
        for t in new_inputs:
            if not isinstance(t._keras_history.layer, InputLayer):
                InputLayer(input_tensor=t)

    def call(node: Any, args: tuple, kw: dict) -> Any:
        new = copy(node.layer)
        return call_function(new, *args, **kw) if call_function is not None else new(*args, **kw)

    outputs = pack_as(model._outputs_struct, model._graph.run(list(new_inputs), call))
    cls = type(model) if _functional_like(type(model)) else Model
    clone = cls(inputs_struct, outputs, name=model.name)
    clone.trainable = model.trainable
    return clone


def _same_structure(a: Any, b: Any) -> bool:
    if isinstance(b, dict):
        return isinstance(a, dict) and set(a) == set(b) and all(_same_structure(a[k], b[k]) for k in b)
    if isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and len(a) == len(b) and all(map(_same_structure, a, b))
    # Keras accepts a single tensor for a one-input model given as a list of one, and the reverse.
    return not isinstance(a, (dict, list, tuple)) or (len(a) == 1 and _same_structure(a[0], b))


def _functional_like(cls: type) -> bool:
    """Keras's rule: a Model subclass whose constructor reads ``(inputs, outputs, name)`` is rebuilt as itself."""
    if cls is Model:
        return True
    try:
        params = list(inspect.signature(cls.__init__).parameters)[1:]
    except (TypeError, ValueError):
        return False
    return [p for p in params if p not in ("args", "kwargs")] == ["inputs", "outputs", "name"]


def _clone_subclassed(model: Model) -> Model:
    try:
        config = model.get_config()
    except NotImplementedError as e:
        raise ValueError(f"clone_model of the subclassed model {model.name!r} needs its get_config() (and "
                         f"from_config() where the constructor does not take the config's keys): {e}") from None
    clone = type(model).from_config(config)
    if getattr(model, "built", False) and not clone.built:   # Keras rebuilds the copy as its source was built
        clone.build_from_config(model.get_build_config())
    return clone


def _compiled_like(model: Model, clone: Model) -> Model:
    """Keras compiles the copy of a compiled model from its compile config (a fresh optimizer)."""
    config = model.get_compile_config() if getattr(model, "compiled", False) else None
    if config is not None:
        clone.compile_from_config(config)
    return clone
