"""An LSTM forecasting next year's sunspot number, trained by onnxruntime, exported with the fused ONNX LSTM.

The data are the yearly mean sunspot numbers 1700-2008 that ship inside statsmodels
(``statsmodels/datasets/sunspots/sunspots.csv``), read straight from the installed package's file (no
statsmodels import). Each sample is a window of ``--window`` years (20 by default) and the target is the
following year. The split is chronological (the first 80% of the windows train, the last 20% test), and the
scaling is fitted on the training years only, so nothing from the test years leaks into training.

The model is the Keras one, ``Sequential([Input((window, 1)), LSTM(32), Dense(1)])`` compiled with adam / mse.
The script reports the test RMSE and MAE against the naive forecast "next year = this year", plots
prediction vs truth to a PNG, exports the inference graph (the recurrence as one fused ONNX ``LSTM`` node;
training ran it as a ``Scan``), and runs that file with plain onnxruntime, comparing with ``model.predict``.

Run: ``python examples/sequence_forecast.py [--epochs 100] [--out examples/output]``
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

import onnxforge as tf

__all__ = ["sunspots_csv_path", "load_sunspots", "make_windows", "Split", "prepare", "build_model",
           "forecast_errors", "plot_forecast", "export_and_check", "run"]


def sunspots_csv_path() -> str:
    """The sunspots CSV inside the installed statsmodels package, found without importing statsmodels."""
    spec = importlib.util.find_spec("statsmodels")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("This example reads the sunspot numbers shipped with statsmodels: "
                         "pip install 'onnxforge[examples]' (or pip install statsmodels).")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "sunspots", "sunspots.csv")
    if not os.path.exists(path):
        raise SystemExit(f"statsmodels is installed but its sunspots data file is missing: {path}")
    return path


def load_sunspots(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(years int64, sunspot numbers float32)`` from the CSV (header ``"YEAR","SUNACTIVITY"``).

    Example:
        >>> years, values = load_sunspots()
        >>> int(years[0]), float(values[0]), len(years)
        (1700, 5.0, 309)
    """
    table = np.genfromtxt(path or sunspots_csv_path(), delimiter=",", skip_header=1)
    years = table[:, 0].astype(np.int64)
    if np.any(np.diff(years) != 1):
        raise ValueError("The sunspots file is expected to hold consecutive years.")
    return years, table[:, 1].astype(np.float32)


def make_windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Supervised pairs: ``x[i] = series[i : i + window]`` and ``y[i] = series[i + window]``.

    Example:
        >>> x, y = make_windows(np.arange(6.0), 3)
        >>> x.tolist(), y.tolist()
        ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]], [3.0, 4.0, 5.0])
    """
    if not 0 < window < len(series):
        raise ValueError(f"window must be in [1, {len(series) - 1}]. Received: window={window}")
    x = np.lib.stride_tricks.sliding_window_view(series[:-1], window)
    return np.ascontiguousarray(x), series[window:].copy()


@dataclass
class Split:
    """Scaled model inputs ``(n, window, 1)`` and targets ``(n, 1)``, the scaler, and raw test values."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: float
    std: float
    years_test: np.ndarray    # the year each test target belongs to
    truth_test: np.ndarray    # the test targets, in sunspot numbers
    naive_test: np.ndarray    # the naive forecast of each test target: the previous year's value

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(scaled, np.float64).reshape(-1) * self.std + self.mean


def prepare(years: np.ndarray, values: np.ndarray, window: int = 20, test_fraction: float = 0.2) -> Split:
    """Windows, a chronological split (test = the last windows) and a scaler fitted on training years only."""
    x, y = make_windows(values, window)
    n_test = max(1, int(round(len(x) * test_fraction)))
    n_train = len(x) - n_test
    # The training windows and targets only cover the first n_train + window years: fit the scaler there.
    seen = values[: n_train + window]
    mean, std = float(seen.mean()), float(seen.std())

    def scale(a: np.ndarray) -> np.ndarray:
        return ((a - mean) / std).astype(np.float32)

    return Split(x_train=scale(x[:n_train])[..., None], y_train=scale(y[:n_train])[:, None],
                 x_test=scale(x[n_train:])[..., None], y_test=scale(y[n_train:])[:, None], mean=mean, std=std,
                 years_test=years[window:][n_train:], truth_test=y[n_train:].astype(np.float64),
                 naive_test=x[n_train:, -1].astype(np.float64))


def build_model(window: int, units: int = 32) -> tf.keras.Model:
    """The Keras forecaster: ``Input((window, 1)) -> LSTM(units) -> Dense(1)``, adam / mse."""
    model = tf.keras.Sequential([
        tf.keras.Input((window, 1)),
        tf.keras.layers.LSTM(units),
        tf.keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def forecast_errors(pred: np.ndarray, truth: np.ndarray, naive: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of the model and of the naive forecast, and their ratios (below 1: the model wins)."""
    def rmse(a: np.ndarray) -> float:
        return float(np.sqrt(np.mean((a - truth) ** 2)))

    def mae(a: np.ndarray) -> float:
        return float(np.mean(np.abs(a - truth)))

    out = {"rmse": rmse(pred), "mae": mae(pred), "naive_rmse": rmse(naive), "naive_mae": mae(naive)}
    out["rmse_ratio"] = out["rmse"] / out["naive_rmse"]
    out["mae_ratio"] = out["mae"] / out["naive_mae"]
    return out


def plot_forecast(years: np.ndarray, truth: np.ndarray, pred: np.ndarray, naive: np.ndarray,
                  errors: dict[str, float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(years, truth, "k-", lw=2, label="observed")
    ax.plot(years, pred, "o-", ms=3, label=f"LSTM (RMSE {errors['rmse']:.1f})")
    ax.plot(years, naive, "--", alpha=0.7, label=f"naive last value (RMSE {errors['naive_rmse']:.1f})")
    ax.set(xlabel="year", ylabel="yearly mean sunspot number",
           title="One-year-ahead forecast on the held-out years (trained by onnxruntime)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _export(model: tf.keras.Model, path: str) -> None:
    export = getattr(model, "export", None)
    if export is not None:
        export(path)
        return
    from onnxforge.compiler import build_infer  # before model.export existed

    onnx.save(build_infer(model, weights="initializers").model, path)


def export_and_check(model: tf.keras.Model, path: str, x: np.ndarray) -> dict[str, object]:
    """Export the inference graph, check it, run it with plain onnxruntime and compare with ``predict``.

    Returns:
        ``ops`` (sorted op types of the main graph), ``fused`` (how many fused LSTM nodes), ``scan`` (how many
        Scan nodes) and ``max_abs_diff`` (onnxruntime vs ``model.predict`` on ``x``).
    """
    _export(model, path)
    exported = onnx.load(path)
    onnx.checker.check_model(exported, full_check=True)
    kinds = [n.op_type for n in exported.graph.node]
    domains = {n.domain or "ai.onnx" for n in exported.graph.node}
    if domains != {"ai.onnx"}:
        raise AssertionError(f"non-standard domains in the exported graph: {sorted(domains)}")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    served = session.run(None, {session.get_inputs()[0].name: x})[0]
    gap = float(np.max(np.abs(served - model.predict(x, verbose=0))))
    return {"ops": sorted(set(kinds)), "fused": kinds.count("LSTM"), "scan": kinds.count("Scan"),
            "max_abs_diff": gap}


def run(epochs: int = 100, window: int = 20, units: int = 32, batch_size: int = 16, out: str | None = None,
        seed: int = 0, verbose: int = 0) -> dict[str, object]:
    """The whole example; returns its figures (errors, export check, timing) for printing or testing."""
    np.random.seed(seed)  # onnxforge's initializers and shuffling draw from numpy's global RNG
    years, values = load_sunspots()
    split = prepare(years, values, window)
    model = build_model(window, units)
    start = time.perf_counter()
    history = model.fit(split.x_train, split.y_train, batch_size=batch_size, epochs=epochs, verbose=verbose)
    seconds = time.perf_counter() - start
    pred = split.unscale(model.predict(split.x_test, verbose=0))
    errors = forecast_errors(pred, split.truth_test, split.naive_test)
    result: dict[str, object] = {"errors": errors, "train_seconds": seconds, "n_train": len(split.x_train),
                                 "n_test": len(split.x_test), "first_test_year": int(split.years_test[0]),
                                 "loss": history.history["loss"], "pred": pred, "split": split}
    if out is not None:
        os.makedirs(out, exist_ok=True)
        png = os.path.join(out, "sequence_forecast.png")
        plot_forecast(split.years_test, split.truth_test, pred, split.naive_test, errors, png)
        result["png"] = png
        result["export"] = export_and_check(model, os.path.join(out, "sequence_forecast.onnx"), split.x_test)
        result["onnx"] = os.path.join(out, "sequence_forecast.onnx")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output"))
    args = parser.parse_args()

    r = run(epochs=args.epochs, window=args.window, units=args.units, out=args.out, seed=args.seed)
    e = r["errors"]
    print(f"data: yearly sunspot numbers 1700-2008 from {sunspots_csv_path()}")
    print(f"windows of {args.window} years -> next year: {r['n_train']} training windows, {r['n_test']} test "
          f"windows (targets {r['first_test_year']}-2008, chronological split)")
    print(f"trained {args.epochs} epochs in {r['train_seconds']:.1f} s; training loss (scaled mse) "
          f"{r['loss'][0]:.3f} -> {r['loss'][-1]:.3f}")
    print(f"test RMSE  LSTM {e['rmse']:6.2f}   naive last value {e['naive_rmse']:6.2f}   ratio {e['rmse_ratio']:.3f}")
    print(f"test MAE   LSTM {e['mae']:6.2f}   naive last value {e['naive_mae']:6.2f}   ratio {e['mae_ratio']:.3f}")
    print(f"plot: {r['png']}")
    x = r["export"]
    print(f"exported {r['onnx']}: full checker passed; {x['fused']} fused ONNX LSTM node(s), {x['scan']} Scan; "
          f"ops {x['ops']}")
    print(f"plain onnxruntime vs model.predict: max |difference| = {x['max_abs_diff']:.2e}")
    if x["fused"] != 1 or x["scan"] != 0:
        raise SystemExit("the exported graph should run the recurrence as one fused ONNX LSTM node")
    if e["rmse_ratio"] >= 1.0:
        raise SystemExit(f"the LSTM did not beat the naive forecast (RMSE ratio {e['rmse_ratio']:.3f})")


if __name__ == "__main__":
    main()
