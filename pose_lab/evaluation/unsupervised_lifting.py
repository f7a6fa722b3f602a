"""Evaluating an unsupervised lifter: P-MPJPE and N-MPJPE, on Human3.6M-format data and on CMU clips.

An unsupervised lifter (:class:`pose_lab.training.unsupervised_lifting.UnsupervisedLifter`)
sees scale-free 2D (root-centred, divided by the mean root distance), so its 3D
has no unit: the absolute size of a person is unobservable from 2D alone. The
errors are therefore measured after aligning the scale:

* **N-MPJPE** (Rhodin et al. 2018): each root-centred prediction times its
  least-squares scale, then MPJPE (no rotation: a mirrored or tilted pose keeps its error);
* **P-MPJPE** (Human3.6M protocol 2): after the similarity (Procrustes)
  alignment, as for the supervised baseline (:mod:`pose_lab.evaluation.lifting`).

Both per action, averaged over actions (each action counts the same). The
prediction is in the camera frame (x right, y down, z away from the camera) as
the ground truth, so N-MPJPE also checks the depth direction.

:func:`cmu_lifting_arrays` places real CMU motion capture in the Human3.6M
capture area and projects it through S9's four cameras (the procedure of
notebook 07, section 7), so the same lifter can be measured on real motion.

Example:
    >>> table = evaluate_unsupervised_lifter(model, test.inputs_2d, test.targets_3d, test.actions)
    >>> table.average["P-MPJPE"], table.average["N-MPJPE"]          # mm
"""

from __future__ import annotations

import numpy as np
from keras import ops

from pose_lab import metrics
from pose_lab.geometry import ops as O
from pose_lab.training.base import batched_predict
from pose_lab.validation import check_poses

__all__ = ["METRICS", "cmu_lifting_arrays", "evaluate_unsupervised_lifter", "predict_unsupervised_3d",
           "unsupervised_errors"]

#: The columns of the tables: metric name -> ``fn(pred, target, reduction)``.
METRICS = {
    "P-MPJPE": metrics.p_mpjpe,
    "N-MPJPE": lambda p, t, reduction="mean": metrics.n_mpjpe(p, t, reduction=reduction, root=0),
}


def predict_unsupervised_3d(model, x2d, *, distance="model", root=0, batch_size=4096) -> np.ndarray:
    """Lift 2D poses ``(N, J, 2)`` (pixels or normalised) to root-centred 3D ``(N, J, 3)``, unit-free.

    Args:
        model: an :class:`~pose_lab.training.unsupervised_lifting.UnsupervisedLifter`
            or its bare lifter (normalised 2D -> depth offsets).
        x2d: 2D poses; each is root-centred and divided by its mean root distance here.
        distance: the root depth of the back-projection; ``"model"``: the
            model's own (10 for a bare lifter), ``None``: weak perspective.
        root: the root joint.
        batch_size: poses per call of the lifter (inference mode).

    Returns:
        float32 ``(N, J, 3)`` in units of the normalised 2D (mean 2D root distance 1).
    """
    lifter = getattr(model, "generator", model)
    if distance == "model":
        distance = getattr(model, "distance", 10.0)
    x = check_poses(x2d, "x2d (2D poses to lift)", dims=2, num_joints=lifter.input_shape[1], batched=True,
                    flat=True)
    xn = np.asarray(ops.convert_to_numpy(O.normalize_pose_2d(x, root=root)[0]), dtype=np.float32)
    d = batched_predict(lifter, xn, batch_size)
    pose = O.backproject_fixed_depth(xn, np.asarray(d, dtype=np.float32), distance)
    return np.asarray(ops.convert_to_numpy(pose), dtype=np.float32)


def unsupervised_errors(pred, target_mm, actions=None):
    """P-MPJPE and N-MPJPE (mm) per action and averaged over actions.

    Args:
        pred: ``(N, J, 3)`` root-centred predictions (any scale).
        target_mm: ``(N, J, 3)`` root-centred ground truth in mm (camera frame).
        actions: ``(N,)`` labels (``None``: one group ``"all"``).

    Returns:
        :class:`pose_lab.metrics.tables.ActionTable` with columns ``"P-MPJPE"``, ``"N-MPJPE"``
        (``table.average[...]``, ``table.to_markdown()``).
    """
    p = check_poses(pred, "pred", dims=3, batched=True, dtype=np.float64)
    t = check_poses(target_mm, "target_mm", dims=3, num_joints=p.shape[1], batched=True, flat=True,
                    dtype=np.float64)
    if len(p) != len(t):
        raise ValueError(f"pred and target_mm: lengths differ ({len(p)} vs {len(t)})")
    if actions is None:
        actions = np.full(len(p), "all")
    return metrics.evaluate_by_action(p, t, np.asarray(actions), metrics=METRICS)


def evaluate_unsupervised_lifter(model, x2d, y3d_mm, actions=None, *, distance="model", batch_size=4096,
                                 return_predictions=False):
    """Lift ``x2d`` and measure P-MPJPE / N-MPJPE against ``y3d_mm`` (root-centred, camera frame, mm).

    Returns the table of :func:`unsupervised_errors`, and with
    ``return_predictions`` the unit-free predictions ``(N, J, 3)`` too.
    """
    pred = predict_unsupervised_3d(model, x2d, distance=distance, batch_size=batch_size)
    table = unsupervised_errors(pred, y3d_mm, actions)
    return (table, pred) if return_predictions else table


def cmu_lifting_arrays(paths, stride=1, subject="S9"):
    """Real CMU clips seen by the four Human3.6M cameras of ``subject``: ``(x2d_px, y3d_mm, clip names)``.

    Each BVH clip is mapped to H36M-17 at 50 fps (:func:`pose_lab.data.bvh.load_bvh`),
    its pelvis trajectory centred on the capture area
    (:data:`pose_lab.data.synthetic.CAPTURE_CENTER`), the lowest ankle put about 8 cm
    above the floor, and every frame projected through the cameras with distortion
    (notebook 07, section 7).

    Args:
        paths: BVH files.
        stride: keep every ``stride``-th frame (after resampling to 50 fps).
        subject: whose calibration to use (S9 as notebook 07).

    Returns:
        ``(N, 17, 2)`` pixels, ``(N, 17, 3)`` root-centred camera-frame mm, ``(N,)`` clip stems.
    """
    from pose_lab.data.lifting import real_mocap_lifting_arrays

    x2d, y3d, names = real_mocap_lifting_arrays(paths, subject=subject, stride=stride)
    return x2d.astype(np.float32), y3d.astype(np.float32), names
