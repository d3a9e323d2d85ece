"""Callbacks and the progress bar, driven by the Keras loops over the numpy fake model."""
from __future__ import annotations

import csv
import io
import os
import re

import numpy as np
import pytest

from onnxforge.callbacks import (_HOOKS, Callback, CallbackList, CSVLogger, EarlyStopping, History, LambdaCallback,
                                 LearningRateScheduler, ModelCheckpoint, ProgbarLogger, ReduceLROnPlateau,
                                 TerminateOnNaN)
from onnxforge.utils.progbar import Progbar, format_value

from .trainer.fake import FakeModel, regression_data


class Recorder(Callback):
    """Records (hook, step or epoch, sorted log keys) for every hook call."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []


def _recording(name):
    def hook(self, *args, logs=None):
        step = args[0] if args and isinstance(args[0], int) else None
        logs = args[-1] if args and isinstance(args[-1], dict) else logs
        self.calls.append((name, step, sorted(logs) if isinstance(logs, dict) else None))

    return hook


for _name in _HOOKS:
    setattr(Recorder, _name, _recording(_name))


class ScriptedModel(FakeModel):
    """A fake whose epoch losses follow a script (one batch per epoch), and whose weights mark the epoch."""

    def __init__(self, losses, **kw):
        super().__init__(**kw)
        self.script = list(losses)

    def _train_batch(self, xs, ys, sample_weight):
        epoch = len(self.train_batches)
        super()._train_batch(xs, ys, sample_weight)
        self.w = np.full_like(self.w, epoch)  # weights remember which epoch produced them
        return {"loss_sum": self.script[epoch] * len(xs[0]), "weight_sum": float(len(xs[0])),
                "abs_sum": 0.0, "count": float(len(xs[0]))}


def _fit_script(losses, callbacks, **kw):
    x, y = regression_data(4)
    model = ScriptedModel(losses)
    history = model.fit(x, y, batch_size=4, epochs=len(losses), callbacks=callbacks, verbose=0, **kw)
    return model, history


# --------------------------------------------------------------------------------------- hook order
def test_hooks_are_called_in_keras_order_with_logs():
    x, y = regression_data(4)
    rec = Recorder()
    FakeModel().fit(x, y, batch_size=3, epochs=2, validation_data=(x, y), callbacks=[rec], verbose=0)
    names = [c[0] for c in rec.calls]
    epoch = (["on_epoch_begin"] + ["on_train_batch_begin", "on_train_batch_end"] * 2
             + ["on_test_begin"] + ["on_test_batch_begin", "on_test_batch_end"] * 2 + ["on_test_end", "on_epoch_end"])
    assert names == ["on_train_begin"] + epoch * 2 + ["on_train_end"]
    epoch_end = [c for c in rec.calls if c[0] == "on_epoch_end"]
    assert [c[1] for c in epoch_end] == [0, 1]
    assert epoch_end[0][2] == ["loss", "mae", "val_loss", "val_mae"]
    batch_end = [c for c in rec.calls if c[0] == "on_train_batch_end"]
    assert [c[1] for c in batch_end] == [0, 1, 0, 1] and batch_end[0][2] == ["loss", "mae"]


def test_evaluate_and_predict_hooks():
    x, y = regression_data(5)
    rec = Recorder()
    model = FakeModel()
    model.evaluate(x, y, batch_size=5, callbacks=[rec], verbose=0)
    model.predict(x, batch_size=5, callbacks=[rec], verbose=0)
    assert [c[0] for c in rec.calls] == [
        "on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end",
        "on_predict_begin", "on_predict_batch_begin", "on_predict_batch_end", "on_predict_end"]
    assert rec.calls[3][2] == ["loss", "mae"] and rec.calls[6][2] == ["outputs"]


def test_callback_list_defaults_and_type_check():
    cbs = CallbackList([TerminateOnNaN()], add_history=True, add_progbar=True, epochs=1, steps=1, verbose=1)
    assert [type(c).__name__ for c in cbs.callbacks] == ["TerminateOnNaN", "History", "ProgbarLogger"]
    assert all(c.params == {"epochs": 1, "steps": 1, "verbose": 1} for c in cbs.callbacks)
    mine = History()
    assert CallbackList([mine], add_history=True).history is mine
    with pytest.raises(TypeError, match="Callback instances"):
        CallbackList([lambda: None])


def test_lambda_callback_and_legacy_batch_aliases():
    x, y = regression_data(6)
    seen = []
    cb = LambdaCallback(on_epoch_end=lambda e, logs: seen.append(("epoch", e, round(logs["loss"], 6))),
                        on_batch_end=lambda b, logs: seen.append(("batch", b)),
                        on_train_end=lambda logs: seen.append("end"))
    FakeModel(lr=0.0).fit(x, y, batch_size=4, epochs=1, callbacks=[cb], verbose=0)
    assert seen == [("batch", 0), ("batch", 1), ("epoch", 0, round(float((y ** 2).mean()), 6)), "end"]
    with pytest.raises(TypeError, match="unknown hook 'on_tea_end'"):
        LambdaCallback(on_tea_end=print)


# ----------------------------------------------------------------------------------- EarlyStopping
def test_early_stopping_patience():
    stop = EarlyStopping(monitor="loss", patience=2, verbose=1)
    model, history = _fit_script([1.0, 0.5, 0.6, 0.55, 0.4, 0.3], [stop])
    assert history.epoch == [0, 1, 2, 3]  # no improvement at epochs 2 and 3 -> stop after 3
    assert stop.stopped_epoch == 3 and stop.best == 0.5 and stop.best_epoch == 1


def test_early_stopping_restores_best_weights():
    stop = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    model, history = _fit_script([1.0, 0.2, 0.7, 0.9, 0.1], [stop])
    assert history.epoch == [0, 1, 2]
    assert np.all(model.w == 1)  # weights after epoch 1, the best, not epoch 2's
    # Without early stopping, restore_best_weights still restores at the end (Keras 3).
    stop = EarlyStopping(monitor="loss", patience=10, restore_best_weights=True)
    model, _ = _fit_script([1.0, 0.2, 0.7], [stop])
    assert np.all(model.w == 1)


def test_early_stopping_min_delta_mode_baseline_start_from_epoch():
    stop = EarlyStopping(monitor="loss", patience=1, min_delta=0.1)
    _, history = _fit_script([1.0, 0.95, 0.5, 0.45], [stop])  # 0.95 is not a 0.1 improvement
    assert history.epoch == [0, 1]
    stop = EarlyStopping(monitor="mae_like_acc", patience=1, mode="max")
    assert stop._is_improvement(0.9, 0.8) and not stop._is_improvement(0.7, 0.8)
    # Epochs that improve but stay worse than the baseline still count toward patience (Keras 3).
    _, history = _fit_script([1.0, 0.5, 0.5, 0.5, 0.5], [EarlyStopping(monitor="loss", patience=2)])
    assert history.epoch == [0, 1, 2, 3]
    _, history = _fit_script([1.0, 0.5, 0.5, 0.5, 0.5], [EarlyStopping(monitor="loss", patience=2, baseline=0.1)])
    assert history.epoch == [0, 1, 2]
    stop = EarlyStopping(monitor="loss", patience=1, start_from_epoch=3)
    _, history = _fit_script([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [stop])
    assert history.epoch == [0, 1, 2, 3, 4]


def test_early_stopping_auto_mode_and_missing_metric():
    stop = EarlyStopping(monitor="val_accuracy")
    assert stop._resolve_mode() == "max"
    assert EarlyStopping(monitor="val_loss")._resolve_mode() == "min"
    with pytest.raises(ValueError, match="cannot tell whether it should be maximized"):
        EarlyStopping(monitor="zork")._resolve_mode()
    with pytest.warns(UserWarning, match="`val_loss` which is not available"):
        _fit_script([1.0, 0.5], [EarlyStopping()])
    with pytest.raises(ValueError, match="mode must be one of"):
        EarlyStopping(mode="up")


# --------------------------------------------------------------------------------- ModelCheckpoint
def test_model_checkpoint_formats_paths_and_writes_npz_atomically(tmp_path):
    path = str(tmp_path / "ckpt" / "w-{epoch:02d}-{loss:.2f}.npz")
    model, _ = _fit_script([0.5, 0.25], [ModelCheckpoint(path, save_weights_only=True)])
    files = sorted(os.listdir(tmp_path / "ckpt"))
    assert files == ["w-01-0.50.npz", "w-02-0.25.npz"]
    saved = np.load(tmp_path / "ckpt" / "w-02-0.25.npz")
    np.testing.assert_array_equal(saved["arr_0"], model.get_weights()[0])
    assert np.all(np.load(tmp_path / "ckpt" / "w-01-0.50.npz")["arr_0"] == 0)


def test_model_checkpoint_save_best_only(tmp_path, capsys):
    path = str(tmp_path / "best.npz")
    cb = ModelCheckpoint(path, monitor="loss", save_best_only=True, save_weights_only=True, verbose=1)
    model, _ = _fit_script([0.9, 0.4, 0.6, 0.8], [cb])
    assert np.all(np.load(path)["arr_0"] == 1)  # weights of epoch index 1 (the best loss)
    out = capsys.readouterr().out
    assert "loss improved from inf to 0.90000" in out and "loss did not improve from 0.40000" in out


def test_model_checkpoint_uses_model_saving_methods(tmp_path):
    saved = []

    class Saving(ScriptedModel):
        def save(self, path):
            saved.append(("save", path))

        def save_weights(self, path):
            saved.append(("save_weights", path))

    x, y = regression_data(4)
    Saving([1.0, 0.5]).fit(x, y, epochs=2, verbose=0, callbacks=[
        ModelCheckpoint(str(tmp_path / "m{epoch}.keras")),
        ModelCheckpoint(str(tmp_path / "w{epoch}.weights.h5"), save_weights_only=True)])
    assert [s[0] for s in saved] == ["save", "save_weights"] * 2
    assert saved[2][1].endswith("m2.keras")
    with pytest.raises(ValueError, match="saves through model.save\\(\\).*save_weights_only=True"):
        _fit_script([1.0], [ModelCheckpoint(str(tmp_path / "m.keras"))])


def test_model_checkpoint_bad_format_and_save_freq(tmp_path):
    with pytest.raises(ValueError, match="Failed to format this callback filepath.*val_acc"):
        _fit_script([1.0], [ModelCheckpoint(str(tmp_path / "{val_acc}.npz"), save_weights_only=True)])
    x, y = regression_data(8)
    cb = ModelCheckpoint(str(tmp_path / "b{epoch}-{batch}.npz"), save_weights_only=True, save_freq=3)
    FakeModel().fit(x, y, batch_size=2, epochs=2, callbacks=[cb], verbose=0)  # 8 batches -> saves after 3, 6
    assert sorted(os.listdir(tmp_path)) == ["b1-3.npz", "b2-2.npz"]


# ------------------------------------------------------------------------------ learning rate control
def test_learning_rate_scheduler_changes_the_optimizer_lr():
    x, y = regression_data(6)
    model = FakeModel(lr=0.1)
    sched = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 0 else lr)
    history = model.fit(x, y, batch_size=3, epochs=3, callbacks=[sched], verbose=0)
    assert model.lrs == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]
    with pytest.raises(ValueError, match='output of the "schedule" function should be a float'):
        FakeModel().fit(x, y, callbacks=[LearningRateScheduler(lambda e, lr: "fast")], verbose=0)



def test_learning_rate_scheduler_accepts_a_one_argument_schedule_like_keras():
    """The older ``schedule(epoch)`` form (the TF overfit/underfit tutorial's) raised TypeError."""
    x, y = regression_data(6)
    model = FakeModel(lr=0.1)
    history = model.fit(x, y, batch_size=6, epochs=3, verbose=0,
                        callbacks=[LearningRateScheduler(lambda epoch: 1e-3 * 10 ** (epoch / 2))])
    assert history.history["learning_rate"] == pytest.approx([1e-3, 1e-3 * 10 ** 0.5, 1e-2])

def test_reduce_lr_on_plateau():
    plateau = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=0.02, verbose=1)
    x, y = regression_data(4)
    model = ScriptedModel([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], lr=0.1)
    history = model.fit(x, y, batch_size=4, epochs=7, callbacks=[plateau], verbose=0)
    # Reductions after the 2nd stagnant epoch each time, floored at min_lr.
    assert model.lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    model = ScriptedModel([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], lr=0.03)
    model.fit(x, y, batch_size=4, epochs=7, callbacks=[plateau], verbose=0)
    assert model.lrs[-1] == pytest.approx(0.02)
    cool = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, cooldown=2)
    model = ScriptedModel([1.0] * 6, lr=1.0)
    model.fit(x, y, batch_size=4, epochs=6, callbacks=[cool], verbose=0)
    assert model.lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    model = ScriptedModel([1.0] * 6, lr=1.0)
    model.fit(x, y, batch_size=4, epochs=6, callbacks=[ReduceLROnPlateau("loss", 0.5, patience=1)], verbose=0)
    assert model.lrs == [1.0, 1.0, 0.5, 0.25, 0.125, 0.0625]
    with pytest.raises(ValueError, match="factor >= 1.0"):
        ReduceLROnPlateau(factor=2)


# ----------------------------------------------------------------------------------------- CSVLogger
def test_csv_logger_content_append_and_separator(tmp_path):
    path = tmp_path / "log.csv"
    _fit_script([0.5, 0.25], [CSVLogger(str(path))])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]   # Keras adds val_ columns up front
    assert [r[:2] for r in rows[1:]] == [["0", "0.5"], ["1", "0.25"]]
    assert [r[3:] for r in rows[1:]] == [["NA", "NA"], ["NA", "NA"]]
    _fit_script([0.125], [CSVLogger(str(path), append=True)])
    lines = path.read_text().splitlines()
    assert lines.count("epoch,loss,mae,val_loss,val_mae") == 1 and lines[-1].startswith("0,0.125")
    semi = tmp_path / "semi.csv"
    x, y = regression_data(4)
    FakeModel().fit(x, y, epochs=1, validation_data=(x, y), callbacks=[CSVLogger(str(semi), separator=";")],
                    verbose=0)
    assert semi.read_text().splitlines()[0] == "epoch;loss;mae;val_loss;val_mae"



def test_csv_logger_appends_to_hostile_files_without_reading_them(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"\xff\xfe" + b"x" * 100_000)   # not UTF-8, one long line: once a UnicodeDecodeError
    _fit_script([0.5], [CSVLogger(str(path), append=True)])
    # Appended, and no header: the file was not empty. The row has Keras's val_ columns (NA without validation).
    assert path.read_bytes()[100_002:] == b"0,0.5,0.0,NA,NA\r\n"
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.csv")        # open() for appending once waited for a reader forever
        with pytest.raises(ValueError, match="fifo.csv' is not a regular file"):
            _fit_script([0.5], [CSVLogger(str(tmp_path / "fifo.csv"), append=True)])


def test_terminate_on_nan_on_inf():
    model = FakeModel()
    cb = TerminateOnNaN()
    cb.set_model(model)
    cb.on_train_batch_end(0, {"loss": 1.0})
    assert not model.stop_training
    cb.on_train_batch_end(1, {"loss": float("inf")})
    assert model.stop_training


# -------------------------------------------------------------------------------------- progress bar
def test_fit_progress_bar_text_verbose_1(capsys):
    x, y = regression_data(10)
    FakeModel().fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), verbose=1)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.fullmatch(r"3/3 ━{20} \d+s \d+(us|ms|s)/step - loss: \d+\.\d{4} - mae: \d+\.\d{4}"
                        r" - val_loss: \d+\.\d{4} - val_mae: \d+\.\d{4}", lines[1]), lines[1]
    assert "\x1b[" not in out  # no ANSI codes when stdout is not a terminal


def test_fit_progress_bar_verbose_2_auto_and_0(capsys):
    x, y = regression_data(10)
    FakeModel().fit(x, y, batch_size=4, epochs=1, verbose=2)
    out = capsys.readouterr().out
    assert re.fullmatch(r"3/3 - \d+s - \d+(us|ms|s)/step - loss: \S+ - mae: \S+\n", out), out  # no Epoch line for 1 epoch
    FakeModel().fit(x, y, batch_size=4, epochs=2, verbose="auto")
    assert capsys.readouterr().out.startswith("Epoch 1/2\n3/3 ━")
    FakeModel().fit(x, y, epochs=2, verbose=0)
    FakeModel().evaluate(x, y, verbose=0)
    FakeModel().predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_evaluate_and_predict_progress_bars(capsys):
    x, y = regression_data(10)
    FakeModel().evaluate(x, y, batch_size=4, verbose=1)
    FakeModel().predict(x, batch_size=5, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"3/3 ━{20} \d+s \S+/step - loss: \S+ - mae: \S+", lines[0]), lines[0]
    assert re.fullmatch(r"2/2 ━{20} \d+s \S+/step", lines[1]), lines[1]


def test_progbar_formats_and_interactive_redraws():
    assert format_value(0.123456) == "0.1235" and format_value(1e-5) == "1.0000e-05"
    assert format_value(0.0) == "0.0000e+00" and format_value(float("nan")) == "nan"
    assert format_value(float("inf")) == "inf" and format_value(-2) == "-2.0000"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    bar = Progbar(4, stream=out, interval=0.0, stateful_metrics=["loss"])
    bar.update(1, [("loss", 2.0)])
    bar.update(2, [("loss", 1.0)])
    text = out.getvalue()
    assert text.startswith("\r\x1b[1m1/4\x1b[0m \x1b[32m━━━━━\x1b[0m\x1b[37m━━━━━━━━━━━━━━━\x1b[0m")
    assert text.count("\r") == 2 and "loss: 1.0000" in text and "\n" not in text
    bar.update(4, [("loss", 0.5)])
    assert out.getvalue().endswith("\n")
    unknown = io.StringIO()
    averaged = Progbar(None, stream=unknown)
    averaged.update(1, [("acc", 1.0)])
    averaged.update(3, [("acc", 0.0)], finalize=True)
    assert re.fullmatch(r"      3/Unknown \d+s \S+/step - acc: 0\.3333\n", unknown.getvalue())


def test_progbar_logger_is_last_and_shows_learning_rate(capsys):
    x, y = regression_data(4)
    sched = LearningRateScheduler(lambda e, lr: 0.5)
    FakeModel().fit(x, y, batch_size=4, epochs=1, callbacks=[sched, ProgbarLogger()], verbose=1)
    assert "learning_rate: 0.5000" in capsys.readouterr().out


def test_a_callback_list_passed_to_fit_gets_history_and_params():
    x, y = regression_data(4)
    rec = Recorder()
    history = FakeModel().fit(x, y, epochs=2, callbacks=CallbackList([rec]), verbose=0)
    assert isinstance(history, History) and history.epoch == [0, 1]
    assert rec.params == {"verbose": 0, "epochs": 2, "steps": 1}
