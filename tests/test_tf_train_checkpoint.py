"""``tf.train.Checkpoint`` / ``CheckpointManager`` / ``latest_checkpoint``: TensorFlow's DCGAN-tutorial pattern
(save both models and both optimizers, rebuild everything, restore, train on) and the files as untrusted input."""
from __future__ import annotations

import os

import numpy as np
import pytest

import onnxforge as tf
from onnxforge import keras


def _gan():
    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    return generator, discriminator, keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2)


def _step(g, d, go, do, x):
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
        out = d(g(x, training=True), training=True)
        g_loss, d_loss = tf.reduce_mean(out), -tf.reduce_mean(out)
    go.apply_gradients(zip(g_tape.gradient(g_loss, g.trainable_variables), g.trainable_variables))
    do.apply_gradients(zip(d_tape.gradient(d_loss, d.trainable_variables), d.trainable_variables))


def test_resume_a_gan_training_loop(tmp_path):
    x = np.random.default_rng(0).random((8, 4), np.float32)
    g, d, go, do = _gan()
    ckpt = tf.train.Checkpoint(generator_optimizer=go, discriminator_optimizer=do, generator=g, discriminator=d)
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path), max_to_keep=2)
    assert manager.latest_checkpoint is None and tf.train.latest_checkpoint(str(tmp_path)) is None
    for _ in range(3):
        _step(g, d, go, do, x)
        path = manager.save()
    assert os.path.basename(path) == "ckpt-3"
    assert [os.path.basename(p) for p in manager.checkpoints] == ["ckpt-2", "ckpt-3"]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "ckpt-2.npz", "ckpt-3.npz"]
    _step(g, d, go, do, x)   # the run that continues from the checkpoint must reproduce this step
    expected = [w.copy() for w in g.get_weights()]

    # A fresh start, as a new process would build it: new layer names, optimizers that took no step yet.
    g2, d2, go2, do2 = _gan()
    restored = tf.train.Checkpoint(generator_optimizer=go2, discriminator_optimizer=do2, generator=g2,
                                   discriminator=d2)
    restored.restore(tf.train.latest_checkpoint(str(tmp_path))).assert_consumed()
    assert int(go2.iterations.numpy()) == 3 and int(restored.save_counter.numpy()) == 3
    _step(g2, d2, go2, do2, x)
    for got, want in zip(g2.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_restore_none_and_partial_matches(tmp_path):
    step = tf.Variable(5)
    ckpt = tf.train.Checkpoint(step=step)
    ckpt.restore(None).assert_consumed()    # nothing saved yet: start from scratch
    path = ckpt.save(str(tmp_path / "run"))
    other = tf.train.Checkpoint(step=tf.Variable(0), extra=tf.Variable(1.0))
    status = other.restore(path)
    assert int(other.step.numpy()) == 5
    with pytest.raises(AssertionError, match="extra"):
        status.assert_consumed()
    status.expect_partial()
    with pytest.raises(ValueError, match="shape"):
        tf.train.Checkpoint(step=tf.Variable(np.zeros(3))).restore(path)
    with pytest.raises(TypeError, match="not a model, layer"):
        tf.train.Checkpoint(thing=object())


def test_hostile_state_file_and_checkpoint(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "ckpts"
    folder.mkdir()
    tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(outside / "ckpt-1"))
    # A state file may only name checkpoints in its own folder.
    (folder / "checkpoint").write_text('model_checkpoint_path: "../outside/ckpt-1"\n'
                                       f'all_model_checkpoint_paths: "{outside / "ckpt-1"}"\n')
    assert tf.train.latest_checkpoint(str(folder)) is None
    # A file that is not a weights .npz is refused with a clear error, not unpickled.
    (folder / "bad-1.npz").write_bytes(b"\x80\x04cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(ValueError, match="not a readable weights .npz"):
        tf.train.Checkpoint(v=tf.Variable(1.0)).restore(str(folder / "bad-1"))
