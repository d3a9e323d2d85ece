"""``tf.cond`` / ``tf.while_loop`` on traced conditions as ONNX ``If`` / ``Loop`` (``tf_compat/graph_flow.py``):
only the branch taken runs, so a NaN in the other branch reaches neither the value nor the gradient, and a
loop runs as many times as its data says. Checked against TensorFlow's values and tape gradients, and by
float64 finite differences on the traced graph."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxforge as tf
from onnxforge.autodiff.gradcheck import check_gradients
from onnxforge.graph import GraphBuilder
from onnxforge.tracing import TraceContext
from tests.conftest import check_full


@pytest.fixture(scope="module")
def rtf():
    return pytest.importorskip("tensorflow")


def _program(fn):
    """The ONNX program a compiled function traced (its one signature)."""
    (traced,) = fn._traces.values()
    return traced.step.runner.model


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def _cond_grad(t, x, branches):
    v = t.Variable(x)

    @t.function
    def f():
        with t.GradientTape() as tape:
            y = t.cond(v > 0, *branches(t, v))
        return y, tape.gradient(y, v)
    return f, f()


BRANCHES = [
    ("sqrt", lambda t, x: (lambda: t.sqrt(x), lambda: -x)),
    ("log", lambda t, x: (lambda: t.math.log(x), lambda: 0.0 * x)),
    ("reciprocal", lambda t, x: (lambda: 1.0 / x, lambda: x * x)),
]


@pytest.mark.parametrize("name,branches", BRANCHES, ids=[b[0] for b in BRANCHES])
@pytest.mark.parametrize("x", [-4.0, 0.0, 2.25])
def test_cond_untaken_branch_stays_out_of_values_and_gradients(rtf, name, branches, x):
    want_y, want_g = (w.numpy() for w in _cond_grad(rtf, np.float32(x), branches)[1])
    f, (y, g) = _cond_grad(tf, np.float32(x), branches)
    np.testing.assert_allclose(y, want_y, rtol=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-6)
    assert np.isfinite(g)
    assert "If" in _ops(check_full(_program(f)))


def test_cond_with_a_python_constant_branch(rtf):
    fn = lambda t: t.function(lambda x: t.cond(x > 0, lambda: t.math.log(x), lambda: 0.0))  # noqa: E731
    ours, theirs = fn(tf), fn(rtf)
    for x in (np.float32(-1.0), np.float32(0.0), np.float32(np.e)):
        got, want = ours(x), theirs(x).numpy()
        assert np.asarray(got).dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6)


def _traced_graph(build, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``build(inputs...)`` traced on float64 graph inputs into a model with one output."""
    b = GraphBuilder()
    ctx = TraceContext(b, training=False)
    with ctx.active():
        xs = [b.input(k, onnx.TensorProto.DOUBLE, v.shape) for k, v in feeds.items()]
        b.output(build(*xs), "y")
    return check_full(b.to_model())


@pytest.mark.parametrize("x", [-2.0, 0.7, 3.0])
def test_cond_gradient_matches_finite_differences_in_float64(x):
    def build(x, w):
        return tf.cond(tf.reduce_sum(x) > 0, lambda: tf.sqrt(x) * w, lambda: tf.math.log(-x) * w * w)

    feeds = {"x": np.array([x, 0.5 * x]), "w": np.array([1.5, -0.5])}
    model = _traced_graph(build, feeds)
    assert "If" in _ops(model) and "Sqrt" not in _ops(model)   # the branches live in the If
    check_gradients(model, feeds, ["x", "w"], rtol=1e-5)


def test_cond_assigns_a_variable_only_in_the_branch_taken(rtf):
    def run(t, x):
        v = t.Variable(10.0)
        f = t.function(lambda x: t.cond(x > 0, lambda: v.assign_add(x), lambda: v.assign(-1.0)))
        out = f(x)
        return float(np.asarray(out)), float(v.numpy())

    for x in (np.float32(2.0), np.float32(-3.0)):
        assert run(tf, x) == run(rtf, x)


def test_cond_branch_with_stop_gradient_keeps_tensorflows_gradient(rtf):
    """A branch holding a stop_gradient stays inline (selected by where): the If gradient could not see it."""
    def program(t, x):
        with t.GradientTape() as tape:
            tape.watch(x)
            y = t.cond(x > 0, lambda: t.stop_gradient(x) * x * x, lambda: -x)
        return y, tape.gradient(y, x)

    for x in (np.float32(2.0), np.float32(-1.0)):
        got = tf.function(lambda x: program(tf, x))(x)
        want = rtf.function(lambda x: program(rtf, x))(x)
        np.testing.assert_allclose(got, [w.numpy() for w in want])


def test_cond_requires_a_scalar_condition():
    f = tf.function(lambda x: tf.cond(x > 0, lambda: x, lambda: -x))
    with pytest.raises(ValueError, match="scalar.*shape \\(2,\\).*tf.where"):
        f(np.array([1.0, -1.0], np.float32))


def test_nested_cond_and_structures(rtf):
    def program(t, x):
        return t.cond(x > 0, lambda: {"a": x, "b": t.cond(x > 1, lambda: x * 2.0, lambda: x * 3.0), "c": (None, 1)},
                      lambda: {"a": -x, "b": x, "c": (None, 2)})

    for x in (np.float32(0.5), np.float32(2.0), np.float32(-1.0)):
        want = rtf.function(lambda x: program(rtf, x))(x)
        got = tf.function(lambda x: program(tf, x))(x)
        assert sorted(got) == ["a", "b", "c"] and got["c"][0] is None
        for g, w in ((got["a"], want["a"]), (got["b"], want["b"]), (got["c"][1], want["c"][1])):
            assert np.asarray(g).dtype == w.numpy().dtype
            np.testing.assert_allclose(g, w.numpy())


# ------------------------------------------------------------------------------------------ while_loop
def _collatz(t):
    @t.function
    def steps(n):
        def body(n, s):
            return t.cond(n % 2 == 0, lambda: n // 2, lambda: 3 * n + 1), s + 1
        return t.while_loop(lambda n, s: n > 1, body, [n, t.constant(0)])[1]
    return steps


def test_while_loop_with_a_data_dependent_trip_count(rtf):
    ours, theirs = _collatz(tf), _collatz(rtf)
    for n in (1, 6, 27, 97):
        got, want = ours(np.int32(n)), theirs(np.int32(n)).numpy()
        assert np.asarray(got).dtype == want.dtype and int(got) == int(want)
    assert len(ours._traces) == 1     # one program serves every n: the loop is not unrolled
    assert "Loop" in _ops(check_full(_program(ours)))


def test_while_loop_gradient_with_an_input_dependent_count(rtf):
    def program(t, n, x):
        with t.GradientTape() as tape:
            tape.watch(x)
            _, y = t.while_loop(lambda i, y: i < n, lambda i, y: (i + 1, t.sin(y) * x), (t.constant(0), x))
        return y, tape.gradient(y, x)

    for n in (0, 1, 4):
        for x in (np.float32(0.8), np.float32(-1.3)):
            want = [w.numpy() for w in rtf.function(lambda n, x: program(rtf, n, x))(np.int32(n), x)]
            got = tf.function(lambda n, x: program(tf, n, x))(np.int32(n), x)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_while_loop_gradient_matches_finite_differences_in_float64():
    def build(x, w):
        body = lambda y, k: (tf.tanh(y * w) + y, k + 1.0)  # noqa: E731
        y, _ = tf.while_loop(lambda y, k: tf.reduce_sum(y) < 6.0, body, [x, tf.constant(0.0, tf.float64)],
                             maximum_iterations=20)
        return y

    feeds = {"x": np.array([0.3, -0.2]), "w": np.array([0.9, 1.1])}
    model = _traced_graph(build, feeds)
    assert "Loop" in _ops(model)
    check_gradients(model, feeds, ["x", "w"], rtol=1e-5)


def test_while_loop_bounds_and_shape_invariants(rtf):
    def program(t, n, x):
        i, y = t.while_loop(lambda i, y: i < n, lambda i, y: (i + 1, y * 2.0), (t.constant(0), x),
                            maximum_iterations=3)
        grown = t.while_loop(lambda z: t.shape(z)[0] < n, lambda z: t.concat([z, z[-1:] + 1.0], 0), [x[:1]],
                             shape_invariants=[t.TensorShape([None])])
        return i, y, grown[0]

    for n in (np.int32(2), np.int32(5)):
        x = np.array([1.0, 2.0], np.float32)
        want = [w.numpy() for w in rtf.function(lambda n, x: program(rtf, n, x))(n, x)]
        got = tf.function(lambda n, x: program(tf, n, x))(n, x)
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == w.dtype
            np.testing.assert_allclose(g, w)


def test_while_loop_errors_name_the_loop_variable():
    grows = tf.function(lambda n: tf.while_loop(lambda z: tf.shape(z)[0] < n,
                                                lambda z: tf.concat([z, z], 0), [tf.ones([1])]))
    with pytest.raises(ValueError, match="enters the loop with shape \\(1,\\).*shape_invariants"):
        grows(np.int32(4))
    retypes = tf.function(lambda n: tf.while_loop(lambda i: i < n, lambda i: tf.cast(i, tf.float32),
                                                  [tf.constant(0)]))
    with pytest.raises(TypeError, match="loop variable 0 enters the loop as int32"):
        retypes(np.int32(4))



WHERE_CASES = {"sqrt": (lambda t: t.sqrt, -4.0), "sqrt_at_0": (lambda t: t.sqrt, 0.0),
               "rsqrt": (lambda t: t.math.rsqrt, 0.0), "reciprocal": (lambda t: t.math.reciprocal, 0.0),
               "norm": (lambda t: lambda x: t.norm(t.stack([x, x])), 0.0), "log": (lambda t: t.math.log, 0.0),
               "divide": (lambda t: lambda x: 1.0 / x, 0.0), "log1p": (lambda t: t.math.log1p, -1.0)}


@pytest.mark.parametrize("name", sorted(WHERE_CASES))
def test_where_gradient_of_an_unselected_singularity_is_tensorflows(rtf, name):
    """TensorFlow's Sqrt / Rsqrt / Reciprocal gradients are 0 where the incoming gradient is 0, so a
    ``tf.where`` that does not select them stays finite; Log's and Div's are not guarded (NaN in both)."""
    make, at = WHERE_CASES[name]

    def grad(t):
        @t.function
        def g(x):
            with t.GradientTape() as tape:
                tape.watch(x)
                y = t.where(x > 1.0, make(t)(x), x * 2.0)
            return tape.gradient(y, x)
        return np.asarray(g(t.constant(np.float32(at))))

    np.testing.assert_array_equal(grad(tf), np.asarray(grad(rtf)))


def test_a_layer_with_a_traced_cond_trains_like_tensorflow(rtf):
    """The compiled training step differentiates the If through the weight the branches capture."""
    from onnxforge import keras

    def branches(t, x, w):
        return (lambda: t.sqrt(t.abs(x) - 0.5) * w, lambda: x * w * 2.0)

    class Gate(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return tf.cond(tf.reduce_mean(x) > 0, *branches(tf, x, self.w))

    rng = np.random.default_rng(0)
    for shift in (1.0, -1.0):   # the sqrt branch is NaN on most entries when it is not taken
        x = (rng.uniform(0.6, 1.0, size=(8, 3)) * shift).astype("float32")
        y = rng.normal(size=(8, 3)).astype("float32")
        inp = keras.Input((3,))
        model = keras.Model(inp, Gate()(inp))
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.train_on_batch(x, y)
        w = rtf.Variable(np.ones(3, np.float32))
        with rtf.GradientTape() as tape:
            loss = rtf.reduce_mean(rtf.square(rtf.cond(rtf.reduce_mean(x) > 0, *branches(rtf, x, w)) - y))
        want = w.numpy() - 0.1 * tape.gradient(loss, w).numpy()
        np.testing.assert_allclose(model.get_weights()[0], want, rtol=1e-5)
