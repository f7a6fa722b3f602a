"""Shared input checks of the NumPy geometry functions (private)."""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------
# input checking
# --------------------------------------------------------------------------
def _shape(x) -> tuple:
    return tuple(np.shape(x))


def _as_vectors(x, name: str, dim: int = 3) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (..., {dim}), got shape {_shape(arr)}")
    return arr


def _as_points(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., J, 3), got shape {_shape(arr)}")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {n_bad} NaN/inf value(s); shape {_shape(arr)}")


def _as_rotation(R, name: str = "R") -> np.ndarray:
    arr = np.asarray(R, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape (..., 3, 3), got shape {_shape(arr)}")
    return arr
