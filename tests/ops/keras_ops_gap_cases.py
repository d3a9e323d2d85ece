"""The cases of ``test_keras_ops_gaps.py``, importable without Keras: the test runs each one with onnxforge's ops
(eagerly and traced), and a Keras process on the TensorFlow backend runs them with ``keras.ops``
(``python -m tests.ops.keras_ops_gap_cases OUT.npz``).

A case is ``(name, fn(ops, *arrays), arrays)``; ``fn`` only calls ``ops`` functions on its arrays.
"""
from __future__ import annotations

import sys

import numpy as np

R = np.random.default_rng(0)
X = R.normal(size=(3, 4)).astype("float32")
Y = R.normal(size=(3, 4)).astype("float32")
XN = R.normal(size=(3, 4, 5)).astype("float32")
XN[R.random(XN.shape) < 0.3] = np.nan
XN[1, :, 2] = np.nan                      # an all-NaN slice along axis 1
XN[0, 1, :] = np.nan                      # and one along axis 2
WIDE = (R.normal(size=(12,)) * 4).astype("float32")
I32 = R.integers(-40, 40, size=(3, 4)).astype("int32")
J32 = R.integers(-40, 40, size=(3, 4)).astype("int32")
I64 = R.integers(-10**12, 10**12, size=(6,)).astype("int64")
J64 = R.integers(-10**6, 10**6, size=(6,)).astype("int64")
SHIFT = R.integers(0, 31, size=(3, 4)).astype("int32")
IMG = R.normal(size=(2, 4, 6, 8)).astype("float32")
IMG_ODD = R.normal(size=(2, 7, 10, 3)).astype("float32")
NCHW = R.normal(size=(2, 3, 7, 6)).astype("float32")
SQ = (R.normal(size=(2, 3, 3)) + np.eye(3)).astype("float32")
A1 = R.normal(size=(7,)).astype("float32")
V3 = R.normal(size=(3,)).astype("float32")
V4 = R.normal(size=(4,)).astype("float32")

NAN_REDUCTIONS = [
    (f"{name}_{tag}", (lambda n, kw: lambda o, a: getattr(o, n)(a, **kw))(name, kw), [XN])
    for name in ("nansum", "nanmean", "nanmax", "nanmin", "nanprod", "nanvar", "nanstd", "nanmedian")
    for tag, kw in (("all", {}), ("axis1", {"axis": 1}), ("axes02_keep", {"axis": (0, 2), "keepdims": True}),
                    ("last", {"axis": -1}))
]

CASES = NAN_REDUCTIONS + [
    ("nansum_int", lambda o, a: o.nansum(a, axis=0), [I32]),
    ("nanmax_int", lambda o, a: o.nanmax(a, axis=1), [I32]),
    ("nanmean_int", lambda o, a: o.nanmean(a, axis=1), [I32]),
    ("nanargmax", lambda o, a: o.nanargmax(a, axis=1), [XN]),
    ("nanargmin", lambda o, a: o.nanargmin(a, axis=2), [XN]),
    ("nanargmax_flat", lambda o, a: o.nanargmax(a), [XN]),
    ("nanargmin_keep", lambda o, a: o.nanargmin(a, axis=0, keepdims=True), [XN]),
    ("nancumsum", lambda o, a: o.nancumsum(a, axis=1), [XN]),
    ("nancumprod", lambda o, a: o.nancumprod(a, axis=2), [XN]),
    ("nancumsum_flat", lambda o, a: o.nancumsum(a), [XN]),
    ("nanquantile", lambda o, a: o.nanquantile(a, 0.3, axis=1), [XN]),
    ("nanquantile_list_keep", lambda o, a: o.nanquantile(a, [0.1, 0.9], axis=(0, 2), keepdims=True), [XN]),
    ("nanquantile_lower", lambda o, a: o.nanquantile(a, 0.4, axis=-1, method="lower"), [XN]),
    ("nanquantile_higher", lambda o, a: o.nanquantile(a, 0.4, axis=-1, method="higher"), [XN]),
    ("nanquantile_nearest", lambda o, a: o.nanquantile(a, 0.5, axis=0, method="nearest"), [XN]),
    ("nanquantile_midpoint", lambda o, a: o.nanquantile(a, 0.3, axis=1, method="midpoint"), [XN]),
    ("nanpercentile", lambda o, a: o.nanpercentile(a, [25.0, 75.0], axis=2), [XN]),
    ("nanpercentile_all", lambda o, a: o.nanpercentile(a, 60.0), [XN]),
    ("bitwise_and", lambda o, a, c: o.bitwise_and(a, c), [I32, J32]),
    ("bitwise_or", lambda o, a, c: o.bitwise_or(a, c), [I32, J32]),
    ("bitwise_xor", lambda o, a, c: o.bitwise_xor(a, c), [I64, J64]),
    ("bitwise_not", lambda o, a: o.bitwise_not(a), [I32]),
    ("bitwise_invert", lambda o, a: o.bitwise_invert(a), [I64]),
    ("left_shift", lambda o, a, s: o.left_shift(a, s), [I32, SHIFT]),
    ("right_shift", lambda o, a, s: o.right_shift(a, s), [I32, SHIFT]),
    ("bitwise_left_shift", lambda o, a: o.bitwise_left_shift(a, 3), [I64]),
    ("bitwise_right_shift", lambda o, a: o.bitwise_right_shift(a, 5), [I64]),
    ("erfc", lambda o, a: o.erfc(a), [WIDE]),
    ("fmax", lambda o, a, c: o.fmax(a, c), [XN[0], XN[2]]),
    ("fmin", lambda o, a, c: o.fmin(a, c), [XN[0], XN[2]]),
    ("ldexp", lambda o, a, e: o.ldexp(a, e), [X, SHIFT - 15]),
    ("isin", lambda o, a, c: o.isin(a, c), [I32, J32[0]]),
    ("isin_invert", lambda o, a, c: o.isin(a, c, invert=True), [I32, J32[:, 0]]),
    ("isreal", lambda o, a: o.isreal(a), [X]),
    ("angle", lambda o, a: o.angle(a), [X]),
    ("i0", lambda o, a: o.i0(a), [WIDE]),
    ("gcd", lambda o, a, c: o.gcd(a, c), [I32, J32]),
    ("gcd_int64", lambda o, a, c: o.gcd(a, c), [I64, J64]),
    ("lcm", lambda o, a, c: o.lcm(a, c), [I32, J32]),
    ("corrcoef", lambda o, a: o.corrcoef(a), [X]),
    ("correlate_valid", lambda o, a, c: o.correlate(a, c), [A1, V3]),
    ("correlate_same", lambda o, a, c: o.correlate(a, c, mode="same"), [A1, V4]),
    ("correlate_full", lambda o, a, c: o.correlate(a, c, mode="full"), [A1, V4]),
    ("get_item", lambda o, a: o.get_item(a, (slice(1, None), 2)), [X]),
    ("slogdet", lambda o, a: o.slogdet(a), [SQ]),
    ("cdist", lambda o, a, c: o.cdist(a, c), [X, Y[:2]]),
    ("depth_to_space", lambda o, a: o.depth_to_space(a, 2), [IMG]),
    ("depth_to_space_first", lambda o, a: o.depth_to_space(a, 2, data_format="channels_first"), [IMG[:, :, :4]]),
    ("space_to_depth", lambda o, a: o.space_to_depth(a, 2), [IMG]),
    ("space_to_depth_first", lambda o, a: o.space_to_depth(a, 2, data_format="channels_first"), [IMG]),
    ("adaptive_average_pool", lambda o, a: o.adaptive_average_pool(a, (3, 4), data_format="channels_last"),
     [IMG_ODD]),
    ("adaptive_max_pool", lambda o, a: o.adaptive_max_pool(a, (3, 4), data_format="channels_last"), [IMG_ODD]),
    ("adaptive_average_pool_first", lambda o, a: o.adaptive_average_pool(a, 4, data_format="channels_first"),
     [NCHW]),
    ("adaptive_max_pool_1d", lambda o, a: o.adaptive_max_pool(a, 3, data_format="channels_last"), [IMG_ODD[0]]),
    ("unfold", lambda o, a: o.unfold(a, 2), [NCHW]),
    ("unfold_strided", lambda o, a: o.unfold(a, (3, 2), dilation=(1, 2), padding=1, stride=2), [NCHW]),
    ("rearrange", lambda o, a: o.rearrange(a, "b h w c -> b c (h w)"), [IMG]),
    ("rearrange_split", lambda o, a: o.rearrange(a, "b (h1 h) (w1 w) c -> (b h1 w1) h w c", h1=2, w1=3), [IMG]),
    ("rearrange_inferred", lambda o, a: o.rearrange(a, "b (h h1) w c -> b h w (c h1)", h1=2),
     [I32.reshape(3, 4, 1, 1)]),
    ("fold", lambda o, a: o.fold(a, (7, 6), 2), [R.normal(size=(2, 12, 30)).astype("float32")]),
    ("fold_strided", lambda o, a: o.fold(a, (7, 6), 3, padding=1, stride=2),
     [R.normal(size=(2, 27, 12)).astype("float32")]),
]

# Functions of a length only (no tensor operands).
WINDOWS = [(f"{name}_{m}", (lambda n, m: lambda o: getattr(o, n)(m))(name, m))
           for name in ("bartlett", "blackman", "hamming", "hanning") for m in (1, 2, 5, 8)]
WINDOWS += [(f"kaiser_{m}", (lambda m: lambda o: o.kaiser(m, 4.0))(m)) for m in (1, 6, 7)]


def main(out: str) -> None:  # pragma: no cover - runs in the Keras process
    import keras

    assert keras.backend.backend() == "tensorflow"
    results = {}
    for name, fn, arrays in CASES:
        try:
            # Keras's TensorFlow adaptive pooling reads static shapes off tf tensors: hand it tensors.
            tensors = [keras.ops.convert_to_tensor(a) for a in arrays]
            results.update(_flatten(name, fn(keras.ops, *tensors), keras))
        except Exception as error:   # recorded: the test says which case Keras itself refuses
            results[f"{name}/error"] = np.asarray(f"{type(error).__name__}: {error}"[:300])
    for name, fn in WINDOWS:
        results.update(_flatten(name, fn(keras.ops), keras))
    np.savez(out, **results)


def _flatten(name, value, keras):  # pragma: no cover - runs in the Keras process
    if isinstance(value, (list, tuple)):
        return {f"{name}/{k}": np.asarray(keras.ops.convert_to_numpy(v)) for k, v in enumerate(value)}
    return {name: np.asarray(keras.ops.convert_to_numpy(value))}


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1])
