"""Evaluation recipes: data -> trained model -> metrics, one module per method (same stem as in models/ and training/).

* :mod:`.keypoint_rcnn`: detections -> COCO box and keypoint results, box AP and keypoint AP (notebook 03).
* :mod:`.contrastive`: frozen-feature probes, silhouettes and K-means of SimCLR / SimSiam encoders (notebooks 04-05).
* :mod:`.keypoints2d`: prediction with flip test, COCO results, OKS AP, per-keypoint tables (notebook 02).
* :mod:`.lifting`: 3D prediction, protocol 1/2 tables per action (notebook 07).
* :mod:`.vae`: latent encoding, mean prediction, multiple hypotheses (notebooks 08-09).
* :mod:`.crossmodal`: image -> 3D and 2D -> 3D protocol tables through the shared latent (notebook 10).
* :mod:`.adversarial`: realism reports of generated 3D poses (notebook 11).
* :mod:`.unsupervised_lifting`: 2D-only lifting evaluated with P-MPJPE / N-MPJPE, CMU transfer (notebook 12).
"""

from pose_lab.evaluation import (  # noqa: F401
    adversarial,
    contrastive,
    crossmodal,
    keypoint_rcnn,
    keypoints2d,
    lifting,
    unsupervised_lifting,
    vae,
)

__all__ = ["adversarial", "contrastive", "crossmodal", "keypoint_rcnn", "keypoints2d", "lifting", "unsupervised_lifting", "vae"]
