"""``compile(steps_per_execution=N)``: sums read back every N steps (Keras's callback cadence), the same
training as N=1; batches given as ``OrtValue``s train like host arrays."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import onnxforge as of


def _model(steps_per_execution: int = 1):
    model = of.keras.Sequential([of.keras.Input((4,)), of.keras.layers.Dense(8, activation="relu"),
                                 of.keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=of.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], steps_per_execution=steps_per_execution, device="cpu")
    return model


def _data(n: int = 28):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


class _Events(of.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events: list[tuple[str, int]] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("end", batch))


def test_deferred_sums_train_and_report_like_one_step_per_execution():
    x, y = _data()
    one, three = _model(1), _model(3)
    three.set_weights(one.get_weights())
    events = _Events()
    h1 = one.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    h3 = three.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[events])
    for a, b in zip(one.get_weights(), three.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert h1.history == h3.history
    # 7 steps per epoch: executions 0-2, 3-5 and the shorter 6 (Keras: begin at the first step, end at the last)
    assert events.events == [("begin", 0), ("end", 2), ("begin", 3), ("end", 5), ("begin", 6), ("end", 6)] * 2


def test_deferred_steps_leave_outputs_on_the_device_between_reads(monkeypatch):
    x, y = _data(16)
    model = _model(4)
    model.fit(x[:4], y[:4], batch_size=4, verbose=0)
    from onnxforge.runtime import ProgramRunner

    calls = []
    real = ProgramRunner.run

    def spy(self, feeds, learning_rate=None, fetch=True):
        out = real(self, feeds, learning_rate, fetch)
        calls.append((self.name, fetch, [type(v).__name__ for v in out]))
        return out
    monkeypatch.setattr(ProgramRunner, "run", spy)
    model.fit(x, y, batch_size=4, verbose=0)
    steps = [c for c in calls if c[0] == "train_step"]
    assert [fetch for _, fetch, _ in steps] == [False] * 4
    assert all(kinds and all(k == "OrtValue" for k in kinds) for _, _, kinds in steps)


def test_train_on_batch_takes_ortvalues_like_arrays():
    x, y = _data(8)
    a, b = _model(), _model()
    b.set_weights(a.get_weights())
    on_host = a.train_on_batch(x, y, return_dict=True)
    on_device = b.train_on_batch(ort.OrtValue.ortvalue_from_numpy(x), ort.OrtValue.ortvalue_from_numpy(y.astype(np.int64)),
                                 return_dict=True)
    assert on_host == pytest.approx(on_device)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


def test_ortvalue_batches_are_checked_without_a_copy():
    x, y = _data(8)
    model = _model()
    with pytest.raises(TypeError, match=r'Input 0 \("input_layer.*dtype float32.*tensor\(double\)'):
        model.train_on_batch(ort.OrtValue.ortvalue_from_numpy(x.astype(np.float64)), y)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 4\), found shape=\(8, 5\)"):
        model.train_on_batch(ort.OrtValue.ortvalue_from_numpy(np.zeros((8, 5), np.float32)), y)
    with pytest.raises(TypeError, match=r"y must be an OrtValue of dtype int64"):
        model.train_on_batch(x, ort.OrtValue.ortvalue_from_numpy(y.astype(np.int32)))
    with pytest.raises(ValueError, match="sample_weight and class_weight need host arrays"):
        model.train_on_batch(ort.OrtValue.ortvalue_from_numpy(x), y, sample_weight=np.ones(8))


def test_fit_on_a_dataset_of_ortvalue_batches_matches_host_arrays():
    x, y = _data(16)
    a, b = _model(2), _model(2)
    b.set_weights(a.get_weights())
    on_device = [(ort.OrtValue.ortvalue_from_numpy(x[i:i + 4]), ort.OrtValue.ortvalue_from_numpy(y[i:i + 4]))
                 for i in range(0, 16, 4)]
    h_host = a.fit(x, y, batch_size=4, shuffle=False, verbose=0, epochs=2)
    class Batches:  # PyDataset-like: len() batches, indexed
        def __len__(self):
            return len(on_device)

        def __getitem__(self, i):
            return on_device[i]
    h_dev = b.fit(Batches(), verbose=0, epochs=2, shuffle=False)  # Keras shuffles a PyDataset's batch order
    for key, values in h_host.history.items():
        assert values == pytest.approx(h_dev.history[key], rel=1e-6), key
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


def test_an_unbuilt_model_builds_from_an_ortvalue_batch():
    x, y = _data(8)
    model = of.keras.Sequential([of.keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    loss = model.train_on_batch(ort.OrtValue.ortvalue_from_numpy(x), ort.OrtValue.ortvalue_from_numpy(np.zeros((8, 3), np.float32)))
    assert np.isfinite(loss) and model.get_weights()[0].shape == (4, 3)
