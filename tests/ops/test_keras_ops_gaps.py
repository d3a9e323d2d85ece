"""The keras.ops functions added to close the gap with Keras 3.15 (NaN reductions, bitwise ops, special
functions, windows, correlation, depth/space, adaptive pooling, unfold/fold, slogdet, cdist, view, rearrange): values
against Keras on the TensorFlow backend (run once in a subprocess, ``keras_ops_gap_cases.py``), eagerly and in
traced graphs with the inputs' exact dtypes; NumPy where Keras's TensorFlow backend departs from NumPy;
gradients against torch autograd; functional models, layers and ``tf.function``; and the errors."""
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
from tests.ops.keras_ops_gap_cases import CASES, IMG, NCHW, SQ, WINDOWS, XN, A1, V4, X, Y
from tests import tf_server

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keras_tf(tmp_path_factory):
    """Every case's ``keras.ops`` result on the TensorFlow backend (one Keras process for the module)."""
    out = tmp_path_factory.mktemp("keras_tf") / "results.npz"
    run = tf_server.run(["-m", "tests.ops.keras_ops_gap_cases", str(out)], cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
                        timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return dict(np.load(out))


def _want(results: dict, name: str):
    if name in results:
        return results[name]
    parts = sorted((k for k in results if k.startswith(f"{name}/")), key=lambda k: k.split("/")[1])
    assert parts and not parts[0].endswith("error"), results.get(f"{name}/error", f"no Keras result for {name}")
    return [results[k] for k in parts]


def _assert_close(got, want, name, dtype=False):
    if isinstance(want, list):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), name
        for g, w in zip(got, want):
            _assert_close(g, w, name, dtype)
        return
    got = np.asarray(got)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    if dtype:
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=name)
    else:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=2e-5, atol=2e-6,
                                   err_msg=name)


def _traced(fn, arrays):
    """``fn(ops, *inputs)`` in a graph whose inputs have the arrays' exact dtypes, run by onnxruntime."""
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        values = [b.input(f"x{k}", onnx_dtype(a.dtype), a.shape) for k, a in enumerate(arrays)]
        out = fn(fops, *values)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    for k, o in enumerate(outs):
        b.output(o, f"y{k}")
    sess = ort.InferenceSession(check_full(b.to_model()).SerializeToString(), providers=["CPUExecutionProvider"])
    results = sess.run(None, {f"x{k}": a for k, a in enumerate(arrays)})
    return results if isinstance(out, (list, tuple)) else results[0]


# Keras 3.15's TensorFlow nanpercentile fails on a list of percentiles with an axis; NumPy is the reference.
NUMPY_REFERENCE = {"nanpercentile": lambda: np.nanpercentile(XN, [25.0, 75.0], axis=2).astype("float32")}


def _reference(keras_tf, name):
    return NUMPY_REFERENCE[name]() if name in NUMPY_REFERENCE else _want(keras_tf, name)


@pytest.mark.parametrize("fn,arrays", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_eager_values_match_keras_tensorflow(fn, arrays, keras_tf, request):
    name = request.node.callspec.id
    _assert_close(fn(fops, *arrays), _reference(keras_tf, name), name)


@pytest.mark.parametrize("fn,arrays", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_traced_values_and_dtypes_match_keras_tensorflow(fn, arrays, keras_tf, request):
    name = request.node.callspec.id
    _assert_close(_traced(fn, arrays), _reference(keras_tf, name), name, dtype=True)


@pytest.mark.parametrize("fn", [c[1] for c in WINDOWS], ids=[c[0] for c in WINDOWS])
def test_windows_match_keras_tensorflow(fn, keras_tf, request):
    name = request.node.callspec.id
    _assert_close(fn(fops), _want(keras_tf, name), name, dtype=True)


# ------------------------------------------------------------------------------------------ NumPy semantics
def test_all_nan_slices_follow_keras():
    x = np.full((2, 3), np.nan, "float32")
    x[1, 0] = 2.0
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        for name in ("nanmax", "nanmin", "nanmean", "nanvar", "nanmedian"):
            np.testing.assert_array_equal(getattr(fops, name)(x, axis=1), getattr(np, name)(x, axis=1), name)
    np.testing.assert_array_equal(fops.nansum(x, axis=1), [0.0, 2.0])
    np.testing.assert_array_equal(fops.nanprod(x, axis=1), [1.0, 2.0])
    np.testing.assert_array_equal(fops.nanargmax(x, axis=1), [-1, 0])   # NumPy raises; Keras gives -1


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"])
def test_bitwise_ops_are_exact_in_every_integer_type(dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, size=24, dtype=dtype, endpoint=True)
    y = rng.integers(info.min, info.max, size=24, dtype=dtype, endpoint=True)
    s = rng.integers(0, 8 * x.itemsize + 3, size=24).astype(dtype)   # counts past the width included
    for name, want in (("bitwise_and", np.bitwise_and(x, y)), ("bitwise_or", np.bitwise_or(x, y)),
                       ("bitwise_xor", np.bitwise_xor(x, y)), ("left_shift", np.left_shift(x, s)),
                       ("right_shift", np.right_shift(x, s))):
        _assert_close(_traced(lambda o, a, c: getattr(o, name)(a, c), [x, y if "bitwise" in name else s]), want,
                      f"{name} {dtype}", dtype=True)
    _assert_close(_traced(lambda o, a: o.bitwise_not(a), [x]), np.invert(x), dtype, dtype=True)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"])
def test_gcd_and_lcm_in_every_integer_type(dtype):
    rng = np.random.default_rng(2)
    info = np.iinfo(dtype)
    x = rng.integers(max(info.min + 1, -10**9), min(info.max, 10**9), size=30, dtype=dtype)
    y = rng.integers(max(info.min + 1, -10**9), min(info.max, 10**9), size=30, dtype=dtype)
    x[:2] = 0
    y[1:3] = 0
    _assert_close(_traced(lambda o, a, c: o.gcd(a, c), [x, y]), np.gcd(x, y), dtype, dtype=True)
    small_x, small_y = (x % 60).astype(dtype), (y % 50).astype(dtype)
    _assert_close(_traced(lambda o, a, c: o.lcm(a, c), [small_x, small_y]), np.lcm(small_x, small_y), dtype,
                  dtype=True)
    # The worst case of Euclid's algorithm: consecutive Fibonacci numbers.
    fib = [1, 1]
    while fib[-1] < 2**62:
        fib.append(fib[-1] + fib[-2])
    _assert_close(fops.gcd(np.array(fib[-2:-1]), np.array(fib[-3:-2])), np.array([1]), "fibonacci")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nextafter_matches_numpy_bit_for_bit(dtype):
    info = np.finfo(dtype)
    special = np.array([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, np.inf, -np.inf, np.nan, info.max, info.smallest_normal,
                        info.smallest_subnormal, 1.0], dtype)
    toward = np.array([1.0, -1.0, 2.0, -2.0, 0.0, 1.0, 0.0, 0.0, 1.0, np.inf, 0.0, 0.0, 1.0], dtype)
    rng = np.random.default_rng(3)
    x = np.concatenate([special, (rng.normal(size=64) * 10.0 ** rng.integers(-30, 30, size=64)).astype(dtype)])
    y = np.concatenate([toward, rng.normal(size=64).astype(dtype)])
    with np.errstate(over="ignore"):
        want = np.nextafter(x, y)
    np.testing.assert_array_equal(_traced(lambda o, a, c: o.nextafter(a, c), [x, y]), want)


def test_where_keras_tensorflow_departs_from_numpy_numpy_decides():
    # tf.math.angle gives 0 for NaN; NumPy, torch and JAX give NaN.
    np.testing.assert_array_equal(fops.angle(np.array([-1.0, 0.0, np.nan], "float32")),
                                  np.angle(np.array([-1.0, 0.0, np.nan], "float32")))
    # 'same' with the longer sequence second: Keras's TensorFlow slice is one off NumPy's for an even length.
    for n, m in ((2, 4), (4, 7), (3, 6)):
        a, c = A1[:n], np.tile(V4, 2)[:m]
        _assert_close(fops.correlate(a, c, mode="same"), np.correlate(a, c, mode="same"), f"same {n} {m}")
        _assert_close(fops.correlate(a, c), np.correlate(a, c), f"valid {n} {m}")
    # nancumsum keeps infinities (Keras's TensorFlow nan_to_num turns them into the largest float).
    x = np.array([1.0, np.nan, np.inf, 2.0], "float32")
    np.testing.assert_array_equal(fops.nancumsum(x), np.nancumsum(x))
    np.testing.assert_allclose(fops.corrcoef(X[0]), np.corrcoef(X[0]), rtol=1e-6)   # Keras TF: no 1-D


def test_view_reinterprets_integers_and_refuses_what_onnx_cannot_do():
    x = np.array([-1, 5, -300], "int32")
    _assert_close(_traced(lambda o, a: o.view(a, "uint32"), [x]), x.view("uint32"), "view", dtype=True)
    b8 = np.array([-1, 0, 7], "int8")
    _assert_close(_traced(lambda o, a: o.view(a, "uint8"), [b8]), b8.view("uint8"), "view8", dtype=True)
    with pytest.raises(ValueError, match="bit-cast.*float32.*'int32'"):
        fops.view(X, "int32")


# ------------------------------------------------------------------------------------------ gradients
def _upstream(shape):
    return np.random.default_rng(7).normal(size=tuple(shape)).astype("float32")


def _traced_gradients(fn, arrays):
    b = GraphBuilder()
    with TraceContext(b, training=True).active():
        values = [b.input(f"x{k}", onnx_dtype(a.dtype), a.shape) for k, a in enumerate(arrays)]
        with of.GradientTape() as tape:
            out = fn(fops, *values)
            loss = fops.sum(out * fops.convert_to_tensor(_upstream(out.shape)))
        grads = tape.gradient(loss, values)
    for k, g in enumerate(grads):
        b.output(g, f"g{k}")
    sess = ort.InferenceSession(check_full(b.to_model()).SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {f"x{k}": a for k, a in enumerate(arrays)})


F = torch.nn.functional
XQ = np.where(np.isnan(XN), np.nan, XN + np.arange(60, dtype="float32").reshape(3, 4, 5) * 0.01)  # no ties
XQ[0, 1, 0] = 1.0   # an all-NaN row has a NaN quantile, whose gradient torch sends to one of the NaNs

XN2 = np.where(np.isnan(XN[0]) & np.isnan(XN[2]), 0.5, XN[2])   # both NaN: no output to differentiate


def _torch_nanvar(t, axis):
    """The variance of the non-NaN entries, written with masks so that NaNs get no (NaN) gradient."""
    valid = ~torch.isnan(t)
    clean = torch.where(valid, t, 0.0)
    count = valid.sum(axis, keepdim=True)
    centered = torch.where(valid, clean - clean.sum(axis, keepdim=True) / count, 0.0)
    return ((centered ** 2).sum(axis, keepdim=True) / count).squeeze(axis)


GRADS = [
    ("nansum", lambda o, a: o.nansum(a, axis=1), lambda t: torch.nansum(t, 1), [XN]),
    ("nanmean", lambda o, a: o.nanmean(a, axis=(0, 2)), lambda t: torch.nanmean(t, (0, 2)), [XN]),
    ("nanvar", lambda o, a: o.nanvar(a, axis=2), lambda t: _torch_nanvar(t, 2), [XN]),
    ("nanmax", lambda o, a: o.nanmax(a, axis=2),
     lambda t: torch.where(torch.isnan(t), -torch.inf, t).amax(2), [XN]),
    ("nanprod", lambda o, a: o.nanprod(a, axis=0), lambda t: torch.where(torch.isnan(t), 1.0, t).prod(0), [XN]),
    ("nanquantile", lambda o, a: o.nanquantile(a, 0.3, axis=2), lambda t: torch.nanquantile(t, 0.3, dim=2), [XQ]),
    ("nancumsum", lambda o, a: o.nancumsum(a, axis=1), lambda t: torch.where(torch.isnan(t), 0.0, t).cumsum(1),
     [XN]),
    ("erfc", lambda o, a: o.erfc(a), torch.special.erfc, [X * 3]),
    ("i0", lambda o, a: o.i0(a), torch.special.i0, [X * 4]),
    ("fmax", lambda o, a, c: o.fmax(a, c), torch.fmax, [XN[0], XN2]),
    ("ldexp", lambda o, a: o.ldexp(a, np.array([2, -1, 0, 3])), lambda t: t * torch.tensor([4.0, 0.5, 1.0, 8.0]),
     [X]),
    ("corrcoef", lambda o, a: o.corrcoef(a), torch.corrcoef, [X]),
    ("correlate", lambda o, a, c: o.correlate(a, c, mode="full"),
     lambda a, c: F.conv1d(F.pad(a[None, None], (3, 3)), c[None, None])[0, 0], [A1, V4]),
    ("slogdet", lambda o, a: o.slogdet(a)[1], lambda t: torch.linalg.slogdet(t)[1], [SQ]),
    ("cdist", lambda o, a, c: o.cdist(a, c), torch.cdist, [X, Y[:2]]),
    ("depth_to_space", lambda o, a: o.depth_to_space(a, 2),
     lambda t: t.reshape(2, 4, 6, 2, 2, 2).permute(0, 1, 3, 2, 4, 5).reshape(2, 8, 12, 2), [IMG]),
    ("space_to_depth", lambda o, a: o.space_to_depth(a, 2, data_format="channels_first"),
     lambda t: t.reshape(2, 4, 3, 2, 4, 2).permute(0, 3, 5, 1, 2, 4).reshape(2, 16, 3, 4), [IMG]),
    ("adaptive_average_pool", lambda o, a: o.adaptive_average_pool(a, (3, 4), data_format="channels_first"),
     lambda t: F.adaptive_avg_pool2d(t, (3, 4)), [NCHW]),
    ("adaptive_max_pool", lambda o, a: o.adaptive_max_pool(a, (3, 4), data_format="channels_first"),
     lambda t: F.adaptive_max_pool2d(t, (3, 4)), [NCHW]),
    ("unfold", lambda o, a: o.unfold(a, (3, 2), dilation=(1, 2), padding=1, stride=2),
     lambda t: F.unfold(t, (3, 2), dilation=(1, 2), padding=1, stride=2), [NCHW]),
    ("fold", lambda o, a: o.fold(a, (7, 6), 3, padding=1, stride=2),
     lambda t: F.fold(t, (7, 6), 3, padding=1, stride=2), [np.random.default_rng(4).normal(size=(2, 27, 12))
                                                           .astype("float32")]),
]


@pytest.mark.parametrize("fn,reference,arrays", [c[1:] for c in GRADS], ids=[c[0] for c in GRADS])
def test_traced_gradients_match_torch_autograd(fn, reference, arrays):
    got = _traced_gradients(fn, arrays)
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = reference(*tensors)
    (out * torch.tensor(_upstream(out.shape), dtype=torch.float64)).sum().backward()
    for g, t in zip(got, tensors):
        want = torch.nan_to_num(t.grad, nan=0.0).numpy()   # torch's nan* give NaN entries no gradient
        np.testing.assert_allclose(np.nan_to_num(g), want, rtol=2e-3, atol=2e-4)


# ------------------------------------------------------------------------------------------ Keras programs
def test_functional_model_with_the_new_ops_round_trips_its_config():
    inp = of.keras.Input((4, 5))
    x = of.keras.ops.nanmean(inp, axis=-1)
    x = of.keras.ops.concatenate([x, of.keras.ops.nanquantile(inp, 0.5, axis=-1), of.keras.ops.erfc(x)], axis=-1)
    model = of.keras.Model(inp, of.keras.ops.nn.one_hot(of.keras.ops.nanargmax(inp, axis=-1), 5) + x[:, :1, None])
    clone = of.keras.Model.from_config(model.get_config())
    x_np = XN[:, :, :]
    with np.errstate(all="ignore"):
        mean, median = np.nanmean(x_np, -1), np.nanmedian(x_np, -1)
    from scipy.special import erfc
    want_x = np.concatenate([mean, median, erfc(mean)], -1)
    idx = np.where(np.isnan(x_np).all(-1), -1, np.nanargmax(np.where(np.isnan(x_np), -np.inf, x_np), -1))
    want = np.eye(5, dtype="float32")[idx] * (idx[..., None] >= 0) + want_x[:, :1, None]
    for m in (model, clone):
        np.testing.assert_allclose(m.predict(x_np, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_rearrange_keeps_a_free_batch_in_a_functional_model():
    inp = of.keras.Input((4, 6, 8))
    model = of.keras.Model(inp, of.keras.ops.rearrange(inp, "b (h h1) w c -> b h w (c h1)", h1=2))
    assert model.output.shape == (None, 2, 6, 16)
    for batch in (1, 3):
        x = np.random.default_rng(batch).normal(size=(batch, 4, 6, 8)).astype("float32")
        want = x.reshape(batch, 2, 2, 6, 8).transpose(0, 1, 3, 4, 2).reshape(batch, 2, 6, 16)
        np.testing.assert_array_equal(of.keras.Model.from_config(model.get_config()).predict(x, verbose=0), want)


def test_layer_call_and_tf_function_use_the_new_ops():
    class Patches(of.keras.layers.Layer):
        def call(self, x):
            cols = of.keras.ops.unfold(x, 2, stride=2)
            return of.keras.ops.fold(cols, (4, 6), 2, stride=2) + of.keras.ops.adaptive_max_pool(
                x, (4, 6), data_format="channels_first")

    model = of.keras.Sequential([of.keras.Input((3, 4, 6)), Patches()])
    x = NCHW[:, :, :4]
    np.testing.assert_allclose(model.predict(x, verbose=0), 2 * x, rtol=1e-6)

    @of.function
    def shifted(a, s):
        return of.keras.ops.bitwise_xor(of.keras.ops.left_shift(a, s), of.keras.ops.right_shift(a, 1))

    a, s = np.array([[-5, 3], [7, -8]], "int32"), np.array([[1, 2], [3, 0]], "int32")
    np.testing.assert_array_equal(shifted(a, s), (a << s) ^ (a >> 1))


def test_namespaces_hold_the_new_ops_where_keras_does():
    assert fops.nn.one_hot is fops.one_hot and fops.nn.unfold is fops.unfold
    assert fops.numpy.nansum is fops.nansum and fops.numpy.slogdet is fops.slogdet
    assert fops.math.erfc is fops.erfc and fops.math.cdist is fops.cdist
    assert of.keras.ops.nn.depth_to_space is fops.depth_to_space and of.keras.ops.rearrange is fops.rearrange


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("call,error,match", [
    (lambda: fops.bitwise_and(X, X), TypeError, "integer or bool.*float32"),
    (lambda: fops.left_shift(X, 1), TypeError, "left_shift"),
    (lambda: fops.gcd(X, 2), TypeError, "gcd takes integer"),
    (lambda: fops.ldexp(X, 1.5), TypeError, "exponent `x2`"),
    (lambda: fops.nanquantile(XN, 0.5, method="cubic"), ValueError, "method='cubic'"),
    (lambda: fops.nanquantile(XN, 1.5), ValueError, r"\[0, 1\].*1.5"),
    (lambda: fops.bartlett(2.5), ValueError, "x=2.5"),
    (lambda: fops.correlate(A1, V4, mode="middle"), ValueError, "mode='middle'"),
    (lambda: fops.depth_to_space(IMG[..., :6], 2), ValueError, "block_size\\*\\*2 = 4"),
    (lambda: fops.space_to_depth(IMG, 3), ValueError, "block_size=3"),
    (lambda: fops.unfold(NCHW.astype("int32"), 2), TypeError, "int32"),
    (lambda: fops.fold(np.ones((1, 8, 5), "float32"), (4, 4), 2), ValueError, "9 blocks"),
    (lambda: fops.adaptive_average_pool(IMG, (2, 2, 2)), ValueError, "output_size"),
    (lambda: fops.slogdet(X), ValueError, "square"),
    (lambda: fops.cdist(X, Y[:, :3]), ValueError, "last axes"),
    (lambda: fops.nancumsum(XN, axis=5), ValueError, "axis"),
    (lambda: fops.rearrange(IMG, "b h w -> b h w"), ValueError, "names 3 input axes"),
    (lambda: fops.rearrange(IMG, "b h w c -> b h w"), ValueError, "once on each side"),
    (lambda: fops.rearrange(IMG, "b (h1 h) w c -> b h1 h w c"), ValueError, r"group \(h1 h\)"),
    (lambda: fops.rearrange(IMG, "b (h1 h) w c -> b h1 h w c", h1=3), ValueError, "size 4 cannot split"),
])
def test_bad_arguments_name_themselves(call, error, match):
    with pytest.raises(error, match=match):
        call()
