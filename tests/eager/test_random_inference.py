"""Random ops in ``call()`` draw at inference too (a VAE's sampling layer in ``predict``), from the model's
stream or the layer's own ``SeedGenerator``, advancing per batch as Keras's seed generators do."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxforge as of
from onnxforge import ops

X = np.zeros((6, 3), np.float32)


class Noisy(of.layers.Layer):
    """Adds unit normal noise drawn from the model's stream (no seed) or from ``seed``."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = ops.random.SeedGenerator(seed) if seed is not None else None

    def call(self, x):
        return x + ops.random.normal(ops.shape(x), seed=self.seed)


def _model(seed=None):
    inp = of.Input((3,))
    return of.Model(inp, Noisy(seed)(inp))


@pytest.mark.parametrize("seed", [None, 7], ids=["model_stream", "seed_generator"])
def test_predict_draws_fresh_noise_each_batch(seed):
    model = _model(seed)
    a = model.predict(X, batch_size=3, verbose=0)
    b = model.predict(X, batch_size=3, verbose=0)
    assert a.shape == (6, 3) and np.abs(a).max() > 0.1
    assert not np.allclose(a[:3], a[3:]) and not np.allclose(a, b)
    eager = model(X)
    assert eager.shape == (6, 3) and not np.allclose(eager, a) and not np.allclose(eager, b)


def test_compile_seed_repeats_predict_noise():
    model = _model()
    model.compile(optimizer="sgd", loss="mse", seed=3)
    first = model.predict(X, verbose=0)
    model.compile(optimizer="sgd", loss="mse", seed=3)
    np.testing.assert_array_equal(model.predict(X, verbose=0), first)


def test_seed_generator_layers_repeat_from_the_same_seed():
    a, b = _model(11), _model(11)
    np.testing.assert_array_equal(a.predict(X, verbose=0), b.predict(X, verbose=0))


def test_export_bakes_the_stream_in(tmp_path, checked):
    model = _model()
    path = model.export(tmp_path / "noisy.onnx")
    proto = checked(onnx.load(str(path)))
    assert [i.name for i in proto.graph.input] == model.input_names
    assert [o.name for o in proto.graph.output] == model.output_names
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    one, two = (sess.run(None, {model.input_names[0]: X})[0] for _ in range(2))
    assert np.abs(one).max() > 0.1
    np.testing.assert_array_equal(one, two)    # a standalone graph: the same draws every run
