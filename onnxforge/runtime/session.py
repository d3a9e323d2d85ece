"""onnxruntime sessions for compiled programs.

Options (measured on the seed CNN's ``train_step``, CPU time per step in a 1-thread session, paired A/B):

* full graph optimization (``ORT_ENABLE_ALL``) except the NCHWc layout transformer: compiled programs take
  their weights as inputs, so NCHWc only ever reaches pools and constant-kernel convs, and the reorders it
  wraps them in cost more than they save (-4 CPU-ms of ~88 without it; ``ORT_ENABLE_EXTENDED`` -2..-4;
  ``ORT_ENABLE_BASIC`` +4); the constant-weight inference sessions of ``runtime.frozen`` keep it, since there
  it reaches every conv (seed CNN inference 2x faster);
* no memory pattern: onnxruntime would pre-plan one block for all of a step's intermediates, and for a
  training step that block outgrows what the arena reuses anyway (peak RSS of the residual BatchNorm CNN's
  ``fit`` 761 -> 449 MB, the seed CNN's 246 -> 197 MB; CPU time unchanged within noise, paired A/B);
* onnxruntime's default intra-op threads (one per physical core) with spinning, unless told otherwise:
  ``set_intra_op_threads(n)`` (data-parallel ranks sharing a machine), else the environment's
  ``ONNXFORGE_INTRA_OP_THREADS=N``; ``ONNXFORGE_ALLOW_SPINNING=0|1`` (both read when a session is created)
  for machines shared with other work, where a spinning thread burns a core another job needs.

On the CPU, ``fit`` usually spends the cores differently: one shard of each batch per core, each in a
one-thread session (``trainer.core_parallel``); the thread setting then says how many shards.
"""
from __future__ import annotations

__all__ = ["session_options", "create_session", "computes_in_bfloat16", "set_intra_op_threads", "intra_op_threads",
           "physical_cores", "planned_threads", "DISABLED_OPTIMIZERS"]

import functools
import os

import onnx

from .device import Device, gpu_settings

DISABLED_OPTIMIZERS: tuple[str, ...] = ("NchwcTransformer",)


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"Environment variable {name} must be an integer. Received: {name}={raw!r}") from None
    if value < 0:
        raise ValueError(f"Environment variable {name} must be >= 0 (0: onnxruntime's default). "
                         f"Received: {name}={raw!r}")
    return value


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


def intra_op_threads() -> int | None:
    """The intra-op threads sessions get: ``set_intra_op_threads``'s, else ``$ONNXFORGE_INTRA_OP_THREADS``,
    else ``None`` (onnxruntime's default: one per physical core).

    Example:
        >>> set_intra_op_threads(3); intra_op_threads()
        3
        >>> set_intra_op_threads(None)
    """
    return _intra_op_threads if _intra_op_threads is not None else _env_int("ONNXFORGE_INTRA_OP_THREADS")


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores among the CPUs this process may use (hyperthreads share one core's units)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        try:
            base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
            with open(f"{base}/physical_package_id") as f, open(f"{base}/core_id") as g:
                cores.add((f.read().strip(), g.read().strip()))
        except OSError:
            cores.add(("", str(cpu)))
    return max(1, len(cores))


def planned_threads(device: Device) -> int | None:
    """The intra-op threads a session on ``device`` created now would use: ``intra_op_threads()``, else one per
    physical core; ``None`` off the CPU. The compiler hands it to the gradient rules (``autodiff.tuning``).

    Example:
        >>> set_intra_op_threads(3); planned_threads(Device("cpu")), planned_threads(Device("cuda"))
        (3, None)
        >>> set_intra_op_threads(None)
    """
    if device.kind != "cpu":
        return None
    return intra_op_threads() or physical_cores()


def session_options(threads: int | None = None):
    """Full graph optimization, no memory pattern, intra-op threads (``threads``, else from the environment,
    else onnxruntime's default) and spinning from the environment, warnings off (unused-initializer
    chatter); deterministic compute when ``enable_op_determinism`` asked for it.

    Example:
        >>> session_options().log_severity_level
        3
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.use_deterministic_compute = gpu_settings()["deterministic"]
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.enable_mem_pattern = False
    if threads is None:
        threads = intra_op_threads()
    if threads:
        opts.intra_op_num_threads = threads
    spinning = os.environ.get("ONNXFORGE_ALLOW_SPINNING", "").strip()
    if spinning:
        if spinning not in ("0", "1"):
            raise ValueError("Environment variable ONNXFORGE_ALLOW_SPINNING must be 0 or 1. "
                             f"Received: ONNXFORGE_ALLOW_SPINNING={spinning!r}")
        opts.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    return opts


def create_session(model: onnx.ModelProto, device: Device, name: str = "program", threads: int | None = None,
                   layout_optimizations: bool = False):
    """One ``InferenceSession`` for ``model`` on ``device`` (``threads`` intra-op threads, else the default of
    ``session_options``); a clear error names the program if it fails. ``layout_optimizations`` keeps the
    NCHWc transformer on (for programs whose weights are constants: ``runtime.frozen``)."""
    import onnxruntime as ort

    _check_cpu_dtypes(model, device, name)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), sess_options=session_options(threads),
                                    providers=device.providers,
                                    disabled_optimizers=[] if layout_optimizations else list(DISABLED_OPTIMIZERS))
    except Exception as e:  # onnxruntime raises its own exception types
        raise RuntimeError(f"onnxruntime could not load the {name} program: {e}") from e
    if device.kind == "cuda" and "CUDAExecutionProvider" not in sess.get_providers():
        raise RuntimeError(f"onnxruntime could not start the CUDA execution provider for the {name} program "
                           f"(the session fell back to {sess.get_providers()}). Check the CUDA and cuDNN "
                           "installation, or compile with device='cpu'.")
    return sess


def computes_in_bfloat16(model: onnx.ModelProto) -> bool:
    """Whether the program computes on bfloat16 values it casts to (a 'bfloat16' / 'mixed_bfloat16' dtype
    policy); a cast whose result is only returned (``ops.ones(..., dtype="bfloat16")``) needs no kernel
    but Cast, which the CPU provider has."""
    bf16 = onnx.TensorProto.BFLOAT16
    returned = {o.name for o in model.graph.output}
    used = {name for n in model.graph.node for name in n.input}
    if any(n.op_type == "Cast" and any(a.name == "to" and a.i == bf16 for a in n.attribute)
           and not (set(n.output) <= returned and not set(n.output) & used)
           for n in model.graph.node):
        return True
    # bfloat16 arrays fed in (an eager op on them) are computed on unless only cast or passed through.
    fed = {i.name for i in model.graph.input if i.type.tensor_type.elem_type == bf16}
    return any(n.op_type not in ("Cast", "Identity") and fed & set(n.input) for n in model.graph.node)


def _check_cpu_dtypes(model: onnx.ModelProto, device: Device, name: str) -> None:
    """bfloat16 arithmetic cannot run on onnxruntime's CPU provider (it has bfloat16 Cast kernels only):
    say so, naming the program, before onnxruntime refuses the graph with a kernel-lookup error."""
    if device.kind == "cpu" and computes_in_bfloat16(model):
        raise RuntimeError(
            f"The {name} program computes in bfloat16 (a 'mixed_bfloat16' or 'bfloat16' dtype policy), but "
            "onnxruntime's CPU execution provider has no bfloat16 kernels. Compile with device='cuda', or use "
            "the 'mixed_float16' or 'float32' policy on the CPU.")
