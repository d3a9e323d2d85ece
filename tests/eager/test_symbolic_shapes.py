"""Sizes known only at run time, used the way Keras code uses them: ``ops.shape(x)[0]`` (or ``x.shape[0]``,
the batch symbol) in reshapes, random draws, ``arange``, masks, slices and tiles, inside ``call()`` traced
into training and inference graphs, inside a custom ``train_step``, and in eager calls."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of
from onnxforge import ops

RNG = np.random.default_rng(4)
X = RNG.normal(size=(5, 4, 2)).astype("float32")


class ShapeMath(of.layers.Layer):
    """Every pattern at once; the output is deterministic (the noise is multiplied by zero)."""

    def call(self, x):
        n = ops.shape(x)[0]
        steps = ops.shape(x)[1]
        flat = ops.reshape(x, (n, -1))                                   # (n, 8)
        flat2 = ops.reshape(x, (x.shape[0], -1))                         # the batch symbol itself
        noise = ops.random.normal((n, 8))
        positions = ops.expand_dims(ops.arange(steps), 0)                # (1, 4)
        lengths = ops.expand_dims(ops.cast(ops.sum(ops.ones((n, 2)), axis=1), "int64"), 1)   # (n, 1) of 2s
        mask = ops.cast(ops.less(positions, lengths), "float32")        # (n, 4): first two steps
        first = ops.slice(x, (0, 0, 0), (n, 1, 2))                      # (n, 1, 2)
        tiled = ops.tile(ops.reshape(first, (n, 2)), [1, steps])         # (n, 8)
        tail = ops.slice(x, (0, 1, 0), (n, steps - 1, 2))                # (n, 3, 2): a size from a shape
        zeros = ops.zeros((n, ops.shape(tail)[1] * 2 + 2))               # (n, 8)
        padded_tail = ops.concatenate([ops.reshape(tail, (n, 6)), ops.zeros((n, 2))], axis=1)
        return flat + 0.0 * noise + flat2 + tiled + zeros + ops.concatenate([mask, mask], axis=1) + padded_tail

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 8)


def _expected(x):
    n = x.shape[0]
    flat = x.reshape(n, -1)
    mask = np.tile(np.array([1, 1, 0, 0], np.float32), (n, 1))
    tiled = np.tile(x[:, 0, :], (1, 4))
    tail = np.concatenate([x[:, 1:, :].reshape(n, 6), np.zeros((n, 2), np.float32)], axis=1)
    return 2 * flat + tiled + np.concatenate([mask, mask], axis=1) + tail


def _model():
    inp = of.Input((4, 2))
    return of.Model(inp, ShapeMath()(inp))


def test_shapes_in_call_predict_and_eager_for_any_batch():
    model = _model()
    for n in (5, 2):
        np.testing.assert_allclose(model.predict(X[:n], verbose=0), _expected(X[:n]), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(model(X[:n]), _expected(X[:n]), rtol=1e-6, atol=1e-6)


def test_shapes_in_call_train_with_the_dynamic_batch():
    model = _model()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(X, _expected(X), batch_size=2, epochs=1, verbose=0)   # batches of 2, 2 and 1
    assert history.history["loss"][0] == pytest.approx(0.0, abs=1e-10)


class StepShapes(of.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = of.layers.Dense(1)

    def train_step(self, data):
        x, y = data
        n = ops.shape(x)[0]
        flat = ops.reshape(x, (n, -1))
        noise = ops.random.uniform((n, 8), seed=1)
        weights = ops.cast(ops.less(ops.arange(n), 2), "float32")    # the first two samples of each batch
        with of.GradientTape() as tape:
            err = ops.square(ops.subtract(self.dense(ops.add(flat, ops.multiply(0.0, noise))), y))
            loss = ops.divide(ops.sum(ops.multiply(ops.reshape(err, (n,)), weights)), ops.sum(weights))
        grads = tape.gradient(loss, self.dense.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.dense.trainable_weights))
        return {"loss": loss, "batch": ops.cast(n, "float32")}


def test_shapes_in_a_custom_train_step():
    model = StepShapes()
    model.compile(optimizer=of.optimizers.SGD(0.0))
    y = RNG.normal(size=(5, 1)).astype("float32")
    model.dense.build((None, 8))
    logs = model.train_on_batch(X[:3], y[:3], return_dict=True)
    assert logs["batch"] == 3.0
    pred = X[:3].reshape(3, -1) @ model.dense.kernel.numpy() + model.dense.bias.numpy()
    assert logs["loss"] == pytest.approx(float(np.mean((pred[:2] - y[:2]) ** 2)), rel=1e-5)


def _causal_attention_mask(batch_size, n_dest, n_src, dtype):
    """keras.io's miniature GPT builds its mask this way: the repeats of ``ops.tile`` are a 1-D tensor."""
    i = ops.arange(n_dest)[:, None]
    j = ops.arange(n_src)
    mask = ops.reshape(ops.cast(i >= j - n_src + n_dest, dtype), [1, n_dest, n_src])
    mult = ops.concatenate([ops.expand_dims(batch_size, -1), ops.convert_to_tensor([1, 1])], 0)
    return ops.tile(mask, mult)


class CausalMask(of.layers.Layer):
    def call(self, x):
        shape = ops.shape(x)
        return _causal_attention_mask(shape[0], shape[1], shape[1], "float32") * ops.expand_dims(x, -1)


def test_tile_by_a_tensor_of_repeats_in_a_traced_mask():
    inp = of.Input((4,))
    model = of.Model(inp, CausalMask()(inp))
    for n in (3, 1):
        x = RNG.normal(size=(n, 4)).astype("float32")
        want = np.tril(np.ones((4, 4), np.float32))[None] * x[:, :, None]
        np.testing.assert_array_equal(model.predict(x, verbose=0), want)


@pytest.mark.parametrize("reps", [2, [3], [2, 1], [2, 1, 3], (1, 2, 1, 2), np.array([1, 2])])
def test_tile_aligns_repeats_and_axes_as_numpy(reps):
    x = RNG.normal(size=(2, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(ops.tile(x, reps)), np.tile(x, reps))
