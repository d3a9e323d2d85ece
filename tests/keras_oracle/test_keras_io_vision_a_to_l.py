"""Calls from keras.io vision programs (EDSR, ...) that onnxforge got wrong, each compared with real Keras 3
(torch backend) or, for ``tf.image.psnr``, with its defining formula computed in NumPy."""
from __future__ import annotations

import numpy as np
import pytest

from .common import fkeras, keras, onnxforge


def _history_keys(lib, metric) -> list[str]:
    inputs = lib.Input((3,))
    model = lib.Model(inputs, lib.layers.Dense(2)(inputs))
    model.compile("sgd", "mse", metrics=[metric(lib)])
    x = np.ones((4, 3), np.float32)
    return sorted(model.fit(x, np.ones((4, 2), np.float32), verbose=0, validation_data=(x, x[:, :2])).history)


@pytest.mark.parametrize("fn_name", ["PSNR", "DiceCoef", "my_metric"])
def test_function_metric_logged_under_its_snake_case_name(fn_name):
    # EDSR compiles metrics=[PSNR] and keras.io plots history["psnr"]; Keras snake-cases a function's name.
    def metric(lib):
        def fn(y_true, y_pred):
            return lib.ops.mean(lib.ops.abs(y_true - y_pred), axis=-1)
        fn.__name__ = fn_name
        return fn

    assert _history_keys(fkeras, metric) == _history_keys(keras, metric)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16"])
def test_layout_ops_keep_small_integer_dtypes(dtype):
    # EDSR's predict_step: tf.squeeze(tf.cast(image, tf.uint8), axis=0) must stay uint8 for plt.imshow.
    x = np.arange(6, dtype=dtype).reshape(1, 2, 3)
    calls = [("squeeze", lambda o: o.squeeze(x, 0)), ("expand_dims", lambda o: o.expand_dims(x, -1)),
             ("transpose", lambda o: o.transpose(x)), ("tile", lambda o: o.tile(x, (2, 1, 1))),
             ("broadcast_to", lambda o: o.broadcast_to(x, (2, 2, 3))), ("reshape", lambda o: o.reshape(x, (3, 2)))]
    for name, call in calls:
        want = keras.ops.convert_to_numpy(call(keras.ops))
        got = np.asarray(call(fkeras.ops))
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want)


def test_psnr_as_compiled_metric_on_dynamic_image_sizes():
    # EDSR: Input((None, None, 3)) and metrics=[PSNR] calling tf.image.psnr(y_true, y_pred, 255)[0]; the
    # target's dims are named and the prediction's unknown while tracing, which is a compatible pair.
    tf = onnxforge

    def PSNR(super_resolution, high_resolution):
        return tf.image.psnr(high_resolution, super_resolution, max_val=255)[0]

    inputs = fkeras.Input((None, None, 3))
    model = fkeras.Model(inputs, fkeras.layers.Rescaling(2.0)(inputs))
    model.compile("sgd", "mae", metrics=[PSNR])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 100, (2, 6, 5, 3)).astype(np.float32)
    y = rng.uniform(0, 255, (2, 6, 5, 3)).astype(np.float32)
    logs = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    mse = np.mean((y[0].astype(np.float64) - 2 * x[0]) ** 2)
    assert abs(logs["psnr"] - 10 * np.log10(255.0 ** 2 / mse)) < 1e-3
    with pytest.raises(ValueError, match="must be images of one shape"):
        tf.image.psnr(np.zeros((4, 4, 3), np.float32), np.zeros((4, 5, 3), np.float32), max_val=1.0)


def _conv_resize_conv(lib):
    inputs = lib.Input((None, None, 3))
    x = lib.layers.Conv2D(4, 3, padding="same")(inputs)
    x = lib.layers.Resizing(6, 5, interpolation="bilinear")(x)
    x = lib.layers.Conv2D(2, 3, padding="same")(x)
    model = lib.Model(inputs, lib.layers.GlobalAveragePooling2D()(x))
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_resizing_between_convolutions_runs_and_trains_like_keras():
    # learnable_resizer: Conv2D -> Resizing -> Conv2D. The Resize sat between the convs' layout Transposes and
    # onnxruntime's transpose optimizer emptied its `sizes` ("... (0) does not match the number of axes (2)").
    want, got = _conv_resize_conv(keras), _conv_resize_conv(fkeras)
    got.set_weights(want.get_weights())
    rng = np.random.default_rng(0)
    x = rng.random((2, 11, 9, 3)).astype(np.float32)
    y = rng.random((2, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(got(x)), keras.ops.convert_to_numpy(want(x)), rtol=1e-4, atol=1e-5)
    for _ in range(2):
        np.testing.assert_allclose(got.train_on_batch(x, y), want.train_on_batch(x, y), rtol=1e-4)


@pytest.mark.parametrize("index", [1, -1, 2])
def test_one_hot_of_a_scalar_index_is_one_row(index):
    # learnable_resizer's tf.data map: tf.one_hot(label, depth=2) on one element's scalar label gave (1, 2),
    # so the batched labels were (batch, 1, 2) and fit() refused them.
    want = keras.ops.convert_to_numpy(keras.ops.one_hot(np.int64(index), 3))
    got = np.asarray(fkeras.ops.one_hot(np.int64(index), 3))
    assert got.shape == want.shape == (3,)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.asarray(onnxforge.one_hot(index, depth=3)), want)
    ds = onnxforge.data.Dataset.from_tensor_slices(np.array([0, 2, 1], np.int64))
    batch = next(iter(ds.map(lambda label: onnxforge.one_hot(label, depth=3)).batch(3)))
    np.testing.assert_array_equal(np.asarray(batch), np.eye(3, dtype=np.float32)[[0, 2, 1]])


@pytest.mark.parametrize("kwargs", [dict(max_val=1.0), dict(max_val=32.0, filter_size=7, k1=0.01 ** 2, k2=0.03 ** 2)])
def test_tf_image_ssim_matches_keras_ssim(kwargs):
    # depth_estimation's loss: tf.image.ssim(target, pred, max_val=WIDTH, filter_size=7, k1=..., k2=...).
    rng = np.random.default_rng(0)
    a = rng.random((2, 16, 14, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1).astype(np.float32)
    want = keras.ops.convert_to_numpy(keras.ops.image.ssim(a, b, **kwargs))
    np.testing.assert_allclose(np.asarray(onnxforge.image.ssim(a, b, **kwargs)), want, rtol=1e-5, atol=1e-6)
    # uint8 images are compared in [0, 1] with max_val scaled alike (TensorFlow's convert_image_dtype)
    ua, ub = np.round(a * 255).astype(np.uint8), np.round(b * 255).astype(np.uint8)
    scaled = dict(kwargs, max_val=kwargs["max_val"] / 255.0)
    want8 = keras.ops.convert_to_numpy(keras.ops.image.ssim(ua / np.float32(255), ub / np.float32(255), **scaled))
    np.testing.assert_allclose(np.asarray(onnxforge.image.ssim(ua, ub, **kwargs)), want8, rtol=1e-4, atol=1e-5)

    # inside a traced loss, as in a custom train_step
    def loss_model(lib, ssim):
        inputs = lib.Input((16, 14, 3))
        model = lib.Model(inputs, lib.layers.Conv2D(3, 1, activation="sigmoid")(inputs))
        model.compile("sgd", loss=lambda t, p: 1.0 - ssim(t, p, max_val=1.0, filter_size=5))
        return model

    want_m = loss_model(keras, keras.ops.image.ssim)
    got_m = loss_model(fkeras, onnxforge.image.ssim)
    got_m.set_weights(want_m.get_weights())
    np.testing.assert_allclose(got_m.evaluate(a, b, verbose=0), want_m.evaluate(a, b, verbose=0), rtol=1e-4)
    with pytest.raises(ValueError, match="must be images of one shape"):
        onnxforge.image.ssim(a, b[:, :5], max_val=1.0)


@pytest.mark.parametrize("batched", [False, True])
def test_crop_and_pad_to_bounding_box_with_traced_offsets(batched):
    # cutmix: inside a tf.function the box comes from random draws, so offsets and sizes are graph values;
    # the window and the zero padding are plain slicing / padding of the image (NumPy's, checked here).
    tf = onnxforge

    @tf.function
    def cut_and_paste(image, oh, ow):
        crop = tf.image.crop_to_bounding_box(image, oh, ow, oh + 1, ow + 2)
        return tf.image.pad_to_bounding_box(crop, oh, ow, 9, 8)

    rng = np.random.default_rng(0)
    image = rng.random((2, 6, 5, 3) if batched else (6, 5, 3)).astype(np.float32)
    for oh, ow in [(1, 0), (2, 1)]:
        got = np.asarray(cut_and_paste(image, tf.constant(oh), tf.constant(ow)))
        crop = image[..., oh:2 * oh + 1, ow:2 * ow + 2, :]
        lead = [(0, 0)] * (image.ndim - 3)
        want = np.pad(crop, lead + [(oh, 9 - oh - crop.shape[-3]), (ow, 8 - ow - crop.shape[-2]), (0, 0)])
        np.testing.assert_array_equal(got, want)


def test_tf_slice_and_set_shape_in_a_traced_map():
    # fixres: begin/size from a random box, tf.slice(image, begin, size), then image.set_shape([None, None, c]).
    tf = onnxforge
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    want = keras.ops.convert_to_numpy(keras.ops.slice(x, (1, 0, 2), (2, 3, 2)))
    np.testing.assert_array_equal(np.asarray(tf.slice(x, [1, 0, 2], [2, 3, 2])), want)
    np.testing.assert_array_equal(np.asarray(tf.slice(x, [1, 2, 0], [-1, 2, -1])), x[1:, 2:4, :])

    @tf.function
    def crop(image, begin, size):
        out = tf.slice(image, begin, size)
        out.set_shape([None, None, 5])
        assert out.shape.as_list() == [None, None, 5]
        return out

    got = crop(x, tf.constant([0, 1, 0]), tf.constant([2, -1, -1]))
    np.testing.assert_array_equal(np.asarray(got), x[0:2, 1:, :])
    eager = tf.constant(x)
    eager.set_shape([None, 4, None])   # a concrete tensor: only checked, as TensorFlow's eager tensors
    assert eager.get_shape() == (3, 4, 5)
    with pytest.raises(ValueError, match="not compatible with supplied shape"):
        eager.set_shape([3, 5, 5])


def _fcn_like(lib):
    # keras.io FCN: a sub-model from a backbone's inner layer, whose returned list of outputs the program edits.
    inputs = lib.Input((8, 8, 3))
    a = lib.layers.Conv2D(2, 1, name="c1")(inputs)
    b = lib.layers.MaxPooling2D(name="p1")(a)
    base = lib.Model(inputs, lib.layers.MaxPooling2D(name="p2")(b))
    sub = lib.Model(inputs=base.layers[1].input, outputs=[base.get_layer(n).output for n in ("p1", "p2")])
    x = lib.Input((8, 8, 3))
    outs = sub(x)
    outs[-1] = lib.layers.Conv2D(2, 1, name="head")(outs[-1])   # rewrites the list the call returned
    p1, p2 = outs
    return lib.Model(x, [p1, lib.layers.UpSampling2D(2)(p2)])


def test_editing_a_returned_outputs_list_leaves_the_graph_intact():
    want, got = _fcn_like(keras), _fcn_like(fkeras)
    got.set_weights(want.get_weights())
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    for w, g in zip(want.predict(x, verbose=0), got.predict(x, verbose=0)):
        np.testing.assert_allclose(g, keras.ops.convert_to_numpy(w), rtol=1e-5, atol=1e-6)


def test_preprocessing_layers_in_a_dataset_map_compute_in_float():
    # Keras 3 converts a data layer's inputs to its compute dtype inside tf.data: FCN resizes uint8 images
    # and masks in a map and gets floats; onnxforge's map kept the integers.
    images = np.random.default_rng(0).integers(0, 256, (2, 6, 5, 3)).astype(np.uint8)
    resize = fkeras.layers.Resizing(4, 4)
    ds = onnxforge.data.Dataset.from_tensor_slices(images).map(resize).batch(2)
    got = next(iter(ds))
    want = keras.ops.convert_to_numpy(keras.layers.Resizing(4, 4)(images.astype(np.float32)))
    assert np.asarray(got).dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)
    augment = fkeras.Sequential([fkeras.layers.CenterCrop(4, 4)])
    crops = next(iter(onnxforge.data.Dataset.from_tensor_slices(images).map(augment).batch(2)))
    assert np.asarray(crops).dtype == np.float32
    assert np.asarray(resize(images)).dtype.kind in "iu"   # an eager call outside a pipeline keeps integers


@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 4), (4, 2)])
def test_tf_linalg_set_diag_replaces_the_main_diagonal(shape):
    # barlow_twins' off-diagonal term: tf.linalg.set_diag(c, tf.zeros(c.shape[-1])).
    rng = np.random.default_rng(0)
    x = rng.random(shape).astype(np.float32)
    d = rng.random(shape[:-2] + (min(shape[-2:]),)).astype(np.float32)
    want = x.copy()
    idx = np.arange(min(shape[-2:]))
    want[..., idx, idx] = d
    np.testing.assert_array_equal(np.asarray(onnxforge.linalg.set_diag(x, d)), want)


def test_random_crop_with_a_size_drawn_in_the_trace():
    # barlow_twins' RandomResizedCrop: rand_size = tf.random.uniform([], 24, 32, tf.int32) inside call(), then
    # tf.image.random_crop(x, (rand_size, rand_size, 3)); the window is one contiguous block of the image.
    tf = onnxforge
    image = np.arange(8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)

    @tf.function
    def crop(x, side):
        out = tf.image.random_crop(x, (side, side, 3))
        assert out.shape.as_list() == [None, None, 3]
        return out

    for side in (3, 6):
        got = np.asarray(crop(image, tf.constant(side)))
        assert got.shape == (side, side, 3)
        top, left = divmod(int(got[0, 0, 0]) // 3, 8)
        np.testing.assert_array_equal(got, image[top:top + side, left:left + side])
