"""Small behaviours real Keras 3 programs observe, against Keras 3 itself (torch backend): ``metrics_names``, the
log dicts of ``train_on_batch`` / ``test_on_batch`` / ``evaluate``, an eager ``Resizing``'s integer dtype, and
``training`` passed positionally to a preprocessing layer, the dtype of flipped or padded byte images."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS, fkeras, keras

R = np.random.default_rng(0)
X = R.normal(size=(6, 3)).astype("float32")
Y = R.normal(size=(6, 2)).astype("float32")


def _model(k, multi: bool, metrics):
    x = k.Input((3,))
    if multi:
        model = k.Model(x, [k.layers.Dense(2, name="a")(x), k.layers.Dense(2, name="b")(x)])
    else:
        model = k.Model(x, k.layers.Dense(2, name="d")(x))
    model.compile(optimizer="sgd", loss="mse", metrics=metrics)
    return model


def _describe(logs):
    """Keys in order and the Python type of every value (what a program that prints or compares logs sees)."""
    if isinstance(logs, dict):
        return [(key, type(value).__name__) for key, value in logs.items()]
    if isinstance(logs, list):
        return [type(value).__name__ for value in logs]
    return type(logs).__name__


@pytest.mark.parametrize("multi,metrics", [(False, None), (False, ["mae", "mse"]), (True, None),
                                           (True, [["mae"], ["mae", "mse"]]), (True, {"a": "mae"})])
def test_metrics_names_and_batch_logs_as_keras(multi, metrics):
    got = {}
    for name, k in LIBS.items():
        model = _model(k, multi, metrics)
        ys = [Y, 2 * Y] if multi else Y
        seen = [list(model.metrics_names)]   # before any step: no per-output loss yet
        for return_dict in (False, True):
            seen.append(_describe(model.train_on_batch(X, ys, return_dict=return_dict)))
            seen.append(_describe(model.test_on_batch(X, ys, return_dict=return_dict)))
            seen.append(_describe(model.evaluate(X, ys, verbose=0, return_dict=return_dict)))
        seen.append(list(model.metrics_names))
        got[name] = seen
    assert got["onnxforge"] == got["keras"]


@pytest.mark.parametrize("compiled", [{}, {"loss": "mse", "metrics": ["mae"]}])
def test_a_custom_train_step_lists_its_trackers_as_keras(compiled):
    got = {}
    for name, k in LIBS.items():
        class Custom(k.Model):
            def __init__(self):
                super().__init__()
                self.dense = k.layers.Dense(2)
                self.tracker = k.metrics.Mean(name="my_loss")

            def call(self, x):
                return self.dense(x)

            def train_step(self, data):
                x, y = data
                self.tracker.update_state(k.ops.mean((self(x) - y) ** 2))
                return {"my_loss": self.tracker.result()}

        model = Custom()
        model.compile(optimizer="sgd", **compiled)
        model.fit(X, Y, epochs=1, verbose=0)
        got[name] = model.metrics_names
    assert got["onnxforge"] == got["keras"]


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "uint16", "int32", "float64"])
def test_eager_resizing_keeps_the_dtype_keras_gives(dtype):
    images = R.integers(0, 100, size=(2, 3, 5, 1)).astype(dtype)
    out = {name: k.layers.Resizing(4, 6, interpolation="bilinear")(images) for name, k in LIBS.items()}
    want = keras.ops.convert_to_numpy(out["keras"])
    got = np.asarray(out["onnxforge"])
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), atol=1e-4 if want.dtype.kind == "f" else 1)
    # (an integer image may round a half the other way: float sums differ in their last bit)


@pytest.mark.parametrize("make", [lambda k: k.layers.RandomFlip(seed=1), lambda k: k.layers.Rescaling(0.5),
                                  lambda k: k.layers.Normalization(mean=0.0, variance=1.0),
                                  lambda k: k.layers.RandomRotation(0.1, seed=1)])
def test_training_passed_positionally_to_a_preprocessing_layer_is_a_type_error_as_in_keras(make):
    images = np.ones((1, 4, 4, 1), "float32")
    for k in (keras, fkeras):
        with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
            make(k)(images, True)
    np.testing.assert_array_equal(np.asarray(fkeras.layers.RandomFlip(seed=1)(images, training=False)), images)


def test_the_data_layer_flag_follows_keras_class_tree():
    from keras.src.layers.preprocessing.data_layer import DataLayer

    import onnxforge.layers.preprocessing as preprocessing

    for name in preprocessing.__all__:
        assert getattr(getattr(preprocessing, name), "_keras_data_layer", False) == \
            issubclass(getattr(keras.layers, name), DataLayer), name


@pytest.mark.parametrize("batch_size", [None, 2])
def test_text_dataset_from_directory_yields_string_tensors_as_keras(tmp_path, batch_size):
    for folder, text in (("neg", "bad film\n"), ("pos", "good film, twice as long\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.txt").write_text(text)
    got = {}
    for name, k in LIBS.items():
        ds = k.utils.text_dataset_from_directory(str(tmp_path), batch_size=batch_size, shuffle=False, verbose=False)
        got[name] = [(np.asarray(x.numpy()).tolist(), np.asarray(x.numpy()).dtype.kind, np.asarray(y).tolist())
                     for x, y in ds]   # a bare `str` has no numpy(): Keras yields string tensors
    assert got["onnxforge"] == got["keras"]


@pytest.mark.parametrize("how", ["call", "call_with_key", "build", "build_with_key"])
def test_multi_head_attention_build_config_as_keras_and_rebuilt_from_it(how):
    got = {}
    for name, k in LIBS.items():
        layer = k.layers.MultiHeadAttention(num_heads=2, key_dim=3)
        if how.startswith("call"):
            q, v = k.Input((4, 8)), k.Input((5, 6))
            layer(q, v, v) if how == "call_with_key" else layer(q, v)
        else:
            layer.build((None, 4, 8), (None, 5, 6), *([(None, 5, 7)] if how == "build_with_key" else []))
        config = layer.get_build_config()
        again = k.layers.MultiHeadAttention(num_heads=2, key_dim=3)
        again.build_from_config(config)
        got[name] = ({key: tuple(shape) for key, shape in config["shapes_dict"].items()},
                     [tuple(w.shape) for w in again.weights])
    assert got["onnxforge"] == got["keras"]


@pytest.mark.parametrize("make", [lambda k: k.metrics.Mean(), lambda k: k.metrics.MeanSquaredError(),
                                  lambda k: k.metrics.AUC(num_thresholds=5), lambda k: k.metrics.Precision()])
def test_metric_variables_are_named_as_keras(make):
    y_true, y_pred = np.array([0.0, 1.0, 1.0, 0.0]), np.array([0.2, 0.8, 0.4, 0.6])
    got = {}
    for name, k in LIBS.items():
        metric = make(k)
        metric.update_state(y_pred) if type(metric).__name__ == "Mean" else metric.update_state(y_true, y_pred)
        # The metric's auto-made name takes a counter ("auc_2") from how many were made before in this process,
        # which depends on the tests run earlier on this worker: compared without it.
        got[name] = [(v.name, re.sub(r"_\d+/", "/", v.path), tuple(v.shape),
                      np.round(np.asarray(v.numpy(), np.float64), 5).tolist()) for v in metric.variables]
    assert got["onnxforge"] == got["keras"]


def _named(variables):
    return [(v.name, v.path) for v in variables]


def test_variable_name_is_the_last_part_of_its_path_as_keras():
    got = {}
    for name, k in LIBS.items():
        x = k.Input((5, 4))
        h = k.layers.LSTM(3, return_sequences=True, name="lstm")(x)
        h = k.layers.MultiHeadAttention(num_heads=2, key_dim=2, name="mha")(h, h)
        h = k.layers.BatchNormalization(name="bn")(h)
        model = k.Model(x, k.layers.Dense(2, name="head")(h))
        optimizer = k.optimizers.Adam(name="adam")   # Keras numbers auto-named ones per process
        optimizer.build(model.trainable_variables)
        with k.name_scope("outer"):
            scoped = k.Variable(np.zeros(2, "float32"), name="v")
        slots = [v for v in optimizer.variables if v.name != "learning_rate"]   # a Variable in Keras, not here
        got[name] = (_named(model.weights), _named(slots), _named([scoped]),
                     _named([k.Variable(1.0, name="solo")]))
    assert got["onnxforge"] == got["keras"]


def test_weights_saved_and_checkpointed_by_path_load_back(tmp_path):
    """Files key weights by path (as before ``name`` became the last part): two ``kernel``s do not collide."""
    def build():
        x = fkeras.Input((3,))
        return fkeras.Model(x, fkeras.layers.Dense(2, name="b")(fkeras.layers.Dense(4, name="a")(x)))

    model = build()
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, Y, epochs=1, verbose=0)
    assert [w.name for w in model.weights] == ["kernel", "bias", "kernel", "bias"]
    for ext in (".keras", ".weights.h5", ".onnx"):
        path = str(tmp_path / f"m{ext}")
        if ext == ".weights.h5":
            model.save_weights(path)
            again = build()
            again.load_weights(path)
        else:
            model.save(path)
            again = fkeras.models.load_model(path)
        if ext == ".onnx":   # keyed by the full paths, the strings files written while name was the path hold
            import json

            import onnx

            meta = {p.key: p.value for p in onnx.load(path).metadata_props}
            assert json.loads(meta["onnxforge.weights"]) == ["a/kernel", "a/bias", "b/kernel", "b/bias"]
        for a, b in zip(model.weights, again.weights):
            assert a.path == b.path
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("op", [lambda k, x: k.ops.flip(x, 1), lambda k, x: k.ops.roll(x, 2, axis=2),
                                lambda k, x: k.ops.fliplr(x),
                                lambda k, x: k.ops.pad(x, [(0, 0), (1, 2), (0, 1)], constant_values=7),
                                lambda k, x: k.ops.pad(x, [(0, 0), (1, 1), (1, 1)], mode="reflect")],
                         ids=["flip", "roll", "fliplr", "pad", "pad_reflect"])
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_eager_flip_roll_and_pad_keep_byte_images_as_keras(op, dtype):
    """They widened uint8 to int32, so TensorFlow-style programs padding or flipping uint8 images
    (``tf.image.pad_to_bounding_box``, ``resize_with_crop_or_pad``) got int32 where TF gives uint8."""
    x = np.arange(24).reshape(2, 3, 4).astype(dtype)
    want = keras.ops.convert_to_numpy(op(keras, x))
    got = np.asarray(op(fkeras, x))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
