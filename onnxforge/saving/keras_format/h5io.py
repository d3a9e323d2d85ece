"""HDF5 weights in Keras 3's layout (``<path>/vars/<i>``), written and read with checks for hostile files.

h5py is optional: onnxforge needs it only for Keras's ``.keras`` / ``.weights.h5`` / ``.h5`` files
(``pip install h5py``, which ``pip install keras`` brings too).

Reading never trusts the file: links that point elsewhere (soft links, external links, external or
virtual datasets) are refused, a dataset is read only after its shape matched the variable it is for (so a
dataset declaring a huge shape is never allocated), and only numeric data types are accepted.

Example:
    >>> import onnxforge as of
    >>> from onnxforge.saving.keras_format.layout import keras_saveables
    >>> model = of.Sequential([of.layers.Input((3,)), of.layers.Dense(2)])
    >>> data = write_h5(keras_saveables(model))
    >>> with H5Reader(data, "demo.weights.h5") as reader:
    ...     problems = reader.load(keras_saveables(model))
    >>> problems
    []
"""
from __future__ import annotations

__all__ = ["require_h5py", "write_h5", "H5Reader", "LoadProblem"]

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import KerasFileError, KerasFileTypeError
from .h5_heaps import check_global_heaps
from .layout import Saveable, StateRef
from .stores import overrides, own_entries, run_load_hooks

_NUMERIC_KINDS = "biuf"
#: The most the weight datasets may expand over what they store, together (see ``stored_shapes``).
_MAX_TOTAL_RATIO = 100
#: Groups nested deeper than this are refused: Keras's layout nests a few levels per sub-model, and HDF5's
#: own walk (``visititems``) costs the square of the depth (3,000 levels in a 3 MB file took 24 s).
_MAX_DEPTH = 256


def require_h5py(what: str) -> Any:
    """``h5py``, or an ImportError saying what needs it and how to install it."""
    try:
        import h5py
    except ImportError as e:
        raise ImportError(f"{what} needs the h5py package (Keras's weights are HDF5): `pip install h5py` "
                          "(installing keras brings it too). onnxforge's own format, `.onnx`, needs nothing "
                          "extra.") from e
    return h5py


# ------------------------------------------------------------------------------------------ write
def write_h5(saveables: Sequence[Saveable]) -> bytes:
    """The ``model.weights.h5`` bytes Keras 3 writes for these objects (same groups, names and datasets)."""
    h5py = require_h5py("Writing Keras weights")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for s in saveables:
            group = f.require_group(s.group)
            group.attrs["name"] = s.name
            for key, value in own_entries(s):    # a save_own_variables override writes its own keys
                group[key] = value
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ read
@dataclass
class LoadProblem:
    """Something in the file that does not fit the model (reported together, as Keras does)."""

    path: str
    message: str
    optimizer: bool = False


class H5Reader:
    """Read Keras-layout weights from HDF5 bytes or a file path, refusing anything a safe file cannot hold.

    Args:
        source: the HDF5 bytes (from a ``.keras`` archive) or a path (a ``.weights.h5`` file).
        path: the file name used in errors.
    """

    def __init__(self, source: bytes | str | os.PathLike[str], path: str | os.PathLike[str]):
        self.h5py = require_h5py("Reading Keras weights")
        self.path = os.fspath(path)
        if isinstance(source, (bytes, bytearray)) or os.path.isfile(source):
            check_global_heaps(source, self.path)    # a corrupt heap hangs the library's string reads
        try:
            handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else os.fspath(source)
            self.file = self.h5py.File(handle, "r")
        except (OSError, ValueError, OverflowError, RuntimeError) as e:
            # OverflowError: a superblock declaring an address past what h5py's file-object driver can seek to
            raise KerasFileError(self.path, f"the weights are not a readable HDF5 file ({type(e).__name__}: {e})") \
                from None

    def __enter__(self) -> H5Reader:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        try:
            self.close()
        except (RuntimeError, OSError):   # a read-only file: nothing is lost, and the reason below is the one to say
            if error is None:
                raise
        # The HDF5 library reports a corrupt object header or attribute message, met while the block reads the
        # file (``name in obj.attrs`` outside any Stage), as a RuntimeError / OSError / KeyError naming neither
        # the file nor what was read: one KerasFileError instead. ValueErrors (KerasFileError) are already clear.
        # A TypeError: h5py's reading of a corrupt datatype message ("Unknown string encoding").
        if isinstance(error, (RuntimeError, OSError, KeyError, EOFError, TypeError)) \
                and not isinstance(error, ValueError):
            cls = KerasFileTypeError if isinstance(error, TypeError) else KerasFileError
            raise cls(self.path, f"the HDF5 data is corrupt or unreadable ({type(error).__name__}: {error})") \
                from error

    def close(self) -> None:
        self.file.close()

    # -------------------------------------------------------------- safe access
    def _link_class(self, parent: Any, name: str) -> Any:
        return parent.get(name, default=None, getclass=True, getlink=True)

    def group(self, path: str) -> Any | None:
        """The group at ``path``, ``None`` if absent; links that leave the file are refused."""
        current = self.file
        for part in path.split("/"):
            if not part:
                raise KerasFileError(self.path, "an empty component in an HDF5 path", key=path)
            if part not in current:
                return None
            link = self._link_class(current, part)
            if link is not None and link is not self.h5py.HardLink:
                raise KerasFileError(self.path, f"the file holds an HDF5 {link.__name__}, which a weights file "
                                     "never needs (it could point outside the file); refusing it", key=path)
            current = current[part]
            if not isinstance(current, self.h5py.Group):
                raise KerasFileError(self.path, f"expected an HDF5 group, found a {type(current).__name__}",
                                     key=path)
        return current

    def dataset(self, group: Any, key: str, where: str) -> Any:
        link = self._link_class(group, key)
        if link is not None and link is not self.h5py.HardLink:
            raise KerasFileError(self.path, f"the file holds an HDF5 {link.__name__} where a dataset should be; "
                                 "refusing it", key=where)
        ds = group[key]
        if not isinstance(ds, self.h5py.Dataset):
            raise KerasFileError(self.path, f"expected a dataset, found a {type(ds).__name__}", key=where)
        if ds.external:
            raise KerasFileError(self.path, "the dataset stores its data in an external file; refusing it",
                                 key=where)
        if ds.is_virtual:
            raise KerasFileError(self.path, "the dataset is virtual (it maps other files); refusing it", key=where)
        if ds.dtype.kind not in _NUMERIC_KINDS:
            raise KerasFileError(self.path, f"the dataset has data type {ds.dtype}, not a numeric tensor", key=where)
        return ds

    def read(self, ds: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
        """The dataset's values, read only once its declared shape is the expected one (so the most a hostile
        file can make us allocate is the model's own size)."""
        if tuple(ds.shape) != tuple(shape):
            raise ValueError(f"shape mismatch: the model expects {tuple(shape)}, the file holds {tuple(ds.shape)}")
        try:
            value = np.asarray(ds[()])
        except (OSError, RuntimeError, TypeError, ValueError) as e:   # h5py's own: a corrupt or truncated chunk
            raise KerasFileError(self.path, f"the dataset cannot be read ({type(e).__name__}: {e})",
                                 key=where) from None
        if ds.attrs.get("dtype") == "bfloat16":     # Keras stores bfloat16 as its raw 16-bit patterns
            value = (value.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        return value

    def stored_shapes(self, under: str = "", skip: tuple[str, ...] = ()) -> list[tuple[int, ...]]:
        """Shapes of the datasets below ``under`` (not below the top-level groups in ``skip``) that really
        store their data: a dataset declaring more than a thousand times the bytes it stores (and over
        1 MiB) is a shape bomb and does not count. The loader lets the rebuilt model create only weights of
        these shapes (``onnxforge.layers.allocation``). Together the counted datasets may declare at most
        ``_MAX_TOTAL_RATIO`` times what they store (plus 16 MiB): Keras stores weights uncompressed, and
        even compressed real weights shrink a few times, while a gzip bomb of many datasets just under the
        per-dataset bound would make the model allocate and decompress a thousand times the file."""
        root = self.group(under) if under else self.file
        shapes: list[tuple[int, ...]] = []
        totals = [0, 0]    # declared, stored bytes of the counted datasets
        if root is None:
            return shapes

        def visit(name: str, obj: Any) -> None:
            if name.split("/")[0] in skip:
                return
            declared = int(np.prod(obj.shape, dtype=np.float64)) * obj.dtype.itemsize
            stored = obj.id.get_storage_size()
            if declared > 2**20 and declared > 1000 * stored:
                return
            totals[0] += declared
            totals[1] += stored
            shapes.append(tuple(int(d) for d in obj.shape))

        try:
            for name, ds in self._datasets(root, under or "/"):
                visit(name, ds)
        except KerasFileError:
            raise
        except (OSError, RuntimeError, TypeError, ValueError) as e:   # a corrupt object header or B-tree
            raise KerasFileError(self.path, f"the HDF5 file cannot be walked ({type(e).__name__}: {e})",
                                 key=under or "/") from None
        if totals[0] > _MAX_TOTAL_RATIO * totals[1] + 2**24:
            raise KerasFileError(self.path, f"its weight datasets declare {totals[0]} bytes but store only "
                                 f"{totals[1]} (compressed over {_MAX_TOTAL_RATIO}x): a potential decompression "
                                 "bomb; refusing it before anything is decompressed", key=under or "/")
        return shapes

    def _datasets(self, root: Any, where: str) -> Any:
        """``(path below root, dataset)`` of every dataset reached by hard links, each object once (the
        datasets ``visititems`` visits), walked without HDF5's full-path lookups and at most ``_MAX_DEPTH``
        groups deep."""
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[str, Any, int]] = [("", root, 0)]
        while stack:
            path, group, depth = stack.pop()
            children = []
            for name in group:
                if not isinstance(group.get(name, getlink=True), self.h5py.HardLink):
                    continue   # soft and external links are not followed (visititems does not either)
                obj = group[name]
                info = self.h5py.h5o.get_info(obj.id)
                if (info.fileno, info.addr) in seen:
                    continue   # a hard link back up the tree, or a second name for an object
                seen.add((info.fileno, info.addr))
                full = f"{path}/{name}" if path else name
                if isinstance(obj, self.h5py.Dataset):
                    yield full, obj
                elif isinstance(obj, self.h5py.Group):
                    if depth + 1 > _MAX_DEPTH:
                        raise KerasFileError(self.path, f"its groups nest over {_MAX_DEPTH} deep (a Keras weights "
                                             "file nests a few levels per sub-model); refusing to walk it", key=where)
                    children.append((full, obj, depth + 1))
            stack.extend(reversed(children))

    # -------------------------------------------------------------- whole models
    def load(self, saveables: Sequence[Saveable], skip_mismatch: bool = False) -> list[LoadProblem]:
        """Assign every saveable's tensors from its ``vars`` group and return the problems found (the caller
        raises them together, or warns with ``skip_mismatch``). When a layer does not fit and
        ``skip_mismatch`` is false nothing at all is assigned; otherwise everything that fits is. An optimizer
        that does not fit is left as it is (Keras starts it fresh) without blocking the rest."""
        problems: list[LoadProblem] = []
        pending: list[tuple[StateRef, np.ndarray]] = []
        hooked = [s for s in saveables if overrides(s.obj, "load_own_variables")]
        for s in saveables:
            if s in hooked:       # read by its own load_own_variables, once the rest is known to fit
                continue
            found = self._load_one(s)
            if isinstance(found, LoadProblem):
                problems.append(found)
            else:
                pending += found
        if skip_mismatch or all(p.optimizer for p in problems):
            problems += run_load_hooks(hooked, self, LoadProblem)
        if skip_mismatch or all(p.optimizer for p in problems):
            for ref, value in pending:
                ref.write(value)
        return problems

    def _load_one(self, s: Saveable) -> LoadProblem | list[tuple[StateRef, np.ndarray]]:
        group = self.group(s.group)
        keys = sorted(group.keys(), key=lambda k: (len(k), k)) if group is not None else []
        what = _describe(s)
        if len(keys) != len(s.refs) or any(k != str(i) for i, k in enumerate(keys)):
            if s.is_optimizer:
                return LoadProblem(s.group, f"Skipping variable loading for optimizer '{s.obj.name}', because it has "
                                   f"{len(s.refs)} variables whereas the saved optimizer has {len(keys)} variables.",
                                   optimizer=True)
            if not s.refs and group is None:
                return []
            return LoadProblem(s.group, f"{what} expected {len(s.refs)} variables, but received {len(keys)} "
                               f"variables during loading (group {s.group!r}). Expected: "
                               f"{[r.label for r in s.refs]}")
        values = []
        for i, ref in enumerate(s.refs):
            where = f"{s.group}/{i}"
            try:
                ds = self.dataset(group, str(i), where)
                if ref.dtype == np.int8 and ds.dtype != np.int8:
                    # A quantized layer's int8 weight: a float tensor here would be truncated, not loaded.
                    raise ValueError(f"dtype mismatch: the model's weight is int8 (a quantized layer's), the file "
                                     f"holds {ds.dtype}")
                values.append(self.read(ds, ref.shape, where))
            except ValueError as e:
                if isinstance(e, KerasFileError):
                    raise
                return LoadProblem(where, f"{what}: variable {ref.label!r} ({where}): {e}", optimizer=s.is_optimizer)
        return list(zip(s.refs, values))


def _describe(s: Saveable) -> str:
    kind = "Optimizer" if s.is_optimizer else "Layer"
    return f"{kind} '{getattr(s.obj, 'name', '?')}' ({type(s.obj).__name__})"
