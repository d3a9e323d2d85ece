"""keras.io "Sequence to sequence learning for performing number addition": one-hot (bool) question
strings, an LSTM encoder, ``RepeatVector``, an LSTM decoder with ``return_sequences`` and a softmax
Dense on every step; answers decoded from ``predict``.

Tolerance: Keras's initial weights copied, no randomness in training (``shuffle=False``, no Dropout), so
both run the same float32 computation up to summation order: losses within 2% of Keras's after 5 epochs
(measured agreement is far closer; 2% leaves room for float32 rounding drifting through some 200 Adam
steps), and the answers decoded from ``predict`` right for the same share of characters and of whole
answers within 0.05.
"""
from __future__ import annotations

import numpy as np

from .harness import assert_band, assert_close, run_both

DIGITS = 2
MAXLEN = DIGITS + 1 + DIGITS


class CharacterTable:
    """One-hot encodes strings of a fixed alphabet and decodes model outputs back to strings."""

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        self.char_indices = {c: i for i, c in enumerate(self.chars)}
        self.indices_char = dict(enumerate(self.chars))

    def encode(self, text, num_rows):
        x = np.zeros((num_rows, len(self.chars)))
        for i, c in enumerate(text):
            x[i, self.char_indices[c]] = 1
        return x

    def decode(self, x, calc_argmax=True):
        if calc_argmax:
            x = x.argmax(axis=-1)
        return "".join(self.indices_char[i] for i in x)


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    questions, expected, seen = [], [], set()
    while len(questions) < n:
        a, b = (int(rng.integers(0, 10 ** int(rng.integers(1, DIGITS + 1)))) for _ in range(2))
        key = tuple(sorted((a, b)))
        if key in seen:
            continue
        seen.add(key)
        q = f"{a}+{b}"
        questions.append((q + " " * (MAXLEN - len(q)))[::-1])   # reversed, as the tutorial does
        expected.append(str(a + b).ljust(DIGITS + 1))
    return questions, expected


def addition_rnn(keras, data, init):
    questions, expected = data
    layers = keras.layers
    keras.utils.set_random_seed(7)
    ctable = CharacterTable("0123456789+ ")
    x = np.zeros((len(questions), MAXLEN, len(ctable.chars)), dtype=bool)
    y = np.zeros((len(questions), DIGITS + 1, len(ctable.chars)), dtype=bool)
    for i, sentence in enumerate(questions):
        x[i] = ctable.encode(sentence, MAXLEN)
    for i, sentence in enumerate(expected):
        y[i] = ctable.encode(sentence, DIGITS + 1)
    split = len(x) - len(x) // 10
    (x_train, x_val), (y_train, y_val) = (x[:split], x[split:]), (y[:split], y[split:])

    model = keras.Sequential()
    model.add(layers.Input((MAXLEN, len(ctable.chars))))
    model.add(layers.LSTM(48))
    model.add(layers.RepeatVector(DIGITS + 1))
    model.add(layers.LSTM(48, return_sequences=True))
    model.add(layers.Dense(len(ctable.chars), activation="softmax"))
    init(model)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=5, validation_data=(x_val, y_val),
                        shuffle=False, verbose=0)
    predictions = model.predict(x_val, verbose=0)
    decoded = [(ctable.decode(p), ctable.decode(t)) for p, t in zip(predictions, y_val)]
    correct = np.mean([guess == answer for guess, answer in decoded])
    right_chars = np.mean([g == a for guess, answer in decoded for g, a in zip(guess, answer)])
    return {"loss": history.history["loss"][-1], "val_loss": history.history["val_loss"][-1],
            "val_accuracy": history.history["val_accuracy"][-1], "exact_answers": float(correct),
            "decoded_char_accuracy": float(right_chars)}


def test_addition_rnn():
    want, got = run_both(addition_rnn, make_data(1500), copy_weights=True)
    assert_close(want, got, rtol=0.02, keys=["loss", "val_loss"])
    assert_band(want, got, 0.05, ["val_accuracy", "exact_answers", "decoded_char_accuracy"])
    # Learning, not chance (1/12 per character); whole answers need far more than these five epochs.
    assert want["decoded_char_accuracy"] > 0.35
    np.testing.assert_allclose(want["decoded_char_accuracy"], want["val_accuracy"], atol=1e-6)
