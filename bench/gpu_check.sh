#!/usr/bin/env bash
# The prepared GPU check of ../shared/gpu/README.md, for a session lent an NVIDIA machine (one call, ~5 min).
#
# Before, on the CPU machine (repo root; .gpuwhl/ and .gpucheck/ listed in .git/info/exclude):
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d /tmp/ortgpu_whl onnxruntime-gpu==1.31.1
#     mkdir -p /tmp/ortgpu && (cd /tmp/ortgpu && python3 -m zipfile -e /tmp/ortgpu_whl/*.whl .)
#     tar c -C /tmp/ortgpu . | xz -T2 -6 | split -b 61M - .gpuwhl/part.      # 4 pieces, each < 64 MiB
#     python3 -m pip download --no-deps -d .gpucheck/whl keras namex optree onnx-ad mlxtend   # cp312 wheels
# The unpacked wheel compressed with xz travels in 4 transfers instead of 5 and needs no pip on arrival.
# Send each piece with `run` (carry: [".gpuwhl/part.aa"], command `mkdir -p /tmp/gw && cp .gpuwhl/part.* /tmp/gw/`),
# back to back while the machine stays warm, then, carrying .gpucheck:
#     bash bench/gpu_check.sh
# It runs the GPU comparison first (bench/gpu_train_compare.py: the same work on both sides, data on the
# device, no per-step host sync), the CUDA-marked tests, then the whole suite with every compile on CUDA
# (the conftest turns TF32 off and determinism on), then counts Memcpy nodes in a profiled train_step.
# What run 1 (2026-12-04, H200) found is in the README's Performance section.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_check_out}; mkdir -p "$OUT"
T0=$(date +%s)
mkdir -p /tmp/ortgpu && cat /tmp/gw/part.* | xz -d -T8 | tar x -C /tmp/ortgpu || { echo "unpack failed"; exit 1; }
if compgen -G ".gpucheck/whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpucheck/whl/*.whl ||
        echo "extra wheels failed to install"
fi
export PYTHONPATH=/tmp/ortgpu:/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# torch first: it loads the CUDA 13 and cuDNN libraries the CUDA provider links against.
python3 -c "import torch, onnxruntime as o; print('ort', o.__version__, o.get_available_providers(), 'torch', torch.__version__)"
echo "=== gpu_train_compare ($(( $(date +%s) - T0 )) s)"
timeout 120 python3 bench/gpu_train_compare.py 2>&1 | tee "$OUT/compare.log" | tail -25
echo "=== CUDA-marked tests"
timeout 60 python3 -c "import torch, sys, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-m', 'cuda', 'tests/runtime']))" 2>&1 | tail -8
echo "=== whole suite, every compile on CUDA ($(( $(date +%s) - T0 )) s)"
timeout 230 python3 - <<'PY' 2>&1 | tee "$OUT/pytest.log" | tail -45
import torch  # noqa: F401
import sys, pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-n", "14", "--timeout", "150", "tests", "-W", "ignore",
                      "--ignore=tests/test_js_runtimes.py", "--ignore=tests/distribute"]))
PY
if [ -f .gpucheck/profile_cnn.py ]; then
    echo "=== profiled train_step: Memcpy nodes and CPU fallbacks ($(( $(date +%s) - T0 )) s)"
    timeout 45 python3 .gpucheck/profile_cnn.py 2>&1 | tee "$OUT/profile.log" | grep -E "ms/step|Memcpy|==|CPUExecutionProvider" | head -20
fi
echo "=== done ($(( $(date +%s) - T0 )) s)"
