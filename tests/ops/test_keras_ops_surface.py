"""The keras.ops functions beyond the core set, each compared with Keras 3 (torch backend): values of eager
calls, and gradients of traced calls (through GradientTape) against torch.autograd through Keras's ops."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen first
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

import onnxforge as of  # noqa: E402
from onnxforge import ops as fops  # noqa: E402
from onnxforge.graph import GraphBuilder  # noqa: E402
from onnxforge.tracing import TraceContext  # noqa: E402
from tests.conftest import check_full  # noqa: E402

kops = keras.ops
R = np.random.default_rng(0)
X = R.normal(size=(3, 4)).astype("float32")
Y = R.normal(size=(3, 4)).astype("float32")
X3 = R.normal(size=(2, 3, 4)).astype("float32")
P = R.uniform(0.1, 0.9, size=(3, 4)).astype("float32")
I = np.array([[-5, 3, 0, 7], [2, -2, 9, -1], [4, 1, -3, 6]])
IMG = R.normal(size=(2, 6, 6, 3)).astype("float32")
K33 = R.normal(size=(3, 3, 3, 4)).astype("float32")
SQ = (R.normal(size=(2, 3, 3)) + 3 * np.eye(3)).astype("float32")

# (name, f(ops) -> result); each runs with keras.ops and onnxforge.ops on the same numpy inputs.
VALUES = [
    ("arccos", lambda o: o.arccos(P)), ("arcsin", lambda o: o.arcsin(P)), ("arctan", lambda o: o.arctan(X)),
    ("arctan2", lambda o: o.arctan2(X, Y)), ("arctan2_axes", lambda o: o.arctan2(np.array([0., 1, -1, 0]),
                                                                            np.array([1., 0, 0, -1]))),
    ("arcsinh", lambda o: o.arcsinh(X)), ("arccosh", lambda o: o.arccosh(P + 1)), ("arctanh", lambda o: o.arctanh(P)),
    ("sinh", lambda o: o.sinh(X)), ("cosh", lambda o: o.cosh(X)), ("tan", lambda o: o.tan(P)),
    ("log2", lambda o: o.log2(P)), ("log10", lambda o: o.log10(P)), ("exp2", lambda o: o.exp2(X)),
    ("trunc", lambda o: o.trunc(X * 3)), ("mod_float", lambda o: o.mod(X * 3, 1.5)), ("mod_int", lambda o: o.mod(I, 4)),
    ("floor_divide_int", lambda o: o.floor_divide(I, 4)), ("floor_divide", lambda o: o.floor_divide(X * 3, -1.5)),
    ("isnan", lambda o: o.isnan(np.array([1.0, np.nan, np.inf], "float32"))),
    ("isinf", lambda o: o.isinf(np.array([1.0, np.nan, -np.inf], "float32"))),
    ("isfinite", lambda o: o.isfinite(np.array([1.0, np.nan, np.inf], "float32"))),
    ("nan_to_num", lambda o: o.nan_to_num(np.array([1.0, np.nan, np.inf, -np.inf], "float32"), posinf=9.0)),
    ("logical_xor", lambda o: o.logical_xor(X > 0, Y > 0)), ("hypot", lambda o: o.hypot(X, Y)),
    ("deg2rad", lambda o: o.deg2rad(X)), ("rad2deg", lambda o: o.rad2deg(X)), ("logaddexp", lambda o: o.logaddexp(X, Y)),
    ("heaviside", lambda o: o.heaviside(np.array([-1.0, 0.0, 2.0]), np.array([0.5, 0.5, 0.5]))),
    ("signbit", lambda o: o.signbit(np.array([-1.0, -0.0, 0.0, 2.0], "float32"))), ("cbrt", lambda o: o.cbrt(X)),
    ("divide_no_nan", lambda o: o.divide_no_nan(X, np.where(Y > 0, Y, 0))), ("rsqrt", lambda o: o.rsqrt(P)),
    ("erf", lambda o: o.erf(X)), ("erfinv", lambda o: o.erfinv(P * 1.8 - 0.9)), ("sinc", lambda o: o.sinc(X)),
    ("split", lambda o: o.split(X, 2, axis=1)), ("split_idx", lambda o: o.split(X3, [1, 3], axis=-1)),
    ("array_split", lambda o: o.array_split(X3, 2, axis=1)), ("flip", lambda o: o.flip(X3, axis=(0, 2))),
    ("roll", lambda o: o.roll(X3, 3, axis=2)), ("roll_flat", lambda o: o.roll(X, -2)),
    ("repeat", lambda o: o.repeat(X, 2, axis=0)), ("repeat_flat", lambda o: o.repeat(X, 3)),
    ("pad", lambda o: o.pad(X, ((1, 0), (2, 1)))), ("pad_reflect", lambda o: o.pad(X, ((1, 1), (2, 1)), mode="reflect")),
    ("pad_value", lambda o: o.pad(X, ((1, 1), (1, 1)), constant_values=2.5)),
    ("moveaxis", lambda o: o.moveaxis(X3, 0, -1)), ("swapaxes", lambda o: o.swapaxes(X3, 0, 2)),
    ("ravel", lambda o: o.ravel(X3)), ("unstack", lambda o: o.unstack(o.convert_to_tensor(X3), axis=1)),
    ("hstack", lambda o: o.hstack([X, Y])), ("vstack", lambda o: o.vstack([X, Y])), ("dstack", lambda o: o.dstack([X, Y])),
    ("append", lambda o: o.append(X, Y, axis=0)), ("meshgrid", lambda o: o.meshgrid(np.arange(3.0), np.arange(2.0))),
    ("meshgrid_ij", lambda o: o.meshgrid(np.arange(3.0), np.arange(2.0), indexing="ij")),
    ("tril", lambda o: o.tril(X3, -1)), ("triu", lambda o: o.triu(X, 1)), ("eye", lambda o: o.eye(3, 4, k=1)),
    ("identity", lambda o: o.identity(3)), ("tri", lambda o: o.tri(3, 4)),
    ("diag", lambda o: o.diag(X, 1)), ("diag_vector", lambda o: o.diag(X[0], -1)),
    ("diagonal", lambda o: o.diagonal(X3, offset=1, axis1=1, axis2=2)), ("trace", lambda o: o.trace(X)),
    ("linspace", lambda o: o.linspace(0.0, 1.0, 5)), ("linspace_open", lambda o: o.linspace(2, 3, 4, endpoint=False)),
    ("logspace", lambda o: o.logspace(0.0, 2.0, 3)),
    ("sort", lambda o: o.sort(X, axis=0)), ("argsort", lambda o: o.argsort(X, axis=-1)),
    ("take_along_axis", lambda o: o.take_along_axis(X, np.argsort(X, axis=1)[:, :2], axis=1)),
    ("median", lambda o: o.median(X, axis=1)), ("quantile", lambda o: o.quantile(X, 0.3, axis=0)),
    ("cumsum", lambda o: o.cumsum(X, axis=1)), ("cumprod", lambda o: o.cumprod(X, axis=0)),
    ("diff", lambda o: o.diff(X, axis=1)), ("searchsorted", lambda o: o.searchsorted(np.array([1.0, 2.0, 3.0]),
                                                                                   np.array([0.5, 2.0, 3.5]))),
    ("digitize", lambda o: o.digitize(X, np.array([-1.0, 0.0, 1.0]))),
    ("tensordot", lambda o: o.tensordot(X3, X, axes=([1, 2], [0, 1]))), ("tensordot_int", lambda o: o.tensordot(X, Y.T, 1)),
    ("einsum", lambda o: o.einsum("bij,jk->bik", X3, Y.T)), ("outer", lambda o: o.outer(X[0], Y[0])),
    ("inner", lambda o: o.inner(X, Y)), ("dot", lambda o: o.dot(X, Y.T)), ("vdot", lambda o: o.vdot(X[0], Y[0])),
    ("kron", lambda o: o.kron(X[:2, :2], Y[:2, :3])), ("cross", lambda o: o.cross(X[:2, :3], Y[:2, :3])),
    ("any", lambda o: o.any(X > 1, axis=1)), ("all", lambda o: o.all(X > -2)),
    ("count_nonzero", lambda o: o.count_nonzero(I > 0, axis=0)), ("amax", lambda o: o.amax(X, axis=0)),
    ("average", lambda o: o.average(X, axis=1, weights=np.array([1.0, 2.0, 3.0, 4.0], "float32"))),
    ("isclose", lambda o: o.isclose(X, X + 1e-7)), ("select", lambda o: o.select([X < 0, X > 1], [X, -X], 7.0)),
    ("top_k", lambda o: o.top_k(X, 2)), ("in_top_k", lambda o: o.in_top_k(np.array([0, 1, 3]), X, 2)),
    ("segment_sum", lambda o: o.segment_sum(X, np.array([0, 2, 0]), num_segments=3)),
    ("segment_max", lambda o: o.segment_max(X, np.array([1, 1, 0]), num_segments=2)),
    ("extract_sequences", lambda o: o.extract_sequences(X3, 2, 1)),
    ("fft", lambda o: o.fft((X, Y))), ("fft2", lambda o: o.fft2((X3, X3 * 2))),
    ("ifft2", lambda o: o.ifft2((X3, X3 * 0.5))), ("rfft", lambda o: o.rfft(X3)), ("rfft_len", lambda o: o.rfft(X, 6)),
    ("irfft", lambda o: o.irfft((X, Y))), ("irfft_len", lambda o: o.irfft((X, Y), 7)),
    ("norm", lambda o: o.norm(X)), ("norm_axis", lambda o: o.norm(X3, axis=-1, keepdims=True)),
    ("norm_ord1", lambda o: o.norm(X, ord=1, axis=1)), ("norm_inf_matrix", lambda o: o.norm(X, ord=np.inf)),
    ("inv", lambda o: o.linalg.inv(SQ)), ("solve", lambda o: o.linalg.solve(SQ, X3[:, :, :2])), ("det", lambda o: o.det(SQ)),
    ("moments", lambda o: o.moments(X3, axes=[0, 1])), ("moments_keep", lambda o: o.moments(X3, axes=[2], keepdims=True)),
    ("normalize", lambda o: o.normalize(X, axis=0)), ("normalize_l1", lambda o: o.normalize(X, order=1)),
    ("batch_normalization", lambda o: o.batch_normalization(X, X.mean(0), X.var(0), axis=1, offset=Y[0],
                                                            scale=P[0], epsilon=1e-3)),
    ("glu", lambda o: o.glu(X)), ("hard_silu", lambda o: o.hard_silu(X * 3)), ("hard_tanh", lambda o: o.hard_tanh(X * 2)),
    ("celu", lambda o: o.celu(X, 0.5)), ("sparse_plus", lambda o: o.sparse_plus(X * 2)),
    ("squareplus", lambda o: o.squareplus(X)), ("threshold", lambda o: o.threshold(X, 0.2, -1.0)),
    ("soft_shrink", lambda o: o.soft_shrink(X)), ("hard_shrink", lambda o: o.hard_shrink(X)),
    ("tanh_shrink", lambda o: o.tanh_shrink(X)), 
    ("multi_hot", lambda o: o.multi_hot(np.array([[0, 2], [1, 1]]), 4)),
    ("dot_product_attention", lambda o: o.dot_product_attention(X3.reshape(2, 3, 2, 2), X3.reshape(2, 3, 2, 2),
                                                               X3.reshape(2, 3, 2, 2) * 2)),
    ("dot_product_attention_causal", lambda o: o.dot_product_attention(X3.reshape(2, 3, 2, 2), X3.reshape(2, 3, 2, 2),
                                                                      X3.reshape(2, 3, 2, 2), is_causal=True)),
    ("conv", lambda o: o.conv(IMG, K33, strides=2, padding="same")),
    ("conv_1d_dilated", lambda o: o.conv(X3, np.ones((2, 4, 5), "float32"), dilation_rate=2, padding="same")),
    ("depthwise_conv", lambda o: o.depthwise_conv(IMG, np.ones((3, 3, 3, 2), "float32") * 0.1, padding="same")),
    ("separable_conv", lambda o: o.separable_conv(IMG, np.ones((3, 3, 3, 1), "float32") * 0.1,
                                                  np.ones((1, 1, 3, 5), "float32"))),
    ("conv_transpose", lambda o: o.conv_transpose(IMG, np.ones((3, 3, 5, 3), "float32") * 0.1, strides=2,
                                                  padding="same")),
    ("max_pool", lambda o: o.max_pool(IMG, 2)), ("average_pool", lambda o: o.average_pool(IMG, 3, 2)),
    ("max_pool_same", lambda o: o.max_pool(IMG, 3, 2, padding="same")),
    ("scatter", lambda o: o.scatter(np.array([[0, 1], [2, 3], [0, 1]]), np.array([1.0, 2.0, 3.0]), (3, 4))),
    ("scatter_update", lambda o: o.scatter_update(X, np.array([[0, 1], [2, 3]]), np.array([9.0, 8.0], "float32"))),
    ("slice_update", lambda o: o.slice_update(X, (1, 2), np.ones((2, 2), "float32"))),
    ("fori_loop", lambda o: o.fori_loop(0, 4, lambda i, v: v * 2.0 + i, X)),
    ("scan", lambda o: o.scan(lambda c, x: (c + x, c * x), np.zeros(4, "float32"), X)),
    ("map", lambda o: o.map(lambda r: o.sum(r * r), X)),
    ("vectorized_map", lambda o: o.vectorized_map(lambda r: o.flip(r, 0) * 2.0, o.convert_to_tensor(X))),
    ("switch", lambda o: o.switch(1, [lambda v: v + 1.0, lambda v: v * 3.0], X)),
    ("saturate_cast", lambda o: o.saturate_cast(X * 1000, "int8")),
    ("psnr", lambda o: o.psnr(P, P * 0.9, 1.0)),
    ("tile_short_repeats", lambda o: o.tile(X, (2,))), ("tile_long_repeats", lambda o: o.tile(X, (2, 1, 3))),
    ("round_decimals", lambda o: o.round(X * 10, 1)),
    ("scalar_in_scalar_out", lambda o: o.sigmoid(np.float32(0.3))), ("scalar_add", lambda o: o.add(np.array(2.0), 1.0)),
]


def _numpy(tree):
    if isinstance(tree, (list, tuple)):
        return [_numpy(t) for t in tree]
    return np.asarray(kops.convert_to_numpy(tree)) if torch.is_tensor(tree) else np.asarray(tree)


def _assert_close(got, want, name):
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), name
        for g, w in zip(got, want):
            _assert_close(g, w, name)
        return
    assert got.shape == want.shape, f"{name}: shape {got.shape} != Keras's {want.shape}"
    if want.dtype == bool or got.dtype == bool:
        np.testing.assert_array_equal(got, want, err_msg=name)
    else:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=2e-4, atol=2e-5,
                                   err_msg=name)


# Where Keras's torch backend departs from the NumPy semantics Keras documents (symmetric padding repeats the
# edge, an int pad width pads the last axis only, sparsemax does not sum to 1, ifft is missing), NumPy is
# the reference, as it is for Keras's TensorFlow and JAX backends.
def _sparsemax(z):
    z_sorted = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    cums = np.cumsum(z_sorted, axis=-1)
    support = 1 + k * z_sorted > cums
    k_z = support.sum(-1, keepdims=True)
    tau = (np.take_along_axis(cums, k_z - 1, -1) - 1) / k_z
    return np.maximum(z - tau, 0)


NUMPY = [
    ("pad_symmetric", lambda o: o.pad(X, ((1, 2), (2, 1)), mode="symmetric"),
     np.pad(X, ((1, 2), (2, 1)), mode="symmetric")),
    ("pad_int_width", lambda o: o.pad(X, 1, mode="reflect"), np.pad(X, 1, mode="reflect")),
    ("pad_int_value", lambda o: o.pad(X, 2, constant_values=2.5), np.pad(X, 2, constant_values=2.5)),
    ("sparsemax", lambda o: o.sparsemax(X * 2), _sparsemax(X.astype(np.float64) * 2)),
    ("ifft", lambda o: o.ifft((X, Y)), [np.fft.ifft(X + 1j * Y).real, np.fft.ifft(X + 1j * Y).imag]),
    ("cross_square", lambda o: o.cross(X[:, :3], Y[:, :3]), np.cross(X[:, :3], Y[:, :3])),
    ("average_pool_same", lambda o: o.average_pool(IMG[..., :1], 3, 2, padding="same"),
     np.stack([[[IMG[n, 2 * i:2 * i + 3, 2 * j:2 * j + 3, 0].mean() for j in range(3)]
                for i in range(3)] for n in range(2)])[..., None]),
]


@pytest.mark.parametrize("fn,want", [c[1:] for c in NUMPY], ids=[c[0] for c in NUMPY])
def test_eager_values_match_numpy_where_keras_torch_departs(fn, want, request):
    want = [np.asarray(w) for w in want] if isinstance(want, list) else np.asarray(want)
    _assert_close(_numpy(fn(fops)), want, request.node.callspec.id)


@pytest.mark.parametrize("fn", [c[1] for c in VALUES], ids=[c[0] for c in VALUES])
def test_eager_values_match_keras(fn, request):
    name = request.node.callspec.id
    want = _numpy(fn(kops))
    got = _numpy(fn(fops))
    _assert_close(got, want, name)


def test_every_keras_op_used_by_public_examples_exists():
    used = ["tensordot", "einsum", "split", "eye", "linspace", "top_k", "arccos", "pad", "moments", "conv",
            "erf", "any", "all", "isnan", "cumsum", "argsort", "sort", "flip", "repeat", "tril", "triu", "norm",
            "rsqrt", "normalize", "logical_xor", "floor_divide", "mod", "take_along_axis", "swapaxes", "moveaxis",
            "dot", "outer", "segment_sum", "in_top_k", "count_nonzero", "nan_to_num", "log2", "log10", "unstack",
            "hstack", "vstack", "meshgrid", "scatter", "slice_update", "fori_loop", "vectorized_map", "fft2",
            "depthwise_conv", "max_pool", "average_pool", "dot_product_attention"]
    assert [n for n in used if not hasattr(fops, n)] == []
    assert fops.numpy.tensordot is fops.tensordot and fops.nn.conv is fops.conv
    assert fops.linalg.norm is fops.norm and fops.math.top_k is fops.top_k


# ------------------------------------------------------------------------------------------ gradients
def _traced_gradients(fn, arrays):
    b = GraphBuilder()
    with TraceContext(b, training=True).active():
        values = [b.input(f"x{k}", onnx.TensorProto.FLOAT, a.shape) for k, a in enumerate(arrays)]
        with of.GradientTape() as tape:
            out = fn(fops, *values)
            loss = fops.sum(out * fops.convert_to_tensor(_upstream(out.shape)))
        grads = tape.gradient(loss, values)
    for k, g in enumerate(grads):
        b.output(g, f"g{k}")
    sess = ort.InferenceSession(check_full(b.to_model()).SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {f"x{k}": a for k, a in enumerate(arrays)})


def _upstream(shape):
    return np.random.default_rng(7).normal(size=tuple(shape)).astype("float32")


GRADS = [
    ("arctan2", lambda o, a, c: o.arctan2(a, c), [X, Y]), ("logaddexp", lambda o, a, c: o.logaddexp(a, c), [X, Y]),
    ("hypot", lambda o, a, c: o.hypot(a, c), [X, Y]), ("mod", lambda o, a: o.mod(a * 3.0, 1.7), [X]),
    ("cbrt", lambda o, a: o.cbrt(a + 3.0), [X]), ("erfinv", lambda o, a: o.erfinv(a), [P * 1.6 - 0.8]),
    ("sort", lambda o, a: o.sort(a, axis=0), [X]), ("top_k", lambda o, a: o.top_k(a, 2)[0], [X]),
    ("cumprod", lambda o, a: o.cumprod(a, axis=1), [X]), ("cumsum", lambda o, a: o.cumsum(a, axis=0), [X]),
    ("roll", lambda o, a: o.roll(a, 1, axis=1), [X]), ("repeat", lambda o, a: o.repeat(a, 2, axis=1), [X]),
    ("pad_reflect", lambda o, a: o.pad(a, ((1, 1), (2, 0)), mode="reflect"), [X]),
    ("tensordot", lambda o, a, c: o.tensordot(a, c, axes=([1], [1])), [X, Y]),
    ("tril", lambda o, a: o.tril(a), [X]), ("diagonal", lambda o, a: o.diagonal(a, 1), [X]),
    ("quantile", lambda o, a: o.quantile(a, 0.4, axis=1), [X]),
    ("segment_sum", lambda o, a: o.segment_sum(a, np.array([1, 0, 1]), num_segments=2), [X]),
    ("norm", lambda o, a: o.norm(a, axis=1), [X]), ("normalize", lambda o, a: o.normalize(a), [X]),
    ("moments", lambda o, a: o.moments(a, axes=[0])[1], [X]), ("glu", lambda o, a: o.glu(a), [X]),
    ("conv", lambda o, a, k: o.conv(a, k, padding="same"), [IMG, R.normal(size=(3, 3, 3, 2)).astype("float32")]),
    ("depthwise_conv", lambda o, a, k: o.depthwise_conv(a, k, strides=2),
     [IMG, R.normal(size=(2, 2, 3, 2)).astype("float32")]),
    ("conv_transpose", lambda o, a, k: o.conv_transpose(a, k, strides=2, padding="same"),
     [IMG, R.normal(size=(3, 3, 2, 3)).astype("float32")]),
    ("fft2", lambda o, a, c: o.fft2((a, c))[0], [X3, X3 * 0.5]), ("rfft", lambda o, a: o.rfft(a)[1], [X3]),
    ("irfft", lambda o, a, c: o.irfft((a, c)), [X, Y]),
    ("inv", lambda o, a: o.linalg.inv(a), [SQ]),
    ("scatter_update", lambda o, a, u: o.scatter_update(a, np.array([[0, 1], [2, 3]]), u),
     [X, np.array([1.0, 2.0], "float32")]),
    ("slice_update", lambda o, a, u: o.slice_update(a, (1, 1), u), [X, np.ones((2, 2), "float32")]),
    ("dot_product_attention", lambda o, q, k: o.dot_product_attention(q, k, k, is_causal=True),
     [X3.reshape(2, 3, 2, 2), Y.reshape(1, 3, 2, 2).repeat(2, 0)]),
]


@pytest.mark.parametrize("fn,arrays", [c[1:] for c in GRADS], ids=[c[0] for c in GRADS])
def test_traced_gradients_match_torch_through_keras(fn, arrays):
    got = _traced_gradients(fn, arrays)
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(kops, *tensors)
    (out * torch.tensor(_upstream(out.shape), dtype=torch.float64)).sum().backward()
    for g, t in zip(got, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=2e-3, atol=2e-4)


def test_ops_on_functional_tensors_build_models_like_keras():
    """The new ops on KerasTensors become graph nodes; the model gives Keras's numbers."""
    def build(K):
        o = K.ops
        inp = K.Input((3, 4))
        parts = o.split(inp, 2, axis=-1)
        x = o.concatenate([o.flip(parts[0], axis=1), o.cumsum(parts[1], axis=1)], axis=-1)
        x = o.tensordot(x, o.eye(4), axes=1) + o.moments(inp, axes=[2], keepdims=True)[1]
        return K.Model(inp, o.top_k(o.reshape(x, (-1, 12)), 3)[0])

    k, f = build(keras), build(of.keras)
    np.testing.assert_allclose(f.predict(X3, verbose=0), k.predict(X3, verbose=0), rtol=1e-5, atol=1e-6)


def test_tile_by_a_computed_repeats_vector_in_a_layer_matches_keras():
    """The miniature-GPT causal mask: ``ops.tile(mask, concatenate([batch, [1, 1]]))`` inside call()."""
    def build(K):
        o = K.ops

        class Causal(K.layers.Layer):
            def call(self, x):
                n = o.shape(x)[1]
                mask = o.cast(o.arange(n)[:, None] >= o.arange(n), "float32")
                mult = o.concatenate([o.expand_dims(o.shape(x)[0], -1), o.convert_to_tensor([1, 1])], 0)
                return o.matmul(o.tile(o.reshape(mask, [1, n, n]), mult), x)

        inp = K.Input((None, 4))
        return K.Model(inp, Causal()(inp))

    np.testing.assert_allclose(build(of.keras).predict(X3, verbose=0), build(keras).predict(X3, verbose=0),
                               rtol=1e-6, atol=1e-6)


def test_activations_take_arrays_and_functional_tensors_like_keras():
    logits = X[:1]
    for name in ("softmax", "gelu", "relu", "silu", "hard_sigmoid", "elu"):
        want = kops.convert_to_numpy(getattr(keras.activations, name)(kops.convert_to_tensor(logits)))
        np.testing.assert_allclose(np.asarray(getattr(of.keras.activations, name)(logits)), want, rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    inp = of.keras.Input((4,))
    model = of.keras.Model(inp, of.keras.activations.softmax(inp * 2.0))
    np.testing.assert_allclose(model.predict(X, verbose=0),
                               kops.convert_to_numpy(keras.activations.softmax(kops.convert_to_tensor(X * 2.0))),
                               rtol=1e-5, atol=1e-6)
    again = of.keras.Model.from_config(model.get_config())
    np.testing.assert_allclose(again.predict(X, verbose=0), model.predict(X, verbose=0))
