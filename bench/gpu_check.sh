#!/usr/bin/env bash
# The prepared GPU check of ../shared/gpu/README.md, for a session lent an NVIDIA machine.
#
# Before: on the CPU machine, download onnxruntime-gpu's wheel into .gpuwhl/ in 60 MB pieces (see the
# README there), send each piece with `run` (carry: [".gpuwhl/part.aa"], command
# `mkdir -p /tmp/gw && cp .gpuwhl/part.* /tmp/gw/`), then run this script in one call:
#     bash bench/gpu_check.sh 2>&1 | tee "$OUT/gpu_check.log"
# It installs the CUDA provider beside the machine's own packages, runs the CUDA-marked tests, trains
# the seed CNN on CUDA and on the CPU and compares the loss curves, and times training against PyTorch
# on the same GPU. Not yet run on a GPU: record exactly which step fails, if one does.
set -uo pipefail
cat /tmp/gw/part.* > /tmp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl || exit 1
python3 -m pip install -q --no-deps --target /tmp/site /tmp/onnxruntime_gpu-*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# torch first: it loads the CUDA 13 and cuDNN libraries the CUDA provider links against.
python3 -c "import torch, onnxruntime as o; print('providers:', o.get_available_providers())"
python3 - <<'PY'
import torch  # noqa: F401  (loads CUDA libraries before onnxruntime)
import sys, pytest
sys.exit(pytest.main(["-q", "-m", "cuda", "tests"]))
PY
timeout 240 python3 bench/gpu_train_compare.py
