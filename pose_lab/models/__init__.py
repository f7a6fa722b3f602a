"""Model builders: functions returning ``keras.Model`` (backbones, heads, lifters, VAEs).

Importing this package imports its modules, which registers the kit's custom
layers for ``keras.models.load_model``.
"""

from pose_lab.models import (  # noqa: F401
    adversarial,
    backbones,
    contrastive,
    crossmodal,
    heads,
    keypoint_rcnn,
    keypoints2d,
    lifting,
    unsupervised_lifting,
    vae,
)

__all__ = [
    "adversarial", "backbones", "contrastive", "crossmodal", "heads", "keypoint_rcnn", "keypoints2d", "lifting", "unsupervised_lifting", "vae",
]
