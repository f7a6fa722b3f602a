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


def test_twins_share_pose_and_camera_but_not_appearance():
    plain = render_scenes(4, image_size=(120, 160), num_people=(1, 3), seed=21)
    twins = render_scenes(4, image_size=(120, 160), num_people=(1, 3), seed=21, twins=True)
    ious = []
    for a, b in zip(plain, twins):
        # the first image and every label are those of twins=False
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["keypoints"], b["keypoints"])
        np.testing.assert_array_equal(a["masks"], b["masks"])
        assert b["twin_image"].shape == a["image"].shape and b["twin_image"].dtype == np.uint8
        assert b["twin_masks"].shape == a["masks"].shape
        # a new appearance: background and clothes change almost everywhere
        assert np.mean(np.any(a["image"] != b["twin_image"], axis=-1)) > 0.9
        for p in range(len(a["masks"])):
            m, t = a["masks"][p].astype(bool), b["twin_masks"][p].astype(bool)
            if m.sum() > 50:
                ious.append((m & t).sum() / (m | t).sum())
    # the same people in the same poses: the silhouettes overlap (only the build's width differs) ...
    assert len(ious) >= 3 and min(ious) > 0.6, ious
    # ... while another seed's people do not
    other = render_scenes(1, image_size=(120, 160), num_people=1, seed=22, twins=True)[0]
    first = twins[0]["twin_masks"].max(0).astype(bool)
    assert (first & other["masks"][0].astype(bool)).sum() / (first | other["masks"][0].astype(bool)).sum() < 0.3


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


# --------------------------------------------------------------------------
# face, hands and feet (issue 10): the cues that tell front/back and left/right
# --------------------------------------------------------------------------
from pose_lab.data.synthetic.appearance import (  # noqa: E402 (colour parts of the details)
    EARC, EYEC, MOUTHC, NOSEC, SCLERA, SHOES, SKIN, SOLE, _part_colors,
)

# skin, hair, shirt, sleeve, trousers, lower legs, shoes: no part shares a hue with a face detail
FACE_COLORS = np.array([[200, 160, 120], [150, 60, 20], [220, 20, 20], [220, 20, 20],
                        [20, 20, 200], [20, 20, 200], [20, 120, 20]], np.float32)
FACE_APP = [Appearance(colors=FACE_COLORS, stripes=(0.0, 60.0), build=1.0)]
PART_RGB = _part_colors(FACE_COLORS[None])[0]
GREY_BG = (128, 128, 128)


def _turned(j, deg, z=Z0):
    """The person rotated by ``deg`` about the vertical axis through the pelvis (90: facing image left)."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    out = j.copy()
    x, dz = j[:, 0] - j[0, 0], j[:, 2] - z
    out[:, 0] = c * x + s * dz + j[0, 0]
    out[:, 2] = -s * x + c * dz + z
    return out


def _is_shade_of(pix, color_part, tol=2.5):
    """(..., 3) uint8 pixels that are ``shade * colour`` (Lambert shade 0.38-1, truncated to uint8)."""
    col = PART_RGB[color_part]
    p = np.asarray(pix, np.float64)
    s = (p @ col) / (col @ col)
    res = np.abs(p - s[..., None] * col).max(-1)
    return (s > 0.36) & (s < 1.01) & (res <= tol)


def _near(img, xy, color_parts, radius=1):
    """Whether a pixel within ``radius`` px (Chebyshev) of ``xy`` is a shade of one of ``color_parts``."""
    x, y = int(np.floor(xy[0] + 0.5)), int(np.floor(xy[1] + 0.5))
    win = img[max(y - radius, 0):y + radius + 1, max(x - radius, 0):x + radius + 1]
    return any(_is_shade_of(win, c).any() for c in color_parts)


FEATURE_COLORS = {"nose": [NOSEC], "left_eye": [EYEC], "right_eye": [EYEC],
                  "left_ear": [EARC], "right_ear": [EARC]}


def _face_cam(j, focal=1600.0, size=(240, 320)):
    """A pinhole camera aimed at the head (the same camera centre as CAM: only zoomed)."""
    head = j[10]
    c = (size[1] / 2 - focal * head[0] / head[2], size[0] / 2 - focal * head[1] / head[2])
    return (focal, focal), c


def test_colour_check_tells_the_features_from_skin_and_each_other():
    """The colour test used below can fail: skin, nose, ear, mouth and eye shades are told apart."""
    for shade in (0.4, 0.7, 1.0):
        pix = {k: np.floor(PART_RGB[k] * shade) for k in (SKIN, NOSEC, EARC, MOUTHC, EYEC, SCLERA)}
        for k, p in pix.items():
            assert _is_shade_of(p, k)
            for other in pix:
                if other != k:
                    assert not _is_shade_of(p, other), (k, other, shade)


@pytest.mark.parametrize("focal", [400.0, 1600.0])
@pytest.mark.parametrize("deg", [0, 30])
def test_visible_face_keypoints_lie_on_their_drawn_features(focal, deg):
    j = _turned(_facing_camera(), deg)
    cam = CAM if focal == 400.0 else _face_cam(j, focal)
    out = render_pose(j, cam, image_size=(240, 320), seed=0, appearance=FACE_APP,
                      background=GREY_BG)
    img, kp = out["image"], out["keypoints"][0]
    names = COCO17.joint_names
    checked = 0
    for name, parts in FEATURE_COLORS.items():
        x, y, v = kp[names.index(name)]
        if v != 2:
            continue
        checked += 1
        # on the feature's pixel when the head is large, within 1 px in small images
        radius = 0 if focal > 1000 else 1
        assert _near(img, (x, y), parts, radius), f"{name} at ({x:.1f}, {y:.1f}) is not on its feature"
    # facing the camera (or nearly): nose and both eyes are visible and drawn
    assert all(kp[names.index(n), 2] == 2 for n in ("nose", "left_eye", "right_eye"))
    assert checked >= 3
    # the mouth is drawn below the nose, on the face
    mouth = _is_shade_of(img, MOUTHC)
    assert mouth.any()
    assert np.nonzero(mouth)[0].mean() > kp[names.index("nose"), 1]


def test_face_seen_from_behind_is_hidden_and_not_drawn():
    front = _facing_camera()
    back = _turned_around(front)
    names = COCO17.joint_names
    for j, facing in ((front, True), (back, False)):
        out = render_pose(j, _face_cam(j), image_size=(240, 320), seed=0, appearance=FACE_APP,
                          background=GREY_BG)
        img, kp = out["image"], out["keypoints"][0]
        drawn = {p: int(_is_shade_of(img, p).sum()) for p in (EYEC, SCLERA, MOUTHC, NOSEC)}
        if facing:
            assert all(n > 5 for n in drawn.values()), drawn
            continue
        for n in ("nose", "left_eye", "right_eye"):
            assert kp[names.index(n), 2] == 1, n
        assert drawn == {EYEC: 0, SCLERA: 0, MOUTHC: 0, NOSEC: 0}, drawn
        # the ears stick out on both sides of the head, on ear-coloured pixels
        for n in ("left_ear", "right_ear"):
            x, y, v = kp[names.index(n)]
            assert v == 2 and _near(img, (x, y), [EARC]), n


def test_ears_are_drawn_in_profile_and_the_far_side_is_hidden():
    j = _turned(_facing_camera(), 90)  # facing image left: the person's left side to the camera
    out = render_pose(j, _face_cam(j), image_size=(240, 320), seed=0, appearance=FACE_APP,
                      background=GREY_BG)
    img, kp = out["image"], out["keypoints"][0]
    names = COCO17.joint_names
    x, y, v = kp[names.index("left_ear")]
    assert v == 2 and _near(img, (x, y), [EARC], radius=0)
    ear = _is_shade_of(img, EARC)
    assert ear.sum() > 100  # an ear, not a speck (head radius ~45 px here)
    assert kp[names.index("right_ear"), 2] == 1 and kp[names.index("right_eye"), 2] == 1
    # the nose sticks out in front of the head, toward the facing direction (image left)
    nose = np.nonzero(_is_shade_of(img, NOSEC))
    assert nose[0].size > 20 and nose[1].min() < x - 45  # head radius ~46 px


def test_hands_and_feet_are_drawn_and_oriented():
    names = COCO17.joint_names
    j = _facing_camera()
    # straight arms hanging beside the body (thumbs forward, palms toward the thighs)
    j[11], j[12], j[13] = (200, -460, Z0), (215, -190, Z0), (230, 60, Z0)
    j[14], j[15], j[16] = (-200, -460, Z0), (-215, -190, Z0), (-230, 60, Z0)
    cam = ((800.0, 800.0), (159.5, 210.0))
    views = {}
    for deg in (0, 90):
        views[deg] = render_pose(_turned(j, deg), cam, image_size=(420, 320), seed=0,
                                 appearance=FACE_APP, background=GREY_BG)
    img, kp = views[0]["image"], views[0]["keypoints"][0]
    for side in ("left", "right"):
        assert _near(img, kp[names.index(f"{side}_wrist"), :2], [SKIN], radius=3), side
        assert _near(img, kp[names.index(f"{side}_ankle"), :2], [SHOES, SOLE], radius=4), side
    # profile (facing image left): the feet point forward, the thumb sticks out forward,
    # and the flat mitten is wider seen from the side than from the front (palm orientation)
    img_p, kp_p = views[90]["image"], views[90]["keypoints"][0]
    shoe = _is_shade_of(img_p, SHOES) | _is_shade_of(img_p, SOLE)
    ax = kp_p[names.index("left_ankle"), 0]
    cols = np.nonzero(shoe.any(0))[0]
    assert ax - cols.min() > 2 * (cols.max() - ax), "the toes point forward"

    def hand_extent(view, rows):
        """Skin columns of the left hand in ``rows`` (px below the wrist): forward (image left) and back reach."""
        im, k = view["image"], view["keypoints"][0]
        wx, wy = k[names.index("left_wrist"), :2]
        x0 = int(wx) - 30
        cols = np.nonzero(_is_shade_of(im[int(wy) + rows[0]:int(wy) + rows[1], x0:x0 + 61], SKIN).any(0))[0]
        return wx - (x0 + cols.min()), (x0 + cols.max()) - wx

    thumb_rows, finger_rows = (4, 12), (17, 21)  # 20-60 mm and 85-105 mm below the wrist
    fwd_t, back_t = hand_extent(views[90], thumb_rows)
    fwd_f, back_f = hand_extent(views[90], finger_rows)
    # the thumb sticks out forward of the fingers, on the front side only
    assert fwd_t - fwd_f > 3 and (fwd_t - fwd_f) > (back_t - back_f) + 3, (fwd_t, fwd_f, back_t, back_f)
    # flat mitten: the fingers are wider seen from the thumb's side than from the palm's side
    w_side = fwd_f + back_f
    w_front = sum(hand_extent(views[0], finger_rows))
    assert w_side > 1.3 * w_front, (w_side, w_front)


def test_face_details_are_deterministic():
    j = _turned(_facing_camera(), 30)
    a = render_pose(j, _face_cam(j), image_size=(240, 320), seed=3)
    b = render_pose(j, _face_cam(j), image_size=(240, 320), seed=3)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
