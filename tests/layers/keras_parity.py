"""One harness for checking a layer against real Keras 3 (torch backend) through whole models.

``check_layer_parity(make, inputs)`` builds ``make(keras)`` (a Keras functional model), randomizes its
weights, rebuilds it in onnxforge with ``from_keras`` (config + weights) and compares: weight names, shapes
and order; predictions; the layer configs (and a config round trip through ``to_keras``); and, when
``train=True``, the weights after one SGD ``train_on_batch`` step on an MSE loss, which checks the
layer's gradients against torch's autograd through Keras.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402

import onnxforge  # noqa: E402
from exporters.keras_exporter import from_keras, to_keras  # noqa: E402
from onnxforge.layers.serialization import deserialize, get_registered_object, serialize  # noqa: E402
from tests.conftest import check_full  # noqa: E402


def randomize(model: Any, seed: int = 0, scale: float = 0.3) -> None:
    """Random weights everywhere (ones and zeros would hide transposed or misplaced weights)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(0, scale, tuple(w.shape)).astype(w.dtype if "float" in str(w.dtype) else "float32")
        if "variance" in w.path:
            value = np.abs(value) + 0.5
        if "float" in str(w.dtype):
            w.assign(value)


def _comparable(config: Any) -> Any:
    """A config with Lambda bytecode replaced by its code object (marshal's bytes vary between dumps)."""
    import base64
    import marshal

    if isinstance(config, dict):
        if config.get("class_name") == "__lambda__":
            inner = dict(config["config"])
            inner["code"] = marshal.loads(base64.b64decode(inner["code"]))
            return {**config, "config": inner}
        return {k: _comparable(v) for k, v in config.items()}
    return config


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def check_layer_parity(make: Callable[[Any], Any], inputs: Sequence[np.ndarray] | np.ndarray, *,
                       train: bool = False, rtol: float = 1e-5, atol: float = 1e-5, seed: int = 0,
                       grad_rtol: float = 1e-4, grad_atol: float = 1e-5, native: bool = False,
                       back_to_keras: bool = True, custom_objects: dict | None = None) -> tuple[Any, Any]:
    """Compare the Keras model ``make(keras)`` with its onnxforge rebuild; returns ``(kmodel, fmodel)``.

    ``native``: build the onnxforge side with ``make(onnxforge.keras)`` and copy the weights in order,
    instead of ``from_keras`` (for Keras graphs that hold raw op nodes, such as the mask of a
    ``mask_zero`` Embedding passed to a layer's ``*_mask`` argument). ``back_to_keras=False`` skips
    rebuilding the model in Keras (Keras cannot reload a ``lambda`` that reads module globals).
    """
    keras.utils.set_random_seed(seed)
    kmodel = make(keras)
    randomize(kmodel, seed)
    xs = _as_list(inputs)
    feed = xs[0] if len(xs) == 1 else xs
    if native:
        import onnxforge.keras as fkeras

        fmodel = make(fkeras)
        fmodel.set_weights(kmodel.get_weights())
    else:
        fmodel = from_keras(kmodel)
    # Weights: same paths (Keras variable paths are onnxforge names), shapes and order.
    assert [tuple(w.shape) for w in fmodel.weights] == [tuple(w.shape) for w in kmodel.weights]
    if not native:  # natively built layers count their auto-names on from 0 in this process
        assert [(w.name, w.path) for w in fmodel.weights] == [(w.name, w.path) for w in kmodel.weights]
    expected = _as_list(kmodel.predict(feed, verbose=0))
    got = _as_list(fmodel.predict(feed, verbose=0))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
    for program in getattr(fmodel, "compiled_programs", {}).values():
        check_full(program.model)
    # Configs: every layer's config rebuilds an equal layer, and Keras rebuilds the whole model.
    from onnxforge.layers.safe_mode import SafeModeScope

    with SafeModeScope(False):  # Lambda layers hold this test's own bytecode
        for layer in fmodel.layers:
            known = dict(custom_objects or {})
            if get_registered_object(type(layer).__name__, known) is not type(layer):
                known[type(layer).__name__] = type(layer)  # a test's own custom layer
            again = deserialize(serialize(layer), known)
            assert _comparable(again.get_config()) == _comparable(layer.get_config()), layer.name
    if not native and back_to_keras:
        back = to_keras(fmodel)
        for g, e in zip(_as_list(back.predict(feed, verbose=0)), expected):
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
    if train:
        _check_train_step(kmodel, fmodel, feed, expected, grad_rtol, grad_atol)
    return kmodel, fmodel


def _check_train_step(kmodel: Any, fmodel: Any, feed: Any, expected: list, rtol: float, atol: float) -> None:
    rng = np.random.default_rng(7)
    targets = [rng.normal(size=e.shape).astype("float32") for e in expected]
    y = targets[0] if len(targets) == 1 else targets
    before = [np.array(w) for w in kmodel.get_weights()]
    kmodel.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    fmodel.compile(optimizer=onnxforge.optimizers.SGD(0.5), loss="mse")
    for program in fmodel.compiled_programs.values():
        check_full(program.model)
    k_loss = kmodel.train_on_batch(feed, y)
    f_loss = fmodel.train_on_batch(feed, y)
    np.testing.assert_allclose(f_loss, k_loss, rtol=1e-4, atol=1e-6)
    moved = False
    for w, kw, fw, w0 in zip(kmodel.weights, kmodel.get_weights(), fmodel.get_weights(), before):
        # The step's change is lr * gradient: compare the changes, so the tolerance is on the gradient.
        np.testing.assert_allclose(fw - w0, kw - w0, rtol=rtol, atol=atol, err_msg=f"update of {w.path}")
        moved = moved or bool(np.abs(kw - w0).max() > 1e-6)
    assert moved or not kmodel.trainable_weights, "the training step changed no weight: nothing was compared"
