"""The exported training graph trains identically in Python onnxruntime, onnxruntime-node and onnxruntime-web.

The seed CNN and the real digits are exported once (``examples/export_for_js.py``); five training steps of
32 digits then run in each runtime from the files alone, and each runtime's losses must equal onnxforge's own
``train_on_batch`` on the same batches within 1e-4:

* Python: onnxruntime's session API;
* Node.js: ``examples/train_in_node/train.mjs`` with onnxruntime-node;
* the browser: ``examples/train_in_browser/index.html`` with onnxruntime-web (WASM) in headless Chromium,
  driven over the DevTools protocol (``examples/train_in_browser/headless.py``).

The JavaScript checks are skipped only where ``node`` / ``npm`` or ``chromium`` are absent (``.ci/run``
installs them and runs ``npm install --ignore-scripts`` in both example folders; a missing
``node_modules`` is installed here the same way).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STEPS, BATCH = 5, 32


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"onnxforge_example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The exported files and ``train_on_batch``'s losses on the first five batches of the exported digits."""
    export_for_js = _module(EXAMPLES / "export_for_js.py")
    model = export_for_js.build_seed_cnn(seed=1)
    digits = export_for_js.load_digits()
    folder = export_for_js.export(model, tmp_path_factory.mktemp("js"), digits)
    expected = []
    for k in range(STEPS):
        rows = slice(k * BATCH, (k + 1) * BATCH)
        x, y = export_for_js.as_float(digits["x_train"][rows]), digits["y_train"][rows].astype(np.int64)
        expected.append(model.train_on_batch(x, y, return_dict=True)["loss"])
        model.reset_metrics()
    assert min(expected[1:]) < expected[0]      # it learns: a comparison of flat curves would prove little
    return folder, expected, digits, export_for_js


def _npm_install(folder: Path, package: str) -> None:
    if (folder / "node_modules" / package).is_dir():
        return
    npm = shutil.which("npm")
    done = subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"npm install in {folder} failed: {done.stderr[-2000:]}"


def test_python_onnxruntime_from_the_files_alone(exported):
    folder, expected, digits, export_for_js = exported
    step = ort.InferenceSession(str(folder / "train_step.onnx"), providers=["CPUExecutionProvider"])
    init = ort.InferenceSession(str(folder / "train_step.init.onnx"), providers=["CPUExecutionProvider"])
    state = dict(zip([o.name for o in init.get_outputs()], init.run(None, {})))
    outputs = [o.name for o in step.get_outputs()]
    losses = []
    for k in range(STEPS):
        rows = slice(k * BATCH, (k + 1) * BATCH)
        out = dict(zip(outputs, step.run(None, {
            "image": export_for_js.as_float(digits["x_train"][rows]), "target/digit": digits["y_train"][rows].astype(
                np.int64), "sample_weight/digit": np.ones(BATCH, np.float32),
            "learning_rate": np.asarray(0.001, np.float32), **state})))
        state.update({name[:-len(":new")]: value for name, value in out.items() if name.endswith(":new")})
        losses.append(float(out["sums/loss/total"] / out["sums/loss/count"]))
    np.testing.assert_allclose(losses, expected, rtol=0, atol=1e-4)


def test_onnxruntime_node_trains_like_train_on_batch(exported):
    folder, expected, _, _ = exported
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node / npm are not installed, so onnxruntime-node cannot run here (.ci/run installs it)")
    example = EXAMPLES / "train_in_node"
    _npm_install(example, "onnxruntime-node")
    done = subprocess.run([node, "train.mjs", str(folder), str(STEPS), str(BATCH)], cwd=example,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr                       # no onnxruntime warning either
    losses = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("losses "))[7:])
    np.testing.assert_allclose(losses, expected, rtol=0, atol=1e-4)
    assert "step 1: loss" in done.stdout and "held-out accuracy" in done.stdout


def test_onnxruntime_web_in_headless_chromium_trains_like_train_on_batch(exported, tmp_path):
    folder, expected, _, _ = exported
    example = EXAMPLES / "train_in_browser"
    headless = _module(example / "headless.py")
    if headless.find_chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    if shutil.which("npm") is None and not (example / "node_modules" / "onnxruntime-web").is_dir():
        pytest.skip("npm is not installed, so onnxruntime-web cannot be fetched here (.ci/run installs it)")
    _npm_install(example, "onnxruntime-web")
    server = _module(example / "run.py").serve(port=0, build=folder)      # 127.0.0.1, a free port
    try:
        with headless.Browser(height=1000) as browser:
            browser.goto(f"http://127.0.0.1:{server.server_address[1]}/?steps={STEPS}&batch={BATCH}")
            result = browser.wait_for("window.onnxforgeResult", timeout=240)
            assert "error" not in result, (result, browser.console)
            text = browser.evaluate("document.getElementById('status').textContent")
            shown = browser.evaluate("document.querySelectorAll('#digits figure').length")
            browser.screenshot(str(tmp_path / "page.png"))
    finally:
        server.shutdown()
        server.server_close()
    np.testing.assert_allclose(result["losses"], expected, rtol=0, atol=1e-4)
    assert text.startswith(f"step {STEPS} / {STEPS}: batch loss") and shown == 48
    assert 0.0 <= result["accuracy"] <= 1.0 and result["held"] == 500
    assert (tmp_path / "page.png").stat().st_size > 10_000


if __name__ == "__main__":   # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
