"""Session options for compiled programs: environment knobs and the transformers left out."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from onnxforge.graph import GraphBuilder
from onnxforge.runtime import Device, create_session, session_options


def test_environment_sets_threads_and_spinning(monkeypatch):
    monkeypatch.setenv("ONNXFORGE_INTRA_OP_THREADS", "1")
    monkeypatch.setenv("ONNXFORGE_ALLOW_SPINNING", "0")
    opts = session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_defaults_leave_onnxruntime_to_choose(monkeypatch):
    monkeypatch.delenv("ONNXFORGE_INTRA_OP_THREADS", raising=False)
    monkeypatch.delenv("ONNXFORGE_ALLOW_SPINNING", raising=False)
    opts = session_options()
    assert opts.intra_op_num_threads == 0
    assert not opts.enable_mem_pattern  # peak RSS of training steps (see onnxforge.runtime.session)
    with pytest.raises(Exception):  # onnxruntime raises when the entry was never set
        opts.get_session_config_entry("session.intra_op.allow_spinning")


@pytest.mark.parametrize("name,value", [("ONNXFORGE_INTRA_OP_THREADS", "two"), ("ONNXFORGE_INTRA_OP_THREADS", "-1"),
                                        ("ONNXFORGE_ALLOW_SPINNING", "yes")])
def test_bad_environment_values_are_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name}.*Received: {name}={value!r}"):
        session_options()


def test_sessions_skip_the_nchwc_layout_transformer_and_still_run():
    """A pool behind a Conv with constant weights: NCHWc would wrap it in reorders; the result is the same."""
    b = GraphBuilder()
    x = b.input("x", onnx.TensorProto.FLOAT, ("N", 2, 6, 6))
    w = b.const(np.ones((4, 2, 3, 3), np.float32))
    b.output(b.op("MaxPool", [b.op("Conv", [x, w], pads=[1, 1, 1, 1])], kernel_shape=[2, 2], strides=[2, 2]), "y")
    sess = create_session(b.to_model(), Device("cpu"), "probe")
    x_val = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)
    (y,) = sess.run(None, {"x": x_val})
    padded = np.pad(x_val, ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.stack([padded[:, :, i:i + 3, j:j + 3].sum(axis=(1, 2, 3)) for i in range(6) for j in range(6)], -1)
    expected = conv.reshape(1, 6, 6).repeat(4, 0)[None].reshape(1, 4, 3, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_set_intra_op_threads_wins_over_the_environment(monkeypatch):
    from onnxforge.runtime.session import set_intra_op_threads

    monkeypatch.setenv("ONNXFORGE_INTRA_OP_THREADS", "2")
    set_intra_op_threads(1)
    try:
        assert session_options().intra_op_num_threads == 1
    finally:
        set_intra_op_threads(None)
    assert session_options().intra_op_num_threads == 2
