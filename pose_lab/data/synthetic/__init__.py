"""The embedded synthetic human: bodies, motion, cameras, datasets in the real formats.

NumPy only (no TensorFlow). Units: millimetres, radians, pixels; world ``z`` up.

* :mod:`.body`: per-subject anthropometric bodies on the Human3.6M skeleton,
  joint angles with limits, forward kinematics, self-penetration checks.
* :mod:`.motion`: ten parametric actions at 50 fps, random poses, COCO-17
  keypoints (face points from the head orientation) and self-occlusion.
* :mod:`.cameras`: the four Human3.6M cameras per subject and random cameras.
* :mod:`.dataset`: :func:`generate_h36m` writes ``data_3d_h36m.npz`` /
  ``data_2d_h36m_gt.npz`` in the VideoPose3D layout.
* :mod:`.render` (when present): images of a shaded mannequin; its public
  names are re-exported here lazily, on first access.

Example:
    >>> from pose_lab.data import synthetic
    >>> seq = synthetic.generate_sequence("Walking", "S1", n_frames=100, seed=0)
    >>> cams = synthetic.h36m_rig("S1")
    >>> seq.joints.shape, len(cams)
    ((100, 17, 3), 4)
"""

from __future__ import annotations

import importlib

from .body import (
    ALL_SUBJECTS,
    DOF_LIMITS,
    DOF_NAMES,
    HEIGHT_RANGE_MM,
    SUBJECT_SEEDS,
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    Body,
    forward_kinematics,
    neutral_pose,
    penetration_report,
    sample_body,
    subject_body,
)
from .cameras import CAPTURE_CENTER, h36m_rig, random_camera
from .dataset import generate_h36m, generate_h36m_arrays, h36m_action_names
from .motion import (
    ACTIONS,
    CAPTURE_AREA,
    FPS,
    STAGE_AREA,
    MotionSequence,
    coco_keypoints_3d,
    coco_visibility,
    generate_sequence,
    head_sphere,
    random_poses,
)

__all__ = [
    "ACTIONS",
    "ALL_SUBJECTS",
    "Body",
    "CAPTURE_AREA",
    "CAPTURE_CENTER",
    "DOF_LIMITS",
    "DOF_NAMES",
    "FPS",
    "HEIGHT_RANGE_MM",
    "MotionSequence",
    "STAGE_AREA",
    "SUBJECT_SEEDS",
    "TEST_SUBJECTS",
    "TRAIN_SUBJECTS",
    "coco_keypoints_3d",
    "coco_visibility",
    "forward_kinematics",
    "generate_h36m",
    "generate_h36m_arrays",
    "generate_sequence",
    "h36m_action_names",
    "h36m_rig",
    "head_sphere",
    "neutral_pose",
    "penetration_report",
    "random_camera",
    "random_poses",
    "sample_body",
    "subject_body",
]


def _render_module():
    try:
        return importlib.import_module(".render", __name__)
    except ModuleNotFoundError as exc:  # render.py not written / not installed
        if exc.name in (f"{__name__}.render",):
            return None
        raise


def __getattr__(name):
    """Lazily expose the renderer's public names (``pose_lab.data.synthetic.render``)."""
    if name == "render":
        mod = _render_module()
        if mod is None:
            raise AttributeError(f"module {__name__!r} has no submodule 'render'")
        return mod
    mod = _render_module() if not name.startswith("_") else None
    if mod is not None and name in getattr(mod, "__all__", ()):
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    names = set(globals()) | set(__all__)
    mod = _render_module()
    if mod is not None:
        names |= set(getattr(mod, "__all__", ()))
    return sorted(names)
