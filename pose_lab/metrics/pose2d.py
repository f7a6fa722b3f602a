"""2D keypoint metrics: pixel error, PCK, OKS and box sizes.

See :mod:`pose_lab.metrics` for the definitions.
"""

from __future__ import annotations

import numpy as np

from pose_lab.metrics._common import _check_reduction, _nan_reduce, _num_joints, _require_poses
from pose_lab.skeletons import COCO17, COCO_OKS_SIGMAS
from pose_lab.validation import check_poses

__all__ = ["keypoint_error_2d", "box_size", "pck_2d", "oks", "left_right_swaps", "assign_sides_from_truth"]


def _visibility_mask(visibility, shape, name="visibility") -> np.ndarray:
    """Boolean ``(..., J)`` mask (v > 0) for keypoints of shape ``(..., J, 2)``."""
    if visibility is None:
        return np.ones(shape[:-1], dtype=bool)
    v = np.asarray(visibility)
    if v.shape != shape[:-1]:
        raise ValueError(f"{name}: expected shape {shape[:-1]} (..., J) to match the keypoints, got {v.shape}")
    v = v.astype(np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: contains NaN/inf")
    return v > 0


def _split_xyv(x, name, skeleton=None):
    """Accept ``(..., J, 2)`` or ``(..., J, 3)`` (x, y, v); return xy and v (or None)."""
    arr = np.asarray(x)  # check_poses names the argument if it is not numeric
    nj = _num_joints(skeleton)
    if arr.ndim >= 2 and arr.shape[-1] == 3:
        return check_poses(arr[..., :2], name, dims=2, num_joints=nj, dtype=np.float64), arr[..., 2]
    return check_poses(arr, name, dims=2, num_joints=nj, dtype=np.float64), None


def keypoint_error_2d(pred, target, visibility=None, reduction: str = "mean", skeleton=None):
    """Pixel distance between 2D keypoints, ignoring unlabelled ones.

    Args:
        pred, target: ``(..., J, 2)`` pixels (a third column in ``target`` is
            read as the COCO visibility flag ``v`` unless ``visibility`` is given).
        visibility: ``(..., J)``; keypoints with ``v <= 0`` are excluded.
        reduction: as :func:`mpjpe`; excluded keypoints are NaN in ``"none"`` and
            left out of the averages (a joint never labelled averages to NaN).
    """
    _check_reduction(reduction)
    p, _ = _split_xyv(pred, "pred", skeleton)
    t, v_t = _split_xyv(target, "target", skeleton)
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape (..., J, 2); got {p.shape} and {t.shape}")
    _require_poses(p, "pred")
    mask = _visibility_mask(v_t if visibility is None else visibility, t.shape)
    err = np.where(mask, np.linalg.norm(p - t, axis=-1), np.nan)
    return _nan_reduce(err, reduction)


def box_size(boxes, mode: str = "max") -> np.ndarray:
    """Reference size of COCO boxes ``[x, y, w, h]`` (shape ``(..., 4)``) for PCK.

    Args:
        mode: ``"max"`` (``max(w, h)``, the default for PCK@0.05 of the box),
            ``"diag"`` (``sqrt(w^2 + h^2)``) or ``"sqrt_area"`` (``sqrt(w h)``).
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim < 1 or b.shape[-1] != 4:
        raise ValueError(f"boxes: expected shape (..., 4) = [x, y, w, h], got {b.shape}")
    w, h = b[..., 2], b[..., 3]
    if mode == "max":
        return np.maximum(w, h)
    if mode == "diag":
        return np.hypot(w, h)
    if mode == "sqrt_area":
        return np.sqrt(np.abs(w * h))
    raise ValueError(f"mode must be 'max', 'diag' or 'sqrt_area', got {mode!r}")


def pck_2d(pred, target, ref_size, threshold: float = 0.05, visibility=None, reduction: str = "mean",
           skeleton=None):
    """2D PCK: a keypoint is correct when ``||pred - target|| <= threshold * ref_size``.

    Args:
        pred, target: ``(..., J, 2)`` pixels (``target`` may carry ``v`` as a third column).
        ref_size: reference length in pixels per sample, scalar or shape ``(...)``:
            the box size (:func:`box_size`, PCK@0.05 of the box), the head
            segment (PCKh@0.5 with ``threshold=0.5``), the torso size, ...
        threshold: fraction of ``ref_size``.
        visibility: ``(..., J)``; keypoints with ``v <= 0`` are not scored.
        reduction: as :func:`mpjpe` (unscored keypoints are left out; NaN where
            nothing was scored).

    Returns:
        Fraction(s) in ``[0, 1]``.
    """
    _check_reduction(reduction)
    p, _ = _split_xyv(pred, "pred", skeleton)
    t, v_t = _split_xyv(target, "target", skeleton)
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape (..., J, 2); got {p.shape} and {t.shape}")
    _require_poses(p, "pred")
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite value >= 0, got {threshold!r}")
    ref = np.asarray(ref_size, dtype=np.float64)
    if ref.shape not in ((), t.shape[:-2]):
        raise ValueError(f"ref_size: expected a scalar or shape {t.shape[:-2]} (one per sample), got {ref.shape}")
    if not np.all(np.isfinite(ref)) or np.any(ref <= 0):
        raise ValueError("ref_size must be finite and > 0")
    mask = _visibility_mask(v_t if visibility is None else visibility, t.shape)
    dist = np.linalg.norm(p - t, axis=-1)
    correct = (dist <= threshold * ref[..., None]).astype(np.float64)
    return _nan_reduce(np.where(mask, correct, np.nan), reduction)


def oks(pred, target, area, visibility=None, sigmas=None):
    """COCO object keypoint similarity between predicted and ground-truth keypoints.

    The formula of ``pycocotools`` ``COCOeval.computeOks``: with
    ``var_i = (2 sigma_i)^2`` and squared distances ``d_i^2``,
    ``OKS = mean_{i: v_i > 0} exp(-d_i^2 / var_i / (area + eps) / 2)``.

    Args:
        pred: ``(..., K, 2)`` or ``(..., K, 3)`` predicted keypoints in pixels (a
            third column, e.g. a score, is ignored).
        target: ``(..., K, 2)`` or ``(..., K, 3)`` ground truth; a third column is
            the visibility flag ``v`` unless ``visibility`` is given.
        area: ground-truth object area in pixels^2 (COCO ``area``), scalar or ``(...)``.
        visibility: ``(..., K)``; only keypoints with ``v > 0`` count. Default:
            the third column of ``target``, else all keypoints.
        sigmas: per-keypoint constants, shape ``(K,)``; default
            :data:`~pose_lab.skeletons.COCO_OKS_SIGMAS` (then ``K`` must be 17).

    Returns:
        OKS in ``[0, 1]`` with shape ``(...)`` (a float for a single pose); NaN for
        a ground truth without labelled keypoints (COCO ignores those).
    """
    p, _ = _split_xyv(pred, "pred")
    t, v_t = _split_xyv(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape (..., K, 2); got {p.shape} and {t.shape}")
    sig = COCO_OKS_SIGMAS if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    if sig.shape != (t.shape[-2],):
        raise ValueError(
            f"sigmas: expected shape ({t.shape[-2]},) (one per keypoint of the (..., K, 2) inputs), got "
            f"{sig.shape}" + ("; the default COCO sigmas need K = 17" if sigmas is None else "")
        )
    a = np.asarray(area, dtype=np.float64)
    if a.shape not in ((), t.shape[:-2]):
        raise ValueError(f"area: expected a scalar or shape {t.shape[:-2]} (one per object), got {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("area must be finite and >= 0")
    mask = _visibility_mask(v_t if visibility is None else visibility, t.shape)
    var = (2.0 * sig) ** 2
    d2 = np.sum((p - t) ** 2, axis=-1)
    e = d2 / var / (a[..., None] + np.spacing(1)) / 2.0
    n = mask.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, np.sum(np.where(mask, np.exp(-e), 0.0), axis=-1) / n, np.nan)
    return float(out) if out.ndim == 0 else out



def _paired_poses(pred, target, skeleton):
    """``(pred xy, target xy, target v)`` of two ``(N, J, 2|3)`` pose arrays of the same shape (checked)."""
    p, _ = _split_xyv(pred, "pred", skeleton)
    t, v_t = _split_xyv(target, "target", skeleton)
    if p.shape != t.shape or p.ndim != 3:
        raise ValueError(f"pred and target must have the same shape (N, J, 2); got {p.shape} and {t.shape}")
    _require_poses(p, "pred")
    return p, t, v_t


#: COCO-17 limb keypoints: shoulders, elbows, wrists, hips, knees, ankles.
COCO_LIMB_KEYPOINTS = tuple(range(5, 17))


def left_right_swaps(pred, target, ref_size, threshold: float = 0.05, keypoints=COCO_LIMB_KEYPOINTS,
                     skeleton=COCO17):
    """How often a prediction lands on the mirror joint (left wrist on the right wrist...).

    A labelled keypoint ``j`` whose mirror ``m(j)`` is labelled too is a
    *swap* when its prediction is nearer to the mirror's ground truth than to
    its own and more than ``threshold * ref_size`` from its own (a correct
    keypoint is never a swap, even where the two sides nearly touch).

    A swap is one of two kinds, told by where the mirror joint's own
    prediction is: an *exchange* when that prediction is nearer to ``j``'s
    ground truth than to its own (the two sides' labels are swapped: the
    network found both limbs but named them wrongly), a *double* when it is
    correct (both predictions sit on the mirror limb: one limb found twice,
    the other lost). Swaps of neither kind (the mirror's
    prediction is off elsewhere) are the rest of ``swap_rate``.

    Args:
        pred, target: ``(N, J, 2)`` pixels (``target`` may carry ``v`` as a third column).
        ref_size: ``(N,)`` or scalar reference length (the box size, :func:`box_size`).
        threshold: the PCK threshold that defines an error.
        keypoints: indices scored (default the twelve COCO limb keypoints).
        skeleton: gives the mirror of each joint (``flip_permutation``).

    Returns:
        dict: ``swap_rate`` (swaps / scored keypoints), ``exchange_rate`` and
        ``double_rate`` (the two kinds of swap / scored keypoints),
        ``error_rate`` (PCK misses / scored keypoints), ``swap_share`` (swaps
        / misses: the share of limb errors that are swaps) and ``scored`` (count).
    """
    p, t, v_t = _paired_poses(pred, target, skeleton)
    ref = np.broadcast_to(np.asarray(ref_size, dtype=np.float64), t.shape[:1])
    if not np.all(np.isfinite(ref)) or np.any(ref <= 0):
        raise ValueError("ref_size must be finite and > 0")
    perm = np.asarray(skeleton.flip_permutation)
    vis = _visibility_mask(v_t, t.shape)
    ks = np.asarray(keypoints)
    scored = vis[:, ks] & vis[:, perm[ks]] & (perm[ks] != ks)[None]
    own = np.linalg.norm(p[:, ks] - t[:, ks], axis=-1)
    mirror = np.linalg.norm(p[:, ks] - t[:, perm[ks]], axis=-1)
    miss = own > threshold * ref[:, None]
    swap = miss & (mirror < own) & scored
    # where the mirror joint's own prediction is: on this joint's truth (exchange) or on its own (double)
    m_own = np.linalg.norm(p[:, perm[ks]] - t[:, perm[ks]], axis=-1)
    m_cross = np.linalg.norm(p[:, perm[ks]] - t[:, ks], axis=-1)
    exchange = swap & (m_cross < m_own)
    double = swap & ~exchange & (m_own <= threshold * ref[:, None])
    n = int(scored.sum())
    n_miss = int((miss & scored).sum())
    n_swap = int(swap.sum())
    return {
        "swap_rate": n_swap / n if n else float("nan"),
        "exchange_rate": int(exchange.sum()) / n if n else float("nan"),
        "double_rate": int(double.sum()) / n if n else float("nan"),
        "error_rate": n_miss / n if n else float("nan"),
        "swap_share": n_swap / n_miss if n_miss else float("nan"),
        "scored": n,
    }


def assign_sides_from_truth(pred, target, skeleton=COCO17):
    """Each left/right pair's two predictions, given to the sides that fit the ground truth best.

    An oracle that knows which side is which: for every pair ``(j, m(j))``
    labelled on both sides, the two predicted points are exchanged when
    ``|p_j - t_m| + |p_m - t_j| < |p_j - t_j| + |p_m - t_m|``. The points
    themselves do not move, so scoring the result says how much of a model's
    error is naming the sides (exchanges) and how much is finding the limbs.

    Args:
        pred, target: ``(N, J, 2)`` pixels (``target`` may carry ``v`` as a third column).
        skeleton: gives the mirror of each joint (``flip_permutation``).

    Returns:
        ``(N, J, 2)`` float64 predictions with sides assigned.
    """
    p, t, v_t = _paired_poses(pred, target, skeleton)
    perm = np.asarray(skeleton.flip_permutation)
    vis = _visibility_mask(v_t, t.shape)
    out = np.array(p, dtype=np.float64)
    for j in range(p.shape[1]):
        m = int(perm[j])
        if m <= j:
            continue  # each pair once; centre joints are their own mirror
        keep = np.linalg.norm(p[:, j] - t[:, j], axis=-1) + np.linalg.norm(p[:, m] - t[:, m], axis=-1)
        cross = np.linalg.norm(p[:, j] - t[:, m], axis=-1) + np.linalg.norm(p[:, m] - t[:, j], axis=-1)
        flip = (cross < keep) & vis[:, j] & vis[:, m]
        out[flip, j], out[flip, m] = p[flip, m], p[flip, j]
    return out
