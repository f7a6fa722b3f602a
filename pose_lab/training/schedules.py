"""Learning-rate schedules with linear warm-up, as serialisable Keras schedules.

Both follow the recipes of the course's sources:

* seed 002 (Keypoint R-CNN): linear warm-up from ``lr / 1000`` over the first
  ``min(1000, steps_per_epoch - 1)`` iterations (PyTorch ``LinearLR``), then
  ``MultiStepLR`` (x0.1 at fixed milestones) -> :class:`WarmupStepDecay`;
* SimpleBaseline (Xiao et al. 2018): Adam 1e-3, x0.1 at epochs 90 and 120 of 140
  -> :class:`WarmupStepDecay` with ``boundaries`` in steps; or a smooth
  alternative, :class:`WarmupCosineDecay`.

Closed forms (``s`` = optimizer step, ``W`` = ``warmup_steps``, ``f`` =
``warmup_start_factor``, ``lr`` = ``peak_learning_rate``)::

    warm-up (s < W):   lr * (f + (1 - f) * s / W)
    step decay:        lr * gamma ** (number of boundaries b with s >= b)
    cosine decay:      end + (lr - end) * (1 + cos(pi * p)) / 2,
                       p = clip((s - W) / (decay_steps - W), 0, 1), end = lr * alpha

Use with any Keras optimizer: ``keras.optimizers.Adam(WarmupCosineDecay(...))``;
they round-trip through ``.keras`` files with the optimizer.

A run with a time budget plans its schedule in steps from a probe of the
training rate; :func:`rescale_schedule` stretches or shrinks the schedule's
remaining part when the run's own rate says the plan was off
(:class:`pose_lab.training.callbacks.FitScheduleToBudget`).
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["WarmupStepDecay", "WarmupCosineDecay", "warmup_factor", "rescale_schedule"]


def _check_common(peak_learning_rate, warmup_steps, warmup_start_factor):
    if not (float(peak_learning_rate) > 0 and math.isfinite(float(peak_learning_rate))):
        raise ValueError(f"peak_learning_rate must be a finite value > 0, got {peak_learning_rate!r}")
    if int(warmup_steps) < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps!r}")
    if not 0.0 <= float(warmup_start_factor) <= 1.0:
        raise ValueError(f"warmup_start_factor must be in [0, 1], got {warmup_start_factor!r}")


def warmup_factor(step, warmup_steps, warmup_start_factor):
    """Linear warm-up multiplier (``keras.ops``): ``f + (1 - f) * min(step, W) / W`` (1 when ``W = 0``)."""
    if warmup_steps <= 0:
        return ops.ones_like(step)
    frac = ops.minimum(step, float(warmup_steps)) / float(warmup_steps)
    return warmup_start_factor + (1.0 - warmup_start_factor) * frac


@keras.saving.register_keras_serializable(package="pose_lab")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then piecewise-constant decay by ``gamma`` at ``boundaries``.

    Args:
        peak_learning_rate: learning rate after warm-up.
        boundaries: optimizer steps at which the rate is multiplied by ``gamma``
            (sorted, e.g. ``[90 * steps_per_epoch, 120 * steps_per_epoch]``).
        gamma: decay factor at each boundary (0.1 in SimpleBaseline and seed 002).
        warmup_steps: length of the linear warm-up (0: none).
        warmup_start_factor: fraction of the peak rate at step 0 (seed 002: 1/1000).

    Example:
        >>> sched = WarmupStepDecay(1e-3, boundaries=[900, 1200], warmup_steps=100)
        >>> float(sched(1000))   # 1e-4
    """

    def __init__(self, peak_learning_rate, boundaries, gamma=0.1, warmup_steps=0, warmup_start_factor=0.001,
                 name="warmup_step_decay"):
        _check_common(peak_learning_rate, warmup_steps, warmup_start_factor)
        boundaries = [int(b) for b in boundaries]
        if boundaries != sorted(boundaries) or any(b < 0 for b in boundaries):
            raise ValueError(f"boundaries must be sorted non-negative steps, got {boundaries}")
        if not float(gamma) > 0:
            raise ValueError(f"gamma must be > 0, got {gamma!r}")
        self.peak_learning_rate = float(peak_learning_rate)
        self.boundaries = boundaries
        self.gamma = float(gamma)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = float(warmup_start_factor)
        self.name = name

    def __call__(self, step):
        s = ops.cast(step, "float32")
        lr = self.peak_learning_rate * warmup_factor(s, self.warmup_steps, self.warmup_start_factor)
        if self.boundaries:
            bounds = ops.convert_to_tensor(self.boundaries, dtype="float32")
            n = ops.sum(ops.cast(s >= bounds, "float32"))
            lr = lr * ops.power(self.gamma, n)
        return ops.cast(lr, "float32")

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "boundaries": list(self.boundaries),
            "gamma": self.gamma,
            "warmup_steps": self.warmup_steps,
            "warmup_start_factor": self.warmup_start_factor,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="pose_lab")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine decay to ``alpha * peak`` at ``decay_steps``.

    Args:
        peak_learning_rate: learning rate after warm-up.
        decay_steps: total steps (warm-up included) at which the decay ends; the
            rate stays at ``alpha * peak`` afterwards.
        warmup_steps: length of the linear warm-up (0: none), ``< decay_steps``.
        warmup_start_factor: fraction of the peak rate at step 0.
        alpha: final rate as a fraction of the peak.

    Example:
        >>> sched = WarmupCosineDecay(1e-3, decay_steps=1000, warmup_steps=100)
        >>> float(sched(550))   # half-way through the decay: 5e-4
    """

    def __init__(self, peak_learning_rate, decay_steps, warmup_steps=0, warmup_start_factor=0.001, alpha=0.0,
                 name="warmup_cosine_decay"):
        _check_common(peak_learning_rate, warmup_steps, warmup_start_factor)
        if int(decay_steps) <= int(warmup_steps):
            raise ValueError(f"decay_steps ({decay_steps}) must be > warmup_steps ({warmup_steps})")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.peak_learning_rate = float(peak_learning_rate)
        self.decay_steps = int(decay_steps)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = float(warmup_start_factor)
        self.alpha = float(alpha)
        self.name = name

    def __call__(self, step):
        s = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        end = peak * self.alpha
        progress = ops.clip((s - self.warmup_steps) / float(self.decay_steps - self.warmup_steps), 0.0, 1.0)
        cosine = end + (peak - end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        warm = peak * warmup_factor(s, self.warmup_steps, self.warmup_start_factor)
        return ops.cast(ops.where(s < self.warmup_steps, warm, cosine), "float32")

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "decay_steps": self.decay_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_start_factor": self.warmup_start_factor,
            "alpha": self.alpha,
            "name": self.name,
        }


def rescale_schedule(schedule, old_total, new_total, step):
    """Re-plan a schedule planned for ``old_total`` steps to end after ``new_total`` steps instead.

    Only the part after ``step`` (the optimizer step reached) moves, so the rate
    does not jump back to an earlier phase: the cosine decays'
    (:class:`WarmupCosineDecay`, ``keras.optimizers.schedules.CosineDecay``)
    end moves to ``new_total``; :class:`WarmupStepDecay`'s boundaries still
    ahead are scaled by ``new_total / old_total`` (kept after ``step``); the
    warm-up length is kept. The schedule object is changed in place; a traced
    train step must be rebuilt to see it (``model.make_train_function(force=True)``).

    Raises:
        TypeError: for other schedules (nothing changed).
        ValueError: for totals < 1.
    """
    old_total, new_total, step = int(old_total), int(new_total), int(step)
    if old_total < 1 or new_total < 1:
        raise ValueError(f"old_total and new_total must be >= 1 steps, got {old_total} and {new_total}")
    if isinstance(schedule, WarmupCosineDecay):
        schedule.decay_steps = max(new_total, schedule.warmup_steps + 1)
    elif isinstance(schedule, keras.optimizers.schedules.CosineDecay):
        # Keras's decay runs after its warm-up: the schedule ends at warmup_steps + decay_steps
        schedule.decay_steps = max(new_total - int(schedule.warmup_steps or 0), 1)
    elif isinstance(schedule, WarmupStepDecay):
        ratio = new_total / old_total
        moved, floor = [], step + 1
        for b in schedule.boundaries:
            if b > step:
                b = max(int(round(b * ratio)), floor)
            moved.append(b)
            floor = max(floor, b)
        schedule.boundaries = moved
    else:
        raise TypeError(f"rescale_schedule: cannot re-plan a {type(schedule).__name__} (WarmupCosineDecay, "
                        "WarmupStepDecay or keras CosineDecay)")
    return schedule
