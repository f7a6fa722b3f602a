"""Training of top-down 2D keypoint models: the trainer, its fit helper and the CPU recipe.

:class:`KeypointTrainer` wraps a network from :mod:`pose_lab.models.keypoints2d`
and overrides ``compute_loss`` (backend-agnostic: TensorFlow and JAX), so
``fit()`` takes ``(images, {"heatmaps": (B, h, w, J), "weights": (B, J)})``
for heatmap models or ``(images, {"keypoints": (B, J, 2), "weights": (B, J)})``
for coordinate regressors; the losses are
:func:`pose_lab.losses.weighted_heatmap_mse` and
:func:`pose_lab.losses.weighted_coordinate_l1`. :func:`fit_keypoints2d` is
:func:`pose_lab.training.base.fit_resumable` (checkpoints, ``BackupAndRestore``
so an interrupted Colab run resumes where it stopped, TensorBoard logs, one
progress line per epoch). :data:`SYNTHETIC_RECIPE` is the CPU recipe of
notebook 02 and ``benchmarks/bench_keypoints2d.py``.

Prediction, the flip test, COCO results and evaluation live in
:mod:`pose_lab.evaluation.keypoints2d`.
"""

from __future__ import annotations

import time

import keras
from keras import ops

import pose_lab.models.keypoints2d  # noqa: F401  (registers the custom layers for load_model)
from pose_lab.losses import weighted_coordinate_l1, weighted_heatmap_mse
from pose_lab.training.base import add_regularization, fit_resumable, fit_within_budget, steps_per_second
from pose_lab.training.callbacks import ProgressLog
from pose_lab.training.schedules import WarmupCosineDecay

__all__ = ["SYNTHETIC_RECIPE", "STREAM_RECIPE", "KeypointTrainer", "fit_keypoints2d", "measure_training_rate", "fit_for_minutes"]


#: The CPU recipe of notebook 02 (full mode) and ``benchmarks/bench_keypoints2d.py``:
#: a small ResNet-style backbone with the SimpleBaseline head (plus lateral skips,
#: which a small network trained from scratch needs), 128x96 crops -> 32x24
#: heatmaps (sigma 2, i.e. sigma 4 at SimpleBaseline's 64x48), Adam with warm-up
#: and cosine decay. Training data is a synthetic COCO *train* split (multi-person
#: scenes of subjects S1-S8 written as JPEG + ``person_keypoints_train.json``)
#: cropped by the ground-truth boxes exactly like real COCO; validation is a
#: split of the held-out subjects S9 and S11. Decoding uses DARK's sub-pixel
#: refinement (``decode="dark"``) with the flip test.
SYNTHETIC_RECIPE = {
    "model": {
        "backbone": "small",
        "input_shape": (128, 96, 3),
        "backbone_kwargs": {"widths": (16, 32, 64, 128)},
        "head_filters": 64,
        "head_layers": 3,
        "skip_connections": True,
    },
    "input_shape": (128, 96, 3),
    "sigma": 2.0,
    "batch_size": 64,
    "peak_learning_rate": 5e-3,
    "warmup_steps": 300,
    "train_images": 24000,
    "train_seed": 1,
    "epochs": 4,
    "image_size": (256, 256),
    "val_images": 200,
    "val_seed": 123,
    "val_subjects": ("S9", "S11"),
    "decode": "dark",
}


#: Notebook 02's recipe since the endless stream: the same network as
#: :data:`SYNTHETIC_RECIPE`, trained from random initialisation on
#: :class:`pose_lab.data.synthetic.PersonCropStream` (fresh persons of S1-S8 in
#: every batch, flip / rotation / zoom augmentation) for a wall-clock budget with
#: :func:`fit_for_minutes`. Chosen among three designs at equal training time
#: (``benchmarks/bench_pose2d_stream.py``: small ResNet, MobileNetV2-style, a
#: wider ResNet): the small ResNet trains fastest on a CPU and was not worse in
#: 5 minutes; at 50 minutes the wider ResNet wins, and it is the shipped
#: ``pose2d-synthetic`` (this network is ``pose2d-synthetic-small``).
#: Validation keeps the definition of :data:`SYNTHETIC_RECIPE` (200 images of
#: S9/S11, seed 123), so old and new numbers compare.
STREAM_RECIPE = {
    **{k: SYNTHETIC_RECIPE[k] for k in ("input_shape", "sigma", "batch_size", "peak_learning_rate",
                                        "warmup_steps", "image_size", "val_images", "val_seed",
                                        "val_subjects", "decode")},
    "model": dict(SYNTHETIC_RECIPE["model"]),
    "minutes": 15.0,
    "seed": 0,
}


# ---------------------------------------------------------------------------
# training model
# ---------------------------------------------------------------------------
_WEIGHT_KEYS = ("weights", "target_weights")


def _target_weights(y, y_pred):
    for key in _WEIGHT_KEYS:
        if key in y:
            return y[key]
    if "visibility" in y:
        return ops.cast(ops.convert_to_tensor(y["visibility"]) > 0, "float32")
    shape = ops.shape(y_pred)
    return ops.ones((shape[0], shape[-1]) if len(shape) == 4 else (shape[0], shape[1]), dtype="float32")


def _fold_sample_weight(weights, sample_weight, squared):
    """Fold per-sample weights ``s`` into the per-joint target weights ``(B, J)``.

    Both losses average equal-sized per-sample terms over the batch, so scaling
    sample ``b``'s term by ``s_b / mean(s)`` turns the batch mean into the
    weighted mean ``sum_b s_b l_b / sum_b s_b`` (:func:`pose_lab.training.base.weighted_mean`). The
    coordinate L1 is linear in the target weight (multiply by that factor),
    the heatmap MSE quadratic (multiply by its square root). Negative sample
    weights count as 0; a batch whose weights sum to 0 gets a zero loss.
    """
    w = ops.convert_to_tensor(weights, "float32")
    s = ops.maximum(ops.reshape(ops.cast(ops.convert_to_tensor(sample_weight), "float32"), (-1,)), 0.0)
    if len(ops.shape(s)) != 1 or (s.shape[0] is not None and w.shape[0] is not None and s.shape[0] != w.shape[0]):
        raise ValueError(f"sample_weight: expected one weight per sample ({w.shape[0]}), got shape {tuple(s.shape)}")
    mean = ops.mean(s)
    factor = ops.where(mean > 0, s / ops.where(mean > 0, mean, 1.0), 0.0)
    factor = ops.sqrt(factor) if squared else factor
    return w * factor[:, None]


@keras.saving.register_keras_serializable(package="pose_lab")
class KeypointTrainer(keras.Model):
    """Wraps a 2D keypoint network with the visibility-weighted loss of its output type.

    Heatmap networks (4D output) are trained with :func:`weighted_heatmap_mse`
    against ``y["heatmaps"]``; coordinate networks (``(B, J, 2)`` output) with
    :func:`weighted_coordinate_l1` against ``y["keypoints"]`` (crop pixels). The
    target weights are ``y["weights"]`` (or ``"target_weights"``; else
    ``visibility > 0``; else all ones). Sample weights (``fit(...,
    sample_weight=w)``) make the batch loss the weighted mean of the
    per-sample losses, ``sum_b w_b l_b / sum_b w_b``. ``compute_loss`` uses
    only ``keras.ops``, so the same class trains under TensorFlow and JAX.

    Args:
        network: a functional keypoint model (``build_heatmap_model`` /
            ``build_regression_model``).
        coord_scale: pixels per loss unit for coordinate networks (default: the
            larger input side).

    Example:
        >>> net = build_heatmap_model("small", (128, 96, 3), head_filters=64)
        >>> model = KeypointTrainer(net)
        >>> model.compile(keras.optimizers.Adam(1e-3))
        >>> model.fit(images, {"heatmaps": hm, "weights": w}, epochs=1)
    """

    def __init__(self, network, coord_scale=None, **kwargs):
        kwargs.setdefault("name", "keypoint_trainer")
        super().__init__(**kwargs)
        if not isinstance(network, keras.Model):
            raise ValueError(f"network must be a keras.Model, got {type(network).__name__}")
        rank = len(network.output_shape)
        if rank not in (3, 4):
            raise ValueError(
                f"network output must be heatmaps (B, h, w, J) or keypoints (B, J, 2), got {network.output_shape}"
            )
        self.network = network
        self.output_type = "heatmaps" if rank == 4 else "keypoints"
        in_shape = network.input_shape
        self.built = True  # the wrapped network is built; BackupAndRestore needs this before fit()
        self.coord_scale = float(coord_scale) if coord_scale else float(max(in_shape[1] or 1, in_shape[2] or 1))

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not isinstance(y, dict) or self.output_type not in y:
            got = sorted(y) if isinstance(y, dict) else type(y).__name__
            raise ValueError(
                f"KeypointTrainer ({self.output_type} network) expects targets as a dict with "
                f"{self.output_type!r} and 'weights', got {got}"
            )
        target = y[self.output_type]
        weights = _target_weights(y, y_pred)
        if sample_weight is not None:
            weights = _fold_sample_weight(weights, sample_weight, squared=self.output_type == "heatmaps")
        if self.output_type == "heatmaps":
            loss = weighted_heatmap_mse(target, y_pred, weights)
        else:
            loss = weighted_coordinate_l1(target, y_pred, weights, self.coord_scale)
        return add_regularization(self, loss)

    @property
    def input_shape(self):
        return self.network.input_shape

    @property
    def output_shape(self):
        return self.network.output_shape

    def get_config(self):
        config = super().get_config()
        config.update({"network": keras.saving.serialize_keras_object(self.network), "coord_scale": self.coord_scale})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"], custom_objects=custom_objects)
        return cls(**config)


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------
def fit_keypoints2d(model, train_data, epochs, workdir, validation_data=None, callbacks=None,
                    checkpoint=True, backup=True, tensorboard=True, verbose=None, progress=True, **fit_kwargs):
    """``model.fit`` through :func:`pose_lab.training.base.fit_resumable` (resumable, logged, with an ETA).

    Args:
        model: a compiled :class:`KeypointTrainer` (or any compiled model).
        train_data: a ``tf.data.Dataset`` / generator of ``(images, targets)``, or
            a tuple ``(images, targets)`` of arrays.
        epochs: total epochs (a resumed run continues up to this number).
        workdir: folder for ``best.keras``, ``backup/`` and ``logs/``
            (:func:`pose_lab.training.base.resumable_callbacks`); call the
            function again after an interruption and training resumes.
        validation_data: optional, as for ``fit``; the best checkpoint monitors
            ``val_loss`` when given, ``loss`` otherwise.
        callbacks: extra callbacks appended to the standard ones.
        checkpoint, backup, tensorboard: turn the standard callbacks off one by one.
        verbose: ``fit``'s verbosity (default: ``0`` with ``progress``, else ``"auto"``).
        progress: one line per epoch with the ETA
            (:class:`~pose_lab.training.callbacks.ProgressLog`).
        **fit_kwargs: passed to ``fit`` (``steps_per_epoch``, ``batch_size``...).

    Returns:
        The ``History`` of this call (only the epochs run in it).
    """
    if isinstance(train_data, tuple):
        if len(train_data) != 2:
            raise ValueError(f"train_data: expected a tuple (images, targets), got {len(train_data)} items")
        x, y = train_data
    else:
        x, y = train_data, None
    return fit_resumable(model, x, y, epochs=epochs, workdir=workdir, validation_data=validation_data,
                         callbacks=callbacks, checkpoint=checkpoint, backup=backup, tensorboard=tensorboard,
                         progress=progress, verbose=verbose, **fit_kwargs)


# ---------------------------------------------------------------------------
# training for a time budget
# ---------------------------------------------------------------------------
def measure_training_rate(network, data, steps=20, warmup_steps=3):
    """Training steps per second of ``network`` on ``data``, measured on a throw-away clone.

    The clone is compiled and run for ``warmup_steps`` (tracing, compilation)
    and then timed for ``steps``; ``network``'s weights are not touched and a
    :class:`~pose_lab.data.synthetic.PersonCropStream`'s epoch counter is
    restored, so the measured batches are rendered again for the real run.

    Returns:
        ``(steps_per_second, seconds_spent)``.
    """
    t0 = time.perf_counter()
    probe = KeypointTrainer(keras.models.clone_model(network))
    probe.compile(keras.optimizers.Adam(1e-4))

    rate = steps_per_second(probe, data, steps=steps, warmup_steps=warmup_steps)
    return rate, time.perf_counter() - t0


def fit_for_minutes(network, data, minutes, *, peak_learning_rate=5e-3, warmup_steps=300, evaluate=None,
                    marks=(), callbacks=None, probe_steps=20, progress=True, replan=True, verbose=0):
    """Train ``network`` for a wall-clock budget with a schedule that ends when the budget does.

    The budget includes a short probe (:func:`measure_training_rate`) that
    turns the remaining minutes into a step count; Adam then runs a linear
    warm-up and a cosine decay over those steps,
    :class:`~pose_lab.training.callbacks.TimeLimit` stops training when the
    minutes are spent (the time of ``evaluate`` calls is not counted), and
    :class:`~pose_lab.training.callbacks.FitScheduleToBudget` moves the decay's
    end to where the run's own rate says the budget ends (the probe alone
    planned 4,829 of the 6,876 steps a 50-minute run made: a third of the
    budget at a learning rate of zero). This
    is how the kit compares networks "at equal CPU time"; on a faster machine
    the same call simply takes more steps.

    Args:
        network: a heatmap (or coordinate) network.
        data: an endless source with a length, such as
            :class:`~pose_lab.data.synthetic.PersonCropStream`.
        minutes: the budget.
        peak_learning_rate, warmup_steps: Adam's schedule (the warm-up is
            capped at a tenth of the planned steps).
        evaluate: optional ``fn(trainer) -> dict``, called at ``marks``
            (training minutes) and at the end; see ``TimeLimit``.
        callbacks: extra callbacks.
        probe_steps: steps timed by the probe.
        progress: one line per epoch (:class:`~pose_lab.training.callbacks.ProgressLog`).
        replan: ``False`` keeps the probe's plan (how the shipped
            ``pose2d-synthetic-small`` checkpoint was trained).

    Returns:
        ``(trainer, limit, info)``: the trained :class:`KeypointTrainer`, the
        ``TimeLimit`` (its ``curve``, ``trained_seconds``, ``steps``) and a
        dict with the probe's ``steps_per_second``, ``probe_seconds``, its
        ``planned_steps``, the ``final_planned_steps`` and the ``replans``
        (``(step, planned_steps)`` each).
    """
    if not float(minutes) > 0:
        raise ValueError(f"minutes must be > 0, got {minutes!r}")
    rate, probe_seconds = measure_training_rate(network, data, steps=probe_steps)
    left = max(float(minutes) * 60.0 - probe_seconds, 1.0)
    planned = max(int(rate * left), 2)
    trainer = KeypointTrainer(network)
    warm = min(int(warmup_steps), planned // 10)
    schedule = WarmupCosineDecay(peak_learning_rate, decay_steps=planned, warmup_steps=warm)
    trainer.compile(keras.optimizers.Adam(schedule))
    _, limit, fitter = fit_within_budget(trainer, data, left, schedule, planned, replan=replan, evaluate=evaluate,
                                         marks=marks, verbose=verbose,
                                         callbacks=([ProgressLog()] if progress else []) + list(callbacks or []))
    info = {"steps_per_second": rate, "probe_seconds": probe_seconds, "planned_steps": planned,
            "final_planned_steps": fitter.planned_steps if fitter else planned,
            "replans": list(fitter.replans) if fitter else []}
    return trainer, limit, info
