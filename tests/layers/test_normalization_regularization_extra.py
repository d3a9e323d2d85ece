"""GroupNormalization, UnitNormalization, RMSNormalization, PReLU, the spatial / Gaussian / alpha dropouts
and ActivityRegularization against real Keras 3 (torch backend)."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
from onnxforge import layers as L  # noqa: E402
from tests.layers.helpers import trace  # noqa: E402
from tests.layers.keras_parity import check_layer_parity  # noqa: E402

R = np.random.default_rng(4)

CASES = {
    "group_norm": (lambda K: K.GroupNormalization(groups=2), (3, 3, 4)),
    "group_norm_instance_first": (lambda K: K.GroupNormalization(groups=-1, axis=1, center=False), (4, 3, 2)),
    "group_norm_seq": (lambda K: K.GroupNormalization(groups=3, epsilon=0.1, scale=False), (5, 6)),
    "unit_norm": (lambda K: K.UnitNormalization(), (5, 4)),
    "unit_norm_axes": (lambda K: K.UnitNormalization(axis=[1, 2]), (3, 4)),
    "rms_norm": (lambda K: K.RMSNormalization(), (5, 4)),
    "rms_norm_axes": (lambda K: K.RMSNormalization(axis=[1, 2], epsilon=1e-3), (3, 4)),
    "prelu": (lambda K: K.PReLU(alpha_initializer="ones"), (5, 4)),
    "prelu_shared": (lambda K: K.PReLU(shared_axes=[1, 2]), (3, 3, 2)),
    "spatial_dropout2d_inference": (lambda K: K.SpatialDropout2D(0.5), (3, 3, 2)),
    "gaussian_dropout_inference": (lambda K: K.GaussianDropout(0.3), (4,)),
    "alpha_dropout_inference": (lambda K: K.AlphaDropout(0.3), (4,)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_keras_and_trains(name):
    factory, shape = CASES[name]

    def make(keras):
        x = keras.Input(shape)
        return keras.Model(x, factory(keras.layers)(keras.layers.Dense(shape[-1])(x)))
    # The dropouts are identity outside training: the step compares their gradients only when
    # they add no noise, so those run outputs and configs alone.
    check_layer_parity(make, R.normal(size=(3, *shape)).astype("float32"), train="dropout" not in name)


def test_activity_regularization_adds_keras_penalty_to_the_loss():
    def make(keras):
        x = keras.Input((4,))
        h = keras.layers.ActivityRegularization(l1=0.01, l2=0.1)(keras.layers.Dense(3)(x))
        return keras.Model(x, keras.layers.Dense(2)(h))
    check_layer_parity(make, R.normal(size=(5, 4)).astype("float32"), train=True)


def test_spatial_dropout_drops_whole_channels():
    layer = L.SpatialDropout1D(0.5)
    traced = trace(layer, ((3, 4), np.float32), training=True)
    x = R.normal(size=(2, 3, 4)).astype("float32")
    u = R.uniform(size=(2, 1, 4)).astype("float32")
    np.testing.assert_allclose(traced(x, noise=[u]), x * (u >= 0.5) * 2.0, rtol=1e-6)
    layer2 = L.SpatialDropout2D(0.25, data_format="channels_first")
    traced2 = trace(layer2, ((3, 2, 2), np.float32), training=True)
    x2 = R.normal(size=(2, 3, 2, 2)).astype("float32")
    u2 = R.uniform(size=(2, 3, 1, 1)).astype("float32")
    np.testing.assert_allclose(traced2(x2, noise=[u2]), x2 * (u2 >= 0.25) / 0.75, rtol=1e-6)


def _keras_training_stats(layer, x):
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    return float(y.mean()), float(y.std())


def test_gaussian_and_alpha_dropout_have_keras_statistics():
    n = 20000
    x = np.full((n, 1), 0.7, "float32")
    rng = np.random.default_rng(5)
    gd = trace(L.GaussianDropout(0.3), ((1,), np.float32), training=True)
    ours = gd(x, noise=[rng.uniform(size=(n, 1)), rng.uniform(size=(n, 1))])
    theirs = _keras_training_stats(keras.layers.GaussianDropout(0.3, seed=1), x)
    assert abs(ours.mean() - theirs[0]) < 0.02 and abs(ours.std() - theirs[1]) < 0.02
    ad = trace(L.AlphaDropout(0.2), ((1,), np.float32), training=True)
    u = rng.uniform(size=(n, 1)).astype("float32")
    ours = ad(x, noise=[u])
    theirs = _keras_training_stats(keras.layers.AlphaDropout(0.2, seed=1), x)
    assert abs(ours.mean() - theirs[0]) < 0.02 and abs(ours.std() - theirs[1]) < 0.02
    # Exactly Keras's affine map of the kept / dropped values.
    alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    a = ((1 - 0.2) * (1 + 0.2 * alpha_p ** 2)) ** -0.5
    expected = a * np.where(u >= 0.2, x, alpha_p) - a * alpha_p * 0.2
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_dropout_variants_train_in_a_compiled_model():
    model = onnxforge.Sequential([L.Input((4, 4, 2)), L.Conv2D(3, 1), L.SpatialDropout2D(0.3), L.Flatten(),
                                  L.GaussianDropout(0.2), L.AlphaDropout(0.1), L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = R.normal(size=(16, 4, 4, 2)).astype("float32")
    history = model.fit(x, x.sum(axis=(1, 2, 3))[:, None] * 0.1, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_allclose(model.predict(x[:2], verbose=0), model.predict(x[:2], verbose=0))


def test_group_normalization_refuses_groups_not_dividing_channels():
    with pytest.raises(ValueError, match="multiple"):
        L.GroupNormalization(groups=3)(L.Input((4, 5)))
    with pytest.raises(ValueError, match="cannot be more"):
        L.GroupNormalization(groups=8)(L.Input((4, 5)))
