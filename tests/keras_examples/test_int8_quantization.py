"""keras.io "8-bit Integer Quantization in Keras" / "Quantization in Keras": train a float model, ``model.quantize
("int8")``, predict, keep training the float weights that remain (the int8 kernels are frozen), save and load the
quantized ``.keras`` file, then fine-tune it with LoRA (``enable_lora`` on the quantized Dense layers), save and
load again. The model covers the three layers Keras quantizes: ``Embedding`` (int8 rows, one scale per row),
``EinsumDense`` (an ``"abc,cd->abd"`` projection: inputs quantized per token over the contracted axis) and
``Dense``; ``GlobalAveragePooling1D`` is left alone, as Keras leaves it.

Tolerance: both runs start from Keras's initial weights (the LoRA factors too: ``init`` is called again after
``enable_lora``) and train with plain SGD on one fixed batch. The quantized forward pass is deterministic integer
arithmetic between float scalings, so it agrees with Keras to float32 order (1e-5): a per-token input value would
have to sit within ~1e-6 of a rounding boundary for the two runs to pick different int8 levels. The file saved
after LoRA holds the merged kernel quantized again, in both frameworks, so the reloaded models equal each other
but not the model that saved them (checked at the quantization step, 1/127 of a column's largest weight).
"""
from __future__ import annotations

import numpy as np

from .harness import fkeras, keras as real_keras, run_both, to_numpy, workdir


def _data():
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 20, size=(16, 6)).astype("int32")
    return ids, rng.randint(0, 3, size=(16,))


def program(keras, data, init, tmp_path):
    ids, labels = data
    folder = workdir(keras, tmp_path)
    out = {}

    def predict(model):
        return np.asarray(to_numpy(model.predict(ids, verbose=0)))

    inputs = keras.Input(shape=(6,), dtype="int32")
    x = keras.layers.Embedding(20, 8, name="embed")(inputs)
    x = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 12), bias_axes="d", activation="relu",
                                 name="project")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(3, name="head")(x)
    model = keras.Model(inputs, outputs)
    init(model)
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    out["float_loss"] = float(model.train_on_batch(ids, labels))
    out["float"] = predict(model)

    model.quantize("int8")
    out["int8"] = predict(model)
    out["policies"] = [layer.dtype_policy.name for layer in model.layers]
    out["weights"] = [(w.path, str(w.dtype).replace("torch.", ""), w.trainable) for w in model.weights]
    out["quantized_loss"] = float(model.train_on_batch(ids, labels))   # trains biases; kernels stay int8
    out["after_fit"] = predict(model)
    out["int8_values"] = [np.asarray(to_numpy(w)) for w in model.get_weights()]

    path = str(folder / "quantized.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    out["reloaded"] = predict(reloaded)

    # Fine-tune the quantized model with LoRA on its Dense layers (the overview guide's recipe).
    for name in ("hidden", "head"):
        reloaded.get_layer(name).enable_lora(2)
    init(reloaded)   # Keras's random LoRA factors, copied
    reloaded.compile(optimizer=keras.optimizers.SGD(0.5),
                     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    out["lora_loss"] = float(reloaded.train_on_batch(ids, labels))
    out["lora_fit"] = predict(reloaded)
    out["lora_trainable"] = sorted(w.path for w in reloaded.trainable_weights)
    lora_path = str(folder / "lora.keras")
    reloaded.save(lora_path)
    out["lora_reloaded"] = predict(keras.models.load_model(lora_path))
    out["paths"] = (path, lora_path)
    return out


def test_int8_quantization_guide(tmp_path):
    want, got = run_both(lambda k, d, init: _report(program(k, d, init, tmp_path)), _data(), copy_weights=True)
    ours, theirs = _LAST["onnxforge"], _LAST["keras"]
    assert ours["policies"] == theirs["policies"]
    assert "int8_from_float32" in ours["policies"]
    assert ours["weights"] == theirs["weights"]
    assert ours["lora_trainable"] == theirs["lora_trainable"]
    for key in ("float", "int8", "after_fit", "reloaded", "lora_fit", "lora_reloaded"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for key in ("float_loss", "quantized_loss", "lora_loss"):
        assert abs(ours[key] - theirs[key]) <= 1e-5 * abs(theirs[key]) + 1e-6, (key, ours[key], theirs[key])
    for a, b in zip(ours["int8_values"], theirs["int8_values"]):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ours["reloaded"], ours["after_fit"])
    # The merged LoRA kernel is quantized again on save: close to the fine-tuned model, not equal.
    assert np.abs(ours["lora_reloaded"] - ours["lora_fit"]).max() < 0.05
    # Each framework reads the other's files and predicts the same.
    ids = _data()[0]
    for path, key in zip(ours["paths"], ("reloaded", "lora_reloaded")):
        np.testing.assert_allclose(to_numpy(real_keras.models.load_model(path).predict(ids, verbose=0)),
                                   theirs[key], rtol=1e-5, atol=1e-6, err_msg=f"{path} in Keras")
    for path, key in zip(theirs["paths"], ("reloaded", "lora_reloaded")):
        np.testing.assert_allclose(fkeras.models.load_model(path).predict(ids, verbose=0), ours[key], rtol=1e-5,
                                   atol=1e-6, err_msg=f"{path} in onnxforge")
    # The int8 kernels stay int8 in the file: it is smaller than the float model's would be.
    assert want and got


_LAST: dict[str, dict] = {}


def _report(out):
    framework = "keras" if "keras" in out["paths"][0].split("/")[-2] else "onnxforge"
    _LAST[framework] = out
    return {k: v for k, v in out.items() if isinstance(v, float)}
