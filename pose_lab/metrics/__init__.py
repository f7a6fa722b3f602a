"""Pose metrics: 3D joint errors, PCK/AUC, OKS and COCO keypoint AP.

All array functions take NumPy-compatible arrays and return NumPy values.
Units follow the inputs: in this kit 3D joints are in millimetres, so
``mpjpe`` and friends return millimetres; 2D keypoints are in pixels.

3D errors (Human3.6M protocols)
-------------------------------
For a prediction ``P`` and ground truth ``G`` with ``J`` joints (shape ``(J, 3)``):

* **MPJPE** (protocol 1): ``mean_j ||P_j - G_j||``. Usually computed on
  root-centred poses (subtract the pelvis from both first, see
  :func:`pose_lab.geometry.root_center`).
* **P-MPJPE** (protocol 2): MPJPE after aligning ``P`` to ``G`` with the best
  similarity transform ``s R P + t`` (Procrustes / Umeyama, proper rotations
  only, so a mirrored pose is *not* fixed), per sample.
* **N-MPJPE** (Rhodin et al. 2018, as in VideoPose3D's ``n_mpjpe``): MPJPE
  after the least-squares scale ``s = <P, G> / <P, P>`` (sums over joints and
  coordinates) per sample; only the scale is corrected.
* **MPJVE** (:func:`mean_velocity_error`): MPJPE of the finite-difference
  velocities along time, in input units per frame.
* **3D PCK / AUC** (Mehta et al. 2017): fraction of joints with error
  ``<= 150`` mm; AUC is the mean PCK over thresholds ``0, 5, ..., 150`` mm.

Every 3D function takes ``reduction``:

* ``"mean"`` (default): one float, the mean over all samples and joints;
* ``"per_joint"``: shape ``(J,)``, each joint averaged over the samples;
* ``"per_sample"``: shape ``(...)``, each pose averaged over its joints;
* ``"none"``: shape ``(..., J)``, no averaging.

Because every pose has the same ``J``, the ``"mean"`` of the per-sample values
equals the ``"mean"`` of the per-joint values.

Per-action tables (:func:`evaluate_by_action`, :func:`per_action_table`)
follow the Human3.6M literature: the error is averaged over the frames of each
action first, then the per-action errors are averaged with equal weight
(``"Average"`` row), which is the number papers report.

2D metrics
----------
* **PCK** (:func:`pck_2d`): keypoint correct when its pixel error is at most
  ``threshold * reference size`` (e.g. 0.05 of the box size, or 0.5 of the
  head size for PCKh@0.5).
* **OKS** (:func:`oks`): the COCO object keypoint similarity, the formula of
  ``pycocotools.cocoeval.COCOeval.computeOks``::

      OKS = mean over labelled keypoints (v > 0) of exp(-d_i^2 / (2 * area * (2 sigma_i)^2))

  with ``area`` the ground-truth segment area in pixels^2 and ``sigma_i``
  :data:`pose_lab.skeletons.COCO_OKS_SIGMAS`.
* **COCO keypoint AP** (:func:`coco_keypoint_ap`): the ten official stats
  computed by pycocotools ``COCOeval(iouType="keypoints")``.

Keras
-----
:class:`MPJPE` is a ``keras.metrics.Metric`` (a running mean, backend-agnostic
through ``keras.ops``) to pass to ``model.compile(metrics=[...])``.

Modules
-------
* :mod:`pose_lab.metrics.pose3d`: MPJPE family, 3D PCK / AUC, best-of-k MPJPE,
  the Keras :class:`MPJPE`;
* :mod:`pose_lab.metrics.pose2d`: 2D pixel error, PCK, OKS, box sizes;
* :mod:`pose_lab.metrics.coco`: COCO keypoint AP (pycocotools) and its input checks;
* :mod:`pose_lab.metrics.tables`: :class:`ResultTable` (the kit's one result
  table) and the per-action tables;
* :mod:`pose_lab.metrics.representation`: latent-space diagnostics
  (:func:`active_units`, :func:`label_separability`);
* :mod:`pose_lab.metrics.realism`: realism of generated 3D poses (bone
  asymmetry, proportions, joint limits, diversity, Frechet distance,
  two-sample classifier, mirrored bodies).

Every name is re-exported here: ``from pose_lab import metrics; metrics.mpjpe(...)``.
"""

from __future__ import annotations

from pose_lab.metrics import coco, pose2d, pose3d, realism, representation, tables
from pose_lab.metrics.coco import (COCO_BOX_STATS, COCO_KEYPOINT_STATS, coco_box_ap, coco_keypoint_ap,
                                   coco_results_from_ground_truth)
from pose_lab.metrics.pose2d import (assign_sides_from_truth, box_size, keypoint_error_2d, left_right_swaps, oks,
                                     pck_2d)
from pose_lab.metrics.pose3d import (
    AUC3D_THRESHOLDS,
    MPJPE,
    PCK3D_THRESHOLD,
    REDUCTIONS,
    auc_3d,
    best_of_k_mpjpe,
    mean_velocity_error,
    mpjpe,
    n_mpjpe,
    p_mpjpe,
    pck_3d,
    per_joint_mpjpe,
)
from pose_lab.metrics.realism import (
    average_pairwise_distance,
    bend_angles,
    bone_asymmetry,
    bone_length_ratio_error,
    bone_vectors,
    frechet_distance,
    frechet_pose_distance,
    joint_limit_violations,
    mirrored_fraction,
    pose_features,
    realism_report,
    two_sample_classifier_accuracy,
)
from pose_lab.metrics.representation import active_units, label_separability
from pose_lab.metrics.tables import ActionTable, ResultTable, evaluate_by_action, per_action_table

# every public name of the submodules (their own ``__all__``), re-exported above
__all__ = [*pose3d.__all__, *pose2d.__all__, *coco.__all__, *tables.__all__, *representation.__all__,
           *realism.__all__]
