"""Calls from keras.io guides and tensorflow.org tutorials not ported before, that onnxforge answered differently
from Keras 3 (torch backend here; TensorFlow 2.21's Keras gave the same answers when the programs were run).

Programs run (small shapes, synthetic data of the tutorial's shapes and dtypes, 1-2 epochs), each with
``import onnxforge as tf`` / ``import onnxforge.keras as keras`` and with TensorFlow 2.21 / Keras 3:

* tensorflow.org quickstart/beginner: works.
* quickstart/advanced (subclassed model, ``tf.function`` train and test steps, metric trackers): works.
* keras/regression (pandas frames and series into ``adapt`` / ``fit`` / ``predict``, ``tf.linspace``, ``.keras``
  round trip): works.
* keras/overfit_and_underfit (gzipped ``CsvDataset``, ``batch().map().unbatch()``, ``InverseTimeDecay`` on a
  NumPy array, EarlyStopping, TensorBoard, l2 regularizers, ``tf.add_n(model.losses)``): works.
* keras/save_and_load (ModelCheckpoint weights with ``{epoch:04d}`` and ``save_freq``, ``.keras``, ``.h5``): works;
  ``tf.saved_model`` is refused by design (ONNX or ``.keras`` instead).
* customization/basics: fixed -- ``tf.data.TextLineDataset`` was missing (added, TensorFlow's line rules and
  compressions). Still differs: ``tf.math.add(1, 2)`` / ``tf.linalg.matmul([[1]], [[2, 3]])`` give int64 where
  TensorFlow (and ``keras.ops`` on Python ints, ``ops.arange(5)``) give int32; ``x.device`` is NumPy's ``'cpu'``,
  not TensorFlow's ``'/job:localhost/replica:0/task:0/device:CPU:0'`` (the tutorial asserts ``endswith('CPU:0')``).
* customization/custom_training_walkthrough (GradientTape loop, SGD, Mean / SparseCategoricalAccuracy / Accuracy
  trackers, ``argmax(output_type=tf.int64)``): works, the same losses to 5 digits from the same weights.
* customization/custom_layers: fixed -- its ResNet block's ``Model(name='')`` was refused (Keras takes the empty
  name; its weights' paths then have no prefix). Its ``add_weight("kernel", shape=...)`` fails under both with Keras 3's
  ValueError "`name` must be passed as a keyword argument" (test_keras_small_diffs.py).
* images/data_augmentation: fixed here -- ``Sequential([Resizing, Rescaling])`` called on a uint8 image resized
  the integers and gave int64 (Keras casts the data to the input it builds, float32); and
  ``tf.image.stateless_random_crop`` of a uint8 image gave int32 (eager ``slice`` / ``take`` / ``concatenate`` /
  ``stack`` / ``split`` / ``repeat`` / ``slice_update`` widened uint8 and int8; Keras keeps them); and a ``Lambda``
  or layer whose Python ``if`` reads a tensor (the tutorial's ``random_invert_img``) failed when called eagerly
  (its call now runs as Python on eager tensors when the trace refuses the branch). Still differs: a
  ``Sequential`` holding such a layer, called eagerly before it is built, fails (Keras applies its layers one by
  one); ``tf.random.Generator`` is missing. Added: ``tf.data.experimental.Counter`` and ``tf.random.split`` (the seed
  pipeline of its stateless-augmentation part).
* generative/autoencoder (subclassed models holding Sequentials, denoising Conv2DTranspose, anomaly detection with
  boolean-mask indexing and ``tf.math.less``): works. The tutorial's ``Dense(tf.math.reduce_prod(shape).numpy())``
  fails under both (Keras wants a Python int; run with ``int(...)``).
* generative/cvae (``@tf.function`` method and train step, ``tf.split``, ``sigmoid_cross_entropy_with_logits``):
  works.
* structured_data/imbalanced_data (eleven metrics incl. ``AUC(curve='PR')``, ``Constant`` output bias,
  ``.weights.h5`` round trip, ``bias.assign``, ``class_weight``, EarlyStopping ``restore_best_weights``,
  ``sample_from_datasets``): works, the same evaluate numbers from the same weights. One difference kept: its
  ``METRICS`` list is shared by every model; Keras does not reset those metric objects before a new model's first
  evaluate (its numbers then include the previous model's), onnxforge does.
* keras.io distributed_training_with_tensorflow (one-device ``MirroredStrategy``, ModelCheckpoint ``.keras`` per
  epoch, restore the newest and resume): works.
* keras.io migrating_to_keras_3, first half: works where Keras works (``export``, dict inputs, ``@tf.function``
  ``call``, ``keras.ops.squeeze``, optional ``None`` arguments). Differs: ``tf.strings`` in a predicted model is
  refused (no ONNX string ops, by design); ``tf.squeeze(KerasTensor)`` is accepted (Keras refuses); a
  ``tf.Variable`` attribute of a layer is tracked (Keras 3 tracks only ``keras.Variable``).
* keras.io customizing_saving_and_serialization (``save_own_variables`` / ``load_own_variables``, ``save_assets``
  / ``load_assets``, ``get_compile_config`` / ``compile_from_config``; the page's shapes and missing ``**kwargs``
  fixed, as Keras needs too): assets and compile config work; custom variables still fail at load, because the
  layer's ``tf.Variable`` is tracked (above), so ``enumerate(self.weights)`` in its ``load_own_variables`` meets
  it first.
* keras.io custom_train_step_in_torch / writing_a_custom_training_loop_in_torch: not run -- they call
  ``loss.backward()`` and read ``v.value.grad`` on torch tensors, which onnxforge (ONNX graphs) has no counterpart
  for; their TensorFlow versions are the ported customizing_what_happens_in_fit / writing_a_training_loop guides.
"""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS


def _first_call(api, make_layers, x):
    model = api.Sequential(make_layers(api))
    out = model(x)
    return np.asarray(api.ops.convert_to_numpy(out)), str(model.inputs[0].dtype)


@pytest.mark.parametrize("case", ["resize", "flatten", "lambda"])
def test_first_call_of_a_sequential_casts_integer_data_to_the_first_layers_dtype(case):
    """tensorflow.org's data_augmentation tutorial: ``resize_and_rescale(image)`` on a uint8 image."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 5, 6, 3)).astype("uint8")
    makers = {"resize": lambda k: [k.layers.Resizing(3, 4), k.layers.Rescaling(1 / 255)],
              "flatten": lambda k: [k.layers.Flatten()],
              "lambda": lambda k: [k.layers.Lambda(lambda t: t / 2)]}
    got = {lib: _first_call(api, makers[case], x) for lib, api in LIBS.items()}
    assert got["onnxforge"][0].dtype == got["keras"][0].dtype == np.float32
    assert got["onnxforge"][1] == got["keras"][1] == "float32"
    np.testing.assert_allclose(got["onnxforge"][0], got["keras"][0], rtol=1e-5, atol=1e-5)


def test_first_call_of_a_sequential_keeps_integer_ids_for_an_embedding():
    """Ids stay integers (Keras casts them to float32 and back: same rows below 2**24)."""
    ids = np.array([[1, 2, 3]], "int64")
    outs, inputs = {}, {}
    for lib, api in LIBS.items():
        model = api.Sequential([api.layers.Embedding(5, 2, embeddings_initializer="ones")])
        outs[lib] = np.asarray(api.ops.convert_to_numpy(model(ids)))
        inputs[lib] = str(model.inputs[0].dtype)
    assert inputs == {"keras": "float32", "onnxforge": "int64"}
    np.testing.assert_array_equal(outs["onnxforge"], outs["keras"])
    assert outs["onnxforge"].dtype == np.float32


_BYTE_OPS = {
    "slice": lambda k, x: k.ops.slice(x, (0, 1, 1), (2, 2, 2)),
    "take": lambda k, x: k.ops.take(x, [0, -1], axis=1),
    "concatenate": lambda k, x: k.ops.concatenate([x, x]),
    "concatenate_int32": lambda k, x: k.ops.concatenate([x, x.astype("int32")]),
    "stack": lambda k, x: k.ops.stack([x, x]),
    "split": lambda k, x: k.ops.split(x, 2, axis=2)[1],
    "slice_update": lambda k, x: k.ops.slice_update(x, (0, 0, 1), x[:1, :1, :1] + 7),
    "repeat": lambda k, x: k.ops.repeat(x, 2, axis=0),
}


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("op", sorted(_BYTE_OPS))
def test_ops_that_select_or_join_elements_keep_byte_dtypes(op, dtype):
    """data_augmentation's ``tf.image.stateless_random_crop`` of a uint8 image slices it: Keras keeps uint8."""
    x = np.arange(24).reshape(2, 3, 4).astype(dtype)
    got = {lib: np.asarray(api.ops.convert_to_numpy(_BYTE_OPS[op](api, x))) for lib, api in LIBS.items()}
    assert got["onnxforge"].dtype == got["keras"].dtype
    np.testing.assert_array_equal(got["onnxforge"], got["keras"])


def test_tf_image_random_crop_keeps_uint8():
    import onnxforge as tf

    image = np.arange(5 * 6 * 3).reshape(5, 6, 3).astype("uint8")
    crop = np.asarray(tf.image.stateless_random_crop(image, size=[3, 4, 3], seed=(1, 0)))
    assert crop.dtype == np.uint8 and crop.shape == (3, 4, 3)
    # the window is one of the image's 3 x 3 placements
    assert any(np.array_equal(crop, image[i:i + 3, j:j + 4]) for i in range(3) for j in range(3))


def test_tutorial_seed_pipeline_counter_and_random_split():
    """data_augmentation's seeds: ``Dataset.zip((images, (Counter(), Counter())))`` and ``tf.random.split``."""
    import onnxforge as tf

    rtf = pytest.importorskip("tensorflow")
    for t in (tf, rtf):
        counter = t.data.experimental.Counter()
        pairs = [tuple(np.asarray(s).tolist()) for _, s in t.data.Dataset.zip(
            (t.data.Dataset.range(3), (counter, counter)))]
        assert pairs == [(0, 0), (1, 1), (2, 2)]
    ours, theirs = tf.random.split(np.array([1, 2]), num=3), rtf.random.split(np.array([1, 2]), num=3)
    assert tuple(ours.shape) == tuple(theirs.shape) == (3, 2) and ours.dtype == theirs.dtype.as_numpy_dtype
    assert tf.random.split([1, 2], num=1).dtype == rtf.random.split([1, 2], num=1).dtype.as_numpy_dtype
    np.testing.assert_array_equal(tf.random.split(np.array([1, 2]), num=3), ours)   # same seed, same seeds
    assert not np.array_equal(tf.random.split(np.array([1, 3]), num=3), ours)
    with pytest.raises(ValueError, match="seed must have shape"):
        tf.random.split([1, 2, 3])


def test_a_model_named_with_the_empty_string():
    """tensorflow.org's custom_layers tutorial: ``super().__init__(name='')`` in its ResNet identity block."""
    x = np.ones((3, 4), "float32")
    seen = {}
    for lib, api in LIBS.items():
        class Block(api.Model):
            def __init__(self):
                super().__init__(name="")
                self.dense = api.layers.Dense(2)
                self.head = api.layers.Dense(1, name="")

            def call(self, inputs):
                return self.head(self.dense(inputs))

        block = Block()
        out = block(x)
        seen[lib] = (block.name, block.head.name, sorted(w.path for w in block.head.weights), tuple(out.shape))
    assert seen["onnxforge"] == seen["keras"]
    with pytest.raises(ValueError, match="without '/'.*Received: name='a/b'"):
        LIBS["onnxforge"].layers.Dense(2, name="a/b")


def test_text_line_dataset_matches_tensorflow(tmp_path):
    """tensorflow.org's customization/basics tutorial: ``tf.data.TextLineDataset(filename).batch(2)``."""
    import gzip
    import zlib

    import onnxforge as tf

    rtf = pytest.importorskip("tensorflow")
    plain, crlf = tmp_path / "a.txt", tmp_path / "b.txt"
    plain.write_text("Line 1\nLine 2\nLine 3\n  ")
    crlf.write_bytes("x\r\n\r\ny é\n".encode())
    gz, zl = tmp_path / "c.gz", tmp_path / "d.z"
    gz.write_bytes(gzip.compress(b"g1\ng2\n"))
    zl.write_bytes(zlib.compress(b"z1\nz2"))
    cases = [([str(plain), str(crlf)], None), (str(plain), ""), (str(gz), "GZIP"), ([str(zl)], "ZLIB")]
    for files, compression in cases:
        ours = [np.asarray(b.numpy()).tolist() for b in tf.data.TextLineDataset(files, compression).batch(2)]
        theirs = [b.numpy().tolist() for b in rtf.data.TextLineDataset(files, compression).batch(2)]
        assert ours == theirs, (files, compression)
    with pytest.raises(tf.errors.NotFoundError, match="missing.txt"):
        list(tf.data.TextLineDataset(str(tmp_path / "missing.txt")))
    with pytest.raises(ValueError, match="compression_type.*Received: compression_type='BZ2'"):
        tf.data.TextLineDataset(str(plain), "BZ2")


def _invert_layers(api, ops):
    def random_invert_img(x, p=0.5):   # the data_augmentation tutorial's, with a draw made deterministic
        if ops.max(x) > p * 255:
            x = 255 - x
        return x

    class RandomInvert(api.layers.Layer):
        def call(self, x):
            return random_invert_img(x)

    return api.layers.Lambda(lambda x: random_invert_img(x, 0.5)), RandomInvert()


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("bright", [True, False])
def test_eager_call_of_a_layer_that_branches_on_a_tensor_value(which, bright):
    """data_augmentation's ``random_invert``: a Python ``if`` on a tensor in a Lambda and in a layer's call."""
    x = np.full((1, 4, 4, 3), 200.0 if bright else 50.0, "float32")
    outs = {}
    for lib, api in LIBS.items():
        layer = _invert_layers(api, api.ops)[which]
        outs[lib] = np.asarray(api.ops.convert_to_numpy(layer(x)))
    assert outs["onnxforge"].dtype == outs["keras"].dtype
    np.testing.assert_array_equal(outs["onnxforge"], outs["keras"])


def test_a_branch_on_a_tensor_in_a_symbolic_model_is_still_refused():
    api = LIBS["onnxforge"]
    layer = _invert_layers(api, api.ops)[0]
    with pytest.raises(ValueError, match="could not be traced.*truth value of symbolic tensor"):
        layer(api.Input((4, 4, 3)))
