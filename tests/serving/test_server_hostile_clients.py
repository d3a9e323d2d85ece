"""``onnxforge serve`` against clients that break the protocol on purpose, over raw sockets: every answer has
a status line and a JSON body with the right status, ambiguous requests (two Host headers, duplicated
JSON keys) are refused rather than read one way, and the server keeps serving within its bounds. Also the
attacks that were already refused (kept here so they stay refused)."""
from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from onnxforge.serving import InferenceServer
from onnxforge.serving.strict_json import JSONRequestError, loads_request


def _plus_one():
    g = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", T.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["N", 3])],
                          [numpy_helper.from_array(np.ones(3, np.float32), "one")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return m


@pytest.fixture(scope="module")
def server():
    srv = InferenceServer(_plus_one(), host="127.0.0.1", port=0, providers=["CPUExecutionProvider"],
                          read_timeout_s=2, max_connections=8).start()
    yield srv
    srv.shutdown()


def _raw(server, data: bytes, wait: float = 10.0) -> tuple[int | None, object, bytes]:
    """(status, decoded JSON body, the status line) of what the server sends back on one connection."""
    with socket.create_connection((server.host, server.port), timeout=wait) as s:
        try:
            s.sendall(data)
        except OSError:   # the server answered and closed before reading it all
            pass
        out = b""
        try:
            while chunk := s.recv(1 << 16):
                out += chunk
        except OSError:
            pass
    head, _, body = out.partition(b"\r\n\r\n")
    line = head.split(b"\r\n")[0]
    if not line.startswith(b"HTTP/1."):
        return None, out, line
    return int(line.split()[1]), json.loads(body), line


def _post(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def _get(extra: bytes = b"Host: localhost\r\n", version: bytes = b"HTTP/1.1", path: bytes = b"/healthz") -> bytes:
    return b"GET " + path + b" " + version + b"\r\n" + extra + b"\r\n"


def test_http_09_and_http_2_get_a_status_line_and_json(server):
    # Before: the standard library answered these as HTTP/0.9, a bare body with no status (or nothing at
    # all for a GET, whose handler failed), so a client could not tell an error from an answer.
    for request in (b"GET /healthz\r\n", b"POST /v1/predict\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                    b"GET /healthz HTTP/3.0\r\nHost: localhost\r\n\r\n"):
        status, body, line = _raw(server, request)
        assert status == 505 and line.startswith(b"HTTP/1.0 505"), (request, line, body)
        assert "error" in body and ("HTTP/0.9" in body["error"] or "version" in body["error"]), body


def test_host_header_must_be_exactly_one(server):
    # Before: the first of two Host headers was checked (a proxy may route on the last), and an HTTP/1.1
    # request without Host was served, both of which RFC 9112 answers with 400.
    status, body, _ = _raw(server, _get(b"Host: localhost\r\nHost: attacker.example\r\n"))
    assert status == 400 and "exactly one Host" in body["error"], body
    status, body, _ = _raw(server, _get(b""))
    assert status == 400 and "Received: 0 Host headers" in body["error"], body
    status, body, _ = _raw(server, _get(b"", b"HTTP/1.0"))     # HTTP/1.0 has no Host requirement
    assert status == 200 and body["status"] == "ok"


def test_duplicate_json_keys_are_refused_naming_the_key(server):
    # Before: the last duplicate won silently ({"x": [[1,2,3]], "x": [[4,5,6]]} computed on 4, 5, 6).
    for body_bytes, key in ((b'{"inputs": {"x": [[1,2,3]], "x": [[4,5,6]]}}', "'x'"),
                            (b'{"inputs": {"x": [[1,2,3]]}, "inputs": {"x": [[4,5,6]]}}', "'inputs'")):
        status, body, _ = _raw(server, _post(body_bytes))
        assert status == 400 and f"duplicate key {key}" in body["error"], body


def test_numbers_beyond_float64_are_refused_not_turned_into_infinity(server):
    # Before: 1e400 parsed as inf and was computed on (200 with y = null), past the range check that refuses
    # 1e39 for the same float32 input.
    for literal in (b"1e400", b"-1e400", b"1" * 100_000 + b".5", b"1e999999999999"):
        status, body, _ = _raw(server, _post(b'{"inputs": {"x": [[' + literal + b', 2, 3]]}}'))
        assert status == 400 and "beyond the float64 range" in body["error"], (literal[:20], body)
    status, body, _ = _raw(server, _post(b'{"inputs": {"x": [[1e39, 2, 3]]}}'))
    assert status == 400 and "beyond the float32 range" in body["error"], body
    status, body, _ = _raw(server, _post(b'{"inputs": {"x": [[NaN, 2, 1.5e308]]}}'))   # NaN as written: kept
    assert status == 400 and "float32 range" in body["error"], body
    status, body, _ = _raw(server, _post(b'{"inputs": {"x": [[NaN, 2, 3]]}}'))
    assert status == 200 and body == {"outputs": {"y": [[None, 3.0, 4.0]]}, "non_finite": ["y"]}, body


def test_attacks_that_were_already_refused_stay_refused(server):
    cases = {
        "1 MB header line": (_get(b"Host: localhost\r\nX-A: " + b"a" * 2**20 + b"\r\n"), 431, "Line too long"),
        "10k headers": (_get(b"Host: localhost\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(10_000))), 431,
                        "Too many headers"),
        "1 MB request line": (_get(path=b"/" + b"a" * 2**20), 414, "URI Too Long"),
        "NUL in the path": (_get(path=b"/heal\x00thz"), 404, "No such endpoint"),
        "invalid UTF-8 in the path": (_get(path=b"/\xff\xfe"), 404, "No such endpoint"),
        "10**6-deep JSON": (_post(b'{"inputs": {"x": ' + b"[" * 10**6 + b"]" * 10**6 + b"}}"), 400, "nested too deeply"),
        "100,000-digit integer": (_post(b'{"inputs": {"x": [[' + b"1" * 100_000 + b', 2, 3]]}}'), 400, "digits"),
        "invalid UTF-8 body": (_post(b'{"inputs": {"x\xff": [[1, 2, 3]]}}'), 400, "not valid JSON"),
        "OPTIONS (no CORS preflight)": (b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n", 501, "Unsupported method"),
    }
    for name, (request, want, fragment) in cases.items():
        status, body, line = _raw(server, request)
        assert status == want and fragment in body["error"], (name, line, body)


def test_one_request_per_connection_bodies_on_get_and_pipelining(server):
    # A GET with a body that looks like a second request, and 1000 pipelined requests: one answer, then the
    # connection closes (HTTP/1.0 framing), so no byte of a body is ever read as a request.
    for request in (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 23\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
                    _get() * 1000):
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(request)
            out = b""
            while chunk := s.recv(1 << 16):
                out += chunk
        assert out.count(b"HTTP/1.0 ") == 1 and out.startswith(b"HTTP/1.0 200"), out[:200]


def _wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_slowloris_across_many_connections_is_cut_and_the_server_recovers(server):
    started = time.monotonic()
    drips = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(12)]   # cap: 8
    try:
        for s in drips:
            s.sendall(b"G")
        assert _wait_for(lambda: len(server.connections) == 8), len(server.connections)
        status, body, _ = _raw(server, _get())
        assert status == 503 and "Too many connections" in body["error"], body
        # One byte every 0.5 s stays under the per-recv timeout, never under the 2 s whole-request deadline.
        for _ in range(8):
            for s in drips:
                try:
                    s.sendall(b"E")
                except OSError:
                    pass
            time.sleep(0.5)
        assert _wait_for(lambda: len(server.connections) == 0), len(server.connections)
        answers = []
        for s in drips:   # each was cut (no answer: its request never ended) or refused over the cap
            s.settimeout(2)
            out = b""
            try:
                while chunk := s.recv(1 << 16):
                    out += chunk
            except OSError:
                pass
            answers.append(out[:12])
        assert sorted(answers) == [b""] * 8 + [b"HTTP/1.0 503"] * 4, answers
    finally:
        for s in drips:
            s.close()
    assert time.monotonic() - started < 15
    status, body, _ = _raw(server, _post(b'{"inputs": {"x": [[1, 2, 3]]}}'))
    assert status == 200 and body == {"outputs": {"y": [[2.0, 3.0, 4.0]]}}


def test_loads_request_refuses_what_json_loads_decides_silently():
    assert loads_request('{"a": [1, 2.5, NaN], "b": {"c": 1e308}}')["b"] == {"c": 1e308}
    with pytest.raises(JSONRequestError, match="duplicate key 'a'"):
        loads_request('{"a": 1, "b": {"a": 1}, "a": 2}')
    with pytest.raises(JSONRequestError, match="1e309 is beyond the float64 range"):
        loads_request("[1e309]")
    assert isinstance(JSONRequestError("x"), ValueError)
