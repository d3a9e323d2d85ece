"""Seed-generator state in ``layer.variables``, as Keras 3 lists it.

Keras 3's random layers (``Dropout`` and its relatives, ``GaussianNoise``, the random image layers, the RNN
cells, ``Attention`` with dropout) each hold a ``SeedGenerator`` whose ``state`` Variable (path
``seed_generator/seed_generator_state``, not trainable) is part of ``layer.variables`` and
``non_trainable_variables`` but not of ``weights``: ``get_weights``, ``count_params``, ``summary`` and weight files
leave it out. Programs that pair values with these lists (``stateless_call``, ``get_state_tree``, JAX-style
loops, ``len(model.variables)``) see the same lists here.

onnxforge's built-in layers draw their noise from the compiled program's one RNG stream (the model's
``seed_generator/state``, saved with the model), so their ``LayerSeedGenerator``'s state is listed, not
advanced; a subclass may still draw from it (``keras.random.dropout(x, rate, seed=self.seed_generator)``).
A ``SeedGenerator`` a user's layer holds is listed too, and its state is saved as before
(``Model.rng_variables``).

Its dtype is int64, the seed dtype of Keras on TensorFlow (on torch Keras uses int32): onnxforge's random
streams are int64 counters.

Example:
    >>> from onnxforge.layers import Dropout
    >>> layer = Dropout(0.5)
    >>> [(v.path.split("/")[-1], v.trainable) for v in layer.variables], layer.weights
    ([('seed_generator_state', False)], [])
"""
from __future__ import annotations

__all__ = ["LayerSeedGenerator", "seed_states", "VariablesMixin"]

import random
from typing import Any

import numpy as np

from ..ops.random import SeedGenerator
from ..variables import Variable, unique_variables



class LayerSeedGenerator(SeedGenerator):
    """The ``SeedGenerator`` a built-in random layer holds (``layer.seed_generator`` / ``layer.generator``),
    named as Keras names one: ``seed_generator``, ``seed_generator_1``, ... with state ``seed_generator_state``.

    Args:
        seed: the stream's seed; default: drawn from Python's ``random``, as Keras draws it.
    """

    def __init__(self, seed: int | None = None):
        from .base import auto_name   # base imports this module

        # An unseeded one draws its seed from Python's ``random``, as Keras's ``make_default_seed``: building a
        # Dropout moves that stream as in Keras (a program's later ``random.randint`` picks the same) and leaves
        # numpy's global stream, which feeds compile's seed and the program's own draws, untouched.
        super().__init__(random.randint(1, int(1e9)) if seed is None else seed, name=auto_name("seed_generator"))
        self.state = Variable(np.asarray([self.seed, 0], np.int64), name=f"{self.name}/seed_generator_state",
                              trainable=False, dtype=np.int64)


def seed_states(layer: Any) -> list[Variable]:
    """The states of the ``SeedGenerator``s ``layer`` holds in its attributes (alone or in a list / tuple),
    in assignment order (Keras's ``layer._seed_generators``)."""
    out: list[Variable] = []
    for value in vars(layer).values():
        for item in (value if isinstance(value, (list, tuple)) else (value,)):
            if isinstance(item, SeedGenerator) and all(item.state is not v for v in out):
                out.append(item.state)
    return out


class VariablesMixin:
    """``variables`` and ``non_trainable_variables``: the weights plus seed-generator state (Keras 3's order:
    a layer's own weights, its own seed states, then each sub-layer's variables)."""

    @property
    def variables(self) -> list[Variable]:
        own = self._own_weights() + seed_states(self)   # type: ignore[attr-defined]
        return unique_variables(own + [v for layer in self._flat_sublayers()  # type: ignore[attr-defined]
                                       for v in layer.variables])

    @property
    def non_trainable_variables(self) -> list[Variable]:
        return [v for v in self.variables if not v.trainable] if self.trainable else self.variables  # type: ignore[attr-defined]
