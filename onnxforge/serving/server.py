"""A small HTTP JSON inference service over one ONNX model (standard library + onnxruntime + numpy).

Endpoints:
    ``GET /healthz``     -> ``{"status": "ok", "inputs": [...], "outputs": [...], "batching": bool,
                         "batching_reason": str}``
    ``POST /v1/predict`` ``{"inputs": {name: nested list}}`` or ``{"instances": [...]}`` with
                         ``Content-Type: application/json`` -> ``{"outputs": {name: nested list}}``

Answers other than 200, each with ``{"error": ...}``: 400 a bad request (naming the input, received versus
expected shape or dtype; duplicated JSON keys, numbers beyond float64, not exactly one ``Host``), 403 a ``Host`` header not allowed, 404 an unknown path, 411 no
``Content-Length``, 413 a body over ``max_body_bytes``, 415 a body that is not declared JSON, 500 the
model failed (naming the node), 503 the server is busy (connection cap, body memory budget, no model
slot within ``request_timeout_s``, or out of memory); the standard library's own refusals (a bad request
line, 414, 431, 501, and 505 for HTTP/0.9 or HTTP/2) are JSON too, always after a status line.

What it guarantees under load and abuse:

* **Batching only when it cannot mix clients.** Requests are concatenated along the batch axis only for
  graphs :mod:`onnxforge.graph.row_independence` proves row-independent (``batching="auto"``), or when
  the operator says so (``"on"``); a graph computing a batch statistic runs each request alone.
* **Bounded resources.** At most ``max_connections`` connections (more get an immediate 503), a listen
  backlog of ``backlog``, bodies of at most ``max_body_bytes`` and ``max_inflight_bytes`` of them held at
  once, at most ``max_concurrent_runs`` unbatched model runs at once.
* **Deadlines.** A connection has ``read_timeout_s`` to send its whole request and ``write_timeout_s``
  to take its answer; slow clients are cut off, never waited for.
* **Graceful shutdown** (SIGTERM / SIGINT in ``onnxforge serve``): the port closes, connections still
  sending their request are cut, requests being computed finish (up to ``drain_timeout_s``).
* **Strict JSON out.** NaN and infinities, which JSON cannot carry, become ``null`` (the answer then
  lists those outputs under ``"non_finite"``), or a 500 with ``non_finite="error"``.
* **No cross-site or rebinding use.** ``Content-Type: application/json`` is required (a web page cannot
  send it cross-site without a CORS preflight, which is never granted), and the ``Host`` header must be
  an IP address or a name in ``allowed_hosts`` (default: ``localhost``).
"""
from __future__ import annotations

__all__ = ["InferenceServer", "BATCHING_MODES", "NON_FINITE_MODES"]

import json
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from onnxforge.serving.batcher import Batcher
from onnxforge.serving.limits import ByteBudget, Connections, host_allowed, linger_close, refuse
from onnxforge.graph.row_independence import analyze
from onnxforge.serving.request_runner import ModelRunner, RequestError
from onnxforge.serving.strict_json import JSONRequestError, loads_request

BATCHING_MODES = ("auto", "on", "off")
NON_FINITE_MODES = ("null", "error")
_CHUNK = 1 << 16


class _Busy(Exception):
    """No capacity for this request now: 503."""


class _HTTPServer(ThreadingHTTPServer):
    # Handler threads never block interpreter exit; shutdown() drains them with a bounded wait instead.
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    app: InferenceServer

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        if not self.app.connections.admit(request):
            refuse(request)   # over the connection cap: answer at once, from the accept loop
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.app.connections.leave(request)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "onnxforge-serving/0.2"
    # One request per connection: no idle keep-alive connection can hold up a shutdown.
    protocol_version = "HTTP/1.0"
    # The standard library answers a request line it cannot read with the version it assumed, HTTP/0.9: a
    # bare body without a status line. Every answer here has a status line.
    default_request_version = "HTTP/1.0"

    #: Bytes and seconds of a refused body read and thrown away after the answer (see ``finish``).
    LINGER_BYTES, LINGER_SECONDS = 1 << 20, 1.0

    def setup(self) -> None:
        self.timeout = self.server.app.read_timeout_s   # per recv; the whole request has a deadline too
        self._body_unread = False
        super().setup()

    def finish(self) -> None:
        super().finish()
        if self._body_unread:
            self._linger()

    def _linger(self) -> None:
        """A lingering close for a request answered before its body was read (403, 411, 413, 415, 503)."""
        linger_close(self.connection, self.LINGER_BYTES, self.LINGER_SECONDS)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.app.log_requests:
            super().log_message(format, *args)

    def _send(self, status: int, data: bytes, extra: Mapping[str, str] | None = None) -> None:
        self.server.app.connections.phase(self.connection, "writing")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Content-Type-Options", "nosniff")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:   # the client left (or was cut off at its deadline): nothing to tell it
            self.close_connection = True

    def _error(self, status: int, message: str, extra: Mapping[str, str] | None = None,
               body_unread: bool = False) -> None:
        self.close_connection = True
        self._body_unread = body_unread
        self._send(status, json.dumps({"error": message}).encode(), extra)

    def parse_request(self) -> bool:
        if len(self.raw_requestline.split()) == 2:   # HTTP/0.9 ("GET /path"): answered with no status at all
            self.command, self.request_version = None, self.default_request_version   # what send_error reads
            self.requestline = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n")
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/0.9 is not served: send an HTTP/1.0 or "
                            "HTTP/1.1 request line (method, path and version)")
            return False
        return super().parse_request()

    def _host_ok(self) -> bool:
        app = self.server.app
        hosts = self.headers.get_all("Host") or []
        # RFC 9112 3.2: exactly one Host in HTTP/1.1. With two, a proxy may route on one and this check read
        # the other.
        if len(hosts) > 1 or (not hosts and self.request_version == "HTTP/1.1"):
            self._error(HTTPStatus.BAD_REQUEST, "An HTTP/1.1 request takes exactly one Host header. Received: "
                        f"{len(hosts)} Host headers", body_unread=True)
            return False
        if host_allowed(self.headers.get("Host"), app.allowed_hosts):
            return True
        self._error(HTTPStatus.FORBIDDEN, f"Host {self.headers.get('Host')!r} is not allowed (DNS rebinding "
                    "protection); start the server with --allowed-hosts naming it", body_unread=True)
        return False

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if not self._host_ok():
            return
        if self.path.split("?", 1)[0] != "/healthz":
            self._error(HTTPStatus.NOT_FOUND, f"No such endpoint: GET {self.path}; try GET /healthz or "
                        "POST /v1/predict")
            return
        app = self.server.app
        self._send(HTTPStatus.OK, json.dumps({"status": "ok", **app.runner.describe(), "batching": app.batching,
                                              "batching_reason": app.batching_reason}).encode())

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if not self._host_ok():
            return
        if self.path.split("?", 1)[0] != "/v1/predict":
            self._error(HTTPStatus.NOT_FOUND, f"No such endpoint: POST {self.path}; try POST /v1/predict")
            return
        app = self.server.app
        # The body's framing must be unambiguous (RFC 9112 6.3): a proxy in front that reads Transfer-Encoding,
        # or the other Content-Length, would see another request boundary than this server (smuggling).
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") is not None or len(lengths) > 1:
            self._error(HTTPStatus.BAD_REQUEST, "POST /v1/predict takes one Content-Length header and no "
                        f"Transfer-Encoding. Received: Content-Length={lengths}, "
                        f"Transfer-Encoding={self.headers.get('Transfer-Encoding')!r}", body_unread=True)
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.strip().isascii() or not length_text.strip().isdigit():
            self._error(HTTPStatus.LENGTH_REQUIRED, "POST /v1/predict needs a Content-Length header",
                        body_unread=True)
            return
        digits = length_text.strip().lstrip("0") or "0"
        # Bounded before int(): Python refuses to parse over 4300 digits, and no such length can fit anyway.
        if len(digits) > len(str(app.max_body_bytes)) or int(digits) > app.max_body_bytes:
            shown = f"{digits} bytes" if len(digits) <= 30 else f"a Content-Length of {len(digits)} digits"
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"Request body of {shown} is over the limit of {app.max_body_bytes} bytes",
                        body_unread=True)
            return
        length = int(digits)
        kind = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "POST /v1/predict takes a JSON body: send "
                        f"'Content-Type: application/json'. Received: Content-Type={self.headers.get('Content-Type')!r}",
                        body_unread=True)
            return
        if not app.body_budget.take(length):
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "The server holds as many request bodies as it may; "
                        "retry later", {"Retry-After": "1"}, body_unread=True)
            return
        try:
            self._predict(length)
        finally:
            app.body_budget.release(length)

    def _predict(self, length: int) -> None:
        app = self.server.app
        try:
            body = self._read_body(length)
        except OSError:   # cut off at the read deadline, or the client went away
            self.close_connection = True
            return
        app.connections.phase(self.connection, "running")
        try:
            payload = loads_request(body)
        except JSONRequestError as e:
            self._error(HTTPStatus.BAD_REQUEST, f"The request body is JSON this server does not read: {e}")
            return
        except ValueError as e:  # includes JSONDecodeError and UnicodeDecodeError
            self._error(HTTPStatus.BAD_REQUEST, f"The request body is not valid JSON: {e}")
            return
        except RecursionError:
            self._error(HTTPStatus.BAD_REQUEST, "The request body is not valid JSON: nested too deeply")
            return
        except MemoryError:
            self._out_of_memory()
            return
        del body
        try:
            outputs = app.predict(payload)
            data, non_finite = app.encode(outputs)
        except RequestError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
            return
        except MemoryError:   # before the catch-all: the model did not fail, this process ran short
            self._out_of_memory()
            return
        except (_Busy, TimeoutError) as e:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(e) or "Timed out waiting for the model",
                        {"Retry-After": "1"})
            return
        except Exception as e:  # a runtime failure: onnxruntime's message names the node
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"Model run failed: {type(e).__name__}: {e}")
            return
        self._send(HTTPStatus.OK, data)

    def _out_of_memory(self) -> None:
        self._error(HTTPStatus.SERVICE_UNAVAILABLE, "The server does not have the memory for this request now; "
                    "retry later or send a smaller one", {"Retry-After": "1"})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (bad request line, 414, 431, 501) answered as JSON too."""
        short = self.responses.get(code, ("Error", ""))[0]
        self.log_error("code %d, message %s", code, message)
        self._error(code, f"{message or short}" + (f": {explain}" if explain else ""))

    def _read_body(self, length: int) -> bytes:
        parts, got = [], 0
        while got < length:
            chunk = self.rfile.read(min(_CHUNK, length - got))
            if not chunk:
                raise ConnectionError("the client closed the connection before sending its whole body")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)


class InferenceServer:
    """Serves one ONNX model over HTTP with JSON requests (see the module docstring for the guarantees).

    Args:
        model: A path to an ``.onnx`` file (validated by :func:`onnxforge.saving.load_onnx`) or a
            ``ModelProto``.
        host: The interface to bind. Only this one: the default serves this machine only.
        port: The TCP port; 0 picks a free one (read it back from :attr:`port`).
        batching: ``"auto"`` (default): concatenate concurrent requests along the batch axis only if the
            graph is proven row-independent; ``"on"``: whenever every input and output shares a named batch
            axis (you assert the rows are independent); ``"off"``: never.
        max_batch: The most rows one batched run may take; 1 turns batching off.
        batch_timeout_ms: How long to wait for more requests after the first of a batch.
        providers: onnxruntime execution providers (default: CUDA if available, then CPU).
        max_body_bytes: Larger request bodies get 413; a request's input arrays may take at most 4 times this
            (strings count padded to the longest, as numpy stores them): 400 otherwise.
        max_inflight_bytes: The most request-body bytes held at once (parsed JSON costs ~20x); beyond, 503.
        max_connections: The most connections handled at once; more get an immediate 503.
        max_concurrent_runs: The most unbatched model runs at once (default: the CPU count).
        backlog: The listen backlog (connections the kernel queues before they are accepted).
        read_timeout_s: How long a client may take to send its whole request.
        write_timeout_s: How long a client may take to receive its whole answer.
        request_timeout_s: How long a request may wait for the model (a batch or a run slot) before 503.
        drain_timeout_s: How long shutdown waits for requests being computed.
        allowed_hosts: ``Host`` names served besides IP addresses (default ``["localhost"]``; ``".x.org"``
            allows subdomains; ``["*"]`` turns the check off).
        non_finite: ``"null"`` (NaN / infinity become null, listed under ``"non_finite"``) or ``"error"``.
        log_requests: Log each request to stderr, as ``http.server`` does.

    Example:
        >>> import json, urllib.request
        >>> from onnx import helper, TensorProto
        >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
        >>> m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
        >>> with InferenceServer(m, port=0).start() as server:
        ...     req = urllib.request.Request(server.url + "/v1/predict", method="POST",
        ...                                  data=json.dumps({"inputs": {"x": [[-1, 2]]}}).encode(),
        ...                                  headers={"Content-Type": "application/json"})
        ...     json.load(urllib.request.urlopen(req, timeout=10))
        {'outputs': {'y': [[0.0, 2.0]]}}
    """

    def __init__(self, model: str | os.PathLike[str] | onnx.ModelProto, *, host: str = "127.0.0.1",
                 port: int = 0, batching: str = "auto", max_batch: int = 64, batch_timeout_ms: float = 2.0,
                 providers: Sequence[str] | None = None, max_body_bytes: int = 16 * 2**20,
                 max_inflight_bytes: int = 64 * 2**20, max_connections: int = 128,
                 max_concurrent_runs: int | None = None, backlog: int = 1024, read_timeout_s: float = 10.0,
                 write_timeout_s: float = 30.0, request_timeout_s: float = 60.0, drain_timeout_s: float = 10.0,
                 allowed_hosts: Sequence[str] | None = None, non_finite: str = "null",
                 log_requests: bool = False, session_options: ort.SessionOptions | None = None) -> None:
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in [0, 65535]. Received: port={port!r}")
        if not isinstance(host, str) or not host:
            raise ValueError(f"host must be a non-empty string. Received: host={host!r}")
        if batching not in BATCHING_MODES:
            raise ValueError(f"batching must be one of {BATCHING_MODES}. Received: batching={batching!r}")
        if non_finite not in NON_FINITE_MODES:
            raise ValueError(f"non_finite must be one of {NON_FINITE_MODES}. Received: non_finite={non_finite!r}")
        if not isinstance(batch_timeout_ms, (int, float)) or batch_timeout_ms < 0:
            raise ValueError(f"batch_timeout_ms must be >= 0. Received: batch_timeout_ms={batch_timeout_ms!r}")
        for name, value in (("max_batch", max_batch), ("max_body_bytes", max_body_bytes),
                            ("max_inflight_bytes", max_inflight_bytes), ("max_connections", max_connections),
                            ("backlog", backlog), ("max_concurrent_runs", max_concurrent_runs or 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int. Received: {name}={value!r}")
        for name, value in (("read_timeout_s", read_timeout_s), ("write_timeout_s", write_timeout_s),
                            ("request_timeout_s", request_timeout_s), ("drain_timeout_s", drain_timeout_s)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds. Received: {name}={value!r}")
        if allowed_hosts is None:
            allowed_hosts = ["localhost"]
        if isinstance(allowed_hosts, str) or not all(isinstance(h, str) for h in allowed_hosts):
            raise ValueError(f"allowed_hosts must be a list of host names. Received: allowed_hosts={allowed_hosts!r}")
        # 4 bytes per body byte is what any numeric body can need (int64 from "1,"); only strings padded to
        # the longest one go past it, and those are refused before numpy pads them.
        self.runner = ModelRunner(model, providers=providers, session_options=session_options,
                                  max_input_bytes=4 * max_body_bytes)
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s, self.write_timeout_s = float(read_timeout_s), float(write_timeout_s)
        self.request_timeout_s, self.drain_timeout_s = float(request_timeout_s), float(drain_timeout_s)
        self.allowed_hosts = list(allowed_hosts) + ([host] if host not in ("0.0.0.0", "::", "") else [])
        self.non_finite = non_finite
        self.log_requests = log_requests
        self.body_budget = ByteBudget(max_inflight_bytes)
        self._run_slots = threading.BoundedSemaphore(max_concurrent_runs or os.cpu_count() or 4)
        self.batching_reason = self._batching_decision(batching, max_batch)
        self.batcher: Batcher | None = None
        if not self.batching_reason.startswith("off"):
            self.batcher = Batcher(self.runner.run, max_batch=max_batch, timeout_s=batch_timeout_ms / 1000)
        self.connections = Connections(max_connections, self.read_timeout_s, self.write_timeout_s)
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        try:
            self._httpd = server_class((host, port), _Handler, bind_and_activate=False)
            self._httpd.request_queue_size = backlog   # socketserver's default backlog is 5
            self._httpd.server_bind()
            self._httpd.server_activate()
        except BaseException:
            if self.batcher is not None:
                self.batcher.close()
            self._httpd.server_close() if hasattr(self, "_httpd") else None
            raise
        self._httpd.app = self
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()
        self._closed = False
        self._close_lock = threading.Lock()

    def _batching_decision(self, mode: str, max_batch: int) -> str:
        """``"on: ..."`` or ``"off: why"``, for logs and ``/healthz``."""
        if mode == "off" or max_batch == 1:
            return "off: turned off (batching='off' or max_batch=1)"
        if not self.runner.batchable:
            return "off: the inputs and outputs do not share a named batch axis"
        if mode == "on":
            return "on: batching='on' (the operator vouches that rows are independent)"
        ok, why = analyze(self.runner.proto, [s.name for s in self.runner.inputs])
        return "on: every output row provably depends on its own input row only" if ok else \
            f"off: rows may depend on each other: {why} (batching='on' overrides)"

    @property
    def batching(self) -> bool:
        """Whether concurrent requests are batched along the first axis."""
        return self.batcher is not None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def predict(self, payload: Any) -> dict[str, np.ndarray]:
        """Validate a decoded JSON request and run it (batched when allowed).

        Raises:
            RequestError: a bad request (400).
            TimeoutError: no batch or run slot within ``request_timeout_s`` (503).
        """
        feeds = self.runner.parse_request(payload)
        if self.batcher is not None:
            return self.batcher.submit(feeds, timeout=self.request_timeout_s)
        if not self._run_slots.acquire(timeout=self.request_timeout_s):
            raise _Busy(f"Every model slot stayed busy for {self.request_timeout_s:g} s; retry later")
        try:
            return self.runner.run(feeds)
        finally:
            self._run_slots.release()

    def encode(self, outputs: Mapping[str, np.ndarray]) -> tuple[bytes, list[str]]:
        """The JSON answer: strictly valid JSON (NaN / infinity as null, or an error with ``non_finite="error"``)."""
        body: dict[str, Any] = {}
        non_finite = []
        for name, value in outputs.items():
            array = np.asarray(value)
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                if self.non_finite == "error":
                    raise RuntimeError(f"output {name!r} holds NaN or infinity, which JSON cannot carry "
                                       "(the server runs with non_finite='error')")
                non_finite.append(name)
                array = np.where(np.isfinite(array), array, None)
            body[name] = array.tolist()
        answer: dict[str, Any] = {"outputs": body}
        if non_finite:
            answer["non_finite"] = non_finite
        return json.dumps(answer, allow_nan=False).encode(), non_finite

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Handle requests in this thread until :meth:`shutdown` is called from another thread."""
        self._serving.set()
        self._httpd.serve_forever(poll_interval)

    def start(self) -> InferenceServer:
        """Serve from a background thread; returns self (usable as a context manager)."""
        if self._thread is not None:
            raise RuntimeError("The server is already started")
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="onnxforge-http", daemon=True)
        self._thread.start()
        self._serving.wait()
        return self

    def shutdown(self) -> None:
        """Stop accepting, cut clients still sending, finish requests being computed, free the port.

        Never waits on a slow client: connections still receiving their request are closed at once, and
        requests being computed get at most ``drain_timeout_s``. Safe to call more than once, and from a
        signal handler's helper thread; not from the thread running :meth:`serve_forever` itself.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._serving.is_set():
            self._httpd.shutdown()  # returns once serve_forever has left its loop
        self._httpd.server_close()  # the port is free from here on
        self.connections.drain(self.drain_timeout_s)
        if self.batcher is not None:
            self.batcher.close(timeout=self.drain_timeout_s)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> InferenceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
