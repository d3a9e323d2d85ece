"""``model_from_json`` / ``deserialize_keras_object`` / ``from_config`` on configs of the wrong structure: a
string where a list is expected, a float where a dict is, unknown layer names, out-of-range indices. Each is
a ``ValueError`` naming the key and the value received, never a bare ``TypeError`` / ``KeyError`` /
``IndexError`` / ``AttributeError`` or a ``RecursionError`` (``input_layers: "abc"`` was iterated one
character at a time until Python's limit)."""
from __future__ import annotations

import copy
import json

import pytest

import onnxforge as of

k = of.keras


@pytest.fixture(scope="module")
def functional():
    # The expected messages name layers ('input_layer', 'dense_1'): count names from zero whatever ran before.
    k.backend.clear_session()
    inputs = k.Input((4,))
    x = k.layers.Dense(3, activation="relu")(inputs)
    return json.loads(k.Model(inputs, k.layers.Dense(2)(x)).to_json())


@pytest.fixture(scope="module")
def sequential():
    k.backend.clear_session()
    return json.loads(k.Sequential([k.Input((5,)), k.layers.Dense(2), k.layers.Dense(1)]).to_json())


def _edit(config, path, value):
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(config)


def _refused(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        k.models.model_from_json(text)


@pytest.mark.parametrize("path, value, fragment", [
    (("config", "input_layers"), "abc", r"config\['input_layers'\] must be a \[layer_name.*'abc' \(str\)"),
    (("config", "input_layers", 0), 1.5, r"config\['input_layers'\]\[0\] must be .*1\.5 \(float\)"),
    (("config", "output_layers", 0), ["nowhere", 0, 0], r"naming one of the config's layers.*'nowhere'"),
    (("config", "output_layers"), ["dense_1", 10**30, 0], r"has 1 nodes in the config"),
    (("config", "layers"), {}, r"config\['layers'\] must be a list.*\{\} \(dict\)"),
    (("config", "layers", 1, "inbound_nodes"), 1.5, r"\['inbound_nodes'\] must be a list of nodes.*1\.5"),
    (("config", "layers", 1, "inbound_nodes", 0), "x", r"\['inbound_nodes'\]\[0\] must be a node.*'x' \(str\)"),
    (("config", "layers", 1, "inbound_nodes", 0, "args", 0, "config", "keras_history"), ["input_layer", 0.5, 0],
     r"\['keras_history'\] must be a \[layer_name.*0\.5"),
    (("config", "layers", 1, "inbound_nodes", 0, "args", 0, "config", "keras_history", 2), 7,
     r"names output 7 of layer 'input_layer', which has 1"),
    (("config", "layers", 1, "name"), ["x"], r"config\['layers'\]\[1\]\['name'\] must be the layer's name"),
    (("config", "layers", 2, "name"), "dense", r"\['name'\] must be unique.*'dense'"),
    (("config", "layers", 1, "module"), True, r"'module' and 'class_name' must be strings.*module=True"),
    (("config", "layers", 1, "config", "kernel_initializer", "module"), 1.5, r"module=1\.5"),
    (("config", "layers", 1, "config", "bias_regularizer"), {}, r"serialized regularizer must be a dict with a "
                                                                r"string 'class_name'"),
    (("config", "layers", 1, "build_config", "input_shape"), "abc", r"input shape must be a list.*'abc' \(str\)"),
])
def test_functional_configs_of_the_wrong_structure(functional, path, value, fragment):
    _refused(_edit(functional, path, value), fragment)


@pytest.mark.parametrize("path, value, fragment", [
    (("config", "layers"), None, r"'layers' must be a list.*None"),
    (("config", "layers", 1, "build_config", "input_shape", 1), float("nan"), r"input shape must be a list"),
    (("config", "layers", 1, "config", "kernel_initializer", "config"), 5, r"'config' of a serialized initializer "
                                                                         r"'GlorotUniform' must be a dict.*5"),
])
def test_sequential_configs_of_the_wrong_structure(sequential, path, value, fragment):
    _refused(_edit(sequential, path, value), fragment)


def test_the_errors_are_type_errors_too(functional):
    # keras_objects.deserialize raises TypeError for entries of the wrong type, as Keras does: callers catching
    # that still do.
    with pytest.raises(TypeError):
        k.models.model_from_json(_edit(functional, ("config", "input_layers"), "abc"))


@pytest.mark.parametrize("name, module", [("symbolic", "keras.ops"), ("builder_of", "keras.ops"),
                                          ("lookup", "keras.activations"), ("__class__", "keras.ops")])
def test_lambda_functions_name_only_public_ops(name, module):
    inputs = k.Input((4,))
    config = json.loads(k.Model(inputs, k.layers.Lambda(k.ops.relu)(inputs)).to_json())
    config["config"]["layers"][1]["config"]["function"] = {"module": module, "class_name": "function",
                                                           "config": name, "registered_name": name}
    with pytest.raises(ValueError, match=f"Could not locate function '{name}'"):   # helpers were reached
        k.models.model_from_json(json.dumps(config))
    config["config"]["layers"][1]["config"]["function"]["config"] = "relu"
    config["config"]["layers"][1]["config"]["function"]["registered_name"] = "relu"
    assert k.models.model_from_json(json.dumps(config)).layers[1].function is of.ops.relu


class _Fragile(k.layers.Layer):
    """A layer whose from_config reads its config without checking it, as many do."""

    def call(self, inputs):
        return inputs

    @classmethod
    def from_config(cls, config):
        return cls(units=config["units"]["count"])


@pytest.mark.parametrize("model", ["functional", "sequential"])
def test_a_layer_failing_to_rebuild_is_named(model):
    inputs = k.Input((4,))
    built = (k.Model(inputs, _Fragile(name="fragile")(inputs)) if model == "functional" else
             k.Sequential([inputs, _Fragile(name="fragile")]))
    text = built.to_json().replace('"name": "fragile"', '"name": "fragile", "units": 3')
    with pytest.raises(ValueError, match=r"\['layers'\]\[1\] \(layer 'fragile', class '_Fragile'\) could not be "
                                         r"rebuilt: TypeError: 'int' object is not subscriptable"):
        k.models.model_from_json(text, custom_objects={"_Fragile": _Fragile})
