"""Train the seed CNN with onnxruntime-node: export the graphs and digits, install onnxruntime-node, run train.mjs.

One command: ``python examples/train_in_node/run.py [--steps 120] [--batch 64]``. It exports the seed CNN and the
real digits into ``examples/train_in_node/build/`` (``export_for_js.py``) when they are missing, runs
``npm install --ignore-scripts`` here when onnxruntime-node is missing (its install script only fetches
optional GPU binaries), then ``node train.mjs build STEPS BATCH``, which prints the falling loss and the
held-out accuracy of the weights it trained.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--fresh", action="store_true", help="export the untrained model again")
    args = parser.parse_args()
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SystemExit("Node.js (node and npm) is needed: install it, then run this again")
    build = HERE / "build"
    if args.fresh or not (build / "train_step.onnx").exists():
        sys.path.insert(0, str(HERE.parent))
        import export_for_js

        export_for_js.main([str(build)])
    if not (HERE / "node_modules" / "onnxruntime-node").is_dir():
        subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    sys.exit(subprocess.run([node, "train.mjs", str(build), str(args.steps), str(args.batch)], cwd=HERE).returncode)


if __name__ == "__main__":
    main()
