"""Camera geometry, rotations and alignment (NumPy).

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

        This is the parameter vector accepted by :func:`pose_lab.geometry_ops.project_to_2d`.
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
# Human3.6M cameras
# --------------------------------------------------------------------------
#: The four Human3.6M camera serials, in the dataset's order (index 0..3).
H36M_CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")

# Published intrinsics, copied verbatim from VideoPose3D
# (facebookresearch/VideoPose3D, common/h36m_dataset.py, h36m_cameras_intrinsic_params),
# which rounds the Human3.6M metadata to float32. ``tangential`` here is
# (p1, p2) in the Human3.6M/Martinez order = VideoPose3D's list *reversed*:
# VideoPose3D stores [p2, p1] and uses a formula with the roles of p swapped,
# see the module docstring. (In the metadata, camera 54138969 has
# p1 = -0.00142447157470321, p2 = -0.000975698859470499.)
H36M_INTRINSIC_PARAMS = {
    "54138969": {
        "center": (512.54150390625, 515.4514770507812),
        "focal": (1145.0494384765625, 1143.7811279296875),
        "radial": (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
        # VideoPose3D tangential_distortion: [-0.0009756988729350269, -0.00142447161488235]
        "tangential": (-0.00142447161488235, -0.0009756988729350269),
        "width": 1000,
        "height": 1002,
    },
    "55011271": {
        "center": (508.8486328125, 508.0649108886719),
        "focal": (1149.6756591796875, 1147.5916748046875),
        "radial": (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
        # VideoPose3D tangential_distortion: [-0.0016190266469493508, -0.0027408944442868233]
        "tangential": (-0.0027408944442868233, -0.0016190266469493508),
        "width": 1000,
        "height": 1000,
    },
    "58860488": {
        "center": (519.8158569335938, 501.40264892578125),
        "focal": (1149.1407470703125, 1148.7989501953125),
        "radial": (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
        # VideoPose3D tangential_distortion: [0.0014843869721516967, -0.0007599993259645998]
        "tangential": (-0.0007599993259645998, 0.0014843869721516967),
        "width": 1000,
        "height": 1000,
    },
    "60457274": {
        "center": (514.9682006835938, 501.88201904296875),
        "focal": (1145.5113525390625, 1144.77392578125),
        "radial": (-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
        # VideoPose3D tangential_distortion: [-0.0005872055771760643, -0.0018133620033040643]
        "tangential": (-0.0018133620033040643, -0.0005872055771760643),
        "width": 1000,
        "height": 1002,
    },
}

# Published extrinsics per subject, verbatim from VideoPose3D's
# h36m_cameras_extrinsic_params (the Human3.6M release has no calibration for
# S2, S3, S4 in that table). ``orientation`` is a (w, x, y, z) quaternion that
# rotates camera-frame vectors into the world frame (VideoPose3D:
# camera_to_world(X) = qrot(q, X) + t); ``translation`` is the camera centre
# in world coordinates, mm. h36m_cameras() converts: R = quaternion_to_matrix(q).T.
H36M_EXTRINSIC_PARAMS = {
    "S1": [
        {"orientation": (0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
         "translation": (1841.1070556640625, 4955.28466796875, 1563.4454345703125)},
        {"orientation": (0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
         "translation": (1761.278564453125, -5078.0068359375, 1606.2650146484375)},
        {"orientation": (0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
         "translation": (-1846.7777099609375, 5215.04638671875, 1491.972412109375)},
        {"orientation": (0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
         "translation": (-1794.7896728515625, -3722.698974609375, 1574.8927001953125)},
    ],
    "S5": [
        {"orientation": (0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
         "translation": (2097.3916015625, 4880.94482421875, 1605.732421875)},
        {"orientation": (0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
         "translation": (2031.7008056640625, -5167.93310546875, 1612.923095703125)},
        {"orientation": (0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
         "translation": (-1620.5948486328125, 5171.65869140625, 1496.43701171875)},
        {"orientation": (0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
         "translation": (-1637.1737060546875, -3867.3173828125, 1547.033203125)},
    ],
    "S6": [
        {"orientation": (0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
         "translation": (1935.4517822265625, 4950.24560546875, 1618.0838623046875)},
        {"orientation": (0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
         "translation": (1969.803955078125, -5128.73876953125, 1632.77880859375)},
        {"orientation": (0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
         "translation": (-1769.596435546875, 5185.361328125, 1476.993408203125)},
        {"orientation": (0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
         "translation": (-1721.668701171875, -3884.13134765625, 1540.4879150390625)},
    ],
    "S7": [
        {"orientation": (0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
         "translation": (1974.512939453125, 4926.3544921875, 1597.8326416015625)},
        {"orientation": (0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
         "translation": (1937.0584716796875, -5119.7900390625, 1631.5665283203125)},
        {"orientation": (0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
         "translation": (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)},
        {"orientation": (0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
         "translation": (-1734.7105712890625, -3832.42138671875, 1548.5830078125)},
    ],
    "S8": [
        {"orientation": (0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
         "translation": (2150.65185546875, 4896.1611328125, 1611.9046630859375)},
        {"orientation": (0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
         "translation": (2219.965576171875, -5148.453125, 1613.0440673828125)},
        {"orientation": (0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
         "translation": (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)},
        {"orientation": (0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
         "translation": (-1476.913330078125, -3896.7412109375, 1547.97216796875)},
    ],
    "S9": [
        {"orientation": (0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
         "translation": (2044.45849609375, 4935.1171875, 1481.2275390625)},
        {"orientation": (0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
         "translation": (1990.959716796875, -5123.810546875, 1568.8048095703125)},
        {"orientation": (0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
         "translation": (-1670.9921875, 5211.98583984375, 1528.387939453125)},
        {"orientation": (0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
         "translation": (-1696.04345703125, -3827.099853515625, 1591.4127197265625)},
    ],
    "S11": [
        {"orientation": (0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
         "translation": (2098.440185546875, 4926.5546875, 1500.278564453125)},
        {"orientation": (0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
         "translation": (2083.182373046875, -4912.1728515625, 1561.07861328125)},
        {"orientation": (0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
         "translation": (-1609.8153076171875, 5177.3359375, 1537.896728515625)},
        {"orientation": (0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
         "translation": (-1590.738037109375, -3854.1689453125, 1578.017578125)},
    ],
}

#: Subjects whose extrinsics are published (the standard protocol subjects).
H36M_SUBJECTS_WITH_CAMERAS = tuple(H36M_EXTRINSIC_PARAMS)


def h36m_cameras(subject: str | int = "S1") -> list[Camera]:
    """The four Human3.6M cameras (published intrinsics + ``subject``'s extrinsics).

    Returns a list of 4 :class:`Camera` in :data:`H36M_CAMERA_IDS` order, named by
    serial. ``R`` (world->camera) is ``quaternion_to_matrix(orientation).T``
    because the published quaternion rotates camera->world; ``T`` is the
    published translation (camera centre, mm). World ``z`` points up; the
    cameras hang about 1.5 m high around the capture area, looking at it.

    Args:
        subject: ``"S1"``, ``"S5"``, ..., ``"S11"`` (or the integer 1, 5, ...).
    """
    key = f"S{subject}" if isinstance(subject, (int, np.integer)) else str(subject)
    if key not in H36M_EXTRINSIC_PARAMS:
        raise ValueError(
            f"no published Human3.6M extrinsics for subject {subject!r}; "
            f"available: {list(H36M_EXTRINSIC_PARAMS)}"
        )
    cams = []
    for cam_id, ext in zip(H36M_CAMERA_IDS, H36M_EXTRINSIC_PARAMS[key]):
        intr = H36M_INTRINSIC_PARAMS[cam_id]
        R_c2w = quaternion_to_matrix(ext["orientation"])
        cams.append(
            Camera(
                name=cam_id,
                focal=intr["focal"],
                center=intr["center"],
                radial=intr["radial"],
                tangential=intr["tangential"],
                width=intr["width"],
                height=intr["height"],
                R=R_c2w.T,
                T=ext["translation"],
            )
        )
    return cams


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


# --------------------------------------------------------------------------
# rotations
# --------------------------------------------------------------------------
def axis_angle_to_matrix(axis_angle) -> np.ndarray:
    """Rodrigues' formula: rotation vector ``(..., 3)`` (axis * angle, radians) -> ``(..., 3, 3)``.

    ``R = I + sin(t) K + (1 - cos(t)) K^2`` with ``K`` the cross-product matrix of
    the unit axis; Taylor-expanded near ``t = 0``.
    """
    aa = _as_vectors(axis_angle, "axis_angle", 3)
    theta2 = np.sum(aa * aa, axis=-1)
    theta = np.sqrt(theta2)
    small = theta2 < 1e-12
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(theta) / safe)  # sin(t)/t
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(theta)) / np.where(small, 1.0, theta2))
    K = _skew(aa)
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def _skew(v: np.ndarray) -> np.ndarray:
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = np.zeros_like(x)
    return np.stack(
        [np.stack([o, -z, y], -1), np.stack([z, o, -x], -1), np.stack([-y, x, o], -1)], axis=-2
    )


def quaternion_to_matrix(q) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` (scalar first), shape ``(..., 4)`` -> ``(..., 3, 3)``.

    The quaternion is normalised first; ``q`` and ``-q`` give the same matrix.
    ``quaternion_to_matrix(q) @ v`` equals rotating ``v`` by ``q v q*``.
    """
    q = _as_vectors(q, "quaternion", 4)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n < 1e-12):
        raise ValueError("quaternion of shape (..., 4) must be non-zero")
    w, x, y, z = np.moveaxis(q / n, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def matrix_to_quaternion(R) -> np.ndarray:
    """Rotation matrix ``(..., 3, 3)`` -> unit quaternion ``(w, x, y, z)`` with ``w >= 0``.

    Shepperd's method (pick the largest of ``w, x, y, z`` to divide by): stable
    for all rotations, including 180 degrees.
    """
    R = _as_rotation(R)
    m = R
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # 4*w^2, 4*x^2, 4*y^2, 4*z^2 (up to the common +1)
    cand = np.stack(
        [1 + tr, 1 + 2 * m[..., 0, 0] - tr, 1 + 2 * m[..., 1, 1] - tr, 1 + 2 * m[..., 2, 2] - tr], -1
    )
    idx = np.argmax(cand, axis=-1)
    s = np.sqrt(np.maximum(np.take_along_axis(cand, idx[..., None], -1)[..., 0], 1e-300)) * 2  # 4*|q_i|
    q_w = np.stack(
        [s / 4, (m[..., 2, 1] - m[..., 1, 2]) / s, (m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 1, 0] - m[..., 0, 1]) / s], -1
    )
    q_x = np.stack(
        [(m[..., 2, 1] - m[..., 1, 2]) / s, s / 4, (m[..., 0, 1] + m[..., 1, 0]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s], -1
    )
    q_y = np.stack(
        [(m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 0, 1] + m[..., 1, 0]) / s, s / 4, (m[..., 1, 2] + m[..., 2, 1]) / s], -1
    )
    q_z = np.stack(
        [(m[..., 1, 0] - m[..., 0, 1]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s, (m[..., 1, 2] + m[..., 2, 1]) / s, s / 4], -1
    )
    q = np.choose(idx[..., None], [q_w, q_x, q_y, q_z])
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(R) -> np.ndarray:
    """Rotation matrix ``(..., 3, 3)`` -> rotation vector ``(..., 3)`` with angle in ``[0, pi]``."""
    q = matrix_to_quaternion(R)
    v = q[..., 1:]
    sin_half = np.linalg.norm(v, axis=-1)
    angle = 2.0 * np.arctan2(sin_half, q[..., 0])
    small = sin_half < 1e-12
    factor = np.where(small, 2.0 / np.maximum(q[..., 0], 1e-12), angle / np.where(small, 1.0, sin_half))
    return v * factor[..., None]


def quaternion_multiply(q1, q2) -> np.ndarray:
    """Hamilton product ``q1 * q2`` of ``(w, x, y, z)`` quaternions (broadcast over ``...``).

    ``quaternion_to_matrix(q1 * q2) == quaternion_to_matrix(q1) @ quaternion_to_matrix(q2)``.
    """
    a = _as_vectors(q1, "q1", 4)
    b = _as_vectors(q2, "q2", 4)
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def quaternion_conjugate(q) -> np.ndarray:
    """``(w, -x, -y, -z)``: the inverse rotation of a unit quaternion."""
    q = _as_vectors(q, "quaternion", 4)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quaternion_rotate(q, v) -> np.ndarray:
    """Rotate vectors ``v`` ``(..., 3)`` by unit quaternions ``q`` ``(..., 4)`` (``q v q*``)."""
    q = _as_vectors(q, "quaternion", 4)
    v = _as_vectors(v, "v", 3)
    qv = q[..., 1:]
    uv = np.cross(qv, v)
    uuv = np.cross(qv, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def rotation_about_axis(axis, angle) -> np.ndarray:
    """Rotation by ``angle`` radians about ``axis`` (right-hand rule).

    Args:
        axis: ``"x"``, ``"y"``, ``"z"`` or a 3-vector (normalised here).
        angle: scalar or array of angles; the result has shape ``angle.shape + (3, 3)``.
    """
    if isinstance(axis, str):
        try:
            axis = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}[axis.lower()]
        except KeyError:
            raise ValueError(f"axis must be 'x', 'y', 'z' or a vector of shape (3,), got {axis!r}") from None
    ax = np.asarray(axis, dtype=np.float64)
    if ax.shape != (3,):
        raise ValueError(f"axis must be 'x', 'y', 'z' or a vector of shape (3,), got shape {_shape(ax)}")
    n = np.linalg.norm(ax)
    if n < 1e-12:
        raise ValueError("axis of shape (3,) must be non-zero")
    ang = np.asarray(angle, dtype=np.float64)
    return axis_angle_to_matrix((ax / n) * ang[..., None])


def random_rotation(n: int | None = None, rng=None) -> np.ndarray:
    """Rotations drawn uniformly (Haar measure) on SO(3).

    A normalised 4D standard Gaussian is a uniform unit quaternion, whose matrix
    is uniform on SO(3).

    Args:
        n: number of rotations; ``None`` returns a single ``(3, 3)`` matrix.
        rng: ``numpy.random.Generator``, an integer seed, or ``None``.

    Returns:
        ``(n, 3, 3)`` (or ``(3, 3)``) proper rotation matrices.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    size = 1 if n is None else int(n)
    if size < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    q = gen.standard_normal((size, 4))
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    q = q / np.maximum(norm, 1e-12)
    R = quaternion_to_matrix(q) if size else np.zeros((0, 3, 3))
    return R[0] if n is None else R


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World->camera rotation for a camera at ``eye`` looking at ``target``.

    Camera axes follow the convention of this module: ``z`` forward (towards
    ``target``), ``x`` right, ``y`` down in the image; ``up`` is the world's up
    direction (Human3.6M: ``+z``). Use with ``T = eye``:
    ``Camera(..., R=look_at(eye, target), T=eye)``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    for name, v in (("eye", eye), ("target", target), ("up", up)):
        if v.shape != (3,):
            raise ValueError(f"{name} must have shape (3,), got {_shape(v)}")
    z = target - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("eye and target must differ")
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("viewing direction is parallel to 'up'; pick another up vector")
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=0)


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
