"""Sequences of tensors: lowered to plain tensor ops where their layout is known while building (how torch's
exporter writes ``split`` / ``chunk`` / ``unbind``), differentiated by the sequence rules where positions
come at run time. Finite differences, torch and onnxruntime, at two batch sizes with one graph."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from onnxforge.autodiff import gradient_model
from tests.autodiff.harness import run_model, torch  # torch: optional oracle
from tests.conftest import check_full

I64 = TensorProto.INT64


def _i64(name: str, *values: int):
    return helper.make_tensor(name, I64, [len(values)] if len(values) != 1 else [], list(values))


def _model(nodes, inputs, outputs, inits=()):
    def make(elem):
        ins = [helper.make_tensor_value_info(n, elem if t is None else t, s) for n, s, t in inputs]
        outs = [helper.make_tensor_value_info(n, elem, s) for n, s in outputs]
        g = helper.make_graph(nodes, "sequences", ins, outs, initializer=list(inits))
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    return make


def _ops(model) -> set[str]:
    return {n.op_type for n in model.graph.node}


def _split_static():
    nodes = [helper.make_node("SplitToSequence", ["x", "sizes"], ["seq"], axis=1),
             helper.make_node("SequenceAt", ["seq", "first"], ["a"]),
             helper.make_node("SequenceAt", ["seq", "last"], ["b"]),
             helper.make_node("SequenceLength", ["seq"], ["n"]),
             helper.make_node("CastLike", ["n", "b"], ["nf"]),
             helper.make_node("Mul", ["b", "nf"], ["b2"])]
    return _model(nodes, [("x", ["N", 6], None)], [("a", ["N", 2]), ("b2", ["N", 4])],
                  [_i64("sizes", 2, 4), _i64("first", 0), _i64("last", -1)])


def test_split_with_constant_positions_becomes_split():
    make = _split_static()
    grad = check_full(gradient_model(make(TensorProto.FLOAT), "b2", ["x"]))
    assert not {"SplitToSequence", "SequenceAt", "SequenceLength"} & _ops(grad)
    run_model(make, lambda rng, n: {"x": rng.standard_normal((n, 6))}, ["x"],
              torch_fn=lambda x: (x.split([2, 4], 1)[0], x.split([2, 4], 1)[-1] * 2.0), name="split_static")


def test_unbind_at_a_run_time_position():
    # keepdims=0 without split: the pieces lose the axis (torch's unbind); the position is an input.
    nodes = [helper.make_node("SplitToSequence", ["x"], ["seq"], axis=1, keepdims=0),
             helper.make_node("SequenceAt", ["seq", "i"], ["y"])]
    make = _model(nodes, [("x", ["N", 3, 4], None), ("i", [], I64)], [("y", ["N", 4])])
    grad = check_full(gradient_model(make(TensorProto.FLOAT), "y", ["x"]))
    assert "SplitToSequence" in _ops(grad)
    run_model(make, lambda rng, n: {"x": rng.standard_normal((n, 3, 4)), "i": np.array(n - 4, np.int64)}, ["x"],
              torch_fn=lambda x, i: x.unbind(1)[int(i)], name="unbind_runtime")


def test_construct_insert_erase_concat_at_run_time_positions():
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s0"]),
             helper.make_node("SequenceInsert", ["s0", "c", "i"], ["s1"]),
             helper.make_node("SequenceErase", ["s1", "j"], ["s2"]),
             helper.make_node("SequenceInsert", ["s2", "a"], ["s3"]),
             helper.make_node("ConcatFromSequence", ["s3"], ["y"], axis=1),
             helper.make_node("ConcatFromSequence", ["s3"], ["z"], axis=0, new_axis=1)]
    make = _model(nodes, [("a", ["N", 3], None), ("b", ["N", 3], None), ("c", ["N", 3], None), ("i", [], I64),
                          ("j", [], I64)], [("y", ["N", 9]), ("z", [3, "N", 3])])

    def reference(a, b, c, i, j):
        items = [a, b]
        items.insert(int(i) if int(i) >= 0 else len(items) + int(i), c)
        del items[int(j)]
        items.append(a)
        return torch.cat(items, 1), torch.stack(items, 0)

    def draw(rng, n):
        return {"a": rng.standard_normal((n, 3)), "b": rng.standard_normal((n, 3)), "c": rng.standard_normal((n, 3)),
                "i": np.array(-1 if n == 2 else 0, np.int64), "j": np.array(0 if n == 2 else -1, np.int64)}

    run_model(make, draw, ["a", "b", "c"], torch_fn=reference, name="construct_insert_erase_concat")


def test_one_sequence_read_twice_sums_the_gradient_sequences():
    nodes = [helper.make_node("SplitToSequence", ["x", "two"], ["seq"], axis=1),
             helper.make_node("SequenceAt", ["seq", "i"], ["p"]),
             helper.make_node("SequenceAt", ["seq", "j"], ["q"]),
             helper.make_node("Mul", ["p", "q"], ["y"])]
    make = _model(nodes, [("x", ["N", 6], None), ("i", [], I64), ("j", [], I64)], [("y", ["N", 2])],
                  [_i64("two", 2)])

    def reference(x, i, j):
        parts = x.split(2, 1)
        return parts[int(i)] * parts[int(j)]

    run_model(make, lambda rng, n: {"x": rng.standard_normal((n, 6)), "i": np.array(1, np.int64),
                                    "j": np.array(n - 2, np.int64)}, ["x"], torch_fn=reference, name="read_twice")
