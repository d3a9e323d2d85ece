"""Helpers of the hostile-file tests: a saved ``.keras`` file whose config an attacker edited, and a child
Python run under a 3 GB address-space limit (a refusal must come before any big allocation, never as a
MemoryError or a kill)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile

MEMORY_LIMIT = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))\n"


def rewrite_config(tmp_path, name, model, edit) -> str:
    """``model`` saved as ``<name>.keras``, its config's layer list changed by ``edit(layers)`` and written back
    beside the same weights (build configs dropped, so the edited sizes are what loading builds)."""
    path = model.save(tmp_path / f"{name}.keras")
    with zipfile.ZipFile(path) as zf:
        config, weights = json.loads(zf.read("config.json")), zf.read("model.weights.h5")
    for entry in config["config"]["layers"]:
        entry.pop("build_config", None)
    edit(config["config"]["layers"])
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", weights)
    return str(path)


def run_limited(code: str, *args: str, timeout: int = 240) -> str:
    """The last line ``code`` prints, run in a child Python under the memory limit (``args`` as ``sys.argv[1:]``)."""
    done = subprocess.run([sys.executable, "-c", MEMORY_LIMIT + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]
