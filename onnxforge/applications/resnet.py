"""``keras.applications.resnet``: ResNet50, ResNet101 and ResNet152 (He et al., 2015), and the residual
stacks ResNetV2 shares (``resnet_v2.py``).

Layer names, order and weights follow Keras 3.15, so Keras's ImageNet files
(``resnet50_weights_tf_dim_ordering_tf_kernels.h5``...) and Keras-saved weights load. Inputs are expected
in "caffe" preprocessing: RGB to BGR, minus ImageNet's channel means (``preprocess_input``).

Example:
    >>> from onnxforge.applications import resnet
    >>> model = resnet.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    >>> model.output_shape
    (None, 2048)
"""
from __future__ import annotations

__all__ = ["ResNet50", "ResNet101", "ResNet152", "preprocess_input", "decode_predictions"]

from typing import Any, Callable

from .. import backend_config, layers
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
# Keras's md5 of each (with top, without top) file.
WEIGHTS_HASHES = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
}
_EPS = 1.001e-5   # the epsilon the original Caffe/TF ResNets were trained with


def _bn_axis() -> int:
    return 3 if backend_config.image_data_format() == "channels_last" else 1


def _bn(x: Any, name: str) -> Any:
    return layers.BatchNormalization(axis=_bn_axis(), epsilon=_EPS, name=name)(x)


def ResNet(stack_fn: Callable[[Any], Any], preact: bool, use_bias: bool, include_top: bool = True,
           weights: Any = "imagenet", input_tensor: Any = None, input_shape: Any = None, pooling: str | None = None,
           classes: int = 1000, classifier_activation: Any = "softmax", name: str = "resnet",
           weights_name: str | None = None) -> Model:
    """The ResNet skeleton around ``stack_fn`` (the residual stages): the 7x7 stem and max pool, then the
    stages, then (``preact``, V2) a last BatchNorm + ReLU, then the classifier or pooling.

    ``weights_name`` names the ImageNet file (``WEIGHTS_HASHES`` holds its checksums).

    Example:
        >>> m = ResNet(lambda x: stack_residual_blocks_v1(x, 4, 1, name="conv2"), False, True, weights=None,
        ...            include_top=False, input_shape=(32, 32, 3))
        >>> m.output_shape
        (None, 4, 4, 16)
    """
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size=224, min_size=32,
                                                    data_format=backend_config.image_data_format(),
                                                    require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)

    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
    if not preact:
        x = _bn(x, "conv1_bn")
        x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = stack_fn(x)
    if preact:   # V2 blocks end on their addition: the normalization of the last one comes here
        x = _bn(x, "post_bn")
        x = layers.Activation("relu", name="post_relu")(x)

    x = imagenet_utils.top_or_pooled(x, include_top, classes, classifier_activation, weights, pooling, named=True)

    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    file_name = f"{weights_name}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    file_hash = WEIGHTS_HASHES.get(weights_name, (None, None))[0 if include_top else 1]
    imagenet_utils.load_application_weights(model, weights, file_name, BASE_WEIGHTS_PATH + file_name, file_hash)
    return model


def residual_block_v1(x: Any, filters: int, kernel_size: int = 3, stride: int = 1, conv_shortcut: bool = True,
                      name: str | None = None) -> Any:
    """The bottleneck block of ResNet v1: 1x1 (strided), ``kernel_size``, 1x1 to ``4 * filters``, each
    BatchNorm'd, added to the (projected) input, then ReLU."""
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_2_conv")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(_bn(x, f"{name}_2_bn"))
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = _bn(x, f"{name}_3_bn")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def stack_residual_blocks_v1(x: Any, filters: int, blocks: int, stride1: int = 2, name: str | None = None) -> Any:
    """``blocks`` v1 blocks; the first projects its shortcut and strides by ``stride1``."""
    x = residual_block_v1(x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = residual_block_v1(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def residual_block_v2(x: Any, filters: int, kernel_size: int = 3, stride: int = 1, conv_shortcut: bool = False,
                      name: str | None = None) -> Any:
    """The pre-activation block of ResNet v2: BatchNorm + ReLU first, the stride on the 3x3 conv, the
    shortcut a 1x1 projection of the pre-activation, a 1x1 max pool (striding) or the input itself."""
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(_bn(x, f"{name}_preact_bn"))
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    else:
        # Keras leaves this pool unnamed: it gets the automatic max_pooling2d_N name (it has no weights)
        shortcut = layers.MaxPooling2D(1, strides=stride)(x) if stride > 1 else x
    x = layers.Conv2D(filters, 1, strides=1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, kernel_size, strides=stride, use_bias=False, name=f"{name}_2_conv")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(_bn(x, f"{name}_2_bn"))
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return layers.Add(name=f"{name}_out")([shortcut, x])


def stack_residual_blocks_v2(x: Any, filters: int, blocks: int, stride1: int = 2, name: str | None = None) -> Any:
    """``blocks`` v2 blocks; the first projects its shortcut, the last strides by ``stride1``."""
    x = residual_block_v2(x, filters, conv_shortcut=True, name=f"{name}_block1")
    for i in range(2, blocks):
        x = residual_block_v2(x, filters, name=f"{name}_block{i}")
    return residual_block_v2(x, filters, stride=stride1, name=f"{name}_block{blocks}")


def _v1_stages(blocks: tuple[int, int, int, int]) -> Callable[[Any], Any]:
    def stack_fn(x: Any) -> Any:
        x = stack_residual_blocks_v1(x, 64, blocks[0], stride1=1, name="conv2")
        x = stack_residual_blocks_v1(x, 128, blocks[1], name="conv3")
        x = stack_residual_blocks_v1(x, 256, blocks[2], name="conv4")
        return stack_residual_blocks_v1(x, 512, blocks[3], name="conv5")
    return stack_fn


def ResNet50(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None, input_shape: Any = None,
             pooling: str | None = None, classes: int = 1000, classifier_activation: Any = "softmax",
             name: str = "resnet50") -> Model:
    """ResNet50 (3, 4, 6, 3 bottleneck blocks), ImageNet weights from Keras's cache by default.

    Args:
        include_top: end with the 1000-way (``classes``) classifier; else the feature map, or pooled by
            ``pooling`` (``None``, ``"avg"``, ``"max"``).
        weights: ``"imagenet"``, ``None`` (random) or the path of a weights file.
        input_tensor: a tensor to build the model on, instead of a new ``Input``.
        input_shape: ``(height, width, 3)``, at least 32x32; only free when ``include_top=False``
            (the ImageNet top needs 224x224).
        classes, classifier_activation: the classifier's size and activation (``None`` for logits).
        name: the model's name.

    Example:
        >>> ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape
        (None, 1, 1, 2048)
    """
    return ResNet(_v1_stages((3, 4, 6, 3)), False, True, include_top, weights, input_tensor, input_shape,
                  pooling, classes, classifier_activation, name=name, weights_name="resnet50")


def ResNet101(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
              input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
              classifier_activation: Any = "softmax", name: str = "resnet101") -> Model:
    """ResNet101 (3, 4, 23, 3 bottleneck blocks); arguments as in ``ResNet50``.

    Example:
        >>> ResNet101(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape  # doctest: +SKIP
        (None, 1, 1, 2048)
    """
    return ResNet(_v1_stages((3, 4, 23, 3)), False, True, include_top, weights, input_tensor, input_shape,
                  pooling, classes, classifier_activation, name=name, weights_name="resnet101")


def ResNet152(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
              input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
              classifier_activation: Any = "softmax", name: str = "resnet152") -> Model:
    """ResNet152 (3, 8, 36, 3 bottleneck blocks); arguments as in ``ResNet50``.

    Example:
        >>> ResNet152(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape  # doctest: +SKIP
        (None, 1, 1, 2048)
    """
    return ResNet(_v1_stages((3, 8, 36, 3)), False, True, include_top, weights, input_tensor, input_shape,
                  pooling, classes, classifier_activation, name=name, weights_name="resnet152")


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ResNet's "caffe" preprocessing: RGB to BGR, minus ImageNet's channel means, no scaling.

    Example:
        >>> import numpy as np
        >>> [round(float(v), 3) for v in preprocess_input(np.zeros((1, 1, 1, 3), np.float32))[0, 0, 0]]
        [-103.939, -116.779, -123.68]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")
