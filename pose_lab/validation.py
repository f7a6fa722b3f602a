"""One place that checks the arrays every public entry point receives.

Poses and images reach the kit from files, notebooks and other libraries; a
wrong shape or a NaN found deep inside a training step is hard to trace. Every
public function of the kit that takes poses calls :func:`check_poses`, every
one that takes images calls :func:`check_images`, so the same mistake gives
the same message everywhere: the argument's name, the expected shape and what
was found instead, e.g. ::

    ValueError: x2d (2D poses to lift): expected shape (N, 17, 2), got (128, 16, 2)
    ValueError: pred: 3 pose(s) contain NaN or inf values (first at index 7)

NumPy only; beneath every other module of the kit (it imports none of them).
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_images", "check_poses", "expected_joints", "positive_int"]


def _as_numeric(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise ValueError(f"{name}: expected a numeric array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def _as_options(value) -> tuple | None:
    if value is None:
        return None
    if isinstance(value, numbers.Integral):
        return (int(value),)
    if hasattr(value, "num_joints"):  # a pose_lab.skeletons.Skeleton
        return (int(value.num_joints),)
    return tuple(int(v) for v in value)


def expected_joints(num_joints) -> str:
    """How a joint count (int, tuple of ints, ``Skeleton`` or ``None``) reads in a message."""
    opts = _as_options(num_joints)
    return "J" if opts is None else "|".join(map(str, opts))


def _first_bad(arr: np.ndarray, sample_axes: int) -> tuple[int, int]:
    """(count, first index) of the samples holding a NaN/inf, samples on the first axis."""
    if arr.ndim <= sample_axes:
        return 1, 0
    finite = np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    bad = np.flatnonzero(~finite)
    return len(bad), int(bad[0])


def check_poses(x, name: str = "poses", *, dims=None, num_joints=None, batched: bool = False,
                flat: bool = False, finite: bool = True, dtype=np.float32, return_flat: bool = False):
    """Check an array of poses and return it as ``dtype``.

    Args:
        x: array-like ``(..., J, D)``; with ``batched=True`` exactly ``(N, J, D)``.
        name: how the argument is named in error messages (say the units:
            ``"x2d (2D poses, pixels)"``).
        dims: allowed coordinate count ``D`` (int or tuple, e.g. ``(2, 3)``), or ``None``.
        num_joints: allowed joint count ``J``: an int, a tuple of ints, a
            :class:`pose_lab.skeletons.Skeleton` (its name appears in the
            message), or ``None`` for any.
        batched: require exactly three axes ``(N, J, D)``.
        flat: also accept the flat layout ``(..., J * D)`` (needs a single
            ``num_joints`` and ``dims``) and reshape it to ``(..., J, D)``.
        finite: reject NaN / inf, naming how many samples hold one and the first.
        dtype: returned dtype (``None`` keeps the input's; no copy when unchanged).
        return_flat: also return whether the input was flat.

    Returns:
        The array ``(..., J, D)`` (and the flat flag with ``return_flat``).

    Raises:
        ValueError: naming ``name``, the expected shape and the shape found.
    """
    arr = _as_numeric(x, name)
    joints, coords = _as_options(num_joints), _as_options(dims)
    was_flat = False
    if flat and joints and coords and len(joints) == 1 and len(coords) == 1:
        size = joints[0] * coords[0]
        if arr.ndim >= 1 and arr.shape[-1] == size and (arr.ndim < 2 or arr.shape[-2:] != (joints[0], coords[0])):
            arr = arr.reshape(arr.shape[:-1] + (joints[0], coords[0]))
            was_flat = True
    ok = arr.ndim == 3 if batched else arr.ndim >= 2
    ok = ok and arr.shape[-2] >= 1
    if ok and joints is not None:
        ok = arr.shape[-2] in joints
    if ok and coords is not None:
        ok = arr.shape[-1] in coords
    if not ok:
        lead = "N" if batched else "..."
        d = "D" if coords is None else "|".join(map(str, coords))
        expected = f"({lead}, {expected_joints(num_joints)}, {d})"
        if flat and joints and coords and len(joints) == 1 and len(coords) == 1:
            expected += f" or flat ({lead}, {joints[0] * coords[0]})"
        skeleton = getattr(num_joints, "name", None)
        where = f" for skeleton {skeleton!r}" if skeleton else ""
        raise ValueError(f"{name}: expected shape {expected}{where}, got {arr.shape}")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        count, first = _first_bad(arr, 2)
        raise ValueError(
            f"{name}: {count} pose(s) contain NaN or inf values (first at index {first}); "
            "drop or impute missing joints first"
        )
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return (arr, was_flat) if return_flat else arr


def check_images(x, name: str = "images", *, shape=None, unit_range: bool = False, finite: bool = True):
    """Check a batch of images ``(N, H, W, C)``.

    Args:
        x: array-like ``(N, H, W, C)``.
        name: the argument's name in error messages.
        shape: expected ``(H, W, C)``; an entry ``None`` accepts any size.
        unit_range: return float32 in ``[0, 1]``: ``uint8`` is divided by 255,
            floats must already lie in ``[0, 1]``. Without it the array is
            returned as it is.
        finite: reject NaN / inf in float images.

    Raises:
        ValueError: naming ``name``, the expected shape or range and what was found.
    """
    arr = _as_numeric(x, name)
    want = None if shape is None else tuple(shape)
    ok = arr.ndim == 4 and (want is None or all(w is None or int(w) == s for w, s in zip(want, arr.shape[1:])))
    if not ok:
        text = "H, W, C" if want is None else ", ".join("?" if w is None else str(w) for w in want)
        raise ValueError(f"{name}: expected shape (N, {text}), got {arr.shape}")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        count, first = _first_bad(arr, 3)
        raise ValueError(f"{name}: {count} image(s) contain NaN or inf values (first at index {first})")
    if not unit_range:
        return arr
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name}: expected uint8 (0..255) or floats in [0, 1], got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(
            f"{name}: float images must lie in [0, 1] (got values in [{lo:.3g}, {hi:.3g}]); "
            "pass uint8 images for 0..255"
        )
    return arr


def positive_int(name, value) -> int:
    """``value`` as an int if it is a positive integer (not a bool), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)
