"""2D -> 3D pose lifting: the Martinez et al. (2017) network (builders only).

"A simple yet effective baseline for 3d human pose estimation" (Martinez,
Hossain, Romero, Little, ICCV 2017) lifts a 2D pose to 3D with a small MLP:

.. code-block:: text

    x (17 x 2, z-scored)  ->  Dense 1024 -> BN -> ReLU -> Dropout 0.5
                          ->  [ residual block: 2 x (Dense 1024 -> BN -> ReLU -> Dropout) + skip ] x 2
                          ->  Dense 16*3  ->  y (16 x 3, z-scored)

* **inputs**: 2D joints in pixels, z-scored per coordinate with the training
  set's mean and std, *not* root-centred (the absolute image position carries
  perspective information, seed 004 section 3.2);
* **targets**: 3D joints in the camera frame, in mm, root-centred (pelvis at
  the origin), the root dropped (always zero) and z-scored per coordinate;
* every ``Dense`` kernel has a max-norm constraint (``||w_j|| <= 1`` for the
  weights into each unit), He-normal initialisation.

The rest of the method lives in the modules of the same stem:

* :mod:`pose_lab.data.lifting`: the protocol split and the z-scores
  (:func:`~pose_lab.data.lifting.prepare_lifting_data`, with a
  :class:`~pose_lab.data.normalization.NormStats`);
* :mod:`pose_lab.training.lifting`: Adam with the paper's decay, the MSE
  compile and :func:`~pose_lab.training.lifting.fit_lifter`;
* :mod:`pose_lab.evaluation.lifting`: predictions in mm and the Human3.6M
  protocols 1 (MPJPE) and 2 (P-MPJPE), per action and averaged.

Shapes: 2D ``(N, 17, 2)`` z-scores in, 3D ``(N, 16, 3)`` z-scores out (root
dropped). Joint order: :data:`pose_lab.skeletons.H36M17`.

Example:
    >>> model = build_lifter()              # 17 x 2 -> 16 x 3, 4.3M parameters
    >>> thesis = build_lifter(num_joints_in=16, num_joints_out=16)   # the 2D root dropped too
"""

from __future__ import annotations

import numbers

import keras
from keras import layers

__all__ = ["ROOT", "build_lifter", "residual_block"]

ROOT = 0  # pelvis ("Hip") in H36M-17


def _dense(units, max_norm, name):
    constraint = keras.constraints.MaxNorm(max_value=max_norm, axis=0) if max_norm else None
    return layers.Dense(
        units,
        kernel_initializer="he_normal",
        kernel_constraint=constraint,
        name=name,
    )


def _dense_bn_relu_dropout(x, hidden, dropout, max_norm, bn_momentum, name):
    x = _dense(hidden, max_norm, f"{name}_dense")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def residual_block(x, hidden=1024, dropout=0.5, max_norm=1.0, bn_momentum=0.9, name="block"):
    """Martinez et al.'s residual block: ``x + f(f(x))``, ``f`` = Dense -> BN -> ReLU -> Dropout.

    Args:
        x: a symbolic tensor of shape ``(batch, hidden)``.
        hidden, dropout, max_norm, bn_momentum: as in :func:`build_lifter`.
        name: prefix of the block's layer names.

    Returns:
        A symbolic tensor of the same shape.
    """
    y = _dense_bn_relu_dropout(x, hidden, dropout, max_norm, bn_momentum, f"{name}_a")
    y = _dense_bn_relu_dropout(y, hidden, dropout, max_norm, bn_momentum, f"{name}_b")
    return layers.Add(name=f"{name}_add")([x, y])


def build_lifter(
    num_joints_in: int = 17,
    num_joints_out: int = 16,
    hidden: int = 1024,
    num_blocks: int = 2,
    dropout: float = 0.5,
    max_norm: float | None = 1.0,
    bn_momentum: float = 0.9,
    name: str = "martinez_lifter",
) -> keras.Model:
    """The Martinez et al. (2017) 2D -> 3D lifting network (a functional ``keras.Model``).

    Args:
        num_joints_in: 2D joints in the input (17 for H36M-17 with the root;
            the thesis drops the 2D root too: 16).
        num_joints_out: 3D joints predicted (16: the root is dropped).
        hidden: width of every hidden layer (1024 in the paper).
        num_blocks: residual blocks (2 in the paper).
        dropout: dropout rate after every hidden layer (0.5).
        max_norm: max-norm constraint on every kernel's columns (1.0);
            ``None`` disables it.
        bn_momentum: batch-norm moving-average momentum (0.9, PyTorch's 0.1
            convention; Keras' default 0.99 needs ~10x more steps to settle).
        name: model name.

    Returns:
        A model mapping ``(batch, num_joints_in, 2)`` to ``(batch, num_joints_out, 3)``,
        both z-scored.
    """
    for arg, value in (("num_joints_in", num_joints_in), ("num_joints_out", num_joints_out),
                       ("hidden", hidden)):
        if not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{arg}: expected a positive int, got {value!r}")
    if not isinstance(num_blocks, numbers.Integral) or num_blocks < 0:
        raise ValueError(f"num_blocks: expected a non-negative int, got {num_blocks!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1), got {dropout!r}")
    if max_norm is not None and not float(max_norm) > 0:
        raise ValueError(f"max_norm: expected a positive number or None, got {max_norm!r}")

    inputs = keras.Input((num_joints_in, 2), name="pose_2d")
    x = layers.Flatten(name="flatten")(inputs)
    x = _dense_bn_relu_dropout(x, hidden, dropout, max_norm, bn_momentum, "stem")
    for i in range(num_blocks):
        x = residual_block(x, hidden, dropout, max_norm, bn_momentum, name=f"block{i + 1}")
    x = _dense(num_joints_out * 3, max_norm, "head")(x)
    outputs = layers.Reshape((num_joints_out, 3), name="pose_3d")(x)
    return keras.Model(inputs, outputs, name=name)
