"""keras.io "Character-level text generation with LSTM": overlapping windows of a text one-hot encoded
into bool arrays, ``LSTM`` + softmax ``Dense``, RMSprop(0.01), categorical cross-entropy on bool targets,
and generation after each epoch: the model called eagerly on the current window, the next character
drawn with numpy from the temperature-scaled distribution (``sample``).

Tolerance: Keras's initial weights copied, ``shuffle=False``, no randomness in training: losses within 2%
of Keras's. Generation draws from numpy with the same seed in both runs, but a near-tie probability can
tip one draw differently and the texts diverge from there, so the generated texts are scored, not
compared: the fraction of generated words that are words of the corpus must be within 0.2 of Keras's.
"""
from __future__ import annotations

import numpy as np

from . import data as synthetic
from .harness import assert_band, assert_close, run_both, to_numpy

MAXLEN, STEP = 16, 3


def sample(preds, temperature=1.0):
    """Draws an index from a probability array, sharpened or flattened by ``temperature``."""
    preds = np.asarray(preds).astype("float64")
    preds = np.log(preds) / temperature
    exp_preds = np.exp(preds)
    preds = exp_preds / np.sum(exp_preds)
    probas = np.random.multinomial(1, preds, 1)
    return np.argmax(probas)


def text_generation(keras, text, init):
    layers = keras.layers
    keras.utils.set_random_seed(8)
    chars = sorted(list(set(text)))
    char_indices = {c: i for i, c in enumerate(chars)}
    indices_char = dict(enumerate(chars))
    sentences, next_chars = [], []
    for i in range(0, len(text) - MAXLEN, STEP):
        sentences.append(text[i: i + MAXLEN])
        next_chars.append(text[i + MAXLEN])
    x = np.zeros((len(sentences), MAXLEN, len(chars)), dtype="bool")
    y = np.zeros((len(sentences), len(chars)), dtype="bool")
    for i, sentence in enumerate(sentences):
        for t, char in enumerate(sentence):
            x[i, t, char_indices[char]] = 1
        y[i, char_indices[next_chars[i]]] = 1

    model = keras.Sequential([
        keras.Input(shape=(MAXLEN, len(chars))),
        layers.LSTM(32),
        layers.Dense(len(chars), activation="softmax"),
    ])
    init(model)
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)

    losses, generated = [], ""
    for epoch in range(3):
        losses += model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0).history["loss"]
    np.random.seed(1234)
    for diversity in [0.2, 0.5]:
        sentence = text[:MAXLEN]
        generated += " " + sentence
        for i in range(60):
            x_pred = np.zeros((1, MAXLEN, len(chars)))
            for t, char in enumerate(sentence):
                x_pred[0, t, char_indices[char]] = 1.0
            preds = to_numpy(model(x_pred, training=False))[0]
            next_char = indices_char[sample(preds, diversity)]
            sentence = sentence[1:] + next_char
            generated += next_char
    words = [w.strip(".") for w in generated.split()]
    words = [w for w in words if w]
    known = np.mean([w in synthetic.corpus_words() for w in words])
    return {"loss_epoch1": losses[0], "loss_epoch3": losses[-1], "known_words": float(known)}


def test_text_generation():
    want, got = run_both(text_generation, synthetic.corpus(250), copy_weights=True)
    assert_close(want, got, rtol=0.02, keys=["loss_epoch1", "loss_epoch3"])
    assert_band(want, got, 0.2, ["known_words"])
    assert want["loss_epoch3"] < 0.7 * want["loss_epoch1"]
