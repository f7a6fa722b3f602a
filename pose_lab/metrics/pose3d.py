"""3D joint errors (Human3.6M protocols), 3D PCK / AUC, best-of-k, and the Keras MPJPE metric.

See :mod:`pose_lab.metrics` for the definitions and the ``reduction`` argument.
"""

from __future__ import annotations

import numbers

import keras
import numpy as np
from keras import ops

from pose_lab import geometry
from pose_lab.metrics._common import REDUCTIONS, _check_reduction, _pair, _reduce

__all__ = [
    "REDUCTIONS",
    "PCK3D_THRESHOLD",
    "AUC3D_THRESHOLDS",
    "mpjpe",
    "p_mpjpe",
    "n_mpjpe",
    "per_joint_mpjpe",
    "mean_velocity_error",
    "pck_3d",
    "auc_3d",
    "best_of_k_mpjpe",
    "MPJPE",
]

#: Default 3D PCK threshold (mm) and AUC thresholds (0..150 mm in 5 mm steps).
PCK3D_THRESHOLD = 150.0
AUC3D_THRESHOLDS = np.linspace(0.0, 150.0, 31)

# ---------------------------------------------------------------------------
# 3D joint errors
# ---------------------------------------------------------------------------
def mpjpe(pred, target, reduction: str = "mean", skeleton=None):
    """Mean per-joint position error (Human3.6M protocol 1).

    Args:
        pred, target: arrays of shape ``(..., J, 3)`` (mm), same shape.
        reduction: ``"mean"`` | ``"per_joint"`` | ``"per_sample"`` | ``"none"``
            (see the module docstring).
        skeleton: optional :class:`~pose_lab.skeletons.Skeleton`, its name, or a
            joint count; the inputs must then have that many joints.

    Returns:
        The Euclidean error in input units, reduced as requested.

    Raises:
        ValueError: shapes differ, NaN/inf, or no poses at all (an average
            over zero poses would be NaN; every metric of the family raises).

    Example:
        >>> mpjpe(np.zeros((2, 17, 3)), np.full((2, 17, 3), 10.0))  # doctest: +ELLIPSIS
        17.32...
    """
    _check_reduction(reduction)
    p, t = _pair(pred, target, 3, skeleton)
    return _reduce(np.linalg.norm(p - t, axis=-1), reduction)


def per_joint_mpjpe(pred, target, skeleton=None) -> np.ndarray:
    """MPJPE of each joint averaged over all samples, shape ``(J,)``."""
    return mpjpe(pred, target, reduction="per_joint", skeleton=skeleton)


def p_mpjpe(pred, target, reduction: str = "mean", skeleton=None):
    """Procrustes-aligned MPJPE (Human3.6M protocol 2).

    Each pose of ``pred`` is aligned to the matching pose of ``target`` with the
    similarity transform (scale, proper rotation, translation) that minimises the
    squared error, :func:`pose_lab.geometry.procrustes_align`, then MPJPE is
    taken. Reflections are not allowed, so a mirrored prediction keeps its error.

    The alignment minimises the *squared* error, so the root-mean-square joint
    error after alignment never exceeds the one before. P-MPJPE (a mean of
    Euclidean norms) is below MPJPE for dense errors (noise, global rotation,
    scale), but can exceed it when a few joints carry all the error: a single
    joint off by 200 mm gives MPJPE = 200/17 = 11.8 mm, and the alignment spreads
    that error over all joints (P-MPJPE ~ 25 mm on random poses).

    Args and returns as :func:`mpjpe`.
    """
    _check_reduction(reduction)
    p, t = _pair(pred, target, 3, skeleton)
    aligned = geometry.procrustes_align(p, t, scale=True)
    return _reduce(np.linalg.norm(aligned - t, axis=-1), reduction)


def n_mpjpe(pred, target, reduction: str = "mean", skeleton=None, root: int | None = None):
    """Scale-normalised MPJPE (Rhodin et al. 2018; VideoPose3D ``n_mpjpe``).

    Each predicted pose is multiplied by the least-squares scale
    ``s = sum(pred * target) / sum(pred * pred)`` (sums over its joints and
    coordinates), then MPJPE is taken. Only the scale is corrected: no rotation,
    no translation, so the inputs should be root-centred (pass ``root=0`` to
    centre both on joint 0 here).

    Args:
        pred, target, reduction, skeleton: as :func:`mpjpe`.
        root: if not ``None``, subtract this joint from both poses first.
    """
    _check_reduction(reduction)
    p, t = _pair(pred, target, 3, skeleton)
    if root is not None:
        p = geometry.root_center(p, root)
        t = geometry.root_center(t, root)
    num = np.sum(p * t, axis=(-2, -1), keepdims=True)
    den = np.sum(p * p, axis=(-2, -1), keepdims=True)
    scale = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return _reduce(np.linalg.norm(scale * p - t, axis=-1), reduction)


def mean_velocity_error(pred, target, reduction: str = "mean", time_axis: int = -3, fps=None):
    """Mean per-joint velocity error (MPJVE, Pavllo et al. 2019).

    The MPJPE between the first differences along time of ``pred`` and ``target``.

    Args:
        pred, target: sequences of shape ``(..., T, J, 3)`` (mm), ``T >= 2``.
        reduction: as :func:`mpjpe`; ``"per_sample"`` gives one value per
            velocity frame (``T - 1`` of them along ``time_axis``).
        time_axis: the time axis (default ``-3``, the axis before ``J``).
        fps: if given, velocities are in units per second (``diff * fps``),
            otherwise per frame.
    """
    _check_reduction(reduction)
    p, t = _pair(pred, target, 3)
    ax = time_axis if time_axis >= 0 else p.ndim + time_axis
    if not 0 <= ax < p.ndim - 2:
        raise ValueError(
            f"time_axis {time_axis} must point at a batch/time axis of shape (..., T, J, 3); "
            f"inputs have shape {p.shape}"
        )
    if p.shape[ax] < 2:
        raise ValueError(f"need at least 2 frames along time_axis {time_axis}, got shape {p.shape}")
    vp = np.diff(p, axis=ax)
    vt = np.diff(t, axis=ax)
    factor = 1.0 if fps is None else float(fps)
    return _reduce(factor * np.linalg.norm(vp - vt, axis=-1), reduction)


def pck_3d(pred, target, threshold: float = PCK3D_THRESHOLD, reduction: str = "mean", skeleton=None):
    """3D PCK: fraction of joints whose error is ``<= threshold`` (default 150 mm).

    Returns a fraction in ``[0, 1]``, reduced as :func:`mpjpe`.
    """
    _check_reduction(reduction)
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite value >= 0, got {threshold!r}")
    p, t = _pair(pred, target, 3, skeleton)
    correct = (np.linalg.norm(p - t, axis=-1) <= threshold).astype(np.float64)
    return _reduce(correct, reduction)


def auc_3d(pred, target, thresholds=None, reduction: str = "mean", skeleton=None):
    """Area under the 3D PCK curve: mean PCK over ``thresholds``.

    Args:
        thresholds: 1D increasing thresholds in mm; default ``0, 5, ..., 150``
            (31 values, as in the MPI-INF-3DHP evaluation).

    Returns:
        A value in ``[0, 1]`` (reduced as :func:`mpjpe`).
    """
    _check_reduction(reduction)
    th = AUC3D_THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if th.ndim != 1 or th.size == 0 or not np.all(np.isfinite(th)) or np.any(th < 0):
        raise ValueError(f"thresholds must be a non-empty 1D array of values >= 0, got {thresholds!r}")
    p, t = _pair(pred, target, 3, skeleton)
    err = np.linalg.norm(p - t, axis=-1)
    curve = (err[..., None] <= th).astype(np.float64).mean(axis=-1)
    return _reduce(curve, reduction)


def best_of_k_mpjpe(hypotheses_mm, target_mm, *, return_index=False):
    """Best-of-k MPJPE: per pose the error of the hypothesis closest to the ground truth.

    Args:
        hypotheses_mm: ``(N, k, J, 3)``.
        target_mm: ``(N, J, 3)``.

    Returns:
        ``(N,)`` per-pose minimum MPJPE (mm); with ``return_index`` also the
        index of the best hypothesis. Average it for the reported number.
    """
    h = np.asarray(hypotheses_mm, np.float64)
    t = np.asarray(target_mm, np.float64)
    if h.ndim != 4 or t.ndim != 3 or h.shape[0] != t.shape[0] or h.shape[2:] != t.shape[1:]:
        raise ValueError(f"hypotheses_mm (N, k, J, 3) and target_mm (N, J, 3): got {h.shape} and {t.shape}")
    if h.shape[1] == 0 or h.shape[2] == 0:
        raise ValueError(f"hypotheses_mm: need at least one hypothesis and one joint, got shape {h.shape}")
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(t))):
        raise ValueError("hypotheses_mm / target_mm contain NaN or inf")
    err = np.linalg.norm(h - t[:, None], axis=-1).mean(axis=-1)  # (N, k)
    best = err.argmin(axis=1)
    e = err[np.arange(len(err)), best]
    return (e, best) if return_index else e


# ---------------------------------------------------------------------------
# Keras metric
# ---------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="pose_lab")
class MPJPE(keras.metrics.Metric):
    """Running mean per-joint position error, for ``model.compile(metrics=[...])``.

    Backend-agnostic (``keras.ops``): the same values under TensorFlow and JAX.
    Each sample contributes the mean of its joint errors, weighted by
    ``sample_weight``; :meth:`result` is the weighted mean over everything seen
    since the last :meth:`reset_state`, equal to :func:`pose_lab.metrics.mpjpe`.

    Args:
        num_joints: if given, flat targets ``(batch, num_joints * 3)`` (as output
            by a Dense layer) are reshaped to ``(batch, num_joints, 3)``.
        scale, offset: optional de-normalisation applied to both ``y_true`` and
            ``y_pred`` before measuring, ``y * scale + offset`` (scalars or
            lists broadcastable to the targets' shape), e.g. the train-set std and
            mean of z-scored targets, or ``scale=1000`` for metres -> mm.
        name, dtype: as for any Keras metric.

    Example:
        >>> model.compile("adam", "mse", metrics=[MPJPE(num_joints=16)])  # doctest: +SKIP
    """

    def __init__(self, num_joints=None, scale=None, offset=None, name="mpjpe", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if num_joints is not None and (not isinstance(num_joints, numbers.Integral) or num_joints < 1):
            raise ValueError(f"num_joints must be a positive integer or None, got {num_joints!r}")
        self.num_joints = None if num_joints is None else int(num_joints)
        self.scale = None if scale is None else np.asarray(scale, dtype="float32").tolist()
        self.offset = None if offset is None else np.asarray(offset, dtype="float32").tolist()
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype=self.dtype)
        self.count = self.add_variable(shape=(), initializer="zeros", name="count", dtype=self.dtype)

    def _prepare(self, y, name):
        y = ops.cast(ops.convert_to_tensor(y), self.dtype)
        if self.scale is not None:
            y = y * ops.convert_to_tensor(self.scale, dtype=self.dtype)
        if self.offset is not None:
            y = y + ops.convert_to_tensor(self.offset, dtype=self.dtype)
        shape = tuple(y.shape)
        if self.num_joints is not None and len(shape) >= 1 and shape[-1] == 3 * self.num_joints:
            y = ops.reshape(y, (-1, self.num_joints, 3))
        elif len(shape) < 2 or shape[-1] != 3 or (self.num_joints is not None and shape[-2] != self.num_joints):
            j = "J" if self.num_joints is None else str(self.num_joints)
            flat = "" if self.num_joints is None else f" or (batch, {3 * self.num_joints})"
            raise ValueError(f"MPJPE: {name} must have shape (..., {j}, 3){flat}, got {shape}")
        return y

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = self._prepare(y_true, "y_true")
        y_pred = self._prepare(y_pred, "y_pred")
        if tuple(y_true.shape[1:]) != tuple(y_pred.shape[1:]):
            raise ValueError(
                f"MPJPE: y_true and y_pred must have the same shape (..., J, 3), got {tuple(y_true.shape)} "
                f"and {tuple(y_pred.shape)}"
            )
        err = ops.sqrt(ops.sum(ops.square(y_pred - y_true), axis=-1))  # (..., J)
        per_sample = ops.mean(err, axis=-1)  # (...)
        if sample_weight is None:
            weight = ops.ones_like(per_sample)
        else:
            weight = ops.cast(ops.convert_to_tensor(sample_weight), self.dtype)
            while len(weight.shape) > len(per_sample.shape):
                weight = ops.squeeze(weight, axis=-1)
            weight = ops.broadcast_to(weight, ops.shape(per_sample))
        self.total.assign_add(ops.sum(per_sample * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update({"num_joints": self.num_joints, "scale": self.scale, "offset": self.offset})
        return config
