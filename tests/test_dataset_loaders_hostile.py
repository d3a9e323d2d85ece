"""``image_dataset_from_directory`` / ``text_dataset_from_directory`` / ``load_img`` over a hostile folder:
symlink loops end, and files that are not regular files (a FIFO, a link to ``/dev/zero``) are refused by
name instead of blocking or eating memory."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

import onnxforge as of  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or not hasattr(os, "mkfifo"), reason="POSIX only")


def _folder(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / cls / "1.png")
    return tmp_path


def test_symlink_loops_with_follow_links_end(tmp_path):
    folder = _folder(tmp_path)
    for i in range(3):   # each link leads back above itself: the walk once revisited the tree 3**40 times
        os.symlink("..", folder / "cat" / f"up{i}")
    script = textwrap.dedent(f"""
        import onnxforge as of
        ds = of.keras.utils.image_dataset_from_directory({str(folder)!r}, image_size=(4, 4), batch_size=8,
                                                          follow_links=True, shuffle=False, verbose=False)
        print(sum(int(x.shape[0]) for x, _ in ds))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr[-2000:]
    # cat/1.png, dog/1.png, and dog/1.png once more under the class that links to it; each folder once.
    assert done.stdout.split()[-1] == "3"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_files_that_are_not_regular_are_refused_by_name(tmp_path, kind):
    folder = _folder(tmp_path)
    bad = folder / "cat" / "bad.png"
    os.mkfifo(bad) if kind == "fifo" else os.symlink("/dev/zero", bad)
    with pytest.raises(ValueError, match="bad.png' is not a regular file"):
        of.keras.utils.load_img(bad)
    ds = of.keras.utils.image_dataset_from_directory(folder, image_size=(4, 4), batch_size=8, verbose=False)
    with pytest.raises(ValueError, match="bad.png' is not a regular file"):
        list(ds)
    os.replace(bad, folder / "cat" / "bad.txt")
    ds = of.keras.utils.text_dataset_from_directory(folder, batch_size=8, verbose=False)
    with pytest.raises(ValueError, match="bad.txt' is not a regular file"):
        list(ds)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_audio_files_that_are_not_regular_are_refused_by_name(tmp_path, kind):
    (tmp_path / "yes").mkdir()
    bad = tmp_path / "yes" / "bad.wav"
    os.mkfifo(bad) if kind == "fifo" else os.symlink("/dev/zero", bad)   # the FIFO once blocked forever
    ds = of.keras.utils.audio_dataset_from_directory(tmp_path, batch_size=2, verbose=False)
    with pytest.raises(ValueError, match="bad.wav' is not a regular file"):
        list(ds)


@pytest.mark.parametrize("content", [b"not an image", "half"])
def test_images_that_do_not_decode_are_refused_naming_the_file(tmp_path, content):
    folder = _folder(tmp_path)
    png = (folder / "cat" / "1.png").read_bytes()
    (folder / "cat" / "bad.png").write_bytes(png[:len(png) // 2] if content == "half" else content)
    with pytest.raises(ValueError, match=r"cannot decode '.*bad\.png' as an image") as info:
        of.keras.utils.load_img(folder / "cat" / "bad.png")
    assert isinstance(info.value, OSError)    # Pillow's errors are OSErrors: code catching those still does
    ds = of.keras.utils.image_dataset_from_directory(folder, image_size=(4, 4), batch_size=8, verbose=False)
    with pytest.raises(ValueError, match=r"bad\.png"):    # Pillow named only an io.BytesIO object
        list(ds)
