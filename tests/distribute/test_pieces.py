"""The parts of onnxforge.distribute that need no second rank: buckets, shards, graph stages, the launcher
command line, the callback split, the trainer's scope registry, the replicated trace hook."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxforge as tf
from onnxforge.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint, ProgbarLogger
from onnxforge.distribute import plan_buckets, shard_bounds
from onnxforge.distribute.communicator import default_timeout
from onnxforge.distribute.launch import mpirun_command
from onnxforge.distribute.loop import AgreeToStop, adapt_callbacks, chief_only
from onnxforge.graph import GraphBuilder
from onnxforge.graph.partition import PartitionError, plan_stages, split_stages
from onnxforge.runtime.session import session_options, set_intra_op_threads
from onnxforge.tracing import TraceContext
from onnxforge.trainer import distribution
from onnxforge.variables import Variable

F = onnx.TensorProto.FLOAT


def test_buckets_are_reverse_ordered_per_dtype_and_capped():
    vs = [Variable(np.zeros(s, d), name=f"v{i}", dtype=d) for i, (s, d) in
          enumerate([((100,), np.float32), ((3,), np.float32), ((4,), np.int64), ((50,), np.float32),
                     ((1,), np.float32)])]
    buckets = plan_buckets(vs, bucket_bytes=220)
    # Last first: 4 + 200 + 12 bytes fill one bucket; 400 bytes exceed the cap alone; the int64 one apart.
    assert buckets == [[4, 3, 1], [0], [2]]
    assert sorted(i for b in buckets for i in b) == list(range(5))
    assert plan_buckets(vs) == [[4, 3, 1, 0], [2]]
    with pytest.raises(ValueError, match="bucket_bytes"):
        plan_buckets(vs, bucket_bytes=0)


@pytest.mark.parametrize("n,size", [(128, 2), (7, 3), (2, 3), (0, 2), (1, 4)])
def test_shards_cover_the_batch_in_order(n, size):
    bounds = [shard_bounds(n, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert sizes == [len(part) for part in np.array_split(np.arange(n), size)]


def _two_cut_graph():
    """x -> a = exp(x) [cut 1: s1 = sum a] -> b = a * s1 [cut 2: s2 = sum b] -> out = b + s2; extra = x * 2."""
    b = GraphBuilder()
    x = b.input("x", F, (3,))
    s1 = b.input("s1", F, (3,))
    s2 = b.input("s2", F, (3,))
    a = b.op("Exp", [x])
    b.output(a, "src1")
    m = b.op("Mul", [a, s1])
    b.output(m, "src2")
    b.output(b.op("Add", [m, s2]), "out")
    b.output(b.op("Mul", [x, 2.0]), "extra")
    return b.to_model()


def test_stages_run_in_order_reproduce_the_whole_graph(checked):
    model = _two_cut_graph()
    stages = plan_stages(model, [("src2", "s2"), ("src1", "s1")])
    assert stages == {"s1": 1, "s2": 2}
    parts = split_stages(model, stages)
    assert len(parts) == 3
    x = np.array([0.1, -0.2, 0.3], np.float32)
    values = {"x": x}
    for part in parts:
        checked(part)
        sess = ort.InferenceSession(part.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {i.name: values[i.name] for i in part.graph.input}
        values.update(zip([o.name for o in part.graph.output], sess.run(None, feeds)))
        if "src1" in values and "s1" not in values:
            values["s1"] = values["src1"] * 2   # "two replicas" with the same part
        if "src2" in values and "s2" not in values:
            values["s2"] = values["src2"] * 2
    a = np.exp(x)
    np.testing.assert_allclose(values["out"], a * 2 * a + 2 * (a * 2 * a), rtol=1e-6)
    np.testing.assert_allclose(values["extra"], 2 * x)
    # Nothing runs twice: every node of the whole graph is in exactly one stage.
    assert sum(len(p.graph.node) for p in parts) == len(model.graph.node)


def test_a_cut_whose_source_needs_its_own_result_is_refused():
    b = GraphBuilder()
    s = b.input("s", F, (1,))
    b.output(b.op("Exp", [s]), "src")
    with pytest.raises(PartitionError, match="depend on their own results"):
        plan_stages(b.to_model(), [("src", "s")])


def test_launcher_flags(monkeypatch):
    import onnxforge.distribute.launch as launch

    monkeypatch.setattr(launch, "_is_open_mpi", lambda _: True)
    cmd = mpirun_command(2, ["python", "x.py"], launcher="/bin/mpirun")
    assert cmd[:3] == ["/bin/mpirun", "-np", "2"] and "--oversubscribe" in cmd and cmd[-2:] == ["python", "x.py"]
    monkeypatch.setattr(launch, "_is_open_mpi", lambda _: False)   # MPICH's mpiexec takes neither flag
    assert mpirun_command(2, ["python"], launcher="/bin/mpiexec") == ["/bin/mpiexec", "-np", "2", "python"]


def test_timeout_from_the_environment(monkeypatch):
    monkeypatch.setenv("ONNXFORGE_MPI_TIMEOUT", "12.5")
    assert default_timeout() == 12.5
    monkeypatch.setenv("ONNXFORGE_MPI_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="ONNXFORGE_MPI_TIMEOUT"):
        default_timeout()


class _Comm:
    def __init__(self, rank):
        self.rank, self.size = rank, 2


def test_side_effect_callbacks_stay_on_rank_zero():
    cbs = [CSVLogger("x.csv"), EarlyStopping(), ModelCheckpoint("m.onnx"), ProgbarLogger()]
    quiet = EarlyStopping()
    quiet.chief_only = True
    assert [chief_only(c) for c in cbs + [quiet]] == [True, False, True, True, True]
    items, verbose = adapt_callbacks(_Comm(1), "fit", cbs, 1)
    assert verbose == 0 and isinstance(items[-1], AgreeToStop) and items[:-1] == [cbs[1]]
    items, verbose = adapt_callbacks(_Comm(0), "evaluate", cbs[0], 2)
    assert verbose == 2 and items == [cbs[0]]


def test_scope_registry_and_compile_records_the_strategy():
    class Fake:
        compiled = []

        def on_compile(self, model):
            self.compiled.append(model)

    strategy = Fake()
    distribution.enter_scope(strategy)
    try:
        model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,))])
        model.compile(optimizer="sgd", loss="mse", device="cpu")
    finally:
        distribution.exit_scope(strategy)
    assert model.distribute_strategy is strategy and strategy.compiled == [model]
    assert distribution.current_strategy() is None
    with pytest.raises(RuntimeError, match="order"):
        distribution.exit_scope(strategy)


def test_cross_replica_sum_is_the_identity_outside_replicated_programs():
    b = GraphBuilder()
    ctx = TraceContext(b, training=True)
    x = b.input("x", F, (2,))
    assert ctx.cross_replica_sum(x) is x and ctx.replica_sums == []
    ctx.replicated = True
    total = ctx.cross_replica_sum(x)
    assert total is not x and any(v is total for v in b.inputs) and ctx.replica_sums == [(x, total)]


def test_intra_op_threads_setting(monkeypatch):
    monkeypatch.delenv("ONNXFORGE_INTRA_OP_THREADS", raising=False)   # tests/conftest.py sets it under xdist
    set_intra_op_threads(1)
    try:
        assert session_options().intra_op_num_threads == 1
    finally:
        set_intra_op_threads(None)
    assert session_options().intra_op_num_threads == 0
    with pytest.raises(ValueError, match="threads"):
        set_intra_op_threads(0)


def test_a_stage_releases_what_it_bound():
    """After a run the stage's binding holds neither its inputs nor its outputs: a carried value lives only as
    long as the caller keeps it (a step in many stages would otherwise hold every stage's values at once)."""
    import weakref

    from onnxforge.distribute.stage_runner import StageRunner
    from onnxforge.runtime import Device

    b = GraphBuilder()
    x = b.input("x", F, ("N", 4))
    carried_in = b.input("c", F, ("N", 4))
    b.output(b.op("Add", [x, carried_in]), "next")
    b.output(b.op("ReduceSum", [x], keepdims=0), "sum")
    runner = StageRunner(b.to_model(), Device("cpu"), "stage", {}, {}, {}, carry=["next"], fetch=["sum"])
    previous = ort.OrtValue.ortvalue_from_numpy(np.ones((2, 4), np.float32))
    host, kept = runner.run({"x": np.arange(8, dtype=np.float32).reshape(2, 4)}, {"c": previous})
    assert float(host["sum"]) == 28.0
    np.testing.assert_array_equal(kept["next"].numpy(), np.arange(8).reshape(2, 4) + 1)
    assert len(runner._io.get_outputs()) == 0
    gone = weakref.ref(previous)
    del previous
    assert gone() is None   # the binding no longer holds the carried input
