"""The custom-gradient programs of ``test_custom_gradient.py``, written once against a TensorFlow-like module
(``tensorflow`` itself, or ``onnxforge`` imported as ``tf``) and a Keras (Keras 3 on TensorFlow, or
onnxforge's): run as a script with TensorFlow they write the reference results to the npz file ``argv[1]``."""
from __future__ import annotations

import os
import sys

import numpy as np

RNG = np.random.default_rng(7)
X = np.array([[0.3, 100.0, -3.0], [1.6, -0.4, 2.5]], np.float32)
C = RNG.normal(0.0, 2.0, X.shape).astype(np.float32)
W = RNG.normal(0.0, 1.0, (3, 4)).astype(np.float32)
DATA_X = RNG.normal(0.0, 1.0, (16, 5)).astype(np.float32)
DATA_Y = RNG.normal(0.0, 1.0, (16, 1)).astype(np.float32)


def functions(tf):
    """The custom-gradient functions of TensorFlow's docs and common practice."""

    @tf.custom_gradient
    def log1pexp(x):   # TensorFlow's docs: finite at x = 100 where plain autodiff gives nan
        e = tf.exp(x)

        def grad(upstream):
            return upstream * (1 - 1 / (1 + e))
        return tf.math.log(1 + e), grad

    @tf.custom_gradient
    def straight_through(x):   # round forward, identity backward
        return tf.round(x), lambda dy: dy

    @tf.custom_gradient
    def clip_gradient(x):
        return tf.identity(x), lambda dy: tf.clip_by_norm(dy, 0.5)

    @tf.custom_gradient
    def reverse(x):
        return tf.identity(x), lambda dy: -0.7 * dy

    @tf.custom_gradient
    def pair(x, y):   # two inputs, two outputs, gradients that are not the derivative
        def grad(d1, d2):
            return d1 * y + d2, d1 * x * 3.0
        return (x * y, x + y), grad

    return {"log1pexp": log1pexp, "straight_through": straight_through, "clip_gradient": clip_gradient,
            "reverse": reverse}, pair


def with_variable(tf, w):
    """A function reading a Variable it is not given: ``grad`` gets ``variables=`` (scaled, to tell it apart)."""

    @tf.custom_gradient
    def project(x):
        def grad(dy, variables=None):
            assert variables is not None and len(variables) == 1
            return tf.matmul(dy, tf.transpose(w)), [2.0 * tf.matmul(tf.transpose(x), dy)]
        return tf.matmul(x, w), grad

    return project


def keras_reversal(keras):
    """A gradient-reversal layer (domain adaptation) with Keras's portable ``grad(*args, upstream=None)``."""
    ops = keras.ops

    class GradientReversal(keras.layers.Layer):
        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            @ops.custom_gradient
            def flip(x):
                def grad(*args, upstream=None):
                    if upstream is None:
                        (upstream,) = args
                    return ops.multiply(upstream, -self.factor)
                return ops.multiply(x, 1.0), grad
            return flip(x)

    return GradientReversal


def reversal_model(keras):
    keras.utils.set_random_seed(3)
    layer = keras_reversal(keras)
    inputs = keras.Input((5,))
    h = keras.layers.Dense(4, activation="tanh", kernel_initializer="glorot_uniform")(inputs)
    h = layer(0.5)(h)
    out = keras.layers.Dense(1)(h)
    model = keras.Model(inputs, out)
    rng = np.random.default_rng(11)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _traced(tf, fn):
    """A ``tf.function`` body taking the gradient through ``fn`` with a tape (a closure: tf.function unwraps
    decorated functions given as default arguments)."""
    def traced(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * tf.constant(C))
        return tape.gradient(loss, x)
    return traced


def eager_results(tf):
    out = {}
    fns, pair = functions(tf)
    for name, fn in fns.items():
        x = tf.Variable(X)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(fn(x) * tf.constant(C))
        out[f"eager_{name}"] = np.asarray(tape.gradient(loss, x))

        out[f"function_{name}"] = np.asarray(tf.function(_traced(tf, fn), autograph=False)(tf.constant(X)))
    x, y = tf.Variable(X), tf.Variable(C)
    with tf.GradientTape() as tape:
        a, b = pair(x, y)
        loss = tf.reduce_sum(a * 2.0 + b * b)
    gx, gy = tape.gradient(loss, [x, y])
    out["eager_pair_x"], out["eager_pair_y"] = np.asarray(gx), np.asarray(gy)
    w = tf.Variable(W)
    project = with_variable(tf, w)
    x = tf.Variable(X)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(project(x)))
    gx, gw = tape.gradient(loss, [x, w])
    out["eager_variable_x"], out["eager_variable_w"] = np.asarray(gx), np.asarray(gw)
    return out


def model_results(tf, keras):
    """The reversal layer inside a model called eagerly under a tape, and fit (the compiled step)."""
    model = reversal_model(keras)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(DATA_X)))
    out = {f"tape_w{k}": np.asarray(g) for k, g in enumerate(tape.gradient(loss, model.trainable_weights))}
    return {**out, **fit_results(keras)}


def fit_results(keras):
    model = reversal_model(keras)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(DATA_X, DATA_Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return {f"fit_w{k}": np.asarray(w) for k, w in enumerate(model.get_weights())}


if __name__ == "__main__":
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import tensorflow as tf

    results = {**eager_results(tf), **model_results(tf, keras)}
    np.savez(sys.argv[1], **results)
