"""onnxforge against real Keras 3 (torch backend, CPU) on the same weights and data.

Each test builds a tiny Keras model, rebuilds it in onnxforge with ``from_keras`` (same config, same
weights), runs the same calls on both sides and compares what they return: weights after two optimizer
steps, losses from ``train_on_batch`` / ``evaluate`` with sample and class weights, metrics in
``evaluate``, ``fit``'s History, and the default constructor arguments of layers, optimizers, losses and
metrics.

Deliberate differences, each named where it is allowed: configs keep ``SimpleRNN(seed=...)`` and
``Huber(delta=...)``, which Keras's ``get_config`` drops; Keras-only config keys must hold an inert value
(arguments newer Keras added: ``quantization_config=None``, initializers' ``input_axes=None``, ...).
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
KL = keras.layers

import onnxforge  # noqa: E402
from exporters.keras_exporter import _is_inert, from_keras  # noqa: E402
from tests.layers.required_args import KERAS_TF_MISSING, KERAS_TF_REASON, extra_required_args  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 5)).astype("float32")
Y_SPARSE = RNG.integers(0, 3, size=(12,)).astype("int64")
Y_ONEHOT = np.eye(3, dtype="float32")[Y_SPARSE]
Y_BINARY = RNG.integers(0, 2, size=(12, 1)).astype("float32")
Y_REG = RNG.normal(size=(12, 2)).astype("float32")
SAMPLE_WEIGHT = RNG.uniform(0.2, 2.0, size=(12,)).astype("float32")
Y_MULTILABEL = (RNG.uniform(size=(12, 3)) > 0.5).astype("float32")


def _pair(units: int = 3, activation: str | None = None, hidden: int = 4, seed: int = 1):
    """A Keras MLP with random weights and the same model rebuilt by onnxforge."""
    keras.utils.set_random_seed(seed)
    k = keras.Sequential([keras.Input((5,)), KL.Dense(hidden, activation="tanh"),
                          KL.Dense(units, activation=activation)])
    rng = np.random.default_rng(seed)
    k.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in k.get_weights()])
    return k, from_keras(k)


def _max_weight_diff(k, f) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(k.get_weights(), f.get_weights()))


# ------------------------------------------------------------------------------------------- optimizers
OPTIMIZERS = {
    "sgd": ("SGD", dict(learning_rate=0.1)),
    "sgd_momentum": ("SGD", dict(learning_rate=0.1, momentum=0.9)),
    "sgd_nesterov": ("SGD", dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    "sgd_weight_decay": ("SGD", dict(learning_rate=0.1, weight_decay=0.05)),
    "adam": ("Adam", dict(learning_rate=0.01)),
    "adam_amsgrad": ("Adam", dict(learning_rate=0.01, amsgrad=True)),
    "adamw": ("AdamW", dict(learning_rate=0.01, weight_decay=0.1)),
    "rmsprop": ("RMSprop", dict(learning_rate=0.01)),
    "rmsprop_centered": ("RMSprop", dict(learning_rate=0.01, centered=True, momentum=0.5)),
    "adagrad": ("Adagrad", dict(learning_rate=0.1)),
    "sgd_clipnorm": ("SGD", dict(learning_rate=0.1, momentum=0.5, clipnorm=0.1)),
    "adam_clipvalue": ("Adam", dict(learning_rate=0.01, clipvalue=0.01)),
    "rmsprop_global_clipnorm": ("RMSprop", dict(learning_rate=0.01, global_clipnorm=0.1)),
    "adagrad_clipnorm": ("Adagrad", dict(learning_rate=0.1, clipnorm=0.05)),
    "adam_weight_decay": ("Adam", dict(learning_rate=0.01, weight_decay=0.1)),
    "adam_betas_epsilon": ("Adam", dict(learning_rate=0.01, beta_1=0.5, beta_2=0.8, epsilon=1e-2)),
    "adamw_amsgrad": ("AdamW", dict(learning_rate=0.01, amsgrad=True)),
    "rmsprop_rho_clipvalue": ("RMSprop", dict(learning_rate=0.01, rho=0.5, epsilon=1e-3, clipvalue=0.05,
                                              momentum=0.3, weight_decay=0.1)),
    "adagrad_accumulator": ("Adagrad", dict(learning_rate=0.1, initial_accumulator_value=0.5, epsilon=1e-3)),
    "sgd_exponential_decay": ("SGD", dict(learning_rate=("ExponentialDecay", dict(
        initial_learning_rate=0.1, decay_steps=1, decay_rate=0.5)))),
    "adam_cosine_decay": ("Adam", dict(learning_rate=("CosineDecay", dict(
        initial_learning_rate=0.1, decay_steps=3, alpha=0.1)))),
}


def _make_optimizer(lib, cls: str, kwargs: dict):
    kwargs = dict(kwargs)
    if isinstance(kwargs["learning_rate"], tuple):
        schedule, args = kwargs["learning_rate"]
        kwargs["learning_rate"] = getattr(lib.optimizers.schedules, schedule)(**args)
    return getattr(lib.optimizers, cls)(**kwargs)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_two_train_on_batch_steps_match_keras(name):
    cls, kwargs = OPTIMIZERS[name]
    k, f = _pair()
    k.compile(optimizer=_make_optimizer(keras, cls, kwargs),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    f.compile(optimizer=_make_optimizer(onnxforge, cls, kwargs),
              loss=onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True))
    for step in range(3 if isinstance(kwargs["learning_rate"], tuple) else 2):
        expected = k.train_on_batch(X, Y_SPARSE)
        got = f.train_on_batch(X, Y_SPARSE)
        assert got == pytest.approx(expected, rel=1e-5), f"loss at step {step + 1}"
        assert _max_weight_diff(k, f) < 1e-5, f"weights after step {step + 1}"


# ------------------------------------------------------------------------------------------------ losses
# name: (keras loss, onnxforge loss, output units, output activation, targets)
def _loss_cases():
    cases = {}
    for lib, mod in (("k", keras.losses), ("f", onnxforge.losses)):
        for name, (ctor, units, act, y) in {
            "sparse_ce": (lambda m: m.SparseCategoricalCrossentropy(), 3, "softmax", Y_SPARSE),
            "sparse_ce_logits": (lambda m: m.SparseCategoricalCrossentropy(from_logits=True), 3, None, Y_SPARSE),
            "sparse_ce_string": (lambda m: "sparse_categorical_crossentropy", 3, "softmax", Y_SPARSE),
            "ce": (lambda m: m.CategoricalCrossentropy(), 3, "softmax", Y_ONEHOT),
            "ce_logits": (lambda m: m.CategoricalCrossentropy(from_logits=True), 3, None, Y_ONEHOT),
            "ce_smoothing": (lambda m: m.CategoricalCrossentropy(label_smoothing=0.2), 3, "softmax", Y_ONEHOT),
            "ce_logits_smoothing": (lambda m: m.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
                                    3, None, Y_ONEHOT),
            "bce": (lambda m: m.BinaryCrossentropy(), 1, "sigmoid", Y_BINARY),
            "bce_logits": (lambda m: m.BinaryCrossentropy(from_logits=True), 1, None, Y_BINARY),
            "bce_smoothing": (lambda m: m.BinaryCrossentropy(label_smoothing=0.2), 1, "sigmoid", Y_BINARY),
            "bce_logits_smoothing": (lambda m: m.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
                                     1, None, Y_BINARY),
            "bce_string": (lambda m: "binary_crossentropy", 1, "sigmoid", Y_BINARY),
            "mse": (lambda m: m.MeanSquaredError(), 2, None, Y_REG),
            "mae": (lambda m: m.MeanAbsoluteError(), 2, None, Y_REG),
            "huber": (lambda m: m.Huber(delta=0.5), 2, None, Y_REG),
            "mse_string": (lambda m: "mse", 2, None, Y_REG),
            "mae_sum": (lambda m: m.MeanAbsoluteError(reduction="sum"), 2, None, Y_REG),
            "bce_mean": (lambda m: m.BinaryCrossentropy(reduction="mean"), 1, "sigmoid", Y_BINARY),
            "ce_sum": (lambda m: m.CategoricalCrossentropy(reduction="sum"), 3, "softmax", Y_ONEHOT),
        }.items():
            cases.setdefault(name, {})[lib] = ctor(mod)
            cases[name].update(units=units, act=act, y=y)
    return cases


LOSSES = _loss_cases()
CLASS_WEIGHT = {0: 2.0, 1: 0.5, 2: 1.5}


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_in_train_on_batch_and_evaluate_match_keras(name):
    case = LOSSES[name]
    y = case["y"]
    k, f = _pair(case["units"], case["act"])
    k.compile(optimizer=keras.optimizers.SGD(0.1), loss=case["k"])
    f.compile(optimizer=onnxforge.optimizers.SGD(0.1), loss=case["f"])
    kw = dict(batch_size=5, verbose=0)
    assert f.evaluate(X, y, **kw) == pytest.approx(k.evaluate(X, y, **kw), rel=1e-5)
    assert f.evaluate(X, y, sample_weight=SAMPLE_WEIGHT, **kw) == pytest.approx(
        k.evaluate(X, y, sample_weight=SAMPLE_WEIGHT, **kw), rel=1e-5)
    assert f.train_on_batch(X, y, sample_weight=SAMPLE_WEIGHT) == pytest.approx(
        k.train_on_batch(X, y, sample_weight=SAMPLE_WEIGHT), rel=1e-5)
    if name.startswith(("sparse", "ce")):
        assert f.train_on_batch(X, y, class_weight=CLASS_WEIGHT) == pytest.approx(
            k.train_on_batch(X, y, class_weight=CLASS_WEIGHT), rel=1e-5)
    elif name.startswith("bce"):
        assert f.train_on_batch(X, y, class_weight={0: 0.3, 1: 2.0}) == pytest.approx(
            k.train_on_batch(X, y, class_weight={0: 0.3, 1: 2.0}), rel=1e-5)
    assert _max_weight_diff(k, f) < 1e-5
    assert f.test_on_batch(X, y) == pytest.approx(k.test_on_batch(X, y), rel=1e-5)


@pytest.mark.parametrize("loss,activation,target", [
    ("mse", None, Y_REG[:, 0]), ("mae", None, Y_REG[:, 0]), ("huber", None, Y_REG[:, 0]),
    ("binary_crossentropy", "sigmoid", Y_BINARY[:, 0]),
])
def test_rank1_targets_against_a_column_output_match_keras(loss, activation, target):
    """Targets of shape (batch,) against an output of shape (batch, 1): Keras expands the targets."""
    k, f = _pair(1, activation)
    k.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    f.compile(optimizer=onnxforge.optimizers.SGD(0.1), loss=loss)
    for _ in range(2):
        assert f.train_on_batch(X, target, sample_weight=SAMPLE_WEIGHT) == pytest.approx(
            k.train_on_batch(X, target, sample_weight=SAMPLE_WEIGHT), rel=1e-5)
    assert _max_weight_diff(k, f) < 1e-5
    assert f.evaluate(X, target, verbose=0) == pytest.approx(k.evaluate(X, target, verbose=0), rel=1e-5)


@pytest.mark.parametrize("loss,activation,target", [
    ("mse", None, Y_REG[:, 0]), ("mae", None, Y_REG[:, 0]), ("huber", None, Y_REG[:, 0]),
    ("binary_crossentropy", "sigmoid", Y_BINARY[:, 0]),
])
def test_rank1_output_matches_keras(loss, activation, target):
    """An output of shape (batch,) (Reshape(())): Keras's last-axis mean makes each loss one scalar."""
    keras.utils.set_random_seed(3)
    k = keras.Sequential([keras.Input((5,)), KL.Dense(1, activation=activation), KL.Reshape(())])
    f = from_keras(k)
    assert f.predict(X, verbose=0).shape == (12,)
    k.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, metrics=["accuracy", "mae"])
    f.compile(optimizer=onnxforge.optimizers.SGD(0.1), loss=loss, metrics=["accuracy", "mae"])
    for _ in range(2):
        np.testing.assert_allclose(f.train_on_batch(X, target, sample_weight=SAMPLE_WEIGHT),
                                   k.train_on_batch(X, target, sample_weight=SAMPLE_WEIGHT), rtol=1e-5)
        assert _max_weight_diff(k, f) < 1e-5
    expected = k.evaluate(X, target, batch_size=5, verbose=0, return_dict=True)
    got = f.evaluate(X, target, batch_size=5, verbose=0, return_dict=True)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-5), key


# ----------------------------------------------------------------------------------------------- metrics
# name: (loss, output units, output activation, targets, metrics for Keras, metrics for onnxforge)
def _metric_cases():
    out = {}
    for lib, m in (("k", keras.metrics), ("f", onnxforge.metrics)):
        for name, (loss, units, act, y, metrics) in {
            "acc_sparse": ("sparse_categorical_crossentropy", 3, "softmax", Y_SPARSE, ["accuracy", "acc"]),
            "acc_categorical": ("categorical_crossentropy", 3, "softmax", Y_ONEHOT, ["accuracy"]),
            "acc_binary": ("binary_crossentropy", 1, "sigmoid", Y_BINARY, ["accuracy"]),
            "acc_mse": ("mse", 2, None, Y_REG, ["accuracy"]),
            "acc_logits": (keras.losses.SparseCategoricalCrossentropy(from_logits=True) if lib == "k" else
                           onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True), 3, None, Y_SPARSE,
                           ["accuracy"]),
            "top_k": ("sparse_categorical_crossentropy", 3, "softmax", Y_SPARSE,
                      [m.SparseTopKCategoricalAccuracy(k=2), "sparse_categorical_accuracy"]),
            "top_k_onehot": ("categorical_crossentropy", 3, "softmax", Y_ONEHOT,
                             [m.TopKCategoricalAccuracy(k=2), "categorical_accuracy"]),
            "binary_stats": ("binary_crossentropy", 1, "sigmoid", Y_BINARY,
                             [m.AUC(), m.AUC(curve="PR"), m.Precision(), m.Recall(), m.BinaryAccuracy()]),
            "regression": ("mse", 2, None, Y_REG, ["mae", "mse", m.MeanAbsoluteError(), m.MeanSquaredError()]),
            # Logits (outside [0, 1]) fed to AUC/Precision without from_logits: Keras clips them on its
            # evenly-spaced-thresholds path and compares them raw otherwise.
            "confusion_on_logits": (
                "binary_crossentropy", 1, None, Y_BINARY,
                [m.AUC(name="roc"), m.AUC(summation_method="minoring", name="roc_min"),
                 m.AUC(curve="PR", summation_method="majoring", name="pr_maj"), m.AUC(from_logits=True, name="lg"),
                 m.AUC(thresholds=[0.2, 0.5, 0.9], name="uneven"), m.Precision(thresholds=[0.0, 0.5, 1.0], name="p3"),
                 m.Recall(thresholds=[0.1, 0.7], name="r2"), m.Precision(name="p")]),
            "confusion_multilabel": ("binary_crossentropy", 3, "sigmoid", Y_MULTILABEL,
                                     [m.Precision(name="p"), m.Recall(class_id=1, name="r"),
                                      m.AUC(num_thresholds=11, name="auc"), m.BinaryAccuracy(threshold=0.6)]),
        }.items():
            out.setdefault(name, {}).update({lib: (loss, metrics), "units": units, "act": act, "y": y})
    return out


METRICS = _metric_cases()


@pytest.mark.parametrize("name", list(METRICS))
def test_metrics_in_evaluate_match_keras(name):
    case = METRICS[name]
    y = case["y"]
    k, f = _pair(case["units"], case["act"])
    k.compile(optimizer="sgd", loss=case["k"][0], metrics=case["k"][1])
    f.compile(optimizer="sgd", loss=case["f"][0], metrics=case["f"][1])
    expected = k.evaluate(X, y, batch_size=5, verbose=0, return_dict=True)
    got = f.evaluate(X, y, batch_size=5, verbose=0, return_dict=True)
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=key)
    weighted_k = k.evaluate(X, y, sample_weight=SAMPLE_WEIGHT, batch_size=5, verbose=0, return_dict=True)
    weighted_f = f.evaluate(X, y, sample_weight=SAMPLE_WEIGHT, batch_size=5, verbose=0, return_dict=True)
    for key in weighted_k:
        np.testing.assert_allclose(weighted_f[key], weighted_k[key], rtol=1e-5, atol=1e-6, err_msg=key)
    if not any(np.ndim(v) for v in expected.values()):   # the flat list: loss first, then Keras's order
        np.testing.assert_allclose(f.evaluate(X, y, verbose=0), k.evaluate(X, y, verbose=0), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------- fit
def test_fit_history_matches_keras():
    k, f = _pair(3, None)
    for model, lib in ((k, keras), (f, onnxforge)):
        model.compile(optimizer=lib.optimizers.SGD(0.1, momentum=0.5),
                      loss=lib.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    kw = dict(epochs=2, batch_size=4, validation_split=0.25, shuffle=False, verbose=0)
    expected = k.fit(X, Y_SPARSE, **kw).history
    got = f.fit(X, Y_SPARSE, **kw).history
    assert sorted(got) == sorted(expected) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key in expected:
        assert len(got[key]) == len(expected[key]) == 2
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=key)
    assert _max_weight_diff(k, f) < 1e-5


def test_fit_with_sample_weight_and_validation_data_matches_keras():
    k, f = _pair(1, "sigmoid")
    for model, lib in ((k, keras), (f, onnxforge)):
        model.compile(optimizer=lib.optimizers.SGD(0.2), loss="binary_crossentropy",
                      metrics=["accuracy", lib.metrics.AUC(name="auc")])
    kw = dict(epochs=2, batch_size=5, shuffle=False, verbose=0, sample_weight=SAMPLE_WEIGHT,
              validation_data=(X[:6], Y_BINARY[:6]))
    expected = k.fit(X, Y_BINARY, **kw).history
    got = f.fit(X, Y_BINARY, **kw).history
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=key)


# ------------------------------------------------------------------------------------- default configs
def _required_args(lib) -> dict:
    """The fewest arguments each layer class needs; everything else stays at its default."""
    L = lib.layers
    return {
        "Activation": dict(activation="relu"), "Dense": dict(units=3), "Dropout": dict(rate=0.5),
        "GaussianNoise": dict(stddev=0.1), "Embedding": dict(input_dim=10, output_dim=3),
        "Permute": dict(dims=(2, 1)), "Reshape": dict(target_shape=(2, 3)),
        "DepthwiseConv2D": dict(kernel_size=3), "AveragePooling1D": dict(pool_size=2),
        "AveragePooling2D": dict(pool_size=2), "AvgPool1D": dict(pool_size=2), "AvgPool2D": dict(pool_size=2),
        **{n: dict(filters=2, kernel_size=3) for n in (
            "Conv1D", "Conv2D", "Conv2DTranspose", "Convolution1D", "Convolution2D", "Convolution2DTranspose",
            "SeparableConv2D", "SeparableConvolution2D", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")},
        **{n: dict(units=2) for n in ("GRU", "GRUCell", "LSTM", "LSTMCell", "SimpleRNN", "SimpleRNNCell")},
        "InputLayer": dict(shape=(3,)),
        "Bidirectional": dict(layer=L.LSTM(2)),
        "TimeDistributed": dict(layer=L.Dense(2)), "RNN": dict(cell=L.GRUCell(2)),
        "SpectralNormalization": dict(layer=L.Dense(2)),
        **extra_required_args(lib),
    }


# Keys that name or type the object rather than configure it.
_IDENTITY_KEYS = {"name", "dtype", "module", "registered_name", "build_config"}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _IDENTITY_KEYS}
    if isinstance(value, (list, tuple)):
        return [_strip(v) for v in value]
    return value


def _shared_layer_classes() -> list[str]:
    import inspect
    return sorted(n for n in dir(onnxforge.layers)
                  if inspect.isclass(getattr(onnxforge.layers, n)) and hasattr(keras.layers, n)
                  and n not in {"InputSpec", "Layer"})


# Keys onnxforge writes that Keras does not: Keras's SimpleRNN takes ``seed`` but leaves it out of its config
# (LSTM and GRU keep it); onnxforge keeps it so the dropout seed survives a round trip.
_OUR_EXTRA_KEYS = {("SimpleRNN", "seed")}


def _config_differences(expected, got, where: str) -> list[str]:
    """Differences between two stripped configs, nested objects included. A key only Keras writes is
    fine when its value is inert (an argument newer Keras added with a do-nothing default:
    ``quantization_config=None``, ``renorm=False``, initializers' ``input_axes=None``, ...)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        out = [f"{where}.{k} only in Keras (= {expected[k]!r})" for k in expected
               if k not in got and not _is_inert(k, expected[k], expected)]
        out += [f"{where}.{k} only in onnxforge (= {got[k]!r})" for k in got
                if k not in expected and (where.split(".")[0], k) not in _OUR_EXTRA_KEYS]
        for k in expected.keys() & got.keys():
            out += _config_differences(expected[k], got[k], f"{where}.{k}")
        return out
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [d for i, (e, g) in enumerate(zip(expected, got)) for d in _config_differences(e, g, f"{where}[{i}]")]
    return [] if expected == got else [f"{where}: Keras {expected!r}, onnxforge {got!r}"]


# Keras builds these on TensorFlow's lookup tables and string ops, whatever the backend.
_LAYERS_ON_TENSORFLOW = {"IntegerLookup", "StringLookup", "TextVectorization"}


@pytest.mark.parametrize("name", _shared_layer_classes())
def test_default_constructor_arguments_match_keras(name):
    if name in _LAYERS_ON_TENSORFLOW and KERAS_TF_MISSING:
        pytest.skip(KERAS_TF_REASON)
    k_args, f_args = _required_args(keras).get(name, {}), _required_args(onnxforge).get(name, {})
    expected = _strip(getattr(keras.layers, name)(**k_args).get_config())
    got = _strip(getattr(onnxforge.layers, name)(**f_args).get_config())
    assert _config_differences(expected, got, name) == []


def test_fit_with_class_weight_matches_keras():
    k, f = _pair(3, "softmax")
    for model, lib in ((k, keras), (f, onnxforge)):
        model.compile(optimizer=lib.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    kw = dict(epochs=2, batch_size=4, validation_split=0.25, shuffle=False, verbose=0, class_weight=CLASS_WEIGHT)
    expected = k.fit(X, Y_SPARSE, **kw).history
    got = f.fit(X, Y_SPARSE, **kw).history
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=key)


# Config keys onnxforge keeps that Keras drops: Keras's Huber.get_config leaves out ``delta`` and
# SparseCategoricalCrossentropy's ``axis`` (so its own round trip resets them); onnxforge keeps them.
_OUR_EXTRA_OBJECT_KEYS = {("Huber", "delta"), ("SparseCategoricalCrossentropy", "axis")}


def _shared_classes(module: str) -> list[str]:
    import inspect
    ours, theirs = getattr(onnxforge, module), getattr(keras, module)
    # Abstract bases, and the wrappers that need other optimizers: LossScaleOptimizer (see tests/keras_oracle),
    # MultiOptimizer and OptimizerMap (tests/test_multi_optimizer.py covers them, .keras round trips included).
    abstract = {"Optimizer", "Loss", "Metric", "LossFunctionWrapper", "MeanMetricWrapper", "LossScaleOptimizer",
                "MultiOptimizer", "OptimizerMap"}
    return sorted(f"{module}.{n}" for n in dir(ours) if inspect.isclass(getattr(ours, n))
                  and hasattr(theirs, n) and n not in abstract)


# The arguments without defaults of the metric classes that have some (the same on both sides).
_REQUIRED_OBJECT_ARGS = {
    "PrecisionAtRecall": dict(recall=0.5), "RecallAtPrecision": dict(precision=0.5),
    "SensitivityAtSpecificity": dict(specificity=0.5), "SpecificityAtSensitivity": dict(sensitivity=0.5),
    "IoU": dict(num_classes=3, target_class_ids=[0, 2]), "MeanIoU": dict(num_classes=3),
    "OneHotIoU": dict(num_classes=3, target_class_ids=[1]), "OneHotMeanIoU": dict(num_classes=3),
}


@pytest.mark.parametrize("path", [p for m in ("optimizers", "losses", "metrics") for p in _shared_classes(m)])
def test_default_optimizer_loss_metric_configs_match_keras(path):
    module, name = path.split(".")
    args = _REQUIRED_OBJECT_ARGS.get(name, {}) if module == "metrics" else {}
    expected = _strip(getattr(getattr(keras, module), name)(**args).get_config())
    got = _strip(getattr(getattr(onnxforge, module), name)(**args).get_config())
    for key in set(expected) - set(got):
        assert _is_inert(key, expected[key], expected), f"{path}.{key} only in Keras (= {expected[key]!r})"
    extra = {key for key in set(got) - set(expected) if (name, key) not in _OUR_EXTRA_OBJECT_KEYS}
    assert not extra, f"{path}: keys only in onnxforge {extra}"
    for key in set(expected) & set(got):
        if isinstance(expected[key], float):   # Keras stores the learning rate as a float32 variable
            assert got[key] == pytest.approx(expected[key], rel=1e-6), f"{path}.{key}"
        else:
            assert got[key] == expected[key], f"{path}.{key}"


# ------------------------------------------------------------------------- layers inside a training step
_R = np.random.default_rng(3)
_IMAGES = _R.normal(size=(8, 6, 6, 2)).astype("float32")
_SEQUENCES = _R.normal(size=(8, 5, 3)).astype("float32")
_TOKENS = _R.integers(0, 10, size=(8, 5)).astype("int64")
_LABELS = _R.integers(0, 3, size=(8,)).astype("int64")
# name: (Keras layers after the input, inputs, optimizer class and arguments)
STEP_MODELS = {
    "cnn_batchnorm": (lambda: [KL.Conv2D(3, 3, padding="same", activation="relu"), KL.BatchNormalization(),
                               KL.MaxPooling2D(), KL.Flatten(), KL.Dense(3, activation="softmax")],
                      _IMAGES, ("Adam", dict(learning_rate=0.01))),
    "dense_norms": (lambda: [KL.Dense(4), KL.BatchNormalization(momentum=0.9), KL.Activation("relu"),
                             KL.LayerNormalization(), KL.Dense(3, activation="softmax")],
                    _SEQUENCES[:, 0], ("SGD", dict(learning_rate=0.1, momentum=0.9))),
    "conv1d": (lambda: [KL.Conv1D(3, 2, padding="causal"), KL.GlobalMaxPooling1D(), KL.Dense(3, activation="softmax")],
               _SEQUENCES, ("RMSprop", dict(learning_rate=0.01))),
    "lstm": (lambda: [KL.LSTM(4), KL.Dense(3, activation="softmax")], _SEQUENCES, ("Adam", dict(learning_rate=0.01))),
    "gru": (lambda: [KL.GRU(4, return_sequences=True), KL.GlobalAveragePooling1D(), KL.Dense(3, activation="softmax")],
            _SEQUENCES, ("Adam", dict(learning_rate=0.01))),
    "embedding_simple_rnn": (lambda: [KL.Embedding(10, 3), KL.SimpleRNN(4), KL.Dense(3, activation="softmax")],
                             _TOKENS, ("Adagrad", dict(learning_rate=0.1))),
}


@pytest.mark.parametrize("name", list(STEP_MODELS))
def test_layer_models_train_like_keras(name):
    """Two train_on_batch steps of small models with convolutions, normalization (moving statistics
    included: they are weights), recurrent layers and embeddings; then the same predictions."""
    make_layers, x, (cls, kwargs) = STEP_MODELS[name]
    keras.utils.set_random_seed(4)
    k = keras.Sequential([keras.Input(x.shape[1:], dtype=x.dtype), *make_layers()])
    rng = np.random.default_rng(5)
    k.set_weights([w if "moving" in v.path else rng.normal(0, 0.4, w.shape).astype("float32")
                   for w, v in zip(k.get_weights(), k.weights)])
    f = from_keras(k)
    k.compile(optimizer=getattr(keras.optimizers, cls)(**kwargs), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    f.compile(optimizer=getattr(onnxforge.optimizers, cls)(**kwargs), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    for step in range(2):
        np.testing.assert_allclose(f.train_on_batch(x, _LABELS), k.train_on_batch(x, _LABELS), rtol=1e-5,
                                   err_msg=f"loss and accuracy at step {step + 1}")
        assert _max_weight_diff(k, f) < 1e-5, f"weights after step {step + 1}"
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_fit_validation_split_keeps_sample_weights_and_initial_epoch_matches_keras():
    k, f = _pair(3, "softmax")
    for model, lib in ((k, keras), (f, onnxforge)):
        model.compile(optimizer=lib.optimizers.RMSprop(0.01), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    kw = dict(epochs=3, initial_epoch=1, batch_size=5, validation_split=0.3, sample_weight=SAMPLE_WEIGHT,
              shuffle=False, verbose=0)
    expected = k.fit(X, Y_SPARSE, **kw).history
    got = f.fit(X, Y_SPARSE, **kw).history
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("thresholds", [2.0, [-1, 0.5, 2], [None]])
@pytest.mark.parametrize("cls", ["Precision", "Recall"])
def test_threshold_range_errors_match_keras(cls, thresholds):
    with pytest.raises(ValueError) as theirs:
        getattr(keras.metrics, cls)(thresholds=thresholds)
    with pytest.raises(ValueError) as ours:
        getattr(onnxforge.metrics, cls)(thresholds=thresholds)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("kwargs", [{}, {"run_eagerly": True}, {"jit_compile": True}, {"jit_compile": False}])
def test_compile_flags_read_back_like_keras(kwargs):
    # keras.io guides read model.run_eagerly / model.jit_compile (and set them) around compile().
    def flags(lib):
        model = lib.Sequential([lib.Input((2,)), lib.layers.Dense(1)])
        before = (model.run_eagerly, bool(model.jit_compile))
        model.compile("sgd", "mse", **kwargs)
        return before, (model.run_eagerly, model.jit_compile)

    want = flags(keras)
    got = flags(onnxforge.keras)
    assert got[0] == (False, False) and got[1][0] == want[1][0]
    # Keras resolves "auto" by backend (torch: True); onnxforge never hands a step to XLA.
    assert got[1][1] is (kwargs.get("jit_compile") is True)
