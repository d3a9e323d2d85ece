"""The positional arguments of ``Layer.add_weight``, read as Keras 3 reads them.

Keras 3 takes ``add_weight(shape, initializer, dtype)`` positionally and everything else by keyword. tf.keras 2
code often writes ``add_weight("kernel", shape=...)``, the name first: Keras 3 refuses that with a
ValueError saying to pass ``name=`` by keyword, rather than Python's TypeError for ``shape`` given twice, and
so does onnxforge, with the same words.

Example:
    >>> from onnxforge.layers.weight_arguments import positional_weight_arguments
    >>> positional_weight_arguments(((2, 3), "zeros"), None, None, None)
    ((2, 3), 'zeros', None)
"""
from __future__ import annotations

__all__ = ["positional_weight_arguments"]

from typing import Any

_ORDER = ("shape", "initializer", "dtype")


def positional_weight_arguments(args: tuple, shape: Any, initializer: Any, dtype: Any) -> tuple[Any, Any, Any]:
    """``(shape, initializer, dtype)`` with ``args`` (at most those three, in that order) filled in.

    Raises:
        TypeError: more than three positional arguments.
        ValueError: a string first (a name, tf.keras 2 style), or one argument given both ways.
    """
    if not args:
        return shape, initializer, dtype
    if len(args) > len(_ORDER):
        raise TypeError(f"add_weight() takes at most 3 positional arguments but {len(args)} were given.")
    if isinstance(args[0], str):
        raise ValueError(f"`name` must be passed as a keyword argument. Received: add_weight('{args[0]}', ...). "
                         f"Use: add_weight(shape=..., name='{args[0]}').")
    given = {"shape": shape, "initializer": initializer, "dtype": dtype}
    for key, value in zip(_ORDER, args):
        if given[key] is not None:
            raise ValueError(f"`{key}` was passed both positionally and as a keyword argument.")
        given[key] = value
    return given["shape"], given["initializer"], given["dtype"]
