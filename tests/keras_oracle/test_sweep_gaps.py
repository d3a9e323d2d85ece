"""Small Keras-semantics gaps a docstring sweep found, each checked against Keras 3 (torch backend) on the
same inputs: dtypes of eager merge layers, ops on float64, bfloat16 creation ops, ``keras.Function`` on
bare KerasTensors, ``initializers.get`` on arrays."""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS, fkeras, keras

MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"]


def _both(fn):
    """``fn(lib)`` for Keras and onnxforge, as NumPy arrays."""
    return {name: np.asarray(lib.ops.convert_to_numpy(fn(lib))) for name, lib in LIBS.items()}


# ------------------------------------------------------------------ 1. eager merge layers keep integer dtypes
@pytest.mark.parametrize("dtypes", [("int32", "int32"), ("int64", "int64"), ("int32", "int64"),
                                    ("int32", "float32"), ("bool", "bool")])
def test_eager_merge_layers_keep_keras_dtypes(dtypes):
    base = np.array([[0, 1, 2], [3, 0, 5]])
    x, y = base.astype(dtypes[0]), (base[::-1] % 3).astype(dtypes[1])
    for name in MERGES:
        if "int64" in dtypes and name in ("Maximum", "Minimum"):
            continue   # Keras on torch answers int32 here (its masked merge path), but int64 for Add
        if dtypes == ("bool", "bool") and name == "Subtract":
            with pytest.raises(TypeError, match="bool"):
                fkeras.layers.Subtract()([x, y])   # torch refuses bool subtraction too
            continue
        kwargs = {"axes": 1} if name == "Dot" else {}
        got = _both(lambda lib: getattr(lib.layers, name)(**kwargs)([x, y]))
        assert got["onnxforge"].dtype == got["keras"].dtype, (name, dtypes)
        np.testing.assert_allclose(got["onnxforge"].astype("float64"), got["keras"].astype("float64"),
                                   rtol=1e-6, err_msg=name)


def test_symbolic_merge_of_integers_is_the_compute_dtype_as_in_keras():
    for name in MERGES:
        kwargs = {"axes": 1} if name == "Dot" else {}
        dtypes = {n: getattr(lib.layers, name)(**kwargs)([lib.Input((3,), dtype="int32")] * 2).dtype
                  for n, lib in LIBS.items()}
        assert dtypes["onnxforge"] == dtypes["keras"], name


# ------------------------------------------------------------------ 2. eager ops' dtypes and nan handling
# (float64 arrays compute in float64 eagerly, as in Keras; float64 scalars and Python floats take floatx.)
X = np.array([[0.5, np.nan, -0.25], [0.2, 0.3, 0.4]])
IDX = np.array([[0, 1], [1, 2]])
SEGMENTS = np.array([0, 0, 1, 1, 2, 2])
EAGER_OPS = {
    "erf": lambda o, x: o.erf(x), "erfinv": lambda o, x: o.erfinv(x * 0.5),
    "scatter": lambda o, x: o.scatter(IDX, x[0, :2], (2, 3)),
    "scatter_update": lambda o, x: o.scatter_update(x, IDX, x[1, :2]),
    "slice_update": lambda o, x: o.slice_update(x, (0, 1), x[1:, :2]),
    "segment_sum": lambda o, x: o.segment_sum(x.reshape(-1), SEGMENTS, 3),
    "segment_max": lambda o, x: o.segment_max(x.reshape(-1), SEGMENTS, 3),
    "nansum": lambda o, x: o.nansum(x, axis=1), "nan_to_num": lambda o, x: o.nan_to_num(x),
    "sin": lambda o, x: o.sin(x), "add_int": lambda o, x: o.add(x, np.arange(3, dtype="int32")),
}
NAN_OPS = {name: (lambda name: lambda o, x: getattr(o, name)(x, axis=1))(name)
           for name in ["nanmean", "nanmax", "nanmin", "nanprod", "nanstd", "nanvar", "nanmedian", "nancumsum",
                        "nancumprod", "nanargmax", "nanargmin"]}
NAN_OPS["nanquantile"] = lambda o, x: o.nanquantile(x, 0.5, axis=1)


def _input(dtype):
    return X.astype(dtype) if dtype.startswith("float") else np.array([[1, 5, 3], [4, 2, 6]], dtype)


# erfinv of integers is inf / nan everywhere but 0: a comparison of nothing, so that pair is not generated.
@pytest.mark.parametrize("name, dtype", [(name, dtype) for name in sorted(EAGER_OPS)
                                         for dtype in ("float32", "float64", "int32")
                                         if (name, dtype) != ("erfinv", "int32")])
def test_eager_ops_keep_keras_dtype(name, dtype):
    got = _both(lambda lib: EAGER_OPS[name](lib.ops, _input(dtype)))
    assert got["onnxforge"].dtype == got["keras"].dtype
    np.testing.assert_allclose(got["onnxforge"], got["keras"], rtol=1e-6, atol=1e-7)


def test_float64_scalars_meet_float32_arrays_as_numbers_and_float64_arrays_stay_float64():
    x = np.ones(2, "float32")
    for fn in (lambda o: o.ops.maximum(x, np.float64(0.5)), lambda o: o.ops.add(x, np.array(0.5)),
               lambda o: o.ops.add(x, np.array([0.5, 1.0])), lambda o: o.ops.convert_to_tensor(np.ones(2)),
               lambda o: o.ops.convert_to_tensor([0.5, 1.0]), lambda o: o.ops.convert_to_tensor(np.float64(2)),
               lambda o: o.ops.clip(np.array([-1.0, 0.5, 3.0]), np.array(0.0), np.float64(2.0)),
               lambda o: o.ops.clip(np.array([-1.0, 0.5, 3.0]), 0, o.ops.cast(2, "float64"))):
        got = _both(fn)
        assert got["onnxforge"].dtype == got["keras"].dtype


LOSS_CALLS = {
    "mse_function": lambda k, t, p: k.losses.mean_squared_error(t, p),
    "cce_function": lambda k, t, p: k.losses.categorical_crossentropy(t, p),
    "sparse_cce_function": lambda k, t, p: k.losses.sparse_categorical_crossentropy(np.array([1, 0]), p),
    "mse_object": lambda k, t, p: k.losses.MeanSquaredError()(t, p),
    "cce_object": lambda k, t, p: k.losses.CategoricalCrossentropy()(t, p),
}


@pytest.mark.parametrize("pred_dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(LOSS_CALLS))
def test_eager_loss_calls_keep_keras_dtype(name, pred_dtype):
    # Loss functions compute in the predictions' dtype, Loss objects in their own (floatx).
    y_true, y_pred = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.2, 0.8], [0.6, 0.4]], pred_dtype)
    got = _both(lambda lib: LOSS_CALLS[name](lib, y_true, y_pred))
    assert got["onnxforge"].dtype == got["keras"].dtype
    np.testing.assert_allclose(got["onnxforge"], got["keras"], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "int32"])
@pytest.mark.parametrize("name", sorted(NAN_OPS))
def test_eager_nan_ops_match_keras(name, dtype):
    got = _both(lambda lib: NAN_OPS[name](lib.ops, _input(dtype)))
    assert got["onnxforge"].dtype == got["keras"].dtype
    np.testing.assert_allclose(got["onnxforge"], got["keras"], rtol=1e-6)


# ------------------------------------------------------------------ 3. bfloat16 creation ops, eagerly
BF16_CREATION = {
    "ones": lambda o: o.ones((2, 3), dtype="bfloat16"), "zeros": lambda o: o.zeros((2,), dtype="bfloat16"),
    "full": lambda o: o.full((2,), 1.5, dtype="bfloat16"), "eye": lambda o: o.eye(3, dtype="bfloat16"),
    "identity": lambda o: o.identity(2, dtype="bfloat16"), "tri": lambda o: o.tri(3, dtype="bfloat16"),
    "arange": lambda o: o.arange(0, 7, 2, dtype="bfloat16"),
    "linspace": lambda o: o.linspace(0, 1, 5, dtype="bfloat16"),
    "full_like": lambda o: o.full_like(np.ones(3, "float32"), 2.5, dtype="bfloat16"),
    "zeros_like": lambda o: o.zeros_like(np.ones(3, "float32"), dtype="bfloat16"),
    "cast": lambda o: o.cast(np.array([1.5, 2.25, 1e3 + 3], "float32"), "bfloat16"),
    "arange_float16": lambda o: o.arange(0, 7, 2, dtype="float16"),
}


@pytest.mark.parametrize("name", sorted(BF16_CREATION))
def test_bfloat16_creation_ops_give_what_keras_gives(name):
    want = BF16_CREATION[name](keras.ops)
    got = np.asarray(BF16_CREATION[name](fkeras.ops))
    assert got.dtype.name == str(want.dtype).replace("torch.", "")
    np.testing.assert_array_equal(got.astype("float32"), want.float().numpy())


def test_bfloat16_arithmetic_on_the_cpu_names_the_op_and_dtype():
    x = fkeras.ops.ones((2,), dtype="bfloat16")
    assert np.asarray(fkeras.ops.cast(x, "float32")).tolist() == [1.0, 1.0]   # fed back in, cast only
    with pytest.raises(RuntimeError, match=r"ops\.add .*bfloat16"):
        fkeras.ops.add(x, 1.0)


# ------------------------------------------------------------------ 4. keras.Function on bare KerasTensors
def test_function_on_bare_keras_tensors_matches_keras():
    x = np.arange(6, dtype="float32").reshape(2, 3)
    results = {}
    for name, lib in LIBS.items():
        a, b = lib.KerasTensor((None, 3)), lib.KerasTensor((None, 3))
        fn = lib.Function([a, b], lib.ops.add(lib.ops.multiply(a, 2.0), b))
        assert [t.shape for t in fn.inputs] == [(None, 3), (None, 3)]
        c = lib.KerasTensor((None, 3))
        by_key = lib.Function({"c": c}, {"o": lib.ops.exp(c)})
        results[name] = (lib.ops.convert_to_numpy(fn([x, x])), lib.ops.convert_to_numpy(by_key({"c": x})["o"]))
    for got, want in zip(results["onnxforge"], results["keras"]):
        np.testing.assert_allclose(got, want, rtol=1e-6)


# ------------------------------------------------------------------ 5. initializers.get(array or tensor)
def test_initializers_get_takes_an_array_or_tensor_as_keras_does():
    value = np.arange(6, dtype="float64").reshape(3, 2)
    outs = {}
    for name, lib in LIBS.items():
        for ident in (value, lib.ops.convert_to_tensor(value.astype("float32"))):
            init = lib.initializers.get(ident)
            got = lib.ops.convert_to_numpy(init((3, 2), dtype="float32"))
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, value)
            # (Keras on torch prints the tensor's shape as torch.Size([3, 2]))
            with pytest.raises(ValueError, match=r"Expected `shape` to be .*3, 2.* for direct tensor as "
                                                 r"initializer\. Received shape=\(2, 3\)"):
                init((2, 3))
        for bad in (3, [1.0, 2.0], lib.Variable(np.ones(2, "float32"))):   # Keras takes none of these
            with pytest.raises(ValueError, match="Could not interpret initializer identifier"):
                lib.initializers.get(bad)
        layer = lib.layers.Dense(2, kernel_initializer=value)
        outs[name] = lib.ops.convert_to_numpy(layer(np.ones((1, 3), "float32")))
    np.testing.assert_array_equal(outs["onnxforge"], outs["keras"])
