"""keras.io's Keras recipes (``examples/keras_recipes``) as ``program(tf, keras) -> {name: array}``, on small
seeded data and weights so that TensorFlow (``tf_oracle.py``) and onnxforge compute the same numbers."""
from __future__ import annotations

import numpy as np


def seeded(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, tuple(w.shape)).astype("float32") for w in model.get_weights()])


def by_shape(model):
    """Weights that depend on their shape only: the same in both frameworks whatever order each lists them in
    (Keras orders a layer's sub-layers as they were first tracked, onnxforge by attribute)."""
    def value(shape):
        size = int(np.prod(shape))
        return (0.4 * np.sin(np.arange(size) * 0.37 + size)).reshape(shape).astype("float32")

    model.set_weights([value(tuple(w.shape)) for w in model.weights])


def _digits(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    return x, y


def trainer_pattern(tf, keras):
    """A ``keras.Model`` that trains another model with its own ``train_step`` / ``test_step`` and metrics."""
    layers = keras.layers
    x, y = _digits()

    class MyTrainer(keras.Model):
        def __init__(self, model):
            super().__init__()
            self.model = model
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy()
            self.accuracy_metric = keras.metrics.SparseCategoricalAccuracy()

        @property
        def metrics(self):
            return [self.accuracy_metric]

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self.model(x, training=True)
                loss = self.loss_fn(y, y_pred)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply_gradients(zip(gradients, trainable_vars))
            for metric in self.metrics:
                metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y = data
            y_pred = self.model(x, training=False)
            for metric in self.metrics:
                metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        def call(self, x):
            return self.model(x)

    out = {}
    for k in range(2):
        model = keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu"),
                                  layers.Dense(3, activation="softmax")])
        seeded(model, k)
        trainer = MyTrainer(model)
        trainer.compile(optimizer=keras.optimizers.SGD(0.1) if k == 0 else keras.optimizers.Adam(0.01))
        history = trainer.fit(x[:64], y[:64], epochs=3, batch_size=16, validation_data=(x[64:], y[64:]),
                              shuffle=False, verbose=0)
        out[f"history_{k}"] = np.array([history.history[key] for key in sorted(history.history)])
        out[f"evaluate_{k}"] = np.array(trainer.evaluate(x[64:], y[64:], verbose=0)).ravel()
        out[f"weights_{k}"] = np.concatenate([np.ravel(w) for w in model.get_weights()])
    return out


def _ratings(n=120, users=24, movies=18, seed=0):
    rng = np.random.default_rng(seed)
    user_vocabulary = [f"user_{i}" for i in range(users)]
    movie_vocabulary = [f"movie_{i}" for i in range(movies)]
    u, m = rng.integers(0, users, n), rng.integers(0, movies, n)
    rating = np.clip(2.5 + np.sin(u * 0.7) * np.cos(m * 0.4) * 2, 0.5, 5.0).astype("float32")
    x = {"user_id": np.array(user_vocabulary, dtype=object)[u], "movie_id": np.array(movie_vocabulary, dtype=object)[m]}
    return x, rating, user_vocabulary, movie_vocabulary


def memory_efficient_embeddings(tf, keras, base_embedding_dim=8):
    """Quotient-remainder (``tf.math.floordiv`` / ``floormod``) and mixed-dimension embeddings of string ids."""
    layers = keras.layers
    StringLookup = layers.StringLookup
    x, rating, user_vocabulary, movie_vocabulary = _ratings()

    def embedding_encoder(vocabulary, embedding_dim, num_oov_indices=0, name=None):
        return keras.Sequential([
            StringLookup(vocabulary=vocabulary, mask_token=None, num_oov_indices=num_oov_indices),
            layers.Embedding(input_dim=len(vocabulary) + num_oov_indices, output_dim=embedding_dim),
        ], name=f"{name}_embedding" if name else None)

    class QREmbedding(keras.layers.Layer):
        def __init__(self, vocabulary, embedding_dim, num_buckets, name=None):
            super().__init__(name=name)
            self.num_buckets = num_buckets
            self.index_lookup = StringLookup(vocabulary=vocabulary, mask_token=None, num_oov_indices=0)
            self.q_embeddings = layers.Embedding(num_buckets, embedding_dim)
            self.r_embeddings = layers.Embedding(num_buckets, embedding_dim)

        def call(self, inputs):
            embedding_index = self.index_lookup(inputs)
            quotient_index = tf.math.floordiv(embedding_index, self.num_buckets)
            remainder_index = tf.math.floormod(embedding_index, self.num_buckets)
            return self.q_embeddings(quotient_index) * self.r_embeddings(remainder_index)

    class MDEmbedding(keras.layers.Layer):
        def __init__(self, blocks_vocabulary, blocks_embedding_dims, base_embedding_dim, name=None):
            super().__init__(name=name)
            self.num_blocks = len(blocks_vocabulary)
            self.block_lookup = StringLookup(
                vocabulary=[w for block in blocks_vocabulary for w in block], mask_token=None, num_oov_indices=0)
            self.block_of = np.concatenate([[k] * len(block) for k, block in enumerate(blocks_vocabulary)])
            self.block_embedding_encoders = []
            self.block_embedding_projectors = []
            for idx in range(self.num_blocks):
                embedding_dim = blocks_embedding_dims[idx]
                self.block_embedding_encoders.append(
                    embedding_encoder(blocks_vocabulary[idx], embedding_dim, num_oov_indices=1))
                if embedding_dim == base_embedding_dim:
                    self.block_embedding_projectors.append(layers.Lambda(lambda x: x))
                else:
                    self.block_embedding_projectors.append(layers.Dense(units=base_embedding_dim))

        def call(self, inputs):
            block_indicies = tf.gather(self.block_of, self.block_lookup(inputs))
            embeddings = tf.zeros(shape=(tf.shape(inputs)[0], base_embedding_dim))
            for idx in range(self.num_blocks):
                block_embeddings = self.block_embedding_encoders[idx](inputs)
                block_embeddings = self.block_embedding_projectors[idx](block_embeddings)
                mask = tf.expand_dims(tf.cast(block_indicies == idx, tf.dtypes.float32), 1)
                embeddings += block_embeddings * mask
            return embeddings

    user_input = layers.Input(name="user_id", shape=(), dtype=tf.string)
    user_embedding = QREmbedding(user_vocabulary, base_embedding_dim, num_buckets=5, name="user_embedding")(user_input)
    movie_input = layers.Input(name="movie_id", shape=(), dtype=tf.string)
    movie_embedding = MDEmbedding([movie_vocabulary[:6], movie_vocabulary[6:12], movie_vocabulary[12:]],
                                  [8, 4, 2], base_embedding_dim, name="movie_embedding")(movie_input)
    logits = layers.Dot(axes=1, name="dot_similarity")([user_embedding, movie_embedding])
    prediction = keras.activations.sigmoid(logits) * 5
    model = keras.Model(inputs=[user_input, movie_input], outputs=prediction, name="memory_efficient")
    by_shape(model)
    initial = model.predict({k: v[:10] for k, v in x.items()}, verbose=0)
    parts = [np.asarray(keras.Model([user_input, movie_input], t)({k: v[:4] for k, v in x.items()}))
             for t in (user_embedding, movie_embedding)]
    # SGD, not the example's Adam: Keras 3 on TensorFlow squares an embedding's sparse gradient row by row
    # before summing repeated ids (Adam's second moment differs from its own torch backend's and ours).
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.5), loss=tf.keras.losses.MeanSquaredError(),
                  metrics=[keras.metrics.MeanAbsoluteError(name="mae")])
    history = model.fit(x, rating, batch_size=32, epochs=3, shuffle=False, verbose=0,
                        validation_data=({k: v[:40] for k, v in x.items()}, rating[:40]))
    return {"history": np.array([history.history[k] for k in sorted(history.history)]),
            "predict": model.predict({k: v[:10] for k, v in x.items()}, verbose=0),
            "params": np.array([model.count_params()]), "initial": initial, "user": parts[0], "movie": parts[1]}


def sklearn_metric_callback(tf, keras):
    """A Callback computing a metric on ``self.model.predict`` of held-out data after each epoch."""
    from sklearn.metrics import jaccard_score

    layers = keras.layers
    x, y = _digits()

    class JaccardScoreCallback(keras.callbacks.Callback):
        def __init__(self, model, x_test, y_test, log_name):
            super().__init__()
            self.model_ = model
            self.x_test, self.y_test, self.keras_metric_name = x_test, y_test, log_name
            self.scores = []

        def on_epoch_end(self, epoch, logs=None):
            y_pred = np.asarray(self.model.predict(self.x_test, verbose=0))
            score = jaccard_score(self.y_test, np.argmax(y_pred, axis=-1), average=None)
            self.scores.append(score)
            logs[self.keras_metric_name] = float(np.mean(score))

    model = keras.Sequential([keras.Input((8,)), layers.Dense(12, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    seeded(model, 4)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.SGD(0.2),
                  metrics=["accuracy"])
    callback = JaccardScoreCallback(model, x[64:], y[64:], "jaccard_score")
    history = model.fit(x[:64], y[:64], batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[callback])
    return {"jaccard": np.array(callback.scores), "logged": np.array(history.history["jaccard_score"]),
            "loss": np.array(history.history["loss"])}


def reproducibility(tf, keras):
    """``keras.utils.set_random_seed`` and op determinism: the same seed gives the same initial weights and
    Dropout masks twice in one framework (each framework's own stream: compared within, not across)."""
    layers = keras.layers
    tf.config.experimental.enable_op_determinism()
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(812)
        model = keras.Sequential([keras.Input((8,)), layers.Dense(6), layers.Dropout(0.5), layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        x, y = _digits(32)
        history = model.fit(x, y.astype("float32"), epochs=2, batch_size=8, verbose=0)
        runs.append(np.concatenate([np.ravel(w) for w in model.get_weights()] + [history.history["loss"]]))
    return {"same": np.array([float(np.array_equal(runs[0], runs[1]))])}


def tensorflow_numpy_models(tf, keras):
    """Models written with ``tf.experimental.numpy`` (a subclassed model, TNP layers mixed with Dense, a TNP
    loss). Inputs are float32, as Keras casts them; TensorFlow's tnp would otherwise compute in float64."""
    tnp = tf.experimental.numpy
    tnp.experimental_enable_numpy_behavior()
    layers = keras.layers
    rng = np.random.default_rng(5)
    x = rng.normal(size=(48, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1)) + 3.0).astype("float32")

    class TNPForwardFeedRegressionNetwork(keras.Model):
        def __init__(self, blocks=None, **kwargs):
            super().__init__(**kwargs)
            self.blocks = blocks

        def build(self, input_shape):
            current_shape = input_shape[1]
            self.block_weights, self.biases = [], []
            for i, block in enumerate(self.blocks):
                self.block_weights.append(self.add_weight(shape=(current_shape, block), name=f"block-{i}"))
                self.biases.append(self.add_weight(shape=(block,), name=f"bias-{i}", initializer="zeros"))
                current_shape = block
            self.linear_layer = self.add_weight(shape=(current_shape, 1), name="linear_projector")

        def call(self, inputs):
            activations = inputs
            for w, b in zip(self.block_weights, self.biases):
                activations = tnp.maximum(tnp.matmul(activations, w) + b, 0.0)
            return tnp.matmul(activations, self.linear_layer)

    def tnp_mse(y_true, y_pred):
        return tnp.mean(tnp.square(y_true - y_pred), axis=0)

    class TNPDense(keras.layers.Layer):
        def __init__(self, units, activation=None):
            super().__init__()
            self.units, self.activation = units, activation

        def build(self, input_shape):
            self.w = self.add_weight(name="weights", shape=(input_shape[1], self.units))
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

        def call(self, inputs):
            outputs = tnp.matmul(inputs, self.w) + self.bias
            return self.activation(outputs) if self.activation else outputs

    def tnp_relu(x):
        return tnp.maximum(x, 0)

    out = {}
    for name, make, loss in (
            ("subclassed", lambda: TNPForwardFeedRegressionNetwork(blocks=[4, 4]), tnp_mse),
            ("mixed", lambda: keras.Sequential([TNPDense(4, activation=tnp_relu),
                                                 layers.Dense(4, activation="relu"), TNPDense(1)]),
             "mean_squared_error")):
        model = make()
        model.build((None, 6))
        seeded(model, 9)
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss,
                      metrics=[keras.metrics.MeanAbsolutePercentageError()])
        before = model.evaluate(x, y, verbose=0)
        model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
        out[name] = np.array([before, model.evaluate(x, y, verbose=0)]).ravel()
    return out
