"""A custom ``train_step`` / ``test_step`` / ``predict_step`` receives a batch holding a dict as Keras passes it
(``trainer.step_data``): ``fit({"x": x, "y": y})`` and a dataset of such dicts train the weights Keras 3 (torch)
trains; ``(dict, y, sample_weight)``, ``evaluate`` and validation data keep their structure too, while the
compiled steps still match a dict to the model's input names."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS, fkeras

RNG = np.random.RandomState(0)
X = RNG.rand(8, 3).astype("float32")
Y = RNG.rand(8, 1).astype("float32")
INIT = [RNG.uniform(-0.5, 0.5, (3, 1)).astype("float32"), np.zeros(1, "float32")]


def _dict_model(k, torch_side: bool):
    class D(k.Model):
        def train_step(self, data):
            x, y = data["x"], data["y"]
            if torch_side:
                self.zero_grad()
                loss = k.ops.mean(k.ops.square(y - self(x, training=True)))
                loss.backward()
                import torch

                with torch.no_grad():
                    self.optimizer.apply([v.value.grad for v in self.trainable_variables], self.trainable_variables)
            else:
                import onnxforge

                with onnxforge.GradientTape() as tape:
                    loss = k.ops.mean(k.ops.square(y - self(x, training=True)))
                grads = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"mse": loss}

        def test_step(self, data):
            return {"mse": k.ops.mean(k.ops.square(data["y"] - self(data["x"])))}

    inputs = k.Input((3,))
    model = D(inputs, k.layers.Dense(1)(inputs))
    model.set_weights(INIT)
    model.compile(optimizer=k.optimizers.SGD(0.1))
    return model


def test_dict_batches_train_like_keras():
    want = _dict_model(LIBS["keras"], True)
    want.fit({"x": X, "y": Y}, epochs=2, batch_size=4, shuffle=False, verbose=0)
    arrays = _dict_model(fkeras, False)
    history = arrays.fit({"x": X, "y": Y}, epochs=2, batch_size=4, shuffle=False, verbose=0,
                         validation_data={"x": X, "y": Y})
    dataset = _dict_model(fkeras, False)
    dataset.fit(fkeras.utils.Dataset.from_tensor_slices({"x": X, "y": Y}).batch(4), epochs=2, verbose=0)
    for got in (arrays, dataset):
        for a, b in zip(want.get_weights(), got.get_weights()):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    squares = (Y - np.asarray(arrays(X))) ** 2
    mse = float(np.mean(squares))
    # A plain returned value is logged as the last step returned it (Keras 3): the last validation batch's.
    assert history.history["val_mse"][-1] == pytest.approx(float(np.mean(squares[4:])), rel=1e-5)
    assert arrays.evaluate({"x": X, "y": Y}, batch_size=8, verbose=0) == pytest.approx(mse, rel=1e-5)


def test_dict_x_with_targets_and_weights_is_a_tuple():
    seen = []

    class W(fkeras.Model):
        def train_step(self, data):
            seen.append(type(data).__name__ + str(len(data)))
            x, y, w = data
            return {"weighted": fkeras.ops.sum(w * fkeras.ops.sum(y - self(x["a"]), axis=-1))}

        def predict_step(self, data):
            return {"twice": self(data["a"]) * 2.0}

    inputs = fkeras.Input((3,), name="a")
    model = W(inputs, fkeras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd")
    w = np.arange(8, dtype="float32")
    logs = model.train_on_batch({"a": X}, Y, sample_weight=w, return_dict=True)
    expected = float(np.sum(w * (Y - np.asarray(model(X)))[:, 0]))
    assert seen == ["tuple3"] and logs["weighted"] == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(model.predict({"a": X}, batch_size=3, verbose=0)["twice"], 2 * np.asarray(model(X)),
                               rtol=1e-5, atol=1e-6)


def test_compiled_steps_still_match_dict_keys_to_input_names():
    class OnlyTrain(fkeras.Model):
        def train_step(self, data):
            return {"n": fkeras.ops.sum(data[0])}

    inputs = fkeras.Input((3,), name="features")
    model = OnlyTrain(inputs, fkeras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    np.testing.assert_allclose(model.predict({"features": X}, verbose=0), np.asarray(model(X)), rtol=1e-6)
    assert model.evaluate({"features": X}, Y, verbose=0) == pytest.approx(
        float(np.mean((Y - np.asarray(model(X))) ** 2)), rel=1e-5)
