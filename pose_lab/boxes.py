"""Box machinery of two-stage detectors (Faster / Mask / Keypoint R-CNN) in ``keras.ops``.

Pure functions on arrays: areas and IoU, the R-CNN box transform, anchors,
anchor-to-ground-truth matching, balanced sampling and non-maximum
suppression. They run under the TensorFlow and JAX backends, eagerly and inside
compiled functions (``tf.function``, ``jax.jit``, a Keras train step): every
output has a shape known from the input shapes (fixed-size outputs padded with
``-1`` where a count varies). Beneath the data, model and training layers: this
module imports only Keras, NumPy and :mod:`pose_lab.validation` (and JAX,
lazily, when it is the backend).

Conventions
-----------
* A box is ``(x1, y1, x2, y2)`` in **pixels**, continuous coordinates: the
  top-left and bottom-right corners, ``width = x2 - x1``, ``height = y2 - y1``
  (no ``+ 1``; as torchvision and Detectron2, unlike the original R-CNN /
  Caffe code). A box array has shape ``(..., 4)``.
* The box transform (seed 002, R-CNN slide; Girshick et al. 2014, appendix C;
  Fast R-CNN) relates a proposal ``P`` (centre ``p_x, p_y``, size ``p_w, p_h``)
  to a box ``B`` by deltas ``t = (t_x, t_y, t_w, t_h)``::

      b_x = p_x + p_w * t_x          b_w = p_w * exp(t_w)
      b_y = p_y + p_h * t_y          b_h = p_h * exp(t_h)

  (the slide prints ``t_w`` / ``t_h`` in the two translation lines; the paper
  and every implementation use ``t_x`` / ``t_y`` there). Encoding inverts it,
  ``t_x = (g_x - p_x) / p_w``, ``t_w = log(g_w / p_w)``, and multiplies by
  per-coordinate weights ``(w_x, w_y, w_w, w_h)`` that bring the targets to unit
  scale: :data:`RPN_BOX_WEIGHTS` ``(1, 1, 1, 1)`` for the region proposal
  network, :data:`ROI_BOX_WEIGHTS` ``(10, 10, 5, 5)`` for the RoI box head
  (torchvision, Detectron2). Decoding clips ``t_w, t_h`` at
  :data:`BBOX_XFORM_CLIP` ``= log(1000 / 16)`` before ``exp`` so a wild
  prediction cannot overflow (torchvision's ``BoxCoder``).
* Matching (:func:`match_boxes`) labels each anchor / proposal with the index of
  its ground-truth box, :data:`BELOW_LOW_THRESHOLD` (``-1``, negative) or
  :data:`BETWEEN_THRESHOLDS` (``-2``, ignored). The IoU matrix is
  ``(anchors, gt)`` = ``pairwise_iou(anchors, gt_boxes)``, the transpose of
  torchvision's ``Matcher`` input.

Input checks: a wrong shape raises ``ValueError`` naming the argument and the
expected shape, always. When the values are known (NumPy arrays, Python lists,
eager tensors), NaN / inf and boxes of the wrong orientation (``x2 < x1``) or,
where a box must have a size, width or height ``<= 0`` raise ``ValueError``
too; inside a compiled function values cannot be inspected, so only shapes are
checked there.

Under the JAX backend the computational cores are wrapped in ``jax.jit``
(compiled once per input shape instead of once per operation in eager mode);
inside a compiled step they are simply inlined. Nothing changes for TensorFlow.

Example:
    >>> anchors, counts = multilevel_anchors((512, 512), strides=(8, 16, 32),
    ...                                      sizes_per_level=((32,), (64,), (128,)))
    >>> matches = match_boxes(pairwise_iou(anchors, gt_boxes), 0.7, 0.3, True)
    >>> positive, negative = sample_balanced(matches, 256, 0.5, seed=0)
"""

from __future__ import annotations

import functools
import math
import numbers

import keras
import numpy as np
from keras import ops

from .validation import positive_int

__all__ = [
    "RPN_BOX_WEIGHTS",
    "ROI_BOX_WEIGHTS",
    "BBOX_XFORM_CLIP",
    "BELOW_LOW_THRESHOLD",
    "BETWEEN_THRESHOLDS",
    "box_area",
    "pairwise_iou",
    "encode_boxes",
    "decode_boxes",
    "clip_boxes_to_image",
    "valid_box_mask",
    "generate_anchors",
    "multilevel_anchors",
    "match_boxes",
    "sample_balanced",
    "mask_to_indices",
    "non_max_suppression",
    "batched_non_max_suppression",
]

#: Box-coder weights ``(w_x, w_y, w_w, w_h)`` of the region proposal network.
RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
#: Box-coder weights of the RoI box head (Fast R-CNN; torchvision, Detectron2).
ROI_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
#: Upper clip of the decoded log-scale deltas ``t_w, t_h`` (torchvision's ``bbox_xform_clip``).
BBOX_XFORM_CLIP = math.log(1000.0 / 16)
#: Match label of an anchor whose best IoU is below the low threshold (a negative).
BELOW_LOW_THRESHOLD = -1
#: Match label of an anchor whose best IoU lies between the thresholds (ignored in the loss).
BETWEEN_THRESHOLDS = -2

_BOX = "boxes (x1, y1, x2, y2)"


# --------------------------------------------------------------------------
# input checks (private)
# --------------------------------------------------------------------------
def concrete_values(x):
    """``x`` as a NumPy array when its values are known now, else ``None`` (traced / symbolic).

    Shared with :mod:`pose_lab.roi`: value checks run only where this is not ``None``.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple, numbers.Number, np.generic)):
        try:
            return np.asarray(x)
        except (TypeError, ValueError):
            return None
    if keras.backend.is_keras_tensor(x):
        return None
    to_numpy = getattr(x, "numpy", None)  # eager tf.Tensor (graph tensors have none)
    try:
        if callable(to_numpy):
            return np.asarray(to_numpy())
        if keras.backend.backend() == "jax":
            return np.asarray(x)  # jax.Array; a tracer raises
    except Exception:  # noqa: BLE001 - any failure means "not concrete"
        return None
    return None


def _float(x, name: str, dtype=None):
    try:
        x = ops.convert_to_tensor(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a numeric array: {exc}") from None
    if dtype is None:
        dtype = x.dtype if "float" in str(x.dtype) else keras.config.floatx()
    return ops.cast(x, dtype)


def static_shape(x) -> tuple:
    """The static shape of a tensor as a tuple of ints (``None`` where unknown)."""
    return tuple(None if d is None else int(d) for d in x.shape)


def _first(bad: np.ndarray):
    """(count, first index) of the True entries of ``bad``; the index an int or a tuple."""
    where = np.argwhere(bad)
    first = tuple(int(i) for i in where[0])
    return len(where), (first[0] if len(first) == 1 else first)


def _check_finite(values, name: str, what: str, item_axes: int) -> None:
    if values is None or not np.issubdtype(values.dtype, np.floating):
        return
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = ~finite.all(axis=tuple(range(values.ndim - item_axes, values.ndim))) if item_axes else ~finite
    count, first = _first(np.atleast_1d(bad))
    raise ValueError(f"{name}: {count} {what} contain NaN or inf values (first at index {first})")


def check_boxes(x, name: str, *, rank=None, min_rank: int = 1, sized: str | None = None, dtype=None):
    """Check a box array ``(..., 4)`` and return it as a float tensor.

    ``rank``: exact number of axes; ``min_rank``: the least. ``sized``: what the
    boxes are for when ``x2 > x1`` and ``y2 > y1`` are required (else only
    ``x2 >= x1``, ``y2 >= y1``).
    """
    values = concrete_values(x)
    if values is not None and (values.dtype == object or not (np.issubdtype(values.dtype, np.number))):
        raise ValueError(f"{name}: expected a numeric array of {_BOX}, got dtype {values.dtype}")
    t = _float(x, name, dtype)
    shape = static_shape(t)
    ok = (len(shape) == rank) if rank is not None else len(shape) >= min_rank
    if not ok or shape[-1] != 4:
        lead = {1: "", 2: "N, "}.get(rank, "..., N, " if (rank or min_rank) >= 2 else "..., ")
        raise ValueError(f"{name}: expected shape ({lead}4) of {_BOX} in pixels, got {shape}")
    if values is None:
        return t
    values = values.astype(np.float64, copy=False)
    _check_finite(values, name, "box(es)", 1)
    w = values[..., 2] - values[..., 0]
    h = values[..., 3] - values[..., 1]
    bad = ((w <= 0) | (h <= 0)) if sized else ((w < 0) | (h < 0))
    if np.any(bad):
        count, first = _first(np.atleast_1d(bad))
        box = values[first].tolist() if isinstance(first, tuple) else values.reshape(-1, 4)[first].tolist()
        if sized:
            i = first if isinstance(first, tuple) else np.unravel_index(first, w.shape) if w.ndim else ()
            raise ValueError(
                f"{name}: {count} box(es) have width or height <= 0 (first at index {first}: {box}, "
                f"width {float(w[i]):g}, height {float(h[i]):g}); {sized} needs x2 > x1 and y2 > y1"
            )
        raise ValueError(
            f"{name}: {count} box(es) have x2 < x1 or y2 < y1 (first at index {first}: {box}); "
            f"expected {_BOX} with x2 >= x1 and y2 >= y1"
        )
    return t


def _number(name: str, value, *, low=None, high=None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name}: expected a number in [{lo}, {hi}], got {value!r}")
    return value


def _weights(weights) -> tuple:
    try:
        w = tuple(float(v) for v in weights)
    except (TypeError, ValueError):
        w = ()
    if len(w) != 4 or not all(math.isfinite(v) and v > 0 for v in w):
        raise ValueError(f"weights: expected 4 positive numbers (w_x, w_y, w_w, w_h), got {weights!r}")
    return w


def _jit_on_jax(*static_argnames):
    """Compile a private core with ``jax.jit`` when the backend is JAX and the inputs are concrete.

    Eager JAX compiles every operation separately for every new shape; one
    ``jax.jit`` per core compiles the whole computation once per shape instead
    (the same numbers, much faster outside a compiled step). Inside a compiled
    step the call is simply inlined. Other backends, and Keras symbolic tensors
    (functional-model building), call the plain function.
    """

    def wrap(fn):
        jitted = None

        @functools.wraps(fn)
        def call(*args, **kwargs):
            nonlocal jitted
            if keras.backend.backend() != "jax" or any(keras.backend.is_keras_tensor(a) for a in args):
                return fn(*args, **kwargs)
            if jitted is None:
                import jax

                jitted = jax.jit(fn, static_argnames=static_argnames)
            return jitted(*args, **kwargs)

        return call

    return wrap


# --------------------------------------------------------------------------
# areas, IoU
# --------------------------------------------------------------------------
def _area(boxes):
    w = ops.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    h = ops.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    return w * h


def box_area(boxes):
    """Area of boxes ``(x1, y1, x2, y2)``: ``(x2 - x1) * (y2 - y1)`` in square pixels.

    Args:
        boxes: ``(..., 4)`` boxes in pixels with ``x2 >= x1``, ``y2 >= y1``.

    Returns:
        Areas, shape ``(...)`` (the input's shape without the last axis).

    Example:
        >>> box_area([[0, 0, 4, 2]])  # [8.]
    """
    return _area(check_boxes(boxes, "boxes"))


@_jit_on_jax()
def _iou(a, b):
    """Unchecked pairwise IoU ``(..., N, 4) x (..., M, 4) -> (..., N, M)``."""
    area_a = _area(a)[..., :, None]
    area_b = _area(b)[..., None, :]
    a = a[..., :, None, :]
    b = b[..., None, :, :]
    w = ops.maximum(ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0]), 0.0)
    h = ops.maximum(ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = w * h
    union = area_a + area_b - inter
    return ops.where(union > 0, inter / ops.maximum(union, 1e-12), ops.zeros_like(inter))


def pairwise_iou(boxes_a, boxes_b):
    """Intersection over union of every box of ``boxes_a`` with every box of ``boxes_b``.

    ``IoU = area(A ∩ B) / area(A ∪ B)``; ``0`` where the union is empty (two
    zero-size boxes, e.g. padding).

    Args:
        boxes_a: ``(N, 4)`` boxes ``(x1, y1, x2, y2)`` in pixels (e.g. anchors);
            leading batch axes ``(..., N, 4)`` are allowed.
        boxes_b: ``(M, 4)`` boxes (e.g. ground truth), or ``(..., M, 4)`` with
            batch axes broadcastable against ``boxes_a``'s.

    Returns:
        IoU matrix, shape ``(N, M)`` (``(..., N, M)``), values in ``[0, 1]``.

    Example:
        >>> pairwise_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [5, 5, 6, 6]])  # [[1/3, 0]]
    """
    a = check_boxes(boxes_a, "boxes_a", min_rank=2)
    b = check_boxes(boxes_b, "boxes_b", min_rank=2, dtype=a.dtype)
    return _iou(a, b)


# --------------------------------------------------------------------------
# the R-CNN box transform
# --------------------------------------------------------------------------
def _centre_size(boxes):
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


def encode_boxes(reference_boxes, proposals, weights=RPN_BOX_WEIGHTS):
    """Regression targets ``(t_x, t_y, t_w, t_h)`` that move ``proposals`` onto ``reference_boxes``.

    With centres ``(g_x, g_y)``, ``(p_x, p_y)`` and sizes ``(g_w, g_h)``, ``(p_w, p_h)``::

        t_x = w_x (g_x - p_x) / p_w      t_w = w_w log(g_w / p_w)
        t_y = w_y (g_y - p_y) / p_h      t_h = w_h log(g_h / p_h)

    the inverse of :func:`decode_boxes` (torchvision's ``encode_boxes``).

    Args:
        reference_boxes: ``(..., 4)`` ground-truth boxes ``(x1, y1, x2, y2)`` in
            pixels matched to each proposal; width and height ``> 0``.
        proposals: ``(..., 4)`` anchors or proposals, broadcastable against
            ``reference_boxes``; width and height ``> 0``.
        weights: ``(w_x, w_y, w_w, w_h)``: :data:`RPN_BOX_WEIGHTS` ``(1, 1, 1, 1)``
            for the RPN, :data:`ROI_BOX_WEIGHTS` ``(10, 10, 5, 5)`` for the RoI head.

    Returns:
        Deltas ``(..., 4)`` (unitless). Widths and heights are clamped at
        ``1e-6`` pixels: inside a compiled function, where a bad box cannot
        raise, a padded zero-size box gives a finite (meaningless) target
        instead of ``-inf`` / NaN; mask such rows out of the loss.

    Example:
        >>> encode_boxes([[1, 0, 3, 2]], [[0, 0, 2, 2]])  # [[0.5, 0, 0, 0]]
    """
    wx, wy, ww, wh = _weights(weights)
    g = check_boxes(reference_boxes, "reference_boxes", sized="encoding (log of the size)")
    p = check_boxes(proposals, "proposals", sized="encoding (division by the size)", dtype=g.dtype)
    return _encode(g, p, (wx, wy, ww, wh))


@_jit_on_jax("weights")
def _encode(g, p, weights):
    wx, wy, ww, wh = weights
    gx, gy, gw, gh = _centre_size(g)
    px, py, pw, ph = _centre_size(p)
    pw, ph = ops.maximum(pw, 1e-6), ops.maximum(ph, 1e-6)
    gw, gh = ops.maximum(gw, 1e-6), ops.maximum(gh, 1e-6)
    return ops.stack(
        [wx * (gx - px) / pw, wy * (gy - py) / ph, ww * ops.log(gw / pw), wh * ops.log(gh / ph)], axis=-1
    )


def decode_boxes(deltas, proposals, weights=RPN_BOX_WEIGHTS, clip=BBOX_XFORM_CLIP):
    """Apply deltas ``(t_x, t_y, t_w, t_h)`` to ``proposals``: the R-CNN box transform.

    ``b_x = p_x + p_w t_x / w_x``, ``b_w = p_w exp(min(t_w / w_w, clip))`` (and
    the same for ``y``, ``h``), returned as corners ``b_x -/+ b_w / 2``.

    Args:
        deltas: ``(..., 4)`` predicted deltas (unitless), broadcastable against
            ``proposals``; class-specific deltas ``(N, K, 4)`` work with
            ``proposals[:, None, :]``.
        proposals: ``(..., 4)`` anchors or proposals ``(x1, y1, x2, y2)`` in
            pixels, width and height ``> 0``.
        weights: the same ``(w_x, w_y, w_w, w_h)`` as used for encoding.
        clip: upper bound of ``t_w / w_w`` and ``t_h / w_h`` before ``exp``
            (default :data:`BBOX_XFORM_CLIP` ``= log(1000/16)``: a box grows at
            most 62.5 times); ``None`` disables it.

    Returns:
        Boxes ``(..., 4)`` ``(x1, y1, x2, y2)`` in pixels (not clipped to the
        image: see :func:`clip_boxes_to_image`).

    Example:
        >>> decode_boxes([[0.5, 0, 0, 0]], [[0, 0, 2, 2]])  # [[1, 0, 3, 2]]
    """
    wx, wy, ww, wh = _weights(weights)
    if clip is not None:
        clip = _number("clip", clip)
    values = concrete_values(deltas)
    d = _float(deltas, "deltas")
    shape = static_shape(d)
    if len(shape) < 1 or shape[-1] != 4:
        raise ValueError(f"deltas: expected shape (..., 4) of (t_x, t_y, t_w, t_h), got {shape}")
    if values is not None:
        _check_finite(np.asarray(values, np.float64), "deltas", "delta(s)", 1)
    p = check_boxes(proposals, "proposals", sized="decoding", dtype=d.dtype)
    return _decode(d, p, (wx, wy, ww, wh), clip)


@_jit_on_jax("weights", "clip")
def _decode(d, p, weights, clip):
    wx, wy, ww, wh = weights
    px, py, pw, ph = _centre_size(p)
    dw, dh = d[..., 2] / ww, d[..., 3] / wh
    if clip is not None:
        dw, dh = ops.minimum(dw, clip), ops.minimum(dh, clip)
    cx = px + pw * (d[..., 0] / wx)
    cy = py + ph * (d[..., 1] / wy)
    w, h = pw * ops.exp(dw), ph * ops.exp(dh)
    return ops.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def clip_boxes_to_image(boxes, height, width):
    """Clamp boxes to the image: ``x`` into ``[0, width]``, ``y`` into ``[0, height]``.

    Args:
        boxes: ``(..., 4)`` boxes ``(x1, y1, x2, y2)`` in pixels.
        height: image height in pixels (a number, or a tensor broadcastable
            against ``boxes[..., 0]``, e.g. ``(B, 1)`` for a batch ``(B, N, 4)``).
        width: image width in pixels, the same way.

    Returns:
        Boxes ``(..., 4)``; a box outside the image becomes zero-size (filter
        with :func:`valid_box_mask`).

    Example:
        >>> clip_boxes_to_image([[-5, 10, 700, 90]], height=480, width=640)  # [[0, 10, 640, 90]]
    """
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            _number(name, v, low=0.0)
    b = check_boxes(boxes, "boxes")
    h = ops.cast(height, b.dtype)
    w = ops.cast(width, b.dtype)
    x1 = ops.minimum(ops.maximum(b[..., 0], 0.0), w)
    x2 = ops.minimum(ops.maximum(b[..., 2], 0.0), w)
    y1 = ops.minimum(ops.maximum(b[..., 1], 0.0), h)
    y2 = ops.minimum(ops.maximum(b[..., 3], 0.0), h)
    return ops.stack([x1, y1, x2, y2], axis=-1)


def valid_box_mask(boxes, min_size=1e-3):
    """Which boxes are at least ``min_size`` pixels wide and high (torchvision's ``remove_small_boxes``).

    ``keep = (x2 - x1 >= min_size) & (y2 - y1 >= min_size)``, returned as a
    mask instead of indices so the shape stays fixed. The default ``1e-3`` is
    torchvision's RPN ``min_size``; Detectron2's ``Boxes.nonempty`` uses
    ``> 0`` (strict) instead.

    Args:
        boxes: ``(..., 4)`` boxes ``(x1, y1, x2, y2)`` in pixels, e.g. decoded
            and clipped proposals.
        min_size: the smallest accepted width and height, pixels (``>= 0``).

    Returns:
        Boolean mask, shape ``(...)``.

    Example:
        >>> valid_box_mask([[0, 0, 5, 5], [0, 0, 5, 0]], min_size=1)  # [True, False]
    """
    min_size = _number("min_size", min_size, low=0.0)
    b = check_boxes(boxes, "boxes")
    return ops.logical_and(b[..., 2] - b[..., 0] >= min_size, b[..., 3] - b[..., 1] >= min_size)


# --------------------------------------------------------------------------
# anchors
# --------------------------------------------------------------------------
def _numbers(name: str, values, *, positive: bool = True) -> tuple:
    if isinstance(values, numbers.Real):
        values = (values,)
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        out = ()
    if not out or not all(math.isfinite(v) and (v > 0 or not positive) for v in out):
        raise ValueError(f"{name}: expected a non-empty sequence of positive numbers, got {values!r}")
    return out


def int_pair(name: str, value) -> tuple:
    """A positive int or a pair of them as ``(height, width)``; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        a, b = value
        return positive_int(name, a), positive_int(name, b)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive int or a pair (height, width) of them, got {value!r}") from None


def _base_anchors(sizes, aspect_ratios) -> np.ndarray:
    """torchvision's cell anchors: ratio-major, centred at 0, rounded to whole pixels."""
    scales = np.asarray(sizes, np.float32)
    h_ratios = np.sqrt(np.asarray(aspect_ratios, np.float32))
    w_ratios = 1.0 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / 2.0).astype(np.float32)


def generate_anchors(feature_shape, stride, sizes, aspect_ratios=(0.5, 1.0, 2.0), offset=0.0):
    """Anchors of one feature level: ``len(sizes) * len(aspect_ratios)`` boxes per feature-map cell.

    Follows torchvision's ``AnchorGenerator``: an anchor of size ``s`` and
    aspect ratio ``r = height / width`` has ``w = s / sqrt(r)``, ``h = s * sqrt(r)``
    (area ``s^2``); the cell anchors are centred at 0 and **rounded** to whole
    pixels; the cell at row ``i``, column ``j`` shifts them by
    ``((j + offset) * stride_x, (i + offset) * stride_y)``. Order: row-major
    over cells, then aspect ratios, then sizes (``A = len(aspect_ratios) * len(sizes)``
    anchors per cell, ratio-major), the channel order an RPN head with ``A``
    anchors per location must predict in.

    Detectron2's ``DefaultAnchorGenerator`` differs in three ways: cell anchors
    are not rounded, the order per cell is size-major (sizes outer, ratios
    inner), and ``offset`` is configurable (default ``0.0`` too; ``0.5`` centres
    the anchors in their cells). ``offset`` here gives that option; the other
    two are torchvision's.

    Args:
        feature_shape: ``(H, W)`` of the level's feature map (cells).
        stride: pixels per cell, an int or ``(stride_y, stride_x)``.
        sizes: anchor sizes ``sqrt(area)`` in pixels, e.g. ``(32,)`` for the
            first FPN level or ``(32, 64, 128, 256, 512)`` for a single-level RPN.
        aspect_ratios: ``height / width`` ratios, default ``(0.5, 1, 2)``.
        offset: cell offset in units of the stride (``0.0``: anchors centred
            on the cell's top-left corner, as torchvision).

    Returns:
        Anchors ``(H * W * A, 4)`` ``(x1, y1, x2, y2)`` in pixels, a float32
        tensor; computed in NumPy (they depend on static sizes only), so a
        constant inside compiled code.

    Example:
        >>> generate_anchors((2, 3), 16, sizes=(32,), aspect_ratios=(1.0,))[:2]
        [[-16, -16, 16, 16], [0, -16, 32, 16]]
    """
    fh, fw = int_pair("feature_shape", feature_shape)
    sy, sx = int_pair("stride", stride)
    sizes = _numbers("sizes", sizes)
    ratios = _numbers("aspect_ratios", aspect_ratios)
    offset = _number("offset", offset, low=0.0, high=1.0)
    return ops.convert_to_tensor(_grid_anchors(fh, fw, sy, sx, sizes, ratios, offset))


def _grid_anchors(fh, fw, sy, sx, sizes, ratios, offset) -> np.ndarray:
    """Anchors of a level in NumPy: they depend on static sizes only, so they are constants."""
    base = _base_anchors(sizes, ratios)
    xs = (np.arange(fw, dtype=np.float32) + np.float32(offset)) * np.float32(sx)
    ys = (np.arange(fh, dtype=np.float32) + np.float32(offset)) * np.float32(sy)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    xx, yy = xx.reshape(-1), yy.reshape(-1)
    shifts = np.stack([xx, yy, xx, yy], axis=1)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)


def multilevel_anchors(image_size, strides, sizes_per_level, aspect_ratios=(0.5, 1.0, 2.0), *,
                       feature_shapes=None, offset=0.0):
    """Anchors of every feature level (an FPN), concatenated, and their count per level.

    Args:
        image_size: ``(height, width)`` of the (padded) input image in pixels.
        strides: stride of each level in pixels, e.g. ``(4, 8, 16, 32, 64)``
            for FPN levels P2-P6.
        sizes_per_level: anchor sizes of each level, e.g.
            ``((32,), (64,), (128,), (256,), (512,))`` (torchvision's FPN default).
        aspect_ratios: ``height / width`` ratios: one sequence for all levels,
            e.g. ``(0.5, 1, 2)``, or one sequence per level.
        feature_shapes: ``(H, W)`` of each level; default
            ``ceil(image_size / stride)``, the shape of a backbone with "same"
            padding. Images are usually padded to a multiple of the largest
            stride (torchvision pads to 32), so this is exactly ``image / stride``.
        offset: cell offset, see :func:`generate_anchors`.

    Returns:
        ``(anchors, counts)``: anchors ``(sum(counts), 4)`` in pixels, level by
        level in the order of ``strides``, and ``counts``, a tuple of Python
        ints ``H_l * W_l * len(sizes_l) * len(ratios_l)``.

    Example:
        >>> anchors, counts = multilevel_anchors((64, 64), (8, 16), ((32,), (64,)))
        >>> counts  # (8*8*3, 4*4*3) = (192, 48)
    """
    img_h, img_w = int_pair("image_size", image_size)
    try:
        strides = tuple(strides)
        sizes_per_level = tuple(sizes_per_level)
    except TypeError:
        raise ValueError("strides, sizes_per_level: expected one entry per level") from None
    levels = len(strides)
    if levels == 0 or len(sizes_per_level) != levels:
        raise ValueError(
            f"sizes_per_level: expected one sequence of sizes per level ({levels} strides), "
            f"got {len(sizes_per_level)}"
        )
    if aspect_ratios and all(isinstance(r, numbers.Real) for r in aspect_ratios):
        ratios_per_level = (tuple(aspect_ratios),) * levels
    else:
        ratios_per_level = tuple(aspect_ratios)
        if len(ratios_per_level) != levels:
            raise ValueError(
                f"aspect_ratios: expected one sequence for all levels or one per level ({levels}), "
                f"got {aspect_ratios!r}"
            )
    if feature_shapes is None:
        feature_shapes = []
        for s in strides:
            sy, sx = int_pair("strides", s)
            feature_shapes.append((-(-img_h // sy), -(-img_w // sx)))
    elif len(feature_shapes) != levels:
        raise ValueError(f"feature_shapes: expected one (H, W) per level ({levels}), got {feature_shapes!r}")
    offset = _number("offset", offset, low=0.0, high=1.0)
    anchors = []
    for shape, s, sizes, ratios in zip(feature_shapes, strides, sizes_per_level, ratios_per_level):
        fh, fw = int_pair("feature_shapes", shape)
        sy, sx = int_pair("strides", s)
        anchors.append(_grid_anchors(fh, fw, sy, sx, _numbers("sizes_per_level", sizes),
                                     _numbers("aspect_ratios", ratios), offset))
    counts = tuple(len(a) for a in anchors)
    return ops.convert_to_tensor(np.concatenate(anchors, axis=0)), counts


# --------------------------------------------------------------------------
# matching
# --------------------------------------------------------------------------
def match_boxes(iou_matrix, high_threshold=0.7, low_threshold=0.3, allow_low_quality_matches=True, *,
                gt_valid=None):
    """Match each anchor / proposal to a ground-truth box (torchvision's ``Matcher``).

    For anchor ``n`` with best IoU ``v`` over the (valid) ground truth, at gt
    index ``m`` (the lowest index on ties)::

        v >= high_threshold          -> m
        low_threshold <= v < high    -> BETWEEN_THRESHOLDS (-2, ignored)
        v < low_threshold            -> BELOW_LOW_THRESHOLD (-1, negative)

    With ``allow_low_quality_matches`` every anchor that has the highest IoU
    with some gt box (all of them on ties) is matched as well, to its own best
    gt ``m`` as in torchvision, so that no gt box is left without an anchor.
    Standard settings: RPN ``(0.7, 0.3, True)``, RoI box head ``(0.5, 0.5, False)``.

    Differences from torchvision / Detectron2: the matrix is ``(anchors, gt)``
    (theirs is ``(gt, anchors)``); a gt whose best IoU is 0 gives no
    low-quality matches (theirs then matches every anchor with IoU 0 to it);
    no ground truth at all, or only padding, labels everything ``-1``
    (torchvision's ``Matcher`` raises on an empty matrix while training; its
    RPN and RoI heads label images without boxes all-background beforehand).

    Args:
        iou_matrix: ``(N, M)`` IoU of ``N`` anchors with ``M`` gt boxes,
            ``pairwise_iou(anchors, gt_boxes)``; leading batch axes ``(..., N, M)``
            allowed. ``M`` may be 0.
        high_threshold: IoU from which an anchor is positive.
        low_threshold: IoU below which an anchor is negative (``<= high_threshold``).
        allow_low_quality_matches: also match each gt box's best anchor(s).
        gt_valid: optional boolean ``(M,)`` / ``(..., M)``: False marks padded
            gt boxes (compiled code needs a fixed ``M``), which are never matched.

    Returns:
        int32 matches ``(N,)`` / ``(..., N)``: gt index, ``-1`` or ``-2``.

    Example:
        >>> match_boxes([[0.9, 0.1], [0.4, 0.2], [0.1, 0.0]], 0.7, 0.3, False)  # [0, -2, -1]
    """
    high = _number("high_threshold", high_threshold)
    low = _number("low_threshold", low_threshold)
    if low > high:
        raise ValueError(f"low_threshold: expected <= high_threshold ({high!r}), got {low!r}")
    values = concrete_values(iou_matrix)
    iou = _float(iou_matrix, "iou_matrix")
    shape = static_shape(iou)
    if len(shape) < 2:
        raise ValueError(f"iou_matrix: expected shape (N, M) = (anchors, gt boxes) or (..., N, M), got {shape}")
    if values is not None:
        _check_finite(np.asarray(values, np.float64), "iou_matrix", "entry(ies)", 0)
    n, m = shape[-2], shape[-1]
    if m == 0 or n == 0:
        return ops.full(shape[:-1], BELOW_LOW_THRESHOLD, dtype="int32")
    valid = None
    if gt_valid is not None:
        valid = ops.convert_to_tensor(gt_valid)
        if static_shape(valid)[-1:] != (m,):
            raise ValueError(f"gt_valid: expected shape (..., {m}) (one flag per gt box), got {static_shape(valid)}")
    thresholds = ops.convert_to_tensor([high, low], dtype=iou.dtype)
    return _match(iou, valid, thresholds, bool(allow_low_quality_matches))


@_jit_on_jax("allow_low_quality_matches")
def _match(iou, valid, thresholds, allow_low_quality_matches):
    high, low = thresholds[0], thresholds[1]
    m = ops.shape(iou)[-1]  # static under JAX; may be a tensor in a TF graph
    if valid is not None:
        iou = ops.where(ops.cast(valid, "bool")[..., None, :], iou, -ops.ones_like(iou))
    best = ops.max(iou, axis=-1)
    ids = ops.arange(m, dtype="int32")
    best_gt = ops.min(ops.where(iou == best[..., None], ids, m), axis=-1)
    matches = ops.where(
        best >= high, best_gt,
        ops.where(best >= low, BETWEEN_THRESHOLDS, BELOW_LOW_THRESHOLD),
    )
    if allow_low_quality_matches:
        highest = ops.max(iou, axis=-2)[..., None, :]  # (..., 1, M)
        is_best = ops.logical_and(iou == highest, highest > 0)
        matches = ops.where(ops.any(is_best, axis=-1), best_gt, matches)
    return ops.cast(matches, "int32")


# --------------------------------------------------------------------------
# balanced sampling
# --------------------------------------------------------------------------
def _top_mask(priority, count, k: int):
    """Boolean mask of the ``count`` (per row) largest ``priority`` entries, ``count <= k``."""
    shape = static_shape(priority)
    n = shape[-1]
    _, idx = ops.top_k(priority, k=k)  # (..., k)
    take = ops.cast(ops.arange(k, dtype="int32") < count[..., None], "int32")
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    flat = ops.reshape(idx, (rows, k)) + ops.arange(rows, dtype="int32")[:, None] * n
    hits = ops.scatter(ops.reshape(flat, (-1, 1)), ops.reshape(take, (-1,)), (rows * n,))
    return ops.reshape(hits, shape) > 0


def sample_balanced(labels, num_samples=256, positive_fraction=0.5, seed=None):
    """Pick a fixed-size, balanced random set of positive and negative anchors / proposals.

    As torchvision's ``BalancedPositiveNegativeSampler``: at most
    ``int(num_samples * positive_fraction)`` positives, and negatives fill the
    rest of ``num_samples`` (so with too few positives more negatives are
    taken); with too few of both, fewer than ``num_samples`` are picked.
    Within each class the choice is uniform (random priorities and
    ``top_k``), so the shapes are fixed and the function compiles. Standard
    settings: RPN ``256, 0.5``; RoI box head ``512, 0.25``.

    Args:
        labels: int ``(N,)`` or ``(..., N)``, the output of :func:`match_boxes`:
            ``>= 0`` positive, ``-1`` negative, any other value (``-2``) ignored
            (torchvision's sampler takes ``1 / 0 / -1`` for positive / negative
            / ignored instead; the matches go in here unchanged).
        num_samples: anchors picked per row (image) at most.
        positive_fraction: the largest share of positives, in ``[0, 1]``.
        seed: an int (the same picks on every call), a
            ``keras.random.SeedGenerator`` (new picks each call; in a training
            step use one owned by the model, so the JAX trainer threads its
            state), ``None`` (Keras's global generator; not inside ``jax.jit``),
            or under JAX a seed tensor ``(2,)`` of uint32.

    Returns:
        ``(positive_mask, negative_mask)``: boolean, shape of ``labels``;
        use :func:`mask_to_indices` for fixed-size index lists.

    Example:
        >>> pos, neg = sample_balanced(matches, 256, 0.5, seed=0)
        >>> # loss over ops.logical_or(pos, neg); pos.sum() <= 128, pos.sum() + neg.sum() <= 256
    """
    num_samples = positive_int("num_samples", num_samples)
    fraction = _number("positive_fraction", positive_fraction, low=0.0, high=1.0)
    values = concrete_values(labels)
    if values is not None and not (np.issubdtype(values.dtype, np.integer)):
        raise ValueError(f"labels: expected integer match labels (>= 0, -1, -2), got dtype {values.dtype}")
    lab = ops.convert_to_tensor(labels)
    shape = static_shape(lab)
    if len(shape) < 1 or None in shape:
        raise ValueError(f"labels: expected a static shape (N,) or (..., N), got {shape}")
    if "int" not in str(lab.dtype):
        raise ValueError(f"labels: expected integer match labels (>= 0, -1, -2), got dtype {lab.dtype}")
    n = shape[-1]
    if n == 0:
        empty = ops.zeros(shape, dtype="bool")
        return empty, empty
    u = keras.random.uniform(shape, seed=seed)  # outside the jitted core: a SeedGenerator updates its state
    return _sample(lab, u, num_samples, int(num_samples * fraction))


@_jit_on_jax("num_samples", "max_pos")
def _sample(lab, u, num_samples, max_pos):
    n = static_shape(lab)[-1]
    pos = lab >= 0
    neg = lab == BELOW_LOW_THRESHOLD
    num_pos = ops.minimum(ops.sum(ops.cast(pos, "int32"), axis=-1), max_pos)
    num_neg = ops.minimum(num_samples - num_pos, ops.sum(ops.cast(neg, "int32"), axis=-1))
    pos_mask = _top_mask(ops.where(pos, u, -1.0), num_pos, max(1, min(max_pos, n)))
    neg_mask = _top_mask(ops.where(neg, u, -1.0), num_neg, min(num_samples, n))
    return pos_mask, neg_mask


@_jit_on_jax("size")
def _first_true(mask, size: int):
    """(indices ``(..., size)`` of the first ``size`` True entries in order, padded with -1; their count)."""
    shape = static_shape(mask)
    n = shape[-1]
    key = ops.where(mask, n - ops.arange(n, dtype="int32"), 0)
    k = min(size, n)
    vals, idx = ops.top_k(key, k=k)
    idx = ops.where(vals > 0, idx, -1)
    if size > k:
        pad = ops.full(shape[:-1] + (size - k,), -1, dtype="int32")
        idx = ops.concatenate([ops.cast(idx, "int32"), pad], axis=-1)
    count = ops.minimum(ops.sum(ops.cast(mask, "int32"), axis=-1), size)
    return ops.cast(idx, "int32"), count


def mask_to_indices(mask, size):
    """Fixed-size index list of a boolean mask: the first ``size`` True positions, padded with ``-1``.

    Args:
        mask: boolean ``(N,)`` or ``(..., N)`` (e.g. from :func:`sample_balanced`).
        size: length of the list (static), e.g. ``num_samples``.

    Returns:
        ``(indices, count)``: int32 ``(..., size)`` in increasing order with
        ``-1`` after the ``count`` valid ones, and int32 ``count`` ``(...)``.

    Example:
        >>> mask_to_indices([False, True, True, False], 3)  # ([1, 2, -1], 2)
    """
    size = positive_int("size", size)
    m = ops.cast(ops.convert_to_tensor(mask), "bool")
    shape = static_shape(m)
    if len(shape) < 1 or shape[-1] is None:
        raise ValueError(f"mask: expected shape (N,) or (..., N) with a static N, got {shape}")
    if shape[-1] == 0:
        return ops.full(shape[:-1] + (size,), -1, dtype="int32"), ops.zeros(shape[:-1], dtype="int32")
    return _first_true(m, size)


# --------------------------------------------------------------------------
# non-maximum suppression
# --------------------------------------------------------------------------
def _nms_cond(keep, changed, i, suppresses, candidates):
    return ops.logical_and(changed, i <= ops.shape(keep)[0])


def _nms_body(keep, changed, i, suppresses, candidates):
    """One step ``keep <- candidates & ~(any kept box before j suppresses j)``.

    Module-level (not a closure) so JAX caches the traced loop between eager calls.
    """
    hit = ops.any(ops.logical_and(suppresses, keep[:, None]), axis=0)
    new = ops.logical_and(candidates, ops.logical_not(hit))
    return new, ops.any(ops.not_equal(new, keep)), i + 1, suppresses, candidates


def _nms(boxes, scores, max_output_size, iou_threshold, score_threshold, groups=None):
    n = static_shape(boxes)[0]
    if n is None:
        raise ValueError("boxes: non_max_suppression needs a static number of boxes N, got shape (None, 4)")
    if n == 0:
        return ops.full((max_output_size,), -1, dtype="int32"), ops.convert_to_tensor(0, dtype="int32")
    # thresholds as tensors: one compiled program serves every threshold
    thresholds = ops.convert_to_tensor([iou_threshold, score_threshold], dtype=scores.dtype)
    return _nms_core(boxes, scores, groups, thresholds, max_output_size)


@_jit_on_jax("max_output_size")
def _nms_core(boxes, scores, groups, thresholds, max_output_size):
    iou_threshold, score_threshold = thresholds[0], thresholds[1]
    n = static_shape(boxes)[0]
    # Sort by score, highest first; top_k puts the lower index first on ties.
    sorted_scores, order = ops.top_k(scores, k=n)
    b = ops.take(boxes, order, axis=0)
    later = ops.arange(n)[None, :] > ops.arange(n)[:, None]  # j > i
    suppresses = ops.logical_and(_iou(b, b) > iou_threshold, later)  # row i suppresses column j
    if groups is not None:
        g = ops.take(groups, order, axis=0)
        suppresses = ops.logical_and(suppresses, g[:, None] == g[None, :])
    candidates = sorted_scores > score_threshold

    # Greedy NMS as a fixed point: box j is kept iff it is a candidate and no
    # kept box before it suppresses it. Iterating keep <- F(keep) from
    # keep = candidates fixes one more leading box per step (box j depends only
    # on boxes i < j), so it reaches the greedy answer after at most n steps,
    # in practice after a few (the longest chain of suppressions that flip).
    init = (candidates, ops.convert_to_tensor(True), ops.convert_to_tensor(0, dtype="int32"), suppresses, candidates)
    keep = ops.while_loop(_nms_cond, _nms_body, init)[0]
    pos, count = _first_true(keep, max_output_size)
    idx = ops.where(pos >= 0, ops.take(ops.cast(order, "int32"), ops.maximum(pos, 0), axis=0), -1)
    return ops.cast(idx, "int32"), ops.cast(count, "int32")


def _nms_inputs(boxes, scores, max_output_size, iou_threshold, score_threshold):
    max_output_size = positive_int("max_output_size", max_output_size)
    iou_threshold = _number("iou_threshold", iou_threshold, low=0.0, high=1.0)
    if (isinstance(score_threshold, bool) or not isinstance(score_threshold, numbers.Real)
            or math.isnan(score_threshold)):
        raise ValueError(f"score_threshold: expected a number (or -inf), got {score_threshold!r}")
    b = check_boxes(boxes, "boxes", rank=2)
    values = concrete_values(scores)
    s = _float(scores, "scores", b.dtype)
    if static_shape(s) != static_shape(b)[:1]:
        raise ValueError(f"scores: expected shape ({static_shape(b)[0]},) (one score per box), got {static_shape(s)}")
    if values is not None:
        _check_finite(np.asarray(values, np.float64), "scores", "score(s)", 0)
    return b, s, max_output_size, iou_threshold, float(score_threshold)


def non_max_suppression(boxes, scores, max_output_size, iou_threshold=0.5, score_threshold=-math.inf):
    """Greedy, class-agnostic non-maximum suppression with a fixed-size output.

    Boxes are visited by decreasing score (lower index first on ties); a box
    is kept unless a kept box before it overlaps it with ``IoU > iou_threshold``;
    only boxes with ``score > score_threshold`` take part. The same result as
    ``tf.image.non_max_suppression`` and ``torchvision.ops.nms`` (truncated to
    ``max_output_size``), computed from the ``N x N`` IoU matrix with a
    ``keras.ops.while_loop``, so it compiles (``jax.jit``, ``tf.function``).
    Memory grows as ``N^2``: keep the top few thousand boxes by score first
    (torchvision's RPN: ``pre_nms_top_n`` = 2000 / 1000 per level).

    Args:
        boxes: ``(N, 4)`` boxes ``(x1, y1, x2, y2)`` in pixels, ``N`` static.
        scores: ``(N,)`` scores (any scale: logits or probabilities).
        max_output_size: the most boxes returned (static).
        iou_threshold: suppress overlaps with IoU strictly above it, in ``[0, 1]``.
        score_threshold: drop boxes with ``score <= score_threshold``.

    Returns:
        ``(indices, num_valid)``: int32 ``(max_output_size,)`` indices into
        ``boxes`` by decreasing score, padded with ``-1`` after the first
        ``num_valid`` (an int32 scalar).

    Example:
        >>> idx, n = non_max_suppression([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]],
        ...                              [0.9, 0.8, 0.7], max_output_size=3, iou_threshold=0.5)
        >>> # idx = [0, 2, -1], n = 2
    """
    b, s, k, thr, sthr = _nms_inputs(boxes, scores, max_output_size, iou_threshold, score_threshold)
    return _nms(b, s, k, thr, sthr)


def batched_non_max_suppression(boxes, scores, group_ids, max_output_size, iou_threshold=0.5,
                                score_threshold=-math.inf):
    """:func:`non_max_suppression` within groups: a box only suppresses boxes of its own group.

    The group is a class (per-class NMS of the RoI head) or an FPN level (the
    RPN's per-level NMS), as ``torchvision.ops.batched_nms``; exact (the IoU
    matrix is masked by group, no coordinate-offset trick). The output is one
    list over all groups by decreasing score.

    Args:
        boxes: ``(N, 4)`` boxes ``(x1, y1, x2, y2)`` in pixels.
        scores: ``(N,)`` scores.
        group_ids: int ``(N,)`` group of each box.
        max_output_size, iou_threshold, score_threshold: as :func:`non_max_suppression`.

    Returns:
        ``(indices, num_valid)`` as :func:`non_max_suppression`.
    """
    b, s, k, thr, sthr = _nms_inputs(boxes, scores, max_output_size, iou_threshold, score_threshold)
    g = ops.convert_to_tensor(group_ids)
    if static_shape(g) != static_shape(b)[:1]:
        raise ValueError(f"group_ids: expected shape ({static_shape(b)[0]},) (one group per box), got {static_shape(g)}")
    return _nms(b, s, k, thr, sthr, groups=g)
