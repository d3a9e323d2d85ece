"""keras.io "Speaker Recognition": speech and noise ``.wav`` files read with ``tf.io.read_file`` /
``tf.audio.decode_wav``, noise files cut into one-second slices with ``tf.split`` and ``tf.stack``, a
``tf.data`` pipeline of paths zipped with labels, shuffled, batched and mapped twice: ``add_noise``
(``tf.random.uniform`` indices, ``tf.gather``, ``reduce_max`` amplitude ratio repeated along time) and
``audio_to_fft`` (``tf.signal.fft`` of ``tf.complex(audio, zeros)`` cast to complex64, the magnitude of the
positive half); a 1-D convnet of residual ``Conv1D`` blocks with ``MaxPool1D``, ``AveragePooling1D``,
Adam, sparse categorical cross-entropy, ``EarlyStopping(restore_best_weights=True)`` and a
``ModelCheckpoint`` on ``val_accuracy``. The page's program runs with real TensorFlow as ``tf`` next to
real Keras (whose torch backend takes ``tf.data`` datasets) and with ``onnxforge`` as ``tf`` next to
onnxforge.keras. Shrunk: 192 samples a "second", 5 speakers x 8 files, narrow blocks.

Tolerance: Keras's initial weights copied. The unshuffled, noise-free FFT features of the validation files
are the same arrays in both runs (the FFT is float32 on both sides: 1e-4 relative), so predictions, one Adam
step and the reloaded model agree to float32 order. The page's ``fit`` then shuffles and draws noise with
each framework's own random numbers, so it is compared by what it must do: the checkpoint holds the best
epoch, early stopping restores it, and ``evaluate`` on the validation set reports that epoch's accuracy.
"""
from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

import onnxforge

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import fkeras, run_both, workdir

tensorflow = pytest.importorskip("tensorflow")

SAMPLING_RATE, SPEAKERS, FILES = 192, 5, 8


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def make_dataset_root(root: Path) -> Path:
    """The page's folder layout after its sorting step: audio/<speaker>/*.wav and noise/<source>/*.wav."""
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLING_RATE) / SAMPLING_RATE
    for s in range(SPEAKERS):
        folder = root / "audio" / f"speaker_{s}"
        folder.mkdir(parents=True)
        for i in range(FILES):
            tone = 0.5 * np.sin(2 * np.pi * (6 + 9 * s) * t + rng.uniform(0, 6))
            write_wav(folder / f"{i}.wav", tone + 0.05 * rng.normal(size=t.shape), SAMPLING_RATE)
    for name, seconds in [("other", 3.5), ("_background_noise_", 2.2)]:
        folder = root / "noise" / name
        folder.mkdir(parents=True)
        write_wav(folder / "n.wav", 0.3 * rng.normal(size=int(seconds * SAMPLING_RATE)), SAMPLING_RATE)
    write_wav(root / "noise" / "other" / "wrong_rate.wav", rng.normal(size=300) * 0.1, 8000)
    return root


def speaker_recognition(keras, dataset_root, init, tmp_path):
    tf = onnxforge if keras is fkeras else tensorflow
    keras.utils.set_random_seed(3)
    folder = workdir(keras, tmp_path)
    DATASET_AUDIO_PATH = os.path.join(dataset_root, "audio")
    DATASET_NOISE_PATH = os.path.join(dataset_root, "noise")
    VALID_SPLIT, SHUFFLE_SEED, SCALE, BATCH_SIZE, EPOCHS = 0.2, 43, 0.5, 16, 4

    noise_paths = []
    for subdir in sorted(os.listdir(DATASET_NOISE_PATH)):
        subdir_path = Path(DATASET_NOISE_PATH) / subdir
        if os.path.isdir(subdir_path):
            noise_paths += [os.path.join(subdir_path, filepath) for filepath in sorted(os.listdir(subdir_path))
                            if filepath.endswith(".wav")]

    def load_noise_sample(path):
        sample, sampling_rate = tf.audio.decode_wav(tf.io.read_file(path), desired_channels=1)
        if sampling_rate == SAMPLING_RATE:
            slices = int(sample.shape[0] / SAMPLING_RATE)
            sample = tf.split(sample[: slices * SAMPLING_RATE], slices)
            return sample
        else:
            return None

    noises = []
    for path in noise_paths:
        sample = load_noise_sample(path)
        if sample:
            noises.extend(sample)
    noises = tf.stack(noises)

    def paths_and_labels_to_dataset(audio_paths, labels):
        path_ds = tf.data.Dataset.from_tensor_slices(audio_paths)
        audio_ds = path_ds.map(lambda x: path_to_audio(x))
        label_ds = tf.data.Dataset.from_tensor_slices(labels)
        return tf.data.Dataset.zip((audio_ds, label_ds))

    def path_to_audio(path):
        audio = tf.io.read_file(path)
        audio, _ = tf.audio.decode_wav(audio, 1, SAMPLING_RATE)
        return audio

    def add_noise(audio, noises=None, scale=0.5):
        if noises is not None:
            tf_rnd = tf.random.uniform((tf.shape(audio)[0],), 0, noises.shape[0], dtype=tf.int32)
            noise = tf.gather(noises, tf_rnd, axis=0)
            prop = tf.math.reduce_max(audio, axis=1) / tf.math.reduce_max(noise, axis=1)
            prop = tf.repeat(tf.expand_dims(prop, axis=1), tf.shape(audio)[1], axis=1)
            audio = audio + noise * prop * scale
        return audio

    def audio_to_fft(audio):
        audio = tf.squeeze(audio, axis=-1)
        fft = tf.signal.fft(tf.cast(tf.complex(real=audio, imag=tf.zeros_like(audio)), tf.complex64))
        fft = tf.expand_dims(fft, axis=-1)
        return tf.math.abs(fft[:, : (audio.shape[1] // 2), :])

    class_names = sorted(os.listdir(DATASET_AUDIO_PATH))
    audio_paths, labels = [], []
    for label, name in enumerate(class_names):
        dir_path = Path(DATASET_AUDIO_PATH) / name
        speaker_sample_paths = [os.path.join(dir_path, filepath) for filepath in sorted(os.listdir(dir_path))
                                if filepath.endswith(".wav")]
        audio_paths += speaker_sample_paths
        labels += [label] * len(speaker_sample_paths)
    rng = np.random.RandomState(SHUFFLE_SEED)
    rng.shuffle(audio_paths)
    rng = np.random.RandomState(SHUFFLE_SEED)
    rng.shuffle(labels)
    num_val_samples = int(VALID_SPLIT * len(audio_paths))
    train_audio_paths, train_labels = audio_paths[:-num_val_samples], labels[:-num_val_samples]
    valid_audio_paths, valid_labels = audio_paths[-num_val_samples:], labels[-num_val_samples:]

    train_ds = paths_and_labels_to_dataset(train_audio_paths, train_labels)
    train_ds = train_ds.shuffle(buffer_size=BATCH_SIZE * 8, seed=SHUFFLE_SEED).batch(BATCH_SIZE)
    valid_ds = paths_and_labels_to_dataset(valid_audio_paths, valid_labels)
    valid_ds = valid_ds.shuffle(buffer_size=32 * 8, seed=SHUFFLE_SEED).batch(32)
    train_ds = train_ds.map(lambda x, y: (add_noise(x, noises, scale=SCALE), y), num_parallel_calls=tf.data.AUTOTUNE)
    train_ds = train_ds.map(lambda x, y: (audio_to_fft(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    train_ds = train_ds.prefetch(tf.data.AUTOTUNE)
    valid_ds = valid_ds.map(lambda x, y: (audio_to_fft(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    valid_ds = valid_ds.prefetch(tf.data.AUTOTUNE)

    def residual_block(x, filters, conv_num=3, activation="relu"):
        s = keras.layers.Conv1D(filters, 1, padding="same")(x)
        for i in range(conv_num - 1):
            x = keras.layers.Conv1D(filters, 3, padding="same")(x)
            x = keras.layers.Activation(activation)(x)
        x = keras.layers.Conv1D(filters, 3, padding="same")(x)
        x = keras.layers.Add()([x, s])
        x = keras.layers.Activation(activation)(x)
        return keras.layers.MaxPool1D(pool_size=2, strides=2)(x)

    def build_model(input_shape, num_classes):
        inputs = keras.layers.Input(shape=input_shape, name="input")
        x = residual_block(inputs, 4, 2)
        x = residual_block(x, 8, 2)
        x = residual_block(x, 8, 3)
        x = residual_block(x, 16, 3)
        x = residual_block(x, 16, 3)
        x = keras.layers.AveragePooling1D(pool_size=3, strides=3)(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(32, activation="relu")(x)
        x = keras.layers.Dense(16, activation="relu")(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="output")(x)
        return keras.models.Model(inputs=inputs, outputs=outputs)

    model = build_model((SAMPLING_RATE // 2, 1), len(class_names))
    init(model)
    model.compile(optimizer="Adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # the deterministic part: the validation files in order, without noise
    plain = paths_and_labels_to_dataset(valid_audio_paths, valid_labels).batch(num_val_samples)
    features, targets = next(iter(plain.map(lambda x, y: (audio_to_fft(x), y))))
    features, targets = np.asarray(features), np.asarray(targets)
    (folder / "one_step").mkdir()
    out = predict_fit_reload(keras, model, features, targets, folder / "one_step")
    out["features"] = features
    out["noises"] = np.asarray(noises)

    model_save_filename = str(folder / "model.keras")
    earlystopping_cb = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    mdlcheckpoint_cb = keras.callbacks.ModelCheckpoint(model_save_filename, monitor="val_accuracy",
                                                       save_best_only=True)
    history = model.fit(train_ds, epochs=EPOCHS, validation_data=valid_ds,
                        callbacks=[earlystopping_cb, mdlcheckpoint_cb], verbose=0)
    out["history"] = history.history
    out["evaluate"] = model.evaluate(valid_ds, verbose=0)
    out["checkpoint"] = keras.models.load_model(model_save_filename).evaluate(valid_ds, verbose=0)
    return out


def test_speaker_recognition(tmp_path):
    root = make_dataset_root(tmp_path / "16000_pcm_speeches")
    want, got = run_both(speaker_recognition, root, copy_weights=True, tmp_path=tmp_path)
    np.testing.assert_array_equal(got["noises"], want["noises"])    # 3 + 2 one-second slices, the 8 kHz file skipped
    assert got["noises"].shape == (5, SAMPLING_RATE, 1)
    np.testing.assert_allclose(got["features"], want["features"], rtol=1e-4, atol=1e-4)
    compare(want, got, fit_rtol=1e-3)
    load_in_keras(got["path"], got["features"], got["reloaded"])
    for out in (want, got):
        history = out["history"]
        assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
        assert len(history["loss"]) == 4 and all(np.isfinite(history["loss"]))
        # restore_best_weights restores the lowest val_loss epoch, the checkpoint holds the best val_accuracy one
        best_loss_epoch = int(np.argmin(history["val_loss"]))
        np.testing.assert_allclose(out["evaluate"][0], history["val_loss"][best_loss_epoch], rtol=1e-4)
        assert out["checkpoint"][1] == pytest.approx(max(history["val_accuracy"]), abs=1e-6)
