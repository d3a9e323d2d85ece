"""Calls from keras.io's vision programs (examples/vision, m-z) that onnxforge once failed, against Keras 3.

Each test builds the same small model in both frameworks, copies Keras's weights and compares predictions:
the "ViT on small datasets" page's constant diagonal ``attention_mask`` (built once with ``ops.eye`` outside
the model) and its ``MultiHeadAttention`` subclass that overrides ``_compute_attention`` with a trainable
temperature and Keras's ``_masked_softmax`` / ``_dropout_layer`` / einsum-equation attributes.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from .common import LIBS, copy_weights, keras, fkeras

T, DIM = 5, 6


def _lsa_class(api):
    """The page's locality self-attention, with Keras 3.15's ``_compute_attention`` arguments."""
    class LSA(api.layers.MultiHeadAttention):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.tau = api.Variable(math.sqrt(float(self._key_dim)), trainable=True)

        def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                               return_attention_scores=False):
            query = api.ops.multiply(query, 1.0 / self.tau)
            scores = api.ops.einsum(self._dot_product_equation, key, query)
            scores = self._masked_softmax(scores, attention_mask)
            dropped = self._dropout_layer(scores, training=training)
            return api.ops.einsum(self._combine_equation, dropped, value), scores
    return LSA


def _model(api, subclass: bool, mask_kind: str):
    ops = api.ops
    if mask_kind == "int8":
        mask = ops.cast([1 - ops.eye(T)], dtype="int8")
    else:
        mask = np.tril(np.ones((1, T, T), bool))
    inputs = api.Input((T, DIM))
    layer = (_lsa_class(api) if subclass else api.layers.MultiHeadAttention)(num_heads=2, key_dim=4, dropout=0.1)
    out, scores = layer(inputs, inputs, attention_mask=mask, return_attention_scores=True)
    return api.Model(inputs, [out, scores])


@pytest.mark.parametrize("subclass,mask_kind", [(True, "int8"), (False, "int8"), (False, "bool")])
def test_constant_attention_mask_and_compute_attention_override(subclass, mask_kind):
    x = np.random.default_rng(0).normal(size=(3, T, DIM)).astype("float32")
    theirs = _model(keras, subclass, mask_kind)
    ours = _model(fkeras, subclass, mask_kind)
    copy_weights(theirs, ours)
    want = [keras.ops.convert_to_numpy(v) for v in theirs(x)]
    got = [np.asarray(v) for v in ours(x)]
    for w, g in zip(want, got):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[1][..., np.arange(T), np.arange(T)] == 0, mask_kind == "int8")
    np.testing.assert_allclose(ours.predict(x, verbose=0)[0], want[0], rtol=1e-5, atol=1e-6)


__all__ = ["LIBS"]


def test_mixup_weights_drawn_with_keras_random_gamma_in_a_dataset_map():
    """keras.io's mixup: ``keras.random.gamma`` sized by ``ops.shape(images)[0]`` inside ``Dataset.map``."""
    import onnxforge as tf

    ops = fkeras.ops
    x = np.random.default_rng(0).uniform(size=(24, 4, 4, 1)).astype("float32")
    y = ops.one_hot(np.arange(24) % 3, 3)

    def mix_up(one, two, alpha=0.2):
        (images_one, labels_one), (images_two, labels_two) = one, two
        size = ops.shape(images_one)[0]
        g1 = fkeras.random.gamma(shape=[size], alpha=alpha)
        g2 = fkeras.random.gamma(shape=[size], alpha=alpha)
        lam = g1 / (g1 + g2)
        x_l, y_l = ops.reshape(lam, (size, 1, 1, 1)), ops.reshape(lam, (size, 1))
        return images_one * x_l + images_two * (1 - x_l), labels_one * y_l + labels_two * (1 - y_l)

    one = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    two = tf.data.Dataset.from_tensor_slices((x[::-1].copy(), y[::-1])).batch(8)
    mixed = list(tf.data.Dataset.zip((one, two)).map(mix_up, num_parallel_calls=tf.data.AUTOTUNE))
    assert len(mixed) == 3
    labels = np.concatenate([np.asarray(lab) for _, lab in mixed])
    images = np.concatenate([np.asarray(img) for img, _ in mixed])
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-5)
    lam = labels[np.arange(24), np.arange(24) % 3]   # the weight of the first image where the classes differ
    differ = (np.arange(24) % 3) != (np.arange(24)[::-1] % 3)
    np.testing.assert_allclose(images[differ], (lam[differ, None, None, None] * x[differ]
                                                + (1 - lam[differ, None, None, None]) * x[::-1][differ]), atol=1e-5)
    # Beta(0.2, 0.2) puts most weight near 0 and 1: not every pair is mixed half and half.
    assert np.abs(lam[differ] - 0.5).max() > 0.2


def _pair_model(api):
    """keras.io NNCLR's shape of step: unlabelled and labelled batches of different sizes zipped into one
    batch, and a per-sample loss returned as a log next to scalar ones."""
    class Pairs(api.Model):
        def __init__(self):
            super().__init__()
            self.dense = api.layers.Dense(1)

        def call(self, x):
            # Keras's fit() first calls the model on the first batch's x: the (images, ids) pair.
            return self.dense(x[0] if isinstance(x, (tuple, list)) else x)

        def train_step(self, data):
            (unlabelled, _), (labelled, labels) = data
            both = api.ops.concatenate([unlabelled, labelled], axis=0)
            per_sample = api.ops.sum(api.ops.square(self(both)), axis=-1)
            fit = api.ops.mean(api.ops.square(self(labelled)[:, 0] - labels))
            return {"per_sample": per_sample, "fit": fit, "batch": api.ops.shape(unlabelled)[0] * 1.0}

    model = Pairs()
    model(np.zeros((1, 3), "float32"))   # builds the Dense in both (Keras's build() of a model without one does not)
    return model


def test_custom_step_takes_unequal_batches_and_logs_a_per_sample_tensor(capsys):
    rng = np.random.default_rng(1)
    unlabelled, labelled = rng.normal(size=(4, 6, 3)).astype("float32"), rng.normal(size=(4, 2, 3)).astype("float32")
    labels = rng.normal(size=(4, 2)).astype("float32")

    def batches():
        while True:
            for k in range(4):
                yield (unlabelled[k], np.zeros(6, "float32")), (labelled[k], labels[k])

    theirs, ours = _pair_model(keras), _pair_model(fkeras)
    copy_weights(theirs, ours)
    histories, shown = [], []
    for model in (theirs, ours):
        model.compile(optimizer="sgd")
        histories.append(model.fit(batches(), steps_per_epoch=4, epochs=2, verbose=2).history)
        # verbose=2's epoch lines: the array's mean is what the bar shows
        shown.append(re.findall(r"per_sample: ([0-9.e+-]+)", capsys.readouterr().out))
    want, got = histories
    assert len(shown[0]) == 2 and shown[1] == shown[0]
    assert sorted(got) == sorted(want) == ["batch", "fit", "per_sample"]
    for key in want:
        assert [np.shape(v) for v in got[key]] == [np.shape(v) for v in want[key]], key
        np.testing.assert_allclose(np.asarray(got[key], "float64"), np.asarray(want[key], "float64"), rtol=1e-5)


def _tile_layer(api):
    class TiledPositions(api.layers.Layer):
        """keras.io's masked autoencoder: position embeddings tiled to the batch by a tensor, then normalized."""

        def build(self, input_shape):
            self.positions = self.add_weight(shape=(1, input_shape[1], input_shape[2]), initializer="ones")
            self.norm = api.layers.LayerNormalization()

        def call(self, x):
            tiled = api.ops.tile(self.positions, [api.ops.shape(x)[0], 1, 1])
            return self.norm(x + tiled)
    return TiledPositions


def test_tile_by_a_batch_tensor_keeps_the_known_axes():
    x = np.random.default_rng(2).normal(size=(3, 4, 5)).astype("float32")
    theirs, ours = (api.Sequential([api.Input((4, 5)), _tile_layer(api)()]) for api in (keras, fkeras))
    copy_weights(theirs, ours)
    np.testing.assert_allclose(ours.predict(x, verbose=0), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5,
                               atol=1e-6)


def _callless_model(api):
    """A model without ``call()`` whose step runs its parts and hands the compiled loss and metrics its
    predictions (keras.io's masked autoencoder): they take their outputs from ``y_pred``."""
    from tests.keras_examples.harness import apply_gradients, value_and_grad

    class Parts(api.Model):
        def __init__(self):
            super().__init__()
            self.first, self.second = api.layers.Dense(4, activation="tanh"), api.layers.Dense(2)

        def train_step(self, data):
            x, y = data

            def forward():
                pred = self.second(self.first(x))
                return self.compute_loss(y=y, y_pred=pred), pred
            (loss, pred), grads = value_and_grad(api, forward, self.trainable_variables)
            apply_gradients(api, self.optimizer, grads, self.trainable_variables)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, pred)
            return {m.name: m.result() for m in self.metrics}

    if api is keras:
        # Keras on torch builds its compiled loss by calling the model before fit() (TensorFlow's trainer
        # does not): the oracle gets a call() doing the step's forward pass; onnxforge's model has none.
        Parts.call = lambda self, x: self.second(self.first(x))
    model = Parts()
    model.second(model.first(np.zeros((1, 3), "float32")))   # weights to copy
    return model


def test_compiled_loss_and_metrics_of_a_model_without_call():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    theirs, ours = _callless_model(keras), _callless_model(fkeras)
    copy_weights(theirs, ours)
    histories = []
    for model in (theirs, ours):
        model.compile(optimizer=model_optimizer(model), loss="mse", metrics=["mae"])
        histories.append(model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history)
    want, got = histories
    assert sorted(got) == sorted(want) == ["loss", "mae"]
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5)


def model_optimizer(model):
    return (keras if isinstance(model, keras.Model) else fkeras).optimizers.SGD(0.1)
