"""Batcher: concurrent requests merge into one run, results split back right, failures stay isolated."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from onnxforge.serving import Batcher


def double(feeds):
    return {"y": feeds["x"] * 2.0, "rowsum": feeds["x"].sum(axis=1)}


def submit_all(batcher, requests, timeout=10):
    with ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(batcher.submit, r, timeout) for r in requests]
        return [f.result(timeout=timeout) for f in futures]


def test_concurrent_requests_share_one_run_and_get_their_own_rows():
    calls = []

    def run(feeds):
        calls.append(feeds["x"].shape[0])
        return double(feeds)

    # max_batch equals the total rows, so the run fires as soon as the last request arrives; the
    # generous timeout only matters on a very slow machine.
    rng = np.random.default_rng(0)
    requests = [{"x": rng.normal(size=(rows, 3))} for rows in (1, 2, 3, 2)]
    b = Batcher(run, max_batch=8, timeout_s=5.0)
    try:
        results = submit_all(b, requests)
    finally:
        b.close()
    assert calls == [8]
    assert b.stats == {"requests": 4, "runs": 1, "max_requests_per_run": 4}
    for req, res in zip(requests, results):
        np.testing.assert_array_equal(res["y"], req["x"] * 2)
        np.testing.assert_array_equal(res["rowsum"], req["x"].sum(axis=1))


def test_max_batch_splits_runs_and_big_requests_run_alone():
    calls = []

    def run(feeds):
        calls.append(feeds["x"].shape[0])
        return double(feeds)

    b = Batcher(run, max_batch=4, timeout_s=0.2)
    try:
        results = submit_all(b, [{"x": np.full((3, 2), float(i))} for i in range(4)] + [{"x": np.ones((9, 2))}])
    finally:
        b.close()
    # Two 3-row requests exceed max_batch=4, so none merge; the 9-row request runs whole.
    assert sorted(calls) == [3, 3, 3, 3, 9]
    for i, res in enumerate(results[:4]):
        np.testing.assert_array_equal(res["y"], np.full((3, 2), 2.0 * i))


def test_incompatible_trailing_shapes_run_in_separate_groups():
    seen = []

    def run(feeds):
        seen.append(feeds["x"].shape)
        return {"y": feeds["x"] + 1}

    b = Batcher(run, max_batch=16, timeout_s=5.0)
    try:
        # 4 + 4 + 8 rows = max_batch: all collected together, then split into two shape groups.
        results = submit_all(b, [{"x": np.zeros((4, 2))}, {"x": np.zeros((4, 5))}, {"x": np.ones((8, 2))}])
    finally:
        b.close()
    assert sorted(seen) == [(4, 5), (12, 2)]
    assert results[1]["y"].shape == (4, 5) and np.all(results[2]["y"] == 2)


def test_a_failing_request_does_not_fail_its_batch_mates():
    def run(feeds):
        if (feeds["x"] < 0).any():
            raise RuntimeError("negative input")
        return {"y": np.sqrt(feeds["x"])}

    b = Batcher(run, max_batch=6, timeout_s=5.0)
    requests = [{"x": np.full((2, 1), 4.0)}, {"x": np.full((2, 1), -1.0)}, {"x": np.full((2, 1), 9.0)}]
    try:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(b.submit, r, 10) for r in requests]
            assert np.all(futures[0].result(timeout=10)["y"] == 2)
            with pytest.raises(RuntimeError, match="negative input"):
                futures[1].result(timeout=10)
            assert np.all(futures[2].result(timeout=10)["y"] == 3)
    finally:
        b.close()


def test_outputs_without_the_batch_axis_are_refused_then_run_alone():
    # A run whose output does not keep one row per input row cannot be split: each request runs alone.
    b = Batcher(lambda f: {"total": f["x"].sum(keepdims=True)[0]}, max_batch=4, timeout_s=5.0)
    try:
        results = submit_all(b, [{"x": np.ones((2, 1))}, {"x": np.ones((2, 1)) * 3}])
    finally:
        b.close()
    assert [r["total"].tolist() for r in results] == [[2.0], [6.0]]
    assert b.stats["runs"] == 2


def test_close_finishes_queued_work_then_refuses():
    gate = threading.Event()

    def run(feeds):
        gate.wait(10)
        return {"y": feeds["x"]}

    b = Batcher(run, max_batch=1, timeout_s=0.0)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(b.submit, {"x": np.full((1, 1), float(i))}, 10) for i in range(3)]
        deadline = time.monotonic() + 10
        while b._queue.qsize() < 2 and time.monotonic() < deadline:  # one running, two queued
            time.sleep(0.005)
        closer = threading.Thread(target=b.close)
        closer.start()
        gate.set()
        assert [f.result(timeout=10)["y"].item() for f in futures] == [0.0, 1.0, 2.0]
        closer.join(10)
    assert not closer.is_alive()
    with pytest.raises(RuntimeError, match="shut down"):
        b.submit({"x": np.ones((1, 1))})


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: max_batch=0"):
        Batcher(double, max_batch=0)
    with pytest.raises(ValueError, match="Received: timeout_s=-1"):
        Batcher(double, timeout_s=-1)
