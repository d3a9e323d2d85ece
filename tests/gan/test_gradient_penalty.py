"""keras.io's WGAN-GP: a ``GradientTape`` nested in the step's tape, the critic's gradient with respect to the
interpolated images, and its norm in the loss, so the critic's update takes second derivatives through Conv2D,
LeakyReLU and Dense. Checked against torch (``create_graph=True``) on the same weights, eagerly, in a
``tf.function`` and in a ``train_step`` traced by ``fit``."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

torch = pytest.importorskip("torch")
keras = tf.keras


def _critic():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def _data():
    rng = np.random.default_rng(0)
    real, fake = (rng.normal(size=(4, 6, 6, 2)).astype("float32") for _ in range(2))
    alpha = rng.uniform(size=(4, 1, 1, 1)).astype("float32")
    weights = [rng.normal(0, 0.4, s).astype("float32") for s in [(3, 3, 2, 3), (3,), (108, 1), (1,)]]
    return real, fake, alpha, weights


def _penalty_step(critic, real, fake, alpha):
    with tf.GradientTape() as tape:
        interpolated = real + alpha * (fake - real)
        with tf.GradientTape() as gp_tape:
            gp_tape.watch(interpolated)
            pred = critic(interpolated, training=True)
        grads = gp_tape.gradient(pred, [interpolated])[0]
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
        gp = tf.reduce_mean((norm - 1.0) ** 2)
        loss = tf.reduce_mean(critic(fake)) - tf.reduce_mean(critic(real)) + 10.0 * gp
    return loss, tape.gradient(loss, critic.trainable_variables)


def _torch_reference(real, fake, alpha, weights):
    kernel, bias, dense, dense_bias = (torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in weights)

    def critic(x):   # NHWC in, Keras's flatten order out
        h = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), bias, padding=1)
        h = torch.nn.functional.leaky_relu(h, 0.2).permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return h @ dense + dense_bias

    real_t, fake_t, alpha_t = (torch.tensor(a, dtype=torch.float64) for a in (real, fake, alpha))
    interpolated = (real_t + alpha_t * (fake_t - real_t)).requires_grad_(True)
    grads, = torch.autograd.grad(critic(interpolated).sum(), interpolated, create_graph=True)
    gp = ((grads.square().sum(dim=(1, 2, 3)).sqrt() - 1.0) ** 2).mean()
    loss = critic(fake_t).mean() - critic(real_t).mean() + 10.0 * gp
    return float(loss), [g.numpy() for g in torch.autograd.grad(loss, [kernel, bias, dense, dense_bias])]


def test_gradient_penalty_matches_torch_eagerly_and_in_a_tf_function():
    real, fake, alpha, weights = _data()
    want_loss, want_grads = _torch_reference(real, fake, alpha, weights)
    critic = _critic()
    critic.set_weights(weights)
    for step in (_penalty_step, tf.function(_penalty_step)):
        loss, grads = step(critic, tf.constant(real), tf.constant(fake), tf.constant(alpha))
        assert float(loss) == pytest.approx(want_loss, rel=1e-5)
        for got, want in zip(grads, want_grads):
            np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-5)


def test_gradient_penalty_in_a_fit_train_step_matches_torch():
    real, fake, alpha, weights = _data()
    _, want_grads = _torch_reference(real, fake, alpha, weights)
    critic = _critic()
    critic.set_weights(weights)

    class WGAN(keras.Model):
        def __init__(self, critic):
            super().__init__()
            self.critic = critic

        def train_step(self, data):
            real, fake, alpha = data
            loss, grads = _penalty_step(self.critic, real, fake, alpha)
            self.optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))
            return {"d_loss": loss}

    wgan = WGAN(critic)
    wgan.compile(optimizer=keras.optimizers.SGD(0.1))
    wgan.fit(tf.data.Dataset.from_tensor_slices((real, fake, alpha)).batch(4), epochs=1, verbose=0)
    for got, start, grad in zip(critic.get_weights(), weights, want_grads):
        np.testing.assert_allclose(got, start - 0.1 * grad, rtol=2e-4, atol=2e-5)
