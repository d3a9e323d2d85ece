"""``SimpleRNN``, ``LSTM`` and ``GRU``: an ``RNN`` around the matching cell, with Keras 3 arguments."""
from __future__ import annotations

__all__ = ["SimpleRNN", "LSTM", "GRU"]

from typing import Any

from ... import regularizers as regularizers_mod
from .cells import GRUCell, LSTMCell, SimpleRNNCell, _RecurrentCell
from .rnn import RNN

_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask")
_LAYER_ARGS = ("name", "trainable", "dtype", "autocast", "activity_regularizer", "input_shape",
               "batch_input_shape", "input_dim", "batch_size")


def _arguments(frame: dict[str, Any]) -> dict[str, Any]:
    """A subclass constructor's named arguments (its ``locals()``), for ``_CellLayer.__init__``."""
    return {k: v for k, v in frame.items() if k not in ("self", "units", "kwargs", "__class__")}


class _CellLayer(RNN):
    """An RNN whose constructor takes its cell's arguments (Keras's SimpleRNN / LSTM / GRU pattern)."""

    _cell_class: type[_RecurrentCell]
    _cell_name: str

    def __init__(self, units: int, **kwargs: Any):
        kwargs.pop("use_cudnn", None)  # a backend choice in Keras; onnxforge picks the graph form itself
        rnn_kwargs = {k: kwargs.pop(k) for k in _RNN_ARGS + _LAYER_ARGS if k in kwargs}
        cell = self._cell_class(units, name=self._cell_name, dtype=rnn_kwargs.get("dtype"),
                                trainable=rnn_kwargs.get("trainable", True), **kwargs)
        super().__init__(cell, **rnn_kwargs)

    def __getattr__(self, name: str) -> Any:
        # units, activation, dropout, kernel, ... read through to the cell, as Keras's properties do.
        if name.startswith("_") or name == "cell":
            raise AttributeError(name)
        cell = self.__dict__.get("cell")
        if cell is not None and hasattr(cell, name):
            return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self):
        config = super().get_config()
        cell_config = dict(config.pop("cell")["config"])
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        # Keras's SimpleRNN / LSTM / GRU write activity_regularizer even when it is None.
        activity = regularizers_mod.serialize(self.activity_regularizer)
        return {**config, **cell_config, "activity_regularizer": activity}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class SimpleRNN(_CellLayer):
    """Fully connected RNN whose output is fed back: ``h_t = activation(x_t W + h_{t-1} U + b)``.

    Args:
        units: output size. Other arguments: see ``SimpleRNNCell`` and ``RNN``.

    Example:
        >>> from onnxforge.layers import Input
        >>> from onnxforge.layers.recurrent import SimpleRNN
        >>> SimpleRNN(4, return_sequences=True)(Input(shape=(10, 8))).shape
        (None, 10, 4)
    """

    _cell_class = SimpleRNNCell
    _cell_name = "simple_rnn_cell"

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False, seed: int | None = None,
                 **kwargs: Any):
        # Keras's positional order, so ``SimpleRNN(8, "relu")`` binds as it does there.
        super().__init__(units, **_arguments(locals()), **kwargs)


class LSTM(_CellLayer):
    """Long short-term memory (Hochreiter 1997); with ``return_state`` the states are ``[h, c]``.

    Args:
        units: output size. Other arguments: see ``LSTMCell`` and ``RNN``.

    Example:
        >>> from onnxforge.layers import Input
        >>> from onnxforge.layers.recurrent import LSTM
        >>> out, h, c = LSTM(4, return_state=True)(Input(shape=(None, 8)))
        >>> out.shape, c.shape
        ((None, 4), (None, 4))
    """

    _cell_class = LSTMCell
    _cell_name = "lstm_cell"

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: int | None = None, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 unroll: bool = False, use_cudnn: Any = "auto", **kwargs: Any):
        super().__init__(units, **_arguments(locals()), **kwargs)


class GRU(_CellLayer):
    """Gated recurrent unit (Cho 2014), ``reset_after=True`` by default (cuDNN / ONNX compatible).

    Args:
        units: output size. Other arguments: see ``GRUCell`` and ``RNN``.

    Example:
        >>> from onnxforge.layers import Input
        >>> from onnxforge.layers.recurrent import GRU
        >>> layer = GRU(4); _ = layer(Input(shape=(None, 8)))
        >>> [tuple(w.shape) for w in layer.weights]
        [(8, 12), (4, 12), (2, 12)]
    """

    _cell_class = GRUCell
    _cell_name = "gru_cell"

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False, reset_after: bool = True,
                 use_cudnn: Any = "auto", **kwargs: Any):
        super().__init__(units, **_arguments(locals()), **kwargs)
