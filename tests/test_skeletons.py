"""Skeleton definitions checked against the published layouts."""

import numpy as np
import pytest

from pose_lab import skeletons as sk


def test_h36m17_matches_published_layout():
    assert sk.H36M17.num_joints == 17
    assert sk.H36M17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert sk.H36M17_FROM_H36M32 == (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
    # The 17 names are the 32-joint names at those indices (Hips -> Hip, ...).
    picked = [sk.H36M32.joint_names[i] for i in sk.H36M17_FROM_H36M32]
    assert picked[1] == "RightUpLeg" and sk.H36M17.joint_names[1] == "RHip"
    assert picked[11] == "LeftArm" and sk.H36M17.joint_names[11] == "LShoulder"
    assert len(sk.H36M17.edges) == 16


def test_h36m17_tree_is_the_32_joint_tree_restricted():
    # Walking up the 32-joint tree from each selected joint must reach the
    # selected joint that H36M17 names as parent.
    # Exception: in the 32-joint tree the shoulders hang off joint 12 through
    # LeftShoulder/RightShoulder (16/24), whose positions coincide with the
    # Neck (13) in the data, so the 17-joint tree attaches them to Thorax (13).
    sel = list(sk.H36M17_FROM_H36M32)
    for j17, j32 in enumerate(sel):
        p17 = sk.H36M17.parents[j17]
        if p17 < 0:
            continue
        if sk.H36M17.joint_names[j17] in ("LShoulder", "RShoulder"):
            assert sk.H36M17.joint_names[p17] == "Thorax"
            assert sk.H36M32.parents[sk.H36M32.parents[j32]] == 12
            continue
        p = sk.H36M32.parents[j32]
        while p not in sel:
            p = sk.H36M32.parents[p]
        assert sel.index(p) == p17, (j17, sk.H36M17.joint_names[j17])


def _side_free(name, side):
    name = name.lower()
    if side in name:
        return name.replace(side, "").strip("_")
    assert name.startswith(side[0]), name
    return name[1:]


def test_left_right_lists_are_mirrors():
    for s in (sk.H36M17, sk.H36M32, sk.COCO17):
        for l, r in s.flip_pairs:
            assert _side_free(s.joint_names[l], "left") == _side_free(s.joint_names[r], "right")
        perm = s.flip_permutation
        np.testing.assert_array_equal(perm[perm], np.arange(s.num_joints))


def test_coco17_official_definition():
    assert sk.COCO17.joint_names[0] == "nose" and sk.COCO17.joint_names[-1] == "right_ankle"
    assert len(sk.COCO17.edges) == 19
    assert (15, 13) in sk.COCO17.edges  # official [16, 14] in 1-based indices
    np.testing.assert_allclose(sk.COCO_OKS_SIGMAS[:3], [0.026, 0.025, 0.025])
    np.testing.assert_allclose(sk.COCO_OKS_SIGMAS[-2:], [0.089, 0.089])
    assert sk.COCO17.flip_pairs[0] == (1, 2)


def test_coco_to_h36m_mapping():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(3, 17, 2))
    h = sk.coco_to_h36m(kp)
    np.testing.assert_allclose(h[:, 0], (kp[:, 11] + kp[:, 12]) / 2)  # pelvis = mid-hips
    np.testing.assert_allclose(h[:, 1], kp[:, 12])  # RHip = right_hip
    np.testing.assert_allclose(h[:, 8], (kp[:, 5] + kp[:, 6]) / 2)  # thorax = mid-shoulders
    back = sk.h36m_to_coco_body(h)
    body = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    np.testing.assert_allclose(back[:, body], kp[:, body])
    assert np.isnan(back[:, 1:5]).all()
    kinds = {k for k, _, _ in sk.COCO_TO_H36M}
    assert kinds == {"exact", "derived", "approximate"}


def test_bone_lengths_and_validation():
    pose = np.zeros((17, 3))
    pose[1] = [100, 0, 0]
    lengths = sk.H36M17.bone_lengths(pose)
    assert lengths.shape == (16,)
    assert lengths[0] == pytest.approx(100.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, D\)"):
        sk.H36M17.bone_lengths(np.zeros((16, 3)))
    with pytest.raises(ValueError, match="Unknown skeleton"):
        sk.get_skeleton("mpii")
    assert sk.get_skeleton("H36M17") is sk.H36M17


def test_with_bone_lengths_retargets_keeping_directions():
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 300, (5, 17, 3))
    target = rng.uniform(50, 500, 16)
    H36M17 = sk.H36M17
    out = H36M17.with_bone_lengths(pose, target)
    np.testing.assert_allclose(H36M17.bone_lengths(out), np.broadcast_to(target, (5, 16)), rtol=1e-12)
    np.testing.assert_array_equal(out[:, 0], pose[:, 0])                 # the root stays
    child = [j for j, p in enumerate(H36M17.parents) if p >= 0]
    par = [p for p in H36M17.parents if p >= 0]
    d0, d1 = pose[:, child] - pose[:, par], out[:, child] - out[:, par]
    cos = np.sum(d0 * d1, -1) / np.linalg.norm(d0, axis=-1) / np.linalg.norm(d1, axis=-1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-12)                     # same bone directions
    # its own lengths give the pose back; per-pose lengths broadcast
    np.testing.assert_allclose(H36M17.with_bone_lengths(pose, H36M17.bone_lengths(pose)), pose, atol=1e-9)
    with pytest.raises(ValueError, match="16 bone lengths"):
        H36M17.with_bone_lengths(pose, np.ones(15))
