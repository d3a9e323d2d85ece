"""Metrics: graph sums reduced on the host equal Keras's formulas (numpy) and scikit-learn where defined."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from onnxforge import metrics
from onnxforge.graph import GraphBuilder


def _update_in_batches(metric, y, p, w=None, batch=3):
    for i in range(0, len(y), batch):
        metric.update_state(y[i:i + batch], p[i:i + batch], None if w is None else w[i:i + batch])
    return metric.result()


@pytest.fixture
def cls_data(rng):
    n, c = 11, 5
    p = rng.uniform(size=(n, c)).astype(np.float32)
    labels = rng.integers(0, c, n)
    labels[:4] = p[:4].argmax(-1)    # some hits
    return p, labels, np.eye(c, dtype=np.float32)[labels], rng.uniform(0.0, 2.0, n).astype(np.float32)


def test_sparse_and_categorical_accuracy_weighted_across_batches(cls_data):
    p, labels, onehot, w = cls_data
    hits = (p.argmax(-1) == labels).astype(np.float64)
    assert _update_in_batches(metrics.SparseCategoricalAccuracy(), labels, p) == pytest.approx(hits.mean())
    assert _update_in_batches(metrics.SparseCategoricalAccuracy(), labels[:, None], p, w) == \
        pytest.approx((hits * w).sum() / w.sum(), rel=1e-6)
    assert _update_in_batches(metrics.CategoricalAccuracy(), onehot, p, w) == \
        pytest.approx((hits * w).sum() / w.sum(), rel=1e-6)


def test_binary_accuracy_threshold_and_shapes(rng):
    y = rng.integers(0, 2, (9, 1)).astype(np.float32)
    p = rng.uniform(size=(9, 1)).astype(np.float32)
    for threshold in (0.5, 0.3):
        want = ((p > threshold) == y).mean()
        assert _update_in_batches(metrics.BinaryAccuracy(threshold=threshold), y[:, 0], p) == pytest.approx(want)


def test_top_k_accuracies_count_ties_in(cls_data):
    p, labels, onehot, _ = cls_data
    for k in (1, 2, 3):
        rank = (p > np.take_along_axis(p, labels[:, None], -1)).sum(-1)
        want = (rank < k).mean()
        assert _update_in_batches(metrics.SparseTopKCategoricalAccuracy(k=k), labels, p) == pytest.approx(want)
        assert _update_in_batches(metrics.TopKCategoricalAccuracy(k=k), onehot, p) == pytest.approx(want)
    tie = np.array([[0.5, 0.5, 0.1]], np.float32)
    assert metrics.sparse_top_k_categorical_accuracy(np.array([1]), tie, k=1).tolist() == [1.0]


def test_regression_metrics_weighted_mean(rng):
    y = rng.normal(size=(8, 3)).astype(np.float32)
    p = rng.normal(size=(8, 3)).astype(np.float32)
    w = rng.uniform(size=8).astype(np.float32)
    mse = ((y - p) ** 2).mean(-1)
    assert _update_in_batches(metrics.MeanSquaredError(), y, p, w) == pytest.approx((mse * w).sum() / w.sum(),
                                                                                 rel=1e-5)
    mae = np.abs(y - p).mean(-1)
    assert _update_in_batches(metrics.get("mae"), y, p) == pytest.approx(mae.mean(), rel=1e-5)


def test_mean_matches_keras_example():
    m = metrics.Mean()
    m.update_state(np.array([1.0, 3.0, 5.0, 7.0]))
    assert m.result() == 4.0
    m.reset_state()
    m.update_state(np.array([1.0, 3.0, 5.0, 7.0]), sample_weight=np.array([1.0, 1.0, 0.0, 0.0]))
    assert m.result() == 2.0


# ------------------------------------------------------------------ confusion metrics
def np_confusion(y, p, thresholds, w=None):
    w = np.ones_like(p) if w is None else np.broadcast_to(w.reshape(-1, *[1] * (p.ndim - 1)), p.shape)
    y, p, w = (y != 0).ravel(), p.ravel(), w.ravel()
    above = p[:, None] > np.asarray(thresholds)[None, :]
    tp = (above & y[:, None]) * w[:, None]
    fp = (above & ~y[:, None]) * w[:, None]
    fn = (~above & y[:, None]) * w[:, None]
    tn = (~above & ~y[:, None]) * w[:, None]
    return tp.sum(0), fp.sum(0), tn.sum(0), fn.sum(0)


def np_auc_roc(tp, fp, tn, fn):
    rec = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) != 0)
    fpr = np.divide(fp, fp + tn, out=np.zeros_like(fp), where=(fp + tn) != 0)
    return np.sum((fpr[:-1] - fpr[1:]) * (rec[:-1] + rec[1:]) / 2)


def test_auc_keras_examples():
    m = metrics.AUC(num_thresholds=3)
    m.update_state(np.array([0, 0, 1, 1]), np.array([0, 0.5, 0.3, 0.9], np.float32))
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state(np.array([0, 0, 1, 1]), np.array([0, 0.5, 0.3, 0.9], np.float32),
                   sample_weight=np.array([1, 0, 0, 1]))
    assert m.result() == pytest.approx(1.0)


def test_auc_state_sums_and_roc_value(rng):
    y = rng.integers(0, 2, 40)
    p = np.clip(y * 0.3 + rng.uniform(size=40) * 0.7, 0, 1).astype(np.float32)
    w = rng.uniform(size=40).astype(np.float32)
    m = metrics.AUC()
    _update_in_batches(m, y, p, w, batch=7)
    thresholds = np.asarray(m.thresholds)
    assert len(thresholds) == 200 and thresholds[0] == -1e-7 and thresholds[-1] == 1 + 1e-7
    want = np_confusion(y, p, thresholds, w)
    for got, exp in zip(m._states, want):
        np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-5)
    assert m.result() == pytest.approx(np_auc_roc(*want), rel=1e-6)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert m.result() == pytest.approx(sklearn.roc_auc_score(y, p, sample_weight=w), abs=1e-2)


def test_auc_pr_and_summation_methods(rng):
    y = rng.integers(0, 2, 30)
    p = rng.uniform(size=30).astype(np.float32)
    tp, fp, tn, fn = np_confusion(y, p, metrics.AUC().thresholds)
    prec = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) != 0)
    rec = tp / (tp + fn)
    m = metrics.AUC(curve="PR", summation_method="minoring")
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.sum((rec[:-1] - rec[1:]) * np.minimum(prec[:-1], prec[1:])))
    pr = metrics.AUC(curve="PR")
    pr.update_state(y, p)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert pr.result() == pytest.approx(sklearn.average_precision_score(y, p), abs=0.06)
    assert 0.0 <= pr.result() <= 1.0


def test_auc_from_logits_applies_sigmoid(rng):
    y = rng.integers(0, 2, 20)
    z = rng.normal(size=20).astype(np.float32)
    a, b = metrics.AUC(from_logits=True), metrics.AUC()
    a.update_state(y, z)
    b.update_state(y, 1 / (1 + np.exp(-z)))
    assert a.result() == pytest.approx(b.result(), abs=1e-6)


def test_precision_recall_thresholds_and_class_id(rng):
    y = rng.integers(0, 2, (12, 3))
    p = rng.uniform(size=(12, 3)).astype(np.float32)
    tp, fp, _, fn = np_confusion(y, p, np.array([0.5]))
    prec, rec = metrics.Precision(), metrics.Recall()
    _update_in_batches(prec, y, p)
    _update_in_batches(rec, y, p)
    assert prec.result() == pytest.approx(float((tp / (tp + fp))[0]))
    assert rec.result() == pytest.approx(float((tp / (tp + fn))[0]))
    multi = metrics.Precision(thresholds=[0.2, 0.7])
    multi.update_state(y, p)
    tp, fp, _, _ = np_confusion(y, p, np.array([0.2, 0.7]))
    np.testing.assert_allclose(multi.result(), tp / (tp + fp))
    one = metrics.Recall(class_id=1)
    one.update_state(y, p)
    tp, _, _, fn = np_confusion(y[:, 1], p[:, 1], np.array([0.5]))
    assert one.result() == pytest.approx(float((tp / (tp + fn))[0]))


def test_empty_state_results_are_zero_not_nan():
    assert metrics.Precision().result() == 0.0
    assert metrics.AUC().result() == 0.0
    assert metrics.SparseCategoricalAccuracy().result() == 0.0


# ------------------------------------------------------------------ lookup and compile-time resolution
def test_resolve_accuracy_the_keras_way():
    assert isinstance(metrics.resolve_accuracy("accuracy", 1, False), metrics.BinaryAccuracy)
    assert isinstance(metrics.resolve_accuracy("acc", 10, True), metrics.SparseCategoricalAccuracy)
    cat = metrics.resolve_accuracy("accuracy", 10, False)
    assert isinstance(cat, metrics.CategoricalAccuracy) and cat.name == "accuracy"


@pytest.mark.parametrize("name,cls", [("auc", metrics.AUC), ("precision", metrics.Precision),
                                      ("recall", metrics.Recall), ("mse", metrics.MeanSquaredError),
                                      ("sparse_top_k_categorical_accuracy", metrics.SparseTopKCategoricalAccuracy),
                                      ("binary_accuracy", metrics.BinaryAccuracy), ("AUC", metrics.AUC)])
def test_get_aliases(name, cls):
    assert type(metrics.get(name)) is cls


def test_loss_names_and_functions_are_mean_metrics(rng):
    m = metrics.get("binary_crossentropy")
    y = rng.integers(0, 2, (4, 1)).astype(np.float32)
    p = rng.uniform(0.1, 0.9, (4, 1)).astype(np.float32)
    m.update_state(y, p)
    assert m.result() == pytest.approx(float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))), rel=1e-5)
    custom = metrics.get(lambda t, q: q * 0.0 + 3.0)
    custom.update_state(y, p)
    assert custom.result() == pytest.approx(3.0)


def test_unknown_metric_error_names_argument_and_choices():
    with pytest.raises(ValueError, match=r"metrics.*'acuracy'.*Valid choices.*'accuracy'"):
        metrics.get("acuracy")
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XYZ")


def test_metric_sum_graphs_pass_full_checker(checked):
    b = GraphBuilder()
    y = b.input("y", onnx.TensorProto.FLOAT, ("batch", 1))
    p = b.input("p", onnx.TensorProto.FLOAT, ("batch", 1))
    w = b.input("w", onnx.TensorProto.FLOAT, ("batch",))
    k = 0
    for m in (metrics.AUC(), metrics.Precision(), metrics.BinaryAccuracy(), metrics.MeanAbsoluteError()):
        for v in m.batch_sums(y, p, w):
            b.output(v, f"s{k}")
            k += 1
    checked(b.to_model())


def test_default_names_follow_keras():
    from onnxforge.layers import clear_session

    clear_session()   # default names count up in a session, as in Keras: "auc", "auc_1", ...
    assert [metrics.AUC().name, metrics.Precision().name, metrics.Recall().name] == ["auc", "precision", "recall"]


def test_new_metrics_survive_save_and_load(tmp_path, rng):
    import onnxforge as of

    model = of.Sequential([of.layers.Input((4,)), of.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=[metrics.F1Score(average="macro"), metrics.AUC(multi_label=True, label_weights=[1, 2, 3]),
                           metrics.OneHotMeanIoU(3), metrics.PrecisionAtRecall(0.3), "r2_score"])
    x = rng.uniform(size=(20, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 20)]
    model.fit(x, y, epochs=1, verbose=0)
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    model.save(str(tmp_path / "m.onnx"))
    after = of.load_model(str(tmp_path / "m.onnx")).evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(after) == sorted(before)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], rtol=1e-6, err_msg=key)
