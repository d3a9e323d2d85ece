"""A built subclassed model whose ``call`` returns several outputs, trained from a dataset of ``(x, y)`` pairs
by its own ``train_step`` (keras.io's CycleGAN: ``call`` returns four outputs, the step unpacks
``(horses, zebras)``): the step reads the pair as it likes, so the pair is not matched to the model's outputs.
Before, a dataset batch was checked against the four outputs ("the model has 4 outputs ... but y holds 1
arrays") while the same arrays passed to ``fit(x, y)`` were accepted."""
from __future__ import annotations

import numpy as np

import onnxforge
from tests.keras_oracle.common import fkeras

X = np.arange(12, dtype="float32").reshape(4, 3) / 10
Z = X[:, ::-1] + 1.0


def _model():
    k = fkeras

    def functional(init):
        inputs = k.Input((3,))
        return k.Model(inputs, k.layers.Dense(3, kernel_initializer=init)(inputs))

    class Pair(k.Model):
        def __init__(self):
            super().__init__()
            self.a = functional("ones")   # functional sub-models, as CycleGAN's generators and discriminators
            self.b = functional("zeros")

        def call(self, inputs):
            return self.a(inputs), self.b(inputs)

        def train_step(self, data):
            real_x, real_y = data
            with onnxforge.GradientTape() as tape:
                loss = k.ops.mean(k.ops.square(self.b(real_x) - real_y))
            grads = tape.gradient(loss, self.b.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.b.trainable_variables))
            return {"loss": loss}

    model = Pair()
    model.compile(optimizer=k.optimizers.SGD(0.1))
    model(X[:1])
    return model


def test_a_dataset_of_pairs_reaches_the_step_of_a_multi_output_model():
    from_arrays, from_dataset = _model(), _model()
    want = from_arrays.fit(X, Z, batch_size=2, epochs=1, shuffle=False, verbose=0).history["loss"]
    horses = onnxforge.data.Dataset.from_tensor_slices(X).map(lambda t: t * 1.0).batch(2)
    zebras = onnxforge.data.Dataset.from_tensor_slices(Z).map(lambda t: t * 1.0).batch(2)
    got = from_dataset.fit(onnxforge.data.Dataset.zip((horses, zebras)), epochs=1, verbose=0).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    for a, b in zip(from_dataset.get_weights(), from_arrays.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
