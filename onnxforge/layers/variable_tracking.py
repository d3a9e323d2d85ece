"""Variables held in a layer's attributes are its weights, as Keras 3's tracker makes them.

``self.alpha = keras.Variable(...)`` in a custom layer's ``__init__`` or ``build`` (alone, or in a list, tuple or
dict) makes ``alpha`` one of the layer's weights: listed in ``weights`` (trainable ones in ``trainable_weights``,
so the optimizer updates them), read as graph values inside traces like ``add_weight``'s, and saved with the
layer's own weights. The order is Keras's: the order in which the layer first held each variable, interleaved
with ``add_weight`` calls (a variable assigned in ``__init__`` comes before the weights ``build`` adds).

The first layer to hold a variable owns it and names it as ``add_weight`` would (``scale/alpha``): onnxforge's
``Variable.name`` is the weight's path, and programs and weight files need it unique in a model, where two
instances of one custom layer each hold an ``alpha``. Keras 3 keeps ``name`` ``"alpha"``, and its ``path`` too
for a variable created in ``__init__`` (outside the layer's name scope); one created in ``build`` agrees.

Variables are tracked when assigned, and a container's later additions (``self.vs.append(v)``, which Keras's
tracked lists see) when the layer's variables are next listed.

Example:
    >>> import numpy as np
    >>> from onnxforge.layers import Layer
    >>> from onnxforge.variables import Variable
    >>> class Scale(Layer):
    ...     def __init__(self):
    ...         super().__init__(name="scale")
    ...         self.alpha = Variable(np.ones(2, np.float32), name="alpha")
    ...         self.offsets = [Variable(np.zeros(2, np.float32), name="offset", trainable=False)]
    >>> layer = Scale()
    >>> [w.path for w in layer.weights], [w.name for w in layer.trainable_weights]
    (['scale/alpha', 'scale/offset'], ['alpha'])
"""
from __future__ import annotations

__all__ = ["UNTRACKED", "TrackedVariables", "variables_in", "claim_name"]

from collections.abc import Iterator
from typing import Any

from ..graph import unique_name
from ..variables import Variable

#: onnxforge's own attributes on layers and models that hold Variables the layer does not own: the
#: model's training-time bookkeeping (sub-layers' weights captured at compile) and its dropout RNG state.
UNTRACKED = frozenset({"_tracked", "_inbound_nodes", "_trainable_at_compile", "_rng_state", "_rnn_states"})


def variables_in(value: Any, seen: set[int] | None = None) -> Iterator[Variable]:
    """The Variables in ``value``: itself, or inside lists, tuples and dicts (values, in insertion order),
    nested as deep as they go; other objects (sub-layers, metrics, seed generators) are not searched."""
    if isinstance(value, Variable):
        yield value
        return
    if not isinstance(value, (list, tuple, dict)):
        return
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    for item in (value.values() if isinstance(value, dict) else value):
        yield from variables_in(item, seen)


class TrackedVariables:
    """A layer's own variables, split like Keras's ``_trainable_variables`` / ``_non_trainable_variables``:
    a variable joins the list its ``trainable`` flag names when the layer first holds it, and stays there."""

    def __init__(self) -> None:
        self.trainable: list[Variable] = []
        self.non_trainable: list[Variable] = []
        self._uids: set[int] = set()
        # attribute -> (id, len) of the container last searched: ``sync`` runs whenever the weights are listed,
        # and a layer may hold long lists (a vocabulary) that need no second search while they do not change.
        self._searched: dict[str, tuple[int, int]] = {}

    def add(self, variable: Variable, trainable: bool) -> bool:
        """Track ``variable`` in the ``trainable`` or the other list; ``False`` if it already was."""
        if len(self._uids) != len(self.trainable) + len(self.non_trainable):
            # The lists were changed directly (``from_onnx`` fills them): their contents are the truth.
            self._uids = {v.uid for v in self.trainable + self.non_trainable}
        if variable.uid in self._uids:
            return False
        self._uids.add(variable.uid)
        (self.trainable if trainable else self.non_trainable).append(variable)
        return True

    def sync(self, layer: Any) -> None:
        """Track the Variables now held in ``layer``'s attributes that are not tracked yet."""
        for name, value in list(layer.__dict__.items()):
            if name in UNTRACKED or not isinstance(value, (Variable, list, tuple, dict)):
                continue
            key = (id(value), len(value) if not isinstance(value, Variable) else -1)
            if self._searched.get(name) != key:
                self._searched[name] = key
                self.track(value, layer)

    def track(self, value: Any, layer: Any) -> None:
        """Track the Variables in ``value`` (an attribute's new value of ``layer``)."""
        for variable in variables_in(value):
            if not self.add(variable, variable.trainable):
                continue
            if not layer.__dict__.get("_trainable", True):
                # A variable joining a frozen layer is frozen, as add_weight's are (the layer's flag governs);
                # unfreezing the layer unfreezes it again.
                variable.trainable = False
            if not getattr(variable, "_owned", False) and "name" in layer.__dict__:
                variable.path = f"{layer.name}/{claim_name(layer, variable.path)}"
            variable._owned = True


def claim_name(layer: Any, base: str) -> str:
    """``base``, or ``base_1``, ``base_2``, ... : a weight name not yet used in ``layer`` (now taken)."""
    return unique_name(base, layer.__dict__.setdefault("_weight_names", set()))
