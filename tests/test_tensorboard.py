"""TensorBoard: event files TensorBoard reads, with Keras 3's folders, tags and steps, without TensorFlow."""
from __future__ import annotations

import glob
import os
import struct

import numpy as np
import pytest

import onnxforge as tf
from onnxforge.callbacks import TensorBoard
from onnxforge.callbacks.event_file import (crc32c, histogram_event, masked_crc32c, read_tfrecords, scalar_event,
                                            tfrecord)


def _fit(log_dir, epochs=3, **kwargs):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 3)).astype("float32"), rng.normal(size=(12, 1)).astype("float32")
    model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.01), loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=epochs, batch_size=4, validation_split=0.25, shuffle=False, verbose=0,
                        callbacks=[TensorBoard(log_dir, **kwargs)])
    return model, history


def _files(log_dir, sub):
    return glob.glob(os.path.join(log_dir, sub, "events.out.tfevents.*"))


# ------------------------------------------------------------------------------ without tensorboard
def test_crc32c_known_vector():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA   # RFC 3720's all-zeros vector


def test_records_carry_both_masked_crcs():
    record = tfrecord(b"payload")
    length = record[:8]
    assert struct.unpack("<Q", length)[0] == 7
    assert struct.unpack("<I", record[8:12])[0] == masked_crc32c(length)
    assert record[12:19] == b"payload"
    assert struct.unpack("<I", record[19:23])[0] == masked_crc32c(b"payload")
    with pytest.raises(ValueError, match="CRC"):
        list(read_tfrecords(record[:-1] + bytes([record[-1] ^ 1])))


def test_own_files_parse_with_valid_crcs(tmp_path):
    _, history = _fit(str(tmp_path), histogram_freq=1)
    (train,), (val,) = _files(tmp_path, "train"), _files(tmp_path, "validation")
    assert os.path.basename(train).startswith("events.out.tfevents.") and train.endswith(".v2")
    payloads = list(read_tfrecords(open(train, "rb").read()))
    assert b"brain.Event:2" in payloads[0]
    assert any(scalar_event("epoch_loss", history.history["loss"][0], 0)[8:] == p[8:] for p in payloads)
    assert len(list(read_tfrecords(open(val, "rb").read()))) > 1


def test_unsupported_arguments():
    with pytest.raises(ValueError, match="profile_batch"):
        TensorBoard(profile_batch=2)
    with pytest.raises(NotImplementedError, match="embeddings_freq"):
        TensorBoard(embeddings_freq=1)
    with pytest.raises(ValueError, match="update_freq"):
        TensorBoard(update_freq="sometimes")
    assert tf.keras.callbacks.TensorBoard is TensorBoard


# ------------------------------------------------------------------------------- read by tensorboard
def _accumulate(folder):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0})
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [e.step for e in acc.Scalars(tag)], [e.value for e in acc.Scalars(tag)]


def test_epoch_scalars_match_the_history(tmp_path):
    model, history = _fit(str(tmp_path), epochs=3, histogram_freq=2)
    train, val = _accumulate(tmp_path / "train"), _accumulate(tmp_path / "validation")
    assert set(train.Tags()["scalars"]) == {"epoch_loss", "epoch_mae", "epoch_learning_rate"}
    for name in ("loss", "mae"):
        steps, values = _scalars(train, f"epoch_{name}")
        assert steps == [0, 1, 2]
        np.testing.assert_allclose(values, history.history[name], rtol=1e-6)
        steps, values = _scalars(val, f"epoch_{name}")
        assert steps == [0, 1, 2]
        np.testing.assert_allclose(values, history.history[f"val_{name}"], rtol=1e-6)
    np.testing.assert_allclose(_scalars(train, "epoch_learning_rate")[1], [0.01] * 3, rtol=1e-6)
    # Keras's evaluation_<name>_vs_iterations: step = the optimizer's iterations (3 batches per epoch)
    steps, values = _scalars(val, "evaluation_loss_vs_iterations")
    assert steps == [3, 6, 9]
    np.testing.assert_allclose(values, history.history["val_loss"], rtol=1e-6)
    # histograms of every weight at epochs 0 and 2, tagged <path>/histogram
    tags = sorted(train.Tags()["histograms"])
    assert tags == sorted(f"{w.path}/histogram" for layer in model.layers for w in layer.weights)
    kernel = train.Histograms(f"{model.layers[0].weights[0].path}/histogram")
    assert [e.step for e in kernel] == [0, 2]
    assert kernel[-1].histogram_value.num == 6   # the 3 x 2 kernel
    np.testing.assert_allclose(kernel[-1].histogram_value.max, np.max(model.layers[0].get_weights()[0]), rtol=1e-6)
    # write_graph: the Keras JSON for the conceptual graph, tag "keras", as Keras writes it
    assert "keras" in train.Tags()["tensors"]


def test_batch_scalars_every_update_freq(tmp_path):
    _, history = _fit(str(tmp_path), epochs=2, update_freq=2)
    train = _accumulate(tmp_path / "train")
    steps, values = _scalars(train, "batch_loss")
    assert steps == [2, 4, 6]   # 3 training batches per epoch, counted across the run from 1
    assert "batch_mae" in train.Tags()["scalars"]
