"""keras.random's randint, truncated_normal, categorical, shuffle and binomial: statistics of eager draws,
Keras's dtypes and shapes, one traced graph through the full checker; gamma and beta against Keras's own draws."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxforge import ops
from onnxforge.graph import GraphBuilder
from onnxforge.graph.rng import CounterRng
from onnxforge.tracing import TraceContext
from tests.conftest import check_full

N = 20000


def test_randint_is_uniform_on_the_half_open_range():
    x = np.asarray(ops.random.randint((N,), 2, 5, seed=1))
    assert x.dtype == np.int32 and x.min() == 2 and x.max() == 4
    np.testing.assert_allclose(np.bincount(x)[2:] / N, [1 / 3] * 3, atol=0.015)
    assert np.asarray(ops.random.randint((3,), 0, 10, dtype="int64", seed=1)).dtype == np.int64


def test_truncated_normal_stays_within_two_deviations_with_the_truncated_moments():
    x = np.asarray(ops.random.truncated_normal((N,), mean=1.0, stddev=2.0, seed=3))
    assert x.dtype == np.float32 and x.min() >= -3.0 and x.max() <= 5.0
    # A standard normal truncated to [-2, 2] has standard deviation 0.8796.
    assert abs(x.mean() - 1.0) < 0.04 and abs(x.std() - 2 * 0.8796) < 0.04


def test_categorical_draws_with_softmax_probabilities():
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]], "float32")
    with np.errstate(divide="ignore"):
        x = np.asarray(ops.random.categorical(np.log(probs), N, seed=4))
    assert x.shape == (2, N) and x.dtype == np.int32
    for row, p in zip(x, probs):
        np.testing.assert_allclose(np.bincount(row, minlength=3) / N, p, atol=0.015)


def test_shuffle_permutes_along_the_axis_reproducibly():
    x = np.arange(24).reshape(4, 6)
    a = np.asarray(ops.random.shuffle(x, axis=1, seed=5))
    assert not np.array_equal(a, x)
    np.testing.assert_array_equal(np.sort(a, axis=1), x)
    np.testing.assert_array_equal(a, np.asarray(ops.random.shuffle(x, axis=1, seed=5)))
    np.testing.assert_array_equal(a, x[:, a[0]])   # one permutation of the columns, the same in every row


def test_binomial_counts_successes_per_trial():
    x = np.asarray(ops.random.binomial((N,), 10, 0.3, seed=6))
    assert x.dtype == np.float32
    assert abs(x.mean() - 3.0) < 0.05 and abs(x.var() - 2.1) < 0.1
    per_column = np.asarray(ops.random.binomial((4, 3), [0, 5, 10], [0.5, 0.5, 1.0], seed=6))
    assert (per_column[:, 0] == 0).all() and (per_column[:, 1] <= 5).all() and (per_column[:, 2] == 10).all()


def _ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    grid = np.sort(np.concatenate([a, b]))
    return float(np.abs(np.searchsorted(np.sort(a), grid, "right") / a.size
                        - np.searchsorted(np.sort(b), grid, "right") / b.size).max())


@pytest.mark.parametrize("name,args", [("gamma", (0.2,)), ("gamma", (1.0,)), ("gamma", (4.5,)),
                                       ("beta", (0.2, 0.2)), ("beta", (0.5, 3.0))])
def test_gamma_and_beta_draw_kerass_distributions(name, args):
    keras = pytest.importorskip("keras")
    want = keras.ops.convert_to_numpy(getattr(keras.random, name)((N,), *args, seed=3)).astype("float64")
    got = np.asarray(getattr(ops.random, name)((N,), *args, seed=3), "float64")
    assert got.min() >= 0.0 and (name == "gamma" or got.max() <= 1.0)
    # Two samples of 20000 from one distribution differ by more than 0.02 with probability < 0.001; a wrong
    # boost below alpha = 1 or a wrong acceptance test moves the CDF by more than 0.05.
    assert _ks_distance(got, want) < 0.02


def test_gamma_broadcasts_an_array_of_concentrations():
    got = np.asarray(ops.random.gamma((4000, 3), np.array([0.5, 2.0, 9.0]), seed=1))
    np.testing.assert_allclose(got.mean(axis=0), [0.5, 2.0, 9.0], rtol=0.08)


def test_draws_in_one_traced_graph_use_the_programs_stream():
    b = GraphBuilder()
    rng = CounterRng(lambda: b.const(np.asarray([7, 0], np.int64)))
    with TraceContext(b, training=True, random_uniform=rng.uniform).active():
        x = b.input("x", onnx.TensorProto.FLOAT, ("batch", 5))
        outs = [ops.random.randint((3, 4), 0, 7), ops.random.truncated_normal((2, 3)),
                ops.random.categorical(x, 6), ops.random.shuffle(x, axis=1), ops.random.binomial((2,), 4, 0.5),
                ops.random.beta((ops.shape(x)[0],), 0.2, 0.2)]
        for k, v in enumerate(outs):
            b.output(v, f"out{k}")
    model = check_full(b.to_model())
    xv = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": xv})
    assert got[0].shape == (3, 4) and got[0].dtype == np.int32 and 0 <= got[0].min() and got[0].max() < 7
    assert got[1].shape == (2, 3) and np.abs(got[1]).max() <= 2.0
    assert got[2].shape == (3, 6) and got[2].max() < 5
    np.testing.assert_array_equal(np.sort(got[3], axis=1), np.sort(xv, axis=1))
    assert got[4].shape == (2,) and 0 <= got[4].min() and got[4].max() <= 4
    assert got[5].shape == (3,) and got[5].dtype == np.float32 and 0 <= got[5].min() and got[5].max() <= 1


def test_keras_random_namespace_matches_keras_dtypes():
    keras = pytest.importorskip("keras")
    import onnxforge.keras as ok

    for name, args in [("randint", ((2, 3), 0, 5)), ("truncated_normal", ((2, 3),)),
                       ("categorical", (np.zeros((2, 3), "float32"), 4)), ("shuffle", (np.arange(6, dtype="float32"),)),
                       ("binomial", ((2,), 3, 0.5)), ("gamma", ((2,), 0.5)), ("beta", ((2,), 0.5, 2.0))]:
        want = keras.ops.convert_to_numpy(getattr(keras.random, name)(*args, seed=1))
        got = np.asarray(getattr(ok.random, name)(*args, seed=1))
        assert (got.shape, got.dtype) == (want.shape, want.dtype), name
