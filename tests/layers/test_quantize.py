"""Keras 3's int8 quantization (``layer.quantize("int8")``) of Dense, EinsumDense and Embedding against real Keras
(torch backend) from equal weights, its ONNX graphs, its ``.keras`` files, and ``keras.quantizers``.

Tolerances: the quantized forward pass is integer arithmetic between float32 scalings that both frameworks do in
the same order, so outputs agree to float32 rounding (1e-6 relative; observed bit-equal). The inputs' gradient
(Keras's straight-through custom gradient) is a float matmul / einsum with the dequantized kernel: 1e-5.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import onnx
import pytest

from tests.keras_examples.harness import fkeras, keras, to_numpy, torch

@pytest.fixture(autouse=True)
def fresh_names():
    """Both frameworks count layer names from zero in each test: weight paths (``dense/kernel``) are compared
    across them, and earlier tests in the process advance one framework's counters and not the other's."""
    keras.backend.clear_session()
    fkeras.backend.clear_session()


EQUATIONS = [("ab,bc->ac", 4, "c", (5,)), ("abc,cd->abd", (None, 4), "d", (3, 5)),
             ("abc,cde->abde", (None, 2, 4), "de", (3, 5)), ("abcd,cde->abe", (None, 4), "e", (3, 2, 5)),
             ("abc,bcd->ad", 4, "d", (3, 5)), ("abc,cd->abd", (None, 4), None, (3, 5))]


def _both(build, x):
    """``build(api)`` -> (model, layer) in both frameworks with Keras's weights copied, quantized."""
    theirs, their_layer = build(keras)
    ours, our_layer = build(fkeras)
    ours.set_weights([to_numpy(w) for w in theirs.get_weights()])
    theirs.quantize("int8")
    ours.quantize("int8")
    return theirs, their_layer, ours, our_layer


@pytest.mark.parametrize("equation,output_shape,bias_axes,input_shape", EQUATIONS)
def test_einsum_dense_int8_matches_keras(equation, output_shape, bias_axes, input_shape):
    rng = np.random.RandomState(0)
    x = rng.randn(2, *input_shape).astype("float32")

    def build(api):
        inp = api.Input(input_shape)
        layer = api.layers.EinsumDense(equation, output_shape=output_shape, bias_axes=bias_axes)
        return api.Model(inp, layer(inp)), layer

    theirs, their_layer, ours, our_layer = _both(build, x)
    assert [(w.path, tuple(w.shape), str(w.dtype)) for w in our_layer.weights] == \
        [(w.path, tuple(w.shape), str(w.dtype)) for w in their_layer.weights]
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, to_numpy(b))
    np.testing.assert_allclose(ours.predict(x, verbose=0), to_numpy(theirs.predict(x, verbose=0)), rtol=1e-6,
                               atol=1e-7)
    # The inputs' gradient: Keras's custom gradient (upstream times the dequantized kernel).
    upstream = rng.randn(*ours.output_shape[:0], 2, *ours.output_shape[1:]).astype("float32")
    xt = torch.tensor(x, requires_grad=True)
    (their_layer(xt) * torch.tensor(upstream)).sum().backward()
    xv = fkeras.Variable(x)
    import onnxforge
    with onnxforge.GradientTape() as tape:
        loss = fkeras.ops.sum(our_layer(xv) * upstream)
    np.testing.assert_allclose(np.asarray(tape.gradient(loss, xv)), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_ellipsis_equation_quantizes():
    """``...b,bc->...c``: Keras 3.15 fails here (its analysis takes ``len()`` of the input rank); onnxforge
    quantizes it as the equivalent ``abc,cd->abd`` form and gets the same outputs."""
    rng = np.random.RandomState(1)
    x = rng.randn(2, 3, 5).astype("float32")
    outs = []
    for eq in ("...b,bc->...c", "abc,cd->abd"):
        inp = fkeras.Input((3, 5))
        layer = fkeras.layers.EinsumDense(eq, output_shape=(None, 4) if eq[0] == "a" else 4, bias_axes="c"
                                          if eq[0] == "." else "d", kernel_initializer="ones")
        model = fkeras.Model(inp, layer(inp))
        layer.kernel.assign(rng.randn(5, 4).astype("float32") if not outs else outs[0][1])
        kernel = layer.kernel.numpy().copy()
        model.quantize("int8")
        outs.append((model.predict(x, verbose=0), kernel))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])


def test_dense_and_embedding_training_step_matches_keras():
    """One SGD step after quantizing: biases and LoRA factors move, int8 weights and scales stay."""
    rng = np.random.RandomState(2)
    ids, y = rng.randint(0, 9, (8, 5)), rng.randn(8, 3).astype("float32")

    def build(api):
        inp = api.Input((5,), dtype="int32")
        h = api.layers.Embedding(9, 6)(inp)
        h = api.layers.Flatten()(h)
        dense = api.layers.Dense(3)
        return api.Model(inp, dense(h)), dense

    theirs, their_dense, ours, our_dense = _both(build, ids)
    for model, layer in ((theirs, their_dense), (ours, our_dense)):
        layer.enable_lora(2)
    ours.set_weights([to_numpy(w) for w in theirs.get_weights()])
    frozen = [w.copy() for w in ours.get_weights()]
    for model in (theirs, ours):
        api = keras if model is theirs else fkeras
        model.compile(optimizer=api.optimizers.SGD(0.1), loss="mse")
        model.train_on_batch(ids, y)
    for name, a, b, before in zip([w.path for w in ours.weights], ours.get_weights(), theirs.get_weights(), frozen):
        np.testing.assert_allclose(a, to_numpy(b), rtol=1e-5, atol=1e-6, err_msg=name)
        if a.dtype == np.int8 or "scale" in name:
            np.testing.assert_array_equal(a, before, err_msg=name)
    assert sorted(w.path for w in ours.trainable_weights) == sorted(w.path for w in theirs.trainable_weights)


def test_quantized_onnx_graphs(tmp_path, checked):
    """The inference and training graphs pass the full checker in ai.onnx only, the exported file keeps its
    weights int8 (smaller than the float model's), and plain onnxruntime predicts what the model does."""
    rng = np.random.RandomState(3)
    x = rng.randn(4, 3, 64).astype("float32")
    inp = fkeras.Input((3, 64))
    h = fkeras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 32), bias_axes="d", activation="relu")(inp)
    out = fkeras.layers.Dense(2)(fkeras.layers.Flatten()(h))
    model = fkeras.Model(inp, out)
    model.export(tmp_path / "float.onnx")
    model.quantize("int8")
    want = model.predict(x, verbose=0)
    path = model.export(tmp_path / "int8.onnx")
    exported = checked(onnx.load(path))
    int8 = [t for t in exported.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert sorted(tuple(t.dims) for t in int8) == [(64, 32), (96, 2)]
    assert all(len(t.raw_data) == np.prod(t.dims) for t in int8)   # one byte per weight
    assert path.stat().st_size < 0.6 * (tmp_path / "float.onnx").stat().st_size
    script = ("import numpy as np, onnxruntime as ort, sys; s = ort.InferenceSession(sys.argv[1]); "
              "x = np.load(sys.argv[2]); np.save(sys.argv[3], s.run(None, {s.get_inputs()[0].name: x})[0])")
    np.save(tmp_path / "x.npy", x)
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                   check=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-6, atol=1e-6)
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(x, rng.randn(4, 2).astype("float32"))
    for program in model.compiled_programs.values():
        checked(program.model)
    train = model.export_training(tmp_path / "train.onnx")
    checked(onnx.load(train))


def _quantized_file(tmp_path):
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(3, name="dense")(inp))
    model.quantize("int8")
    path = tmp_path / "q.keras"
    model.save(path)
    return path


def _rewrite(path, out, config_fn=None, weights_fn=None):
    import h5py

    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    if config_fn:
        config = json.loads(files["config.json"])
        config_fn(config)
        files["config.json"] = json.dumps(config).encode()
    if weights_fn:
        (out.parent / "w.h5").write_bytes(files["model.weights.h5"])
        with h5py.File(out.parent / "w.h5", "r+") as h:
            weights_fn(h)
        files["model.weights.h5"] = (out.parent / "w.h5").read_bytes()
    with zipfile.ZipFile(out, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return out


def _dense_config(config):
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")["config"]


def test_hostile_quantized_files_are_refused(tmp_path):
    path = _quantized_file(tmp_path)
    model = fkeras.models.load_model(path)
    assert model.get_layer("dense").kernel.dtype == np.int8
    # A config asking for a huge quantized kernel: refused before anything is allocated.
    huge = _rewrite(path, tmp_path / "huge.keras", config_fn=lambda c: _dense_config(c).update(units=10**9))
    with pytest.raises(Exception, match="no unclaimed tensor|nothing was allocated"):
        fkeras.models.load_model(huge)

    # A float array where the int8 kernel goes: refused by name, not truncated.
    def floats(h):
        data = np.asarray(h["layers/dense/vars/0"]).astype(np.float32) + 0.4
        del h["layers/dense/vars/0"]
        h["layers/dense/vars/0"] = data
    wrong = _rewrite(path, tmp_path / "wrong.keras", weights_fn=floats)
    with pytest.raises(Exception, match="int8"):
        fkeras.models.load_model(wrong)
    # A custom quantizer config: refused by name (onnxforge computes Keras's default int8 only).
    custom = _rewrite(path, tmp_path / "custom.keras", config_fn=lambda c: _dense_config(c)["quantization_config"]
                      ["config"]["activation_quantizer"]["config"].update(value_range=[-64, 64]))
    with pytest.raises(Exception, match="quantization_config"):
        fkeras.models.load_model(custom)


def test_refusals_and_policies():
    layer = fkeras.layers.Dense(2)
    with pytest.raises(ValueError, match="isn't yet built"):
        layer.quantize("int8")
    layer.build((None, 3))
    with pytest.raises(ValueError, match="Invalid quantization mode"):
        layer.quantize("int3")
    for mode in ("float8", "gptq"):
        with pytest.raises(NotImplementedError, match=f"mode='{mode}'.*'int8'"):
            layer.quantize(mode)
    reversible = fkeras.layers.ReversibleEmbedding(5, 2)
    reversible.build()
    with pytest.raises(NotImplementedError, match="mode='int4'.*ReversibleEmbedding"):
        reversible.quantize("int4")
    mixed = fkeras.Sequential([fkeras.Input((3,), dtype="int32"), fkeras.layers.ReversibleEmbedding(5, 2, name="re"),
                               fkeras.layers.Flatten(), fkeras.layers.Dense(2)])
    with pytest.raises(NotImplementedError, match=r"left unquantized: \['re'\]"):
        mixed.quantize("int4")
    assert mixed.layers[-1].quantization_mode is None   # nothing was quantized
    layer.quantize("int8")
    with pytest.raises(ValueError, match="already quantized"):
        layer.quantize("int8")

    class MyDense(fkeras.layers.Dense):
        pass
    sub = MyDense(2)
    sub.build((None, 3))
    with pytest.raises(NotImplementedError, match="MyDense"):
        sub.quantize("int8")
    model = fkeras.Sequential([fkeras.Input((3,)), fkeras.layers.Dense(2)])
    with pytest.raises(NotImplementedError, match="mode='float8'"):
        model.quantize("float8")
    with pytest.warns(UserWarning, match="Dropout"):
        fkeras.Sequential([fkeras.Input((3,)), fkeras.layers.Dropout(0.1), fkeras.layers.Dense(2)]).quantize("int8")

    policies = fkeras.dtype_policies
    for name in ("int8_from_float32", "int8_from_mixed_bfloat16", "int4/128_from_float32", "float8_from_float32"):
        ours, theirs = policies.get(name), keras.dtype_policies.get(name)
        assert (type(ours).__name__, ours.name, ours.quantization_mode, ours.compute_dtype) == \
            (type(theirs).__name__, theirs.name, theirs.quantization_mode, theirs.compute_dtype)
        assert policies.serialize(ours) == keras.dtype_policies.serialize(theirs)
        assert policies.deserialize(keras.dtype_policies.serialize(theirs)) == ours
    with pytest.raises(ValueError, match="float16"):
        policies.QuantizedDTypePolicy("int8", "float16")
    pmap = policies.DTypePolicyMap()
    pmap["a/dense"] = "int8_from_float32"
    assert pmap["a/dense"].quantization_mode == "int8" and pmap["b"].name == "float32"


def test_quantizers_match_keras():
    rng = np.random.RandomState(4)
    x = (rng.randn(3, 7) * 3).astype("float32")
    ours, theirs = fkeras.quantizers, keras.quantizers
    for axis in (-1, 0, (0, 1)):
        for to_numpy_ in (False, True):
            a = ours.abs_max_quantize(x, axis, to_numpy=to_numpy_)
            b = theirs.abs_max_quantize(x, axis, to_numpy=to_numpy_)
            for u, v in zip(a, b):
                np.testing.assert_array_equal(np.asarray(u), to_numpy(v))
    q = ours.AbsMaxQuantizer(axis=0, value_range=(-8, 7))
    assert ours.serialize(q) == json.loads(json.dumps(theirs.serialize(theirs.AbsMaxQuantizer(axis=0,
                                                                                            value_range=(-8, 7)))))
    assert ours.deserialize(theirs.serialize(theirs.Int8QuantizationConfig())).get_config() == \
        json.loads(json.dumps(theirs.Int8QuantizationConfig().get_config()))
    with pytest.raises(ValueError, match="value_range"):
        ours.AbsMaxQuantizer(value_range=(-300, 300))
    amax, scale = np.array([2.0, 0.0, np.inf], "float32"), np.array([0.5, 0.25, 2.0], "float32")
    np.testing.assert_allclose(np.asarray(ours.compute_float8_scale(amax, scale, 448.0, 1)),
                               to_numpy(theirs.compute_float8_scale(amax, scale, 448.0, 1)), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ours.quantize_and_dequantize(x, np.float32(0.01), "float8_e4m3fn",
                                                                          "float32")),
                                  to_numpy(theirs.quantize_and_dequantize(x, 0.01, "float8_e4m3fn", "float32")))
    w = rng.randn(10, 6).astype("float32")
    for to_numpy_ in (False, True):
        for u, v in zip(ours.abs_max_quantize_grouped_with_zero_point(w, 4, to_numpy=to_numpy_),
                        theirs.abs_max_quantize_grouped_with_zero_point(w, 4, to_numpy=to_numpy_)):
            np.testing.assert_array_equal(np.asarray(u), to_numpy(v))
    with pytest.raises(NotImplementedError, match="GPTQ"):
        ours.GPTQConfig(dataset=None, tokenizer=None)
    with pytest.raises(NotImplementedError, match="GPTQ.*'gptq/4/128'"):
        fkeras.dtype_policies.get("gptq/4/128_from_float32")
    ints = rng.randint(-8, 8, (5, 3)).astype("int8")
    for axis in (0, -1):
        packed = ours.pack_int4(ints, axis=axis)
        want = theirs.pack_int4(ints, axis=axis)
        np.testing.assert_array_equal(packed[0], to_numpy(want[0]))
        np.testing.assert_array_equal(ours.unpack_int4(packed[0], ints.shape[axis], axis=axis), ints)


@pytest.mark.parametrize("axis", [None, 1])
def test_fake_quant_values_and_gradients_match_keras(axis):
    rng = np.random.RandomState(5)
    x = (rng.randn(4, 3) * 2).astype("float32")
    lo = np.array([-1.0, -0.5, -2.0], "float32") if axis is not None else np.float32(-1.2)
    hi = np.array([1.0, 1.5, 0.7], "float32") if axis is not None else np.float32(0.9)
    upstream = rng.randn(4, 3).astype("float32")
    tx, tlo, thi = (torch.tensor(np.asarray(v), requires_grad=True) for v in (x, lo, hi))
    want = keras.quantizers.fake_quant_with_min_max_vars(tx, tlo, thi, num_bits=8, axis=axis)
    (want * torch.tensor(upstream)).sum().backward()
    import onnxforge
    vx, vlo, vhi = (onnxforge.Variable(np.asarray(v)) for v in (x, lo, hi))
    with onnxforge.GradientTape() as tape:
        got = fkeras.quantizers.fake_quant_with_min_max_vars(vx, vlo, vhi, num_bits=8, axis=axis)
        loss = fkeras.ops.sum(got * upstream)
    np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=1e-6, atol=1e-6)
    for g, t in zip(tape.gradient(loss, [vx, vlo, vhi]), (tx, tlo, thi)):
        np.testing.assert_allclose(np.asarray(g), t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_layer_quantize_in_built_and_compiled_models_matches_keras(tmp_path):
    """``layer.quantize`` on a layer of a model that already predicted (its programs are rebuilt) and of a
    compiled one mid-training with Adam (the replaced float kernel leaves the training step and the optimizer's
    slots); onnxforge's own ``.onnx`` file then resumes training exactly."""
    rng = np.random.RandomState(6)
    x, y = rng.randn(16, 12).astype("float32"), rng.randint(0, 4, 16)
    results = []
    for api in (keras, fkeras):
        inp = api.Input((12,))
        out = api.layers.Dense(4, name="o")(api.layers.Dense(16, activation="relu", name="h")(inp))
        model = api.Model(inp, out)
        if results:
            model.set_weights(results[0][0])
        weights = [to_numpy(w) for w in model.get_weights()]
        model.predict(x, verbose=0)
        model.get_layer("o").quantize("int8")
        first = to_numpy(model.predict(x, verbose=0))
        model.compile(optimizer=api.optimizers.Adam(0.01),
                      loss=api.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.train_on_batch(x, y)
        model.get_layer("h").quantize("int8")
        loss = float(model.train_on_batch(x, y))
        results.append((weights, first, loss, to_numpy(model.predict(x, verbose=0)), model))
    (_, first_k, loss_k, after_k, _), (_, first_o, loss_o, after_o, ours) = results
    np.testing.assert_allclose(first_o, first_k, rtol=1e-6, atol=1e-7)
    assert abs(loss_o - loss_k) <= 1e-5 * abs(loss_k)
    np.testing.assert_allclose(after_o, after_k, rtol=1e-5, atol=1e-6)
    assert [v.path for v in ours.optimizer.variables] == ["adam/iteration", "adam/h_bias_momentum",
                                                          "adam/h_bias_velocity", "adam/o_bias_momentum",
                                                          "adam/o_bias_velocity"]
    import onnxforge
    ours.save(tmp_path / "q.onnx")
    resumed = onnxforge.load_model(tmp_path / "q.onnx")
    ours.train_on_batch(x, y)
    resumed.train_on_batch(x, y)
    np.testing.assert_array_equal(resumed.predict(x, verbose=0), ours.predict(x, verbose=0))


@pytest.mark.parametrize("tie", [True, False])
def test_reversible_embedding_int8_matches_keras(tie, tmp_path):
    """Keras's int8 ``ReversibleEmbedding``: the untied reverse table is quantized too (one scale per vocabulary
    entry); the reverse projection quantizes its inputs per token, with no custom gradient (as in Keras, the
    rounding passes no gradient back through it). Predictions, one SGD step and the files, both ways."""
    rng = np.random.RandomState(7)
    ids, target = rng.randint(0, 11, (4, 5)), rng.randn(4, 5, 11).astype("float32")
    runs = []
    for api in (keras, fkeras):
        inp = api.Input((5,), dtype="int32")
        emb = api.layers.ReversibleEmbedding(11, 6, tie_weights=tie, logit_soft_cap=5.0, name="tokens")
        model = api.Model(inp, emb(api.layers.Dense(6, name="mix")(emb(inp)), reverse=True))
        if runs:
            model.set_weights(runs[0]["initial"])
        run = {"initial": [to_numpy(w) for w in model.get_weights()]}
        model.quantize("int8")
        run["predict"] = to_numpy(model.predict(ids, verbose=0))
        run["weights"] = [(w.path, str(w.dtype)) for w in model.weights]
        model.compile(optimizer=api.optimizers.SGD(0.1), loss="mse")
        model.train_on_batch(ids, target)
        run["after"] = to_numpy(model.predict(ids, verbose=0))
        run["path"] = tmp_path / f"{'ours' if api is fkeras else 'theirs'}.keras"
        model.save(run["path"])
        runs.append(run)
    theirs, ours = runs
    assert ours["weights"] == theirs["weights"]
    np.testing.assert_allclose(ours["predict"], theirs["predict"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours["after"], theirs["after"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(keras.models.load_model(ours["path"]).predict(ids, verbose=0)),
                               theirs["after"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fkeras.models.load_model(theirs["path"]).predict(ids, verbose=0), ours["after"],
                               rtol=1e-5, atol=1e-6)


def test_multi_head_attention_projections_quantize_like_keras():
    """``model.quantize`` reaches the EinsumDense projections inside a MultiHeadAttention (leaf layers, as Keras
    walks them); the int8 weights keep their ``mha/query/...`` paths. Softmax and the attention products run in
    float32 in a different order: 1e-5."""
    x = np.random.RandomState(8).randn(2, 5, 8).astype("float32")
    runs = []
    for api in (keras, fkeras):
        inp = api.Input((5, 8))
        model = api.Model(inp, api.layers.MultiHeadAttention(2, 4, name="mha")(inp, inp))
        if runs:
            model.set_weights(runs[0][0])
        weights = [to_numpy(w) for w in model.get_weights()]
        model.quantize("int8")
        runs.append((weights, [(w.path, str(w.dtype)) for w in model.weights], to_numpy(model.predict(x, verbose=0))))
    assert runs[1][1] == runs[0][1]
    np.testing.assert_allclose(runs[1][2], runs[0][2], rtol=1e-5, atol=1e-6)
