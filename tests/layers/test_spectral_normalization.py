"""SpectralNormalization, OrthogonalRegularizer and Circle against Keras 3 on TensorFlow (run in a child
process: the other tests load Keras on its torch backend): forward passes in training and inference, the
``vector_u`` and kernel updates, the kernels' gradients, three ``fit`` steps and a custom ``train_step`` from
the same weights; the penalties' values and gradients; configs, ``.keras`` files and the emitted graphs."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import onnxforge as of
from onnxforge import keras as fk
from onnxforge import ops

sys.path.insert(0, str(Path(__file__).parent))
from spectral_models import build  # noqa: E402
from tests import tf_server

SHAPES = {"dense": ((6, 4), (6, 2)), "conv": ((4, 5, 5, 2), (4, 2))}


def _inputs() -> dict:
    rng = np.random.default_rng(0)
    data = {}
    for kind, (xs, ys) in SHAPES.items():
        weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in build(fk, kind).get_weights()]
        data.update({f"{kind}_x": rng.normal(size=xs).astype(np.float32),
                     f"{kind}_y": rng.normal(size=ys).astype(np.float32), f"{kind}_n": len(weights)})
        data.update({f"{kind}_w{k}": w for k, w in enumerate(weights)})
    data["ortho_w"] = rng.normal(size=(5, 3)).astype(np.float32)
    e = rng.normal(size=(8, 4)).astype(np.float32)
    data["circle_e"] = e / np.linalg.norm(e, axis=1, keepdims=True)
    data["circle_y"] = np.array([0, 1, 0, 2, 1, 3, 2, 4])   # label 4 and 3 alone: rows masked out of the mean
    r = rng.normal(size=(5, 4)).astype(np.float32)
    data["circle_ref_e"] = r / np.linalg.norm(r, axis=1, keepdims=True)
    data["circle_ref_y"] = np.array([0, 1, 1, 2, 3])
    return data


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    pytest.importorskip("tensorflow")
    data = _inputs()
    path = tmp_path_factory.mktemp("spectral") / "run.npz"
    np.savez(path, **data)
    tf_server.run([str(Path(__file__).parent / "spectral_oracle_tf.py"), str(path), str(Path(__file__).parent)],
                  check=True, timeout=300)
    ref = dict(np.load(path))
    listed = {}
    for key in [k[:-2] for k in ref if k.endswith("_n")]:
        listed[key] = [ref[f"{key}_{k}"] for k in range(int(ref[f"{key}_n"]))]
    return data, {**ref, **listed}


def _fresh(data: dict, kind: str):
    model = build(fk, kind)
    model.set_weights([data[f"{kind}_w{k}"] for k in range(int(data[f"{kind}_n"]))])
    return model


def _close(ours, theirs, what: str, tol: float = 2e-5) -> None:
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_forward_updates_and_fit_match_keras_tf(oracle, kind):
    data, ref = oracle
    x, y = data[f"{kind}_x"], data[f"{kind}_y"]
    model = _fresh(data, kind)
    _close(model(x, training=False), ref[f"{kind}_infer"], "inference")
    assert all(np.array_equal(w.numpy(), data[f"{kind}_w{k}"]) for k, w in enumerate(model.weights))
    _close(model(x, training=True), ref[f"{kind}_train"], "training call")
    for k, (w, theirs) in enumerate(zip(model.weights, ref[f"{kind}_after_call"])):
        _close(w.numpy(), theirs, f"weight {k} ({w.name}) after a training call")
    model = _fresh(data, kind)
    model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, batch_size=len(x), epochs=3, shuffle=False, verbose=0)
    for k, (w, theirs) in enumerate(zip(model.weights, ref[f"{kind}_fit"])):
        _close(w.numpy(), theirs, f"weight {k} ({w.name}) after 3 fit steps", 5e-5)
    _close(model.predict(x, verbose=0), ref[f"{kind}_fit_predict"], "predict after fit", 1e-4)


class _Stepper(fk.Model):
    """A GAN-style custom step: a tape, the gradients, one optimizer's apply_gradients."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.opt = fk.optimizers.SGD(0.1)

    def call(self, x, training=False):
        return self.inner(x, training=training)

    def train_step(self, data):
        x, y = data
        with of.GradientTape() as tape:
            loss = ops.mean(ops.square(self.inner(x, training=True) - y))
        grads = tape.gradient(loss, self.inner.trainable_weights)
        self.opt.apply_gradients(zip(grads, self.inner.trainable_weights))
        return {"loss": loss}


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_custom_train_step_gradients_match_keras_tf(oracle, kind):
    """TF's tape gives the kernel the gradient at the normalized kernel (the assignment is not
    differentiated); SGD then steps from the normalized kernel."""
    data, ref = oracle
    inner = _fresh(data, kind)
    stepper = _Stepper(inner)
    stepper.compile()
    stepper.train_on_batch(data[f"{kind}_x"], data[f"{kind}_y"])
    grads = iter(ref[f"{kind}_grads"])
    for k, (w, after) in enumerate(zip(inner.weights, ref[f"{kind}_after_call"])):
        expected = after - 0.1 * next(grads) if w.trainable else after
        _close(w.numpy(), expected, f"weight {k} ({w.name}) after one custom step")


def test_config_save_load_functional_and_graphs(tmp_path, checked):
    sn = fk.layers.SpectralNormalization(fk.layers.Conv2D(3, 2), power_iterations=3, name="sn")
    inputs = fk.Input((6, 6, 2))
    outputs = fk.layers.Dense(1)(fk.layers.Flatten()(sn(inputs)))
    model = fk.Model(inputs, outputs)
    config = sn.get_config()
    assert config["power_iterations"] == 3 and config["layer"]["class_name"] == "Conv2D"
    clone = fk.layers.SpectralNormalization.from_config(config)
    assert clone.power_iterations == 3 and type(clone.layer).__name__ == "Conv2D"
    conv = sn.layer.name
    assert [w.path for w in sn.weights] == [f"sn/{conv}/kernel", "sn/vector_u", f"sn/{conv}/bias"]   # Keras's
    assert [w.trainable for w in sn.weights] == [True, False, True]
    x = np.random.default_rng(1).normal(size=(3, 6, 6, 2)).astype(np.float32)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.ones((3, 1), np.float32), epochs=2, verbose=0)
    for program in ("train_step", "infer"):
        checked(model._programs[program].model)
    path = tmp_path / "sn.keras"
    model.save(path)
    loaded = fk.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    layer = next(l for l in loaded.layers if isinstance(l, fk.layers.SpectralNormalization))
    np.testing.assert_array_equal(layer.vector_u.numpy(), sn.vector_u.numpy())


def test_embedding_zero_kernel_and_bad_arguments():
    emb = fk.layers.SpectralNormalization(fk.layers.Embedding(7, 3))
    ids = np.array([[1, 2], [3, 6]])
    assert np.asarray(emb(ids, training=True)).shape == (2, 2, 3)
    assert emb.kernel is emb.layer.embeddings
    zero = fk.layers.SpectralNormalization(fk.layers.Dense(2, kernel_initializer="zeros"))
    zero(np.ones((1, 3), np.float32))
    u = zero.vector_u.numpy().copy()
    zero(np.ones((1, 3), np.float32), training=True)   # an all-zero kernel is left alone (Keras's cond)
    np.testing.assert_array_equal(zero.vector_u.numpy(), u)
    assert not zero.layer.kernel.numpy().any()
    with pytest.raises(ValueError, match="power_iterations=0"):
        fk.layers.SpectralNormalization(fk.layers.Dense(2), power_iterations=0)
    with pytest.raises(ValueError, match="nor 'embeddings'"):
        fk.layers.SpectralNormalization(fk.layers.Flatten())(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="supported layer"):
        fk.layers.SpectralNormalization("dense")


def test_orthogonal_regularizer_matches_keras_tf(oracle):
    data, ref = oracle
    w = data["ortho_w"]
    for mode in ("rows", "columns"):
        reg = fk.regularizers.OrthogonalRegularizer(0.3, mode)
        _close(reg(w), ref[f"ortho_{mode}"], mode, 1e-6)
        # The gradient through a Dense kernel_regularizer: the penalty is the whole loss (zero inputs, targets).
        inputs = fk.Input((5,))
        dense = fk.layers.Dense(3, use_bias=False, kernel_regularizer=reg, kernel_initializer="zeros")
        model = fk.Model(inputs, dense(inputs))
        dense.kernel.assign(w)
        model.compile(optimizer=fk.optimizers.SGD(1.0), loss="mse")
        model.train_on_batch(np.zeros((2, 5), np.float32), np.zeros((2, 3), np.float32))
        _close(w - dense.kernel.numpy(), ref[f"ortho_{mode}_grad"], f"{mode} gradient", 1e-6)
    cfg = fk.regularizers.serialize(fk.regularizers.get("orthogonal_regularizer"))
    assert cfg["class_name"] == "OrthogonalRegularizer" and cfg["config"] == {"factor": 0.01, "mode": "rows"}
    assert fk.regularizers.deserialize(cfg).mode == "rows"
    assert fk.regularizers.orthogonal_regularizer is fk.regularizers.OrthogonalRegularizer
    with pytest.raises(ValueError, match="mode="):
        fk.regularizers.OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(ValueError, match="factor"):
        fk.regularizers.OrthogonalRegularizer(factor=-1.0)
    with pytest.raises(ValueError, match="rank 2"):
        fk.regularizers.OrthogonalRegularizer()(np.ones((2, 2, 2)))


def test_circle_matches_keras_tf(oracle):
    data, ref = oracle
    e, y = data["circle_e"], data["circle_y"]
    loss = fk.losses.Circle(gamma=20.0, margin=0.3)
    _close(loss(y, e), ref["circle"], "Circle value", 1e-5)
    _close(fk.losses.circle(y, e, ref_labels=data["circle_ref_y"], ref_embeddings=data["circle_ref_e"],
                            remove_diagonal=False), ref["circle_fn"], "circle with references", 1e-5)
    # The gradient with respect to the embeddings: a Dense with identity weights feeds them to the loss.
    inputs = fk.Input((4,))
    dense = fk.layers.Dense(4, use_bias=False)
    model = fk.Model(inputs, dense(inputs))
    dense.kernel.assign(np.eye(4, dtype=np.float32))
    model.compile(optimizer=fk.optimizers.SGD(1.0), loss=loss)
    model.train_on_batch(e, y)
    # dL/dK = E^T dL/dE for the output E K with K = I; the update is -dL/dK.
    _close(np.eye(4) - dense.kernel.numpy(), e.T @ ref["circle_grad"], "Circle gradient", 1e-4)
    config = loss.get_config()
    assert config == {"name": "circle", "reduction": "sum_over_batch_size", "gamma": 20.0, "margin": 0.3,
                      "remove_diagonal": True}
    assert isinstance(fk.losses.get("circle"), fk.losses.Circle)
    assert fk.losses.deserialize(fk.losses.serialize(loss)).gamma == 20.0
