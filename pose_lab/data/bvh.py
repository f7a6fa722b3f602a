"""BVH motion-capture files: parser, forward kinematics, CMU -> H36M-17.

The BVH ("Biovision Hierarchy") format has two sections::

    HIERARCHY
    ROOT Hips
    {
        OFFSET 0 0 0
        CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
        JOINT LeftUpLeg
        {
            OFFSET 1.36 -1.79 0.84
            CHANNELS 3 Zrotation Yrotation Xrotation
            End Site
            {
                OFFSET 0 -7.0 0
            }
        }
    }
    MOTION
    Frames: 2
    Frame Time: 0.0083333
    <one line per frame: the values of every CHANNELS entry, in file order>

:func:`load_bvh` parses any file of this form (any number of ``ROOT``\\ s,
``JOINT``\\ s and ``End Site``\\ s, any per-joint channel order, position
channels on any joint) and runs forward kinematics.

Forward kinematics, exactly:

* A joint's local rotation is the product of its rotation channels **in the
  order they are listed**, each an elementary right-handed rotation by the
  channel value in degrees: ``CHANNELS 3 Zrotation Xrotation Yrotation`` gives
  ``R_local = Rz(z) @ Rx(x) @ Ry(y)``. These are *intrinsic* rotations (first
  about Z, then about the rotated X, then about the twice-rotated Y), the
  convention of the Biovision format and of every mainstream importer
  (Blender, MotionBuilder).
* A joint's local translation is its ``OFFSET``; a position channel
  (``Xposition`` ...) *replaces* the matching component of the offset
  (``position_channels="replace"``, what Blender and MotionBuilder do), or is
  added to it (``position_channels="add"``). CMU files have a zero root
  offset, so both agree there.
* ``R_global[j] = R_global[parent] @ R_local[j]`` and
  ``p[j] = p[parent] + R_global[parent] @ t_local[j]``; a root's parent is the
  file's coordinate frame.

End sites become joints of their own (named ``<parent>_end``) with an offset and
no channels, so ``positions`` include finger tips, toe tips and the top of the
head.

CMU Graphics Lab Motion Capture Database
----------------------------------------
:meth:`BVHMotion.to_h36m17` maps the CMU skeleton to the 17 Human3.6M joints
(``pose_lab.skeletons.H36M17``) in millimetres, in the kit's world frame.

*Unit.* CMU skeletons are stored in the ASF unit: inches multiplied by 0.45 (the
``:units length 0.45`` header of every CMU ``.asf``). The CMU database FAQ
(http://mocap.cs.cmu.edu/faqs.php, "How do I convert the lengths used in the
asf/amc files into meters?") gives the scale ``(1.0/0.45)*2.54/100.0 =
0.056444`` metres per unit, i.e. ``CMU_MM_PER_UNIT = 25.4 / 0.45 = 56.444`` mm.
The BVH conversions (Bruce Hahne's cgspeed.com release and the ASF-named
conversions) keep the ASF numbers unchanged. Checked on the real clips of
subject 131: femurs 407/411 mm, tibias 394/391 mm, and the head-end site
reaches 1.43-1.56 m above the floor (the clip's lowest toe point) while
walking; the ASF ``head`` bone ends a few centimetres below the crown, so
this is a small adult of about 1.5-1.6 m. Multiplying by ``0.45 * 25.4``
instead would make the same person about 0.3 m tall.

*Axes.* BVH files from CMU are y-up (the T-pose faces +z). The kit's world
frame is z-up (as Human3.6M's), so ``(x, y, z)_bvh -> (x, -z, y)_world``,
a proper rotation of +90 degrees about x (no mirroring).

*Joints.* Two CMU naming conventions are recognised: the MotionBuilder-friendly
names of the cgspeed.com conversion (``LeftUpLeg``, ``LeftLeg``, ``LeftFoot``,
``Spine``, ``Spine1``, ``Neck1``, ``Head``, ``LeftArm``, ``LeftForeArm``,
``LeftHand``), and the anatomical names of other ASF->BVH conversions, e.g. the
clips in ``../shared/data/cmu_mocap`` (``LeftHip``, ``LeftKnee``, ``LeftAnkle``,
``Chest``, ``Chest2``, ``Neck``, ``Head``, ``LeftShoulder``, ``LeftElbow``,
``LeftWrist``); see :data:`CMU_TO_H36M17`. Every H36M-17 bone is mapped onto
exactly one CMU bone (through the CMU skeleton's zero-length connector joints
``LHipJoint``, ``LowerBack``, ``Neck``/``lowerneck``, ``LeftShoulder``/``LeftCollar``),
so bone lengths are constant over time by construction. The landmarks are
close, not identical, to Human3.6M's:

=============  ==========================  ==========================  =====================
H36M-17        cgspeed (MotionBuilder)     anatomical (ASF-like)       landmark
=============  ==========================  ==========================  =====================
Hip            Hips (root)                 Hips (root)                 pelvis, ~9 cm above
                                                                       the hip joints (H36M:
                                                                       at hip-joint level)
R/LHip         Right/LeftUpLeg             Right/LeftHip               hip joint (femur head)
R/LKnee        Right/LeftLeg               Right/LeftKnee              knee
R/LFoot        Right/LeftFoot              Right/LeftAnkle             ankle
Spine          Spine                       Chest                       lower thoracic spine
Thorax         Spine1                      Chest2                      upper thoracic spine
                                                                       (below H36M's thorax)
Neck/Nose      Neck1                       Neck                        base of the neck
Head           Head                        Head                        base of the skull
                                                                       (H36M: top of head)
R/LShoulder    Right/LeftArm               Right/LeftShoulder          shoulder joint
R/LElbow       Right/LeftForeArm           Right/LeftElbow             elbow
R/LWrist       Right/LeftHand              Right/LeftWrist             wrist
=============  ==========================  ==========================  =====================

The CMU head joints sit one segment lower than H36M's (a rigid H36M
``Neck/Nose -> Head`` bone exists in CMU only as ``Neck1 -> Head``); pass a
``mapping=`` to :meth:`BVHMotion.to_h36m17` to choose other joints (e.g.
``"Head": "Head_end"``), at the price of bone lengths that vary a little with the
neck's bending.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BVHMotion",
    "load_bvh",
    "CMU_MM_PER_UNIT",
    "CMU_TO_H36M17",
    "BVH_TO_WORLD",
    "euler_to_matrix",
]

#: Millimetres per CMU ASF/BVH length unit: ``25.4 / 0.45`` (CMU mocap FAQ).
CMU_MM_PER_UNIT = 25.4 / 0.45

#: Rotation taking BVH's y-up frame to the kit's z-up world frame:
#: ``world = BVH_TO_WORLD @ bvh``, i.e. ``(x, y, z) -> (x, -z, y)``.
BVH_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

#: H36M-17 joint -> CMU joint name, per CMU naming convention (see module docstring).
CMU_TO_H36M17 = {
    "cgspeed": {
        "Hip": "Hips", "RHip": "RightUpLeg", "RKnee": "RightLeg", "RFoot": "RightFoot",
        "LHip": "LeftUpLeg", "LKnee": "LeftLeg", "LFoot": "LeftFoot",
        "Spine": "Spine", "Thorax": "Spine1", "Neck/Nose": "Neck1", "Head": "Head",
        "LShoulder": "LeftArm", "LElbow": "LeftForeArm", "LWrist": "LeftHand",
        "RShoulder": "RightArm", "RElbow": "RightForeArm", "RWrist": "RightHand",
    },
    "anatomical": {
        "Hip": "Hips", "RHip": "RightHip", "RKnee": "RightKnee", "RFoot": "RightAnkle",
        "LHip": "LeftHip", "LKnee": "LeftKnee", "LFoot": "LeftAnkle",
        "Spine": "Chest", "Thorax": "Chest2", "Neck/Nose": "Neck", "Head": "Head",
        "LShoulder": "LeftShoulder", "LElbow": "LeftElbow", "LWrist": "LeftWrist",
        "RShoulder": "RightShoulder", "RElbow": "RightElbow", "RWrist": "RightWrist",
    },
}

_AXES = {"X": 0, "Y": 1, "Z": 2}
_VALID_CHANNELS = {f"{a}{k}" for a in "XYZ" for k in ("position", "rotation")}


def euler_to_matrix(angles_deg, order: str) -> np.ndarray:
    """Rotation matrices for intrinsic Euler angles applied in ``order``.

    Args:
        angles_deg: array ``(..., len(order))`` of angles in degrees, one per
            axis letter of ``order``.
        order: axis letters, e.g. ``"ZXY"``: ``R = Rz(a0) @ Rx(a1) @ Ry(a2)``.

    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    if angles.shape[-1:] != (len(order),):
        raise ValueError(f"angles: expected shape (..., {len(order)}) for order {order!r}, got {angles.shape}")
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for i, axis in enumerate(order.upper()):
        out = out @ _axis_rotation(angles[..., i], _AXES[axis])
    return out


def _axis_rotation(theta, axis: int) -> np.ndarray:
    """Right-handed rotation by ``theta`` (radians, array) about axis 0/1/2."""
    c, s = np.cos(theta), np.sin(theta)
    r = np.zeros(np.shape(theta) + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[..., axis, axis] = 1.0
    r[..., i, i] = c
    r[..., j, j] = c
    r[..., i, j] = -s
    r[..., j, i] = s
    return r


@dataclass
class BVHMotion:
    """A parsed BVH clip. Lengths are in the file's units, angles in degrees.

    Attributes:
        path: the file it was read from.
        joint_names: joint names in file order; end sites are ``<parent>_end``.
        parents: parent index of each joint (``-1`` for roots); parents
            precede children.
        offsets: ``(J, 3)`` OFFSET of each joint in its parent's frame.
        channels: per joint, the tuple of its channel names in file order
            (empty for end sites).
        motion: ``(T, C)`` raw channel values, columns in file order.
        frame_time: seconds per frame.
        position_channels: ``"replace"`` or ``"add"`` (see module docstring).
        positions: ``(T, J, 3)`` global joint positions from forward
            kinematics, in the file's units and axes.
    """

    path: str
    joint_names: tuple
    parents: np.ndarray
    offsets: np.ndarray
    channels: tuple
    motion: np.ndarray
    frame_time: float
    position_channels: str = "replace"
    positions: np.ndarray | None = None

    def __post_init__(self):
        if self.position_channels not in ("replace", "add"):
            raise ValueError(
                f"position_channels must be 'replace' or 'add', got {self.position_channels!r}"
            )
        if self.positions is None:
            self.positions = self.forward_kinematics(self.motion)

    # -- basic properties -------------------------------------------------
    @property
    def fps(self) -> float:
        """Frames per second, ``1 / frame_time``.

        Writers print the frame time with few digits (CMU: ``.0083333`` for
        120 Hz), so a rate within 0.01 % of a whole number is rounded to it.
        """
        rate = 1.0 / self.frame_time
        return float(round(rate)) if abs(rate - round(rate)) < 1e-4 * rate else rate

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def end_sites(self) -> np.ndarray:
        """Boolean mask of the joints that are End Sites."""
        return np.array([n.endswith("_end") and not c for n, c in zip(self.joint_names, self.channels)])

    def index(self, name: str) -> int:
        """Index of a joint by name (``ValueError`` listing the joints otherwise)."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(
                f"{self.path}: no joint named {name!r}; joints are {list(self.joint_names)}"
            ) from None

    # -- kinematics -------------------------------------------------------
    def forward_kinematics(self, motion) -> np.ndarray:
        """Global joint positions ``(T, J, 3)`` for channel values ``(T, C)``."""
        try:
            motion = np.asarray(motion, dtype=np.float64)
        except (TypeError, ValueError) as exc:  # ragged rows, strings
            raise ValueError(f"{self.path}: motion must be a numeric (T, C) array: {exc}") from None
        n_channels = sum(len(c) for c in self.channels)
        if motion.ndim != 2 or motion.shape[1] != n_channels:
            raise ValueError(
                f"{self.path}: motion must have shape (T, {n_channels}) (one column per channel of "
                f"{self.num_joints} joints), got {motion.shape}"
            )
        if not np.all(np.isfinite(motion)):
            r, c = np.argwhere(~np.isfinite(motion))[0]
            raise ValueError(f"{self.path}: motion frame {r}, column {c}: NaN or infinite value")
        n = motion.shape[0]
        rot = np.empty((n, self.num_joints, 3, 3))
        pos = np.empty((n, self.num_joints, 3))
        col = 0
        for j, (parent, chans) in enumerate(zip(self.parents, self.channels)):
            trans = np.broadcast_to(self.offsets[j], (n, 3)).copy()
            local = None
            rot_order, rot_cols = "", []
            for name in chans:
                axis, kind = name[0], name[1:]
                if kind == "position":
                    if self.position_channels == "replace":
                        trans[:, _AXES[axis]] = motion[:, col]
                    else:
                        trans[:, _AXES[axis]] += motion[:, col]
                else:
                    rot_order += axis
                    rot_cols.append(col)
                col += 1
            if rot_order:
                local = euler_to_matrix(motion[:, rot_cols], rot_order)
            if parent < 0:
                pos[:, j] = trans
                rot[:, j] = np.eye(3) if local is None else local
            else:
                pos[:, j] = pos[:, parent] + np.einsum("tij,tj->ti", rot[:, parent], trans)
                rot[:, j] = rot[:, parent] if local is None else rot[:, parent] @ local
        return pos

    def resample(self, fps: float) -> "BVHMotion":
        """A new clip at ``fps`` frames per second.

        The channel values are interpolated linearly in time (rotation
        channels after unwrapping across +-180 degrees) and forward
        kinematics is run again, so bone lengths stay exact. The clip keeps its
        duration: frames at ``0, 1/fps, ...`` up to the last original frame.
        """
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps}")
        t_old = np.arange(self.num_frames) / self.fps
        t_new = np.arange(0.0, t_old[-1] + 1e-9, 1.0 / fps)
        rot_cols = np.array([c[1:] == "rotation" for chans in self.channels for c in chans], dtype=bool)
        values = self.motion.copy()
        values[:, rot_cols] = np.unwrap(values[:, rot_cols], period=360.0, axis=0)
        new = np.stack([np.interp(t_new, t_old, values[:, c]) for c in range(values.shape[1])], axis=1)
        return BVHMotion(
            path=self.path, joint_names=self.joint_names, parents=self.parents,
            offsets=self.offsets, channels=self.channels, motion=new.reshape(len(t_new), -1),
            frame_time=1.0 / fps, position_channels=self.position_channels,
        )

    # -- CMU -> Human3.6M ---------------------------------------------------
    def cmu_convention(self) -> str:
        """Which CMU naming convention the file follows (``"cgspeed"``/``"anatomical"``).

        Raises:
            ValueError: when neither joint set is present.
        """
        names = set(self.joint_names)
        for conv, mapping in CMU_TO_H36M17.items():
            if set(mapping.values()) <= names:
                return conv
        missing = {c: sorted(set(m.values()) - names) for c, m in CMU_TO_H36M17.items()}
        raise ValueError(
            f"{self.path}: not a CMU skeleton; joints missing for each known naming "
            f"convention: {missing}. Pass mapping={{h36m_joint: bvh_joint}} and unit_scale."
        )

    def to_h36m17(self, unit_scale: float | None = None, fps: float | None = None,
                  mapping: dict | None = None, world: bool = True) -> np.ndarray:
        """Human3.6M 17-joint positions ``(T, 17, 3)`` in millimetres.

        Args:
            unit_scale: millimetres per file unit. ``None``: the CMU unit,
                :data:`CMU_MM_PER_UNIT` (25.4 / 0.45).
            fps: resample to this frame rate first (e.g. ``50`` for the
                Human3.6M rate); ``None`` keeps the file's rate (120 for CMU).
            mapping: ``{h36m17_joint_name: bvh_joint_name}`` for all 17 joints;
                ``None`` picks the CMU convention found in the file.
            world: convert the y-up BVH axes to the kit's z-up world frame
                (``(x, y, z) -> (x, -z, y)``); ``False`` keeps the file's axes.

        Returns:
            ``float64`` array ``(T, 17, 3)`` in ``pose_lab.skeletons.H36M17``
            joint order.
        """
        from pose_lab.skeletons import H36M17

        if mapping is None:
            mapping = CMU_TO_H36M17[self.cmu_convention()]
        missing = [n for n in H36M17.joint_names if n not in mapping]
        if missing:
            raise ValueError(f"mapping: no BVH joint given for H36M-17 joints {missing}")
        scale = CMU_MM_PER_UNIT if unit_scale is None else float(unit_scale)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"unit_scale must be a positive number of mm per unit, got {unit_scale}")
        clip = self if fps is None else self.resample(fps)
        idx = [clip.index(mapping[n]) for n in H36M17.joint_names]
        out = clip.positions[:, idx, :] * scale
        if world:
            out = out @ BVH_TO_WORLD.T
        return out


# -- parsing ------------------------------------------------------------------
class _Parser:
    def __init__(self, path: str, lines: list):
        self.path = path
        self.lines = lines
        self.i = 0  # index of the next line

    def error(self, lineno: int, problem: str):
        return ValueError(f"{self.path}:{lineno}: {problem}")

    def next_tokens(self, what: str):
        """Next non-empty line as (line number, tokens); error at end of file."""
        while self.i < len(self.lines):
            self.i += 1
            tokens = self.lines[self.i - 1].split()
            if tokens:
                return self.i, tokens
        raise self.error(len(self.lines), f"unexpected end of file while reading {what}")

    def parse(self, position_channels: str) -> BVHMotion:
        lineno, tok = self.next_tokens("the HIERARCHY header")
        if tok[0].upper() != "HIERARCHY":
            raise self.error(lineno, f"expected 'HIERARCHY', found {' '.join(tok)!r}")
        names, parents, offsets, channels = [], [], [], []
        lineno, tok = self.next_tokens("ROOT")
        while tok[0].upper() == "ROOT":
            self.parse_joint(lineno, tok, -1, names, parents, offsets, channels)
            lineno, tok = self.next_tokens("MOTION")
        if not names:
            raise self.error(lineno, f"expected 'ROOT <name>', found {' '.join(tok)!r}")
        if tok[0] == "}":
            raise self.error(lineno, "unbalanced braces: '}' without a matching '{'")
        if tok[0].upper() != "MOTION":
            raise self.error(lineno, f"expected 'MOTION' after the hierarchy, found {' '.join(tok)!r}")
        n_frames, frame_time, first = self.parse_motion_header()
        n_channels = sum(len(c) for c in channels)
        motion = self.parse_frames(first, n_frames, n_channels, names, channels)
        return BVHMotion(
            path=self.path, joint_names=tuple(names), parents=np.array(parents, dtype=int),
            offsets=np.array(offsets, dtype=np.float64).reshape(-1, 3), channels=tuple(channels),
            motion=motion, frame_time=frame_time, position_channels=position_channels,
        )

    def parse_joint(self, lineno, tok, parent, names, parents, offsets, channels):
        """Parse a ROOT/JOINT/End Site block starting at its header line."""
        kind = tok[0].upper()
        if kind == "END":
            if parent < 0:
                raise self.error(lineno, "'End Site' outside a joint")
            base = f"{names[parent]}_end"
            name, k = base, 1
            while name in names:
                k += 1
                name = f"{base}{k}"
        else:
            if len(tok) < 2:
                raise self.error(lineno, f"{tok[0]} without a name")
            name = " ".join(tok[1:])
            if name in names:
                raise self.error(lineno, f"duplicate joint name {name!r}")
        open_no, open_tok = self.next_tokens(f"the '{{' of {name!r}")
        if open_tok != ["{"]:
            raise self.error(open_no, f"expected '{{' after {' '.join(tok)!r}, found {' '.join(open_tok)!r}")
        me = len(names)
        names.append(name)
        parents.append(parent)
        offsets.append(None)
        channels.append(None)
        while True:
            try:
                ln, t = self.next_tokens(f"the '}}' of {name!r}")
            except ValueError:
                raise self.error(
                    len(self.lines),
                    f"unbalanced braces: end of file inside joint {name!r} (opened at line {lineno})",
                ) from None
            key = t[0].upper()
            if key == "}":
                break
            if key == "OFFSET":
                if len(t) != 4:
                    raise self.error(ln, f"OFFSET of {name!r} has {len(t) - 1} values, expected 3")
                try:
                    off = [float(v) for v in t[1:]]
                except ValueError:
                    raise self.error(ln, f"OFFSET of {name!r} is not numeric: {' '.join(t[1:])!r}") from None
                if not np.all(np.isfinite(off)):
                    raise self.error(ln, f"OFFSET of {name!r} has a NaN or infinite value")
                offsets[me] = off
            elif key == "CHANNELS":
                if kind == "END":
                    raise self.error(ln, f"End Site of {names[parent]!r} cannot have CHANNELS")
                try:
                    count = int(t[1])
                except (IndexError, ValueError):
                    raise self.error(ln, f"CHANNELS of {name!r} must start with a count") from None
                listed = t[2:]
                if count != len(listed):
                    raise self.error(
                        ln, f"CHANNELS of {name!r} declares {count} channels but lists {len(listed)}"
                    )
                bad = [c for c in listed if c not in _VALID_CHANNELS]
                if bad:
                    raise self.error(
                        ln, f"unknown channel(s) {bad} for {name!r}; expected "
                        "[XYZ]position or [XYZ]rotation",
                    )
                if len(set(listed)) != len(listed):
                    raise self.error(ln, f"repeated channel in CHANNELS of {name!r}")
                channels[me] = tuple(listed)
            elif key in ("JOINT", "END"):
                if kind == "END":
                    raise self.error(ln, f"End Site of {names[parent]!r} cannot have children")
                self.parse_joint(ln, t, me, names, parents, offsets, channels)
            elif key == "MOTION" or key == "ROOT":
                raise self.error(
                    ln, f"unbalanced braces: {t[0]!r} reached inside joint {name!r} (opened at "
                    f"line {lineno}) -- a '}}' is missing",
                )
            else:
                raise self.error(ln, f"unexpected {' '.join(t)!r} inside joint {name!r}")
        if offsets[me] is None:
            raise self.error(lineno, f"joint {name!r} has no OFFSET (its block closes at line {ln})")
        if channels[me] is None:
            if kind != "END":
                raise self.error(lineno, f"joint {name!r} has no CHANNELS (its block closes at line {ln})")
            channels[me] = ()

    def parse_motion_header(self):
        ln, t = self.next_tokens("'Frames:'")
        line = " ".join(t)
        if not line.lower().startswith("frames:"):
            raise self.error(ln, f"expected 'Frames: <count>', found {line!r}")
        try:
            n_frames = int(line.split(":", 1)[1])
        except ValueError:
            raise self.error(ln, f"frame count is not an integer: {line!r}") from None
        if n_frames < 1:
            raise self.error(ln, f"frame count must be at least 1, got {n_frames}")
        ln, t = self.next_tokens("'Frame Time:'")
        line = " ".join(t)
        if not line.lower().startswith("frame time:"):
            raise self.error(ln, f"expected 'Frame Time: <seconds>', found {line!r}")
        try:
            frame_time = float(line.split(":", 1)[1])
        except ValueError:
            raise self.error(ln, f"frame time is not a number: {line!r}") from None
        if not np.isfinite(frame_time) or frame_time <= 0:
            raise self.error(ln, f"frame time must be a positive number of seconds, got {frame_time}")
        return n_frames, frame_time, self.i

    def parse_frames(self, first, n_frames, n_channels, names, channels):
        rows, linenos = [], []
        for k in range(first, len(self.lines)):
            tokens = self.lines[k].split()
            if not tokens:
                continue
            if len(rows) == n_frames:
                raise self.error(k + 1, f"more frame lines than 'Frames: {n_frames}' declares")
            if len(tokens) != n_channels:
                raise self.error(
                    k + 1, f"frame {len(rows)} has {len(tokens)} values, expected {n_channels} "
                    "(the total of all CHANNELS declarations)",
                )
            rows.append(tokens)
            linenos.append(k + 1)
        if len(rows) < n_frames:
            raise self.error(
                len(self.lines), f"file ends after {len(rows)} frames, 'Frames:' declares {n_frames}"
            )
        try:
            motion = np.array(rows, dtype=np.float64).reshape(n_frames, n_channels)
        except ValueError:
            for r, (tokens, ln) in enumerate(zip(rows, linenos)):
                for tok in tokens:
                    try:
                        float(tok)
                    except ValueError:
                        raise self.error(ln, f"frame {r}: value {tok!r} is not a number") from None
            raise
        bad = ~np.isfinite(motion)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            labels = [f"{n}.{ch}" for n, chans in zip(names, channels) for ch in chans]
            raise self.error(
                linenos[r], f"frame {r}: NaN or infinite value in channel {labels[c]!r}"
            )
        return motion


def load_bvh(path, position_channels: str = "replace") -> BVHMotion:
    """Read a BVH file and run forward kinematics.

    Args:
        path: the ``.bvh`` file.
        position_channels: ``"replace"`` (position channels replace the
            joint's OFFSET, the common convention) or ``"add"``.

    Returns:
        :class:`BVHMotion` with ``positions`` ``(T, J, 3)`` in the file's units.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a malformed file; the message is ``<path>:<line>: <problem>``
            (unbalanced braces, missing OFFSET or CHANNELS, wrong number of
            values on a MOTION line, NaN, ...).

    Example:
        >>> clip = load_bvh("data/cmu/131/131_01.bvh")          # doctest: +SKIP
        >>> clip.fps, clip.positions.shape                         # doctest: +SKIP
        (120.0, (994, 38, 3))
        >>> clip.to_h36m17(fps=50).shape                           # doctest: +SKIP
        (414, 17, 3)
    """
    path = os.fspath(path)
    if position_channels not in ("replace", "add"):
        raise ValueError(f"position_channels must be 'replace' or 'add', got {position_channels!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"BVH file not found: {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    return _Parser(path, lines).parse(position_channels)
