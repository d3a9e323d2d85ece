"""keras.ops.linalg decompositions unrolled into standard ONNX ops (cholesky, cholesky_inverse, solve_triangular,
lu_factor, qr, eigh, svd, lstsq, pinv, matrix_rank; eig refused): values against NumPy and against Keras 3.15 on
the TensorFlow backend (one subprocess), reconstructions, float64 gradients against finite differences and torch
autograd, the full checker on every graph, and the errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import onnxforge as of
from onnxforge import ops as fops
from onnxforge.graph import GraphBuilder, onnx_dtype
from onnxforge.tracing import TraceContext
from tests.conftest import check_full
from tests import tf_server

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]
R = np.random.default_rng(3)
G = R.normal(size=(2, 3, 4, 4))
SPD = G @ G.swapaxes(-1, -2) + 4 * np.eye(4)                          # (2, 3, 4, 4) positive definite
SYM = G + G.swapaxes(-1, -2)
TALL, WIDE = R.normal(size=(2, 6, 4)), R.normal(size=(3, 5))
TRI = np.tril(G) + 3 * np.eye(4)
RHS = R.normal(size=(2, 3, 4, 2))


def _traced(fn, arrays, dtype="float64"):
    """``fn(*values)`` in a graph with inputs of ``dtype`` (full checker), run by onnxruntime."""
    arrays = [np.asarray(a, dtype) for a in arrays]
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        values = [b.input(f"x{k}", onnx_dtype(a.dtype), a.shape) for k, a in enumerate(arrays)]
        out = fn(*values)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    for k, o in enumerate(outs):
        b.output(o, f"y{k}")
    sess = ort.InferenceSession(check_full(b.to_model()).SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {f"x{k}": a for k, a in enumerate(arrays)})
    return got if isinstance(out, (list, tuple)) else got[0]


def _close(got, want, tol=1e-10):
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol)


# ------------------------------------------------------------------------------------------ values
def test_cholesky_and_triangular_solves_match_numpy_in_float64_and_float32():
    low = np.linalg.cholesky(SPD)
    _close(_traced(fops.cholesky, [SPD]), low)
    _close(_traced(lambda a: fops.cholesky(a, upper=True), [SPD]), low.swapaxes(-1, -2))
    _close(fops.cholesky(SPD.astype("float32")), low, 1e-5)
    # Only the lower triangle is read, as in NumPy and TensorFlow.
    _close(_traced(fops.cholesky, [np.tril(SPD)]), low)
    _close(_traced(lambda a, c: fops.solve_triangular(a, c, lower=True), [TRI, RHS]), np.linalg.solve(TRI, RHS))
    upper = TRI.swapaxes(-1, -2)
    _close(_traced(fops.solve_triangular, [upper + np.tril(G, -1), RHS[..., 0]]),
           np.linalg.solve(upper, RHS[..., :1])[..., 0])
    _close(_traced(fops.cholesky_inverse, [low]), np.linalg.inv(SPD))
    _close(_traced(lambda f: fops.cholesky_inverse(f, upper=True), [low.swapaxes(-1, -2)]), np.linalg.inv(SPD))
    # A batch of right-hand sides under one matrix broadcasts.
    _close(_traced(lambda a, c: fops.solve_triangular(a, c, lower=True), [TRI[0, 0], RHS]),
           np.linalg.solve(TRI[0, 0], RHS))


@pytest.mark.parametrize("shape", [(4, 4), (6, 3), (3, 6), (2, 5, 2), (1, 3), (3, 1)])
@pytest.mark.parametrize("mode", ["reduced", "complete"])
def test_qr_matches_numpy_signs_included(shape, mode):
    x = R.normal(size=shape)
    q, r = _traced(lambda a: fops.qr(a, mode=mode), [x])
    qn, rn = np.linalg.qr(x, mode=mode)
    assert q.shape == qn.shape and r.shape == rn.shape
    _close(q, qn, 1e-9)
    _close(r, rn, 1e-9)
    _close(q @ r, x, 1e-12)


def test_eigh_values_vectors_and_reconstruction():
    w, v = _traced(fops.eigh, [SYM])
    _close(w, np.linalg.eigvalsh(SYM), 1e-11)
    _close(v @ (w[..., None] * v.swapaxes(-1, -2)), SYM, 1e-11)
    _close(v.swapaxes(-1, -2) @ v, np.broadcast_to(np.eye(4), SYM.shape), 1e-12)
    # Sign-invariant comparison of the vectors: |<v_numpy, v_ours>| = 1 column by column.
    _, vn = np.linalg.eigh(SYM)
    _close(np.abs((vn * v).sum(-2)), np.ones(w.shape), 1e-8)
    # Repeated eigenvalues and larger sizes still converge (float32 eager and float64 traced).
    big = R.normal(size=(12, 12))
    q, _ = np.linalg.qr(big)
    clustered = q @ np.diag(np.r_[np.ones(6), 1 + 1e-3 * np.arange(6)]) @ q.T
    _close(_traced(fops.eigh, [clustered])[0], np.linalg.eigvalsh(clustered), 1e-12)
    _close(fops.eigh((big + big.T).astype("float32"))[0], np.linalg.eigvalsh(big + big.T), 2e-5)


@pytest.mark.parametrize("x", [TALL, WIDE, R.normal(size=(4, 4)), R.normal(size=(2, 1, 3))],
                         ids=["tall", "wide", "square", "row"])
@pytest.mark.parametrize("full", [True, False])
def test_svd_matches_numpy_and_reconstructs(x, full):
    u, s, vh = _traced(lambda a: fops.svd(a, full_matrices=full), [x])
    un, sn, vhn = np.linalg.svd(x, full_matrices=full)
    assert (u.shape, s.shape, vh.shape) == (un.shape, sn.shape, vhn.shape)
    _close(s, sn, 1e-12)
    k = s.shape[-1]
    _close((u[..., :, :k] * s[..., None, :]) @ vh[..., :k, :], x, 1e-12)
    _close(u.swapaxes(-1, -2) @ u, np.broadcast_to(np.eye(u.shape[-1]), u.shape[:-2] + (u.shape[-1],) * 2), 1e-12)
    _close(vh @ vh.swapaxes(-1, -2), np.broadcast_to(np.eye(vh.shape[-2]), vh.shape[:-2] + (vh.shape[-2],) * 2),
           1e-12)
    _close(np.abs((un[..., :, :k] * u[..., :, :k]).sum(-2)), np.ones(s.shape), 1e-8)
    _close(_traced(lambda a: fops.svd(a, compute_uv=False), [x]), sn, 1e-12)


def test_svd_keeps_small_singular_values_accurate_and_completes_rank_deficient_bases():
    graded = R.normal(size=(5, 4)) @ np.diag([1.0, 1e-3, 1e-6, 1e-9])
    s = _traced(lambda a: fops.svd(a, compute_uv=False), [graded])
    np.testing.assert_allclose(s, np.linalg.svd(graded, compute_uv=False), rtol=1e-8)
    low_rank = R.normal(size=(6, 2)) @ R.normal(size=(2, 4))
    u, s, vh = _traced(fops.svd, [low_rank])
    _close(u.T @ u, np.eye(6), 1e-12)
    _close((u[:, :4] * s) @ vh, low_rank, 1e-12)
    assert int(_traced(fops.matrix_rank, [low_rank])) == 2


def test_pinv_lstsq_matrix_rank_match_numpy():
    low_rank = R.normal(size=(2, 6, 2)) @ R.normal(size=(2, 2, 4))
    _close(_traced(fops.pinv, [low_rank]), np.linalg.pinv(low_rank), 1e-10)
    _close(_traced(fops.pinv, [WIDE]), np.linalg.pinv(WIDE), 1e-12)
    a, c = TALL[0], R.normal(size=(6, 3))
    _close(_traced(fops.lstsq, [a, c]), np.linalg.lstsq(a, c, rcond=None)[0], 1e-12)
    _close(_traced(fops.lstsq, [WIDE, c[:3, 0]]), np.linalg.lstsq(WIDE, c[:3, 0], rcond=None)[0], 1e-12)
    ranks = fops.matrix_rank(np.stack([low_rank[0], TALL[0]]).astype("float32"))
    assert ranks.dtype == np.int32 and ranks.tolist() == [2, 4]
    assert int(fops.matrix_rank(np.diag([1.0, 1e-3, 0.0]), tol=1e-2)) == 1


def test_lu_factor_pivots_and_reconstruction():
    x = R.normal(size=(2, 5, 5))
    lu, p = _traced(fops.lu_factor, [x])
    assert p.dtype == np.int32
    low = np.tril(lu, -1) + np.eye(5)
    up = np.triu(lu)
    recon = low @ up
    _close(np.take_along_axis(recon, p[..., None].astype(np.int64), axis=-2), x, 1e-12)
    from scipy.linalg import lu_factor as scipy_lu
    for k in range(2):
        _close(lu[k], scipy_lu(x[k])[0], 1e-12)        # the same pivots as LAPACK's partial pivoting


KERAS_TF = r"""
import sys, numpy as np, keras
d = np.load(sys.argv[1])
o = keras.ops
out = {}
out["qr_q"], out["qr_r"] = [np.asarray(t) for t in o.qr(d["tall"])]
out["qrc_q"], out["qrc_r"] = [np.asarray(t) for t in o.qr(d["tall"], mode="complete")]
out["eigh_w"] = np.asarray(o.eigh(d["sym"])[0])
out["svd_s"] = np.asarray(o.svd(d["tall"], compute_uv=False))
out["lu"], out["lu_p"] = [np.asarray(t) for t in o.lu_factor(d["sq"])]
out["pinv"] = np.asarray(o.pinv(d["low"]))
out["rank"] = np.asarray(o.matrix_rank(d["low"]))
out["lstsq"] = np.asarray(o.lstsq(d["a"], d["c"]))
out["chol"] = np.asarray(o.cholesky(d["spd"], upper=True))
out["chol_inv"] = np.asarray(o.cholesky_inverse(d["factor"]))
out["tri"] = np.asarray(o.solve_triangular(d["tri"], d["rhs"], lower=True))
np.savez(sys.argv[2], **out)
"""


def test_values_match_keras_on_tensorflow(tmp_path):
    f32 = lambda a: np.asarray(a, "float32")   # noqa: E731
    data = {"tall": f32(TALL), "sym": f32(SYM[0]), "sq": f32(G[0, 0]), "low": f32(R.normal(size=(6, 2)) @ R.normal(size=(2, 4))),
            "a": f32(TALL[0]), "c": f32(R.normal(size=(6, 2))), "spd": f32(SPD[0]),
            "factor": f32(np.linalg.cholesky(SPD[0, 0])), "tri": f32(TRI[0]), "rhs": f32(RHS[0])}
    np.savez(tmp_path / "in.npz", **data)
    run = tf_server.run(["-c", KERAS_TF, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")], timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    want = dict(np.load(tmp_path / "out.npz"))
    got = {}
    got["qr_q"], got["qr_r"] = fops.qr(data["tall"])
    got["qrc_q"], got["qrc_r"] = fops.qr(data["tall"], mode="complete")
    got["eigh_w"] = fops.eigh(data["sym"])[0]
    got["svd_s"] = fops.svd(data["tall"], compute_uv=False)
    got["lu"], got["lu_p"] = fops.lu_factor(data["sq"])
    got["pinv"], got["rank"] = fops.pinv(data["low"]), fops.matrix_rank(data["low"])
    got["lstsq"] = fops.lstsq(data["a"], data["c"])
    got["chol"] = fops.cholesky(data["spd"], upper=True)
    got["chol_inv"] = fops.cholesky_inverse(data["factor"])
    got["tri"] = fops.solve_triangular(data["tri"], data["rhs"], lower=True)
    for name, w in want.items():
        g = np.asarray(got[name])
        assert g.shape == w.shape and g.dtype == w.dtype, (name, g.shape, w.shape, g.dtype, w.dtype)
        if w.dtype.kind in "iu":
            np.testing.assert_array_equal(g, w, err_msg=name)
        else:
            np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-4, err_msg=name)


# ------------------------------------------------------------------------------------------ gradients
def _upstream(shape):
    return np.random.default_rng(11).normal(size=tuple(shape))


def _grad_program(fn, arrays):
    b = GraphBuilder()
    with TraceContext(b, training=True).active():
        values = [b.input(f"x{k}", onnx_dtype(np.float64), a.shape) for k, a in enumerate(arrays)]
        with of.GradientTape() as tape:
            out = fn(*values)
            loss = fops.sum(out * fops.convert_to_tensor(_upstream(out.shape), dtype="float64"))
        grads = tape.gradient(loss, values)
    b.output(loss, "loss")
    for k, g in enumerate(grads):
        b.output(g, f"g{k}")
    sess = ort.InferenceSession(check_full(b.to_model()).SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda *xs: sess.run(None, {f"x{k}": np.asarray(a, np.float64) for k, a in enumerate(xs)})


def _sym_t(t):
    return (t + t.transpose(-1, -2)) / 2


X6 = R.normal(size=(2, 4, 3))
GRADS = [
    ("cholesky", fops.cholesky, lambda t: torch.linalg.cholesky(_sym_t(t)), [SPD[0, :2]]),
    ("solve_triangular", lambda a, c: fops.solve_triangular(a, c, lower=True),
     lambda a, c: torch.linalg.solve_triangular(torch.tril(a), c, upper=False), [TRI[0, :2], RHS[0, :2]]),
    ("cholesky_inverse", fops.cholesky_inverse, lambda t: torch.cholesky_inverse(torch.tril(t)),
     [np.linalg.cholesky(SPD[0, 0])]),
    ("qr_q", lambda a: fops.qr(a)[0], lambda t: torch.linalg.qr(t)[0], [X6]),
    ("qr_r", lambda a: fops.qr(a)[1], lambda t: torch.linalg.qr(t)[1], [X6]),
    ("eigh_w", lambda a: fops.eigh(a)[0], lambda t: torch.linalg.eigvalsh(_sym_t(t)), [SYM[0, :2]]),
    ("svd_s", lambda a: fops.svd(a, compute_uv=False), torch.linalg.svdvals, [X6]),
    ("svd_s_wide", lambda a: fops.svd(a, compute_uv=False), torch.linalg.svdvals, [WIDE]),
    ("lstsq", fops.lstsq, lambda a, c: torch.linalg.pinv(a) @ c, [TALL[0], R.normal(size=(6, 2))]),
    ("pinv", fops.pinv, torch.linalg.pinv, [X6]),
]


@pytest.mark.parametrize("fn,reference,arrays", [c[1:] for c in GRADS], ids=[c[0] for c in GRADS])
def test_float64_gradients_match_torch_and_finite_differences(fn, reference, arrays):
    run = _grad_program(fn, arrays)
    loss, *grads = run(*arrays)
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = reference(*tensors)
    (out * torch.tensor(_upstream(out.shape))).sum().backward()
    for g, t in zip(grads, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-7, atol=1e-8)
    # Central differences of the graph's own loss along a random direction (symmetric for symmetric inputs).
    directions = [R.normal(size=a.shape) for a in arrays]
    if fn in (fops.cholesky,) or reference is GRADS[5][2]:
        directions = [_d + _d.swapaxes(-1, -2) for _d in directions]
    h = 1e-6
    plus = run(*[a + h * d for a, d in zip(arrays, directions)])[0]
    minus = run(*[a - h * d for a, d in zip(arrays, directions)])[0]
    np.testing.assert_allclose((plus - minus) / (2 * h), sum((g * d).sum() for g, d in zip(grads, directions)),
                               rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------------------ Keras programs
def test_namespaces_functional_model_and_config_round_trip():
    for name in ("cholesky", "cholesky_inverse", "solve_triangular", "qr", "eigh", "svd", "lstsq", "pinv",
                 "matrix_rank", "lu_factor", "eig"):
        assert getattr(of.keras.ops.linalg, name) is getattr(of.keras.ops, name)
    inp = of.keras.Input((5, 3))
    u, s, vh = of.keras.ops.svd(inp, full_matrices=False)
    model = of.keras.Model(inp, [of.keras.ops.qr(inp)[1], s])
    x = R.normal(size=(2, 5, 3)).astype("float32")
    for m in (model, of.keras.Model.from_config(model.get_config())):
        r, s = m.predict(x, verbose=0)
        _close(r, np.linalg.qr(x)[1], 2e-5)
        _close(s, np.linalg.svd(x, compute_uv=False), 2e-5)


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("call,error,match", [
    (lambda: fops.cholesky(TALL), ValueError, "square.*\\(2, 6, 4\\)"),
    (lambda: fops.cholesky(np.ones(4)), ValueError, "rank >= 2"),
    (lambda: fops.cholesky(-np.eye(3)), ValueError, "positive definite"),
    (lambda: fops.eigh(TALL), ValueError, "square"),
    (lambda: fops.lu_factor(WIDE), ValueError, "square"),
    (lambda: fops.eigh(np.eye(33)), ValueError, "at most 32.*\\(33, 33\\)"),
    (lambda: fops.svd(np.ones((40, 33))), ValueError, "at most 32"),
    (lambda: fops.svd(np.ones((65, 3))), ValueError, "at most 64"),
    (lambda: fops.qr(np.ones((65, 3))), ValueError, "at most 64"),
    (lambda: fops.qr(np.ones((3, 3)), mode="r"), ValueError, "mode='r'"),
    (lambda: fops.cholesky(np.eye(3, dtype=bool)), TypeError, "bool"),
    (lambda: fops.solve_triangular(TRI[0, 0], np.ones(3)), ValueError, "as many rows"),
    (lambda: fops.lstsq(TALL, TALL[0]), ValueError, "rank 2"),
    (lambda: fops.lstsq(TALL[0], np.ones(5)), ValueError, "b.shape"),
    (lambda: fops.eig(np.eye(2)), NotImplementedError, "no complex dtype"),
    (lambda: fops.eig(np.eye(2)), ValueError, "ops.eigh"),
])
def test_bad_inputs_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_symbolic_sizes_are_refused_while_building():
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        x = b.input("x", onnx_dtype(np.float32), ("batch", None, 3))
        with pytest.raises(ValueError, match="static"):
            fops.qr(x)
        y = b.input("y", onnx_dtype(np.float32), ("batch", 3, 3))
        assert fops.cholesky(y).shape == ("batch", 3, 3)
