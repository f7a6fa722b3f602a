"""Training classes with custom ``compute_loss`` / ``train_step`` and callbacks.

Importing this package imports its modules, so every serialisable class of the
kit (trainers, schedules, callbacks and, through them, the model layers of
:mod:`pose_lab.models`) is registered: ``import pose_lab.training`` is all
``keras.models.load_model`` needs to read a saved pose_lab model.
"""

from pose_lab.training import (  # noqa: F401
    adversarial,
    base,
    callbacks,
    contrastive,
    crossmodal,
    keypoint_rcnn,
    keypoints2d,
    lifting,
    schedules,
    unsupervised_lifting,
    vae,
)

__all__ = [
    "adversarial", "base", "callbacks", "contrastive", "crossmodal", "keypoint_rcnn", "keypoints2d", "lifting", "schedules", "unsupervised_lifting",
    "vae",
]
