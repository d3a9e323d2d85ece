"""The service under real traffic and abuse (issue 11): batching never mixes clients, a small load test
answers everything right, slow clients meet deadlines, limits answer 413 / 503, JSON out is strict, and
cross-site or rebinding requests are refused. Everything talks to 127.0.0.1 only."""
from __future__ import annotations

import http.client
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import onnxforge as tf
from onnxforge.serving import InferenceServer
from tests.serving import models

TIMEOUT = 20


def request(server, body, *, path="/v1/predict", method="POST", headers=None):
    """(status, decoded JSON or raw text) over a fresh connection."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json"} if headers is None else headers
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode("latin-1")


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


def batch_centered() -> onnx.ModelProto:
    """y = x - mean(x over the batch): every answer depends on the other rows of its batch."""
    g = helper.make_graph([helper.make_node("ReduceMean", ["x", "ax"], ["m"], keepdims=1),
                           helper.make_node("Sub", ["x", "m"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", T.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["N", 3])],
                          [numpy_helper.from_array(np.array([0], np.int64), "ax")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return m


# ------------------------------------------------------------------------------------ batching
def test_a_batch_statistic_graph_gives_each_client_its_own_answer(serve):
    """Before: batching was on for any graph with a shared batch axis; 246 of 260 answers were wrong."""
    model = batch_centered()
    server = serve(model, batch_timeout_ms=50)
    assert not server.batching and "reduces over the batch axis" in server.batching_reason
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(2, 3)).astype(np.float32) for _ in range(24)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda x: request(server, {"inputs": {"x": x.tolist()}}), xs))
    for x, (status, body) in zip(xs, answers):
        assert status == 200, body
        np.testing.assert_allclose(body["outputs"]["y"], sess.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)
    # The control: forcing batching on this graph does mix clients.
    forced = serve(model, batching="on", batch_timeout_ms=200, max_batch=64)
    with ThreadPoolExecutor(12) as pool:
        mixed = list(pool.map(lambda x: request(forced, {"inputs": {"x": x.tolist()}}), xs))
    assert forced.batcher.stats["max_requests_per_run"] > 1
    assert any(not np.allclose(b["outputs"]["y"], sess.run(None, {"x": x})[0], atol=1e-5)
               for x, (_, b) in zip(xs, mixed))


def test_load_16_clients_50_requests_each_all_answered_right(serve, tmp_path):
    tf.layers.clear_session()
    tf.initializers.set_random_seed(0)
    L = tf.keras.layers
    model = tf.keras.Sequential([L.Input((6,)), L.Dense(16, activation="relu"), L.Dense(3, activation="softmax")])
    path = model.export(tmp_path / "m.onnx")
    server = serve(path, max_batch=32, batch_timeout_ms=2)
    assert server.batching, server.batching_reason
    rng = np.random.default_rng(0)
    inputs = [[rng.normal(size=(1 + (c + r) % 3, 6)).astype(np.float32) for r in range(50)] for c in range(16)]
    errors: list[str] = []

    def client(c: int) -> list:
        out = []
        for x in inputs[c]:
            try:
                status, body = request(server, {"inputs": {"input_layer": x.tolist()}})
            except OSError as e:
                errors.append(f"client {c}: {type(e).__name__}: {e}")
                continue
            if status != 200:
                errors.append(f"client {c}: {status} {body}")
                continue
            out.append((x, np.asarray(body["outputs"][model.output_names[0]], np.float32)))
        return out

    with ThreadPoolExecutor(16) as pool:
        results = [a for part in pool.map(client, range(16)) for a in part]
    assert not errors, errors[:5]
    assert len(results) == 16 * 50
    for x, y in results:
        np.testing.assert_allclose(y, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert server.batcher.stats["requests"] == 800


def test_listen_backlog_is_real(serve):
    server = serve(models.matmul_relu(), backlog=512)
    assert server._httpd.request_queue_size == 512
    # Many connections opened at once, before any is served, all get through.
    socks = [socket.create_connection((server.host, server.port), timeout=TIMEOUT) for _ in range(100)]
    body = json.dumps({"inputs": {"x": [[1, 2, 3]]}}).encode()
    for s in socks:
        s.sendall(b"POST /v1/predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
    statuses = []
    for s in socks:
        statuses.append(s.makefile("rb").readline().split()[1])
        s.close()
    assert set(statuses) <= {b"200", b"503"} and statuses.count(b"200") >= 100 - 0


# ------------------------------------------------------------------------------------ deadlines and limits
def test_a_slow_client_is_cut_off_at_its_read_deadline(serve):
    server = serve(models.matmul_relu(), read_timeout_s=1.0)
    slow = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    slow.sendall(b"POST /v1/predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{")
    started = time.monotonic()
    try:
        for _ in range(20):   # drip a byte every 0.3 s: each recv is quick, the whole request is not
            time.sleep(0.3)
            slow.sendall(b" ")
    except OSError:
        pass
    assert slow.recv(1024) == b""     # the server hung up
    assert time.monotonic() - started < 5
    slow.close()
    assert request(server, {"inputs": {"x": [[1, 2, 3]]}})[0] == 200   # others are served meanwhile


def test_shutdown_does_not_wait_for_slow_clients(serve):
    server = serve(models.matmul_relu(), read_timeout_s=60)
    slow = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    slow.sendall(b"POST /v1/predict HTTP/1.0\r\nContent-Length: 50\r\n")
    time.sleep(0.3)
    started = time.monotonic()
    server.shutdown()
    assert time.monotonic() - started < 3
    slow.close()


def _wait_until(condition, what: str, seconds: float = TIMEOUT) -> None:
    """Poll instead of sleeping a fixed time: on a loaded machine the server's threads may lag."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_connection_cap_answers_503(serve):
    server = serve(models.matmul_relu(), max_connections=2, read_timeout_s=5)
    held = [socket.create_connection((server.host, server.port), timeout=TIMEOUT) for _ in range(2)]
    _wait_until(lambda: len(server.connections) >= 2, "the two held connections")
    status, body = request(server, {"inputs": {"x": [[1, 2, 3]]}})
    assert status == 503 and "Too many connections" in body["error"]
    for s in held:
        s.close()
    deadline = time.monotonic() + 5
    while len(server.connections) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert request(server, {"inputs": {"x": [[1, 2, 3]]}})[0] == 200


def test_request_memory_is_bounded(serve):
    server = serve(models.matmul_relu(), max_body_bytes=1000, max_inflight_bytes=1500, read_timeout_s=5)
    status, body = request(server, {"inputs": {"x": [[1.0, 2.0, 3.0]] * 100}})
    assert status == 413 and "over the limit of 1000 bytes" in body["error"]
    # One client holds 900 bytes of budget (it declared them and sends slowly); a second 900 must wait: 503.
    held = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    held.sendall(b"POST /v1/predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{")
    _wait_until(lambda: server.body_budget.used >= 900, "the held body's budget")
    big = {"inputs": {"x": [[1.0, 2.0, 3.0]] * 50}}
    assert 600 < len(json.dumps(big)) <= 1000
    status, body = request(server, big)
    assert status == 503 and "request bodies" in body["error"]
    held.close()
    time.sleep(0.3)
    assert request(server, big)[0] == 200


def test_unbatched_runs_are_bounded_and_time_out_with_503(serve):
    server = serve(batch_centered(), max_concurrent_runs=1, request_timeout_s=0.5)
    server._run_slots.acquire()   # the one slot is busy
    try:
        status, body = request(server, {"inputs": {"x": [[1, 2, 3]]}})
    finally:
        server._run_slots.release()
    assert status == 503 and "slot" in body["error"]
    assert request(server, {"inputs": {"x": [[1, 2, 3]]}})[0] == 200


# ------------------------------------------------------------------------------------ strict JSON, headers
def _log_model() -> onnx.ModelProto:
    g = helper.make_graph([helper.make_node("Log", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", T.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["N", 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return m


def test_nan_and_infinity_never_make_invalid_json(serve):
    server = serve(_log_model())
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    conn.request("POST", "/v1/predict", body=json.dumps({"inputs": {"x": [[-1, 0, 1]]}}),
                 headers={"Content-Type": "application/json"})
    raw = conn.getresponse().read().decode()
    conn.close()
    body = json.loads(raw, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert body == {"outputs": {"y": [[None, None, 0.0]]}, "non_finite": ["y"]}
    strict = serve(_log_model(), non_finite="error")
    status, body = request(strict, {"inputs": {"x": [[-1, 0, 1]]}})
    assert status == 500 and "NaN or infinity" in body["error"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_requests_not_declared_json_are_refused(serve, content_type):
    """A web page can POST text/plain or a form to 127.0.0.1 without a CORS preflight; JSON it cannot."""
    server = serve(models.matmul_relu())
    headers = {} if content_type is None else {"Content-Type": content_type}
    status, body = request(server, {"inputs": {"x": [[1, 2, 3]]}}, headers=headers)
    assert status == 415 and "application/json" in body["error"]
    ok = request(server, {"inputs": {"x": [[1, 2, 3]]}}, headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok[0] == 200


def test_host_header_check_against_dns_rebinding(serve):
    server = serve(models.matmul_relu())
    for host in ("evil.example", "evil.example:8000", "localhost.evil.example"):
        status, body = request(server, {"inputs": {"x": [[1, 2, 3]]}},
                               headers={"Content-Type": "application/json", "Host": host})
        assert status == 403 and "not allowed" in body["error"], host
        assert request(server, None, path="/healthz", method="GET", headers={"Host": host})[0] == 403
    for host in ("localhost", f"localhost:{server.port}", "127.0.0.1:1", "[::1]:80", "10.1.2.3"):
        assert request(server, {"inputs": {"x": [[1, 2, 3]]}},
                       headers={"Content-Type": "application/json", "Host": host})[0] == 200, host
    named = serve(models.matmul_relu(), allowed_hosts=["models.internal", ".corp.example"])
    for host, want in (("models.internal", 200), ("a.corp.example", 200), ("corp.example", 200),
                       ("localhost", 403), ("evil.example", 403)):
        got = request(named, {"inputs": {"x": [[1, 2, 3]]}}, headers={"Content-Type": "application/json",
                                                                        "Host": host})[0]
        assert got == want, host


def test_embedding_ids_out_of_range_are_400_naming_the_layer(serve, tmp_path):
    tf.layers.clear_session()
    L = tf.keras.layers
    model = tf.keras.Sequential([L.Input((2,), dtype="int64", name="ids"), L.Embedding(10, 3, name="words"),
                                 L.Flatten(), L.Dense(1)])
    server = serve(model.export(tmp_path / "m.onnx"))
    for ids in ([[1, 10]], [[1, -1]]):
        status, body = request(server, {"inputs": {"ids": ids}})
        assert status == 400 and "Embedding layer 'words'" in body["error"], body
    assert request(server, {"inputs": {"ids": [[1, 9]]}})[0] == 200


def test_bad_options_are_refused():
    m = models.matmul_relu()
    for kw, fragment in (({"batching": "maybe"}, "batching must be one of"),
                         ({"non_finite": "nan"}, "non_finite must be one of"),
                         ({"max_connections": 0}, "max_connections must be a positive int"),
                         ({"read_timeout_s": 0}, "read_timeout_s must be a positive"),
                         ({"allowed_hosts": "localhost"}, "allowed_hosts must be a list")):
        with pytest.raises(ValueError, match=fragment):
            InferenceServer(m, port=0, **kw)


def _send_slowly_then_read(server, head: bytes, body: bytes) -> bytes:
    """A client that writes its request in pieces with pauses, then reads the answer to the end: if the
    server closed without draining, a later piece meets a reset (broken pipe) instead."""
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        for piece in (body[: len(body) // 2], body[len(body) // 2:]):
            time.sleep(0.2)          # the server has answered (and, without a lingering close, closed) by now
            sock.sendall(piece)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_refused_body_still_gets_its_answer_not_a_reset(serve):
    # Answered before its body is read (413), the client keeps sending: the server drains a bounded amount
    # (lingering close) so the client reads the 413 instead of hitting a reset or a broken pipe.
    server = serve(models.matmul_relu(), max_body_bytes=1000, read_timeout_s=5)
    body = b"[" + b"0," * 5_000 + b"0]"
    head = f"POST /v1/predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    answer = _send_slowly_then_read(server, head.encode(), body)
    assert answer.startswith(b"HTTP/1.0 413") and b"over the limit of 1000 bytes" in answer


def test_a_connection_over_the_cap_reads_its_503_while_still_sending(serve):
    server = serve(models.matmul_relu(), max_connections=1, read_timeout_s=5)
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT):
        _wait_until(lambda: len(server.connections) >= 1, "the held connection")
        body = json.dumps({"inputs": {"x": [[1, 2, 3]]}}).encode()
        head = f"POST /v1/predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        answer = _send_slowly_then_read(server, head.encode(), body)
    assert answer.startswith(b"HTTP/1.0 503") and b"Too many connections" in answer


def _raw(server, data: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_content_length_of_thousands_of_digits_is_413_not_silence(serve):
    # int() refuses strings over 4300 digits: the length is bounded before it is parsed.
    server = serve(models.matmul_relu())
    answer = _raw(server, b"POST /v1/predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: "
                  + b"9" * 5000 + b"\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.0 413"), answer[:200]
    assert b"a Content-Length of 5000 digits" in answer and b"over the limit" in answer
    # Leading zeros do not count against the bound.
    body = json.dumps({"inputs": {"x": [[1, 2, 3]]}}).encode()
    answer = _raw(server, b"POST /v1/predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: "
                  + b"0" * 40 + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.0 200"), answer[:200]


@pytest.mark.parametrize("request_bytes, status", [
    (b"PUT /v1/predict HTTP/1.0\r\n\r\n", b"501"),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n", b"414"),
    (b"GET / HTTP/1.0\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
    (b"GET / HTTP/9.9 extra\r\n\r\n", b"400"),   # no version understood: still a status line (not HTTP/0.9's bare body)
])
def test_the_standard_librarys_own_refusals_are_json_too(serve, request_bytes, status):
    answer = _raw(serve(models.matmul_relu()), request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == status and b"Content-Type: application/json" in head, answer[:300]
    assert isinstance(json.loads(body)["error"], str)


def test_running_out_of_memory_is_503_not_a_model_failure(serve, monkeypatch):
    server = serve(models.matmul_relu(), batching="off")

    def no_memory(payload):
        raise MemoryError()

    monkeypatch.setattr(server.runner, "parse_request", no_memory)
    status, body = request(server, {"inputs": {"x": [[1, 2, 3]]}})
    assert status == 503 and "memory" in body["error"] and "Model run failed" not in body["error"]


def test_ambiguous_body_framing_is_400(serve):
    # Transfer-Encoding next to a Content-Length, or two Content-Lengths, once answered 200 from the first
    # length: a proxy honouring the other header would split the stream elsewhere (request smuggling).
    server = serve(models.matmul_relu())
    body = json.dumps({"inputs": {"x": [[1.0, 2.0, 3.0]]}}).encode()
    head = b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
    for extra in (b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % len(body),
                  b"Content-Length: %d\r\nContent-Length: 3\r\n" % len(body)):
        with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as conn:
            conn.sendall(head + extra + b"\r\n" + body)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 400"), answer[:200]
        assert b"one Content-Length header and no Transfer-Encoding" in answer
    assert request(server, {"inputs": {"x": [[1.0, 2.0, 3.0]]}})[0] == 200
