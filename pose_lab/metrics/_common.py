"""Private helpers shared by the metric modules: input pairing and reductions."""

from __future__ import annotations

import contextlib
import numbers

import numpy as np

from pose_lab.skeletons import get_skeleton
from pose_lab.validation import check_poses

#: Accepted values of the ``reduction`` argument.
REDUCTIONS = ("mean", "per_joint", "per_sample", "none")


def _num_joints(skeleton):
    if skeleton is None:
        return None
    if isinstance(skeleton, numbers.Integral):
        return int(skeleton)
    return get_skeleton(skeleton).num_joints


def _require_poses(arr: np.ndarray, name: str) -> np.ndarray:
    """Raise ValueError when ``arr`` ``(..., J, D)`` holds no pose: its average would be NaN."""
    if arr.size == 0:
        raise ValueError(
            f"{name}: no poses (shape {arr.shape}); a metric over zero poses is undefined: "
            "pass at least one pose (an empty split or action filter?)"
        )
    return arr


def _pair(pred, target, dims: int = 3, skeleton=None):
    nj = _num_joints(skeleton)
    p = check_poses(pred, "pred", dims=dims, num_joints=nj, dtype=np.float64)
    t = check_poses(target, "target", dims=dims, num_joints=nj, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape (..., J, {dims}); got pred {p.shape} "
            f"and target {t.shape}"
        )
    return _require_poses(p, "pred"), t


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

