"""Keras 3's own file formats, both ways: ``.keras`` archives, ``.weights.h5`` files and legacy ``.h5``.

* :mod:`.archive` -- ``save_keras`` / ``load_keras`` (zip of ``config.json``, ``metadata.json``,
  ``model.weights.h5``) and ``save_keras_weights`` / ``load_keras_weights``.
* :mod:`.legacy_h5` -- tf.keras's HDF5 model files (``model_config`` attribute + ``model_weights`` group).
* :mod:`.layout` -- the object paths Keras stores each variable under (``layers/dense/vars/0``,
  ``optimizer/vars/...``).
* :mod:`.config` / :mod:`.compile_config` -- Keras configs <-> onnxforge configs (shared with
  ``exporters.keras_exporter``).
* :mod:`.h5io` -- HDF5 reading and writing with the checks an untrusted file needs.

Users reach all of this through ``model.save("x.keras")``, ``onnxforge.load_model("x.keras")``,
``model.save_weights("x.weights.h5")`` and ``model.load_weights(...)``; h5py is needed only here.
"""
from __future__ import annotations

from .archive import load_keras, load_keras_weights, save_keras, save_keras_weights
from .config import (UnsupportedKerasLayerError, keras_config_to_onnxforge, normalize_legacy_config,
                     onnxforge_config_to_keras)
from .errors import KerasFileError
from .legacy_h5 import load_legacy_h5, load_legacy_weights, save_legacy_h5

__all__ = ["KerasFileError", "UnsupportedKerasLayerError", "save_keras", "load_keras", "save_keras_weights",
           "load_keras_weights", "load_legacy_h5", "load_legacy_weights", "save_legacy_h5",
           "keras_config_to_onnxforge", "onnxforge_config_to_keras", "normalize_legacy_config"]
