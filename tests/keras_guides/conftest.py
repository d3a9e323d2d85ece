"""keras.io's developer guides (https://keras.io/guides/) run under real Keras 3 and onnxforge."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    # Keras on torch and numpy 2 warn on every array conversion; the programs' own warnings are not the subject.
    for item in items:
        if "keras_guides" in str(item.fspath):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore::UserWarning"))
