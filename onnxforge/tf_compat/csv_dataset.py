"""``tf.data.experimental.make_csv_dataset``: CSV files read into an in-memory ``Dataset`` of
``(features, label)`` batches, as keras.io's structured-data examples read their tables; and
``tf.data.experimental.CsvDataset``, one tuple of scalars per record (the overfit-and-underfit tutorial).

TensorFlow's rules are kept: column names from the header row unless given, each column's type from its
default (``[0.0]`` float32, ``[0]`` int32, ``["NA"]`` string, a bare dtype for a required field) or, without
defaults, inferred from the first ``num_rows_for_inference`` rows (int32, int64, float32, float64, then
string), empty or ``na_value`` fields replaced by the default, ``select_columns`` by name or index, the label
column popped out of the features ``OrderedDict``; rows shuffled then repeated ``num_epochs`` times (``None``:
forever, with the last partial batch dropped) and batched. Strings are NumPy ``str`` arrays, as elsewhere in
onnxforge. The files are read when the dataset is made, so a bad record raises ``InvalidArgumentError`` (a
``ValueError``) there, where TensorFlow raises it when iteration reaches the record.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(path, "w").write("age,city,label\\n30,Oslo,1\\n41,,0\\n")
    >>> ds = make_csv_dataset(path, batch_size=2, label_name="label", num_epochs=1, shuffle=False)
    >>> features, label = next(iter(ds))
    >>> features["age"].tolist(), features["city"].tolist(), label.tolist()
    ([30, 41], ['Oslo', ''], [1, 0])
"""
from __future__ import annotations

__all__ = ["make_csv_dataset", "CsvDataset"]

import collections
import csv
import glob
import gzip
import os
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..utils.dataset import Dataset
from .errors import InvalidArgumentError

_TYPES = ("int32", "int64", "float32", "float64", "string")   # least to most permissive, as TF infers
_REQUIRED = object()   # a column whose default is a bare dtype: an empty field is an error


def _file_names(file_pattern: Any) -> list[str]:
    if hasattr(file_pattern, "numpy") or isinstance(file_pattern, np.ndarray):   # a string tensor (list_files')
        file_pattern = [v.decode() if isinstance(v, bytes) else str(v)
                        for v in np.asarray(getattr(file_pattern, "numpy", lambda: file_pattern)()).ravel().tolist()]
    patterns = [file_pattern] if isinstance(file_pattern, (str, os.PathLike)) else list(file_pattern)
    names: list[str] = []
    for pattern in patterns:
        found = sorted(glob.glob(os.fspath(pattern)))
        if not found:
            raise ValueError(f"make_csv_dataset: no files match file_pattern={os.fspath(pattern)!r}.")
        names.extend(found)
    return names


def _rows(names: list[str], delim: str, quote: bool, header: bool, gzipped: bool, encoding: str):
    """Each record of each file as a list of fields (``[]`` for an empty line), after its header."""
    for name in names:
        opener = gzip.open if gzipped else open
        if not os.path.isfile(name):    # a FIFO would block the read, a device never end it
            raise InvalidArgumentError(f"make_csv_dataset: {name!r} is not a regular file (a folder, device, FIFO "
                                       "or socket)")
        with opener(name, "rt", encoding=encoding, newline="") as f:
            reader = csv.reader(f, delimiter=delim, quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE)
            try:
                if header:
                    next(reader, None)
                yield from reader
            except (csv.Error, UnicodeDecodeError, EOFError, OSError, zlib.error) as e:
                # csv's errors (a field over its limit, a NUL byte) and a decoding failure named neither the
                # file nor the line; gzip's errors: a corrupt or truncated compressed file
                line = max(reader.line_num, 1)
                raise InvalidArgumentError(f"make_csv_dataset: cannot read {name!r} near line {line} "
                                           f"({type(e).__name__}: {e})") from None


def _valid(text: str, kind: str) -> bool:
    try:
        if kind in ("int32", "int64"):
            value = int(text)
            bits = 31 if kind == "int32" else 63
            return -2 ** bits <= value < 2 ** bits
        if kind in ("float32", "float64"):
            return bool(np.dtype(kind).type(text) < np.inf)
    except (ValueError, OverflowError):
        return False
    return True


def _infer(rows: list[list[str]], columns: list[int], na_value: str) -> list[tuple[str, Any]]:
    kinds: list[str | None] = [None] * len(columns)
    for row in rows:
        for j, col in enumerate(columns):
            text = row[col] if col < len(row) else ""
            if text in ("", na_value):
                continue   # an empty field says nothing of the column's type
            start = 0 if kinds[j] is None else _TYPES.index(kinds[j])
            kinds[j] = next(k for k in _TYPES[start:] if _valid(text, k))
    return [(k or "string", "" if (k or "string") == "string" else 0) for k in kinds]


def _default(item: Any, index: int) -> tuple[str, Any]:
    """A column's (type, default) from one ``column_defaults`` item, by TensorFlow's rules."""
    if isinstance(item, (str, np.dtype, type)) and str(np.dtype(item) if not isinstance(item, str) else item) \
            in _TYPES:
        return str(item if isinstance(item, str) else np.dtype(item)), _REQUIRED
    array = np.asarray(item)
    if array.size > 1 or array.ndim > 1:
        raise ValueError(f"make_csv_dataset: column_defaults[{index}] must hold at most one value. "
                         f"Received: {item!r}")
    if array.dtype.kind in "USO":
        kind = "string"
    elif array.dtype.kind == "f":
        kind = "float32" if isinstance(item, (list, tuple, float)) or array.dtype == np.float32 else "float64"
    elif array.dtype.kind in "iub":
        kind = "int32" if isinstance(item, (list, tuple, int)) or array.dtype.itemsize <= 4 else "int64"
    else:
        raise ValueError(f"make_csv_dataset: column_defaults[{index}] must be a float32, float64, int32, int64 "
                         f"or string value or dtype. Received: {item!r}")
    if array.size == 0:
        return kind, _REQUIRED
    return kind, array.reshape(-1)[0].item() if kind != "string" else str(array.reshape(-1)[0])


def _selected(select_columns: Sequence[Any] | None, names: list[str]) -> list[int]:
    if select_columns is None:
        return list(range(len(names)))
    index = {n: i for i, n in enumerate(names)}
    out = []
    for v in select_columns:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if not 0 <= v < len(names):
                raise ValueError(f"make_csv_dataset: select_columns index {v} is outside the {len(names)} "
                                 "columns.")
            out.append(int(v))
        elif v in index:
            out.append(index[v])
        else:
            raise ValueError(f"make_csv_dataset: select_columns names {v!r}, which is not a column. Columns: "
                             f"{names}")
    if len(set(out)) != len(out):
        raise ValueError(f"make_csv_dataset: select_columns holds a column twice. Received: {list(select_columns)}")
    return sorted(out)


def _parse(rows: list[list[str]], columns: list[int], types: list[tuple[str, Any]], na_value: str,
           width: int, ignore_errors: bool) -> list[list[Any]]:
    values: list[list[Any]] = [[] for _ in columns]
    for r, row in enumerate(rows):
        try:
            if len(row) != width:
                raise InvalidArgumentError(f"make_csv_dataset: expected {width} fields but record {r} has "
                                           f"{len(row)}.")
            parsed = []
            for j, col in enumerate(columns):
                kind, default = types[j]
                text = row[col]
                if text in ("", na_value):
                    if default is _REQUIRED:
                        raise InvalidArgumentError(f"make_csv_dataset: field {col} is required but missing in "
                                                   f"record {r}.")
                    parsed.append(default)
                elif kind == "string":
                    parsed.append(text)
                elif not _valid(text, kind):
                    raise InvalidArgumentError(f"make_csv_dataset: field {col} in record {r} is not a valid "
                                               f"{kind}: {text!r}")
                else:
                    parsed.append(int(text) if kind.startswith("int") else float(text))
        except ValueError:
            if ignore_errors:
                continue
            raise
        for j, v in enumerate(parsed):
            values[j].append(v)
    return values


def make_csv_dataset(file_pattern: Any, batch_size: int, column_names: Sequence[str] | None = None,
                     column_defaults: Sequence[Any] | None = None, label_name: str | None = None,
                     select_columns: Sequence[Any] | None = None, field_delim: str = ",",
                     use_quote_delim: bool = True, na_value: str = "", header: bool = True,
                     num_epochs: int | None = None, shuffle: bool = True, shuffle_buffer_size: int = 10000,
                     shuffle_seed: int | None = None, prefetch_buffer_size: Any = None,
                     num_parallel_reads: Any = None, sloppy: bool = False, num_rows_for_inference: int | None = 100,
                     compression_type: str | None = None, ignore_errors: bool = False,
                     encoding: str = "utf-8") -> Dataset:
    """``tf.data.experimental.make_csv_dataset`` (see the module docstring); the files are read now."""
    if compression_type not in (None, "", "GZIP"):
        raise ValueError(f"make_csv_dataset: compression_type must be None, '' or 'GZIP'. Received: "
                         f"{compression_type!r}")
    names = _file_names(file_pattern)
    gzipped = compression_type == "GZIP"
    if column_names is None:
        if not header:
            raise ValueError("make_csv_dataset: expected `column_names` or `header=True`; neither was given.")
        first = next(_rows(names[:1], field_delim, use_quote_delim, False, gzipped, encoding), None)
        if first is None:
            raise ValueError(f"make_csv_dataset: could not read the header line of {names[0]}. Is it empty?")
        column_names = first
    column_names = list(column_names)
    if len(set(column_names)) != len(column_names):
        raise ValueError(f"make_csv_dataset: the column names hold duplicates: {column_names}")
    columns = _selected(select_columns, column_names)
    rows = list(_rows(names, field_delim, use_quote_delim, header, gzipped, encoding))
    if column_defaults is None:
        sample = rows if num_rows_for_inference is None else rows[:num_rows_for_inference]
        types = _infer(sample, columns, na_value)
    else:
        types = [_default(item, i) for i, item in enumerate(column_defaults)]
        if len(types) != len(columns):
            raise ValueError(f"make_csv_dataset: column_defaults has {len(types)} items for {len(columns)} "
                             "(selected) columns.")
    selected_names = [column_names[c] for c in columns]
    if label_name is not None and label_name not in selected_names:
        raise ValueError(f"`label_name` provided must be one of the columns: {selected_names}. "
                         f"Received: {label_name}.")
    values = _parse(rows, columns, types, na_value, len(column_names), ignore_errors)
    arrays = collections.OrderedDict(
        (n, np.asarray(v, dtype=str if kind == "string" else kind))
        for n, v, (kind, _) in zip(selected_names, values, types))
    label = arrays.pop(label_name) if label_name is not None else None
    n = len(values[0]) if values else 0
    data = Dataset(lambda: ((collections.OrderedDict((k, a[i]) for k, a in arrays.items()), label[i])
                            if label is not None else collections.OrderedDict((k, a[i]) for k, a in arrays.items())
                            for i in range(n)), n)
    if shuffle:
        data = data.shuffle(shuffle_buffer_size, seed=shuffle_seed)
    if num_epochs != 1:
        data = data.repeat(num_epochs)
    return data.batch(batch_size, drop_remainder=num_epochs is None).prefetch(prefetch_buffer_size)


def CsvDataset(filenames: Any, record_defaults: Sequence[Any], compression_type: str | None = None,
               buffer_size: Any = None, header: bool = False, field_delim: str = ",", use_quote_delim: bool = True,
               na_value: str = "", select_cols: Sequence[int] | None = None,
               exclude_cols: Sequence[int] | None = None) -> Dataset:  # noqa: N802 (TensorFlow's class name)
    """``tf.data.experimental.CsvDataset``: each record of ``filenames`` as a tuple of scalars, one per column
    (or per ``select_cols`` index), typed by ``record_defaults`` as in ``make_csv_dataset``.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "r.csv")
        >>> _ = open(path, "w").write("1,2.5\\n0,\\n")
        >>> [(int(a), float(b)) for a, b in CsvDataset(path, [0, float()])]
        [(1, 2.5), (0, 0.0)]
    """
    if compression_type not in (None, "", "GZIP"):
        raise ValueError(f"CsvDataset: compression_type must be None, '' or 'GZIP'. Received: {compression_type!r}")
    if select_cols is not None and exclude_cols is not None:
        raise ValueError("CsvDataset: give select_cols or exclude_cols, not both.")
    types = [_default(item, i) for i, item in enumerate(record_defaults)]
    rows = list(_rows(_file_names(filenames), field_delim, use_quote_delim, header, compression_type == "GZIP",
                      "utf-8"))
    width = len(rows[0]) if rows else len(types)
    if select_cols is not None:
        columns = _selected(list(select_cols), [str(i) for i in range(width)])
    elif exclude_cols is not None:
        columns = [i for i in range(width) if i not in set(exclude_cols)]
    else:
        columns, width = list(range(len(types))), len(types)
    if len(columns) != len(types):
        raise ValueError(f"CsvDataset: record_defaults has {len(types)} items for {len(columns)} (selected) columns.")
    values = _parse(rows, columns, types, na_value, width, False)
    arrays = [np.asarray(v, dtype=str if kind == "string" else kind) for v, (kind, _) in zip(values, types)]
    n = len(values[0]) if values else 0
    return Dataset(lambda: (tuple(a[i] for a in arrays) for i in range(n)), n)
