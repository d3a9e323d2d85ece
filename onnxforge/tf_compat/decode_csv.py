"""``tf.io.decode_csv``: CSV records (a string tensor of any shape) split into one tensor per column, each of the
records' shape, typed by ``record_defaults`` with ``make_csv_dataset``'s rules (``0`` int32, ``0.0`` float32,
``""`` string, an empty tensor for a required field); empty or ``na_value`` fields take the default.

TensorFlow's CSV tutorial decodes the lines of a file at once and, in a ``Dataset.map``, batches of lines. It
runs on the host, like the rest of onnxforge's string handling; inside a compiled model it is refused.

Example:
    >>> import numpy as np
    >>> ages, cities = decode_csv(np.asarray(["30,Oslo", "41,"]), record_defaults=[0, "none"])
    >>> ages.tolist(), ages.dtype.name, cities.tolist()
    ([30, 41], 'int32', ['Oslo', 'none'])
"""
from __future__ import annotations

__all__ = ["decode_csv"]

import csv
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..eager_tensor import as_eager
from ..graph import Value
from ..trainer.compiled_function import HostFunctionInTrace
from .csv_dataset import _default, _parse
from .errors import InvalidArgumentError


def decode_csv(records: Any, record_defaults: Sequence[Any], field_delim: str = ",", use_quote_delim: bool = True,
               name: str | None = None, na_value: str = "", select_cols: Sequence[int] | None = None) -> list[Any]:
    """One tensor per column (or per ``select_cols`` index) of the CSV ``records``, each shaped as ``records``.

    Raises:
        InvalidArgumentError: a record with another number of fields, a required field missing, or a field
            that is not a number of its column's type (TensorFlow's error).
    """
    if isinstance(records, Value) or type(records).__name__ == "KerasTensor":
        raise HostFunctionInTrace("tf.io.decode_csv runs on concrete strings (in a Dataset.map function or "
                                  f"eagerly), not inside a compiled model. Received: {records!r}")
    lines = np.asarray(records.numpy() if hasattr(records, "numpy") else records, dtype=object)
    texts = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in lines.reshape(-1).tolist()]
    types = [_default(item, i) for i, item in enumerate(record_defaults)]
    quoting = csv.QUOTE_MINIMAL if use_quote_delim else csv.QUOTE_NONE
    rows = [next(csv.reader([text], delimiter=field_delim, quoting=quoting), []) for text in texts]
    if select_cols is not None:
        columns = [int(c) for c in select_cols]
        if sorted(set(columns)) != columns:
            raise ValueError(f"tf.io.decode_csv: select_cols must be strictly increasing. Received: {columns}")
        if len(columns) != len(types):
            raise ValueError(f"tf.io.decode_csv: record_defaults has {len(types)} items for the {len(columns)} "
                             "select_cols.")
        short = next((r for r, row in enumerate(rows) if len(row) <= columns[-1]), None) if columns else None
        if short is not None:
            raise InvalidArgumentError(f"tf.io.decode_csv: record {short} has {len(rows[short])} fields; "
                                       f"select_cols needs {columns[-1] + 1}.")
        rows = [[row[c] for c in columns] for row in rows]
    try:
        values = _parse(rows, list(range(len(types))), types, na_value, len(types), False)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(str(e).replace("make_csv_dataset", "tf.io.decode_csv")) from None
    return [as_eager(np.asarray(v, dtype=str if kind == "string" else kind).reshape(lines.shape))
            for v, (kind, _) in zip(values, types)]
