"""SimCLR and SimSiam as ``keras.Model`` subclasses trained with ``fit()`` (seed 000).

Both take an encoder (images -> features ``h``), their heads and a view
generator (``augmenter``, by default
:func:`pose_lab.data.augment.contrastive_augmentation`). Inside the step each
image batch is augmented twice; the two views go through the encoder in one
batch (as google-research/simclr does, so BatchNorm sees both views), then:

* :class:`SimCLR`: ``z = g(h)``, loss :func:`pose_lab.losses.nt_xent` over the
  two views; logged: ``loss`` and ``accuracy`` (the contrastive top-1: how
  often an anchor's most similar embedding is its positive, out of ``2N - 1``).
* :class:`SimSiam`: ``z = f(h)``, ``p = q(z)``, loss
  :func:`pose_lab.losses.simsiam_loss` (stop-gradient on ``z``); logged:
  ``loss`` and ``output_std``, the mean over channels of the batch std of the
  l2-normalised ``z`` (the paper's collapse monitor: about ``1/sqrt(d)`` when
  healthy, 0 when every image maps to the same vector).
  :class:`CollapseMonitor` warns when it falls under ``0.5/sqrt(d)``.

Per-group learning rates (the seed: projection head 0.01, encoder 0.005).
``encoder_lr_multiplier`` scales the gradient reaching the encoder's weights
(identity forward, ``m`` times the gradient backward, at the encoder's output).
With SGD, with or without momentum, that is exactly a learning rate ``m``
times smaller for the encoder; Adam-type optimizers normalise gradients and
ignore it, so :func:`contrastive_optimizer` builds SGD.

Distributed negatives (large-batch SimCLR). Under ``tf.distribute`` (e.g.
``MirroredStrategy``) each replica embeds its share of the batch, gathers every
replica's embeddings (``ReplicaContext.all_gather``, differentiable) and scores
its own anchors against all ``2N`` views of the global batch, with the
positive at ``replica_id * n + i``, as the reference's
``tpu_cross_replica_concat``. The mean of the replicas' losses is then the
single-device loss of the global batch (tested to 1e-5), and the gradients are
too. The loss is divided by the number of replicas before Keras sums the
replicas' gradients. Under JAX, ``keras.distribution.DataParallel`` shards the
batch over devices but the step works on the global arrays, so the negatives
are global with no code here. TensorFlow is imported only on the TensorFlow
backend, to reach the replica context.

BatchNorm in the heads can be synchronised (``synchronized=True`` in
:mod:`pose_lab.models.contrastive`) so statistics are global too (SimCLR's
global BN); without it each replica normalises its own share.
"""

from __future__ import annotations

import math
import time
import warnings

import keras
import numpy as np
from keras import ops

from pose_lab import losses, pretrained
from pose_lab.data.augment import DEFAULT_CONTRASTIVE_AUGMENTATIONS, contrastive_augmentation
from pose_lab.models.contrastive import build_encoder, simclr_projection_head, simsiam_predictor, simsiam_projector
from pose_lab.training.base import fit_resumable, fit_within_budget, steps_per_second
from pose_lab.training.callbacks import ProgressLog

__all__ = [
    "SimCLR",
    "SimSiam",
    "CollapseMonitor",
    "contrastive_optimizer",
    "contrastive_schedule",
    "fit_contrastive",
    "build_simclr",
    "build_simsiam",
    "pretrain_for_minutes",
    "scale_gradient",
    "replica_batch",
    "output_std",
]


def scale_gradient(x, factor):
    """Identity forward, gradient times ``factor`` backward: ``factor x + stopgrad((1 - factor) x)``."""
    factor = float(factor)
    if factor == 1.0:
        return x
    return factor * x + ops.stop_gradient((1.0 - factor) * x)


def _replica_context():
    """The ``tf.distribute`` replica context when several replicas run this step, else ``None``."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf  # the replica context is TensorFlow's (tf.distribute)

    ctx = tf.distribute.get_replica_context()
    return None if ctx is None or ctx.num_replicas_in_sync == 1 else ctx


def replica_batch(z1, z2):
    """The global batch behind one replica's embeddings.

    Returns:
        ``(z1_all, z2_all, offset, num_replicas)``: under a ``tf.distribute``
        strategy with several replicas, every replica's ``z1`` / ``z2``
        concatenated in replica order, this replica's first row in them and the
        replica count; otherwise ``(None, None, 0, 1)`` (the local batch is the batch).
    """
    ctx = _replica_context()
    if ctx is None:
        return None, None, 0, 1
    z1_all = ctx.all_gather(z1, axis=0)
    z2_all = ctx.all_gather(z2, axis=0)
    offset = ops.cast(ctx.replica_id_in_sync_group, "int32") * ops.shape(z1)[0]
    return z1_all, z2_all, offset, ctx.num_replicas_in_sync


def _serialize(obj):
    return None if obj is None else keras.saving.serialize_keras_object(obj)


def _deserialize(obj):
    return None if obj is None else keras.saving.deserialize_keras_object(obj)


class _TwoViews(keras.Model):
    """Shared plumbing: the view generator, the encoder learning-rate multiplier, config."""

    _HEADS = ()

    def __init__(self, encoder, augmenter=None, *, encoder_lr_multiplier=1.0, **kwargs):
        super().__init__(**kwargs)
        if (not isinstance(encoder, keras.Model) or len(encoder.output_shape) != 2
                or len(encoder.input_shape) != 4):
            raise ValueError("encoder: expected a keras.Model mapping images (B, H, W, 3) to features (B, C), got "
                             f"{type(encoder).__name__} with input shape {getattr(encoder, 'input_shape', None)} "
                             f"and output shape {getattr(encoder, 'output_shape', None)}")
        m = float(encoder_lr_multiplier)
        if not (np.isfinite(m) and m >= 0):
            raise ValueError(f"encoder_lr_multiplier: expected a number >= 0, got {encoder_lr_multiplier!r}")
        self.encoder = encoder
        self.augmenter = augmenter if augmenter is not None else contrastive_augmentation()
        self.encoder_lr_multiplier = m
        self.built = True  # functional parts built on construction (BackupAndRestore needs a built model)

    def build(self, input_shape=None):
        self.built = True

    def _check_images(self, images):
        want = tuple(self.encoder.input_shape[1:])
        shape = tuple(images.shape)
        pairs = len(shape) == 5 and shape[1] == 2
        got = shape[2:] if pairs else shape[1:]
        if len(got) != 3 or any(w is not None and g is not None and w != g for w, g in zip(want, got)):
            w = ", ".join(map(str, want))
            raise ValueError(f"{type(self).__name__}: expected images (B, {w}) or pairs (B, 2, {w}), "
                             f"got shape {shape}")
        return pairs

    def views(self, images):
        """Two independently augmented views (always augmented: that is the task).

        ``images`` is a batch ``(B, H, W, 3)`` (both views from the same image,
        as in the papers) or pairs ``(B, 2, H, W, 3)`` (view 1 from ``[:, 0]``,
        view 2 from ``[:, 1]``, e.g. one pose in two appearances from
        ``PersonCropStream(output="pairs")``).
        """
        images = ops.convert_to_tensor(images)
        if self._check_images(images):
            return self.augmenter(images[:, 0], training=True), self.augmenter(images[:, 1], training=True)
        return self.augmenter(images, training=True), self.augmenter(images, training=True)

    def _encode_views(self, images, training):
        v1, v2 = self.views(images)
        n = ops.shape(v1)[0]
        h = self.encoder(ops.concatenate([v1, v2], axis=0), training=training)
        return scale_gradient(h, self.encoder_lr_multiplier), n

    def embed(self, images, training=False):
        """Encoder features ``h`` of un-augmented images (what probes and clustering read)."""
        return self.encoder(images, training=training)

    def get_config(self):
        config = {**super().get_config(), "encoder": _serialize(self.encoder),
                  "augmenter": _serialize(self.augmenter), "encoder_lr_multiplier": self.encoder_lr_multiplier}
        for head in self._HEADS:
            config[head] = _serialize(getattr(self, head))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "augmenter") + cls._HEADS:
            config[key] = _deserialize(config.get(key))
        return cls(**config)


@keras.saving.register_keras_serializable(package="pose_lab")
class SimCLR(_TwoViews):
    """SimCLR (Chen et al. 2020): NT-Xent between two augmented views.

    Args:
        encoder: images -> features ``h`` (e.g. :func:`pose_lab.models.contrastive.build_encoder`).
        projector: ``h -> z`` (:func:`pose_lab.models.contrastive.simclr_projection_head`).
        augmenter: the view generator (default :func:`~pose_lab.data.augment.contrastive_augmentation`).
        temperature: NT-Xent ``tau``.
        directions: ``"sum"`` (google-research/simclr's value) or ``"mean"`` (the paper's);
            see :func:`pose_lab.losses.nt_xent`.
        encoder_lr_multiplier: the encoder's learning rate relative to the heads'
            (seed 000: 0.005 / 0.01 = 0.5); exact with SGD.

    ``call(images)`` returns ``{"z1", "z2"}``, the projections of two fresh views.

    Example:
        >>> model = SimCLR(encoder, simclr_projection_head(encoder.output_shape[-1]))
        >>> model.compile(optimizer=contrastive_optimizer(0.3, 128, total_steps=1000))
        >>> model.fit(person_crops, epochs=20)
    """

    _HEADS = ("projector",)

    def __init__(self, encoder, projector, augmenter=None, *, temperature=0.1, directions="sum",
                 encoder_lr_multiplier=0.5, **kwargs):
        super().__init__(encoder, augmenter, encoder_lr_multiplier=encoder_lr_multiplier, **kwargs)
        if not float(temperature) > 0:
            raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
        if directions not in ("sum", "mean"):
            raise ValueError(f"directions: expected 'sum' or 'mean', got {directions!r}")
        self.projector = projector
        self.temperature = float(temperature)
        self.directions = directions
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")

    def call(self, images, training=None):
        h, n = self._encode_views(images, training)
        z = self.projector(h, training=training)
        return {"z1": z[:n], "z2": z[n:]}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        z1, z2 = y_pred["z1"], y_pred["z2"]
        z1_all, z2_all, offset, replicas = replica_batch(z1, z2)
        logits_a, logits_b, labels = losses.nt_xent_logits(z1, z2, self.temperature, z1_all=z1_all,
                                                           z2_all=z2_all, offset=offset)
        loss = losses.nt_xent_from_logits(logits_a, logits_b, labels, directions=self.directions)
        hits = [ops.cast(ops.equal(ops.cast(ops.argmax(ops.stop_gradient(lg), axis=1), "int32"), labels), "float32")
                for lg in (logits_a, logits_b)]
        self.accuracy_tracker.update_state(ops.mean(ops.concatenate(hits)))
        # Keras sums the replicas' gradients: each replica contributes 1/R of the mean loss
        return loss / float(replicas)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "directions": self.directions}


def output_std(z):
    """The SimSiam collapse monitor: mean over channels of the batch std of ``z / ||z||``."""
    zn = losses.l2_normalize(z)
    return ops.mean(ops.std(zn, axis=0))


@keras.saving.register_keras_serializable(package="pose_lab")
class SimSiam(_TwoViews):
    """SimSiam (Chen & He 2021): predict one view's projection from the other's, no negatives.

    Args:
        encoder: images -> features.
        projector: ``h -> z`` (:func:`pose_lab.models.contrastive.simsiam_projector`).
        predictor: ``z -> p`` (:func:`pose_lab.models.contrastive.simsiam_predictor`).
        augmenter: the view generator.
        stop_gradient: ``True`` (SimSiam); ``False`` is the ablation that collapses.
        encoder_lr_multiplier: the encoder's learning rate relative to the heads' (seed: 1).

    ``call(images)`` returns ``{"z1", "z2", "p1", "p2"}``.
    """

    _HEADS = ("projector", "predictor")

    def __init__(self, encoder, projector, predictor, augmenter=None, *, stop_gradient=True,
                 encoder_lr_multiplier=1.0, **kwargs):
        super().__init__(encoder, augmenter, encoder_lr_multiplier=encoder_lr_multiplier, **kwargs)
        self.projector = projector
        self.predictor = predictor
        self.stop_gradient = bool(stop_gradient)
        self.output_dim = int(projector.output_shape[-1])
        self.std_tracker = keras.metrics.Mean(name="output_std")

    def call(self, images, training=None):
        h, n = self._encode_views(images, training)
        z = self.projector(h, training=training)
        p = self.predictor(z, training=training)
        return {"z1": z[:n], "z2": z[n:], "p1": p[:n], "p2": p[n:]}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = losses.simsiam_loss(y_pred["p1"], y_pred["p2"], y_pred["z1"], y_pred["z2"],
                                   stop_gradient=self.stop_gradient)
        self.std_tracker.update_state(output_std(ops.stop_gradient(y_pred["z1"])))
        # SimSiam has no negatives: each replica's loss is a mean over its own pairs
        return loss / float(_num_replicas())

    def get_config(self):
        return {**super().get_config(), "stop_gradient": self.stop_gradient}


def _num_replicas():
    ctx = _replica_context()
    return 1 if ctx is None else int(ctx.num_replicas_in_sync)


class CollapseMonitor(keras.callbacks.Callback):
    """Warn when SimSiam's ``output_std`` says the representation collapsed.

    At each epoch end, ``output_std * sqrt(d)`` (1 for a healthy, uniformly
    spread ``z``; 0 for a collapse) is compared with ``threshold`` (default
    0.5) and a ``RuntimeWarning`` names the epoch and the value. The values are
    kept in ``self.history``.
    """

    def __init__(self, dim, threshold=0.5, key="output_std"):
        super().__init__()
        self.dim = int(dim)
        self.threshold = float(threshold)
        self.key = key
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.key)
        if value is None:
            return
        ratio = float(value) * math.sqrt(self.dim)
        self.history.append(ratio)
        if not ratio >= self.threshold:
            warnings.warn(f"SimSiam collapse: epoch {epoch + 1} output_std x sqrt(d) = {ratio:.3f} < "
                          f"{self.threshold} (d = {self.dim}); healthy is about 1", RuntimeWarning, stacklevel=2)


def contrastive_schedule(base_learning_rate, batch_size, total_steps, *, final_fraction=0.0, warmup_steps=0):
    """The SimSiam learning-rate rule with cosine annealing, as a Keras schedule.

    ``lr = base_learning_rate * batch_size / 256`` (SimSiam; the seed's later runs:
    0.3 x batch / 256), decayed by a cosine over ``total_steps`` to
    ``final_fraction * lr`` (the seed's ``eta_min``: it notes the loss stalled
    after 22 of 30 epochs with a small ``eta_min``), after an optional linear warm-up.
    """
    lr = float(base_learning_rate) * int(batch_size) / 256.0
    total_steps = int(total_steps)
    if not lr > 0 or total_steps < 1:
        raise ValueError(f"base_learning_rate, batch_size and total_steps must be positive, got "
                         f"{base_learning_rate}, {batch_size}, {total_steps}")
    warmup_steps = int(warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else lr, decay_steps=max(1, total_steps - warmup_steps),
        alpha=float(final_fraction), warmup_target=lr if warmup_steps else None, warmup_steps=warmup_steps)


def contrastive_optimizer(base_learning_rate, batch_size, total_steps, *, momentum=0.9, weight_decay=1e-4,
                          final_fraction=0.0, warmup_steps=0, schedule=None):
    """SGD with momentum on :func:`contrastive_schedule` (SimSiam's optimizer).

    ``schedule``: use this one (e.g. kept by the caller to re-plan it) instead of
    building it from the other arguments.

    Weight decay is Keras's (``w -= lr * wd * w`` at each step); PyTorch's SGD
    adds ``wd * w`` to the gradient before momentum, which differs slightly.
    """
    if schedule is None:
        schedule = contrastive_schedule(base_learning_rate, batch_size, total_steps, final_fraction=final_fraction,
                                        warmup_steps=warmup_steps)
    return keras.optimizers.SGD(schedule, momentum=momentum, weight_decay=weight_decay or None)


def fit_contrastive(model, data, *, epochs=1, workdir=None, callbacks=None, validation_data=None, progress=True,
                    collapse_threshold=0.5, **fit_kwargs):
    """Train a :class:`SimCLR` / :class:`SimSiam` with :func:`~pose_lab.training.base.fit_resumable`.

    ``data`` yields image batches (a ``keras.utils.PyDataset`` such as
    ``PersonCropStream(output="images")``, a ``tf.data.Dataset``, or an array
    with ``batch_size``). SimSiam runs get a :class:`CollapseMonitor`.
    """
    callbacks = list(callbacks or [])
    if isinstance(model, SimSiam) and not any(isinstance(c, CollapseMonitor) for c in callbacks):
        callbacks.append(CollapseMonitor(model.output_dim, collapse_threshold))
    return fit_resumable(model, data, epochs=epochs, workdir=workdir, callbacks=callbacks,
                         validation_data=validation_data, progress=progress, **fit_kwargs)


def _views(augmentations, seed):
    """``contrastive_augmentation`` with its default names when ``augmentations`` is None."""
    names = DEFAULT_CONTRASTIVE_AUGMENTATIONS if augmentations is None else augmentations
    return contrastive_augmentation(names, seed=seed)


def _encoder_for(input_shape, widths, encoder):
    """``encoder``, or a fresh small ResNet: that of ``pose2d-synthetic-small``, or ``widths`` (one block each)."""
    if encoder is not None:
        return encoder
    kwargs = pretrained.backbone_kwargs("pose2d-synthetic-small") if widths is None else {"widths": tuple(widths)}
    return build_encoder("small", input_shape, backbone_kwargs=kwargs)


def build_simclr(input_shape=(128, 96, 3), *, widths=None, projection_dim=64, temperature=0.1,
                 augmentations=None, encoder=None, seed=None, **kwargs):
    """The kit's CPU SimCLR: the small ResNet of the shipped pose checkpoint, a 2-layer head, default views.

    The encoder has the architecture of ``pretrained.load_backbone("pose2d-synthetic-small")`` (random weights),
    so that supervised checkpoint is a like-for-like reference; ``widths`` builds one basic block per stage.

    ``augmentations``: names for :func:`~pose_lab.data.augment.contrastive_augmentation`
    (default its defaults); ``encoder``: use this encoder instead of a fresh one.
    Other keyword arguments go to :class:`SimCLR` (e.g. ``encoder_lr_multiplier``).
    """
    enc = _encoder_for(input_shape, widths, encoder)
    dim = int(enc.output_shape[-1])
    return SimCLR(enc, simclr_projection_head(dim, output_dim=projection_dim), _views(augmentations, seed),
                  temperature=temperature, **kwargs)


def build_simsiam(input_shape=(128, 96, 3), *, widths=None, dim=512, augmentations=None, encoder=None,
                  seed=None, **kwargs):
    """The kit's CPU SimSiam: the checkpoint's small ResNet (as :func:`build_simclr`), a 3-layer projector of
    width ``dim``, a ``dim/4`` predictor."""
    enc = _encoder_for(input_shape, widths, encoder)
    return SimSiam(enc, simsiam_projector(int(enc.output_shape[-1]), dim), simsiam_predictor(dim),
                   _views(augmentations, seed), **kwargs)


def pretrain_for_minutes(build, data, minutes, *, base_learning_rate, batch_size, final_fraction=0.0,
                         warmup_fraction=0.05, probe_steps=5, steps=None, run_eagerly=False, callbacks=None,
                         progress=True, collapse_threshold=0.5, **optimizer_kwargs):
    """Self-supervised pretraining for a wall-clock budget, with a cosine schedule that ends with it.

    ``build()`` returns a fresh (uncompiled) :class:`SimCLR` / :class:`SimSiam`.
    A throw-away model built the same way is timed for ``probe_steps`` steps
    (after two warm-up steps); the remaining budget becomes the planned step count
    of :func:`contrastive_optimizer`, and a
    :class:`~pose_lab.training.callbacks.TimeLimit` stops the run when the minutes
    are spent (the probe's time counts against the budget);
    :class:`~pose_lab.training.callbacks.FitScheduleToBudget` moves the schedule's
    end to where the run's own rate says the budget ends. A stream's epoch
    counter is put back after the probe, so the run sees the probe's batches again.

    ``steps``: plan exactly this many steps instead (no probe; the minutes still
    cap the run), e.g. a few steps in smoke mode; ``run_eagerly=True`` skips
    tracing the step (faster for a handful of steps, slower for a real run).

    Returns:
        ``(model, limit, info)``: the trained model, the ``TimeLimit`` (``steps``,
        ``trained_seconds``) and ``{"steps_per_second", "probe_steps_per_second",
        "probe_seconds", "planned_steps", "final_planned_steps", "history"}``: ``steps_per_second`` is the
        run's (``limit.steps / limit.trained_seconds``), ``probe_steps_per_second``
        the probe's the plan was made from (NaN with ``steps``).
    """
    if not float(minutes) > 0:
        raise ValueError(f"minutes must be > 0, got {minutes!r}")
    t0 = time.perf_counter()
    probe_rate = float("nan")
    if steps is None:
        probe = build()
        probe.compile(optimizer=keras.optimizers.SGD(1e-9), run_eagerly=run_eagerly)
        probe_rate = steps_per_second(probe, data, steps=probe_steps, warmup_steps=2)
        del probe
    probe_seconds = time.perf_counter() - t0
    left = max(float(minutes) * 60.0 - probe_seconds, 1.0)
    planned = max(int(probe_rate * left), 2) if steps is None else max(int(steps), 1)
    model = build()
    schedule = contrastive_schedule(base_learning_rate, batch_size, planned, final_fraction=final_fraction,
                                    warmup_steps=int(warmup_fraction * planned))
    model.compile(optimizer=contrastive_optimizer(base_learning_rate, batch_size, planned, schedule=schedule,
                                                  **optimizer_kwargs),
                  run_eagerly=run_eagerly)
    extra = ([ProgressLog()] if progress else []) + list(callbacks or [])
    if isinstance(model, SimSiam):
        extra.append(CollapseMonitor(model.output_dim, collapse_threshold))
    # a plan from the probe keeps the schedule's end at the budget's; a given number of steps is the plan
    hist, limit, replan = fit_within_budget(model, data, left, schedule, planned, replan=steps is None,
                                            max_steps=None if steps is None else planned, callbacks=extra)
    # the run's own rate (the probe's, timed on a throw-away model over a few steps, is only the plan's basis)
    run_rate = limit.steps / limit.trained_seconds if limit.trained_seconds > 0 else float("nan")
    return model, limit, {"steps_per_second": run_rate, "probe_steps_per_second": probe_rate,
                          "probe_seconds": probe_seconds, "planned_steps": planned,
                          "final_planned_steps": planned if replan is None else replan.planned_steps,
                          "history": hist.history}
