"""The training data of the cross-modal VAE (notebook 10): images and z-scored poses in one dict.

:class:`pose_lab.training.crossmodal.CrossModalVAE` trains on dicts
``{"image", "pose_2d", "pose_3d"}``; :func:`prepare_crossmodal_data` builds one
from images and poses in natural units (pixels, camera-frame mm), e.g. the
crops of :func:`pose_lab.data.synthetic.render_crops`, with the training set's
:class:`~pose_lab.data.normalization.NormStats`.

The thesis's normalisation (seed 004, section 3.2, as Martinez et al.): the 2D
pose stays in pixels, *not* root-centred; the 3D pose is root-centred; the
root joint is dropped from both; each coordinate is z-scored.
:func:`crossmodal_stats` is that choice in one call.

Example:
    >>> crops = render_crops(512, size=64, seed=1, actions=True)
    >>> stats = crossmodal_stats(crops["joints_2d"], crops["joints_3d"])   # a NormStats
    >>> data = prepare_crossmodal_data(crops["images"], crops["joints_2d"], crops["joints_3d"], stats)
"""

from __future__ import annotations

import numpy as np

from pose_lab.data.normalization import NormStats
from pose_lab.validation import check_images, check_poses

__all__ = ["crossmodal_stats", "prepare_crossmodal_data"]


def crossmodal_stats(joints_2d, joints_3d, *, root: int = 0, drop_root: bool = True) -> NormStats:
    """The thesis's statistics: ``NormStats.from_arrays`` with the 2D root dropped too (``drop_root``).

    A convenience for :meth:`NormStats.from_arrays(joints_2d, joints_3d, root=root,
    drop_root_2d=drop_root, drop_root_3d=True) <pose_lab.data.normalization.NormStats.from_arrays>`:
    ``joints_2d (N, J, 2)`` pixels, ``joints_3d (N, J, 3)`` camera-frame mm of
    the training set; the 3D root is always dropped (it is zero once centred).
    """
    return NormStats.from_arrays(joints_2d, joints_3d, root=root, drop_root_2d=drop_root, drop_root_3d=True)


def prepare_crossmodal_data(images, joints_2d, joints_3d, stats) -> dict:
    """The training dict of :class:`~pose_lab.training.crossmodal.CrossModalVAE` from images and poses.

    Args:
        images: ``(N, H, W, C)`` uint8 (kept as uint8: the model divides by
            255 inside its step, so 24k 64x64 crops take 300 MB, not 1.2 GB)
            or floats in ``[0, 1]`` (returned as float32).
        joints_2d: ``(N, J, 2)`` pixels (``J = stats.num_joints``, 17 for H36M-17).
        joints_3d: ``(N, J, 3)`` camera-frame mm (root-centred here).
        stats: the training set's :class:`~pose_lab.data.normalization.NormStats`
            (or its ``to_dict()``): its flags decide which roots are dropped
            and its ``root`` which joint is the root.

    Returns:
        ``{"image": uint8 or float32 [0, 1], "pose_2d": (N, J2, 2) z-scores,
        "pose_3d": (N, J3, 3) z-scores of the root-centred pose}``.
    """
    if stats is None:
        raise ValueError("stats: expected the training set's NormStats (e.g. crossmodal_stats(...)), got None")
    st = NormStats.coerce(stats)
    img = check_images(images, "images")
    if img.dtype != np.uint8:  # uint8 stays uint8 (4x less memory); the model divides by 255
        img = check_images(img, "images", unit_range=True)
    j = st.num_joints
    j2 = check_poses(joints_2d, "joints_2d (2D poses, pixels)", dims=2, num_joints=j, batched=True)
    j3 = check_poses(joints_3d, "joints_3d (3D poses, camera-frame mm)", dims=3, num_joints=j, batched=True)
    if not len(img) == len(j2) == len(j3):
        raise ValueError(
            f"images, joints_2d, joints_3d: expected the same N, got {len(img)}, {len(j2)}, {len(j3)}"
        )
    return {
        "image": img,
        "pose_2d": st.normalize_2d(j2).astype(np.float32),
        "pose_3d": st.normalize_3d(j3).astype(np.float32),
    }
