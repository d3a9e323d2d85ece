"""keras.utils.FeatureSpace against Keras 3's own (which preprocesses with TensorFlow on any backend): adapt on
the same synthetic dict dataset, outputs in concat and dict modes with crosses, batched and single rows; the
symbolic side compiled to ONNX; keras.io's structured-data flow (training model from the encoded features,
inference model from the dict inputs); configs; ``.keras`` archives both ways."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge.keras as fkeras  # noqa: E402
from onnxforge.utils import Dataset, FeatureSpace  # noqa: E402
from tests.conftest import check_full  # noqa: E402

KFS = keras.utils.FeatureSpace
R = np.random.default_rng(0)
N = 240
DATA = {"f": R.normal(size=N).astype("float32"), "fn": R.normal(3, 2, size=N).astype("float32"),
        "fr": R.uniform(0, 100, size=N).astype("float32"), "fd": R.uniform(0, 10, size=N).astype("float32"),
        "ic": R.integers(0, 7, size=N).astype("int32"),
        "sc": R.choice(["red", "green", "blue", "x"], size=N, p=[.4, .3, .2, .1])}
BATCH = {k: v[:40].copy() for k, v in DATA.items()}
BATCH["sc"][0], BATCH["ic"][1] = "unseen", 99   # out-of-vocabulary values


def _spec(fs, mode):
    crosses = [fs.cross(("ic", "sc"), crossing_dim=8)]
    if mode == "dict":
        crosses.append(fs.cross(("fd", "ic"), crossing_dim=16, output_mode="int"))
    return dict(features={"f": fs.float(name="f"), "fn": "float_normalized",
                          "fr": fs.float_rescaled(scale=0.01, offset=-0.5, name="fr"),
                          "fd": fs.float_discretized(num_bins=5, name="fd"), "ic": fs.integer_categorical(name="ic"),
                          "sc": "string_categorical"}, crosses=crosses, output_mode=mode)


def _pair(mode):
    k, f = KFS(**_spec(KFS, mode)), FeatureSpace(**_spec(FeatureSpace, mode))
    k.adapt(tf.data.Dataset.from_tensor_slices(DATA).batch(32))
    f.adapt(Dataset.from_tensor_slices(DATA).batch(32))
    return k, f


def _np(x):
    return {n: keras.ops.convert_to_numpy(v) for n, v in x.items()} if isinstance(x, dict) \
        else keras.ops.convert_to_numpy(x)


def _assert_same(ours, theirs):
    # Normalization's adapt may differ from Keras's float32 arithmetic in the last bit.
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs)
        for name in theirs:
            assert np.asarray(ours[name]).dtype == theirs[name].dtype, name
            np.testing.assert_allclose(np.asarray(ours[name]), theirs[name], rtol=1e-6, atol=1e-6, err_msg=name)
    else:
        assert np.asarray(ours).dtype == theirs.dtype
        np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["concat", "dict"])
def test_adapt_and_call_match_keras(mode):
    k, f = _pair(mode)
    for feature in ("fn", "fd", "ic", "sc"):
        kp, fp = k.preprocessors[feature], f.preprocessors[feature]
        if feature == "fd":
            np.testing.assert_allclose(fp.bin_boundaries, kp.bin_boundaries, rtol=1e-6)
        elif feature != "fn":
            assert fp.get_vocabulary() == [v.decode() if isinstance(v, bytes) else v for v in kp.get_vocabulary()]
    _assert_same(f(BATCH), _np(k(BATCH)))
    row = {name: v[5] for name, v in DATA.items()}   # one unbatched row
    ours, theirs = f(row), _np(k(row))
    _assert_same(ours, theirs)
    assert (np.shape(ours) if mode == "concat" else np.shape(ours["ic"])) == \
        (np.shape(theirs) if mode == "concat" else np.shape(theirs["ic"]))


def test_adapt_on_a_dict_of_arrays_and_lists_matches_keras():
    cols = {"n": DATA["fn"].tolist(), "c": list(DATA["sc"])}
    spec = {"n": "float_normalized", "c": "string_categorical"}
    k, f = KFS(spec), FeatureSpace(spec)
    k.adapt(cols)
    f.adapt(cols)
    x = {"n": DATA["fn"][:9], "c": DATA["sc"][:9]}
    _assert_same(f(x), _np(k(x)))


@pytest.mark.parametrize("mode", ["concat", "dict"])
def test_the_encoded_features_compile_to_the_same_outputs(mode):
    _, f = _pair(mode)
    model = fkeras.Model(f.get_inputs(), f.get_encoded_features())
    feeds = {name: (v[:, None] if v.dtype.kind != "U" else v.astype(object)[:, None]) for name, v in BATCH.items()}
    compiled = model.predict(feeds, verbose=0)
    for program in model.compiled_programs.values():
        check_full(program.model)
    eager = f(BATCH)
    if mode == "concat":
        np.testing.assert_allclose(compiled, np.asarray(eager), rtol=1e-6, atol=1e-6)
    else:
        for name in eager:
            np.testing.assert_allclose(compiled[name], np.asarray(eager[name]), rtol=1e-6, atol=1e-6)


def test_keras_io_structured_data_flow_trains_and_infers():
    labels = ((DATA["fd"] > 5) ^ (DATA["sc"] == "red")).astype("int64")
    ds = Dataset.from_tensor_slices((DATA, labels)).shuffle(N, seed=1).batch(32)
    fs = FeatureSpace(**_spec(FeatureSpace, "concat"))
    fs.adapt(ds.map(lambda x, _: x))
    train = ds.map(lambda x, y: (fs(x), y))
    encoded = fs.get_encoded_features()
    hidden = fkeras.layers.Dense(16, activation="relu")(encoded)
    predictions = fkeras.layers.Dense(1, activation="sigmoid")(hidden)
    training_model = fkeras.Model(inputs=encoded, outputs=predictions)
    training_model.compile(optimizer=fkeras.optimizers.Adam(0.02), loss="binary_crossentropy", metrics=["accuracy"])
    inference_model = fkeras.Model(inputs=fs.get_inputs(), outputs=predictions)
    history = training_model.fit(train, epochs=8, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    sample = {"f": 0.3, "fn": 2.0, "fr": 40.0, "fd": 7, "ic": 3, "sc": "blue"}
    by_inference = inference_model.predict({k: np.array([v]) for k, v in sample.items()}, verbose=0)
    by_training = training_model.predict(np.asarray(fs({k: np.array([v]) for k, v in sample.items()})), verbose=0)
    np.testing.assert_allclose(by_inference, by_training, rtol=1e-5)


def test_keras_archives_round_trip_both_ways(tmp_path):
    k, f = _pair("concat")
    k.save(tmp_path / "keras_made.keras")
    f.save(tmp_path / "ours.keras")
    expected = _np(k(BATCH))
    for loaded in (fkeras.saving.load_model(tmp_path / "keras_made.keras"),
                   fkeras.models.load_model(tmp_path / "ours.keras"),
                   keras.saving.load_model(tmp_path / "ours.keras")):
        assert type(loaded).__name__ == "FeatureSpace"
        _assert_same(loaded(BATCH) if isinstance(loaded, FeatureSpace) else _np(loaded(BATCH)), expected)


def test_config_matches_keras_and_round_trips():
    k, f = _pair("dict")
    ours, theirs = f.get_config(), k.get_config()
    assert sorted(ours) == sorted(theirs)
    assert [c["config"] for c in ours["crosses"]] == [dict(c.get_config(), feature_names=c.feature_names)
                                                       for c in k.crosses]
    assert {n: e["config"]["preprocessor"]["class_name"] for n, e in ours["features"].items()} == \
        {n: type(v.preprocessor).__name__ for n, v in k.features.items()}
    again = FeatureSpace.from_config(ours)
    assert again.get_config() == ours


def test_errors_are_keras_and_clear():
    with pytest.raises(ValueError, match="cannot be None or empty"):
        FeatureSpace({})
    with pytest.raises(ValueError, match="output_mode"):
        FeatureSpace({"a": "float"}, output_mode="stack")
    with pytest.raises(ValueError, match="Invalid feature type"):
        FeatureSpace({"a": "float_quantized"})
    with pytest.raises(ValueError, match="unknown features"):
        FeatureSpace({"a": "integer_categorical"}, crosses=[("a", "b")])
    unadapted = FeatureSpace({"a": "float_normalized"})
    with pytest.raises(ValueError, match="adapt"):
        unadapted({"a": np.array([1.0])})
    with pytest.raises(ValueError, match="only be called with a dict"):
        FeatureSpace({"a": "float"})(np.array([1.0]))
    with pytest.raises(ValueError, match="output_mode='one_hot'"):
        FeatureSpace({"a": FeatureSpace.feature("float32", fkeras.layers.Rescaling(2.0), "one_hot")}).get_inputs()
    with pytest.raises(ValueError, match="has not been encoded"):
        FeatureSpace({"a": FeatureSpace.integer_categorical(output_mode="int")}).adapt({"a": np.array([1, 2])})
    with pytest.raises(ValueError, match="dataset of dicts"):
        FeatureSpace({"a": "float_normalized"}).adapt(Dataset.from_tensor_slices((np.ones(3), np.ones(3))))


def test_a_keras_inference_model_holding_a_feature_space_loads_and_predicts(tmp_path):
    """keras.io's ``inference_model`` (dict inputs -> FeatureSpace layers -> Dense), saved by Keras."""
    k, _ = _pair("concat")
    head = keras.layers.Dense(1)
    model = keras.Model(k.get_inputs(), head(k.get_encoded_features()))
    model.save(tmp_path / "inference.keras")
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in head.weights)
    expected = _np(k(BATCH)) @ kernel + bias
    loaded = fkeras.saving.load_model(tmp_path / "inference.keras")
    feeds = {n: (v.astype(object) if v.dtype.kind == "U" else v)[:, None] for n, v in BATCH.items()}
    np.testing.assert_allclose(loaded.predict(feeds, verbose=0), expected, rtol=1e-5, atol=1e-5)
