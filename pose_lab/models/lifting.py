"""2D -> 3D pose lifting: the Martinez et al. (2017) network (builders only).

"A simple yet effective baseline for 3d human pose estimation" (Martinez,
Hossain, Romero, Little, ICCV 2017) lifts a 2D pose to 3D with a small MLP:

.. code-block:: text

    x (16 x 2, z-scored)  ->  Dense 1024 -> BN -> ReLU -> Dropout 0.5
                          ->  [ residual block: 2 x (Dense 1024 -> BN -> ReLU -> Dropout) + skip ] x 2
                          ->  Dense 16*3  ->  y (16 x 3, z-scored)

* **inputs**: 2D joints in pixels, z-scored per coordinate with the training
  set's mean and std, *not* root-centred (the absolute image position carries
  perspective information, seed 004 section 3.2). The authors feed **16**
  joints: H36M-17 without Neck/Nose, the joint the MPII-trained stacked
  hourglass detector does not have (their code does it for ground-truth 2D
  too); :func:`pose_lab.data.lifting.prepare_lifting_data` selects them;
* **targets**: 3D joints in the camera frame, in mm, root-centred (pelvis at
  the origin), the root dropped (always zero) and z-scored per coordinate;
* **max-norm** as the authors' code does it (``tf.clip_by_norm(w, 1)`` on
  every weight matrix, in the forward pass): the kernel used is
  ``W * min(1, 1 / ||W||_F)``, the *whole* matrix's Frobenius norm clipped to
  1 while the stored variable stays free (:class:`ClippedDense`). The kit's
  earlier variant, a ``keras.constraints.MaxNorm(axis=0)`` that rescales each
  unit's incoming weights to norm <= 1 after every optimiser step, remains
  available (``max_norm_mode="unit"``);
* He-normal initialisation of the kernels (Keras' ``he_normal``: a
  truncated normal rescaled to std ``sqrt(2 / fan_in)``; the authors
  truncate a normal of that std, about 12 % narrower, and initialise the
  biases the same way where Keras starts them at 0).

The rest of the method lives in the modules of the same stem:

* :mod:`pose_lab.data.lifting`: the protocol split, the held-out validation
  sequences and the z-scores (:func:`~pose_lab.data.lifting.prepare_lifting_data`,
  with a :class:`~pose_lab.data.normalization.NormStats`);
* :mod:`pose_lab.training.lifting`: Adam with the paper's decay, the MSE
  compile and :func:`~pose_lab.training.lifting.fit_lifter`;
* :mod:`pose_lab.evaluation.lifting`: predictions in mm and the Human3.6M
  protocols 1 (MPJPE) and 2 (P-MPJPE), per action and averaged.

Shapes: 2D ``(N, J_in, 2)`` z-scores in (16 joints by default), 3D
``(N, 16, 3)`` z-scores out (root dropped). Joint order:
:data:`pose_lab.skeletons.H36M17` (the input: its 16 joints without Neck/Nose).

Example:
    >>> model = build_lifter()              # 16 x 2 -> 16 x 3, 4.3M parameters, Frobenius max-norm
    >>> kit_v1 = build_lifter(num_joints_in=17, max_norm_mode="unit")   # the kit's earlier defaults
    >>> thesis = build_lifter(num_joints_in=16, num_joints_out=16)   # the 2D root dropped instead
"""

from __future__ import annotations

import numbers

import keras
from keras import layers, ops

__all__ = ["MAX_NORM_MODES", "ROOT", "ClippedDense", "build_lifter", "clip_by_norm", "residual_block"]

ROOT = 0  # pelvis ("Hip") in H36M-17

#: ``"frobenius"``: the authors' ``tf.clip_by_norm(W, c)`` in the forward pass (:class:`ClippedDense`);
#: ``"unit"``: ``keras.constraints.MaxNorm(c, axis=0)`` on each unit's incoming weights after every step.
MAX_NORM_MODES = ("frobenius", "unit")


def clip_by_norm(w, max_norm=1.0):
    """``w * max_norm / max(||w||_F, max_norm)`` (``keras.ops``): ``tf.clip_by_norm`` over the whole tensor.

    Args:
        w: a tensor (any shape); its Frobenius (global L2) norm is taken over all entries.
        max_norm: the largest norm allowed (> 0).

    Returns:
        ``w`` unchanged when ``||w||_F <= max_norm``, else ``w`` rescaled to norm ``max_norm``.
    """
    norm = ops.sqrt(ops.sum(ops.square(w)))
    return w * (max_norm / ops.maximum(norm, max_norm))


@keras.saving.register_keras_serializable(package="pose_lab")
class ClippedDense(layers.Dense):
    """``Dense`` whose kernel is clipped to Frobenius norm ``max_norm`` in the forward pass.

    Martinez et al.'s code computes every layer as
    ``matmul(x, tf.clip_by_norm(w, 1)) + b``: the stored weight matrix is
    unconstrained, the one *used* is ``W * min(1, max_norm / ||W||_F)`` (the
    whole matrix's norm, not each column's), and the gradient flows through
    the rescaling. Unlike a ``kernel_constraint``, nothing is changed after
    the optimiser step.

    Args:
        units: output width.
        max_norm: bound on the Frobenius norm of the kernel used (1.0 in the paper), > 0.
        **kwargs: as for ``keras.layers.Dense`` (``kernel_initializer``, ``use_bias``, ...).

    Example:
        >>> layer = ClippedDense(8, max_norm=1.0)
        >>> y = layer(np.ones((2, 4)))           # == ones @ layer.clipped_kernel() + layer.bias
    """

    def __init__(self, units, max_norm=1.0, **kwargs):
        if not (isinstance(max_norm, numbers.Real) and float(max_norm) > 0):
            raise ValueError(f"ClippedDense.max_norm: expected a positive number, got {max_norm!r}")
        super().__init__(units, **kwargs)
        self.max_norm = float(max_norm)

    def clipped_kernel(self):
        """The kernel the layer uses: ``kernel * max_norm / max(||kernel||_F, max_norm)``."""
        return clip_by_norm(self.kernel, self.max_norm)

    def call(self, inputs, training=None):
        x = ops.matmul(inputs, self.clipped_kernel())
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self):
        return {**super().get_config(), "max_norm": self.max_norm}


def _dense(units, max_norm, max_norm_mode, name):
    kwargs = dict(kernel_initializer="he_normal", name=name)
    if max_norm and max_norm_mode == "frobenius":
        return ClippedDense(units, max_norm=max_norm, **kwargs)
    constraint = keras.constraints.MaxNorm(max_value=max_norm, axis=0) if max_norm else None
    return layers.Dense(units, kernel_constraint=constraint, **kwargs)


def _dense_bn_relu_dropout(x, hidden, dropout, max_norm, max_norm_mode, bn_momentum, name):
    x = _dense(hidden, max_norm, max_norm_mode, f"{name}_dense")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def _check_max_norm_mode(max_norm_mode):
    if max_norm_mode not in MAX_NORM_MODES:
        raise ValueError(f"max_norm_mode: expected one of {MAX_NORM_MODES}, got {max_norm_mode!r}")


def residual_block(x, hidden=1024, dropout=0.5, max_norm=1.0, bn_momentum=0.9, name="block",
                   max_norm_mode="frobenius"):
    """Martinez et al.'s residual block: ``x + f(f(x))``, ``f`` = Dense -> BN -> ReLU -> Dropout.

    Args:
        x: a symbolic tensor of shape ``(batch, hidden)``.
        hidden, dropout, max_norm, bn_momentum, max_norm_mode: as in :func:`build_lifter`.
        name: prefix of the block's layer names.

    Returns:
        A symbolic tensor of the same shape.
    """
    _check_max_norm_mode(max_norm_mode)
    y = _dense_bn_relu_dropout(x, hidden, dropout, max_norm, max_norm_mode, bn_momentum, f"{name}_a")
    y = _dense_bn_relu_dropout(y, hidden, dropout, max_norm, max_norm_mode, bn_momentum, f"{name}_b")
    return layers.Add(name=f"{name}_add")([x, y])


def build_lifter(
    num_joints_in: int = 16,
    num_joints_out: int = 16,
    hidden: int = 1024,
    num_blocks: int = 2,
    dropout: float = 0.5,
    max_norm: float | None = 1.0,
    bn_momentum: float = 0.9,
    name: str = "martinez_lifter",
    max_norm_mode: str = "frobenius",
) -> keras.Model:
    """The Martinez et al. (2017) 2D -> 3D lifting network (a functional ``keras.Model``).

    Args:
        num_joints_in: 2D joints in the input: 16 in the paper (H36M-17 without
            Neck/Nose, ``prepare_lifting_data(..., input_joints="martinez")``);
            17 with every joint (``input_joints="all"``, the kit's earlier
            default); the thesis drops the 2D root instead (16 as well).
        num_joints_out: 3D joints predicted (16: the root is dropped).
        hidden: width of every hidden layer (1024 in the paper).
        num_blocks: residual blocks (2 in the paper).
        dropout: dropout rate after every hidden layer (0.5).
        max_norm: the max-norm bound (1.0); ``None`` disables it.
        bn_momentum: batch-norm moving-average momentum (0.9, PyTorch's 0.1
            convention; Keras' default 0.99 needs ~10x more steps to settle).
        name: model name.
        max_norm_mode: ``"frobenius"`` (the authors' code: every kernel used as
            ``W * min(1, max_norm / ||W||_F)`` in the forward pass,
            :class:`ClippedDense`) or ``"unit"`` (the kit's earlier variant:
            ``keras.constraints.MaxNorm(max_norm, axis=0)``, each unit's
            incoming weights rescaled to norm <= ``max_norm`` after every step).

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
    _check_max_norm_mode(max_norm_mode)

    inputs = keras.Input((int(num_joints_in), 2), name="pose_2d")
    x = layers.Flatten(name="flatten")(inputs)
    x = _dense_bn_relu_dropout(x, hidden, dropout, max_norm, max_norm_mode, bn_momentum, "stem")
    for i in range(num_blocks):
        x = residual_block(x, hidden, dropout, max_norm, bn_momentum, name=f"block{i + 1}",
                           max_norm_mode=max_norm_mode)
    x = _dense(num_joints_out * 3, max_norm, max_norm_mode, "head")(x)
    outputs = layers.Reshape((num_joints_out, 3), name="pose_3d")(x)
    return keras.Model(inputs, outputs, name=name)
