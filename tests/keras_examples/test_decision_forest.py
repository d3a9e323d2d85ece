"""keras.io "Classification with Neural Decision Forests": ``NeuralDecisionTree`` and ``NeuralDecisionForest`` are
subclassed ``keras.Model``s used as layers: a weight made with ``self.add_weight`` in ``__init__`` and read as
``keras.activations.softmax(self.pi)`` in ``call()``, a constant feature mask from ``ops.convert_to_tensor``,
``ops.ones`` / ``ops.zeros`` of the symbolic batch size, ``ops.tile`` and slices along the tree levels, and a
``Dense(name="decision")`` in every tree. The tree runs on dict inputs (an ``Embedding`` of an int feature,
``expand_dims`` of the numeric ones, ``BatchNormalization``) in a functional model; the forest is the
subclassed model itself, saved and loaded with ``.weights.h5``.

Before: ``softmax(self.pi)`` raised AttributeError (an activation read a Variable as a graph value), and the
forest's trees, whose Dense layers share the name "decision", failed to trace ("Name 'decision/kernel' is
already used in this graph"). Still refused (see the report): the forest inside a functional model, where
onnxforge's weight paths (without the sub-model's name) collide.

Tolerance: Keras's initial weights copied, no randomness, unshuffled batches: the same float32 computation,
so predictions and losses within 1e-4.
"""
from __future__ import annotations

import numpy as np

from .harness import assert_close, run_both, workdir

NUM_CLASSES = 2


def forest_classes(keras):
    ops, layers = keras.ops, keras.layers

    class NeuralDecisionTree(keras.Model):
        def __init__(self, depth, num_features, used_features_rate, num_classes):
            super().__init__()
            self.depth = depth
            self.num_leaves = 2 ** depth
            self.num_classes = num_classes
            num_used_features = int(num_features * used_features_rate)
            one_hot = np.eye(num_features)
            sampled_feature_indices = np.random.choice(np.arange(num_features), num_used_features, replace=False)
            self.used_features_mask = ops.convert_to_tensor(one_hot[sampled_feature_indices], dtype="float32")
            self.pi = self.add_weight(initializer="random_normal", shape=[self.num_leaves, self.num_classes],
                                      dtype="float32", trainable=True)
            self.decision_fn = layers.Dense(units=self.num_leaves, activation="sigmoid", name="decision")

        def call(self, features):
            batch_size = ops.shape(features)[0]
            features = ops.matmul(features, ops.transpose(self.used_features_mask))
            decisions = ops.expand_dims(self.decision_fn(features), axis=2)
            decisions = layers.concatenate([decisions, 1 - decisions], axis=2)
            mu = ops.ones([batch_size, 1, 1])
            begin_idx, end_idx = 1, 2
            for level in range(self.depth):
                mu = ops.reshape(mu, [batch_size, -1, 1])
                mu = ops.tile(mu, (1, 1, 2))
                mu = mu * decisions[:, begin_idx:end_idx, :]
                begin_idx = end_idx
                end_idx = begin_idx + 2 ** (level + 1)
            mu = ops.reshape(mu, [batch_size, self.num_leaves])
            probabilities = keras.activations.softmax(self.pi)
            return ops.matmul(mu, probabilities)

    class NeuralDecisionForest(keras.Model):
        def __init__(self, num_trees, depth, num_features, used_features_rate, num_classes):
            super().__init__()
            self.ensemble = []
            for _ in range(num_trees):
                self.ensemble.append(NeuralDecisionTree(depth, num_features, used_features_rate, num_classes))

        def call(self, inputs):
            batch_size = ops.shape(inputs)[0]
            outputs = ops.zeros([batch_size, NUM_CLASSES])
            for tree in self.ensemble:
                outputs += tree(inputs)
            outputs /= len(self.ensemble)
            return outputs

    return NeuralDecisionTree, NeuralDecisionForest


def decision_tree(keras, data, init):
    x, y = data
    tree_class, _ = forest_classes(keras)
    layers = keras.layers
    np.random.seed(0)   # the example draws each tree's feature mask with NumPy
    inputs = {"a": layers.Input(name="a", shape=(), dtype="float32"),
              "b": layers.Input(name="b", shape=(), dtype="float32"),
              "c": layers.Input(name="c", shape=(), dtype="int32")}
    encoded = []
    for name in inputs:
        if name == "c":
            encoded.append(layers.Embedding(input_dim=4, output_dim=2)(inputs[name]))
        else:
            feature = inputs[name]
            if inputs[name].shape[-1] is None:
                feature = keras.ops.expand_dims(feature, -1)
            encoded.append(feature)
    features = layers.BatchNormalization()(layers.concatenate(encoded))
    model = keras.Model(inputs=inputs, outputs=tree_class(3, features.shape[1], 1.0, NUM_CLASSES)(features))
    init(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    first = float(np.asarray(model.predict(x, verbose=0))[0, 0])
    history = model.fit(x, y, batch_size=50, epochs=2, shuffle=False, verbose=0)
    loss, _ = model.evaluate(x, y, verbose=0)
    return {"first_prediction": first, "loss": history.history["loss"][-1], "eval_loss": float(loss)}


def decision_forest(keras, data, init, tmp_path):
    x, y = data
    _, forest_class = forest_classes(keras)
    np.random.seed(0)
    model = forest_class(3, 3, x.shape[1], 0.5, NUM_CLASSES)
    model(x[:2])
    init(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    first = float(np.asarray(model.predict(x, verbose=0))[0, 0])
    history = model.fit(x, y, batch_size=50, epochs=2, shuffle=False, verbose=0)
    path = str(workdir(keras, tmp_path) / "forest.weights.h5")
    model.save_weights(path)
    trained = np.asarray(model.predict(x, verbose=0))
    model.load_weights(path)
    assert np.allclose(np.asarray(model.predict(x, verbose=0)), trained)
    return {"first_prediction": first, "loss": history.history["loss"][-1],
            "last_prediction": float(trained[0, 0])}


def _table(n=200):
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=n).astype("float32"), "b": rng.normal(size=n).astype("float32"),
         "c": rng.integers(0, 4, n).astype("int32")}
    return x, (x["a"] + (x["c"] == 2) > 0.5).astype("int64")


def test_decision_tree_on_dict_inputs():
    want, got = run_both(decision_tree, _table(), copy_weights=True)
    assert_close(want, got, rtol=1e-4, atol=1e-6)


def test_decision_forest_subclassed_model(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype("float32")
    want, got = run_both(decision_forest, (x, (x[:, 0] > 0).astype("int64")), copy_weights=True, tmp_path=tmp_path)
    assert_close(want, got, rtol=1e-4, atol=1e-6)
