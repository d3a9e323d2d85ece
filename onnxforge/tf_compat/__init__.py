"""The TensorFlow names that Keras programs written for the TF backend use around their models.

Keras 3 examples whose ``train_step`` takes gradients with ``tf.GradientTape`` (a DCGAN, a VAE, WGAN-GP)
and the tf.keras guides' custom training loops also call TensorFlow itself: tensor functions
(``tf.shape``, ``tf.reduce_mean``, ``tf.sequence_mask``, ... in ``tensors``), ``tf.nest``,
``tf.TensorShape`` / ``tf.Tensor`` (``tensor_types``), ``tf.print``, ``tf.data.Dataset`` (``data``: the
in-memory ``keras.utils.Dataset``) and ``tf.config.run_functions_eagerly``. With ``import onnxforge as tf``
these resolve to onnxforge's own, with TensorFlow's argument names, defaults and results, so such a program
runs after changing its imports. ``tf.strings`` has the standardization functions text tutorials pass to
``TextVectorization`` (``lower``, ``upper``, ``regex_replace`` of literals and character classes,
``regex_full_match``, ``join``: ``onnxforge.ops.strings``) and, on concrete tensors, the functions that read
characters (``reduce_join``, ``unicode_split``, ``length``, ``substr``, ...: ``strings_fns``); ``tf.image`` has the resizing, cropping, flipping,
colour and random-augmentation functions of TensorFlow's image tutorials (``image_fns``) and the PNG / JPEG
codecs on concrete bytes (``image_codecs``);
``tf.SparseTensor`` / ``tf.sparse.to_dense`` build dense tensors from concrete indices (``sparse``);
``tf.io.read_file`` and ``tf.audio.decode_wav`` read WAV files on the host (``io_audio``), ``tf.signal.stft``
computes complex spectrograms there (``signal_host``), ``tf.numpy_function`` / ``tf.py_function`` run
Python on concrete arrays (``host_function``); the rest of
``tf.io``, ``tf.distribute`` and the file-reading parts of ``tf.data`` are not here.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> tf.reduce_mean(tf.square(np.array([1.0, 3.0]))).tolist()
    5.0
    >>> tf.nest.flatten({"b": [1, 2], "a": 3})
    [3, 1, 2]
    >>> [x.tolist() for x in tf.data.Dataset.from_tensor_slices(np.arange(3)).batch(2)]
    [[0, 1], [2]]
"""
from __future__ import annotations

import types

import numpy as _np

from . import config, data, nest, summary, train
from .printing import print  # noqa: A004 (TensorFlow's name)
from .tensor_types import StringDType, Tensor, TensorShape
from .tensors import *  # noqa: F401,F403
from .tensors import __all__ as _tensor_names
from .elementwise import *  # noqa: F401,F403
from .elementwise import __all__ as _elementwise_names
from .array_fns import *  # noqa: F401,F403
from .array_fns import __all__ as _array_names
from .math_fns import argsort, clip_by_global_norm, clip_by_norm, cumsum, norm, reduce_logsumexp, reduce_std, \
    reduce_variance, sort
from .namespaces import linalg, math
from .image_fns import image
from .nn_fns import nn
from .random_fns import random
from .variable import Variable
from .module import Module, name_scope
from ..keras.scopes import device   # tf.device: placement is per compiled program, the scope is accepted
from .errors import UnconnectedGradients, errors
from .graph_gradients import gradients, hessians
from .framework_fns import *  # noqa: F401,F403
from .framework_fns import __all__ as _framework_names
from .partition_fns import dynamic_partition, dynamic_stitch
from . import nn_ctc as _nn_ctc
from . import conv_transpose_fns as _conv_transpose_fns
from . import image_crops as _image_crops
from . import signal_more as _signal_more
from . import nhwc_windows as _nhwc_windows
from . import math_quantiles as _math_quantiles
from . import nms_variants as _nms_variants
from .random_poisson import poisson as _poisson
from . import candidate_sampling as _candidate_sampling
from . import nn_sampled as _nn_sampled
from . import random_generator as _random_generator
from . import random_stateless as _random_stateless
from .debugging import Assert, assert_equal, assert_greater, assert_less, assert_rank, debugging
from .array_more import *  # noqa: F401,F403
from .array_more import __all__ as _array_more_names
from .index_fns import *  # noqa: F401,F403
from .index_fns import __all__ as _index_names
from .shape_fns import *  # noqa: F401,F403
from .shape_fns import __all__ as _shape_names
from .control_flow import case, cond, control_dependencies, foldl, foldr, group, map_fn, no_op, scan, switch_case, \
    while_loop
# tf.tuple: this module and onnxforge/__init__.py (which star-imports it) must not call the builtin tuple().
from .control_flow import tuple_ as tuple  # noqa: A004
from .tensor_array import TensorArray
from .autograph import do_not_convert as _do_not_convert, convert as _convert, to_code as _to_code
from .tensors import add_n as _add_n, cast as _cast
from .math_more import acos, acosh, asin, asinh, atan, atan2, atanh, cosh, sinh, tan, scalar_mul, truncatediv, \
    truncatemod
from ..utils.tensor_spec import TensorSpec
from .experimental_numpy import experimental
# TensorFlow's own initializer classes (``tf.random_uniform_initializer(minval=, maxval=)`` as a Dense layer's
# ``kernel_initializer`` in keras.io's DDPG): the same arguments and call as Keras's, so they are Keras's.
from ..initializers import Constant as constant_initializer, Ones as ones_initializer, \
    RandomNormal as random_normal_initializer, RandomUniform as random_uniform_initializer, \
    Zeros as zeros_initializer
from ..ops import strings as _string_ops
from . import strings_fns as _strings_fns
from .sparse import SparseTensor, sparse
from .edit_distance import edit_distance
from .io_audio import audio, io
from .decode_csv import decode_csv as _decode_csv
from .host_function import numpy_function, py_function
from .signal_host import angle as _angle, complex, conj as _conj, imag as _imag, real as _real, signal  # noqa: A004

#: TensorFlow's text dtype (NumPy object arrays of bytes here): for ``tf.TensorSpec(dtype=tf.string)``.
string = StringDType("string")
int16, uint16, uint32, uint64, double, half = "int16", "uint16", "uint32", "uint64", "float64", "float16"
#: Complex values live on the host only (``signal_host``: FFTs, ``tf.complex``, ``tf.math.real`` ...).
complex64, complex128 = "complex64", "complex128"
math.real, math.imag, math.conj, math.angle = _real, _imag, _conj, _angle
math.add_n = math.accumulate_n = _add_n  # tf.math.add_n is tf.add_n (accumulate_n: the same sum)
# tf.nn's CTC functions and other later additions live in their own modules.
for _module in (_nn_ctc, _conv_transpose_fns, _nn_sampled):
    for _name in _module.__all__:
        setattr(nn, _name, getattr(_module, _name))
for _name in (*_image_crops.__all__, *_nms_variants.__all__):
    setattr(image, _name, getattr(_image_crops, _name, None) or getattr(_nms_variants, _name))
random.poisson = _poisson
random.log_uniform_candidate_sampler = _candidate_sampling.log_uniform_candidate_sampler
nn.compute_accidental_hits = _candidate_sampling.compute_accidental_hits
for _module in (_random_generator, _random_stateless):
    for _name in _module.__all__:
        setattr(random, _name, getattr(_module, _name))
random.experimental = types.SimpleNamespace(**{_name: getattr(_random_generator, _name)
                                               for _name in _random_generator.__all__})
math.ndtri, math.erfcinv = _math_quantiles.ndtri, _math_quantiles.erfcinv
image.sobel_edges, nn.max_pool_with_argmax = _nhwc_windows.sobel_edges, _nhwc_windows.max_pool_with_argmax
for _name in _signal_more.__all__:
    setattr(signal, _name, getattr(_signal_more, _name))
# tf.io has the image codecs too (tf.io.decode_png is tf.image.decode_png).
for _name in ("decode_png", "decode_jpeg", "decode_image", "decode_bmp", "decode_gif", "encode_png", "encode_jpeg"):
    setattr(io, _name, getattr(image, _name))
io.decode_csv = _decode_csv


def as_dtype(type_value: object) -> str:
    """``tf.as_dtype``: the dtype's name (onnxforge's dtypes are NumPy's names: ``tf.float32 == "float32"``)."""
    return "string" if type_value in ("string", str, bytes) else _np.dtype(type_value).name  # type: ignore[arg-type]


#: ``tf.dtypes``: the dtypes, ``cast`` and ``as_dtype`` under TensorFlow's module.
dtypes = types.SimpleNamespace(**{n: n for n in ("float16", "float32", "float64", "bfloat16", "int8", "int16",
                                                 "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
                                                 "complex64", "complex128")},
                               double="float64", half="float16", string=string, cast=_cast, as_dtype=as_dtype)
strings = types.SimpleNamespace(**{name: getattr(_string_ops, name) for name in
                                   ("lower", "upper", "regex_full_match", "join")},
                                **{name: getattr(_strings_fns, name) for name in _strings_fns.__all__})

#: ``tf.autograph``: the source ``tf.function`` runs (``to_code``), the conversion itself (``to_graph``) and
#: ``experimental.do_not_convert``.
autograph = types.SimpleNamespace(to_code=_to_code, to_graph=_convert,
                                  set_verbosity=lambda level, alsologtostdout=False: None,
                                  experimental=types.SimpleNamespace(do_not_convert=_do_not_convert))

# Only in tf.math: TensorFlow 2 has no top-level alias of these (tf.log is tf.math.log), so neither do we.
_MATH_ONLY = {"floordiv", "log_sigmoid", "softplus", "rsqrt", "reciprocal", "squared_difference", "is_nan",
              "is_finite", "is_inf", "divide_no_nan", "logical_xor", "ceil", "log1p", "log"}
_TOP_LEVEL = [n for n in _elementwise_names if n not in _MATH_ONLY]
__all__ = [*_tensor_names, *_TOP_LEVEL, *_array_names, "argsort", "clip_by_global_norm", "clip_by_norm",
           "cumsum", "norm", "reduce_logsumexp", "sort", "math", "linalg", "nn", "random", "Variable", "data",
           "nest", "config", "print", "Tensor", "TensorShape", "TensorSpec", "string", "strings", "summary", "train", "image",
           "Module", "name_scope", "device", "UnconnectedGradients", "errors", *_array_more_names, "cond", "map_fn",
           "scan", "while_loop", "TensorArray", "autograph", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh",
           "cosh", "sinh", "tan", "dtypes", "as_dtype", "SparseTensor", "sparse", "edit_distance", "experimental", "constant_initializer",
           "ones_initializer", "random_normal_initializer", "random_uniform_initializer", "zeros_initializer", "int16",
           "uint16", "uint32", "uint64", "double", "half", "io", "audio", "signal", "complex", "complex64", "complex128",
           "numpy_function", "py_function", *_index_names, *_shape_names, "foldl", "foldr",
           "switch_case", "case", "control_dependencies", "no_op", "group", "tuple",
           "scalar_mul", "truncatediv", "truncatemod", "debugging", "Assert", "assert_equal", "assert_greater",
           "assert_less", "assert_rank", "gradients", "dynamic_partition",
           "dynamic_stitch", "hessians", *_framework_names]
