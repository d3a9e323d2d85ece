"""What a gradient rule sees of its node: I(i), O(i), GO(i), attributes and the builder."""
from __future__ import annotations

__all__ = ["GradContext"]

from typing import Any

import onnx

from ..graph import GraphBuilder, Value, protos


class GradContext:
    """The view of one forward node that a gradient rule works with.

    Vocabulary from onnxruntime's gradient builder: ``I(i)`` is forward input ``i``, ``O(i)`` forward output
    ``i``, ``GO(i)`` the gradient flowing into output ``i`` (``None`` if nothing downstream needs it).
    ``needs(i)`` says whether input ``i`` wants a gradient, so a rule can skip work nobody reads.
    """

    def __init__(self, b: GraphBuilder, node: onnx.NodeProto, output_grads: list[Value | None],
                 needed: set[str], producers: dict[str, onnx.NodeProto] | None = None,
                 uses: dict[str, int] | None = None):
        self.b = b
        self.node = node
        self._output_grads = output_grads
        self._needed = needed
        self._producers = producers or {}
        self._uses = uses or {}
        self._attrs = protos.attributes(node)
        #: Gradients for names a subgraph captures from the enclosing scope (control-flow rules).
        self.capture_grads: dict[str, Value] = {}

    @property
    def op_type(self) -> str:
        return self.node.op_type

    @property
    def n_inputs(self) -> int:
        return len(self.node.input)

    def I(self, i: int) -> Value | None:  # noqa: E743 (the standard vocabulary)
        """Forward input ``i``, or ``None`` if omitted."""
        if i >= len(self.node.input) or not self.node.input[i]:
            return None
        return self.b.value(self.node.input[i])

    def O(self, i: int = 0, dtype: int | None = None) -> Value:  # noqa: E743
        """Forward output ``i``. An optional output the model left out (MaxPool's Indices, Dropout's mask)
        is added to the forward node, so the rule can reuse what the forward pass computes anyway; ``dtype``
        types it (a Scan body saves such a value per iteration only when its element type is known)."""
        while len(self.node.output) <= i:
            self.node.output.append("")
        if not self.node.output[i]:
            name = self.b.fresh(f"{self.node.name or self.op_type}_out{i}")
            self.node.output[i] = name
            self.b._record(name, dtype, None)
        return self.b.value(self.node.output[i])

    def has_output(self, i: int) -> bool:
        return i < len(self.node.output) and bool(self.node.output[i])

    def GO(self, i: int = 0) -> Value | None:
        """Gradient flowing into output ``i``, or ``None`` when no downstream value needs it."""
        return self._output_grads[i] if i < len(self._output_grads) else None

    def GO_or_zeros(self, i: int = 0) -> Value:
        """Like ``GO`` but a zero tensor shaped like ``O(i)`` instead of ``None``."""
        g = self.GO(i)
        return g if g is not None else self.zeros_like(self.O(i))

    def needs(self, i: int) -> bool:
        """Whether forward input ``i`` is on a path to the loss from a value whose gradient is wanted."""
        return i < len(self.node.input) and self.node.input[i] in self._needed

    def needs_name(self, name: str) -> bool:
        """Whether the value called ``name`` wants a gradient: ``needs`` for the names a subgraph captures."""
        return name in self._needed

    def producer(self, name: str) -> onnx.NodeProto | None:
        """The forward node that computes ``name`` (``None`` for graph inputs, initializers and values the
        engine was not told about)."""
        return self._producers.get(name)

    def use_count(self, name: str) -> int:
        """How many times the forward graph reads ``name`` (node inputs, subgraph captures, graph outputs,
        the loss and the wanted values each count), so a rule can tell that it is a value's only reader.
        Without that index every value counts as read more than once: fusions across nodes stay off."""
        return self._uses.get(name, 2)

    def attr(self, name: str, default: Any = None) -> Any:
        """The node attribute ``name`` (bytes decoded to str), or ``default``."""
        value = self._attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def const_input(self, i: int) -> Any:
        """Input ``i``'s value when it is a constant (initializer or Constant node), else ``None``."""
        name = self.node.input[i] if i < len(self.node.input) else ""
        return self.b.constant_value(name) if name else None

    def zeros_like(self, v: Value) -> Value:
        """Zeros in ``v``'s element type and shape (``ConstantOfShape``; the type is never assumed)."""
        if v.is_sequence:
            from .rules.sequence import zeros_like_sequence

            return zeros_like_sequence(self.b, v)
        return self.b.zeros_like(v)

    def fail(self, why: str) -> RuntimeError:
        """An error naming this node, for a rule that cannot handle an attribute combination."""
        from .engine import GradientError

        return GradientError(f"Cannot differentiate {self.op_type} node {self.node.name!r}: {why}")
