"""Train a small digit classifier, export it, serve it with ``onnxforge serve``, and query it over HTTP.

1. Trains a CNN on scikit-learn's 8x8 digits for a few epochs (seconds on a CPU).
2. ``model.export()`` writes the inference graph: one ``.onnx`` file with the class names in its metadata.
3. Starts ``onnxforge serve model.onnx --port 0`` in a child process (the service is onnxruntime + the
   standard library) and waits for ``/healthz``.
4. Sends one request, then 16 requests at once (the server batches those that arrive together), and
   checks every answer against ``model.predict``; then a malformed body and a wrong shape, each a 400.

Run: ``python examples/serve_inference.py [--out examples/output]``
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import onnxforge as tf
from onnxforge.datasets import digits


def train(epochs: int) -> tuple[tf.keras.Model, np.ndarray, np.ndarray]:
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    x_train = (x_train[..., None] / 16.0).astype(np.float32)
    x_test = (x_test[..., None] / 16.0).astype(np.float32)
    tf.initializers.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.Input((8, 8, 1), name="image"),
        tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10, activation="softmax", name="probabilities")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {accuracy:.3f} (loss {loss:.3f})")
    return model, x_test, y_test


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def start_server(path: str) -> tuple[subprocess.Popen, str]:
    """``onnxforge serve`` on a free port; returns the process and its base URL once /healthz answers."""
    server = subprocess.Popen([sys.executable, "-m", "onnxforge.cli", "serve", path, "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    banner = server.stdout.readline()            # "Serving model.onnx on http://127.0.0.1:PORT (...)"
    if " on http" not in banner:
        server.kill()
        raise RuntimeError(f"onnxforge serve did not start: {banner!r}")
    url = banner.split(" on ", 1)[1].split()[0]
    print(banner.strip())
    for _ in range(100):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                print("GET /healthz ->", response.status, json.load(response))
                return server, url
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("onnxforge serve did not answer /healthz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "output"))
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    model, x_test, _ = train(args.epochs)
    path = os.path.join(args.out, "digits.onnx")
    model.export(path, class_names=[str(d) for d in range(10)])
    print(f"exported {path} ({os.path.getsize(path)} bytes)")
    expected = model.predict(x_test, verbose=0)

    server, url = start_server(path)
    try:
        status, answer = post(url + "/v1/predict", json.dumps({"inputs": {"image": x_test[:1].tolist()}}).encode())
        probabilities = np.asarray(answer["outputs"]["probabilities"], np.float32)
        print(f"POST /v1/predict (1 image) -> {status}: digit {int(probabilities.argmax())}, "
              f"max |served - predict| = {np.abs(probabilities - expected[:1]).max():.2e}")

        chunks = [x_test[k * 4:(k + 1) * 4] for k in range(16)]
        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda x: post(url + "/v1/predict",
                                                   json.dumps({"inputs": {"image": x.tolist()}}).encode()), chunks))
        elapsed = time.perf_counter() - started
        served = np.concatenate([np.asarray(a["outputs"]["probabilities"], np.float32) for _, a in answers])
        worst = np.abs(served - expected[:64]).max()
        statuses = sorted({s for s, _ in answers})
        print(f"16 concurrent requests x 4 images -> statuses {statuses} in {elapsed * 1e3:.0f} ms; "
              f"max |served - predict| = {worst:.2e}")
        assert worst < 1e-5, worst

        for what, body in (("malformed JSON", b"{not json"),
                           ("wrong shape", json.dumps({"inputs": {"image": [[1.0, 2.0]]}}).encode())):
            status, answer = post(url + "/v1/predict", body)
            print(f"{what} -> {status}: {answer.get('error', answer)}")
            assert 400 <= status < 500
    finally:
        server.send_signal(signal.SIGINT)       # the CLI finishes in-flight requests and frees the port
        server.wait(timeout=30)
    print("server stopped; served answers equal model.predict")


if __name__ == "__main__":
    main()
