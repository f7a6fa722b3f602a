"""Tests for pose_lab.viz with the Agg backend: figures are produced with the
expected artists (one line per drawn edge, colours by side, axis conventions)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pose_lab import viz  # noqa: E402
from pose_lab.skeletons import COCO17, H36M17  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def h36m_pose() -> np.ndarray:
    """A standing pose in the camera frame (mm): y down, person ~3 m in front."""
    rng = np.random.default_rng(0)
    pose = np.zeros((17, 3))
    # walk the kinematic tree with bone vectors pointing roughly the right way
    offsets = {1: (-130, 0, 0), 2: (0, 440, 0), 3: (0, 440, 0), 4: (130, 0, 0), 5: (0, 440, 0), 6: (0, 440, 0),
               7: (0, -230, 0), 8: (0, -250, 0), 9: (0, -110, 0), 10: (0, -110, 0), 11: (150, 0, 0),
               12: (0, 280, 0), 13: (0, 250, 0), 14: (-150, 0, 0), 15: (0, 280, 0), 16: (0, 250, 0)}
    for j, parent in enumerate(H36M17.parents):
        if parent >= 0:
            pose[j] = pose[parent] + np.asarray(offsets[j]) + rng.normal(scale=10, size=3)
    return pose + np.array([0.0, 0.0, 3000.0])


def coco_keypoints() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.uniform(20, 180, size=(17, 2))


def test_edge_sides_follow_left_right_lists():
    sides = viz.edge_sides(H36M17)
    assert len(sides) == 16
    for (a, b), side in zip(H36M17.edges, sides):
        if b in H36M17.left:
            assert side == "left"
        elif b in H36M17.right:
            assert side == "right"
        else:
            assert side == "center"
    coco = dict(zip(COCO17.edges, viz.edge_sides(COCO17)))
    assert coco[(5, 6)] == "center"  # shoulder to shoulder
    assert coco[(15, 13)] == "left" and coco[(16, 14)] == "right"
    assert viz.edge_sides("coco17").count("left") == viz.edge_sides("coco17").count("right")


def test_draw_skeleton_2d_one_line_per_edge_and_colours():
    fig, ax = plt.subplots()
    out = viz.draw_skeleton_2d(ax, coco_keypoints(), COCO17)
    assert out is ax
    assert len(ax.lines) == len(COCO17.edges) == 19
    colors = [to_rgba(line.get_color()) for line in ax.lines]
    for (a, b), side, c in zip(COCO17.edges, viz.edge_sides(COCO17), colors):
        expected = {"left": viz.LEFT_COLOR, "right": viz.RIGHT_COLOR, "center": viz.CENTER_COLOR}[side]
        assert c == to_rgba(expected)
    # joints: one scatter with 17 points; image convention y down
    assert ax.collections[0].get_offsets().shape == (17, 2)
    assert ax.yaxis_inverted()
    # the line endpoints are the keypoints
    kp = coco_keypoints()
    a, b = COCO17.edges[0]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [kp[a, 0], kp[b, 0]])


def test_draw_skeleton_2d_skips_invisible_joints_and_draws_image():
    kp = coco_keypoints()
    vis = np.full(17, 2)
    vis[[9, 10]] = 0  # wrists unlabelled: edges 7-9 and 8-10 disappear
    fig, ax = plt.subplots()
    image = np.zeros((200, 200, 3))
    viz.draw_skeleton_2d(ax, np.concatenate([kp, vis[:, None]], axis=1), COCO17, image=image, show_names=True)
    assert len(ax.lines) == 17
    assert len(ax.images) == 1
    assert len(ax.texts) == 15
    assert ax.collections[0].get_offsets().shape == (15, 2)
    kp_nan = kp.copy()
    kp_nan[0] = np.nan
    fig, ax = plt.subplots()
    viz.draw_skeleton_2d(ax, kp_nan, "coco17", color="k")
    assert len(ax.lines) == 19 - 2  # the nose touches 2 edges (to the eyes)
    assert {to_rgba(line.get_color()) for line in ax.lines} == {to_rgba("k")}


def test_draw_skeleton_3d_camera_frame_is_upright_and_equal_aspect():
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    pose = h36m_pose()
    viz.draw_skeleton_3d(ax, pose, H36M17, frame="camera")
    assert len(ax.lines) == len(H36M17.edges) == 16
    # head above the feet on the vertical plot axis (-y in the camera frame)
    head = H36M17.index("Head")
    foot = H36M17.index("RFoot")
    z_of = {}
    for line, (a, b) in zip(ax.lines, H36M17.edges):
        xs, ys, zs = line.get_data_3d()
        z_of[a], z_of[b] = zs[0], zs[1]
        np.testing.assert_allclose(ys, [pose[a, 2], pose[b, 2]])  # depth on the plot's y axis
    assert z_of[head] > z_of[foot]
    spans = [np.diff(lim)[0] for lim in (ax.get_xlim(), ax.get_ylim(), ax.get_zlim())]
    np.testing.assert_allclose(spans, spans[0])


def test_draw_skeleton_3d_world_frame_and_errors():
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    world = h36m_pose()[:, [0, 2, 1]] * np.array([1, 1, -1])  # z up
    viz.draw_skeleton_3d(ax, world, "h36m17", frame="world")
    xs, ys, zs = ax.lines[0].get_data_3d()
    a, b = H36M17.edges[0]
    np.testing.assert_allclose(zs, [world[a, 2], world[b, 2]])
    with pytest.raises(ValueError, match="frame"):
        viz.draw_skeleton_3d(ax, world, H36M17, frame="screen")
    with pytest.raises(ValueError, match=r"\(17, 3\)"):
        viz.draw_skeleton_3d(ax, world[:16], H36M17)
    fig2, ax2 = plt.subplots()
    with pytest.raises(ValueError, match="3D axes"):
        viz.draw_skeleton_3d(ax2, world, H36M17)


def test_plot_pred_vs_gt_3d_and_2d():
    gt = h36m_pose()
    pred = gt + np.random.default_rng(2).normal(scale=20, size=gt.shape)
    fig = viz.plot_pred_vs_gt(pred, gt, H36M17)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 and all(ax.name == "3d" for ax in fig.axes)
    assert [len(ax.lines) for ax in fig.axes] == [16, 16]
    assert fig.axes[0].get_xlim() == fig.axes[1].get_xlim()  # same cube for both
    assert "mm" in fig.axes[0].get_title()
    fig = viz.plot_pred_vs_gt(pred, gt, H36M17, overlay=True)
    assert [len(ax.lines) for ax in fig.axes] == [16, 16, 32]
    kp = coco_keypoints()
    fig = viz.plot_pred_vs_gt(kp + 3.0, kp, COCO17, image=np.ones((200, 200)))
    assert len(fig.axes) == 2 and all(ax.name != "3d" for ax in fig.axes)
    assert [len(ax.lines) for ax in fig.axes] == [19, 19]
    assert "px" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="same shape"):
        viz.plot_pred_vs_gt(kp, gt, COCO17)


def test_plot_heatmaps_panels():
    hm = np.random.default_rng(3).random((16, 12, 17))
    fig = viz.plot_heatmaps(np.zeros((64, 48, 3)), hm, names=COCO17.joint_names)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 18
    assert panels[1].get_title() == "nose"
    # the heatmap is stretched over the full image
    assert panels[1].images[-1].get_extent() == [-0.5, 47.5, 63.5, -0.5]
    assert len(viz.plot_heatmaps(None, hm[..., :3]).axes) == 4
    # the overview shows all 17 maps even when only 5 panels are drawn (it used to sum the five shown)
    few = viz.plot_heatmaps(np.zeros((64, 48, 3)), hm, names=COCO17.joint_names, max_maps=5)
    overview = few.axes[0].images[-1].get_array()
    np.testing.assert_allclose(overview, hm.max(axis=-1))
    assert few.axes[0].get_title() == "all 17 keypoints"
    # no colour cast: where a map is zero the overlay is fully transparent
    cold = np.zeros((16, 12, 1))
    cold[8, 6, 0] = 1.0
    alpha = np.asarray(viz.plot_heatmaps(np.zeros((64, 48, 3)), cold).axes[1].images[-1].get_alpha())
    assert alpha[8, 6] > 0.5 and alpha[0, 0] == 0.0
    with pytest.raises(ValueError, match=r"\(h, w, K\)"):
        viz.plot_heatmaps(None, hm[..., 0])


def test_plot_training_curves():
    history = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.2, 0.7, 0.4], "mpjpe": [90, 70, 60],
               "val_mpjpe": [95, 80, 75], "learning_rate": [1e-3] * 3}
    fig = viz.plot_training_curves(history)
    used = [ax for ax in fig.axes if ax.lines]
    assert [ax.get_title() for ax in used] == ["loss", "mpjpe"]
    assert all(len(ax.lines) == 2 for ax in used)
    assert used[0].get_yscale() == "log"
    np.testing.assert_allclose(used[1].lines[1].get_ydata(), [95, 80, 75])

    class FakeHistory:
        history = {"loss": [3.0, 2.0]}

    assert len([ax for ax in viz.plot_training_curves(FakeHistory()).axes if ax.lines]) == 1
    with pytest.raises(ValueError, match="no"):
        viz.plot_training_curves(history, keys=["accuracy"])


def test_plot_latents_categorical_continuous_and_pca():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(60, 2))
    labels = np.array(["walk", "sit", "jump"] * 20)
    fig = viz.plot_latents(z, labels)
    ax = fig.axes[0]
    assert len(ax.collections) == 3
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["jump", "sit", "walk"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 60
    fig = viz.plot_latents(rng.normal(size=(50, 8)), rng.random(50))
    assert len(fig.axes) == 2  # scatter + colour bar
    assert fig.axes[0].get_xlabel().startswith("PC 1")
    with pytest.raises(ValueError, match="labels"):
        viz.plot_latents(z, labels[:10])
