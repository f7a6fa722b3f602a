"""Evaluation recipes: data -> trained model -> metrics, one module per method (same stem as in models/ and training/).

* :mod:`.keypoints2d`: prediction with flip test, COCO results, OKS AP, per-keypoint tables (notebook 02).
* :mod:`.lifting`: 3D prediction, protocol 1/2 tables per action (notebook 07).
* :mod:`.vae`: latent encoding, mean prediction, multiple hypotheses (notebooks 08-09).
* :mod:`.crossmodal`: image -> 3D and 2D -> 3D protocol tables through the shared latent (notebook 10).
"""

from pose_lab.evaluation import crossmodal, keypoints2d, lifting, vae  # noqa: F401

__all__ = ["crossmodal", "keypoints2d", "lifting", "vae"]
