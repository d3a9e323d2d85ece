"""The int8 product of a quantized Dense on onnxruntime's CPU: ``MatMulInteger`` (int8 x int8 -> int32) against a
float ``MatMul`` of the int8 values cast to float, the formulation ``layers/quantization.py`` emits.

Each graph takes int8 activations, multiplies them by an int8 weight stored as an int8 initializer, and returns
float32; both are checked against NumPy's int64 product (exact) and timed on one onnxruntime thread, best of
``--rounds`` rounds of ``--reps`` runs, alternating. Run: ``python bench/int8_matmul.py``.

Measured here (2 shared cores, load average ~6; onnxruntime 1.32, one thread, best of 3), both exact here:

    M    K     N     MatMulInteger ms   float MatMul ms
    256  512   512   10.6               3.6
    32   2048  256   3.3                0.85
    8    64    32    0.013              0.010

onnxruntime's fast CPU integer kernels are for uint8 activations (u8 x s8); int8 x int8 takes a slower path, so
the float product of the int8 values wins by 3-5x, and it is exact while the partial sums stay below 2**24
(contractions up to 1040 elements in the worst case; the random values above are exact at K=2048 too).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h


def build(kind: str, k: int, n: int, w: np.ndarray) -> bytes:
    x = h.make_tensor_value_info("x", T.INT8, [None, k])
    y = h.make_tensor_value_info("y", T.FLOAT, [None, n])
    if kind == "MatMulInteger":
        nodes = [h.make_node("MatMulInteger", ["x", "w"], ["i"]), h.make_node("Cast", ["i"], ["y"], to=T.FLOAT)]
    else:
        nodes = [h.make_node("Cast", ["x"], ["xf"], to=T.FLOAT), h.make_node("Cast", ["w"], ["wf"], to=T.FLOAT),
                 h.make_node("MatMul", ["xf", "wf"], ["y"])]
    graph = h.make_graph(nodes, kind, [x], [y], [onnx.numpy_helper.from_array(w, "w")])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'M':>4} {'K':>5} {'N':>5}  {'MatMulInteger ms':>17}  {'float MatMul ms':>16}")
    for m, k, n in ((256, 512, 512), (32, 2048, 256), (8, 64, 32)):
        x = rng.integers(-127, 128, (m, k), dtype=np.int8)
        w = rng.integers(-127, 128, (k, n), dtype=np.int8)
        exact = (x.astype(np.int64) @ w.astype(np.int64)).astype(np.float32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        sessions = {kind: ort.InferenceSession(build(kind, k, n, w), options, providers=["CPUExecutionProvider"])
                    for kind in ("MatMulInteger", "MatMul")}
        best = {kind: float("inf") for kind in sessions}
        for _ in range(args.rounds):
            for kind, session in sessions.items():
                out = session.run(None, {"x": x})[0]
                assert np.array_equal(out, exact), f"{kind} is not exact at {(m, k, n)}"
                start = time.perf_counter()
                for _ in range(args.reps):
                    session.run(None, {"x": x})
                best[kind] = min(best[kind], (time.perf_counter() - start) / args.reps * 1e3)
        print(f"{m:>4} {k:>5} {n:>5}  {best['MatMulInteger']:>17.3f}  {best['MatMul']:>16.3f}")


if __name__ == "__main__":
    main()
