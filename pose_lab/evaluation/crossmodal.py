"""Evaluating the cross-modal VAE: image -> 3D and 2D -> 3D under the Human3.6M protocols.

The recipe of notebook 10 and ``benchmarks/bench_crossmodal.py``: a trained
:class:`~pose_lab.training.crossmodal.CrossModalVAE` predicts the validation
poses twice, from the image (cross-modal generation: image encoder, 3D
decoder) and from the exact 2D pose (2D encoder, the same 3D decoder); each is
scored against the root-centred ground truth with protocol 1 (MPJPE) and
protocol 2 (P-MPJPE), in mm over all joints (the dropped root counted as
exact), per action and averaged over actions
(:func:`pose_lab.evaluation.lifting.protocol_errors`).
:func:`mean_pose` gives the "no input" baseline: the training mean pose.

Example:
    >>> tables = evaluate_crossmodal(model, val["images"], val["joints_2d"], val["joints_3d"], val["actions"])
    >>> tables["image -> 3D"].average["P1"], tables["2D -> 3D"].average["P2"]
    >>> lifting.format_results(tables)              # one ResultTable, methods side by side
"""

from __future__ import annotations

import numpy as np

from pose_lab.data.normalization import NormStats
from pose_lab.evaluation.lifting import protocol_errors
from pose_lab.validation import check_poses

__all__ = ["IMAGE_TO_3D", "POSE2D_TO_3D", "evaluate_crossmodal", "mean_pose"]

#: Names of the two prediction paths in the tables of :func:`evaluate_crossmodal`.
IMAGE_TO_3D, POSE2D_TO_3D = "image -> 3D", "2D -> 3D"


def mean_pose(stats, n: int) -> np.ndarray:
    """The training mean pose ``(n, J, 3)`` in mm, root at the origin: the error of ignoring the input.

    ``stats``: the training set's :class:`~pose_lab.data.normalization.NormStats` (or its ``to_dict()``).
    """
    st = NormStats.coerce(stats)
    if int(n) < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    return st.denormalize_3d(np.zeros((int(n),) + st.mean_3d.shape)).astype(np.float32)


def evaluate_crossmodal(model, images, joints_2d, joints_3d, actions=None, *, batch_size=256,
                        return_predictions=False):
    """Protocols 1 and 2 of both prediction paths of a cross-modal VAE.

    Args:
        model: a trained :class:`~pose_lab.training.crossmodal.CrossModalVAE` with ``stats``.
        images: ``(N, H, W, C)`` uint8 or floats in ``[0, 1]``.
        joints_2d: ``(N, J, 2)`` pixels (the 2D -> 3D path's input).
        joints_3d: ``(N, J, 3)`` ground truth, camera-frame mm (root-centred here).
        actions: ``(N,)`` action labels (``None``: one group).
        batch_size: inference batch size.
        return_predictions: also return ``{path: (N, J, 3) mm}``.

    Returns:
        ``{"image -> 3D": table, "2D -> 3D": table}``, each the table of
        :func:`~pose_lab.evaluation.lifting.protocol_errors`
        (``table.average["P1"]``, ``table.average["P2"]``); with
        ``return_predictions`` also the predictions.
    """
    if model.stats is None:
        raise ValueError("model: needs normalisation statistics (CrossModalVAE(..., stats=...)) to report mm")
    target = check_poses(joints_3d, "joints_3d (ground-truth 3D, camera-frame mm)", dims=3,
                         num_joints=model.num_joints, batched=True)
    target = target - target[:, model.root:model.root + 1]
    preds = {
        IMAGE_TO_3D: model.predict_3d_from_image(images, batch_size),
        POSE2D_TO_3D: model.predict_3d_from_2d(joints_2d, batch_size),
    }
    tables = {name: protocol_errors(pred, target, actions) for name, pred in preds.items()}
    return (tables, preds) if return_predictions else tables
