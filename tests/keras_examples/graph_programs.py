"""keras.io's graph examples (``examples/graph``) as ``program(tf, keras) -> {name: array}``.

Each keeps its example's calls (``tf.gather``, ``tf.math.unsorted_segment_*``, a subclassed model holding
the graph as attributes, node embeddings through ``predict``) on a small synthetic graph whose node classes
follow its links, with seeded weights and Dropout at rate 0 so that TensorFlow (``tf_oracle.py``) and
onnxforge train on the same numbers.
"""
from __future__ import annotations

import numpy as np


def citation_graph(num_nodes=40, num_features=12, num_classes=3, seed=0):
    """Cora-like: binary word vectors whose frequent words depend on the class; links mostly within a class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num_nodes)
    probs = np.full((num_classes, num_features), 0.1)
    for c in range(num_classes):
        probs[c, c * 4:(c + 1) * 4] = 0.6
    features = (rng.uniform(size=(num_nodes, num_features)) < probs[labels]).astype("float32")
    edges = []
    for node in range(num_nodes):
        same = np.flatnonzero(labels == labels[node])
        for other in rng.choice(same, 2):
            edges.append([node, int(other)])
        edges.append([node, int(rng.integers(0, num_nodes))])
    return features, np.array(edges).T, labels


def seeded(model, seed):
    rng = np.random.default_rng(seed)
    values = [rng.normal(0, 0.3, tuple(w.shape)).astype("float32") for w in model.weights]
    model.set_weights([np.abs(v) + 0.5 if "variance" in w.name else v for v, w in zip(values, model.weights)])


def gnn_citations(tf, keras, cases=(("mean", "gru"),)):
    layers = keras.layers
    features, edges, labels = citation_graph()
    num_classes, hidden_units, dropout_rate = 3, [8, 8], 0.0

    def create_ffn(hidden_units, dropout_rate, name=None):
        fnn_layers = []
        for units in hidden_units:
            fnn_layers.append(layers.BatchNormalization())
            fnn_layers.append(layers.Dropout(dropout_rate))
            fnn_layers.append(layers.Dense(units, activation=tf.nn.gelu))
        return keras.Sequential(fnn_layers, name=name)

    class GraphConvLayer(layers.Layer):
        def __init__(self, hidden_units, dropout_rate=0.2, aggregation_type="mean", combination_type="concat",
                     normalize=False, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.aggregation_type = aggregation_type
            self.combination_type = combination_type
            self.normalize = normalize
            self.ffn_prepare = create_ffn(hidden_units, dropout_rate)
            self.update_fn = create_ffn(hidden_units, dropout_rate)

        def prepare(self, node_repesentations, weights=None):
            messages = self.ffn_prepare(node_repesentations)
            if weights is not None:
                messages = messages * tf.expand_dims(weights, -1)
            return messages

        def aggregate(self, node_indices, neighbour_messages, node_repesentations):
            num_nodes = node_repesentations.shape[0]
            if self.aggregation_type == "sum":
                return tf.math.unsorted_segment_sum(neighbour_messages, node_indices, num_segments=num_nodes)
            if self.aggregation_type == "mean":
                return tf.math.unsorted_segment_mean(neighbour_messages, node_indices, num_segments=num_nodes)
            return tf.math.unsorted_segment_max(neighbour_messages, node_indices, num_segments=num_nodes)

        def update(self, node_repesentations, aggregated_messages):
            if self.combination_type == "gru":
                h = tf.stack([node_repesentations, aggregated_messages], axis=1)
            elif self.combination_type == "concat":
                h = tf.concat([node_repesentations, aggregated_messages], axis=1)
            else:
                h = node_repesentations + aggregated_messages
            node_embeddings = self.update_fn(h)
            if self.combination_type == "gru":
                node_embeddings = tf.unstack(node_embeddings, axis=1)[-1]
            if self.normalize:
                node_embeddings = tf.nn.l2_normalize(node_embeddings, axis=-1)
            return node_embeddings

        def call(self, inputs):
            node_repesentations, edges, edge_weights = inputs
            node_indices, neighbour_indices = edges[0], edges[1]
            neighbour_repesentations = tf.gather(node_repesentations, neighbour_indices)
            neighbour_messages = self.prepare(neighbour_repesentations, edge_weights)
            aggregated_messages = self.aggregate(node_indices, neighbour_messages, node_repesentations)
            return self.update(node_repesentations, aggregated_messages)

    class GNNNodeClassifier(keras.Model):
        def __init__(self, graph_info, num_classes, hidden_units, aggregation_type="sum",
                     combination_type="concat", dropout_rate=0.2, normalize=True, *args, **kwargs):
            super().__init__(*args, **kwargs)
            node_features, edges, edge_weights = graph_info
            self.node_features = node_features
            self.edges = edges
            self.edge_weights = edge_weights
            if self.edge_weights is None:
                self.edge_weights = tf.ones(shape=edges.shape[1])
            self.edge_weights = self.edge_weights / tf.math.reduce_sum(self.edge_weights)
            self.preprocess = create_ffn(hidden_units, dropout_rate, name="preprocess")
            self.conv1 = GraphConvLayer(hidden_units, dropout_rate, aggregation_type, combination_type,
                                        normalize, name="graph_conv1")
            self.conv2 = GraphConvLayer(hidden_units, dropout_rate, aggregation_type, combination_type,
                                        normalize, name="graph_conv2")
            self.postprocess = create_ffn(hidden_units, dropout_rate, name="postprocess")
            self.compute_logits = layers.Dense(units=num_classes, name="logits")

        def call(self, input_node_indices):
            x = self.preprocess(self.node_features)
            x1 = self.conv1((x, self.edges, self.edge_weights))
            x = x1 + x
            x2 = self.conv2((x, self.edges, self.edge_weights))
            x = x2 + x
            x = self.postprocess(x)
            node_embeddings = tf.gather(x, input_node_indices)
            return self.compute_logits(node_embeddings)

    out = {}
    for aggregation, combination in cases:
        edge_weights = tf.ones(shape=edges.shape[1])
        node_features = tf.cast(features, dtype=tf.dtypes.float32)
        model = GNNNodeClassifier((node_features, edges, edge_weights), num_classes, hidden_units,
                                  aggregation_type=aggregation, combination_type=combination,
                                  dropout_rate=dropout_rate, name="gnn_model")
        model(np.array([1, 10, 20]))
        seeded(model, 5)
        first = model(np.array([1, 10, 20]))
        model.compile(optimizer=keras.optimizers.Adam(0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
        early_stopping = keras.callbacks.EarlyStopping(monitor="val_acc", patience=2,
                                                       restore_best_weights=True)
        x_train = np.arange(30)
        history = model.fit(x=x_train, y=labels[:30], epochs=4, batch_size=8, validation_split=0.2,
                            callbacks=[early_stopping], shuffle=False, verbose=0)
        loss, acc = model.evaluate(x=np.arange(30, 40), y=labels[30:], verbose=0)
        # the example's last step: two new nodes linked to existing ones, then predict on them
        new_features = np.concatenate([features, features[:2]])
        new_edges = np.concatenate([edges, np.array([[40, 40, 41], [0, 3, 5]])], axis=1)
        model.node_features = new_features
        model.edges = new_edges
        model.edge_weights = tf.ones(shape=new_edges.shape[1])
        logits = model.predict(tf.convert_to_tensor([40, 41]), verbose=0)
        out[f"{aggregation}_{combination}_eager"] = np.asarray(model(np.array([41, 40])))
        probabilities = keras.activations.softmax(tf.convert_to_tensor(logits)).numpy()
        key = f"{aggregation}_{combination}"
        out[f"{key}_first"] = np.asarray(first)
        out[f"{key}_history"] = np.array([history.history[k] for k in ("loss", "acc", "val_loss", "val_acc")])
        out[f"{key}_eval"] = np.array([loss, acc])
        out[f"{key}_probabilities"] = probabilities
    return out


def _gat_data():
    features, edges, labels = citation_graph(num_nodes=30, num_features=8, seed=1)
    # GAT's edges are (target, source) rows, sorted by target, every node with at least one
    edges = edges.T[np.lexsort((edges[1], edges[0]))]
    return features, edges, labels


def gat_keras3(tf, keras, heads=2, units=4):
    """gat_node_classification as keras.io writes it for Keras 3 (``keras.ops``, the graph as attributes)."""
    layers, ops = keras.layers, keras.ops
    node_states, edges, labels = _gat_data()

    class GraphAttention(layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[0][-1], self.units), name="kernel")
            self.kernel_attention = self.add_weight(shape=(self.units * 2, 1), name="kernel_attention")
            self.built = True

        def call(self, inputs):
            node_states, edges = inputs
            z = ops.matmul(node_states, self.kernel)
            source_indices, target_indices = edges[:, 1], edges[:, 0]
            z_concat = ops.concatenate([ops.take(z, target_indices, axis=0), ops.take(z, source_indices, axis=0)],
                                       axis=-1)
            attention_scores = ops.leaky_relu(ops.matmul(z_concat, self.kernel_attention))
            attention_scores = ops.exp(ops.clip(ops.squeeze(attention_scores, -1), -2, 2))
            num_nodes = ops.shape(node_states)[0]
            attention_sum = ops.segment_sum(attention_scores, target_indices, num_segments=num_nodes)
            attention_norm = attention_scores / (ops.take(attention_sum, target_indices, axis=0) + 1e-8)
            weighted = ops.take(z, source_indices, axis=0) * ops.expand_dims(attention_norm, axis=-1)
            return ops.segment_sum(weighted, target_indices, num_segments=num_nodes)

    class MultiHeadGraphAttention(layers.Layer):
        def __init__(self, units, num_heads=8, merge_type="concat", **kwargs):
            super().__init__(**kwargs)
            self.merge_type = merge_type
            self.attention_layers = [GraphAttention(units) for _ in range(num_heads)]

        def call(self, inputs):
            node_states, edges = inputs
            outputs = [layer([node_states, edges]) for layer in self.attention_layers]
            if self.merge_type == "concat":
                outputs = ops.concatenate(outputs, axis=-1)
            else:
                outputs = ops.mean(ops.stack(outputs, axis=0), axis=0)
            return ops.relu(outputs)

    class GraphAttentionNetwork(keras.Model):
        def __init__(self, node_states, edges, hidden_units, num_heads, num_layers, output_dim, **kwargs):
            super().__init__(**kwargs)
            self.node_states, self.edges = node_states, edges
            self.preprocess = layers.Dense(hidden_units * num_heads, activation="relu")
            self.attention_layers = [MultiHeadGraphAttention(hidden_units, num_heads) for _ in range(num_layers)]
            self.output_layer = layers.Dense(output_dim)

        def call(self, inputs, training=False):
            x = self.preprocess(self.node_states)
            for attention_layer in self.attention_layers:
                x = attention_layer([x, self.edges]) + x
            return ops.take(self.output_layer(x), inputs, axis=0)

    model = GraphAttentionNetwork(node_states, edges, units, heads, 2, 3)
    model(np.arange(3))
    seeded(model, 7)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer=keras.optimizers.SGD(learning_rate=0.03, momentum=0.9), metrics=["accuracy"])
    history = model.fit(x=np.arange(24), y=labels[:24], validation_split=0.25, batch_size=6, epochs=3,
                        shuffle=False, verbose=0,
                        callbacks=[keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=5,
                                                                 restore_best_weights=True)])
    _, accuracy = model.evaluate(x=np.arange(24, 30), y=labels[24:], verbose=0)
    probs = ops.convert_to_numpy(ops.softmax(model.predict(x=np.arange(24, 30), verbose=0)))
    return {"history": np.array([history.history[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy")]),
            "accuracy": np.array([accuracy]), "probs": probs}


def gat_tf(tf, keras, heads=2, units=4):
    """The example's earlier TensorFlow form: ``tf.gather``, ``tf.nn.leaky_relu``, ``tf.math.exp``,
    ``tf.math.unsorted_segment_sum`` with counts from ``tf.math.bincount``, and a custom ``train_step``."""
    layers = keras.layers
    node_states, edges, labels = _gat_data()

    class GraphAttention(layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[0][-1], self.units), name="kernel")
            self.kernel_attention = self.add_weight(shape=(self.units * 2, 1), name="kernel_attention")
            self.built = True

        def call(self, inputs):
            node_states, edges = inputs
            node_states_transformed = tf.matmul(node_states, self.kernel)
            node_states_expanded = tf.gather(node_states_transformed, edges)
            node_states_expanded = tf.reshape(node_states_expanded, (tf.shape(edges)[0], -1))
            attention_scores = tf.nn.leaky_relu(tf.matmul(node_states_expanded, self.kernel_attention))
            attention_scores = tf.squeeze(attention_scores, -1)
            attention_scores = tf.math.exp(tf.clip_by_value(attention_scores, -2, 2))
            attention_scores_sum = tf.math.unsorted_segment_sum(
                data=attention_scores, segment_ids=edges[:, 0], num_segments=tf.reduce_max(edges[:, 0]) + 1)
            attention_scores_sum = tf.repeat(attention_scores_sum, tf.math.bincount(tf.cast(edges[:, 0], "int32")))
            attention_scores_norm = attention_scores / attention_scores_sum
            node_states_neighbors = tf.gather(node_states_transformed, edges[:, 1])
            return tf.math.unsorted_segment_sum(data=node_states_neighbors * attention_scores_norm[:, tf.newaxis],
                                                segment_ids=edges[:, 0], num_segments=tf.shape(node_states)[0])

    class MultiHeadGraphAttention(layers.Layer):
        def __init__(self, units, num_heads=8, **kwargs):
            super().__init__(**kwargs)
            self.attention_layers = [GraphAttention(units) for _ in range(num_heads)]

        def call(self, inputs):
            atom_features, pair_indices = inputs
            outputs = [layer([atom_features, pair_indices]) for layer in self.attention_layers]
            return tf.nn.relu(tf.concat(outputs, axis=-1))

    class GraphAttentionNetwork(keras.Model):
        def __init__(self, node_states, edges, hidden_units, num_heads, num_layers, output_dim, **kwargs):
            super().__init__(**kwargs)
            self.node_states, self.edges = node_states, edges
            self.preprocess = layers.Dense(hidden_units * num_heads, activation="relu")
            self.attention_layers = [MultiHeadGraphAttention(hidden_units, num_heads) for _ in range(num_layers)]
            self.output_layer = layers.Dense(output_dim)
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            self.acc = keras.metrics.SparseCategoricalAccuracy(name="acc")

        def call(self, inputs):
            node_states, edges = inputs
            x = self.preprocess(node_states)
            for attention_layer in self.attention_layers:
                x = attention_layer([x, edges]) + x
            return self.output_layer(x)

        def train_step(self, data):
            indices, labels = data
            with tf.GradientTape() as tape:
                outputs = self([self.node_states, self.edges])
                loss = self.loss_fn(labels, tf.gather(outputs, indices))
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.acc.update_state(labels, tf.gather(outputs, indices))
            return {"loss": loss, "acc": self.acc.result()}

        def predict_step(self, data):
            outputs = self([self.node_states, self.edges])
            return tf.nn.softmax(tf.gather(outputs, data))

    model = GraphAttentionNetwork(node_states, edges, units, heads, 2, 3)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    model.fit(x=np.arange(6), y=labels[:6], batch_size=6, epochs=1, verbose=0)   # builds it (lr 0)
    seeded(model, 8)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.03, momentum=0.9))
    model.fit(x=np.arange(24), y=labels[:24], batch_size=6, epochs=2, shuffle=False, verbose=0)
    probs = model.predict(x=np.arange(24, 30), verbose=0)
    return {"probs": probs, "weights": np.concatenate([np.ravel(w) for w in model.get_weights()])}
