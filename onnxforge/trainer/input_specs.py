"""A subclassed model's input sizes, widened to what it is fed.

A subclassed model built on one batch records its inputs' shapes (``Model._input_specs``), and its compiled
programs take those shapes. Keras runs such a model's ``call`` on whatever it is given: keras.io's NER
model is fit on sentences padded per batch (``padded_batch``), each batch to its own length, then asked to
predict one sentence of yet another length. ``widen_input_specs`` turns the axes whose size the data
changes into ``None`` (the programs are then traced again, once, for any size there), where the model's
layers take the sizes fed; a size they refuse (a Dense built on 3 features given 5) keeps the shape, and
the feed check's "incompatible" error stands. Functional models keep their declared shapes.

Example:
    >>> import numpy as np
    >>> from onnxforge import keras
    >>> class Tagger(keras.Model):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.embed, self.tags = keras.layers.Embedding(10, 4), keras.layers.Dense(3)
    ...     def call(self, ids):
    ...         return self.tags(self.embed(ids))
    >>> model = Tagger()
    >>> _ = model(np.zeros((1, 6), "int64"))
    >>> model.predict(np.zeros((2, 9), "int64"), verbose=0).shape
    (2, 9, 3)
    >>> model.inputs[0].shape
    (None, None)
"""
from __future__ import annotations

__all__ = ["widen_input_specs"]

from typing import Any

from ..layers.keras_tensor import KerasTensor, flatten


def _shape(x: Any) -> tuple:
    return tuple(x.shape()) if callable(getattr(x, "shape", None)) else tuple(getattr(x, "shape", ()))


def widen_input_specs(model: Any, xs: Any) -> bool:
    """Widen a built subclassed ``model``'s input specs where the arrays ``xs`` differ from them in a
    non-batch size its layers take (see the module docstring); whether they changed."""
    specs = model.__dict__.get("_input_specs")
    if model.__dict__.get("_graph") is not None or specs is None or isinstance(specs, dict) \
            or not getattr(model, "built", False):
        return False
    flat = flatten(specs)
    arrays = list(xs) if isinstance(xs, (list, tuple)) else [xs]
    if len(flat) != len(arrays):
        return False
    widened, exact, changed = [], [], False
    for spec, x in zip(flat, arrays):
        shape, old = _shape(x), tuple(spec.shape)
        dims = old
        if len(shape) == len(old):
            dims = tuple(d if k == 0 or d is None or d == n else None for k, (d, n) in enumerate(zip(old, shape)))
        exact.append(KerasTensor((old[0], *shape[1:]), spec.dtype, name=spec.name) if dims != old else spec)
        if dims != old:
            changed = True
            spec = KerasTensor(dims, spec.dtype, name=spec.name)
        widened.append(spec)
    if not changed:
        return False
    single = isinstance(specs, KerasTensor)
    try:   # the sizes fed must suit the layers: else the clear "incompatible" error stands
        model._spec_by_tracing(((exact[0] if single else exact),), {})
    except Exception:   # noqa: BLE001 (whatever a layer raises on sizes it does not take)
        return False
    model._input_specs = widened[0] if single else widened
    model._output_specs = model._spec_by_tracing((model._input_specs,), {})
    return True
