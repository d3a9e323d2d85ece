"""``keras.distribution.DataParallel`` across two MPI processes is onnxforge's ``MPIStrategy``: ``mpirun -np 2``
ranks, each building ``DataParallel()`` over ``list_devices()`` (``["cpu:0", "cpu:1"]``, one per process), give
the losses and weights of one process training on the whole global batch (within 1e-5 relative: the
all-reduce sums the two halves' gradients in another order), and both ranks end bit-identical.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from onnxforge.distribute.launch import find_mpirun, launcher_env, mpirun_command

from . import keras_dp_worker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_dp_worker.py")

if importlib.util.find_spec("mpi4py") is None:
    _MPI_MISSING = "mpi4py is not installed (pip install -e '.[distributed]')"
else:
    _MPI_MISSING = None if find_mpirun() else "no mpirun/mpiexec beside this Python or on PATH"


@pytest.mark.skipif(_MPI_MISSING is not None, reason=f"MPI unavailable: {_MPI_MISSING}")
def test_data_parallel_over_two_processes_matches_one(tmp_path):
    env = launcher_env()
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    prefix = str(tmp_path / "run")
    out = subprocess.run(mpirun_command(2, [sys.executable, WORKER, prefix]), capture_output=True, text=True,
                         timeout=300, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    want_loss, want, replicas = keras_dp_worker.build_and_train()
    assert replicas == 1
    ranks = [np.load(f"{prefix}_{r}.npz") for r in range(2)]
    for got in ranks:
        assert list(got["devices"]) == ["cpu:0", "cpu:1"]
        assert int(got["replicas"]) == 2   # the model compiled under MPIStrategy, not two lone copies
        np.testing.assert_allclose(got["loss"], want_loss, rtol=1e-5)
        for i, w in enumerate(want):
            np.testing.assert_allclose(got[f"arr_{i}"], w, rtol=1e-5, atol=1e-6)
    for i in range(len(want)):
        np.testing.assert_array_equal(ranks[0][f"arr_{i}"], ranks[1][f"arr_{i}"])
