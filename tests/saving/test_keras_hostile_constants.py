"""Constants that ops and layers build with numpy from a loaded config's numbers (DFT tables, frame indices,
identity kernels, attention masks, filter banks, resize weights, histograms, repeat indices, n-gram widths,
adaptive pooling bins) are bounded by
``graph/size_limits.py`` *before* numpy allocates them, and the refusal names the layer; the bounds also hold
when a loaded model is called eagerly. Each hostile file is a few KB; under a 3 GB address-space limit every
load fails with the size error, never a ``MemoryError``."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

pytest.importorskip("h5py")

import onnxforge as of  # noqa: E402
from tests.saving.hostile_files import rewrite_config, run_limited  # noqa: E402
from onnxforge import ops  # noqa: E402
from onnxforge.graph.size_limits import SizeLimitError  # noqa: E402

L = of.layers


def _hostile(tmp_path, name, model, edit):
    """``model`` saved, its config changed by ``edit(layers)`` (as an attacker would), written back."""
    path = rewrite_config(tmp_path, name, model, edit)
    assert os.path.getsize(path) < 30_000
    return path


def _on(shape, fn):
    inp = L.Input(shape)
    return of.Model(inp, fn(inp))


def _input_shape(shape):
    """An edit giving the model's input (and the op node's recorded argument) ``shape``."""
    def edit(layers):
        layers[0]["config"]["batch_shape"] = [None, *shape]
        for node in layers[1].get("inbound_nodes", []):
            for arg in node["args"]:
                if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
                    arg["config"]["shape"] = [None, *shape]
    return edit


def _both(*edits):
    def edit(layers):
        for e in edits:
            e(layers)
    return edit


def _config(**values):
    return lambda layers: layers[1]["config"].update(values)


def _op_argument(op: str, *path, value):
    """An edit setting ``path`` (keys / indices into its config) of the op layer named ``op...`` to ``value``."""
    def edit(layers):
        entry = next(e["config"] for e in layers if e["config"].get("name", "").startswith(op))
        for key in path[:-1]:
            entry = entry[key]
        entry[path[-1]] = value
    return edit


N = 40_000


def _load_cases(tmp_path):
    """Files refused while loading: ``name -> (path, pattern the message must match)``."""
    return {
        "extract_patches": (_hostile(tmp_path, "extract_patches", _on((4, 4, 1), lambda x: ops.image.extract_patches(x, 2)),
                                     _both(_input_shape((300, 300, 1)), _config(size=[300, 300]))),
                            r"layer 'extract_patches\w*': extract_patches's identity kernel builds a constant of "
                            r"shape \(90000, 90000\)"),
        "stft": (_hostile(tmp_path, "stft", _on((8,), lambda x: ops.stft(x, 4, 2, 4)[0]),
                          _both(_input_shape((N,)), _config(sequence_length=N, fft_length=N))),
                 r"layer 'stft\w*': the frame index of a spectral op builds a constant of shape \(20001, 40000\)"),
        "rfft": (_hostile(tmp_path, "rfft", _on((8,), lambda x: ops.rfft(x, 8)[0]),
                          _both(_input_shape((N,)), _config(fft_length=N))),
                 r"layer 'rfft\w*': ops.rfft's DFT table builds a constant of shape \(40000, 20001\)"),
        "fft": (_hostile(tmp_path, "fft", _on((8,), lambda x: ops.fft((x, x))[0]), _input_shape((N,))),
                r"layer 'fft\w*': the DFT table of a Fourier op builds a constant of shape \(40000, 40000\)"),
        "extract_sequences": (_hostile(tmp_path, "extract_sequences", _on((8,), lambda x: ops.extract_sequences(x, 4, 2)),
                                       _both(_input_shape((N,)), _config(sequence_length=N // 2, sequence_stride=1))),
                              r"ops.extract_sequences's frame index builds a constant of shape \(20001, 20000\)"),
        "repeat": (_hostile(tmp_path, "repeat", _on((2,), lambda x: ops.repeat(x, [1, 2], axis=1)),
                            lambda layers: layers[1]["config"]["args"].__setitem__(1, [10**9, 1])),
                   r"layer 'repeat\w*': ops.repeat's index builds a constant of shape \(1000000001,\)"),
        "mel": (_hostile(tmp_path, "mel", of.Sequential([L.Input((64,)), L.MelSpectrogram(
                    fft_length=16, sequence_stride=8, num_mel_bins=4)]),
                         _both(_input_shape((2**12,)), _config(fft_length=2**12, sequence_length=2**12, sequence_stride=2**12,
                                                               num_mel_bins=10**6))),
                r"layer 'mel_spectrogram\w*': the mel filter bank builds a constant of shape \(2049, 1000002\)"),
        # Converting the config constructs the layer once; that trial ran outside the bounds and listed 10**9
        # widths (MemoryError).
        "ngrams": (_hostile(tmp_path, "ngrams", of.Sequential([L.Input((1,), dtype="string"), L.TextVectorization(
                       max_tokens=20, ngrams=2, vocabulary=["a", "b", "c"])]), _config(ngrams=10**9)),
                   r"layer 'text_vectorization\w*' \(TextVectorization\): TextVectorization's ngrams=1000000000 "
                   r"brings the graph to 500000000500000000 nodes"),
        # Found by fuzzing op nodes' integer arguments with 10**9: each listed or allocated that many first.
        "segment_sum": (_hostile(tmp_path, "segment_sum", _on((4,), lambda x: ops.segment_sum(
                            x[0], ops.cast(x[0], "int32") * 0, num_segments=3)),
                                 _op_argument("segment_sum", "num_segments", value=10**9)),
                        r"layer 'segment_sum\w*': ops.segment_sum's segment ids builds a constant of shape \(1000000000,\)"),
        "bincount": (_hostile(tmp_path, "bincount", _on((4,), lambda x: ops.bincount(ops.cast(x, "int32"), minlength=5)),
                              _op_argument("bincount", "kwargs", "minlength", value=10**9)),
                     r"layer 'bincount\w*': ops.bincount's classes builds a constant of shape \(1000000000,\)"),
        "gaussian_blur": (_hostile(tmp_path, "gaussian_blur", _on((8, 8, 1), lambda x: ops.image.gaussian_blur(x, (3, 3))),
                                   _op_argument("gaussian_blur", "kernel_size", 0, value=10**9)),
                          r"layer 'gaussian_blur\w*': a Gaussian kernel builds a constant of shape \(1000000000,\)"),
        "istft_stride": (_hostile(tmp_path, "istft", _on((3, 5), lambda x: ops.istft((x, x), 8, 4, 8)),
                                  _op_argument("istft", "sequence_stride", value=10**9)),
                         r"layer 'istft\w*': ops.istft's window normalization builds a constant of shape \(1000000000,\)"),
        "vander": (_hostile(tmp_path, "vander", _on((3,), lambda x: ops.vander(x[0], 4)),
                            _op_argument("vander", "args", 1, value=10**9)),
                   r"layer 'vander\w*': ops.vander's powers builds a constant of shape \(1000000000,\)"),
        "idf_weights": (_hostile(tmp_path, "idf", of.Sequential([L.Input((1,), dtype="int64"), L.IntegerLookup(
                            vocabulary=[1, 2, 3], output_mode="tf_idf", idf_weights=[1.0, 2.0, 3.0], max_tokens=8,
                            pad_to_max_tokens=True)]), _config(max_tokens=10**10)),
                        r"layer 'integer_lookup\w*' \(IntegerLookup\): the idf weights builds a constant of shape "
                        r"\(10000000000,\)"),
    }


def _call_cases(tmp_path):
    """Files that load (nothing big is built yet) and are refused at the first predict or eager call:
    ``name -> (path, input shape, call, pattern)``."""
    def mha():
        inp = L.Input((4, 1))
        return of.Model(inp, L.MultiHeadAttention(1, 1)(inp, inp, use_causal_mask=True))
    return {
        "causal_mask": (_hostile(tmp_path, "causal", mha(), _input_shape((50_000, 1))), (1, 50_000, 1), "predict",
                        r"layer 'multi_head_attention\w*': the causal mask builds a constant of shape \(50000, 50000\)"),
        "antialias": (_hostile(tmp_path, "antialias", of.Sequential([L.Input((8, 1, 1)), L.Resizing(4, 4, antialias=True)]),
                               _both(_input_shape((N, 1, 1)), _config(height=30_000, width=1))), (1, N, 1, 1), "predict",
                      r"layer 'resizing\w*': an antialiased resize's weight matrix builds a constant of shape "
                      r"\(30000, 40000\)"),
        # 4 x 10**8 bins (2**31 bytes of output, just under the tensor bound) were listed in Python first.
        "adaptive_max": (_hostile(tmp_path, "adaptive_max", of.Sequential([L.Input((8, 1)), L.AdaptiveMaxPooling1D(2)]),
                                  _config(output_size=[4 * 10**8])), (1, 8, 1), "predict",
                         r"layer 'adaptive_max_pooling1d\w*': 400000000 max-pooling bins brings the graph to "
                         r"800000000 nodes"),
        "inverse_lookup": (_hostile(tmp_path, "inverse_lookup", of.Sequential([L.Input((1,), dtype="int64"), L.IntegerLookup(
                               vocabulary=[1, 2, 3], invert=True)]), _config(num_oov_indices=10**9)), (1, 1), "predict",
                           r"layer 'integer_lookup\w*': the inverse lookup table builds a constant of shape "
                           r"\(1000000003,\)"),
        "equalization": (_hostile(tmp_path, "equalization", of.Sequential([L.Input((4, 4, 3)), L.Equalization()]),
                                  _config(bins=10**10)), (1, 4, 4, 3), "eager_training",
                         r"layer 'equalization\w*': the histogram builds a constant of shape \(10000000000, 3\)"),
    }


_SCRIPT = """
import json, sys
import numpy as np
import onnxforge as of
loads, calls = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {}
for name, path in loads.items():
    try:
        of.load_model(path)
        out[name] = "loaded"
    except BaseException as e:
        out[name] = type(e).__name__ + ": " + str(e)
for name, (path, shape, how) in calls.items():
    try:
        model = of.load_model(path)
        x = np.ones(shape, np.int64 if "lookup" in name else np.float32)
        model.predict(x, verbose=0) if how == "predict" else model(x, training=True)
        out[name] = "ran"
    except BaseException as e:
        out[name] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


def test_config_sized_constants_are_refused_before_numpy_allocates_them(tmp_path):
    loads, calls = _load_cases(tmp_path), _call_cases(tmp_path)
    results = json.loads(run_limited(_SCRIPT, json.dumps({k: v[0] for k, v in loads.items()}),
                                     json.dumps({k: v[:3] for k, v in calls.items()})))
    for name, (_, pattern) in loads.items():
        assert results[name].startswith("KerasFileError: "), (name, results[name])
        assert "over the limit of" in results[name] and re.search(pattern, results[name]), (name, results[name])
    for name, (*_, pattern) in calls.items():
        assert results[name].startswith("SizeLimitError") and "over the limit of" in results[name], (name, results[name])
        assert re.search(pattern, results[name]), (name, results[name])


def test_the_same_ops_and_layers_at_real_sizes_still_load_and_agree(tmp_path):
    # The bounds refuse only what no real model asks for: a loaded model with these constants at normal
    # sizes predicts what the model built in code predicts.
    rng = np.random.default_rng(0)
    models = {
        "stft": (_on((64,), lambda x: ops.stft(x, 16, 8, 16)[0]), (2, 64)),
        "fft": (_on((16,), lambda x: ops.fft((x, x))[1]), (2, 16)),
        "patches": (_on((8, 8, 2), lambda x: ops.image.extract_patches(x, 2)), (2, 8, 8, 2)),
        "mel": (of.Sequential([L.Input((256,)), L.MelSpectrogram(fft_length=64, sequence_stride=32, num_mel_bins=8)]),
                (2, 256)),
        "antialias": (of.Sequential([L.Input((16, 16, 1)), L.Resizing(5, 7, antialias=True)]), (2, 16, 16, 1)),
    }
    for name, (model, shape) in models.items():
        x = rng.random(shape).astype(np.float32)
        path = model.save(tmp_path / f"real_{name}.keras")
        np.testing.assert_allclose(of.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-5, err_msg=name)


def test_models_built_in_code_are_not_bounded():
    # Outside a loaded file's limits nothing is checked: a 512 MiB causal mask is the caller's own choice
    # (checked here only on the function that builds it, to stay small).
    from onnxforge.graph import GraphBuilder
    from onnxforge.graph.size_limits import SizeLimits, size_limits
    from onnxforge.layers.attention._common import causal_mask

    with size_limits(SizeLimits("a tight test", max_constant_bytes=15)):
        with pytest.raises(SizeLimitError, match=r"the causal mask builds a constant of shape \(4, 4\) \(16 bytes\)"):
            causal_mask(GraphBuilder(), 4, 4)
    assert causal_mask(GraphBuilder(), 4, 4).shape == (1, 4, 4)


def test_a_billion_oov_buckets_load_without_listing_them(tmp_path):
    # IntegerLookup buckets out-of-vocabulary ints by floormod: num_oov_indices=10**9 is a valid (if odd)
    # config, yet loading it listed 10**9 OOV tokens in Python before comparing them with the vocabulary.
    path = _hostile(tmp_path, "oov", of.Sequential([L.Input((1,), dtype="int64"), L.IntegerLookup(vocabulary=[1, 2, 3])]),
                    _config(num_oov_indices=10**9))
    printed = run_limited(f"""
        import numpy as np
        import onnxforge as of
        print(of.load_model({path!r}).predict(np.array([[2], [7]]), verbose=0).reshape(-1).tolist())
    """, timeout=120)
    # Keras's indices: OOV buckets 0 .. 10**9 - 1 (7 mod 10**9), then the vocabulary (2 is its second token).
    assert printed == str([10**9 + 1, 7])


def test_arguments_out_of_range_are_clear_errors_naming_the_argument(tmp_path):
    # Before: an IndexError from deep inside ("string index out of range", "tuple index out of range").
    def mha():
        inp = L.Input((5, 3))
        return of.Model(inp, L.MultiHeadAttention(2, 3)(inp, inp))
    cases = {
        "attention_axes": (_hostile(tmp_path, "mha_axes", mha(), _config(attention_axes=[10**9])),
                           r"`attention_axes` must name query axes other than the batch and feature axes .*"
                           r"Received: attention_axes=\(1000000000,\)"),
        "group_norm_axis": (_hostile(tmp_path, "gn_axis", of.Sequential([L.Input((4, 4, 2)), L.GroupNormalization(2)]),
                                     _config(axis=10**9)),
                            r"Axis 1000000000 is out of bounds for input shape of rank 4 \(layer 'group_normalization"),
        # ops.top_k beyond the last axis reached onnxruntime's TopK ("could not infer the output shape").
        "top_k": (_hostile(tmp_path, "top_k", _on((4,), lambda x: ops.top_k(x, 2)[0]), _op_argument("top_k", "k", value=10**9)),
                  r"ops.top_k: `k` must be an integer between 0 and the size of the last axis \(4\). Received: "
                  r"k=1000000000"),
        # A pooling window over a static input (Keras refuses it when building; onnxruntime failed the run).
        "average_pool": (_hostile(tmp_path, "pool", _on((8, 1), lambda x: ops.average_pool(x, 2)),
                                  _op_argument("average_pool", "args", 1, value=10**9)),
                         r"Computed output size would be zero or negative. Received: `inputs.shape=\('batch', 8, 1\)`, "
                         r"`pool_size=1000000000`"),
    }
    for name, (path, pattern) in cases.items():
        with pytest.raises(ValueError, match=pattern):
            of.load_model(path)
    inp = L.Input((2, 5, 3))
    assert L.MultiHeadAttention(2, 3, attention_axes=(1, -2))(inp, inp).shape == (None, 2, 5, 3)
