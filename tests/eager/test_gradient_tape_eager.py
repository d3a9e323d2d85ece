"""``GradientTape`` outside a trace: TensorFlow's eager autodiff and the eager training loop of its guide
"Writing a training loop from scratch" (before, entering a tape outside a trace raised)."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge.eager import tape as eager_tape

keras = tf.keras


def test_variable_square_and_watched_constant():
    x = tf.Variable(3.0)
    with tf.GradientTape() as tape:
        y = x ** 2
    assert float(tape.gradient(y, x)) == pytest.approx(6.0)

    c = tf.constant(3.0)
    with tf.GradientTape() as tape:
        tape.watch(c)
        y = c * c
    assert float(tape.gradient(y, c)) == pytest.approx(6.0)
    with tf.GradientTape() as tape:   # a constant nobody watched is not followed (TensorFlow gives None)
        y = c * c
    assert tape.gradient(y, c) is None


def test_persistent_chain_and_one_shot_tapes():
    x = tf.constant(3.0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        z = y * y
    assert float(tape.gradient(z, x)) == pytest.approx(108.0)   # 4 x^3
    assert float(tape.gradient(y, x)) == pytest.approx(6.0)
    assert float(tape.gradient(z, y)) == pytest.approx(18.0)    # an intermediate as the source

    with tf.GradientTape() as once:
        once.watch(x)
        y = x * x
    once.gradient(y, x)
    with pytest.raises(RuntimeError, match="non-persistent"):
        once.gradient(y, x)


def test_unconnected_stop_recording_and_output_gradients():
    a, b = tf.Variable(2.0), tf.Variable(5.0)
    with tf.GradientTape(persistent=True) as tape:
        y = a * 3.0
        with tape.stop_recording():
            z = b * 4.0
        w = y + z
    assert tape.gradient(w, b) is None
    assert float(tape.gradient(w, b, unconnected_gradients="zero")) == 0.0
    assert float(tape.gradient(w, a)) == pytest.approx(3.0)

    v = tf.Variable(np.array([1.0, 2.0, 3.0], np.float32))
    with tf.GradientTape() as tape:
        y = v * v
    g = tape.gradient(y, v, output_gradients=np.array([1.0, 0.0, 10.0], np.float32))
    np.testing.assert_allclose(g, [2.0, 0.0, 60.0])


def test_nested_tapes_give_second_derivatives():
    x = tf.Variable(3.0)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = x * x * x
        dy_dx = inner.gradient(y, x)
    d2y_dx2 = outer.gradient(dy_dx, x)
    assert float(dy_dx) == pytest.approx(27.0)
    assert float(d2y_dx2) == pytest.approx(18.0)


def test_ops_slices_and_numpy_arithmetic_are_recorded():
    w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(tf.exp(w[:, 1:] * 0.5) - w[0, 0] ** 2)
    g = tape.gradient(y, w)
    expected = np.zeros((2, 3), np.float32)
    expected[:, 1:] = 0.5 * np.exp(w.numpy()[:, 1:] * 0.5)
    expected[0, 0] = -2 * 0.0 * 4   # d/dw00 of -(w00^2) summed over the 4 broadcast entries
    np.testing.assert_allclose(g, expected, rtol=1e-5)


def _model(seed: int = 0, dropout: float = 0.0):
    inputs = keras.Input(shape=(8,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _data():
    rng = np.random.default_rng(1)
    return rng.random((64, 8), dtype=np.float32), rng.integers(0, 3, 64)


def test_eager_guide_loop_equals_fit_step_by_step_and_compiles_once():
    x, y = _data()
    model, optimizer = _model(), keras.optimizers.Adam(learning_rate=0.01)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    losses, programs = [], set()
    for i in range(0, 64, 16):
        with tf.GradientTape() as tape:
            logits = model(x[i:i + 16], training=True)
            loss_value = loss_fn(y[i:i + 16], logits)
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        accuracy.update_state(y[i:i + 16], logits)
        losses.append(float(loss_value))
        programs.add(id(eager_tape._CACHE[next(reversed(eager_tape._CACHE))]))
    assert len(programs) == 1   # one joined gradient program for every step
    assert int(optimizer.iterations) == 4

    reference = _model()
    reference.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss=loss_fn)
    expected = [float(reference.train_on_batch(x[i:i + 16], y[i:i + 16])) for i in range(0, 64, 16)]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert 0.0 <= float(accuracy.result()) <= 1.0


def test_gradient_matches_central_differences():
    x, y = _data()
    model = _model(seed=3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y[:8], model(x[:8]))
    grads = tape.gradient(loss, model.trainable_weights)
    kernel = model.trainable_weights[0]
    base = kernel.numpy().copy()
    for index in [(0, 0), (3, 7), (7, 15)]:
        shifted = []
        for eps in (1e-2, -1e-2):
            w = base.copy()
            w[index] += eps
            kernel.assign(w)
            shifted.append(float(loss_fn(y[:8], model(x[:8]))))
        kernel.assign(base)
        assert grads[0][index] == pytest.approx((shifted[0] - shifted[1]) / 2e-2, rel=2e-2, abs=1e-4)


def test_dropout_gradient_replays_the_forward_mask():
    v = tf.Variable(np.ones((4, 50), np.float32))
    drop = keras.layers.Dropout(0.5)
    with tf.GradientTape() as tape:
        out = drop(v * 1.0, training=True)
        total = tf.reduce_sum(out)
    g = tape.gradient(total, v)
    np.testing.assert_allclose(g, (np.asarray(out) != 0) * 2.0)
    assert 0 < np.count_nonzero(g) < g.size


def test_batchnorm_training_and_regularization_losses():
    """BatchNormalization updates its statistics once (in the forward call, not again in the gradient),
    and ``model.losses`` after an eager call are differentiable."""
    inputs = keras.Input(shape=(4,))
    h = keras.layers.Dense(5, kernel_regularizer=keras.regularizers.L2(0.1))(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(h))
    x = np.random.default_rng(2).random((16, 4), dtype=np.float32)
    bn = model.layers[-1]
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = tf.reduce_mean(out ** 2) + sum(model.losses)
    moving = bn.moving_mean.numpy().copy()
    grads = tape.gradient(loss, model.trainable_weights)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), moving)
    assert not np.allclose(moving, 0.0)
    # Reference: the same loss as a compiled function of the same weights (a single traced program).
    kernel = model.trainable_weights[0]

    @tf.function
    def reference(xb):
        with tf.GradientTape() as t:
            o = model(xb, training=True)
            value = tf.reduce_mean(o ** 2) + tf.add_n(model.losses)
        return t.gradient(value, [kernel])

    np.testing.assert_allclose(grads[0], reference(x)[0], rtol=1e-4, atol=1e-6)


def test_apply_gradients_outside_a_step_skips_none_with_a_warning():
    w1, w2 = tf.Variable(np.ones(2, np.float32)), tf.Variable(np.ones(2, np.float32))
    opt = keras.optimizers.SGD(0.5)
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        opt.apply_gradients([(np.array([1.0, 2.0], np.float32), w1), (None, w2)])
    np.testing.assert_allclose(w1.numpy(), [0.5, 0.0])
    np.testing.assert_allclose(w2.numpy(), [1.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        opt.apply_gradients([(np.ones(3, np.float32), w1)])


def test_bad_arguments_name_what_was_received():
    x = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        y = x * 2.0
    with pytest.raises(TypeError, match="sources must be Variables or tensors"):
        tape.gradient(y, "x")
    with tf.GradientTape() as tape:
        with pytest.raises(TypeError, match="watch expects"):
            tape.watch("x")


def test_tensorflow_semantics_of_watching():
    """The cases below print the same numbers under TensorFlow 2.21 (checked side by side)."""
    x = tf.Variable(3.0)
    with tf.GradientTape(persistent=True) as t:
        y = x * x
        z = y * y + tf.sin(x)
    assert float(t.gradient(z, x)) == pytest.approx(4 * 27 + np.cos(3.0), rel=1e-6)
    w = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    with tf.GradientTape() as t:
        y = tf.matmul(w, w)
    seed = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    wv = w.numpy()
    np.testing.assert_allclose(t.gradient(y, w, output_gradients=seed), seed @ wv.T + wv.T @ seed)
    frozen = tf.Variable(2.0, trainable=False)
    with tf.GradientTape() as t:
        y = frozen * 3.0
    assert t.gradient(y, frozen) is None        # not trainable, not watched
    with tf.GradientTape(watch_accessed_variables=False) as t:
        t.watch(frozen)
        y = frozen * x
    grads = t.gradient(y, [frozen, x])
    assert float(grads[0]) == pytest.approx(3.0) and grads[1] is None


def test_jacobian_and_batch_jacobian():
    w = tf.Variable(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32))   # (3, 2)
    x = tf.constant(np.array([[1.0, -1.0, 2.0], [0.5, 0.0, 1.0]], np.float32))   # (2, 3)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = tf.matmul(x, w) ** 2                                                   # (2, 2)
    jac = tape.jacobian(y, w)
    assert jac.shape == (2, 2, 3, 2)
    xw = x @ w.numpy()
    expected = np.zeros((2, 2, 3, 2), np.float32)
    for b in range(2):
        for j in range(2):
            expected[b, j, :, j] = 2 * xw[b, j] * x[b]
    np.testing.assert_allclose(jac, expected, rtol=1e-5)
    per_example = tape.batch_jacobian(y, x)
    assert per_example.shape == (2, 2, 3)
    for b in range(2):
        np.testing.assert_allclose(per_example[b], 2 * xw[b][:, None] * w.numpy().T, rtol=1e-5)


def test_optimizer_minimize_with_a_callable_or_a_recorded_loss():
    x = tf.Variable(3.0)
    opt = keras.optimizers.SGD(0.1)
    for _ in range(3):
        opt.minimize(lambda: x ** 2, [x])
    assert float(x.numpy()) == pytest.approx(3.0 * 0.8 ** 3, rel=1e-6)
    with tf.GradientTape() as tape:
        loss = x * 2.0
    opt.minimize(loss, lambda: [x], tape=tape)
    assert float(x.numpy()) == pytest.approx(3.0 * 0.8 ** 3 - 0.2, rel=1e-6)
    with pytest.raises(ValueError, match="tape"):
        opt.minimize(x * 2.0, [x])


def _gan_pair(seed: int):
    L = keras.layers
    generator = keras.Sequential([keras.Input((4,)), L.Dense(7 * 7 * 2, use_bias=False), L.BatchNormalization(),
                                  L.LeakyReLU(), L.Reshape((7, 7, 2)),
                                  L.Conv2DTranspose(1, 3, strides=2, padding="same", activation="tanh")])
    discriminator = keras.Sequential([keras.Input((14, 14, 1)), L.Conv2D(2, 3, strides=2, padding="same"),
                                      L.LeakyReLU(), L.Flatten(), L.Dense(1)])
    rng = np.random.default_rng(seed)
    for m in (generator, discriminator):
        m.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) for w in m.get_weights()])
    return generator, discriminator


def test_two_tapes_at_once_as_the_dcgan_tutorial_equal_the_compiled_step():
    """TensorFlow's DCGAN tutorial step (two tapes in one ``with``), run eagerly and as a tf.function."""
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    rng = np.random.default_rng(5)
    images = rng.random((6, 14, 14, 1), dtype=np.float32)
    noises = [rng.normal(size=(6, 4)).astype(np.float32) for _ in range(3)]
    results = []
    for compiled in (False, True):
        generator, discriminator = _gan_pair(7)
        g_opt, d_opt = keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2)

        def step(real, noise):
            with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
                fake = generator(noise, training=True)
                real_out, fake_out = discriminator(real, training=True), discriminator(fake, training=True)
                g_loss = bce(tf.ones_like(fake_out), fake_out)
                d_loss = bce(tf.ones_like(real_out), real_out) + bce(tf.zeros_like(fake_out), fake_out)
            g_grads = gen_tape.gradient(g_loss, generator.trainable_variables)
            d_grads = disc_tape.gradient(d_loss, discriminator.trainable_variables)
            g_opt.apply_gradients(zip(g_grads, generator.trainable_variables))
            d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables))
            return g_loss, d_loss

        run = tf.function(step) if compiled else step
        losses = [tuple(float(v) for v in run(images, z)) for z in noises]
        results.append((losses, generator.get_weights() + discriminator.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


class _ActivityPenalty(keras.layers.Layer):
    def call(self, inputs):
        self.add_loss(1e-2 * tf.reduce_sum(inputs))
        return inputs


def test_add_loss_and_inplace_plus_are_recorded():
    """The guide's "losses tracked by the model": ``loss_value += sum(model.losses)`` inside the tape."""
    inputs = keras.Input(shape=(6,))
    h = _ActivityPenalty()(keras.layers.Dense(4, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(h))
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    x, y = rng.random((8, 6), dtype=np.float32), rng.integers(0, 3, 8)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def step():
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss_value = loss_fn(y, logits)
            loss_value += sum(model.losses)
        return tape.gradient(loss_value, model.trainable_weights)

    eager = step()
    compiled = tf.function(step)()
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    penalty_only = np.asarray(eager[0]) - np.asarray(tf.function(lambda: _without_penalty(model, x, y, loss_fn))()[0])
    assert np.abs(penalty_only).max() > 1e-4   # the penalty's gradient is in there


def _without_penalty(model, x, y, loss_fn):
    with tf.GradientTape() as tape:
        loss_value = loss_fn(y, model(x, training=True))
    return tape.gradient(loss_value, model.trainable_weights)


def test_a_compiled_function_inside_an_eager_tape_is_recorded():
    """A ``tf.function`` forward (no optimizer) called inside an eager tape is one recorded run; its Dropout
    mask is replayed from the random state the call started from."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dropout(0.5)])

    @tf.function
    def forward(x):
        return model(x, training=True) * 2.0

    x = np.random.default_rng(0).random((6, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        y = forward(x)
        loss = tf.reduce_sum(y)
    kernel_grad, bias_grad = tape.gradient(loss, model.trainable_weights)
    mask = (np.asarray(y) != 0).astype(np.float32)   # Dropout's kept units of this very call (scale 2)
    np.testing.assert_allclose(kernel_grad, x.T @ (mask * 4.0), rtol=1e-5)
    np.testing.assert_allclose(bias_grad, (mask * 4.0).sum(0), rtol=1e-5)


def test_variable_fed_to_a_layer_or_model_is_followed():
    # TensorFlow's tutorials call `model(tf.Variable(x))` under a tape and ask for d loss / d x.
    rng = np.random.default_rng(0)
    w, bias = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)
    x0 = rng.normal(size=(4, 3)).astype(np.float32)
    dense = tf.keras.layers.Dense(2, activation="tanh")
    dense.build((None, 3))
    dense.set_weights([w, bias])
    inputs = tf.keras.Input((3,))
    model = tf.keras.Model(inputs, dense(inputs))
    expected = (1.0 - np.tanh(x0 @ w + bias) ** 2) @ w.T
    for fn in (dense, model):
        x = tf.Variable(x0)
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(fn(x))
        np.testing.assert_allclose(np.asarray(tape.gradient(y, x)), expected, rtol=1e-5, atol=1e-6)
        x.assign(x0 * 2.0)   # the program reads the Variable's current value on every call
        np.testing.assert_allclose(np.asarray(fn(x)), np.tanh(2.0 * x0 @ w + bias), rtol=1e-5, atol=1e-6)
