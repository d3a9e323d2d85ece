"""Python ``if`` / ``while`` / ``for`` on tensors inside ``tf.function`` (``tf_compat/autograph.py``): the
programs of TensorFlow's intro_to_graphs and tf.function guides, checked against TensorFlow itself."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf


@pytest.fixture(scope="module")
def rtf():
    return pytest.importorskip("tensorflow")


def programs(t):
    """The guides' functions, written once for either module."""
    def simple_relu(x):
        if t.greater(x, 0):
            return x
        else:
            return 0

    def tanh_loop(x):
        while t.reduce_sum(x) > 1:
            x = t.tanh(x)
        return x

    def fizzbuzz(n):
        count = 0
        for i in t.range(1, n + 1):
            if i % 15 == 0:
                count += 15
            elif i % 3 == 0:
                count += 3
            elif i % 5 == 0:
                count += 5
            else:
                count += 1
        return count

    def train(num_steps):
        total = t.constant(0.0)
        for step in t.range(num_steps):
            total = total + t.cast(step, t.float32)
        return total

    def branch_temporaries(x):
        if x > 0:
            y = x * 2.0
            out = y + 1.0
        else:
            out = -x
        return out

    def python_control_flow(x):
        acc = x
        for k in range(3):
            acc = acc + k
        if len(x.shape) == 1:
            acc = acc * 2
        return acc

    def collatz(a):
        count = 0
        while a != 1:
            if a % 2 == 0:
                a = a // 2
            else:
                a = 3 * a + 1
            count = count + 1
        return count

    def squares(n):
        ta = t.TensorArray(t.float32, size=0, dynamic_size=True)
        for i in t.range(n):
            ta = ta.write(i, t.cast(i, t.float32) ** 2)
        return ta.stack()

    def loop_gradient(x):
        with t.GradientTape() as tape:
            tape.watch(x)
            y = x
            while t.reduce_sum(y) < 10.0:
                y = y * 1.5 + x
        return y, tape.gradient(y, x)

    return {"simple_relu": (simple_relu, [np.int32(3), np.int32(-3)]),
            "tanh_loop": (tanh_loop, [np.float32([1.0, 1.0]), np.float32([0.2, 0.1])]),
            "fizzbuzz": (fizzbuzz, [np.int32(16), np.int32(0)]), "train": (train, [np.int32(10)]),
            "branch_temporaries": (branch_temporaries, [np.float32(2.0), np.float32(-3.0)]),
            "python_control_flow": (python_control_flow, [np.float32([1.0, 2.0])]),
            "collatz": (collatz, [np.int32(27), np.int32(1)]), "squares": (squares, [np.int32(4), np.int32(0)]),
            "loop_gradient": (loop_gradient, [np.float32([0.5, 1.0])])}


@pytest.mark.parametrize("name", sorted(programs(tf)))
def test_guide_programs_match_tensorflow(rtf, name):
    ours, args = programs(tf)[name]
    theirs, _ = programs(rtf)[name]
    f, g = tf.function(ours), rtf.function(theirs)
    for a in args:
        got, want = tf.nest.flatten(f(tf.constant(a))), rtf.nest.flatten(g(rtf.constant(a)))
        for x, w in zip(got, want):
            assert np.asarray(x).dtype == w.numpy().dtype
            np.testing.assert_allclose(np.asarray(x), w.numpy(), rtol=1e-6)
    assert len(f._traces) == 1   # one program serves every value: the loops and branches are in the graph


def test_module_method_and_inlined_function(rtf):
    def make(t):
        class Scaled(t.Module):
            def __init__(self):
                self.v = t.Variable(2.0)

            @t.function
            def __call__(self, x):
                if x > 0:
                    out = x * self.v
                else:
                    out = -x
                return out

        module = Scaled()

        @t.function
        def outer(x):
            return module(x) + 1.0   # a tf.function called inside another is inlined, converted too
        return module, outer

    (m, outer), (rm, router) = make(tf), make(rtf)
    for x in (3.0, -3.0):
        assert float(m(tf.constant(x))) == float(rm(rtf.constant(x)))
        assert float(outer(tf.constant(x))) == float(router(rtf.constant(x)))


def test_what_is_not_converted_fails_naming_the_construct():
    def with_break(n):
        i = 0
        while i < n:
            if i > 3:
                break
            i += 1
        return i

    with pytest.raises(TypeError, match="truth value of symbolic tensor.*tf.cond / tf.while_loop.*AutoGraph"):
        tf.function(with_break)(tf.constant(7))

    def relu(x):
        if x > 0:
            return x
        return 0.0

    with pytest.raises(TypeError, match="truth value of symbolic tensor"):
        tf.function(relu, autograph=False)(tf.constant(1.0))
    assert float(tf.function(relu)(tf.constant(-1.0))) == 0.0

    def only_one_branch(x):
        if x > 0:
            y = x
        return y

    with pytest.raises(ValueError, match="\\['y'\\] must have a value in both branches"):
        tf.function(only_one_branch)(tf.constant(1.0))


def relu_for_to_code(x):
    if tf.greater(x, 0):
        return x
    else:
        return 0


def test_to_code_and_do_not_convert():
    code = tf.autograph.to_code(relu_for_to_code)
    assert "if_return(tf.greater(x, 0)" in code and code.startswith("def relu_for_to_code(x):")
    assert tf.autograph.to_code(tf.function(relu_for_to_code)) == code

    @tf.autograph.experimental.do_not_convert
    def kept(x):
        if x > 0:
            return x
        return -x

    with pytest.raises(TypeError, match="truth value of symbolic tensor"):
        tf.function(kept)(tf.constant(1.0))
    assert float(tf.autograph.to_graph(relu_for_to_code)(np.int32(-1))) == 0


def test_loops_assigning_variables_match_tensorflow(rtf):
    """A Variable assigned in a traced loop is carried by the Loop; the guide's counters."""
    def make(t):
        v, w, c = t.Variable(0.0), t.Variable([1.0, 2.0]), t.Variable(0)

        @t.function
        def accumulate(n):
            for i in t.range(n):
                v.assign_add(t.cast(i, t.float32))
                if v > 3.0:
                    w.assign(w * 2.0)
            return v.read_value() + 1.0

        @t.function
        def count():
            while c < 5:
                c.assign_add(2)
            return c.read_value()
        return accumulate, count, (v, w, c)

    (f, g, ours), (rf, rg, theirs) = make(tf), make(rtf)
    for n in (4, 2, 0):
        assert float(f(tf.constant(n))) == float(rf(rtf.constant(n)))
    assert int(g()) == int(rg()) == 6
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
