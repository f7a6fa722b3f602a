"""The :class:`Camera` (Human3.6M-style intrinsics and extrinsics), projection to
pixels and world <-> camera transforms (NumPy).

Conventions (units, ``X_cam = R (X_world - T)``, camera axes): see :mod:`pose_lab.geometry`.

Human3.6M distortion model
--------------------------
:func:`project_to_2d` implements the projection of the Human3.6M release
(``ProjectPointRadial.m``), as re-implemented in Martinez et al.'s
``cameras.py::project_point_radial``::

    x = X / Z,  y = Y / Z,  r2 = x**2 + y**2
    radial = 1 + k1*r2 + k2*r2**2 + k3*r2**3
    tan    = p1*y + p2*x
    x' = x*(radial + tan) + p2*r2
    y' = y*(radial + tan) + p1*r2
    u = fx*x' + cx,   v = fy*y' + cy

with ``(p1, p2)`` in the order of the Human3.6M metadata (``p = [p1, p2]`` in
``cameras.h5``). Expanded, ``x' = x*radial + p1*x*y + p2*(r2 + x**2)`` and
``y' = y*radial + p2*x*y + p1*(r2 + y**2)``.

Differences from other conventions (do not mix coefficient vectors):

* **OpenCV** (Brown-Conrady) uses ``x' = x*radial + 2*p1*x*y + p2*(r2 + 2*x**2)``,
  ``y' = y*radial + p1*(r2 + 2*y**2) + 2*p2*x*y``. ``p1``/``p2`` play the same
  roles, but the Human3.6M model has factor 1 instead of 2 on the ``x*y`` and
  ``x**2``/``y**2`` terms. Feeding the H36M coefficients to ``cv2.projectPoints``
  gives (slightly) different pixels.
* **VideoPose3D** (``common/camera.py::project_to_2d``) computes
  ``tan = p[0]*x + p[1]*y`` and adds ``p*r2``, and its table
  ``h36m_cameras_intrinsic_params['tangential_distortion']`` stores the two
  coefficients in the *opposite* order, ``[p2, p1]``. The two swaps cancel: the
  pixels are identical to the formula above. This module stores ``(p1, p2)`` in
  the Human3.6M/Martinez order, i.e. ``tangential = (vp3d[1], vp3d[0])``, which
  the tests check against VideoPose3D's formula applied to its own table.
* VideoPose3D additionally clamps ``X/Z`` to ``[-1, 1]``; this module does not
  (the clamp only matters far outside the field of view).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._checks import _as_vectors, _check_finite, _shape


# --------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------
def _field_array(value, name: str, shape: tuple, expected: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Camera.{name} must be numeric with shape {expected}: {exc}") from None
    if arr.shape != shape:
        # accept column vectors such as (2, 1) / (3, 1) as stored in cameras.h5
        if arr.size == int(np.prod(shape)) and len(shape) == 1 and arr.ndim == 2:
            arr = arr.reshape(shape)
        else:
            raise ValueError(
                f"Camera.{name} must have shape {expected}, got shape {_shape(arr)}"
            )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Camera.{name} must be finite, got {arr.tolist()}")
    return arr


@dataclass(eq=False)
class Camera:
    """A calibrated camera with Human3.6M-style intrinsics and extrinsics.

    Attributes:
        name: identifier (for Human3.6M the camera serial, e.g. ``"54138969"``).
        focal: ``(fx, fy)`` focal lengths in pixels, shape ``(2,)``, positive.
        center: ``(cx, cy)`` principal point in pixels, shape ``(2,)``.
        radial: ``(k1, k2, k3)`` radial distortion, shape ``(3,)``.
        tangential: ``(p1, p2)`` tangential distortion in the Human3.6M order
            (see the module docstring), shape ``(2,)``.
        width, height: image size in pixels (positive integers).
        R: world->camera rotation, shape ``(3, 3)``, proper (``det = +1``).
        T: camera centre in world coordinates (mm), shape ``(3,)``.

    ``X_cam = R @ (X_world - T)``. Arrays are stored as float64 copies.
    """

    name: str
    focal: Any
    center: Any
    radial: Any = (0.0, 0.0, 0.0)
    tangential: Any = (0.0, 0.0)
    width: int = 1000
    height: int = 1000
    R: Any = field(default_factory=lambda: np.eye(3))
    T: Any = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        self.name = str(self.name)
        self.focal = _field_array(self.focal, "focal", (2,), "(2,) = (fx, fy)")
        if np.any(self.focal <= 0):
            raise ValueError(f"Camera.focal must be positive (fx, fy), got {self.focal.tolist()}")
        self.center = _field_array(self.center, "center", (2,), "(2,) = (cx, cy)")
        self.radial = _field_array(self.radial, "radial", (3,), "(3,) = (k1, k2, k3)")
        self.tangential = _field_array(self.tangential, "tangential", (2,), "(2,) = (p1, p2)")
        for attr in ("width", "height"):
            val = getattr(self, attr)
            if isinstance(val, (bool, np.bool_)) or not float(val).is_integer() or val <= 0:
                raise ValueError(f"Camera.{attr} must be a positive integer, got {val!r}")
            setattr(self, attr, int(val))
        self.R = _field_array(self.R, "R", (3, 3), "(3, 3) (world->camera rotation)")
        err = np.abs(self.R @ self.R.T - np.eye(3)).max()
        if err > 1e-4 or np.linalg.det(self.R) <= 0:
            raise ValueError(
                "Camera.R must be a proper rotation of shape (3, 3) "
                f"(R @ R.T = I, det = +1); got orthogonality error {err:.2e}, "
                f"det {np.linalg.det(self.R):.4f}"
            )
        self.T = _field_array(self.T, "T", (3,), "(3,) (camera centre in world mm)")

    # -- convenience accessors -------------------------------------------
    @property
    def fx(self) -> float:
        return float(self.focal[0])

    @property
    def fy(self) -> float:
        return float(self.focal[1])

    @property
    def cx(self) -> float:
        return float(self.center[0])

    @property
    def cy(self) -> float:
        return float(self.center[1])

    @property
    def intrinsic_matrix(self) -> np.ndarray:
        """The 3x3 pinhole matrix ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``."""
        return np.array(
            [[self.focal[0], 0.0, self.center[0]], [0.0, self.focal[1], self.center[1]], [0.0, 0.0, 1.0]]
        )

    @property
    def intrinsic_vector(self) -> np.ndarray:
        """``(fx, fy, cx, cy, k1, k2, k3, p1, p2)``, shape ``(9,)``, p in H36M order.

        This is the parameter vector accepted by :func:`pose_lab.geometry.ops.project_to_2d`.
        Note: VideoPose3D's ``cam['intrinsic']`` has the same layout but its
        last two entries are ``(p2, p1)`` and f, c are normalised by the width.
        """
        return np.concatenate([self.focal, self.center, self.radial, self.tangential])

    @property
    def translation(self) -> np.ndarray:
        """OpenCV-style translation ``t = -R @ T`` (``X_cam = R @ X_world + t``)."""
        return -self.R @ self.T

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.radial != 0) or np.any(self.tangential != 0))

    def with_extrinsics(self, R, T) -> "Camera":
        """A copy of this camera with world->camera rotation ``R`` and centre ``T`` (mm)."""
        return dataclasses.replace(self, R=np.array(R, dtype=np.float64), T=np.array(T, dtype=np.float64))

    def without_distortion(self) -> "Camera":
        """A copy with all distortion coefficients set to zero."""
        return dataclasses.replace(self, radial=np.zeros(3), tangential=np.zeros(2))

    # -- geometry shortcuts ----------------------------------------------
    def world_to_camera(self, points_world) -> np.ndarray:
        return world_to_camera(points_world, self)

    def camera_to_world(self, points_cam) -> np.ndarray:
        return camera_to_world(points_cam, self)

    def project(self, points_world, distort: bool = True) -> np.ndarray:
        """Project world points (mm) to pixels, with or without lens distortion."""
        cam = world_to_camera(points_world, self)
        return project_to_2d(cam, self) if distort else project_pinhole(cam, self)

    # -- serialisation ---------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-serialisable dict (lists of floats); inverse of :meth:`from_dict`."""
        return {
            "name": self.name,
            "focal": self.focal.tolist(),
            "center": self.center.tolist(),
            "radial": self.radial.tolist(),
            "tangential": self.tangential.tolist(),
            "width": self.width,
            "height": self.height,
            "R": self.R.tolist(),
            "T": self.T.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        known = {f.name for f in dataclasses.fields(cls)}
        missing = {"name", "focal", "center"} - set(d)
        if missing:
            raise ValueError(f"Camera dict is missing required key(s) {sorted(missing)}")
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Camera dict has unknown key(s) {sorted(unknown)}; expected {sorted(known)}")
        return cls(**d)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Camera):
            return NotImplemented
        return (
            self.name == other.name
            and self.width == other.width
            and self.height == other.height
            and all(
                np.array_equal(getattr(self, k), getattr(other, k))
                for k in ("focal", "center", "radial", "tangential", "R", "T")
            )
        )

    def __repr__(self) -> str:
        return (
            f"Camera(name={self.name!r}, focal={self.focal.tolist()}, center={self.center.tolist()}, "
            f"radial={self.radial.tolist()}, tangential={self.tangential.tolist()}, "
            f"width={self.width}, height={self.height}, T={self.T.tolist()})"
        )


# --------------------------------------------------------------------------
# projection
# --------------------------------------------------------------------------
def _check_camera(camera) -> Camera:
    if not isinstance(camera, Camera):
        raise TypeError(f"camera must be a pose_lab.geometry.Camera, got {type(camera).__name__}")
    return camera


def _normalised_image_coords(points_cam, allow_behind: bool):
    pts = _as_vectors(points_cam, "points_cam", 3)
    _check_finite(pts, "points_cam")
    Z = pts[..., 2:3]
    behind = Z <= 0
    if np.any(behind):
        if not allow_behind:
            raise ValueError(
                f"points_cam has {int(np.count_nonzero(behind))} point(s) with depth Z <= 0 "
                "(behind the camera); they cannot be projected. Pass allow_behind=True to get NaN."
            )
        Z = np.where(behind, np.nan, Z)
    return pts[..., :2] / Z


def project_pinhole(points_cam, camera: Camera, *, allow_behind: bool = False) -> np.ndarray:
    """Pinhole projection without distortion: ``u = fx*X/Z + cx``, ``v = fy*Y/Z + cy``.

    Args:
        points_cam: camera-frame points, shape ``(..., 3)`` (mm).
        camera: a :class:`Camera` (only ``focal`` and ``center`` are used).
        allow_behind: return NaN for points with ``Z <= 0`` instead of raising.

    Returns:
        pixels, shape ``(..., 2)``.
    """
    camera = _check_camera(camera)
    xy = _normalised_image_coords(points_cam, allow_behind)
    return xy * camera.focal + camera.center


def project_to_2d(points_cam, camera: Camera, *, allow_behind: bool = False) -> np.ndarray:
    """Project camera-frame points to pixels with the Human3.6M distortion model.

    ::

        x = X/Z, y = Y/Z, r2 = x^2 + y^2
        radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3
        tan    = p1*y + p2*x
        x' = x (radial + tan) + p2 r2
        y' = y (radial + tan) + p1 r2
        u = fx x' + cx,  v = fy y' + cy

    ``(p1, p2) = camera.tangential`` in the Human3.6M / Martinez et al. order
    (``cameras.py::project_point_radial``: ``tan = p[0]*y + p[1]*x``, offset
    ``[p[1], p[0]] * r2``). This equals VideoPose3D's ``project_to_2d`` applied
    to its table, whose tangential list is ``[p2, p1]``; it is *not* OpenCV's
    model (OpenCV has ``2*p1*x*y + p2*(r2 + 2x^2)`` in ``x'``). With zero
    coefficients it reduces to :func:`project_pinhole`; a point on the optical
    axis (``X = Y = 0``) maps to ``(cx, cy)``.

    Args:
        points_cam: camera-frame points, shape ``(..., 3)`` (mm), finite, ``Z > 0``.
        camera: a :class:`Camera`.
        allow_behind: return NaN for points with ``Z <= 0`` instead of raising.

    Returns:
        pixels, shape ``(..., 2)``.

    Raises:
        ValueError: wrong shape, NaN/inf input, or points behind the camera.
    """
    camera = _check_camera(camera)
    xy = _normalised_image_coords(points_cam, allow_behind)
    x, y = xy[..., 0], xy[..., 1]
    k1, k2, k3 = camera.radial
    p1, p2 = camera.tangential
    r2 = x * x + y * y
    radial = 1.0 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tan = p1 * y + p2 * x
    xd = x * (radial + tan) + p2 * r2
    yd = y * (radial + tan) + p1 * r2
    return np.stack([camera.focal[0] * xd + camera.center[0], camera.focal[1] * yd + camera.center[1]], axis=-1)


def normalize_screen_coordinates(points_2d, w: float, h: float) -> np.ndarray:
    """Map pixels to ``[-1, 1]`` along x keeping the aspect ratio (VideoPose3D).

    ``X / w * 2 - [1, h / w]``: ``u in [0, w] -> [-1, 1]``, ``v in [0, h] -> [-h/w, h/w]``.
    """
    arr = _as_vectors(points_2d, "points_2d", 2)
    if w <= 0 or h <= 0:
        raise ValueError(f"w and h must be positive, got w={w}, h={h}")
    return arr / w * 2.0 - np.array([1.0, h / w])


def image_coordinates(points_norm, w: float, h: float) -> np.ndarray:
    """Inverse of :func:`normalize_screen_coordinates`: ``(X + [1, h / w]) * w / 2``."""
    arr = _as_vectors(points_norm, "points_norm", 2)
    if w <= 0 or h <= 0:
        raise ValueError(f"w and h must be positive, got w={w}, h={h}")
    return (arr + np.array([1.0, h / w])) * w / 2.0


# --------------------------------------------------------------------------
# world <-> camera
# --------------------------------------------------------------------------
def _extrinsics(camera_or_R, T):
    if isinstance(camera_or_R, Camera):
        if T is not None:
            raise ValueError("pass either a Camera or (R, T), not both")
        return camera_or_R.R, camera_or_R.T
    if T is None:
        raise ValueError("T (camera centre, shape (3,)) is required when R is given as a matrix")
    R = np.asarray(camera_or_R, dtype=np.float64)
    if R.shape != (3, 3):
        raise ValueError(f"R must have shape (3, 3), got {_shape(R)}")
    T = np.asarray(T, dtype=np.float64)
    if T.shape == (3, 1):  # column vector as stored in cameras.h5
        T = T[:, 0]
    if T.shape != (3,):
        raise ValueError(f"T must have shape (3,), got {_shape(T)}")
    return R, T


def world_to_camera(points_world, camera_or_R, T=None) -> np.ndarray:
    """``X_cam = R @ (X_world - T)`` for points of shape ``(..., 3)``.

    Call as ``world_to_camera(points, camera)`` or ``world_to_camera(points, R, T)``
    with ``R`` the world->camera rotation ``(3, 3)`` and ``T`` the camera centre ``(3,)``.
    """
    R, T = _extrinsics(camera_or_R, T)
    pts = _as_vectors(points_world, "points_world", 3)
    return (pts - T) @ R.T


def camera_to_world(points_cam, camera_or_R, T=None) -> np.ndarray:
    """``X_world = R^T @ X_cam + T``; inverse of :func:`world_to_camera`."""
    R, T = _extrinsics(camera_or_R, T)
    pts = _as_vectors(points_cam, "points_cam", 3)
    return pts @ R + T
