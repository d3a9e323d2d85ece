"""atomic_write: old content survives any failure mid-write, including SIGKILL of the writer."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from onnxforge.saving import atomic_write, temp_files_for

# The child writes 64 KiB chunks slowly, says when it is half-way, and waits to be killed.
_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from onnxforge.saving import atomic_write

    def write(f):
        for i in range(2000):
            f.write(b"N" * 65536)
            f.flush()
            if i == 3:
                print("writing", flush=True)
            time.sleep(0.01)

    atomic_write(sys.argv[1], write)
    print("finished", flush=True)
    """
)


def test_bytes_and_callable_content(tmp_path):
    p = tmp_path / "m.onnx"
    assert atomic_write(p, b"one") == p
    assert p.read_bytes() == b"one"
    atomic_write(p, bytearray(b"two"))
    assert p.read_bytes() == b"two"
    atomic_write(str(p), memoryview(b"three"))
    assert p.read_bytes() == b"three"
    atomic_write(p, lambda f: (f.write(b"fo"), f.write(b"ur")))
    assert p.read_bytes() == b"four"
    assert temp_files_for(p) == []
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


def test_rejects_text(tmp_path):
    with pytest.raises(TypeError, match="Received: data of type str"):
        atomic_write(tmp_path / "m.onnx", "text")  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_failure_mid_write_keeps_old_file_and_no_litter(tmp_path, exc):
    p = tmp_path / "m.onnx"
    atomic_write(p, b"old content")

    def half_then_fail(f):
        f.write(b"new partial content")
        raise exc

    with pytest.raises(type(exc)):
        atomic_write(p, half_then_fail)
    assert p.read_bytes() == b"old content"
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


def test_failed_rename_keeps_old_file_and_no_litter(tmp_path, monkeypatch):
    p = tmp_path / "m.onnx"
    atomic_write(p, b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("onnxforge.saving.atomic.os.replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        atomic_write(p, b"new")
    assert p.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_replacing_keeps_permissions(tmp_path):
    p = tmp_path / "m.onnx"
    atomic_write(p, b"old")
    os.chmod(p, 0o640)
    atomic_write(p, b"new")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    assert p.read_bytes() == b"new"


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_write_keeps_old_file_and_next_write_cleans_up(tmp_path):
    p = tmp_path / "m.onnx"
    atomic_write(p, b"old model bytes")
    child = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(p)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        # Mid-write: the target still holds the old bytes, the new ones are in a temp file beside it.
        assert p.read_bytes() == b"old model bytes"
        litter = temp_files_for(p)
        assert len(litter) == 1 and litter[0].stat().st_size >= 4 * 65536
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        child.stdout.close()

    assert p.read_bytes() == b"old model bytes"
    # A killed writer cannot clean up after itself; the next write to the same file does.
    assert temp_files_for(p) == litter
    atomic_write(p, b"new model bytes")
    assert p.read_bytes() == b"new model bytes"
    assert temp_files_for(p) == []
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


def test_live_writers_temp_files_are_left_alone(tmp_path):
    p = tmp_path / "m.onnx"
    # pid 1 always exists: its temp file may belong to a write in progress and must survive.
    live = tmp_path / ".m.onnx.1.deadbeef.onnxforge-tmp"
    live.write_bytes(b"in progress")
    other_target = tmp_path / ".other.onnx.99999999.cafe.onnxforge-tmp"
    other_target.write_bytes(b"not ours")
    atomic_write(p, b"x")
    assert live.exists() and other_target.exists()
    assert temp_files_for(p) == [live]


def test_a_missing_folder_is_named_not_the_temporary_file(tmp_path):
    """The save-and-load tutorial's ``model.save_weights("training_2/cp-0000.weights.h5")`` before the folder
    exists fails in Keras too; the error names the caller's path and folder, not onnxforge's hidden temp file."""
    target = tmp_path / "training_2" / "cp-0000.weights.h5"
    with pytest.raises(FileNotFoundError, match="training_2' does not exist") as info:
        atomic_write(target, b"x")
    assert info.value.filename == str(target) and "onnxforge-tmp" not in str(info.value)
