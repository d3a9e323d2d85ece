"""The ``assets/`` folder of a ``.keras`` archive: files objects write with ``save_assets`` and read back
with ``load_assets`` (lookup layers' ``vocabulary.txt``), as Keras 3's ``DiskIOStore`` does.

Keras hands each object that has these methods a folder, ``assets/<its object path>`` (the path of
:mod:`.layout`: ``assets/layers/string_lookup``), and zips what they wrote. Saving does the same in a
temporary folder. Loading writes the archive's ``assets/`` members into a temporary folder and hands each
object its subfolder (``None`` where the archive has none, as Keras). Assets are data: nothing in them
is run, imported or unpickled here, the member names were already checked by the archive reader (none
leaves the folder), and their number and total size are bounded before anything is written.

Example:
    >>> class Vocab:
    ...     words = ["a", "b"]
    ...     def save_assets(self, folder):
    ...         with open(f"{folder}/vocabulary.txt", "w") as f:
    ...             f.write("\\n".join(self.words))
    ...     def load_assets(self, folder):
    ...         with open(f"{folder}/vocabulary.txt") as f:
    ...             self.words = f.read().split("\\n")
    >>> members = save_assets([Saveable("layers/vocab", "vocab", Vocab())])
    >>> members
    {'assets/layers/vocab/vocabulary.txt': b'a\\nb'}
    >>> other = Vocab(); other.words = []
    >>> load_assets([Saveable("layers/vocab", "vocab", other)], members, "demo.keras")
    >>> other.words
    ['a', 'b']
"""
from __future__ import annotations

__all__ = ["save_assets", "read_assets", "load_assets", "ASSETS_DIR", "MAX_ASSET_FILES", "MAX_ASSET_BYTES"]

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from .errors import KerasFileError
from .layout import Saveable

ASSETS_DIR = "assets"
#: An archive with more asset files than this is refused (real ones have one per lookup layer).
MAX_ASSET_FILES = 10_000
#: The most bytes all asset files together may hold (also capped by ``load_model``'s ``max_bytes``).
MAX_ASSET_BYTES = 2**30


def _folder(root: str, saveable: Saveable) -> str:
    return os.path.join(root, *saveable.path.split("/")) if saveable.path else root


def save_assets(saveables: Sequence[Saveable]) -> dict[str, bytes]:
    """``{archive member name: bytes}`` of what every ``save_assets`` method writes (empty when none does)."""
    writers = [s for s in saveables if callable(getattr(s.obj, "save_assets", None))]
    members: dict[str, bytes] = {}
    if not writers:
        return members
    with tempfile.TemporaryDirectory(prefix="onnxforge-assets-") as root:
        for s in writers:
            folder = _folder(root, s)
            os.makedirs(folder, exist_ok=True)
            s.obj.save_assets(folder)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                if os.path.islink(full):      # a link would pull some other file of this machine into the archive
                    continue
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as f:
                    members[f"{ASSETS_DIR}/{rel}"] = f.read()
    return members


def read_assets(names: Sequence[str], read: Callable[[str, int], bytes], path: Any,
                max_bytes: int = MAX_ASSET_BYTES) -> dict[str, bytes]:
    """The archive's asset files, ``{member name: bytes}``, each read with ``read(name, limit)`` (the
    archive's bounded member reader) within one budget for them all."""
    wanted = [n for n in names if n.startswith(f"{ASSETS_DIR}/") and not n.endswith("/")]
    if len(wanted) > MAX_ASSET_FILES:
        raise KerasFileError(path, f"the archive holds {len(wanted)} asset files, over the limit of "
                             f"{MAX_ASSET_FILES}", key=ASSETS_DIR)
    if len(set(wanted)) != len(wanted):
        raise KerasFileError(path, "the archive holds an asset file more than once", key=ASSETS_DIR)
    budget = min(max_bytes, MAX_ASSET_BYTES)
    members: dict[str, bytes] = {}
    for name in wanted:
        data = read(name, budget)
        budget -= len(data)
        members[name] = data
    return members


def load_assets(saveables: Sequence[Saveable], members: dict[str, bytes], path: Any) -> None:
    """Hand every object with ``load_assets`` its folder of the archive's assets (Keras calls them only when
    the archive has assets at all)."""
    readers = [s for s in saveables if callable(getattr(s.obj, "load_assets", None))]
    if not members or not readers:
        return
    with tempfile.TemporaryDirectory(prefix="onnxforge-assets-") as root:
        base = os.path.realpath(root)
        for name, data in members.items():
            parts = name.split("/")[1:]
            target = os.path.realpath(os.path.join(base, *parts))
            if any(p in ("", ".", "..") for p in parts) or not target.startswith(base + os.sep):
                raise KerasFileError(path, "an asset's name leaves the assets folder; refusing it", key=name)
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "xb") as f:
                    f.write(data)
            except OSError as e:     # a name that is both a file and a folder ("a" and "a/b")
                raise KerasFileError(path, f"the asset cannot be laid out as a file ({e})", key=name) from None
        for s in readers:
            folder = _folder(base, s)
            s.obj.load_assets(folder if os.path.isdir(folder) else None)
