"""BVH parser, forward kinematics and the CMU -> H36M-17 mapping.

Checked against closed forms written by hand (not against the loader's own
code), the real CMU clips in ``../shared/data`` (skipped when absent), and one
file per kind of breakage.
"""

import math
from pathlib import Path

import numpy as np
import pytest

from pose_lab import runtime
from pose_lab.data.bvh import BVH_TO_WORLD, CMU_MM_PER_UNIT, load_bvh
from pose_lab.skeletons import H36M17


def write(tmp_path, text, name="clip.bvh"):
    path = Path(tmp_path) / name
    path.write_text(text)
    return path


# -- hand-computed forward kinematics ------------------------------------------
# A planar arm: root at (1, 2, 3) rotated by a about Z, a 2-unit upper arm along
# +x rotated by b about Z at the shoulder, a 3-unit forearm, an end site of 1
# unit along +y. All rotations about Z, so positions follow the textbook
# two-link formula with cumulative angles.
ARM = """HIERARCHY
ROOT Base
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Shoulder
  {
    OFFSET 0 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Elbow
    {
      OFFSET 2 0 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT Wrist
      {
        OFFSET 3 0 0
        CHANNELS 1 Zrotation
        End Site
        {
          OFFSET 0 1 0
        }
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.02
1 2 3 {a0} 0 0 0 0 0 {b0} 0 0 {c0}
1 2 3 {a1} 0 0 0 0 0 {b1} 0 0 {c1}
"""


def test_forward_kinematics_matches_two_link_closed_form(tmp_path):
    angles = [(30.0, 45.0, -90.0), (-120.0, 10.0, 60.0)]
    text = ARM
    for t, abc in enumerate(angles):
        for key, value in zip("abc", abc):
            text = text.replace(f"{{{key}{t}}}", str(value))
    clip = load_bvh(write(tmp_path, text))
    assert clip.joint_names == ("Base", "Shoulder", "Elbow", "Wrist", "Wrist_end")
    assert list(clip.parents) == [-1, 0, 1, 2, 3]
    assert clip.fps == 50.0
    for t, (a, b, c) in enumerate(angles):
        a, b, c = map(math.radians, (a, b, c))
        base = np.array([1.0, 2.0, 3.0])
        elbow = base + 2 * np.array([math.cos(a), math.sin(a), 0])
        wrist = elbow + 3 * np.array([math.cos(a + b), math.sin(a + b), 0])
        # End site: +y in the wrist's frame, rotated by a + b + c.
        tip = wrist + np.array([-math.sin(a + b + c), math.cos(a + b + c), 0])
        expected = np.stack([base, base, elbow, wrist, tip])
        np.testing.assert_allclose(clip.positions[t], expected, atol=1e-9)


def test_intrinsic_order_closed_form(tmp_path):
    """Zrotation 90 then Xrotation 90 (intrinsic): Rz(90) @ Rx(90) maps +y to +z... by hand."""
    text = """HIERARCHY
ROOT A
{
  OFFSET 0 0 0
  CHANNELS 2 Zrotation Xrotation
  End Site
  {
    OFFSET 0 1 0
  }
}
MOTION
Frames: 1
Frame Time: 0.01
90 90
"""
    # Rz(90) @ Rx(90) @ (0,1,0): Rx(90) takes +y to +z; Rz(90) leaves +z alone.
    clip = load_bvh(write(tmp_path, text))
    np.testing.assert_allclose(clip.positions[0, 1], [0, 0, 1], atol=1e-12)
    # The other order gives a different point: Rx(90) @ Rz(90) @ +y = Rx(90) @ -x = -x.
    clip2 = load_bvh(write(tmp_path, text.replace("Zrotation Xrotation", "Xrotation Zrotation"), "b.bvh"))
    np.testing.assert_allclose(clip2.positions[0, 1], [-1, 0, 0], atol=1e-12)


def _rot(axis, deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return {
        "X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def _xyz_to_zxy(x, y, z):
    """Angles (z', x', y') with Rz Rx Ry == Rx(x) Ry(y) Rz(z), by hand-derived formulas."""
    r = _rot("X", x) @ _rot("Y", y) @ _rot("Z", z)
    # Rz(a) Rx(b) Ry(c): R[2,1] = sin b, R[0,1] = -sin a cos b, R[1,1] = cos a cos b,
    # R[2,0] = -cos b sin c, R[2,2] = cos b cos c.
    b = math.degrees(math.asin(r[2, 1]))
    a = math.degrees(math.atan2(-r[0, 1], r[1, 1]))
    c = math.degrees(math.atan2(-r[2, 0], r[2, 2]))
    np.testing.assert_allclose(_rot("Z", a) @ _rot("X", b) @ _rot("Y", c), r, atol=1e-12)
    return a, b, c


CHAIN = """HIERARCHY
ROOT Root
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition {order}
  JOINT Mid
  {{
    OFFSET 0 4 1
    CHANNELS 3 {order}
    JOINT Tip
    {{
      OFFSET 2 -1 3
      CHANNELS 3 {order}
      End Site
      {{
        OFFSET 1 1 1
      }}
    }}
  }}
}}
MOTION
Frames: {n}
Frame Time: 0.0083333
{rows}
"""


def test_same_pose_in_zxy_and_xyz_orders_gives_same_positions(tmp_path):
    rng = np.random.default_rng(0)
    xyz_rows, zxy_rows = [], []
    for _ in range(5):
        trans = rng.uniform(-10, 10, 3)
        angles = rng.uniform(-80, 80, (3, 3))  # three joints, (x, y, z) each
        xyz_rows.append(" ".join(f"{v:.10f}" for v in [*trans, *angles.ravel()]))
        zxy = [_xyz_to_zxy(*a) for a in angles]
        zxy_rows.append(" ".join(f"{v:.10f}" for v in [*trans, *np.ravel(zxy)]))
    a = load_bvh(write(tmp_path, CHAIN.format(order="Xrotation Yrotation Zrotation", n=5,
                                              rows="\n".join(xyz_rows)), "xyz.bvh"))
    b = load_bvh(write(tmp_path, CHAIN.format(order="Zrotation Xrotation Yrotation", n=5,
                                              rows="\n".join(zxy_rows)), "zxy.bvh"))
    assert np.ptp(a.positions[:, -1], axis=0).max() > 1.0  # the pose really changes
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)
    assert a.fps == 120.0


def test_position_channels_on_a_non_root_joint(tmp_path):
    text = """HIERARCHY
ROOT R
{
  OFFSET 5 0 0
  CHANNELS 3 Xposition Yposition Zposition
  JOINT Slider
  {
    OFFSET 1 2 3
    CHANNELS 4 Yposition Zrotation Xposition Yrotation
    End Site
    {
      OFFSET 1 0 0
    }
  }
}
MOTION
Frames: 1
Frame Time: 0.1
10 20 30 7 90 -4 0
"""
    replace = load_bvh(write(tmp_path, text))
    # Root: channels replace the offset -> (10, 20, 30). Slider: x replaced by -4,
    # y by 7, z kept (3); rotation Rz(90) then Ry(0) turns the +x end site into +y.
    np.testing.assert_allclose(replace.positions[0], [[10, 20, 30], [6, 27, 33], [6, 28, 33]], atol=1e-9)
    add = load_bvh(write(tmp_path, text, "add.bvh"), position_channels="add")
    np.testing.assert_allclose(add.positions[0], [[15, 20, 30], [12, 29, 33], [12, 30, 33]], atol=1e-9)


def test_resample_keeps_duration_and_interpolates_across_wraparound(tmp_path):
    # Zrotation 170, 175, 180, -175, -170 degrees: a steady turn through +-180.
    rows = "\n".join(f"0 0 0 {(170 + 5 * k + 180) % 360 - 180} 0 0" for k in range(5))
    text = f"""HIERARCHY
ROOT R
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  End Site
  {{
    OFFSET 1 0 0
  }}
}}
MOTION
Frames: 5
Frame Time: 0.01
{rows}
"""
    clip = load_bvh(write(tmp_path, text))
    half = clip.resample(200.0)
    assert half.num_frames == 9 and half.fps == 200.0
    # Angle 170, 175, 180, -175, -170 deg: the midpoint between 180 and -175 is 182.5 (= -177.5),
    # not 2.5 (which a naive interpolation would give).
    expected = math.radians(182.5)
    np.testing.assert_allclose(half.positions[5, 1], [math.cos(expected), math.sin(expected), 0], atol=1e-9)


# -- real CMU clips ----------------------------------------------------------------
def _cmu_clips():
    shared = runtime.shared_data_dir()
    folder = None if shared is None else shared / "cmu_mocap"
    if folder is None or not folder.is_dir():
        pytest.skip("../shared/data/cmu_mocap is absent (real CMU clips are optional)")
    clips = sorted(folder.glob("*.bvh"))
    if not clips:
        pytest.skip(f"no .bvh file in {folder}")
    return clips


def test_cmu_clips_bone_lengths_constant_and_height_plausible():
    for path in _cmu_clips():
        clip = load_bvh(path)
        assert clip.fps == 120.0
        assert clip.cmu_convention() in ("cgspeed", "anatomical")
        joints = clip.to_h36m17()
        assert joints.shape == (clip.num_frames, 17, 3)
        bones = H36M17.bone_lengths(joints)
        assert np.abs(bones - bones.mean(axis=0)).max() < 1.0, path.name  # < 1 mm over time
        # Adult anthropometry in mm: femur 350-520, tibia 330-500, upper arm 230-380.
        femur = bones[0, [H36M17.index("RKnee") - 1, H36M17.index("LKnee") - 1]]
        tibia = bones[0, [H36M17.index("RFoot") - 1, H36M17.index("LFoot") - 1]]
        humerus = bones[0, [H36M17.index("LElbow") - 1, H36M17.index("RElbow") - 1]]
        assert np.all((350 < femur) & (femur < 520)), femur
        assert np.all((330 < tibia) & (tibia < 500)), tibia
        assert np.all((180 < humerus) & (humerus < 380)), humerus
        # Standing height: top of the head-end site over the floor (lowest point of the clip),
        # z up in mm. CMU's ASF head bone ends a few cm below the crown.
        world = clip.positions * CMU_MM_PER_UNIT
        up = world[..., 1]  # BVH is y-up
        head_top = up[:, clip.index("Head_end")] - up.min()
        assert 1350 < np.percentile(head_top, 99) < 2000, np.percentile(head_top, 99)
        # World frame: z is up (head above the feet), right-handed (left hip on +x when
        # the body faces -y, as the BVH T-pose faces +z).
        z = joints[..., 2]
        feet = np.minimum(z[:, H36M17.index("LFoot")], z[:, H36M17.index("RFoot")])
        assert np.all(z[:, H36M17.index("Head")] > z[:, H36M17.index("Hip")] + 150)
        assert np.all(z[:, H36M17.index("Hip")] > feet + 250)
        # No mirroring: the left hip is on the body's left, up x forward, where
        # forward is the direction the left foot's toes point.
        toe = next(n for n in ("LeftToeBase", "LeftToe") if n in clip.joint_names)
        world_toe = clip.positions[:, clip.index(toe)] * CMU_MM_PER_UNIT @ BVH_TO_WORLD.T
        forward = world_toe - joints[:, H36M17.index("LFoot")]
        left = np.cross([0.0, 0.0, 1.0], forward)
        lr = joints[:, H36M17.index("LHip")] - joints[:, H36M17.index("RHip")]
        cos = np.sum(left * lr, axis=1) / np.linalg.norm(left, axis=1) / np.linalg.norm(lr, axis=1)
        assert np.median(cos) > 0.8, np.median(cos)  # a mirrored frame would give about -0.95


def test_cmu_resampled_to_50_fps():
    path = _cmu_clips()[0]
    clip = load_bvh(path)
    joints = clip.to_h36m17(fps=50)
    duration = (clip.num_frames - 1) / clip.fps
    assert joints.shape[0] == int(duration * 50 + 1e-6) + 1
    bones = H36M17.bone_lengths(joints)
    assert np.abs(bones - H36M17.bone_lengths(clip.to_h36m17()[:1])).max() < 1.0
    # Frame k at 50 fps is time k/50 s = original frame 2.4 k; k = 5 -> frame 12 exactly.
    np.testing.assert_allclose(joints[5], clip.to_h36m17()[12], atol=1e-9)


# -- broken files ----------------------------------------------------------------
GOOD = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Leg
  {
    OFFSET 0 -1 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 0 -1 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.01
0 0 0 0 0 0 0 0 0
1 1 1 10 10 10 5 5 5
"""


def test_world_frame_is_a_proper_rotation():
    np.testing.assert_allclose(BVH_TO_WORLD @ BVH_TO_WORLD.T, np.eye(3))
    assert np.linalg.det(BVH_TO_WORLD) == pytest.approx(1.0)
    np.testing.assert_allclose(BVH_TO_WORLD @ [0, 1, 0], [0, 0, 1])  # BVH up -> world z


def test_good_file_loads(tmp_path):
    clip = load_bvh(write(tmp_path, GOOD))
    assert clip.positions.shape == (2, 3, 3)


@pytest.mark.parametrize(
    "old, new, line, message",
    [
        ("    End Site\n    {\n      OFFSET 0 -1 0\n    }\n  }\n}\n", "    End Site\n    {\n      OFFSET 0 -1 0\n    }\n  }\n", 15, "unbalanced braces"),
        ("  }\n}\nMOTION", "  }\n}\n}\nMOTION", 16, "unbalanced braces"),
        ("    OFFSET 0 -1 0\n    CHANNELS", "    CHANNELS", 6, "no OFFSET"),
        ("    CHANNELS 3 Zrotation Yrotation Xrotation\n", "", 6, "no CHANNELS"),
        ("CHANNELS 3 Zrotation Yrotation Xrotation", "CHANNELS 3 Zrotation Yrotation", 9, "declares 3 channels but lists 2"),
        ("CHANNELS 3 Zrotation Yrotation Xrotation", "CHANNELS 3 Zrotation Yrotation Wrotation", 9, "unknown channel"),
        ("1 1 1 10 10 10 5 5 5", "1 1 1 10 10 10 5 5", 20, "frame 1 has 8 values, expected 9"),
        ("1 1 1 10 10 10 5 5 5", "1 1 1 10 nan 10 5 5 5", 20, "NaN or infinite value in channel 'Hips.Yrotation'"),
        ("1 1 1 10 10 10 5 5 5", "1 1 1 10 10 10 5 abc 5", 20, "'abc' is not a number"),
        ("Frames: 2", "Frames: 3", 20, "file ends after 2 frames"),
        ("Frames: 2", "Frames: 1", 20, "more frame lines"),
        ("Frame Time: 0.01", "Frame Time: 0", 18, "frame time must be a positive"),
        ("OFFSET 0 -1 0\n    CHANNELS", "OFFSET 0 nan 0\n    CHANNELS", 8, "NaN or infinite"),
        ("HIERARCHY", "HIERARCHI", 1, "expected 'HIERARCHY'"),
    ],
)
def test_broken_files_name_file_line_and_problem(tmp_path, old, new, line, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1), "broken.bvh")
    with pytest.raises(ValueError) as err:
        load_bvh(path)
    text = str(err.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text, text


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.bvh"):
        load_bvh(tmp_path / "nope.bvh")


def test_not_a_cmu_skeleton_is_a_clear_error(tmp_path):
    clip = load_bvh(write(tmp_path, GOOD))
    with pytest.raises(ValueError, match="not a CMU skeleton"):
        clip.to_h36m17()


def test_motion_with_wrong_column_count_names_file(tmp_path):
    """A motion array (not only a MOTION line) with too few columns: the file and expected shape, not an IndexError."""
    path = tmp_path / "arm.bvh"
    text = ARM
    for key, value in {"a0": 10, "a1": 20, "b0": 30, "b1": 40, "c0": 50, "c1": 60}.items():
        text = text.replace("{" + key + "}", str(value))
    path.write_text(text)
    clip = load_bvh(path)
    with pytest.raises(ValueError, match=rf"arm\.bvh: motion must have shape \(T, {clip.motion.shape[1]}\)"):
        clip.forward_kinematics(clip.motion[:, :-2])
    bad = clip.motion.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"arm\.bvh: motion frame 1, column 0"):
        clip.forward_kinematics(bad)
    lines = text.rstrip("\n").split("\n")
    lines[-1] = " ".join(lines[-1].split()[:-1])  # the last frame line loses a column
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"arm\.bvh:{len(lines)}: frame \d+ has \d+ values, expected"):
        load_bvh(path)
