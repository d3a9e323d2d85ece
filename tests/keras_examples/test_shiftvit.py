"""keras.io "A Vision Transformer without Attention" (ShiftViT), ported to Keras 3 as a user would: the
page's ``tf.split`` / ``tf.image.crop_to_bounding_box`` / ``tf.image.pad_to_bounding_box`` / ``tf.concat``
become ``ops.split`` / ``ops.image.crop_images`` / ``ops.image.pad_images`` / ``ops.concatenate``, its
``tf.GradientTape`` ``train_step`` a ``call`` (the default ``train_step`` then does the same), and the
``WarmUpCosine`` schedule is written with ``ops.cos`` / ``ops.cast`` / ``ops.where`` on the step and keeps
``self.pi = ops.array(np.pi)`` made in ``__init__``.

What it exercises: layers that create their sub-layers in ``build`` from the input shape (``MLP``,
``ShiftViTBlock``, ``PatchMerging``, ``StackedShiftBlocks`` with a Python list of blocks), the shift of four
channel groups one pixel left / right / up / down by cropping and zero-padding, a subclassed ``keras.Model``
with a data augmentation ``Sequential`` called with ``training`` (the page's Resizing, RandomCrop,
RandomFlip, Rescaling; Resizing and Rescaling here, see below), AdamW driven by the schedule, sparse top-5 accuracy, ``EarlyStopping`` on ``val_accuracy`` and
``evaluate``.

Shrunk: 8x8 images resized to 12, 2x2 patches projected to 16 channels, two stages of
one block each (num_div 4, so four groups of four channels are shifted), 10 labels against the page's
logits (the pooled channels, 32 here). Stochastic depth and MLP dropout at 0.

Tolerance: Keras's initial weights copied. With the random crop / flip left out (Resizing and Rescaling
only) both frameworks compute the same function: predictions, the scheduled AdamW fit, its history and the
weights reloaded into a new model agree with Keras to float32 order (rtol 1e-4; 1e-3 for the fit). The page's
RandomCrop is not compared: in inference Keras 3.15 returns the image uncropped (against its documentation
and its own ``compute_output_shape``), which onnxforge deliberately does not follow
(``layers/preprocessing/random_crop.py``), and in training each framework draws its own windows.
"""
from __future__ import annotations

import numpy as np

from .harness import keras as real_keras, run_both, to_numpy, workdir

IMAGE, RESIZE, PATCH, DIM, NUM_DIV, STAGES, CLASSES = 8, 12, 2, 16, 4, [1, 1], 10


def shiftvit_classes(keras):
    layers, ops = keras.layers, keras.ops

    class MLP(layers.Layer):
        def __init__(self, mlp_expand_ratio, mlp_dropout_rate, **kwargs):
            super().__init__(**kwargs)
            self.mlp_expand_ratio = mlp_expand_ratio
            self.mlp_dropout_rate = mlp_dropout_rate

        def build(self, input_shape):
            input_channels = input_shape[-1]
            initial_filters = int(self.mlp_expand_ratio * input_channels)
            self.mlp = keras.Sequential([
                layers.Dense(units=initial_filters, activation=ops.gelu),
                layers.Dropout(rate=self.mlp_dropout_rate),
                layers.Dense(units=input_channels),
                layers.Dropout(rate=self.mlp_dropout_rate),
            ])

        def call(self, x):
            return self.mlp(x)

    class DropPath(layers.Layer):
        def __init__(self, drop_path_prob, **kwargs):
            super().__init__(**kwargs)
            self.drop_path_prob = drop_path_prob
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, x, training=False):
            if training:
                keep_prob = 1 - self.drop_path_prob
                shape = (ops.shape(x)[0],) + (1,) * (len(ops.shape(x)) - 1)
                random_tensor = keep_prob + keras.random.uniform(shape, 0, 1, seed=self.seed_generator)
                random_tensor = ops.floor(random_tensor)
                return (x / keep_prob) * random_tensor
            return x

    class ShiftViTBlock(layers.Layer):
        def __init__(self, epsilon, drop_path_prob, mlp_dropout_rate, num_div=12, shift_pixel=1,
                     mlp_expand_ratio=2, **kwargs):
            super().__init__(**kwargs)
            self.shift_pixel = shift_pixel
            self.mlp_expand_ratio = mlp_expand_ratio
            self.mlp_dropout_rate = mlp_dropout_rate
            self.num_div = num_div
            self.epsilon = epsilon
            self.drop_path_prob = drop_path_prob

        def build(self, input_shape):
            self.H = input_shape[1]
            self.W = input_shape[2]
            self.C = input_shape[3]
            self.layer_norm = layers.LayerNormalization(epsilon=self.epsilon)
            self.drop_path = (DropPath(drop_path_prob=self.drop_path_prob) if self.drop_path_prob > 0.0
                              else layers.Activation("linear"))
            self.mlp = MLP(mlp_expand_ratio=self.mlp_expand_ratio, mlp_dropout_rate=self.mlp_dropout_rate)

        def get_shift_pad(self, x, mode):
            if mode == "left":
                offset_height, offset_width, target_height, target_width = 0, 0, 0, self.shift_pixel
            elif mode == "right":
                offset_height, offset_width, target_height, target_width = 0, self.shift_pixel, 0, self.shift_pixel
            elif mode == "up":
                offset_height, offset_width, target_height, target_width = 0, 0, self.shift_pixel, 0
            else:
                offset_height, offset_width, target_height, target_width = self.shift_pixel, 0, self.shift_pixel, 0
            crop = ops.image.crop_images(x, top_cropping=offset_height, left_cropping=offset_width,
                                         target_height=self.H - target_height, target_width=self.W - target_width)
            shift_pad = ops.image.pad_images(crop, top_padding=offset_height, left_padding=offset_width,
                                             target_height=self.H, target_width=self.W)
            return shift_pad

        def call(self, x, training=False):
            x_splits = ops.split(x, self.C // self.num_div, axis=-1)
            x_splits[0] = self.get_shift_pad(x_splits[0], mode="left")
            x_splits[1] = self.get_shift_pad(x_splits[1], mode="right")
            x_splits[2] = self.get_shift_pad(x_splits[2], mode="up")
            x_splits[3] = self.get_shift_pad(x_splits[3], mode="down")
            x = ops.concatenate(x_splits, axis=-1)
            shortcut = x
            x = shortcut + self.drop_path(self.mlp(self.layer_norm(x)), training=training)
            return x

    class PatchMerging(layers.Layer):
        def __init__(self, epsilon, **kwargs):
            super().__init__(**kwargs)
            self.epsilon = epsilon

        def build(self, input_shape):
            filters = 2 * input_shape[-1]
            self.reduction = layers.Conv2D(filters=filters, kernel_size=2, strides=2, padding="same",
                                           use_bias=False)
            self.layer_norm = layers.LayerNormalization(epsilon=self.epsilon)

        def call(self, x):
            x = self.layer_norm(x)
            x = self.reduction(x)
            return x

    class StackedShiftBlocks(layers.Layer):
        def __init__(self, epsilon, mlp_dropout_rate, num_shift_blocks, stochastic_depth_rate, is_merge,
                     num_div=12, shift_pixel=1, mlp_expand_ratio=2, **kwargs):
            super().__init__(**kwargs)
            self.epsilon = epsilon
            self.mlp_dropout_rate = mlp_dropout_rate
            self.num_shift_blocks = num_shift_blocks
            self.stochastic_depth_rate = stochastic_depth_rate
            self.is_merge = is_merge
            self.num_div = num_div
            self.shift_pixel = shift_pixel
            self.mlp_expand_ratio = mlp_expand_ratio

        def build(self, input_shapes):
            dpr = [x for x in np.linspace(start=0, stop=self.stochastic_depth_rate, num=self.num_shift_blocks)]
            self.shift_blocks = list()
            for num in range(self.num_shift_blocks):
                self.shift_blocks.append(ShiftViTBlock(
                    num_div=self.num_div, epsilon=self.epsilon, drop_path_prob=dpr[num],
                    mlp_dropout_rate=self.mlp_dropout_rate, shift_pixel=self.shift_pixel,
                    mlp_expand_ratio=self.mlp_expand_ratio))
            if self.is_merge:
                self.patch_merge = PatchMerging(epsilon=self.epsilon)

        def call(self, x, training=False):
            for shift_block in self.shift_blocks:
                x = shift_block(x, training=training)
            if self.is_merge:
                x = self.patch_merge(x)
            return x

    class ShiftViTModel(keras.Model):
        def __init__(self, data_augmentation, projected_dim, patch_size, num_shift_blocks_per_stages, epsilon,
                     mlp_dropout_rate, stochastic_depth_rate, num_div=12, shift_pixel=1, mlp_expand_ratio=2,
                     **kwargs):
            super().__init__(**kwargs)
            self.data_augmentation = data_augmentation
            self.patch_projection = layers.Conv2D(filters=projected_dim, kernel_size=patch_size,
                                                  strides=patch_size, padding="same")
            self.stages = list()
            for index, num_shift_blocks in enumerate(num_shift_blocks_per_stages):
                is_merge = index != len(num_shift_blocks_per_stages) - 1   # no patch merge after the last
                self.stages.append(StackedShiftBlocks(
                    epsilon=epsilon, mlp_dropout_rate=mlp_dropout_rate, num_shift_blocks=num_shift_blocks,
                    stochastic_depth_rate=stochastic_depth_rate, is_merge=is_merge, num_div=num_div,
                    shift_pixel=shift_pixel, mlp_expand_ratio=mlp_expand_ratio))
            self.global_avg_pool = layers.GlobalAveragePooling2D()

        def call(self, images, training=False):
            augmented_images = self.data_augmentation(images, training=training)
            x = self.patch_projection(augmented_images)
            for stage in self.stages:
                x = stage(x, training=training)
            return self.global_avg_pool(x)

    class WarmUpCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, lr_start, lr_max, warmup_steps, total_steps):
            super().__init__()
            self.lr_start = lr_start
            self.lr_max = lr_max
            self.warmup_steps = warmup_steps
            self.total_steps = total_steps
            self.pi = ops.array(np.pi)

        def __call__(self, step):
            if self.total_steps < self.warmup_steps:
                raise ValueError(f"Total number of steps {self.total_steps} must be"
                                 f"larger or equal to warmup steps {self.warmup_steps}.")
            cos_annealed_lr = ops.cos(self.pi * (ops.cast(step, "float32") - self.warmup_steps)
                                      / ops.cast(self.total_steps - self.warmup_steps, "float32"))
            learning_rate = 0.5 * self.lr_max * (1 + cos_annealed_lr)
            if self.warmup_steps > 0:
                if self.lr_max < self.lr_start:
                    raise ValueError(f"lr_start {self.lr_start} must be smaller or equal to lr_max {self.lr_max}.")
                slope = (self.lr_max - self.lr_start) / self.warmup_steps
                warmup_rate = slope * ops.cast(step, "float32") + self.lr_start
                learning_rate = ops.where(step < self.warmup_steps, warmup_rate, learning_rate)
            return ops.where(step > self.total_steps, 0.0, learning_rate)

    return {"ShiftViTModel": ShiftViTModel, "WarmUpCosine": WarmUpCosine}


def shiftvit(keras, data, init, tmp_path):
    (x_train, y_train), (x_val, y_val) = data
    layers = keras.layers
    classes = shiftvit_classes(keras)

    def get_augmentation_model():
        return keras.Sequential([layers.Resizing(RESIZE, RESIZE), layers.Rescaling(1 / 255.0)])

    def make_model():
        model = classes["ShiftViTModel"](
            data_augmentation=get_augmentation_model(), projected_dim=DIM, patch_size=PATCH,
            num_shift_blocks_per_stages=STAGES, epsilon=1e-5, mlp_dropout_rate=0.0, stochastic_depth_rate=0.0,
            num_div=NUM_DIV, shift_pixel=1, mlp_expand_ratio=2)
        model(x_train[:1])   # build: the subclassed model's weights exist after a first call
        return model

    model = make_model()
    init(model)
    out = {"predict": np.asarray(to_numpy(model.predict(x_val, verbose=0)))}

    batch_size, epochs = 4, 2
    total_steps = int((len(x_train) / batch_size) * epochs)
    warmup_steps = int(total_steps * 0.15)
    scheduled_lrs = classes["WarmUpCosine"](lr_start=1e-5, lr_max=1e-3, warmup_steps=warmup_steps,
                                            total_steps=total_steps)
    out["lrs"] = [float(to_numpy(scheduled_lrs(step))) for step in (0, 1, warmup_steps, total_steps - 1, total_steps + 1)]
    optimizer = keras.optimizers.AdamW(learning_rate=scheduled_lrs, weight_decay=1e-4)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                           keras.metrics.SparseTopKCategoricalAccuracy(5, name="top-5-accuracy")])
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val),
                        shuffle=False, verbose=0,
                        callbacks=[keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=5, mode="auto")])
    out["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    out["evaluate"] = np.array(model.evaluate(x_val, y_val, verbose=0))
    out["after_fit"] = np.asarray(to_numpy(model.predict(x_val, verbose=0)))
    out["path"] = str(workdir(keras, tmp_path) / "shiftvit.weights.h5")
    model.save_weights(out["path"])
    again = make_model()
    again.load_weights(out["path"])
    out["reloaded"] = np.asarray(to_numpy(again.predict(x_val, verbose=0)))
    return out


def _data():
    rng = np.random.default_rng(12)
    # float32 pixels: Resizing rounds uint8 images back to uint8, and a bilinear value at x.5 in one framework's
    # float order can be x.4999 in the other's, a whole grey level apart.
    return ((rng.integers(0, 256, (8, IMAGE, IMAGE, 3)).astype("float32"), rng.integers(0, CLASSES, (8, 1))),
            (rng.integers(0, 256, (4, IMAGE, IMAGE, 3)).astype("float32"), rng.integers(0, CLASSES, (4, 1))))


def test_shiftvit(tmp_path):
    data = _data()
    want, got = run_both(shiftvit, data, copy_weights=True, tmp_path=tmp_path)
    assert got["predict"].shape == (4, 2 * DIM)
    np.testing.assert_allclose(got["predict"], want["predict"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["lrs"], want["lrs"], rtol=1e-6, atol=1e-9)
    assert sorted(got["history"]) == sorted(want["history"])
    for key, values in want["history"].items():
        np.testing.assert_allclose(got["history"][key], values, rtol=1e-3, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(got["evaluate"], want["evaluate"], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(got["after_fit"], want["after_fit"], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(got["reloaded"], got["after_fit"], rtol=1e-6, atol=1e-6)
    classes = shiftvit_classes(real_keras)   # onnxforge's weights file in a Keras-built model
    again = classes["ShiftViTModel"](
        data_augmentation=real_keras.Sequential([real_keras.layers.Resizing(RESIZE, RESIZE),
                                                 real_keras.layers.Rescaling(1 / 255.0)]),
        projected_dim=DIM, patch_size=PATCH, num_shift_blocks_per_stages=STAGES, epsilon=1e-5,
        mlp_dropout_rate=0.0, stochastic_depth_rate=0.0, num_div=NUM_DIV)
    again(data[0][0][:1])
    again.load_weights(got["path"])
    np.testing.assert_allclose(to_numpy(again.predict(data[1][0], verbose=0)), got["reloaded"], rtol=1e-4,
                               atol=1e-5)

