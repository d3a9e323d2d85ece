"""ConvNeXt Tiny/Small/Base/Large/XLarge (Liu et al., 2022), as ``keras.applications.convnext`` builds them.

Each block is a 7x7 depthwise conv, a LayerNormalization, an inverted-bottleneck MLP (two ``Dense`` on the
channels, GELU between), a learned per-channel ``LayerScale`` and the residual add. The stem and the three
downsampling steps are nested ``Sequential`` models, as in Keras, so the weights nest the same way. The
ImageNet standardization is the model's first layer (``include_preprocessing``); ``preprocess_input``
passes its argument through. ``LayerScale`` and ``StochasticDepth`` are Keras's layers of the same names
(``keras.src.applications.convnext``), and .keras files name them as Keras does.

Example:
    >>> model = ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), include_top=False, pooling="avg")
    >>> model.output.shape, model.count_params()
    ((None, 768), 27820128)
"""
from __future__ import annotations

__all__ = ["ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge", "LayerScale",
           "StochasticDepth", "preprocess_input", "decode_predictions"]

from typing import Any

from .. import backend_config, layers
from ..graph import emit
from ..keras_objects import register_builtin_classes
from ..models import Model, Sequential
from ..tracing import current_trace
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/convnext/"
#: variant -> (sha256 of the file with the classifier, of the ``_notop`` file), as Keras checks them.
WEIGHTS_HASHES = {
    "convnext_tiny": ("8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff",
                      "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1"),
    "convnext_small": ("ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c",
                       "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab"),
    "convnext_base": ("52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6",
                      "40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45"),
    "convnext_large": ("070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6",
                       "96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd"),
    "convnext_xlarge": ("c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee",
                        "de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05"),
}
#: variant -> (blocks per stage, channels per stage); every variant defaults to 224x224 inputs.
MODEL_CONFIGS = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
}
EPSILON = 1e-6


class StochasticDepth(layers.Layer):
    """Drops the whole residual branch of a sample with probability ``drop_path_rate`` while training
    (the survivors scaled by ``1 / (1 - rate)``); the identity otherwise.

    Example:
        >>> StochasticDepth(0.1)(layers.Input(shape=(4, 4, 8))).shape
        (None, 4, 4, 8)
    """

    _keras_module = "keras.src.applications.convnext"

    def __init__(self, drop_path_rate: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.drop_path_rate = drop_path_rate

    def call(self, x, training=None):
        if not training or not self.drop_path_rate:
            return x
        b = x.builder
        # One uniform per sample: the input sliced to length 1 on every axis but the batch.
        axes = list(range(1, len(x.shape)))
        like = b.op("Slice", [x, emit.ints(b, [0] * len(axes)), emit.ints(b, [1] * len(axes)), emit.ints(b, axes)],
                    shape=(x.shape[0],) + (1,) * len(axes))
        keep_prob = 1.0 - float(self.drop_path_rate)
        keep = b.op("Floor", [current_trace().random_uniform(like) + keep_prob])
        return x * (keep * (1.0 / keep_prob))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "drop_path_rate": self.drop_path_rate}


class LayerScale(layers.Layer):
    """Multiplies the last axis by a learned vector of ``projection_dim`` scales, all ``init_values`` at first.

    Example:
        >>> layer = LayerScale(1e-6, 8)
        >>> layer(layers.Input(shape=(4, 4, 8))).shape, tuple(layer.weights[0].shape)
        ((None, 4, 4, 8), (8,))
    """

    _keras_module = "keras.src.applications.convnext"

    def __init__(self, init_values: float, projection_dim: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(self.projection_dim,), name="gamma",
                                     initializer={"class_name": "Constant", "config": {"value": self.init_values}})
        self.built = True

    def call(self, x):
        return x * self.gamma

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "init_values": self.init_values, "projection_dim": self.projection_dim}


# Keras's .keras files name these two by class: loading one must find onnxforge's.
register_builtin_classes({"LayerScale": LayerScale, "StochasticDepth": StochasticDepth})


def convnext_block(x: Any, dim: int, drop_path_rate: float, layer_scale_init_value: float | None,
                   prefix: str) -> Any:
    """Depthwise 7x7, LayerNormalization, Dense(4 dim), GELU, Dense(dim), LayerScale, residual add."""
    inputs = x
    x = layers.Conv2D(dim, 7, padding="same", groups=dim, name=f"{prefix}_depthwise_conv")(x)
    x = layers.LayerNormalization(epsilon=EPSILON, name=f"{prefix}_layernorm")(x)
    x = layers.Dense(4 * dim, name=f"{prefix}_pointwise_conv_1")(x)
    x = layers.Activation("gelu", name=f"{prefix}_gelu")(x)
    x = layers.Dense(dim, name=f"{prefix}_pointwise_conv_2")(x)
    if layer_scale_init_value is not None:
        x = LayerScale(layer_scale_init_value, dim, name=f"{prefix}_layer_scale")(x)
    if drop_path_rate:
        x = StochasticDepth(drop_path_rate, name=f"{prefix}_stochastic_depth")(x)
    else:
        x = layers.Activation("linear", name=f"{prefix}_identity")(x)
    return inputs + x   # an operator node, not a layer, as in Keras


def _downsampling(name: str, dims: tuple[int, ...]) -> list[Sequential]:
    """The stem (4x4 patchify conv, LayerNormalization) and the three 2x2 downsampling steps."""
    steps = [Sequential([layers.Conv2D(dims[0], 4, strides=4, name=f"{name}_stem_conv"),
                         layers.LayerNormalization(epsilon=EPSILON, name=f"{name}_stem_layernorm")],
                        name=f"{name}_stem")]
    for i in range(3):
        steps.append(Sequential([layers.LayerNormalization(epsilon=EPSILON, name=f"{name}_downsampling_layernorm_{i}"),
                                 layers.Conv2D(dims[i + 1], 2, strides=2, name=f"{name}_downsampling_conv_{i}")],
                                name=f"{name}_downsampling_block_{i}"))
    return steps


def _convnext(variant: str, include_top: bool, include_preprocessing: bool, weights: Any, input_tensor: Any,
              input_shape: Any, pooling: str | None, classes: int, classifier_activation: Any, name: str) -> Model:
    depths, dims = MODEL_CONFIGS[variant]
    weights_name = f"convnext_{variant}"
    if backend_config.image_data_format() == "channels_first":
        raise ValueError("ConvNeXt does not support the `channels_first` image data format. Received: "
                         "image_data_format='channels_first'; expected 'channels_last'.")
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    if weights == "imagenet" and weights_name not in name:
        # The weight files name their layers after the model: another name cannot match them.
        raise ValueError(f'Model name "{name}" does not match weights variant "{weights_name}". When using '
                         f'imagenet weights, model name must contain "{weights_name}". Received: name={name!r}')
    if include_top:
        imagenet_utils.validate_activation(classifier_activation, weights)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, 224, 32, "channels_last", include_top, weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)

    x = img_input
    if include_preprocessing and input_shape[-1] == 3:
        x = layers.Normalization(mean=[0.485 * 255, 0.456 * 255, 0.406 * 255],
                                 variance=[(0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2],
                                 name=f"{name}_prestem_normalization")(x)
    for i, step in enumerate(_downsampling(name, dims)):
        x = step(x)
        for j in range(depths[i]):
            # Keras builds every variant with a drop-path rate of 0 (an identity in place of StochasticDepth)
            # and a layer scale starting at 1e-6.
            x = convnext_block(x, dims[i], 0.0, 1e-6, f"{name}_stage_{i}_block_{j}")

    if include_top:
        x = layers.GlobalAveragePooling2D(name=f"{name}_head_gap")(x)
        x = layers.LayerNormalization(epsilon=EPSILON, name=f"{name}_head_layernorm")(x)
        x = layers.Dense(classes, activation=classifier_activation, name=f"{name}_head_dense")(x)
    else:
        x = imagenet_utils.pooled_features(x, pooling)
        x = layers.LayerNormalization(epsilon=EPSILON)(x)
    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    file_name = weights_name + (".h5" if include_top else "_notop.h5")
    imagenet_utils.load_application_weights(model, weights, file_name, BASE_WEIGHTS_PATH + file_name,
                                            WEIGHTS_HASHES[weights_name][0 if include_top else 1])
    return model


def ConvNeXtTiny(include_top: bool = True, include_preprocessing: bool = True, weights: Any = "imagenet",
                 input_tensor: Any = None, input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                 classifier_activation: Any = "softmax", name: str = "convnext_tiny") -> Model:
    """ConvNeXt-Tiny (224x224 by default), Keras's layers and weights; inputs are pixels in [0, 255].

    Args:
        include_top: end in the classifier (``<name>_head_gap``, ``_head_layernorm``, ``_head_dense``).
        include_preprocessing: standardize the pixels inside the model (the ImageNet weights expect it).
        weights: ``None``, ``"imagenet"`` (Keras's cached file) or the path of a weights file.
        input_tensor: a functional tensor to build the model on.
        input_shape: ``(height, width, 3)``, each side at least 32; fixed by ``include_top`` with ImageNet.
        pooling: without the top: ``None`` (the feature map), ``"avg"`` or ``"max"``, then a LayerNormalization.
        classes, classifier_activation: the classifier's size and activation.
        name: the model's name (with ImageNet weights it must contain ``convnext_tiny``).

    Example:
        >>> ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), include_top=False).output.shape
        (None, 1, 1, 768)
    """
    return _convnext("tiny", include_top, include_preprocessing, weights, input_tensor, input_shape, pooling,
                     classes, classifier_activation, name)


def _variant(variant: str) -> Any:
    def builder(include_top: bool = True, include_preprocessing: bool = True, weights: Any = "imagenet",
                input_tensor: Any = None, input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str = f"convnext_{variant}") -> Model:
        return _convnext(variant, include_top, include_preprocessing, weights, input_tensor, input_shape, pooling,
                         classes, classifier_activation, name)

    builder.__name__ = builder.__qualname__ = f"ConvNeXt{'XLarge' if variant == 'xlarge' else variant.title()}"
    builder.__doc__ = (f"ConvNeXt-{variant.title()} (224x224 by default); arguments as :func:`ConvNeXtTiny`.\n\n"
                       f"    Example:\n        >>> model = {builder.__name__}(weights=None)  # doctest: +SKIP\n")
    return builder


ConvNeXtSmall = _variant("small")
ConvNeXtBase = _variant("base")
ConvNeXtLarge = _variant("large")
ConvNeXtXLarge = _variant("xlarge")


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """Returns ``x`` unchanged: ConvNeXt standardizes its inputs itself (kept for Keras's API).

    Example:
        >>> preprocess_input([255.0])
        [255.0]
    """
    return x
