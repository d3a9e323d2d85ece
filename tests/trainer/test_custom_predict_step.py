"""An overridden ``predict_step`` is what ``predict`` / ``predict_on_batch`` run (``trainer.custom_predict``),
compared with Keras 3 on torch: a dict result joined per leaf over batches (the last one partial),
``super().predict_step`` on a two-input model, a retrace-free predict after training, and clear errors for
what an inference program cannot keep."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS, fkeras

X = np.random.RandomState(0).rand(10, 5).astype("float32")


def _classifier(k):
    class Classifier(k.Model):
        def predict_step(self, data):
            y = self(data, training=False)
            return {"probs": k.ops.softmax(y), "cls": k.ops.argmax(y, axis=-1)}

    inputs = k.Input((5,))
    return Classifier(inputs, k.layers.Dense(3)(inputs))


def test_dict_result_matches_keras():
    init, out = None, {}
    for lib, k in LIBS.items():
        model = _classifier(k)
        init = init or [np.random.RandomState(1).uniform(-1, 1, w.shape).astype("float32") for w in model.get_weights()]
        model.set_weights(init)
        out[lib] = model.predict(X, batch_size=4, verbose=0), model.predict_on_batch(X[:3])
    (want, want_batch), (got, got_batch) = out["keras"], out["onnxforge"]
    for result, expected, n in ((got, want, 10), (got_batch, want_batch, 3)):
        assert isinstance(result, dict) and sorted(result) == ["cls", "probs"]
        assert result["probs"].shape == (n, 3) and result["cls"].shape == (n,)
        np.testing.assert_allclose(result["probs"], np.asarray(expected["probs"]), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(result["cls"], np.asarray(expected["cls"]))


def test_super_predict_step_on_two_inputs_and_after_training():
    class Pair(fkeras.Model):
        def predict_step(self, data):
            y = super().predict_step(data)
            return y, (y * 2.0,)

    a, b = fkeras.Input((5,)), fkeras.Input((5,))
    model = Pair([a, b], fkeras.layers.Dense(2)(fkeras.layers.Concatenate()([a, b])))
    y, (twice,) = model.predict([X, X[::-1]], batch_size=4, verbose=0)
    expected = np.asarray(model([X, X[::-1]]))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(twice, 2 * expected, rtol=1e-5, atol=1e-6)
    model.compile(optimizer="sgd", loss="mse")
    model.fit([X, X], np.ones((10, 2), "float32"), epochs=1, verbose=0)   # new weights, the same traced program
    y, _ = model.predict([X, X[::-1]], verbose=0)
    np.testing.assert_allclose(y, np.asarray(model([X, X[::-1]])), rtol=1e-5, atol=1e-6)


def test_what_predict_cannot_keep_is_refused_by_name():
    class Text(fkeras.Model):
        def predict_step(self, data):
            return {"y": self(data), "label": "positive"}

    class Counting(fkeras.Model):
        def predict_step(self, data):
            y = self(data)
            self.seen.update_state(y)
            return y

    inputs = fkeras.Input((5,))
    with pytest.raises(NotImplementedError, match=r"Text\.predict_step returned 'positive' at 'outputs/label'"):
        Text(inputs, fkeras.layers.Dense(1)(inputs)).predict(X, verbose=0)
    counting = Counting(inputs, fkeras.layers.Dense(1)(inputs))
    counting.seen = fkeras.metrics.Mean()
    with pytest.raises(NotImplementedError, match=r"Counting\.predict_step updates a metric"):
        counting.predict(X, verbose=0)
