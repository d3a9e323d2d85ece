"""``keras.visualization``: draw boxes and masks onto image batches, and plot image galleries (Keras 3.15).

These run on the host, on NumPy arrays: ``draw_bounding_boxes`` draws with OpenCV (imported when first called;
a clear ``ImportError`` names ``opencv-python`` when it is missing, as in Keras), ``draw_segmentation_masks``
needs only NumPy, and the ``plot_*`` galleries draw with matplotlib (imported when called).

Example:
    >>> import numpy as np
    >>> from onnxforge import keras
    >>> images = np.zeros((1, 2, 2, 3), "uint8")
    >>> masks = np.array([[[1], [0]], [[0], [1]]])[None]
    >>> keras.visualization.draw_segmentation_masks(images, masks, num_classes=2, color_mapping={0: (0, 0, 0),
    ...     1: (200, 100, 0)}, alpha=0.5)[0, 0, 0].tolist()
    [100, 50, 0]
"""
from __future__ import annotations

__all__ = ["draw_bounding_boxes", "draw_segmentation_masks", "plot_bounding_box_gallery", "plot_image_gallery",
           "plot_segmentation_mask_gallery"]

import functools
import math
from typing import Any

import numpy as np

from ..backend_config import image_data_format
from ..utils.bounding_box_formats import convert_format


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x)


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ImportError("The `draw_bounding_boxes` function requires the `cv2` package  (OpenCV). Please install "
                          "it with `pip install opencv-python`.") from None
    return cv2


def _pyplot(function: str) -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"The `{function}` function requires the `matplotlib` package. Please install it with "
                          "`pip install matplotlib`.") from None
    return plt


def _check_batched(images: np.ndarray) -> None:
    if images.ndim != 4:
        raise ValueError(f"`images` must be batched 4D tensor. Received: images.shape={tuple(images.shape)}")


def draw_bounding_boxes(images: Any, bounding_boxes: dict, bounding_box_format: str, class_mapping: dict | None = None,
                        color: Any = (128, 128, 128), line_thickness: int = 2, text_thickness: int = 1,
                        font_scale: float = 1.0, data_format: str | None = None) -> np.ndarray:
    """Draws the boxes (and class labels, with confidences when given) on a batch of images.

    Args:
        images: ``(batch, height, width, channels)`` images; float images in ``[0, 1]`` are scaled to 255.
        bounding_boxes: ``{"boxes": (batch, n, 4), "labels": (batch, n)}`` and optionally ``"confidences"``;
            boxes labelled -1 are skipped.
        bounding_box_format: the boxes' format (``"xyxy"``, ``"yxyx"``, ``"xywh"``, ``"rel_xyxy"``, ...).
        class_mapping: class id -> the text written above its boxes.
        color, line_thickness, text_thickness, font_scale: OpenCV's drawing settings (RGB color).
        data_format: the images' layout (``image_data_format()`` by default).

    Returns:
        A ``uint8`` NumPy array of the annotated images, shaped like ``images``.

    Raises:
        ImportError: OpenCV (``opencv-python``) is not installed.
    """
    cv2 = _cv2()
    class_mapping = class_mapping or {}
    text_thickness = text_thickness or line_thickness
    data_format = data_format or image_data_format()
    images = _numpy(images)
    _check_batched(images)
    if not isinstance(bounding_boxes, dict):
        raise TypeError(f"`bounding_boxes` should be a dict. Received: bounding_boxes={bounding_boxes} of type "
                        f"{type(bounding_boxes)}")
    if "boxes" not in bounding_boxes or "labels" not in bounding_boxes:
        raise ValueError("`bounding_boxes` should be a dict containing 'boxes' and 'labels' keys. Received: "
                         f"bounding_boxes={bounding_boxes}")
    height, width = (images.shape[-3], images.shape[-2]) if data_format == "channels_last" else images.shape[-2:]
    boxes = _numpy(convert_format(dict(bounding_boxes), bounding_box_format, "xyxy", height, width)["boxes"])
    if images.dtype.kind == "f" and images.size > 0:
        images = np.clip(images, 0, 1) * 255 if images.max() <= 1.0 else np.clip(images, 0, 255)
    images = images.astype("uint8")
    labels = _numpy(bounding_boxes["labels"])
    confidences = _numpy(bounding_boxes["confidences"]) if "confidences" in bounding_boxes else None
    result = []
    for i in range(images.shape[0]):
        image = images[i]
        for j in range(boxes[i].shape[0]):
            x1, y1, x2, y2 = (int(v) for v in boxes[i][j].astype("int32"))
            c = int(labels[i][j].astype("int32"))
            if c == -1:
                continue
            cv2.rectangle(image, (x1, y1), (x2, y2), color, line_thickness)
            if c in class_mapping:
                label = class_mapping[c]
                if confidences is not None:
                    label = f"{label} | {confidences[i][j]:.2f}"
                cv2.putText(img=image, text=label, org=_text_location(x1, y1, font_scale, text_thickness),
                            fontFace=cv2.FONT_HERSHEY_SIMPLEX, fontScale=font_scale, color=color,
                            thickness=text_thickness)
        result.append(image)
    return np.stack(result, axis=0)


def _text_location(x: int, y: int, font_scale: float, thickness: int) -> tuple[int, int]:
    """Above the box when there is room, else just inside its top-left corner (Keras's placement)."""
    font_height = int(font_scale * 12)
    if y - 8 - 2 * font_height > 0:
        return x, y - 8
    return x + 3, y + 2 * font_height + thickness + 3


def _palette(num_classes: int) -> list[list[int]]:
    palette = np.array([2 ** 25 - 1, 2 ** 15 - 1, 2 ** 21 - 1])
    return [((i * palette) % 255).tolist() for i in range(num_classes)]


def draw_segmentation_masks(images: Any, segmentation_masks: Any, num_classes: int | None = None,
                            color_mapping: dict | None = None, alpha: float = 0.8, blend: bool = True,
                            ignore_index: int = -1, data_format: str | None = None) -> np.ndarray:
    """Paints each class of integer ``segmentation_masks`` onto ``images`` in its color.

    Args:
        images: ``(batch, height, width, channels)`` images.
        segmentation_masks: ``(batch, height, width, 1)`` integer class ids.
        num_classes: the classes to paint (ids ``0 .. num_classes - 1``); the masks' maximum by default.
        color_mapping: class id -> RGB color; a fixed palette by default (class 0 black).
        alpha: the masks' opacity when blending.
        blend: mix ``images * (1 - alpha) + colors * alpha`` (``uint8``); ``False``: the colors painted over
            the images, as ``float32``.
        ignore_index: pixels of this id keep the image's values.
        data_format: the layout of images and masks (``image_data_format()`` by default).
    """
    data_format = data_format or image_data_format()
    images = _numpy(images)
    _check_batched(images)
    masks = _numpy(segmentation_masks)
    if data_format == "channels_first":
        images, masks = images.transpose(0, 2, 3, 1), masks.transpose(0, 2, 3, 1)
    images = images.astype("float32")
    if masks.dtype.kind not in "iu":
        raise TypeError(f"`segmentation_masks` must be in integer dtype. Received: segmentation_masks.dtype="
                        f"{masks.dtype}")
    if num_classes is None:
        num_classes = int(masks.max())
    colors = _palette(num_classes) if color_mapping is None else [color_mapping[i] for i in range(num_classes)]
    if masks.shape[-1] != 1:
        raise ValueError(f"`segmentation_masks` must have a trailing channel axis of size 1. Received: "
                         f"segmentation_masks.shape={masks.shape}")
    valid = masks[..., 0] != ignore_index
    drawn = images.copy()
    for class_id, color in enumerate(colors):
        drawn[masks[..., 0] == class_id, ...] = np.array(color, dtype=drawn.dtype)[None, :]
    if not blend:
        return drawn
    outputs = images * (1 - alpha) + drawn * alpha
    outputs = np.where(valid[..., None], outputs, images)
    return outputs.astype("uint8")


def _transform_value_range(images: np.ndarray, original: Any, target: Any) -> np.ndarray:
    if original[0] == target[0] and original[1] == target[1]:
        return images
    images = images.astype("float32")
    lo, hi = np.float32(original[0]), np.float32(original[1])
    t_lo, t_hi = np.float32(target[0]), np.float32(target[1])
    return ((images - lo) / (hi - lo)) * (t_hi - t_lo) + t_lo


def plot_image_gallery(images: Any, y_true: Any = None, y_pred: Any = None, label_map: dict | None = None,
                       rows: int | None = None, cols: int | None = None, value_range: Any = (0, 255),
                       scale: float = 2, path: str | None = None, show: bool | None = None, transparent: bool = True,
                       dpi: int = 60, legend_handles: Any = None, data_format: str | None = None) -> None:
    """Shows (or saves to ``path``) a ``rows x cols`` grid of ``images``, titled with their labels.

    Args:
        images: ``(batch, height, width, channels)`` images in ``value_range``.
        y_true, y_pred: class ids to write above each image (``label_map`` names them).
        rows, cols: the grid (about the square root of the batch by default).
        scale: inches per image; ``dpi``, ``transparent``: the saved file's.
        path: a file to save to; otherwise ``plt.show()`` (unless ``show=False``).
        legend_handles: matplotlib ``Patch``\\es for a legend.
    """
    plt = _pyplot("plot_image_gallery")
    if path is not None and show:
        raise ValueError("plot_gallery() expects either `path` to be set, or `show` to be true.")
    if (y_true is not None or y_pred is not None) and label_map is None:
        raise ValueError("If `y_true` or `y_pred` are provided, a `label_map` must also be provided.")
    show = show if show is not None else (path is None)
    data_format = data_format or image_data_format()
    images = _numpy(images)
    batch_size = images.shape[0] if images.ndim == 4 else 1
    rows = rows or int(math.ceil(math.sqrt(batch_size)))
    cols = cols or int(math.ceil(batch_size // rows))
    if images.ndim != 4:
        raise ValueError("`plot_images_gallery()` requires you to batch your `np.array` samples together.")
    images = images[:min(rows * cols, batch_size)]
    if data_format == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    fig, axes = plt.subplots(nrows=rows, ncols=cols, figsize=(cols * scale, rows * scale), frameon=False,
                             layout="tight", squeeze=True, sharex="row", sharey="col")
    fig.subplots_adjust(wspace=0, hspace=0)
    if isinstance(axes, np.ndarray) and axes.ndim == 1:
        axes = np.expand_dims(axes, 0 if rows == 1 else -1)
    if legend_handles is not None:
        fig.legend(handles=legend_handles, loc="lower center")
    images = _transform_value_range(images, value_range, (0, 255))
    y_true = None if y_true is None else _numpy(y_true)
    y_pred = None if y_pred is None else _numpy(y_pred)
    for row in range(rows):
        for col in range(cols):
            index = row * cols + col
            axis = axes[row, col] if isinstance(axes, np.ndarray) else axes
            axis.imshow(images[index].astype("uint8"))
            axis.margins(x=0, y=0)
            axis.axis("off")
            title = []
            if y_true is not None and index < len(y_true):
                title.append(f"Label: {label_map.get(y_true[index], 'Unknown')}")
            if y_pred is not None and index < len(y_pred):
                title.append(f"Pred: {label_map.get(y_pred[index], 'Unknown')}")
            if title:
                axis.set_title("  ".join(title), fontsize=8)
    if path is not None:
        plt.savefig(fname=path, pad_inches=0, bbox_inches="tight", transparent=transparent, dpi=dpi)
        plt.close()
    elif show:
        plt.show()
        plt.close()


def plot_bounding_box_gallery(images: Any, bounding_box_format: str, y_true: dict | None = None,
                              y_pred: dict | None = None, value_range: Any = (0, 255), true_color: Any = (0, 188, 212),
                              pred_color: Any = (255, 235, 59), line_thickness: int = 2, font_scale: float = 1.0,
                              text_thickness: int | None = None, class_mapping: dict | None = None,
                              ground_truth_mapping: dict | None = None, prediction_mapping: dict | None = None,
                              legend: bool = False, legend_handles: Any = None, rows: int | None = None,
                              cols: int | None = None, data_format: str | None = None, **kwargs: Any) -> None:
    """``plot_image_gallery`` of the images with their true and predicted boxes drawn (``draw_bounding_boxes``).

    Args:
        legend: add "Ground Truth" / "Prediction" patches in the two colors (or pass ``legend_handles``).
        **kwargs: passed to ``plot_image_gallery`` (``path``, ``scale``, ``dpi``, ...).
    """
    _pyplot("plot_bounding_box_gallery")
    from matplotlib import patches

    prediction_mapping = prediction_mapping or class_mapping
    ground_truth_mapping = ground_truth_mapping or class_mapping
    data_format = data_format or image_data_format()
    plotted = _numpy(images)
    _check_batched(plotted)
    if data_format == "channels_first":
        plotted = plotted.transpose(0, 2, 3, 1)
    draw = functools.partial(draw_bounding_boxes, bounding_box_format=bounding_box_format,
                             line_thickness=line_thickness, text_thickness=text_thickness, font_scale=font_scale)
    if y_true is not None:
        plotted = draw(plotted, y_true, color=true_color, class_mapping=ground_truth_mapping)
    if y_pred is not None:
        plotted = draw(plotted, y_pred, color=pred_color, class_mapping=prediction_mapping)
    if legend:
        if legend_handles:
            raise ValueError("Only pass `legend` OR `legend_handles` to "
                             "`keras.visualization.plot_bounding_box_gallery()`.")
        legend_handles = [patches.Patch(color=np.array(true_color) / 255.0, label="Ground Truth"),
                          patches.Patch(color=np.array(pred_color) / 255.0, label="Prediction")]
    return plot_image_gallery(plotted, value_range=value_range, legend_handles=legend_handles, rows=rows, cols=cols,
                              **kwargs)


def plot_segmentation_mask_gallery(images: Any, num_classes: int, value_range: Any = (0, 255), y_true: Any = None,
                                   y_pred: Any = None, color_mapping: dict | None = None, blend: bool = True,
                                   alpha: float = 0.8, ignore_index: int = -1, data_format: str | None = None,
                                   **kwargs: Any) -> None:
    """One row per image: the image, then its true and predicted masks drawn on it (``draw_segmentation_masks``).

    Args:
        **kwargs: passed to ``plot_image_gallery`` (``path``, ``scale``, ``dpi``, ...).
    """
    data_format = data_format or image_data_format()
    images = _numpy(images)
    _check_batched(images)
    if data_format == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    draw = functools.partial(draw_segmentation_masks, num_classes=num_classes, color_mapping=color_mapping,
                             alpha=alpha, ignore_index=ignore_index, blend=blend)
    drawn = []
    for masks in (y_true, y_pred):
        if masks is not None:
            masks = _numpy(masks)
            if data_format == "channels_first":
                masks = masks.transpose(0, 2, 3, 1)
            drawn.append(draw(images, masks.astype("int32")))
    gallery = []
    for i in range(images.shape[0]):
        gallery.append(images[i])
        gallery.extend(d[i] for d in drawn)
    return plot_image_gallery(np.stack(gallery, axis=0), value_range=value_range, rows=images.shape[0],
                              cols=1 + len(drawn), **kwargs)
