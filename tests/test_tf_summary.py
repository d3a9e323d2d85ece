"""``tf.summary`` in a TensorFlow 2 custom training loop, read back by TensorBoard's own ``EventAccumulator``."""
from __future__ import annotations

import io

import numpy as np
import pytest

import onnxforge as tf

ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _read(folder):
    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0,
                                                          ea.IMAGES: 0})
    acc.Reload()
    return acc


def test_a_custom_training_loop_logs_what_tensorboard_reads(tmp_path):
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
    optimizer = tf.keras.optimizers.SGD(0.1)
    x, y = np.random.default_rng(0).normal(size=(2, 16, 3)).astype("float32")[0], np.zeros((16, 2), "float32")
    train_loss = tf.keras.metrics.Mean("train_loss")

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    writer = tf.summary.create_file_writer(str(tmp_path / "train"))
    losses = []
    for epoch in range(3):
        train_loss.reset_state()
        train_loss.update_state(train_step(x, y))
        losses.append(float(train_loss.result()))
        with writer.as_default():
            assert tf.summary.scalar("loss", train_loss.result(), step=epoch)
            tf.summary.histogram("kernel", model.layers[0].kernel, step=epoch)
    pictures = np.random.default_rng(1).random((2, 4, 5, 3)).astype("float32")
    with writer.as_default(step=7):
        tf.summary.image("samples", pictures, max_outputs=5)
        tf.summary.text("notes", "**three** epochs")
    acc = _read(tmp_path / "train")
    assert [e.step for e in acc.Scalars("loss")] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in acc.Scalars("loss")], losses, rtol=1e-6)
    kernel = model.layers[0].kernel.numpy()
    last = acc.Histograms("kernel")[-1].histogram_value
    assert (last.num, last.min, last.max) == (6, pytest.approx(kernel.min()), pytest.approx(kernel.max()))
    from PIL import Image
    for i in range(2):
        (event,) = acc.Images(f"samples/image/{i}")
        assert (event.step, event.width, event.height) == (7, 5, 4)
        decoded = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
        np.testing.assert_array_equal(decoded, (pictures[i] * 255 + 0.5).astype(np.uint8))
    (note,) = acc.Tensors("notes")
    assert note.step == 7 and note.tensor_proto.string_val == [b"**three** epochs"]


def test_when_summaries_are_not_written(tmp_path):
    assert tf.summary.scalar("loss", 1.0, step=0) is False   # no default writer
    with tf.summary.create_noop_writer().as_default():
        assert not tf.summary.should_record_summaries() and tf.summary.scalar("loss", 1.0, step=0) is False
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default(), tf.summary.record_if(lambda: False):
        assert tf.summary.scalar("loss", 1.0, step=0) is False
    writer.set_as_default()
    try:
        tf.summary.experimental.set_step(4)
        assert tf.summary.scalar("loss", 2.0) and tf.summary.experimental.get_step() == 4
    finally:
        tf.summary.experimental.set_step(None)
        tf.summary.create_noop_writer().set_as_default()
    assert [(e.step, e.value) for e in _read(tmp_path).Scalars("loss")] == [(4, 2.0)]


def test_bad_summaries_say_what_was_wrong(tmp_path):
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        with pytest.raises(ValueError, match="'loss': no step set"):
            tf.summary.scalar("loss", 1.0)
        with pytest.raises(ValueError, match="must be a scalar. Received shape \\(2,\\)"):
            tf.summary.scalar("loss", [1.0, 2.0], step=0)
        with pytest.raises(ValueError, match="channels. Received shape \\(4, 5\\)"):
            tf.summary.image("img", np.zeros((4, 5)), step=0)

        @tf.function
        def step(x):
            tf.summary.scalar("inside", tf.reduce_sum(x), step=0)
            return x

        with pytest.raises(NotImplementedError, match="ONNX has no summary op"):
            step(np.ones(3, "float32"))


def test_tf_saved_model_says_what_to_use_instead():
    with pytest.raises(AttributeError, match="tf.saved_model.*model.export\\('model.onnx'\\)"):
        tf.saved_model.save(None, "unused")
