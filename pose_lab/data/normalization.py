"""One z-score for every pose model of the kit: :class:`NormStats`.

Lifting (Martinez et al. 2017), the VAE family and the cross-modal VAE (seed
004) all standardise their poses the same way; they differ only in which
joints they keep:

* the **2D input** (pixels) is *not* root-centred (the perspective cue
  stays); Martinez keeps the root joint (``drop_root_2d=False``, 17 x 2 for
  H36M-17), the thesis's cross-modal VAE drops it (``drop_root_2d=True``, 16 x 2);
* the **3D target** (camera frame, mm) is root-centred; its root is then
  always zero, so it is dropped (``drop_root_3d=True``, 16 x 3);
* each remaining coordinate is standardised with the *training* set's mean and
  std (a coordinate with std below ``eps`` gets std 1).

Any skeleton works: the joint count ``J`` follows from the arrays' shapes
and the two flags, and is checked on every call.

Example:
    >>> stats = NormStats.from_arrays(train_2d_px, train_3d_mm)          # Martinez
    >>> x, y = stats.normalize_2d(train_2d_px), stats.normalize_3d(train_3d_mm)
    >>> pose_mm = stats.denormalize_3d(model_output)                      # (N, 17, 3), root at 0
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from pose_lab.validation import check_poses

__all__ = ["NormStats"]

_ARRAYS = ("mean_2d", "std_2d", "mean_3d", "std_3d")


@dataclass
class NormStats:
    """Per-coordinate mean / std of 2D inputs (pixels) and root-centred 3D targets (mm).

    Attributes:
        mean_2d, std_2d: ``(J2, 2)``, of the 2D joints kept (``J2 = J - drop_root_2d``).
        mean_3d, std_3d: ``(J3, 3)``, of the root-centred 3D joints kept (``J3 = J - drop_root_3d``).
        root: index of the root joint (the pelvis, 0, in H36M-17).
        drop_root_2d: the 2D root is removed before standardising (cross-modal VAE).
        drop_root_3d: the (zero) 3D root is removed (every lifter of the kit).

    ``normalize_*`` accept the full skeleton ``(..., J, D)`` or the kept
    joints, and flat ``(..., J * D)`` arrays (flat in, flat out);
    ``denormalize_3d`` puts the zero root back unless ``include_root=False``.
    """

    mean_2d: np.ndarray
    std_2d: np.ndarray
    mean_3d: np.ndarray
    std_3d: np.ndarray
    root: int = 0
    drop_root_2d: bool = False
    drop_root_3d: bool = True

    def __post_init__(self):
        for name in _ARRAYS:
            dims = 2 if name.endswith("2d") else 3
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if v.ndim != 2 or v.shape[-1] != dims or v.shape[0] < 1:
                raise ValueError(f"NormStats.{name}: expected shape (J, {dims}), got {v.shape}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"NormStats.{name} contains NaN/inf")
            setattr(self, name, v)
        for kind in ("2d", "3d"):
            m, s = getattr(self, f"mean_{kind}"), getattr(self, f"std_{kind}")
            if m.shape != s.shape:
                raise ValueError(f"NormStats: mean_{kind} and std_{kind} must have the same shape, "
                                 f"got {m.shape} and {s.shape}")
            if np.any(s <= 0):
                raise ValueError(f"NormStats: std_{kind} must be positive")
        self.root = int(self.root)
        self.drop_root_2d, self.drop_root_3d = bool(self.drop_root_2d), bool(self.drop_root_3d)
        j2 = self.mean_2d.shape[0] + self.drop_root_2d
        j3 = self.mean_3d.shape[0] + self.drop_root_3d
        if j2 != j3:
            raise ValueError(
                f"NormStats: the 2D statistics describe {j2} joints and the 3D ones {j3} "
                f"(drop_root_2d={self.drop_root_2d}, drop_root_3d={self.drop_root_3d}); expected the same skeleton"
            )
        if not 0 <= self.root < j2:
            raise ValueError(f"NormStats.root: expected an index in [0, {j2}), got {self.root}")

    # -- construction ------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        """Joints of the full skeleton ``J``."""
        return self.mean_2d.shape[0] + self.drop_root_2d

    @classmethod
    def from_arrays(cls, inputs_2d, targets_3d, *, root: int = 0, drop_root_2d: bool = False,
                    drop_root_3d: bool = True, eps: float = 1e-6) -> "NormStats":
        """Statistics of ``inputs_2d (N, J, 2)`` px and ``targets_3d (N, J, 3)`` mm (training poses).

        ``targets_3d`` is root-centred here (a no-op when it already is).
        """
        x = check_poses(inputs_2d, "inputs_2d (2D poses, pixels)", dims=2, dtype=np.float64)
        y = check_poses(targets_3d, "targets_3d (3D poses, mm)", dims=3, num_joints=x.shape[-2],
                        dtype=np.float64)
        x, y = x.reshape(-1, x.shape[-2], 2), y.reshape(-1, y.shape[-2], 3)
        if len(x) == 0 or len(y) == 0:
            raise ValueError("NormStats.from_arrays: need at least one pose (got 0)")
        if not 0 <= root < x.shape[1]:
            raise ValueError(f"root: expected an index in [0, {x.shape[1]}), got {root}")
        y = y - y[:, root:root + 1]
        if drop_root_2d:
            x = np.delete(x, root, axis=1)
        if drop_root_3d:
            y = np.delete(y, root, axis=1)
        s2, s3 = x.std(0), y.std(0)
        return cls(x.mean(0), np.where(s2 < eps, 1.0, s2), y.mean(0), np.where(s3 < eps, 1.0, s3),
                   root=root, drop_root_2d=drop_root_2d, drop_root_3d=drop_root_3d)

    @classmethod
    def coerce(cls, stats) -> "NormStats":
        """``stats`` as a :class:`NormStats`: itself, or from a mapping of :meth:`to_dict` (a saved config)."""
        if isinstance(stats, cls):
            return stats
        if isinstance(stats, Mapping):
            missing = [k for k in _ARRAYS if k not in stats]
            if missing:
                raise ValueError(f"stats: missing key(s) {missing}; expected {list(_ARRAYS)}")
            flags = {k: stats[k] for k in ("root", "drop_root_2d", "drop_root_3d") if k in stats}
            if "drop_root_2d" not in flags:  # a mapping without flags: the joint counts tell
                drop_3d = bool(flags.get("drop_root_3d", True))
                flags["drop_root_2d"] = drop_3d and np.shape(stats["mean_2d"])[0] == np.shape(stats["mean_3d"])[0]
            return cls(*(stats[k] for k in _ARRAYS), **flags)
        raise ValueError(f"stats: expected a NormStats (or its to_dict()), got {type(stats).__name__}")

    def to_dict(self) -> dict:
        """JSON-friendly form (lists), e.g. for a model's ``get_config``; :meth:`coerce` reads it back."""
        out = {k: getattr(self, k).tolist() for k in _ARRAYS}
        out.update(root=self.root, drop_root_2d=self.drop_root_2d, drop_root_3d=self.drop_root_3d)
        return out

    # -- helpers ---------------------------------------------------------------------
    def _full(self, x, name, dims, kept):
        """``x`` as ``(..., J or kept, dims)`` float64 and whether it was flat."""
        j = self.num_joints
        for n in (j, kept):
            if np.ndim(x) >= 1 and np.shape(x)[-1] == n * dims:
                arr = check_poses(x, name, dims=dims, num_joints=n, flat=True, dtype=np.float64)
                return arr, True
        arr = check_poses(x, name, dims=dims, num_joints=tuple(sorted({j, kept})), finite=False,
                          dtype=np.float64)
        return arr, False

    @staticmethod
    def _flat(out, flat):
        return out.reshape(out.shape[:-2] + (-1,)) if flat else out

    # -- 2D ------------------------------------------------------------------------------
    def normalize_2d(self, x) -> np.ndarray:
        """``(..., J, 2)`` pixels (or the kept joints) -> z-scores ``(..., J2, 2)``."""
        kept = self.mean_2d.shape[0]
        arr, flat = self._full(x, "inputs_2d (2D poses, pixels)", 2, kept)
        if self.drop_root_2d and arr.shape[-2] == self.num_joints:
            arr = np.delete(arr, self.root, axis=-2)
        return self._flat((arr - self.mean_2d) / self.std_2d, flat)

    def denormalize_2d(self, x) -> np.ndarray:
        """z-scores ``(..., J2, 2)`` -> pixels (the dropped root is not restored)."""
        kept = self.mean_2d.shape[0]
        arr, flat = self._full(x, "normalised 2D", 2, kept)
        if arr.shape[-2] != kept:
            raise ValueError(f"normalised 2D: expected shape (..., {kept}, 2), got {np.shape(x)}")
        return self._flat(arr * self.std_2d + self.mean_2d, flat)

    # -- 3D ------------------------------------------------------------------------------
    def normalize_3d(self, y) -> np.ndarray:
        """``(..., J, 3)`` mm (root-centred here) or the kept joints ``(..., J3, 3)`` -> z-scores ``(..., J3, 3)``."""
        kept = self.mean_3d.shape[0]
        arr, flat = self._full(y, "targets_3d (3D poses, mm)", 3, kept)
        if arr.shape[-2] == self.num_joints:
            arr = arr - arr[..., self.root:self.root + 1, :]
            if self.drop_root_3d:
                arr = np.delete(arr, self.root, axis=-2)
        return self._flat((arr - self.mean_3d) / self.std_3d, flat)

    def denormalize_3d(self, y, include_root: bool = True) -> np.ndarray:
        """z-scores ``(..., J3, 3)`` -> mm, with the zero root put back unless ``include_root=False``."""
        kept = self.mean_3d.shape[0]
        arr, flat = self._full(y, "normalised 3D", 3, kept)
        if arr.shape[-2] != kept:
            raise ValueError(f"normalised 3D: expected shape (..., {kept}, 3), got {np.shape(y)}")
        out = arr * self.std_3d + self.mean_3d
        if include_root and self.drop_root_3d:
            out = np.insert(out, self.root, 0.0, axis=-2)
        return self._flat(out, flat)

    # -- dispatch ------------------------------------------------------------------------
    def normalize(self, x) -> np.ndarray:
        """2D or 3D by the last axis (2 / 3, or the flat sizes)."""
        return self._dispatch(x, self.normalize_2d, self.normalize_3d, "normalize")

    def denormalize(self, x) -> np.ndarray:
        """Inverse of :meth:`normalize` (3D comes back with the zero root)."""
        return self._dispatch(x, self.denormalize_2d, self.denormalize_3d, "denormalize")

    def _dispatch(self, x, f2, f3, what):
        last = np.shape(x)[-1] if np.ndim(x) else None
        j, j2, j3 = self.num_joints, self.mean_2d.shape[0], self.mean_3d.shape[0]
        if last in (2, 2 * j, 2 * j2):
            return f2(x)
        if last in (3, 3 * j, 3 * j3):
            return f3(x)
        raise ValueError(f"{what}: expected (..., J, 2), (..., J, 3) or flat {2 * j}/{3 * j} "
                         f"(J = {j}), got {np.shape(x)}")

    # -- persistence ----------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the arrays and the flags to an ``.npz``, atomically (temporary file, then rename)."""
        from pose_lab.data.synthetic.dataset import save_npz_atomic

        return save_npz_atomic(path, **{k: getattr(self, k) for k in _ARRAYS}, root=self.root,
                               drop_root_2d=self.drop_root_2d, drop_root_3d=self.drop_root_3d)

    @classmethod
    def load(cls, path) -> "NormStats":
        """Read a file written by :meth:`save` (files without the flags get the Martinez defaults)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"normalisation statistics file not found: {path}")
        try:
            z = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{path}: cannot read normalisation statistics ({type(exc).__name__}: {exc})") from None
        missing = [k for k in _ARRAYS if k not in z.files]
        if missing:
            raise ValueError(f"{path}: missing key(s) {missing}; expected {list(_ARRAYS)}")
        flags = {k: z[k].item() for k in ("root", "drop_root_2d", "drop_root_3d") if k in z.files}
        try:
            return cls(*(z[k] for k in _ARRAYS), **flags)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
