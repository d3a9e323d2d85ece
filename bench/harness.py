"""The shared harness of the ``fit`` benchmarks: one subprocess per peer and allocator, the timed epoch, the
machine description and the tables (plain text, or Markdown for the README).

Each peer runs in its own process so its peak RSS is its own and glibc reads the malloc settings at start:
``default`` (glibc as is) and ``tuned`` (``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824``:
large blocks stay in the heap instead of being mapped and unmapped every step). A child compiles with a short
warm-up ``fit`` and then times ``--epochs`` epochs: wall time and the process's CPU time (all threads, so a
spinning thread-pool shows up there), plus ``ru_maxrss``.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from importlib import metadata

import numpy as np

from models import MODELS, keras_model, make_data, torch_model

__all__ = ["PEERS", "TUNED_MALLOC", "run_peer", "compare", "machine", "report"]

PEERS = ("onnxforge", "torch", "tf.keras")
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _timed(run) -> tuple[float, float, object]:
    start, cpu = time.perf_counter(), time.process_time()
    out = run()
    return time.perf_counter() - start, time.process_time() - cpu, out


# ------------------------------------------------------------------------------------------ peers (children)
def _fit_keras(tf, args) -> dict:
    x, y = make_data(args.model, args.samples)
    model = keras_model(args.model, tf)
    warm = min(len(x), args.batch * 8)
    model.fit(x[:warm], y[:warm], batch_size=args.batch, epochs=1, verbose=0)  # compile, sessions, caches
    if args.task == "predict":
        model.predict(x[:warm], batch_size=args.batch, verbose=0)

        def predict_epochs():
            for _ in range(args.epochs):
                out = model.predict(x, batch_size=args.batch, verbose=0)
            return out
        seconds, cpu, out = _timed(predict_epochs)
        return {"seconds": seconds, "cpu_seconds": cpu, "loss": float("nan"),
                "accuracy": float(np.mean(np.argmax(out, -1) == y))}
    seconds, cpu, history = _timed(lambda: model.fit(x, y, batch_size=args.batch, epochs=args.epochs,
                                                     verbose=0, shuffle=True))
    return {"seconds": seconds, "cpu_seconds": cpu, "loss": float(history.history["loss"][-1]),
            "accuracy": float(history.history["accuracy"][-1])}


def _run_onnxforge(args) -> dict:
    if args.threads:  # read by onnxforge.runtime when it creates the sessions
        os.environ["ONNXFORGE_INTRA_OP_THREADS"] = str(args.threads)
    import onnxforge as tf

    return _fit_keras(tf, args)


def _run_tf_keras(args) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    return _fit_keras(tf, args)


def _run_torch(args) -> dict:
    """What ``fit`` does per batch, written as a PyTorch user writes it: a shuffled gather, the step, the
    loss and accuracy back on the host."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = make_data(args.model, args.samples)
    net, channels_first = torch_model(args.model)
    if channels_first:
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))  # once, outside the timing
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch(n: int) -> tuple[float, float]:
        net.train()
        order = torch.randperm(n)
        total = correct = 0.0
        for start in range(0, n, args.batch):
            idx = order[start:start + args.batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            logits = net(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
        return total / n, correct / n

    epoch(min(len(x), args.batch * 8))  # warm-up, as for the others
    if args.task == "predict":
        return _predict_torch(net, x, y, args, torch)

    def timed_epochs():
        out = None
        for _ in range(args.epochs):
            out = epoch(len(x))
        return out
    seconds, cpu, (loss, acc) = _timed(timed_epochs)
    return {"seconds": seconds, "cpu_seconds": cpu, "loss": loss, "accuracy": acc}


def _predict_torch(net, x, y, args, torch) -> dict:
    """Inference as a PyTorch user serves it: eval mode, no autograd, batch by batch, outputs on the host."""
    net.eval()

    def predict_epochs():
        with torch.inference_mode():
            for _ in range(args.epochs):
                out = np.concatenate([net(x[i:i + args.batch]).numpy() for i in range(0, len(x), args.batch)])
        return out
    with torch.inference_mode():
        net(x[:args.batch])   # warm
    seconds, cpu, out = _timed(predict_epochs)
    return {"seconds": seconds, "cpu_seconds": cpu, "loss": float("nan"),
            "accuracy": float(np.mean(np.argmax(out, -1) == y.numpy()))}


RUNNERS = {"onnxforge": _run_onnxforge, "torch": _run_torch, "tf.keras": _run_tf_keras}


def run_peer(args) -> None:
    """Child process: run one peer on one model, print one ``RESULT`` JSON line."""
    result = RUNNERS[args.worker](args)
    steps = -(-args.samples // args.batch) * args.epochs
    result.update(peer=args.worker, model=args.model, peak_rss_mb=_peak_rss_mb(), steps=steps,
                  malloc="tuned" if os.environ.get("MALLOC_MMAP_THRESHOLD_") else "default",
                  samples_per_s=args.samples * args.epochs / result["seconds"])
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------ driver
def importable(module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def _spawn(script: str, peer: str, model: str, samples: int, tuned: bool, args) -> dict | None:
    env = {k: v for k, v in os.environ.items() if k not in TUNED_MALLOC}
    if tuned:
        env.update(TUNED_MALLOC)
    cmd = [sys.executable, script, "--worker", peer, "--model", model, "--samples", str(samples),
           "--epochs", str(args.epochs), "--batch", str(args.batch), "--threads", str(args.threads),
           "--task", args.task]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"  {model}: {peer} ({'tuned' if tuned else 'default'} malloc) failed:\n{proc.stderr[-2000:]}",
              file=sys.stderr)
        return None
    return json.loads(lines[-1][len("RESULT "):])


def compare(script: str, models: list[str], args) -> tuple[dict, dict]:
    """Every (model, peer, malloc) configuration ``args.rounds`` times, alternating the order between rounds,
    keeping each one's fastest run. Returns ``(best results, machine)``."""
    peers = ["onnxforge", "torch"] + (["tf.keras"] if importable("tensorflow") else [])
    configs = [(m, p, tuned) for m in models for tuned in (False, True) for p in peers]
    info = machine()
    best: dict[tuple[str, str, bool], dict] = {}
    for r in range(args.rounds):
        for model, peer, tuned in (configs if r % 2 == 0 else configs[::-1]):
            samples = args.samples or MODELS[model][1]
            res = _spawn(script, peer, model, samples, tuned, args)
            key = (model, peer, tuned)
            if res is not None and (key not in best or res["samples_per_s"] > best[key]["samples_per_s"]):
                best[key] = res
    info["load_after"] = os.getloadavg()
    info["peers"] = peers
    return best, info


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    """The CPU (model, logical CPUs, SIMD flags), load average and library versions."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    versions = {d: _version(d) for d in ("onnxruntime", "torch", "tensorflow-cpu", "tensorflow", "keras", "numpy")}
    return {"cpu": model, "cpus": os.cpu_count(), "simd": simd, "load_before": os.getloadavg(),
            "python": platform.python_version(), "versions": {k: v for k, v in versions.items() if v}}


def _rows(best: dict) -> list[dict]:
    order = {p: i for i, p in enumerate(PEERS)}
    rows = sorted(best.items(), key=lambda kv: (list(MODELS).index(kv[0][0]), kv[0][2], order[kv[0][1]]))
    return [dict(res, tuned=tuned) for (_, _, tuned), res in rows]


def report(best: dict, info: dict, args, markdown: bool = False) -> str:
    """The comparison as text: one row per (model, peer, malloc), then onnxforge's ratios to each peer."""
    lines = []
    load = f"{info['load_before'][0]:.1f} -> {info['load_after'][0]:.1f}"
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    head = (f"{info['cpu']}, {info['cpus']} logical CPUs, SIMD: {' '.join(info['simd']) or 'none'}; "
            f"load average {load}; Python {info['python']}, {versions}. {args.task}, batch "
            f"{args.batch}, {args.epochs} timed epoch(s), {args.threads or 'default'} threads per peer, best of "
            f"{args.rounds} round(s).")
    if "tf.keras" not in info["peers"]:
        head += " tf.keras: not run (TensorFlow is not importable here)."
    lines.append(head)
    lines.append("")
    cols = ["model", "peer", "malloc", "samples/s", "ms/step", "CPU ms/step", "peak RSS", "onnxforge vs peer"]
    ours = {(r["model"], r["tuned"]): r for r in _rows(best) if r["peer"] == "onnxforge"}
    table = []
    for r in _rows(best):
        o = ours.get((r["model"], r["tuned"]))
        ratio = "" if r["peer"] == "onnxforge" or o is None else f"{o['samples_per_s'] / r['samples_per_s']:.2f}x"
        table.append([r["model"], r["peer"], "tuned" if r["tuned"] else "default", f"{r['samples_per_s']:,.0f}",
                      f"{1e3 * r['seconds'] / r['steps']:.1f}", f"{1e3 * r['cpu_seconds'] / r['steps']:.1f}",
                      f"{r['peak_rss_mb']:,.0f} MB", ratio])
    if markdown:
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join("---" for _ in cols) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in table]
    else:
        widths = [max(len(c), *(len(row[i]) for row in table)) if table else len(c) for i, c in enumerate(cols)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in table]
    lines.append("")
    for model in dict.fromkeys(r["model"] for r in _rows(best)):
        ours_best = max((r["samples_per_s"] for r in _rows(best) if r["model"] == model and r["peer"] == "onnxforge"),
                        default=None)
        peers_best = [r for r in _rows(best) if r["model"] == model and r["peer"] != "onnxforge"]
        if ours_best and peers_best:
            top = max(peers_best, key=lambda r: r["samples_per_s"])
            lines.append(f"{model}: onnxforge (best malloc) / best peer ({top['peer']}, "
                         f"{'tuned' if top['tuned'] else 'default'} malloc) = {ours_best / top['samples_per_s']:.2f}x")
    return "\n".join(lines)
