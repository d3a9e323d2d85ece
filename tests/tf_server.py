"""Python child processes with TensorFlow and Keras-on-TensorFlow already imported, for the TensorFlow oracles.

The test process runs Keras on torch, so every comparison with Keras on TensorFlow runs in a child process,
and a new interpreter spends 7-8 CPU-seconds importing TensorFlow and Keras before it computes anything:
over two dozen test modules, minutes of the suite. ``run`` and ``submit`` take the arguments of a
``python`` command line (``-c CODE ARGS``, ``-m MODULE ARGS`` or ``SCRIPT ARGS``) and run them in a child
forked from a server that imported both once (one server per test process, started on first use, stopped at
the end of the session, or when the test process dies: it reads requests from a pipe and leaves at its end).

A forked child has run nothing but those imports: each request still starts from a fresh process (its own
modules, Keras session, random state, working directory and environment), as a new interpreter would. What
it cannot change is what TensorFlow read while importing: the server imports it with ``KERAS_BACKEND`` set
to ``tensorflow`` and ``TF_CPP_MIN_LOG_LEVEL=3``; a request asking for another backend is refused.

>>> done = run(["-c", "import sys, keras; print(keras.backend.backend(), sys.argv[1:])", "a"])  # doctest: +SKIP
>>> done.stdout  # doctest: +SKIP
"tensorflow ['a']\\n"
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["Job", "run", "submit", "stop"]

_BACKEND = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}


class Job:
    """A request sent to the server; ``wait`` returns what ``subprocess.run(capture_output=True, text=True)``
    would have."""

    def __init__(self, server: _Server, ident: int, argv: list[str], folder: Path, timeout: float | None):
        self.server, self.ident, self.argv, self.folder, self.timeout = server, ident, argv, folder, timeout
        self._done: subprocess.CompletedProcess | None = None

    def wait(self, check: bool = False) -> subprocess.CompletedProcess:
        """Waits for the child; with ``check``, a nonzero exit raises ``CalledProcessError`` (its stderr
        is written to this process's stderr first, where pytest shows it)."""
        if self._done is None:
            code = self.server.returncode(self.ident)
            out, err = ((self.folder / name).read_text(errors="replace") for name in ("stdout", "stderr"))
            self._done = subprocess.CompletedProcess([sys.executable, *self.argv], code, out, err)
            if self.timeout is not None and code == -signal.SIGALRM:
                raise subprocess.TimeoutExpired(self._done.args, self.timeout, out, err)
        if check and self._done.returncode != 0:
            sys.stderr.write(self._done.stderr)
            self._done.check_returncode()
        return self._done


def submit(argv: list[str], env: dict[str, str] | None = None, cwd: str | Path | None = None,
           timeout: float | None = None) -> Job:
    """Starts ``python *argv`` (with ``env`` added to this process's environment, in ``cwd``) and returns
    at once; ``Job.wait`` collects it. A child still running after ``timeout`` seconds is killed."""
    if (env or {}).get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        raise ValueError(f"tf_server runs Keras on TensorFlow only; received KERAS_BACKEND={env['KERAS_BACKEND']!r}")
    env = {**os.environ, **_BACKEND, **(env or {})}
    global _server
    if _server is None or _server.process.poll() is not None:
        _server = _Server()
    return _server.submit(argv, env, str(cwd or os.getcwd()), timeout)


def run(argv: list[str], env: dict[str, str] | None = None, cwd: str | Path | None = None,
        timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, *argv], capture_output=True, text=True, ...)`` in a forked child."""
    return submit(argv, env, cwd, timeout).wait(check)


def stop() -> None:
    """Ends the server and its children (at the end of the test session; also registered with atexit)."""
    global _server
    if _server is not None:
        _server.close()
        _server = None


class _Server:
    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="tf_server_"))
        self.log = open(self.folder / "server.stderr", "wb")
        self.process = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, env={**os.environ, **_BACKEND})
        self.count, self.finished = 0, {}

    def submit(self, argv: list[str], env: dict[str, str], cwd: str, timeout: float | None) -> Job:
        self.count += 1
        folder = self.folder / str(self.count)
        folder.mkdir()
        request = {"id": self.count, "argv": argv, "env": env, "cwd": cwd, "timeout": timeout, "folder": str(folder)}
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            pass   # the server died: returncode() says why
        return Job(self, self.count, argv, folder, timeout)

    def returncode(self, ident: int) -> int:
        while ident not in self.finished:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait()
                raise RuntimeError("the TensorFlow server died (exit status "
                                   f"{self.process.returncode}):\n{self._server_log()[-4000:]}")
            done, code = map(int, line.split())
            self.finished[done] = code
        return self.finished.pop(ident)

    def _server_log(self) -> str:
        self.log.flush()
        return (self.folder / "server.stderr").read_text(errors="replace")

    def close(self) -> None:
        self.process.stdin.close()   # the server kills its children and leaves at end of input
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.log.close()
        for path in sorted(self.folder.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        self.folder.rmdir()


_server: _Server | None = None
atexit.register(stop)


# ---- the server's side ------------------------------------------------------------------------------------

def _serve() -> None:
    # Answers go to a private copy of the pipe: whatever an import prints to stdout lands in the log instead.
    answers = os.dup(1)
    os.dup2(2, 1)
    # What every child would import first: the point of the server.
    import keras
    import tensorflow

    del keras, tensorflow

    children: dict[int, int] = {}   # pid -> request id
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.05 if children else None)
        if ready:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                request = json.loads(line)
                children[_fork(request, answers)] = request["id"]
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            os.write(answers, f"{children.pop(pid)} {os.waitstatus_to_exitcode(status)}\n".encode())
    for pid in children:
        os.kill(pid, signal.SIGKILL)


def _fork(request: dict, answers: int) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _die_with_parent()
        os.close(answers)   # the test process sees the server's end, not a child's
        folder = Path(request["folder"])
        for fd, name, mode in ((0, os.devnull, os.O_RDONLY), (1, folder / "stdout", os.O_WRONLY | os.O_CREAT),
                               (2, folder / "stderr", os.O_WRONLY | os.O_CREAT)):
            opened = os.open(name, mode, 0o644)
            os.dup2(opened, fd)
            os.close(opened)
        if request["timeout"] is not None:
            signal.alarm(max(1, int(request["timeout"])))
        code = _child(request["argv"], request["env"], request["cwd"])
    except BaseException:   # noqa: B036  (whatever happens, the fork must not return into the server loop)
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _child(argv: list[str], env: dict[str, str], cwd: str) -> int:
    """Runs ``python *argv`` in this process as a new interpreter would; returns its exit status."""
    import atexit as exits
    import runpy
    import traceback
    import types

    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    try:
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path[:1] = ["", *path]
            main = sys.modules["__main__"] = types.ModuleType("__main__")
            exec(compile(argv[1], "<string>", "exec"), main.__dict__)
        elif argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path[:1] = [cwd, *path]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[:1] = [str(Path(argv[0]).resolve().parent), *path]
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as stop_:
        code = stop_.code if isinstance(stop_.code, int) else (0 if stop_.code is None else 1)
        if not isinstance(stop_.code, int) and stop_.code is not None:
            print(stop_.code, file=sys.stderr)
    except BaseException as error:   # noqa: B036
        # Without this function's own frame, as the interpreter would print it.
        traceback.print_exception(error.with_traceback(error.__traceback__.tb_next))
        code = 1
    exits._run_exitfuncs()
    return code


def _die_with_parent() -> None:
    """A child left running must not outlive the server (which leaves when the test process does)."""
    import ctypes

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":
    _serve()
