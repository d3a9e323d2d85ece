"""Multi-input / multi-output functional models against real Keras 3 (torch backend) with copied weights:
dict and list inputs and outputs, per-output losses, loss weights, metrics and sample weights, History keys
and values, ``evaluate`` (list order and ``return_dict``) and ``predict``'s structure.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
from exporters.keras_exporter import from_keras  # noqa: E402

R = np.random.default_rng(5)
N = 12
X = {"text": R.normal(size=(N, 4)).astype("float32"), "meta": R.normal(size=(N, 3)).astype("float32")}
Y = {"score": R.normal(size=(N, 2)).astype("float32"), "label": R.integers(0, 3, N).astype("int64")}
SW = {"score": R.uniform(0.2, 2.0, N).astype("float32"), "label": R.uniform(0.2, 2.0, N).astype("float32")}


def _build(lib, dict_inputs: bool = True, dict_outputs: bool = True):
    """A two-input, two-output model; output layers are named unlike the output dict keys on purpose."""
    L = lib.layers
    text, meta = L.Input((4,), name="text"), L.Input((3,), name="meta")
    h = L.Dense(5, activation="tanh", name="trunk")(L.Concatenate(name="merge")([text, meta]))
    score = L.Dense(2, name="score_head")(h)
    label = L.Dense(3, activation="softmax", name="label_head")(h)
    inputs = {"text": text, "meta": meta} if dict_inputs else [text, meta]
    outputs = {"score": score, "label": label} if dict_outputs else [score, label]
    return lib.Model(inputs=inputs, outputs=outputs)


def _pair(dict_inputs: bool = True, dict_outputs: bool = True):
    keras.utils.set_random_seed(2)
    k = _build(keras, dict_inputs, dict_outputs)
    rng = np.random.default_rng(9)
    k.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in k.get_weights()])
    f = _build(onnxforge, dict_inputs, dict_outputs)
    f.set_weights(k.get_weights())
    return k, f


def _close(got, expected, what: str = "") -> None:
    if isinstance(expected, dict):
        assert sorted(got) == sorted(expected), what
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=f"{what} {key}")
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6, err_msg=what)


def _compile(model, lib, **overrides):
    args = dict(optimizer=lib.optimizers.SGD(0.1),
                loss={"score": "mse", "label": "sparse_categorical_crossentropy"},
                loss_weights={"score": 0.5, "label": 2.0},
                metrics={"score": ["mae", lib.metrics.RootMeanSquaredError()], "label": ["accuracy"]})
    args.update(overrides)
    model.compile(**args)


def test_dict_model_fit_history_evaluate_predict_match_keras():
    k, f = _pair()
    assert f.output_keys == ["label", "score"] and f.input_names == ["meta", "text"]
    assert f.output_names == k.output_names == ["label_head", "score_head"]
    for model, lib in ((k, keras), (f, onnxforge)):
        _compile(model, lib)
    kw = dict(epochs=2, batch_size=5, shuffle=False, verbose=0, validation_data=(X, Y))
    expected, got = k.fit(X, Y, **kw).history, f.fit(X, Y, **kw).history
    assert "score_loss" in got and "val_label_accuracy" in got and "score_root_mean_squared_error" in got
    _close(got, expected, "History")
    _close(f.evaluate(X, Y, verbose=0, return_dict=True), k.evaluate(X, Y, verbose=0, return_dict=True), "evaluate")
    _close(f.evaluate(X, Y, verbose=0), k.evaluate(X, Y, verbose=0), "evaluate as a list (Keras's order)")
    got_p, expected_p = f.predict(X, verbose=0), k.predict(X, verbose=0)
    assert isinstance(got_p, dict) and sorted(got_p) == ["label", "score"]
    _close(got_p, {key: np.asarray(v) for key, v in expected_p.items()}, "predict")
    _close(f.predict_on_batch(X), {key: np.asarray(v) for key, v in k.predict_on_batch(X).items()}, "predict_on_batch")
    for a, b in zip(k.get_weights(), f.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_list_forms_of_compile_and_data_match_keras():
    """Losses, metrics and loss weights as lists (in the outputs' order), targets as a list, inputs as a
    list of a list-input model."""
    k, f = _pair(dict_inputs=False, dict_outputs=False)
    for model, lib in ((k, keras), (f, onnxforge)):
        model.compile(optimizer=lib.optimizers.SGD(0.05), loss=["mse", "sparse_categorical_crossentropy"],
                      loss_weights=[1.5, 0.3],
                      metrics=[["mae"], ["accuracy", lib.metrics.SparseTopKCategoricalAccuracy(k=2)]])
    xs, ys_sparse = [X["text"], X["meta"]], [Y["score"], Y["label"]]
    kw = dict(epochs=2, batch_size=4, shuffle=False, verbose=0)
    expected, got = k.fit(xs, ys_sparse, **kw).history, f.fit(xs, ys_sparse, **kw).history
    _close(got, expected, "History")
    _close(f.evaluate(xs, ys_sparse, verbose=0, return_dict=True),
           k.evaluate(xs, ys_sparse, verbose=0, return_dict=True))
    got_p = f.predict(xs, verbose=0)
    assert isinstance(got_p, list) and len(got_p) == 2
    _close(got_p[1], np.asarray(k.predict(xs, verbose=0)[1]))


def test_targets_keyed_by_output_layer_names_for_a_list_output_model():
    k, f = _pair(dict_inputs=True, dict_outputs=False)
    by_name = {"score_head": Y["score"], "label_head": Y["label"]}
    for model, lib in ((k, keras), (f, onnxforge)):
        model.compile(optimizer=lib.optimizers.SGD(0.1),
                      loss={"score_head": "mae", "label_head": "sparse_categorical_crossentropy"},
                      metrics={"label_head": [lib.metrics.SparseTopKCategoricalAccuracy(k=2)]})
    _close(f.evaluate(X, by_name, batch_size=5, verbose=0, return_dict=True),
           k.evaluate(X, by_name, batch_size=5, verbose=0, return_dict=True))


def test_per_output_sample_weights_and_weighted_metrics_match_keras():
    k, f = _pair()
    for model, lib in ((k, keras), (f, onnxforge)):
        _compile(model, lib, weighted_metrics={"score": ["mse"], "label": [lib.metrics.SparseCategoricalAccuracy()]})
    kw = dict(epochs=1, batch_size=5, shuffle=False, verbose=0, sample_weight=SW)
    _close(f.fit(X, Y, **kw).history, k.fit(X, Y, **kw).history, "History with sample weights")
    _close(f.evaluate(X, Y, sample_weight=SW, verbose=0, return_dict=True),
           k.evaluate(X, Y, sample_weight=SW, verbose=0, return_dict=True))


def test_loss_on_one_output_only_matches_keras():
    k, f = _pair()
    for model, lib in ((k, keras), (f, onnxforge)):
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss={"label": "sparse_categorical_crossentropy"},
                      metrics={"label": ["accuracy"]})
    expected = k.evaluate(X, Y, verbose=0, return_dict=True)
    _close(f.evaluate(X, Y, verbose=0, return_dict=True), expected)
    # Targets for the trained output alone are enough (Keras 3.15 itself fails on such a dict with a
    # KeyError). A training step reports the loss before its update: the evaluated one.
    _close(f.train_on_batch(X, {"label": Y["label"]}, return_dict=True), expected)
    with pytest.raises(ValueError, match=r"output 'label' .* has a loss or metrics but y has no targets for it"):
        f.evaluate(X, {"score": Y["score"]}, verbose=0)


@pytest.mark.parametrize("losses", [["mse", None], [None, "sparse_categorical_crossentropy"]])
def test_targets_for_the_outputs_with_a_loss_only_match_keras(losses):
    """keras.io's miniature GPT: ``outputs=[logits, features]``, ``loss=[loss_fn, None]`` and a single y array,
    which Keras gives to the output whose loss is not None. (Batches of 4 divide the 12 samples: Keras 3.15
    computes a different, wrong step for a short last batch when y is one array, unlike with both targets.)"""
    k, f = _pair(dict_inputs=False, dict_outputs=False)
    y = Y["score"] if losses[0] else Y["label"]
    for model, lib in ((k, keras), (f, onnxforge)):
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss=losses)
    xs = [X["text"], X["meta"]]
    kw = dict(epochs=2, batch_size=4, shuffle=False, verbose=0)
    _close(f.fit(xs, y, **kw).history, k.fit(xs, y, **kw).history, "History")
    _close(f.evaluate(xs, y, batch_size=4, verbose=0), k.evaluate(xs, y, batch_size=4, verbose=0), "evaluate")
    _close(f.evaluate(xs, [y], verbose=0), f.evaluate(xs, y, verbose=0), "a list of one target")


def test_dict_model_config_round_trip_and_from_keras():
    k, f = _pair()
    rebuilt = onnxforge.Model.from_config(f.get_config())
    rebuilt.set_weights(f.get_weights())
    assert rebuilt.output_keys == ["label", "score"] and rebuilt.input_names == ["meta", "text"]
    _close(rebuilt.predict(X, verbose=0), f.predict(X, verbose=0), "config round trip")
    imported = from_keras(k)
    _close(imported.predict(X, verbose=0), {key: np.asarray(v) for key, v in k.predict(X, verbose=0).items()},
           "from_keras")


def test_dict_data_errors_name_the_keys():
    _, f = _pair()
    _compile(f, onnxforge)
    with pytest.raises(ValueError, match=r"without the key\(s\) \['meta'\]"):
        f.fit({"text": X["text"]}, Y, verbose=0)
    with pytest.raises(ValueError, match="not model outputs"):
        f.compile(optimizer="sgd", loss={"scores": "mse"})


def test_dict_model_keras_files_both_ways(tmp_path):
    k, f = _pair()
    f.save(str(tmp_path / "ours.keras"))
    k.save(str(tmp_path / "theirs.keras"))
    by_keras = keras.saving.load_model(str(tmp_path / "ours.keras"))
    _close({key: np.asarray(v) for key, v in by_keras.predict(X, verbose=0).items()}, f.predict(X, verbose=0),
           "Keras reading onnxforge's file")
    by_us = onnxforge.load_model(str(tmp_path / "theirs.keras"))
    assert by_us.output_keys == ["label", "score"]
    _close(by_us.predict(X, verbose=0), {key: np.asarray(v) for key, v in k.predict(X, verbose=0).items()},
           "onnxforge reading Keras's file")


METRIC_LISTS = [["mae", "acc"], ("mae", "acc"), [["mae", "mse"], "acc"], ["mae", None], [None, "acc"], [["mae"], ["acc"]],
                {"cls": "acc"}]


def _two_outputs(lib, dict_outputs=False):
    inp = lib.Input((4,))
    score = lib.layers.Dense(1, name="score")(inp)
    cls = lib.layers.Dense(3, activation="softmax", name="cls")(inp)
    return lib.Model(inp, {"score": score, "cls": cls} if dict_outputs else [score, cls])


def _history_keys(lib, metrics, dict_outputs=False):
    model = _two_outputs(lib, dict_outputs)
    model.compile("adam", loss={"score": "mse", "cls": "categorical_crossentropy"}, metrics=metrics)
    y = {"score": np.ones((8, 1)), "cls": np.eye(3)[np.arange(8) % 3]}
    history = model.fit(np.ones((8, 4)), y if dict_outputs else [y["score"], y["cls"]], verbose=0)
    return sorted(history.history)


@pytest.mark.parametrize("metrics", METRIC_LISTS, ids=str)
def test_a_metrics_list_per_output_maps_by_position_as_in_keras_3(metrics):
    """``metrics=["mae", "acc"]`` on two outputs: ``score_mae`` and ``cls_acc``, not both metrics on both."""
    assert _history_keys(onnxforge.keras, metrics) == _history_keys(keras, metrics)


def test_dict_outputs_take_a_metrics_list_in_keras_output_order():
    assert _history_keys(onnxforge.keras, ["mae", "acc"], True) == _history_keys(keras, ["mae", "acc"], True)


@pytest.mark.parametrize("metrics", [["mae"], ["mae", "acc", "mse"], [["mae"]]], ids=str)
def test_a_metrics_list_of_another_length_is_refused_as_in_keras_3(metrics):
    with pytest.raises(ValueError):
        _history_keys(keras, metrics)          # Keras refuses it when the metrics are built, at fit
    with pytest.raises(ValueError, match="one entry per output"):
        _two_outputs(onnxforge.keras).compile("adam", loss=["mse", "mse"], metrics=metrics)


def _structure(x):
    """Containers kept, tensors as their shapes: what must match between the frameworks."""
    if isinstance(x, dict):
        return {k: _structure(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_structure(v) for v in x)
    return tuple(np.shape(x))


@pytest.mark.parametrize("form", ["[o]", "(o,)", "[[o]]", "[o,o]", "(o,o)", "[(o,o)]", "{a:[o,o]}", "[o,[o]]",
                                  "layer_tuples"])
def test_nested_outputs_keep_their_structure_in_call_predict_and_output(form):
    """Keras 3 packs a functional model's results into the ``outputs`` structure (tuples stay tuples, nested
    lists and dicts stay nested) and unwraps one single-item level in ``call`` / ``predict``; ``.output`` is
    the structure as given. keras.io's involution ``vis_model`` lists layers' ``(output, kernel)`` tuples."""
    x = R.normal(size=(2, 3)).astype("float32")

    def build(lib):
        class Two(lib.layers.Layer):
            def call(self, t):
                return t * 2.0, t + 1.0

        i = lib.Input((3,))
        o1, o2 = lib.layers.Dense(2)(i), lib.layers.Dense(4)(i)
        outs = {"[o]": [o1], "(o,)": (o1,), "[[o]]": [[o1]], "[o,o]": [o1, o2], "(o,o)": (o1, o2),
                "[(o,o)]": [(o1, o2)], "{a:[o,o]}": {"a": [o1, o2]}, "[o,[o]]": [o1, [o2]]}.get(form)
        if outs is None:
            first = Two(name="t1")(i)
            second = Two(name="t2")(first[0])
            trunk = lib.Model(i, second[1])
            outs = [trunk.get_layer(name).output for name in ("t1", "t2")]
        return lib.Model(i, outs)

    want, got = build(keras), build(onnxforge.keras)
    expected = _structure(keras.ops.convert_to_numpy(want(x)) if form in ("[o]", "(o,)") else
                          keras.tree.map_structure(keras.ops.convert_to_numpy, want(x)))
    assert _structure(want.predict(x, verbose=0)) == expected
    assert _structure(got.predict(x, verbose=0)) == expected
    assert _structure(got.predict_on_batch(x)) == expected
    assert _structure(got(x)) == expected
    assert type(got.output) is type(want.output)
