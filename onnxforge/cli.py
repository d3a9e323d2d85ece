"""The ``onnxforge`` command: check, describe and serve ``.onnx`` files.

    onnxforge check model.onnx      # full checker, op census, opset, onnxruntime sessions per provider
    onnxforge info model.onnx       # inputs/outputs (dtypes, symbolic shapes), metadata, parameter count
    onnxforge serve model.onnx --port 8000
    onnxforge upgrade old_train_step.onnx   # a first-format step file -> the portable pair

Every file is read through :func:`onnxforge.saving.load_onnx`, so a hostile or broken file ends in a
one-line error and exit status 1, never a traceback or a read outside the model's folder.
"""
from __future__ import annotations

__all__ = ["main"]

import argparse
import json
import math
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import onnx

from onnxforge.graph.value import np_dtype
from onnxforge.graph import contract
from onnxforge.saving import integrity, portable
from onnxforge.graph.safe_load import OnnxLoadError, iter_tensors, load_onnx

_PROTOBUF_LIMIT = 2**31 - 1  # a serialized ModelProto cannot be larger

_FLOAT_TYPES = {getattr(onnx.TensorProto, n) for n in (
    "FLOAT", "DOUBLE", "FLOAT16", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ",
    "FLOAT8E8M0", "FLOAT4E2M1", "FLOAT6E2M3", "FLOAT6E3M2") if hasattr(onnx.TensorProto, n)}


# ---------------------------------------------------------------------------------------------------
# Describing a model.


def _dtype_name(elem_type: int) -> str:
    if elem_type == onnx.TensorProto.STRING:
        return "string"
    try:
        return np_dtype(elem_type).name
    except (KeyError, ValueError, TypeError):
        try:
            return onnx.TensorProto.DataType.Name(elem_type).lower()
        except ValueError:
            return f"<data_type {elem_type}>"


def _shape(tensor_type: onnx.TypeProto.Tensor) -> list[int | str] | None:
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else "?"
            for d in tensor_type.shape.dim]


def _type_json(t: onnx.TypeProto) -> dict[str, Any]:
    kind = t.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        tt = getattr(t, kind)
        out: dict[str, Any] = {"dtype": _dtype_name(tt.elem_type), "shape": _shape(tt)}
        if kind == "sparse_tensor_type":
            out["sparse"] = True
        return out
    if kind == "sequence_type":
        return {"sequence": _type_json(t.sequence_type.elem_type)}
    if kind == "optional_type":
        return {"optional": _type_json(t.optional_type.elem_type)}
    if kind == "map_type":
        return {"map": [_dtype_name(t.map_type.key_type), _type_json(t.map_type.value_type)]}
    return {"dtype": "unknown", "shape": None}


def _type_text(info: dict[str, Any]) -> str:
    if "sequence" in info:
        return f"sequence<{_type_text(info['sequence'])}>"
    if "optional" in info:
        return f"optional<{_type_text(info['optional'])}>"
    if "map" in info:
        return f"map<{info['map'][0]}, {_type_text(info['map'][1])}>"
    shape = "[unknown rank]" if info["shape"] is None else "[" + ", ".join(map(str, info["shape"])) + "]"
    return f"{'sparse ' if info.get('sparse') else ''}{info['dtype']} {shape}"


def _graph_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.HasField("g"):
                yield from _graph_nodes(a.g)
            for g in a.graphs:
                yield from _graph_nodes(g)


def op_census(model: onnx.ModelProto) -> dict[str, dict[str, int]]:
    """``{domain: {op_type: count}}`` over the graph and its subgraphs (``""`` reported as ``ai.onnx``).

    Example:
        >>> op_census(onnx.ModelProto())
        {}
    """
    counts = Counter((n.domain or "ai.onnx", n.op_type) for n in _graph_nodes(model.graph))
    census: dict[str, dict[str, int]] = {}
    for (domain, op), k in sorted(counts.items()):
        census.setdefault(domain, {})[op] = k
    return census


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {(o.domain or "ai.onnx"): o.version for o in model.opset_import}


def parameter_count(model: onnx.ModelProto) -> int:
    """Total elements of the graph's floating-point initializers (dense and sparse).

    Example:
        >>> import numpy as np
        >>> m = onnx.ModelProto()
        >>> m.graph.initializer.extend([onnx.numpy_helper.from_array(np.zeros((3, 4), np.float32), "w"),
        ...                             onnx.numpy_helper.from_array(np.zeros(5, np.int64), "idx")])
        >>> parameter_count(m)
        12
    """
    dense = sum(math.prod(t.dims) for t in model.graph.initializer if t.data_type in _FLOAT_TYPES)
    sparse = sum(math.prod(s.dims) for s in model.graph.sparse_initializer if s.values.data_type in _FLOAT_TYPES)
    return dense + sparse


def state_pairs(model: onnx.ModelProto) -> tuple[list[list[str]] | None, list[str]]:
    """The training-state pairs under ``metadata_props['onnxforge.state']`` and any problems with them.

    Returns ``(pairs or None if absent, problems)``; a problem is a JSON error, a malformed entry, or a
    name that is not a graph input (first) or output (second).
    """
    props = {p.key: p.value for p in model.metadata_props}
    if contract.STATE_KEY not in props:
        return None, []
    try:
        pairs = json.loads(props[contract.STATE_KEY])
    except RecursionError:
        return [], [f"{contract.STATE_KEY} is JSON nested too deeply"]
    except ValueError as e:
        return [], [f"{contract.STATE_KEY} is not valid JSON: {e}"]
    if not isinstance(pairs, list):
        return [], [f"{contract.STATE_KEY} must be a JSON list of [input_name, output_name]; "
                    f"got {type(pairs).__name__}"]
    inputs = {i.name for i in model.graph.input}
    outputs = {o.name for o in model.graph.output}
    problems: list[str] = []
    good: list[list[str]] = []
    for k, pair in enumerate(pairs):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            problems.append(f"{contract.STATE_KEY}[{k}] must be [input_name, output_name]; got {pair!r}")
            continue
        if pair[0] not in inputs:
            problems.append(f"{contract.STATE_KEY}[{k}]: '{pair[0]}' is not a graph input")
        if pair[1] not in outputs:
            problems.append(f"{contract.STATE_KEY}[{k}]: '{pair[1]}' is not a graph output")
        good.append(pair)
    return good, problems


def describe(model: onnx.ModelProto) -> dict[str, Any]:
    """What ``onnxforge info`` reports, as a JSON-ready dict."""
    init_names = {t.name for t in model.graph.initializer} | {
        s.values.name for s in model.graph.sparse_initializer}
    pairs, problems = state_pairs(model)
    return {
        "ir_version": model.ir_version,
        "opset": _opsets(model),
        "producer": {"name": model.producer_name, "version": model.producer_version},
        "inputs": [{"name": v.name, **_type_json(v.type)} for v in model.graph.input if v.name not in init_names],
        "outputs": [{"name": v.name, **_type_json(v.type)} for v in model.graph.output],
        "parameters": parameter_count(model),
        "metadata": {p.key: p.value for p in model.metadata_props},
        "state": pairs,
        "state_problems": problems,
    }


# ---------------------------------------------------------------------------------------------------
# Commands.


def _load(path: str, **kw: Any) -> onnx.ModelProto | None:
    try:
        return load_onnx(path, **kw)
    except OnnxLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def _session_source(model: onnx.ModelProto, path: str) -> str | bytes:
    # A proto over protobuf's 2 GiB limit cannot be serialized: let onnxruntime read the (validated) file.
    return path if model.ByteSize() > _PROTOBUF_LIMIT else model.SerializeToString()


def _try_sessions(model: onnx.ModelProto, path: str, providers: Sequence[str]) -> dict[str, dict[str, Any]]:
    import onnxruntime as ort

    source = _session_source(model, path)
    results: dict[str, dict[str, Any]] = {}
    for provider in providers:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3  # the failure is reported below; keep onnxruntime's own log quiet
        try:
            sess = ort.InferenceSession(source, sess_options=opts, providers=[provider])
            results[provider] = {"ok": True, "used": sess.get_providers()}
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented types
            results[provider] = {"ok": False, "error": f"{type(e).__name__}: {e}".strip()}
    return results


def _run_checker(model: onnx.ModelProto, path: str) -> str | None:
    try:
        if model.ByteSize() > _PROTOBUF_LIMIT:
            onnx.checker.check_model(path, full_check=True)
        else:
            onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # ValidationError, InferenceError, ...: all mean "does not check"
        return f"{type(e).__name__}: {e}".strip()
    return None


def initial_state_status(model: onnx.ModelProto, path: str, pairs: list[list[str]] | None) -> str:
    """How a step graph's initial state travels: ``"none"`` (not a step graph), ``"ok: ..."``, a note on the
    first format, or ``"FAILED: <why>"`` (the companion model is missing, foreign or does not fit)."""
    meta = {p.key: p.value for p in model.metadata_props}
    if contract.INIT_MODEL_KEY in meta:
        try:
            loaded = portable.load_training(path)
        except OnnxLoadError as e:
            return f"FAILED: {e}"
        init_model = load_onnx(loaded.init_path)
        error = _run_checker(init_model, str(loaded.init_path))
        if error is not None:
            return f"FAILED: {loaded.init_path.name}: {error}"
        return f"ok: {loaded.init_path.name} gives {len(loaded.state)} inputs their first value"
    inputs = {i.name for i in model.graph.input}
    defaults = [t.name for t in model.graph.initializer if t.name in inputs]
    if pairs is None or not defaults:
        return "none"
    return (f"format 1: {len(defaults)} inputs carry initializer defaults, which onnxruntime's JavaScript API "
            "does not list (it drops the state a loop feeds); `onnxforge upgrade FILE` writes the portable pair")


#: Formats of onnxforge checkpoints that always carry a digest (``onnxforge.saving.model_io``).
_DIGEST_FORMATS = ("saved_model/2", "weights/2")


def digest_status(model: onnx.ModelProto, path: str) -> str:
    """``"ok"``, ``"absent"`` (a file that need not carry one) or why the SHA-256 digest check failed."""
    fmt = next((p.value for p in model.metadata_props if p.key == contract.FORMAT_KEY), None)
    return integrity.digest_status(model, path, required=fmt in _DIGEST_FORMATS)


def _cmd_check(args: argparse.Namespace) -> int:
    import onnxruntime as ort

    model = _load(args.file)
    if model is None:
        return 1
    providers = args.providers or ort.get_available_providers()
    digest = digest_status(model, args.file)
    checker_error = _run_checker(model, args.file)
    sessions = _try_sessions(model, args.file, providers)
    pairs, state_problems = state_pairs(model)
    initial = initial_state_status(model, args.file, pairs)
    census = op_census(model)
    ok = checker_error is None and not state_problems and all(s["ok"] for s in sessions.values()) and \
        digest in ("ok", "absent") and not initial.startswith("FAILED")
    report = {"file": args.file, "ok": ok, "ir_version": model.ir_version, "opset": _opsets(model),
              "digest": digest, "checker": checker_error or "ok", "ops": census,
              "nodes": sum(sum(c.values()) for c in census.values()), "sessions": sessions,
              "state_problems": state_problems, "initial_state": initial}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if ok else 1
    out = [f"model: {args.file}",
           f"  ir_version: {model.ir_version}",
           "  opset: " + ", ".join(f"{d} {v}" for d, v in report["opset"].items()),
           "  digest (SHA-256): " + {"ok": "ok", "absent": "none stored"}.get(digest, f"FAILED: {digest}"),
           f"  checker (full_check): {report['checker']}",
           f"  ops ({report['nodes']} nodes):"]
    for domain, ops in census.items():
        out.append(f"    {domain}: " + ", ".join(f"{op} x{k}" for op, k in ops.items()))
    out.append("  onnxruntime sessions:")
    for provider, s in sessions.items():
        if s["ok"]:
            fallback = [p for p in s["used"] if p != provider]
            note = f" (falls back to {', '.join(fallback)})" if fallback else ""
            out.append(f"    {provider}: ok{note}")
        else:
            out.append(f"    {provider}: FAILED: {s['error']}")
    for problem in state_problems:
        out.append(f"  state: {problem}")
    if initial != "none":
        out.append(f"  initial state: {initial}")
    out.append("result: OK" if ok else "result: FAILED")
    print("\n".join(out))
    return 0 if ok else 1


def _cmd_info(args: argparse.Namespace) -> int:
    # Validate external data references without reading the weights: info needs shapes, not values.
    model = _load(args.file, load_external_data=False)
    if model is None:
        return 1
    info = describe(model)
    external = sum(1 for t, _ in iter_tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL)
    info["external_tensors"] = external
    if args.json:
        print(json.dumps({"file": args.file, **info}, indent=2))
        return 0
    producer = " ".join(filter(None, (info["producer"]["name"], info["producer"]["version"]))) or "-"
    out = [f"model: {args.file}",
           f"  ir_version: {info['ir_version']}  opset: " + ", ".join(f"{d} {v}" for d, v in info["opset"].items()),
           f"  producer: {producer}",
           "inputs:"]
    out += [f"  {v['name']}: {_type_text(v)}" for v in info["inputs"]] or ["  (none)"]
    out.append("outputs:")
    out += [f"  {v['name']}: {_type_text(v)}" for v in info["outputs"]] or ["  (none)"]
    out.append(f"parameters: {info['parameters']:,}" + (f" ({external} tensors in external data)" if external else ""))
    if info["metadata"]:
        out.append("metadata:")
        for key, value in info["metadata"].items():
            if key != contract.STATE_KEY:
                out.append(f"  {key}: {value if len(value) <= 200 else value[:197] + '...'}")
    init_name = info["metadata"].get(contract.INIT_MODEL_KEY)
    if init_name is not None:
        out.append(f"initial state: {init_name} (a model with no inputs: run it once, feed its outputs by name)")
    if info["state"] is not None:
        out.append(f"training state ({contract.STATE_KEY}): {len(info['state'])} pairs")
        out += [f"  {a} -> {b}" for a, b in info["state"]]
        out += [f"  problem: {p}" for p in info["state_problems"]]
    print("\n".join(out))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from onnxforge.serving import InferenceServer

    try:
        server = InferenceServer(args.file, host=args.host, port=args.port, batching=args.batching,
                                 max_batch=args.max_batch, batch_timeout_ms=args.batch_timeout_ms,
                                 providers=args.providers, max_body_bytes=args.max_body_bytes,
                                 max_inflight_bytes=args.max_inflight_bytes, max_connections=args.max_connections,
                                 max_concurrent_runs=args.max_concurrent_runs, backlog=args.backlog,
                                 read_timeout_s=args.read_timeout, write_timeout_s=args.write_timeout,
                                 request_timeout_s=args.request_timeout, drain_timeout_s=args.drain_timeout,
                                 allowed_hosts=args.allowed_hosts, non_finite=args.non_finite,
                                 log_requests=args.log_requests)
    except (OnnxLoadError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # onnxruntime refusing the model
        print(f"error: onnxruntime cannot load {args.file}: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    server.start()
    batching = (f"batching up to {args.max_batch} rows, {args.batch_timeout_ms:g} ms window"
                if server.batching else "no batching")
    print(f"Serving {args.file} on {server.url} ({batching}); POST /v1/predict, GET /healthz", flush=True)
    print(f"batching {server.batching_reason}", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.shutdown()
    print("Stopped.", flush=True)
    return 0


def _cmd_upgrade(args: argparse.Namespace) -> int:
    from onnxforge.saving.export import upgrade_training

    try:
        written = upgrade_training(args.file, args.output)
    except (OnnxLoadError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {written} and {portable.companion_path(written)} (state inputs without defaults, initial state "
          "in the companion model)")
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0. Received: {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1. Received: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``onnxforge`` command."""
    parser = argparse.ArgumentParser(prog="onnxforge", description="Check, describe and serve ONNX models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="full checker, op census, onnxruntime session on each provider")
    check.add_argument("file")
    check.add_argument("--providers", nargs="+", metavar="EP",
                       help="execution providers to try (default: all that onnxruntime has)")
    check.add_argument("--json", action="store_true", help="print a JSON report")
    check.set_defaults(func=_cmd_check)

    info = sub.add_parser("info", help="inputs, outputs, metadata, training-state pairs, parameter count")
    info.add_argument("file")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_cmd_info)

    upgrade = sub.add_parser("upgrade", help="rewrite a first-format training/eval step file as the portable pair")
    upgrade.add_argument("file")
    upgrade.add_argument("output", nargs="?", help="the new step file (default: replace FILE)")
    upgrade.set_defaults(func=_cmd_upgrade)

    serve = sub.add_parser("serve", help="HTTP JSON inference, batching requests when the graph allows it")
    serve.add_argument("file")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1 only)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one (default: 8000)")
    serve.add_argument("--max-batch", type=_positive_int, default=64, help="most rows per batched run")
    serve.add_argument("--batch-timeout-ms", type=float, default=2.0,
                       help="how long to collect requests for a batch (default: 2)")
    serve.add_argument("--batching", choices=("auto", "on", "off"), default="auto",
                       help="auto (default): batch concurrent requests only if the graph is proven "
                            "row-independent; on: whenever inputs and outputs share a batch axis (you vouch "
                            "that no output row depends on other rows); off: never")
    serve.add_argument("--providers", nargs="+", metavar="EP", help="execution providers in priority order")
    serve.add_argument("--allowed-hosts", nargs="+", metavar="NAME", default=None,
                       help="Host header names served besides IP addresses (default: localhost; '.example.com' "
                            "allows subdomains; '*' disables the DNS-rebinding check)")
    serve.add_argument("--max-body-bytes", type=_positive_int, default=16 * 2**20,
                       help="larger request bodies get 413 (default: 16 MiB)")
    serve.add_argument("--max-inflight-bytes", type=_positive_int, default=64 * 2**20,
                       help="request-body bytes held at once; beyond, 503 (default: 64 MiB)")
    serve.add_argument("--max-connections", type=_positive_int, default=128,
                       help="connections handled at once; more get 503 (default: 128)")
    serve.add_argument("--max-concurrent-runs", type=_positive_int, default=None,
                       help="unbatched model runs at once (default: the CPU count)")
    serve.add_argument("--backlog", type=_positive_int, default=1024, help="listen backlog (default: 1024)")
    serve.add_argument("--read-timeout", type=_positive_float, default=10.0,
                       help="seconds a client may take to send its whole request (default: 10)")
    serve.add_argument("--write-timeout", type=_positive_float, default=30.0,
                       help="seconds a client may take to receive its answer (default: 30)")
    serve.add_argument("--request-timeout", type=_positive_float, default=60.0,
                       help="seconds a request may wait for the model before 503 (default: 60)")
    serve.add_argument("--drain-timeout", type=_positive_float, default=10.0,
                       help="seconds shutdown waits for requests being computed (default: 10)")
    serve.add_argument("--non-finite", choices=("null", "error"), default="null",
                       help="NaN / infinity in outputs: null (listed under 'non_finite') or a 500 error")
    serve.add_argument("--log-requests", action="store_true", help="log each request to stderr")
    serve.set_defaults(func=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``onnxforge`` command line; returns the exit status (0 ok, 1 failed, 2 usage).

    Example:
        >>> main(["info", "missing.onnx"])
        1
    """
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
