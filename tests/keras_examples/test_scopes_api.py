"""Keras 3's scopes and graph classes against real Keras: ``StatelessScope`` (a model run on substitute weights
in training mode: same outputs, the BatchNormalization statistics' new values collected in the scope, every
variable unchanged after it; ``assign`` inside it; its argument checks) and ``Layer.stateless_call``, ``SymbolicScope``, ``RematScope`` and
``remat`` (identity here: onnxruntime has no rematerialization, so a model trained inside the scope matches
Keras's), ``Operation`` subclasses and ``Function`` graphs, and ``keras.export.ExportArchive`` (refused, naming
the ONNX export).

Tolerance: Keras's initial weights copied; outputs and statistics agree to float32 order (1e-5).
"""
from __future__ import annotations

import numpy as np
import pytest

from .harness import fkeras, keras as real_keras, run_both, to_numpy


def stateless_program(keras, data, init):
    x = data
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(),
                              keras.layers.Dense(2)])
    init(model)
    before = [np.asarray(to_numpy(w)).copy() for w in model.weights]
    substitute = [np.full(tuple(w.shape), 0.5, "float32") if "kernel" in w.path else np.asarray(to_numpy(w))
                  for w in model.weights]
    mapping = list(zip(model.weights, [keras.ops.convert_to_tensor(v) for v in substitute]))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        inside = np.asarray(to_numpy(model(x, training=True)))
        counter = model.layers[1].moving_mean
    moving = scope.get_current_value(counter)
    after = [np.asarray(to_numpy(w)) for w in model.weights]
    return {"inside": inside, "moving_mean": np.asarray(to_numpy(moving)),
            "unchanged": all(np.array_equal(a, b) for a, b in zip(before, after)),
            "outside": np.asarray(to_numpy(model(x, training=False)))}


def test_stateless_scope_matches_keras():
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    want, got = run_both(stateless_program, x, copy_weights=True)
    np.testing.assert_allclose(got["inside"], want["inside"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["moving_mean"], want["moving_mean"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(got["moving_mean"], 0.0)   # the statistics did move inside the scope
    assert got["unchanged"] and want["unchanged"]
    np.testing.assert_allclose(got["outside"], want["outside"], rtol=1e-5, atol=1e-5)


def stateless_call_program(keras, data, init):
    x = data
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    init(model)
    trainable = [np.asarray(to_numpy(v)) * 0.5 for v in model.trainable_variables]
    non_trainable = [np.asarray(to_numpy(v)) for v in model.non_trainable_variables]
    outputs, new_values = model.stateless_call(trainable, non_trainable, x, training=True)
    return {"outputs": np.asarray(to_numpy(outputs)), "new": [np.asarray(to_numpy(v)) for v in new_values],
            "kept": [np.asarray(to_numpy(v)) for v in model.non_trainable_variables]}


def test_stateless_call_matches_keras():
    x = np.random.default_rng(4).normal(size=(6, 4)).astype("float32")
    want, got = run_both(stateless_call_program, x, copy_weights=True)
    np.testing.assert_allclose(got["outputs"], want["outputs"], rtol=1e-5, atol=1e-5)
    for g, w, kept in zip(got["new"], want["new"], got["kept"]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        assert not np.array_equal(g, kept)   # the moving statistics moved, in the returned values only
    with pytest.raises(ValueError, match="must be built"):
        fkeras.layers.Dense(2).stateless_call([], [], x)
    with pytest.raises(ValueError, match="Received list with length 1, but expected 2 variables"):
        dense = fkeras.layers.Dense(2)
        dense(x)
        dense.stateless_call([np.zeros((4, 2), "float32")], [], x)


def test_stateless_scope_assign_and_errors():
    for keras in (real_keras, fkeras):
        v = keras.Variable(np.zeros(3, "float32"))
        untouched = keras.Variable(np.ones(2, "float32"))
        with keras.StatelessScope([(v, np.ones(3, "float32"))]) as scope:
            v.assign(v * 4.0)
            inner = np.asarray(to_numpy(v.value))
        assert inner.tolist() == [4.0, 4.0, 4.0]
        assert np.asarray(to_numpy(v.value)).tolist() == [0.0, 0.0, 0.0]
        assert np.asarray(to_numpy(scope.get_current_value(v))).tolist() == [4.0, 4.0, 4.0]
        assert scope.get_current_value(untouched) is None
        with pytest.raises(ValueError, match="all keys in argument `mapping` must be Variable"):
            keras.StatelessScope([(np.zeros(3), np.zeros(3))])
        with pytest.raises(ValueError, match="shape that matches the corresponding variable shape"):
            keras.StatelessScope([(v, np.zeros(4, "float32"))])


def remat_program(keras, data, init):
    x, y = data
    with keras.RematScope(mode="full"):
        inputs = keras.Input((5,))
        hidden = keras.remat(keras.layers.Dense(8, activation="relu"))(inputs)
        model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    init(model)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    loss = float(to_numpy(model.train_on_batch(x, y)))
    return {"loss": loss, "predict": np.asarray(to_numpy(model.predict(x, verbose=0)))}


def test_remat_scope_trains_as_keras():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(8, 5)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    want, got = run_both(remat_program, data, copy_weights=True)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    np.testing.assert_allclose(got["predict"], want["predict"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Invalid mode 'sometimes'"):
        fkeras.RematScope(mode="sometimes")
    from onnxforge.keras.state_scopes import get_current_remat_mode

    with fkeras.RematScope(mode="larger_than", output_size_threshold=10):
        assert get_current_remat_mode().output_size_threshold == 10
    assert get_current_remat_mode() is None
    with fkeras.SymbolicScope():
        from onnxforge.keras.state_scopes import in_symbolic_scope
        assert in_symbolic_scope()


def test_operation_and_function_match_keras():
    x1 = np.random.default_rng(2).normal(size=(2, 3)).astype("float32")
    x2 = np.random.default_rng(3).normal(size=(2, 3)).astype("float32")
    results = {}
    for keras in (real_keras, fkeras):
        class Scale(keras.Operation):
            def call(self, x):
                return x * 2.0 + 1.0

            def compute_output_spec(self, x):
                return keras.KerasTensor(x.shape, x.dtype)

        a, b = keras.Input((3,)), keras.Input((3,))
        total = keras.ops.add(a, Scale()(b))
        fn = keras.Function([a, b], [total, keras.ops.multiply(total, a)])
        assert isinstance(keras.layers.Dense(2), keras.Operation)
        out = fn([x1, x2])
        results[keras.__name__] = [np.asarray(to_numpy(o)) for o in out] + [np.asarray(to_numpy(Scale()(x1)))]
    for got, want in zip(results["onnxforge.keras"], results["keras"]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_export_archive_points_to_onnx():
    with pytest.raises(NotImplementedError, match=r'model.export\("model.onnx", format="onnx"\)'):
        fkeras.export.ExportArchive()
