"""keras.io's TensorFlow-flavoured vision examples as ``program(tf, keras) -> {name: array}``, run as written
under TensorFlow (``tf_oracle.py``: Keras 3 on its TensorFlow backend) and under ``import onnxforge as tf``.

Sizes are shrunk (small images, few filters, a few steps); weights are seeded from NumPy
(``generative_programs.seeded_weights``) so both frameworks start from the same point, and image files are
written by each run from the same seeded arrays.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

try:
    from .generative_programs import seeded_weights
except ImportError:   # run by tf_oracle.py as a top-level module
    from generative_programs import seeded_weights


def _low_light_pngs(folder, n, seed):
    """``n`` dim 36x40 RGB PNGs (a scene at 5-30% brightness) in ``folder``; their sorted paths."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:36, 0:40]
    paths = []
    for i in range(n):
        scene = 0.5 + 0.5 * np.sin(xx[..., None] / rng.uniform(3, 8) + yy[..., None] / rng.uniform(3, 8) * np.array([1, 2, 3]))
        image = (scene * rng.uniform(0.05, 0.3) * 255).astype("uint8")
        path = os.path.join(folder, f"{i:03d}.png")
        Image.fromarray(image).save(path)
        paths.append(path)
    return sorted(paths)


def zero_dce(tf, keras, epochs=2):
    """keras.io "Zero-DCE for low-light image enhancement", shrunk: 32x32 images, 8 filters, 8 + 4 images."""
    from PIL import Image

    layers = keras.layers
    IMAGE_SIZE = 32
    BATCH_SIZE = 4
    MAX_TRAIN_IMAGES = 8
    FILTERS = 8
    folder = tempfile.mkdtemp()
    low_light = _low_light_pngs(folder, 12, seed=3)

    def load_data(image_path):
        image = tf.io.read_file(image_path)
        image = tf.image.decode_png(image, channels=3)
        image = tf.image.resize(images=image, size=[IMAGE_SIZE, IMAGE_SIZE])
        image = image / 255.0
        return image

    def data_generator(low_light_images):
        dataset = tf.data.Dataset.from_tensor_slices((low_light_images))
        dataset = dataset.map(load_data, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(BATCH_SIZE, drop_remainder=True)
        return dataset

    train_dataset = data_generator(low_light[:MAX_TRAIN_IMAGES])
    val_dataset = data_generator(low_light[MAX_TRAIN_IMAGES:])

    def build_dce_net():
        input_img = keras.Input(shape=[None, None, 3])
        conv1 = layers.Conv2D(FILTERS, (3, 3), strides=(1, 1), activation="relu", padding="same")(input_img)
        conv2 = layers.Conv2D(FILTERS, (3, 3), strides=(1, 1), activation="relu", padding="same")(conv1)
        conv3 = layers.Conv2D(FILTERS, (3, 3), strides=(1, 1), activation="relu", padding="same")(conv2)
        conv4 = layers.Conv2D(FILTERS, (3, 3), strides=(1, 1), activation="relu", padding="same")(conv3)
        int_con1 = layers.Concatenate(axis=-1)([conv4, conv3])
        conv5 = layers.Conv2D(FILTERS, (3, 3), strides=(1, 1), activation="relu", padding="same")(int_con1)
        int_con2 = layers.Concatenate(axis=-1)([conv5, conv2])
        conv6 = layers.Conv2D(FILTERS, (3, 3), strides=(1, 1), activation="relu", padding="same")(int_con2)
        int_con3 = layers.Concatenate(axis=-1)([conv6, conv1])
        x_r = layers.Conv2D(24, (3, 3), strides=(1, 1), activation="tanh", padding="same")(int_con3)
        return keras.Model(inputs=input_img, outputs=x_r)

    def color_constancy_loss(x):
        mean_rgb = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        mr, mg, mb = mean_rgb[:, :, :, 0], mean_rgb[:, :, :, 1], mean_rgb[:, :, :, 2]
        d_rg = tf.square(mr - mg)
        d_rb = tf.square(mr - mb)
        d_gb = tf.square(mb - mg)
        return tf.sqrt(tf.square(d_rg) + tf.square(d_rb) + tf.square(d_gb))

    def exposure_loss(x, mean_val=0.6):
        x = tf.reduce_mean(x, axis=3, keepdims=True)
        mean = tf.nn.avg_pool2d(x, ksize=16, strides=16, padding="VALID")
        return tf.reduce_mean(tf.square(mean - mean_val))

    def illumination_smoothness_loss(x):
        batch_size = tf.shape(x)[0]
        h_x = tf.shape(x)[1]
        w_x = tf.shape(x)[2]
        count_h = (tf.shape(x)[2] - 1) * tf.shape(x)[3]
        count_w = tf.shape(x)[2] * (tf.shape(x)[3] - 1)
        h_tv = tf.reduce_sum(tf.square((x[:, 1:, :, :] - x[:, : h_x - 1, :, :])))
        w_tv = tf.reduce_sum(tf.square((x[:, :, 1:, :] - x[:, :, : w_x - 1, :])))
        batch_size = tf.cast(batch_size, dtype=tf.float32)
        count_h = tf.cast(count_h, dtype=tf.float32)
        count_w = tf.cast(count_w, dtype=tf.float32)
        return 2 * (h_tv / count_h + w_tv / count_w) / batch_size

    class SpatialConsistencyLoss(keras.losses.Loss):
        def __init__(self, **kwargs):
            super().__init__(reduction="none")
            self.left_kernel = tf.constant([[[[0, 0, 0]], [[-1, 1, 0]], [[0, 0, 0]]]], dtype=tf.float32)
            self.right_kernel = tf.constant([[[[0, 0, 0]], [[0, 1, -1]], [[0, 0, 0]]]], dtype=tf.float32)
            self.up_kernel = tf.constant([[[[0, -1, 0]], [[0, 1, 0]], [[0, 0, 0]]]], dtype=tf.float32)
            self.down_kernel = tf.constant([[[[0, 0, 0]], [[0, 1, 0]], [[0, -1, 0]]]], dtype=tf.float32)

        def call(self, y_true, y_pred):
            original_mean = tf.reduce_mean(y_true, 3, keepdims=True)
            enhanced_mean = tf.reduce_mean(y_pred, 3, keepdims=True)
            original_pool = tf.nn.avg_pool2d(original_mean, ksize=4, strides=4, padding="VALID")
            enhanced_pool = tf.nn.avg_pool2d(enhanced_mean, ksize=4, strides=4, padding="VALID")
            d_original_left = tf.nn.conv2d(original_pool, self.left_kernel, strides=[1, 1, 1, 1], padding="SAME")
            d_original_right = tf.nn.conv2d(original_pool, self.right_kernel, strides=[1, 1, 1, 1], padding="SAME")
            d_original_up = tf.nn.conv2d(original_pool, self.up_kernel, strides=[1, 1, 1, 1], padding="SAME")
            d_original_down = tf.nn.conv2d(original_pool, self.down_kernel, strides=[1, 1, 1, 1], padding="SAME")
            d_enhanced_left = tf.nn.conv2d(enhanced_pool, self.left_kernel, strides=[1, 1, 1, 1], padding="SAME")
            d_enhanced_right = tf.nn.conv2d(enhanced_pool, self.right_kernel, strides=[1, 1, 1, 1], padding="SAME")
            d_enhanced_up = tf.nn.conv2d(enhanced_pool, self.up_kernel, strides=[1, 1, 1, 1], padding="SAME")
            d_enhanced_down = tf.nn.conv2d(enhanced_pool, self.down_kernel, strides=[1, 1, 1, 1], padding="SAME")
            d_left = tf.square(d_original_left - d_enhanced_left)
            d_right = tf.square(d_original_right - d_enhanced_right)
            d_up = tf.square(d_original_up - d_enhanced_up)
            d_down = tf.square(d_original_down - d_enhanced_down)
            return d_left + d_right + d_up + d_down

    class ZeroDCE(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dce_model = build_dce_net()

        def compile(self, learning_rate, **kwargs):
            super().compile(**kwargs)
            self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
            self.spatial_constancy_loss = SpatialConsistencyLoss(reduction="none")

        def get_enhanced_image(self, data, output):
            r1 = output[:, :, :, :3]
            r2 = output[:, :, :, 3:6]
            r3 = output[:, :, :, 6:9]
            r4 = output[:, :, :, 9:12]
            r5 = output[:, :, :, 12:15]
            r6 = output[:, :, :, 15:18]
            r7 = output[:, :, :, 18:21]
            r8 = output[:, :, :, 21:24]
            x = data + r1 * (tf.square(data) - data)
            x = x + r2 * (tf.square(x) - x)
            x = x + r3 * (tf.square(x) - x)
            enhanced_image = x + r4 * (tf.square(x) - x)
            x = enhanced_image + r5 * (tf.square(enhanced_image) - enhanced_image)
            x = x + r6 * (tf.square(x) - x)
            x = x + r7 * (tf.square(x) - x)
            enhanced_image = x + r8 * (tf.square(x) - x)
            return enhanced_image

        def call(self, data):
            dce_net_output = self.dce_model(data)
            return self.get_enhanced_image(data, dce_net_output)

        def compute_losses(self, data, output):
            enhanced_image = self.get_enhanced_image(data, output)
            loss_illumination = 200 * illumination_smoothness_loss(output)
            loss_spatial_constancy = tf.reduce_mean(self.spatial_constancy_loss(enhanced_image, data))
            loss_color_constancy = 5 * tf.reduce_mean(color_constancy_loss(enhanced_image))
            loss_exposure = 10 * tf.reduce_mean(exposure_loss(enhanced_image))
            total_loss = loss_illumination + loss_spatial_constancy + loss_color_constancy + loss_exposure
            return {
                "total_loss": total_loss,
                "illumination_smoothness_loss": loss_illumination,
                "spatial_constancy_loss": loss_spatial_constancy,
                "color_constancy_loss": loss_color_constancy,
                "exposure_loss": loss_exposure,
            }

        def train_step(self, data):
            with tf.GradientTape() as tape:
                output = self.dce_model(data)
                losses = self.compute_losses(data, output)
            gradients = tape.gradient(losses["total_loss"], self.dce_model.trainable_weights)
            self.optimizer.apply_gradients(zip(gradients, self.dce_model.trainable_weights))
            return losses

        def test_step(self, data):
            output = self.dce_model(data)
            return self.compute_losses(data, output)

    zero_dce_model = ZeroDCE()
    seeded_weights(zero_dce_model.dce_model, 5)
    first_batch = next(iter(train_dataset))
    out = {"batch": np.asarray(first_batch), "before": np.asarray(zero_dce_model(first_batch))}
    zero_dce_model.compile(learning_rate=1e-3)
    history = zero_dce_model.fit(train_dataset, validation_data=val_dataset, epochs=epochs, verbose=0)
    for key, values in history.history.items():
        out[f"history_{key}"] = np.asarray(values, "float64")

    def infer(original_image):
        image = keras.utils.img_to_array(original_image)
        image = image.astype("float32") / 255.0
        image = np.expand_dims(image, axis=0)
        output_image = zero_dce_model(image)
        output_image = tf.cast((output_image[0, :, :, :] * 255), dtype=np.uint8)
        output_image = Image.fromarray(output_image.numpy())
        return output_image

    enhanced = infer(Image.open(low_light[-1]))
    out["enhanced"] = np.asarray(enhanced)
    out["after"] = np.asarray(zero_dce_model(first_batch))
    return out


def integrated_gradients(tf, keras, num_steps=8, num_runs=2):
    """keras.io "Model interpretability with Integrated Gradients", shrunk: the page's ImageNet Xception is a
    small seeded softmax CNN here (24x24 images, 5 classes), 8 interpolation steps."""
    from PIL import Image

    layers = keras.layers
    xception = keras.applications.xception
    img_size = (24, 24, 3)
    rng = np.random.default_rng(11)
    folder = tempfile.mkdtemp()
    img_path = os.path.join(folder, "elephant.png")
    Image.fromarray(rng.integers(0, 256, (30, 28, 3)).astype("uint8")).save(img_path)

    inputs = keras.Input(img_size)
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.SeparableConv2D(8, 3, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(5, activation="softmax")(x))
    seeded_weights(model, 9)

    def get_img_array(img_path, size=(24, 24)):
        img = keras.preprocessing.image.load_img(img_path, target_size=size)
        array = keras.preprocessing.image.img_to_array(img)
        array = np.expand_dims(array, axis=0)
        return array

    def get_gradients(img_input, top_pred_idx):
        images = tf.cast(img_input, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(images)
            preds = model(images)
            top_class = preds[:, top_pred_idx]
        grads = tape.gradient(top_class, images)
        return grads

    def get_integrated_gradients(img_input, top_pred_idx, baseline=None, num_steps=50):
        if baseline is None:
            baseline = np.zeros(img_size).astype(np.float32)
        else:
            baseline = baseline.astype(np.float32)
        img_input = img_input.astype(np.float32)
        interpolated_image = [baseline + (step / num_steps) * (img_input - baseline) for step in range(num_steps + 1)]
        interpolated_image = np.array(interpolated_image).astype(np.float32)
        interpolated_image = xception.preprocess_input(interpolated_image)
        grads = []
        for i, img in enumerate(interpolated_image):
            img = tf.expand_dims(img, axis=0)
            grad = get_gradients(img, top_pred_idx=top_pred_idx)
            grads.append(grad[0])
        grads = tf.convert_to_tensor(grads, dtype=tf.float32)
        grads = (grads[:-1] + grads[1:]) / 2.0
        avg_grads = tf.reduce_mean(grads, axis=0)
        integrated_grads = (img_input - baseline) * avg_grads
        return integrated_grads

    def random_baseline_integrated_gradients(img_input, top_pred_idx, num_steps=50, num_runs=2):
        integrated_grads = []
        for run in range(num_runs):
            baseline = rng.random(img_size) * 255
            igrads = get_integrated_gradients(img_input=img_input, top_pred_idx=top_pred_idx, baseline=baseline,
                                              num_steps=num_steps)
            integrated_grads.append(igrads)
        integrated_grads = tf.convert_to_tensor(integrated_grads)
        return tf.reduce_mean(integrated_grads, axis=0)

    def process_grads(image, attributions, clip_above_percentile=99.9):
        """The page's ``GradVisualizer.process_grads`` (positive polarity, linear transformation, overlay)."""
        attributions = np.clip(attributions, 0, 1)
        attributions = np.average(attributions, axis=2)
        flat = np.sort(np.abs(attributions.flatten()))[::-1]
        cum_sum = 100.0 * np.cumsum(flat) / np.sum(flat)
        m = flat[np.where(cum_sum >= 100 - clip_above_percentile)[0][0]]
        e = np.min(attributions)
        transformed = (np.abs(attributions) - e) / (m - e) * np.sign(attributions)
        transformed = np.clip(transformed * (transformed >= 0.0), 0.0, 1.0)
        return np.clip(np.expand_dims(transformed, 2) * [0, 255, 0] * 0.8 + image, 0, 255)

    img = get_img_array(img_path)
    orig_img = np.copy(img[0]).astype(np.uint8)
    img_processed = tf.cast(xception.preprocess_input(img), dtype=tf.float32)
    preds = model.predict(img_processed, verbose=0)
    top_pred_idx = tf.argmax(preds[0])
    grads = get_gradients(img_processed, top_pred_idx=top_pred_idx)
    igrads = random_baseline_integrated_gradients(np.copy(orig_img), top_pred_idx=top_pred_idx, num_steps=num_steps,
                                                  num_runs=num_runs)
    return {"preds": preds, "top": np.asarray(top_pred_idx), "grads": grads[0].numpy(), "igrads": igrads.numpy(),
            "overlay": process_grads(orig_img, igrads.numpy(), clip_above_percentile=99)}
