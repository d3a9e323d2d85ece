"""A namespace mirroring ``tf.keras``, so tf.keras code runs after changing one import.

``import onnxforge as tf`` makes ``tf.keras.Sequential``, ``tf.keras.layers.Conv2D``,
``tf.keras.optimizers.Adam`` ... resolve to onnxforge's own classes; ``import onnxforge.keras as keras``
does the same for Keras 3 code. This module only re-exports: it holds no logic.

Example:
    >>> import onnxforge as tf
    >>> model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,))])
    >>> model.count_params()
    8
"""
from __future__ import annotations

import sys

from .. import (activations, applications, callbacks, constraints, dtype_policies, initializers, layers, losses,
                metrics, models, ops, optimizers, preprocessing, quantizers, regularizers, saving, utils)
from ..dtype_policies import DTypePolicy, FloatDTypePolicy
from ..layers import Input, Layer
from ..layers.keras_tensor import KerasTensor
from ..layers.lambda_layer import register_lambda_globals
from ..ops import random
from ..models import Model, Sequential
from ..saving import load_model
from . import backend, config, datasets, legacy_optimizers, mixed_precision
from .. import distillation   # registers Distiller, so load_model finds it by name as Keras writes it
from ..utils import tree
from .variable import Variable
from .scopes import device, name_scope
from .state_scopes import RematScope, StatelessScope, SymbolicScope, remat
from .operation import Function, Operation
from ..initializers import Initializer
from ..layers import InputSpec
from ..losses import Loss
from ..metrics import Metric
from ..optimizers import Optimizer
from ..quantizers import Quantizer
from ..regularizers import Regularizer
from ..saving.keras_format.archive import KERAS_FORMAT_VERSION

#: The Keras release whose API and file format this namespace follows (``keras.__version__``); onnxforge's own
#: version is ``onnxforge.__version__``.
__version__ = KERAS_FORMAT_VERSION


def version() -> str:
    """``keras.version()``: the Keras release this namespace follows (see ``__version__``).

    Example:
        >>> import onnxforge.keras as keras
        >>> keras.version() == keras.__version__
        True
    """
    return __version__


__all__ = ["Sequential", "Model", "Input", "Layer", "layers", "models", "losses", "metrics", "optimizers",
           "callbacks", "initializers", "activations", "regularizers", "constraints", "datasets", "saving",
           "load_model", "ops", "random", "utils", "backend", "config", "mixed_precision", "dtype_policies",
           "DTypePolicy", "FloatDTypePolicy", "preprocessing", "Variable", "KerasTensor", "Initializer", "InputSpec",
           "Loss", "Metric", "Optimizer", "Regularizer", "version", "__version__", "applications", "tree",
           "name_scope", "device", "wrappers", "StatelessScope", "SymbolicScope", "RematScope", "remat", "Operation",
           "Function", "distillation", "distribution", "visualization", "export", "quantizers", "Quantizer"]

# `import onnxforge.keras.layers` and `from onnxforge.keras.layers import Dense` work like tf.keras's.
for _name in ("activations", "callbacks", "constraints", "initializers", "layers", "losses", "metrics", "models",
              "optimizers", "regularizers", "saving", "ops", "random", "utils", "dtype_policies", "preprocessing",
              "tree", "distillation", "quantizers"):
    sys.modules[f"{__name__}.{_name}"] = globals()[_name]
# `from keras.applications.resnet50 import preprocess_input` and the other families' modules.
sys.modules[f"{__name__}.applications"] = applications
for _name in [n for n in dir(applications) if isinstance(getattr(applications, n), type(sys))]:
    sys.modules[f"{__name__}.applications.{_name}"] = getattr(applications, _name)
# `from tensorflow.keras.layers.experimental.preprocessing import Rescaling` (TF 2.3-2.5 code).
sys.modules[f"{__name__}.layers.experimental"] = layers.experimental
sys.modules[f"{__name__}.layers.experimental.preprocessing"] = layers.experimental.preprocessing
# `tf.keras.optimizers.legacy.Adam` (tf.keras 2.11+) names the same optimizers as `tf.keras.optimizers.Adam`.
optimizers.legacy = legacy_optimizers
sys.modules[f"{__name__}.optimizers.legacy"] = legacy_optimizers
# A Python lambda loaded into a Lambda layer reads `keras` as this namespace.
register_lambda_globals(keras=sys.modules[__name__])
# `from keras.preprocessing.sequence import pad_sequences` / `keras.preprocessing.image` as in Keras 3.
for _name in ("sequence", "image", "text"):
    sys.modules[f"{__name__}.preprocessing.{_name}"] = getattr(preprocessing, _name)


_LAZY = {"distribution": "onnxforge.keras.distribution",
         "visualization": "onnxforge.keras.visualization", "export": "onnxforge.keras.export"}


def __getattr__(name: str) -> object:
    # keras.wrappers imports scikit-learn (seconds): only when a program asks for it.
    if name == "wrappers":
        import importlib

        return importlib.import_module(f"{__name__}.wrappers")
    # The rarely used namespaces load on first use.
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
