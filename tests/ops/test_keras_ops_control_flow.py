"""``keras.ops`` control flow (``cond``, ``while_loop``, ``fori_loop``, ``switch``, ``scan``, ``map``,
``associative_scan``) in a custom layer's ``call()``, on traced tensors: a data-dependent predicate or trip
count lowers to ONNX ``If`` / ``Loop`` (``ops/traced_flow.py`` -> ``tf_compat/graph_flow.py``).

The oracle is Keras 3 on the torch backend running the same layer source: predictions and one SGD step from
equal weights (so the gradients through the branch taken / the loop body) must agree, eagerly, in
``predict`` and ``fit``, after a ``.keras`` round trip and in the exported ONNX file.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxforge as of
from tests.conftest import check_full

keras = pytest.importorskip("keras")

X_POS = np.array([[1.0, -2.0, 3.0], [0.5, 0.25, -1.0]], np.float32)   # sum > 0
X_NEG = -X_POS                                                        # sum < 0
W0 = np.array([0.9, 1.1, 0.7], np.float32)


def _calls(ops):
    """Each kind's ``call(layer, x)``, written once on a ``keras.ops`` namespace (Keras's or onnxforge's)."""
    def cond(layer, x):
        # Only the branch taken runs: each branch is NaN (value and gradient) where the other one is taken.
        return ops.cond(ops.sum(x) > 0, lambda: x * layer.w + ops.log(ops.sum(x)) * 0.0,
                        lambda: ops.log(ops.abs(x) + 1.0) * layer.w * layer.w + ops.sqrt(-ops.sum(x)) * 0.0)

    def while_(layer, x):
        # The trip count depends on the data: grow until the sum of |v| reaches 40.
        def body(i, v):
            return i + 1, v * layer.w + 1.0
        return ops.while_loop(lambda i, v: ops.sum(ops.abs(v)) < 40.0, body, (0, x))[1]

    def while_bounded(layer, x):
        return ops.while_loop(lambda v: ops.sum(v) < 1e9, lambda v: v * layer.w + 0.5, x, maximum_iterations=3)

    def fori(layer, x):
        # The upper bound is computed from the data: the number of positive entries.
        upper = ops.cast(ops.sum(ops.cast(x > 0, "int32")), "int32")
        return ops.fori_loop(0, upper, lambda i, v: v * layer.w + ops.cast(i, "float32"), x)

    def switch(layer, x):
        index = ops.cast(ops.sum(x) > 0, "int32") + ops.cast(ops.sum(x) > 3, "int32")
        # As in cond, each of the first two branches is NaN where it is not selected.
        return ops.switch(index, [lambda v: ops.sqrt(ops.abs(v) + 1.0) * layer.w + ops.sqrt(-ops.sum(v)) * 0.0,
                                  lambda v: v * layer.w + ops.log(ops.sum(v)) * 0.0,
                                  lambda v: -v * layer.w * layer.w], x)

    def scan(layer, x):
        # Over the static feature axis: the running sum of w * x, every carry stacked.
        def step(carry, col):
            carry = carry + col * layer.w[0]
            return carry, carry
        return ops.transpose(ops.scan(step, ops.zeros_like(x[:, 0]), ops.transpose(x))[1])

    def map_(layer, x):
        return ops.transpose(ops.map(lambda col: col * layer.w[1], ops.transpose(x)))

    def associative(layer, x):
        return ops.associative_scan(lambda a, b: a * b, x * layer.w, axis=1)

    def scan_batch(layer, x):
        # Over the batch axis, whose size is known only at run time: one ONNX Scan.
        def step(carry, row):
            carry = carry * 0.5 + row * layer.w
            return carry, ops.sum(carry * carry)
        carry, ys = ops.scan(step, ops.zeros((3,)), x, reverse=False)
        return ops.expand_dims(ys, 1) + carry * 0.0 + x * 0.0

    def scan_reverse(layer, x):
        return ops.scan(lambda c, row: (c + row * layer.w, c), ops.zeros((3,)), x, reverse=True)[1]

    def map_batch(layer, x):
        return ops.map(lambda row: ops.sqrt(ops.sum(row * row * layer.w)) + row, x)

    def vectorized(layer, x):
        return ops.vectorized_map(lambda row: row * ops.max(row * layer.w), x)

    def associative_batch(layer, x):
        return ops.associative_scan(lambda a, b: a + b * layer.w, x, reverse=True)

    return {"cond": cond, "while": while_, "while_bounded": while_bounded, "fori": fori, "switch": switch,
            "scan": scan, "map": map_, "associative_scan": associative, "scan_batch": scan_batch,
            "scan_reverse": scan_reverse, "map_batch": map_batch, "vectorized_map": vectorized,
            "associative_batch": associative_batch}


KINDS = list(_calls(None))


def _layer_class(k):
    """``FlowLayer`` for the Keras-like module ``k`` (``keras`` or ``onnxforge.keras``)."""
    calls = _calls(k.ops)

    class FlowLayer(k.layers.Layer):
        def __init__(self, kind="cond", **kwargs):
            super().__init__(**kwargs)
            self.kind = kind

        def build(self, input_shape):
            self.w = self.add_weight(shape=(3,), initializer="ones", name="w")

        def call(self, x):
            return calls[self.kind](self, x)

        def get_config(self):
            return {**super().get_config(), "kind": self.kind}

    return FlowLayer


def _model(k, kind):
    inp = k.Input((3,))
    model = k.Model(inp, _layer_class(k)(kind, name="flow")(inp))
    model.get_layer("flow").set_weights([W0])
    model.compile(optimizer=k.optimizers.SGD(0.01), loss="mse")
    return model


def _predict_and_step(k, kind, x):
    """The prediction, then the weight after one SGD step towards zero targets."""
    model = _model(k, kind)
    pred = np.asarray(model.predict(x, verbose=0))
    model.train_on_batch(x, np.zeros_like(x))
    return pred, np.asarray(model.get_layer("flow").get_weights()[0])


@pytest.mark.parametrize("x", [X_POS, X_NEG], ids=["sum>0", "sum<0"])
@pytest.mark.parametrize("kind", KINDS)
def test_predict_and_fit_step_match_keras(kind, x):
    want_pred, want_w = _predict_and_step(keras, kind, x)
    got_pred, got_w = _predict_and_step(of.keras, kind, x)
    assert np.isfinite(got_pred).all() and np.isfinite(got_w).all()
    np.testing.assert_allclose(got_pred, want_pred, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got_w, W0), "the step moved no weight: no gradient reached the loop or branch"


@pytest.mark.parametrize("kind", ["cond", "while", "fori", "switch"])
def test_eager_layer_call_matches_keras(kind):
    for x in (X_POS, X_NEG):
        want = keras.ops.convert_to_numpy(_model(keras, kind).get_layer("flow")(x))
        got = np.asarray(_model(of.keras, kind).get_layer("flow")(x))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_eager_ops_on_arrays_match_keras():
    x = X_POS
    cases = [
        lambda o: o.cond(o.sum(x) > 0, lambda: x * 2.0, lambda: -x),
        lambda o: o.while_loop(lambda i, v: o.sum(v) < 100.0, lambda i, v: (i + 1, v * 2.0 + 1.0), (0, x))[1],
        lambda o: o.fori_loop(0, o.convert_to_tensor(3), lambda i, v: v * 2.0, x),
        lambda o: o.switch(o.convert_to_tensor(5), [lambda v: v * 2.0, lambda v: -v], x),
    ]
    for case in cases:
        np.testing.assert_allclose(np.asarray(case(of.ops)), keras.ops.convert_to_numpy(case(keras.ops)),
                                   rtol=1e-6)


@pytest.mark.parametrize("kind,op_type", [("cond", "If"), ("while", "Loop"), ("fori", "Loop"), ("switch", "If"),
                                          ("scan_batch", "Scan"), ("map_batch", "Scan")])
def test_keras_round_trip_and_onnx_export(tmp_path, kind, op_type):
    model = _model(of.keras, kind)
    cls = type(model.get_layer("flow"))
    path = tmp_path / "flow.keras"
    model.save(path)
    loaded = of.keras.saving.load_model(path, custom_objects={"FlowLayer": cls})
    for x in (X_POS, X_NEG):
        np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    proto = check_full(onnx.load(str(loaded.export(tmp_path / "flow.onnx"))))
    assert op_type in {n.op_type for n in proto.graph.node}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for x in (X_POS, X_NEG):
        want = keras.ops.convert_to_numpy(_model(keras, kind)(x))
        np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], want,
                                   rtol=1e-5, atol=1e-5)


def test_errors_name_the_argument():
    calls = []
    with pytest.raises(ValueError, match="at least one branch"):
        of.ops.switch(0, [])
    with pytest.raises(TypeError, match=r"upper must be an int or an integer tensor. Received: upper=2\.5"):
        of.ops.fori_loop(0, 2.5, lambda i, v: v, 0.0)
    with pytest.raises(TypeError, match=r"length must be a Python int"):
        of.function(lambda n: of.ops.scan(lambda c, _: (c + 1.0, c), 0.0, None, length=n))(np.int32(3))
    with pytest.raises(TypeError, match="functional-API tensor"):
        of.ops.cond(of.keras.Input((3,)), lambda: calls, lambda: calls)


def _train_step_model(k, tape_cls):
    """A custom ``train_step`` choosing its loss with ``ops.cond`` on the targets, and shrinking the gradients
    with an ``ops.while_loop`` whose trip count depends on their norm (Keras's torch autograd as the oracle)."""
    ops = k.ops

    class StepModel(k.Model):
        def train_step(self, data):
            x, y = data
            if tape_cls is None:
                self.zero_grad()
            tape = tape_cls() if tape_cls is not None else None
            if tape is not None:
                tape.__enter__()
            y_pred = self(x, training=True)
            loss = ops.cond(ops.sum(y) > 0, lambda: ops.mean((y_pred - y) ** 2),
                            lambda: ops.mean(ops.abs(y_pred - y)) * 2.0)
            if tape is None:
                loss.backward()
                grads = [v.value.grad for v in self.trainable_variables]
            else:
                tape.__exit__(None, None, None)
                grads = tape.gradient(loss, self.trainable_variables)
            norm = ops.sqrt(sum(ops.sum(g * g) for g in grads))
            scale = ops.while_loop(lambda s: s * norm > 0.5, lambda s: s * 0.5, ops.convert_to_tensor(1.0))
            grads = [g * scale for g in grads]
            if tape is None:
                import torch

                with torch.no_grad():
                    self.optimizer.apply(grads, self.trainable_variables)
            else:
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"loss": loss, "scale": scale}

    inp = k.Input((3,))
    model = StepModel(inp, k.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")(inp))
    model.compile(optimizer=k.optimizers.SGD(0.1))
    return model


def test_custom_train_step_with_cond_and_while_matches_keras():
    x = np.concatenate([X_POS, X_NEG, X_POS * 3.0])
    y = np.array([[1.0, 2.0], [3.0, -1.0], [-4.0, -1.0], [-2.0, 0.5], [0.5, 0.5], [2.0, 1.0]], np.float32)
    results = []
    for k, tape in ((keras, None), (of.keras, of.GradientTape)):
        model = _train_step_model(k, tape)
        history = model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0).history
        results.append(([np.asarray(w) for w in model.get_weights()], history))
    (want_w, want_h), (got_w, got_h) = results
    for g, w in zip(got_w, want_w):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_h["loss"], want_h["loss"], rtol=1e-5)
    np.testing.assert_allclose(got_h["scale"], want_h["scale"], rtol=1e-6)


def test_scan_body_that_cannot_become_a_scan_is_refused_by_name():
    class StopRows(of.keras.layers.Layer):
        def call(self, x):
            return of.ops.map(lambda row: of.ops.stop_gradient(row) * 2.0, x)

    with pytest.raises(NotImplementedError, match=r"ops\.scan / ops\.map .*stop_gradient"):
        StopRows()(of.keras.Input((3,)))   # the call is traced for its output shape here


def test_while_body_that_cannot_become_a_loop_is_refused_naming_ops_while_loop():
    class StopLoop(of.keras.layers.Layer):
        def call(self, x):
            return of.ops.while_loop(lambda v: of.ops.sum(v) < 10.0, lambda v: of.ops.stop_gradient(v) + 1.0, x)

    with pytest.raises(NotImplementedError, match=r"^ops\.while_loop: .*stop_gradient"):
        StopLoop()(of.keras.Input((3,)))
