"""Evaluation recipes: data -> trained model -> metrics, one module per method (same stem as in models/ and training/)."""

from pose_lab.evaluation import keypoints2d  # noqa: F401
from pose_lab.evaluation import lifting  # noqa: F401
from pose_lab.evaluation import crossmodal, vae  # noqa: F401
