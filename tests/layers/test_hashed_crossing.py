"""HashedCrossing against Keras 3 (whose bins TensorFlow's ``tf.sparse.cross_hashed`` computes, on any backend):
integer crosses eagerly and compiled into ONNX, string and mixed crosses eagerly, both output modes; the
FarmHash fingerprints against ``tf.fingerprint``; Keras's input checks and the refusal of strings in a graph."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

import onnxforge.keras as fkeras  # noqa: E402
from onnxforge.layers import HashedCrossing  # noqa: E402
from onnxforge.layers.preprocessing.farmhash import fingerprint64  # noqa: E402
from tests.conftest import check_full  # noqa: E402

R = np.random.default_rng(3)
INTS_A = np.concatenate([[0, -1, 2**40, -(2**63), 2**63 - 1], R.integers(-1000, 1000, 45)]).astype(np.int64)
INTS_B = R.integers(-5, 50, 50).astype(np.int32)
WORDS = np.array(["", "A", "B", "héllo", "x" * 17, "y" * 40, "z" * 100] + [f"w{i}" for i in range(43)], dtype=object)


def _keras(num_bins, mode, columns):
    out = keras.layers.HashedCrossing(num_bins, output_mode=mode)(tuple(columns))
    return keras.ops.convert_to_numpy(out)


@pytest.mark.parametrize("mode", ["int", "one_hot"])
@pytest.mark.parametrize("trailing_one", [False, True])
def test_integer_crosses_match_keras_eagerly_and_compiled(mode, trailing_one):
    columns = [INTS_A, INTS_B] if not trailing_one else [INTS_A[:, None], INTS_B[:, None]]
    expected = _keras(13, mode, columns)
    eager = np.asarray(HashedCrossing(13, output_mode=mode)(tuple(columns)))
    np.testing.assert_array_equal(eager, expected)
    inputs = [fkeras.Input(c.shape[1:], dtype=str(c.dtype)) for c in columns]
    model = fkeras.Model(inputs, HashedCrossing(13, output_mode=mode)(inputs))
    compiled = model.predict(columns, verbose=0)
    for program in model.compiled_programs.values():
        check_full(program.model)
    np.testing.assert_array_equal(compiled, expected)
    assert compiled.dtype == expected.dtype


@pytest.mark.parametrize("mode", ["int", "one_hot"])
def test_string_and_mixed_crosses_match_keras(mode):
    for columns in ([WORDS, WORDS[::-1].copy()], [WORDS, INTS_A], [WORDS.astype(str), INTS_B, INTS_A]):
        expected = _keras(7, mode, columns)
        np.testing.assert_array_equal(np.asarray(HashedCrossing(7, output_mode=mode)(tuple(columns))), expected)


def test_three_integer_columns_compile_like_keras():
    inputs = [fkeras.Input((1,), dtype="int64") for _ in range(3)]
    model = fkeras.Model(inputs, HashedCrossing(1000)(inputs))
    columns = [INTS_A[:, None], INTS_B[:, None].astype(np.int64), INTS_A[::-1, None].copy()]
    np.testing.assert_array_equal(model.predict(columns, verbose=0), _keras(1000, "int", columns))


def test_a_scalar_pair_crosses_like_keras():
    for mode in ("int", "one_hot"):
        pair = (np.array("A"), np.array(101))
        expected = _keras(5, mode, pair)
        got = np.asarray(HashedCrossing(5, output_mode=mode)(pair))
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_fingerprint64_is_tensorflows_farmhash():
    strings = [""] + ["".join(chr(c) for c in R.integers(32, 0x2FFF, n)) for n in range(1, 200, 3)]
    expected = tf.fingerprint(tf.constant(strings), method="farmhash64").numpy()
    assert [fingerprint64(s) for s in strings] == [int.from_bytes(bytes(row), "little") for row in expected]


def test_strings_in_a_model_are_refused_before_onnxruntime():
    a, b = fkeras.Input((1,), dtype="string"), fkeras.Input((1,), dtype="int64")
    with pytest.raises(NotImplementedError, match="FarmHash"):
        HashedCrossing(4)((a, b))


def test_keras_input_checks():
    layer = HashedCrossing(4)
    with pytest.raises(ValueError, match="list or tuple"):
        layer(np.array([1, 2]))
    with pytest.raises(ValueError, match="at least two inputs"):
        layer((np.array([1]),))
    with pytest.raises(ValueError, match="integer or string dtype"):
        layer((np.array([1.0]), np.array([2.0])))
    with pytest.raises(ValueError, match=r"\(batch_size, 1\)"):
        layer((np.array([[1, 2]]), np.array([[1, 2]])))
    with pytest.raises(ValueError, match="equal shape"):
        layer((np.array([1, 2]), np.array([1, 2, 3])))
    with pytest.raises(ValueError, match="output_mode"):
        HashedCrossing(4, output_mode="multi_hot")
    for bad in (-1, None, 2.5, True):
        with pytest.raises(ValueError, match="num_bins"):
            HashedCrossing(bad)
    with pytest.raises(NotImplementedError, match="sparse"):
        HashedCrossing(4, output_mode="one_hot", sparse=True)


@pytest.mark.parametrize("mode", ["int", "one_hot"])
def test_config_matches_keras_and_round_trips(mode):
    ours, theirs = HashedCrossing(9, output_mode=mode, name="hc"), keras.layers.HashedCrossing(9, output_mode=mode,
                                                                                                  name="hc")
    assert ours.get_config() == theirs.get_config()
    again = HashedCrossing.from_config(ours.get_config())
    assert again.get_config() == ours.get_config()
