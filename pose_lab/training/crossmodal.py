"""Cross-modal VAE training: one latent space for images, 2D poses and 3D poses.

Spurr et al. (CVPR 2018) as adapted in the thesis (seed 004, chapter 4). Four
networks (:mod:`pose_lab.models.crossmodal`) share a latent space ``z``:

* ``q_img(z | image)``, the image encoder, and ``q_2d(z | pose_2d)``, the
  2D-pose encoder, each a diagonal Gaussian ``N(mu, diag(sigma^2))``;
* ``p(image | z)``, the image decoder, and ``p(pose_3d | z)``, the 3D-pose decoder.

Training alternates three encoder/decoder **pairs**, one batch per pair in
rotation (step ``t`` trains pair ``t mod 3``)::

    pair 0  image  -> image     L1(image, image_hat)   + beta * KL(q_img || p) / (H*W*C)
    pair 1  image  -> 3D pose   MSE(pose_3d, pose_hat) + beta * KL(q_img || p) / (J*3)
    pair 2  2D     -> 3D pose   MSE(pose_3d, pose_hat) + beta * KL(q_2d  || p) / (J*3)

Each term is the negative cross-modal ELBO of its pair,
``-E_q(z|x_in)[log p(x_out | z)] + beta * KL(q(z|x_in) || N(0, I))``, with
the reconstruction averaged per element and the KL divided by the number of
elements of the reconstruction, as in the thesis (section 4.2; see
:func:`pose_lab.losses.kl_divergence_diag_gaussian`). The shared decoders
force both encoders to place an image and its 2D pose where the 3D decoder
finds the same 3D pose, so image -> 3D works without any 2D detector.

How the alternation is implemented (and what it costs)
------------------------------------------------------
The pair is chosen *inside the compiled train step* from a step-counter
variable, with ``keras.ops`` only, so the stock ``Model.fit`` runs it unchanged
under TensorFlow and JAX. :meth:`CrossModalVAE.call` runs all four networks
(image encoder once, image decoder once, 2D encoder once, 3D decoder twice);
:meth:`CrossModalVAE.compute_loss` computes all three pair losses and
returns their sum weighted by ``one_hot(schedule[step mod len(schedule)])``.
Gradients of the two unselected pairs are exactly zero (``0 * loss``), so a
network outside the selected pair gets a zero gradient on that step.

*Why not* ``keras.ops.switch`` *(run only the selected pair)?* Under JAX a
``lax.switch`` branch may not update state: the BatchNorm moving statistics
the image networks update in training would escape the branch as leaked
tracers unless every branch were rewritten statelessly (``stateless_call``
on each network, returning every network's updated non-trainable variables).
The one-hot weighting keeps the four networks as plain functional models.

*Cost*: every step pays the forward and backward pass of all four networks,
instead of only the selected pair's. The image encoder and decoder dominate;
with a pair-only step costing ``E + D`` (pair 0), ``E`` (pair 1) or almost
nothing (pair 2), the average pair-only step is about ``(2E + D) / 3`` against
``E + D`` here: about 2x when ``E ~ D``. ``benchmarks/bench_crossmodal.py``
measures it against plain models that run one pair only: 1.8x at 32x32 and
at 64x64 (batch 64, 2-core CPU shared with other jobs). In exchange, the
BatchNorm statistics of every network see every batch, and the monitoring
metrics (KL of both encoders, image->3D and 2D->3D MPJPE) come for free on
every step.

*Optimizer state*: the alternation zeroes gradients, not updates. Adam's first
moment keeps moving a network for a few steps after its pair was last
selected (it decays by ``beta_1 = 0.9`` per step). Plain SGD would update only
the selected pair's networks (the tests use that to check the rotation).

Data: a dict with ``"image"`` (``(B, H, W, 3)`` uint8, or floats in
``[0, 1]``), ``"pose_2d"`` (z-scored 2D pixels, ``(B, J2, 2)``) and
``"pose_3d"`` (z-scored root-centred camera-frame mm, ``(B, J3, 3)``); build it with
:func:`pose_lab.data.crossmodal.prepare_crossmodal_data` from rendered crops
(:func:`pose_lab.data.synthetic.render_crops`) and a
:class:`~pose_lab.data.normalization.NormStats`
(:func:`pose_lab.data.crossmodal.crossmodal_stats`). The model keeps the
statistics, so its inference methods take pixels / uint8 images and return
millimetres; the protocol tables are :mod:`pose_lab.evaluation.crossmodal`.

Example:
    >>> from pose_lab.data.crossmodal import crossmodal_stats, prepare_crossmodal_data
    >>> from pose_lab.data.synthetic import render_crops
    >>> from pose_lab.models.crossmodal import build_crossmodal_networks
    >>> crops = render_crops(512, size=64, seed=1, actions=True)
    >>> stats = crossmodal_stats(crops["joints_2d"], crops["joints_3d"])
    >>> data = prepare_crossmodal_data(crops["images"], crops["joints_2d"], crops["joints_3d"], stats)
    >>> model = CrossModalVAE(**build_crossmodal_networks(image_size=64), stats=stats)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=suggested_jit_compile())
    >>> model.fit(data, batch_size=64, epochs=3)
    >>> pred_mm = model.predict_3d_from_image(crops["images"])  # (N, 17, 3) mm
"""

from __future__ import annotations

import copy
import dataclasses
import numbers

import keras
import numpy as np
from keras import ops

from pose_lab import losses
from pose_lab.data.normalization import NormStats
from pose_lab.training.base import add_regularization, batched_predict, weighted_mean
from pose_lab.validation import check_images, check_poses

__all__ = [
    "PAIRS",
    "CrossModalVAE",
    "suggested_jit_compile",
]

#: The encoder/decoder pairs, in the default rotation order.
PAIRS = ("image_to_image", "image_to_3d", "pose2d_to_3d")


# ------------------------------------------------------------------ compilation


def suggested_jit_compile():
    """``jit_compile`` for ``CrossModalVAE.compile``: ``False`` for TensorFlow on a CPU, else ``"auto"``.

    XLA-compiling the four-network train step under TensorFlow takes tens of
    seconds on a 2-core CPU and the compiled step was not faster there
    (``benchmarks/bench_crossmodal.py`` prints both), so a smoke run would
    spend most of its time compiling. On a GPU XLA pays off; under JAX every
    step is XLA-compiled anyway (``jit_compile=False`` would run op by op).
    """
    if keras.backend.backend() != "tensorflow":
        return "auto"
    from pose_lab import runtime

    return "auto" if runtime.gpus() or runtime.tpu_available() else False


# --------------------------------------------------------------------------- model


class _StoreWithout:
    """A read-only view of a Keras weights store without one key (for ``Layer.load_own_variables``)."""

    def __init__(self, store, key):
        self._store, self._key = store, key

    def keys(self):
        return [k for k in self._store.keys() if k != self._key]

    def __len__(self):
        return len(self.keys())

    def __getitem__(self, key):
        return self._store[key]


def _serialize(model):
    return keras.saving.serialize_keras_object(model)


def _deserialize(config):
    if isinstance(config, keras.Model):
        return config
    return keras.saving.deserialize_keras_object(config)


@keras.saving.register_keras_serializable(package="pose_lab")
class CrossModalVAE(keras.Model):
    """Cross-modal VAE: image and 2D-pose encoders, image and 3D-pose decoders, one latent.

    Trained with ``fit()`` on dicts ``{"image", "pose_2d", "pose_3d"}`` (see
    :func:`pose_lab.data.crossmodal.prepare_crossmodal_data`), alternating the pairs of :data:`PAIRS`
    one batch each (the module docstring explains how and at what cost).

    Args:
        image_encoder: ``(B, H, W, C) -> [mean, log_var]`` (``build_image_encoder``).
        image_decoder: ``(B, latent) -> (B, H, W, C)`` in ``[0, 1]``.
        pose2d_encoder: ``(B, J2, 2) -> [mean, log_var]``.
        pose3d_decoder: ``(B, latent) -> (B, J3, 3)``.
        beta: weight of the (per-element normalised) KL terms; kept in the
            non-trainable variable ``model.beta`` so a callback can anneal it.
        stats: the training set's :class:`~pose_lab.data.normalization.NormStats`
            (or its ``to_dict()``; a mapping with the four arrays only, as
            older saved models hold, gets its flags from the joint counts).
            Its joint counts must match the pose networks'. ``None``: poses
            are used as given (z-scores in, z-scores out, no root put back),
            MPJPE is then in those units.
        schedule: the rotation of pairs, names from :data:`PAIRS` (default:
            the three pairs in order; repeat a name to train that pair more often).
        root: index of the root joint; ``None`` (default) takes ``stats.root``
            (0 without stats), an int overrides it. The inference methods put
            the root back at the origin when ``stats.drop_root_3d``.
        seed: seed of the reparameterisation noise.

    Metrics (``fit`` logs): ``loss`` (the selected pair's loss), one
    ``<pair>_loss`` per pair (averaged over the steps that trained it),
    ``kl_image`` and ``kl_pose2d`` (KL in nats, un-normalised, every step),
    ``mpjpe_image_to_3d`` and ``mpjpe_2d_to_3d`` (mm, over all ``J`` joints with
    a dropped root counted as exact, every step). In ``evaluate()`` the latent
    means are decoded and all three pairs are scored on every batch; ``loss``
    is then the mean of the three pair losses. Sample weights (``fit(data,
    sample_weight=w)``) make every pair loss and KL the weighted mean
    ``sum_i w_i l_i / sum_i w_i`` of its per-sample values; the MPJPE metrics stay unweighted.
    """

    def __init__(
        self,
        image_encoder,
        image_decoder,
        pose2d_encoder,
        pose3d_decoder,
        beta: float = 1e-3,
        stats=None,
        schedule=PAIRS,
        root: int | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_encoder = _deserialize(image_encoder)
        self.image_decoder = _deserialize(image_decoder)
        self.pose2d_encoder = _deserialize(pose2d_encoder)
        self.pose3d_decoder = _deserialize(pose3d_decoder)
        self._check_networks()

        if not isinstance(beta, numbers.Real) or not beta >= 0:
            raise ValueError(f"beta: expected a non-negative number, got {beta!r}")
        self.initial_beta = float(beta)
        schedule = (schedule,) if isinstance(schedule, str) else tuple(schedule)
        unknown = [p for p in schedule if p not in PAIRS]
        if not schedule or unknown:
            raise ValueError(f"schedule: expected a non-empty sequence of names from {PAIRS}, got {schedule!r}")
        self.schedule = schedule
        self.seed = seed
        self._stats = None if stats is None else NormStats.coerce(stats)
        if self._stats is not None and root is not None and int(root) != self._stats.root:
            self._stats = dataclasses.replace(self._stats, root=int(root))
        self.root = self._stats.root if self._stats is not None else int(root or 0)
        if self._stats is not None:
            for kind, net, j in (("2d", "pose2d_encoder", self.num_joints_2d),
                                 ("3d", "pose3d_decoder", self.num_joints_3d)):
                kept = getattr(self._stats, f"mean_{kind}").shape[0]
                if kept != j:
                    raise ValueError(
                        f"stats: mean_{kind} has {kept} joints, the networks use {j} ({net}); "
                        f"build the networks with num_joints_{kind}={kept}"
                    )

        self.beta = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial_beta),
                                    trainable=False, name="beta")
        self.pair_step = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                         trainable=False, name="pair_step")
        self.seed_generator = keras.random.SeedGenerator(seed)

        self.pair_trackers = {p: keras.metrics.Mean(name=f"{p}_loss") for p in PAIRS}
        self.kl_image_tracker = keras.metrics.Mean(name="kl_image")
        self.kl_pose2d_tracker = keras.metrics.Mean(name="kl_pose2d")
        self.mpjpe_image_tracker = keras.metrics.Mean(name="mpjpe_image_to_3d")
        self.mpjpe_2d_tracker = keras.metrics.Mean(name="mpjpe_2d_to_3d")
        self.built = True

    # ----------------------------------------------------------------- structure

    def _check_networks(self):
        for attr in ("image_encoder", "image_decoder", "pose2d_encoder", "pose3d_decoder"):
            if not isinstance(getattr(self, attr), keras.Model):
                raise ValueError(f"{attr}: expected a keras.Model, got {type(getattr(self, attr)).__name__}")
        img_shape = tuple(self.image_encoder.input_shape[1:])
        if len(img_shape) != 3:
            raise ValueError(f"image_encoder: expected an input (H, W, C), got {img_shape}")
        dec_shape = tuple(self.image_decoder.output_shape[1:])
        if dec_shape != img_shape:
            raise ValueError(f"image_decoder: outputs {dec_shape}, the image encoder reads {img_shape}")
        latents = {
            "image_encoder": self.image_encoder.output_shape[0][-1],
            "pose2d_encoder": self.pose2d_encoder.output_shape[0][-1],
            "image_decoder": self.image_decoder.input_shape[-1],
            "pose3d_decoder": self.pose3d_decoder.input_shape[-1],
        }
        if len(set(latents.values())) != 1:
            raise ValueError(f"the four networks must share one latent dimension, got {latents}")
        p2 = tuple(self.pose2d_encoder.input_shape[1:])
        p3 = tuple(self.pose3d_decoder.output_shape[1:])
        if len(p2) != 2 or p2[1] != 2:
            raise ValueError(f"pose2d_encoder: expected an input (J, 2), got {p2}")
        if len(p3) != 2 or p3[1] != 3:
            raise ValueError(f"pose3d_decoder: expected an output (J, 3), got {p3}")

    @property
    def image_shape(self):
        """``(H, W, C)`` of the images the model reads and writes."""
        return tuple(self.image_encoder.input_shape[1:])

    @property
    def latent_dim(self) -> int:
        return int(self.image_decoder.input_shape[-1])

    @property
    def num_joints_2d(self) -> int:
        return int(self.pose2d_encoder.input_shape[1])

    @property
    def num_joints_3d(self) -> int:
        return int(self.pose3d_decoder.output_shape[1])

    @property
    def num_joints(self) -> int:
        """Joints of the full skeleton ``J`` (the stats' ``num_joints``; the 3D decoder's without stats)."""
        return self.num_joints_3d if self._stats is None else self._stats.num_joints

    @property
    def stats(self):
        """The normalisation statistics (a :class:`~pose_lab.data.normalization.NormStats`), or ``None``."""
        return None if self._stats is None else copy.deepcopy(self._stats)

    def pair_at(self, step: int) -> str:
        """Name of the pair trained at training step ``step`` (0-based)."""
        return self.schedule[int(step) % len(self.schedule)]

    def build(self, input_shape=None):  # the four networks are built functional models
        self.built = True

    # ------------------------------------------------------------------- forward

    def _sample(self, mean, log_var):
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def call(self, inputs, training=False):
        """Run all four networks; returns a dict of every quantity the losses need.

        ``inputs``: ``{"image", "pose_2d"}`` (``"pose_3d"`` is ignored). In
        training the latents are sampled (reparameterisation trick); otherwise
        the means are decoded.
        """
        if not isinstance(inputs, dict) or "image" not in inputs or "pose_2d" not in inputs:
            raise ValueError(
                "CrossModalVAE expects a dict with 'image', 'pose_2d' (and 'pose_3d' for training); "
                f"got {type(inputs).__name__}"
                + (f" with keys {sorted(inputs)}" if isinstance(inputs, dict) else "")
            )
        image = inputs["image"]
        if keras.backend.standardize_dtype(image.dtype) == "uint8":
            image = ops.cast(image, "float32") / 255.0
        img_mean, img_log_var = self.image_encoder(image, training=training)
        p2_mean, p2_log_var = self.pose2d_encoder(inputs["pose_2d"], training=training)
        if training:
            z_img = self._sample(img_mean, img_log_var)
            z_2d = self._sample(p2_mean, p2_log_var)
        else:
            z_img, z_2d = img_mean, p2_mean
        return {
            "image_mean": img_mean,
            "image_log_var": img_log_var,
            "pose2d_mean": p2_mean,
            "pose2d_log_var": p2_log_var,
            "image_recon": self.image_decoder(z_img, training=training),
            "pose3d_from_image": self.pose3d_decoder(z_img, training=training),
            "pose3d_from_2d": self.pose3d_decoder(z_2d, training=training),
        }

    # ---------------------------------------------------------------------- loss

    def _pair_weights(self, training):
        """``(3,)`` weights of the pairs: one-hot of the scheduled pair in training, 1/3 each otherwise."""
        if not training:
            return ops.ones((len(PAIRS),), "float32") / float(len(PAIRS))
        ids = ops.convert_to_tensor([PAIRS.index(p) for p in self.schedule], dtype="int32")
        step = ops.convert_to_tensor(self.pair_step)
        pair = ops.take(ids, ops.mod(step, len(self.schedule)))
        self.pair_step.assign(step + 1)
        return ops.one_hot(pair, len(PAIRS), dtype="float32")

    def _mpjpe_mm(self, target, pred):
        if self._stats is None:
            return losses.mean_per_joint_position_error(target, pred)
        std = self._stats.std_3d.astype(np.float32)
        pad = int(self._stats.drop_root_3d)  # the dropped root is exact: counted as a zero error
        return losses.mean_per_joint_position_error(target, pred, scale=std, pad_joints=pad)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        del y  # targets come from x
        if not isinstance(x, dict) or "pose_3d" not in x:
            raise ValueError(
                "CrossModalVAE training and evaluation need a dict with 'image', 'pose_2d' and 'pose_3d' "
                "(see pose_lab.data.crossmodal.prepare_crossmodal_data)"
            )
        image = x["image"]
        if keras.backend.standardize_dtype(image.dtype) == "uint8":
            image = ops.cast(image, "float32") / 255.0
        pose_3d = x["pose_3d"]
        n_image = float(np.prod(self.image_shape))
        n_pose = float(self.num_joints_3d * 3)
        beta = ops.cast(ops.convert_to_tensor(self.beta), "float32")

        # per-sample terms, then the (sample-)weighted mean over the batch
        kl_img_s = losses.kl_divergence_diag_gaussian(y_pred["image_mean"], y_pred["image_log_var"], reduction="none")
        kl_2d_s = losses.kl_divergence_diag_gaussian(y_pred["pose2d_mean"], y_pred["pose2d_log_var"],
                                                     reduction="none")
        pair_losses = ops.stack([weighted_mean(v, sample_weight) for v in (
            losses.l1_loss(image, y_pred["image_recon"], reduction="none") + beta * kl_img_s / n_image,
            losses.mse_loss(pose_3d, y_pred["pose3d_from_image"], reduction="none") + beta * kl_img_s / n_pose,
            losses.mse_loss(pose_3d, y_pred["pose3d_from_2d"], reduction="none") + beta * kl_2d_s / n_pose,
        )])
        kl_img, kl_2d = weighted_mean(kl_img_s, sample_weight), weighted_mean(kl_2d_s, sample_weight)
        weights = self._pair_weights(training)
        total = add_regularization(self, ops.sum(weights * pair_losses))  # weight regularisers, if any

        for i, p in enumerate(PAIRS):
            self.pair_trackers[p].update_state(pair_losses[i], sample_weight=ops.sign(weights[i]))
        self.kl_image_tracker.update_state(kl_img)
        self.kl_pose2d_tracker.update_state(kl_2d)
        self.mpjpe_image_tracker.update_state(self._mpjpe_mm(pose_3d, y_pred["pose3d_from_image"]))
        self.mpjpe_2d_tracker.update_state(self._mpjpe_mm(pose_3d, y_pred["pose3d_from_2d"]))
        return total

    # ------------------------------------------------------------------ inference
    # Networks run through pose_lab.training.base.batched_predict with compiled="auto": eager calls
    # under TensorFlow (tracing or XLA-compiling each network per input size costs more than it
    # saves on a CPU), elsewhere predict() on padded batches of one size (no recompilation per N).
    # Inference-mode networks treat samples independently: batching and padding change nothing.

    def _to_mm(self, pose_norm, include_root):
        """Decoder z-scores ``(N, J3, 3)`` -> mm (``stats.denormalize_3d``); unchanged without stats."""
        pose = np.asarray(pose_norm, np.float32)
        if self._stats is None:
            return pose
        return self._stats.denormalize_3d(pose, include_root=include_root).astype(np.float32)

    def _normalise_2d(self, poses_2d):
        """2D poses in pixels, the full skeleton or the joints the encoder reads, -> the encoder's z-scores."""
        what = "poses_2d (2D poses, pixels)"
        if self._stats is None:
            return check_poses(poses_2d, what, dims=2, num_joints=self.num_joints_2d, batched=True)
        allowed = tuple(sorted({self.num_joints, self.num_joints_2d}))
        p = check_poses(poses_2d, what, dims=2, num_joints=allowed, batched=True)
        return self._stats.normalize_2d(p).astype(np.float32)

    def _check_latent(self, z):
        """Latent codes ``(N, latent_dim)``, numeric and finite, as float32."""
        shape = np.shape(z)
        if len(shape) != 2 or shape[1] != self.latent_dim:
            raise ValueError(f"z (latent codes): expected shape (N, {self.latent_dim}), got {shape}")
        return check_poses(z, "z (latent codes)", dims=self.latent_dim)

    def encode_image(self, images, batch_size: int = 256):
        """Latent Gaussians of images: ``(mean, log_var)``, each ``(N, latent_dim)``.

        ``images``: ``(N, H, W, C)`` uint8 or floats in ``[0, 1]``.
        """
        x = check_images(images, "images", shape=self.image_shape, unit_range=True)
        mean, log_var = batched_predict(self.image_encoder, x, batch_size, compiled="auto")
        return np.asarray(mean), np.asarray(log_var)

    def encode_pose_2d(self, poses_2d, batch_size: int = 1024):
        """Latent Gaussians of 2D poses in pixels: ``(mean, log_var)``, each ``(N, latent_dim)``.

        ``poses_2d``: ``(N, J, 2)``, or ``(N, J2, 2)`` (the joints the encoder reads).
        """
        p = self._normalise_2d(poses_2d)
        mean, log_var = batched_predict(self.pose2d_encoder, p, batch_size, compiled="auto")
        return np.asarray(mean), np.asarray(log_var)

    def predict_3d_from_image(self, images, batch_size: int = 256, include_root: bool = True):
        """Cross-generation image -> 3D: decode the image encoder's mean with the 3D decoder.

        Args:
            images: ``(N, H, W, C)`` uint8 or floats in ``[0, 1]``.
            batch_size: inference batch size.
            include_root: re-insert the dropped root at the origin (``(N, J, 3)``).

        Returns:
            Root-centred camera-frame 3D poses in mm (the skeleton's joint order).
        """
        mean, _ = self.encode_image(images, batch_size)
        pose = batched_predict(self.pose3d_decoder, mean, batch_size, compiled="auto")
        return self._to_mm(pose, include_root)

    def predict_3d_from_2d(self, poses_2d, batch_size: int = 1024, include_root: bool = True):
        """2D -> 3D through the shared latent (the 2D encoder's mean, decoded to 3D).

        Args:
            poses_2d: ``(N, J, 2)`` pixels (or ``(N, J2, 2)``, the joints the
                encoder reads, e.g. 16 of H36M-17 without the root).
            batch_size: inference batch size.
            include_root: re-insert the dropped root at the origin (``(N, J, 3)``).

        Returns:
            Root-centred camera-frame 3D poses in mm.
        """
        mean, _ = self.encode_pose_2d(poses_2d, batch_size)
        pose = batched_predict(self.pose3d_decoder, mean, batch_size, compiled="auto")
        return self._to_mm(pose, include_root)

    def reconstruct_image(self, images, batch_size: int = 256):
        """image -> image: the decoded encoder mean, floats in ``[0, 1]`` of shape ``(N, H, W, C)``."""
        mean, _ = self.encode_image(images, batch_size)
        return np.asarray(batched_predict(self.image_decoder, mean, batch_size, compiled="auto"))

    def decode_latent(self, z, batch_size: int = 256, include_root: bool = True) -> dict:
        """Decode latents ``(N, latent_dim)`` to both modalities.

        Returns:
            ``{"image": (N, H, W, C) floats in [0, 1], "pose_3d": (N, J, 3) mm}``.
        """
        z = self._check_latent(z)
        return {
            "image": np.asarray(batched_predict(self.image_decoder, z, batch_size, compiled="auto")),
            "pose_3d": self._to_mm(batched_predict(self.pose3d_decoder, z, batch_size, compiled="auto"),
                                   include_root),
        }

    # ------------------------------------------------------------ serialisation

    # The sampling noise's generator state is saved with the weights (``save_weights``, ``.keras``,
    # fit_resumable's backups), so a reloaded or resumed model continues the same noise stream;
    # files written before hold only ``beta`` and ``pair_step`` and load as before.
    _SEED_KEY = "seed_generator_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        super().load_own_variables(_StoreWithout(store, self._SEED_KEY))
        if self._SEED_KEY in store.keys():
            self.seed_generator.state.assign(store[self._SEED_KEY])

    def get_config(self):
        config = super().get_config()
        config.update({
            "image_encoder": _serialize(self.image_encoder),
            "image_decoder": _serialize(self.image_decoder),
            "pose2d_encoder": _serialize(self.pose2d_encoder),
            "pose3d_decoder": _serialize(self.pose3d_decoder),
            "beta": self.initial_beta,
            "stats": None if self._stats is None else self._stats.to_dict(),
            "schedule": list(self.schedule),
            "root": self.root,
            "seed": self.seed,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("image_encoder", "image_decoder", "pose2d_encoder", "pose3d_decoder"):
            config[key] = _deserialize(config[key])
        return cls(**config)
