"""Keras 3's weight-only int4 quantization (``quantize("int4")``) of Dense, Embedding and EinsumDense against real
Keras (torch backend) from equal weights: the packed kernels, scales, zero points and group indices, outputs, one
training step, the graphs and the ``.keras`` files both ways.

Tolerances: the kernel is unpacked and dequantized in float32 as Keras does, but the products run in another
summation order than torch's: 1e-5 relative.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.keras_examples.harness import fkeras, keras, to_numpy
from tests.layers import test_quantize
from tests.layers.test_quantize import EQUATIONS

fresh_names = test_quantize.fresh_names   # the autouse fixture: layer names counted from zero in each test


@pytest.mark.parametrize("block_size", [-1, 4, None])
def test_dense_and_embedding_int4_match_keras(block_size, tmp_path, checked):
    """Keras's weight-only int4 Dense and Embedding: per channel (``block_size=-1``) or in groups with zero points
    (``4``: the hidden Dense's 10 input rows make 3 groups, the last padded; ``None`` here means
    ``quantize("int4")``, Keras's default groups of 128). The kernel is unpacked and multiplied in float32 in
    another order than torch's: 1e-6 of the outputs' scale. Predictions, one SGD step, and the files both ways."""
    rng = np.random.RandomState(9)
    x, y = rng.randint(0, 9, (6, 5)), rng.randn(6, 5).astype("float32")
    runs = []
    for api in (keras, fkeras):
        inp = api.Input((5,), dtype="int32")
        h = api.layers.Flatten()(api.layers.Embedding(9, 2, name="e")(inp))
        model = api.Model(inp, api.layers.Dense(5, name="d")(api.layers.Dense(7, activation="relu", name="h")(h)))
        if runs:
            model.set_weights(runs[0]["initial"])
        run = {"initial": [to_numpy(w) for w in model.get_weights()]}
        if block_size is None:
            model.quantize("int4")
        else:
            model.quantize(config=api.quantizers.Int4QuantizationConfig(block_size=block_size))
        run["policy"] = model.get_layer("d").dtype_policy.name
        run["weights"] = [(w.path, str(w.dtype), tuple(w.shape)) for w in model.weights]
        run["predict"] = to_numpy(model.predict(x, verbose=0))
        model.compile(optimizer=api.optimizers.SGD(0.1), loss="mse")
        model.train_on_batch(x, y)
        run["after"] = to_numpy(model.predict(x, verbose=0))
        run["values"] = [to_numpy(w) for w in model.get_weights()]
        if api is fkeras:   # the unpacking is plain ai.onnx; the packed kernel stays int8 in the exported file
            for program in model.compiled_programs.values():
                checked(program.model)
            exported = checked(onnx.load(model.export(tmp_path / "int4.onnx")))
            assert {tuple(t.dims) for t in exported.graph.initializer if t.data_type == onnx.TensorProto.INT8} >= \
                {(10, 4), (7, 3), (9, 1)}
        run["path"] = tmp_path / f"{'ours' if api is fkeras else 'theirs'}.keras"
        model.save(run["path"])
        runs.append(run)
    theirs, ours = runs
    assert ours["policy"] == theirs["policy"] == f"int4/{128 if block_size is None else block_size}_from_float32"
    assert ours["weights"] == theirs["weights"]
    for a, b in zip(ours["values"], theirs["values"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours["predict"], theirs["predict"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours["after"], theirs["after"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(keras.models.load_model(ours["path"]).predict(x, verbose=0)),
                               theirs["after"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fkeras.models.load_model(theirs["path"]).predict(x, verbose=0), ours["after"],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("block_size", [-1, 2])
def test_einsum_dense_int4_matches_keras(block_size):
    """Keras's weight-only int4 EinsumDense: the kernel viewed in 2-D (contracted sizes by the rest, reshaped in its
    own axis order, as Keras does even when the contracted axis is not the first: ``abc,dc->abd``), quantized per
    column or in groups of rows. Weights equal, outputs to float32 order (1e-5)."""
    rng = np.random.RandomState(10)
    for equation, output_shape, bias_axes, input_shape in EQUATIONS[1:3] + [("abc,dc->abd", (None, 4), "d", (3, 5))]:
        x = rng.randn(2, *input_shape).astype("float32")

        def build(api):
            inp = api.Input(input_shape)
            layer = api.layers.EinsumDense(equation, output_shape=output_shape, bias_axes=bias_axes, name="ed")
            return api.Model(inp, layer(inp)), layer

        theirs, their_layer = build(keras)
        ours, our_layer = build(fkeras)
        ours.set_weights([to_numpy(w) for w in theirs.get_weights()])
        for api, model in ((keras, theirs), (fkeras, ours)):
            model.quantize(config=api.quantizers.Int4QuantizationConfig(block_size=block_size))
        assert [(w.path, tuple(w.shape)) for w in our_layer.weights] == \
            [(w.path, tuple(w.shape)) for w in their_layer.weights]
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_array_equal(a, to_numpy(b))
        np.testing.assert_allclose(ours.predict(x, verbose=0), to_numpy(theirs.predict(x, verbose=0)), rtol=1e-5,
                                   atol=1e-6, err_msg=equation)
