"""Pose metrics: 3D joint errors, PCK/AUC, OKS and COCO keypoint AP.

All array functions take NumPy-compatible arrays and return NumPy values.
Units follow the inputs: in this kit 3D joints are in millimetres, so
``mpjpe`` and friends return millimetres; 2D keypoints are in pixels.

3D errors (Human3.6M protocols)
-------------------------------
For a prediction ``P`` and ground truth ``G`` with ``J`` joints (shape ``(J, 3)``):

* **MPJPE** (protocol 1): ``mean_j ||P_j - G_j||``. Usually computed on
  root-centred poses (subtract the pelvis from both first, see
  :func:`pose_lab.geometry.root_center`).
* **P-MPJPE** (protocol 2): MPJPE after aligning ``P`` to ``G`` with the best
  similarity transform ``s R P + t`` (Procrustes / Umeyama, proper rotations
  only, so a mirrored pose is *not* fixed), per sample.
* **N-MPJPE** (Rhodin et al. 2018, as in VideoPose3D's ``n_mpjpe``): MPJPE
  after the least-squares scale ``s = <P, G> / <P, P>`` (sums over joints and
  coordinates) per sample; only the scale is corrected.
* **MPJVE** (:func:`mean_velocity_error`): MPJPE of the finite-difference
  velocities along time, in input units per frame.
* **3D PCK / AUC** (Mehta et al. 2017): fraction of joints with error
  ``<= 150`` mm; AUC is the mean PCK over thresholds ``0, 5, ..., 150`` mm.

Every 3D function takes ``reduction``:

* ``"mean"`` (default): one float, the mean over all samples and joints;
* ``"per_joint"``: shape ``(J,)``, each joint averaged over the samples;
* ``"per_sample"``: shape ``(...)``, each pose averaged over its joints;
* ``"none"``: shape ``(..., J)``, no averaging.

Because every pose has the same ``J``, the ``"mean"`` of the per-sample values
equals the ``"mean"`` of the per-joint values.

Per-action tables (:func:`evaluate_by_action`, :func:`per_action_table`)
follow the Human3.6M literature: the error is averaged over the frames of each
action first, then the per-action errors are averaged with equal weight
(``"Average"`` row), which is the number papers report.

2D metrics
----------
* **PCK** (:func:`pck_2d`): keypoint correct when its pixel error is at most
  ``threshold * reference size`` (e.g. 0.05 of the box size, or 0.5 of the
  head size for PCKh@0.5).
* **OKS** (:func:`oks`): the COCO object keypoint similarity, the formula of
  ``pycocotools.cocoeval.COCOeval.computeOks``::

      OKS = mean over labelled keypoints (v > 0) of exp(-d_i^2 / (2 * area * (2 sigma_i)^2))

  with ``area`` the ground-truth segment area in pixels^2 and ``sigma_i``
  :data:`pose_lab.skeletons.COCO_OKS_SIGMAS`.
* **COCO keypoint AP** (:func:`coco_keypoint_ap`): the ten official stats
  computed by pycocotools ``COCOeval(iouType="keypoints")``.

Keras
-----
:class:`MPJPE` is a ``keras.metrics.Metric`` (a running mean, backend-agnostic
through ``keras.ops``) to pass to ``model.compile(metrics=[...])``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import numbers
import os
from collections import OrderedDict
from pathlib import Path

import keras
import numpy as np
from keras import ops

from pose_lab import geometry
from pose_lab.skeletons import COCO17, COCO_OKS_SIGMAS, get_skeleton

__all__ = [
    "REDUCTIONS",
    "COCO_KEYPOINT_STATS",
    "mpjpe",
    "p_mpjpe",
    "n_mpjpe",
    "per_joint_mpjpe",
    "mean_velocity_error",
    "pck_3d",
    "auc_3d",
    "keypoint_error_2d",
    "pck_2d",
    "box_size",
    "oks",
    "ActionTable",
    "per_action_table",
    "evaluate_by_action",
    "coco_keypoint_ap",
    "coco_results_from_ground_truth",
    "MPJPE",
]

#: Accepted values of the ``reduction`` argument.
REDUCTIONS = ("mean", "per_joint", "per_sample", "none")

#: Names of the ten numbers ``COCOeval.summarize()`` prints for keypoints, in order.
COCO_KEYPOINT_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")

#: Default 3D PCK threshold (mm) and AUC thresholds (0..150 mm in 5 mm steps).
PCK3D_THRESHOLD = 150.0
AUC3D_THRESHOLDS = np.linspace(0.0, 150.0, 31)


# ---------------------------------------------------------------------------
# input checking
# ---------------------------------------------------------------------------
def _joints_expected(num_joints) -> str:
    return "J" if num_joints is None else str(num_joints)


def _as_poses(x, name: str, dims: int = 3, num_joints=None) -> np.ndarray:
    """``x`` as float64 ``(..., J, dims)``; ValueError naming the expected shape."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name}: expected a numeric array of shape (..., {_joints_expected(num_joints)}, {dims}): {exc}"
        ) from None
    if arr.ndim < 2 or arr.shape[-1] != dims or arr.shape[-2] < 1 or (
        num_joints is not None and arr.shape[-2] != num_joints
    ):
        raise ValueError(
            f"{name}: expected shape (..., {_joints_expected(num_joints)}, {dims}), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN/inf value(s) (shape {arr.shape})")
    return arr


def _num_joints(skeleton):
    if skeleton is None:
        return None
    if isinstance(skeleton, numbers.Integral):
        return int(skeleton)
    return get_skeleton(skeleton).num_joints


def _pair(pred, target, dims: int = 3, skeleton=None):
    nj = _num_joints(skeleton)
    p = _as_poses(pred, "pred", dims, nj)
    t = _as_poses(target, "target", dims, nj)
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape (..., J, {dims}); got pred {p.shape} "
            f"and target {t.shape}"
        )
    return p, t


def _reduce(per_joint: np.ndarray, reduction: str):
    """Reduce an error array of shape ``(..., J)``."""
    if reduction == "mean":
        return float(per_joint.mean())
    if reduction == "per_joint":
        return per_joint.reshape(-1, per_joint.shape[-1]).mean(axis=0)
    if reduction == "per_sample":
        return per_joint.mean(axis=-1)
    if reduction == "none":
        return per_joint
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


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


# ---------------------------------------------------------------------------
# 2D metrics
# ---------------------------------------------------------------------------
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
    arr = np.asarray(x, dtype=np.float64)
    nj = _num_joints(skeleton)
    if arr.ndim >= 2 and arr.shape[-1] == 3:
        return _as_poses(arr[..., :2], name, 2, nj), arr[..., 2]
    return _as_poses(arr, name, 2, nj), None


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
    mask = _visibility_mask(v_t if visibility is None else visibility, t.shape)
    err = np.where(mask, np.linalg.norm(p - t, axis=-1), np.nan)
    return _nan_reduce(err, reduction)


def _nan_reduce(values: np.ndarray, reduction: str):
    with np.errstate(invalid="ignore"), _quiet_nanmean():
        if reduction == "mean":
            return float(np.nanmean(values)) if np.any(~np.isnan(values)) else float("nan")
        if reduction == "per_joint":
            return np.nanmean(values.reshape(-1, values.shape[-1]), axis=0)
        if reduction == "per_sample":
            return np.nanmean(values, axis=-1)
        return values


@contextlib.contextmanager
def _quiet_nanmean():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Mean of empty slice", category=RuntimeWarning)
        yield


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


# ---------------------------------------------------------------------------
# per-action tables
# ---------------------------------------------------------------------------
class ActionTable:
    """Per-action results with the action-averaged row, as in Human3.6M papers.

    ``table[action][metric]`` is the mean of that metric over the samples of the
    action; ``table["Average"][metric]`` is the unweighted mean over actions (the
    protocol number papers report); :attr:`overall` is the mean over all samples
    (frame-weighted) for reference; :attr:`counts` the samples per action.

    ``str(table)`` / :meth:`to_markdown` format it with the actions as rows.
    """

    def __init__(self, rows: "OrderedDict[str, OrderedDict[str, float]]", counts: dict, overall: dict,
                 average_name: str = "Average"):
        self.rows = rows
        self.counts = counts
        self.overall = overall
        self.average_name = average_name

    @property
    def actions(self) -> list:
        return [a for a in self.rows if a != self.average_name]

    @property
    def metrics(self) -> list:
        first = next(iter(self.rows.values()), {})
        return list(first)

    @property
    def average(self) -> "OrderedDict[str, float]":
        return self.rows[self.average_name]

    def __getitem__(self, action):
        return self.rows[action]

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __contains__(self, action):
        return action in self.rows

    def to_dict(self) -> dict:
        return {a: dict(m) for a, m in self.rows.items()}

    def to_markdown(self, digits: int = 1) -> str:
        metrics = self.metrics
        lines = ["| action | " + " | ".join(metrics) + " | n |", "| --- |" + " ---: |" * (len(metrics) + 1)]
        for action, vals in self.rows.items():
            n = self.counts.get(action, sum(self.counts.values()))
            cells = [f"{vals[m]:.{digits}f}" for m in metrics]
            name = f"**{action}**" if action == self.average_name else str(action)
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {n} |")
        return "\n".join(lines)

    def __str__(self) -> str:
        metrics = self.metrics
        width = max([len(str(a)) for a in self.rows] + [6])
        head = f"{'action':<{width}}  " + "  ".join(f"{m:>10}" for m in metrics) + f"  {'n':>7}"
        lines = [head, "-" * len(head)]
        for action, vals in self.rows.items():
            if action == self.average_name:
                lines.append("-" * len(head))
            n = self.counts.get(action, sum(self.counts.values()))
            lines.append(f"{str(action):<{width}}  " + "  ".join(f"{vals[m]:>10.2f}" for m in metrics) + f"  {n:>7}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ActionTable({len(self.actions)} actions, metrics={self.metrics})"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _merge_action_name(action) -> str:
    # Human3.6M sub-actions: "Walking 1", "Walking" -> "Walking" (VideoPose3D convention).
    return str(action).split(" ")[0]


def per_action_table(errors_by_action, metric: str = "error", merge_subactions: bool = False,
                     average_name: str = "Average") -> ActionTable:
    """Build an :class:`ActionTable` from per-sample errors grouped by action.

    Args:
        errors_by_action: ``{action: errors}`` (a 1D array of per-sample errors
            for one metric, named ``metric``) or ``{action: {metric: errors}}``.
            Scalars are accepted as one sample.
        metric: the metric name when a single array per action is given.
        merge_subactions: merge Human3.6M sub-actions (``"Walking 1"`` and
            ``"Walking"`` -> ``"Walking"``) before averaging.
        average_name: name of the action-averaged row.

    Returns:
        The table; ``table["Average"]`` holds the unweighted mean over actions.
    """
    if not isinstance(errors_by_action, dict) or not errors_by_action:
        raise ValueError("errors_by_action must be a non-empty dict {action: errors or {metric: errors}}")
    grouped: "OrderedDict[str, OrderedDict[str, list]]" = OrderedDict()
    metric_names = None
    for action, value in errors_by_action.items():
        by_metric = value if isinstance(value, dict) else {metric: value}
        names = list(by_metric)
        if metric_names is None:
            metric_names = names
        elif names != metric_names:
            raise ValueError(
                f"action {action!r} has metrics {names}, expected the same as the first action: {metric_names}"
            )
        key = _merge_action_name(action) if merge_subactions else str(action)
        if key == average_name:
            raise ValueError(f"an action may not be called {average_name!r} (the name of the average row)")
        slot = grouped.setdefault(key, OrderedDict((m, []) for m in metric_names))
        for m, errs in by_metric.items():
            arr = np.asarray(errs, dtype=np.float64).reshape(-1)
            if arr.size == 0:
                raise ValueError(f"action {action!r}, metric {m!r}: no samples")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"action {action!r}, metric {m!r}: contains NaN/inf")
            slot[m].append(arr)
    rows: "OrderedDict[str, OrderedDict[str, float]]" = OrderedDict()
    counts = {}
    pooled = {m: [] for m in metric_names}
    for action, by_metric in grouped.items():
        rows[action] = OrderedDict()
        for m, parts in by_metric.items():
            arr = np.concatenate(parts)
            rows[action][m] = float(arr.mean())
            pooled[m].append(arr)
        counts[action] = int(sum(len(p) for p in by_metric[metric_names[0]]))
    rows[average_name] = OrderedDict((m, float(np.mean([rows[a][m] for a in grouped]))) for m in metric_names)
    overall = {m: float(np.concatenate(pooled[m]).mean()) for m in metric_names}
    return ActionTable(rows, counts, overall, average_name)


_ACTION_METRICS = {
    "mpjpe": mpjpe,
    "p_mpjpe": p_mpjpe,
    "n_mpjpe": n_mpjpe,
    "pck_3d": pck_3d,
    "auc_3d": auc_3d,
}


def evaluate_by_action(pred, target, actions, metrics=("mpjpe", "p_mpjpe"), merge_subactions: bool = False,
                       skeleton=None) -> ActionTable:
    """Per-action and action-averaged errors (Human3.6M protocol tables).

    Args:
        pred, target: ``(N, J, 3)`` poses in mm (root-centred for protocol 1).
        actions: ``N`` action labels, one per sample.
        metrics: names among ``"mpjpe"`` (protocol 1), ``"p_mpjpe"`` (protocol 2),
            ``"n_mpjpe"``, ``"pck_3d"``, ``"auc_3d"``, or ``{name: fn}`` with
            ``fn(pred, target, reduction="per_sample")``.
        merge_subactions: see :func:`per_action_table`.

    Returns:
        :class:`ActionTable` (``table["Average"]["mpjpe"]`` is the protocol-1 number).

    Example:
        >>> table = evaluate_by_action(pred, gt, actions)   # doctest: +SKIP
        >>> print(table)                                    # doctest: +SKIP
    """
    p, t = _pair(pred, target, 3, skeleton)
    if p.ndim != 3:
        raise ValueError(f"pred and target: expected shape (N, J, 3), got {p.shape}")
    acts = np.asarray(actions)
    if acts.shape != (p.shape[0],):
        raise ValueError(f"actions: expected shape ({p.shape[0]},) (one label per sample), got {acts.shape}")
    if isinstance(metrics, dict):
        fns = dict(metrics)
    else:
        if isinstance(metrics, str):
            metrics = (metrics,)
        unknown = [m for m in metrics if m not in _ACTION_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; expected names among {sorted(_ACTION_METRICS)}")
        fns = {m: _ACTION_METRICS[m] for m in metrics}
    per_sample = {m: np.asarray(fn(p, t, reduction="per_sample")) for m, fn in fns.items()}
    grouped = OrderedDict()
    for action in dict.fromkeys(acts.tolist()):  # first-appearance order
        idx = acts == action
        grouped[action] = {m: v[idx] for m, v in per_sample.items()}
    return per_action_table(grouped, merge_subactions=merge_subactions)


# ---------------------------------------------------------------------------
# COCO keypoint AP (pycocotools)
# ---------------------------------------------------------------------------
def _load_json(source, what: str):
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{what}: file not found: {path}")
        try:
            with path.open("r", encoding="utf-8") as fh:
                return json.load(fh), str(path)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what}: {path} is not valid JSON ({exc})") from None
    return source, f"<{what} given as {type(source).__name__}>"


_GT_FIELDS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "area", "iscrowd", "bbox")


def _check_annotations(data, where: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"annotations ({where}): expected a COCO dict or a path to one, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"annotations ({where}): missing list field {key!r} of the COCO keypoints schema")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise ValueError(f"annotations ({where}): annotations[{i}] is not an object")
        missing = [f for f in _GT_FIELDS if f not in ann]
        if missing:
            raise ValueError(f"annotations ({where}): annotations[{i}] (id {ann.get('id')}) lacks field(s) {missing}")
        if len(ann["keypoints"]) != 3 * len(COCO17.joint_names):
            raise ValueError(
                f"annotations ({where}): annotations[{i}] (id {ann['id']}) has {len(ann['keypoints'])} keypoint "
                f"values, expected 51 (17 keypoints x (x, y, v))"
            )
    return data


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _check_results(results, where: str, image_ids: set, category_ids: set) -> list:
    if not isinstance(results, (list, tuple)):
        raise ValueError(
            f"results ({where}): expected a list of COCO keypoint results or a path to one, "
            f"got {type(results).__name__}"
        )
    out = []
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise ValueError(f"results ({where}): results[{i}] is not an object")
        for key in ("image_id", "category_id", "keypoints", "score"):
            if key not in r:
                raise ValueError(f"results ({where}): results[{i}] lacks the field {key!r}")
        if r["image_id"] not in image_ids:
            raise ValueError(
                f"results ({where}): results[{i}] has image_id {r['image_id']!r}, which is not an image "
                "of the annotations"
            )
        if r["category_id"] not in category_ids:
            raise ValueError(
                f"results ({where}): results[{i}] has category_id {r['category_id']!r}; the annotations' "
                f"categories are {sorted(category_ids)}"
            )
        kps = r["keypoints"]
        if isinstance(kps, np.ndarray):
            kps = kps.reshape(-1).tolist()
        if not isinstance(kps, (list, tuple)) or len(kps) != 51:
            n = len(kps) if hasattr(kps, "__len__") else type(kps).__name__
            raise ValueError(
                f"results ({where}): results[{i}] (image_id {r['image_id']}) has {n} keypoint values, expected "
                "51 (17 keypoints x (x, y, score)), a flat list"
            )
        if not all(_is_number(float(k)) if isinstance(k, np.generic) else _is_number(k) for k in kps):
            raise ValueError(f"results ({where}): results[{i}] (image_id {r['image_id']}) has non-finite keypoints")
        score = float(r["score"]) if isinstance(r["score"], np.generic) else r["score"]
        if not _is_number(score):
            raise ValueError(f"results ({where}): results[{i}] has score {r['score']!r}, expected a finite number")
        clean = dict(r)
        clean["keypoints"] = [float(k) for k in kps]
        clean["score"] = float(score)
        out.append(clean)
    return out


def coco_results_from_ground_truth(annotations, score: float = 1.0) -> list:
    """The ground-truth persons (``num_keypoints > 0``, not crowd) in the COCO results format.

    Submitting these to :func:`coco_keypoint_ap` must give AP = 1.0: a sanity
    check of an evaluation pipeline.
    """
    data, where = _load_json(annotations, "annotations")
    data = _check_annotations(data, where)
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": list(a["keypoints"]),
         "score": float(score)}
        for a in data["annotations"]
        if a["num_keypoints"] > 0 and not a["iscrowd"]
    ]


def coco_keypoint_ap(annotations, results, verbose: bool = False, image_ids=None) -> "OrderedDict[str, float]":
    """The ten COCO keypoint stats computed by ``pycocotools`` ``COCOeval(iouType="keypoints")``.

    Args:
        annotations: path to a ``person_keypoints_*.json`` file, or the loaded dict
            (it is not modified).
        results: path to a results JSON file or a list of dicts
            ``{"image_id", "category_id", "keypoints": [x1, y1, s1, ..., x17, y17, s17], "score"}``.
            Every entry is validated (51 keypoint values, an ``image_id`` of the
            annotations, a known ``category_id``, a finite ``score``) before
            pycocotools sees it.
        verbose: let pycocotools print its progress and summary table.
        image_ids: evaluate on these images only (default: all images of the annotations).

    Returns:
        ``OrderedDict`` with keys :data:`COCO_KEYPOINT_STATS` (``AP``, ``AP50``, ``AP75``,
        ``APm``, ``APl``, ``AR``, ``AR50``, ``AR75``, ``ARm``, ``ARl``) as floats;
        ``-1.0`` where COCO has nothing to measure (e.g. no large persons).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: malformed annotations or results (the message names the entry).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_data, gt_where = _load_json(annotations, "annotations")
    gt_data = copy.deepcopy(_check_annotations(gt_data, gt_where))  # COCOeval writes into the gt dicts
    res_data, res_where = _load_json(results, "results")
    known_images = {img["id"] for img in gt_data["images"]}
    known_cats = {c["id"] for c in gt_data["categories"]}
    res_list = _check_results(res_data, res_where, known_images, known_cats)
    if image_ids is not None:
        image_ids = [int(i) for i in image_ids]
        unknown = sorted(set(image_ids) - known_images)
        if unknown:
            raise ValueError(f"image_ids: {unknown[:5]} not in the annotations' images")

    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        coco_gt = COCO()
        coco_gt.dataset = gt_data
        coco_gt.createIndex()
        if res_list:
            coco_dt = coco_gt.loadRes(res_list)
        else:  # pycocotools' loadRes cannot take an empty list; nothing detected scores 0
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt_data["images"]), "categories": copy.deepcopy(gt_data["categories"]),
                               "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        if image_ids is not None:
            evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return OrderedDict((name, float(v)) for name, v in zip(COCO_KEYPOINT_STATS, evaluator.stats))


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
