"""BackupAndRestore: an interrupted fit resumed by a second fit ends where an uninterrupted one does."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import onnxforge as tf
from onnxforge.callbacks import BackupAndRestore, Callback


class _Interrupt(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("Interrupting!")


def _model(momentum: float = 0.0):
    model = tf.keras.Sequential([tf.keras.layers.Dense(3, activation="tanh", input_shape=(4,)),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.05, momentum=momentum), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")


def test_interrupted_fit_resumes_to_the_uninterrupted_weights(tmp_path):
    x, y = _data()
    reference = _model(momentum=0.9)   # momentum: the optimizer's slots must be restored too
    initial = reference.get_weights()
    reference.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0)

    model = _model(momentum=0.9)
    model.set_weights(initial)
    backup = BackupAndRestore(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="Interrupting"):
        model.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0, callbacks=[backup, _Interrupt()])
    with open(tmp_path / "backup" / "training_metadata.json") as f:
        assert json.load(f)["epoch"] == 2
    assert os.path.exists(tmp_path / "backup" / "latest.onnx")

    model.set_weights([np.zeros_like(w) for w in initial])   # the restore, not the model's memory, resumes
    history = model.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0, callbacks=[backup])
    assert history.epoch == [2, 3]
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert not os.path.exists(tmp_path / "backup")


def test_batch_backups_restart_the_epoch_they_were_taken_in(tmp_path):
    # Keras's semantics: a backup taken mid-epoch records that epoch, which the resumed run starts again
    # from the backed-up weights.
    x, y = _data()
    model = _model()
    backup = BackupAndRestore(tmp_path / "backup", save_freq=3)
    with pytest.raises(RuntimeError, match="Interrupting"):
        model.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0, callbacks=[backup, _Interrupt()])
    with open(tmp_path / "backup" / "training_metadata.json") as f:
        assert json.load(f) == {"epoch": 1, "batch": 1}   # batches 3 and 6 of the run: epoch 1, batch 1
    history = model.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0, callbacks=[backup])
    assert history.epoch == [1, 2, 3]
    assert not os.path.exists(tmp_path / "backup")


def test_a_later_fit_without_a_backup_starts_where_it_is_told(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path / "b", delete_checkpoint=False)])
    assert os.path.exists(tmp_path / "b" / "latest.onnx")
    assert model.fit(x, y, epochs=2, verbose=0).epoch == [0, 1]


def test_double_checkpoint_falls_back_to_the_previous_backup(tmp_path):
    x, y = _data()
    model = _model()
    cb = BackupAndRestore(tmp_path / "b", double_checkpoint=True, delete_checkpoint=False)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert os.path.exists(cb._prev_weights_path)
    with open(cb._weights_path, "wb") as f:
        f.write(b"torn")
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert history.epoch == [1, 2]   # the previous backup was taken after epoch 1 (index 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Empty `backup_dir`"):
        BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore("b", save_freq="batch")


def test_exported_as_keras_does():
    assert tf.keras.callbacks.BackupAndRestore is BackupAndRestore


@pytest.mark.parametrize("content, fragment", [
    (b'[2]', "holds a list"), (b'{}', "no 'epoch'"), (b'{"epoch": "2"}', "'epoch' is '2'"),
    (b'{"epoch": -1}', "'epoch' is -1"), (b'{"epoch": true}', "'epoch' is True"),
    (b'{"epoch": 1, "batch": 1.5}', "'batch' is 1.5"), (b'\xff\xfe', "not UTF-8 JSON"),
    (b'[' * 100000, "not UTF-8 JSON|over 65536 bytes"),
])
def test_hostile_training_metadata_is_a_value_error_naming_the_file(tmp_path, content, fragment):
    # A list once failed in fit as a TypeError, a missing key as a KeyError, "2" as range()'s TypeError.
    x, y = _data()
    model = _model()
    cb = BackupAndRestore(tmp_path / "b", delete_checkpoint=False)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    (tmp_path / "b" / "training_metadata.json").write_bytes(content)
    with pytest.raises(ValueError, match=f"training_metadata.json'.*({fragment})"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
