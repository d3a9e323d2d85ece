"""``CSVLogger``: stream each epoch's logs to a CSV file."""
from __future__ import annotations

__all__ = ["CSVLogger"]

import collections
import csv
import os
from typing import Any

import numpy as np

from .callback import Callback


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file: a header ``epoch,<sorted keys>`` then one row per epoch.

    ``epoch`` counts from 0, as in Keras. When the first epoch's logs have no ``val_`` keys, a ``val_`` column
    follows for each key (Keras's rule, for ``validation_freq > 1``); epochs without them write ``NA``.

    Args:
        filename: the CSV file.
        separator: the field separator.
        append: append to an existing file (no second header) instead of overwriting it.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> log = CSVLogger(path)
        >>> log.on_train_begin(); log.on_epoch_end(0, {"loss": 0.5}); log.on_train_end()
        >>> open(path).read().splitlines()
        ['epoch,loss,val_loss', '0,0.5,NA']
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: list[str] | None = None
        self.writer: csv.DictWriter | None = None
        self.csv_file: Any = None
        self._append_header = True

    def on_train_begin(self, logs=None):
        self._append_header = True
        if self.append and os.path.exists(self.filename):
            # Keras reads the first line to see whether the file is empty: a file of one huge line was read
            # whole, one not in UTF-8 raised UnicodeDecodeError, a FIFO blocked. Its size says the same.
            if not os.path.isfile(self.filename):
                raise ValueError(f"CSVLogger: {os.fspath(self.filename)!r} is not a regular file (a folder, device, "
                                 "FIFO or socket); append=True appends to a file")
            self._append_header = os.path.getsize(self.filename) == 0
        folder = os.path.dirname(self.filename)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self.keys = None
        self.writer = None

    @staticmethod
    def _cell(value: Any) -> Any:
        if isinstance(value, str) or np.ndim(value) == 0:
            return value.item() if isinstance(value, np.generic) else value
        return '"[%s]"' % ", ".join(map(str, np.ravel(value)))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            # Like Keras, columns for validation from the start: with validation_freq > 1 (or none at all) the
            # first epoch has no val_ keys, and a header cannot grow later. Epochs without them write NA.
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self.model is not None and getattr(self.model, "stop_training", False):
            # The last epoch may lack keys (validation skipped): keep the columns, mark the gaps.
            logs = {k: logs.get(k, "NA") for k in self.keys}
        if self.writer is None:
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         delimiter=self.sep, extrasaction="ignore", restval="NA")
            if self._append_header:
                self.writer.writeheader()
        row = collections.OrderedDict({"epoch": epoch})
        row.update((k, self._cell(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None:
            self.csv_file.close()
            self.csv_file = None
        self.writer = None
