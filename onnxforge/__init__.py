"""onnxforge: a Keras-style model compiler that targets ONNX.

Models written as tf.keras code compile into an inference graph and a training-step graph (forward,
loss, gradients derived by onnxforge's own reverse-mode autodiff, optimizer update), all in standard
``ai.onnx`` ops, executed by stock onnxruntime. ``import onnxforge as tf`` runs tf.keras code through
the ``onnxforge.keras`` namespace.

Example:
    >>> import onnxforge as tf
    >>> model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
    >>> model.compile(optimizer="sgd", loss="mse")
"""
from __future__ import annotations

from ._version import __version__
from . import (activations, callbacks, constraints, datasets, initializers, layers, losses, metrics, models, ops,
               optimizers, regularizers)
from .gradient_tape import GradientTape
from .layers import Input, Layer
from .models import Model, Sequential
from .models.onnx_model import OnnxModel, from_onnx
from .saving import load_model
from .variables import Variable
from . import eager  # noqa: E402  (registers the eager executor the layers and ops call on arrays)
from . import keras  # noqa: E402  (after the modules it re-exports)
# `import onnxforge as tf`: the TensorFlow tensor functions Keras programs use around tf.GradientTape.
from .tf_compat import *  # noqa: E402,F401,F403
from . import distribute  # noqa: E402  (MPIStrategy; starts no MPI until a strategy is made)

__all__ = ["__version__", "keras", "Sequential", "Model", "Input", "Layer", "Variable", "GradientTape", "ops",
           "layers", "models", "losses", "metrics", "optimizers", "callbacks", "initializers", "activations",
           "regularizers", "constraints", "datasets", "load_model", "from_onnx", "OnnxModel", "distribute"]

# TensorFlow names ``import onnxforge as tf`` programs reach for that onnxforge does not have: each says why.
_REFUSED = {
    "RaggedTensor": "ragged tensors are not supported (ONNX tensors are dense): pad the rows to one length "
                    "(keras.utils.pad_sequences) and carry a mask or the row lengths",
    "ragged": "ragged tensors are not supported (ONNX tensors are dense): pad the rows to one length "
              "(keras.utils.pad_sequences) and carry a mask or the row lengths",
    "lookup": "tf.lookup tables are not supported: use keras.layers.StringLookup / IntegerLookup",
    "saved_model": "models are saved as ONNX (model.export('model.onnx'), served by any onnxruntime) or as Keras "
                   "files (model.save('model.keras')); TensorFlow SavedModels are not written or read",
}


def __getattr__(name: str) -> object:
    if name in _REFUSED:
        raise AttributeError(f"onnxforge has no tf.{name}: {_REFUSED[name]}.")
    raise AttributeError(f"module 'onnxforge' has no attribute {name!r}")
