"""``Bidirectional`` and ``TimeDistributed`` (Keras 3 wrappers)."""
from __future__ import annotations

__all__ = ["Bidirectional", "TimeDistributed"]

from typing import Any

from ...graph import Value
from ...graph import emit as layer_ops
from ..base import InputSpec, Layer
from . import _ops
from .masking import get_keras_mask, set_keras_mask
from .rnn import RNN, _deserialize, _serialize, check_mask_shape, check_sequences_shape, prefix_weight_names

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _clone(layer: Layer, **overrides: Any) -> Layer:
    """A new, unbuilt layer from ``layer``'s config (Keras recreates wrapped layers so they share nothing)."""
    return type(layer).from_config({**layer.get_config(), **overrides})


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards over the sequence and merges the two.

    Args:
        layer: an ``RNN`` (``LSTM``, ``GRU``, ...); it is copied into ``forward_layer`` (named
            ``forward_<name>``) and, unless ``backward_layer`` is given, into ``backward_layer``
            (``backward_<name>``, ``go_backwards=True``).
        merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or ``None`` (both outputs).
        weights: initial weights, forward layer's first.
        backward_layer: an explicit backward layer (must differ in ``go_backwards``).

    With ``return_sequences`` the backward sequence is returned in input time order (Keras flips it back),
    and masked steps output zeros (Keras sets ``zero_output_for_mask`` on both layers). With
    ``return_state`` the result is ``[output(s)..., *forward_states, *backward_states]``.

    Example:
        >>> from onnxforge.layers import Input
        >>> from onnxforge.layers.recurrent import Bidirectional, LSTM
        >>> Bidirectional(LSTM(4, return_sequences=True))(Input(shape=(7, 3))).shape
        (None, 7, 8)
    """

    def __init__(self, layer: Any, merge_mode: str | None = "concat", weights: Any = None,
                 backward_layer: Any = None, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `Bidirectional` layer with a `keras.layers.Layer` instance. "
                             f"Received: {layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(f"`backward_layer` need to be a `keras.layers.Layer` instance. Received: "
                             f"{backward_layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Invalid merge mode. Received: {merge_mode!r}. Merge mode should be one of "
                             '{"sum", "mul", "ave", "concat", None}')
        super().__init__(**kwargs)
        base = layer.name.removeprefix("forward_")
        self.forward_layer = _clone(layer, name="forward_" + base)
        if backward_layer is None:
            self.backward_layer = _clone(layer, name="backward_" + layer.name.removeprefix("backward_"),
                                         go_backwards=True)
        else:
            self.backward_layer = backward_layer
        for attr in ("go_backwards",):
            if getattr(self.forward_layer, attr, None) == getattr(self.backward_layer, attr, None):
                raise ValueError("Forward layer and backward layer should have different `go_backwards` value. "
                                 f"Received: forward_layer.go_backwards={self.forward_layer.go_backwards}, "
                                 f"backward_layer.go_backwards={self.backward_layer.go_backwards}")
        for attr in ("stateful", "return_sequences", "return_state"):
            f, b = getattr(self.forward_layer, attr, None), getattr(self.backward_layer, attr, None)
            if f != b:
                raise ValueError(f'Forward layer and backward layer are expected to have the same value for '
                                 f'attribute "{attr}", got "{f}" for forward layer and "{b}" for backward layer')
        for sub in (self.forward_layer, self.backward_layer):
            if isinstance(sub, RNN):
                sub.zero_output_for_mask = sub.return_sequences
        if isinstance(self.backward_layer, RNN):
            self.backward_layer._time_order_outputs = True  # the Scan stacks it in input order: no flip
        self.merge_mode = merge_mode
        self._initial_weights = None if not weights else list(weights)
        self.return_sequences = bool(getattr(layer, "return_sequences", False))
        self.return_state = bool(getattr(layer, "return_state", False))
        self.stateful = False
        self.supports_masking = True
        self.input_spec = InputSpec(ndim=3)

    @property
    def fused(self) -> bool | None:
        return getattr(self.forward_layer, "fused", None)

    @fused.setter
    def fused(self, value: bool | None) -> None:
        for sub in (self.forward_layer, self.backward_layer):
            sub.fused = value

    def build(self, sequences_shape, initial_state_shape=None):
        check_sequences_shape(self.name, tuple(sequences_shape))  # named after the wrapper, not its copies
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub._maybe_build(tuple(sequences_shape))
                prefix_weight_names(sub, self.name)
        if self._initial_weights is not None:
            n = len(self._initial_weights)
            self.forward_layer.set_weights(self._initial_weights[: n // 2])
            self.backward_layer.set_weights(self._initial_weights[n // 2:])
            self._initial_weights = None
        self.built = True

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        out = self.forward_layer.compute_output_shape(tuple(sequences_shape))
        states: tuple = ()
        if self.return_state:
            out, states = out[0], tuple(out[1:])
        if self.merge_mode == "concat":
            out = (*out[:-1], out[-1] * 2 if out[-1] is not None else None)
        if self.merge_mode is None:
            outs: tuple = (tuple(out), tuple(out))
        else:
            outs = (tuple(out),)
        if self.return_state:
            return (*outs, *states, *states)
        return outs[0] if self.merge_mode is not None else outs

    def compute_output_spec(self, sequences, initial_state=None, mask=None, training=None, **kwargs):
        shape = getattr(sequences, "shape", None)
        m = mask[0] if isinstance(mask, (list, tuple)) else mask
        if shape is not None and getattr(m, "shape", None) is not None:
            check_mask_shape(self.name, tuple(m.shape), tuple(shape))
        return super().compute_output_spec(sequences)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.return_sequences:
            out = [mask, mask] if self.merge_mode is None else mask
        else:
            out = [None, None] if self.merge_mode is None else None
        if self.return_state:
            n = len(getattr(self.forward_layer, "state_size", [])) * 2
            return [*(out if isinstance(out, list) else [out]), *[None] * n]
        return out

    def call(self, sequences, initial_state=None, mask=None, training=None):
        kwargs: dict[str, Any] = {}
        if training is not None:
            kwargs["training"] = training
        # As RNN.call: no mask= (``initial_state`` given) means unmasked, even if ``sequences`` carries one.
        if mask is not None:
            kwargs["mask"] = mask
        f_state = b_state = None
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            half = len(states) // 2
            f_state, b_state = states[:half], states[half:]
        y = self.forward_layer(sequences, initial_state=f_state, **kwargs)
        y_rev = self.backward_layer(sequences, initial_state=b_state, **kwargs)
        states_out: list[Value] = []
        if self.return_state:
            states_out = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences and not getattr(self.backward_layer, "_time_order_outputs", False):
            y_rev = _ops.flip_time(y_rev, 1)
        b = y.builder
        if self.merge_mode == "concat":
            out = b.op("Concat", [y, y_rev], axis=-1)
            if y.shape is not None and y_rev.shape is not None:
                last = y.shape[-1] + y_rev.shape[-1] if isinstance(y.shape[-1], int) and \
                    isinstance(y_rev.shape[-1], int) else None
                out.shape = (*y.shape[:-1], last)
        elif self.merge_mode == "sum":
            out = y + y_rev
        elif self.merge_mode == "ave":
            out = (y + y_rev) * 0.5
        elif self.merge_mode == "mul":
            out = y * y_rev
        else:
            out = None
        if out is not None:
            if out.shape is None:
                out.shape = y.shape
            outputs: list[Value] = [out]
        else:
            outputs = [y, y_rev]
        if self.return_sequences:
            for o in outputs:
                set_keras_mask(o, None if mask is None else _ops.to_bool(mask))
        if self.return_state:   # tuples, as Keras 3 returns them
            return (*outputs, *states_out)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def get_config(self):
        config = {**super().get_config(), "merge_mode": self.merge_mode, "layer": _serialize(self.forward_layer),
                  "backward_layer": _serialize(self.backward_layer)}
        return config

    @classmethod
    def from_config(cls, config: dict) -> Bidirectional:
        config = dict(config)
        layer = _deserialize(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        if backward is not None:
            backward = _deserialize(backward)
        return cls(layer, backward_layer=backward, **config)


class TimeDistributed(Layer):
    """Applies ``layer`` to every time step: ``(batch, time, ...)`` -> ``(batch, time, ...)``.

    The time axis is folded into the batch (one Reshape in, one out), so ``layer`` runs once over all
    steps, for any sequence length. A mask on the inputs is passed through to the outputs.

    Example:
        >>> from onnxforge.layers import Dense, Input
        >>> from onnxforge.layers.recurrent import TimeDistributed
        >>> TimeDistributed(Dense(5))(Input(shape=(None, 3))).shape
        (None, None, 5)
    """

    def __init__(self, layer: Any, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `TimeDistributed` layer with a `keras.layers.Layer` instance. "
                             f"Received: {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer
        self.supports_masking = True
        self.input_spec = InputSpec(min_ndim=3)

    def _child_shape(self, input_shape: Any) -> tuple:
        shape = tuple(input_shape)
        if len(shape) < 3:
            raise ValueError(f"`TimeDistributed` Layer \"{self.name}\" should be passed an `input_shape` with at "
                             f"least 3 dimensions (batch, time, ...). Received: input_shape={shape}")
        return (None, *shape[2:])

    def build(self, input_shape):
        child = self._child_shape(input_shape)
        if not self.layer.built:
            self.layer._maybe_build(child)
        prefix_weight_names(self.layer, self.name)  # also for an inner layer built from its own config
        self.built = True

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        child_out = self.layer.compute_output_shape(self._child_shape(shape))
        return (shape[0], shape[1], *tuple(child_out)[1:])

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask

    def call(self, inputs, training=None, mask=None):
        x = inputs
        b = x.builder
        if x.rank is not None and x.rank < 3:
            raise ValueError(f'Layer "{self.name}" expects inputs of rank >= 3 (batch, time, ...). '
                             f"Received: shape={x.shape}")
        lead = b.op("Shape", [x], start=0, end=2)
        rest = b.op("Shape", [x], start=2)
        flat_shape = b.op("Concat", [layer_ops.ints(b, [-1]), rest], axis=0)
        flat = b.op("Reshape", [x, flat_shape],
                    shape=None if x.shape is None else (None, *x.shape[2:]))
        kwargs = {"training": training} if training is not None else {}
        y = self.layer(flat, **kwargs)
        if not isinstance(y, Value):
            raise ValueError(f'Layer "{self.name}": the wrapped layer must return one tensor. Received: {y!r}')
        out_shape = b.op("Concat", [lead, b.op("Shape", [y], start=1)], axis=0)
        out = b.op("Reshape", [y, out_shape], dtype=y.dtype)
        if x.shape is not None and y.shape is not None:
            out.shape = (x.shape[0], x.shape[1], *y.shape[1:])
        if mask is None:
            mask = get_keras_mask(x)
        set_keras_mask(out, mask)
        return out

    def get_config(self):
        return {**super().get_config(), "layer": _serialize(self.layer)}

    @classmethod
    def from_config(cls, config: dict) -> TimeDistributed:
        config = dict(config)
        return cls(_deserialize(config.pop("layer")), **config)

