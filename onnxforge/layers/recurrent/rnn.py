"""``RNN``: runs a cell over the time axis of ``(batch, time, features)`` inputs (any ``(batch, time, ...)``
for a custom cell, whose states may have several axes too: ``nd_states``).

Two graph forms, one semantics:

* **Scan form** (training programs, and whenever a fused node cannot express the layer): one ONNX
  ``Scan`` over the time-major sequence. For the built-in cells the input half of every gate is one big
  MatMul over all steps *before* the loop; the body holds only the recurrent MatMul and the gate math,
  reading the weights as outer-scope captures (the Scan gradient rule accumulates their gradients). Batch
  size and sequence length are symbolic: one graph serves every length.
* **Fused form** (inference programs): one ONNX ``LSTM`` / ``GRU`` / ``RNN`` node (see ``fused``) when the
  cell is built-in with ONNX-expressible activations and no mask is given.

Masks follow Keras: on a masked step the states keep their previous values and the output repeats the
previous output (zeros before the first unmasked step), or is zero with ``zero_output_for_mask=True``.
"""
from __future__ import annotations

__all__ = ["RNN"]

from typing import Any

import numpy as np

from ... import ops as keras_ops
from ...graph import Value
from ...tracing import current_trace
from ...graph import emit as layer_ops
from ..base import InputSpec, Layer
from . import _ops, nd_states, stateful
from ._scan import scan
from .cells import _RecurrentCell
from .fused import fusable, fused_forward
from .stacked import StackedRNNCells, deserialize_cell, serialize_cell
from .masking import set_keras_mask


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def check_sequences_shape(name: str, shape: tuple, any_rank: bool = False) -> None:
    """Raise the Keras-style error for inputs that are not ``(batch, timesteps, features)`` (with ``any_rank``,
    ``(batch, timesteps, ...)``: a custom cell's steps) or have no step."""
    if len(shape) != 3 and not (any_rank and len(shape) > 3):
        wanted = "(batch, timesteps, ...), rank 3 or more" if any_rank else "(batch, timesteps, features), rank 3"
        raise ValueError(f'Layer "{name}" expects inputs of shape {wanted}. Received: shape={shape}')
    if shape[1] == 0:
        raise ValueError(f'Layer "{name}" got a zero-length sequence: there is no time step to run. '
                         f"Received: shape={shape}")


def check_mask_shape(name: str, mask_shape: tuple, shape: tuple) -> None:
    """Raise when a mask is not ``(batch, timesteps)`` matching inputs of shape ``shape``."""
    if len(mask_shape) != 2:
        raise ValueError(f'Layer "{name}": `mask` must have shape (batch, timesteps) to match inputs of '
                         f"shape {shape}. Received: mask shape={mask_shape}")
    for axis, what in ((0, "batch"), (1, "timesteps")):
        m, d = mask_shape[axis], shape[axis]
        if isinstance(m, int) and isinstance(d, int) and m != d:
            raise ValueError(f'Layer "{name}": the mask\'s {what} dim ({m}) does not match the inputs\' ({d}). '
                             f"Received: mask shape={mask_shape}, inputs shape={shape}")


def prefix_weight_names(layer: Layer, prefix: str) -> None:
    """Give ``layer``'s weights Keras 3 paths under an enclosing layer (``lstm/lstm_cell/kernel``)."""
    for w in layer.weights:
        if not w.path.startswith(prefix + "/"):
            w.path = f"{prefix}/{w.path}"


_serialize, _deserialize = serialize_cell, deserialize_cell


class RNN(Layer):
    """Base class for recurrent layers: ``cell`` applied at every time step (Keras 3 ``keras.layers.RNN``).

    Args:
        cell: a cell (``SimpleRNNCell``, ``LSTMCell``, ``GRUCell`` or any layer with ``call(inputs, states)``
            returning ``(output, new_states)`` and a ``state_size``).
        return_sequences: return the whole output sequence ``(batch, time, units)`` instead of the last
            output ``(batch, units)``.
        return_state: also return the final states (``[output, *states]``).
        go_backwards: process the sequence from its end; the returned sequence is in processing order.
        stateful: keep the final states of each batch as the initial states of the next (``stateful.py``;
            needs a static batch size); ``reset_states()`` zeroes them.
        unroll: accepted for compatibility; the loop is always an ONNX ``Scan`` (same results).
        zero_output_for_mask: masked steps output zeros instead of repeating the previous output.

    Call arguments:
        sequences: ``(batch, time, features)``.
        initial_state: a list of state tensors (``[h]``, or ``[h, c]`` for LSTM); zeros by default.
        mask: bool ``(batch, time)``; ``False`` marks a step to skip. Calling the layer passes the mask
            attached to ``sequences`` by an upstream ``Masking`` / ``Embedding(mask_zero=True)`` (see
            ``masking``) unless ``initial_state`` tensors are given too (Keras 3's rule for calls with
            several tensor arguments): then the steps run unmasked unless ``mask=`` is passed.
        training: enables ``dropout`` / ``recurrent_dropout`` of the cell.

    Attributes:
        fused: ``None`` (default) uses the fused ONNX node in inference programs whenever it can express
            the layer; ``False`` always uses ``Scan``; ``True`` makes an inexpressible configuration an
            error in inference programs. Training programs always use ``Scan``.

    Example:
        >>> from onnxforge.layers import Input
        >>> from onnxforge.layers.recurrent import RNN, LSTMCell
        >>> RNN(LSTMCell(8), return_sequences=True)(Input(shape=(None, 3))).shape
        (None, None, 8)
    """

    def __init__(self, cell: Any, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, **kwargs: Any):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)  # Keras wraps a list of cells the same way
        if not callable(getattr(cell, "call", None)) or getattr(cell, "state_size", None) is None:
            raise ValueError("Argument `cell` should have a `call` method and a `state_size` attribute. "
                             f"Received: cell={cell!r}")
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self._rnn_states: list | None = None   # untracked, as Keras's: not weights, not saved with them
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        # A custom cell may take steps of any rank (Keras 3's RNN slices any (batch, time, ...) sequence).
        self._any_rank = not isinstance(cell, (_RecurrentCell, StackedRNNCells))
        self.input_spec = InputSpec(min_ndim=3) if self._any_rank else InputSpec(ndim=3)
        self.fused: bool | None = None
        # Set by Bidirectional: a backward pass returns its sequence in input time order (no flip needed).
        self._time_order_outputs = False

    # ------------------------------------------------------------ sizes
    @property
    def state_size(self) -> list[Any]:
        if self._any_rank and not nd_states.is_vector_cell(self.cell):
            return [s if s is not None else -1 for s in nd_states.state_shapes(self.cell)]
        sizes = []
        for s in _as_list(self.cell.state_size):
            dims = list(s) if isinstance(s, (list, tuple)) or hasattr(s, "as_list") else [s]
            # A one-dimensional shape ((units,), tf.TensorShape([units])) is that vector's size; a state of more
            # dimensions is tf.keras 2's nested-state form, which Keras 3's RNN does not run either.
            if len(dims) != 1 or not isinstance(dims[0], (int, np.integer)) or isinstance(dims[0], bool):
                raise ValueError(f"Layer {self.name!r}: the cell's `state_size` must give one integer per state "
                                 f"(each state a vector of that size). Received: state_size={self.cell.state_size!r}")
            sizes.append(int(dims[0]))
        return sizes

    @property
    def _output_size(self) -> int:
        size = getattr(self.cell, "output_size", None)
        return int(size if size is not None else self.state_size[0])

    def _shapes(self) -> tuple[list[tuple | None], tuple | None]:
        """Each state's and the output's shape without the batch axis (``None`` where only a run tells)."""
        if not self._any_rank:
            return [(s,) for s in self.state_size], (self._output_size,)
        states = nd_states.state_shapes(self.cell)
        return states, nd_states.output_shape(self.cell, states)

    @property
    def states(self) -> list | None:
        """A stateful layer's state Variables (``None`` before it is built, or when not stateful)."""
        return self._rnn_states

    def reset_states(self) -> None:
        """Zero the states of a stateful layer (``reset_state`` is the same)."""
        stateful.zero_states(self)

    reset_state = reset_states

    # ------------------------------------------------------------ contract
    def build(self, sequences_shape, initial_state_shape=None):
        shape = tuple(sequences_shape)
        check_sequences_shape(self.name, shape, self._any_rank)
        if self.stateful and self._any_rank and not nd_states.is_vector_cell(self.cell):
            raise ValueError(f'Layer "{self.name}": stateful=True needs states that are vectors of known size. '
                             f"Received: a cell with state_size={self.cell.state_size!r}")
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell._maybe_build((shape[0], *shape[2:]))
            prefix_weight_names(self.cell, self.name)
        if self.stateful:
            if self._rnn_states is None:
                self._rnn_states = stateful.create_states(self, shape[0], shape)
            else:
                self.reset_states()
        self.built = True

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        check_sequences_shape(self.name, tuple(sequences_shape), self._any_rank)
        batch, time = tuple(sequences_shape)[:2]
        states, step = self._shapes()
        if step is None or any(s is None for s in states):
            raise ValueError(f'Layer "{self.name}": the output shape of a cell whose state_size is '
                             f"{self.cell.state_size!r} is known only when it runs (give the cell an `output_size` "
                             "and state sizes to build it on symbolic inputs)")
        out = (batch, time, *step) if self.return_sequences else (batch, *step)
        if self.return_state:
            return (out, *self._group_states([(batch, *s) for s in states], symbolic=True))
        return out

    def _annotate_output_shapes(self, first: Any, shapes: Any, outputs: Any) -> None:
        if self._any_rank and not nd_states.is_vector_cell(self.cell):
            return   # call() gave its outputs the shapes the traced cell produced
        super()._annotate_output_shapes(first, shapes, outputs)

    def _group_states(self, states: list, symbolic: bool = False) -> list:
        """Final states as Keras 3 returns them: flat for one cell; for stacked cells one list per cell when
        called on tensors (``[[h1, c1], [h2]]`` for an LSTM cell under a GRU cell), but on a functional
        model's inputs a cell with one state gives the tensor itself (``[[h1, c1], h2]``): Keras 3 builds
        those from ``compute_output_shape``, which unwraps a cell's single state size."""
        if not isinstance(self.cell, StackedRNNCells):
            return list(states)
        grouped, at = [], 0
        for n in self.cell.states_per_cell:
            grouped.append(states[at] if n == 1 and symbolic else list(states[at:at + n]))
            at += n
        return grouped

    def compute_output_spec(self, sequences, initial_state=None, mask=None, training=None, **kwargs):
        # Building a model on Inputs: check what call() would check, so a bad mask or initial state fails
        # when the model is built rather than when it is compiled.
        shape = getattr(sequences, "shape", None)
        if shape is not None:
            check_sequences_shape(self.name, tuple(shape), self._any_rank)
            m = _as_list(mask)[0] if mask is not None else None
            if m is not None and getattr(m, "shape", None) is not None:
                check_mask_shape(self.name, tuple(m.shape), tuple(shape))
            if initial_state is not None:
                self._check_state_shapes([getattr(t, "shape", None) for item in _as_list(initial_state)
                                          for t in _as_list(item)])
        return super().compute_output_spec(sequences)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        mask = _as_list(mask)[0] if mask is not None else None
        out = mask if self.return_sequences else None
        return [out] + [None] * len(self.state_size) if self.return_state else out

    # ------------------------------------------------------------ checks
    def _check_sequences(self, x: Value) -> None:
        if x.shape is not None:
            check_sequences_shape(self.name, tuple(x.shape), self._any_rank)
        time = x.shape[1] if x.shape is not None else None
        if isinstance(time, str):
            # A symbolic length is checked on the host before each run (a Scan over zero steps fails
            # inside onnxruntime, a fused node returns garbage).
            current_trace().require_dim(time, 1, f'Layer "{self.name}" got a zero-length sequence: there is no '
                                                  "time step to run.")

    def _check_mask(self, mask: Any, x: Value) -> Value | None:
        if mask is None:
            return None
        mask = _as_list(mask)[0]
        if mask is None:
            return None
        if not isinstance(mask, Value):
            raise ValueError(f'Layer "{self.name}": `mask` must be a graph tensor of shape (batch, timesteps). '
                             f"Received: mask={mask!r}")
        if mask.shape is not None:
            shape = tuple(x.shape) if x.shape is not None else (None, None, None)
            check_mask_shape(self.name, tuple(mask.shape), shape)
            m, d = mask.shape[1], shape[1]
            if isinstance(m, str) and isinstance(d, str) and m != d:
                # Two symbolic lengths (a mask fed as its own input): compared on the host before each run.
                current_trace().require_equal_dims(m, d, f'Layer "{self.name}": the mask\'s timesteps dim does '
                                                         "not match the inputs'.")
        return _ops.to_bool(mask)

    def _check_state_shapes(self, shapes: list) -> None:
        sizes, expected = self.state_size, self._shapes()[0]
        if len(shapes) != len(sizes):
            raise ValueError(f'Layer "{self.name}" expects {len(sizes)} initial state tensor(s) of sizes {sizes}. '
                             f"Received: {len(shapes)} initial state(s)")
        for k, (shape, want) in enumerate(zip(shapes, expected)):
            if shape is None or want is None:
                continue
            if len(shape) != 1 + len(want) or any(isinstance(d, int) and d != w for d, w in zip(shape[1:], want)):
                raise ValueError(f'Layer "{self.name}": initial_state[{k}] must have shape '
                                 f"{('batch', *want)}. Received: shape={tuple(shape)}".replace("'batch'", "batch"))

    def _initial_states(self, x: Value, initial_state: Any) -> list[Value] | None:
        if initial_state is None:
            return None
        # Stacked cells take their states per cell ([[h1, c1], h2]) or flat, as Keras accepts both.
        states = [s for item in _as_list(initial_state) for s in _as_list(item)]
        for k, s in enumerate(states):
            if not isinstance(s, Value):
                raise ValueError(f'Layer "{self.name}": initial_state[{k}] must be a graph tensor. Received: {s!r}')
        self._check_state_shapes([s.shape if s.rank is not None else None for s in states])
        out = []
        for s in states:
            if s.dtype != x.dtype:
                s = s.builder.op("Cast", [s], to=x.dtype, shape=s.shape)
            out.append(s)
        return out

    def _use_fused(self, mask: Value | None) -> bool:
        ctx = current_trace()
        if ctx.training or self.fused is False:
            return False
        reason = "a mask was given (ONNX recurrent nodes have no per-step mask)" if mask is not None \
            else fusable(self.cell)
        if reason is not None and self.fused is True:
            raise ValueError(f'Layer "{self.name}" cannot run as a fused ONNX node: {reason}. '
                             "Received: fused=True")
        return reason is None

    # ------------------------------------------------------------ call
    def call(self, sequences, initial_state=None, mask=None, training=False):
        x = sequences
        self._check_sequences(x)
        # Only the mask Keras passes is used: a call with ``initial_state`` tensors has two tensor arguments,
        # so Keras 3 passes no ``mask=`` and the steps run unmasked although ``sequences`` carries one.
        mask = self._check_mask(mask, x)
        states0 = self._initial_states(x, initial_state)
        if states0 is None and self.stateful:
            states0 = stateful.read_states(self, x)
        ctx = current_trace()
        # Every loss gets the cell's weight penalties, evaluation's too: Keras 3 reports them in val_loss.
        if isinstance(self.cell, Layer):
            self.cell._add_regularization(ctx, [])
        if self._use_fused(mask):
            seq, states = fused_forward(self.cell, x, states0, self.go_backwards, self.return_sequences,
                                        time_order=self._time_order_outputs)
            last = states[0]
        else:
            seq, last, states = self._scan_forward(x, states0, mask, bool(training))
        batch = x.shape[0] if x.shape else None
        shapes, step_shape = self._shapes()
        for s, shape in zip(states, shapes):
            if shape is not None:
                s.shape = (batch, *shape)
        step_shape = step_shape if step_shape is not None else tuple(last.shape[1:]) if last.shape else None
        if self.stateful:
            stateful.write_states(self, states)
        if self.return_sequences:
            if step_shape is not None:
                seq.shape = (batch, x.shape[1] if x.shape else None, *step_shape)
            set_keras_mask(seq, mask)
            output = seq
        else:
            if self.return_state and any(last is s for s in states):
                # Keras returns the last output and the state as two tensors; two graph outputs need two names.
                last = x.builder.op("Identity", [last], dtype=last.dtype)
            output = last
            if step_shape is not None:
                output.shape = (batch, *step_shape)
        if self.return_state:
            return (output, *self._group_states(states))     # a tuple, as Keras 3's RNN returns
        return output

    def _scan_forward(self, x: Value, states0: list[Value] | None, mask: Value | None,
                      training: bool) -> tuple[Value | None, Value, list[Value]]:
        """``(sequence or None, last output, final states)`` computed by one Scan."""
        b, cell = x.builder, self.cell
        batch = _ops.dim(x, 0)
        # Built-in cells split into projection + step; a subclass that overrides call() is run as written.
        fast = isinstance(cell, _RecurrentCell) and type(cell).call is _RecurrentCell.call
        given = states0 is not None
        if states0 is None:
            states0 = self._zero_states(x, batch)
        batch_dim, time_dim = (x.shape[0], x.shape[1]) if x.shape is not None else (None, None)
        shapes, step_shape = self._shapes()
        for s, shape in zip(states0, shapes):
            if shape is not None and (s.shape is None or s.shape[0] is None):
                s.shape = (batch_dim, *shape)
        if step_shape is None:   # Keras's rule: a cell without output_size outputs its first state's shape
            step_shape = tuple(states0[0].shape[1:]) if states0[0].shape is not None else None
        if carry_out_needed := (not fast or (mask is not None and given)):
            if step_shape is None or not all(isinstance(d, int) for d in step_shape):
                raise ValueError(f'Layer "{self.name}": the shape of the cell\'s output must be known (give the '
                                 f"cell an `output_size`). Received: state_size={cell.state_size!r}")
        x_tm = layer_ops.transpose(x, nd_states.time_major(x.shape or (None,) * 3))
        if fast:
            in_mask, rec_mask = cell._dropout_masks(x, batch, training)
            seq_in = cell._project(x_tm, in_mask)  # every gate's input part for all steps: one MatMul
            consts = cell._step_constants(rec_mask)

            def cell_step(x_t: Value, states: list[Value]) -> tuple[Value, list[Value]]:
                return cell._step_with(x_t, states, consts)
        else:
            seq_in = x_tm

            def cell_step(x_t: Value, states: list[Value]) -> tuple[Value, list[Value]]:
                out, new = cell(x_t, states, training=training)
                return out, _as_list(new)

        # The previous output is its own loop state when it can differ from the first state: a custom
        # cell, or a mask with an initial state (Keras's first "previous output" is zeros).
        carry_out = carry_out_needed
        n = len(states0)
        init = list(states0)
        if carry_out:
            init.append(_ops.zeros(b, [batch, *step_shape], x.dtype, shape=(batch_dim, *step_shape)))
        sequences = [seq_in]
        if mask is not None:
            m_tm = b.op("Transpose", [mask], perm=[1, 0])
            sequences.append(b.op("Unsqueeze", [m_tm, layer_ops.ints(b, [2])], shape=(time_dim, batch_dim, 1)))
        zero_out = self.zero_output_for_mask and mask is not None

        def step(states: list[Value], inputs: list[Value]) -> tuple[list[Value], list[Value]]:
            core = states[:n]
            out, new = cell_step(inputs[0], core)
            if len(new) != n:
                raise ValueError(f'Layer "{self.name}": the cell returned {len(new)} states, expected {n}.')
            prev = states[n] if carry_out else core[0]
            if carry_out and out.shape is not None and nd_states.contradicts(prev.shape, out.shape):
                raise ValueError(f'Layer "{self.name}": the cell returned an output of shape {tuple(out.shape)}, '
                                 f"but its output_size / first state says {tuple(prev.shape)}")
            y = out
            if mask is not None:
                sb, m = out.builder, inputs[1]
                new = [sb.op("Where", [nd_states.mask_for(sb, m, s_old), s_new, s_old], dtype=s_old.dtype,
                             shape=s_old.shape) for s_new, s_old in zip(new, core)]
                # A masked step repeats the previous output.
                out = sb.op("Where", [nd_states.mask_for(sb, m, prev), out, prev], dtype=prev.dtype, shape=prev.shape)
                y = y * sb.op("Cast", [nd_states.mask_for(sb, m, y)], to=y.dtype) if zero_out else out
            carried = list(new) + ([out] if carry_out else [])
            return carried, ([y] if self.return_sequences else [])

        finals, stacked = scan(b, step, init, sequences, num_outputs=int(self.return_sequences),
                               reverse=self.go_backwards, outputs_in_time_order=self._time_order_outputs,
                               name=self.name)
        states = finals[:n]
        last = finals[n] if carry_out else states[0]
        if zero_out:
            # Keras zeroes the last output too when the last processed step is masked.
            t_last = b.const(np.asarray(0 if self.go_backwards else -1, np.int64))
            m_last = b.op("Gather", [mask, t_last], axis=1)
            m_last = b.op("Unsqueeze", [b.op("Cast", [m_last], to=x.dtype), layer_ops.ints(b, [1])])
            last = last * nd_states.mask_for(b, m_last, last)
        seq = layer_ops.transpose(stacked[0], nd_states.time_major(x.shape or (None,) * 3)) \
            if self.return_sequences else None
        return seq, last, states

    def get_initial_state(self, batch_size: Any) -> list[Any]:
        """Zero states for a batch: one ``(batch_size, size)`` tensor per entry of ``state_size``.

        ``batch_size`` is an int or a scalar tensor, as in Keras 3; tf.keras 2 programs (TensorFlow's text
        generation tutorial) pass the layer's inputs instead, whose first dimension is then the batch size.

        Example:
            >>> from onnxforge import layers
            >>> [s.shape for s in layers.LSTM(4).get_initial_state(2)]
            [TensorShape([2, 4]), TensorShape([2, 4])]
        """
        if getattr(batch_size, "ndim", getattr(batch_size, "rank", 0)):
            batch_size = keras_ops.shape(batch_size)[0]
        own = getattr(self.cell, "get_initial_state", None)
        if self._any_rank and callable(own):   # Keras asks a custom cell that has one
            states = own(batch_size=batch_size)
            return list(states) if isinstance(states, (list, tuple)) else [states]
        dtype = getattr(self.cell, "compute_dtype", None) or "float32"
        return [keras_ops.zeros((batch_size, *shape), dtype=dtype) for shape in self._shapes()[0]]

    def _zero_states(self, x: Value, batch: Value) -> list[Value]:
        get = getattr(self.cell, "get_initial_state", None)
        if isinstance(self.cell, _RecurrentCell):
            return get(batch)
        if self._any_rank and callable(get):
            # A custom cell's own initial states (ConvLSTM-style cells: the only place their shapes are given),
            # called with the batch size as a scalar, as Keras calls it; cast to the sequences' dtype.
            scalar = x.builder.op("Squeeze", [batch, layer_ops.ints(x.builder, [0])], shape=())
            got = get(batch_size=scalar)
            states = [s.__onnx_value__() if hasattr(s, "__onnx_value__") else s for s in _as_list(got)]
            if not all(isinstance(s, Value) for s in states):
                states = [s if isinstance(s, Value) else x.builder.const(np.asarray(s)) for s in states]
            return [s if s.dtype == x.dtype else x.builder.op("Cast", [s], to=x.dtype, shape=s.shape) for s in states]
        shapes = self._shapes()[0]
        if any(s is None for s in shapes):
            raise ValueError(f'Layer "{self.name}": the cell\'s state_size {self.cell.state_size!r} gives no state '
                             "shape; give the cell a `get_initial_state(batch_size)` or pass `initial_state`")
        return [_ops.zeros(x.builder, [batch, *s], x.dtype, shape=(None, *s)) for s in shapes]

    # ------------------------------------------------------------ config
    def get_config(self):
        return {**super().get_config(), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards, "stateful": self.stateful,
                "unroll": self.unroll, "zero_output_for_mask": self.zero_output_for_mask,
                "cell": _serialize(self.cell)}

    @classmethod
    def from_config(cls, config: dict) -> RNN:
        config = dict(config)
        return cls(_deserialize(config.pop("cell")), **config)

