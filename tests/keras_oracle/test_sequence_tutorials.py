"""What TensorFlow's sequence tutorials (NMT with attention, the Transformer, text generation) lean on, against
Keras 3: masked losses over token ids for ``(batch, steps, vocab)`` logits, a model whose ``call()`` drops its
output's mask, layers that keep a tensor of their last call, ``RNN.get_initial_state`` and ``Embedding``'s
``supports_masking``."""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS, copy_weights, fkeras, keras, random_weights

VOCAB, STEPS = 7, 5


def _masked_loss(ops):
    def masked_loss(y_true, y_pred):
        ce = ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        mask = ops.cast(ops.not_equal(y_true, 0), ce.dtype)
        return ops.sum(ce * mask) / ops.sum(mask)
    return masked_loss


def _masked_acc(ops):
    def masked_acc(y_true, y_pred):
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), y_true.dtype), y_true), "float32")
        mask = ops.cast(ops.not_equal(y_true, 0), "float32")
        return ops.sum(hit * mask) / ops.sum(mask)
    return masked_acc


def _ids():
    rng = np.random.default_rng(3)
    x = rng.integers(1, VOCAB, (8, STEPS)).astype("int32")
    x[:, 3:] = 0
    y = np.roll(x, -1, axis=1).astype("int64")
    return x, y


def _functional(lib):
    inputs = lib.Input((STEPS,), dtype="int32")
    h = lib.layers.Embedding(VOCAB, 4)(inputs)
    outputs = lib.layers.Dense(VOCAB)(lib.layers.GRU(6, return_sequences=True)(h))
    return lib.Model(inputs, outputs)


def _subclassed(lib):
    class Tagger(lib.Model):
        def __init__(self):
            super().__init__()
            self.embedding = lib.layers.Embedding(VOCAB, 4, mask_zero=True)
            self.rnn = lib.layers.GRU(6, return_sequences=True)
            self.out = lib.layers.Dense(VOCAB)

        def call(self, x):
            logits = self.out(self.rnn(self.embedding(x)))
            try:
                del logits._keras_mask   # the tutorials' way to keep Keras from weighting the loss by the mask
            except AttributeError:
                pass
            return logits
    model = Tagger()
    model(np.ones((1, STEPS), "int32"))
    return model


@pytest.mark.parametrize("build", [_functional, _subclassed])
def test_masked_sparse_loss_over_logits_trains_as_keras(build):
    # A user loss takes targets of any shape (Keras fixes none): (batch, steps) ids for (batch, steps, vocab).
    x, y = _ids()
    models = {name: build(lib) for name, lib in LIBS.items()}
    random_weights(models["keras"])
    copy_weights(models["keras"], models["onnxforge"])
    logs = {}
    for name, lib in LIBS.items():
        model = models[name]
        model.compile(optimizer=lib.optimizers.SGD(0.5), loss=_masked_loss(lib.ops),
                      metrics=[_masked_acc(lib.ops)])
        history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        logs[name] = (history.history, model.evaluate(x, y, verbose=0, return_dict=True))
    (k_hist, k_eval), (f_hist, f_eval) = logs["keras"], logs["onnxforge"]
    assert sorted(f_hist) == sorted(k_hist)
    for key in k_hist:
        np.testing.assert_allclose(f_hist[key], k_hist[key], rtol=1e-4, atol=1e-5)
    for key in k_eval:
        np.testing.assert_allclose(f_eval[key], k_eval[key], rtol=1e-4, atol=1e-5)


def test_output_shaped_targets_keep_the_compiled_steps():
    # The output-shaped guess stands while the data fits it: no second build.
    model = _functional(fkeras)
    model.compile("sgd", loss=lambda t, p: fkeras.ops.mean(fkeras.ops.square(t - p)))
    programs = model._programs
    model.train_on_batch(np.ones((2, STEPS), "int32"), np.zeros((2, STEPS, VOCAB), "float32"))
    assert model._programs is programs
    model.train_on_batch(np.ones((2, STEPS), "int32"), np.zeros((2, STEPS, 1), "float32"))   # broadcast
    assert model._programs is not programs
    assert model._compiled_config.outputs[0].target_shape == (None, STEPS, 1)


def test_layer_keeps_the_tensor_of_its_last_eager_call():
    # TensorFlow's NMT tutorial plots `decoder.attention.last_attention_weights`, kept by call().
    results = {}
    for name, lib in LIBS.items():
        class Cross(lib.layers.Layer):
            def __init__(self):
                super().__init__()
                self.mha = lib.layers.MultiHeadAttention(num_heads=2, key_dim=3)

            def call(self, x, context):
                out, scores = self.mha(query=x, value=context, return_attention_scores=True)
                self.last_attention_weights = lib.ops.mean(scores, axis=1)
                return out
        layer = Cross()
        q = np.linspace(-1, 1, 2 * 3 * 4, dtype="float32").reshape(2, 3, 4)
        v = np.linspace(1, -1, 2 * 5 * 4, dtype="float32").reshape(2, 5, 4)
        layer(q, v)
        if name == "keras":
            random_weights(layer)
            reference = layer
        else:
            copy_weights(reference, layer)
        layer(q, v)
        first = np.asarray(keras.ops.convert_to_numpy(layer.last_attention_weights))
        layer(q[:1], v[:1])   # a second call replaces it
        results[name] = first, np.asarray(keras.ops.convert_to_numpy(layer.last_attention_weights))
    for k, f in zip(results["keras"], results["onnxforge"]):
        assert f.shape == k.shape
        np.testing.assert_allclose(f, k, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "SimpleRNN"])
def test_get_initial_state(cls):
    k_states = getattr(keras.layers, cls)(3).get_initial_state(2)
    f_states = getattr(fkeras.layers, cls)(3).get_initial_state(2)
    assert [tuple(s.shape) for s in f_states] == [tuple(s.shape) for s in k_states]
    assert all(np.asarray(s).dtype == np.float32 and not np.asarray(s).any() for s in f_states)
    # tf.keras 2 (TensorFlow's text-generation tutorial) passed the inputs: their batch size is taken.
    assert [s.shape for s in getattr(fkeras.layers, cls)(3).get_initial_state(np.zeros((4, 6, 2)))] == \
        [(4, 3)] * len(k_states)


def test_initial_state_inside_a_subclassed_call():
    class Model(fkeras.Model):
        def __init__(self):
            super().__init__()
            self.gru = fkeras.layers.GRU(4, return_sequences=True, return_state=True)

        def call(self, x):
            out, state = self.gru(x, initial_state=self.gru.get_initial_state(x))
            return state
    x = np.random.default_rng(0).normal(size=(3, 5, 2)).astype("float32")
    model = Model()
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model.gru(x)[1]), atol=1e-6)


@pytest.mark.parametrize("mask_zero", [False, True])
def test_embedding_supports_masking_as_keras(mask_zero):
    assert fkeras.layers.Embedding(5, 2, mask_zero=mask_zero).supports_masking == \
        keras.layers.Embedding(5, 2, mask_zero=mask_zero).supports_masking == mask_zero
