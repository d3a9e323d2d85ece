"""keras.io's "Working with RNNs": stacked built-in layers, an encoder's states as a decoder's
``initial_state``, cross-batch statefulness with ``reset_states`` and state reuse, Bidirectional layers,
``RNN(LSTMCell)`` against ``LSTM``, a custom cell with two states of different sizes trained with ``fit``,
stacked custom cells, and a clear error for tf.keras 2's multi-dimensional states (which Keras 3 does not
run either).
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_examples.harness import assert_close, run_both, to_numpy

RNG = np.random.default_rng(0)


def _flat(prefix, values) -> dict:
    values = values if isinstance(values, (list, tuple)) else [values]
    return {f"{prefix}{i}_{j}": float(v) for i, a in enumerate(values) for j, v in enumerate(to_numpy(a).ravel())}


def built_in_layers(keras_api, data, init):
    layers = keras_api.layers
    stack = keras_api.Sequential([keras_api.Input((None,)), layers.Embedding(input_dim=30, output_dim=4),
                                  layers.GRU(6, return_sequences=True), layers.SimpleRNN(5), layers.Dense(3)])
    init(stack)
    out = _flat("stack", stack.predict(data["ids"], verbose=0))

    encoder_input = layers.Input(shape=(None,))
    embedded = layers.Embedding(input_dim=30, output_dim=4)(encoder_input)
    _, state_h, state_c = layers.LSTM(5, return_state=True, name="encoder")(embedded)
    decoder_input = layers.Input(shape=(None,))
    decoded = layers.LSTM(5, name="decoder")(layers.Embedding(input_dim=40, output_dim=4)(decoder_input),
                                             initial_state=[state_h, state_c])
    seq2seq = keras_api.Model([encoder_input, decoder_input], layers.Dense(3)(decoded))
    init(seq2seq)
    out.update(_flat("seq2seq", seq2seq.predict([data["ids"], data["ids"][:, :3]], verbose=0)))

    bidirectional = keras_api.Sequential([keras_api.Input((5, 6)),
                                          layers.Bidirectional(layers.LSTM(4, return_sequences=True)),
                                          layers.Bidirectional(layers.LSTM(3)), layers.Dense(2)])
    init(bidirectional)
    out.update(_flat("bidir", bidirectional.predict(data["seq"], verbose=0)))

    def classifier(cell):
        rnn = layers.RNN(layers.LSTMCell(4)) if cell else layers.LSTM(4)
        return keras_api.Sequential([keras_api.Input((None, 6)), rnn, layers.BatchNormalization(), layers.Dense(3)])

    for tag, cell in (("layer", False), ("cell", True)):
        model = classifier(cell)
        init(model)
        model.compile(loss=keras_api.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="sgd",
                      metrics=["accuracy"])
        history = model.fit(data["seq"], data["labels"], batch_size=4, epochs=1, shuffle=False, verbose=0)
        out.update({f"{tag}_{k}": float(v[0]) for k, v in history.history.items()})
    return out


def test_built_in_rnn_layers_match_keras():
    data = {"ids": RNG.integers(0, 30, (2, 5)), "seq": RNG.random((8, 5, 6)).astype("float32"),
            "labels": RNG.integers(0, 3, 8)}
    want, got = run_both(built_in_layers, data, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)
    assert_close(want, got, rtol=1e-4, keys=["layer_loss", "cell_loss"])


def statefulness(keras_api, data, init):
    layers = keras_api.layers
    lstm_layer = layers.LSTM(4, stateful=True)
    lstm_layer(data[0])
    init(lstm_layer)
    lstm_layer.reset_states()
    out = {}
    for i, paragraph in enumerate(data):
        out.update(_flat(f"para{i}_", lstm_layer(paragraph)))
    existing_state = lstm_layer.states
    out.update(_flat("state", existing_state))
    new_layer = layers.LSTM(4)
    new_layer(data[0])
    init(new_layer)
    out.update(_flat("reuse", new_layer(data[2], initial_state=existing_state)))
    lstm_layer.reset_states()
    out["after_reset"] = float(np.abs(to_numpy(lstm_layer.states[0])).sum())
    # A stateful model carries its state from one predict batch to the next (Keras on torch cannot fit one:
    # its in-place state update breaks autograd, so the comparison stays with inference).
    model = keras_api.Sequential([keras_api.Input(batch_shape=(3, 4, 5)), layers.LSTM(4, stateful=True),
                                  layers.Dense(1)])
    init(model)
    out.update(_flat("predict", model.predict(np.concatenate(data), batch_size=3, verbose=0)))
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()
    out.update(_flat("predict_reset", model.predict(data[0], batch_size=3, verbose=0)))
    return out


def test_stateful_layers_and_state_reuse_match_keras():
    data = [RNG.random((3, 4, 5)).astype("float32") for _ in range(3)]
    want, got = run_both(statefulness, data, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def custom_cells(keras_api, data, init):
    layers, ops = keras_api.layers, keras_api.ops

    class TwoStateCell(layers.Layer):
        """Two states of different sizes, one a running sum of the outputs (Keras 3's form of nested states)."""

        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = [units, 2 * units]
            self.output_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="uniform", name="kernel")

        def call(self, inputs, states):
            h, total = states
            out = ops.tanh(ops.matmul(inputs, self.kernel) + h)
            return out, [out, total + ops.concatenate([out, 2.0 * out], axis=-1)]

    x = keras_api.Input((None, 5))
    h0, t0 = keras_api.Input((3,)), keras_api.Input((6,))
    rnn = layers.RNN(TwoStateCell(3), return_sequences=True, return_state=True)
    model = keras_api.Model([x, h0, t0], rnn(x, initial_state=[h0, t0]))
    init(model)
    out = _flat("two_state", model.predict([data["a"][:2], np.ones((2, 3)), np.ones((2, 6))], verbose=0))
    trained = keras_api.Model([x, h0, t0], layers.Dense(2)(rnn(x, initial_state=[h0, t0])[0][:, -1]))
    init(trained)
    trained.compile(optimizer="adam", loss="mse")
    history = trained.fit([data["a"], np.zeros((8, 3)), np.zeros((8, 6))], data["t"], batch_size=4, shuffle=False,
                          verbose=0)
    out["two_state_loss"] = float(history.history["loss"][0])

    class MinimalRNNCell(layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="uniform", name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="uniform",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            output = ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent_kernel)
            return output, [output]

    x = keras_api.Input((None, 5))
    stacked = keras_api.Model(x, layers.RNN([MinimalRNNCell(4), MinimalRNNCell(3)], return_sequences=True,
                                            return_state=True)(x))
    init(stacked)
    out.update(_flat("stacked", stacked.predict(data["a"][:2], verbose=0)))
    return out


def test_custom_cells_match_keras():
    data = {"a": RNG.random((8, 4, 5)), "t": RNG.random((8, 2))}
    want, got = run_both(custom_cells, data, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def test_multi_dimensional_cell_states_run_as_in_tf_keras():
    """A state_size entry given as a shape ((2, 3)) is a state of that shape per sample, as tf.keras 2 read it and
    keras.io's temporal latent bottleneck uses it; Keras 3 on torch fails inside torch.zeros on it, so the oracle
    is the recurrence written out in NumPy."""
    from tests.keras_examples.harness import fkeras

    class GridStateCell(fkeras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.state_size = [3, (2, 3)]

        def call(self, inputs, states):
            h, grid = states
            grid = grid + fkeras.ops.expand_dims(inputs, 1)
            h = h + inputs + fkeras.ops.sum(grid, axis=1)
            return h, [h, grid]

    x = RNG.random((2, 4, 3)).astype("float32")
    seq, h_last, grid_last = fkeras.layers.RNN(GridStateCell(), return_sequences=True, return_state=True)(x)
    h, grid, want = np.zeros((2, 3), np.float32), np.zeros((2, 2, 3), np.float32), []
    for t in range(x.shape[1]):
        grid = grid + x[:, t, None, :]
        h = h + x[:, t] + grid.sum(axis=1)
        want.append(h)
    np.testing.assert_allclose(np.asarray(seq), np.stack(want, axis=1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(h_last), h, rtol=1e-5)
    assert np.asarray(grid_last).shape == (2, 2, 3)
    np.testing.assert_allclose(np.asarray(grid_last), grid, rtol=1e-5)


def test_tf_device_scope_of_the_guide_builds_and_predicts_on_the_cpu():
    """``with tf.device("CPU:0"):`` around building a model and ``predict_on_batch`` (the guide's CuDNN section)
    under ``import onnxforge as tf`` (the regression: ``tf.device`` did not exist)."""
    import onnxforge as tf

    def build_model():
        return tf.keras.Sequential([tf.keras.Input((None, 6)), tf.keras.layers.LSTM(4),
                                    tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(3)])

    model = build_model()
    sample = RNG.random((5, 6)).astype("float32")
    with tf.device("CPU:0"):
        cpu_model = build_model()
        cpu_model.set_weights(model.get_weights())
        result = tf.argmax(cpu_model.predict_on_batch(tf.expand_dims(sample, 0)), axis=1)
    np.testing.assert_array_equal(np.asarray(result), np.argmax(model.predict_on_batch(sample[None]), axis=1))
    with pytest.raises(ValueError, match="device_name"):
        tf.device("TPU-ish")
