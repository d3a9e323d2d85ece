"""Losses: Keras's formulas (numpy), torch where the definitions agree, graph checks and gradients."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxforge import losses
from onnxforge.autodiff import backward
from onnxforge.graph import GraphBuilder

torch = pytest.importorskip("torch")
EPS = 1e-7


# ------------------------------------------------------------------ numpy references (Keras 3 semantics)
def np_probs(p):
    p = p / p.sum(-1, keepdims=True)
    return np.clip(p, EPS, 1 - EPS)


def np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def np_sparse_cce(y, p, from_logits=False):
    logp = np_log_softmax(p) if from_logits else np.log(np_probs(p))
    return -np.take_along_axis(logp, y.reshape(-1, 1).astype(int), -1)[:, 0]


def np_cce(y, p, from_logits=False, ls=0.0):
    if ls:
        y = y * (1 - ls) + ls / y.shape[-1]
    logp = np_log_softmax(p) if from_logits else np.log(np_probs(p))
    return -(y * logp).sum(-1)


def np_bce(y, p, from_logits=False, ls=0.0):
    if ls:
        y = y * (1 - ls) + 0.5 * ls
    if from_logits:
        per = np.maximum(p, 0) - p * y + np.log1p(np.exp(-np.abs(p)))
    else:
        q = np.clip(p, EPS, 1 - EPS)
        per = -(y * np.log(q) + (1 - y) * np.log(1 - q))
    return per.mean(-1)


def np_huber(y, p, delta=1.0):
    e = np.abs(p - y)
    return np.where(e <= delta, 0.5 * e ** 2, delta * e - 0.5 * delta ** 2).mean(-1)


@pytest.fixture
def data(rng):
    n, c = 6, 4
    logits = rng.normal(size=(n, c)).astype(np.float32) * 2
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, c, n)
    onehot = np.eye(c, dtype=np.float32)[labels]
    return dict(logits=logits, probs=probs.astype(np.float32), labels=labels, onehot=onehot,
                sw=rng.uniform(0.1, 2.0, n).astype(np.float32))


# ------------------------------------------------------------------ per-sample functions vs numpy / torch
def test_sparse_categorical_crossentropy_matches_keras_formula_and_torch(data):
    got = losses.sparse_categorical_crossentropy(data["labels"], data["probs"])
    np.testing.assert_allclose(got, np_sparse_cce(data["labels"], data["probs"]), rtol=1e-5)
    got = losses.sparse_categorical_crossentropy(data["labels"], data["logits"], from_logits=True)
    want = torch.nn.functional.cross_entropy(torch.tensor(data["logits"]), torch.tensor(data["labels"]),
                                             reduction="none").numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_keras_documented_values():
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], np.float32)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(np.array([1, 2]), y_pred),
                               [0.0513, 2.303], atol=1e-3)
    np.testing.assert_allclose(losses.binary_crossentropy(np.array([[0, 1], [0, 0]]),
                                                          np.array([[0.6, 0.4], [0.4, 0.6]], np.float32)),
                               [0.916, 0.714], atol=1e-3)
    assert float(losses.huber(np.array([[0, 1], [0, 0]]), np.array([[0.6, 0.4], [0.4, 0.6]], np.float32))
                 .mean()) == pytest.approx(0.155, abs=1e-3)


def test_probabilities_are_renormalized_and_clipped_like_keras():
    # Raw linear scores (the seed bug): Keras divides by the sum, then clips to [eps, 1 - eps].
    scores = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]], np.float32)
    got = losses.sparse_categorical_crossentropy(np.array([1, 0]), scores)
    np.testing.assert_allclose(got, np_sparse_cce(np.array([1, 0]), scores), rtol=1e-5)
    assert got[0] == pytest.approx(-np.log(EPS), rel=1e-4)   # a negative "probability" clips to eps


def test_categorical_crossentropy_with_label_smoothing(data):
    for from_logits, p in ((False, data["probs"]), (True, data["logits"])):
        got = losses.categorical_crossentropy(data["onehot"], p, from_logits=from_logits, label_smoothing=0.1)
        np.testing.assert_allclose(got, np_cce(data["onehot"], p, from_logits, 0.1), rtol=1e-5)
    want = torch.nn.functional.cross_entropy(torch.tensor(data["logits"]), torch.tensor(data["labels"]),
                                             reduction="none", label_smoothing=0.1).numpy()
    got = losses.categorical_crossentropy(data["onehot"], data["logits"], from_logits=True, label_smoothing=0.1)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_binary_crossentropy_probabilities_logits_and_torch(rng):
    y = rng.integers(0, 2, (5, 3)).astype(np.float32)
    z = rng.normal(size=(5, 3)).astype(np.float32) * 4
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(losses.binary_crossentropy(y, p), np_bce(y, p), rtol=1e-5)
    np.testing.assert_allclose(losses.binary_crossentropy(y, z, from_logits=True, label_smoothing=0.2),
                               np_bce(y, z, True, 0.2), rtol=1e-5)
    want = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(y),
                                                                reduction="none").numpy().mean(-1)
    np.testing.assert_allclose(losses.binary_crossentropy(y, z, from_logits=True), want, rtol=1e-5)


def test_regression_losses_match_torch(rng):
    y = rng.normal(size=(7, 5)).astype(np.float32)
    p = rng.normal(size=(7, 5)).astype(np.float32) * 2
    ty, tp = torch.tensor(y), torch.tensor(p)
    np.testing.assert_allclose(losses.mse(y, p), torch.nn.functional.mse_loss(tp, ty, reduction="none").mean(-1),
                               rtol=1e-5)
    np.testing.assert_allclose(losses.mae(y, p), torch.nn.functional.l1_loss(tp, ty, reduction="none").mean(-1),
                               rtol=1e-5)
    for delta in (0.5, 1.0, 2.0):
        want = torch.nn.functional.huber_loss(tp, ty, reduction="none", delta=delta).numpy().mean(-1)
        np.testing.assert_allclose(losses.huber(y, p, delta=delta), want, rtol=1e-5)
        np.testing.assert_allclose(losses.huber(y, p, delta=delta), np_huber(y, p, delta), rtol=1e-5)


# ------------------------------------------------------------------ Loss objects: reduction and weights
def test_sum_over_batch_size_divides_weighted_sum_by_count(data):
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    per = np_sparse_cce(data["labels"], data["logits"], True)
    assert float(loss(data["labels"], data["logits"])) == pytest.approx(per.mean(), rel=1e-5)
    got = float(loss(data["labels"], data["logits"], sample_weight=data["sw"]))
    assert got == pytest.approx((per * data["sw"]).sum() / len(per), rel=1e-5)   # not / sum(sw)


@pytest.mark.parametrize("reduction", ["sum", "mean_with_sample_weight", "none"])
def test_other_reductions(data, reduction):
    loss = losses.MeanSquaredError(reduction=reduction)
    y, p, w = data["onehot"], data["probs"], data["sw"]
    per = ((y - p) ** 2).mean(-1) * w
    got = loss(y, p, sample_weight=w)
    want = {"sum": per.sum(), "mean_with_sample_weight": per.sum() / w.sum(), "none": per}[reduction]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sample_weight_of_shape_n1_and_trailing_one_targets(data):
    loss = losses.MeanAbsoluteError()
    y = data["probs"][:, :1]
    p = data["probs"][:, 1:2]
    want = (np.abs(y - p)[:, 0] * data["sw"]).mean()
    assert float(loss(y[:, 0], p, sample_weight=data["sw"][:, None])) == pytest.approx(want, rel=1e-5)


def test_ignore_class_masks_entries_out_of_loss_and_divisor(data):
    labels = data["labels"].copy()
    labels[:2] = -1
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    per = np_sparse_cce(np.where(labels < 0, 0, labels), data["logits"], True)
    valid = labels >= 0
    assert float(loss(labels, data["logits"])) == pytest.approx(per[valid].mean(), rel=1e-5)


def test_categorical_crossentropy_warns_on_single_unit_output():
    with pytest.warns(SyntaxWarning, match="binary_crossentropy"):
        losses.categorical_crossentropy(np.ones((2, 1)), np.full((2, 1), 0.5, np.float32))


# ------------------------------------------------------------------ lookup
@pytest.mark.parametrize("name,cls", [("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
                                      ("categorical_crossentropy", losses.CategoricalCrossentropy),
                                      ("binary_crossentropy", losses.BinaryCrossentropy),
                                      ("mse", losses.MeanSquaredError), ("mae", losses.MeanAbsoluteError),
                                      ("huber", losses.Huber), ("MeanSquaredError", losses.MeanSquaredError)])
def test_get_aliases(name, cls):
    assert type(losses.get(name)) is cls


def test_get_functions_custom_callables_and_configs():
    assert type(losses.get(losses.mse)) is losses.MeanSquaredError
    custom = losses.get(lambda t, p: losses.mae(t, p) * 2.0)
    assert float(custom(np.zeros((2, 1)), np.ones((2, 1), np.float32))) == pytest.approx(2.0)
    cfg = losses.serialize(losses.Huber(delta=2.5))
    assert losses.get(cfg).delta == 2.5


def test_unknown_loss_names_argument_value_and_choices():
    with pytest.raises(ValueError, match=r"loss.*'sparse_categorical_crossentopy'.*Valid choices.*'mse'"):
        losses.get("sparse_categorical_crossentopy")
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="avg")


# ------------------------------------------------------------------ graphs: full checker and gradients
def _loss_graph(loss, n_classes=4, sparse=True, logits_shape=("batch", 4)):
    b = GraphBuilder()
    y = b.input("y", onnx.TensorProto.INT64 if sparse else onnx.TensorProto.FLOAT,
                ("batch",) if sparse else logits_shape)
    z = b.input("z", onnx.TensorProto.FLOAT, logits_shape)
    w = b.input("w", onnx.TensorProto.FLOAT, ("batch",))
    value = loss(y, z, w)
    grads = backward(b, value, [z])
    b.output(value, "loss")
    b.output(grads["z"], "dz")
    return b.to_model()


@pytest.mark.parametrize("loss,sparse", [
    (losses.SparseCategoricalCrossentropy(from_logits=True), True),
    (losses.SparseCategoricalCrossentropy(), True),
    (losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), False),
    (losses.BinaryCrossentropy(from_logits=True), False),
    (losses.BinaryCrossentropy(), False),
    (losses.MeanSquaredError(), False), (losses.MeanAbsoluteError(), False), (losses.Huber(), False),
])
def test_loss_graphs_pass_full_checker_and_gradients_match_torch(checked, data, rng, loss, sparse):
    model = checked(_loss_graph(loss, sparse=sparse))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    z = data["probs"] if not getattr(loss, "from_logits", True) else data["logits"]
    if isinstance(loss, losses.BinaryCrossentropy) and not loss.from_logits:
        z = 1 / (1 + np.exp(-data["logits"]))
    y = data["labels"] if sparse else (data["onehot"] if isinstance(loss, losses._ProbabilisticLoss)
                                       else rng.normal(size=data["logits"].shape).astype(np.float32))
    w = data["sw"]
    val, dz = sess.run(None, {"y": y, "z": z.astype(np.float32), "w": w})
    tz = torch.tensor(z.astype(np.float64), requires_grad=True)
    ty, tw = torch.tensor(y), torch.tensor(w.astype(np.float64))
    name = type(loss).__name__
    if name == "SparseCategoricalCrossentropy" and loss.from_logits:
        per = torch.nn.functional.cross_entropy(tz, ty, reduction="none")
    elif name == "SparseCategoricalCrossentropy":
        q = torch.clamp(tz / tz.sum(-1, keepdim=True), EPS, 1 - EPS)
        per = -torch.log(q).gather(1, ty.view(-1, 1))[:, 0]
    elif name == "CategoricalCrossentropy":
        per = torch.nn.functional.cross_entropy(tz, ty.argmax(-1), reduction="none", label_smoothing=0.1)
    elif name == "BinaryCrossentropy" and loss.from_logits:
        per = torch.nn.functional.binary_cross_entropy_with_logits(tz, ty.double(), reduction="none").mean(-1)
    elif name == "BinaryCrossentropy":
        q = torch.clamp(tz, EPS, 1 - EPS)
        per = -(ty * torch.log(q) + (1 - ty) * torch.log(1 - q)).mean(-1)
    elif name == "MeanSquaredError":
        per = ((tz - ty.double()) ** 2).mean(-1)
    elif name == "MeanAbsoluteError":
        per = (tz - ty.double()).abs().mean(-1)
    else:
        per = torch.nn.functional.huber_loss(tz, ty.double(), reduction="none").mean(-1)
    total = (per * tw).sum() / per.numel()
    total.backward()
    assert float(val) == pytest.approx(float(total.detach()), rel=1e-5)
    np.testing.assert_allclose(dz, tz.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_mse_on_a_rank_1_output_trains_with_the_right_gradient():
    # A (batch,) output makes Keras's per-sample MSE a scalar that the sample weights then broadcast
    # against: the loss's graph shapes must say so, or the gradient is not summed back (regression).
    import onnxforge as tf

    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(3,)), tf.keras.layers.Reshape(())])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse", device="cpu")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    w, b = model.get_weights()
    residual = y - (x @ w)[:, 0] - b[0]
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(float(np.mean(residual ** 2)), rel=1e-5)
    new_w, new_b = model.get_weights()
    np.testing.assert_allclose(new_w[:, 0], w[:, 0] + 0.1 * 2 * x.T @ residual / 8, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_b, b + 0.1 * 2 * residual.mean(), rtol=1e-5, atol=1e-6)
