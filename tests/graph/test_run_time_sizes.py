"""``graph/run_time_sizes.py``: the least output shape of ops that grow a tensor by constant operands, checked
against onnxruntime's own output for the smallest input; and a loaded ``.keras`` whose layers grow dynamic
dims by huge constants (``UpSampling2D``, ``ZeroPadding2D``, ``ops.tile`` on ``Input((None, None, 3))``) is
refused naming the layer, where onnxruntime was asked for tens of gigabytes at the first predict."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from onnxforge.graph.run_time_sizes import least_shape

pytest.importorskip("h5py")

import onnxforge as of  # noqa: E402
from tests.saving.hostile_files import rewrite_config, run_limited  # noqa: E402
from onnxforge import ops  # noqa: E402

L = of.layers

CASES = {
    "tile": ("Tile", {"reps": np.array([2, 3, 1], np.int64)}, {}, 3),
    "pad": ("Pad", {"pads": np.array([0, 1, 2, 0, 3, 0], np.int64)}, {}, 3),
    "pad_axes": ("Pad", {"pads": np.array([2, 5], np.int64), "cval": np.array(0.0, np.float32),
                         "axes": np.array([-1], np.int64)}, {}, 3),
    "resize_scales": ("Resize", {"roi": np.zeros(0, np.float32), "scales": np.array([1, 1, 4, 2.5], np.float32)},
                      {"mode": "nearest"}, 4),
    "resize_sizes": ("Resize", {"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
                                "sizes": np.array([1, 2, 7, 3], np.int64)}, {"mode": "nearest"}, 4),
    "expand": ("Expand", {"shape": np.array([4, 1, 5], np.int64)}, {}, 2),
    "constant_of_shape": ("ConstantOfShape", {}, {}, 0),
    "range": ("Range", {"limit": np.array(10.0, np.float32), "delta": np.array(1.5, np.float32)}, {}, 0),
}


def _graph(op, consts, attrs, rank):
    names = {"Pad": ["x", "pads", "cval", "axes"], "Resize": ["x", "roi", "scales", "sizes"],
             "Range": ["x", "limit", "delta"], "ConstantOfShape": ["x"]}.get(op, ["x", *consts])
    names = [n for n in names if n == "x" or n in consts]
    if op == "ConstantOfShape":
        x = helper.make_tensor_value_info("x", T.INT64, [3])
    elif op == "Range":
        x = helper.make_tensor_value_info("x", T.FLOAT, [])
    else:
        x = helper.make_tensor_value_info("x", T.FLOAT, [f"d{i}" for i in range(rank)])
    node = helper.make_node(op, names, ["y"], **attrs)
    g = helper.make_graph([node], "g", [x], [helper.make_tensor_value_info("y", T.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return model, node


@pytest.mark.parametrize("name", sorted(CASES))
def test_least_shape_is_what_onnxruntime_outputs_for_the_smallest_input(name):
    op, consts, attrs, rank = CASES[name]
    model, node = _graph(op, consts, attrs, rank)
    feed = {"ConstantOfShape": np.array([2, 1, 6], np.int64), "Range": np.array(1.0, np.float32)}.get(
        op, np.ones((1,) * rank, np.float32))
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": feed})[0]
    constants = {**consts, **({"x": feed} if op in ("ConstantOfShape", "Range") else {})}
    shape = least_shape(node, lambda n: (None,) * rank if n == "x" else None, constants.get)
    assert shape == list(got.shape), (name, shape, got.shape)


def test_sizes_from_the_data_are_not_decided():
    node = helper.make_node("Tile", ["x", "reps"], ["y"])
    assert least_shape(node, lambda n: (None, 3), lambda n: None) is None       # repeats from the data
    assert least_shape(helper.make_node("Relu", ["x"], ["y"]), lambda n: (None,), lambda n: None) is None


def _hostile(tmp_path, name, model, edit):
    """``model`` saved with its second layer's config changed by ``edit(config)``."""
    return rewrite_config(tmp_path, name, model, lambda layers: edit(layers[1]["config"]))


def test_huge_growth_of_dynamic_dims_is_refused_naming_the_layer(tmp_path):
    images = (None, None, 3)
    cases = {
        "upsampling": (_hostile(tmp_path, "up", of.Sequential([L.Input(images), L.UpSampling2D(2)]),
                                lambda c: c.update(size=[10**5, 10**5])),
                       "layer 'up_sampling2d", "a Resize node outputs shape (1, 100000, 100000, 3)"),
        "zero_padding": (_hostile(tmp_path, "pad", of.Sequential([L.Input(images), L.ZeroPadding2D(1)]),
                                  lambda c: c.update(padding=[[10**6, 10**6], [10**6, 10**6]])),
                         "layer 'zero_padding2d", "a Pad node outputs shape (1, 2000001, 2000001, 3)"),
        "tile": (_hostile(tmp_path, "tile", (lambda i: of.Model(i, ops.tile(i, [1, 2])))(L.Input((None,))),
                          lambda c: c.update(repeats=[1, 10**10])),
                 "layer 'tile", "a Tile node outputs shape (1, 10000000000)"),
    }
    results = json.loads(run_limited(f"""
        import json
        import numpy as np
        import onnxforge as of
        out = {{}}
        for name, path in {json.dumps({k: v[0] for k, v in cases.items()})}.items():
            try:
                model = of.load_model(path)
                model.predict(np.ones((1, 1, 1, 3) if name != "tile" else (1, 1), np.float32), verbose=0)
                out[name] = "ran"
            except BaseException as e:
                out[name] = type(e).__name__ + ": " + str(e)
        print(json.dumps(out))
    """))
    for name, (_, layer, fragment) in cases.items():
        assert "SizeLimitError: " in results[name] and layer in results[name], (name, results[name])
        assert fragment in results[name] and "even for the smallest input" in results[name], (name, results[name])


def test_real_growth_of_dynamic_dims_loads_and_agrees(tmp_path):
    model = of.Sequential([L.Input((None, None, 2)), L.UpSampling2D(3), L.ZeroPadding2D(2)])
    x = np.random.default_rng(0).random((2, 3, 5, 2)).astype(np.float32)
    loaded = of.load_model(model.save(tmp_path / "real.keras"))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.predict(x, verbose=0).shape == (2, 13, 19, 2)


def test_the_check_holds_only_for_loaded_models():
    # Outside a loaded file's limits (models built in code) nothing is refused, as in Keras.
    from onnxforge.graph.size_limits import SizeLimitError, charge_node, size_limits
    from onnxforge.graph.value import Value

    node = helper.make_node("Tile", ["x", "reps"], ["y"])
    values = {"x": Value("x", T.FLOAT, (None, 3), None)}
    reps = {"reps": np.array([1, 10**9], np.int64)}.get
    charge_node(node, 1, 0, values, reps)
    with size_limits("test.keras"), pytest.raises(SizeLimitError, match=r"a Tile node outputs shape \(1, 3000000000\)"):
        charge_node(node, 1, 0, values, reps)
