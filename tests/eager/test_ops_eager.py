"""``onnxforge.ops`` and ``keras.random`` on arrays: Keras's numbers, Keras's seed semantics, one program per
signature, and results that behave like Keras backend tensors."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of
from onnxforge import ops
from onnxforge.eager import executor
from onnxforge.eager_tensor import EagerTensor

from .keras_oracle import keras, to_numpy

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
RNG = np.random.default_rng(3)
A = RNG.normal(size=(3, 4)).astype("float32")
B = RNG.normal(size=(4, 2)).astype("float32")
POS = RNG.uniform(0.5, 2.0, size=(3, 4)).astype("float32")


@pytest.mark.parametrize("name,args,kwargs", [
    ("exp", (A,), {}), ("log", (POS,), {}), ("sqrt", (POS,), {}), ("tanh", (A,), {}), ("abs", (A,), {}),
    ("matmul", (A, B), {}), ("add", (A, 1.5), {}), ("multiply", (A, POS), {}), ("divide", (A, POS), {}),
    ("maximum", (A, 0.0), {}), ("where", (A > 0, A, POS), {}), ("clip", (A, -0.5, 0.5), {}),
    ("sum", (A,), {"axis": 1}), ("mean", (A,), {"axis": 0, "keepdims": True}), ("max", (A,), {}),
    ("var", (A,), {"axis": -1}), ("logsumexp", (A,), {"axis": 1}), ("argmax", (A,), {"axis": 1}),
    ("reshape", (A, (2, -1)), {}), ("transpose", (A,), {}), ("expand_dims", (A, 1), {}),
    ("concatenate", ([A, POS],), {"axis": 1}), ("stack", ([A, POS],), {}), ("tile", (A, (2, 1)), {}),
    ("arange", (2, 9, 3), {}), ("ones", ((2, 3),), {}), ("zeros_like", (A,), {}), ("one_hot", (np.array([0, 2]), 3), {}),
    ("square", (A,), {}), ("softmax", (A,), {}), ("sigmoid", (A,), {}), ("relu", (A,), {}),
    ("slice", (A, (1, 1), (2, 2)), {}), ("take", (A, np.array([2, 0])), {"axis": 1}),
])
def test_ops_on_arrays_match_keras_ops(name, args, kwargs):
    got = getattr(ops, name)(*args, **kwargs)
    want = to_numpy(getattr(keras.ops, name)(*args, **kwargs))
    assert isinstance(got, EagerTensor)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_repeated_call_reuses_its_program():
    ops.exp(A)
    before = executor.compiled
    for _ in range(5):
        ops.exp(A)
        ops.exp(POS)             # same signature: shape and dtype
    assert executor.compiled == before
    ops.exp(B)                   # another shape: one more program
    assert executor.compiled == before + 1


def test_eager_tensors_work_like_keras_backend_tensors():
    dense = of.layers.Dense(3)
    t = dense(A)
    assert t.numpy().__class__ is np.ndarray and t.shape == (3, 3) and t.dtype == "float32"
    np.testing.assert_allclose(np.asarray(t), ops.convert_to_numpy(t))
    assert isinstance(t + 1, EagerTensor) and float(t[0, 0] * 2) == pytest.approx(2 * float(t[0, 0]))
    t *= 255                                     # the GAN callback's in-place scaling
    np.testing.assert_allclose(t.numpy(), dense(A).numpy() * 255, rtol=1e-6)
    head = of.layers.Dense(2)
    np.testing.assert_allclose(head(t), ops.convert_to_numpy(head(np.asarray(t))))     # back into a layer
    assert ops.is_tensor(t) and ops.shape(t) == (3, 3)
    assert repr(ops.ones((1,))).startswith("tensor(")


def test_random_ops_follow_keras_seed_semantics():
    a, b = ops.random.normal((2, 3)), ops.random.normal((2, 3))
    assert a.shape == (2, 3) and not np.allclose(a, b)                           # seed=None: fresh draws
    np.testing.assert_array_equal(ops.random.uniform((4,), seed=5), ops.random.uniform((4,), seed=5))  # int seed
    gen = ops.random.SeedGenerator(1337)
    first, second = ops.random.normal((3,), seed=gen), ops.random.normal((3,), seed=gen)
    assert not np.allclose(first, second)                                        # the generator advances
    np.testing.assert_array_equal(gen.state.numpy(), [1337, 2])
    again = ops.random.SeedGenerator(1337)
    np.testing.assert_array_equal(ops.random.normal((3,), seed=again), first)    # same seed, same stream
    of.keras.utils.set_random_seed(11)
    c = of.keras.random.normal((5,))
    of.keras.utils.set_random_seed(11)
    np.testing.assert_array_equal(of.keras.random.normal((5,)), c)             # repeatable after set_random_seed
    big = ops.random.normal((20000,), mean=1.0, stddev=2.0, seed=1)
    assert abs(float(ops.mean(big)) - 1.0) < 0.05 and abs(float(ops.std(big)) - 2.0) < 0.05
    u = ops.random.uniform((20000,), minval=-1.0, maxval=3.0, seed=2)
    assert float(u.min()) >= -1.0 and float(u.max()) < 3.0 and abs(float(u.mean()) - 1.0) < 0.05
