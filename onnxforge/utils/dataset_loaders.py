"""Datasets from directories of images or text files, and sliding windows over a time series, returned as
``Dataset`` objects that ``fit`` accepts (Keras's ``image_dataset_from_directory``,
``text_dataset_from_directory`` and ``timeseries_dataset_from_array``).

Files are indexed as Keras does (class sub-directories in sorted order, files sorted, a NumPy shuffle seeded
with ``seed``, the validation split taken off the end), so the same seed picks the same files for training
and validation. Images are decoded with Pillow and resized with half-pixel bilinear (or nearest)
interpolation, as ``tf.image.resize`` does.

Example:
    >>> import numpy as np
    >>> ds = timeseries_dataset_from_array(np.arange(10), None, sequence_length=3, batch_size=4)
    >>> next(iter(ds)).tolist()
    [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]]
"""
from __future__ import annotations

__all__ = ["image_dataset_from_directory", "text_dataset_from_directory", "timeseries_dataset_from_array"]

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .dataset import Dataset
from .image import _resize_axis, load_img, smart_resize

_IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_CHANNELS = {"rgb": 3, "rgba": 4, "grayscale": 1}


# ---------------------------------------------------------------------- indexing
def _walk(root_dir: str, follow_links: bool) -> list[tuple[str, list[str], list[str]]]:
    """``os.walk`` that enters each real folder once: with ``follow_links`` a symlink to a folder above it
    (``cat/up -> ..``) made the walk revisit the tree until the path grew too long, exponentially in the
    number of such links, so one directory listing never finished."""
    seen: set[tuple[int, int]] = set()
    out = []
    for root, dirs, files in os.walk(root_dir, followlinks=follow_links):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []     # already listed through another path: its files are not counted twice either
            continue
        seen.add((st.st_dev, st.st_ino))
        out.append((root, dirs, files))
    return out


def _index_directory(directory: str, labels: Any, formats: tuple[str, ...], class_names: Sequence[str] | None,
                     shuffle: bool, seed: int | None, follow_links: bool, verbose: bool
                     ) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    if not os.path.isdir(directory):
        raise ValueError(f"Could not find directory {directory!r}.")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names) <= set(subdirs):
                raise ValueError("The `class_names` passed did not match the names of the subdirectories of the "
                                 f"target directory. Expected: {subdirs} (or a subset of it), but received: "
                                 f"class_names={list(class_names)}")
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise ValueError("When `labels=None` (no labels), argument `class_names` cannot be specified."
                             if labels is None else "When argument `labels` is specified, argument `class_names` "
                             "cannot be specified (the `class_names` will be the sorted list of labels).")
        subdirs = [""]
    paths: list[str] = []
    label_ids: list[int] = []
    for index, sub in enumerate(subdirs):
        root_dir = os.path.join(directory, sub)
        walked = sorted(_walk(root_dir, follow_links), key=lambda entry: entry[0])
        for root, _, files in walked:
            for name in sorted(files):
                if name.lower().endswith(formats):
                    paths.append(os.path.join(root, name))
                    label_ids.append(index)
    if labels == "inferred":
        out_labels: np.ndarray | None = np.asarray(label_ids, np.int32)
        names: list[str] | None = list(subdirs)
    elif labels is None:
        out_labels, names = None, None
    else:
        if len(labels) != len(paths):
            raise ValueError("Expected the lengths of `labels` to match the number of files in the target directory. "
                             f"len(labels) is {len(labels)} while we found {len(paths)} files in directory "
                             f"{directory}.")
        out_labels = np.asarray(labels)
        names = [str(label) for label in sorted(set(np.asarray(labels).tolist()))]
    if verbose:
        print(f"Found {len(paths)} files." if out_labels is None else
              f"Found {len(paths)} files belonging to {len(names)} classes.")
    if shuffle:   # Keras's global shuffle: one seeded NumPy permutation for the files and their labels
        seed = int(np.random.randint(1e6)) if seed is None else seed
        np.random.RandomState(seed).shuffle(paths)
        if out_labels is not None:
            np.random.RandomState(seed).shuffle(out_labels)
    return paths, out_labels, names


def _check_split(validation_split: float | None, subset: str | None, shuffle: bool, seed: int | None) -> None:
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset}')
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide a `seed` argument, to "
                         "make sure that there is no overlap between the training and validation subset.")


def _split(paths: list[str], labels: np.ndarray | None, validation_split: float | None, subset: str,
           verbose: bool) -> tuple[list[str], np.ndarray | None]:
    if not validation_split:
        return paths, labels
    n_val = int(validation_split * len(paths))
    if subset == "training":
        if verbose:
            print(f"Using {len(paths) - n_val} files for training.")
        return paths[:len(paths) - n_val], None if labels is None else labels[:len(paths) - n_val]
    if verbose:
        print(f"Using {n_val} files for validation.")
    return paths[len(paths) - n_val:], None if labels is None else labels[len(paths) - n_val:]


def _encode_labels(labels: np.ndarray, label_mode: str | None, num_classes: int) -> np.ndarray:
    if label_mode == "binary":
        return labels.astype(np.float32)[:, None]
    if label_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[labels.astype(np.int64)]
    return labels.astype(np.int32)


def _check_label_mode(label_mode: str | None, labels: Any, class_names: list[str] | None) -> None:
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or None. Received: '
                         f"label_mode={label_mode}")
    if labels is None or label_mode is None:
        return
    if label_mode == "binary" and class_names is not None and len(class_names) != 2:
        raise ValueError(f'When passing `label_mode="binary"`, there must be exactly 2 class_names. Received: '
                         f"class_names={class_names}")


def _finish(elements: Any, n: int, batch_size: int | None, shuffle: bool, seed: int | None, class_names: Any,
            paths: list[str], padded: bool = False) -> Dataset:
    ds = Dataset(elements, n, class_names=class_names, file_paths=list(paths))
    if batch_size is not None:
        if shuffle:   # Keras shuffles again, within a buffer, every epoch
            ds = ds.shuffle(buffer_size=batch_size * 8, seed=seed)
        # padded: elements of different lengths (audio) padded with zeros to the batch's longest, tf.data's
        # padded_batch
        ds = ds.padded_batch(batch_size) if padded else ds.batch(batch_size)
    elif shuffle:
        ds = ds.shuffle(buffer_size=1024, seed=seed)
    ds.class_names, ds.file_paths = class_names, list(paths)
    return ds


def _from_directory(directory: str, labels: Any, label_mode: str | None, class_names: Any, batch_size: int | None,
                    shuffle: bool, seed: int | None, validation_split: float | None, subset: str | None,
                    follow_links: bool, verbose: bool, formats: tuple[str, ...], load: Any,
                    padded: bool = False) -> Any:
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError("`labels` argument should be a list/tuple of integer labels, of the same size as the number "
                         f"of files in the target directory. If you wish to infer the labels from the subdirectory "
                         f'names in the target directory, pass `labels="inferred"`. If you wish to get a dataset that '
                         f"only contains files (no labels), pass `labels=None`. Received: labels={labels}")
    if labels is None or label_mode is None:
        # Keras: either one makes an unlabelled dataset, indexed from the top folder down, whose class_names is
        # None (a label_mode=None dataset still named the sub-folders as classes).
        if labels is not None:
            class_names = None
        labels, label_mode = None, None
    _check_split(validation_split, subset, shuffle, seed)
    if seed is None and shuffle:
        seed = int(np.random.randint(1e6))
    paths, ids, names = _index_directory(directory, labels, formats, class_names, shuffle, seed, follow_links,
                                         verbose)
    _check_label_mode(label_mode, labels, names)
    if not paths:
        raise ValueError(f"No files found in directory {directory}. Allowed file formats: {formats}")

    def build(subset_name: str | None) -> Dataset:
        sub_paths, sub_ids = _split(paths, ids, validation_split, subset_name or "", verbose)
        targets = None if sub_ids is None or label_mode is None else \
            _encode_labels(sub_ids, label_mode, len(names or []))

        def elements() -> Any:
            for i, p in enumerate(sub_paths):
                yield load(p) if targets is None else (load(p), targets[i])

        return _finish(elements, len(sub_paths), batch_size, shuffle, seed, names, sub_paths, padded)

    if subset == "both":
        return build("training"), build("validation")
    return build(subset)


# ---------------------------------------------------------------------- images
def _resize(img: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    out = _resize_axis(img, 0, int(size[0]), interpolation)
    return _resize_axis(out, 1, int(size[1]), interpolation)


def _pad_to_aspect(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pad with zeros to the target's aspect ratio (centred), as ``pad_to_aspect_ratio`` does."""
    h, w = img.shape[:2]
    target_h, target_w = size
    pad_h = max(int(round(w * target_h / target_w)) - h, 0)
    pad_w = max(int(round(h * target_w / target_h)) - w, 0)
    return np.pad(img, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))


def image_dataset_from_directory(directory: str, labels: Any = "inferred", label_mode: str | None = "int",
                                 class_names: Sequence[str] | None = None, color_mode: str = "rgb",
                                 batch_size: int | None = 32, image_size: tuple[int, int] = (256, 256),
                                 shuffle: bool = True, seed: int | None = None, validation_split: float | None = None,
                                 subset: str | None = None, interpolation: str = "bilinear", follow_links: bool = False,
                                 crop_to_aspect_ratio: bool = False, pad_to_aspect_ratio: bool = False,
                                 data_format: str | None = None, verbose: bool = True) -> Any:
    """A ``Dataset`` of ``(images, labels)`` batches from ``directory/<class>/<image files>``.

    Args:
        directory: the root directory; with ``labels="inferred"`` one sub-directory per class.
        labels: ``"inferred"``, ``None`` (images only), or a list of labels for the sorted files.
        label_mode: ``"int"`` (int32 ids), ``"categorical"`` (one-hot float32), ``"binary"`` (float32 of
            shape (1,)) or ``None``.
        class_names: the classes to use, in label order (sub-directory names).
        color_mode: ``"rgb"``, ``"rgba"`` or ``"grayscale"``.
        batch_size: images per batch, or ``None`` for single images.
        image_size: ``(height, width)`` every image is resized to.
        shuffle, seed: shuffle the files (and every epoch's batches) reproducibly.
        validation_split, subset: hold out the last fraction of the (shuffled) files; ``subset`` is
            ``"training"``, ``"validation"`` or ``"both"`` (a tuple of two datasets).
        interpolation: ``"bilinear"`` or ``"nearest"``.
        follow_links: follow symbolic links while walking the directories.
        crop_to_aspect_ratio, pad_to_aspect_ratio: crop (or pad) to the target aspect ratio before resizing.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        verbose: print how many files were found.

    Returns:
        A batched ``Dataset`` (or a pair with ``subset="both"``) with ``class_names`` and ``file_paths``.
        Images are float32 in [0, 255].
    """
    if color_mode not in _CHANNELS:
        raise ValueError('`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
                         f"Received: color_mode={color_mode}")
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"image_dataset_from_directory supports interpolation 'bilinear' or 'nearest' in onnxforge. "
                         f"Received: interpolation={interpolation!r}")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be set to `True`.")
    size = (int(image_size[0]), int(image_size[1]))
    channels_first = (data_format or "channels_last") == "channels_first"

    def load(path: str) -> np.ndarray:
        img = np.asarray(load_img(path, color_mode=color_mode), np.float32)
        img = img.reshape(img.shape[:2] + (-1,))
        if crop_to_aspect_ratio:
            img = smart_resize(img, size, interpolation=interpolation)
        else:
            if pad_to_aspect_ratio:
                img = _pad_to_aspect(img, size)
            img = _resize(img, size, interpolation)
        img = img.astype(np.float32)
        return img.transpose(2, 0, 1) if channels_first else img

    return _from_directory(directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split,
                           subset, follow_links, verbose, _IMAGE_FORMATS, load)


def text_dataset_from_directory(directory: str, labels: Any = "inferred", label_mode: str | None = "int",
                                class_names: Sequence[str] | None = None, batch_size: int | None = 32,
                                max_length: int | None = None, shuffle: bool = True, seed: int | None = None,
                                validation_split: float | None = None, subset: str | None = None,
                                follow_links: bool = False, verbose: bool = True) -> Any:
    """A ``Dataset`` of ``(texts, labels)`` batches from ``directory/<class>/<.txt files>``.

    Texts are string tensors, as Keras's ``tf.string`` ones (``numpy()`` gives bytes), scalars when
    ``batch_size=None``; cut to ``max_length`` characters when given. The other arguments are as in
    ``image_dataset_from_directory``.
    """
    def load(path: str) -> np.ndarray:
        if not os.path.isfile(path):   # a FIFO would block the read, a device (/dev/zero) never end it
            raise ValueError(f"text_dataset_from_directory(): {path!r} is not a regular file (a device, FIFO or "
                             "socket, or a link to one)")
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        # A 0-d string array: iterating gives a scalar string tensor, as Keras's unbatched dataset does (not `str`).
        return np.asarray(text if max_length is None else text[:max_length])

    return _from_directory(directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split,
                           subset, follow_links, verbose, (".txt",), load)


# ---------------------------------------------------------------------- time series
def timeseries_dataset_from_array(data: Any, targets: Any, sequence_length: int, sequence_stride: int = 1,
                                  sampling_rate: int = 1, batch_size: int | None = 128, shuffle: bool = False,
                                  seed: int | None = None, start_index: int | None = None,
                                  end_index: int | None = None) -> Dataset:
    """Sliding windows over ``data`` (and the target at each window's start), as Keras builds them.

    Args:
        data: the series, time along the first axis.
        targets: one target per time step (the window starting at ``i`` gets ``targets[i]``), or ``None``.
        sequence_length: steps per window.
        sequence_stride: steps between the starts of consecutive windows.
        sampling_rate: steps between the samples within a window.
        batch_size: windows per batch, or ``None`` for single windows.
        shuffle, seed: shuffle the windows (a seeded NumPy permutation, and every epoch within a buffer).
        start_index, end_index: the part of ``data`` the windows come from.
    """
    data = np.asarray(data)
    n = len(data)
    if start_index:
        if start_index < 0:
            raise ValueError(f"`start_index` must be 0 or greater. Received: start_index={start_index}")
        if start_index >= n:
            raise ValueError(f"`start_index` must be lower than the length of the data. Received: "
                             f"start_index={start_index}, for data of length {n}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(f"`end_index` must be higher than `start_index`. Received: start_index={start_index}, "
                             f"and end_index={end_index} ")
        if end_index >= n:
            raise ValueError(f"`end_index` must be lower than the length of the data. Received: end_index={end_index}, "
                             f"for data of length {n}")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if value <= 0:
            raise ValueError(f"`{name}` must be higher than 0. Received: {name}={value}")
        if value >= n:
            raise ValueError(f"`{name}` must be lower than the length of the data. Received: {name}={value}, for "
                             f"data of length {n}")
    start = start_index or 0
    end = end_index or n
    count = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        targets = np.asarray(targets)
        count = min(count, len(targets))
    starts = np.arange(0, max(count, 0), sequence_stride)
    if shuffle:
        seed = int(np.random.randint(1e6)) if seed is None else seed
        np.random.RandomState(seed).shuffle(starts)
    window = data[start:end]
    offsets = np.arange(0, sequence_length * sampling_rate, sampling_rate)
    shifted = None if targets is None else targets[start:end]

    def elements() -> Any:
        for s in starts:
            seq = window[s + offsets]
            yield seq if shifted is None else (seq, shifted[s])

    ds = Dataset(elements, len(starts))
    if batch_size is not None:
        if shuffle:
            ds = ds.shuffle(buffer_size=batch_size * 8, seed=seed)
        return ds.batch(batch_size)
    return ds.shuffle(buffer_size=1024, seed=seed) if shuffle else ds
