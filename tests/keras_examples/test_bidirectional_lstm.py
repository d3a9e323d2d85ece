"""keras.io "Bidirectional LSTM on IMDB": reviews of varied lengths padded with
``keras.utils.pad_sequences``, an int32 ``Input(shape=(None,))``, Embedding, two stacked
``Bidirectional(LSTM)`` layers, a sigmoid output and binary cross-entropy.

Tolerance: Keras's initial weights copied, ``shuffle=False``, no randomness in training: the same float32
computation up to summation order, so losses within 2% and accuracies within 0.03 of Keras's.
"""
from __future__ import annotations

from . import data as synthetic
from .harness import assert_band, assert_close, run_both

MAX_FEATURES, MAXLEN = 100, 40


def bidirectional_lstm_imdb(keras, data, init):
    (x_train, y_train), (x_val, y_val) = data
    layers = keras.layers
    keras.utils.set_random_seed(3)
    x_train = keras.utils.pad_sequences(x_train, maxlen=MAXLEN)
    x_val = keras.utils.pad_sequences(x_val, maxlen=MAXLEN)

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(MAX_FEATURES, 16)(inputs)
    x = layers.Bidirectional(layers.LSTM(12, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(12))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    init(model)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=4, validation_data=(x_val, y_val),
                        shuffle=False, verbose=0)
    return {"loss": history.history["loss"][-1], "val_loss": history.history["val_loss"][-1],
            "val_accuracy": history.history["val_accuracy"][-1]}


def test_bidirectional_lstm_imdb():
    texts, labels = synthetic.reviews(900, vocab=MAX_FEATURES)
    data = (texts[:700], labels[:700]), (texts[700:], labels[700:])
    want, got = run_both(bidirectional_lstm_imdb, data, copy_weights=True)
    assert_close(want, got, rtol=0.02, keys=["loss", "val_loss"])
    assert_band(want, got, 0.03, ["val_accuracy"])
    assert want["val_accuracy"] > 0.7
