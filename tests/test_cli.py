"""The onnxforge command: check / info / serve on small models written to tmp_path."""
from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxforge.cli import main
from onnxforge.graph.contract import STATE_KEY
from tests.serving import models

ROOT = Path(__file__).resolve().parents[1]


def write(model: onnx.ModelProto, path: Path) -> str:
    path.write_bytes(model.SerializeToString())
    return str(path)


def with_state(model: onnx.ModelProto, pairs) -> onnx.ModelProto:
    model.metadata_props.add(key="onnxforge.state", value=json.dumps(pairs))
    model.metadata_props.add(key="author", value="tests")
    return model


def branchy() -> onnx.ModelProto:
    """An If whose branches hold nodes: the census must count inside subgraphs."""
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "then", [], [out])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["n"]), helper.make_node("Relu", ["n"], ["y"])],
                              "else", [], [out])
    g = helper.make_graph([helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)], "g",
                          [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                           helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])], [out])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return m


def test_console_script_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["onnxforge"] == "onnxforge.cli:main"


def test_check_ok(tmp_path, capsys, checked):
    path = write(checked(models.two_inputs()), tmp_path / "m.onnx")
    assert main(["check", path]) == 0
    out = capsys.readouterr().out
    for fragment in ("ir_version: 10", "opset: ai.onnx 21", "checker (full_check): ok", "(4 nodes)",
                     "ai.onnx: Gather x1, MatMul x1, Mul x1, Relu x1", "CPUExecutionProvider: ok", "result: OK"):
        assert fragment in out, out


def test_check_json_counts_ops_inside_subgraphs(tmp_path, capsys, checked):
    path = write(checked(branchy()), tmp_path / "m.onnx")
    assert main(["check", path, "--json", "--providers", "CPUExecutionProvider"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["checker"] == "ok"
    assert report["ops"] == {"ai.onnx": {"If": 1, "Neg": 1, "Relu": 2}} and report["nodes"] == 4
    assert report["sessions"]["CPUExecutionProvider"]["ok"]


def test_check_fails_on_checker_and_session_errors(tmp_path, capsys):
    m = models.matmul_relu()
    m.graph.node[1].input[0] = "undefined"  # Relu reads a value nobody produces
    path = write(m, tmp_path / "m.onnx")
    assert main(["check", path, "--providers", "CPUExecutionProvider"]) == 1
    out = capsys.readouterr().out
    assert "checker (full_check): ValidationError" in out and "undefined" in out
    assert "CPUExecutionProvider: FAILED" in out and "result: FAILED" in out


def test_check_fails_on_bad_state_pairs(tmp_path, capsys, checked):
    m = checked(with_state(models.two_inputs(), [["x", "y"], ["scale", "missing_out"], "junk"]))
    assert main(["check", write(m, tmp_path / "m.onnx")]) == 1
    out = capsys.readouterr().out
    assert "'missing_out' is not a graph output" in out and "onnxforge.state[2] must be" in out


@pytest.mark.parametrize("command", ["check", "info"])
def test_unloadable_file_is_one_line_error(tmp_path, capsys, command):
    data = models.matmul_relu().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[:-7])
    assert main([command, str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: Cannot load ONNX model '{path}'") and "truncated" in captured.err


def test_info_text(tmp_path, capsys, checked):
    m = checked(with_state(models.two_inputs(), [["x", "y"], ["scale", "picked"]]))
    assert main(["info", write(m, tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    for fragment in ("x: float32 [N, 3]", "scale: float32 [N, 1]", "ids: int64 [N]", "y: float32 [N, 4]",
                     "picked: float32 [N, 2]", "parameters: 22", "author: tests",
                     "training state (onnxforge.state): 2 pairs", "x -> y", "scale -> picked"):
        assert fragment in out, out
    assert "w:" not in out  # initializers are not inputs


def test_info_json_with_external_data(tmp_path, capsys, checked):
    m = checked(models.two_inputs())
    expected = sum(math.prod(t.dims) for t in m.graph.initializer if t.data_type == TensorProto.FLOAT)
    path = tmp_path / "m.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, location="m.data", size_threshold=0)
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == expected == 22
    assert info["external_tensors"] == 2
    assert [(v["name"], v["dtype"], v["shape"]) for v in info["inputs"]] == [
        ("x", "float32", ["N", 3]), ("scale", "float32", ["N", 1]), ("ids", "int64", ["N"])]
    assert info["state"] is None and info["metadata"] == {}


def test_serve_bad_arguments(tmp_path, capsys):
    path = write(models.matmul_relu(), tmp_path / "m.onnx")
    with pytest.raises(SystemExit) as e:
        main(["serve", path, "--max-batch", "0"])
    assert e.value.code == 2
    (tmp_path / "bad.onnx").write_bytes(b"PK\x03\x04zip")
    assert main(["serve", str(tmp_path / "bad.onnx"), "--port", "0"]) == 1
    assert "ZIP archive" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_serve_subprocess_answers_then_stops_on_sigterm(tmp_path, checked):
    model = checked(models.matmul_relu())
    path = write(model, tmp_path / "m.onnx")
    proc = subprocess.Popen([sys.executable, "-m", "onnxforge.cli", "serve", path, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"Serving {path} on http://127.0.0.1:"), (line, proc.stderr.read())
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:
            assert json.load(resp)["batching"] is True
        req = urllib.request.Request(url + "/v1/predict", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"inputs": {"x": [[1, 2, 3]]}}).encode())
        with urllib.request.urlopen(req, timeout=10) as resp:
            y = json.load(resp)["outputs"]["y"]
        np.testing.assert_allclose(y, np.maximum(np.array([[1, 2, 3]], np.float32) @ models.W, 0), rtol=1e-6)
        # A client dripping its request one byte a second must not hold up the shutdown (issue 11: it did,
        # with no request deadline, for as long as the client kept dripping).
        host, port = url[len("http://"):].rsplit(":", 1)
        slow = socket.create_connection((host, int(port)), timeout=10)
        slow.sendall(b"POST /v1/predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        stop_dripping = threading.Event()

        def drip():
            while not stop_dripping.wait(1.0):
                try:
                    slow.sendall(b" ")
                except OSError:
                    return

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        time.sleep(1.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 8
        stop_dripping.set()
        slow.close()
        assert proc.stdout.read().strip() == "Stopped."
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.skipif(sys.platform != "linux", reason="ulimit -v is a Linux/bash facility")
def test_info_works_in_a_small_address_space(tmp_path):
    """Issue 11: load_onnx reserved max_bytes + 1 (16 GiB) for every read, so `onnxforge info` of a 1 KB
    file died with MemoryError under `ulimit -v 4000000`."""
    path = write(models.matmul_relu(), tmp_path / "m.onnx")
    script = f"ulimit -v 4000000 && exec {sys.executable} -m onnxforge.cli info {path}"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MemoryError" not in done.stderr and "x: float32 [N, 3]" in done.stdout, done.stdout


def _checkpoint(tmp_path: Path) -> Path:
    import onnxforge as tf

    model = tf.keras.Sequential([tf.keras.layers.Input((3,)), tf.keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    return model.save(tmp_path / "ckpt.onnx")


def test_check_verifies_the_digest_of_a_checkpoint(tmp_path, capsys):
    path = _checkpoint(tmp_path)
    assert main(["check", str(path), "--providers", "CPUExecutionProvider"]) == 0
    assert "digest (SHA-256): ok" in capsys.readouterr().out
    data = bytearray(path.read_bytes())
    raw = onnx.load(str(path)).graph.initializer[0].raw_data
    data[bytes(data).index(raw) + 2] ^= 0x40
    flipped = tmp_path / "flipped.onnx"
    flipped.write_bytes(bytes(data))
    assert main(["check", str(flipped), "--json", "--providers", "CPUExecutionProvider"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and "does not match its SHA-256 digest" in report["digest"]
    # An export() has no digest and needs none.
    plain = write(models.matmul_relu(), tmp_path / "plain.onnx")
    assert main(["check", plain, "--providers", "CPUExecutionProvider"]) == 0
    assert "digest (SHA-256): none stored" in capsys.readouterr().out


def test_info_and_check_survive_hostile_metadata(tmp_path, capsys):
    m = models.matmul_relu()
    m.metadata_props.add(key=STATE_KEY, value="[" * 200_000 + "]" * 200_000)
    path = write(m, tmp_path / "deep.onnx")
    assert main(["info", path]) == 0
    assert "nested too deeply" in capsys.readouterr().out
    assert main(["check", path, "--providers", "CPUExecutionProvider"]) == 1
    assert "nested too deeply" in capsys.readouterr().out
