"""Joint sets used in the course: Human3.6M (17 and 32 joints) and COCO-17.

A :class:`Skeleton` is plain data (names, parent of each joint, left/right
index lists, bone list) so that every array carrying joints can say which
layout it follows. Positions are never stored here.

* ``H36M32``: the full 32-joint Human3.6M motion-capture skeleton, in the order
  of the dataset's ``D3_Positions`` files and of ``data_3d_h36m.npz``.
* ``H36M17``: the 17-joint subset used by virtually every lifting paper
  (Martinez et al. 2017, Pavllo et al. 2019), ``H36M17_FROM_H36M32`` selects it.
* ``COCO17``: the 17 COCO keypoints in the official annotation order, with the
  official skeleton edges, horizontal-flip pairs and OKS sigmas.

The COCO-17 <-> H36M-17 correspondence is documented in ``COCO_TO_H36M``
(``"exact"``: the same anatomical landmark up to labelling convention,
``"derived"``: computed from other keypoints, ``"approximate"``: a different
landmark used as a stand-in).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pose_lab.validation import check_poses

__all__ = [
    "Skeleton",
    "H36M32",
    "H36M17",
    "COCO17",
    "H36M17_FROM_H36M32",
    "COCO_OKS_SIGMAS",
    "COCO_TO_H36M",
    "coco_to_h36m",
    "h36m_to_coco_body",
    "get_skeleton",
]


@dataclass(frozen=True)
class Skeleton:
    """A joint layout.

    Args:
        name: short identifier, e.g. ``"h36m17"``.
        joint_names: one name per joint, in array order.
        parents: parent index of each joint, ``-1`` for the root. For layouts
            without a kinematic tree (COCO) use ``None``.
        left: indices of the subject's left-side joints.
        right: indices of the matching right-side joints (``right[i]`` is the
            mirror of ``left[i]``).
        edges: bones to draw, as ``(a, b)`` index pairs. Defaults to
            ``(parent, child)`` pairs of the kinematic tree.
    """

    name: str
    joint_names: tuple
    parents: tuple | None
    left: tuple
    right: tuple
    edges: tuple = field(default=())

    def __post_init__(self):
        n = len(self.joint_names)
        if self.parents is not None:
            if len(self.parents) != n:
                raise ValueError(
                    f"Skeleton {self.name!r}: parents has {len(self.parents)} entries, "
                    f"expected {n} (one per joint)"
                )
            for j, p in enumerate(self.parents):
                if p >= j:
                    raise ValueError(
                        f"Skeleton {self.name!r}: parent of joint {j} is {p}; parents "
                        "must precede their children"
                    )
            if not self.edges:
                object.__setattr__(
                    self,
                    "edges",
                    tuple((p, j) for j, p in enumerate(self.parents) if p >= 0),
                )
        if len(self.left) != len(self.right):
            raise ValueError(
                f"Skeleton {self.name!r}: left ({len(self.left)}) and right "
                f"({len(self.right)}) index lists differ in length"
            )

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps left and right joints: ``x[..., perm, :]``."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm

    @property
    def flip_pairs(self) -> tuple:
        """``((left, right), ...)`` pairs."""
        return tuple(zip(self.left, self.right))

    def index(self, name: str) -> int:
        """Index of a joint by name."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(
                f"Skeleton {self.name!r} has no joint {name!r}; joints are "
                f"{list(self.joint_names)}"
            ) from None

    def bone_lengths(self, positions) -> np.ndarray:
        """Length of each ``(parent, child)`` bone, shape ``(..., num_joints - 1)``.

        Args:
            positions: array ``(..., num_joints, D)``.
        """
        if self.parents is None:
            raise ValueError(f"Skeleton {self.name!r} has no kinematic tree")
        positions = np.asarray(positions, dtype=np.float64)
        self.check(positions, "positions")
        child = np.array([j for j, p in enumerate(self.parents) if p >= 0])
        parent = np.array([p for p in self.parents if p >= 0])
        return np.linalg.norm(positions[..., child, :] - positions[..., parent, :], axis=-1)

    def with_bone_lengths(self, positions, lengths) -> np.ndarray:
        """The same pose with new bone lengths: bone directions and the root kept.

        Joints are rebuilt along the tree from the root,
        ``new[c] = new[p] + lengths[c] * (old[c] - old[p]) / |old[c] - old[p]|``,
        so joint angles are unchanged (retargeting a motion onto another body;
        a zero-length bone stays zero).

        Args:
            positions: ``(..., num_joints, D)``.
            lengths: ``(num_joints - 1,)`` or ``(..., num_joints - 1)``, one per
                bone in the order of :meth:`bone_lengths` (by child joint).

        Returns:
            float64 array shaped like ``positions``.
        """
        if self.parents is None:
            raise ValueError(f"Skeleton {self.name!r} has no kinematic tree")
        pos = np.asarray(positions, dtype=np.float64)
        self.check(pos, "positions")
        children = [j for j, p in enumerate(self.parents) if p >= 0]
        lengths = np.asarray(lengths, dtype=np.float64)
        if lengths.shape[-1:] != (len(children),):
            raise ValueError(f"lengths: expected {len(children)} bone lengths (last axis) for skeleton "
                             f"{self.name!r}, got shape {lengths.shape}")
        lengths = np.broadcast_to(lengths, pos.shape[:-2] + (len(children),))
        old = self.bone_lengths(pos)
        out = pos.copy()
        done = {j for j, p in enumerate(self.parents) if p < 0}
        while len(done) < self.num_joints:
            progressed = False
            for k, c in enumerate(children):
                p = self.parents[c]
                if c in done or p not in done:
                    continue
                d = pos[..., c, :] - pos[..., p, :]
                unit = d / np.maximum(old[..., k], 1e-12)[..., None]
                out[..., c, :] = out[..., p, :] + lengths[..., k, None] * unit
                done.add(c)
                progressed = True
            if not progressed:
                raise ValueError(f"Skeleton {self.name!r}: parents do not form a tree")
        return out

    def check(self, array, what: str = "array", dims=None) -> None:
        """Raise ``ValueError`` unless ``array`` has shape ``(..., num_joints, dims)`` (shape only).

        The kit's one validator, :func:`pose_lab.validation.check_poses`, with
        this skeleton's joint count; ``dims`` is an int, a tuple of ints or ``None``.
        """
        check_poses(array, what, dims=dims, num_joints=self, finite=False, dtype=None)


# --- Human3.6M, 32 joints ----------------------------------------------------
# Names from the dataset's skeleton description; "Site" entries are end sites.
H36M32 = Skeleton(
    name="h36m32",
    joint_names=(
        "Hips", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToeSite",
        "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftToeSite",
        "Spine", "Spine1", "Neck", "Head", "HeadSite",
        "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftHandThumb",
        "LeftThumbSite", "LeftWristEnd", "LeftWristSite",
        "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightHandThumb",
        "RightThumbSite", "RightWristEnd", "RightWristSite",
    ),
    parents=(-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18,
             19, 20, 19, 22, 12, 24, 25, 26, 27, 28, 27, 30),
    left=(6, 7, 8, 9, 10, 16, 17, 18, 19, 20, 21, 22, 23),
    right=(1, 2, 3, 4, 5, 24, 25, 26, 27, 28, 29, 30, 31),
)

#: Indices of the 17 evaluation joints inside the 32-joint layout.
H36M17_FROM_H36M32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

# --- Human3.6M, 17 joints ----------------------------------------------------
H36M17 = Skeleton(
    name="h36m17",
    joint_names=(
        "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine",
        "Thorax", "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist",
        "RShoulder", "RElbow", "RWrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
)

# --- COCO, 17 keypoints -------------------------------------------------------
#: Official per-keypoint OKS constants (``sigmas`` in pycocotools' COCOeval).
COCO_OKS_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
     1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
) / 10.0

# The official 1-based "skeleton" of the COCO person category, as 0-based pairs.
_COCO_SKELETON_1BASED = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7),
    (6, 8), (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5),
    (4, 6), (5, 7),
)

COCO17 = Skeleton(
    name="coco17",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    parents=None,
    left=(1, 3, 5, 7, 9, 11, 13, 15),
    right=(2, 4, 6, 8, 10, 12, 14, 16),
    edges=tuple((a - 1, b - 1) for a, b in _COCO_SKELETON_1BASED),
)

# --- COCO-17 <-> H36M-17 --------------------------------------------------------
#: For each H36M-17 joint: (kind, COCO indices averaged to obtain it, note).
COCO_TO_H36M = (
    ("derived", (11, 12), "Hip (pelvis) = mid-point of left_hip and right_hip"),
    ("exact", (12,), "RHip = right_hip (COCO labels the hip surface, H36M the joint centre)"),
    ("exact", (14,), "RKnee = right_knee"),
    ("exact", (16,), "RFoot = right_ankle (H36M's 'foot' joint is the ankle)"),
    ("exact", (11,), "LHip = left_hip"),
    ("exact", (13,), "LKnee = left_knee"),
    ("exact", (15,), "LFoot = left_ankle"),
    ("derived", (5, 6, 11, 12), "Spine = mean of shoulders and hips (mid-torso)"),
    ("derived", (5, 6), "Thorax = mid-point of the shoulders"),
    ("approximate", (0,), "Neck/Nose = nose"),
    ("approximate", (1, 2, 3, 4), "Head = mean of eyes and ears (H36M: top of head)"),
    ("exact", (5,), "LShoulder = left_shoulder"),
    ("exact", (7,), "LElbow = left_elbow"),
    ("exact", (9,), "LWrist = left_wrist"),
    ("exact", (6,), "RShoulder = right_shoulder"),
    ("exact", (8,), "RElbow = right_elbow"),
    ("exact", (10,), "RWrist = right_wrist"),
)


def coco_to_h36m(keypoints) -> np.ndarray:
    """Convert COCO-17 keypoints ``(..., 17, D)`` to H36M-17 ``(..., 17, D)``.

    Each H36M joint is the mean of the COCO keypoints listed in
    :data:`COCO_TO_H36M`. Missing COCO keypoints should be NaN; they then
    propagate to the joints derived from them.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    COCO17.check(keypoints, "keypoints")
    return np.stack(
        [keypoints[..., list(src), :].mean(axis=-2) for _, src, _ in COCO_TO_H36M], axis=-2
    )


#: COCO index -> H36M-17 index for the 12 body keypoints that exist in both.
_COCO_BODY_FROM_H36M = {5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 11: 4, 12: 1, 13: 5,
                        14: 2, 15: 6, 16: 3, 0: 9}


def h36m_to_coco_body(joints) -> np.ndarray:
    """H36M-17 ``(..., 17, D)`` to COCO-17 ``(..., 17, D)`` without face detail.

    The 12 limb keypoints are copied, the nose takes ``Neck/Nose``; eyes and
    ears cannot be recovered from the H36M joints (they need the head's
    orientation, which the synthetic engine provides) and are NaN.
    """
    joints = np.asarray(joints, dtype=np.float64)
    H36M17.check(joints, "joints")
    out = np.full(joints.shape, np.nan)
    for c, h in _COCO_BODY_FROM_H36M.items():
        out[..., c, :] = joints[..., h, :]
    return out


_REGISTRY = {s.name: s for s in (H36M32, H36M17, COCO17)}


def get_skeleton(name) -> Skeleton:
    """Look a skeleton up by name (``"h36m17"``, ``"h36m32"``, ``"coco17"``)."""
    if isinstance(name, Skeleton):
        return name
    try:
        return _REGISTRY[str(name).lower()]
    except KeyError:
        raise ValueError(f"Unknown skeleton {name!r}; expected one of {sorted(_REGISTRY)}") from None
