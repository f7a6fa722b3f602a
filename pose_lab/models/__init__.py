"""Model builders: functions returning ``keras.Model`` (backbones, heads, lifters, VAEs).

Importing this package imports its modules, which registers the kit's custom
layers for ``keras.models.load_model``.
"""

from pose_lab.models import backbones, crossmodal, heads, keypoints2d, lifting, vae  # noqa: F401

__all__ = ["backbones", "crossmodal", "heads", "keypoints2d", "lifting", "vae"]
