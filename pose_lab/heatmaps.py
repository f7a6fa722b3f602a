"""Gaussian heatmap targets and their decoding (Xiao et al., SimpleBaseline).

Coordinate convention (used by the whole kit: renderer, crops, heatmaps)
-----------------------------------------------------------------------
2D positions are continuous pixel coordinates ``(x, y)`` whose **integer values
are pixel centres**: pixel ``image[r, c]`` is centred on ``(x=c, y=r)`` and
covers ``[c - 0.5, c + 0.5) x [r - 0.5, r + 0.5)``.

A heatmap of stride ``s`` *samples* the input at every ``s``-th pixel centre:
heatmap cell ``[v, u]`` corresponds to the input position ``(u * s, v * s)``.
So a keypoint at input position ``p`` sits at heatmap position ``p / s`` and a
decoded heatmap position ``q`` maps back to ``q * s``. This is the convention of
SimpleBaseline's reference code (``mu = joint / feat_stride``); encoding and
decoding use the same mapping, so the round trip is exact up to the decoder's
quantisation (at most a quarter heatmap pixel per axis, see
:func:`decode_heatmaps`).

Targets are *unnormalised* Gaussians (peak 1.0 at the keypoint, sub-pixel
centred, not rounded to the grid)::

    H[v, u, j] = exp(-((u - x_j / s)^2 + (v - y_j / s)^2) / (2 sigma^2))

with ``sigma`` in heatmap pixels (2.0 for 64x48 heatmaps as in the paper).

Target weights (``(..., J)``, float32) are 1 for labelled joints (visibility
``v > 0``, COCO flags 1 and 2) whose position lies on the input crop's pixel
centres, ``0 <= x <= w * s - 1`` and ``0 <= y <= h * s - 1`` (input pixels),
else 0; heatmaps of joints with weight 0 are all zero. Visibility may be
``None`` (all labelled). The rule is the one of the coordinate targets
(:func:`pose_lab.data.pipelines.person_crop_dataset`) and is mirror-symmetric: a
keypoint at ``x`` and its horizontal flip at ``w * s - 1 - x`` get the same
weight.

Functions
---------
* :func:`encode_heatmaps` (NumPy) and :func:`encode_heatmaps_tf` (TensorFlow,
  for ``tf.data``; TensorFlow is imported inside the function).
* :func:`decode_heatmaps` (NumPy): argmax with the quarter-pixel shift toward
  the higher neighbour (SimpleBaseline), or DARK's Taylor refinement
  (``method="dark"``); :func:`decode_heatmaps_ops` (``keras.ops``): the
  quarter-pixel decoder inside a graph.
* :func:`soft_argmax` (``keras.ops``): differentiable spatial soft-argmax.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DECODE_METHODS",
    "encode_heatmaps",
    "encode_heatmaps_tf",
    "decode_heatmaps",
    "decode_heatmaps_ops",
    "soft_argmax",
]


def _check_size(size, name="heatmap_size"):
    """``(height, width)`` as positive ints, else ValueError naming ``name``."""
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be positive (height, width), got {size!r}")
    return h, w


def encode_heatmaps(keypoints_xy, visibility=None, heatmap_size=(64, 48), sigma=2.0, stride=4):
    """Gaussian heatmap targets for keypoints given in input-image pixels.

    Args:
        keypoints_xy: ``(..., J, 2)`` ``(x, y)`` in input pixels (pixel centres
            at integers). A trailing size of 3 (COCO ``x, y, v``) is accepted:
            the third column is then used as visibility unless ``visibility``
            is given.
        visibility: ``(..., J)`` flags; ``v > 0`` means labelled. ``None``: all.
        heatmap_size: ``(height, width)`` of the heatmaps.
        sigma: Gaussian standard deviation in heatmap pixels.
        stride: input pixels per heatmap pixel.

    Returns:
        ``(heatmaps, target_weights)``: float32 arrays of shape
        ``(..., h, w, J)`` and ``(..., J)``.

    Example:
        >>> hm, w = encode_heatmaps([[8.0, 20.0]], [2], heatmap_size=(16, 16), stride=4)
        >>> hm.shape, float(hm[5, 2, 0]), float(w[0])
        ((16, 16, 1), 1.0, 1.0)
    """
    kp = np.asarray(keypoints_xy, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-1] not in (2, 3):
        raise ValueError(
            f"keypoints_xy must have shape (..., J, 2) (or (..., J, 3) with visibility), got {kp.shape}"
        )
    if visibility is None and kp.shape[-1] == 3:
        visibility = kp[..., 2]
    kp = kp[..., :2]
    h, w = _check_size(heatmap_size)
    if not (sigma > 0):
        raise ValueError(f"sigma must be > 0 (heatmap pixels), got {sigma!r}")
    if not (stride > 0):
        raise ValueError(f"stride must be > 0 (input pixels per heatmap pixel), got {stride!r}")
    if visibility is None:
        vis = np.ones(kp.shape[:-1], dtype=bool)
    else:
        v = np.asarray(visibility, dtype=np.float64)
        if v.shape != kp.shape[:-1]:
            raise ValueError(
                f"visibility must have shape {kp.shape[:-1]} (one flag per keypoint), got {v.shape}"
            )
        vis = v > 0
    mu = kp / float(stride)
    finite = np.all(np.isfinite(mu), axis=-1)
    mu = np.where(finite[..., None], mu, 0.0)
    xy = np.where(finite[..., None], kp, 0.0)  # input pixels; the same window as the coordinate targets
    inside = (
        (xy[..., 0] >= 0) & (xy[..., 0] <= w * stride - 1) & (xy[..., 1] >= 0) & (xy[..., 1] <= h * stride - 1)
    )
    weight = (vis & finite & inside).astype(np.float32)
    # Separable Gaussian: gx (..., J, w), gy (..., J, h).
    inv = 1.0 / (2.0 * float(sigma) ** 2)
    gx = np.exp(-((np.arange(w) - mu[..., 0:1]) ** 2) * inv)
    gy = np.exp(-((np.arange(h) - mu[..., 1:2]) ** 2) * inv)
    gx = gx * weight[..., None]
    # (..., J, h, w) -> (..., h, w, J)
    hm = gy[..., :, None] * gx[..., None, :]
    hm = np.moveaxis(hm, -3, -1).astype(np.float32)
    return hm, weight


def encode_heatmaps_tf(keypoints_xy, visibility=None, heatmap_size=(64, 48), sigma=2.0, stride=4):
    """TensorFlow version of :func:`encode_heatmaps`, usable inside ``tf.data``.

    Same arguments, conventions and outputs (float32 tensors ``(..., h, w, J)``
    and ``(..., J)``). Works in graph mode; leading batch dimensions allowed.
    """
    import tensorflow as tf

    h, w = _check_size(heatmap_size)
    kp = tf.convert_to_tensor(keypoints_xy, dtype=tf.float32)
    if kp.shape.rank is not None and (kp.shape.rank < 2 or kp.shape[-1] not in (2, 3)):
        raise ValueError(
            f"keypoints_xy must have shape (..., J, 2) (or (..., J, 3)), got {kp.shape}"
        )
    if visibility is None and kp.shape[-1] == 3:
        visibility = kp[..., 2]
    kp = kp[..., :2]
    if visibility is None:
        vis = tf.ones(tf.shape(kp)[:-1], dtype=tf.bool)
    else:
        vis = tf.cast(tf.convert_to_tensor(visibility), tf.float32) > 0
    mu = kp / float(stride)
    finite = tf.reduce_all(tf.math.is_finite(mu), axis=-1)
    mu = tf.where(finite[..., None], mu, tf.zeros_like(mu))
    mx, my = mu[..., 0], mu[..., 1]
    kx, ky = mx * float(stride), my * float(stride)  # input pixels, as in encode_heatmaps
    inside = (kx >= 0) & (kx <= w * stride - 1) & (ky >= 0) & (ky <= h * stride - 1)
    weight = tf.cast(vis & finite & inside, tf.float32)
    inv = 1.0 / (2.0 * float(sigma) ** 2)
    xs = tf.range(w, dtype=tf.float32)
    ys = tf.range(h, dtype=tf.float32)
    gx = tf.exp(-tf.square(xs - mx[..., None]) * inv) * weight[..., None]  # (..., J, w)
    gy = tf.exp(-tf.square(ys - my[..., None]) * inv)  # (..., J, h)
    hm = gy[..., :, None] * gx[..., None, :]  # (..., J, h, w)
    rank = len(hm.shape)
    perm = list(range(rank - 3)) + [rank - 2, rank - 1, rank - 3]
    return tf.transpose(hm, perm), weight


DECODE_METHODS = ("quarter", "dark")


def decode_heatmaps(heatmaps, method="quarter", blur=1.0):
    """Argmax decoding with sub-pixel refinement.

    For each joint the maximum cell ``(u, v)`` is found, then refined:

    * ``method="quarter"`` (default, SimpleBaseline's ``get_final_preds``): ``u``
      moves by ``+0.25`` (``-0.25``) when the right (left) neighbour is higher,
      and ``v`` likewise. For a sub-pixel Gaussian this recovers the centre
      within 0.25 heatmap pixel per axis.
    * ``method="dark"`` (Zhang et al., "Distribution-Aware Coordinate
      Representation for Human Pose Estimation", CVPR 2020): the heatmap is
      smoothed with a Gaussian of ``blur`` (zero padding, rescaled to keep
      its peak; this tames the noise of network outputs), its
      logarithm is expanded to second order at the maximum and the offset
      ``-H^-1 g`` (Newton step to the mode) is added. For an ideal Gaussian
      target the log is an exact quadratic, so the centre is recovered up to
      float error; where the Hessian is not negative definite, the step is
      longer than one cell or the maximum is on the border, the quarter-pixel
      shift is used instead.

    Args:
        heatmaps: ``(..., h, w, J)``.
        method: ``"quarter"`` or ``"dark"``.
        blur: smoothing of ``"dark"`` in heatmap pixels (0 disables it and makes
            the decoding exact for ideal Gaussians; the smoothing biases peaks
            within ~2 blur of the border slightly).

    Returns:
        ``(coords, maxvals)``: ``(..., J, 2)`` float32 ``(x, y)`` in heatmap
        pixels (multiply by the stride for input pixels) and ``(..., J)``
        float32 peak values (of the unsmoothed heatmaps). NaN cells rank
        below every number (``np.argmax`` would pick the first NaN); a map
        that is NaN everywhere gives a NaN peak value.
    """
    if method not in DECODE_METHODS:
        raise ValueError(f"decode_heatmaps: method must be one of {DECODE_METHODS}, got {method!r}")
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim < 3:
        raise ValueError(f"heatmaps must have shape (..., h, w, J), got {hm.shape}")
    h, w, J = hm.shape[-3:]
    lead = hm.shape[:-3]
    raw = np.moveaxis(hm, -1, -3).reshape(-1, h * w)  # (N*J, h*w)
    # NaN cells (a diverged network) must not win the argmax, as np.argmax lets them:
    # they rank below every number; a map that is all NaN reports a NaN peak value.
    flat = _nan_to_lowest(raw)
    idx = np.argmax(flat, axis=1)
    maxvals = raw[np.arange(raw.shape[0]), idx]
    ys, xs = np.divmod(idx, w)
    rows = np.arange(flat.shape[0])
    fx = xs.astype(np.float32)
    fy = ys.astype(np.float32)

    def _val(yy, xx):
        return flat[rows, yy * w + xx]

    ok_x = (xs > 0) & (xs < w - 1)
    xl, xr = np.clip(xs - 1, 0, w - 1), np.clip(xs + 1, 0, w - 1)
    dx = np.sign(_val(ys, xr) - _val(ys, xl))
    fx = fx + np.where(ok_x, 0.25 * dx, 0.0)
    ok_y = (ys > 0) & (ys < h - 1)
    yu, yd = np.clip(ys - 1, 0, h - 1), np.clip(ys + 1, 0, h - 1)
    dy = np.sign(_val(yd, xs) - _val(yu, xs))
    fy = fy + np.where(ok_y, 0.25 * dy, 0.0)
    if method == "dark":
        fx, fy = _dark_refine(np.nan_to_num(raw, nan=0.0, neginf=0.0, posinf=0.0).reshape(-1, h, w),
                              xs, ys, fx, fy, blur)
    coords = np.stack([fx, fy], axis=-1).astype(np.float32).reshape(lead + (J, 2))
    return coords, maxvals.astype(np.float32).reshape(lead + (J,))


def _nan_to_lowest(x: np.ndarray) -> np.ndarray:
    """NaN and -inf -> the lowest float32, +inf -> the highest: ordered, and differences stay finite."""
    lo, hi = np.finfo(np.float32).min, np.finfo(np.float32).max
    return np.nan_to_num(x, nan=lo, neginf=lo, posinf=hi)


def _dark_refine(maps, xs, ys, fx, fy, blur):
    """DARK's Taylor refinement of the argmax ``(xs, ys)`` of ``maps`` (M, h, w).

    Falls back to the given ``(fx, fy)`` (quarter-pixel) where the expansion is
    not usable. Returns refined ``(fx, fy)``.
    """
    M, h, w = maps.shape
    m = maps.astype(np.float64)
    if blur and blur > 0:
        from scipy.ndimage import gaussian_filter

        peak = m.reshape(M, -1).max(axis=1)
        m = gaussian_filter(m, sigma=(0, float(blur), float(blur)), mode="constant", truncate=3.0)
        blurred_peak = m.reshape(M, -1).max(axis=1)
        m *= np.where(blurred_peak > 0, peak / np.maximum(blurred_peak, 1e-30), 1.0)[:, None, None]
    logm = np.log(np.maximum(m, 1e-10))
    inner = (xs > 0) & (xs < w - 1) & (ys > 0) & (ys < h - 1)
    r = np.arange(M)
    x = np.clip(xs, 1, w - 2)
    y = np.clip(ys, 1, h - 2)

    def L(dy_, dx_):
        return logm[r, y + dy_, x + dx_]

    c = L(0, 0)
    gx = 0.5 * (L(0, 1) - L(0, -1))
    gy = 0.5 * (L(1, 0) - L(-1, 0))
    hxx = L(0, 1) - 2 * c + L(0, -1)
    hyy = L(1, 0) - 2 * c + L(-1, 0)
    hxy = 0.25 * (L(1, 1) - L(1, -1) - L(-1, 1) + L(-1, -1))
    det = hxx * hyy - hxy * hxy
    ok = inner & (hxx < 0) & (det > 1e-12)
    safe = np.where(ok, det, 1.0)
    ox = -(hyy * gx - hxy * gy) / safe
    oy = -(-hxy * gx + hxx * gy) / safe
    ok &= (np.abs(ox) <= 1.0) & (np.abs(oy) <= 1.0) & np.isfinite(ox) & np.isfinite(oy)
    fx = np.where(ok, xs + ox, fx)
    fy = np.where(ok, ys + oy, fy)
    return fx.astype(np.float32), fy.astype(np.float32)


def decode_heatmaps_ops(heatmaps):
    """``keras.ops`` version of :func:`decode_heatmaps` (any backend, batched).

    Args:
        heatmaps: tensor ``(B, h, w, J)``.

    Returns:
        ``(coords, maxvals)``: ``(B, J, 2)`` and ``(B, J)`` tensors (float32).
    """
    from keras import ops

    hm = ops.convert_to_tensor(heatmaps, dtype="float32")
    shape = ops.shape(hm)
    h, w, J = shape[1], shape[2], shape[3]
    if h is None or w is None or J is None:
        raise ValueError(f"decode_heatmaps_ops needs static (h, w, J), got {shape}")
    raw = ops.reshape(ops.transpose(hm, (0, 3, 1, 2)), (-1, J, h * w))  # (B, J, hw)
    lowest = float(np.finfo(np.float32).min)
    flat = ops.where(ops.isnan(raw), lowest, ops.clip(raw, lowest, -lowest))  # NaN never wins the argmax
    idx = ops.argmax(flat, axis=-1)  # (B, J)
    maxvals = ops.squeeze(ops.take_along_axis(raw, ops.cast(idx, "int32")[..., None], axis=-1), -1)
    ys = idx // w
    xs = idx - ys * w

    def _val(yy, xx):
        lin = ops.cast(yy * w + xx, "int32")
        return ops.squeeze(ops.take_along_axis(flat, lin[..., None], axis=-1), -1)

    xl = ops.clip(xs - 1, 0, w - 1)
    xr = ops.clip(xs + 1, 0, w - 1)
    yu = ops.clip(ys - 1, 0, h - 1)
    yd = ops.clip(ys + 1, 0, h - 1)
    dx = ops.sign(_val(ys, xr) - _val(ys, xl))
    dy = ops.sign(_val(yd, xs) - _val(yu, xs))
    ok_x = ops.cast(ops.logical_and(xs > 0, xs < w - 1), "float32")
    ok_y = ops.cast(ops.logical_and(ys > 0, ys < h - 1), "float32")
    fx = ops.cast(xs, "float32") + 0.25 * dx * ok_x
    fy = ops.cast(ys, "float32") + 0.25 * dy * ok_y
    return ops.stack([fx, fy], axis=-1), maxvals


def soft_argmax(heatmaps, beta=1.0):
    """Spatial soft-argmax: expected ``(x, y)`` under ``softmax(beta * heatmap)``.

    Differentiable, for integral/regression heads. ``beta`` sharpens the
    distribution (use large values, e.g. 50-100, on Gaussian-target heatmaps
    whose values lie in [0, 1]; a trained soft-argmax head learns its own scale).

    Args:
        heatmaps: ``(B, h, w, J)`` logits.
        beta: inverse temperature.

    Returns:
        ``(B, J, 2)`` ``(x, y)`` in heatmap pixels (same convention as
        :func:`decode_heatmaps`).
    """
    from keras import ops

    hm = ops.convert_to_tensor(heatmaps, dtype="float32")
    shape = ops.shape(hm)
    h, w, J = shape[1], shape[2], shape[3]
    flat = ops.reshape(ops.transpose(hm, (0, 3, 1, 2)), (-1, J, h * w))
    p = ops.softmax(flat * beta, axis=-1)
    grid_x = ops.tile(ops.arange(w, dtype="float32"), (h,))
    grid_y = ops.repeat(ops.arange(h, dtype="float32"), w)
    x = ops.sum(p * grid_x, axis=-1)
    y = ops.sum(p * grid_y, axis=-1)
    return ops.stack([x, y], axis=-1)
