"""keras.io NLP examples that Keras runs on its TensorFlow backend only, as ``program(tf, keras) -> {name:
array}`` (see ``tf_oracle.py``), on small seeded data and weights so that TensorFlow and onnxforge compute
the same numbers.

``switch_transformer``: "Text classification with Switch Transformer" (Keras 3 form). Its ``Switch``
layer reshapes the batch to ``[batch_size * tokens, embed_dim]`` with the fixed batch size, which Keras on
torch cannot build (its symbolic build runs ``call`` on a made-up batch of 83: "shape '[64, 16]' is
invalid for input of size 10624"); on TensorFlow the batch stays unknown while the model is built. The page
also sets the layers' attributes before ``super().__init__()``, which only TensorFlow and JAX take.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

VOCAB, TOKENS, BATCH = 60, 8, 8


def reviews(n, seed=0):
    """Token ids whose class is whether low or high ids are in the majority (float32, as ``Input`` makes them)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.where(rng.random((n, TOKENS)) < 0.75, np.where(y[:, None] == 1, rng.integers(31, VOCAB, (n, TOKENS)),
                                                          rng.integers(1, 31, (n, TOKENS))),
                 rng.integers(1, VOCAB, (n, TOKENS)))
    return x.astype("float32"), y


def seeded(model, seed):
    """Weights of 2 or more axes from one generator, in the order ``get_weights`` lists them (the same in both
    frameworks here), at a Glorot-like scale; vectors (biases, LayerNormalization) keep their initial values."""
    rng = np.random.default_rng(seed)
    values = []
    for w in model.get_weights():
        w = np.asarray(w)
        if w.ndim < 2:
            values.append(w)
            continue
        scale = np.sqrt(6.0 / (np.prod(w.shape[:-1]) + w.shape[-1]))
        values.append(rng.uniform(-scale, scale, w.shape).astype("float32"))
    model.set_weights(values)


def _switch_program(tf, keras, dropout_rate=0.0):
    """The page's layers and ``create_classifier``, shrunk; returns ``create_classifier``."""
    layers, ops = keras.layers, keras.ops

    embed_dim = 16
    num_heads = 2
    ff_dim = 16
    num_experts = 4
    batch_size = BATCH
    num_tokens_per_example = TOKENS
    vocab_size = VOCAB
    num_tokens_per_batch = batch_size * num_tokens_per_example

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            maxlen = ops.shape(x)[-1]
            positions = ops.arange(start=0, stop=maxlen, step=1)
            positions = self.pos_emb(positions)
            x = self.token_emb(x)
            return x + positions

    def create_feedforward_network(ff_dim, name=None):
        return keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(ff_dim)], name=name)

    def load_balanced_loss(router_probs, expert_mask):
        num_experts = ops.shape(expert_mask)[-1]
        density = ops.mean(expert_mask, axis=0)
        density_proxy = ops.mean(router_probs, axis=0)
        loss = ops.mean(density_proxy * density) * ops.cast((num_experts**2), "float32")
        return loss

    class Router(layers.Layer):
        def __init__(self, num_experts, expert_capacity):
            self.num_experts = num_experts
            self.route = layers.Dense(units=num_experts)
            self.expert_capacity = expert_capacity
            super().__init__()

        def call(self, inputs, training=False):
            router_logits = self.route(inputs)
            if training:
                router_logits += keras.random.uniform(shape=router_logits.shape, minval=0.9, maxval=1.1)
            router_probs = keras.activations.softmax(router_logits, axis=-1)
            expert_gate, expert_index = ops.top_k(router_probs, k=1)
            expert_mask = ops.one_hot(expert_index, self.num_experts)
            aux_loss = load_balanced_loss(router_probs, expert_mask)
            self.add_loss(aux_loss)
            position_in_expert = ops.cast(ops.cumsum(expert_mask, axis=0) * expert_mask, "int32")
            expert_mask *= ops.cast(ops.less(ops.cast(position_in_expert, "int32"), self.expert_capacity),
                                    "float32")
            expert_mask_flat = ops.sum(expert_mask, axis=-1)
            expert_gate *= expert_mask_flat
            combined_tensor = ops.expand_dims(
                expert_gate * expert_mask_flat * ops.squeeze(ops.one_hot(expert_index, self.num_experts), 1), -1
            ) * ops.squeeze(ops.one_hot(position_in_expert, self.expert_capacity), 1)
            dispatch_tensor = ops.cast(combined_tensor, "float32")
            return dispatch_tensor, combined_tensor

    class Switch(layers.Layer):
        def __init__(self, num_experts, embed_dim, ff_dim, num_tokens_per_batch, capacity_factor=1):
            self.num_experts = num_experts
            self.embed_dim = embed_dim
            self.experts = [create_feedforward_network(ff_dim) for _ in range(num_experts)]
            self.expert_capacity = num_tokens_per_batch // self.num_experts
            self.router = Router(self.num_experts, self.expert_capacity)
            super().__init__()

        def call(self, inputs):
            batch_size = ops.shape(inputs)[0]
            num_tokens_per_example = ops.shape(inputs)[1]
            inputs = ops.reshape(inputs, [num_tokens_per_batch, self.embed_dim])
            dispatch_tensor, combine_tensor = self.router(inputs)
            expert_inputs = ops.einsum("ab,acd->cdb", inputs, dispatch_tensor)
            expert_inputs = ops.reshape(expert_inputs, [self.num_experts, self.expert_capacity, self.embed_dim])
            expert_input_list = ops.unstack(expert_inputs, axis=0)
            expert_output_list = [self.experts[idx](expert_input)
                                  for idx, expert_input in enumerate(expert_input_list)]
            expert_outputs = ops.stack(expert_output_list, axis=1)
            expert_outputs_combined = ops.einsum("abc,xba->xc", expert_outputs, combine_tensor)
            outputs = ops.reshape(expert_outputs_combined, [batch_size, num_tokens_per_example, self.embed_dim])
            return outputs

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ffn, dropout_rate=dropout_rate):
            super().__init__()
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = ffn
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = layers.Dropout(dropout_rate)
            self.dropout2 = layers.Dropout(dropout_rate)

        def call(self, inputs, training=False):
            attn_output = self.att(inputs, inputs)
            attn_output = self.dropout1(attn_output, training=training)
            out1 = self.layernorm1(inputs + attn_output)
            ffn_output = self.ffn(out1)
            ffn_output = self.dropout2(ffn_output, training=training)
            return self.layernorm2(out1 + ffn_output)

    def create_classifier():
        switch = Switch(num_experts, embed_dim, ff_dim, num_tokens_per_batch)
        transformer_block = TransformerBlock(ff_dim, num_heads, switch)

        inputs = layers.Input(shape=(num_tokens_per_example,))
        embedding_layer = TokenAndPositionEmbedding(num_tokens_per_example, vocab_size, embed_dim)
        x = embedding_layer(inputs)
        x = transformer_block(x)
        x = layers.GlobalAveragePooling1D()(x)
        x = layers.Dropout(dropout_rate)(x)
        x = layers.Dense(ff_dim, activation="relu")(x)
        x = layers.Dropout(dropout_rate)(x)
        outputs = layers.Dense(2, activation="softmax")(x)

        classifier = keras.Model(inputs=inputs, outputs=outputs)
        return classifier

    return create_classifier


def switch_transformer(tf, keras):
    """Predictions, ``evaluate`` (with the router's ``add_loss``), one Adam step, and the weights saved and
    loaded (the ``TransformerBlock`` takes a layer argument: no ``.keras`` file in either framework)."""
    keras.utils.set_random_seed(5)
    (x_train, y_train), (x_val, y_val) = reviews(32), reviews(16, seed=1)
    create_classifier = _switch_program(tf, keras)
    classifier = create_classifier()
    seeded(classifier, 0)
    classifier.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy",
                       metrics=["accuracy"])
    out = {"predict": classifier.predict(x_val, batch_size=BATCH, verbose=0)}
    out["evaluate"] = np.asarray(classifier.evaluate(x_val, y_val, batch_size=BATCH, verbose=0))
    out["aux_losses"] = np.asarray(len(classifier.losses))
    out["train_loss"] = np.asarray(classifier.train_on_batch(x_train[:BATCH], y_train[:BATCH],
                                                             return_dict=True)["loss"])
    out["after_fit"] = classifier.predict(x_val, batch_size=BATCH, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        try:
            classifier.save(os.path.join(folder, "model.keras"))
            out["saved_as_keras"] = np.asarray(1)
        except NotImplementedError:
            out["saved_as_keras"] = np.asarray(0)
        classifier.save_weights(os.path.join(folder, "model.weights.h5"))
        again = create_classifier()
        again.load_weights(os.path.join(folder, "model.weights.h5"))
        out["reloaded"] = again.predict(x_val, batch_size=BATCH, verbose=0)
    return {k: np.asarray(v) for k, v in out.items()}


def switch_transformer_fit(tf, keras):
    """The page's ``run_experiment``: two epochs with validation, the page's dropout rate 0.25."""
    keras.utils.set_random_seed(6)
    (x_train, y_train), (x_val, y_val) = reviews(64, seed=2), reviews(16, seed=3)
    classifier = _switch_program(tf, keras, dropout_rate=0.25)()
    seeded(classifier, 1)
    classifier.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy",
                       metrics=["accuracy"])
    history = classifier.fit(x_train, y_train, batch_size=BATCH, epochs=2, validation_data=(x_val, y_val),
                             verbose=0)
    return {key: np.asarray(values, "float64") for key, values in history.history.items()}


_GOOD = ["great", "wonderful", "brilliant", "moving", "superb", "charming"]
_BAD = ["boring", "awful", "dull", "terrible", "clumsy", "tedious"]
_FILLER = ["the", "movie", "film", "plot", "actor", "story", "was", "and", "a", "it", "scene", "music", "i", "this"]


def labelled_reviews(n, seed=0):
    """IMDB-like review strings (HTML breaks, punctuation) with 0/1 labels, balanced."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for k in range(n):
        label = k % 2
        words = list(rng.choice(_FILLER, size=int(rng.integers(12, 24))))
        strong, weak = (_GOOD, _BAD) if label else (_BAD, _GOOD)
        for _ in range(int(rng.integers(2, 4))):
            words.insert(int(rng.integers(0, len(words))), str(rng.choice(strong)) + ",")
        if rng.random() < 0.3:
            words.insert(int(rng.integers(0, len(words))), str(rng.choice(weak)))
        words.insert(len(words) // 2, "<br />")
        texts.append(" ".join(words).capitalize() + "!")
        labels.append(label)
    return np.asarray(texts), np.asarray(labels, "int64")


def active_learning(tf, keras):
    """keras.io "Review Classification using Active Learning", shrunk: stratified splits with ``tf.concat``,
    ``tf.data`` pools vectorized in ``map``, a Bidirectional LSTM, RMSprop with BinaryAccuracy /
    FalseNegatives / FalsePositives, ModelCheckpoint(save_best_only, ``.h5``) and EarlyStopping, then
    iterations that sample the pools in the ratio of the test set's errors (``take`` / ``skip`` /
    ``concatenate``), recompile, fit again and reload the best checkpoint."""
    import re
    import string

    layers = keras.layers
    keras.utils.set_random_seed(4)
    reviews, labels = labelled_reviews(360)
    folder = tempfile.mkdtemp()

    val_split = 20
    test_split = 20
    train_split = 30

    x_positives, y_positives = reviews[labels == 1], labels[labels == 1]
    x_negatives, y_negatives = reviews[labels == 0], labels[labels == 0]
    x_val, y_val = (tf.concat((x_positives[:val_split], x_negatives[:val_split]), 0),
                    tf.concat((y_positives[:val_split], y_negatives[:val_split]), 0))
    x_test, y_test = (
        tf.concat((x_positives[val_split: val_split + test_split], x_negatives[val_split: val_split + test_split]), 0),
        tf.concat((y_positives[val_split: val_split + test_split], y_negatives[val_split: val_split + test_split]), 0))
    x_train, y_train = (
        tf.concat((x_positives[val_split + test_split: val_split + test_split + train_split],
                   x_negatives[val_split + test_split: val_split + test_split + train_split]), 0),
        tf.concat((y_positives[val_split + test_split: val_split + test_split + train_split],
                   y_negatives[val_split + test_split: val_split + test_split + train_split]), 0))
    x_pool_positives, y_pool_positives = (x_positives[val_split + test_split + train_split:],
                                          y_positives[val_split + test_split + train_split:])
    x_pool_negatives, y_pool_negatives = (x_negatives[val_split + test_split + train_split:],
                                          y_negatives[val_split + test_split + train_split:])

    train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    val_dataset = tf.data.Dataset.from_tensor_slices((x_val, y_val))
    test_dataset = tf.data.Dataset.from_tensor_slices((x_test, y_test))
    pool_negatives = tf.data.Dataset.from_tensor_slices((x_pool_negatives, y_pool_negatives))
    pool_positives = tf.data.Dataset.from_tensor_slices((x_pool_positives, y_pool_positives))
    out = {"sizes": np.asarray([len(train_dataset), len(val_dataset), len(test_dataset), len(pool_negatives),
                                len(pool_positives)])}

    def custom_standardization(input_data):
        lowercase = tf.strings.lower(input_data)
        stripped_html = tf.strings.regex_replace(lowercase, "<br />", " ")
        return tf.strings.regex_replace(stripped_html, f"[{re.escape(string.punctuation)}]", "")

    vectorizer = layers.TextVectorization(60, standardize=custom_standardization, output_sequence_length=30)
    vectorizer.adapt(train_dataset.map(lambda x, y: x, num_parallel_calls=tf.data.AUTOTUNE).batch(256))
    out["vocabulary"] = np.asarray(vectorizer.get_vocabulary())

    def vectorize_text(text, label):
        text = vectorizer(text)
        return text, label

    train_dataset = train_dataset.map(vectorize_text, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    pool_negatives = pool_negatives.map(vectorize_text, num_parallel_calls=tf.data.AUTOTUNE)
    pool_positives = pool_positives.map(vectorize_text, num_parallel_calls=tf.data.AUTOTUNE)
    val_dataset = val_dataset.batch(256).map(vectorize_text, num_parallel_calls=tf.data.AUTOTUNE)
    test_dataset = test_dataset.batch(256).map(vectorize_text, num_parallel_calls=tf.data.AUTOTUNE)

    def append_history(losses, val_losses, accuracy, val_accuracy, history):
        losses = losses + history.history["loss"]
        val_losses = val_losses + history.history["val_loss"]
        accuracy = accuracy + history.history["binary_accuracy"]
        val_accuracy = val_accuracy + history.history["val_binary_accuracy"]
        return losses, val_losses, accuracy, val_accuracy

    def create_model():
        model = keras.models.Sequential([
            layers.Input(shape=(30,)),
            layers.Embedding(input_dim=60, output_dim=16),
            layers.Bidirectional(layers.LSTM(8, return_sequences=True)),
            layers.GlobalMaxPool1D(),
            layers.Dense(8, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(1, activation="sigmoid"),
        ])
        return model

    def metrics():
        return [keras.metrics.BinaryAccuracy(), keras.metrics.FalseNegatives(), keras.metrics.FalsePositives()]

    losses, val_losses, accuracies, val_accuracies = [], [], [], []
    model = create_model()
    seeded(model, 3)
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.RMSprop(0.01), metrics=metrics())
    checkpoint_path = os.path.join(folder, "AL_Model.h5")
    checkpoint = keras.callbacks.ModelCheckpoint(checkpoint_path, save_best_only=True, verbose=0)
    early_stopping = keras.callbacks.EarlyStopping(patience=4, verbose=0)
    history = model.fit(train_dataset.cache().shuffle(20000).batch(16), epochs=4, validation_data=val_dataset,
                        callbacks=[checkpoint, early_stopping], verbose=0)
    losses, val_losses, accuracies, val_accuracies = append_history(losses, val_losses, accuracies, val_accuracies,
                                                                    history)
    sampled_sizes, evaluations = [], []
    sampling_size = 40
    for iteration in range(2):
        predictions = model.predict(test_dataset, verbose=0)
        rounded = tf.where(tf.greater(predictions, 0.5), 1, 0)
        _, _, false_negatives, false_positives = model.evaluate(test_dataset, verbose=0)
        evaluations.append([float(np.sum(np.asarray(rounded))), false_negatives, false_positives])
        if false_negatives != 0 and false_positives != 0:
            total = false_negatives + false_positives
            sample_ratio_ones, sample_ratio_zeros = false_positives / total, false_negatives / total
        else:
            sample_ratio_ones, sample_ratio_zeros = 0.5, 0.5
        sampled_dataset = pool_negatives.take(int(sample_ratio_zeros * sampling_size)).concatenate(
            pool_positives.take(int(sample_ratio_ones * sampling_size)))
        pool_negatives = pool_negatives.skip(int(sample_ratio_zeros * sampling_size))
        pool_positives = pool_positives.skip(int(sample_ratio_ones * sampling_size))
        train_dataset = train_dataset.concatenate(sampled_dataset).prefetch(tf.data.AUTOTUNE)
        sampled_sizes.append(len(train_dataset))
        model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.RMSprop(0.01), metrics=metrics())
        history = model.fit(train_dataset.cache().shuffle(20000).batch(16), validation_data=val_dataset, epochs=3,
                            callbacks=[checkpoint, keras.callbacks.EarlyStopping(patience=4, verbose=0)], verbose=0)
        losses, val_losses, accuracies, val_accuracies = append_history(losses, val_losses, accuracies,
                                                                        val_accuracies, history)
        model = keras.models.load_model(checkpoint_path)
    final = model.evaluate(test_dataset, verbose=0, return_dict=True)
    out.update({"losses": np.asarray(losses), "val_losses": np.asarray(val_losses),
                "accuracies": np.asarray(accuracies), "val_accuracies": np.asarray(val_accuracies),
                "sampled_sizes": np.asarray(sampled_sizes), "evaluations": np.asarray(evaluations),
                "final_keys": np.asarray(sorted(final)), "final": np.asarray([final[k] for k in sorted(final)])})
    return out
