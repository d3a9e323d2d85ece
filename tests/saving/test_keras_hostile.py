"""A ``.keras`` / ``.weights.h5`` / ``.h5`` file is untrusted input: zip bombs, names escaping the folder,
duplicated members, corrupt JSON, configs asking for huge layers, HDF5 datasets declaring huge shapes, links
and external storage, non-numeric data, unknown classes and Python bytecode are each refused with a clear
error before anything is allocated or run; h5py missing says so; writes are atomic."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import onnxforge as of  # noqa: E402
from onnxforge.saving import KerasFileError, temp_files_for  # noqa: E402
from onnxforge.saving.keras_format import UnsupportedKerasLayerError  # noqa: E402


def _model():
    return of.Sequential([of.layers.Input((3,)), of.layers.Dense(2, name="d1"), of.layers.Dense(1, name="d2")])


@pytest.fixture
def archive(tmp_path):
    path = _model().save(tmp_path / "good.keras")
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.fixture
def compiled_archive(tmp_path):
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    path = model.save(tmp_path / "compiled.keras")
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _h5(build) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        build(f)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ the zip
def test_not_a_zip_truncated_and_missing_members(tmp_path, archive):
    (tmp_path / "text.keras").write_text("hello")
    with pytest.raises(KerasFileError, match="not a zip archive"):
        of.load_model(tmp_path / "text.keras")
    data = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(KerasFileError, match="not a zip archive|cannot be read"):
        of.load_model(tmp_path / "cut.keras")
    _write(tmp_path / "noconfig.keras", [(k, v) for k, v in archive.items() if k != "config.json"])
    with pytest.raises(KerasFileError, match=r"no 'config.json'.*\(at 'config.json'\)"):
        of.load_model(tmp_path / "noconfig.keras")
    _write(tmp_path / "noweights.keras", [(k, v) for k, v in archive.items() if k != "model.weights.h5"])
    with pytest.raises(KerasFileError, match="no 'model.weights.h5'"):
        of.load_model(tmp_path / "noweights.keras")
    with pytest.raises(FileNotFoundError, match="accessible `.keras` zip file"):
        of.load_model(tmp_path / "absent.keras")


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "assets/../../evil", "C:/evil", "assets\\..\\evil"])
def test_member_names_escaping_the_folder_are_refused(tmp_path, archive, name):
    _write(tmp_path / "m.keras", [*archive.items(), (name, b"x")])
    with pytest.raises(KerasFileError, match="leaves the archive's folder") as info:
        of.load_model(tmp_path / "m.keras")
    assert info.value.key == name
    assert not (tmp_path.parent / "evil.txt").exists()


def test_duplicated_members_are_ambiguous(tmp_path, archive):
    with pytest.warns(UserWarning, match="Duplicate name"):
        _write(tmp_path / "dup.keras", [*archive.items(), ("config.json", b"{}")])
    with pytest.raises(KerasFileError, match="more than once"):
        of.load_model(tmp_path / "dup.keras")


def test_zip_bombs_and_size_limits(tmp_path, archive):
    bomb = bytes(24 * 2**20)                              # 24 MiB of zeros deflate to ~24 KiB
    _write(tmp_path / "bomb.keras", [("config.json", archive["config.json"]), ("model.weights.h5", bomb)],
           compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(KerasFileError, match="decompression bomb"):
        of.load_model(tmp_path / "bomb.keras")
    with pytest.raises(KerasFileError, match="over the limit of 100"):
        of.load_model(tmp_path / "good.keras", max_bytes=100)
    big_config = b"[" + b"0," * (40 * 2**20) + b"0]"
    _write(tmp_path / "bigconfig.keras", [("config.json", big_config), ("model.weights.h5", archive["model.weights.h5"])])
    with pytest.raises(KerasFileError, match=r"over the limit.*\(at 'config.json'\)"):
        of.load_model(tmp_path / "bigconfig.keras")


# ------------------------------------------------------------------------------------------ the config
def _with_config(tmp_path, archive, config, name="c.keras"):
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    return _write(tmp_path / name, [("config.json", data), ("model.weights.h5", archive["model.weights.h5"])])


def test_corrupt_and_deeply_nested_json(tmp_path, archive):
    with pytest.raises(KerasFileError, match="not valid JSON"):
        of.load_model(_with_config(tmp_path, archive, b"{not json"))
    with pytest.raises(KerasFileError, match="not valid JSON.*Recursion|nests too deeply"):
        of.load_model(_with_config(tmp_path, archive, b"[" * 200000 + b"]" * 200000))
    with pytest.raises(KerasFileError, match="not a serialized Keras model"):
        of.load_model(_with_config(tmp_path, archive, [1, 2, 3]))


def test_config_asking_for_huge_layers_is_refused_before_allocating(tmp_path, archive):
    config = json.loads(archive["config.json"])
    config["config"]["layers"][1]["config"]["units"] = 10**9      # a 3 x 1e9 kernel: 12 GB
    config["config"]["layers"][1].pop("build_config", None)
    with pytest.raises(ValueError, match=r"layer 'd1' declares weight 'kernel' of shape \(3, 1000000000\)"):
        of.load_model(_with_config(tmp_path, archive, config))
    # A weights file declaring a matching dataset that stores nothing does not make it allocatable either.
    def bomb_file(f):
        f.create_group("layers/dense/vars").create_dataset("0", shape=(3, 10**9), dtype="f4", chunks=(1, 1024))
        f["layers/dense_1/vars/0"] = np.zeros((2, 1), np.float32)
        f["layers/dense_1/vars/1"] = np.zeros((1,), np.float32)

    bomb = _h5(bomb_file)
    path = _write(tmp_path / "shape_bomb.keras", [("config.json", json.dumps(config).encode()),
                                                  ("model.weights.h5", bomb)])
    with pytest.raises(ValueError, match=r"layer 'd1' declares weight 'kernel' of shape \(3, 1000000000\)"):
        of.load_model(path)


def test_unknown_and_custom_classes(tmp_path, archive):
    config = json.loads(archive["config.json"])
    config["config"]["layers"][1]["class_name"] = "NoSuchLayer"
    with pytest.raises(UnsupportedKerasLayerError, match="class NoSuchLayer .* has no onnxforge counterpart"):
        of.load_model(_with_config(tmp_path, archive, config))

    class Doubler(of.layers.Dense):
        pass

    saved = of.Sequential([of.layers.Input((3,)), Doubler(2, name="d1")]).save(tmp_path / "custom.keras")
    with zipfile.ZipFile(saved) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1].update(module="my_package.layers", registered_name="my_package>Doubler")
    path = _write(tmp_path / "custom2.keras", [("config.json", json.dumps(config).encode()),
                                               ("model.weights.h5", members["model.weights.h5"])])
    with pytest.raises(ValueError, match="Could not locate class 'my_package>Doubler'"):
        of.load_model(path)
    model = of.load_model(path, custom_objects={"my_package>Doubler": Doubler})
    assert type(model.layers[0]) is Doubler


def test_lambda_bytecode_needs_safe_mode_false(tmp_path, archive):
    config = json.loads(archive["config.json"])
    config["config"]["layers"].insert(2, {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
                                          "config": {"name": "lam", "function": {"class_name": "__lambda__", "config": {
                                              "code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}}})
    with pytest.raises(ValueError, match=r"layer 'lam' holds a Python `lambda`.*safe_mode=False"):
        of.load_model(_with_config(tmp_path, archive, config))


def _functional_with_op(tmp_path):
    inputs = of.layers.Input((3,))
    model = of.Model(inputs, of.layers.Dense(2, name="d")(of.ops.expand_dims(inputs, -1)[..., 0]))
    with zipfile.ZipFile(model.save(tmp_path / "ops.keras")) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    return members, config, next(l for l in config["config"]["layers"] if l["class_name"] == "ExpandDims")


def test_op_nodes_cannot_name_private_helpers(tmp_path):
    # An op node's module and class name (or an OpCall's path) come from the file; they once reached any
    # attribute of onnxforge.ops' modules: _util.register_functional_tensor rewired every later functional call.
    from onnxforge.ops import _util

    before = list(_util._FUNCTIONAL)
    members, config, node = _functional_with_op(tmp_path)
    node.update(module="keras.src.ops._util", class_name="RegisterFunctionalTensor", config={"name": "x"})
    node["inbound_nodes"][0]["kwargs"] = {"op_call": "pwned"}
    with pytest.raises(UnsupportedKerasLayerError, match="RegisterFunctionalTensor has no onnxforge counterpart"):
        of.load_model(_with_config(tmp_path, members, config))
    members, config, node = _functional_with_op(tmp_path)
    node.update(module="keras.layers", class_name="OpCall", registered_name=None,
                config={"name": "x", "op": "_util.register_functional_tensor",
                        "args": [{"class_name": "__tensor__"}], "kwargs": {"op_call": "pwned"}})
    with pytest.raises(KerasFileError, match="Unknown keras.ops function '_util.register_functional_tensor'"):
        of.load_model(_with_config(tmp_path, members, config))
    assert _util._FUNCTIONAL == before
    for path in ("numpy.np", "core.Any", "arrays_creation.builtins", "numpy.__class__", "numpy._leaves",
                 "linalg_spectral._svd_tall", "_util.symbolic", "linalg_spectral.__dict__"):
        with pytest.raises(ValueError, match="Unknown keras.ops function"):
            of.layers.OpCall(path)
    # A private graph op a public one delegates to is what the functional API records (ops.svd -> _svd).
    assert of.layers.OpCall("linalg_spectral._svd", [{"class_name": "__tensor__"}],
                            {"full_matrices": False, "compute_uv": False}).op == "linalg_spectral._svd"
    model = of.load_model(tmp_path / "ops.keras")     # the public op still loads
    assert model.predict(np.ones((1, 3), np.float32), verbose=0).shape == (1, 2)


# ------------------------------------------------------------------------------------------ the HDF5
def _weights_with(build):
    def make(f):
        f.create_group("vars").attrs["name"] = "sequential"
        d2 = f.create_group("layers/dense_1/vars")
        d2["0"] = np.zeros((2, 1), np.float32)
        d2["1"] = np.zeros((1,), np.float32)
        build(f)

    return _h5(make)


def _load_weights_file(tmp_path, data):
    (tmp_path / "w.weights.h5").write_bytes(data)
    model = _model()
    model.load_weights(tmp_path / "w.weights.h5")
    return model


def test_dataset_declaring_a_huge_shape_is_never_read(tmp_path):
    def build(f):
        g = f.create_group("layers/dense/vars")
        g.create_dataset("0", shape=(10**6, 10**6), dtype="f4", chunks=(1, 1))   # 4 TB declared, nothing stored
        g["1"] = np.zeros((2,), np.float32)

    data = _weights_with(build)
    assert len(data) < 100_000
    with pytest.raises(ValueError, match=r"expects \(3, 2\), the file holds \(1000000, 1000000\)"):
        _load_weights_file(tmp_path, data)


@pytest.mark.parametrize("kind", ["soft", "external"])
def test_links_out_of_the_file_are_refused(tmp_path, kind):
    (tmp_path / "other.h5").write_bytes(_h5(lambda f: f.create_dataset("x", data=np.ones((3, 2), np.float32))))

    def build(f):
        g = f.create_group("layers/dense/vars")
        g["1"] = np.zeros((2,), np.float32)
        g["0"] = h5py.SoftLink("/layers/dense_1/vars/0") if kind == "soft" else \
            h5py.ExternalLink(str(tmp_path / "other.h5"), "/x")

    with pytest.raises(KerasFileError, match=r"(SoftLink|ExternalLink).*refusing.*\(at 'layers/dense/vars/0'\)"):
        _load_weights_file(tmp_path, _weights_with(build))


def test_external_storage_and_non_numeric_data_are_refused(tmp_path):
    (tmp_path / "raw.bin").write_bytes(np.ones((3, 2), np.float32).tobytes())

    def external(f):
        g = f.create_group("layers/dense/vars")
        g.create_dataset("0", shape=(3, 2), dtype="f4", external=[(str(tmp_path / "raw.bin"), 0, 24)])
        g["1"] = np.zeros((2,), np.float32)

    with pytest.raises(KerasFileError, match="external file"):
        _load_weights_file(tmp_path, _weights_with(external))

    def strings(f):
        g = f.create_group("layers/dense/vars")
        g["0"] = np.array([b"a", b"b"])
        g["1"] = np.zeros((2,), np.float32)

    with pytest.raises(KerasFileError, match="not a numeric tensor"):
        _load_weights_file(tmp_path, _weights_with(strings))
    (tmp_path / "junk.weights.h5").write_bytes(b"\x89HDF junk")
    with pytest.raises(KerasFileError, match="not a readable HDF5 file"):
        _model().load_weights(tmp_path / "junk.weights.h5")


def test_legacy_h5_without_a_model_config(tmp_path):
    (tmp_path / "w.h5").write_bytes(_h5(lambda f: f.attrs.__setitem__("layer_names", np.asarray([b"d1"]))))
    with pytest.raises(KerasFileError, match="No model config found.*weights only"):
        of.load_model(tmp_path / "w.h5")


# ------------------------------------------------------------------------------------------ h5py, atomicity
def test_missing_h5py_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    model = _model()
    with pytest.raises(ImportError, match=r"needs the h5py package.*pip install h5py"):
        model.save(tmp_path / "m.keras")
    with pytest.raises(ImportError, match="h5py"):
        model.save_weights(tmp_path / "m.weights.h5")
    model.save(tmp_path / "m.onnx")           # onnxforge's own format needs nothing extra


def test_a_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    from onnxforge.saving.keras_format import archive as archive_module

    model = _model()
    path = model.save(tmp_path / "m.keras")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        archive_module.save_keras(model, path)
    assert path.read_bytes() == before and temp_files_for(path) == []
    with pytest.raises(FileExistsError):
        model.save(path, overwrite=False)


# ------------------------------------------------------------------------------------------ every failure
def _dense(config):
    return config["config"]["layers"][1]


@pytest.mark.parametrize("edit", [
    lambda c: _dense(c).update(class_name="Lambda"),                                     # no 'function'
    lambda c: _dense(c).update(module=5),
    lambda c: _dense(c).update(build_config={"input_shape": [None, float("nan")]}),
    lambda c: _dense(c)["config"].update(kernel_initializer={
        "module": "keras.initializers", "class_name": "Orthogonal", "config": {"gain": "x"}, "registered_name": None}),
    lambda c: _dense(c)["config"].update(dtype="object"),
    lambda c: _dense(c)["config"].update(units=10**19),                                  # the weight budget
    lambda c: c["config"].update(layers=[1, 2]),
    lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[2**63, 3]),
], ids=["lambda-without-function", "module-int", "build-nan", "orthogonal-gain-str",
        "dtype-object", "units-1e19", "layers-ints", "batch-2**63"])
def test_any_failure_rebuilding_a_config_is_a_keras_file_error_naming_the_member(tmp_path, compiled_archive, edit):
    config = json.loads(compiled_archive["config.json"])
    edit(config)
    with pytest.raises(KerasFileError) as info:
        of.load_model(_with_config(tmp_path, compiled_archive, config))
    assert info.value.key in ("config.json", "compile_config", "model.weights.h5"), info.value
    assert "c.keras" in str(info.value)


def test_unsupported_layers_are_a_keras_file_error_naming_the_file(tmp_path, archive):
    config = json.loads(archive["config.json"])
    _dense(config)["class_name"] = "NoSuchLayer"
    with pytest.raises(KerasFileError, match=r"(?s)Cannot load Keras file .*c\.keras.*NoSuchLayer") as info:
        of.load_model(_with_config(tmp_path, archive, config))
    assert isinstance(info.value, UnsupportedKerasLayerError) and isinstance(info.value, NotImplementedError)


def test_a_broken_compile_config_is_a_keras_file_error(tmp_path, archive):
    config = json.loads(archive["config.json"])
    config["compile_config"] = {"optimizer": {"module": "keras.optimizers", "class_name": "Adam",
                                              "config": {"beta_1": "x"}, "registered_name": None},
                                "loss": "mse"}
    with pytest.raises(KerasFileError) as info:
        of.load_model(_with_config(tmp_path, archive, config))
    assert info.value.key == "compile_config"


def test_legacy_h5_nesting_too_deeply_is_a_keras_file_error(tmp_path):
    path = tmp_path / "nest.h5"
    with pytest.warns(UserWarning, match="legacy"):
        _model().save(path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        inner = config["config"]["layers"][1]
        for i in range(300):        # JSON this deep parses; rebuilding it recursively does not
            inner = {"class_name": "Sequential", "config": {"name": f"s{i}", "layers": [inner]}}
        config["config"]["layers"][1] = inner
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(KerasFileError, match="nests too deeply") as info:
        of.load_model(path)
    assert info.value.key == "model_config"


def test_a_corrupt_compressed_chunk_is_a_keras_file_error_naming_the_dataset(tmp_path):
    def build(f):
        g = f.create_group("layers/dense/vars")
        g.create_dataset("0", data=np.random.rand(3, 2).astype(np.float32), chunks=(3, 2), compression="gzip")
        g["1"] = np.zeros((2,), np.float32)

    data = bytearray(_weights_with(build))
    with h5py.File(io.BytesIO(bytes(data)), "r") as f:
        chunk = f["layers/dense/vars/0"].id.get_chunk_info(0)
    data[chunk.byte_offset:chunk.byte_offset + chunk.size] = b"\xaa" * chunk.size
    with pytest.raises(KerasFileError, match=r"cannot be read \(OSError.*\(at 'layers/dense/vars/0'\)"):
        _load_weights_file(tmp_path, bytes(data))


def test_missing_keras_file_is_both_value_error_and_file_not_found(tmp_path):
    """Keras 3 raises ValueError for a missing .keras path; Python code catches FileNotFoundError."""
    import onnxforge.keras as fkeras

    for expected in (ValueError, FileNotFoundError):
        with pytest.raises(expected, match="File not found: filepath="):
            fkeras.models.load_model(tmp_path / "missing.keras")


@pytest.mark.parametrize("value", [0x7F, 0xFF])
def test_corrupt_hdf5_headers_are_keras_file_errors(tmp_path, value):
    # Bytes of the attribute message that follows the name "backend": h5py raised RuntimeError ("Can't
    # synchronously determine if attribute exists") or TypeError ("Unknown string encoding") from
    # `name in attrs` / `attrs[name]`, outside any stage, naming neither the file nor the attribute.
    path = tmp_path / "m.h5"
    with pytest.warns(UserWarning, match="legacy"):
        _model().save(path)
    data = path.read_bytes()
    at = data.index(b"backend\x00")
    refused = 0
    for offset in range(8, 24):
        corrupt = bytearray(data)
        corrupt[at + offset] = value
        path.write_bytes(bytes(corrupt))
        try:
            of.load_model(path)
        except KerasFileError as e:
            refused += "corrupt or unreadable" in str(e) and "m.h5" in str(e)
    assert refused >= 4     # the others are bytes HDF5 does not check, or are refused by another check


def test_a_superblock_address_past_any_file_is_a_keras_file_error(tmp_path, archive):
    # The superblock's addresses (bytes 24-55) set to ~2**63: h5py's file-object driver raised OverflowError
    # (not a ValueError) while opening the weights of a .keras archive.
    weights = archive["model.weights.h5"]
    refused = 0
    for offset in range(40, 56):
        corrupt = bytearray(weights)
        corrupt[offset] = 0xFF if corrupt[offset] != 0xFF else 0
        path = _write(tmp_path / "s.keras", [(n, bytes(corrupt) if n == "model.weights.h5" else d)
                                             for n, d in archive.items()])
        try:
            of.load_model(path)
        except KerasFileError as e:
            refused += "OverflowError" in str(e) and "s.keras" in str(e)
    assert refused >= 2


def _zero_free_space(data: bytes) -> bytes:
    """The bytes with the free-space object of the first global heap collection declaring size 0."""
    start = data.index(b"GCOL\x01\x00\x00\x00")
    end = start + struct.unpack_from("<Q", data, start + 8)[0]
    at = start + 16
    while True:
        index, _, _, size = struct.unpack_from("<HHIQ", data, at)
        if index == 0:
            return data[:at + 8] + bytes(8) + data[at + 16:]
        at += 16 + (size + 7) // 8 * 8
        assert at < end


def test_a_global_heap_that_would_hang_hdf5_is_refused_first(tmp_path, archive):
    # One zeroed size in the heap holding the string attributes: h5py's read of `model_config` never returned
    # (the HDF5 library looped in C, out of reach of signals). Run in a child with a deadline, to fail, not hang.
    # The weights of a .keras archive are checked the same way (a later read of their strings would hang).
    path = tmp_path / "m.h5"
    with pytest.warns(UserWarning, match="legacy"):
        _model().save(path)
    path.write_bytes(_zero_free_space(path.read_bytes()))
    weights = tmp_path / "w.keras"
    _write(weights, [(n, _zero_free_space(d) if n == "model.weights.h5" else d) for n, d in archive.items()])
    script = ("import sys, onnxforge as of\n"
              "for p in sys.argv[1:]:\n"
              "    try:\n        of.load_model(p)\n    except ValueError as e:\n        print(e)\n")
    done = subprocess.run([sys.executable, "-c", script, str(path), str(weights)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    lines = [line for line in done.stdout.splitlines() if "global heap" in line]
    assert len(lines) == 2 and "m.h5" in lines[0] and "w.keras" in lines[1], done.stdout + done.stderr[-2000:]
    assert "its free space at byte" in lines[0] and "declares 0 bytes" in lines[0]
