"""Every layer family builds, predicts and trains under the float64 and mixed_float16 policies (onnxruntime
CPU): outputs in the compute dtype, float32 master weights under mixed precision, finite losses."""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

from onnxforge import keras as K
from onnxforge.optimizers import LossScaleOptimizer

L = K.layers

GROUPS = {
    "conv": ((8, 8, 3), lambda: [L.Conv2D(4, 3, padding="same"), L.DepthwiseConv2D(3),
                                 L.SeparableConv2D(4, 3, padding="same"), L.Conv2DTranspose(3, 3, strides=2),
                                 L.UpSampling2D(), L.AveragePooling2D(), L.ZeroPadding2D(1), L.MaxPooling2D(),
                                 L.BatchNormalization(), L.GlobalMaxPooling2D(), L.Dropout(0.3), L.Dense(2)]),
    "sequence": ((6, 3), lambda: [L.Conv1D(4, 2, padding="causal"), L.MaxPooling1D(), L.AveragePooling1D(),
                                  L.SimpleRNN(3, return_sequences=True),
                                  L.Bidirectional(L.LSTM(2, return_sequences=True)), L.TimeDistributed(L.Dense(2)),
                                  L.GlobalAveragePooling1D(), L.Dense(2)]),
    "activations": ((4, 6), lambda: [L.Dense(6, activation="gelu"), L.LayerNormalization(), L.Activation("swish"),
                                     L.ReLU(), L.LeakyReLU(), L.ELU(), L.Activation("selu"), L.Activation("softplus"),
                                     L.Softmax(), L.Permute((2, 1)), L.Reshape((24,)), L.GaussianNoise(0.1),
                                     L.Flatten(), L.Dense(2, activation="sigmoid")]),
    "embedding": (None, lambda: [L.Embedding(10, 4), L.Masking(), L.GRU(3), L.Dense(2)]),
}


@contextlib.contextmanager
def _policy(name):
    K.config.set_dtype_policy(name)
    try:
        yield
    finally:
        K.config.set_dtype_policy("float32")


@pytest.mark.parametrize("policy", ["float64", "mixed_float16"])
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_layers_predict_and_train_under_the_policy(group, policy):
    shape, make = GROUPS[group]
    with _policy(policy):
        model = K.Sequential([K.Input(shape) if shape else K.Input((5,), dtype="int64")] + make())
    rng = np.random.default_rng(0)
    x = rng.random((4, *shape)).astype("float32") if shape else rng.integers(0, 10, (4, 5))
    y = rng.random((4, 2)).astype("float32")
    compute = "float64" if policy == "float64" else "float16"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # float64 layers name the ops onnxruntime runs in float32
        assert model.predict(x, verbose=0).dtype == np.dtype(compute)
        model.compile(optimizer="adam", loss="mse")
        losses = [model.train_on_batch(x, y) for _ in range(2)]
    assert model.outputs[0].dtype == compute and np.all(np.isfinite(losses))
    variable_dtype = "float64" if policy == "float64" else "float32"
    assert {str(w.dtype) for w in model.weights if "float" in str(w.dtype)} == {variable_dtype}
    assert isinstance(model.optimizer, LossScaleOptimizer) == (policy == "mixed_float16")


def test_a_float64_conv_layer_warns_once_naming_itself():
    with _policy("float64"):
        model = K.Sequential([K.Input((5, 5, 1)), L.Conv2D(2, 3, name="conv64"), L.Flatten(), L.Dense(1)])
    x = np.ones((2, 5, 5, 1), "float32")
    with pytest.warns(UserWarning, match=r"Layer 'conv64' \(Conv2D\) computes in float64.*no float64 kernel "
                                         r"for Conv") as record:
        model.predict(x, verbose=0)
        model.compile(optimizer="sgd", loss="mse")
        model.train_on_batch(x, np.ones((2, 1), "float32"))
    assert sum("conv64" in str(w.message) for w in record) == 1


def test_bfloat16_on_the_cpu_is_refused_with_a_clear_error():
    with _policy("mixed_bfloat16"):
        model = K.Sequential([K.Input((3,)), L.Dense(2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the clear error alone, no warning about constant weights before it
        with pytest.raises(RuntimeError, match="computes in bfloat16.*no bfloat16 kernels.*mixed_float16"):
            model.predict(np.ones((1, 3), "float32"), verbose=0)
