"""A small HTTP JSON inference service over one ONNX model (standard library + onnxruntime + numpy).

Endpoints:
    ``GET /healthz``     -> ``{"status": "ok", "inputs": [...], "outputs": [...], "batching": bool}``
    ``POST /v1/predict`` ``{"inputs": {name: nested list}}`` or ``{"instances": [...]}``
                         -> ``{"outputs": {name: nested list}}``; 400 with ``{"error": ...}`` for a bad
                         request (naming the input, received versus expected shape or dtype).
"""
from __future__ import annotations

__all__ = ["InferenceServer"]

import json
import os
import socket
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import onnx
import onnxruntime as ort

from onnxforge.serving.batcher import Batcher
from onnxforge.serving.runner import ModelRunner, RequestError


class _HTTPServer(ThreadingHTTPServer):
    # Graceful shutdown: server_close() waits for requests in flight instead of killing their threads.
    daemon_threads = False
    block_on_close = True
    app: InferenceServer


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "onnxforge-serving/0.1"
    # One request per connection: no idle keep-alive connection can hold up a shutdown.
    protocol_version = "HTTP/1.0"
    timeout = 30  # seconds a client may take to send its request

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.app.log_requests:
            super().log_message(format, *args)

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.split("?", 1)[0] != "/healthz":
            self._error(HTTPStatus.NOT_FOUND, f"No such endpoint: GET {self.path}; try GET /healthz or "
                        "POST /v1/predict")
            return
        app = self.server.app
        self._send_json(HTTPStatus.OK, {"status": "ok", **app.runner.describe(), "batching": app.batching})

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.split("?", 1)[0] != "/v1/predict":
            self._error(HTTPStatus.NOT_FOUND, f"No such endpoint: POST {self.path}; try POST /v1/predict")
            return
        app = self.server.app
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.strip().isdigit():
            self._error(HTTPStatus.LENGTH_REQUIRED, "POST /v1/predict needs a Content-Length header")
            return
        length = int(length_text)
        if length > app.max_body_bytes:
            self.close_connection = True  # the unread body must not be parsed as the next request
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"Request body of {length} bytes is over the limit of {app.max_body_bytes} bytes")
            return
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError as e:  # includes JSONDecodeError and UnicodeDecodeError
            self._error(HTTPStatus.BAD_REQUEST, f"The request body is not valid JSON: {e}")
            return
        except RecursionError:
            self._error(HTTPStatus.BAD_REQUEST, "The request body is not valid JSON: nested too deeply")
            return
        try:
            outputs = app.predict(payload)
        except RequestError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
            return
        except TimeoutError:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "Timed out waiting for the model")
            return
        except Exception as e:  # a runtime failure: onnxruntime's message names the node
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"Model run failed: {type(e).__name__}: {e}")
            return
        self._send_json(HTTPStatus.OK, {"outputs": {k: v.tolist() for k, v in outputs.items()}})


class InferenceServer:
    """Serves one ONNX model over HTTP with JSON requests and dynamic batching.

    Requests arriving together are concatenated along the batch axis and run as one session call when
    every input and output leads with the same named dynamic dim (e.g. ``"N"``); otherwise each request
    runs on its own (concurrently: onnxruntime sessions are thread-safe).

    Args:
        model: A path to an ``.onnx`` file (validated by :func:`onnxforge.saving.load_onnx`) or a
            ``ModelProto``.
        host: The interface to bind. Only this one: the default serves this machine only.
        port: The TCP port; 0 picks a free one (read it back from :attr:`port`).
        max_batch: The most rows one batched run may take; 1 turns batching off.
        batch_timeout_ms: How long to wait for more requests after the first of a batch.
        providers: onnxruntime execution providers (default: CUDA if available, then CPU).
        max_body_bytes: Larger request bodies get 413.
        request_timeout_s: How long a request may wait for its batch before a 503.
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
        ...                                  data=json.dumps({"inputs": {"x": [[-1, 2]]}}).encode())
        ...     json.load(urllib.request.urlopen(req, timeout=10))
        {'outputs': {'y': [[0.0, 2.0]]}}
    """

    def __init__(self, model: str | os.PathLike[str] | onnx.ModelProto, *, host: str = "127.0.0.1",
                 port: int = 0, max_batch: int = 64, batch_timeout_ms: float = 2.0,
                 providers: Sequence[str] | None = None, max_body_bytes: int = 64 * 2**20,
                 request_timeout_s: float = 60.0, log_requests: bool = False,
                 session_options: ort.SessionOptions | None = None) -> None:
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in [0, 65535]. Received: port={port!r}")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive int. Received: max_batch={max_batch!r}")
        if not isinstance(batch_timeout_ms, (int, float)) or batch_timeout_ms < 0:
            raise ValueError(f"batch_timeout_ms must be >= 0. Received: batch_timeout_ms={batch_timeout_ms!r}")
        if not isinstance(host, str) or not host:
            raise ValueError(f"host must be a non-empty string. Received: host={host!r}")
        self.runner = ModelRunner(model, providers=providers, session_options=session_options)
        self.max_body_bytes = max_body_bytes
        self.request_timeout_s = request_timeout_s
        self.log_requests = log_requests
        self.batcher: Batcher | None = None
        if self.runner.batchable and max_batch > 1:
            self.batcher = Batcher(self.runner.run, max_batch=max_batch, timeout_s=batch_timeout_ms / 1000)
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        try:
            self._httpd = server_class((host, port), _Handler)
        except BaseException:
            if self.batcher is not None:
                self.batcher.close()
            raise
        self._httpd.app = self
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()
        self._closed = False
        self._close_lock = threading.Lock()

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

    def predict(self, payload: Any) -> dict[str, Any]:
        """Validate a decoded JSON request and run it (batched when possible); raises RequestError."""
        feeds = self.runner.parse_request(payload)
        if self.batcher is not None:
            return self.batcher.submit(feeds, timeout=self.request_timeout_s)
        return self.runner.run(feeds)

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
        """Stop accepting connections, finish the requests in flight, stop the batcher, free the port.

        Safe to call more than once, and from a signal handler's helper thread. Must not be called
        from the thread running :meth:`serve_forever` itself.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._serving.is_set():
            self._httpd.shutdown()  # returns once serve_forever has left its loop
        self._httpd.server_close()  # joins handler threads (block_on_close)
        if self.batcher is not None:
            self.batcher.close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> InferenceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
