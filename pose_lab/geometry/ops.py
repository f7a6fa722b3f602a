"""Backend-agnostic (``keras.ops``) versions of :mod:`pose_lab.geometry`.

These run inside models, losses and ``tf.data``/JAX-jitted code under the
TensorFlow and JAX backends, and agree with the NumPy functions of
:mod:`pose_lab.geometry` (same conventions: H36M distortion model with
``(p1, p2)`` in the Human3.6M order, ``X_cam = R @ (X_world - T)``,
quaternions ``(w, x, y, z)``). See :mod:`pose_lab.geometry.camera` for the formulas.

Differences from the NumPy versions:

* No value checks (NaN, points behind the camera) since those cannot raise
  inside a compiled graph; static shapes are still checked and raise
  ``ValueError`` naming the expected shape.
* Inputs keep their floating dtype (integers become ``keras.config.floatx()``).
* ``project_to_2d``/``project_pinhole`` accept, besides a :class:`Camera`, a
  tensor of intrinsics ``(..., 9) = (fx, fy, cx, cy, k1, k2, k3, p1, p2)``
  (``Camera.intrinsic_vector``) so a batch can mix cameras.
* ``random_rotation`` takes a Keras ``seed`` (int or ``keras.random.SeedGenerator``).

Only here (no NumPy twin): the geometry of unsupervised lifting (Chen et al. 2019),
:func:`view_rotation`, :func:`random_view_rotation`, :func:`rotate_about_root`,
:func:`normalize_pose_2d`, :func:`backproject_fixed_depth` and :func:`project_fixed_depth`
(see the section at the end of this module).
"""

from __future__ import annotations

import keras
from keras import ops

from .camera import Camera

__all__ = [
    "project_to_2d",
    "project_pinhole",
    "normalize_screen_coordinates",
    "image_coordinates",
    "world_to_camera",
    "camera_to_world",
    "axis_angle_to_matrix",
    "quaternion_to_matrix",
    "random_rotation",
    "procrustes_align",
    "root_center",
    # unsupervised lifting (Chen et al. 2019): views, scale-free 2D, fixed-depth back-projection
    "view_rotation",
    "random_view_rotation",
    "rotate_about_root",
    "normalize_pose_2d",
    "backproject_fixed_depth",
    "project_fixed_depth",
]


def _float(x, dtype=None):
    x = ops.convert_to_tensor(x)
    if dtype is None:
        dtype = x.dtype if "float" in str(x.dtype) else keras.config.floatx()
    return ops.cast(x, dtype)


def _check_last(x, dim: int, name: str, min_ndim: int = 1):
    shape = tuple(x.shape)
    if len(shape) < min_ndim or shape[-1] != dim:
        lead = "..., J, " if min_ndim >= 2 else "..., "
        raise ValueError(f"{name} must have shape ({lead}{dim}), got shape {shape}")


def _intrinsics(camera, dtype, ndim_points: int):
    """Return f, c, k, p tensors broadcastable against (..., 2) point arrays."""
    if isinstance(camera, Camera):
        vec = _float(camera.intrinsic_vector, dtype)
    else:
        vec = _float(camera, dtype)
        _check_last(vec, 9, "camera intrinsics (fx, fy, cx, cy, k1, k2, k3, p1, p2)")
        # (B, 9) with points (B, J, 3): insert axes before the last one (VideoPose3D style)
        while len(vec.shape) < ndim_points:
            vec = ops.expand_dims(vec, -2)
    return vec[..., 0:2], vec[..., 2:4], vec[..., 4:7], vec[..., 7:9]


def project_pinhole(points_cam, camera):
    """``f * (X, Y) / Z + c``; ``points_cam`` ``(..., 3)`` -> pixels ``(..., 2)``."""
    X = _float(points_cam)
    _check_last(X, 3, "points_cam")
    f, c, _, _ = _intrinsics(camera, X.dtype, len(X.shape))
    return X[..., :2] / X[..., 2:3] * f + c


def project_to_2d(points_cam, camera):
    """Human3.6M projection with distortion (see :func:`pose_lab.geometry.project_to_2d`).

    ``x=X/Z, y=Y/Z, r2=x^2+y^2, radial=1+k1 r2+k2 r2^2+k3 r2^3, tan=p1 y+p2 x,
    x'=x(radial+tan)+p2 r2, y'=y(radial+tan)+p1 r2, u=fx x'+cx, v=fy y'+cy``.

    Args:
        points_cam: camera-frame points ``(..., 3)`` in mm (``Z > 0``; not checked).
        camera: a :class:`~pose_lab.geometry.Camera` or intrinsics ``(..., 9)``.
    """
    X = _float(points_cam)
    _check_last(X, 3, "points_cam")
    f, c, k, p = _intrinsics(camera, X.dtype, len(X.shape))
    xy = X[..., :2] / X[..., 2:3]
    x, y = xy[..., 0:1], xy[..., 1:2]
    r2 = x * x + y * y
    radial = 1.0 + k[..., 0:1] * r2 + k[..., 1:2] * r2 * r2 + k[..., 2:3] * r2 * r2 * r2
    p1, p2 = p[..., 0:1], p[..., 1:2]
    tan = p1 * y + p2 * x
    xd = x * (radial + tan) + p2 * r2
    yd = y * (radial + tan) + p1 * r2
    return ops.concatenate([xd, yd], axis=-1) * f + c


def normalize_screen_coordinates(points_2d, w, h):
    """``X / w * 2 - [1, h / w]`` (VideoPose3D)."""
    X = _float(points_2d)
    _check_last(X, 2, "points_2d")
    off = ops.convert_to_tensor([1.0, float(h) / float(w)], dtype=X.dtype)
    return X / float(w) * 2.0 - off


def image_coordinates(points_norm, w, h):
    """Inverse of :func:`normalize_screen_coordinates`: ``(X + [1, h / w]) * w / 2``."""
    X = _float(points_norm)
    _check_last(X, 2, "points_norm")
    off = ops.convert_to_tensor([1.0, float(h) / float(w)], dtype=X.dtype)
    return (X + off) * (float(w) / 2.0)


def _extrinsics(camera_or_R, T, dtype):
    if isinstance(camera_or_R, Camera):
        if T is not None:
            raise ValueError("pass either a Camera or (R, T), not both")
        return _float(camera_or_R.R, dtype), _float(camera_or_R.T, dtype)
    if T is None:
        raise ValueError("T (camera centre, shape (..., 3)) is required when R is given")
    R = _float(camera_or_R, dtype)
    T = _float(T, dtype)
    if len(R.shape) < 2 or tuple(R.shape[-2:]) != (3, 3):
        raise ValueError(f"R must have shape (..., 3, 3), got {tuple(R.shape)}")
    _check_last(T, 3, "T")
    return R, T


def world_to_camera(points_world, camera_or_R, T=None):
    """``R @ (X - T)`` for points ``(..., 3)``.

    ``R`` ``(3, 3)`` and ``T`` ``(3,)`` (or a :class:`Camera`). For per-sample
    cameras pass ``R`` ``(B, 3, 3)``, ``T`` ``(B, 3)`` with points ``(B, J, 3)``.
    """
    X = _float(points_world)
    _check_last(X, 3, "points_world")
    R, T = _extrinsics(camera_or_R, T, X.dtype)
    if len(R.shape) > 2:  # batched cameras: (B, 3, 3) against (B, ..., 3)
        while len(R.shape) < len(X.shape) + 1:
            R = ops.expand_dims(R, -3)
            T = ops.expand_dims(T, -2)
        return ops.einsum("...ij,...j->...i", R, X - T)
    return ops.matmul(X - T, ops.transpose(R))


def camera_to_world(points_cam, camera_or_R, T=None):
    """``R^T @ X + T``; inverse of :func:`world_to_camera` (same argument forms)."""
    X = _float(points_cam)
    _check_last(X, 3, "points_cam")
    R, T = _extrinsics(camera_or_R, T, X.dtype)
    if len(R.shape) > 2:
        while len(R.shape) < len(X.shape) + 1:
            R = ops.expand_dims(R, -3)
            T = ops.expand_dims(T, -2)
        return ops.einsum("...ji,...j->...i", R, X) + T
    return ops.matmul(X, R) + T


def axis_angle_to_matrix(axis_angle):
    """Rodrigues: rotation vectors ``(..., 3)`` -> matrices ``(..., 3, 3)`` (differentiable at 0)."""
    aa = _float(axis_angle)
    _check_last(aa, 3, "axis_angle")
    theta2 = ops.sum(aa * aa, axis=-1)
    small = theta2 < 1e-8
    safe2 = ops.where(small, ops.ones_like(theta2), theta2)
    theta = ops.sqrt(safe2)
    a = ops.where(small, 1.0 - theta2 / 6.0, ops.sin(theta) / theta)
    b = ops.where(small, 0.5 - theta2 / 24.0, (1.0 - ops.cos(theta)) / safe2)
    x, y, z = aa[..., 0], aa[..., 1], aa[..., 2]
    o = ops.zeros_like(x)
    K = ops.stack(
        [ops.stack([o, -z, y], -1), ops.stack([z, o, -x], -1), ops.stack([-y, x, o], -1)], axis=-2
    )
    eye = ops.eye(3, dtype=aa.dtype)
    return eye + a[..., None, None] * K + b[..., None, None] * ops.matmul(K, K)


def quaternion_to_matrix(q):
    """``(w, x, y, z)`` quaternions ``(..., 4)`` -> ``(..., 3, 3)`` (normalised first)."""
    q = _float(q)
    _check_last(q, 4, "quaternion")
    q = q / ops.sqrt(ops.sum(q * q, axis=-1, keepdims=True))
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return ops.stack(
        [
            ops.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            ops.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            ops.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def random_rotation(n: int, seed=None, dtype=None):
    """``n`` rotations uniform on SO(3), shape ``(n, 3, 3)``, via normalised Gaussian quaternions.

    Args:
        n: number of rotations.
        seed: int, ``keras.random.SeedGenerator`` or ``None`` (as in ``keras.random``).
        dtype: float dtype (default ``keras.config.floatx()``).
    """
    dtype = dtype or keras.config.floatx()
    q = keras.random.normal((int(n), 4), dtype=dtype, seed=seed)
    return quaternion_to_matrix(q)


def root_center(points, root: int = 0):
    """``points - points[..., root:root+1, :]`` for ``(..., J, D)``."""
    X = ops.convert_to_tensor(points)
    shape = tuple(X.shape)
    if len(shape) < 2 or shape[-1] not in (2, 3):
        raise ValueError(f"points must have shape (..., J, 3) or (..., J, 2), got {shape}")
    J = shape[-2]
    if J is not None and not -J <= root < J:
        raise ValueError(f"root index {root} out of range for J={J} joints (shape (..., J, D))")
    if root < 0:
        root = root + J
    return X - X[..., root : root + 1, :]


def _det3(M):
    a, b, c = M[..., 0, :], M[..., 1, :], M[..., 2, :]
    return ops.sum(a * ops.cross(b, c), axis=-1)


def procrustes_align(pred, target, scale: bool = True, return_transform: bool = False):
    """Similarity (or rigid) Procrustes alignment with proper rotations (``keras.ops.svd``).

    Same contract as :func:`pose_lab.geometry.procrustes_align`: ``pred``,
    ``target`` ``(..., J, 3)``; returns aligned ``pred`` and optionally
    ``(s, R, t)`` with ``aligned = s * pred @ R^T + t``.
    """
    p = _float(pred)
    q = _float(target, p.dtype)
    _check_last(p, 3, "pred", min_ndim=2)
    _check_last(q, 3, "target", min_ndim=2)
    if tuple(p.shape) != tuple(q.shape):
        raise ValueError(
            f"pred and target must have the same shape (..., J, 3); got {tuple(p.shape)} and {tuple(q.shape)}"
        )
    mu_p = ops.mean(p, axis=-2, keepdims=True)
    mu_q = ops.mean(q, axis=-2, keepdims=True)
    p0 = p - mu_p
    q0 = q - mu_q
    H = ops.matmul(ops.swapaxes(q0, -1, -2), p0)
    U, S, Vt = ops.svd(H, full_matrices=False)
    d = ops.sign(_det3(ops.matmul(U, Vt)))
    d = ops.where(ops.equal(d, 0), ops.ones_like(d), d)
    D = ops.stack([ops.ones_like(d), ops.ones_like(d), d], axis=-1)
    R = ops.matmul(U * D[..., None, :], Vt)
    if scale:
        var_p = ops.sum(p0 * p0, axis=(-2, -1))
        trace = ops.sum(S * D, axis=-1)
        pos = var_p > 0
        s = ops.where(pos, trace / ops.where(pos, var_p, ops.ones_like(var_p)), ops.ones_like(var_p))
    else:
        s = ops.ones(ops.shape(p)[:-2], dtype=p.dtype)
    Rt = ops.swapaxes(R, -1, -2)
    t = mu_q - s[..., None, None] * ops.matmul(mu_p, Rt)  # (..., 1, 3)
    aligned = s[..., None, None] * ops.matmul(p, Rt) + t
    if return_transform:
        return aligned, (s, R, t[..., 0, :])
    return aligned


# ---------------------------------------------------------------------------------------------
# Unsupervised lifting (Chen et al., CVPR 2019): random views, scale-free 2D, fixed-depth camera.
#
# A root-centred pose lives in the camera frame (x right, y down, z forward; the vertical axis is
# y). The 2D input is root-centred and divided by its scale (mean distance of the joints to the
# root, :func:`normalize_pose_2d`), so it carries no pixel, focal-length or distance units. The
# pose is placed with its root at depth ``distance`` (Chen et al.: c = 10) on the optical axis of
# a pinhole camera with focal length ``distance``: a point ``(X, Y, Z)`` of the root-centred pose
# projects to ``distance * (X, Y) / (distance + Z)``, so a joint at the root's depth projects to
# its own ``(X, Y)`` and the root to the origin. ``distance=None`` is the weak-perspective
# (orthographic) limit, ``(X, Y)``.
# ---------------------------------------------------------------------------------------------


def view_rotation(azimuth, elevation):
    """Camera-frame rotation ``R = R_x(elevation) @ R_y(azimuth)``, shape ``(..., 3, 3)``.

    ``azimuth`` turns the pose about the vertical (camera ``y``) axis, as a
    camera walking around the person; ``elevation`` then tilts it about the
    camera ``x`` axis (the camera looking from above or below). Radians,
    any matching shapes ``(...)``.
    """
    az = _float(azimuth)
    el = _float(elevation, az.dtype)
    ca, sa, ce, se = ops.cos(az), ops.sin(az), ops.cos(el), ops.sin(el)
    o, i = ops.zeros_like(ca), ops.ones_like(ca)
    # R_y(a) = [[ca, 0, sa], [0, 1, 0], [-sa, 0, ca]];  R_x(e) = [[1, 0, 0], [0, ce, -se], [0, se, ce]]
    return ops.stack(
        [
            ops.stack([ca, o, sa], -1),
            ops.stack([se * sa, ce * i, -se * ca], -1),
            ops.stack([-ce * sa, se * i, ce * ca], -1),
        ],
        axis=-2,
    )


def random_view_rotation(n: int, seed=None, max_elevation: float = 0.349066, max_azimuth: float = 3.141592653589793,
                         dtype=None, return_angles: bool = False):
    """``n`` random views: azimuth ~ U(-max_azimuth, max_azimuth), elevation ~ U(-max_elevation, max_elevation).

    The defaults are the full circle of azimuths and +-20 degrees of elevation
    (Chen et al. 2019; ElePose learns the elevation distribution instead).

    Args:
        n: number of rotations (an int or a scalar tensor, e.g. the batch size).
        seed: int, ``keras.random.SeedGenerator`` or ``None``.
        max_elevation, max_azimuth: radians.
        dtype: float dtype (default ``keras.config.floatx()``).
        return_angles: also return ``(azimuth, elevation)``, each ``(n,)``.

    Returns:
        ``(n, 3, 3)`` rotation matrices (:func:`view_rotation`).
    """
    if not float(max_elevation) >= 0 or not float(max_azimuth) >= 0:
        raise ValueError(f"max_elevation, max_azimuth: expected non-negative radians, got "
                         f"{max_elevation!r}, {max_azimuth!r}")
    dtype = dtype or keras.config.floatx()
    u = keras.random.uniform((n, 2), minval=-1.0, maxval=1.0, dtype=dtype, seed=seed)
    az = u[:, 0] * float(max_azimuth)
    el = u[:, 1] * float(max_elevation)
    R = view_rotation(az, el)
    return (R, (az, el)) if return_angles else R


def rotate_about_root(pose, R, root: int = 0):
    """Rotate poses ``(B, J, 3)`` by ``R`` ``(B, 3, 3)`` (or ``(3, 3)``) about their root joint.

    ``X'_j = R (X_j - X_root) + X_root``; bone lengths are unchanged.
    """
    X = _float(pose)
    _check_last(X, 3, "pose", min_ndim=2)
    R = _float(R, X.dtype)
    if len(R.shape) < 2 or tuple(R.shape[-2:]) != (3, 3):
        raise ValueError(f"R must have shape (B, 3, 3) or (3, 3), got {tuple(R.shape)}")
    r = X[..., root : root + 1, :]
    Y = X - r
    if len(R.shape) == 2:
        return ops.matmul(Y, ops.transpose(R)) + r
    return ops.matmul(Y, ops.swapaxes(R, -1, -2)) + r


def normalize_pose_2d(points_2d, root: int = 0, eps: float = 1e-6):
    """Root-centre 2D poses ``(..., J, 2)`` and divide by their scale.

    The scale is the mean distance of the non-root joints to the root, so the
    result has mean root distance 1 and no units (pixels, focal length and
    the person's distance cancel).

    Returns:
        ``(normalised (..., J, 2), scale (...,))``.
    """
    x = root_center(_float(points_2d), root)
    if tuple(x.shape)[-1] != 2:
        raise ValueError(f"points_2d must have shape (..., J, 2), got {tuple(x.shape)}")
    J = tuple(x.shape)[-2]
    dist = ops.sqrt(ops.sum(x * x, axis=-1) + eps * eps)  # (..., J); the root contributes ~eps
    scale = (ops.sum(dist, axis=-1) - eps) / float(J - 1)
    return x / ops.maximum(scale, eps)[..., None, None], scale


def backproject_fixed_depth(points_2d, depth, distance: float | None = 10.0, min_depth: float = 1.0):
    """Lift normalised 2D ``(..., J, 2)`` with per-joint depth offsets ``(..., J)`` to a root-centred 3D pose.

    Perspective (Chen et al.): joint ``j`` sits on its camera ray at depth
    ``z_j = max(distance + d_j, min_depth)``: ``X_j = (x_j z_j / distance, y_j z_j / distance, z_j - distance)``,
    so :func:`project_fixed_depth` returns ``points_2d`` exactly. ``distance=None``:
    weak perspective, ``X_j = (x_j, y_j, d_j)``. The root's ``(x, y)`` should be 0
    (root-centred input) and its offset 0.
    """
    x = _float(points_2d)
    _check_last(x, 2, "points_2d", min_ndim=2)
    d = _float(depth, x.dtype)
    if tuple(d.shape) != tuple(x.shape)[:-1]:
        raise ValueError(f"depth must have shape {tuple(x.shape)[:-1]} (one offset per joint), got {tuple(d.shape)}")
    if distance is None:
        return ops.concatenate([x, d[..., None]], axis=-1)
    c = float(distance)
    z = ops.maximum(c + d, float(min_depth))[..., None]
    return ops.concatenate([x * z / c, z - c], axis=-1)


def project_fixed_depth(pose, distance: float | None = 10.0, min_depth: float = 1e-3):
    """Project a root-centred pose ``(..., J, 3)`` placed at depth ``distance``: ``distance (X, Y) / (distance + Z)``.

    ``distance=None``: weak perspective, ``(X, Y)``. Depths are clipped at
    ``min_depth`` (in front of the camera).
    """
    X = _float(pose)
    _check_last(X, 3, "pose", min_ndim=2)
    if distance is None:
        return X[..., :2]
    c = float(distance)
    z = ops.maximum(c + X[..., 2:3], float(min_depth))
    return X[..., :2] * (c / z)
