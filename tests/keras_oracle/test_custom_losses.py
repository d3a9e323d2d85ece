"""Custom losses (lambdas, plain functions, Loss subclasses; scalar or per-sample results) against Keras 3:
the reduction, sample weights, training and evaluation all give Keras's numbers."""
from __future__ import annotations

import numpy as np
import pytest

from .common import copy_weights, fkeras, keras, max_diff, onnxforge, random_weights

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

X = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
Y = np.random.default_rng(1).normal(size=(6, 2)).astype("float32")
SW = np.array([1.0, 2.0, 0.5, 0.0, 1.0, 3.0], "float32")


def _losses(K):
    ops = K.ops

    def plain(yt, yp):
        return ops.mean(ops.square(yt - yp))

    def per_sample(yt, yp):
        return ops.mean(ops.square(yt - yp), axis=-1)

    class ScalarLoss(K.losses.Loss):
        def call(self, yt, yp):
            return ops.mean(ops.abs(yt - yp))

    class PerSampleLoss(K.losses.Loss):
        def call(self, yt, yp):
            return ops.sum(ops.abs(yt - yp), axis=-1)

    class PerEntryLoss(K.losses.Loss):
        def call(self, yt, yp):
            return ops.square(yt - yp) * 0.5

    return {
        "lambda_scalar": lambda: (lambda yt, yp: ops.mean(ops.square(yt - yp))),
        "function_scalar": lambda: plain,
        "function_per_sample": lambda: per_sample,
        "subclass_scalar": ScalarLoss,
        "subclass_per_sample": PerSampleLoss,
        "subclass_per_sample_sum": lambda: PerSampleLoss(reduction="sum"),
        "subclass_per_entry": PerEntryLoss,
        "subclass_scalar_mean_with_sample_weight": lambda: ScalarLoss(reduction="mean_with_sample_weight"),
    }


CASES = sorted(_losses(keras))


def _model(K):
    inp = K.Input((3,))
    return K.Model(inp, K.layers.Dense(2)(K.layers.Dense(4, activation="tanh")(inp)))


@pytest.mark.parametrize("case", CASES)
def test_custom_loss_trains_and_evaluates_like_keras(case):
    k, f = _model(keras), _model(fkeras)
    random_weights(k, seed=2)
    copy_weights(k, f)
    k.compile(optimizer=keras.optimizers.SGD(0.1), loss=_losses(keras)[case]())
    f.compile(optimizer=fkeras.optimizers.SGD(0.1), loss=_losses(fkeras)[case]())
    assert f.train_on_batch(X, Y) == pytest.approx(k.train_on_batch(X, Y), rel=1e-5)
    # Keras refuses (batch,) weights on a (batch, 2) per-entry loss (its broadcasting fails); onnxforge
    # broadcasts them per sample, so that case is compared without weights.
    sw = None if case == "subclass_per_entry" else SW
    assert f.train_on_batch(X, Y, sample_weight=sw) == pytest.approx(
        k.train_on_batch(X, Y, sample_weight=sw), rel=1e-5)
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-5
    assert f.evaluate(X, Y, sample_weight=sw, verbose=0) == pytest.approx(
        k.evaluate(X, Y, sample_weight=sw, verbose=0), rel=1e-5)


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("subclass")])
def test_loss_objects_called_directly_match_keras(case):
    kl, fl = _losses(keras)[case](), _losses(fkeras)[case]()
    pred = np.random.default_rng(3).normal(size=(6, 2)).astype("float32")
    for sw in (None, SW) if case != "subclass_per_entry" else (None,):
        expected = keras.ops.convert_to_numpy(kl(Y, pred, sample_weight=sw))
        np.testing.assert_allclose(fl(Y, pred, sample_weight=sw), expected, rtol=1e-5)


def test_a_scalar_loss_of_unknown_rank_still_builds_a_loadable_train_graph():
    """A loss built from raw graph ops carries no shape: the weighting must not assume a leading dim."""
    class RawMean(onnxforge.losses.Loss):
        def call(self, yt, yp):
            d = yt - yp
            return d.builder.op("ReduceMean", [d * d], keepdims=0)   # no shape annotation: rank unknown

    f = _model(fkeras)
    random_weights(f, seed=2)
    g = _model(fkeras)
    g.set_weights(f.get_weights())
    f.compile(optimizer=fkeras.optimizers.SGD(0.1), loss=RawMean())
    g.compile(optimizer=fkeras.optimizers.SGD(0.1), loss=_losses(fkeras)["lambda_scalar"]())
    assert f.train_on_batch(X, Y, sample_weight=SW) == pytest.approx(
        g.train_on_batch(X, Y, sample_weight=SW), rel=1e-6)
    assert max_diff(f.get_weights(), g.get_weights()) < 1e-6
