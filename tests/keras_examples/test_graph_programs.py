"""keras.io's graph examples (GNN citations, graph attention: ``graph_programs.py``) under onnxforge and
TensorFlow, and the behaviours they rely on, each on its own."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras

from . import graph_programs, tf_oracle

PROGRAMS = ["gnn_citations", "gat_keras3", "gat_tf"]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    return tf_oracle.start("graph_programs", PROGRAMS, tmp_path_factory.mktemp("graph") / "tf.npz")


def _compare(ours: dict, theirs: dict, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        np.testing.assert_allclose(np.asarray(ours[key], np.float64), theirs[key], rtol=rtol, atol=atol,
                                   err_msg=key)


def test_gnn_node_classifier_matches_tensorflow(oracle):
    # GraphConvLayer gets (node values, the edges array, weights); unsorted_segment_sum / mean / max; a call()
    # without `training`, so fit runs BatchNormalization on its moving statistics as Keras 3 does; then the
    # graph attributes are replaced by a larger graph and predict / a direct call read the new one.
    _compare(graph_programs.gnn_citations(tf, keras), oracle.results("gnn_citations"))


def test_graph_attention_in_keras_ops_matches_tensorflow(oracle):
    _compare(graph_programs.gat_keras3(tf, keras), oracle.results("gat_keras3"))


def test_graph_attention_in_tf_ops_with_a_custom_train_step_matches_tensorflow(oracle):
    # num_segments=tf.reduce_max(edges[:, 0]) + 1 and tf.repeat(sums, tf.math.bincount(ids)) of the edge list
    # the train_step passes in: sizes computed from constants, known while the step is traced
    _compare(graph_programs.gat_tf(tf, keras), oracle.results("gat_tf"))


def test_sizes_computed_from_constants_are_known_while_tracing():
    ids = np.array([0, 0, 2, 2, 2, 3])

    @tf.function
    def pooled(x):
        sums = tf.math.unsorted_segment_sum(x, ids, num_segments=tf.reduce_max(ids) + 1)
        return tf.repeat(sums, tf.math.bincount(tf.cast(ids, "int32"), minlength=4), axis=0)

    x = np.arange(12, dtype="float32").reshape(6, 2)
    sums = np.stack([x[ids == k].sum(0) for k in range(4)])
    np.testing.assert_allclose(pooled(x), np.repeat(sums, [2, 0, 3, 1], axis=0))

    @tf.function
    def from_input(x):
        return tf.math.unsorted_segment_sum(x, ids, num_segments=tf.reduce_max(tf.cast(x[:, 0], "int64")) + 1)

    with pytest.raises(TypeError, match="needs the value of symbolic tensor"):
        from_input(x)   # a size that depends on the input has no value until the program runs


def test_calls_after_an_array_attribute_is_replaced_read_the_new_array():
    class Lookup(keras.Model):
        def __init__(self, table):
            super().__init__()
            self.table = table
            self.scale = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")

        def call(self, ids):
            return self.scale(tf.gather(self.table, ids))

    model = Lookup(np.array([[1.0], [2.0]], "float32"))
    model.compile(optimizer="sgd", loss="mse")
    ids = np.array([1, 0])
    np.testing.assert_allclose(model.predict(ids, verbose=0), [[2.0], [1.0]])
    np.testing.assert_allclose(model(ids), [[2.0], [1.0]])
    model.table = np.array([[5.0], [7.0], [9.0]], "float32")
    np.testing.assert_allclose(model.predict(np.array([2, 1]), verbose=0), [[9.0], [7.0]])
    np.testing.assert_allclose(model(np.array([2, 1])), [[9.0], [7.0]])
    assert model.evaluate(np.array([0]), np.array([[5.0]]), verbose=0) == pytest.approx(0.0)
