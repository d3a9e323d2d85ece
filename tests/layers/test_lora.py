"""Keras 3's LoRA (``enable_lora`` / ``lora_rank=``) on Dense, EinsumDense, Embedding and Conv: training only the
factors, the merged weight in the ``.keras`` file, the config round trip, and what is refused.

The Keras comparisons run a program written once against ``keras`` under real Keras 3 (torch backend) and
onnxforge with Keras's weights copied, so every difference is float32 summation order (bounded at 1e-5).
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import onnxforge.keras as fkeras
from onnxforge.layers.allocation import WeightBudgetError
from tests.conftest import check_full

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("the oracle is Keras on its torch backend", allow_module_level=True)


def _model(k, lora_in_config: bool = False):
    """Conv2D -> EinsumDense, beside an Embedding, into a Dense head; LoRA set in the constructors or not."""
    lora = {"lora_rank": 2, "lora_alpha": 3} if lora_in_config else {}
    image = k.Input((6, 6, 2), name="image")
    ids = k.Input((4,), dtype="int32", name="ids")
    x = k.layers.Conv2D(3, 3, activation="relu", name="conv", **lora)(image)
    x = k.layers.Reshape((16, 3))(x)
    x = k.layers.EinsumDense("abc,cd->abd", output_shape=(None, 4), bias_axes="d", name="einsum", **lora)(x)
    x = k.layers.GlobalAveragePooling1D()(x)
    e = k.layers.Embedding(7, 4, name="embed", **lora)(ids)
    e = k.layers.GlobalAveragePooling1D()(e)
    out = k.layers.Dense(2, name="head", **lora)(k.layers.Concatenate()([x, e]))
    return k.Model([image, ids], out)


def _data(n: int = 12):
    rng = np.random.default_rng(0)
    return ([rng.normal(size=(n, 6, 6, 2)).astype("float32"), rng.integers(0, 7, (n, 4)).astype("int32")],
            rng.normal(size=(n, 2)).astype("float32"))


def _enable(model) -> None:
    for name in ("conv", "embed"):
        model.get_layer(name).enable_lora(2)
    model.get_layer("einsum").enable_lora(2, lora_alpha=3)
    model.get_layer("head").enable_lora(2, lora_alpha=5)


def _close(a, b, atol: float = 1e-5) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=atol)


def _twins():
    """The same LoRA model in Keras and onnxforge, onnxforge holding Keras's weights (factors included)."""
    theirs, ours = _model(keras), _model(fkeras)
    _enable(theirs)
    _enable(ours)
    rng = np.random.default_rng(1)
    for w in theirs.weights:   # random B factors too: zeros would hide a misplaced or unscaled update
        w.assign(rng.normal(0, 0.3, tuple(w.shape)).astype("float32"))
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    return theirs, ours


def test_weights_and_trainable_set_match_keras():
    theirs, ours = _twins()
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
    assert [w.path for w in ours.trainable_weights] == [w.path for w in theirs.trainable_weights]
    assert "conv/kernel" not in [w.path for w in ours.trainable_weights]
    assert ours.get_layer("head").lora_alpha == 5 and ours.get_layer("conv").lora_rank == 2


def test_predictions_and_training_match_keras(tmp_path):
    theirs, ours = _twins()
    x, y = _data()
    _close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))
    frozen = {n: ours.get_layer(n).get_weights()[0].copy() for n in ("conv", "einsum", "embed", "head")}
    factor = ours.get_layer("head").lora_kernel_b.numpy().copy()
    for model, k in ((theirs, keras), (ours, fkeras)):
        model.compile(optimizer=k.optimizers.Adam(0.01), loss="mse")
        model.fit(x, y, batch_size=6, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        _close(a, b)
    for name, before in frozen.items():   # the adapted weights did not move; the factors did
        np.testing.assert_array_equal(ours.get_layer(name).get_weights()[0], before)
    assert not np.allclose(ours.get_layer("head").lora_kernel_b.numpy(), factor)
    check_full(ours.compiled_programs["train_step"].model)


def test_keras_file_stores_the_merged_weight_both_ways(tmp_path):
    theirs, ours = _twins()
    x, _ = _data()
    expected = theirs.predict(x, verbose=0)
    ours.save(tmp_path / "ours.keras")
    theirs.save(tmp_path / "theirs.keras")
    for path in ("ours.keras", "theirs.keras"):
        for loader in (keras.saving.load_model, fkeras.saving.load_model):
            loaded = loader(tmp_path / path)
            _close(loaded.predict(x, verbose=0), expected)
            head = loaded.get_layer("head")
            assert head.lora_enabled and head.lora_rank == 2
            assert not np.any(np.asarray(head.lora_kernel_b.numpy()))   # Keras zeroes the factors on load
            # Keras's Dense re-enables a configured rank without its alpha; EinsumDense keeps it.
            assert (head.lora_alpha, loaded.get_layer("einsum").lora_alpha) == (2, 3)
    with zipfile.ZipFile(tmp_path / "ours.keras") as archive:
        config = json.loads(archive.read("config.json"))
    head = next(layer for layer in config["config"]["layers"] if layer["name"] == "head")
    assert (head["config"]["lora_rank"], head["config"]["lora_alpha"]) == (2, 5)


def test_lora_rank_in_the_constructor_matches_keras():
    theirs, ours = _model(keras, lora_in_config=True), _model(fkeras, lora_in_config=True)
    assert [w.path for w in ours.trainable_weights] == [w.path for w in theirs.trainable_weights]
    assert [(n, ours.get_layer(n).lora_alpha) for n in ("conv", "einsum", "embed", "head")] == \
        [(n, theirs.get_layer(n).lora_alpha) for n in ("conv", "einsum", "embed", "head")]
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    x, _ = _data(4)
    _close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


def test_enabling_after_compile_needs_compile_again():
    model = _model(fkeras)
    x, y = _data()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, verbose=0)
    _enable(model)
    with pytest.raises(RuntimeError, match="gained weights after compile"):
        model.fit(x, y, verbose=0)
    model.compile(optimizer="sgd", loss="mse")
    kernel = model.get_layer("conv").kernel.numpy().copy()
    model.fit(x, y, verbose=0)
    np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(), kernel)
    assert np.any(model.get_layer("conv").lora_kernel_b.numpy())


def test_predict_only_model_picks_up_the_factors():
    model = _model(fkeras)
    x, _ = _data(4)
    before = model.predict(x, verbose=0)
    _enable(model)
    model.get_layer("head").lora_kernel_b.assign(np.ones((2, 2), "float32"))
    after = model.predict(x, verbose=0)
    head = model.get_layer("head")
    features = fkeras.Model(model.inputs, model.get_layer("head").input).predict(x, verbose=0)
    expected = before + 2.5 * features @ head.lora_kernel_a.numpy() @ np.ones((2, 2), "float32")
    _close(after, expected, atol=1e-4)


@pytest.mark.parametrize("call, message", [
    (lambda: fkeras.layers.Dense(2).enable_lora(2), "isn't yet built"),
    (lambda: fkeras.layers.Dense(2, lora_rank=0), "lora_rank must be a positive integer"),
    (lambda: fkeras.layers.Conv2D(2, 3, lora_alpha="big"), "lora_alpha must be a positive number"),
])
def test_bad_lora_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_enable_twice_and_constrained_weights_are_refused():
    layer = fkeras.layers.Dense(2)
    layer.build((None, 3))
    layer.enable_lora(1)
    with pytest.raises(ValueError, match="already enabled"):
        layer.enable_lora(1)
    constrained = fkeras.layers.Embedding(5, 2, embeddings_constraint="non_neg")
    constrained.build(None)
    with pytest.raises(ValueError, match="embeddings_constraint"):
        constrained.enable_lora(1)


def test_a_file_cannot_ask_for_huge_lora_factors(tmp_path):
    model = _model(fkeras)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    head = next(layer for layer in config["config"]["layers"] if layer["name"] == "head")
    head["config"]["lora_rank"] = 10**9   # (8, 1e9) factors: 32 GB, from a few bytes of JSON
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "hostile.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(Exception) as error:
        fkeras.saving.load_model(tmp_path / "hostile.keras")
    assert isinstance(error.value.__cause__, WeightBudgetError)
    assert "lora_kernel_a" in str(error.value) and "at most 16 elements" in str(error.value)
