"""onnxruntime sessions for compiled programs."""
from __future__ import annotations

__all__ = ["session_options", "create_session", "set_intra_op_threads"]

import onnx

from .device import Device, gpu_settings

# Threads each session's operators may use; None: onnxruntime's default (one per physical core). Several
# processes on one machine (data-parallel ranks) each take their share instead of all fighting for every core.
_intra_op_threads: int | None = None


def set_intra_op_threads(threads: int | None) -> None:
    """Intra-op threads of sessions created after this call (``None``: onnxruntime's default).

    Example:
        >>> set_intra_op_threads(1); session_options().intra_op_num_threads
        1
        >>> set_intra_op_threads(None)
    """
    global _intra_op_threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"Intra-op threads must be a positive integer or None. Received: threads={threads!r}")
    _intra_op_threads = threads


def session_options():
    """Full graph optimization, default intra-op threads, warnings off (unused-initializer chatter);
    deterministic compute when ``enable_op_determinism`` asked for it."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.use_deterministic_compute = gpu_settings()["deterministic"]
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if _intra_op_threads is not None:
        opts.intra_op_num_threads = _intra_op_threads
    return opts


def create_session(model: onnx.ModelProto, device: Device, name: str = "program"):
    """One ``InferenceSession`` for ``model`` on ``device``; a clear error names the program if it fails."""
    import onnxruntime as ort

    _check_cpu_dtypes(model, device, name)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), sess_options=session_options(),
                                    providers=device.providers)
    except Exception as e:  # onnxruntime raises its own exception types
        raise RuntimeError(f"onnxruntime could not load the {name} program: {e}") from e
    if device.kind == "cuda" and "CUDAExecutionProvider" not in sess.get_providers():
        raise RuntimeError(f"onnxruntime could not start the CUDA execution provider for the {name} program "
                           f"(the session fell back to {sess.get_providers()}). Check the CUDA and cuDNN "
                           "installation, or compile with device='cpu'.")
    return sess


def _check_cpu_dtypes(model: onnx.ModelProto, device: Device, name: str) -> None:
    """bfloat16 arithmetic cannot run on onnxruntime's CPU provider (it has bfloat16 Cast kernels only):
    say so, naming the program, before onnxruntime refuses the graph with a kernel-lookup error."""
    if device.kind != "cpu":
        return
    bf16 = onnx.TensorProto.BFLOAT16
    if any(n.op_type == "Cast" and any(a.name == "to" and a.i == bf16 for a in n.attribute)
           for n in model.graph.node):
        raise RuntimeError(
            f"The {name} program computes in bfloat16 (a 'mixed_bfloat16' or 'bfloat16' dtype policy), but "
            "onnxruntime's CPU execution provider has no bfloat16 kernels. Compile with device='cuda', or use "
            "the 'mixed_float16' or 'float32' policy on the CPU.")
