"""The depth lifter of unsupervised 2D -> 3D lifting (Chen et al. 2019), builders only.

"Unsupervised 3D pose estimation with geometric self-supervision" (Chen,
Tyagi, Agrawal, Drover, MV, Stojanov, Rehg; CVPR 2019) lifts a 2D pose by
predicting one **depth offset per joint**; the ``x, y`` of each 3D joint then
follow from the 2D joint and its depth (the joint lies on its camera ray,
:func:`pose_lab.geometry.ops.backproject_fixed_depth`):

.. code-block:: text

    x (17 x 2: root-centred, divided by the mean distance to the root)
      -> Dense h -> LeakyReLU  ->  [ residual block: 2 x (Dense h -> LeakyReLU) + skip ] x num_blocks
      -> Dense 17  ->  minus the root's value  ->  d (17 depth offsets, d_root = 0)

The root's depth is fixed (0 offset: the root sits at depth ``distance``,
Chen et al.'s c = 10), so the network only decides the shape. No batch norm
by default: the lifter is called on real 2D and on rotated re-projections in
the same step, two different distributions, and batch statistics would mix
them; ``batch_norm=True`` adds it as in
Martinez et al.'s blocks.

The 2D critic is :func:`pose_lab.models.adversarial.build_mlp_critic` with
``pose_shape=(17, 2)`` (no batch norm: WGAN-GP's penalty is per sample).

The rest of the method: the geometry in :mod:`pose_lab.geometry.ops`
(``random_view_rotation``, ``rotate_about_root``, ``normalize_pose_2d``,
``backproject_fixed_depth``, ``project_fixed_depth``), the losses at the end of
:mod:`pose_lab.losses`, training in :mod:`pose_lab.training.unsupervised_lifting`,
evaluation in :mod:`pose_lab.evaluation.unsupervised_lifting`.

Example:
    >>> lifter = build_depth_lifter(hidden=512)      # (B, 17, 2) -> (B, 17) depth offsets
"""

from __future__ import annotations

import numbers

import keras
from keras import layers, ops

__all__ = ["ROOT", "FixRootDepth", "build_depth_lifter"]

ROOT = 0  # pelvis ("Hip") in H36M-17


@keras.saving.register_keras_serializable(package="pose_lab")
class FixRootDepth(layers.Layer):
    """``sign * (d - d[:, root])``: per-joint depth offsets ``(B, J)`` with the root's offset exactly 0.

    ``sign`` is a non-trainable weight, 1 at the start. :meth:`flip` sets it to
    ``-sign``: the lifter then predicts every depth reversed, the mirror image
    of its 3D (what :class:`pose_lab.training.unsupervised_lifting.MirrorCheck`
    does when training has settled on mirrored bodies, which no 2D view shows).
    """

    def __init__(self, root: int = ROOT, **kwargs):
        super().__init__(**kwargs)
        self.root = int(root)

    def build(self, input_shape):
        self.sign = self.add_weight(shape=(), initializer="ones", trainable=False, name="sign")

    def flip(self):
        """Reverse every predicted depth from now on (``sign -> -sign``)."""
        self.sign.assign(-self.sign)

    def call(self, d):
        return ops.cast(self.sign, d.dtype) * (d - d[:, self.root : self.root + 1])

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "root": self.root}


def _check_int(name, value, minimum):
    if not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")


def _mlp(x, hidden, num_blocks, dropout, batch_norm, prefix):
    def unit(h, name):
        h = layers.Dense(hidden, kernel_initializer="he_normal", name=f"{name}_dense")(h)
        if batch_norm:
            h = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(h)
        h = layers.LeakyReLU(negative_slope=0.2, name=f"{name}_act")(h)
        if dropout:
            h = layers.Dropout(dropout, name=f"{name}_dropout")(h)
        return h

    x = unit(x, f"{prefix}stem")
    for i in range(num_blocks):
        y = unit(unit(x, f"{prefix}block{i + 1}_a"), f"{prefix}block{i + 1}_b")
        x = layers.Add(name=f"{prefix}block{i + 1}_add")([x, y])
    return x


def build_depth_lifter(num_joints: int = 17, hidden: int = 1024, num_blocks: int = 2, dropout: float = 0.0,
                       batch_norm: bool = False, root: int = ROOT, name: str = "depth_lifter") -> keras.Model:
    """A residual MLP from normalised 2D ``(B, J, 2)`` to depth offsets ``(B, J)`` (root offset 0).

    Args:
        num_joints: joints ``J`` (17 for H36M-17).
        hidden: width of every hidden layer (1024 as Martinez et al.; 256-512 train fast on a CPU).
        num_blocks: residual blocks of two layers each.
        dropout: dropout rate after every hidden layer (0: none).
        batch_norm: batch norm after every ``Dense`` (off by default, see the module docstring).
        root: the joint whose depth offset is fixed at 0.
        name: model name.

    Returns:
        A functional ``keras.Model``: input ``"pose_2d"`` ``(B, J, 2)``, output
        ``"depth"`` ``(B, J)`` (units of the normalised 2D: the mean root
        distance of the 2D pose is 1).
    """
    _check_int("num_joints", num_joints, 2)
    _check_int("hidden", hidden, 1)
    _check_int("num_blocks", num_blocks, 0)
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1), got {dropout!r}")
    if not -num_joints <= root < num_joints:
        raise ValueError(f"root: expected a joint index in [0, {num_joints}), got {root!r}")
    inputs = keras.Input((num_joints, 2), name="pose_2d")
    x = layers.Flatten(name="flatten")(inputs)
    x = _mlp(x, hidden, num_blocks, dropout, batch_norm, "")
    d = layers.Dense(num_joints, kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3), name="head")(x)
    d = FixRootDepth(root % num_joints, name="depth")(d)
    return keras.Model(inputs, d, name=name)

