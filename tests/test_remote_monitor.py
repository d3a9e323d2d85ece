"""RemoteMonitor: the posts a local HTTP server receives during ``fit`` (JSON and form bodies, headers, numpy
values), the warning for an unreachable server, and argument errors."""
from __future__ import annotations

import http.server
import json
import threading
import urllib.parse

import numpy as np
import pytest

import onnxforge as of
from onnxforge.callbacks import RemoteMonitor


@pytest.fixture
def server():
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), body))
            self.send_response(404 if self.path.startswith("/missing") else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()


def _fit(callback, epochs=2):
    model = of.keras.Sequential([of.keras.Input((3,)), of.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model.fit(np.ones((4, 3), "float32"), np.ones((4, 1), "float32"), epochs=epochs, verbose=0,
                     callbacks=[callback])


def test_json_posts_each_epochs_logs(server):
    root, received = server
    history = _fit(RemoteMonitor(root=root, send_as_json=True, headers={"X-Run": "7"}))
    assert [path for path, _, _ in received] == ["/publish/epoch/end/"] * 2
    for epoch, (_, headers, body) in enumerate(received):
        assert headers["Content-Type"] == "application/json" and headers["X-Run"] == "7"
        sent = json.loads(body)
        assert sent["epoch"] == epoch
        assert sent["loss"] == pytest.approx(history.history["loss"][epoch])
        assert set(sent) == {"epoch", "loss", "mae"}


def test_form_post_holds_the_json_in_its_field(server):
    root, received = server
    RemoteMonitor(root=root, path="/events", field="payload").on_epoch_end(
        3, {"loss": np.float32(0.5), "acc": np.asarray(0.25), "note": "x"})
    (path, headers, body), = received
    assert path == "/events" and headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = urllib.parse.parse_qs(body.decode())
    assert json.loads(form["payload"][0]) == {"epoch": 3, "loss": 0.5, "acc": 0.25, "note": "x"}


def test_http_error_status_is_ignored_and_unreachable_server_warns(server):
    root, received = server
    RemoteMonitor(root=root, path="/missing").on_epoch_end(0, {"loss": 1.0})
    assert len(received) == 1
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor root server"):
        RemoteMonitor(root="http://127.0.0.1:9", timeout=2).on_epoch_end(0, {"loss": 1.0})


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="root='ftp://host'"):
        RemoteMonitor(root="ftp://host")
    with pytest.raises(ValueError, match="headers="):
        RemoteMonitor(headers=["X"])
