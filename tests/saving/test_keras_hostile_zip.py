"""Hostile ``.keras`` archives and weights, second pass: a zip directory of tens of thousands of entries is
refused before ``zipfile`` parses it (``saving/zip_directory.py``), a config of millions of JSON values
before ``json`` parses it; members that lie about their size,
HDF5 virtual datasets mapping local files, object references and compound / variable-length / complex
datasets are refused (these were already, and stay so)."""
from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import onnxforge as of  # noqa: E402
from onnxforge.saving import KerasFileError  # noqa: E402
from onnxforge.saving.keras_format import archive  # noqa: E402
from onnxforge.saving.keras_format.archive import MAX_DIRECTORY_BYTES  # noqa: E402
from onnxforge.saving.zip_directory import directory_size  # noqa: E402


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    model = of.Sequential([of.layers.Input((3,)), of.layers.Dense(2, name="d1"), of.layers.Dense(1, name="d2")])
    path = model.save(tmp_path_factory.mktemp("good") / "good.keras")
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _archive(path, items, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return path


def _never_parsed(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("zipfile parsed the directory")
    monkeypatch.setattr(archive.zipfile, "ZipFile", refuse)


def test_a_directory_of_many_entries_is_refused_before_zipfile_parses_it(tmp_path, members, monkeypatch):
    # Before: zipfile built 70,000 entries (about 6x the file's size in memory) and only then was the
    # asset count refused; a 100 MB archive took a gigabyte and half a minute.
    path = _archive(tmp_path / "many.keras", [*members.items(), *((f"assets/{i}", b"") for i in range(70_000))])
    assert directory_size(path) > MAX_DIRECTORY_BYTES      # over 65,535 entries: ZIP64 end records too
    _never_parsed(monkeypatch)
    with pytest.raises(KerasFileError, match=r"its zip directory takes \d+ bytes, over the limit"):
        of.load_model(path)


def test_an_end_record_understating_its_entry_count_changes_nothing(tmp_path, members, monkeypatch):
    # zipfile reads the directory for as many bytes as the end record declares, whatever count it gives.
    path = _archive(tmp_path / "count.keras", [*members.items(), *((f"assets/{i}", b"") for i in range(60_000))])
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)
    path.write_bytes(bytes(data))
    _never_parsed(monkeypatch)
    with pytest.raises(KerasFileError, match="zip directory takes"):
        of.load_model(path)


def test_real_archives_with_assets_still_load(tmp_path, members):
    path = _archive(tmp_path / "assets.keras", [*members.items(), *((f"assets/vocab/{i}.txt", b"a") for i in range(2000))])
    assert directory_size(path) < MAX_DIRECTORY_BYTES
    assert of.load_model(path).get_weights()[0].shape == (3, 2)


def _lying(path, items, member, declared):
    """An archive whose ``member`` declares ``declared`` bytes in both its headers but inflates to more."""
    _archive(path, items, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    for signature, name_at, name_from, size_at in ((b"PK\x03\x04", 26, 30, 22), (b"PK\x01\x02", 28, 46, 24)):
        at = data.find(signature)
        while at >= 0:
            length = struct.unpack("<H", data[at + name_at:at + name_at + 2])[0]
            if bytes(data[at + name_from:at + name_from + length]) == member.encode():
                struct.pack_into("<I", data, at + size_at, declared)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    return path


def test_a_member_inflating_past_its_declared_size_is_refused(tmp_path, members):
    for member, padding in (("config.json", b" "), ("model.weights.h5", b"\0")):
        items = [(n, d + padding * (50 * 2**20) if n == member else d) for n, d in members.items()]
        path = _lying(tmp_path / "lying.keras", items, member, len(members[member]))
        with pytest.raises(KerasFileError, match=r"cannot be read \(Bad CRC-32") as info:
            of.load_model(path)
        assert info.value.key == member


def _weights(build):
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("vars").attrs["name"] = "sequential"
        d2 = f.create_group("layers/dense_1/vars")
        d2["0"], d2["1"] = np.zeros((2, 1), np.float32), np.zeros((1,), np.float32)
        g = f.create_group("layers/dense/vars")
        g["1"] = np.zeros((2,), np.float32)
        build(f, g)
    return buffer.getvalue()


def test_hdf5_datasets_that_are_not_plain_numeric_tensors_are_refused(tmp_path, members):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["x"] = np.arange(6, dtype=np.float32).reshape(3, 2)

    def virtual(source):
        def build(f, g):
            layout = h5py.VirtualLayout(shape=(3, 2), dtype="f4")
            layout[:] = h5py.VirtualSource(source, "x", shape=(3, 2))
            g.create_virtual_dataset("0", layout, fillvalue=7)
        return build

    def reference(f, g):
        target = f.create_dataset("hidden", data=np.ones((3, 2), np.float32))
        g.create_dataset("0", data=np.array([[target.ref] * 2] * 3), dtype=h5py.ref_dtype)

    cases = {
        "virtual dataset (absolute path)": (virtual(str(secret)), "virtual"),
        "virtual dataset (relative path)": (virtual("secret.h5"), "virtual"),
        "object references": (reference, "not a numeric tensor"),
        "compound": (lambda f, g: g.__setitem__("0", np.zeros((3, 2), [("a", "f4")])), "not a numeric tensor"),
        "variable length": (lambda f, g: g.create_dataset("0", shape=(3, 2), dtype=h5py.vlen_dtype(np.float32)),
                            "not a numeric tensor"),
        "complex": (lambda f, g: g.__setitem__("0", np.zeros((3, 2), np.complex64)), "not a numeric tensor"),
    }
    for name, (build, fragment) in cases.items():
        path = _archive(tmp_path / "m.keras", [("config.json", members["config.json"]),
                                               ("model.weights.h5", _weights(build))])
        with pytest.raises(KerasFileError, match=fragment) as info:
            of.load_model(path)
        assert info.value.key == "layers/dense/vars/0", name


def test_config_json_of_millions_of_values_is_refused_before_parsing(tmp_path, members, monkeypatch):
    # Before: 30 MB of "[]," (under the 64 MiB size bound) became 10 million Python lists, about 700 MB,
    # before anything looked at them; a legacy .h5's model_config attribute likewise.
    from onnxforge.saving.keras_format import legacy_h5

    hostile = b"[" + b"[]," * (10**7) + b"[]]"
    path = _archive(tmp_path / "values.keras", [("config.json", hostile), ("model.weights.h5", members["model.weights.h5"])])
    monkeypatch.setattr(archive.json, "loads", lambda *a, **k: pytest.fail("json parsed it"))
    with pytest.raises(KerasFileError, match=r"the JSON holds about 20000002 values, over the limit of 4000000") as info:
        of.load_model(path)
    assert info.value.key == "config.json"
    legacy = tmp_path / "values.h5"
    with h5py.File(legacy, "w", libver="latest") as f:
        f.attrs["model_config"] = hostile[:15 * 10**6].decode() + "[]]"
        f.create_group("model_weights")
    monkeypatch.setattr(legacy_h5.json, "loads", lambda *a, **k: pytest.fail("json parsed it"))
    with pytest.raises(KerasFileError, match=r"the JSON holds about \d{8} values, over the limit") as info:
        of.load_model(legacy)
    assert info.value.key == "model_config"


def test_real_configs_are_far_under_the_value_bound():
    keras = pytest.importorskip("keras")
    import json

    config = json.dumps(keras.applications.DenseNet121(weights=None).get_config())
    assert sum(config.count(mark) for mark in "[{,") < archive.MAX_CONFIG_VALUES / 100


def test_deeply_nested_or_cyclic_hdf5_groups_are_walked_in_bounded_time(tmp_path, members):
    # Before: h5py's visititems took 24 s on 3,000 nested groups (a 3 MB file), the square of the depth.
    import time

    def deep(f, g):
        g["0"] = np.zeros((3, 2), np.float32)
        group = f["layers/dense_1"]
        for _ in range(3000):
            group = group.create_group("x")

    def cycle(f, g):
        g["0"] = np.zeros((3, 2), np.float32)
        f["layers/dense_1/vars/up"] = f["/"]       # a hard link back to the root: walked once

    path = _archive(tmp_path / "deep.keras", [("config.json", members["config.json"]), ("model.weights.h5", _weights(deep))])
    started = time.monotonic()
    with pytest.raises(KerasFileError, match="its groups nest over 256 deep"):
        of.load_model(path)
    assert time.monotonic() - started < 5
    path = _archive(tmp_path / "cycle.keras", [("config.json", members["config.json"]), ("model.weights.h5", _weights(cycle))])
    with pytest.raises(KerasFileError, match=r"expected 2 variables, but received 3"):
        of.load_model(path)
