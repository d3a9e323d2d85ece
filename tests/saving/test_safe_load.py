"""load_onnx on crafted hostile files: every failure is an OnnxLoadError naming the file and the cause."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxforge.saving import OnnxLoadError, load_onnx

W = np.arange(6, dtype=np.float32).reshape(3, 2) - 2.5


def matmul_relu(weight: TensorProto | None = None) -> onnx.ModelProto:
    """x[N,3] @ w[3,2] -> Relu, with a dynamic batch dim."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    w = weight if weight is not None else numpy_helper.from_array(W, "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
                          "g", [x], [y], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return m


def external(location: str, *, offset: int | None = None, length: int | None = None,
             dims=(3, 2), checksum: str | None = None) -> TensorProto:
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=list(dims), data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", offset), ("length", length), ("checksum", checksum)):
        if value is not None:
            t.external_data.add(key=key, value=str(value))
    return t


def save(model: onnx.ModelProto, path) -> str:
    path.write_bytes(model.SerializeToString())
    return str(path)


def expect(path, *fragments, **kw) -> OnnxLoadError:
    with pytest.raises(OnnxLoadError) as info:
        load_onnx(path, **kw)
    err = info.value
    assert isinstance(err, ValueError)
    assert str(path) in str(err)
    for fragment in fragments:
        assert fragment in str(err), str(err)
    return err


def test_valid_model_round_trips_and_runs(tmp_path, checked):
    m = checked(matmul_relu())
    loaded = load_onnx(save(m, tmp_path / "m.onnx"))
    assert loaded == m
    x = np.array([[1, 2, 3], [-1, 0, 4]], np.float32)
    (y,) = ort.InferenceSession(loaded.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, np.maximum(x @ W, 0), rtol=1e-6)


def test_external_data_is_validated_and_loaded(tmp_path, checked):
    blob = b"\xff" * 8 + W.tobytes()
    (tmp_path / "w.bin").write_bytes(blob)
    m = matmul_relu(external("w.bin", offset=8, length=24, checksum=hashlib.sha1(W.tobytes()).hexdigest()))
    path = save(m, tmp_path / "m.onnx")
    loaded = load_onnx(path)
    (w,) = loaded.graph.initializer
    assert w.data_location == TensorProto.DEFAULT and not w.external_data
    np.testing.assert_array_equal(numpy_helper.to_array(w), W)
    checked(loaded)
    # Validated but left on disk:
    (ref,) = load_onnx(path, load_external_data=False).graph.initializer
    assert ref.data_location == TensorProto.EXTERNAL and not ref.raw_data


def test_external_data_written_by_onnx_loads(tmp_path):
    m = matmul_relu(numpy_helper.from_array(np.ones((64, 2), np.float32) * W[0, 0], "w"))
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 64
    onnx.save_model(m, str(tmp_path / "m.onnx"), save_as_external_data=True, location="weights.data",
                    size_threshold=0)
    (w,) = load_onnx(tmp_path / "m.onnx").graph.initializer
    np.testing.assert_array_equal(numpy_helper.to_array(w), np.full((64, 2), W[0, 0], np.float32))


def test_external_data_refused_when_not_allowed(tmp_path):
    (tmp_path / "w.bin").write_bytes(W.tobytes())
    err = expect(save(matmul_relu(external("w.bin")), tmp_path / "m.onnx"), "allow_external_data=False", "'w.bin'",
                 allow_external_data=False)
    assert err.location == "w.bin" and "initializer 'w'" in err.tensor


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"PK\x03\x04\x14\x00\x00\x00archive", "ZIP archive"),
        (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.", "pickle"),
        (b"\x89HDF\r\n\x1a\n\x00\x00", "HDF5"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", "Git LFS pointer"),
        (b'{"format": "keras"}', "JSON"),
        (b"\xff\xfe\xfd\xfc garbage", "not an ONNX ModelProto field"),
    ],
)
def test_wrong_magic(tmp_path, content, fragment):
    p = tmp_path / "m.onnx"
    p.write_bytes(content)
    expect(p, "not an ONNX model", fragment)


def test_empty_missing_and_directory(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    expect(tmp_path / "empty.onnx", "empty")
    expect(tmp_path / "missing.onnx", "cannot open the file")
    expect(tmp_path, "not a regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    # open() of a FIFO blocks until something writes to it: the regular-file check came only after that.
    import threading

    os.mkfifo(tmp_path / "m.onnx")
    os.mkfifo(tmp_path / "w.bin")
    outcome = []

    def load():
        try:
            load_onnx(tmp_path / "m.onnx")
        except OnnxLoadError as e:
            outcome.append(str(e))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():   # release the blocked open, then fail
        with open(tmp_path / "m.onnx", "wb"):
            pass
        thread.join(10)
        pytest.fail("load_onnx waited for a writer on a FIFO")
    assert outcome and "not a regular file" in outcome[0]


@pytest.mark.parametrize("cut", [1, 10, 60])
def test_truncated(tmp_path, cut):
    data = matmul_relu().SerializeToString()
    p = tmp_path / "m.onnx"
    p.write_bytes(data[:-cut])
    expect(p, "truncated")


def test_corrupt_inside_a_field(tmp_path):
    # Well-framed at the top level (ir_version, then a 1-byte graph), but the graph's inside is invalid
    # (wire type 7 does not exist), so protobuf's parser refuses it.
    p = tmp_path / "m.onnx"
    p.write_bytes(b"\x08\x0a" + b"\x3a\x01\x0f")
    expect(p, "corrupt")


def test_protobuf_without_graph(tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes(b"\x08\x0a")  # ir_version = 10 and nothing else
    expect(p, "has no graph")


def test_file_over_max_bytes(tmp_path):
    expect(save(matmul_relu(), tmp_path / "m.onnx"), "over the limit of 50 (max_bytes)", max_bytes=50)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (tag, length, payload)."""
    def varint(v: int) -> bytes:
        out = bytearray()
        while True:
            out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
            v >>= 7
            if not v:
                return bytes(out)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_deeply_nested_subgraphs_fail_cleanly(tmp_path):
    # 1000 If nodes nested through then_branch, written as raw protobuf (onnx.helper itself refuses to
    # build it): beyond protobuf's recursion limit, it must be an error, not a crashed interpreter.
    graph = b""
    for _ in range(1000):
        attr = _field(1, b"then_branch") + _field(6, graph) + b"\xa0\x01\x05"  # name, g, type=GRAPH
        graph = _field(1, _field(5, attr) + _field(4, b"If"))  # GraphProto.node = NodeProto(attribute, op_type)
    p = tmp_path / "deep.onnx"
    p.write_bytes(b"\x08\x0a" + _field(7, graph))
    expect(p, "corrupt or not an ONNX model")


@pytest.mark.parametrize(
    "location, fragment",
    [
        ("/etc/passwd", "absolute path"),
        ("../secret.bin", "contains '..'"),
        ("sub/../../secret.bin", "contains '..'"),
        ("..\\secret.bin", "contains '..'"),
        ("C:\\Windows\\win.ini", "absolute path"),
        ("", "is empty"),
        ("*/_ORT_MEM_ADDR_/*", "in-memory-address marker"),   # onnxruntime would read offset as a pointer
        ("*\\_ORT_MEM_ADDR_\\*", "in-memory-address marker"),
    ],
)
def test_external_location_escaping_the_folder(tmp_path, location, fragment):
    (tmp_path / "secret.bin").write_bytes(W.tobytes())
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    err = expect(save(matmul_relu(external(location)), model_dir / "m.onnx"), "initializer 'w'", fragment)
    assert err.location == location


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_resolving_outside_the_folder(tmp_path):
    (tmp_path / "secret.bin").write_bytes(W.tobytes())
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(tmp_path / "secret.bin", model_dir / "w.bin")
    expect(save(matmul_relu(external("w.bin")), model_dir / "m.onnx"), "initializer 'w'", "'w.bin'",
           "outside the model's folder")
    # A symlink that stays inside the folder is fine.
    (model_dir / "real.bin").write_bytes(W.tobytes())
    os.symlink(model_dir / "real.bin", model_dir / "inside.bin")
    (w,) = load_onnx(save(matmul_relu(external("inside.bin")), model_dir / "m2.onnx")).graph.initializer
    np.testing.assert_array_equal(numpy_helper.to_array(w), W)


def test_external_file_shorter_than_offset_plus_length(tmp_path):
    (tmp_path / "w.bin").write_bytes(W.tobytes())  # 24 bytes
    expect(save(matmul_relu(external("w.bin", offset=8, length=24)), tmp_path / "m.onnx"),
           "initializer 'w'", "'w.bin'", "has only 24 bytes", "offset + length = 32")


def test_external_length_not_matching_dims(tmp_path):
    (tmp_path / "w.bin").write_bytes(W.tobytes())
    expect(save(matmul_relu(external("w.bin", length=16)), tmp_path / "m.onnx"), "initializer 'w'",
           "= 24 bytes", "has length 16")


def test_external_file_missing_or_not_regular(tmp_path):
    expect(save(matmul_relu(external("nowhere.bin")), tmp_path / "m.onnx"), "'nowhere.bin'", "cannot be opened")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.bin")  # reading a FIFO would block forever
        expect(save(matmul_relu(external("pipe.bin")), tmp_path / "m.onnx"), "'pipe.bin'", "not a regular file")


def test_external_bad_offset_and_checksum(tmp_path):
    (tmp_path / "w.bin").write_bytes(W.tobytes())
    expect(save(matmul_relu(external("w.bin", offset="-4")), tmp_path / "m.onnx"), "offset='-4'")
    expect(save(matmul_relu(external("w.bin", checksum="0" * 40)), tmp_path / "m.onnx"), "SHA-1 checksum")


def test_external_escape_inside_a_subgraph_constant(tmp_path):
    t = external("../../etc/hosts", dims=(2,))
    t.name = "hidden"
    then = helper.make_graph([helper.make_node("Constant", [], ["o"], value=t, name="k")], "then", [],
                             [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])])
    safe = helper.make_graph([helper.make_node("Constant", [], ["o"], value_floats=[0.0, 1.0])], "else", [],
                             [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])])
    g = helper.make_graph([helper.make_node("If", ["c"], ["o"], then_branch=then, else_branch=safe, name="branch")],
                          "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                          [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    err = expect(save(m, tmp_path / "m.onnx"), "'hidden'", "node 'k' (Constant)", "subgraph 'then_branch'",
                 "node 'branch' (If)", "contains '..'")
    assert "hidden" in err.tensor


def test_oversize_declared_dims(tmp_path):
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**6, 10**6])
    expect(save(matmul_relu(huge), tmp_path / "m.onnx"), "initializer 'w'", "4000000000000 bytes",
           "max_tensor_bytes")
    expect(save(matmul_relu(), tmp_path / "m.onnx"), "24 bytes", "over the limit of 16", max_tensor_bytes=16)


def test_inline_data_not_matching_dims(tmp_path):
    short_raw = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 2], raw_data=W.tobytes()[:20])
    expect(save(matmul_relu(short_raw), tmp_path / "m.onnx"), "initializer 'w'", "raw_data holds 20 bytes")
    few_floats = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 2], float_data=[1.0, 2.0])
    expect(save(matmul_relu(few_floats), tmp_path / "m.onnx"), "float_data holds 2 values where 6")
    no_data = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 2])
    expect(save(matmul_relu(no_data), tmp_path / "m.onnx"), "any data field holds 0 values where 6")
    bad_type = TensorProto(name="w", data_type=99, dims=[1], raw_data=b"\x00")
    expect(save(matmul_relu(bad_type), tmp_path / "m.onnx"), "unknown data_type 99")
    negative = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-1, 2])
    expect(save(matmul_relu(negative), tmp_path / "m.onnx"), "negative dims")


def test_packed_sub_byte_types_are_sized_right(tmp_path):
    # Five int4 values pack into three bytes; a model storing them that way is valid.
    t = TensorProto(name="w", data_type=TensorProto.INT4, dims=[5], raw_data=b"\x21\x43\x05")
    m = matmul_relu()
    m.graph.initializer.append(t)
    assert len(load_onnx(save(m, tmp_path / "m.onnx")).graph.initializer) == 2
    m.graph.initializer[1].raw_data = b"\x21\x43\x05\x00"
    expect(save(m, tmp_path / "m.onnx"), "= 3 bytes", "raw_data holds 4 bytes")


# ------------------------------------------------------------------------------------ hardening (issue 11)
@pytest.mark.parametrize("offset", ["\u0661\u0662", "\u00b2", "1_6", "0x10", "1e2", "16 ", " 16", "+16", "\uff11\uff16"])
def test_external_offsets_onnxruntime_would_refuse_are_refused(tmp_path, offset):
    """Non-ASCII digits (Arabic-Indic, superscripts, fullwidth) pass str.isdigit; onnxruntime refuses
    them (and signs, spaces, underscores), and so must the loader (before: accepted, or a raw ValueError)."""
    (tmp_path / "ort").mkdir()
    (tmp_path / "ort" / "w.bin").write_bytes(b"\0" * 16 + W.tobytes())
    with pytest.raises(Exception):   # the oracle
        ort.InferenceSession(save(matmul_relu(external("w.bin", offset=offset, length=24)), tmp_path / "ort" / "m.onnx"),
                             providers=["CPUExecutionProvider"])
    (tmp_path / "w.bin").write_bytes(b"\0" * 16 + W.tobytes())
    expect(save(matmul_relu(external("w.bin", offset=offset, length=24)), tmp_path / "m.onnx"),
           f"offset={offset!r}", "ASCII digits")


@pytest.mark.parametrize("offset", ["16", "0016"])
def test_external_offsets_onnxruntime_accepts_load(tmp_path, offset):
    (tmp_path / "w.bin").write_bytes(b"\0" * 16 + W.tobytes())
    path = save(matmul_relu(external("w.bin", offset=offset, length=24)), tmp_path / "m.onnx")
    (w,) = load_onnx(path).graph.initializer
    np.testing.assert_array_equal(numpy_helper.to_array(w), W)
    ort.InferenceSession(path, providers=["CPUExecutionProvider"])   # the oracle takes it too


def test_external_data_with_a_key_onnxruntime_refuses(tmp_path):
    (tmp_path / "w.bin").write_bytes(W.tobytes())
    t = external("w.bin")
    t.external_data.add(key="basepath", value="/etc")
    expect(save(matmul_relu(t), tmp_path / "m.onnx"), "'basepath'", "onnxruntime only reads")


def test_text_that_is_not_utf8_is_refused(tmp_path):
    """protobuf hands back bytes for such a field; code expecting str used to crash on it later."""
    m = matmul_relu()
    m.metadata_props.add(key="note", value="@@@@")
    data = m.SerializeToString().replace(b"@@@@", b"\xff\xfe@@")
    p = tmp_path / "m.onnx"
    p.write_bytes(data)
    expect(p, "ModelProto.metadata_props[0].value", "not valid UTF-8")


def test_sparse_dense_shape_is_a_size_claim(tmp_path):
    values = numpy_helper.from_array(np.ones(1, np.float32), "s")
    indices = numpy_helper.from_array(np.zeros(1, np.int64), "s_idx")
    sparse = helper.make_sparse_tensor(values, indices, [2**40])
    m = matmul_relu()
    m.graph.sparse_initializer.append(sparse)
    expect(save(m, tmp_path / "m.onnx"), "dense shape [1099511627776]", "max_tensor_bytes")


def test_file_is_read_at_its_size_not_at_the_limit(tmp_path, monkeypatch):
    """load_onnx used to call f.read(max_bytes + 1), reserving 16 GiB for any file."""
    requested = []

    class Spy:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            requested.append(n)
            return self.f.read(n)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    path = save(matmul_relu(), tmp_path / "m.onnx")
    from onnxforge.graph import safe_load

    real_open = safe_load._open_nonblocking   # how load_onnx opens files (a FIFO must not block the open)
    monkeypatch.setattr(safe_load, "_open_nonblocking", lambda p: Spy(real_open(p)) if str(p) == path
                        else real_open(p))
    load_onnx(path)
    assert requested and max(requested) <= os.path.getsize(path) + 1


def test_bytes_loader_refuses_external_data_and_bombs():
    from onnxforge.saving import load_onnx_bytes

    m = matmul_relu(external("secret.bin"))
    with pytest.raises(OnnxLoadError, match=r"external file 'secret.bin'.*not allowed in an embedded graph"):
        load_onnx_bytes(m.SerializeToString(), "embedded")
    bomb = matmul_relu(TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**20, 2**20]))
    with pytest.raises(OnnxLoadError, match="4398046511104 bytes, over the limit"):
        load_onnx_bytes(bomb.SerializeToString(), "embedded", max_bytes=2**30)
    assert load_onnx_bytes(matmul_relu().SerializeToString()) == matmul_relu()
