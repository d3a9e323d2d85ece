"""tf.keras 2's ``ImageDataGenerator``: host-side (numpy / scipy) image augmentation feeding ``fit`` from
``flow(x, y)``, a ``keras.utils.Sequence`` of augmented, standardized batches. TensorFlow's ``tf.keras``
still ships it; Keras 3 code uses the random preprocessing layers instead, which compile into the graph.

Supported: rotation, width/height shifts, shear, zoom (one scipy affine resampling, as tf.keras), flips,
channel shifts, ``rescale``, ``preprocessing_function``, sample-wise and feature-wise centering /
normalization (``fit``), ``validation_split`` with ``flow(subset=...)``. ``zca_whitening``,
``brightness_range`` and ``flow_from_directory`` / ``flow_from_dataframe`` raise NotImplementedError naming
the replacement.

Example:
    >>> import numpy as np
    >>> gen = ImageDataGenerator(rescale=1 / 255, horizontal_flip=True)
    >>> batches = gen.flow(np.full((5, 4, 4, 3), 255.0), np.arange(5), batch_size=2, shuffle=False)
    >>> len(batches), batches[0][0].shape, float(batches[0][0].max()), batches[2][1].tolist()
    (3, (2, 4, 4, 3), 1.0, [4])
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np

from ..backend_config import floatx, image_data_format
from ..utils.py_dataset import PyDataset

__all__ = ["ImageDataGenerator", "NumpyArrayIterator", "apply_affine_transform", "apply_channel_shift"]


def _affine_matrix(theta: float, tx: float, ty: float, shear: float, zx: float, zy: float) -> np.ndarray | None:
    """Rotation @ shift @ shear @ zoom in (row, col) coordinates; angles in degrees; None for the identity."""
    matrices = []
    if theta:
        t = np.deg2rad(theta)
        matrices.append(np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]))
    if tx or ty:
        matrices.append(np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]))
    if shear:
        s = np.deg2rad(shear)
        matrices.append(np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]]))
    if zx != 1 or zy != 1:
        matrices.append(np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]]))
    if not matrices:
        return None
    out = matrices[0]
    for m in matrices[1:]:
        out = out @ m
    return out


def apply_affine_transform(x: np.ndarray, theta: float = 0, tx: float = 0, ty: float = 0, shear: float = 0,
                           zx: float = 1, zy: float = 1, row_axis: int = 0, col_axis: int = 1,
                           channel_axis: int = 2, fill_mode: str = "nearest", cval: float = 0.0,
                           order: int = 1) -> np.ndarray:
    """One image ``x`` (3-D) rotated by ``theta`` degrees, shifted by ``tx`` rows / ``ty`` columns, sheared by
    ``shear`` degrees and zoomed by ``1 / zx``, ``1 / zy`` about its centre, with one resampling."""
    try:
        import scipy.ndimage
    except ImportError as err:   # as tf.keras 2: the geometric transforms need SciPy, nothing else does
        raise ImportError("ImageDataGenerator's rotation, shift, shear and zoom need SciPy (pip install scipy); "
                          "flips, rescale and the normalizations do not.") from err

    if x.ndim != 3 or sorted((row_axis, col_axis, channel_axis)) != [0, 1, 2] or channel_axis not in (0, 2):
        raise ValueError("apply_affine_transform needs a 3-D image with channels first or last. Received: "
                         f"shape={x.shape}, row_axis={row_axis}, col_axis={col_axis}, channel_axis={channel_axis}")
    matrix = _affine_matrix(theta, tx, ty, shear, zx, zy)
    if matrix is None:
        return x
    centre_r, centre_c = x.shape[row_axis] / 2 - 0.5, x.shape[col_axis] / 2 - 0.5
    to_centre = np.array([[1, 0, centre_r], [0, 1, centre_c], [0, 0, 1]])
    from_centre = np.array([[1, 0, -centre_r], [0, 1, -centre_c], [0, 0, 1]])
    matrix = to_centre @ matrix @ from_centre
    if col_axis > row_axis:  # tf.keras builds the matrix in (x, y) = (col, row) order: swap to array order
        matrix = matrix[[1, 0, 2]][:, [1, 0, 2]]
    planes = np.moveaxis(x, channel_axis, 0)
    out = [scipy.ndimage.affine_transform(p, matrix[:2, :2], matrix[:2, 2], order=order, mode=fill_mode, cval=cval)
           for p in planes]
    return np.moveaxis(np.stack(out), 0, channel_axis)


def apply_channel_shift(x: np.ndarray, intensity: float, channel_axis: int = 0) -> np.ndarray:
    """Adds ``intensity`` to every channel, clipped to the image's original value range."""
    low, high = np.min(x), np.max(x)
    return np.clip(x + intensity, low, high)


def _range(value: Any, name: str) -> tuple[float, float]:
    if np.isscalar(value):
        return 1 - value, 1 + value
    if len(value) == 2:
        return float(value[0]), float(value[1])
    raise ValueError(f"`{name}` should be a float or a tuple or list of two floats. Received: {name}={value!r}")


class ImageDataGenerator:
    """Random image augmentation and standardization on the host (tf.keras 2's class; see the module doc).

    Example:
        >>> import numpy as np
        >>> gen = ImageDataGenerator(featurewise_center=True)
        >>> gen.fit(np.ones((3, 2, 2, 1)) * np.arange(3).reshape(3, 1, 1, 1))
        >>> gen.mean.ravel().tolist(), float(gen.standardize(np.full((2, 2, 1), 4.0))[0, 0, 0])
        ([1.0], 3.0)
    """

    def __init__(self, featurewise_center: bool = False, samplewise_center: bool = False,
                 featurewise_std_normalization: bool = False, samplewise_std_normalization: bool = False,
                 zca_whitening: bool = False, zca_epsilon: float = 1e-6, rotation_range: float = 0,
                 width_shift_range: Any = 0.0, height_shift_range: Any = 0.0, brightness_range: Any = None,
                 shear_range: float = 0.0, zoom_range: Any = 0.0, channel_shift_range: float = 0.0,
                 fill_mode: str = "nearest", cval: float = 0.0, horizontal_flip: bool = False,
                 vertical_flip: bool = False, rescale: float | None = None,
                 preprocessing_function: Callable[[np.ndarray], np.ndarray] | None = None,
                 data_format: str | None = None, validation_split: float = 0.0, interpolation_order: int = 1,
                 dtype: Any = None):
        if zca_whitening:
            raise NotImplementedError("ImageDataGenerator(zca_whitening=True) is not supported; whiten the "
                                      "arrays beforehand (e.g. with numpy's SVD).")
        if brightness_range is not None:
            raise NotImplementedError("ImageDataGenerator(brightness_range=...) is not supported; use the "
                                      "`keras.layers.RandomBrightness` layer instead.")
        data_format = data_format or image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError("`data_format` should be 'channels_last' or 'channels_first'. Received: "
                             f"data_format={data_format!r}")
        if fill_mode not in ("constant", "nearest", "reflect", "wrap"):
            raise ValueError("`fill_mode` should be one of 'constant', 'nearest', 'reflect', 'wrap'. Received: "
                             f"fill_mode={fill_mode!r}")
        if not 0 <= validation_split < 1:
            raise ValueError(f"`validation_split` must be in [0, 1). Received: validation_split={validation_split!r}")
        self.featurewise_center, self.samplewise_center = featurewise_center, samplewise_center
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.rotation_range, self.shear_range = rotation_range, shear_range
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self.zoom_range = _range(zoom_range, "zoom_range")
        self.channel_shift_range, self.fill_mode, self.cval = channel_shift_range, fill_mode, cval
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.rescale, self.preprocessing_function = rescale, preprocessing_function
        self.data_format, self.validation_split = data_format, validation_split
        self.interpolation_order, self.dtype = interpolation_order, dtype or floatx()
        first = data_format == "channels_first"
        self.channel_axis, self.row_axis, self.col_axis = (1, 2, 3) if first else (3, 1, 2)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def flow(self, x: Any, y: Any = None, batch_size: int = 32, shuffle: bool = True, sample_weight: Any = None,
             seed: int | None = None, subset: str | None = None, ignore_class_split: bool = False,
             **kwargs: Any) -> NumpyArrayIterator:
        """A Sequence of ``(augmented x, y[, sample_weight])`` batches (``x`` only when ``y`` is None);
        ``subset`` picks the ``"training"`` or ``"validation"`` part of ``validation_split``."""
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle, sample_weight=sample_weight,
                                  seed=seed, subset=subset, ignore_class_split=ignore_class_split)

    def flow_from_directory(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ImageDataGenerator.flow_from_directory is not supported; use "
                                  "`keras.utils.image_dataset_from_directory` (and augmentation layers) instead.")

    def flow_from_dataframe(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ImageDataGenerator.flow_from_dataframe is not supported; load the images "
                                  "into arrays and use `flow(x, y)` instead.")

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """``preprocessing_function``, then ``rescale``, then the centering / normalization options."""
        if self.preprocessing_function is not None:
            x = self.preprocessing_function(x)
        if self.rescale:
            x = x * self.rescale
        if self.samplewise_center:
            x = x - np.mean(x, keepdims=True)
        if self.samplewise_std_normalization:
            x = x / (np.std(x, keepdims=True) + 1e-6)
        for flag, stat, option in ((self.featurewise_center, "mean", "featurewise_center"),
                                   (self.featurewise_std_normalization, "std", "featurewise_std_normalization")):
            value = getattr(self, stat)
            if flag and value is None:  # tf.keras warns and goes on unnormalized
                warnings.warn(f"This ImageDataGenerator specifies `{option}`, but it hasn't been fit on any "
                              "training data. Fit it first by calling `.fit(numpy_data)`.", stacklevel=2)
            elif flag:
                x = x - value if stat == "mean" else x / (value + 1e-6)
        return x

    def _shift(self, value: Any, size: int) -> float:
        if not value:
            return 0.0
        shift = (float(np.random.choice(value)) if isinstance(value, (list, tuple, np.ndarray))
                 else float(np.random.uniform(-value, value)))
        return shift * size if np.max(value) < 1 else shift

    def get_random_transform(self, img_shape: tuple[int, ...], seed: int | None = None) -> dict[str, Any]:
        """Draws one set of transform parameters for an image of ``img_shape`` (3-D)."""
        if seed is not None:
            np.random.seed(seed)
        rows, cols = img_shape[self.row_axis - 1], img_shape[self.col_axis - 1]
        theta = np.random.uniform(-self.rotation_range, self.rotation_range) if self.rotation_range else 0
        tx = self._shift(self.height_shift_range, rows)
        ty = self._shift(self.width_shift_range, cols)
        shear = np.random.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0
        zx, zy = (1, 1) if self.zoom_range == (1, 1) else np.random.uniform(*self.zoom_range, 2)
        return {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy,
                "flip_horizontal": (np.random.random() < 0.5) * self.horizontal_flip,
                "flip_vertical": (np.random.random() < 0.5) * self.vertical_flip,
                "channel_shift_intensity": (np.random.uniform(-self.channel_shift_range, self.channel_shift_range)
                                            if self.channel_shift_range else None),
                "brightness": None}

    def apply_transform(self, x: np.ndarray, transform_parameters: dict[str, Any]) -> np.ndarray:
        """Applies parameters as ``get_random_transform`` returns them to one 3-D image."""
        p = transform_parameters
        rows, cols, chans = self.row_axis - 1, self.col_axis - 1, self.channel_axis - 1
        x = apply_affine_transform(x, p.get("theta", 0), p.get("tx", 0), p.get("ty", 0), p.get("shear", 0),
                                   p.get("zx", 1), p.get("zy", 1), row_axis=rows, col_axis=cols, channel_axis=chans,
                                   fill_mode=self.fill_mode, cval=self.cval, order=self.interpolation_order)
        if p.get("channel_shift_intensity") is not None:
            x = apply_channel_shift(x, p["channel_shift_intensity"], chans)
        if p.get("flip_horizontal"):
            x = np.flip(x, cols)
        if p.get("flip_vertical"):
            x = np.flip(x, rows)
        return x

    def random_transform(self, x: np.ndarray, seed: int | None = None) -> np.ndarray:
        return self.apply_transform(x, self.get_random_transform(x.shape, seed))

    def fit(self, x: Any, augment: bool = False, rounds: int = 1, seed: int | None = None) -> None:
        """Computes the feature-wise ``mean`` / ``std`` (per channel) of the images ``x`` (4-D), after
        ``rescale`` (but not ``preprocessing_function``), as tf.keras does."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError(f"Input to `.fit()` should have rank 4. Received: shape={x.shape}")
        if self.rescale:
            x = x * self.rescale
        if seed is not None:
            np.random.seed(seed)
        if augment:
            x = np.concatenate([np.stack([self.random_transform(img) for img in x]) for _ in range(rounds)])
        shape = [1, 1, 1]
        shape[self.channel_axis - 1] = x.shape[self.channel_axis]
        axes = (0, self.row_axis, self.col_axis)
        if self.featurewise_center:
            self.mean = np.mean(x, axis=axes).reshape(shape)
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=axes).reshape(shape)


class NumpyArrayIterator(PyDataset):
    """Batches of ``ImageDataGenerator.flow``: index ``i`` is batch ``i`` of the epoch's order (reshuffled
    at each epoch's end when ``shuffle``); ``next(it)`` walks the batches endlessly, as tf.keras's did."""

    def __init__(self, x: Any, y: Any, generator: ImageDataGenerator, batch_size: int = 32, shuffle: bool = False,
                 sample_weight: Any = None, seed: int | None = None, subset: str | None = None,
                 ignore_class_split: bool = False):
        super().__init__()
        x = np.asarray(x, dtype=generator.dtype)
        if x.ndim != 4:
            raise ValueError(f"Input data in `NumpyArrayIterator` should have rank 4. Received: shape={x.shape}")
        y = None if y is None else np.asarray(y)
        if y is not None and len(y) != len(x):
            raise ValueError(f"`x` (images tensor) and `y` (labels) should have the same length. Received: "
                             f"x.shape={x.shape}, y.shape={y.shape}")
        weights = None if sample_weight is None else np.asarray(sample_weight)
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(f"`subset` must be 'training' or 'validation'. Received: subset={subset!r}")
            split = int(len(x) * generator.validation_split)
            if y is not None and not ignore_class_split and not np.array_equal(np.unique(y[:split]),
                                                                               np.unique(y[split:])):
                raise ValueError("Training and validation subsets have different classes after the split (are the "
                                 "arrays sorted by label? shuffle them, or pass ignore_class_split=True).")
            part = slice(None, split) if subset == "validation" else slice(split, None)
            x, y = x[part], None if y is None else y[part]
            weights = None if weights is None else weights[part]
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        self.x, self.y, self.sample_weight, self.generator = x, y, weights, generator
        self.batch_size, self.shuffle, self.n = batch_size, shuffle, len(x)
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._order = self._rng.permutation(self.n) if shuffle else np.arange(self.n)
        self._next_index = 0

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < len(self):
            raise IndexError(f"Asked to retrieve element {index}, but the Sequence has length {len(self)}")
        picks = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        gen = self.generator
        batch_x = np.stack([gen.standardize(gen.random_transform(self.x[j])) for j in picks]).astype(gen.dtype)
        out = [batch_x]
        if self.y is not None:
            out.append(self.y[picks])
        if self.sample_weight is not None:
            out.append(self.sample_weight[picks])
        return out[0] if len(out) == 1 else tuple(out)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(self.n)

    def __iter__(self) -> NumpyArrayIterator:
        return self

    def __next__(self) -> Any:
        if self._next_index >= len(self):
            self._next_index = 0
            self.on_epoch_end()
        self._next_index += 1
        return self[self._next_index - 1]
