"""Recurrent layers: cells, the ``RNN`` wrapper, ``SimpleRNN`` / ``LSTM`` / ``GRU``, ``Bidirectional``,
``TimeDistributed`` and ``Masking``.

Training programs run the recurrence as one ONNX ``Scan`` over a symbolic time axis (differentiated by
onnxforge's Scan gradient rule); inference programs use the fused ONNX ``LSTM`` / ``GRU`` / ``RNN`` nodes
where they express the layer.
"""
from __future__ import annotations

from .cells import GRUCell, LSTMCell, SimpleRNNCell
from .conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from .layers import GRU, LSTM, SimpleRNN
from .masking import Masking, get_keras_mask, set_keras_mask
from .rnn import RNN
from .stacked import StackedRNNCells
from .wrappers import Bidirectional, TimeDistributed

__all__ = ["RNN", "StackedRNNCells", "SimpleRNNCell", "LSTMCell", "GRUCell", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed", "Masking",
           "get_keras_mask", "set_keras_mask", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]
