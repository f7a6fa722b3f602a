"""The embedded synthetic human: bodies, motion, cameras, datasets in the real formats.

NumPy only (no TensorFlow). Units: millimetres, radians, pixels; world ``z`` up.

* :mod:`.body`: per-subject anthropometric bodies on the Human3.6M skeleton,
  joint angles with limits, forward kinematics, self-penetration checks.
* :mod:`.motion`: sequences of ten parametric actions at 50 fps (ground
  contact, trajectory) and random poses.
* :mod:`.actions`: the action plans (joint angles and heading per frame).
* :mod:`.keypoints`: COCO-17 keypoints (face points from the head
  orientation) and self-occlusion.
* :mod:`.cameras`: the four Human3.6M cameras per subject and random cameras.
* :mod:`.dataset`: :func:`generate_h36m` writes ``data_3d_h36m.npz`` /
  ``data_2d_h36m_gt.npz`` in the VideoPose3D layout.
* :mod:`.scenes`: images of shaded mannequins: person crops
  (:func:`render_crops`), multi-person scenes (:func:`render_scenes`) and given
  people from a given camera (:func:`render_pose`).
* :mod:`.raster`: the body-part table and the z-buffered capsule rasteriser.
* :mod:`.appearance`: the mannequins' colours (:class:`Appearance`) and the
  random backgrounds.
* :mod:`.coco_writer`: :func:`write_coco_dataset` writes rendered scenes as a
  COCO keypoints dataset (official schema, RLE masks).

Example:
    >>> from pose_lab.data import synthetic
    >>> seq = synthetic.generate_sequence("Walking", "S1", n_frames=100, seed=0)
    >>> cams = synthetic.h36m_rig("S1")
    >>> seq.joints.shape, len(cams)
    ((100, 17, 3), 4)
"""

from __future__ import annotations

from .appearance import Appearance
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
from .cameras import CAPTURE_CENTER, h36m_rig, random_camera, varied_rig
from .coco_writer import COCO_CATEGORY, mask_to_rle, rle_area, write_coco_dataset
from .dataset import ENGINE_VERSION, ensure_h36m, generate_h36m, generate_h36m_arrays, h36m_action_names
from .motion import (
    ACTIONS,
    ALL_ACTIONS,
    EXTRA_ACTIONS,
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
from .raster import PART_NAMES
from .scenes import render_crops, render_pose, render_scene, render_scenes
from .stream import PersonCropStream, augment_transforms

__all__ = [
    "ACTIONS",
    "ALL_ACTIONS",
    "EXTRA_ACTIONS",
    "ALL_SUBJECTS",
    "Appearance",
    "Body",
    "CAPTURE_AREA",
    "CAPTURE_CENTER",
    "COCO_CATEGORY",
    "DOF_LIMITS",
    "DOF_NAMES",
    "ENGINE_VERSION",
    "FPS",
    "HEIGHT_RANGE_MM",
    "MotionSequence",
    "PART_NAMES",
    "STAGE_AREA",
    "SUBJECT_SEEDS",
    "TEST_SUBJECTS",
    "TRAIN_SUBJECTS",
    "coco_keypoints_3d",
    "coco_visibility",
    "forward_kinematics",
    "ensure_h36m",
    "generate_h36m",
    "generate_h36m_arrays",
    "generate_sequence",
    "h36m_action_names",
    "h36m_rig",
    "head_sphere",
    "mask_to_rle",
    "neutral_pose",
    "penetration_report",
    "random_camera",
    "random_poses",
    "render_crops",
    "render_pose",
    "render_scene",
    "render_scenes",
    "rle_area",
    "sample_body",
    "subject_body",
    "varied_rig",
    "write_coco_dataset",
]
