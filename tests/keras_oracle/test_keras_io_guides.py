"""Calls from keras.io's most-read guides (intro for engineers / researchers, customizing saving) that onnxforge
once answered differently from Keras 3.

``customizing_saving_and_serialization``'s ``LayerWithCustomBuild`` overrides ``build(input_shape, layer_init)``
and builds it by hand; Keras records every ``build`` argument by name (``{"shapes_dict": {...}}``) and rebuilds
from it, where onnxforge recorded nothing and ``super().get_build_config()`` returned ``None``.
"""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS


def _extra_arg_layer(api):
    class ExtraArgBuild(api.layers.Layer):
        def build(self, input_shape, layer_init):
            self.w = self.add_weight(shape=(input_shape[-1], 2), initializer=layer_init)

        def call(self, inputs):
            return api.ops.matmul(inputs, self.w)
    return ExtraArgBuild


@pytest.mark.parametrize("by_keyword", [True, False])
def test_build_config_records_every_build_argument(by_keyword):
    configs, outputs = {}, {}
    for lib, api in LIBS.items():
        layer = _extra_arg_layer(api)()
        if by_keyword:
            layer.build(input_shape=(3,), layer_init="ones")
        else:
            layer.build((3,), "ones")
        configs[lib] = layer.get_build_config()
        # The default build_from_config replays the recorded arguments on a fresh layer.
        fresh = _extra_arg_layer(api)()
        fresh.build_from_config(configs[lib])
        assert fresh.built
        outputs[lib] = api.ops.convert_to_numpy(fresh(np.ones((2, 3), "float32")))
    assert configs["onnxforge"] == configs["keras"] == {"shapes_dict": {"input_shape": (3,), "layer_init": "ones"}}
    np.testing.assert_allclose(outputs["onnxforge"], outputs["keras"])


def test_single_argument_build_config_unchanged():
    for api in LIBS.values():
        layer = api.layers.Dense(2)
        layer.build((None, 4))
        assert layer.get_build_config() == {"input_shape": (None, 4)}


def test_shapes_dict_must_be_a_dict():
    layer = _extra_arg_layer(LIBS["onnxforge"])()
    with pytest.raises(TypeError, match="shapes_dict.*Received: list"):
        layer.build_from_config({"shapes_dict": [(3,), "ones"]})


def test_keras_file_round_trip_rebuilds_with_every_build_argument(tmp_path):
    """Saved by hand-built ``build(input_shape, layer_init)``, the loaded layer is rebuilt with both arguments."""
    x = np.ones((2, 3), "float32")
    got = {}
    for lib, api in LIBS.items():
        cls = _extra_arg_layer(api)
        layer = cls(name="extra")
        layer.build(input_shape=(3,), layer_init="ones")
        model = api.Sequential([layer, api.layers.Dense(1, kernel_initializer="ones")])
        path = str(tmp_path / f"{lib}.keras")
        model.save(path)
        restored = api.models.load_model(path, custom_objects={"ExtraArgBuild": cls})
        got[lib] = api.ops.convert_to_numpy(restored(x))
    np.testing.assert_allclose(got["onnxforge"], got["keras"])
    np.testing.assert_allclose(got["keras"], 6.0)
