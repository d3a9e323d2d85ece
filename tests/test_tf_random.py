"""``tf.random`` beyond uniform/normal (``onnxforge/tf_compat/random_fns.py``): gamma, truncated_normal and the
stateless draws, with TensorFlow's shapes and argument names (checked against TensorFlow) and their
distributions (moments, within bounds several standard errors wide, so the tests fail on a wrong sampler)."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

rtf = pytest.importorskip("tensorflow")


@pytest.mark.parametrize("shape, alpha, beta", [([7], 0.5, None), ([3, 2], [0.5, 2.0], None),
                                                 ([5], [[1.0], [3.0]], [2.0, 4.0]), ([], 2.0, 0.5)])
def test_gamma_shapes_are_tensorflows(shape, alpha, beta):
    got = np.asarray(tf.random.gamma(shape, alpha, beta, seed=3))
    want = rtf.random.gamma(shape, alpha, beta, seed=3).numpy()
    assert got.shape == want.shape and got.dtype == want.dtype
    assert (got > 0).all()


def test_gamma_moments_per_concentration_and_rate():
    n = 20000
    draws = np.asarray(tf.random.gamma([n], [0.3, 1.0, 4.0], beta=[1.0, 2.0, 0.5], seed=5))
    alpha, rate = np.array([0.3, 1.0, 4.0]), np.array([1.0, 2.0, 0.5])
    mean, var = alpha / rate, alpha / rate ** 2
    assert (np.abs(draws.mean(0) - mean) < 6 * np.sqrt(var / n)).all(), (draws.mean(0), mean)
    np.testing.assert_allclose(draws.var(0), var, rtol=0.12)


def test_gamma_inside_a_traced_function_draws_anew_each_call():
    @tf.function
    def mix(x):
        return tf.random.gamma([4], 0.4) * x

    a, b = np.asarray(mix(np.float32(1))), np.asarray(mix(np.float32(1)))
    assert a.shape == (4,) and (a > 0).all() and not np.array_equal(a, b)


def test_truncated_normal_stays_within_two_standard_deviations():
    draws = np.asarray(tf.random.truncated_normal([20000], mean=1.0, stddev=2.0, seed=2))
    assert draws.min() >= -3.0 and draws.max() <= 5.0
    # The normal truncated at +-2 sigma has a standard deviation of 0.8796 sigma.
    np.testing.assert_allclose(draws.std(), 2.0 * 0.8796, rtol=0.03)
    np.testing.assert_allclose(draws.mean(), 1.0, atol=0.05)


@pytest.mark.parametrize("fn", ["stateless_uniform", "stateless_normal", "stateless_truncated_normal"])
def test_stateless_draws_are_fixed_by_their_seed(fn):
    draw = getattr(tf.random, fn)
    a, b, c = (np.asarray(draw([2, 3], seed=s)) for s in ([1, 2], [1, 2], [1, 3]))
    assert a.shape == getattr(rtf.random, fn)([2, 3], seed=[1, 2]).shape == (2, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_stateless_seed_must_be_two_integers():
    with pytest.raises(ValueError, match=r"stateless_uniform: seed must have shape \[2\]"):
        tf.random.stateless_uniform([2], seed=[1, 2, 3])
