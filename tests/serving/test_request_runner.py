"""ModelRunner's request checks: a JSON value is checked (shape, leaf types, range, bytes) before numpy
builds anything, so a small body cannot make the server allocate gigabytes."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from onnxforge.serving import ModelRunner, RequestError
from tests.serving import models


def runner(model, **kw) -> ModelRunner:
    return ModelRunner(model, providers=["CPUExecutionProvider"], **kw)


def peak_bytes(fn) -> int:
    """The most bytes allocated at once while ``fn`` ran (numpy's buffers included)."""
    tracemalloc.start()
    try:
        fn()
    except RequestError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_strings_for_a_numeric_input_are_refused_before_numpy_pads_them():
    # One long string and many empty ones: numpy pads every entry to the longest (2000 x 4 bytes each), so
    # np.asarray alone would take 6000 x 8000 = 48 MB for this ~30 KB request.
    r = runner(models.matmul_relu())
    rows = [["x" * 2000, "", ""]] + [["", "", ""]] * 1999
    with pytest.raises(RequestError, match=r"Input 'x' expects float32 values; received string values"):
        r.parse_request({"inputs": {"x": rows}})
    assert peak_bytes(lambda: r.parse_request({"inputs": {"x": rows}})) < 8 * 2**20


def test_string_inputs_are_bounded_by_count_times_longest():
    r = runner(models.strings(), max_input_bytes=2**20)
    feeds = r.parse_request({"inputs": {"s": [["a", "bc", ""]]}})
    assert feeds["s"].dtype.kind == "U" and feeds["s"].tolist() == [["a", "bc", ""]]
    assert r.run(feeds)["y"].tolist() == [["a", "bc", ""]]
    rows = [["x" * 2000, "", ""]] + [["", "", ""]] * 1999
    with pytest.raises(RequestError, match=r"Input 's' would take 48000000 bytes as strings \(6000 values padded to the longest.*"
                                           r"only 1048576 more bytes \(max_input_bytes\)"):
        r.parse_request({"inputs": {"s": rows}})
    assert peak_bytes(lambda: r.parse_request({"inputs": {"s": rows}})) < 8 * 2**20


def test_all_inputs_of_a_request_share_the_byte_limit():
    r = runner(models.two_inputs(), max_input_bytes=100)
    ok = {"x": [[1, 2, 3]] * 5, "scale": [[1]] * 5, "ids": [0] * 5}   # 60 + 20 + 40 bytes
    with pytest.raises(RequestError, match=r"Input 'ids' would take 40 bytes as int64.*only 20 more bytes"):
        r.parse_request({"inputs": ok})
    assert runner(models.two_inputs(), max_input_bytes=120).parse_request({"inputs": ok})["ids"].dtype == np.int64
    with pytest.raises(ValueError, match="max_input_bytes must be a positive int"):
        runner(models.two_inputs(), max_input_bytes=0)


@pytest.mark.parametrize("x, ids, fragments", [
    ([[1, 2, None]], [0], ["Input 'x' expects float32 values; received null values"]),
    ([[1, 2, True]], [0], ["Input 'x' expects float32 values; received bool values"]),
    ([[1, 2, {"a": 1}]], [0], ["Input 'x' expects float32 values; received object values"]),
    ([[1, 2, 3]], [1.0], ["Input 'ids' expects int64 values; received float values"]),
    ([[1, 2, 3], [4, [5], 6]], [0, 1], ["Input 'x' is not a rectangular", "mixed at depth 2"]),
    ([[1, 2, 3], [4, 5]], [0, 1], ["Input 'x' is not a rectangular", "lengths [2, 3]"]),
    ([[1, 2, 10**400]], [0], ["Input 'x' has values beyond the float32 range"]),
    ([[1, 2, 1e39]], [0], ["Input 'x' has values beyond the float32 range"]),
    ([[1, 2, 3]], [-2**63 - 1], ["Input 'ids' expects int64 values in", "too small"]),
])
def test_leaf_types_and_ranges_are_checked_on_the_json(x, ids, fragments):
    r = runner(models.two_inputs())
    with pytest.raises(RequestError) as info:
        r.parse_request({"inputs": {"x": x, "scale": [[1]] * len(x), "ids": ids}})
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_good_values_become_the_same_arrays_numpy_would_build():
    r = runner(models.two_inputs())
    x = [[1, 2.5, float("nan")], [-0.1, 3, 1e30]]
    feeds = r.parse_request({"inputs": {"x": x, "scale": [[1], [2]], "ids": [0, 2**62]}})
    np.testing.assert_array_equal(feeds["x"], np.asarray(x).astype(np.float32))
    assert feeds["ids"].tolist() == [0, 2**62] and feeds["ids"].dtype == np.int64
    assert r.parse_request({"inputs": {"x": np.zeros((2, 3)), "scale": [[1], [2]], "ids": [0, 1]}})["x"].shape == (2, 3)
    with pytest.raises(RequestError, match=r"expects shape \[N, 3\].*received shape \[2, 0\]"):
        r.parse_request({"inputs": {"x": [[], []], "scale": [[1], [2]], "ids": [0, 1]}})
