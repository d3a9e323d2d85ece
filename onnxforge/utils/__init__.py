"""``keras.utils``: data helpers (``to_categorical``, ``pad_sequences``, ``normalize``), image files,
datasets (``PyDataset``, ``split_dataset``, ``image_dataset_from_directory``, ...), ``plot_model``,
``get_file``, the progress bar and ``set_random_seed``.

Example:
    >>> to_categorical([2, 0], num_classes=3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
"""
from __future__ import annotations

from typing import Any

from ..backend_config import disable_interactive_logging, enable_interactive_logging, is_interactive_logging_enabled
from ..custom_objects import CustomObjectScope, custom_object_scope, get_custom_objects
from ..initializers import set_random_seed
from ..layers.base import clear_session
from ..layers.keras_tensor import standardize_dtype
from ..saving.object_serialization import deserialize_keras_object, serialize_keras_object
from ..layers.serialization import get_registered_name, get_registered_object, register_keras_serializable
from .config import Config
from .dataset import Dataset, split_dataset
from .feature_space import FeatureSpace
from . import bounding_boxes
from .audio_dataset import audio_dataset_from_directory
from .dataset_loaders import image_dataset_from_directory, text_dataset_from_directory, timeseries_dataset_from_array
from .file import get_file
from .image import array_to_img, img_to_array, load_img, save_img, smart_resize
from .keras_tensors import get_source_inputs, is_keras_tensor
from .numerical import normalize, to_categorical
from .plot import model_to_dot, plot_model
from .progbar import Progbar
from .py_dataset import PyDataset, Sequence
from .sequence import pad_sequences

__all__ = ["Progbar", "set_random_seed", "to_categorical", "normalize", "pad_sequences", "array_to_img",
           "img_to_array", "load_img", "save_img", "PyDataset", "Sequence", "Dataset", "split_dataset",
           "image_dataset_from_directory", "text_dataset_from_directory", "audio_dataset_from_directory",
           "bounding_boxes",
           "timeseries_dataset_from_array",
           "plot_model", "model_to_dot", "get_file", "pack_x_y_sample_weight", "unpack_x_y_sample_weight",
           "clear_session", "register_keras_serializable", "get_registered_name", "get_registered_object",
           "custom_object_scope", "CustomObjectScope", "get_custom_objects", "is_keras_tensor", "get_source_inputs",
           "serialize_keras_object", "deserialize_keras_object", "standardize_dtype", "FeatureSpace", "Config",
           "enable_interactive_logging", "disable_interactive_logging", "is_interactive_logging_enabled"]


def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> tuple:
    """``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``: the tuple a ``train_step`` unpacks.

    Example:
        >>> pack_x_y_sample_weight(1, 2)
        (1, 2)
    """
    if y is None:
        return (x,) if not isinstance(x, (tuple, list)) else (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` from ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` (missing ones ``None``).

    Example:
        >>> unpack_x_y_sample_weight((1, 2))
        (1, 2, None)
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(f"Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, found: "
                     f"{data}")
