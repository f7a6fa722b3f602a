"""A kinematic human on the Human3.6M skeleton: bodies, joint angles, forward kinematics.

Everything here is NumPy and in **millimetres / radians**.

Frames and conventions
----------------------
* World: ``z`` up, ground plane ``z = 0`` (the Human3.6M world frame, where
  the four cameras hang about 1.5 m above the floor around the origin).
* Body (and every segment frame at rest): ``x`` forward, ``y`` to the
  subject's left, ``z`` up. At rest the subject stands upright facing ``+x``,
  arms hanging, feet flat.
* Forward kinematics runs on the full 32-joint Human3.6M tree
  (:data:`pose_lab.skeletons.H36M32`); the 17 evaluation joints are selected
  with :data:`pose_lab.skeletons.H36M17_FROM_H36M32`. Each joint ``j`` carries
  a *segment frame* ``G_j`` (world rotation of the bone that ends at ``j``)::

      G_j = G_parent(j) @ R_j            pos_j = pos_parent(j) + G_j @ offset_j

  where ``R_j`` is the local joint rotation built from the anatomical angles in
  :data:`DOF_NAMES` and ``offset_j`` the rest offset of the bone (mm). Bone
  lengths are therefore constant by construction.

Anatomical angles (``DOF_NAMES``, limits in :data:`DOF_LIMITS`)
---------------------------------------------------------------
* ``*_flex``: flexion (forward bend) about the segment's lateral axis; hips,
  shoulders, spine and neck flex forward, the knee flexes backward only
  (``knee >= 0``), the elbow forward only (``elbow >= 0``); ``ankle`` > 0 is
  plantar flexion (toes down).
* ``*_abd``: abduction (away from the midline) about the forward axis.
* ``*_rot``: internal rotation about the bone axis; ``*_twist`` / ``*_bend``:
  axial twist / lateral bend of spine and neck (positive bends to the right).
* Euler order ``R = R_flex @ R_abd @ R_rot`` (intrinsic: flex, then abduct,
  then rotate about the bone itself).
* Root: position ``(x, y, z)`` of the pelvis in mm and ``(yaw, pitch, roll)``
  with ``G_0 = Rz(yaw) @ Ry(pitch) @ Rx(roll)``; ``yaw`` is the heading
  (0 = facing ``+x``), ``pitch > 0`` tilts the pelvis forward.

Anthropometry
-------------
Segment lengths are fractions of stature ``H`` from Drillis & Contini (1966)
as tabulated in Winter, *Biomechanics and Motor Control of Human Movement*
(fig. 4.1): upper arm 0.186 H, forearm 0.146 H, hand 0.108 H, thigh 0.245 H,
shank 0.246 H, ankle height 0.039 H, foot length 0.152 H, shoulder (acromion)
height 0.818 H, hip height 0.530 H. Joint-centre widths (hip joints 0.15 H apart,
shoulder joints 0.18 H apart) and the spine/neck split follow the Human3.6M
skeleton (its S1 bones: pelvis 133 mm, spine 233 + 257 mm, neck 121 mm, head
115 mm). Each subject scales every ratio by its own factor
``1 + N(0, 0.025)`` (left and right identical). Stature is drawn per sex
(adult means 1760 / 1630 mm, s.d. 70 / 65 mm) and clipped to 1500-1950 mm.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from pose_lab.data.h36m import TEST_SUBJECTS, TRAIN_SUBJECTS
from pose_lab.skeletons import H36M17_FROM_H36M32, H36M32

__all__ = [
    "Body",
    "sample_body",
    "subject_body",
    "SUBJECT_SEEDS",
    "SUBJECT_SEX",
    "TRAIN_SUBJECTS",
    "TEST_SUBJECTS",
    "ALL_SUBJECTS",
    "HEIGHT_RANGE_MM",
    "DOF_NAMES",
    "DOF_INDEX",
    "DOF_LIMITS",
    "NEUTRAL_POSE",
    "neutral_pose",
    "clip_to_limits",
    "forward_kinematics",
    "joints17",
    "penetration_report",
    "rot_x",
    "rot_y",
    "rot_z",
]

#: Stature range of the synthetic adults, mm.
HEIGHT_RANGE_MM = (1500.0, 1950.0)

#: Human3.6M protocol subjects (defined once, in :mod:`pose_lab.data.h36m`).
ALL_SUBJECTS = TRAIN_SUBJECTS + TEST_SUBJECTS

#: Fixed body seeds: the same subject always gets the same body.
SUBJECT_SEEDS = {"S1": 1001, "S2": 1002, "S3": 1003, "S4": 1004, "S5": 1005, "S6": 1006,
                 "S7": 1007, "S8": 1008, "S9": 1009, "S10": 1010, "S11": 1011}

#: Sex of the real Human3.6M actors (used only to pick the stature distribution).
SUBJECT_SEX = {"S1": "F", "S5": "F", "S6": "M", "S7": "F", "S8": "M", "S9": "M", "S11": "M"}

_STATURE = {"M": (1760.0, 70.0), "F": (1630.0, 65.0)}

# ---------------------------------------------------------------------------
# rotations (vectorised, angles of any shape -> (..., 3, 3))
# ---------------------------------------------------------------------------


def rot_x(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def rot_y(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def rot_z(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


# ---------------------------------------------------------------------------
# degrees of freedom
# ---------------------------------------------------------------------------
_D = np.deg2rad
#: (name, lower, upper) in radians. Ranges are the usual clinical active ranges
#: of motion, slightly narrowed where a wide range gives implausible poses.
_DOFS = (
    ("spine_flex", _D(-20), _D(50)), ("spine_bend", _D(-25), _D(25)), ("spine_twist", _D(-30), _D(30)),
    ("chest_flex", _D(-15), _D(35)), ("chest_bend", _D(-20), _D(20)), ("chest_twist", _D(-25), _D(25)),
    ("neck_flex", _D(-40), _D(45)), ("neck_bend", _D(-35), _D(35)), ("neck_twist", _D(-70), _D(70)),
    ("head_flex", _D(-20), _D(20)),
    ("l_hip_flex", _D(-25), _D(125)), ("l_hip_abd", _D(-20), _D(45)), ("l_hip_rot", _D(-35), _D(35)),
    ("l_knee", _D(0), _D(150)), ("l_ankle", _D(-25), _D(45)),
    ("r_hip_flex", _D(-25), _D(125)), ("r_hip_abd", _D(-20), _D(45)), ("r_hip_rot", _D(-35), _D(35)),
    ("r_knee", _D(0), _D(150)), ("r_ankle", _D(-25), _D(45)),
    ("l_clav_elev", _D(-8), _D(25)), ("l_clav_prot", _D(-15), _D(15)),
    ("l_sh_flex", _D(-50), _D(175)), ("l_sh_abd", _D(-30), _D(175)), ("l_sh_rot", _D(-70), _D(80)),
    ("l_elbow", _D(0), _D(145)), ("l_wrist", _D(-60), _D(60)),
    ("r_clav_elev", _D(-8), _D(25)), ("r_clav_prot", _D(-15), _D(15)),
    ("r_sh_flex", _D(-50), _D(175)), ("r_sh_abd", _D(-30), _D(175)), ("r_sh_rot", _D(-70), _D(80)),
    ("r_elbow", _D(0), _D(145)), ("r_wrist", _D(-60), _D(60)),
)
DOF_NAMES = tuple(d[0] for d in _DOFS)
DOF_INDEX = {n: i for i, n in enumerate(DOF_NAMES)}
#: ``(len(DOF_NAMES), 2)`` lower/upper limit of each angle, radians.
DOF_LIMITS = np.array([[d[1], d[2]] for d in _DOFS], dtype=np.float64)
DOF_LIMITS.setflags(write=False)

#: Relaxed standing: arms hang slightly away from the body, elbows and knees
#: slightly bent.
_NEUTRAL = {"l_sh_abd": 0.14, "r_sh_abd": 0.14, "l_elbow": 0.2, "r_elbow": 0.2,
            "l_knee": 0.03, "r_knee": 0.03, "l_sh_rot": 0.1, "r_sh_rot": 0.1}


def neutral_pose(**overrides) -> np.ndarray:
    """The relaxed standing angle vector ``(len(DOF_NAMES),)`` with optional overrides.

    Example:
        >>> p = neutral_pose(l_elbow=1.5)   # left forearm horizontal
    """
    v = np.zeros(len(DOF_NAMES))
    for k, val in {**_NEUTRAL, **overrides}.items():
        if k not in DOF_INDEX:
            raise ValueError(f"unknown joint angle {k!r}; expected one of {list(DOF_NAMES)}")
        v[DOF_INDEX[k]] = val
    return v


NEUTRAL_POSE = neutral_pose()
NEUTRAL_POSE.setflags(write=False)


def clip_to_limits(dofs) -> np.ndarray:
    """Clip an angle array ``(..., len(DOF_NAMES))`` to :data:`DOF_LIMITS`."""
    dofs = np.asarray(dofs, dtype=np.float64)
    if dofs.shape[-1:] != (len(DOF_NAMES),):
        raise ValueError(f"dofs: expected shape (..., {len(DOF_NAMES)}), got {dofs.shape}")
    return np.clip(dofs, DOF_LIMITS[:, 0], DOF_LIMITS[:, 1])


# ---------------------------------------------------------------------------
# bodies
# ---------------------------------------------------------------------------
# Segment ratios (fraction of stature) -- see the module docstring.
_RATIOS = {
    "ankle_height": 0.039,
    "shank": 0.246,
    "thigh": 0.245,
    "hip_half_width": 0.074,   # pelvis centre -> hip joint, lateral
    "hip_drop": 0.022,         # hip joints sit below the pelvis centre
    "lumbar": 0.127,           # pelvis -> "Spine" (H36M Spine1)
    "thoracic": 0.140,         # "Spine" -> "Thorax" (H36M Neck, shoulder level)
    "neck": 0.0696,            # "Thorax" -> "Neck/Nose" (chin/nose level)
    "head": 0.068,             # "Neck/Nose" -> "Head" (forehead)
    "shoulder_half_width": 0.091,
    "shoulder_drop": 0.010,
    "upper_arm": 0.186,
    "forearm": 0.146,
    "hand": 0.108,
    "foot_length": 0.152,
}
# Capsule radii (fraction of stature), used for self-penetration checks,
# self-occlusion and by the renderer. Keys are (joint_a, joint_b) in H36M32.
_CAPSULE_RATIOS = (
    ("pelvis", 1, 6, 0.060),
    ("lower_torso", 0, 12, 0.070),
    ("upper_torso", 12, 13, 0.076),
    ("shoulders", 17, 25, 0.034),
    ("neck", 13, 14, 0.028),
    ("head", 14, 15, 0.052),
    ("r_thigh", 1, 2, 0.048),
    ("r_shank", 2, 3, 0.032),
    ("r_foot", 3, 4, 0.022),
    ("r_toes", 4, 5, 0.016),
    ("l_thigh", 6, 7, 0.048),
    ("l_shank", 7, 8, 0.032),
    ("l_foot", 8, 9, 0.022),
    ("l_toes", 9, 10, 0.016),
    ("l_upper_arm", 17, 18, 0.030),
    ("l_forearm", 18, 19, 0.023),
    ("l_hand", 19, 23, 0.017),
    ("r_upper_arm", 25, 26, 0.030),
    ("r_forearm", 26, 27, 0.023),
    ("r_hand", 27, 31, 0.017),
)


@dataclass(frozen=True)
class Body:
    """One synthetic subject: stature, segment lengths, capsule radii, motion style.

    Attributes:
        name: subject name (e.g. ``"S9"``).
        seed: the seed it was drawn from (same seed -> same body).
        sex: ``"M"`` or ``"F"`` (selects the stature distribution only).
        height_mm: stature (floor to top of head), mm.
        segments: segment lengths and widths in mm (keys as in the module's
            ``_RATIOS``: ``thigh``, ``shank``, ``upper_arm``, ...).
        offsets: ``(32, 3)`` rest offset of each H36M32 joint from its parent,
            in the parent's segment frame (mm); row 0 is zero.
        capsules: ``((name, joint_a, joint_b, radius_mm), ...)`` over H36M32
            indices: the body volume as capsules (for occlusion, penetration
            checks and rendering).
        style: per-subject motion style factors (speed, arm swing, posture).
    """

    name: str
    seed: int
    sex: str
    height_mm: float
    segments: dict = field(repr=False)
    offsets: np.ndarray = field(repr=False)
    capsules: tuple = field(repr=False)
    style: dict = field(repr=False)

    @property
    def head_radius(self) -> float:
        """Radius of the head sphere used for face keypoints, mm."""
        return 0.065 * self.height_mm

    def capsule(self, name: str):
        """``(joint_a, joint_b, radius_mm)`` of a named capsule."""
        for n, a, b, r in self.capsules:
            if n == name:
                return a, b, r
        raise ValueError(f"no capsule {name!r}; capsules are {[c[0] for c in self.capsules]}")

    def bone_lengths17(self) -> np.ndarray:
        """Rest bone lengths of the 16 H36M-17 bones (parent order), mm."""
        j = forward_kinematics(self, NEUTRAL_POSE[None])[0]
        from pose_lab.skeletons import H36M17

        return H36M17.bone_lengths(joints17(j))


def _offsets(seg: dict) -> np.ndarray:
    off = np.zeros((32, 3))
    hw, hd = seg["hip_half_width"], seg["hip_drop"]
    for sign, (hip, knee, ankle, toe, site) in ((-1, (1, 2, 3, 4, 5)), (+1, (6, 7, 8, 9, 10))):
        off[hip] = (0.0, sign * hw, -hd)
        off[knee] = (0.0, 0.0, -seg["thigh"])
        off[ankle] = (0.0, 0.0, -seg["shank"])
        # ball of the foot: forward of the ankle, on the floor when the foot is flat
        off[toe] = (0.72 * seg["foot_length"], 0.0, -seg["ankle_height"])
        off[site] = (0.22 * seg["foot_length"], 0.0, 0.0)
    # 11 "Spine" duplicates the hips (zero-length bone), as in the real data
    off[12] = (0.0, 0.0, seg["lumbar"])
    off[13] = (0.0, 0.0, seg["thoracic"])
    n = seg["neck"]
    off[14] = (0.36 * n, 0.0, 0.933 * n)       # forward-up to chin/nose level
    off[15] = (-0.05 * seg["head"], 0.0, 0.9987 * seg["head"])
    sw, sd = seg["shoulder_half_width"], seg["shoulder_drop"]
    for sign, (clav, arm, fore, hand, thumb, thumb_site, wend, wsite) in (
        (+1, (16, 17, 18, 19, 20, 21, 22, 23)),
        (-1, (24, 25, 26, 27, 28, 29, 30, 31)),
    ):
        off[clav] = off[13]  # clavicle base duplicates the thorax (child of "Spine")
        off[arm] = (0.0, sign * sw, -sd)
        off[fore] = (0.0, 0.0, -seg["upper_arm"])
        off[hand] = (0.0, 0.0, -seg["forearm"])
        h = seg["hand"]
        off[thumb] = (0.22 * h, -sign * 0.05 * h, -0.25 * h)   # thumb base: forward (palm inward)
        off[thumb_site] = (0.25 * h, 0.0, -0.22 * h)
        off[wend] = (0.0, 0.0, -0.45 * h)                      # middle of the hand
        off[wsite] = (0.0, 0.0, -0.55 * h)                     # finger tips
    return off


def _seed_int(seed) -> int:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return int(seed)
    if isinstance(seed, str):
        return zlib.crc32(seed.encode("utf-8"))
    raise ValueError(f"seed must be a non-negative int or a string, got {seed!r}")


def sample_body(seed=0, name: str | None = None, sex: str | None = None,
                height_mm: float | None = None) -> Body:
    """Draw an adult body from anthropometric statistics, deterministically.

    Args:
        seed: non-negative int (or a string, hashed with CRC32); same seed ->
            identical body.
        name: subject name stored on the body (default ``"body<seed>"``).
        sex: ``"M"``/``"F"``; drawn from the seed when ``None``.
        height_mm: force the stature (mm, within :data:`HEIGHT_RANGE_MM`);
            drawn when ``None``.

    Returns:
        a :class:`Body`.
    """
    s = _seed_int(seed)
    rng = np.random.default_rng(np.random.SeedSequence([s, 0xB0D7]))
    draw_sex = "M" if rng.random() < 0.5 else "F"
    sex = draw_sex if sex is None else str(sex).upper()
    if sex not in _STATURE:
        raise ValueError(f"sex must be 'M' or 'F', got {sex!r}")
    mean, sd = _STATURE[sex]
    h_draw = float(np.clip(rng.normal(mean, sd), *HEIGHT_RANGE_MM))
    if height_mm is None:
        H = h_draw
    else:
        H = float(height_mm)
        if not HEIGHT_RANGE_MM[0] <= H <= HEIGHT_RANGE_MM[1]:
            raise ValueError(f"height_mm must be within {HEIGHT_RANGE_MM} mm, got {height_mm}")
    factors = np.exp(rng.normal(0.0, 0.025, size=len(_RATIOS)))
    seg = {k: float(r * f * H) for (k, r), f in zip(_RATIOS.items(), factors)}
    # keep stature consistent: rescale the vertical chain so that the head top
    # (Head joint + head capsule radius) lands at H when standing.
    cap_r = {n: rr * H * float(np.exp(rng.normal(0.0, 0.03))) for n, _, _, rr in _CAPSULE_RATIOS}
    chain = ("ankle_height", "shank", "thigh", "hip_drop", "lumbar", "thoracic", "neck", "head")
    vertical = (seg["ankle_height"] + seg["shank"] + seg["thigh"] + seg["hip_drop"] + seg["lumbar"]
                + seg["thoracic"] + 0.933 * seg["neck"] + 0.9987 * seg["head"] + cap_r["head"])
    k = H / vertical
    for c in chain:
        seg[c] *= k
    capsules = tuple((n, a, b, float(cap_r[n])) for n, a, b, _ in _CAPSULE_RATIOS)
    style = {
        "speed": float(np.exp(rng.normal(0.0, 0.08))),       # gait speed factor
        "arm_swing": float(np.exp(rng.normal(0.0, 0.2))),    # arm swing amplitude factor
        "lean": float(rng.normal(0.03, 0.03)),               # habitual trunk lean, rad
        "head_tilt": float(rng.normal(0.0, 0.05)),           # habitual head flexion, rad
        "arm_abd": float(rng.normal(0.0, 0.04)),             # habitual arm abduction, rad
        "stance": float(np.exp(rng.normal(0.0, 0.2))),       # stance width factor
        "tempo": float(np.exp(rng.normal(0.0, 0.1))),        # speed of gestures
    }
    return Body(
        name=name if name is not None else f"body{s}",
        seed=s,
        sex=sex,
        height_mm=H,
        segments=seg,
        offsets=_offsets(seg),
        capsules=capsules,
        style=style,
    )


def subject_body(subject: str) -> Body:
    """The fixed body of a named subject (``"S1"`` ... ``"S11"`` or any other name).

    Human3.6M names use :data:`SUBJECT_SEEDS` and the real actor's sex; other
    names are hashed, so ``subject_body(name)`` is always the same body.
    """
    if isinstance(subject, Body):
        return subject
    name = str(subject)
    seed = SUBJECT_SEEDS.get(name, _seed_int(name))
    return sample_body(seed, name=name, sex=SUBJECT_SEX.get(name))


# ---------------------------------------------------------------------------
# forward kinematics
# ---------------------------------------------------------------------------
def _local_rotations(dofs: np.ndarray) -> dict:
    """Local rotation ``R_j`` (``(T, 3, 3)``) for every H36M32 joint that moves."""
    g = lambda n: dofs[:, DOF_INDEX[n]]  # noqa: E731
    R = {}

    def flex_abd_rot(flex, abd, rot):  # intrinsic flex -> abduct -> axial rotation
        return rot_y(flex) @ rot_x(abd) @ rot_z(rot)

    # legs: flexion brings the knee forward (Ry(-f)); abduction outward; knee backward
    R[2] = flex_abd_rot(-g("r_hip_flex"), -g("r_hip_abd"), g("r_hip_rot"))
    R[7] = flex_abd_rot(-g("l_hip_flex"), g("l_hip_abd"), -g("l_hip_rot"))
    R[3] = rot_y(g("r_knee"))
    R[8] = rot_y(g("l_knee"))
    R[4] = rot_y(g("r_ankle"))
    R[9] = rot_y(g("l_ankle"))
    # spine, neck, head: flexion forward (Ry(+f)), bend to the right (Rx(+b))
    R[12] = flex_abd_rot(g("spine_flex"), g("spine_bend"), g("spine_twist"))
    R[13] = flex_abd_rot(g("chest_flex"), g("chest_bend"), g("chest_twist"))
    R[16] = R[13]
    R[24] = R[13]
    R[14] = flex_abd_rot(g("neck_flex"), g("neck_bend"), g("neck_twist"))
    R[15] = rot_y(g("head_flex"))
    # shoulder girdle (elevation up, protraction forward)
    R[17] = rot_x(g("l_clav_elev")) @ rot_z(-g("l_clav_prot"))
    R[25] = rot_x(-g("r_clav_elev")) @ rot_z(g("r_clav_prot"))
    # shoulders: flexion forward (Ry(-f)), abduction outward, internal rotation
    R[18] = flex_abd_rot(-g("l_sh_flex"), g("l_sh_abd"), -g("l_sh_rot"))
    R[26] = flex_abd_rot(-g("r_sh_flex"), -g("r_sh_abd"), g("r_sh_rot"))
    # elbows flex forward only (with neutral shoulder rotation)
    R[19] = rot_y(-g("l_elbow"))
    R[27] = rot_y(-g("r_elbow"))
    R[20] = R[22] = rot_y(-g("l_wrist"))
    R[28] = R[30] = rot_y(-g("r_wrist"))
    return R


def forward_kinematics(body: Body, dofs, root_pos=None, root_rot=None, return_frames: bool = False):
    """Joint positions of the 32-joint skeleton from joint angles.

    Args:
        body: a :class:`Body`.
        dofs: joint angles ``(T, len(DOF_NAMES))`` in radians (not clipped here).
        root_pos: pelvis position ``(T, 3)`` in mm (default: origin).
        root_rot: ``(T, 3)`` = ``(yaw, pitch, roll)`` radians (default zeros).
        return_frames: also return the segment frames.

    Returns:
        joints ``(T, 32, 3)`` in world mm (H36M32 order); with
        ``return_frames`` also ``(T, 32, 3, 3)`` world rotations ``G_j``
        (frame 15 is the head orientation).
    """
    dofs = np.asarray(dofs, dtype=np.float64)
    if dofs.ndim != 2 or dofs.shape[1] != len(DOF_NAMES):
        raise ValueError(f"dofs: expected shape (T, {len(DOF_NAMES)}), got {dofs.shape}")
    T = dofs.shape[0]
    root_pos = np.zeros((T, 3)) if root_pos is None else np.asarray(root_pos, dtype=np.float64)
    root_rot = np.zeros((T, 3)) if root_rot is None else np.asarray(root_rot, dtype=np.float64)
    if root_pos.shape != (T, 3) or root_rot.shape != (T, 3):
        raise ValueError(
            f"root_pos and root_rot: expected shape ({T}, 3), got {root_pos.shape} and {root_rot.shape}"
        )
    R = _local_rotations(dofs)
    G = np.empty((T, 32, 3, 3))
    P = np.empty((T, 32, 3))
    G[:, 0] = rot_z(root_rot[:, 0]) @ rot_y(root_rot[:, 1]) @ rot_x(root_rot[:, 2])
    P[:, 0] = root_pos
    off = body.offsets
    for j in range(1, 32):
        p = H36M32.parents[j]
        G[:, j] = G[:, p] @ R[j] if j in R else G[:, p]
        P[:, j] = P[:, p] + G[:, j] @ off[j]
    return (P, G) if return_frames else P


def joints17(joints32) -> np.ndarray:
    """Select the 17 evaluation joints from ``(..., 32, D)``."""
    joints32 = np.asarray(joints32)
    H36M32.check(joints32, "joints32")
    return joints32[..., list(H36M17_FROM_H36M32), :]


# ---------------------------------------------------------------------------
# self-penetration
# ---------------------------------------------------------------------------
def _point_segment_distance(p, a, b):
    ab = b - a
    t = np.einsum("...i,...i->...", p - a, ab) / np.maximum(np.einsum("...i,...i->...", ab, ab), 1e-9)
    t = np.clip(t, 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def segment_segment_distance(p1, q1, p2, q2):
    """Closest distance between segments ``[p1, q1]`` and ``[p2, q2]`` (broadcast over ``...``).

    Returns ``(distance, s, t)`` with the closest points ``p1 + s (q1 - p1)``
    and ``p2 + t (q2 - p2)``, ``s, t in [0, 1]`` (Ericson, *Real-Time Collision
    Detection*, 5.1.9).
    """
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a = np.einsum("...i,...i->...", d1, d1)
    e = np.einsum("...i,...i->...", d2, d2)
    f = np.einsum("...i,...i->...", d2, r)
    c = np.einsum("...i,...i->...", d1, r)
    b = np.einsum("...i,...i->...", d1, d2)
    a_ = np.maximum(a, 1e-12)
    e_ = np.maximum(e, 1e-12)
    denom = a * e - b * b
    s = np.where(denom > 1e-9 * np.maximum(a * e, 1e-12), np.clip((b * f - c * e) / np.where(denom > 0, denom, 1.0), 0, 1), 0.0)
    t = (b * s + f) / e_
    s = np.where(t < 0, np.clip(-c / a_, 0, 1), np.where(t > 1, np.clip((b - c) / a_, 0, 1), s))
    t = np.clip(t, 0, 1)
    c1 = p1 + s[..., None] * d1
    c2 = p2 + t[..., None] * d2
    return np.linalg.norm(c1 - c2, axis=-1), s, t


def penetration_report(body: Body, joints32) -> dict:
    """Cheap self-penetration checks on ``(T, 32, 3)`` joints (mm).

    Checks, per frame (``True`` = penetration):

    * ``l_hand_torso`` / ``r_hand_torso``: wrist, mid-hand or mid-forearm
      inside the torso capsules (``lower_torso``, ``upper_torso``), or the
      wrist inside the head capsule;
    * ``l_hand_legs`` / ``r_hand_legs``: wrist inside a thigh capsule;
    * ``legs``: the two shanks, the two feet, a foot and the other shank, or
      the two knees closer than the sum of their capsule radii (feet or knees
      passing through each other).

    Returns:
        dict name -> bool array ``(T,)``, plus ``"any"``.
    """
    J = np.asarray(joints32, dtype=np.float64)
    H36M32.check(J, "joints32", 3)
    J = J.reshape((-1, 32, 3))
    caps = {n: (a, b, r) for n, a, b, r in body.capsules}
    out = {}

    def inside(points, cap, slack=1.0):
        a, b, r = caps[cap]
        return _point_segment_distance(points, J[:, a], J[:, b]) < slack * r

    for side, (elbow, wrist, mid) in (("l", (18, 19, 22)), ("r", (26, 27, 30))):
        pts = (J[:, wrist], J[:, mid], 0.5 * (J[:, elbow] + J[:, wrist]))
        torso = np.zeros(len(J), bool)
        for p in pts:
            torso |= inside(p, "lower_torso") | inside(p, "upper_torso")
        torso |= inside(J[:, wrist], "head")
        out[f"{side}_hand_torso"] = torso
        out[f"{side}_hand_legs"] = inside(J[:, wrist], "l_thigh") | inside(J[:, wrist], "r_thigh")

    legs = np.zeros(len(J), bool)
    pairs = (("l_shank", "r_shank"), ("l_foot", "r_foot"), ("l_foot", "r_shank"), ("r_foot", "l_shank"),
             ("l_thigh", "r_shank"), ("r_thigh", "l_shank"))
    for c1, c2 in pairs:
        a1, b1, r1 = caps[c1]
        a2, b2, r2 = caps[c2]
        d, _, _ = segment_segment_distance(J[:, a1], J[:, b1], J[:, a2], J[:, b2])
        legs |= d < 0.95 * (r1 + r2)
    out["legs"] = legs
    out["any"] = np.logical_or.reduce([v for v in out.values()])
    return out
