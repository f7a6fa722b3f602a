"""Region-of-interest operations of Keypoint R-CNN, in ``keras.ops``.

Pure array code beneath the model layers (the RoI heads of a two-stage
detector): it imports Keras, NumPy and :mod:`pose_lab.validation` only, runs
eagerly and inside compiled functions (``tf.function``, ``jax.jit``) under the
TensorFlow and JAX backends.

* :func:`roi_align`: RoIAlign (He et al., Mask R-CNN 2017) as
  ``torchvision.ops.roi_align`` and Detectron2's ``ROIAlign``: bilinear
  interpolation at ``sampling_ratio x sampling_ratio`` points per output bin,
  averaged.
* :func:`roi_pool`: the quantised RoIPool of Fast R-CNN (Girshick 2015) as
  ``torchvision.ops.roi_pool``, to show what RoIAlign fixes.
* :func:`keypoints_to_roi_targets` / :func:`roi_heatmaps_to_keypoints`: the
  keypoint targets of the keypoint head (one cell of an ``S x S`` heatmap per
  keypoint, torchvision's ``keypoints_to_heatmap``) and their decoding.

Conventions
-----------
* **Boxes** (RoIs) are ``(x1, y1, x2, y2)`` in pixels of the input image,
  *continuous* coordinates: width ``x2 - x1``, height ``y2 - y1``, both
  ``> 0``. Shape ``(K, 4)``, with ``box_indices`` ``(K,)`` (int) naming the
  image of the batch each box belongs to (torchvision's ``(K, 5)`` rois with
  the batch index in column 0, split in two).
* **Continuous coordinates** are those of torchvision and Detectron2: input
  pixel ``[r, c]`` covers ``[c, c + 1) x [r, r + 1)``, its centre is
  ``(c + 0.5, r + 0.5)``. With ``aligned=True`` a feature-map cell ``[i, j]``
  of a map at ``spatial_scale = 1 / stride`` is centred on image position
  ``((j + 0.5) * stride, (i + 0.5) * stride)``. Note that this is *not* the
  convention of :mod:`pose_lab.heatmaps` (integer values are pixel centres
  there): a keypoint labelled in pixel-index coordinates (COCO, the kit's
  renderer) is at ``x + 0.5`` here. Detectron2 adds that 0.5 when it loads
  COCO keypoints; torchvision does not. Do it (or not) once, where the data
  pipeline builds the targets.
* **Feature maps** and heatmaps are channels-last: features ``(batch, H, W,
  C)``, RoI features ``(K, out_h, out_w, C)``, keypoint heatmap logits ``(K,
  S, S, J)`` (torchvision: ``(K, J, S, S)``).
* ``spatial_scale`` is feature pixels per input pixel (``1 / stride``: 1/4 for
  FPN level P2, 1/16 for a C4 backbone).

Bad input raises ``ValueError`` naming the argument and what was expected.
Shapes are checked whenever they are known (also while tracing a compiled
function); values (box sizes, batch indices, keypoints inside the image) only
when the arrays are concrete (NumPy arrays, eager tensors), since a compiled
graph cannot raise on values.

Differences from torchvision / Detectron2 (all deliberate, all documented at
the function):

* :func:`roi_align` supports a fixed ``sampling_ratio >= 1`` only (static
  shapes); gradients flow to ``features``, not to ``boxes`` (as torchvision).
* :func:`roi_pool` is written with masks over the feature map (fixed shapes),
  which costs ``O(K * H * W * out_w * C)`` memory and time: fine for the small
  maps of the course, not for a full-resolution detector.
* :func:`roi_heatmaps_to_keypoints` maps the argmax *cell centre* of the
  ``S x S`` heatmap back to the image and scores it with the softmax
  probability; torchvision and Detectron2 first upsample the heatmap to the
  RoI's size in pixels with bicubic interpolation (a per-RoI output size,
  impossible with static shapes).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from keras import ops

from pose_lab.boxes import check_boxes, concrete_values as _concrete, int_pair as _pair, static_shape as _shape
from pose_lab.validation import positive_int

__all__ = [
    "roi_align",
    "roi_pool",
    "keypoints_to_roi_targets",
    "roi_heatmaps_to_keypoints",
]


# -----------------------------------------------------------------------------
# argument checks
# -----------------------------------------------------------------------------


def _check_shape(x, name: str, expected: tuple, text: str):
    """Rank and the known sizes of ``expected`` (``None``: any) against ``x``'s static shape."""
    shape = _shape(x)
    ok = len(shape) == len(expected) and all(
        e is None or s is None or s == e for s, e in zip(shape, expected)
    )
    if not ok:
        raise ValueError(f"{name}: expected shape {text}, got {shape}")
    return shape


def _positive_float(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive number, got {value!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return v


def _check_features(features):
    features = ops.convert_to_tensor(features)
    _check_shape(features, "features", (None, None, None, None), "(batch, H, W, C) (channels-last)")
    return features


def _check_boxes(boxes, name: str = "boxes"):
    """``(K, 4)`` boxes as float32; with concrete values: finite, ``x2 > x1`` and ``y2 > y1``."""
    return check_boxes(boxes, name, rank=2, sized="a region of interest", dtype="float32")


def _check_box_indices(box_indices, num_boxes, batch):
    values = _concrete(box_indices)
    idx = ops.convert_to_tensor(box_indices)
    k = "K" if num_boxes is None else num_boxes
    _check_shape(idx, "box_indices", (num_boxes,), f"(K,) = ({k},), the image of the batch each box is on")
    if values is not None and values.size:
        if not (np.issubdtype(values.dtype, np.integer) or np.all(np.mod(values, 1) == 0)):
            raise ValueError(f"box_indices: expected integers, got {values.dtype} values {values[:5].tolist()}")
        if batch is not None and (values.min() < 0 or values.max() >= batch):
            raise ValueError(
                f"box_indices: expected integers in [0, {batch}) (the feature batch has {batch} image(s)), "
                f"got values in [{values.min()}, {values.max()}]"
            )
    return ops.cast(idx, "int32")


def _roi_inputs(what, features, boxes, box_indices, output_size, spatial_scale):
    """The checked arguments of :func:`roi_align` / :func:`roi_pool` (``what`` names the op in errors)."""
    output_size = _pair("output_size", output_size)
    scale = _positive_float("spatial_scale", spatial_scale)
    features = _check_features(features)
    boxes = _check_boxes(boxes)
    batch, height, width, _ = _shape(features)
    box_indices = _check_box_indices(box_indices, _shape(boxes)[0], batch)
    if height is None or width is None:
        raise ValueError(f"features: {what} needs a static height and width, got shape {_shape(features)}")
    return features, boxes, box_indices, output_size, scale


def _check_sampling_ratio(sampling_ratio) -> int:
    if isinstance(sampling_ratio, numbers.Integral) and not isinstance(sampling_ratio, bool) and sampling_ratio <= 0:
        raise ValueError(
            f"sampling_ratio: expected a positive int, got {sampling_ratio!r}. torchvision's adaptive mode "
            "(sampling_ratio <= 0: ceil(roi_height / output_height) points per bin, different for every "
            "box) has no static shape and is not supported; pass a fixed number such as 2"
        )
    return positive_int("sampling_ratio", sampling_ratio)


# -----------------------------------------------------------------------------
# RoIAlign
# -----------------------------------------------------------------------------


def _bilinear_axis(coords, size: int):
    """torchvision's ``bilinear_interpolate`` along one axis.

    ``coords`` (K, N) float32 sample positions in feature cells (cell ``i``
    centred on ``i``), ``size`` the length of the axis. Returns the low and high
    neighbour indices (int32) and their weights; the weights are 0 for samples
    outside ``[-1, size]`` (then the whole 2D sample is 0, the product of the two
    axes' weights). Positions in ``[-1, 0]`` are clamped to 0 and in
    ``[size - 1, size]`` to ``size - 1``, as torchvision does.
    """
    top = float(size - 1)
    valid = ops.logical_and(coords >= -1.0, coords <= float(size))
    c = ops.maximum(coords, 0.0)
    low = ops.floor(c)
    at_end = low >= top
    low = ops.where(at_end, top, low)
    c = ops.where(at_end, low, c)
    high = ops.where(at_end, low, low + 1.0)
    frac = c - low
    v = ops.cast(valid, "float32")
    return ops.cast(low, "int32"), ops.cast(high, "int32"), (1.0 - frac) * v, frac * v


def _bin_grid(out: int, sampling_ratio: int) -> np.ndarray:
    """Positions of the samples in units of one bin: ``p + (i + 0.5) / sampling_ratio``."""
    p = np.arange(out, dtype=np.float64)[:, None]
    i = np.arange(sampling_ratio, dtype=np.float64)[None, :]
    return (p + (i + 0.5) / sampling_ratio).reshape(-1).astype(np.float32)


def roi_align(features, boxes, box_indices, output_size, spatial_scale, sampling_ratio=2, aligned=True):
    """RoIAlign: bilinear features of ``K`` boxes on a fixed ``output_size`` grid.

    The algorithm of ``torchvision.ops.roi_align`` (and Detectron2's
    ``ROIAlign``): the box is scaled to feature cells (``x * spatial_scale``),
    shifted by ``-0.5`` with ``aligned=True`` (so that a feature cell is
    centred on its pixel centre; without it the box is off by half a cell),
    split into ``out_h x out_w`` bins, and each bin averages
    ``sampling_ratio x sampling_ratio`` bilinearly interpolated samples at
    the centres of a regular sub-grid. A sample outside ``[-1, H] x [-1, W]``
    (feature cells) counts as 0; inside that range, positions in ``[-1, 0]``
    are clamped to 0 and in ``[H - 1, H]`` to ``H - 1`` (torchvision's
    ``bilinear_interpolate``). With ``aligned=False`` (the original Mask R-CNN)
    the box's width and height in cells are forced to ``>= 1``; with
    ``aligned=True`` small boxes stay small.

    Only a fixed ``sampling_ratio >= 1`` is supported: torchvision's default
    adaptive mode (``sampling_ratio <= 0``: ``ceil(roi_h / out_h)`` samples per
    bin, a different number for every box) has no static shape, so it raises
    ``ValueError``. Detectron2's keypoint head uses ``sampling_ratio=0``;
    with 2 (Detectron2's box head, and the usual choice) the difference is
    small for the box sizes of a keypoint head.

    Implementation: four gathers (the corners of every sample) from the
    flattened feature map, weighted and averaged; memory
    ``O(K * out_h * out_w * sampling_ratio^2 * C)``. Gradients flow to
    ``features``; ``boxes`` are behind a stop-gradient (torchvision has no
    gradient for the boxes either).

    Args:
        features: ``(batch, H, W, C)`` feature map, channels-last.
        boxes: ``(K, 4)`` boxes ``(x1, y1, x2, y2)`` in input-image pixels
            (continuous coordinates, width ``x2 - x1 > 0``).
        box_indices: ``(K,)`` int, the image of the batch each box is on.
        output_size: ``out`` or ``(out_h, out_w)`` bins.
        spatial_scale: feature cells per input pixel (``1 / stride``).
        sampling_ratio: samples per bin along each axis (``>= 1``).
        aligned: subtract the half-cell offset (Detectron2's
            ``ROIAlignV2``, torchvision ``aligned=True``).

    Returns:
        ``(K, out_h, out_w, C)`` with the dtype of ``features``.

    Raises:
        ValueError: a wrong rank or last dimension, ``sampling_ratio <= 0``,
            and (for concrete values) boxes with width or height ``<= 0`` or
            ``box_indices`` outside the batch.

    Example:
        >>> f = np.ones((1, 16, 16, 8), "float32")
        >>> tuple(roi_align(f, [[8.0, 8.0, 40.0, 24.0]], [0], 7, 1 / 4).shape)
        (1, 7, 7, 8)
    """
    sr = _check_sampling_ratio(sampling_ratio)
    features, boxes, box_indices, (out_h, out_w), scale = _roi_inputs(
        "RoIAlign", features, boxes, box_indices, output_size, spatial_scale)
    batch, height, width, channels = _shape(features)

    boxes = ops.stop_gradient(boxes)
    offset = 0.5 if aligned else 0.0
    start_x = boxes[:, 0] * scale - offset
    start_y = boxes[:, 1] * scale - offset
    roi_w = boxes[:, 2] * scale - offset - start_x
    roi_h = boxes[:, 3] * scale - offset - start_y
    if not aligned:
        roi_w = ops.maximum(roi_w, 1.0)
        roi_h = ops.maximum(roi_h, 1.0)
    gy = ops.convert_to_tensor(_bin_grid(out_h, sr))
    gx = ops.convert_to_tensor(_bin_grid(out_w, sr))
    ys = start_y[:, None] + gy[None, :] * (roi_h / out_h)[:, None]  # (K, out_h * sr)
    xs = start_x[:, None] + gx[None, :] * (roi_w / out_w)[:, None]  # (K, out_w * sr)

    y_lo, y_hi, wy_lo, wy_hi = _bilinear_axis(ys, height)
    x_lo, x_hi, wx_lo, wx_hi = _bilinear_axis(xs, width)

    flat = ops.reshape(features, (-1, ops.shape(features)[-1]))
    base = (box_indices * (height * width))[:, None, None]
    dtype = features.dtype

    def corner(yi, xi, wy, wx):
        idx = base + yi[:, :, None] * width + xi[:, None, :]  # (K, Ny, Nx)
        w = ops.cast(wy[:, :, None] * wx[:, None, :], dtype)
        return ops.take(flat, idx, axis=0) * w[..., None]

    values = (
        corner(y_lo, x_lo, wy_lo, wx_lo)
        + corner(y_lo, x_hi, wy_lo, wx_hi)
        + corner(y_hi, x_lo, wy_hi, wx_lo)
        + corner(y_hi, x_hi, wy_hi, wx_hi)
    )  # (K, out_h * sr, out_w * sr, C)
    c = channels if channels is not None else ops.shape(features)[-1]
    values = ops.reshape(values, (-1, out_h, sr, out_w, sr, c))
    return ops.mean(values, axis=(2, 4))


# -----------------------------------------------------------------------------
# RoIPool
# -----------------------------------------------------------------------------


def _round_half_away(x):
    """C's ``round``: halves away from zero (``ops.round`` rounds halves to even)."""
    return ops.sign(x) * ops.floor(ops.abs(x) + 0.5)


def _pool_bounds(start, end, out: int, size: int):
    """Integer bin boundaries ``[lo, hi)`` of torchvision's ``roi_pool``, ``(K, out)`` each, in ``[0, size]``."""
    roi = ops.maximum(end - start + 1.0, 1.0)  # the legacy inclusive end pixel
    # ``roi / out`` correctly rounded, as the C++ kernel: XLA and Grappler turn a division by
    # a constant into a multiplication by its reciprocal (one ulp off, which moves a
    # ``floor``/``ceil`` bin boundary by a whole cell); ``out + 0 * roi`` is not a constant.
    bin_size = roi / (float(out) + 0.0 * roi)
    p = ops.convert_to_tensor(np.arange(out, dtype=np.float32))
    lo = ops.floor(p[None, :] * bin_size[:, None]) + start[:, None]
    hi = ops.ceil((p[None, :] + 1.0) * bin_size[:, None]) + start[:, None]
    return ops.clip(lo, 0.0, float(size)), ops.clip(hi, 0.0, float(size))


def roi_pool(features, boxes, box_indices, output_size, spatial_scale):
    """RoIPool of Fast R-CNN (quantised), as ``torchvision.ops.roi_pool``.

    The box is scaled (``x * spatial_scale``) and *rounded* to whole feature
    cells (C's ``round``, halves away from zero), taken with its end cell
    included (width ``x2 - x1 + 1`` cells, at least 1), cut into
    ``out_h x out_w`` bins with integer boundaries ``floor(p * bin)`` and
    ``ceil((p + 1) * bin)`` (so neighbouring bins may overlap), clipped to the
    map; each bin is the maximum of its cells, an empty bin (entirely off the
    map) is 0. Both roundings move the features by up to half a cell against
    the box: the misalignment RoIAlign removes.

    Cost: written with per-bin masks over the whole feature map so that every
    shape is static: a separable max first over ``W`` then over ``H``, taking
    ``O(K * H * W * out_w * C + K * H * out_h * out_w * C)`` memory and time
    (``torchvision`` visits only the cells of each bin). Fine for the small
    maps of the course's comparison; use :func:`roi_align` in a model.

    Args:
        features: ``(batch, H, W, C)``, channels-last.
        boxes: ``(K, 4)`` ``(x1, y1, x2, y2)`` input pixels.
        box_indices: ``(K,)`` int, the image of the batch each box is on.
        output_size: ``out`` or ``(out_h, out_w)``.
        spatial_scale: feature cells per input pixel.

    Returns:
        ``(K, out_h, out_w, C)`` with the dtype of ``features``.

    Raises:
        ValueError: as :func:`roi_align`.
    """
    features, boxes, box_indices, (out_h, out_w), scale = _roi_inputs(
        "RoIPool", features, boxes, box_indices, output_size, spatial_scale)
    batch, height, width, _ = _shape(features)

    q = _round_half_away(ops.stop_gradient(boxes) * scale)  # (K, 4) whole cells
    h_lo, h_hi = _pool_bounds(q[:, 1], q[:, 3], out_h, height)  # (K, out_h)
    w_lo, w_hi = _pool_bounds(q[:, 0], q[:, 2], out_w, width)  # (K, out_w)
    rows = ops.convert_to_tensor(np.arange(height, dtype=np.float32))
    cols = ops.convert_to_tensor(np.arange(width, dtype=np.float32))
    mask_h = ops.logical_and(rows[None, None, :] >= h_lo[:, :, None], rows[None, None, :] < h_hi[:, :, None])
    mask_w = ops.logical_and(cols[None, None, :] >= w_lo[:, :, None], cols[None, None, :] < w_hi[:, :, None])

    f = ops.take(features, box_indices, axis=0)  # (K, H, W, C)
    neg = ops.cast(-np.inf, features.dtype)
    # max over W within each column bin: (K, H, out_w, W, C) -> (K, H, out_w, C)
    m = ops.where(mask_w[:, None, :, :, None], f[:, :, None, :, :], neg)
    m = ops.max(m, axis=3, initial=-np.inf)
    # max over H within each row bin: (K, out_h, H, out_w, C) -> (K, out_h, out_w, C)
    m = ops.where(mask_h[:, :, :, None, None], m[:, None, :, :, :], neg)
    m = ops.max(m, axis=2, initial=-np.inf)
    empty = ops.logical_or(
        ops.logical_not(ops.any(mask_h, axis=-1))[:, :, None],
        ops.logical_not(ops.any(mask_w, axis=-1))[:, None, :],
    )  # (K, out_h, out_w)
    return ops.where(empty[..., None], ops.zeros_like(m), m)


# -----------------------------------------------------------------------------
# keypoint targets in RoIs
# -----------------------------------------------------------------------------


def _check_heatmap_size(heatmap_size) -> tuple[int, int]:
    return _pair("heatmap_size", heatmap_size)


def keypoints_to_roi_targets(keypoints, visibility, rois, heatmap_size, *, image_size=None):
    """The keypoint head's targets: one cell of the ``S x S`` RoI heatmap per keypoint.

    torchvision's ``keypoints_to_heatmap`` (and Detectron2's
    ``_keypoints_to_heatmap``): with ``w = x2 - x1``, ``h = y2 - y1``::

        u = floor((x - x1) * S / w),   v = floor((y - y1) * S / h)
        target = v * S + u             (a flat index into the S * S cells)

    A keypoint exactly on the right (bottom) edge, ``x == x2``, gets
    ``u = S - 1`` (``v = S - 1``). A keypoint outside the RoI or with
    visibility ``<= 0`` is invalid; its target is 0 (as torchvision).

    Args:
        keypoints: ``(K, J, 2)`` ``(x, y)`` in input pixels (continuous
            coordinates, see the module docstring), the ground truth matched
            to each RoI.
        visibility: ``(K, J)`` COCO flags (0 unlabelled, 1 occluded, 2 visible);
            ``> 0`` counts as labelled.
        rois: ``(K, 4)`` ``(x1, y1, x2, y2)`` pixels, width and height ``> 0``.
        heatmap_size: ``S`` (56 in Mask R-CNN's keypoint head), or ``(S_h, S_w)``
            (then ``target = v * S_w + u``).
        image_size: optional ``(height, width)`` of the input image in pixels:
            with concrete values, labelled keypoints outside ``[0, width] x
            [0, height]`` raise ``ValueError`` (a sign of swapped axes or of
            keypoints of another image size).

    Returns:
        ``(target_index, valid)``: ``(K, J)`` int32 in ``[0, S_h * S_w)`` and
        ``(K, J)`` bool, as :func:`pose_lab.losses.keypoint_rcnn_loss` takes them.
    """
    s_h, s_w = _check_heatmap_size(heatmap_size)
    kp_values = _concrete(keypoints)
    vis_values = _concrete(visibility)
    keypoints = ops.cast(ops.convert_to_tensor(keypoints), "float32")
    _check_shape(keypoints, "keypoints", (None, None, 2), "(K, J, 2) as (x, y) pixels")
    k, j = _shape(keypoints)[:2]
    visibility = ops.convert_to_tensor(visibility)
    _check_shape(visibility, "visibility", (k, j), f"(K, J) = ({k}, {j}) like keypoints")
    rois = _check_boxes(rois, "rois")
    _check_shape(rois, "rois", (k, 4), f"(K, 4) = ({k}, 4), one RoI per row of keypoints")
    if image_size is not None:
        img_h, img_w = _image_size(image_size)
        if kp_values is not None and vis_values is not None and kp_values.size:
            labelled = np.asarray(vis_values) > 0
            xy = kp_values.astype(np.float64)
            outside = labelled & ((xy[..., 0] < 0) | (xy[..., 0] > img_w) | (xy[..., 1] < 0) | (xy[..., 1] > img_h)
                                  | ~np.isfinite(xy).all(axis=-1))
            if outside.any():
                first = tuple(int(i) for i in np.argwhere(outside)[0])
                raise ValueError(
                    f"keypoints: {int(outside.sum())} labelled keypoint(s) lie outside the image "
                    f"[0, {img_w:g}] x [0, {img_h:g}] (image_size=(height, width)=({img_h:g}, {img_w:g})), "
                    f"first at index {first}: {xy[first].tolist()}"
                )

    x, y = keypoints[..., 0], keypoints[..., 1]
    x1, y1, x2, y2 = (rois[:, i : i + 1] for i in range(4))
    u = ops.floor((x - x1) * (s_w / (x2 - x1)))
    v = ops.floor((y - y1) * (s_h / (y2 - y1)))
    u = ops.where(x == x2, float(s_w - 1), u)
    v = ops.where(y == y2, float(s_h - 1), v)
    inside = (u >= 0.0) & (v >= 0.0) & (u < float(s_w)) & (v < float(s_h))
    valid = ops.logical_and(inside, visibility > 0)
    index = ops.where(valid, v * float(s_w) + u, 0.0)
    return ops.cast(index, "int32"), valid


def _image_size(image_size) -> tuple[float, float]:
    try:
        h, w = (float(s) for s in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size: expected (height, width) in pixels, got {image_size!r}") from None
    if not (h > 0 and w > 0):
        raise ValueError(f"image_size: expected (height, width) > 0, got {image_size!r}")
    return h, w


def roi_heatmaps_to_keypoints(heatmap_logits, rois):
    """Decode the keypoint head: argmax cell of each heatmap, back to image pixels.

    For RoI ``(x1, y1, x2, y2)`` and the argmax cell ``(u, v)`` of an
    ``S_h x S_w`` heatmap the keypoint is the cell centre::

        x = x1 + (u + 0.5) * (x2 - x1) / S_w,   y = y1 + (v + 0.5) * (y2 - y1) / S_h

    the inverse of :func:`keypoints_to_roi_targets` up to half a cell (a
    keypoint encoded and decoded moves by at most ``w / S_w / 2`` in ``x``
    and ``h / S_h / 2`` in ``y``).

    Score: the softmax probability of the argmax cell,
    ``exp(l_max - logsumexp(l))`` in ``(0, 1]``, the probability the
    training loss (a softmax over the ``S x S`` cells) assigns to the chosen
    cell. torchvision returns the raw logit at the argmax of the upsampled
    heatmap instead; Detectron2 keeps that logit in column 2 of its output but
    scores keypoints (``pred_keypoints[..., 2]``) with a softmax value
    ``exp(l_max) / sum(exp(l))`` whose numerator is taken on the upsampled
    and denominator on the ``S x S`` map. A raw logit has no fixed scale (adding
    a constant to all cells changes it but not the prediction) and cannot be
    compared between keypoints or thresholded; the probability is invariant to
    that shift, lies in ``(0, 1]``, and is what OKS-based rescoring and
    visibility thresholds expect.

    torchvision and Detectron2 first upsample each heatmap with bicubic
    interpolation to the RoI's size in whole pixels (``ceil(w) x ceil(h)``),
    then take the argmax (a finer, per-RoI grid, also clamping ``w, h`` to
    ``>= 1``). That needs a different output shape per RoI; this kit maps the
    cell centre instead (static shapes, compilable), at up to half a heatmap
    cell of quantisation (``w / 112`` for ``S = 56``).

    Args:
        heatmap_logits: ``(K, S_h, S_w, J)`` logits, channels-last.
        rois: ``(K, 4)`` ``(x1, y1, x2, y2)`` pixels, width and height ``> 0``.

    Returns:
        ``(keypoints, scores)``: ``(K, J, 2)`` float32 ``(x, y)`` in image
        pixels and ``(K, J)`` float32 probabilities.
    """
    logits = ops.cast(ops.convert_to_tensor(heatmap_logits), "float32")
    shape = _check_shape(logits, "heatmap_logits", (None, None, None, None), "(K, S, S, J) (channels-last)")
    k, s_h, s_w, j = shape
    if s_h is None or s_w is None:
        raise ValueError(f"heatmap_logits: expected a static heatmap size, got shape {shape}")
    rois = _check_boxes(rois, "rois")
    _check_shape(rois, "rois", (k, 4), f"(K, 4) = ({k}, 4), one RoI per heatmap")
    flat = ops.transpose(ops.reshape(logits, (-1, s_h * s_w, ops.shape(logits)[-1])), (0, 2, 1))  # (K, J, S*S)
    index = ops.cast(ops.argmax(flat, axis=-1), "int32")
    peak = ops.take_along_axis(flat, index[..., None], axis=-1)[..., 0]  # (ops.max rejects K = 0 under TF)
    scores = ops.exp(peak - ops.logsumexp(flat, axis=-1))
    u = ops.cast(index % s_w, "float32")
    v = ops.cast(index // s_w, "float32")
    x1, y1, x2, y2 = (rois[:, i : i + 1] for i in range(4))
    x = x1 + (u + 0.5) * ((x2 - x1) / s_w)
    y = y1 + (v + 0.5) * ((y2 - y1) / s_h)
    return ops.stack([x, y], axis=-1), scores
