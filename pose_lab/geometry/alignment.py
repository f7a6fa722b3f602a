"""Alignment of poses (NumPy): root centring and Procrustes (Umeyama) alignment."""

from __future__ import annotations

import numpy as np

from ._checks import _as_points, _check_finite, _shape


# --------------------------------------------------------------------------
# alignment
# --------------------------------------------------------------------------
def root_center(points, root: int = 0) -> np.ndarray:
    """Subtract joint ``root`` from every joint: ``points - points[..., root:root+1, :]``.

    ``points`` has shape ``(..., J, D)`` with ``D`` in {2, 3}; returns the same shape.
    """
    arr = np.asarray(points)
    if arr.ndim < 2 or arr.shape[-1] not in (2, 3):
        raise ValueError(f"points must have shape (..., J, 3) or (..., J, 2), got {_shape(arr)}")
    J = arr.shape[-2]
    if not -J <= root < J:
        raise ValueError(f"root index {root} out of range for J={J} joints (shape (..., J, D))")
    root = root % J
    return arr - arr[..., root : root + 1, :]


def procrustes_align(pred, target, scale: bool = True, return_transform: bool = False):
    """Align ``pred`` onto ``target`` with the best similarity transform (Umeyama 1991).

    Finds ``s, R, t`` minimising ``sum_j || s * R @ pred_j + t - target_j ||^2`` with ``R``
    a *proper* rotation (``det R = +1``: a reflection is never used, so a mirrored
    prediction is not "fixed"), ``s > 0`` (``s = 1`` when ``scale=False``).

    Args:
        pred, target: arrays of shape ``(..., J, 3)`` with identical shapes; leading
            dimensions are batch dimensions, each aligned independently.
        scale: estimate the scale (similarity) or not (rigid).
        return_transform: also return ``(s, R, t)`` with shapes ``(...,)``, ``(..., 3, 3)``,
            ``(..., 3)`` such that ``aligned = s * pred @ R^T + t``.

    Returns:
        The aligned prediction, shape ``(..., J, 3)`` (float64), and optionally the transform.

    Raises:
        ValueError: shapes are not ``(..., J, 3)`` or differ, or values are not finite.
    """
    p = _as_points(pred, "pred")
    q = _as_points(target, "target")
    if p.shape != q.shape:
        raise ValueError(
            f"pred and target must have the same shape (..., J, 3); got {p.shape} and {q.shape}"
        )
    _check_finite(p, "pred")
    _check_finite(q, "target")
    mu_p = p.mean(axis=-2, keepdims=True)
    mu_q = q.mean(axis=-2, keepdims=True)
    p0 = p - mu_p
    q0 = q - mu_q
    # Cross-covariance H = sum_j q0_j p0_j^T (target x pred), shape (..., 3, 3).
    H = np.swapaxes(q0, -1, -2) @ p0
    U, S, Vt = np.linalg.svd(H)
    # Reflection fix: flip the smallest singular direction when det(U V^T) < 0.
    d = np.sign(np.linalg.det(U @ Vt))
    d = np.where(d == 0, 1.0, d)
    D = np.ones(S.shape)
    D[..., -1] = d
    R = (U * D[..., None, :]) @ Vt  # U diag(D) V^T
    if scale:
        var_p = np.sum(p0**2, axis=(-2, -1))
        trace = np.sum(S * D, axis=-1)
        s = np.where(var_p > 0, trace / np.where(var_p > 0, var_p, 1.0), 1.0)
    else:
        s = np.ones(p.shape[:-2])
    t = mu_q[..., 0, :] - s[..., None] * np.einsum("...ij,...j->...i", R, mu_p[..., 0, :])
    aligned = s[..., None, None] * (p @ np.swapaxes(R, -1, -2)) + t[..., None, :]
    if return_transform:
        return aligned, (s, R, t)
    return aligned
