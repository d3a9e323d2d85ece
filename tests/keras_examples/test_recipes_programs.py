"""keras.io's Keras recipes (``recipes_programs.py``) under onnxforge and TensorFlow: the trainer pattern,
memory-efficient embeddings, a scikit-learn metric callback, reproducibility, TensorFlow-NumPy models."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras

from . import recipes_programs, tf_oracle

PROGRAMS = ["trainer_pattern", "memory_efficient_embeddings", "sklearn_metric_callback", "reproducibility",
            "tensorflow_numpy_models"]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    pytest.importorskip("sklearn")
    return tf_oracle.start("recipes_programs", PROGRAMS, tmp_path_factory.mktemp("recipes") / "tf.npz")


@pytest.mark.parametrize("program", PROGRAMS)
def test_recipe_matches_tensorflow(oracle, program):
    ours, theirs = getattr(recipes_programs, program)(tf, keras), oracle.results(program)
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        np.testing.assert_allclose(np.asarray(ours[key], np.float64), theirs[key], rtol=2e-5, atol=2e-5,
                                   err_msg=key)


def test_tf_numpy_module_is_keras_ops_under_numpy_names():
    import onnxforge.experimental.numpy as tnp

    assert tnp is tf.experimental.numpy
    np.testing.assert_allclose(tnp.mean(tnp.square(np.array([1.0, 3.0], "float32"))), 5.0)
    with pytest.raises(AttributeError, match="tnp.random is not one of them"):
        tnp.random.randn(3)


def test_op_determinism_switches_are_recorded():
    tf.config.experimental.enable_op_determinism()
    assert tf.config.experimental.is_op_determinism_enabled()
    tf.config.experimental.disable_op_determinism()
    assert not tf.config.experimental.is_op_determinism_enabled()


def test_a_subclassed_model_built_by_its_own_build_has_inputs():
    class Linear(keras.Model):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[1], 1), initializer="ones", name="w")

        def call(self, x):
            return tf.matmul(x, self.w)

    model = Linear()
    model.build((None, 3))
    assert [tuple(t.shape) for t in model.inputs] == [(None, 3)]
    model.compile(optimizer="sgd", loss="mse")
    assert model.evaluate(np.ones((2, 3), "float32"), np.full((2, 1), 3.0, "float32"), verbose=0) == 0.0


def test_float8_quantization_and_ragged_tensors_are_refused_clearly():
    # keras.io's float8 recipe quantizes in place; the MPNN molecule example batches ragged graphs
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(NotImplementedError, match="quantize\\(\\) is not supported .* mode='float8'"):
        model.quantize("float8")
    with pytest.raises(AttributeError, match="no tf.RaggedTensor: ragged tensors are not supported"):
        tf.RaggedTensor.from_row_lengths(np.arange(5.0), [2, 3])
    with pytest.raises(AttributeError, match="no tf.ragged"):
        tf.ragged.constant([[1, 2], [3]])
    assert not hasattr(tf, "no_such_name")
