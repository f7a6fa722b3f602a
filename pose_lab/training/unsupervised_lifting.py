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

**The mirror solution** (not in Chen et al.; :class:`MirrorCheck`): reversing
every depth, ``Y -> M Y`` with ``M = diag(1, 1, -1)``, passes all three tests
as well. ``R M = M (M R M)`` and ``M R M`` is the view with azimuth and
elevation negated, drawn as often as ``R``; under orthographic projection
``P(M Z) = P(Z)``, so the re-projections of the mirrored lifts have exactly
the distribution of the true ones, and the cycle losses hold for both. Only
the perspective of a camera at ``distance`` 10 separates them, weakly: on the
15-action synthetic data one initialisation in three (notebook 12's seed 0)
settled on mirrored bodies (P-MPJPE 156.6 mm, worse than a flat pose's 103.3;
74.3 mm once its depths were negated after training). A mirrored body is
still a body, but of the other handedness: knees bend towards its back, its
nose sits behind its neck. :func:`pose_lab.metrics.mirrored_fraction` counts
those among the lifts (anatomy, no 3D label), and :class:`MirrorCheck`
reverses the lifter's depth sign at the end of an epoch where most lifts are
mirrored, so that training goes on from the right side.

The critic step (``n_critic`` per generator step, :class:`AdversarialModel`)
minimises ``E f(x_r) - E f(x) + lambda * GP``. The generator (lifter) step
minimises ``w_adv * (-E f(x_r)) + w_3d * L_3d + w_2d * L_2d``. Setting
``adversarial_weight=0`` or ``consistency_3d_weight = cycle_2d_weight = 0``
gives the ablations of notebook 12.

Example:
    >>> lifter = build_depth_lifter(hidden=512)
    >>> model = UnsupervisedLifter(lifter, build_mlp_critic((17, 2), hidden=256), n_critic=2, seed=0)
    >>> model.compile(*unsupervised_lifter_optimizers(decay_steps=epochs * len(x2d_train) // 256))
    >>> model.fit(x2d_train, epochs=epochs, batch_size=256,    # 2D only (pixels or normalised)
    ...           callbacks=[MirrorCheck(x2d_train[:4096])])
    >>> pose = model.predict(x2d_test)                        # (N, 17, 3), root-centred, unit-free
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from pose_lab import losses, metrics
from pose_lab.geometry import ops as O
from pose_lab.models.unsupervised_lifting import FixRootDepth
from pose_lab.training.adversarial import AdversarialModel

__all__ = ["MirrorCheck", "UnsupervisedLifter", "unsupervised_lifter_optimizers"]


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


class MirrorCheck(keras.callbacks.Callback):
    """Reverse the lifter's depths when most of its lifts are mirror-image bodies (end of each epoch).

    At the end of every epoch the callback lifts ``x2d`` with the model being
    trained (an :class:`UnsupervisedLifter`), measures
    :func:`pose_lab.metrics.mirrored_fraction` of the lifts (anatomy only: no 3D
    label is read) and logs it as ``"mirrored"``; when it is above
    ``threshold`` it calls :meth:`~pose_lab.models.unsupervised_lifting.FixRootDepth.flip`
    on the lifter's output layer, so that the next epochs train the right
    handedness (see the module docstring: the views cannot tell). Adam's
    moments are left as they are; with ``beta_1 = 0.5`` the stale first moment
    fades within a few steps.

    Args:
        x2d: ``(N, J, 2)`` 2D poses to lift (pixels or normalised), e.g. 4,096
            training poses; H36M-17 joints.
        threshold: the mirrored share above which the sign is flipped (0.5).
        verbose: 1 prints a line at each flip.

    Attributes:
        flips: the (0-based) epochs after which the sign was flipped.
    """

    def __init__(self, x2d, *, threshold=0.5, verbose=0):
        super().__init__()
        x = np.asarray(x2d, np.float32)
        if x.ndim != 3 or x.shape[-1] != 2 or not len(x):
            raise ValueError(f"MirrorCheck: x2d: expected 2D poses of shape (N, J, 2) with N >= 1, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("MirrorCheck: x2d has NaN/inf values")
        if not 0.0 <= float(threshold) < 1.0:
            raise ValueError(f"MirrorCheck: threshold: expected a share in [0, 1), got {threshold!r}")
        self.x2d = x
        self.threshold = float(threshold)
        self.verbose = int(verbose)
        self.flips = []

    def _sign_layers(self):
        layers_ = [layer for layer in self.model.generator._flatten_layers() if isinstance(layer, FixRootDepth)]
        if not layers_:
            raise ValueError("MirrorCheck: the model's generator has no FixRootDepth layer to flip (build it with "
                             "pose_lab.models.unsupervised_lifting.build_depth_lifter)")
        return layers_

    def mirrored(self):
        """The share of mirrored bodies among the lifts of ``x2d`` by the model now."""
        pose = self.model(self.x2d, training=False)
        return metrics.mirrored_fraction(np.asarray(ops.convert_to_numpy(pose), np.float64))

    def on_train_begin(self, logs=None):
        self._sign_layers()  # fail before training, not after the first epoch

    def on_epoch_end(self, epoch, logs=None):
        share = self.mirrored()
        if logs is not None:
            logs["mirrored"] = share
        if share > self.threshold:
            for layer in self._sign_layers():
                layer.flip()
            self.flips.append(int(epoch))
            if self.verbose:
                print(f"MirrorCheck: epoch {epoch + 1}: {share:.0%} of the lifts are mirrored bodies; "
                      f"depth sign reversed")

