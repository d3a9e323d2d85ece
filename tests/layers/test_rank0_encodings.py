"""A scalar (rank-0) input to the lookups and ``CategoryEncoding``, compared with Keras 3 (torch backend) and
with TensorFlow's ``tf.data``: keras.io's "Structured data classification from scratch" encodes each row of a
``Dataset.map`` with ``IntegerLookup`` / ``StringLookup(output_mode="binary")``, so every call sees one scalar.
Keras reads a scalar as one example of one token: ``(depth,)`` for multi_hot / count, ``(1, depth)`` one-hot.
Before, onnxforge failed on the output shape (IndexError), and a string scalar (``np.str_``, what a string
column's rows are) recursed without end in the eager call. Values are compared, not dtypes (see
test_rank1_encodings)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import fkeras, keras


def _cases(mode):
    return [("StringLookup", {"vocabulary": ["a", "b"], "mask_token": None, "num_oov_indices": 0}, "b"),
            ("IntegerLookup", {"vocabulary": [3, 5, 7]}, 5),
            ("IntegerLookup", {"vocabulary": [3, 5, 7]}, 4),   # out of vocabulary
            ("CategoryEncoding", {"num_tokens": 4}, 2)]


@pytest.mark.parametrize("mode", ["one_hot", "multi_hot", "binary", "count"])
def test_scalar_input_encodings_match_keras(mode):
    for cls, kwargs, value in _cases(mode):
        if cls == "CategoryEncoding" and mode == "binary":
            continue   # the lookups' old name of multi_hot
        want = keras.ops.convert_to_numpy(getattr(keras.layers, cls)(output_mode=mode, **kwargs)(np.array(value)))
        scalar = np.str_(value) if isinstance(value, str) else np.int64(value)
        got = np.asarray(getattr(fkeras.layers, cls)(output_mode=mode, **kwargs)(scalar))
        assert got.shape == want.shape, (cls, value, got.shape, want.shape)
        np.testing.assert_allclose(got, want, err_msg=f"{cls} {value}")


def test_scalar_int_mode_stays_a_scalar():
    got = fkeras.layers.StringLookup(vocabulary=["a", "b"])(np.str_("b"))
    assert np.asarray(got).shape == () and int(got) == 2


def test_encoding_rows_inside_dataset_map_matches_tf_data():
    tf = pytest.importorskip("tensorflow")
    import onnxforge

    columns = {"a": np.array([3, 5, 7, 9]), "s": np.array(["a", "b", "a", "z"], dtype=object)}
    labels = np.array([0, 1, 0, 1])
    outs = []
    for api, data in ((keras, tf.data), (fkeras, onnxforge.data)):
        def encode(x, y, api=api):
            return {"a": api.layers.IntegerLookup(vocabulary=[3, 5, 7], output_mode="binary")(x["a"]),
                    "s": api.layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot")(x["s"])}, y

        ds = data.Dataset.from_tensor_slices((columns, labels)).map(encode).batch(3)
        outs.append([{k: np.asarray(v) for k, v in x.items()} for x, _ in ds])
    for want, got in zip(*outs):
        for key in want:
            assert got[key].shape == want[key].shape, key
            np.testing.assert_array_equal(got[key], want[key])


def test_a_lookup_made_per_row_compiles_once_and_unequal_ones_do_not_share():
    """A ``Dataset.map`` function builds new lookups for every row: equal ones reuse one compiled program
    (the from-scratch example took minutes compiling one per row); a different vocabulary, mode or adapted
    state is another program."""
    from onnxforge.tracing import eager_executor

    def lookup(vocabulary=("a", "b"), mode="multi_hot"):
        return fkeras.layers.StringLookup(vocabulary=list(vocabulary), output_mode=mode)

    lookup()(np.str_("a"))
    fkeras.layers.CategoryEncoding(num_tokens=3)(np.int64(1))
    before = eager_executor().compiled
    for word in ["a", "b", "z", "b"]:
        lookup()(np.str_(word))
        fkeras.layers.CategoryEncoding(num_tokens=3)(np.int64(2))
    assert eager_executor().compiled == before
    assert np.asarray(lookup(("b", "a"))(np.str_("a"))).tolist() == [0, 0, 1]
    assert np.asarray(lookup(mode="count")(np.array(["a", "a"]))).tolist() == [0, 2, 0]
    assert np.asarray(fkeras.layers.CategoryEncoding(num_tokens=4)(np.int64(2))).tolist() == [0, 0, 1, 0]
    adapted = fkeras.layers.StringLookup(output_mode="multi_hot")
    adapted.adapt(np.array(["q", "q", "r"]))
    assert np.asarray(adapted(np.str_("q"))).tolist() == [0, 1, 0]
    adapted.adapt(np.array(["r", "r", "q"]))
    assert np.asarray(adapted(np.str_("q"))).tolist() == [0, 0, 1]
