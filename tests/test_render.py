"""Synthetic renderer: determinism, geometry consistency, occlusion, masks and boxes."""

import numpy as np
import pytest

from pose_lab import geometry
from pose_lab.data.synthetic import (
    Appearance,
    mask_to_rle,
    render_crops,
    render_pose,
    render_scene,
    render_scenes,
    rle_area,
)
from pose_lab.skeletons import COCO17, H36M17

Z0 = 4000.0


def _facing_camera(z=Z0, x=0.0):
    """A standing person 4 m in front of the camera, facing it (camera frame, mm).

    Camera frame: x right, y down, z forward. The person faces -z, so their
    right side is on the image's left (-x).
    """
    j = np.zeros((17, 3))
    j[0] = (0, 0, z)
    j[1], j[2], j[3] = (-130, 0, z), (-130, 440, z), (-130, 870, z)  # right leg
    j[4], j[5], j[6] = (130, 0, z), (130, 440, z), (130, 870, z)  # left leg
    j[7], j[8] = (0, -230, z), (0, -480, z)
    j[9], j[10] = (0, -600, z - 20), (0, -720, z - 5)
    j[11], j[12], j[13] = (170, -460, z), (200, -190, z), (210, 60, z)  # left arm
    j[14], j[15], j[16] = (-170, -460, z), (-200, -190, z), (-210, 60, z)  # right arm
    j[:, 0] += x
    return j


def _turned_around(j, z=Z0):
    """The same person rotated 180 degrees about the vertical axis through the pelvis."""
    out = j.copy()
    out[:, 0] = -(j[:, 0] - j[0, 0]) + j[0, 0]
    out[:, 2] = 2 * z - j[:, 2]
    return out


CAM = ((400.0, 400.0), (159.5, 119.5))  # pinhole: focal, centre for a 240 x 320 image


def test_same_seed_gives_byte_identical_output_and_other_seeds_differ():
    a = render_crops(10, size=64, seed=123)
    b = render_crops(10, size=64, seed=123)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k
    c = render_crops(10, size=64, seed=124)
    assert a["images"].tobytes() != c["images"].tobytes()
    s1 = render_scene((96, 128), num_people=3, seed=4)
    s2 = render_scene((96, 128), num_people=3, seed=4)
    assert s1["image"].tobytes() == s2["image"].tobytes()


def test_crop_outputs_shapes_and_ranges():
    d = render_crops(20, size=96, seed=0)
    n = 20
    assert d["images"].shape == (n, 96, 96, 3) and d["images"].dtype == np.uint8
    assert d["keypoints"].shape == (n, 17, 3) and d["joints_2d"].shape == (n, 17, 2)
    assert d["joints_3d"].shape == (n, 17, 3) and d["masks"].shape == (n, 96, 96)
    assert set(np.unique(d["keypoints"][..., 2])) <= {0.0, 1.0, 2.0}
    assert np.all(d["masks"].reshape(n, -1).sum(1) > 100)  # a person in every crop
    # most keypoints are visible and inside the crop
    assert (d["keypoints"][..., 2] == 2).mean() > 0.6
    assert np.all(d["joints_3d"][..., 2] > 1000)
    # the images are not flat: background and person differ
    assert d["images"].std() > 20


def test_projection_is_consistent_with_geometry_and_extrinsics():
    d = render_crops(8, size=128, seed=1)
    for i in range(8):
        cam = geometry.Camera(name="crop", focal=d["focal"][i], center=d["center"][i],
                              width=128, height=128, R=d["R"][i].astype(np.float64),
                              T=d["T"][i].astype(np.float64))
        uv = geometry.project_pinhole(d["joints_3d"][i].astype(np.float64), cam)
        np.testing.assert_allclose(d["joints_2d"][i], uv, atol=1e-2)
        # COCO body keypoints are the H36M joints (left shoulder = joint 11 ...)
        np.testing.assert_allclose(d["keypoints"][i, 5, :2], d["joints_2d"][i, 11], atol=1e-3)
        np.testing.assert_allclose(d["keypoints"][i, 12, :2], d["joints_2d"][i, 1], atol=1e-3)
        np.testing.assert_allclose(d["keypoints_3d"][i, 16], d["joints_3d"][i, 3], atol=1e-3)
        # world -> camera round trip through the returned extrinsics
        world = geometry.camera_to_world(d["joints_3d"][i].astype(np.float64), cam)
        np.testing.assert_allclose(geometry.world_to_camera(world, cam), d["joints_3d"][i], atol=1e-2)


def test_given_poses_keep_their_bone_lengths():
    poses = np.stack([_facing_camera()] * 3)
    poses[..., 2] -= Z0  # any world placement
    d = render_crops(3, size=64, seed=2, poses=poses)
    np.testing.assert_allclose(H36M17.bone_lengths(d["joints_3d"]),
                               H36M17.bone_lengths(poses), rtol=1e-4)


def test_visible_keypoints_lie_on_the_silhouette():
    d = render_crops(30, size=128, seed=3)
    hits = total = 0
    for i in range(30):
        for j in range(5, 17):  # body keypoints (face points sit on the head's surface)
            x, y, v = d["keypoints"][i, j]
            if v != 2:
                continue
            total += 1
            hits += d["masks"][i, int(round(y)), int(round(x))] > 0
    assert total > 200 and hits == total


def test_boxes_enclose_the_mask():
    d = render_crops(10, size=64, seed=5)
    for i in range(10):
        ys, xs = np.nonzero(d["masks"][i])
        np.testing.assert_array_equal(
            d["boxes"][i], [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])


def test_self_occlusion_from_the_z_buffer():
    j = _facing_camera()
    # left forearm behind the back, right forearm in front of the belly
    j[12], j[13] = (120, -330, Z0 + 180), (40, -170, Z0 + 240)
    j[15], j[16] = (-140, -260, Z0 - 170), (-30, -130, Z0 - 260)
    out = render_pose(j, CAM, image_size=(240, 320), seed=0)
    v = out["keypoints"][0, :, 2]
    names = COCO17.joint_names
    assert v[names.index("left_wrist")] == 1, "a wrist behind the torso is occluded"
    assert v[names.index("right_wrist")] == 2, "a wrist in front of the torso is visible"
    assert v[names.index("nose")] == 2 and v[names.index("left_eye")] == 2
    # seen from behind, the face is hidden and the back is what we see
    back = render_pose(_turned_around(_facing_camera()), CAM, image_size=(240, 320), seed=0)
    vb = back["keypoints"][0, :, 2]
    assert vb[names.index("nose")] == 1 and vb[names.index("left_eye")] == 1
    assert vb[names.index("left_shoulder")] == 2


def test_nearer_person_occludes_the_farther_one():
    near = _facing_camera(z=3000.0)
    far = _facing_camera(z=6000.0, x=150.0)
    out = render_pose(np.stack([far, near]), CAM, image_size=(240, 320), seed=1)
    m_far, m_near = out["masks"].astype(bool)
    assert not np.any(m_far & m_near)  # each pixel belongs to one person
    # the far person's hips are hidden behind the near person's body
    names = COCO17.joint_names
    assert out["keypoints"][0, names.index("left_hip"), 2] == 1
    assert out["keypoints"][1, names.index("left_hip"), 2] == 2
    # drawing the far person alone shows more of them
    alone = render_pose(far, CAM, image_size=(240, 320), seed=1)
    assert alone["masks"][0].sum() > m_far.sum()


def test_keypoints_outside_the_image_are_flagged_zero():
    j = _facing_camera()
    j[:, 1] += 900  # move the person down: the legs leave the 240-pixel-high image
    out = render_pose(j, CAM, image_size=(240, 320), seed=0)
    kp = out["keypoints"][0]
    outside = (kp[:, 1] > 239.5) | (kp[:, 1] < -0.5)
    assert outside.any() and np.all(kp[outside, 2] == 0) and np.all(kp[~outside, 2] > 0)


def test_appearance_colours_and_background():
    colors = np.array([[200, 160, 120], [30, 20, 10], [220, 20, 20], [220, 20, 20],
                       [20, 20, 200], [20, 20, 200], [10, 10, 10]], np.float32)
    app = Appearance(colors=colors, stripes=(0.0, 60.0), build=1.0)
    out = render_pose(_facing_camera(), CAM, image_size=(240, 320), seed=0, appearance=[app],
                      background=(0, 255, 0))
    img = out["image"].astype(int)
    # background exactly the given colour outside the person
    assert np.all(img[out["masks"][0] == 0] == [0, 255, 0])
    # torso pixels are shades of the shirt colour (red dominant), legs of the trousers (blue)
    torso = img[out["masks"][0] > 0][:0]
    u, v = out["joints_2d"][0, 7]  # spine
    r, g, b = img[int(round(v)), int(round(u))]
    assert r > 2 * g and r > 2 * b
    u, v = 0.5 * (out["joints_2d"][0, 5] + out["joints_2d"][0, 4])  # left thigh
    r, g, b = img[int(round(v)), int(round(u))]
    assert b > 2 * r and b > 2 * g
    assert torso.shape[0] == 0


def test_distorted_camera_uses_geometry_projection():
    cam = geometry.h36m_cameras("S1")[0]
    world = _facing_camera(z=0.0)
    world = world[:, [0, 2, 1]] * np.array([1, 1, -1]) + np.array([0, 0, 1000])  # z up
    jc = geometry.world_to_camera(world, cam)
    out = render_pose(jc, cam, seed=0)
    np.testing.assert_allclose(out["joints_2d"][0], geometry.project_to_2d(jc, cam), atol=1e-2)
    assert out["image"].shape == (cam.height, cam.width, 3)
    assert out["masks"][0].sum() > 500


def test_scenes_masks_boxes_and_rle():
    scenes = render_scenes(3, image_size=(120, 160), num_people=(2, 3), seed=9)
    for sc in scenes:
        P = len(sc["keypoints"])
        assert 2 <= P <= 3 and sc["masks"].shape == (P, 120, 160)
        assert sc["masks"].sum(0).max() <= 1  # instance masks do not overlap
        for p in range(P):
            m = sc["masks"][p].astype(bool)
            rle = mask_to_rle(m)
            assert rle_area(rle) == m.sum() and sum(rle["counts"]) == m.size
            # decode the RLE (column-major, zeros first) and compare
            flat = np.zeros(m.size, bool)
            pos = 0
            for k, c in enumerate(rle["counts"]):
                flat[pos:pos + c] = k % 2 == 1
                pos += c
            np.testing.assert_array_equal(flat.reshape(m.shape, order="F"), m)


def test_coco_writer_renders_in_chunks_and_continues_the_pose_cycle(monkeypatch):
    """write_coco_dataset renders WRITE_CHUNK scenes at a time (bounded memory):
    one chunk equals render_scenes with the same seed, and given poses keep
    cycling across chunks."""
    from pose_lab.data.synthetic import coco_writer as R

    single = list(R._scenes_in_chunks(3, image_size=(64, 80), num_people=(1, 2), seed=4))
    direct = render_scenes(3, image_size=(64, 80), num_people=(1, 2), seed=4)
    for a, b in zip(single, direct, strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])
    # 7 poses told apart by their size: pose i is the reference scaled by 1 + 0.05 i
    base = _facing_camera()
    base[:, 2] -= Z0
    poses = np.stack([base * (1 + 0.05 * i) for i in range(7)])
    monkeypatch.setattr(R, "WRITE_CHUNK", 2)
    scenes = list(R._scenes_in_chunks(7, image_size=(96, 96), num_people=(1, 3), seed=0, poses=poses))
    assert len(scenes) == 7
    femur = np.concatenate([np.linalg.norm(sc["joints_3d"][:, 2] - sc["joints_3d"][:, 1], axis=-1)
                            for sc in scenes])
    index = np.rint((femur / np.linalg.norm(base[2] - base[1]) - 1) / 0.05).astype(int)
    np.testing.assert_array_equal(index, np.arange(len(index)) % 7)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        render_pose(np.zeros((16, 3)), CAM, image_size=(10, 10))
    with pytest.raises(ValueError, match="NaN"):
        j = _facing_camera()
        j[3, 0] = np.nan
        render_pose(j, CAM, image_size=(10, 10))
    with pytest.raises(ValueError, match="behind the camera"):
        render_pose(_facing_camera(z=-100.0), CAM, image_size=(10, 10))
    with pytest.raises(ValueError, match="size"):
        render_crops(1, size=8)
    with pytest.raises(ValueError, match="image_size"):
        render_pose(_facing_camera(), CAM)


def test_actions_mode_labels_each_crop():
    motion = pytest.importorskip("pose_lab.data.synthetic.motion")
    if not hasattr(motion, "generate_sequence"):
        pytest.skip("motion engine without generate_sequence")
    d = render_crops(12, size=64, seed=0, actions=["Walking", "Squatting"])
    assert d["actions"].shape == (12,)
    assert set(d["actions"]) <= {"Walking", "Squatting"}
