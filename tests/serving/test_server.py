"""The HTTP service end to end: ephemeral port on 127.0.0.1, concurrent clients, 400 paths, shutdown."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest

from onnxforge.serving import InferenceServer, ModelRunner
from tests.serving import models

TIMEOUT = 10


def post(server, body, path="/v1/predict"):
    """(status, decoded JSON) of a POST; body may be bytes (sent as is) or a JSON-able object."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def get(server, path):
    try:
        with urllib.request.urlopen(server.url + path, timeout=TIMEOUT) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def direct(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


@pytest.fixture
def serve():
    started = []

    def start(model, **kw):
        server = InferenceServer(model, host="127.0.0.1", port=0, providers=["CPUExecutionProvider"], **kw).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()


def test_healthz_and_binding(serve, checked):
    server = serve(checked(models.matmul_relu()))
    assert server.host == "127.0.0.1" and server.port > 0
    status, body = get(server, "/healthz")
    assert status == 200
    assert body == {
        "status": "ok",
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["N", 3]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["N", 4]}],
        "batching": True,
        "batching_reason": "on: every output row provably depends on its own input row only",
    }
    assert get(server, "/nope")[0] == 404


def test_concurrent_requests_are_batched_and_match_onnxruntime(serve, checked):
    model = checked(models.matmul_relu())
    # A long collection window makes the merging observable; max_batch=8 fires as soon as 8 rows wait.
    server = serve(model, max_batch=8, batch_timeout_ms=300)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(rows, 3)).astype(np.float32) for rows in (1, 1, 2, 1, 3, 1, 2, 1, 1, 2, 1, 1)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda x: post(server, {"inputs": {"x": x.tolist()}}), xs, timeout=30))
    for x, (status, body) in zip(xs, answers):
        assert status == 200, body
        np.testing.assert_allclose(np.array(body["outputs"]["y"], np.float32), direct(model, {"x": x})["y"],
                                   rtol=1e-6, atol=1e-6)
    stats = server.batcher.stats
    assert stats["requests"] == len(xs)
    assert stats["runs"] < len(xs) and stats["max_requests_per_run"] >= 2


def test_multi_input_model_and_instances(serve, checked):
    model = checked(models.two_inputs())
    server = serve(model)
    x = [[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]
    feeds = {"x": np.array(x, np.float32), "scale": np.array([[2.0], [0.5]], np.float32),
             "ids": np.array([4, 0], np.int64)}
    want = direct(model, feeds)
    status, body = post(server, {"inputs": {k: v.tolist() for k, v in feeds.items()}})
    assert status == 200, body
    for name in ("y", "picked"):
        np.testing.assert_allclose(body["outputs"][name], want[name], rtol=1e-6)
    instances = [{"x": x[i], "scale": [feeds["scale"][i, 0].item()], "ids": int(feeds["ids"][i])} for i in range(2)]
    status, body = post(server, {"instances": instances})
    assert status == 200, body
    np.testing.assert_allclose(body["outputs"]["picked"], want["picked"])


def test_instances_for_a_single_input_model(serve, checked):
    model = checked(models.matmul_relu())
    server = serve(model)
    x = [[0.5, -1.0, 2.0]]
    status, body = post(server, {"instances": x})
    assert status == 200, body
    np.testing.assert_allclose(body["outputs"]["y"], direct(model, {"x": np.array(x, np.float32)})["y"], rtol=1e-6)


@pytest.mark.parametrize(
    "body, fragments",
    [
        (b"{not json", ["not valid JSON"]),
        (b"\xff\xfe{}", ["not valid JSON"]),
        (b"[" * 100_000 + b"]" * 100_000, ["not valid JSON", "nested too deeply"]),
        ({"inputs": {"x": json.loads("[" * 200 + "]" * 200), "scale": [[1]], "ids": [0]}}, ["Input 'x'"]),
        ([1, 2], ['exactly one of "inputs"', "Received: [1, 2]"]),
        ({"inputs": {"x": [[1, 2, 3]]}}, ["Missing input 'scale'", "x, scale, ids"]),
        ({"inputs": {"x": [[1, 2, 3]], "scale": [[1]], "ids": [0], "extra": [1]}}, ["Unknown input 'extra'"]),
        ({"inputs": {"x": [[1, 2, 3, 4], [5, 6, 7, 8]], "scale": [[1], [1]], "ids": [0, 1]}},
         ["Input 'x'", "expects shape [N, 3]", "received shape [2, 4]"]),
        ({"inputs": {"x": [1, 2, 3], "scale": [[1]], "ids": [0]}}, ["Input 'x'", "received shape [3]"]),
        ({"inputs": {"x": [["a", "b", "c"]], "scale": [[1]], "ids": [0]}},
         ["Input 'x'", "expects float32", "received string"]),
        ({"inputs": {"x": [[1, 2, 3]], "scale": [[1]], "ids": [0.5]}},
         ["Input 'ids'", "expects int64", "received float"]),
        ({"inputs": {"x": [[1, 2, 3], [4, 5]], "scale": [[1], [1]], "ids": [0, 1]}}, ["Input 'x'", "rectangular"]),
        ({"inputs": {"x": [[1, 2, 3], [4, 5, 6]], "scale": [[1]], "ids": [0, 1]}},
         ["Input 'scale' has N=1", "input 'x' has N=2"]),
        ({"instances": [[1, 2, 3]]}, ["has 3 inputs", "objects"]),
        ({"inputs": {"x": [[1, 2, 3]], "scale": [[1]], "ids": [2**64]}}, ["Input 'ids'", "too large"]),
    ],
)
def test_bad_requests_get_400_naming_the_problem(serve, checked, body, fragments):
    server = serve(checked(models.two_inputs()))
    status, answer = post(server, body)
    assert status == 400, answer
    for fragment in fragments:
        assert fragment in answer["error"], answer["error"]


def test_int_range_is_checked(serve, checked):
    m = checked(models.two_inputs())
    runner = ModelRunner(m, providers=["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="Input 'ids' expects int64 values in"):
        runner.parse_request({"inputs": {"x": [[1, 2, 3]], "scale": [[1]], "ids": [2**63]}})


def test_runtime_failure_is_500_naming_the_node(serve, checked):
    server = serve(checked(models.two_inputs()), max_batch=1)
    status, body = post(server, {"inputs": {"x": [[1, 2, 3]], "scale": [[1]], "ids": [99]}})
    assert status == 500
    assert "Gather" in body["error"]


def test_models_without_a_shared_batch_axis_run_one_by_one(serve, checked):
    fixed = serve(checked(models.matmul_relu(batch=2)))
    reduced = serve(checked(models.column_sum()))
    assert not fixed.batching and not reduced.batching
    assert get(reduced, "/healthz")[1]["batching"] is False
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda k: post(reduced, {"inputs": {"x": [[k, 1, 2], [k, 3, 4]]}}), range(4)))
    assert [a[1]["outputs"]["total"] for a in answers] == [[2 * k, 4, 6] for k in range(4)]
    status, body = post(fixed, {"inputs": {"x": [[1, 2, 3]]}})
    assert status == 400 and "expects shape [2, 3]" in body["error"] and "received shape [1, 3]" in body["error"]
    assert post(fixed, {"inputs": {"x": [[1, 2, 3], [4, 5, 6]]}})[0] == 200


def test_body_limits(serve, checked):
    server = serve(checked(models.matmul_relu()), max_body_bytes=100)
    status, body = post(server, {"inputs": {"x": [[1.0, 2.0, 3.0]] * 20}})
    assert status == 413 and "over the limit of 100 bytes" in body["error"]
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    conn.putrequest("POST", "/v1/predict")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 411
    conn.close()


def test_graceful_shutdown_finishes_requests_in_flight(checked):
    server = InferenceServer(checked(models.matmul_relu()), port=0, max_batch=64, batch_timeout_ms=400,
                             providers=["CPUExecutionProvider"]).start()
    host, port = server.host, server.port
    result = {}
    client = threading.Thread(target=lambda: result.update(answer=post(server, {"inputs": {"x": [[1, 2, 3]]}})))
    client.start()
    # The request now sits in the batcher's 400 ms window; shut down while it waits.
    deadline = 50
    while server.batcher._queue.qsize() == 0 and deadline:
        threading.Event().wait(0.01)
        deadline -= 1
    server.shutdown()
    client.join(TIMEOUT)
    assert result["answer"][0] == 200
    assert not server.batcher._thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=2).close()
    server.shutdown()  # idempotent


def test_bad_server_arguments(checked):
    m = checked(models.matmul_relu())
    with pytest.raises(ValueError, match="Received: port=70000"):
        InferenceServer(m, port=70000)
    with pytest.raises(ValueError, match="Received: max_batch=0"):
        InferenceServer(m, max_batch=0)


def test_serves_a_file_with_external_data_and_refuses_a_bad_file(serve, checked, tmp_path):
    import onnx

    from onnxforge.saving import OnnxLoadError

    model = checked(models.matmul_relu())
    path = tmp_path / "m.onnx"
    # save_model rewrites the proto it is given into external references: save a copy.
    onnx.save_model(onnx.ModelProto.FromString(model.SerializeToString()), str(path), save_as_external_data=True,
                    location="m.data", size_threshold=0)
    server = serve(path)
    status, body = post(server, {"inputs": {"x": [[1, 2, 3]]}})
    assert status == 200
    np.testing.assert_allclose(body["outputs"]["y"], direct(model, {"x": np.array([[1, 2, 3]], np.float32)})["y"])
    (tmp_path / "m.data").write_bytes(b"\0" * 4)  # now too short for the 3x4 weight
    with pytest.raises(OnnxLoadError, match="'m.data'"):
        InferenceServer(path, port=0)


def test_batch_axis_detection(checked):
    def runner(model):
        return ModelRunner(checked(model), providers=["CPUExecutionProvider"])

    assert runner(models.matmul_relu()).batch_symbol == "N"
    assert runner(models.two_inputs()).batch_symbol == "N"
    assert runner(models.matmul_relu(batch=2)).batch_symbol is None
    assert runner(models.column_sum()).batch_symbol is None  # output [3] has no batch axis
    unnamed_out = models.matmul_relu()
    unnamed_out.graph.output[0].type.tensor_type.shape.dim[0].Clear()  # [?, 4]: checked at run time
    assert runner(unnamed_out).batch_symbol == "N"
    other_symbol = models.matmul_relu()
    other_symbol.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "M"
    assert runner(other_symbol).batch_symbol is None
