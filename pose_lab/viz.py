"""Plots for the course: skeletons in 2D and 3D, predictions vs ground truth,
heatmaps, training curves and latent spaces (matplotlib only).

Conventions
-----------
* Colours: the subject's **left** side is drawn in blue, the **right** side in
  red, the centre line (spine, head, pelvis, shoulder-to-shoulder) in grey.
  An edge is "left" when one of its joints is a left joint and none is a right
  joint (e.g. thorax -> left shoulder), and similarly for "right".
* 2D keypoints are image pixels: ``x`` to the right, ``y`` down, so 2D axes are
  drawn with the y axis pointing down (as ``imshow`` does).
* 3D joints come in one of two frames (``frame=`` argument):

  - ``"camera"``: the Human3.6M / OpenCV camera frame, ``x`` right, ``y`` down,
    ``z`` forward (depth). Plotted with matplotlib's vertical axis = ``-y``
    (up on screen) and its depth axis = ``z``, so the person stands upright.
  - ``"world"``: the Human3.6M world frame, ``z`` up (mm above the floor).
    Plotted as is.

  3D axes get an equal aspect ratio (a cube around the pose), so bone lengths
  look right.
* Functions that create figures return the :class:`~matplotlib.figure.Figure`;
  ``draw_*`` functions draw into an existing axes and return it. Nothing here
  calls ``plt.show()``: notebooks display returned figures, scripts save them.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from pose_lab.skeletons import get_skeleton

__all__ = [
    "LEFT_COLOR",
    "RIGHT_COLOR",
    "CENTER_COLOR",
    "edge_sides",
    "edge_colors",
    "draw_skeleton_2d",
    "draw_skeleton_3d",
    "plot_pred_vs_gt",
    "plot_heatmaps",
    "plot_training_curves",
    "plot_latents",
]

LEFT_COLOR = "tab:blue"
RIGHT_COLOR = "tab:red"
CENTER_COLOR = "0.35"

_FRAMES = ("camera", "world")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def edge_sides(skeleton) -> list:
    """``"left"``, ``"right"`` or ``"center"`` for each edge of ``skeleton``."""
    skel = get_skeleton(skeleton)
    left, right = set(skel.left), set(skel.right)
    sides = []
    for a, b in skel.edges:
        is_l = a in left or b in left
        is_r = a in right or b in right
        sides.append("left" if is_l and not is_r else "right" if is_r and not is_l else "center")
    return sides


def _joint_sides(skel) -> list:
    left, right = set(skel.left), set(skel.right)
    return ["left" if j in left else "right" if j in right else "center" for j in range(skel.num_joints)]


_SIDE_COLOR = {"left": LEFT_COLOR, "right": RIGHT_COLOR, "center": CENTER_COLOR}


def edge_colors(skeleton, color=None) -> list:
    """One matplotlib colour per edge: left blue, right red, centre grey (or ``color`` for all)."""
    if color is not None:
        return [color] * len(get_skeleton(skeleton).edges)
    return [_SIDE_COLOR[s] for s in edge_sides(skeleton)]


def _joints(points, skel, dims, name):
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != skel.num_joints or arr.shape[1] not in dims:
        d = "|".join(map(str, dims))
        raise ValueError(
            f"{name}: expected shape ({skel.num_joints}, {d}) for skeleton {skel.name!r} (one pose), "
            f"got {arr.shape}"
        )
    return arr


def _visible(skel, keypoints, visibility):
    """Boolean per joint: labelled (``v > 0``) and finite."""
    vis = np.all(np.isfinite(keypoints[:, :2]), axis=1)
    if visibility is None and keypoints.shape[1] == 3:
        visibility = keypoints[:, 2]
    if visibility is not None:
        v = np.asarray(visibility, dtype=np.float64).reshape(-1)
        if v.shape != (skel.num_joints,):
            raise ValueError(f"visibility: expected shape ({skel.num_joints},), got {np.shape(visibility)}")
        vis &= v > 0
    return vis


# ---------------------------------------------------------------------------
# 2D
# ---------------------------------------------------------------------------
def draw_skeleton_2d(ax, keypoints, skeleton, visibility=None, image=None, color=None, linewidth=2.0,
                     markersize=20.0, show_names=False, alpha=1.0, label=None):
    """Draw a 2D skeleton (pixels) on ``ax``, optionally over an image.

    Args:
        ax: a matplotlib 2D axes.
        keypoints: ``(J, 2)`` pixel coordinates, or ``(J, 3)`` COCO-style
            ``(x, y, v)`` (``v`` is used as visibility unless ``visibility`` is given).
        skeleton: a :class:`~pose_lab.skeletons.Skeleton` or its name.
        visibility: ``(J,)``; joints with ``v <= 0`` (or NaN coordinates) are not
            drawn, nor the edges touching them.
        image: ``(H, W)`` or ``(H, W, 3|4)`` array drawn underneath with ``imshow``.
        color: one colour for everything; default left blue / right red / centre grey.
        show_names: write each drawn joint's name next to it.
        label: legend label attached to the first drawn edge.

    Returns:
        ``ax``. Each drawn edge is one ``Line2D`` in ``ax.lines``; the joints are
        one scatter collection.
    """
    skel = get_skeleton(skeleton)
    kp = _joints(keypoints, skel, (2, 3), "keypoints")
    vis = _visible(skel, kp, visibility)
    if image is not None:
        ax.imshow(np.asarray(image), cmap="gray" if np.ndim(image) == 2 else None)
    colors = edge_colors(skel, color)
    first = True
    for (a, b), c in zip(skel.edges, colors):
        if vis[a] and vis[b]:
            ax.plot([kp[a, 0], kp[b, 0]], [kp[a, 1], kp[b, 1]], color=c, linewidth=linewidth, alpha=alpha,
                    solid_capstyle="round", label=label if first else None)
            first = False
    jc = [color or _SIDE_COLOR[s] for s in _joint_sides(skel)]
    idx = np.flatnonzero(vis)
    ax.scatter(kp[idx, 0], kp[idx, 1], s=markersize, c=[jc[i] for i in idx], zorder=3, alpha=alpha,
               edgecolors="white", linewidths=0.5)
    if show_names:
        for i in idx:
            ax.annotate(skel.joint_names[i], (kp[i, 0], kp[i, 1]), xytext=(3, 3), textcoords="offset points",
                        fontsize=7, color=jc[i])
    if image is None:
        ax.set_aspect("equal", adjustable="box")
        if not ax.yaxis_inverted():
            ax.invert_yaxis()  # image convention: y down
    return ax


# ---------------------------------------------------------------------------
# 3D
# ---------------------------------------------------------------------------
def _to_plot_frame(joints, frame):
    if frame == "camera":  # x right, y down, z forward -> plot (x, z, -y)
        return np.stack([joints[:, 0], joints[:, 2], -joints[:, 1]], axis=1)
    if frame == "world":
        return joints
    raise ValueError(f"frame must be one of {_FRAMES}, got {frame!r}")


def _set_equal_3d(ax, pts, radius=None):
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return
    center = (pts.max(axis=0) + pts.min(axis=0)) / 2
    r = radius if radius is not None else max(float((pts.max(axis=0) - pts.min(axis=0)).max()) / 2, 1e-6) * 1.1
    ax.set_xlim(center[0] - r, center[0] + r)
    ax.set_ylim(center[1] - r, center[1] + r)
    ax.set_zlim(center[2] - r, center[2] + r)
    ax.set_box_aspect((1, 1, 1))


def _is_3d(ax) -> bool:
    return getattr(ax, "name", "") == "3d"


def draw_skeleton_3d(ax, joints, skeleton, frame: str = "camera", color=None, linewidth=2.0, markersize=15.0,
                     show_names=False, radius=None, elev=15.0, azim=-70.0, alpha=1.0, label=None,
                     set_limits: bool = True):
    """Draw a 3D skeleton (mm) on a 3D axes.

    Args:
        ax: an axes created with ``projection="3d"``.
        joints: ``(J, 3)`` positions in mm; NaN joints are skipped.
        skeleton: a :class:`~pose_lab.skeletons.Skeleton` or its name.
        frame: ``"camera"`` (x right, y down, z forward: drawn upright with -y
            up) or ``"world"`` (z up, drawn as is). See the module docstring.
        color: one colour for everything; default left blue / right red / centre grey.
        radius: half-size of the cubic view in mm (default: fits the pose).
        elev, azim: view angles in degrees (``None`` keeps the current view).
        set_limits: set equal-aspect limits around this pose (turn off when
            overlaying several poses and call it once yourself).

    Returns:
        ``ax``; each drawn edge is one line in ``ax.lines``.
    """
    if not _is_3d(ax):
        raise ValueError("ax must be a 3D axes: fig.add_subplot(projection='3d')")
    skel = get_skeleton(skeleton)
    pts = _to_plot_frame(_joints(joints, skel, (3,), "joints"), frame)
    ok = np.all(np.isfinite(pts), axis=1)
    colors = edge_colors(skel, color)
    first = True
    for (a, b), c in zip(skel.edges, colors):
        if ok[a] and ok[b]:
            ax.plot([pts[a, 0], pts[b, 0]], [pts[a, 1], pts[b, 1]], [pts[a, 2], pts[b, 2]], color=c,
                    linewidth=linewidth, alpha=alpha, label=label if first else None)
            first = False
    jc = [color or _SIDE_COLOR[s] for s in _joint_sides(skel)]
    idx = np.flatnonzero(ok)
    ax.scatter(pts[idx, 0], pts[idx, 1], pts[idx, 2], s=markersize, c=[jc[i] for i in idx], alpha=alpha,
               depthshade=False)
    if show_names:
        for i in idx:
            ax.text(pts[i, 0], pts[i, 1], pts[i, 2], " " + skel.joint_names[i], fontsize=7, color=jc[i])
    if set_limits:
        _set_equal_3d(ax, pts, radius)
    if frame == "camera":
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("z / depth (mm)")
        ax.set_zlabel("-y (mm)")
    else:
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
        ax.set_zlabel("z (mm)")
    if elev is not None or azim is not None:
        ax.view_init(elev=elev, azim=azim)
    return ax


# ---------------------------------------------------------------------------
# prediction vs ground truth
# ---------------------------------------------------------------------------
def plot_pred_vs_gt(pred, gt, skeleton, image=None, frame: str = "camera", visibility=None, titles=None,
                    overlay: bool = False, mode=None, figsize=None):
    """Prediction and ground truth side by side (2D or 3D, from the last dimension).

    Args:
        pred, gt: 2D keypoints ``(J, 2)`` in pixels, or 3D joints ``(J, 3)`` in mm.
        mode: ``"2d"`` or ``"3d"``; default ``"2d"`` when the last dimension is 2
            or an ``image`` is given (then a ``(J, 3)`` array is read as COCO
            ``(x, y, v)``), else ``"3d"``.
        skeleton: a :class:`~pose_lab.skeletons.Skeleton` or its name.
        image: optional image under both 2D panels.
        frame: 3D frame convention, see :func:`draw_skeleton_3d`.
        visibility: ``(J,)`` for 2D, applied to both.
        titles: two panel titles; default ``("prediction", "ground truth")``
            with the mean joint error added.
        overlay: add a third panel with both poses (prediction dashed).

    Returns:
        The figure (two or three panels; 3D panels share the same cube).
    """
    skel = get_skeleton(skeleton)
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape (J, 2) or (J, 3), got {p.shape} and {g.shape}")
    if mode not in (None, "2d", "3d"):
        raise ValueError(f"mode must be '2d', '3d' or None, got {mode!r}")
    is_2d = mode == "2d" if mode is not None else (p.shape[-1:] == (2,) or image is not None)
    dims = (2, 3) if is_2d else (3,)
    p = _joints(p, skel, dims, "pred")
    g = _joints(g, skel, dims, "gt")
    diff = np.linalg.norm(p[:, :2] - g[:, :2], axis=1) if is_2d else np.linalg.norm(p - g, axis=1)
    unit = "px" if is_2d else "mm"
    err = np.nanmean(diff) if np.any(np.isfinite(diff)) else float("nan")
    if titles is None:
        titles = (f"prediction (mean error {err:.1f} {unit})", "ground truth")
    n = 3 if overlay else 2
    fig = plt.figure(figsize=figsize or (4.5 * n, 4.5))
    axes = []
    for k in range(n):
        ax = fig.add_subplot(1, n, k + 1, **({} if is_2d else {"projection": "3d"}))
        axes.append(ax)
    if is_2d:
        draw_skeleton_2d(axes[0], p, skel, visibility=visibility, image=image)
        draw_skeleton_2d(axes[1], g, skel, visibility=visibility, image=image)
        if overlay:
            draw_skeleton_2d(axes[2], g, skel, visibility=visibility, image=image, label="ground truth")
            draw_skeleton_2d(axes[2], p, skel, visibility=visibility, color="tab:green", label="prediction")
            for line in axes[2].lines[-len(skel.edges):]:
                line.set_linestyle("--")
    else:
        pts = np.concatenate([_to_plot_frame(p, frame), _to_plot_frame(g, frame)])
        for ax, pose in zip(axes[:2], (p, g)):
            draw_skeleton_3d(ax, pose, skel, frame=frame, set_limits=False)
            _set_equal_3d(ax, pts)
        if overlay:
            draw_skeleton_3d(axes[2], g, skel, frame=frame, set_limits=False, label="ground truth")
            draw_skeleton_3d(axes[2], p, skel, frame=frame, set_limits=False, color="tab:green", label="prediction")
            _set_equal_3d(axes[2], pts)
    for ax, title in zip(axes, list(titles) + ["overlay"]):
        ax.set_title(title, fontsize=10)
    if overlay:
        axes[2].legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# heatmaps
# ---------------------------------------------------------------------------
def plot_heatmaps(image, heatmaps, names=None, max_cols: int = 6, alpha: float = 0.6, cmap: str = "jet",
                  max_maps=None):
    """An image with all its heatmaps overlaid (their maximum), then one panel per heatmap.

    Each overlay's opacity follows the heat, so the image shows through
    unchanged where a map is zero (no colour cast over the crop).

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` image; may be ``None`` (heatmaps only).
        heatmaps: ``(h, w, K)`` channels-last heatmaps (any stride: each is
            stretched over the full image).
        names: ``K`` keypoint names for the panel titles (e.g.
            ``COCO17.joint_names``).
        max_cols: panels per row.
        max_maps: draw at most this many heatmaps.

    Returns:
        The figure: ``1 + K`` image panels; the first shows all ``heatmaps``
        channels even when ``max_maps`` limits the panels.
    """
    hm = np.asarray(heatmaps, dtype=np.float64)
    if hm.ndim != 3:
        raise ValueError(f"heatmaps: expected shape (h, w, K) (channels last), got {hm.shape}")
    k = hm.shape[-1] if max_maps is None else min(int(max_maps), hm.shape[-1])
    if names is not None and len(names) < k:
        raise ValueError(f"names: expected at least {k} names (one per heatmap), got {len(names)}")
    if image is not None:
        img = np.asarray(image)
        if img.ndim not in (2, 3):
            raise ValueError(f"image: expected shape (H, W) or (H, W, C), got {img.shape}")
        height, width = img.shape[:2]
    else:
        height, width = hm.shape[:2]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    n = k + 1
    cols = min(max_cols, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows * height / max(width, 1) + 0.3),
                             squeeze=False)
    flat = axes.ravel()

    def overlay(ax, h):
        if image is None:
            ax.imshow(h, cmap=cmap, extent=extent)
            return
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, extent=extent)
        # opacity follows the heat: cold pixels leave the image untouched (no tint)
        top = max(float(h.max()), 1e-12)
        ax.imshow(h, cmap=cmap, alpha=alpha * np.clip(h / top, 0.0, 1.0), extent=extent)

    # the overview shows every keypoint (the maximum over all maps), not only the panels drawn
    overlay(flat[0], hm.max(axis=-1))
    flat[0].set_title(f"all {hm.shape[-1]} keypoints", fontsize=8)
    for i in range(k):
        overlay(flat[i + 1], hm[..., i])
        flat[i + 1].set_title(names[i] if names is not None else f"#{i}", fontsize=8)
    for ax in flat:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# training curves
# ---------------------------------------------------------------------------
def plot_training_curves(history, keys=None, logy=None, figsize=None):
    """One panel per metric with its training and validation curves.

    Args:
        history: a ``keras.callbacks.History`` (``model.fit``'s return value),
            its ``.history`` dict, or any ``{name: [values per epoch]}``.
        keys: metric names to plot (without the ``val_`` prefix); default all.
            ``val_<name>`` is drawn in the same panel, dashed.
        logy: log-scale y axis for these names (default: ``["loss"]`` when positive).

    Returns:
        The figure.
    """
    hist = getattr(history, "history", history)
    if not isinstance(hist, Mapping) or not hist:
        raise ValueError("history: expected a keras History or a non-empty dict {name: values per epoch}")
    names = [k for k in hist if not str(k).startswith("val_") and k != "learning_rate"] if keys is None else list(keys)
    if not names:  # validation-only history
        names = [str(k)[4:] for k in hist if str(k).startswith("val_")]
    missing = [k for k in names if k not in hist and f"val_{k}" not in hist]
    if missing:
        raise ValueError(f"history has no {missing}; it holds {sorted(hist)}")
    if logy is None:
        logy = [k for k in names if k == "loss" and np.all(np.asarray(hist.get(k, [1.0])) > 0)]
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=figsize or (4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in hist:
                vals = np.asarray(hist[key], dtype=np.float64)
                ax.plot(np.arange(1, len(vals) + 1), vals, style, marker="o" if len(vals) < 20 else None,
                        markersize=3, label="validation" if key.startswith("val_") else "training")
        if name in logy:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# latents
# ---------------------------------------------------------------------------
def plot_latents(z, labels=None, ax=None, title=None, s: float = 6.0, alpha: float = 0.7, cmap=None,
                 max_legend: int = 20):
    """Scatter plot of a 2D embedding of latent codes, coloured by label.

    Args:
        z: ``(N, 2)`` embedding (e.g. UMAP output). ``(N, D)`` with ``D > 2`` is
            projected on its first two principal components (the axis labels say so).
        labels: ``(N,)`` labels. Strings / integers with few values are drawn as
            categories with a legend; floats as a continuous colour bar.
        ax: axes to draw into (default: a new figure).

    Returns:
        The figure.
    """
    arr = np.asarray(z, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"z: expected shape (N, 2) (or (N, D>=2), projected with PCA), got {arr.shape}")
    xlabel, ylabel = "dim 1", "dim 2"
    if arr.shape[1] > 2:
        centered = arr - arr.mean(axis=0)
        _, sv, vt = np.linalg.svd(centered, full_matrices=False)
        arr = centered @ vt[:2].T
        var = sv**2 / max(np.sum(sv**2), 1e-12)
        xlabel, ylabel = f"PC 1 ({100 * var[0]:.0f}% var)", f"PC 2 ({100 * var[1]:.0f}% var)"
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
    else:
        fig = ax.figure
    if labels is None:
        ax.scatter(arr[:, 0], arr[:, 1], s=s, alpha=alpha, color="tab:blue")
    else:
        lab = np.asarray(labels)
        if lab.shape != (arr.shape[0],):
            raise ValueError(f"labels: expected shape ({arr.shape[0]},) (one per point), got {lab.shape}")
        uniq = list(dict.fromkeys(lab.tolist()))
        categorical = lab.dtype.kind in "USObi" and len(uniq) <= max(max_legend, 1) * 3
        if categorical:
            palette = matplotlib.colormaps[cmap or ("tab10" if len(uniq) <= 10 else "tab20")]
            for i, u in enumerate(uniq):
                m = lab == u
                ax.scatter(arr[m, 0], arr[m, 1], s=s, alpha=alpha, color=palette(i % palette.N), label=str(u))
            if len(uniq) <= max_legend:
                ax.legend(fontsize=7, markerscale=2, loc="best", frameon=False)
        else:
            sc = ax.scatter(arr[:, 0], arr[:, 1], s=s, alpha=alpha, c=lab.astype(np.float64), cmap=cmap or "viridis")
            fig.colorbar(sc, ax=ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig
