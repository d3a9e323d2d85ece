"""keras.io vision pages that no earlier test names, run whole, and the calls they found wrong, each fixed call
compared here with real Keras 3 (torch backend).

The pages were shrunk (random or synthetic data of the page's shapes and dtypes, 1 epoch, a few steps) and run
under onnxforge and under real Keras (Keras 3 pages on torch, or on TensorFlow where the page needs ``tf``),
initial weights copied:

- vision/deeplabv3_plus (Keras 3; PNG files read by ``tf.io`` / ``tf.image`` in a ``Dataset.map``,
  ``ResNet50(weights=None, input_tensor=preprocess_input(...))`` cut at two ``get_layer(...).output``\\ s,
  dilated-conv pyramid pooling, ``UpSampling2D(interpolation="bilinear")``, ``ops.nn.relu``, SparseCCE on
  bilinearly resized masks, ``array_to_img``): passes unchanged. Predictions agree to 5e-6; after one SGD step
  on a batch of 2 the gradients are 2-3% apart, as far as Keras's torch and TensorFlow backends are from each
  other on the same weights (BatchNormalization over 2x4x4 maps makes them ill-conditioned).
- vision/mnist_moe (Keras 3 with ``tf``, run against Keras on TensorFlow): fixed, see
  ``test_eager_layer_call_reading_indices_with_numpy``: the page's first ``LinearMoE`` is called on a concrete
  tensor and picks its experts with ``top_k_indices.numpy()``, which the traced call refused. Then the page
  runs: the ``GradientTape`` step with ``compute_loss`` + load-balancing losses, ``compiled_metrics``, history,
  evaluation and predictions agree to 1e-4. Left as known: its ``expert_usage_count`` is a raw ``tf.Variable``,
  which onnxforge lists and trains (tf.keras 2 style) and Keras 3 does not (see test_keras_io_vision_more).
- vision/vivit (tf.keras page, against Keras 3 on TensorFlow; MedMNIST volumes replaced by random uint8 ones of
  16x16x16): fixed, see ``test_tf_function_keeps_integer_argument_dtypes``: its ``@tf.function`` preprocessing
  map received the uint8 frames as int64, so ``convert_image_dtype`` scaled them to ~1e-17. Then, with the
  attention dropout at 0 and no shuffle, predictions, history (top-5 accuracy included), evaluation, per-sample
  predictions and the GIFs written from ``testsample.numpy()`` agree to 1e-7 (Pillow in place of imageio).
  Still differs: variable paths of sublayers made in a layer's ``__init__`` / ``build`` lack the parent's
  name (``conv3d/kernel`` where Keras 3 says ``tubelet_embedding/conv3d/kernel``); weight files key by these
  paths, so it was left for a change of its own.
- vision/object_detection_using_vision_transformer (tf.keras page, against Keras 3 on TensorFlow; Caltech
  images and ``.mat`` boxes made up, ``keras.optimizers.AdamW`` for tfa's, Pillow's box resize for cv2's): fixed,
  see ``test_save_format_is_taken_where_the_extension_names_the_format``: ``model.save(..., save_format="h5")``
  was refused. Then ``load_img`` / ``img_to_array``, ``tf.image.extract_patches`` in a layer and eagerly,
  ``tf.reshape(patch, ...).numpy()``, the ViT regressor, ``validation_split``, ``EarlyStopping`` and a best-only
  ``ModelCheckpoint`` agree to 3e-6 (dropout at 0, ``shuffle=False``). The page's
  ``ModelCheckpoint("logs/", save_weights_only=True)`` is refused by Keras 3 itself, as by onnxforge.
- vision/focal_modulation_network (tf.keras page, against Keras 3 on TensorFlow; CIFAR-10 replaced by random
  8x8 images, 16x16 inputs, embed_dim 8): fixed, see ``test_static_dims_from_tf_shape_pass_positionally_to_layers``:
  ``tf.shape(x)[1]`` of a static dim was a Python int, which the blocks' positional ``(x, height, width,
  channels)`` arguments refused. Then, with dropout at 0 and the random crop / flip / shuffle off, the
  ``WarmUpCosine`` schedule (``tf.where`` / ``tf.cos`` on the step), predictions, history, the ``gates`` /
  ``modulator`` attributes read after an eager ``model(test_images)`` and ``UpSampling2D(bilinear)`` of them agree
  to 3e-7; with the random layers on it runs. ``tf.keras.optimizers.experimental`` is missing in both (the run
  used ``keras.optimizers.AdamW``). Its callback's ``randint`` picked other images than Keras's: fixed, see
  ``test_unseeded_random_layers_draw_their_seeds_from_python_random_as_keras`` (Keras seeds each unseeded
  ``SeedGenerator`` from Python's ``random``; onnxforge drew from numpy's stream or a private one).
- vision/image_classification_efficientnet_fine_tuning (Keras 3, against Keras on torch; Stanford Dogs replaced by
  random images of uneven sizes, 32x32 inputs, 5 classes): passes unchanged. ``PyDataset`` subclasses resizing
  with ``keras.ops.image.resize`` and one-hot labels, the four random augmentation layers called eagerly, an
  ``EfficientNetB0(weights=None)`` from scratch, the frozen base (``weights=None`` for ``"imagenet"``) with a
  new head, ``unfreeze_model`` by count and by name keeping ``BatchNormalization`` frozen: evaluation and
  predictions before training are equal, trainable / non-trainable weight counts agree at every step (4 / 314,
  then 12 / 306). Training histories differ by the dropout draws inside EfficientNet's blocks.
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

from ..keras_examples import tf_oracle
from ..keras_examples import vision_rest_programs as programs
from .common import LIBS, copy_weights, fkeras, keras

_TF_PROGRAMS = ["vivit_uint8_frames", "focalnet_shape_arguments"]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    return tf_oracle.start("vision_rest_programs", _TF_PROGRAMS, tmp_path_factory.mktemp("vision_rest") / "tf.npz")


def _top_k_mixture(api):
    """mnist_moe's first ``LinearMoE``: a gating Dense, ``top_k`` and experts chosen in Python from the first
    row's indices (``.numpy()``), combined by an einsum."""
    class TopKMixture(api.layers.Layer):
        def __init__(self):
            super().__init__()
            self.experts = [api.layers.Dense(3) for _ in range(4)]
            self.gate = api.layers.Dense(4)

        def call(self, x):
            weights, indices = api.ops.top_k(self.gate(x), k=2)
            chosen = [self.experts[i](x) for i in indices.numpy()[0]]
            return api.ops.einsum("ijk,ij->ik", api.ops.stack(chosen, axis=1), weights)

    return TopKMixture()


def test_eager_layer_call_reading_indices_with_numpy():
    """A layer called on an array whose ``call`` reads a tensor's value (``t.numpy()``) runs eagerly, as in
    Keras, where the trace of it refused: every expert is built and used as the values choose."""
    x = np.random.default_rng(0).normal(size=(2, 5)).astype("float32")
    ref, ours = _top_k_mixture(keras), _top_k_mixture(fkeras)
    want = keras.ops.convert_to_numpy(ref(x))
    for expert in ref.experts:   # build the experts the values did not choose, so every weight is copied
        expert(x)
    for expert in ours.experts:
        expert(x)
    ours.gate(x)
    for a, b in zip(ref.experts + [ref.gate], ours.experts + [ours.gate]):
        copy_weights(a, b)
    got = ours(x)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    assert got.shape == (2, 3)


def _same_as_tensorflow(oracle, program: str) -> None:
    want = oracle.results(program)
    got = getattr(programs, program)(tf, tf.keras)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if value.dtype.kind in "US":
            assert str(got[key]) == str(value), key
        else:
            assert got[key].dtype == value.dtype, key
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


def test_tf_function_keeps_integer_argument_dtypes(oracle):
    """A ``@tf.function`` map over uint8 frames gets uint8 (it got int64, and ``convert_image_dtype`` then scaled
    by int64's maximum: every pixel about 1e-17)."""
    _same_as_tensorflow(oracle, "vivit_uint8_frames")


def test_static_dims_from_tf_shape_pass_positionally_to_layers(oracle):
    """``tf.shape(x)[1]`` handed to a layer positionally runs as in TensorFlow, where it is a tensor (a static
    dim here was a Python int, which Keras's rule for positional arguments refused)."""
    _same_as_tensorflow(oracle, "focalnet_shape_arguments")
    block = tf.keras.layers.Dense(2)
    with pytest.raises(ValueError, match="Only input tensors may be passed as positional"):
        block(np.ones((1, 2), "float32"), 3)   # a plain Python number is still refused, as by Keras


@pytest.mark.parametrize("ext", [".h5", ".keras", ".tf"])
def test_save_format_is_taken_where_the_extension_names_the_format(tmp_path, ext):
    """keras.io's ViT object detector saves with ``model.save("vit_object_detector.h5", save_format="h5")``:
    Keras 3 takes (and warns about) ``save_format`` there, and refuses it for a path of no format it writes."""
    outcome = {}
    for lib, k in LIBS.items():
        x = k.Input((3,))
        model = k.Model(x, k.layers.Dense(2)(x))
        path = tmp_path / f"{lib}{ext}"
        try:
            model.save(str(path), save_format="h5")
            outcome[lib] = ("saved", path.exists())
        except ValueError as e:
            outcome[lib] = ("refused", str(e).split(" Received")[0].split("Received")[0])
    assert outcome["onnxforge"] == outcome["keras"]
    assert outcome["keras"][0] == ("refused" if ext == ".tf" else "saved")


def test_unseeded_random_layers_draw_their_seeds_from_python_random_as_keras():
    """Keras seeds each unseeded ``SeedGenerator`` with ``random.randint`` (and ``RandomCrop`` its config's seed
    first): after ``set_random_seed`` and building such layers, a program's own ``random`` / ``np.random``
    draws (FocalNet's ``randint`` picking an image to show) are Keras's. onnxforge drew them from numpy's
    stream or a private one."""
    import random

    got = {}
    for lib, k in LIBS.items():
        k.utils.set_random_seed(7)
        made = [k.layers.Dropout(0.1), k.layers.Dropout(0.0), k.layers.RandomFlip(), k.layers.RandomCrop(4, 4),
                k.layers.GaussianNoise(0.1), k.random.SeedGenerator(), k.layers.LSTM(2, dropout=0.1),
                k.layers.MultiHeadAttention(2, 4, dropout=0.1), k.layers.SpatialDropout2D(0.2)]
        got[lib] = (made[3].get_config()["seed"], random.randint(0, 10 ** 9), int(np.random.randint(0, 10 ** 9)))
    assert got["onnxforge"] == got["keras"]


__all__ = ["LIBS"]
