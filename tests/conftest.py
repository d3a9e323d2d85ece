"""Shared fixtures: the full ONNX checker every emitted graph goes through, and optional oracles."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

# Tests run on 2 cores next to each other; keep intra-op pools small and results reproducible.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One worker per core: onnxruntime's sessions keep to one thread each and do not spin, or two workers'
    # pools would fight over both cores.
    os.environ.setdefault("ONNXFORGE_INTRA_OP_THREADS", "1")
    os.environ.setdefault("ONNXFORGE_ALLOW_SPINNING", "0")
# Keras is the oracle on its torch backend everywhere; importing TensorFlow first (the tf.* comparisons)
# would otherwise load Keras on the TensorFlow backend for every test module that follows.
os.environ.setdefault("KERAS_BACKEND", "torch")
# TensorFlow (the oracle here and in child processes, which inherit this) turns oneDNN on by itself only on
# some CPUs (AVX-512 ones); without it its CPU Conv2D refuses NCHW, which Keras's channels_first STFT
# layers use. One setting on every machine keeps the oracle the same everywhere.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def check_full(model: onnx.ModelProto) -> onnx.ModelProto:
    """Run ``onnx.checker.check_model(full_check=True)`` and assert only the ai.onnx domain is used."""
    onnx.checker.check_model(model, full_check=True)
    domains = {n.domain for n in model.graph.node} - {"", "ai.onnx"}
    assert not domains, f"non-standard domains in an emitted graph: {domains}"
    return model


@pytest.fixture
def checked():
    """The one fixture every emitted graph goes through: the full checker plus the standard-domain check."""
    return check_full


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    """Skip CUDA-marked tests cleanly when onnxruntime has no CUDA provider. With one, every compile picks
    CUDA ('auto'): the oracles then run float32 without TF32 too, and programs are deterministic, so the
    suite's float32 tolerances and bit-exact resume checks hold on a GPU machine as on the CPU."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        from onnxforge.runtime import enable_op_determinism

        enable_op_determinism()
        try:
            import torch

            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        except ImportError:
            pass
        return
    skip = pytest.mark.skip(reason="CUDAExecutionProvider not available (CPU-only onnxruntime)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_collection_finish(session):
    """The garbage collector stops walking what collection left alive (torch, Keras, TensorFlow, onnxruntime,
    the test modules: ~0.5M objects), which every full collection walked again (~0.2 s each, 10-15% of a
    Keras-heavy file's CPU), and collects the young generation every 7000 allocations instead of 700, so fewer
    collections reach the old one. Objects a test creates are collected as before, only in fewer passes;
    garbage is collected first, so nothing unreachable is frozen."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 10, 10)


def pytest_sessionfinish(session, exitstatus):
    """Stops the TensorFlow oracle server (tests/tf_server.py) of this process, if a test started one."""
    import sys

    server = sys.modules.get("tests.tf_server")
    if server is not None:
        server.stop()
