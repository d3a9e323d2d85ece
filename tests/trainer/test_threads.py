"""predict / evaluate from several threads on one model (issue 11): the runners share IOBindings and a run
counter, so concurrent calls must not see each other's batches."""
from __future__ import annotations

import threading

import numpy as np

import onnxforge as tf

L = tf.keras.layers


def test_predict_and_evaluate_from_eight_threads_give_each_its_own_answer():
    tf.layers.clear_session()
    tf.initializers.set_random_seed(3)
    model = tf.keras.Sequential([L.Input((6,)), L.Dense(32, activation="relu"), L.Dense(3)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"], device="cpu")
    rng = np.random.default_rng(0)
    # Different sizes per thread: a binding left holding another thread's batch gives wrong shapes too.
    data = [(rng.normal(size=(5 + 7 * k, 6)).astype(np.float32), rng.normal(size=(5 + 7 * k, 3)).astype(np.float32))
            for k in range(8)]
    expected_pred = [model.predict(x, batch_size=4, verbose=0) for x, _ in data]
    expected_eval = [model.evaluate(x, y, batch_size=4, verbose=0) for x, y in data]

    failures: list[str] = []
    start = threading.Barrier(8)

    def work(k: int) -> None:
        x, y = data[k]
        start.wait()
        try:
            for _ in range(15):
                got = model.predict(x, batch_size=4, verbose=0)
                if not np.array_equal(got, expected_pred[k]):
                    failures.append(f"thread {k}: predict differs")
                if model.evaluate(x, y, batch_size=4, verbose=0) != expected_eval[k]:
                    failures.append(f"thread {k}: evaluate differs")
        except Exception as e:  # noqa: BLE001 - any failure in a thread is the finding
            failures.append(f"thread {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures[:5]


def test_first_predict_from_many_threads_builds_the_programs_once():
    tf.layers.clear_session()
    model = tf.keras.Sequential([L.Input((4,)), L.Dense(2)])
    x = np.ones((3, 4), np.float32)
    results: list = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        results.append(model.predict(x, verbose=0))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 8 and all(np.array_equal(r, results[0]) for r in results)
    assert model.compiled_programs["infer"] is model.compiled_programs["infer"]
