"""load_model on hostile checkpoints (issue 11): each file is edited as an attacker would, then RE-SEALED
(its digest recomputed, as anyone can), so what is tested is the validation behind the digest. Every
failure must be an OnnxLoadError naming the metadata key, raised before anything is read or allocated."""
from __future__ import annotations

import base64
import json
import tracemalloc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxforge as tf
from onnxforge.layers import Layer
from onnxforge.models.onnx_model import from_onnx
from onnxforge.saving import OnnxLoadError, integrity, load_model

L = tf.keras.layers
SECRET = b"top secret bytes"


def _meta(proto: onnx.ModelProto) -> dict[str, str]:
    return {e.key: e.value for e in proto.metadata_props}


def _edit(path, out, **changes) -> str:
    """Write ``out``: ``path`` with some metadata values replaced (None deletes the key), re-sealed."""
    proto = onnx.load(str(path))
    kept = [(e.key, e.value) for e in proto.metadata_props]
    del proto.metadata_props[:]
    for key, value in kept:
        short = key.removeprefix("onnxforge.")
        if short in changes:
            if changes[short] is None:
                continue
            value = changes[short] if isinstance(changes[short], str) else json.dumps(changes[short])
        proto.metadata_props.add(key=key, value=value)
    integrity.seal(proto)
    onnx.save(proto, str(out))
    return str(out)


def _expect(path, key: str, *fragments: str) -> OnnxLoadError:
    with pytest.raises(OnnxLoadError) as info:
        load_model(path)
    err = info.value
    assert err.key == key, (err.key, str(err))
    assert f"'{key}'" in str(err), str(err)
    for fragment in fragments:
        assert fragment in str(err), str(err)
    return err


@pytest.fixture
def saved(tmp_path):
    tf.layers.clear_session()
    model = tf.keras.Sequential([L.Input((3,)), L.Dense(4, activation="relu"), L.Dense(2)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    model.fit(np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32), epochs=1, verbose=0)
    return model.save(tmp_path / "ckpt.onnx")


def _config(path) -> dict:
    return json.loads(_meta(onnx.load(str(path)))["onnxforge.model_config"])


# ------------------------------------------------------------------------------------ 1. read traversal
def _onnx_model_checkpoint(tmp_path):
    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "fc.weight")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "fc.weight"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], [w])
    model = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]))
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    return model.save(tmp_path / "onnx_model.onnx")


def _with_embedded(config: dict, edit) -> dict:
    proto = onnx.ModelProto()
    proto.ParseFromString(base64.b64decode(config["config"]["onnx"]))
    edit(proto)
    config["config"]["onnx"] = base64.b64encode(proto.SerializeToString()).decode()
    return config


@pytest.mark.parametrize("location", ["secret.bin", "sub/secret.bin"])
def test_embedded_graph_cannot_read_files_through_external_data(tmp_path, monkeypatch, location):
    """Before: predict() returned the bytes of ./secret.bin and export() copied them into a new file."""
    path = _onnx_model_checkpoint(tmp_path)
    for folder in (tmp_path, tmp_path / "sub"):
        folder.mkdir(exist_ok=True)
        (folder / "secret.bin").write_bytes(SECRET)
    monkeypatch.chdir(tmp_path)

    def add_leak(proto):
        t = TensorProto(name="leak", data_type=TensorProto.UINT8, dims=[len(SECRET)],
                        data_location=TensorProto.EXTERNAL)
        t.external_data.add(key="location", value=location)
        proto.graph.initializer.append(t)
        proto.graph.node.append(helper.make_node("Identity", ["leak"], ["leaked"]))
        proto.graph.output.append(helper.make_tensor_value_info("leaked", TensorProto.UINT8, [len(SECRET)]))

    bad = _edit(path, tmp_path / "leak.onnx", model_config=_with_embedded(_config(path), add_leak))
    err = _expect(bad, "onnxforge.model_config", "'leak'", repr(location), "external data is not allowed")
    assert "entry 'onnx'" in str(err)


def test_from_onnx_proto_with_external_data_is_refused(tmp_path, monkeypatch):
    (tmp_path / "secret.bin").write_bytes(SECRET)
    monkeypatch.chdir(tmp_path)
    t = TensorProto(name="w", data_type=TensorProto.UINT8, dims=[len(SECRET)], data_location=TensorProto.EXTERNAL)
    t.external_data.add(key="location", value="secret.bin")
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, [len(SECRET)])], [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    with pytest.raises(OnnxLoadError, match="pass the .onnx file's path instead"):
        from_onnx(m)
    with pytest.raises(OnnxLoadError, match="not allowed in an embedded graph"):
        from_onnx(m.SerializeToString())


def test_embedded_graph_declaring_a_huge_weight_allocates_nothing(tmp_path):
    path = _onnx_model_checkpoint(tmp_path)
    config = _config(path)
    config["config"]["weights"] = [["fc.weight", "float32", [2**20, 2**20]]]
    _expect(_edit(path, tmp_path / "big.onnx", model_config=config), "onnxforge.model_config",
            "'fc.weight' of shape (1048576, 1048576)", "nothing was allocated")
    # A constant of the embedded graph declaring the same, with no data behind it:
    bomb = TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[2**20, 2**20])
    config = _with_embedded(_config(path), lambda p: p.graph.initializer.append(bomb))
    _expect(_edit(path, tmp_path / "bomb.onnx", model_config=config), "onnxforge.model_config",
            "tensor initializer 'c'", "over the limit")
    config = _config(path)
    config["config"]["onnx"] = "not base64!"
    _expect(_edit(path, tmp_path / "b64.onnx", model_config=config), "onnxforge.model_config", "not valid base64")


# ------------------------------------------------------------------------------------ 2. class resolution
PROBED = []


class UnregisteredProbe(Layer):
    """Defined in the test process, never registered: a file naming it must not get it built."""

    def __init__(self, **kwargs):
        PROBED.append(kwargs)
        super().__init__(**kwargs)

    def call(self, x):
        return x


def test_a_file_cannot_choose_an_unregistered_class(tmp_path, saved):
    config = _config(saved)
    config["config"]["layers"][1] = {"module": "keras.layers", "class_name": "UnregisteredProbe",
                                     "config": {"name": "probe"}, "registered_name": None}
    bad = _edit(saved, tmp_path / "probe.onnx", model_config=config)
    _expect(bad, "onnxforge.model_config", "Could not locate class 'UnregisteredProbe'",
            "register_keras_serializable")
    assert PROBED == []
    # Passing it in custom_objects is the explicit way (Keras 3's too): then it is built.
    with pytest.raises(OnnxLoadError):   # the file's weights still do not fit the edited architecture
        load_model(bad, custom_objects={"UnregisteredProbe": UnregisteredProbe})
    assert PROBED


@pytest.mark.parametrize("class_name", [5, None, ["Dense"], {"a": 1}])
def test_class_name_of_the_wrong_type(tmp_path, saved, class_name):
    config = _config(saved)
    config["config"]["layers"][1]["class_name"] = class_name
    _expect(_edit(saved, tmp_path / "c.onnx", model_config=config), "onnxforge.model_config")


# ------------------------------------------------------------------------------------ 3. allocation bombs
@pytest.mark.parametrize("units", [10**12, 5_000_000])
def test_a_config_cannot_allocate_what_the_file_does_not_store(tmp_path, saved, units):
    """Dense(10**12) in a 9 KB file was a MemoryError; Dense(5e6) allocated ~1 GB before the weights were
    compared with the config. Now the first weight that no stored tensor matches stops the load."""
    config = _config(saved)
    config["config"]["layers"][1]["config"]["units"] = units
    bad = _edit(saved, tmp_path / "big.onnx", model_config=config)
    tracemalloc.start()
    try:
        err = _expect(bad, "onnxforge.model_config", f"shape (3, {units})", "nothing was allocated")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, peak
    assert "(4,)" in str(err) or "(3, 4)" in str(err)   # names what the file does hold


# ------------------------------------------------------------------------------------ 4. metadata types
def _deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize("key, value, fragment", [
    ("model_config", _deep(200_000), "nested too deeply"),
    ("model_config", _deep(300), "nested too deeply"),
    ("model_config", "[]", "must be a JSON object"),
    ("model_config", "{not json", "not valid JSON"),
    ("saved_state", "[]", "must be a JSON object"),
    ("saved_state", {"optimizer": "abc"}, "optimizer must be"),
    ("saved_state", {"optimizer": [["a"]]}, "optimizer must be"),
    ("saved_state", {"rng": 5}, "rng must be"),
    ("saved_state", {"input_shapes": [[-1]]}, "input_shapes must be"),
    ("saved_state", {"optimizers": [{"attribute": 3}]}, "optimizers[0] must be"),
    ("saved_state", {"numpy_rng": {"keys": "x"}}, "numpy_rng must be"),
    ("saved_state", {"custom_compile": {"args": {"x": {"value": [1]}}}}, "custom_compile.args['x'].value"),
    ("saved_state", {"optimizer_built_for": [-1]}, "optimizer_built_for must be"),
    ("weights", '"abc"', "must be a JSON list"),
    ("weights", [5], "must be a tensor name"),
    ("weights", ["nope"], "'nope', which the file does not hold"),
    ("compile_config", "[]", "must be a JSON object"),
    ("compile_config", {"optimizer": "no_such_optimizer"}, "cannot be compiled"),
])
def test_malformed_metadata_is_one_clear_error(tmp_path, saved, key, value, fragment):
    _expect(_edit(saved, tmp_path / "bad.onnx", **{key: value}), f"onnxforge.{key}", fragment)


def test_state_naming_tensors_of_the_wrong_kind(tmp_path, saved):
    state = json.loads(_meta(onnx.load(str(saved)))["onnxforge.saved_state"])
    weights = json.loads(_meta(onnx.load(str(saved)))["onnxforge.weights"])
    for change in ({"rng": weights[0]}, {"numpy_rng": {**state["numpy_rng"], "keys": weights[0]}},
                   {"seed_generators": [["g", weights[0]]]}):
        _expect(_edit(saved, tmp_path / "s.onnx", saved_state={**state, **change}), "onnxforge.saved_state",
                "expected")


def test_weights_swapped_for_tensors_of_another_shape(tmp_path, saved):
    weights = json.loads(_meta(onnx.load(str(saved)))["onnxforge.weights"])
    _expect(_edit(saved, tmp_path / "w.onnx", weights=weights[::-1]), "onnxforge.weights", "has shape")


def test_duplicate_keys_are_refused(tmp_path, saved):
    proto = onnx.load(str(saved))
    proto.metadata_props.add(key="onnxforge.model_config", value="{}")
    integrity.seal(proto)
    onnx.save(proto, str(tmp_path / "dup.onnx"))
    _expect(tmp_path / "dup.onnx", "onnxforge.model_config", "more than once")


# ------------------------------------------------------------------------------------ 5. integrity
def test_digest_detects_a_flipped_bit_in_the_weights(tmp_path, saved):
    data = bytearray(saved.read_bytes())
    proto = onnx.load(str(saved))
    raw = proto.graph.initializer[0].raw_data
    data[bytes(data).index(raw) + 1] ^= 0x10
    (tmp_path / "flip.onnx").write_bytes(bytes(data))
    err = _expect(tmp_path / "flip.onnx", "onnxforge.digest", "does not match its SHA-256 digest")
    assert "damaged" in str(err)


def test_digest_missing_from_a_current_file_is_an_error(tmp_path, saved):
    proto = onnx.load(str(saved))
    kept = [e for e in proto.metadata_props if e.key != "onnxforge.digest"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(tmp_path / "nodigest.onnx"))
    _expect(tmp_path / "nodigest.onnx", "onnxforge.digest", "is missing")
    proto.metadata_props.add(key="onnxforge.digest", value="sha256:xyz")
    onnx.save(proto, str(tmp_path / "baddigest.onnx"))
    _expect(tmp_path / "baddigest.onnx", "onnxforge.digest", "64")


def test_files_of_the_previous_format_still_load(tmp_path, saved):
    """saved_model/1 files (before the digest) load unchecked; with a digest they are checked anyway."""
    original = load_model(saved)
    proto = onnx.load(str(saved))
    for e in proto.metadata_props:
        if e.key == "onnxforge.format":
            e.value = "saved_model/1"
    kept = [e for e in proto.metadata_props if e.key != "onnxforge.digest"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(tmp_path / "v1.onnx"))
    old = load_model(tmp_path / "v1.onnx")
    for a, b in zip(old.get_weights(), original.get_weights()):
        np.testing.assert_array_equal(a, b)
    proto.metadata_props.add(key="onnxforge.digest", value="sha256:" + "0" * 64)
    onnx.save(proto, str(tmp_path / "v1d.onnx"))
    _expect(tmp_path / "v1d.onnx", "onnxforge.digest", "does not match")


def test_external_data_checkpoint_has_the_same_digest(tmp_path):
    tf.layers.clear_session()
    model = tf.keras.Sequential([L.Input((64,)), L.Dense(32)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    one = model.save(tmp_path / "one.onnx")
    (tmp_path / "ext").mkdir()
    two = model.save(tmp_path / "ext" / "two.onnx", external_data=True)
    assert any(p.suffix == ".data" for p in (tmp_path / "ext").iterdir())
    assert _meta(onnx.load(str(one)))["onnxforge.digest"] == _meta(onnx.load(str(two), load_external_data=False))[
        "onnxforge.digest"]
    load_model(two)
    data = next(p for p in (tmp_path / "ext").iterdir() if p.suffix == ".data")
    blob = bytearray(data.read_bytes())
    blob[100] ^= 1
    data.write_bytes(bytes(blob))
    _expect(two, "onnxforge.digest", "does not match")


def test_save_weights_files_carry_and_check_a_digest(tmp_path, saved):
    model = load_model(saved)
    path = model.save_weights(tmp_path / "w.weights.onnx")
    assert _meta(onnx.load(str(path)))["onnxforge.format"] == "weights/2"
    data = bytearray(path.read_bytes())
    raw = onnx.load(str(path)).graph.initializer[0].raw_data
    data[bytes(data).index(raw)] ^= 4
    (tmp_path / "flip.weights.onnx").write_bytes(bytes(data))
    with pytest.raises(OnnxLoadError, match="does not match its SHA-256 digest"):
        model.load_weights(tmp_path / "flip.weights.onnx")
    model.load_weights(path)


def test_an_npz_zip_directory_far_larger_than_the_weights_need_is_not_parsed(tmp_path, saved, monkeypatch):
    """Before: zipfile built an entry object for each of 30,000 members, then their count was refused."""
    import zipfile

    from onnxforge.saving import npz_weights

    model = load_model(saved)
    with zipfile.ZipFile(tmp_path / "many.npz", "w") as z:
        for i in range(30_000):
            z.writestr(f"arr_{i}.npy", b"")
    monkeypatch.setattr(npz_weights.zipfile, "ZipFile", lambda *a, **k: pytest.fail("zipfile parsed it"))
    with pytest.raises(OnnxLoadError, match=r"its zip directory takes \d+ bytes, far more than \d+ members"):
        model.load_weights(tmp_path / "many.npz")


def test_npz_weights_declaring_huge_arrays_are_not_read(tmp_path, saved):
    """A few KB of zipped zeros can declare gigabytes; the header is checked before anything is read."""
    import io
    import zipfile

    model = load_model(saved)
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**20, 2**12)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("arr_0.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            for _ in range(64):
                f.write(b"\0" * 2**20)
    assert (tmp_path / "bomb.npz").stat().st_size < 2**20
    with pytest.raises(OnnxLoadError, match="'arr_0' declares 17179869184 bytes"):
        model.load_weights(tmp_path / "bomb.npz")
    np.savez(tmp_path / "ok.npz", *model.get_weights())
    model.load_weights(tmp_path / "ok.npz")


def _npz(path, members):
    """A zip of ``(name, bytes)`` members, deflated, as np.savez_compressed writes."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def _npy(shape, dtype="<f8", data=b""):
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue() + data


def test_npz_members_np_load_would_read_whole_are_refused(tmp_path, saved):
    """np.load serves members without the .npy suffix too: raw bytes read whole, or a .npy header declaring
    a terabyte that numpy allocates before reading. Every member is checked first."""
    model = load_model(saved)
    with pytest.raises(OnnxLoadError, match=r"member '__names__' is not one a weights \.npz holds") as info:
        model.load_weights(_npz(tmp_path / "raw.npz", [("__names__", b"\0" * 2**20)]))
    assert info.value.key == "__names__"
    with pytest.raises(OnnxLoadError, match=r"member 'w00000' is not one"):
        model.load_weights(_npz(tmp_path / "huge.npz", [("w00000", _npy((2**37,)))]))
    with pytest.raises(OnnxLoadError, match=r"member 'kernel.npy' is not one"):
        model.load_weights(_npz(tmp_path / "other.npz", [("kernel.npy", _npy((2,), data=b"\0" * 16))]))


def test_npz_members_that_declare_more_than_they_store_or_repeat_are_refused(tmp_path, saved):
    model = load_model(saved)
    short = _npz(tmp_path / "short.npz", [("arr_0.npy", _npy((300,), data=b"\0" * 8))])
    with pytest.raises(OnnxLoadError, match=r"member 'arr_0.npy' stores 8 bytes after its header, which declares 2400"):
        model.load_weights(short)
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = _npz(tmp_path / "twice.npz", [("arr_0.npy", _npy((1,), data=b"\0" * 8))] * 2)
    with pytest.raises(OnnxLoadError, match=r"member 'arr_0.npy' appears twice"):
        model.load_weights(twice)
    many = _npz(tmp_path / "many.npz", [(f"arr_{k}.npy", _npy((1,), data=b"\0" * 8)) for k in range(50)])
    with pytest.raises(OnnxLoadError, match=r"holds 50 members, far more than the model's weights.*at most 26"):
        model.load_weights(many)
    np.savez_compressed(tmp_path / "ok.npz", *model.get_weights())
    model.load_weights(tmp_path / "ok.npz")
    model.save_weights(tmp_path / "own.npz")
    model.load_weights(tmp_path / "own.npz")
