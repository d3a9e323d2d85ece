"""keras.io "Automatic Speech Recognition using CTC" (LJSpeech, DeepSpeech2-like) as ``program(tf, keras)``,
compared with real Keras on TensorFlow (``tf_oracle.py``): the page's ``tf.data`` front end (``tf.io.read_file``,
``tf.audio.decode_wav``, ``tf.signal.stft``, ``tf.math.pow`` / ``reduce_std`` normalization, ``tf.strings.lower``
and ``unicode_split`` into a StringLookup, ``padded_batch``), its ``CTCLoss`` on ``keras.backend.ctc_batch_cost``
(the page imports ``from tensorflow import keras``: tf.keras), a Conv2D / Bidirectional GRU model, and greedy
``keras.backend.ctc_decode`` back to text through the inverted StringLookup and ``tf.strings.reduce_join``.

Shrunk: a few synthetic "utterances" (one tone per letter, 8 kHz wav files), 2 GRU layers of 8 units, 4 filters.
Dropout at rate 0 and weights set from their shapes, so both frameworks compute the same numbers.
"""
from __future__ import annotations

import tempfile
import wave
from pathlib import Path

import numpy as np

try:
    from .string_programs import by_shape
except ImportError:   # tf_oracle.py imports the programs as top-level modules
    from string_programs import by_shape

__all__ = ["ctc_asr"]

RATE = 8000
LETTERS = "abcdefgh"


def write_utterances(folder: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` wav files (int16 mono, 8 kHz): a short tone per letter of a 3-5 letter word, with a little noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        word = "".join(rng.choice(list(LETTERS), rng.integers(3, 6)))
        t = np.arange(int(0.15 * RATE)) / RATE
        audio = np.concatenate([np.sin(2 * np.pi * (300 + 250 * LETTERS.index(c)) * t) for c in word])
        audio = 0.5 * audio + rng.normal(0, 0.02, audio.shape)
        name = f"LJ{i:03d}"
        with wave.open(str(folder / f"{name}.wav"), "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(RATE)
            f.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
        rows.append((name, word.upper() if i % 3 == 0 else word))   # lower() in the pipeline
    return rows


def ctc_asr(tf, keras):
    keras = tf.keras   # the page: from tensorflow import keras
    layers = keras.layers
    folder = Path(tempfile.mkdtemp(prefix="LJSpeech_"))
    wavs_path = str(folder) + "/"
    rows = write_utterances(folder, 24, seed=0)
    df_train, df_val = rows[:16], rows[16:]

    characters = [x for x in "abcdefghijklmnopqrstuvwxyz'?! "]
    char_to_num = keras.layers.StringLookup(vocabulary=characters, oov_token="")
    num_to_char = keras.layers.StringLookup(vocabulary=char_to_num.get_vocabulary(), oov_token="", invert=True)

    frame_length = 256
    frame_step = 160
    fft_length = 384

    def encode_single_sample(wav_file, label):
        file = tf.io.read_file(wavs_path + wav_file + ".wav")
        audio, _ = tf.audio.decode_wav(file)
        audio = tf.squeeze(audio, axis=-1)
        audio = tf.cast(audio, tf.float32)
        spectrogram = tf.signal.stft(audio, frame_length=frame_length, frame_step=frame_step, fft_length=fft_length)
        spectrogram = tf.abs(spectrogram)
        spectrogram = tf.math.pow(spectrogram, 0.5)
        means = tf.math.reduce_mean(spectrogram, 1, keepdims=True)
        stddevs = tf.math.reduce_std(spectrogram, 1, keepdims=True)
        spectrogram = (spectrogram - means) / (stddevs + 1e-10)
        label = tf.strings.lower(label)
        label = tf.strings.unicode_split(label, input_encoding="UTF-8")
        label = char_to_num(label)
        return spectrogram, label

    batch_size = 8
    train_dataset = tf.data.Dataset.from_tensor_slices(([r[0] for r in df_train], [r[1] for r in df_train]))
    train_dataset = (train_dataset.map(encode_single_sample, num_parallel_calls=tf.data.AUTOTUNE)
                     .padded_batch(batch_size).prefetch(buffer_size=tf.data.AUTOTUNE))
    validation_dataset = tf.data.Dataset.from_tensor_slices(([r[0] for r in df_val], [r[1] for r in df_val]))
    validation_dataset = (validation_dataset.map(encode_single_sample, num_parallel_calls=tf.data.AUTOTUNE)
                          .padded_batch(batch_size).prefetch(buffer_size=tf.data.AUTOTUNE))

    def CTCLoss(y_true, y_pred):
        batch_len = tf.cast(tf.shape(y_true)[0], dtype="int64")
        input_length = tf.cast(tf.shape(y_pred)[1], dtype="int64")
        label_length = tf.cast(tf.shape(y_true)[1], dtype="int64")
        input_length = input_length * tf.ones(shape=(batch_len, 1), dtype="int64")
        label_length = label_length * tf.ones(shape=(batch_len, 1), dtype="int64")
        loss = keras.backend.ctc_batch_cost(y_true, y_pred, input_length, label_length)
        return loss

    def build_model(input_dim, output_dim, rnn_layers=2, rnn_units=8):
        input_spectrogram = layers.Input((None, input_dim), name="input")
        x = layers.Reshape((-1, input_dim, 1), name="expand_dim")(input_spectrogram)
        x = layers.Conv2D(filters=4, kernel_size=[11, 41], strides=[2, 2], padding="same", use_bias=False,
                          name="conv_1")(x)
        x = layers.BatchNormalization(name="conv_1_bn")(x)
        x = layers.ReLU(name="conv_1_relu")(x)
        x = layers.Conv2D(filters=4, kernel_size=[11, 21], strides=[1, 2], padding="same", use_bias=False,
                          name="conv_2")(x)
        x = layers.BatchNormalization(name="conv_2_bn")(x)
        x = layers.ReLU(name="conv_2_relu")(x)
        x = layers.Reshape((-1, x.shape[-2] * x.shape[-1]))(x)
        for i in range(1, rnn_layers + 1):
            recurrent = layers.GRU(units=rnn_units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                                   return_sequences=True, reset_after=True, name=f"gru_{i}")
            x = layers.Bidirectional(recurrent, name=f"bidirectional_{i}", merge_mode="concat")(x)
            if i < rnn_layers:
                x = layers.Dropout(rate=0.0)(x)
        x = layers.Dense(units=rnn_units * 2, name="dense_1")(x)
        x = layers.ReLU(name="dense_1_relu")(x)
        x = layers.Dropout(rate=0.0)(x)
        output = layers.Dense(units=output_dim + 1, activation="softmax")(x)
        model = keras.Model(input_spectrogram, output, name="DeepSpeech_2")
        opt = keras.optimizers.Adam(learning_rate=1e-3)
        model.compile(optimizer=opt, loss=CTCLoss)
        return model

    model = build_model(input_dim=fft_length // 2 + 1, output_dim=char_to_num.vocabulary_size())
    by_shape(model)

    def decode_batch_predictions(pred):
        input_len = np.ones(pred.shape[0]) * pred.shape[1]
        results = keras.backend.ctc_decode(pred, input_length=input_len, greedy=True)[0][0]
        output_text = []
        for result in results:
            result = tf.strings.reduce_join(num_to_char(result)).numpy().decode("utf-8")
            output_text.append(result)
        return output_text

    out = {}
    spectrograms, labels = next(iter(validation_dataset))
    out["spectrograms"] = np.asarray(spectrograms)
    out["labels"] = np.asarray(labels)
    out["before"] = model.predict(spectrograms, verbose=0)
    history = model.fit(train_dataset, validation_data=validation_dataset, epochs=2, verbose=0)
    out["history"] = np.array([history.history["loss"], history.history["val_loss"]])
    preds = model.predict(spectrograms, verbose=0)
    out["after"] = preds
    out["texts"] = np.array(decode_batch_predictions(preds))
    path = str(folder / "deepspeech.keras")
    model.save(path)
    reloaded = keras.models.load_model(path, custom_objects={"CTCLoss": CTCLoss})
    out["reloaded"] = reloaded.predict(spectrograms, verbose=0)
    out["path"] = np.array(path)
    out["targets"] = np.array([tf.strings.reduce_join(num_to_char(label)).numpy().decode("utf-8")
                               for label in labels])
    return out
