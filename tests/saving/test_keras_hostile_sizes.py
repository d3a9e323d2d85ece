"""A tiny ``.keras`` config whose numbers size what onnxforge builds (huge static tensors, constants built
with numpy from static shapes, graphs unrolled over a static size) is refused with a clear error naming
the layer or constant and the size, before anything big is allocated (``graph/size_limits.py``); the same
bounds hold at the loaded model's first ``predict``. Models built in code are not bounded."""
from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest

pytest.importorskip("h5py")

import onnxforge as of  # noqa: E402
from tests.saving.hostile_files import run_limited  # noqa: E402
from onnxforge.graph import size_limits  # noqa: E402
from onnxforge.saving import KerasFileError  # noqa: E402

L = of.layers


def _saved(tmp_path, model, name):
    path = model.save(tmp_path / f"{name}.keras")
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("config.json")), zf.read("model.weights.h5")


def _write(tmp_path, name, config, weights):
    path = tmp_path / f"{name}.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", weights)
    assert path.stat().st_size < 20_000
    return path


def _sequential(tmp_path, name, layer, edit, input_shape=(3,)):
    """A saved Sequential([Input, layer]) whose layer config ``edit`` then changes (as an attacker would)."""
    config, weights = _saved(tmp_path, of.Sequential([L.Input(input_shape), layer]), name)
    entry = config["config"]["layers"][1]
    entry.pop("build_config", None)
    edit(entry["config"], config["config"]["layers"][0]["config"])
    return _write(tmp_path, name, config, weights)


def _op_model(tmp_path, name, module, cls, n):
    """A functional model applying Keras op node ``cls`` to an ``(n, n)`` input."""
    config, weights = _saved(tmp_path, of.Sequential([L.Input((3,))]), name)
    inp = config["config"]["layers"][0]
    inp["config"]["batch_shape"] = [None, n, n]
    model = {"module": "keras", "class_name": "Functional", "registered_name": "Functional",
             "config": {"name": name, "trainable": True, "layers": [
                 {**inp, "name": inp["config"]["name"], "inbound_nodes": []},
                 {"module": module, "class_name": cls, "registered_name": cls, "name": "op",
                  "config": {"name": "op"}, "inbound_nodes": [{"args": [
                      {"class_name": "__keras_tensor__", "config": {"shape": [None, n, n], "dtype": "float32",
                                                                    "keras_history": [inp["config"]["name"], 0, 0]}}],
                      "kwargs": {}}]}],
                 "input_layers": [[inp["config"]["name"], 0, 0]], "output_layers": [["op", 0, 0]]}}
    return _write(tmp_path, name, model, weights)


def _cases(tmp_path):
    big = 10**9
    return {
        "input": (_sequential(tmp_path, "input", L.Dense(2), lambda c, i: i.update(batch_shape=[None, big])),
                  r"layer 'input_layer\w*''s output has static shape \(None, 1000000000\)"),
        "repeat": (_sequential(tmp_path, "repeat", L.RepeatVector(2), lambda c, i: c.update(n=big)),
                   r"layer 'repeat_vector\w*''s output has static shape \(None, 1000000000, 3\)"),
        "category": (_sequential(tmp_path, "category", L.CategoryEncoding(num_tokens=4, output_mode="multi_hot"),
                                 lambda c, i: c.update(num_tokens=big)),
                     r"layer 'category_encoding\w*'.*1000000000"),
        "upsampling": (_sequential(tmp_path, "upsampling", L.UpSampling2D(2), lambda c, i: c.update(size=[10**5, 10**5]),
                                   (4, 4, 3)), r"layer 'up_sampling2d\w*''s output has static shape"),
        "zeropadding": (_sequential(tmp_path, "zeropadding", L.ZeroPadding2D(1),
                                    lambda c, i: c.update(padding=[[10**6, 10**6], [10**6, 10**6]]), (4, 4, 3)),
                        r"layer 'zero_padding2d\w*''s output has static shape"),
        "resizing": (_sequential(tmp_path, "resizing", L.Resizing(4, 4), lambda c, i: c.update(height=10**5, width=10**5),
                                 (4, 4, 3)), r"layer 'resizing\w*''s output has static shape"),
        "inv": (_op_model(tmp_path, "inv", "keras.src.ops.linalg", "Inv", 12000),
                r"identity matrix of a linear-algebra op builds a constant of shape \(12000, 12000\)"),
        "inv_input": (_op_model(tmp_path, "inv_input", "keras.src.ops.linalg", "Inv", 30000),
                      r"static shape \(None, 30000, 30000\)"),
    }


def test_tiny_configs_asking_for_huge_sizes_are_refused_naming_the_layer(tmp_path):
    for name, (path, pattern) in _cases(tmp_path).items():
        with pytest.raises(KerasFileError, match="over the limit of") as info:
            of.load_model(path)
        assert info.value.key == "config.json", name
        assert re.search(pattern, str(info.value)), (name, str(info.value))


def test_refusals_happen_before_any_big_allocation(tmp_path):
    # Under a 3 GB address-space limit each load fails with the clear error, never a MemoryError or a kill.
    paths = {name: str(path) for name, (path, _) in _cases(tmp_path).items()}
    results = json.loads(run_limited(f"""
        import json
        import onnxforge as of
        out = {{}}
        for name, path in {paths!r}.items():
            try:
                of.load_model(path)
                out[name] = "loaded"
            except BaseException as e:
                out[name] = type(e).__name__ + ": " + str(e)
        print(json.dumps(out))
    """))
    for name, result in results.items():
        assert result.startswith("KerasFileError") and "over the limit of" in result, (name, result)


def test_the_bounds_hold_at_the_first_predict_and_not_for_models_built_in_code(tmp_path):
    path = _op_model(tmp_path, "small_inv", "keras.src.ops.linalg", "Inv", 4)
    loaded = of.load_model(path)
    x = np.eye(4, dtype=np.float32)[None] * 2
    np.testing.assert_allclose(loaded.predict(x, verbose=0), x / 4, rtol=1e-5)
    assert loaded._size_limits is not None
    tight = size_limits.SizeLimits("a tight test", max_constant_bytes=64)   # a 4 x 4 float64 eye is 128 bytes
    loaded = of.load_model(path)
    loaded._size_limits = tight
    with pytest.raises(size_limits.SizeLimitError, match=r"constant of shape \(4, 4\) \(128 bytes\).*a tight test"):
        loaded.predict(x, verbose=0)
    built = of.Sequential([L.Input((3,)), L.RepeatVector(10**9)])      # in code: Keras's own behaviour
    assert built.output_shape == (None, 10**9, 3)


def test_a_gzip_bomb_of_datasets_just_under_the_per_dataset_bound_is_refused(tmp_path):
    # Each dataset inflates ~500x (under the 1000x shape-bomb bound) and the config claims them: without a
    # bound on the total, a file of a few hundred KB made the model allocate and decompress 1000x its size.
    import h5py

    n = 2**23                                 # 32 MiB per dataset, two datasets
    config, _ = _saved(tmp_path, of.Sequential([L.Input((1,)), L.Dense(2, name="d")]), "gz")
    config["config"]["layers"][1]["config"]["units"] = n
    config["config"]["layers"][1].pop("build_config", None)
    block = np.zeros(2**20, np.float32)
    block[::300] = 1.0                        # compresses a few hundred times, not a thousand

    def weights(f):
        g = f.create_group("layers/dense/vars")
        for key, shape in (("0", (1, n)), ("1", (n,))):
            ds = g.create_dataset(key, shape=shape, dtype="f4", chunks=shape[:-1] + (2**20,), compression="gzip")
            for k in range(0, n, 2**20):
                ds[..., k:k + 2**20] = block
        declared = 4 * n
        assert 100 < declared / ds.id.get_storage_size() < 1000

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        weights(f)
    path = tmp_path / "gz.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", buffer.getvalue())
    assert path.stat().st_size < 1_000_000
    with pytest.raises(KerasFileError, match=r"declare 67108864 bytes but store only \d+ .*decompression bomb"):
        of.load_model(path)
    # Real weights that the user compressed still load.
    real = of.Sequential([L.Input((512,)), L.Dense(1024, name="d")])
    real_config, _ = _saved(tmp_path, real, "real")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        g = f.create_group("layers/dense/vars")
        for key, w in enumerate(real.get_weights()):
            g.create_dataset(str(key), data=w, compression="gzip")
    again = tmp_path / "real_gz.keras"
    with zipfile.ZipFile(again, "w") as zf:
        zf.writestr("config.json", json.dumps(real_config))
        zf.writestr("model.weights.h5", buffer.getvalue())
    np.testing.assert_array_equal(of.load_model(again).get_weights()[0], real.get_weights()[0])
