"""Where a data-parallel strategy plugs into the trainer, without the trainer importing it.

``onnxforge.distribute`` sits above the trainer in the import flow. Its strategies register themselves here
while their ``scope()`` is open; ``compile()`` records the active one on the model, and the batch runners
and loops hand over to it through the few methods below. Nothing here knows about MPI.

A strategy implements:
    ``on_compile(model)``: called at the end of ``compile()`` (device choice per rank, a fresh replica);
    ``train_batch(model, xs, ys, sample_weight) -> sums``, ``eval_batch(...) -> sums``: one GLOBAL batch,
    returning sums over the whole batch (every rank gets the same);
    ``predict_batch(model, xs) -> outputs``: the whole batch's outputs on every rank;
    ``adapt_loop(model, method, callbacks, verbose) -> (callbacks, verbose)``: at the start of ``fit`` /
    ``evaluate`` / ``predict``: side-effect callbacks and the progress bar on rank 0 only, and whatever the
    ranks must agree on before the loop starts.

Example:
    >>> current_strategy() is None
    True
"""
from __future__ import annotations

__all__ = ["enter_scope", "exit_scope", "current_strategy", "strategy_of", "set_default_strategy"]

from typing import Any

_scopes: list[Any] = []
# The strategy outside any scope: ``keras.distribution.set_distribution(DataParallel(...))`` sets it globally.
_default: list[Any] = [None]


def enter_scope(strategy: Any) -> None:
    """Make ``strategy`` the one ``compile()`` records (``with strategy.scope():``)."""
    _scopes.append(strategy)


def exit_scope(strategy: Any) -> None:
    """Close the innermost scope, which must be ``strategy``'s."""
    if not _scopes or _scopes[-1] is not strategy:
        raise RuntimeError("Distribution scopes must be closed in the order they were opened.")
    _scopes.pop()


def current_strategy() -> Any | None:
    """The strategy of the innermost open scope, else the default one, or ``None``."""
    return _scopes[-1] if _scopes else _default[0]


def set_default_strategy(strategy: Any) -> None:
    """The strategy ``compile()`` records outside any scope (``None``: a single process)."""
    _default[0] = strategy


def strategy_of(model: Any) -> Any | None:
    """The strategy a model was compiled under, or ``None`` (a single process)."""
    return getattr(model, "_distribute_strategy", None)
