"""Critics and generators for adversarial pose learning: an MLP critic, RepNet's KCS critic, a pose generator.

Builders return functional ``keras.Model`` objects; the two-optimizer
training classes that use them are in :mod:`pose_lab.training.adversarial`.

Poses enter the networks as in notebooks 07-09: root-centred, root joint
dropped, z-scored per coordinate, shape ``(J - 1, 3)`` (``(16, 3)`` for
H36M-17). A critic has no batch normalisation (WGAN-GP penalises per-sample
input gradients, which batch statistics would couple) and uses LeakyReLU(0.2).

The kinematic chain space (Wandt & Rosenhahn, RepNet, CVPR 2019)
-----------------------------------------------------------------
With the pose as a ``3 x J`` matrix ``X`` (one column per joint), the bones
are ``B = X C`` where the fixed ``J x (J-1)`` joint-to-bone matrix ``C`` has,
for bone ``b`` from ``parent(j)`` to ``j``, ``C[j, b] = +1`` and
``C[parent(j), b] = -1`` (:func:`kcs_joint_to_bone_matrix`). The KCS matrix

.. math:: \\Psi = B^\\top B \\in \\mathbb R^{(J-1)\\times(J-1)}

holds the squared bone lengths on its diagonal and, off the diagonal, the
dot products of pairs of bones (angles between bones times lengths), so a
critic reading ``Psi`` judges bone lengths and joint angles directly, which
a plain MLP on coordinates has to discover. RepNet's critic feeds the
flattened ``Psi`` to ``Dense(1000)`` layers with a residual connection, runs a
second path on the coordinates, and concatenates both before the score
(:func:`build_kcs_critic`). :class:`KCSLayer` undoes the z-scoring (the
statistics are stored in the layer's config), re-inserts the root at the
origin and scales millimetres to metres before computing ``Psi``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from pose_lab.models.vae import _check_int, _shape_tuple, build_mlp_decoder
from pose_lab.skeletons import H36M17, Skeleton, get_skeleton

__all__ = [
    "kcs_joint_to_bone_matrix",
    "KCSLayer",
    "build_mlp_critic",
    "build_kcs_critic",
    "build_pose_generator",
    "critic_feature_model",
]


def kcs_joint_to_bone_matrix(parents) -> np.ndarray:
    """RepNet's ``J x (J-1)`` matrix ``C`` with ``B = X C`` (``X``: ``3 x J``; bone ``b`` = child - parent).

    Args:
        parents: parent index per joint, ``-1`` for the root (a
            :class:`~pose_lab.skeletons.Skeleton` is accepted).

    Returns:
        float32 ``(J, J - 1)``; column ``b`` is the bone ending at the
        ``b``-th non-root joint (the order of ``Skeleton.edges``).
    """
    if isinstance(parents, Skeleton):
        parents = parents.parents
    parents = [int(p) for p in parents]
    if sum(p < 0 for p in parents) != 1 or any(p >= j for j, p in enumerate(parents)):
        raise ValueError(f"parents: expected one root (-1) and parents preceding their children, got {parents}")
    children = [j for j, p in enumerate(parents) if p >= 0]
    c = np.zeros((len(parents), len(children)), np.float32)
    for b, j in enumerate(children):
        c[j, b] = 1.0
        c[parents[j], b] = -1.0
    return c


def _as_list(x):
    return None if x is None else np.asarray(x, np.float32).tolist()


@keras.saving.register_keras_serializable(package="pose_lab")
class KCSLayer(layers.Layer):
    """Poses ``(B, J', 3)`` -> flattened KCS matrices ``(B, (J-1)^2)``, ``Psi = B^T B`` in metres^2.

    Args:
        parents: parent per joint of the *full* skeleton (H36M-17 by default;
            a skeleton name or :class:`~pose_lab.skeletons.Skeleton` works).
        pad_root: the input lacks the root joint (index 0): re-insert it at the
            origin (the kit's lifting targets drop it).
        mean, std: z-scoring statistics of the input, ``(J', 3)`` mm, to undo
            (``None``: the input is already in mm).
        scale: millimetres per output unit (1000: ``Psi`` in m^2).

    Example:
        >>> psi = KCSLayer(pad_root=False)(poses_mm_17x3)      # (B, 256)
        >>> # diagonal of psi.reshape(B, 16, 16): squared bone lengths in m^2
    """

    def __init__(self, parents=None, *, pad_root=True, mean=None, std=None, scale=1000.0, **kwargs):
        super().__init__(**kwargs)
        if parents is None:
            parents = H36M17.parents
        elif isinstance(parents, str):
            parents = get_skeleton(parents).parents
        elif isinstance(parents, Skeleton):
            parents = parents.parents
        self.parents = [int(p) for p in parents]
        if self.parents[0] != -1 and pad_root:
            raise ValueError("pad_root: the root must be joint 0 to be re-inserted")
        self.pad_root = bool(pad_root)
        self.mean = None if mean is None else np.asarray(mean, np.float32)
        self.std = None if std is None else np.asarray(std, np.float32)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale: expected a positive number of mm per unit, got {scale!r}")
        self.scale = float(scale)
        self._c = kcs_joint_to_bone_matrix(self.parents)
        self.num_bones = self._c.shape[1]

    def call(self, poses):
        x = ops.cast(poses, "float32")
        if self.std is not None:
            x = x * ops.convert_to_tensor(self.std)
        if self.mean is not None:
            x = x + ops.convert_to_tensor(self.mean)
        if self.pad_root:
            x = ops.concatenate([ops.zeros_like(x[:, :1]), x], axis=1)
        x = x / self.scale
        bones = ops.einsum("jb,njd->nbd", ops.convert_to_tensor(self._c), x)   # (N, B, 3) = (X C)^T
        psi = ops.einsum("nbd,ncd->nbc", bones, bones)                          # B^T B
        return ops.reshape(psi, (-1, self.num_bones * self.num_bones))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_bones * self.num_bones)

    def get_config(self):
        return {**super().get_config(), "parents": self.parents, "pad_root": self.pad_root,
                "mean": _as_list(self.mean), "std": _as_list(self.std), "scale": self.scale}


def _dense(x, units, name, activation=True):
    x = layers.Dense(units, name=name)(x)
    return layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x) if activation else x


def build_mlp_critic(pose_shape=(16, 3), hidden: int = 512, num_layers: int = 3, *,
                     name: str = "mlp_critic") -> keras.Model:
    """An MLP critic: ``Flatten -> num_layers x [Dense(hidden) + LeakyReLU(0.2)] -> Dense(1)``.

    The hidden layers are named ``critic{i}`` (``critic{i}_lrelu`` after the
    activation; VAE-GAN reads its features at one of them). Output: one
    unbounded score (a logit for the GAN, a Wasserstein score for WGAN).
    """
    pose_shape = _shape_tuple("pose_shape", pose_shape)
    _check_int("hidden", hidden)
    _check_int("num_layers", num_layers)
    inputs = keras.Input(pose_shape, name="pose")
    x = layers.Flatten(name="flatten")(inputs) if len(pose_shape) > 1 else inputs
    for i in range(num_layers):
        x = _dense(x, hidden, f"critic{i + 1}")
    return keras.Model(inputs, layers.Dense(1, name="score")(x), name=name)


def build_kcs_critic(pose_shape=(16, 3), *, parents=None, mean=None, std=None, pad_root=True,
                     kcs_units: int = 1000, pose_units: int = 100, head_units: int = 100,
                     name: str = "kcs_critic") -> keras.Model:
    """RepNet's critic: a KCS path and a pose path, concatenated, then a score.

    * KCS path: ``Psi`` (:class:`KCSLayer`, flattened ``(J-1)^2``) ->
      ``Dense(kcs_units)`` x 3 (LeakyReLU) with a residual connection around
      the second and third layer (``h1 + Dense(Dense(h1))``), as in RepNet;
    * pose path: the flattened coordinates -> ``Dense(pose_units)`` x 3 with a
      residual around the last two;
    * head: concatenation -> ``Dense(head_units)`` (named ``critic_head``) -> ``Dense(1)``.

    Args:
        pose_shape: one input pose, ``(16, 3)`` root-dropped by default.
        parents, mean, std, pad_root: as in :class:`KCSLayer` (pass the
            training data's z-scoring ``mean`` / ``std`` in mm).
        kcs_units: width of the KCS path (RepNet: 1000).
        pose_units, head_units: widths of the pose path and of the head.
    """
    pose_shape = _shape_tuple("pose_shape", pose_shape)
    for n, v in (("kcs_units", kcs_units), ("pose_units", pose_units), ("head_units", head_units)):
        _check_int(n, v)
    inputs = keras.Input(pose_shape, name="pose")
    psi = KCSLayer(parents, pad_root=pad_root, mean=mean, std=std, name="kcs")(inputs)
    h1 = _dense(psi, kcs_units, "kcs1")
    h = _dense(h1, kcs_units, "kcs2")
    h = layers.Dense(kcs_units, name="kcs3")(h)
    h = layers.LeakyReLU(0.2, name="kcs3_lrelu")(layers.Add(name="kcs_residual")([h1, h]))
    flat = layers.Flatten(name="flatten")(inputs)
    p1 = _dense(flat, pose_units, "pose1")
    p = _dense(p1, pose_units, "pose2")
    p = layers.Dense(pose_units, name="pose3")(p)
    p = layers.LeakyReLU(0.2, name="pose3_lrelu")(layers.Add(name="pose_residual")([p1, p]))
    x = layers.Concatenate(name="concat")([h, p])
    x = _dense(x, head_units, "critic_head")
    return keras.Model(inputs, layers.Dense(1, name="score")(x), name=name)


def build_pose_generator(latent_dim: int = 32, pose_shape=(16, 3), hidden: int = 512, num_blocks: int = 3, *,
                         batch_norm: bool = False, residual: bool = True, name: str = "pose_generator") -> keras.Model:
    """An MLP generator ``z (latent_dim) -> pose``: :func:`pose_lab.models.vae.build_mlp_decoder`.

    ``Dense(hidden)`` up-sampling, ``num_blocks`` x ``[Dense(hidden) + ReLU]``
    (residual by default), a linear output reshaped to ``pose_shape``
    (z-scored, root-dropped poses).
    """
    return build_mlp_decoder(latent_dim, pose_shape, hidden, num_blocks, batch_norm=batch_norm,
                             residual=residual, name=name)


def critic_feature_model(critic: keras.Model, layer_name: str | None = None) -> keras.Model:
    """A model sharing ``critic``'s weights that returns ``[features, score]``.

    ``layer_name``: the layer whose output is the feature ``D_l(x)`` (VAE-GAN's
    "learned similarity"); ``None`` takes the layer feeding the final ``Dense(1)``.
    """
    if layer_name is None:
        score_layer = critic.layers[-1]
        feat = score_layer.input
    else:
        try:
            feat = critic.get_layer(layer_name).output
        except ValueError:
            raise ValueError(f"layer_name: critic {critic.name!r} has no layer {layer_name!r}; layers are "
                             f"{[l.name for l in critic.layers]}") from None
    return keras.Model(critic.inputs, [feat, critic.outputs[0]], name=f"{critic.name}_features")
