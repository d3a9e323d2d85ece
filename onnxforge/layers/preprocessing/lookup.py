"""``StringLookup`` and ``IntegerLookup``: vocabulary lookups in standard ONNX operators (Keras 3 semantics).

A token's index is found by comparing it with the constant vocabulary (``Equal`` against a ``(V,)``
tensor, then ``ArgMax``), which works for strings and integers alike; integer vocabularies over a compact
range use a ``Gather`` from a dense table instead. Out-of-vocabulary tokens get the OOV index
(``num_oov_indices=1``), or ``x mod num_oov_indices`` for integers (Keras's ``floormod`` method); Keras
hashes strings into several OOV buckets with FarmHash, which ONNX cannot do, so that case is refused.
``invert=True`` maps indices back to tokens with a ``Gather``. ``adapt()`` counts tokens and keeps the most
frequent (ties broken as Keras does).
"""
from __future__ import annotations

__all__ = ["StringLookup", "IntegerLookup"]

import collections
import json
import os
from typing import Any

import numpy as np
import onnx

from ...eager_tensor import EagerTensor, as_eager
from ...graph.shape_inference import fill_shapes
from ...graph.size_limits import check_constant
from ...graph.value import onnx_dtype
from ...graph import Value, protos
from ...graph import emit as _ops
from .. import array_attributes
from ..base import Layer
from .adapt_data import batches
from .encoding import _encoded_shape, encode_categorical

_I64, _STRING = onnx.TensorProto.INT64, onnx.TensorProto.STRING
_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
_EAGER_INT64_MODES = ("one_hot", "multi_hot", "count")


class _IndexLookup(Layer):
    _autocast = False
    _reads_ids = True   # see Sequential._keeps_dtype
    _is_string = False

    def __init__(self, max_tokens: int | None, num_oov_indices: int, mask_token: Any, oov_token: Any,
                 vocabulary: Any, vocabulary_dtype: str, idf_weights: Any, invert: bool, output_mode: str,
                 sparse: bool, pad_to_max_tokens: bool, oov_method: str = "floormod", salt: Any = None,
                 vocabulary_size: int | None = None, name: str | None = None, **kwargs: Any):
        kwargs.pop("has_input_vocabulary", None)
        kwargs.pop("dtype", None)
        trainable = kwargs.pop("trainable", True)
        super().__init__(name=name, trainable=trainable, **kwargs)
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"If set, `max_tokens` must be greater than 1. Received: max_tokens={max_tokens}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError("If pad_to_max_tokens is True, must set `max_tokens`. Received: max_tokens=None")
        if num_oov_indices < 0:
            raise ValueError(f"`num_oov_indices` must be greater than or equal to 0. "
                             f"Received: num_oov_indices={num_oov_indices}")
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode not in _MODES:
            raise ValueError(f"Invalid value for argument `output_mode`. Expected one of {_MODES}. "
                             f"Received: output_mode={output_mode}")
        if invert and output_mode != "int":
            raise ValueError(f"`output_mode` must be `'int'` when `invert` is true. Received: output_mode={output_mode}")
        if sparse:
            raise NotImplementedError(f"{type(self).__name__} {self.name!r}: sparse outputs are not supported.")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(f"`oov_method` must be 'floormod' or 'farmhash'. Received: oov_method={oov_method!r}")
        if num_oov_indices > 1 and not invert and (self._is_string or oov_method == "farmhash"):
            raise NotImplementedError(
                f"{type(self).__name__} {self.name!r}: num_oov_indices={num_oov_indices} buckets out-of-vocabulary "
                "tokens with FarmHash, which ONNX's standard operators cannot compute. Use num_oov_indices=1 (or "
                "IntegerLookup with oov_method='floormod').")
        self.invert, self.max_tokens, self.num_oov_indices = bool(invert), max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token, self.output_mode = mask_token, oov_token, output_mode
        self.sparse, self.pad_to_max_tokens = False, bool(pad_to_max_tokens)
        self.vocabulary_dtype, self.oov_method, self.salt = vocabulary_dtype, oov_method, salt
        self.input_vocabulary = None if isinstance(vocabulary, str) else vocabulary
        if isinstance(vocabulary, str):   # a file; Keras's config then has no vocabulary (the assets hold it)
            vocabulary = self._read_vocabulary_file(vocabulary)
        self.input_idf_weights = idf_weights
        self._tokens: list = []
        self._idf: np.ndarray | None = None
        self._frozen_vocab_size = vocabulary_size
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        elif output_mode == "tf_idf" and idf_weights is not None:
            raise ValueError("`idf_weights` should only be set together with `vocabulary`.")
        # From here on a traced program may hold this layer's table: a new vocabulary outdates the snapshots.
        # (Not before: keras.io's structured-data example builds a lookup with its vocabulary for every
        # element inside Dataset.map, and each outdated snapshot costs a walk of every model at its next call.)
        self._may_be_traced = True

    # ------------------------------------------------------------------ vocabulary
    def _read_vocabulary_file(self, path: str) -> list:
        """The tokens of a vocabulary file, one a line, refused where Keras's file table refuses them."""
        if self.output_mode == "tf_idf":
            raise ValueError("output_mode `'tf_idf'` does not support loading a vocabulary from file. Received: "
                             f"vocabulary={path!r}")
        if not os.path.isfile(path):
            raise ValueError(f"Vocabulary file {path} does not exist.")
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if lines and lines[-1] == "":
            lines.pop()
        if "" in lines:
            raise ValueError(f"Invalid content in {path}: empty line found at position {lines.index('')}.")
        if self._is_string:
            return lines
        try:
            return [int(line) for line in lines]
        except ValueError:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the vocabulary file {path} has a line that is "
                             "not an integer.") from None

    def _oov_start_index(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start_index(self) -> int:
        return self._oov_start_index() + self.num_oov_indices

    def _as_token(self, value: Any) -> Any:
        if self._is_string:
            return value.decode("utf-8") if isinstance(value, bytes) else str(value)
        return int(value)

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Use ``vocabulary`` (optionally starting with the mask and OOV tokens) and, for ``tf_idf``, its
        ``idf_weights``."""
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError("`idf_weights` must be set if output_mode is 'tf_idf'.")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError("`idf_weights` should only be set if output_mode is `'tf_idf'`. Received: "
                             f"output_mode={self.output_mode} and idf_weights={idf_weights}")
        tokens = [self._as_token(v) for v in np.asarray(vocabulary, dtype=object).reshape(-1)]
        if not tokens:
            raise ValueError(f"Cannot set an empty vocabulary. Received: vocabulary={vocabulary}")
        start = self._token_start_index()
        # Listed only when the vocabulary is long enough to begin with them: num_oov_indices comes from a config
        # (10**9 in a hostile file, which Keras would list whole).
        special = [self.mask_token] * self._oov_start_index() + [self.oov_token] * self.num_oov_indices \
            if start <= len(tokens) else f"[{self.mask_token!r}] * {self._oov_start_index()} + " \
                                         f"[{self.oov_token!r}] * {self.num_oov_indices}"
        found_special = tokens[:start] == special
        if found_special:
            tokens = tokens[start:]
        repeated = [t for t, n in collections.Counter(tokens).items() if n > 1]
        if repeated:
            raise ValueError("The passed vocabulary has at least one repeated term. Please uniquify your dataset. "
                             f"The repeated terms are: {sorted(repeated)}")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError("Found reserved mask token at unexpected location in `vocabulary`. Either remove all "
                             "mask and OOV tokens, or include them only at the start of the vocabulary in precisely "
                             f"this order: {special}. Received: mask_token={self.mask_token}")
        if self.oov_token is not None and self.invert and self.oov_token in tokens:
            raise ValueError("Found reserved OOV token at unexpected location in `vocabulary`. Received: "
                             f"oov_token={self.oov_token}")
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError("Attempted to set a vocabulary larger than the maximum vocab size. Received vocabulary "
                             f"size is {start + len(tokens)}; `max_tokens` is {self.max_tokens}.")
        self._tokens = tokens
        if getattr(self, "_may_be_traced", False):
            array_attributes.note_state_change()
        self._frozen_vocab_size = self.vocabulary_size()
        if self.output_mode == "tf_idf":
            weights = np.asarray(idf_weights, np.float64).reshape(-1)
            if len(weights) != len(np.asarray(vocabulary, dtype=object).reshape(-1)):
                raise ValueError("`idf_weights` must be the same length as vocabulary. "
                                 f"len(idf_weights) is {len(weights)}; len(vocabulary) is {len(tokens)}")
            front = 0 if found_special else start
            back = self.max_tokens - front - len(weights) if self.pad_to_max_tokens and self.max_tokens else 0
            check_constant((front + len(weights) + max(back, 0),), 8, "the idf weights")   # a config's sizes
            self._idf = np.pad(weights, (front, back), constant_values=(np.average(weights) if front else 0, 0))

    def _traced_host_state(self) -> tuple:
        """What traced programs hold as constants (``array_attributes.snapshot``): the vocabulary and idf
        weights, as ``_eager_program_key`` names them. A model compiled before its vocabulary came
        (``load_model`` compiles, then reads the assets) is traced again at its next call."""
        return self._eager_program_key()

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        """The vocabulary, by index (with the mask and OOV tokens first unless ``include_special_tokens=False``)."""
        vocab = [self.oov_token] * self._token_start_index() + list(self._tokens)
        if self.mask_token is not None and self.output_mode == "int":
            vocab[0] = self.mask_token
        return vocab if include_special_tokens else vocab[self._token_start_index():]

    def vocabulary_size(self) -> int:
        """The number of indices the layer can output (mask and OOV indices included)."""
        return len(self._tokens) + self._token_start_index()

    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Learn the vocabulary from ``data``: the most frequent tokens first (then, like Keras, the larger
        token first among equal counts), at most ``max_tokens`` indices in all."""
        if self.input_vocabulary is not None:
            raise ValueError(f"Cannot adapt layer '{self.name}' after setting a static vocabulary via `vocabulary` "
                             "argument or `set_vocabulary()` method.")
        counts: collections.Counter = collections.Counter()
        doc_counts: collections.Counter = collections.Counter()
        documents = 0
        for batch in batches(data, f"{type(self).__name__} {self.name!r}", steps):
            array = np.asarray(batch, dtype=object)
            if array.ndim == 1:
                array = array.reshape(-1, 1)
            elif array.ndim == 0:
                array = array.reshape(1, 1)
            rows = [[self._as_token(v) for v in row.reshape(-1)] for row in array]
            for row in rows:
                counts.update(row)
                doc_counts.update(set(row))
            documents += len(rows)
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        tokens = list(counts)
        order = sorted(range(len(tokens)), key=lambda i: (counts[tokens[i]], tokens[i]), reverse=True)
        if self.max_tokens:
            order = order[: self.max_tokens - self._token_start_index()]
        self._tokens = [tokens[i] for i in order]
        array_attributes.note_state_change()
        if self.output_mode == "tf_idf":
            idf = np.log(1 + documents / (1 + np.asarray([doc_counts[t] for t in self._tokens], np.float64)))
            back = self.max_tokens - self._token_start_index() - len(idf) if self.pad_to_max_tokens else 0
            check_constant((self._token_start_index() + len(idf) + max(back, 0),), 8, "the idf weights")
            self._idf = np.pad(idf, (self._token_start_index(), back),
                               constant_values=(idf.mean() if len(idf) else 0.0, 0))
        self._frozen_vocab_size = self.vocabulary_size()

    # ------------------------------------------------------------------ graph
    def _key_const(self, b: Any, values: Any) -> Value:
        if self._is_string:
            return b.const(np.asarray(values, dtype=object), _STRING)
        return b.const(np.asarray(values, np.int64))

    def _lookup(self, x: Value) -> Value:
        b = x.builder
        rank = len(x.shape)
        if not self._is_string and x.dtype != _I64:
            x = b.op("Cast", [x], to=_I64, shape=x.shape)
        start = self._token_start_index()
        oov_start = self._oov_start_index()
        if self.num_oov_indices == 0:
            oov: Any = b.const(np.asarray(-1, np.int64))
        elif self.num_oov_indices == 1:
            oov = b.const(np.asarray(oov_start, np.int64))
        elif not self._is_string and self.oov_method == "floormod":
            oov = b.op("Mod", [x, b.const(np.asarray(self.num_oov_indices, np.int64))]) + \
                b.const(np.asarray(oov_start, np.int64))
        else:
            raise NotImplementedError(
                f"{type(self).__name__} {self.name!r}: num_oov_indices={self.num_oov_indices} buckets out-of-vocabulary "
                "tokens with FarmHash, which ONNX's standard operators cannot compute. Use num_oov_indices=1 (or "
                "IntegerLookup with oov_method='floormod').")
        if not self._tokens:  # nothing learned yet: every token is out of vocabulary
            zeros = b.op("ConstantOfShape", [b.op("Shape", [x])], value=protos.tensor("z", _I64, [1], [0]))
            result = zeros + oov
        else:
            table = self._dense_table()
            if table is not None:
                low, values = table
                shifted = x - b.const(np.asarray(low, np.int64))
                inside = b.op("And", [b.op("GreaterOrEqual", [shifted, b.const(np.asarray(0, np.int64))]),
                                      b.op("Less", [shifted, b.const(np.asarray(len(values), np.int64))])])
                safe = b.op("Where", [inside, shifted, b.const(np.asarray(0, np.int64))], dtype=_I64)
                hit = b.op("Gather", [b.const(values), safe], axis=0)
                known = b.op("And", [inside, b.op("GreaterOrEqual", [hit, b.const(np.asarray(0, np.int64))])])
                result = b.op("Where", [known, hit, oov], dtype=_I64)
            else:
                vocab = self._key_const(b, self._tokens)
                equal = b.op("Cast", [b.op("Equal", [b.op("Unsqueeze", [x, _ops.ints(b, [rank])]), vocab])],
                             to=onnx.TensorProto.FLOAT)
                index = b.op("ArgMax", [equal], axis=rank, keepdims=0)
                found = b.op("Greater", [_ops.reduce("ReduceMax", equal, [rank], keepdims=False), 0.0])
                result = b.op("Where", [found, index + b.const(np.asarray(start, np.int64)), oov], dtype=_I64)
        if self.mask_token is not None:
            mask_value = 0 if self.output_mode == "int" else np.iinfo(np.int64).max
            # 0-d constants: a scalar input gives a scalar, as in Keras (a 1-element one would broadcast it).
            is_mask = b.op("Equal", [x, self._key_const(b, self.mask_token)])
            result = b.op("Where", [is_mask, b.const(np.asarray(mask_value, np.int64)), result], dtype=_I64)
        return result

    def _dense_table(self) -> tuple[int, np.ndarray] | None:
        """For integer vocabularies over a compact range: ``(lowest token, index of each value or -1)``."""
        if self._is_string or len(self._tokens) < 16:
            return None
        low, high = min(self._tokens), max(self._tokens)
        if high - low + 1 > 4 * len(self._tokens) + 1024:
            return None
        values = np.full(high - low + 1, -1, np.int64)
        values[np.asarray(self._tokens) - low] = np.arange(len(self._tokens)) + self._token_start_index()
        return low, values

    def _invert(self, ids: Value) -> Value:
        b = ids.builder
        if ids.dtype != _I64:
            ids = b.op("Cast", [ids], to=_I64, shape=ids.shape)
        check_constant((self.vocabulary_size(),), 8, "the inverse lookup table")   # OOV slots from the config
        vocab = self.get_vocabulary()
        table = self._key_const(b, vocab)
        inside = b.op("And", [b.op("GreaterOrEqual", [ids, b.const(np.asarray(0, np.int64))]),
                              b.op("Less", [ids, b.const(np.asarray(len(vocab), np.int64))])])
        safe = b.op("Where", [inside, ids, b.const(np.asarray(0, np.int64))], dtype=_I64)
        tokens = b.op("Gather", [table, safe], axis=0)
        oov = self._key_const(b, self.oov_token)
        return b.op("Where", [inside, tokens, oov], dtype=table.dtype)

    def _depth(self) -> int:
        if self.pad_to_max_tokens:
            return self.max_tokens
        # Rebuilt from a Keras file, the vocabulary arrives with the assets, after the graph is built: the
        # config's vocabulary_size gives the output width meanwhile (as Keras's compute_output_shape).
        return self.vocabulary_size() if self._tokens or not self._frozen_vocab_size else self._frozen_vocab_size

    def call(self, inputs):
        if self.invert:
            return self._invert(inputs)
        start = len(inputs.builder.nodes)
        ids = self._lookup(inputs)
        if self.output_mode == "int":
            return ids
        fill_shapes(inputs.builder, start)  # the encoding reads the rank
        if self.output_mode != "int" and not self._tokens and not self.pad_to_max_tokens:
            raise RuntimeError(f"When using `output_mode={self.output_mode}` and `pad_to_max_tokens=False`, the "
                               "vocabulary size cannot be changed after the layer is called. Set a vocabulary or "
                               "call adapt() first.")
        dtype = onnx_dtype(self.compute_dtype)
        encoded = encode_categorical(ids, "count" if self.output_mode == "tf_idf" else self.output_mode,
                                     self._depth(), dtype)
        if self.output_mode == "tf_idf":
            encoded = encoded * inputs.builder.const(self._idf.astype(self.compute_dtype))
        return encoded

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = super().__call__(*args, **kwargs)
        # Keras encodes an eager call's lookups in the table's int64 (tf_idf then scales by float32 weights),
        # while its symbolic output spec, which models are built from, says floatx: both are kept as Keras has them.
        if isinstance(out, EagerTensor) and not self.invert and self.output_mode in _EAGER_INT64_MODES:
            out = as_eager(np.asarray(out).astype(np.int64))   # 0/1 and counts: exact, no second run
        return out

    def _output_dtype(self, input_dtypes):
        if self.invert:
            return "string" if self._is_string else self.vocabulary_dtype
        return "int64" if self.output_mode == "int" else self.compute_dtype

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        return _encoded_shape(tuple(input_shape), "count" if self.output_mode == "tf_idf" else self.output_mode,
                              self._depth())

    def _count_flops(self, input_shapes, output_shapes):
        return int(np.prod([d or 1 for d in input_shapes[0][1:]])) * max(1, len(self._tokens))

    def _eager_program_key(self) -> tuple:
        """What this lookup computes (its config without the name, its tokens and idf weights): equal lookups
        share their compiled eager programs (see ``EagerExecutor._cache_of``)."""
        cached = self.__dict__.get("_program_key")
        if cached is not None and cached[0] is self._tokens and cached[1] is self._idf:
            return cached[2]
        config = {k: v for k, v in self.get_config().items() if k not in ("name", "vocabulary", "idf_weights")}
        key = (type(self), json.dumps(config, sort_keys=True, default=repr), tuple(map(repr, self._tokens)),
               None if self._idf is None else np.asarray(self._idf).tobytes())
        self.__dict__["_program_key"] = (self._tokens, self._idf, key)
        return key

    def get_config(self):
        vocabulary = self.input_vocabulary
        if vocabulary is None and self._tokens:  # adapted: Keras keeps it in assets; a config keeps it here
            vocabulary = list(self._tokens)
        if isinstance(vocabulary, np.ndarray):
            vocabulary = vocabulary.tolist()
        idf = self.input_idf_weights
        if idf is None and self._idf is not None and self.input_vocabulary is None:
            idf = self._idf[self._token_start_index():self._token_start_index() + len(self._tokens)].tolist()
        return {**super().get_config(), "invert": self.invert, "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "oov_token": self.oov_token,
                "mask_token": self.mask_token, "output_mode": self.output_mode, "sparse": self.sparse,
                "pad_to_max_tokens": self.pad_to_max_tokens, "vocabulary_dtype": self.vocabulary_dtype,
                "idf_weights": None if idf is None else np.asarray(idf).tolist(), "vocabulary": vocabulary,
                "vocabulary_size": self._frozen_vocab_size, "oov_method": self.oov_method, "salt": self.salt}

    # ------------------------------------------------------------------ .keras state (as Keras 3's IndexLookup)
    def save_own_variables(self, store: Any) -> None:
        # Keras keeps tf_idf weights as a variable and reads them back unconditionally in that mode.
        if self.output_mode == "tf_idf" and self._idf is not None:
            store["idf_weights"] = self._idf.astype(np.float32)

    def load_own_variables(self, store: Any) -> None:
        # Paired with the vocabulary by load_assets, which Keras calls next (the config may hold both instead).
        found = self.output_mode == "tf_idf" and "idf_weights" in store.keys()
        self._stored_idf = np.asarray(store["idf_weights"], np.float64).reshape(-1) if found else None

    def save_assets(self, dir_path: str) -> None:
        """Write an adapted vocabulary to ``vocabulary.txt`` (one token a line), where Keras keeps it; a
        vocabulary given to the constructor is in the config instead."""
        if self.input_vocabulary is not None:
            return
        with open(os.path.join(dir_path, "vocabulary.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(str(w) for w in self.get_vocabulary(include_special_tokens=True)))

    def load_assets(self, dir_path: str | None) -> None:
        """Read the vocabulary ``save_assets`` (here or in Keras) wrote; nothing when the config has one."""
        path = os.path.join(dir_path, "vocabulary.txt") if dir_path is not None else None
        if self.input_vocabulary is not None or path is None or not os.path.isfile(path):
            return
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        while lines and lines[-1] == "":
            lines.pop()
        try:
            values = lines if self._is_string else [int(line) for line in lines]
        except ValueError:
            raise ValueError(f"{type(self).__name__} {self.name!r}: vocabulary.txt holds a line that is not an "
                             "integer") from None
        idf = getattr(self, "_stored_idf", None) if self.output_mode == "tf_idf" else None
        if values:      # set_vocabulary leaves input_vocabulary None: the layer stays adapted, not given one
            self.set_vocabulary(values, idf_weights=idf)


class StringLookup(_IndexLookup):
    """Maps strings to indices of a vocabulary (Keras 3's ``StringLookup``); ``invert=True`` maps back.

    Index 0 is the OOV token ``"[UNK]"`` by default (with a ``mask_token``, 0 is the mask and 1 the OOV).

    Example:
        >>> from onnxforge.layers import Input, StringLookup
        >>> layer = StringLookup(vocabulary=["a", "b", "c"])
        >>> layer.get_vocabulary()
        ['[UNK]', 'a', 'b', 'c']
        >>> layer(Input(shape=(4,), dtype="string")).dtype
        'int64'
    """

    _is_string = True

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1, mask_token: Any = None,
                 oov_token: str = "[UNK]", vocabulary: Any = None, idf_weights: Any = None, invert: bool = False,
                 output_mode: str = "int", pad_to_max_tokens: bool = False, sparse: bool = False,
                 encoding: str = "utf-8", name: str | None = None, salt: Any = None, **kwargs: Any):
        kwargs.pop("vocabulary_dtype", None)
        self.encoding = encoding
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, "string", idf_weights,
                         invert, output_mode, sparse, pad_to_max_tokens, salt=salt, name=name, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("vocabulary_dtype")
        return {**config, "encoding": self.encoding}


class IntegerLookup(_IndexLookup):
    """Maps integers to indices of a vocabulary (Keras 3's ``IntegerLookup``); ``invert=True`` maps back.

    Example:
        >>> from onnxforge.layers import Input, IntegerLookup
        >>> IntegerLookup(vocabulary=[12, 36, 1138]).get_vocabulary()
        [-1, 12, 36, 1138]
    """

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1, mask_token: Any = None,
                 oov_token: int = -1, vocabulary: Any = None, vocabulary_dtype: str = "int64",
                 idf_weights: Any = None, invert: bool = False, output_mode: str = "int", sparse: bool = False,
                 pad_to_max_tokens: bool = False, oov_method: str = "floormod", salt: Any = None,
                 name: str | None = None, **kwargs: Any):
        if vocabulary_dtype != "int64":
            raise ValueError(f"`vocabulary_dtype` must be 'int64'. Received: vocabulary_dtype={vocabulary_dtype}")
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, vocabulary_dtype,
                         idf_weights, invert, output_mode, sparse, pad_to_max_tokens, oov_method=oov_method,
                         salt=salt, name=name, **kwargs)
