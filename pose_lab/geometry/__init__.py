"""Camera geometry, rotations and alignment (NumPy), with keras.ops versions.

Submodules
----------
* :mod:`pose_lab.geometry.camera`: the :class:`Camera` dataclass, projection to pixels
  (:func:`project_pinhole`, :func:`project_to_2d` with the Human3.6M distortion model,
  :func:`normalize_screen_coordinates`, :func:`image_coordinates`) and
  :func:`world_to_camera` / :func:`camera_to_world`.
* :mod:`pose_lab.geometry.h36m_cameras`: the published Human3.6M intrinsics and
  extrinsics (``H36M_*``) and :func:`h36m_cameras`. (The package attribute
  ``pose_lab.geometry.h36m_cameras`` is the function; import the module by its
  full name, ``from pose_lab.geometry.h36m_cameras import H36M_CAMERA_IDS``.)
* :mod:`pose_lab.geometry.rotations`: axis-angle / quaternion / matrix conversions,
  :func:`rotation_about_axis`, :func:`random_rotation`, :func:`look_at`.
* :mod:`pose_lab.geometry.alignment`: :func:`root_center`, :func:`procrustes_align`.
* :mod:`pose_lab.geometry.ops`: the same in ``keras.ops`` for models and losses
  (``from pose_lab.geometry import ops as O``). Not imported by ``import pose_lab.geometry``,
  which does not import Keras; ``pose_lab.geometry.ops`` loads it on first access.

Every public NumPy name is re-exported here: ``from pose_lab.geometry import Camera,
project_to_2d``, ``geometry.procrustes_align``, ...

Conventions used throughout the kit
-----------------------------------
* Units: millimetres for 3D points, pixels for 2D points.
* Points are arrays with the coordinate on the last axis: ``(..., 3)`` for 3D,
  ``(..., 2)`` for 2D; poses are ``(..., J, 3)``.
* Extrinsics follow the Human3.6M convention: ``R`` is the world->camera
  rotation and ``T`` the camera centre in world coordinates (mm), so

  .. math:: X_{cam} = R \\, (X_{world} - T), \\qquad X_{world} = R^T X_{cam} + T.

  The camera frame is the usual computer-vision one: ``x`` to the right in the
  image, ``y`` down, ``z`` forward along the optical axis (depth > 0 in front).
* Quaternions are ``(w, x, y, z)`` (scalar first), Hamilton product, the same
  order as VideoPose3D's ``common/quaternion.py``.
* Rotation matrices act on column vectors: ``v' = R @ v``; for point arrays of
  shape ``(..., 3)`` this is ``points @ R.T``.
* Human3.6M distortion model and how it differs from OpenCV and VideoPose3D:
  see :mod:`pose_lab.geometry.camera`.
"""

from __future__ import annotations

from .alignment import procrustes_align, root_center
from .camera import (
    Camera,
    camera_to_world,
    image_coordinates,
    normalize_screen_coordinates,
    project_pinhole,
    project_to_2d,
    world_to_camera,
)
from .h36m_cameras import (
    H36M_CAMERA_IDS,
    H36M_EXTRINSIC_PARAMS,
    H36M_INTRINSIC_PARAMS,
    H36M_SUBJECTS_WITH_CAMERAS,
    h36m_cameras,
)
from .rotations import (
    axis_angle_to_matrix,
    look_at,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    quaternion_conjugate,
    quaternion_multiply,
    quaternion_rotate,
    quaternion_to_matrix,
    random_rotation,
    rotation_about_axis,
)

__all__ = [
    "Camera",
    "H36M_CAMERA_IDS",
    "H36M_INTRINSIC_PARAMS",
    "H36M_EXTRINSIC_PARAMS",
    "H36M_SUBJECTS_WITH_CAMERAS",
    "h36m_cameras",
    "project_to_2d",
    "project_pinhole",
    "normalize_screen_coordinates",
    "image_coordinates",
    "world_to_camera",
    "camera_to_world",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "quaternion_multiply",
    "quaternion_conjugate",
    "quaternion_rotate",
    "rotation_about_axis",
    "random_rotation",
    "look_at",
    "procrustes_align",
    "root_center",
]


def __getattr__(name: str):
    # ``geometry.ops`` (keras.ops versions) is imported on first use only: it imports Keras.
    if name == "ops":
        import importlib

        return importlib.import_module(".ops", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
