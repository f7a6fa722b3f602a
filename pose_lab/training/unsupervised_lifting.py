"""Unsupervised 2D -> 3D lifting from 2D poses alone (Chen et al. 2019), on the two-optimizer base.

Chen, Tyagi, Agrawal, Drover, MV, Stojanov and Rehg, "Unsupervised 3D pose
estimation with geometric self-supervision" (CVPR 2019). No 3D label is ever
read: ``fit`` is given 2D poses only. One training step, for a batch of
normalised 2D poses ``x`` (root-centred, mean root distance 1,
:func:`pose_lab.geometry.ops.normalize_pose_2d`):

1. **lift**: the lifter predicts a depth offset per joint, ``d = L(x)`` (root 0);
   each joint sits on its camera ray at depth ``c + d_j`` with the root at depth
   ``c = distance`` (10, as Chen et al.): ``Y = backproject(x, d)``;
2. **rotate**: a random view ``R`` (azimuth ~ U(-pi, pi) about the vertical
   axis, elevation ~ U(-20, 20) degrees), about the root: ``R Y``;
3. **re-project** with the same fixed-depth pinhole camera and normalise:
   ``x_r = P(R Y) / s``. If ``Y`` is right, ``x_r`` is the 2D pose of a real
   person seen from another camera, so it must look like the real 2D poses:
   **(a)** a 2D critic (WGAN-GP, Gulrajani et al. 2017) separates real ``x``
   from ``x_r``, and the lifter is trained to fool it;
4. **lift again**, ``Y_r = backproject(x_r, L(x_r))``: **(b)** the 3D
   consistency ``||Y_r - R Y / s||^2`` and, rotating ``Y_r`` back and
   projecting, the 2D cycle loss ``||N(P(R^T s Y_r)) - x||^2``
   (:func:`pose_lab.losses.lifting_consistency_3d_loss`,
   :func:`pose_lab.losses.lifting_cycle_2d_loss`).

Why it constrains depth: only the right depths make *every* rotated view look
like a human seen from some camera; a flat or wrongly bent pose shows its
error as soon as it is turned sideways. Chen et al.'s optional (c) temporal
critic on sequences and their 2D domain adaptation are not implemented here.

The critic step (``n_critic`` per generator step, :class:`AdversarialModel`)
minimises ``E f(x_r) - E f(x) + lambda * GP``. The generator (lifter) step
minimises ``w_adv * (-E f(x_r)) + w_3d * L_3d + w_2d * L_2d``. Setting
``adversarial_weight=0`` or ``consistency_3d_weight = cycle_2d_weight = 0``
gives the ablations of notebook 12.

Example:
    >>> lifter = build_depth_lifter(hidden=512)
    >>> model = UnsupervisedLifter(lifter, build_mlp_critic((17, 2), hidden=256), n_critic=2, seed=0)
    >>> model.compile(*unsupervised_lifter_optimizers(decay_steps=epochs * len(x2d_train) // 256))
    >>> model.fit(x2d_train, epochs=epochs, batch_size=256)  # 2D only (pixels or normalised)
    >>> pose = model.predict(x2d_test)                        # (N, 17, 3), root-centred, unit-free
"""

from __future__ import annotations

import math

import keras
from keras import ops

from pose_lab import losses
from pose_lab.geometry import ops as O
from pose_lab.training.adversarial import AdversarialModel

__all__ = ["UnsupervisedLifter", "unsupervised_lifter_optimizers"]


def unsupervised_lifter_optimizers(generator_lr=2e-4, critic_lr=4e-4, beta_1=0.5, beta_2=0.9, *, decay_steps=None,
                                   n_critic=1, final_fraction=0.1):
    """Two Adam optimizers with WGAN-GP's betas ``(0.5, 0.9)``: ``(generator_optimizer, critic_optimizer)``.

    Args:
        generator_lr, critic_lr: learning rates of the lifter and of the critic.
        beta_1, beta_2: Adam's moment decays.
        decay_steps: ``None``: constant rates; else the number of training
            batches (``epochs * steps_per_epoch``) over which both rates follow a
            cosine decay to ``final_fraction`` of their start (the critic's
            schedule counts its ``n_critic`` updates per batch).
        n_critic: critic updates per batch (as given to the model).
        final_fraction: the rates at the end of the decay, relative to the start.
    """

    def lr(value, steps):
        if decay_steps is None:
            return value
        return keras.optimizers.schedules.CosineDecay(value, int(steps), alpha=float(final_fraction))

    return (keras.optimizers.Adam(lr(generator_lr, decay_steps), beta_1=beta_1, beta_2=beta_2),
            keras.optimizers.Adam(lr(critic_lr, None if decay_steps is None else decay_steps * n_critic),
                                  beta_1=beta_1, beta_2=beta_2))


@keras.saving.register_keras_serializable(package="pose_lab")
class UnsupervisedLifter(AdversarialModel):
    """Chen et al.'s lift-rotate-reproject training of a depth lifter against a 2D critic.

    Args:
        generator: the lifter, normalised 2D ``(B, J, 2)`` -> depth offsets ``(B, J)``
            (:func:`pose_lab.models.unsupervised_lifting.build_depth_lifter`).
        critic: a 2D pose critic ``(B, J, 2)`` -> ``(B, 1)`` without batch norm.
        distance: depth of the root in units of the normalised 2D (Chen et al.: 10);
            ``None``: weak perspective (orthographic re-projection).
        max_elevation_deg: elevations are drawn in ``+-max_elevation_deg`` (20).
        max_azimuth_deg: azimuths in ``+-max_azimuth_deg`` (180: the full circle).
        adversarial_weight, consistency_3d_weight, cycle_2d_weight: weights of
            the three generator terms (0 switches a term off; its computation is skipped).
        gp_weight: WGAN-GP's ``lambda`` (10).
        root: the root joint (0, the pelvis of H36M-17).
        n_critic, split_batch, seed: see :class:`AdversarialModel`.

    ``fit(x2d)`` takes 2D poses only (pixels or normalised: every batch is
    normalised again, which changes nothing for normalised input).
    ``model(x2d)`` / ``predict`` returns the lifted root-centred 3D pose
    ``(B, J, 3)`` in the camera frame (x right, y down, z away from the
    camera), in units of the normalised 2D.
    """

    metric_names = ("wasserstein", "gradient_penalty", "adversarial", "consistency_3d", "cycle_2d")

    def __init__(self, generator, critic, *, distance=10.0, max_elevation_deg=20.0, max_azimuth_deg=180.0,
                 adversarial_weight=1.0, consistency_3d_weight=1.0, cycle_2d_weight=1.0, gp_weight=10.0,
                 root=0, **kwargs):
        super().__init__(generator, critic, **kwargs)
        if distance is not None and not float(distance) > 1.0:
            raise ValueError(f"distance: expected a root depth > 1 (units of the normalised 2D) or None, "
                             f"got {distance!r}")
        for name, value in (("max_elevation_deg", max_elevation_deg), ("max_azimuth_deg", max_azimuth_deg),
                            ("adversarial_weight", adversarial_weight),
                            ("consistency_3d_weight", consistency_3d_weight),
                            ("cycle_2d_weight", cycle_2d_weight), ("gp_weight", gp_weight)):
            if not float(value) >= 0.0:
                raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
        if not (float(adversarial_weight) or float(consistency_3d_weight) or float(cycle_2d_weight)):
            raise ValueError("adversarial_weight, consistency_3d_weight, cycle_2d_weight: all 0, nothing "
                             "would train the lifter")
        if not 0 <= float(max_elevation_deg) < 90:
            raise ValueError(f"max_elevation_deg: expected degrees in [0, 90), got {max_elevation_deg!r}")
        shape = tuple(generator.input_shape)
        if len(shape) != 3 or shape[-1] != 2:
            raise ValueError(f"generator: expected a lifter with input (B, J, 2), got input shape {shape}")
        self.distance = None if distance is None else float(distance)
        self.max_elevation_deg = float(max_elevation_deg)
        self.max_azimuth_deg = float(max_azimuth_deg)
        self.adversarial_weight = float(adversarial_weight)
        self.consistency_3d_weight = float(consistency_3d_weight)
        self.cycle_2d_weight = float(cycle_2d_weight)
        self.gp_weight = float(gp_weight)
        self.root = int(root)
        self.num_joints = int(shape[1])

    # ------------------------------------------------------------------ geometry
    def normalize(self, x2d):
        """Root-centred 2D divided by its mean root distance: ``(normalised, scale)``."""
        return O.normalize_pose_2d(ops.cast(x2d, "float32"), root=self.root)

    def lift(self, x_norm, training=False):
        """Normalised 2D ``(B, J, 2)`` -> root-centred 3D ``(B, J, 3)`` (lifter + back-projection)."""
        d = self.generator(x_norm, training=training)
        return O.backproject_fixed_depth(x_norm, d, self.distance)

    def project(self, pose_3d):
        """Root-centred 3D -> normalised 2D: ``(x, scale)`` with ``x = P(pose) / scale``."""
        return self.normalize(O.project_fixed_depth(pose_3d, self.distance))

    def random_views(self, batch_size):
        """``(B, 3, 3)`` view rotations from :meth:`uniform` (``self.seed_generator``)."""
        az = self.uniform((batch_size,), -1.0, 1.0) * math.radians(self.max_azimuth_deg)
        el = self.uniform((batch_size,), -1.0, 1.0) * math.radians(self.max_elevation_deg)
        return O.view_rotation(az, el)

    def call(self, inputs, training=None):
        """Lift 2D poses (pixels or normalised) to root-centred 3D ``(B, J, 3)``."""
        x, _ = self.normalize(inputs)
        return self.lift(x, training=training)

    def _rotated_view(self, x, training):
        """``(Y, R, R Y, x_r, s)`` for a batch of normalised 2D ``x``."""
        Y = self.lift(x, training=training)
        R = self.random_views(ops.shape(x)[0])
        Y_rot = O.rotate_about_root(Y, R, root=self.root)
        x_r, s = self.project(Y_rot)
        return Y, R, Y_rot, x_r, s

    def _batch(self, data):
        if isinstance(data, (tuple, list)):
            raise ValueError("UnsupervisedLifter.fit: pass 2D poses only, fit(x2d); it reads no 3D labels "
                             f"(got a structure of {len(data)} arrays)")
        x = ops.convert_to_tensor(data)
        if len(x.shape) != 3 or tuple(x.shape)[1:] != (self.num_joints, 2):
            raise ValueError(f"UnsupervisedLifter: expected 2D poses of shape (B, {self.num_joints}, 2), "
                             f"got {tuple(x.shape)}")
        return self.normalize(x)[0]

    # ------------------------------------------------------------------ losses
    def critic_loss(self, data, training=True):
        x = self._batch(data)
        _, _, _, x_r, _ = self._rotated_view(x, training)
        x_r = ops.stop_gradient(x_r)
        real = self.critic(x, training=training)
        fake = self.critic(x_r, training=training)
        w_loss = losses.wgan_critic_loss(real, fake)
        if self.adversarial_weight == 0.0:  # ablation: the critic plays no part; keep its weights still
            zero = 0.0 * (ops.mean(real) + ops.mean(fake))
            return zero, {"wasserstein": -w_loss, "gradient_penalty": ops.zeros_like(w_loss)}
        alpha = self.uniform((ops.shape(x)[0],))
        gp = losses.gradient_penalty(lambda t: self.critic(t, training=training), x, x_r, alpha)
        return w_loss + self.gp_weight * gp, {"wasserstein": -w_loss, "gradient_penalty": gp}

    def generator_loss(self, data, training=True):
        x = self._batch(data)
        _, R, Y_rot, x_r, s = self._rotated_view(x, training)
        total = 0.0
        zero = ops.zeros((), "float32")
        adv = l3d = l2d = zero
        if self.adversarial_weight:
            adv = losses.wgan_generator_loss(self.critic(x_r, training=training))
            total = total + self.adversarial_weight * adv
        if self.consistency_3d_weight or self.cycle_2d_weight:
            Y_rr = self.lift(x_r, training=training)  # in the units of x_r
            l3d = losses.lifting_consistency_3d_loss(Y_rot, Y_rr, s)
            Y_back = O.rotate_about_root(Y_rr * s[:, None, None], ops.swapaxes(R, -1, -2), root=self.root)
            x_back, _ = self.project(Y_back)
            l2d = losses.lifting_cycle_2d_loss(x, x_back)
            total = total + self.consistency_3d_weight * l3d + self.cycle_2d_weight * l2d
        return total, {"adversarial": adv, "consistency_3d": l3d, "cycle_2d": l2d}

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {
            **super().get_config(),
            "distance": self.distance,
            "max_elevation_deg": self.max_elevation_deg,
            "max_azimuth_deg": self.max_azimuth_deg,
            "adversarial_weight": self.adversarial_weight,
            "consistency_3d_weight": self.consistency_3d_weight,
            "cycle_2d_weight": self.cycle_2d_weight,
            "gp_weight": self.gp_weight,
            "root": self.root,
        }
