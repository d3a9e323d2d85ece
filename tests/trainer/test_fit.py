"""The Keras loops (fit / evaluate / predict) driven against a numpy fake of the batch runners."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from onnxforge.callbacks import Callback, History, TerminateOnNaN

from .fake import FakeModel, TwoOutputModel, ids, regression_data


# ----------------------------------------------------------------------------------------- batching
def test_batches_cover_every_sample_including_the_partial_last_batch():
    x, y = regression_data(10)
    model = FakeModel()
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    sizes = [len(b[0][0]) for b in model.train_batches]
    assert sizes == [4, 4, 2, 4, 4, 2]
    assert ids(model.train_batches[2]) == [8, 9]
    assert isinstance(history, History) and model.history is history
    assert history.epoch == [0, 1]
    assert history.params == {"verbose": 0, "epochs": 2, "steps": 3}
    assert list(history.history) == ["loss", "mae"]
    assert len(history.history["loss"]) == 2


def test_default_batch_size_is_32():
    x, y = regression_data(70)
    model = FakeModel()
    model.fit(x, y, verbose=0, shuffle=False)
    assert [len(b[0][0]) for b in model.train_batches] == [32, 32, 6]


def test_epoch_metrics_are_reduced_from_sums_not_averaged_batch_means():
    x, y = regression_data(10)
    model = FakeModel(lr=0.0)  # weights stay at zero: the loss of a sample is y**2
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    expected = float((y[:, 0] ** 2).mean())
    batch_means = np.mean([(y[s:s + 4, 0] ** 2).mean() for s in (0, 4, 8)])
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-12)
    assert abs(batch_means - expected) > 1.0  # the test can tell the two reductions apart


def test_fit_learns_the_fake_regression():
    x, y = regression_data(64, n_in=2)
    x[:, 0] /= 64  # keep SGD stable
    y = 0.5 * x[:, :1] + 1.0
    model = FakeModel(n_in=2, lr=0.2)
    history = model.fit(x, y, batch_size=8, epochs=30, verbose=0)
    assert history.history["loss"][-1] < 0.05 * history.history["loss"][0]


# ----------------------------------------------------------------------------------------- shuffle
def test_shuffle_true_permutes_every_epoch_differently():
    x, y = regression_data(40)
    model = FakeModel()
    np.random.seed(0)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=True)
    epoch1 = sum((ids(b) for b in model.train_batches[:5]), [])
    epoch2 = sum((ids(b) for b in model.train_batches[5:]), [])
    assert sorted(epoch1) == sorted(epoch2) == list(range(40))
    assert epoch1 != list(range(40)) and epoch1 != epoch2


def test_shuffle_false_keeps_order_and_batch_shuffles_within_chunks():
    x, y = regression_data(12)
    model = FakeModel()
    model.fit(x, y, batch_size=4, verbose=0, shuffle=False)
    assert sum((ids(b) for b in model.train_batches), []) == list(range(12))
    model = FakeModel()
    np.random.seed(1)
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle="batch")
    chunks = [ids(b) for b in model.train_batches]
    assert [sorted(c) for c in chunks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]] * 3
    assert any(c != sorted(c) for c in chunks)


# -------------------------------------------------------------------------------------- validation
def test_validation_split_holds_out_the_last_samples_before_shuffling():
    x, y = regression_data(10)
    model = FakeModel()
    history = model.fit(x, y, batch_size=3, epochs=2, validation_split=0.2, verbose=0, shuffle=True)
    trained = {i for b in model.train_batches for i in ids(b)}
    validated = [i for b in model.eval_batches for i in ids(b)]
    assert trained == set(range(8))
    assert validated == [8, 9, 8, 9]
    assert list(history.history) == ["loss", "mae", "val_loss", "val_mae"]
    assert history.params["steps"] == 3  # ceil(8 / 3)


def test_validation_split_also_splits_sample_weight():
    x, y = regression_data(10)
    sw = np.arange(10, dtype=np.float32)
    model = FakeModel()
    model.fit(x, y, sample_weight=sw, batch_size=10, validation_split=0.3, verbose=0, shuffle=False)
    assert model.train_batches[0][2].tolist() == list(range(7))
    assert model.eval_batches[0][2].tolist() == [7, 8, 9]


def test_validation_split_too_small_and_out_of_range():
    x, y = regression_data(1)
    with pytest.raises(ValueError, match="contains 1 samples, which is not sufficient to split"):
        FakeModel().fit(x, y, validation_split=0.5, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\). Received: validation_split=1.5"):
        FakeModel().fit(x, y, validation_split=1.5, verbose=0)


def test_validation_data_with_weights_and_batch_size_and_its_values():
    x, y = regression_data(8)
    xv, yv = regression_data(5, seed=1)
    swv = np.array([1, 0, 0, 0, 0], np.float32)
    model = FakeModel(lr=0.0)
    history = model.fit(x, y, batch_size=4, validation_data=(xv, yv, swv), validation_batch_size=2,
                        verbose=0)
    assert [len(b[0][0]) for b in model.eval_batches] == [2, 2, 1]
    # Only sample 0 counts: loss = y_0 ** 2 with zero weights.
    assert history.history["val_loss"] == [pytest.approx(float(yv[0, 0] ** 2))]


def test_validation_freq_int_and_list():
    x, y = regression_data(6)
    h = FakeModel().fit(x, y, epochs=4, validation_data=(x, y), validation_freq=2, verbose=0)
    assert len(h.history["loss"]) == 4 and len(h.history["val_loss"]) == 2
    model = FakeModel()
    model.fit(x, y, epochs=4, batch_size=6, validation_data=(x, y), validation_freq=[1, 4], verbose=0)
    assert len(model.eval_batches) == 2


def test_validation_steps_limits_validation_batches():
    x, y = regression_data(10)
    model = FakeModel()
    model.fit(x, y, batch_size=2, epochs=2, validation_data=(x, y), validation_steps=2, verbose=0)
    assert [ids(b) for b in model.eval_batches] == [[0, 1], [2, 3]] * 2



class _Passes:
    """A tf.data.Dataset-like re-iterable: each iter() starts a new pass over ``n`` batches."""

    def __init__(self, n: int):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield np.full((2, 1), i, np.float64), np.zeros((2, 1))


def test_reiterable_dataset_with_steps_reads_a_new_pass_when_one_ends():
    # Keras's epoch iterator: validation_steps / steps_per_epoch walk on through a dataset and start it again
    # once a pass ends (keras.io's "Training & evaluation" guide: a one-batch validation set, validation_steps=1).
    model = FakeModel()
    with pytest.warns(UserWarning, match="ran out of data after 1 of 2 steps"):
        history = model.fit(_Passes(3), epochs=3, steps_per_epoch=2, validation_data=_Passes(1),
                            validation_steps=1, verbose=0)
    assert [ids(b)[0] for b in model.train_batches] == [0, 1, 2, 0, 1]
    assert [ids(b)[0] for b in model.eval_batches] == [0, 0, 0]
    assert history.epoch == [0, 1, 2] and len(history.history["val_loss"]) == 3

def test_bad_validation_data():
    x, y = regression_data(4)
    with pytest.raises(ValueError, match="validation_data must be a tuple"):
        FakeModel().fit(x, y, validation_data=x, verbose=0)
    with pytest.raises(ValueError, match=r"validation_data\[0\]: 3 samples, validation_data\[1\]: 4"):
        FakeModel().fit(x, y, validation_data=(x[:3], y), verbose=0)


# ------------------------------------------------------------------------------- weights and classes
def test_class_weight_becomes_per_sample_weights():
    x = np.arange(6, dtype=np.float64)[:, None]
    labels = np.array([0, 1, 2, 1, 0, 2])
    model = FakeModel()
    model.fit(x, labels, class_weight={0: 1.0, 1: 5.0}, batch_size=6, shuffle=False, verbose=0)
    assert model.train_batches[0][2].tolist() == [1, 5, 1, 5, 1, 1]  # absent class 2 weighs 1
    onehot = np.eye(3)[labels]
    model = FakeModel(n_out=3)
    model.fit(x, onehot, class_weight={2: 0.5}, batch_size=6, shuffle=False, verbose=0)
    assert model.train_batches[0][2].tolist() == [1, 1, 0.5, 1, 1, 0.5]


def test_class_weight_errors():
    x, y = regression_data(4)
    with pytest.raises(ValueError, match="class_weight and sample_weight at the same time"):
        FakeModel().fit(x, y, class_weight={0: 1}, sample_weight=np.ones(4), verbose=0)
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        FakeModel().fit(x, y, class_weight=[1, 2], verbose=0)


def test_sample_weight_follows_its_samples_through_shuffling():
    x, y = regression_data(16)
    model = FakeModel()
    model.fit(x, y, sample_weight=np.arange(16) * 10.0, batch_size=5, verbose=0)
    for batch in model.train_batches:
        assert batch[2].tolist() == [10.0 * i for i in ids(batch)]


# ------------------------------------------------------------------------------------ steps, epochs
def test_steps_per_epoch_continues_through_the_data_across_epochs():
    # Keras 3's epoch iterator: epochs walk on through one pass; a pass that runs out ends its epoch early
    # (with a warning) and the next epoch starts a new pass (keras.io's callbacks guide: steps_per_epoch=5).
    x, y = regression_data(10)
    model = FakeModel()
    with pytest.warns(UserWarning, match="ran out of data after 1 of 2 steps"):
        history = model.fit(x, y, batch_size=4, epochs=3, steps_per_epoch=2, shuffle=False, verbose=0)
    assert [ids(b) for b in model.train_batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [0, 1, 2, 3], [4, 5, 6, 7]]
    assert history.params["steps"] == 2


def test_initial_epoch_resumes_numbering():
    x, y = regression_data(4)
    seen = []
    cb = type("Rec", (Callback,), {"on_epoch_begin": lambda self, e, logs=None: seen.append(e)})()
    history = FakeModel().fit(x, y, epochs=3, initial_epoch=1, callbacks=[cb], verbose=0)
    assert seen == [1, 2] and history.epoch == [1, 2]


def test_stop_training_from_a_callback_ends_after_the_current_batch():
    x, y = regression_data(20)

    class StopAt(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    model = FakeModel()
    history = model.fit(x, y, batch_size=4, epochs=5, callbacks=[StopAt()], verbose=0)
    assert len(model.train_batches) == 2 and history.epoch == [0]


# ------------------------------------------------------------------------------------ input kinds
def test_dict_and_list_inputs_follow_input_names():
    a = np.arange(6, dtype=np.float64)[:, None]
    b = 100 + np.arange(6, dtype=np.float64)[:, None]
    y = np.zeros((6, 1))
    model = FakeModel(n_in=2, input_names=["a", "b"])
    model.fit({"b": b, "a": a}, y, batch_size=6, shuffle=False, verbose=0)
    xs = model.train_batches[0][0]
    assert [arr[0, 0] for arr in xs] == [0, 100]
    model.fit([a, b], {"y": y}, batch_size=6, shuffle=False, verbose=0)
    assert model.train_batches[1][0][1][0, 0] == 100
    with pytest.raises(ValueError, match=r"without the key\(s\) \['b'\]"):
        model.fit({"a": a}, y, verbose=0)
    with pytest.raises(ValueError, match=r"the model has 2 inputs \['a', 'b'\], but x holds 3 arrays"):
        model.fit([a, b, a], y, verbose=0)


def test_python_lists_are_converted():
    model = FakeModel(n_in=2)
    model.fit([[0, 1], [2, 3], [4, 5]], [1, 2, 3], batch_size=2, shuffle=False, verbose=0)
    assert model.train_batches[0][0][0].shape == (2, 2)
    assert model.train_batches[0][1][0].tolist() == [1, 2]


def test_generator_and_pydataset_inputs():
    def gen():
        for i in range(5):
            yield np.full((2, 1), i, np.float64), np.zeros((2, 1))

    model = FakeModel()
    history = model.fit(gen(), epochs=2, steps_per_epoch=2, verbose=0)
    assert [ids(b) for b in model.train_batches] == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert history.epoch == [0, 1]

    class Batches:  # keras.utils.PyDataset-like
        epochs_ended = 0

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full((4, 1), i, np.float64), np.zeros((4, 1)), np.ones(4)

        def on_epoch_end(self):
            self.epochs_ended += 1

    data = Batches()
    model = FakeModel()
    history = model.fit(data, epochs=2, verbose=0)
    assert len(model.train_batches) == 6 and data.epochs_ended == 2
    assert history.params["steps"] == 3
    with pytest.raises(ValueError, match="y argument is not supported when x is a dataset"):
        model.fit(data, np.zeros(3), verbose=0)


def test_generator_running_out_warns_and_stops():
    def gen():
        for i in range(3):
            yield np.full((2, 1), i, np.float64), np.zeros((2, 1))

    model = FakeModel()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(gen(), epochs=5, steps_per_epoch=2, verbose=0)
    assert len(model.train_batches) == 3 and history.epoch == [0, 1]


# ----------------------------------------------------------------------------------------- errors
def test_fit_before_compile_names_compile_and_the_method():
    x, y = regression_data(4)
    with pytest.raises(RuntimeError, match=r"You must call compile\(\) before fit\(\)"):
        FakeModel(compiled=False).fit(x, y)
    with pytest.raises(RuntimeError, match=r"compile\(\) before evaluate\(\)"):
        FakeModel(compiled=False).evaluate(x, y)


def test_mismatched_sample_counts_name_arrays_and_counts():
    x, y = regression_data(10)
    with pytest.raises(ValueError, match="x: 10 samples, y: 9 samples"):
        FakeModel().fit(x, y[:9], verbose=0)
    with pytest.raises(ValueError, match="sample_weight: 3 samples"):
        FakeModel().fit(x, y, sample_weight=np.ones(3), verbose=0)
    model = FakeModel(n_in=2, input_names=["a", "b"])
    with pytest.raises(ValueError, match=r"x\['a'\]: 10 samples, x\['b'\]: 4 samples"):
        model.fit({"a": x, "b": x[:4]}, y, verbose=0)


def test_missing_or_wrong_arguments():
    x, y = regression_data(4)
    with pytest.raises(ValueError, match="x is required.*Received: x=None"):
        FakeModel().fit(None, y)
    with pytest.raises(ValueError, match="y .*required.*Received: y=None"):
        FakeModel().fit(x)
    with pytest.raises(TypeError, match="x must be a numpy array.*Received: x='abc'"):
        FakeModel().fit("abc", y)
    with pytest.raises(TypeError, match="must hold numbers"):
        FakeModel().fit(np.array(["a", "b"]), y[:2])
    with pytest.raises(ValueError, match="batch_size must be a positive integer. Received: batch_size=0"):
        FakeModel().fit(x, y, batch_size=0)
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto'. Received: verbose=3"):
        FakeModel().fit(x, y, verbose=3)
    with pytest.raises(ValueError, match="shuffle must be"):
        FakeModel().fit(x, y, shuffle="yes")
    with pytest.raises(TypeError, match="callbacks must be a list"):
        FakeModel().fit(x, y, callbacks=print, verbose=0)


# -------------------------------------------------------------------------------------------- NaN
def test_nan_loss_without_terminate_warns_once_and_continues():
    x, y = regression_data(8)
    model = FakeModel(nan_after=1)
    with pytest.warns(RuntimeWarning, match="loss became nan at epoch 1, batch 1.*TerminateOnNaN") as record:
        history = model.fit(x, y, batch_size=2, epochs=2, verbose=0)
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
    assert len(model.train_batches) == 8 and np.isnan(history.history["loss"][-1])


def test_nan_loss_with_terminate_on_nan_stops(capsys):
    x, y = regression_data(8)
    model = FakeModel(nan_after=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = model.fit(x, y, batch_size=2, epochs=3, callbacks=[TerminateOnNaN()], verbose=0)
    assert len(model.train_batches) == 2 and history.epoch == [0]
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out


# --------------------------------------------------------------------------------------- evaluate
def test_evaluate_returns_list_scalar_or_dict_reduced_from_sums():
    x, y = regression_data(10)
    model = FakeModel()
    model.w[:] = 0.5
    loss, mae = model.evaluate(x, y, batch_size=4, verbose=0)
    err = 0.5 * x[:, 0] - y[:, 0]
    assert loss == pytest.approx(float((err ** 2).mean())) and mae == pytest.approx(float(np.abs(err).mean()))
    assert [len(b[0][0]) for b in model.eval_batches] == [4, 4, 2]
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {"loss": loss, "mae": mae}
    sw = np.r_[np.ones(5), np.zeros(5)]
    assert model.evaluate(x, y, sample_weight=sw, verbose=0)[0] == pytest.approx(float((err[:5] ** 2).mean()))


def test_evaluate_single_metric_is_a_scalar_and_steps_limit():
    class LossOnly(FakeModel):
        def _metric_results(self, sums, final=False):
            return {"loss": sums["loss_sum"] / sums["weight_sum"]}

    x, y = regression_data(10)
    model = LossOnly()
    assert isinstance(model.evaluate(x, y, verbose=0), float)
    model.evaluate(x, y, batch_size=2, steps=3, verbose=0)
    assert len(model.eval_batches) == 1 + 3


def test_evaluate_on_a_generator_of_batches():
    batches = [(np.ones((3, 1)), np.ones((3, 1))), (np.zeros((1, 1)), np.ones((1, 1)))]
    model = FakeModel()
    result = model.evaluate(iter(batches), verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(1.0)
    assert [len(b[0][0]) for b in model.eval_batches] == [3, 1]


# ---------------------------------------------------------------------------------------- predict
def test_predict_concatenates_batches_including_the_last_partial_one():
    x, _ = regression_data(10)
    model = FakeModel()
    model.w[:] = 2.0
    out = model.predict(x, batch_size=4, verbose=0)
    assert out.shape == (10, 1)
    np.testing.assert_allclose(out[:, 0], 2 * x[:, 0])
    assert [len(b[0]) for b in model.predict_batches] == [4, 4, 2]
    assert model.predict(x, batch_size=3, steps=2, verbose=0).shape == (6, 1)


def test_predict_multi_output_returns_a_list_and_works_uncompiled():
    x, _ = regression_data(5)
    model = TwoOutputModel(compiled=False)
    model.w[:] = 1.0
    first, second = model.predict(x, batch_size=2, verbose=0)
    np.testing.assert_allclose(second, 2 * first)
    assert first.shape == (5, 1)


def test_predict_errors_and_generators():
    model = FakeModel()
    with pytest.raises(ValueError, match="predict\\(\\): x is required"):
        model.predict(None)
    out = model.predict((np.full((2, 1), i, np.float64) for i in range(3)), verbose=0)
    assert out.shape == (6, 1)


def test_per_output_sample_weights_as_dict_or_list_follow_their_samples():
    class TwoTargets(FakeModel):
        def _train_batch(self, xs, ys, sample_weight):
            self.train_batches.append((xs, ys, sample_weight))
            return {"loss_sum": 0.0, "weight_sum": 1.0, "abs_sum": 0.0, "count": 1.0}

    x, y = regression_data(6)
    model = TwoTargets(output_names=["a", "b"])
    model.fit(x, [y, y], sample_weight={"b": np.arange(6.0)}, batch_size=4, verbose=0)
    for xs, ys, sw in model.train_batches:
        assert sw[0] is None and sw[1].tolist() == [float(i) for i in ids((xs,))]
    model.fit(x, [y, y], sample_weight=[np.ones(6), 2 * np.ones(6)], batch_size=6, verbose=0)
    assert [w.tolist() for w in model.train_batches[-1][2]] == [[1.0] * 6, [2.0] * 6]
    with pytest.raises(ValueError, match=r"sample_weight\['a'\]: 5 samples"):
        model.fit(x, [y, y], sample_weight={"a": np.ones(5)}, verbose=0)
    with pytest.raises(ValueError, match=r"key\(s\) \['c'\] that are not output names"):
        model.fit(x, [y, y], sample_weight={"c": np.ones(6)}, verbose=0)
    with pytest.raises(ValueError, match="class_weight is only supported for models with a single output"):
        model.fit(x, [y, y], class_weight={0: 2.0}, verbose=0)


def test_a_generator_used_up_by_the_last_epoch_does_not_warn():
    def gen():
        for i in range(4):
            yield np.full((2, 1), i, np.float64), np.zeros((2, 1))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = FakeModel().fit(gen(), epochs=2, steps_per_epoch=2, verbose=0)
        assert history.epoch == [0, 1]
        history = FakeModel().fit(gen(), epochs=1, verbose=0)
        assert history.params["steps"] is None and history.epoch == [0]
    with pytest.raises(ValueError, match="validation_split is only supported for arrays"):
        FakeModel().fit(gen(), validation_split=0.5, verbose=0)
