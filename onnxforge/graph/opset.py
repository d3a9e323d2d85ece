"""The one pinned default opset, and the range of opsets onnxforge can emit."""
from __future__ import annotations

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "MAX_OPSET", "check_opset", "opset_imports", "ir_version_for"]

import onnx

#: Every program is emitted at this ``ai.onnx`` opset unless told otherwise. 21 is fully implemented by
#: onnxruntime >= 1.20 on the CPU and CUDA providers and has everything the rules need
#: (Gelu is 20, LayerNormalization 17, ReduceSum-with-axes-input 13).
DEFAULT_OPSET = 21
#: The oldest opset whose operator signatures the builder and the rules assume (ReduceMean axes as an
#: input arrived in 18).
MIN_OPSET = 18
#: The newest opset onnxforge emits and differentiates: 23 brought Attention, RMSNormalization and
#: RotaryEmbedding (torch's exporter writes scaled-dot-product attention as Attention there), 24 Swish,
#: TensorScatter and Attention's nonpad_kv_seqlen. onnxruntime 1.32 runs both on the CPU provider.
MAX_OPSET = 24


def check_opset(opset: int) -> int:
    """Return ``opset`` if onnxforge can emit it, else raise ``ValueError`` naming the valid range.

    Example:
        >>> check_opset(21)
        21
    """
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(
            f"opset must be an int in [{MIN_OPSET}, {MAX_OPSET}] (what onnxforge's rules and the installed "
            f"onnxruntime support). Received: opset={opset!r}"
        )
    return opset


def opset_imports(opset: int = DEFAULT_OPSET) -> list[onnx.OperatorSetIdProto]:
    """The ``opset_import`` list of an emitted model: the default ``ai.onnx`` domain only."""
    return [onnx.helper.make_opsetid("", opset)]


def ir_version_for(opset: int) -> int:
    """The IR version an emitted model at ``opset`` declares: 10 (what onnxruntime >= 1.20 reads) unless
    the opset needs a newer one (opset 23 needs IR 11, 24 needs 12).

    Example:
        >>> ir_version_for(21), ir_version_for(23)
        (10, 11)
    """
    return max(10, onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)]))
