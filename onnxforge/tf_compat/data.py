"""``tf.data``: ``Dataset`` is onnxforge's in-memory ``keras.utils.Dataset``, which ``fit`` accepts.

It has tf.data's sources (``from_tensor_slices``, ``from_tensors``, ``range``, ``from_generator``, ``zip``,
``counter``, ``sample_from_datasets``, ``choose_from_datasets``) and the methods programs chain (``shuffle``,
``batch``, ``padded_batch``, ``map``, ``filter``, ``window``, ``flat_map``, ``interleave``, ``prefetch``,
``cache``, ...); iterating it yields ``EagerTensor`` elements. ``experimental.make_csv_dataset`` and
``experimental.CsvDataset`` read CSV files into one (``csv_dataset``), ``TextLineDataset`` the lines of text
files (``text_line_dataset``); ``TFRecordDataset`` is not here: load the data into arrays, or use a
``keras.utils.PyDataset``.

Example:
    >>> import numpy as np
    >>> ds = Dataset.from_tensor_slices((np.arange(4.0), np.arange(4))).batch(2).prefetch(AUTOTUNE)
    >>> [y.tolist() for _, y in ds]
    [[0, 1], [2, 3]]
    >>> int(experimental.cardinality(ds).numpy()), INFINITE_CARDINALITY   # a 0-d int64 tensor, as in TensorFlow
    (2, -1)
"""
from __future__ import annotations

__all__ = ["Dataset", "AUTOTUNE", "experimental", "Options", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY",
           "TextLineDataset"]

import enum
import types
from typing import Any

from ..utils.dataset import AUTOTUNE, Dataset
from ..utils.dataset_methods import INFINITE as INFINITE_CARDINALITY
from ..utils.dataset_methods import UNKNOWN as UNKNOWN_CARDINALITY
from ..utils.dataset_methods import Options
from .csv_dataset import CsvDataset, make_csv_dataset
from .text_line_dataset import TextLineDataset


class AutoShardPolicy(enum.IntEnum):
    """``tf.data.experimental.AutoShardPolicy`` (accepted in ``Options``; onnxforge shards nothing)."""
    OFF = -1
    AUTO = 0
    FILE = 1
    DATA = 2
    HINT = 3


def _rejection_resample(class_func: Any, target_dist: Any, initial_dist: Any = None, seed: Any = None) -> Any:
    """``tf.data.experimental.rejection_resample``: the transformation for ``Dataset.apply``."""
    return lambda dataset: dataset.rejection_resample(class_func, target_dist, initial_dist, seed)


def _cardinality(dataset: Dataset) -> Any:
    return dataset.cardinality()   # a 0-d int64 tensor, as TensorFlow's


experimental = types.SimpleNamespace(
    AUTOTUNE=AUTOTUNE, INFINITE_CARDINALITY=INFINITE_CARDINALITY, UNKNOWN_CARDINALITY=UNKNOWN_CARDINALITY,
    cardinality=_cardinality, AutoShardPolicy=AutoShardPolicy,
    sample_from_datasets=Dataset.sample_from_datasets, choose_from_datasets=Dataset.choose_from_datasets,
    make_csv_dataset=make_csv_dataset, CsvDataset=CsvDataset, rejection_resample=_rejection_resample,
    # TensorFlow's deprecated name, still in its data_augmentation tutorial (zipped with a dataset for seeds)
    Counter=Dataset.counter)


def __getattr__(name: str) -> Any:
    raise AttributeError(f"onnxforge's tf.data has Dataset (in memory), Options and AUTOTUNE; tf.data.{name} is not "
                         "supported. Load the data into NumPy arrays, or use a keras.utils.PyDataset.")
