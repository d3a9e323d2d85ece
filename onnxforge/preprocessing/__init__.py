"""``keras.preprocessing``: what Keras 3 still keeps there (``sequence.pad_sequences``, the ``image``
helpers, the dataset builders) and tf.keras's ``text.Tokenizer``; the preprocessing *layers* live in
``onnxforge.layers``.

Example:
    >>> from onnxforge.preprocessing import sequence
    >>> sequence.pad_sequences([[1], [2, 3]]).tolist()
    [[0, 1], [2, 3]]
"""
from __future__ import annotations

from ..utils.dataset_loaders import image_dataset_from_directory, text_dataset_from_directory, \
    timeseries_dataset_from_array
from . import image, sequence, text

__all__ = ["image", "sequence", "text", "image_dataset_from_directory", "text_dataset_from_directory",
           "timeseries_dataset_from_array"]
