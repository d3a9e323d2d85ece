"""What every ``keras.applications`` builder shares: argument checks, ImageNet preprocessing and decoding,
and loading pretrained weights from Keras's cache.

onnxforge downloads nothing: ``weights="imagenet"`` reads the file Keras itself would have downloaded, from
``~/.keras/models/`` (or ``$KERAS_HOME/models``), and says where to put it when it is missing; any other
string is a path to a weights file (``.weights.h5``, ``.keras`` or a legacy ``.h5``).

Example:
    >>> import numpy as np
    >>> x = np.full((1, 2, 2, 3), 255.0, np.float32)
    >>> preprocess_input(x.copy(), mode="tf")[0, 0, 0].tolist()
    [1.0, 1.0, 1.0]
    >>> obtain_input_shape(None, 224, 32, "channels_last", require_flatten=False)
    (None, None, 3)
"""
from __future__ import annotations

__all__ = ["preprocess_input", "decode_predictions", "obtain_input_shape", "correct_pad", "validate_activation",
           "check_weights_argument", "load_application_weights", "input_layer", "model_inputs", "classifier_top",
           "pooled_features", "top_or_pooled",
           "CLASS_INDEX_PATH"]

import json
import os
import warnings
from typing import Any

import numpy as np

from .. import activations, backend_config, layers, ops
from ..utils import get_file

CLASS_INDEX_PATH = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
_CLASS_INDEX: dict[str, list[str]] | None = None
_CAFFE_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------------------ preprocessing
def preprocess_input(x: Any, data_format: str | None = None, mode: str = "caffe") -> Any:
    """Scale a batch of RGB images (values in 0-255) the way an ImageNet model was trained.

    ``mode``: ``"caffe"`` (RGB to BGR, minus the ImageNet channel means, no scaling), ``"tf"`` (to [-1, 1]),
    ``"torch"`` (to [0, 1], then ImageNet's channel means and standard deviations). A float numpy array is
    changed in place and returned, as Keras does; an integer one is converted to float32 first; a tensor
    (symbolic, or an eager result) gives a new tensor.
    """
    if mode not in ("caffe", "tf", "torch"):
        raise ValueError(f"Expected mode to be one of `caffe`, `tf` or `torch`. Received: mode={mode}")
    if data_format is None:
        data_format = backend_config.image_data_format()
    elif data_format not in ("channels_first", "channels_last"):
        raise ValueError("Expected data_format to be one of `channels_first` or `channels_last`. "
                         f"Received: data_format={data_format}")
    if isinstance(x, np.ndarray) and type(x) is np.ndarray:
        return _preprocess_array(x, data_format, mode)
    return _preprocess_tensor(x, data_format, mode)


def _channel_shape(ndim: int, data_format: str) -> tuple[int, ...]:
    """Where a per-channel constant broadcasts against an image batch (or one image)."""
    if data_format == "channels_last":
        return (1,) * (ndim - 1) + (3,)
    return (3, 1, 1) if ndim == 3 else (1, 3) + (1,) * (ndim - 2)


def _channel_axis(ndim: int, data_format: str) -> int:
    return -1 if data_format == "channels_last" else (0 if ndim == 3 else 1)


def _preprocess_array(x: np.ndarray, data_format: str, mode: str) -> np.ndarray:
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(backend_config.floatx())
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    if mode == "torch":
        x /= 255.0
        mean, std = _TORCH_MEAN, _TORCH_STD
    else:
        x = np.flip(x, axis=_channel_axis(x.ndim, data_format))   # RGB -> BGR (a view, like Keras's slicing)
        mean, std = _CAFFE_MEAN, None
    shape = _channel_shape(x.ndim, data_format)
    x -= np.asarray(mean, x.dtype).reshape(shape)
    if std is not None:
        x /= np.asarray(std, x.dtype).reshape(shape)
    return x


def _preprocess_tensor(x: Any, data_format: str, mode: str) -> Any:
    ndim = len(x.shape)
    if mode == "tf":
        return x / 127.5 - 1.0
    dtype = ops.dtype(x)
    if mode == "torch":
        x = x / 255.0
        mean, std = _TORCH_MEAN, _TORCH_STD
    else:
        x = ops.flip(x, axis=_channel_axis(ndim, data_format))
        mean, std = _CAFFE_MEAN, None
    shape = _channel_shape(ndim, data_format)
    x = x - np.asarray(mean, dtype).reshape(shape)
    if std is not None:
        x = x / np.asarray(std, dtype).reshape(shape)
    return x


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The ``top`` ImageNet classes of each row of ``preds`` (``(samples, 1000)``), best first, as
    ``(class_id, description, score)``; the class index is read from Keras's cache."""
    global _CLASS_INDEX
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError("`decode_predictions` expects a batch of predictions (i.e. a 2D array of shape "
                         f"(samples, 1000)). Received array with shape: {preds.shape}")
    if _CLASS_INDEX is None:
        path = get_file("imagenet_class_index.json", CLASS_INDEX_PATH, cache_subdir="models",
                        file_hash="c2c37ea517e94d9795004a39431a14cb")
        with open(path) as fh:
            _CLASS_INDEX = json.load(fh)
    out = []
    for row in preds:
        best = row.argsort()[-top:][::-1]
        out.append(sorted((tuple(_CLASS_INDEX[str(i)]) + (row[i],) for i in best), key=lambda t: t[2], reverse=True))
    return out


# ------------------------------------------------------------------------------------------ arguments
def obtain_input_shape(input_shape: Any, default_size: int, min_size: int, data_format: str, require_flatten: bool,
                       weights: Any = None) -> tuple:
    """The model's input shape: ``input_shape`` checked against ``min_size`` and the weights, or the default
    (``(default_size, default_size, 3)`` when the top needs a fixed size, else free height and width)."""
    first = data_format == "channels_first"
    if input_shape is not None:
        input_shape = tuple(input_shape)
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        channels = input_shape[0] if first else input_shape[-1]
        if channels not in (1, 3):
            warnings.warn("This model usually expects 1 or 3 input channels. However, it was passed an "
                          f"input_shape with {channels} input channels.", stacklevel=3)
        default_shape = (channels, default_size, default_size) if first else (default_size, default_size, channels)
    else:
        default_shape = (3, default_size, default_size) if first else (default_size, default_size, 3)
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and input_shape != default_shape:
            raise ValueError("When setting `include_top=True` and loading `imagenet` weights, `input_shape` "
                             f"should be {default_shape}.  Received: input_shape={input_shape}")
        return default_shape
    if input_shape:
        if len(input_shape) != 3:
            raise ValueError(f"`input_shape` must be a tuple of three integers. Received: input_shape={input_shape}")
        channels, sizes = (input_shape[0], input_shape[1:]) if first else (input_shape[-1], input_shape[:2])
        if channels != 3 and weights == "imagenet":
            raise ValueError(f"The input must have 3 channels; Received `input_shape={input_shape}`")
        if any(s is not None and s < min_size for s in sizes):
            raise ValueError(f"Input size must be at least {min_size}x{min_size}; Received: "
                             f"input_shape={input_shape}")
    elif require_flatten:
        input_shape = default_shape
    else:
        input_shape = (3, None, None) if first else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError("If `include_top` is True, you should specify a static `input_shape`. Received: "
                         f"input_shape={input_shape}")
    return input_shape


def correct_pad(inputs: Any, kernel_size: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """The ZeroPadding2D padding that makes a stride-2 ``kernel_size`` conv match TensorFlow's 'same'."""
    axis = 2 if backend_config.image_data_format() == "channels_first" else 1
    size = tuple(inputs.shape[axis:axis + 2])
    kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    half = (kernel[0] // 2, kernel[1] // 2)
    return (half[0] - adjust[0], half[0]), (half[1] - adjust[1], half[1])


def validate_activation(classifier_activation: Any, weights: Any) -> None:
    """Pretrained weights come with a softmax (or no) classifier activation only."""
    if weights is None:
        return
    fn = activations.get(classifier_activation)
    if fn not in (activations.get("softmax"), activations.get(None)):
        raise ValueError("Only `None` and `softmax` activations are allowed for the `classifier_activation` "
                         "argument when using pretrained weights, with `include_top=True`; Received: "
                         f"classifier_activation={classifier_activation}")


def check_weights_argument(weights: Any, include_top: bool, classes: int) -> None:
    """``weights`` is ``None``, ``"imagenet"`` or the path of an existing file; ImageNet's top has 1000 classes."""
    if not (weights in ("imagenet", None) or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights))):
        raise ValueError("The `weights` argument should be either `None` (random initialization), 'imagenet' "
                         "(pre-training on ImageNet), or the path to the weights file to be loaded. Received: "
                         f"weights={weights}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError('If using `weights="imagenet"` with `include_top=True`, `classes` should be 1000. '
                         f"Received classes={classes}")


def load_application_weights(model: Any, weights: Any, file_name: str, origin: str,
                             file_hash: str | None = None) -> None:
    """Load ``weights`` into ``model``: ``"imagenet"`` from Keras's cache (``file_name``, which Keras downloads
    from ``origin``), a path from that file; ``None`` leaves the random initialization."""
    if weights is None:
        return
    if weights == "imagenet":
        path = get_file(file_name, origin, cache_subdir="models", file_hash=file_hash)
    else:
        path = os.fspath(weights)
    model.load_weights(path)


# ------------------------------------------------------------------------------------------ shared layers
def input_layer(input_tensor: Any, input_shape: tuple) -> Any:
    """The model's input: a new ``Input`` of ``input_shape``, or one on ``input_tensor`` (Keras's rule)."""
    from ..layers import Input
    from ..layers.keras_tensor import KerasTensor

    if input_tensor is None:
        return Input(shape=input_shape)
    if isinstance(input_tensor, KerasTensor):
        return input_tensor
    return Input(tensor=input_tensor, shape=input_shape)


def model_inputs(input_tensor: Any, img_input: Any) -> Any:
    """The inputs of the built ``Model``: those ``input_tensor`` comes from, else the new ``Input``."""
    from ..utils import get_source_inputs

    return get_source_inputs(input_tensor) if input_tensor is not None else img_input


def classifier_top(x: Any, classes: int, classifier_activation: Any, weights: Any) -> Any:
    """The ImageNet classifier: global average pooling, then ``Dense(classes)`` named ``predictions``."""
    validate_activation(classifier_activation, weights)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def pooled_features(x: Any, pooling: str | None, named: bool = False, avg_name: str | None = None,
                    max_name: str | None = None) -> Any:
    """``include_top=False``: the feature map as it is, or pooled (``"avg"`` / ``"max"``). ``named``: the
    pooling layer is called ``avg_pool`` / ``max_pool`` (ResNet, DenseNet, EfficientNet...), else it gets an
    automatic name (VGG, Inception...), as in each Keras family; ``avg_name`` / ``max_name`` name it outright
    (MobileNetV3)."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name or ("avg_pool" if named else None))(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name or ("max_pool" if named else None))(x)
    if pooling is not None:
        raise ValueError(f"`pooling` should be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    return x


def top_or_pooled(x: Any, include_top: bool, classes: int, classifier_activation: Any, weights: Any,
                  pooling: str | None, **pool_names: Any) -> Any:
    """The end of a builder: the ImageNet classifier (``classifier_top``) with ``include_top``, else the
    features as ``pooling`` asks (``pooled_features``, which takes ``named`` / ``avg_name`` / ``max_name``)."""
    if include_top:
        return classifier_top(x, classes, classifier_activation, weights)
    return pooled_features(x, pooling, **pool_names)
