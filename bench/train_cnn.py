"""Keras ``fit`` against PyTorch and tf.keras, side by side in one run: samples/s, CPU ms per step, peak RSS.

Usage: ``python bench/train_cnn.py [--models cnn,mlp,resbn] [--samples N] [--epochs 1] [--rounds 2]
[--threads 2] [--markdown]``; ``--profile`` prints onnxruntime's per-op profile of onnxforge's compiled
``train_step`` instead. The models are in ``bench/models.py``, the harness in ``bench/harness.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import Counter, defaultdict

# This checkout's onnxforge (not an installed copy), and the harness beside this file.
sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.dirname(os.path.abspath(__file__))]

from harness import RUNNERS, compare, report, run_peer  # noqa: E402
from models import MODELS, keras_model, make_data  # noqa: E402


# ------------------------------------------------------------------------------------------ profile
def profile(args, warm: int = 5, runs: int = 30) -> None:
    """onnxruntime's profile of onnxforge's compiled train_step: median ms per op type and per node."""
    import onnx
    import onnxruntime as ort

    import onnxforge as tf
    from onnxforge.runtime.session import DISABLED_OPTIMIZERS, session_options

    x, y = make_data(args.model, args.batch * 2)
    model = keras_model(args.model, tf)
    model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)
    program = model.compiled_programs["train_step"]
    graph = program.model.graph
    counts = Counter(n.op_type for n in graph.node)
    print(f"train_step: {len(graph.node)} nodes: " + ", ".join(f"{op} {c}" for op, c in counts.most_common()))
    inferred = onnx.shape_inference.infer_shapes(program.model).graph
    shapes = {vi.name: [d.dim_value or d.dim_param for d in vi.type.tensor_type.shape.dim]
              for vi in list(inferred.value_info) + list(inferred.input) + list(inferred.output)}
    for node in graph.node:
        if node.op_type == "Transpose":
            perm = next(list(a.ints) for a in node.attribute if a.name == "perm")
            print(f"  Transpose {node.input[0]} {shapes.get(node.input[0], '?')} perm={perm}")

    runner = model._runners["train_step"]
    with tempfile.TemporaryDirectory() as tmp:
        opts = session_options()
        if args.threads:
            opts.intra_op_num_threads = args.threads
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "train_cnn")
        runner._session = ort.InferenceSession(program.model.SerializeToString(), opts,
                                               providers=["CPUExecutionProvider"],
                                               disabled_optimizers=list(DISABLED_OPTIMIZERS))
        runner._bindings = []
        feeds = model._feeds([x[:args.batch]], [y[:args.batch]], None, "fit")
        for _ in range(warm + runs):
            runner.run(feeds, learning_rate=1e-3)
        path = runner._session.end_profiling()
        with open(path) as fh:
            events = json.load(fh)
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[warm:]
    per_op: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(spans))
    per_node: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(spans))
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        k = next((i for i, (a, b) in enumerate(spans) if a <= e["ts"] <= b), None)
        if k is None:
            continue
        op = e["args"]["op_name"]
        per_op[op][k] += e["dur"] / 1e3
        shape = e["args"].get("output_type_shape", "")
        per_node[f"{op:14s} {e['name'][:-len('_kernel_time')]} {shape}"][k] += e["dur"] / 1e3
    step = statistics.median((b - a) / 1e3 for a, b in spans)
    print(f"onnxruntime profile of {args.model}, batch {args.batch}, {args.threads or 'default'} threads: "
          f"{step:.2f} ms per step (median of {len(spans)}; "
          f"load average {os.getloadavg()[0]:.1f})")
    for op, ms in sorted(per_op.items(), key=lambda kv: -statistics.median(kv[1])):
        med = statistics.median(ms)
        print(f"  {op:22s} {med:7.2f} ms  {100 * med / step:5.1f}%")
    print("  costliest nodes:")
    for name, ms in sorted(per_node.items(), key=lambda kv: -statistics.median(kv[1]))[:15]:
        print(f"    {statistics.median(ms):7.2f} ms  {name[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="cnn", help=f"comma-separated, from {sorted(MODELS)} (default cnn)")
    parser.add_argument("--samples", type=int, default=0, help="per epoch (default: the model's own)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of every peer (0: its default)")
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument("--profile", action="store_true", help="profile onnxforge's compiled train_step")
    parser.add_argument("--model", default="cnn", choices=sorted(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_peer(args)
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    if args.profile:
        for args.model in models:
            profile(args)
        return
    best, info = compare(os.path.abspath(__file__), models, args)
    print(report(best, info, args, markdown=args.markdown))


if __name__ == "__main__":
    main()
