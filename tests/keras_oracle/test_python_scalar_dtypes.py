"""Python numbers take Keras 3's dtypes (torch backend as the oracle): ints are int32 (int64 only past int32's
range), floats floatx, ``ops.full`` is floatx whatever its fill, ``ops.arange`` of integer bounds int32, lists
are tensors of their own while a scalar takes the type of the tensor it meets; NumPy int64 / float64 arrays
keep their type. Checked eagerly, in a functional model's symbolic dtypes and outputs, and in a layer's
traced ``call`` where ``ops.shape`` dims feed the creation ops."""
from __future__ import annotations

import numpy as np
import pytest

from .common import fkeras, keras

I32 = np.array([1, 2, 3], "int32")
F16 = np.array([1.5, 2.0, 3.0], "float16")
I64 = np.array([1, 2, 3], "int64")
F64 = np.array([1.5, 2.0, 3.0], "float64")
B = np.array([True, False, True])

CASES = {
    "arange(5)": lambda o: o.arange(5), "arange(1,7,2)": lambda o: o.arange(1, 7, 2),
    "arange(0,3,0.5)": lambda o: o.arange(0, 3, 0.5), "full((2,),3)": lambda o: o.full((2,), 3),
    "full((2,),True)": lambda o: o.full((2,), True), "full((2,3),[1,2,3])": lambda o: o.full((2, 3), [1, 2, 3]),
    "ctt(1)": lambda o: o.convert_to_tensor(1), "ctt(1.5)": lambda o: o.convert_to_tensor(1.5),
    "ctt(True)": lambda o: o.convert_to_tensor(True), "ctt([[1],[2]])": lambda o: o.convert_to_tensor([[1], [2]]),
    "ctt(2**40)": lambda o: o.convert_to_tensor(2 ** 40), "ctt(I64)": lambda o: o.convert_to_tensor(I64),
    "ctt(F64)": lambda o: o.convert_to_tensor(F64), "array(3)": lambda o: o.array(3),
    "add(1,2)": lambda o: o.add(1, 2), "add(True,1)": lambda o: o.add(True, 1),
    "add(B,B)": lambda o: o.add(B, B), "multiply(B,True)": lambda o: o.multiply(B, True),
    "where(B,1,2)": lambda o: o.where(B, 1, 2), "sum([1,2])": lambda o: o.sum([1, 2]),
    "I32+1": lambda o: o.add(I32, 1), "I32*1.5": lambda o: o.multiply(I32, 1.5), "F16+1": lambda o: o.add(F16, 1),
    "F16+[1.,2.,3.]": lambda o: o.add(F16, [1.0, 2.0, 3.0]), "I64+1": lambda o: o.add(I64, 1),
    "ones_like([1,2])": lambda o: o.ones_like([1, 2]), "linspace(0,10,5)": lambda o: o.linspace(0, 10, 5),
    # index results Keras gives as int32 whatever the input's type
    "bincount([0,1,1])": lambda o: o.bincount([0, 1, 1]), "nonzero(I64)": lambda o: o.nonzero(I64 - 2)[0],
    "searchsorted([1,3],2)": lambda o: o.searchsorted([1, 3], 2),
}


@pytest.mark.parametrize("name", list(CASES))
def test_eager_dtypes_and_values_match_keras(name):
    want = keras.ops.convert_to_numpy(CASES[name](keras.ops))
    got = np.asarray(CASES[name](fkeras.ops))
    assert got.dtype == want.dtype, name
    np.testing.assert_array_equal(got, want)


def _probe(lib):
    ops = lib.ops

    class Probe(lib.layers.Layer):
        """Batched outputs first (a functional model can return them), then per-call scalars and vectors."""

        def call(self, x, f):
            n, b = ops.shape(x)[1], ops.shape(x)[0]
            batched = [x + 1, x * 2, x + 1.5, f + 1, ops.expand_dims(ops.arange(n), 0) + x, ops.full((b,), n),
                       ops.ones((b, 1)), ops.where(x > 1, x, 0), x + b, x[:, :1] * b + b // 2, f * b]
            rest = [ops.arange(n), ops.arange(3), ops.convert_to_tensor(n), ops.add(1, 2), ops.full((2,), 3),
                    ops.array([1, 2]), ops.cast(n, "float32"), ops.convert_to_tensor(b), ops.arange(b),
                    ops.convert_to_tensor(b * 2)]
            return batched + rest
    return Probe()


X = np.array([[1, 2, 3], [4, 5, 6]], "int32")
XF = X.astype("float16")


def test_symbolic_dtypes_and_traced_outputs_match_keras():
    results = {}
    for name, lib in (("keras", keras), ("onnxforge", fkeras)):
        x, f = lib.Input((3,), dtype="int32"), lib.Input((3,), dtype="float16")
        outs = _probe(lib)(x, f)[:11]
        model = lib.Model([x, f], outs)
        symbolic = [str(t.dtype) for t in outs]
        predicted = [np.asarray(v) for v in model.predict([X, XF], verbose=0)]
        called = [np.asarray(lib.ops.convert_to_numpy(v)) for v in _probe(lib)(X, XF)]
        results[name] = symbolic, predicted, called
    (k_sym, k_pred, k_call), (o_sym, o_pred, o_call) = results["keras"], results["onnxforge"]
    assert o_sym == k_sym
    for got, want in [*zip(o_pred, k_pred), *zip(o_call, k_call)]:
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
