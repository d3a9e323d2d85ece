"""keras.io "Image classification with Swin Transformers" (Keras 3 version): images cut into patches in the
input pipeline, then ``PatchEmbedding`` (a Dense projection plus an ``Embedding`` of ``ops.arange``
positions), a regular and a shifted-window ``SwinTransformer`` block, ``PatchMerging`` (strided slices
``x[:, 0::2, 0::2, :]`` concatenated) and ``GlobalAveragePooling1D``, trained with AdamW on label-smoothed
categorical cross-entropy with top-5 accuracy.

What the blocks exercise: ``window_partition`` / ``window_reverse`` (6-D reshape + transpose with ``-1``
batch), ``WindowAttention`` whose ``__init__`` calls ``add_weight`` (a zero-initialised relative position
bias table) and keeps a NumPy-computed index as a non-trainable ``keras.Variable(dtype="int")`` that
``call`` reads with ``ops.take``; the shifted block's ``build`` computes its attention mask from a
float64 NumPy array with ``ops.where(attn_mask != 0, -100.0, attn_mask)`` and keeps it as a
``keras.Variable`` too; ``call`` shifts the windows with ``ops.roll`` over two axes. The layers have no
``get_config`` (Keras 3 records their constructor arguments); ``PatchMerging`` takes no ``**kwargs``, as on
the page, so the whole-model ``.keras`` file does not load back in Keras (``TypeError`` from ``from_config``:
``trainable``) nor in onnxforge (the same ``TypeError``); the program saves the weights and loads them into
a model built again, and real Keras loads onnxforge's weights file the same way.

Shrunk: 8x8 images in 2x2 patches (a 4x4 grid of 12-value patches), embedding 8, 2 heads, MLP 16, window 2,
shift 1, 10 classes.

Tolerance: Keras's initial weights copied and every Dropout at rate 0, so both frameworks compute the same
function: predictions, one AdamW step and the reloaded model agree with Keras to float32 order (rtol 1e-4).
The relative position bias table starts at zero, so the test also trains it on its own (a second model whose
table is set to non-zero values) to see the gather go both ways.
"""
from __future__ import annotations

import numpy as np

from .equal_weights import compare
from .harness import keras as real_keras, run_both, to_numpy, workdir

IMAGE, PATCH, EMBED, HEADS, MLP, WINDOW, SHIFT, CLASSES = 8, 2, 8, 2, 16, 2, 1, 10
NUM_PATCH = IMAGE // PATCH


def swin_layers(keras):
    """The page's helpers and layers, written against ``keras``."""
    layers, ops = keras.layers, keras.ops

    def window_partition(x, window_size):
        _, height, width, channels = x.shape
        patch_num_y = height // window_size
        patch_num_x = width // window_size
        x = ops.reshape(x, (-1, patch_num_y, window_size, patch_num_x, window_size, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        windows = ops.reshape(x, (-1, window_size, window_size, channels))
        return windows

    def window_reverse(windows, window_size, height, width, channels):
        patch_num_y = height // window_size
        patch_num_x = width // window_size
        x = ops.reshape(windows, (-1, patch_num_y, patch_num_x, window_size, window_size, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        x = ops.reshape(x, (-1, height, width, channels))
        return x

    class WindowAttention(layers.Layer):
        def __init__(self, dim, window_size, num_heads, qkv_bias=True, dropout_rate=0.0, **kwargs):
            super().__init__(**kwargs)
            self.dim = dim
            self.window_size = window_size
            self.num_heads = num_heads
            self.scale = (dim // num_heads) ** -0.5
            self.qkv = layers.Dense(dim * 3, use_bias=qkv_bias)
            self.dropout = layers.Dropout(dropout_rate)
            self.proj = layers.Dense(dim)

            num_window_elements = (2 * self.window_size[0] - 1) * (2 * self.window_size[1] - 1)
            self.relative_position_bias_table = self.add_weight(
                shape=(num_window_elements, self.num_heads), initializer=keras.initializers.Zeros(), trainable=True)
            coords_h = np.arange(self.window_size[0])
            coords_w = np.arange(self.window_size[1])
            coords_matrix = np.meshgrid(coords_h, coords_w, indexing="ij")
            coords = np.stack(coords_matrix)
            coords_flatten = coords.reshape(2, -1)
            relative_coords = coords_flatten[:, :, None] - coords_flatten[:, None, :]
            relative_coords = relative_coords.transpose([1, 2, 0])
            relative_coords[:, :, 0] += self.window_size[0] - 1
            relative_coords[:, :, 1] += self.window_size[1] - 1
            relative_coords[:, :, 0] *= 2 * self.window_size[1] - 1
            relative_position_index = relative_coords.sum(-1)
            self.relative_position_index = keras.Variable(
                initializer=relative_position_index, shape=relative_position_index.shape, dtype="int",
                trainable=False)

        def call(self, x, mask=None):
            _, size, channels = x.shape
            head_dim = channels // self.num_heads
            x_qkv = self.qkv(x)
            x_qkv = ops.reshape(x_qkv, (-1, size, 3, self.num_heads, head_dim))
            x_qkv = ops.transpose(x_qkv, (2, 0, 3, 1, 4))
            q, k, v = x_qkv[0], x_qkv[1], x_qkv[2]
            q = q * self.scale
            k = ops.transpose(k, (0, 1, 3, 2))
            attn = q @ k

            num_window_elements = self.window_size[0] * self.window_size[1]
            relative_position_index_flat = ops.reshape(self.relative_position_index, (-1,))
            relative_position_bias = ops.take(self.relative_position_bias_table, relative_position_index_flat,
                                              axis=0)
            relative_position_bias = ops.reshape(relative_position_bias,
                                                 (num_window_elements, num_window_elements, -1))
            relative_position_bias = ops.transpose(relative_position_bias, (2, 0, 1))
            attn = attn + ops.expand_dims(relative_position_bias, axis=0)

            if mask is not None:
                nW = mask.shape[0]
                mask_float = ops.cast(ops.expand_dims(ops.expand_dims(mask, axis=1), axis=0), "float32")
                attn = ops.reshape(attn, (-1, nW, self.num_heads, size, size)) + mask_float
                attn = ops.reshape(attn, (-1, self.num_heads, size, size))
                attn = keras.activations.softmax(attn, axis=-1)
            else:
                attn = keras.activations.softmax(attn, axis=-1)
            attn = self.dropout(attn)

            x_qkv = attn @ v
            x_qkv = ops.transpose(x_qkv, (0, 2, 1, 3))
            x_qkv = ops.reshape(x_qkv, (-1, size, channels))
            x_qkv = self.proj(x_qkv)
            x_qkv = self.dropout(x_qkv)
            return x_qkv

    class SwinTransformer(layers.Layer):
        def __init__(self, dim, num_patch, num_heads, window_size=7, shift_size=0, num_mlp=1024, qkv_bias=True,
                     dropout_rate=0.0, **kwargs):
            super().__init__(**kwargs)
            self.dim = dim
            self.num_patch = num_patch
            self.num_heads = num_heads
            self.window_size = window_size
            self.shift_size = shift_size
            self.num_mlp = num_mlp

            self.norm1 = layers.LayerNormalization(epsilon=1e-5)
            self.attn = WindowAttention(dim, window_size=(self.window_size, self.window_size), num_heads=num_heads,
                                        qkv_bias=qkv_bias, dropout_rate=dropout_rate)
            self.drop_path = layers.Dropout(dropout_rate)
            self.norm2 = layers.LayerNormalization(epsilon=1e-5)
            self.mlp = keras.Sequential([
                layers.Dense(num_mlp),
                layers.Activation(keras.activations.gelu),
                layers.Dropout(dropout_rate),
                layers.Dense(dim),
                layers.Dropout(dropout_rate),
            ])
            if min(self.num_patch) < self.window_size:
                self.shift_size = 0
                self.window_size = min(self.num_patch)

        def build(self, input_shape):
            if self.shift_size == 0:
                self.attn_mask = None
            else:
                height, width = self.num_patch
                h_slices = (slice(0, -self.window_size), slice(-self.window_size, -self.shift_size),
                            slice(-self.shift_size, None))
                w_slices = (slice(0, -self.window_size), slice(-self.window_size, -self.shift_size),
                            slice(-self.shift_size, None))
                mask_array = np.zeros((1, height, width, 1))
                count = 0
                for h in h_slices:
                    for w in w_slices:
                        mask_array[:, h, w, :] = count
                        count += 1
                mask_array = ops.convert_to_tensor(mask_array)

                mask_windows = window_partition(mask_array, self.window_size)
                mask_windows = ops.reshape(mask_windows, [-1, self.window_size * self.window_size])
                attn_mask = ops.expand_dims(mask_windows, axis=1) - ops.expand_dims(mask_windows, axis=2)
                attn_mask = ops.where(attn_mask != 0, -100.0, attn_mask)
                attn_mask = ops.where(attn_mask == 0, 0.0, attn_mask)
                self.attn_mask = keras.Variable(initializer=attn_mask, shape=attn_mask.shape, dtype=attn_mask.dtype,
                                                trainable=False)

        def call(self, x, training=False):
            height, width = self.num_patch
            _, num_patches_before, channels = x.shape
            x_skip = x
            x = self.norm1(x)
            x = ops.reshape(x, (-1, height, width, channels))
            if self.shift_size > 0:
                shifted_x = ops.roll(x, shift=[-self.shift_size, -self.shift_size], axis=[1, 2])
            else:
                shifted_x = x

            x_windows = window_partition(shifted_x, self.window_size)
            x_windows = ops.reshape(x_windows, (-1, self.window_size * self.window_size, channels))
            attn_windows = self.attn(x_windows, mask=self.attn_mask)

            attn_windows = ops.reshape(attn_windows, (-1, self.window_size, self.window_size, channels))
            shifted_x = window_reverse(attn_windows, self.window_size, height, width, channels)
            if self.shift_size > 0:
                x = ops.roll(shifted_x, shift=[self.shift_size, self.shift_size], axis=[1, 2])
            else:
                x = shifted_x

            x = ops.reshape(x, (-1, height * width, channels))
            x = self.drop_path(x, training=training)
            x = x_skip + x
            x_skip = x
            x = self.norm2(x)
            x = self.mlp(x)
            x = self.drop_path(x)
            x = x_skip + x
            return x

    class PatchEmbedding(layers.Layer):
        def __init__(self, num_patch, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.num_patch = num_patch
            self.proj = layers.Dense(embed_dim)
            self.pos_embed = layers.Embedding(input_dim=num_patch, output_dim=embed_dim)

        def call(self, patch):
            pos = ops.arange(start=0, stop=self.num_patch)
            return self.proj(patch) + self.pos_embed(pos)

    class PatchMerging(keras.layers.Layer):
        def __init__(self, num_patch, embed_dim):
            super().__init__()
            self.num_patch = num_patch
            self.embed_dim = embed_dim
            self.linear_trans = layers.Dense(2 * embed_dim, use_bias=False)

        def call(self, x):
            height, width = self.num_patch
            _, _, C = x.shape
            x = ops.reshape(x, (-1, height, width, C))
            x0 = x[:, 0::2, 0::2, :]
            x1 = x[:, 1::2, 0::2, :]
            x2 = x[:, 0::2, 1::2, :]
            x3 = x[:, 1::2, 1::2, :]
            x = ops.concatenate((x0, x1, x2, x3), axis=-1)
            x = ops.reshape(x, (-1, (height // 2) * (width // 2), 4 * C))
            return self.linear_trans(x)

    return {"WindowAttention": WindowAttention, "SwinTransformer": SwinTransformer,
            "PatchEmbedding": PatchEmbedding, "PatchMerging": PatchMerging}


def patch_extract(keras, images):
    """The page's input pipeline step (``tf.image.extract_patches`` there; ``keras.ops.image`` here)."""
    ops = keras.ops
    batch_size = ops.shape(images)[0]
    patches = ops.image.extract_patches(images, (PATCH, PATCH))
    patch_dim = patches.shape[-1]
    patch_num = patches.shape[1]
    return ops.reshape(patches, (batch_size, patch_num * patch_num, patch_dim))


def build_model(keras, custom):
    layers = keras.layers
    input = layers.Input(shape=(NUM_PATCH * NUM_PATCH, PATCH * PATCH * 3))
    h = custom["PatchEmbedding"](NUM_PATCH * NUM_PATCH, EMBED)(input)
    for shift in (0, SHIFT):
        h = custom["SwinTransformer"](dim=EMBED, num_patch=(NUM_PATCH, NUM_PATCH), num_heads=HEADS,
                                      window_size=WINDOW, shift_size=shift, num_mlp=MLP, qkv_bias=True,
                                      dropout_rate=0.0)(h)
    h = custom["PatchMerging"]((NUM_PATCH, NUM_PATCH), embed_dim=EMBED)(h)
    h = layers.GlobalAveragePooling1D()(h)
    output = layers.Dense(CLASSES, activation="softmax")(h)
    return keras.Model(input, output)


def swin(keras, data, init, tmp_path, bias_table=None):
    images, y = data
    custom = swin_layers(keras)
    x = np.asarray(to_numpy(patch_extract(keras, images)))
    model = build_model(keras, custom)
    init(model)
    if bias_table is not None:   # give the attention a position bias that is not zero
        for layer in model.layers:
            if hasattr(layer, "attn"):
                layer.attn.relative_position_bias_table.assign(bias_table)
    model.compile(
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        optimizer=keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.0001),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                 keras.metrics.TopKCategoricalAccuracy(5, name="top-5-accuracy")])
    out = {"predict": np.asarray(to_numpy(model.predict(x, verbose=0)))}
    out["loss"] = float(model.train_on_batch(x, y, return_dict=True)["loss"])
    out["after_fit"] = np.asarray(to_numpy(model.predict(x, verbose=0)))

    # PatchMerging's __init__ takes no **kwargs, so a whole-model .keras file cannot be read back (in Keras
    # either: from_config passes trainable/dtype); the weights file into a model built again can.
    folder = workdir(keras, tmp_path)
    out["path"] = str(folder / "swin.weights.h5")
    model.save_weights(out["path"])
    again = build_model(keras, custom)
    again.load_weights(out["path"])
    out["reloaded"] = np.asarray(to_numpy(again.predict(x, verbose=0)))
    model.save(str(folder / "swin.keras"))
    try:
        keras.models.load_model(str(folder / "swin.keras"), custom_objects=custom)
        out["load_model"] = "loaded"
    except TypeError as error:
        out["load_model"] = "TypeError: trainable" if "'trainable'" in str(error) else str(error)

    out["patches"] = x
    out["tables"] = [np.asarray(to_numpy(layer.attn.relative_position_bias_table))
                     for layer in model.layers if hasattr(layer, "attn")]
    out["mask"] = np.asarray(to_numpy(model.layers[3].attn_mask))
    return out


def _data():
    rng = np.random.default_rng(11)
    return (rng.uniform(0, 1, (8, IMAGE, IMAGE, 3)).astype("float32"),
            np.eye(CLASSES, dtype="float32")[rng.integers(0, CLASSES, 8)])


def test_swin_transformers(tmp_path):
    data = _data()
    want, got = run_both(swin, data, copy_weights=True, tmp_path=tmp_path)
    np.testing.assert_array_equal(got["patches"], want["patches"])
    np.testing.assert_array_equal(got["mask"], want["mask"])
    assert set(np.unique(got["mask"])) == {0.0, -100.0}
    compare(want, got)
    for w, g in zip(want["tables"], got["tables"]):   # zeros before the step: Adam moved each entry by ~lr
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-6)
    assert got["load_model"] == want["load_model"] == "TypeError: trainable"
    again = build_model(real_keras, swin_layers(real_keras))   # onnxforge's weights file in real Keras
    again.load_weights(got["path"])
    np.testing.assert_allclose(to_numpy(again.predict(got["patches"], verbose=0)), got["reloaded"], rtol=1e-4,
                               atol=1e-6)


def test_swin_position_bias_trains(tmp_path):
    table = np.linspace(-1, 1, (2 * WINDOW - 1) ** 2 * HEADS).reshape(-1, HEADS).astype("float32")
    want, got = run_both(swin, _data(), copy_weights=True, tmp_path=tmp_path, bias_table=table)
    compare(want, got)
    for w, g in zip(want["tables"], got["tables"]):
        assert not np.allclose(w, table)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
