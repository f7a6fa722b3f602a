"""Training callbacks: KL-weight (beta) annealing, a progress log, and the two halves of a resumable run.

* :class:`KLAnnealing` (:class:`LinearKLAnnealing`, :class:`CyclicalKLAnnealing`):
  beta schedules driven by ``optimizer.iterations``, so a resumed run continues them;
* :class:`ProgressLog` (one line per epoch with the ETA), :class:`TimeLimit` and
  :class:`FitScheduleToBudget` (a time-budgeted run's schedule ends with its budget);
* :class:`TrainingBackup` (what :func:`pose_lab.training.base.fit_resumable`
  resumes from) and :class:`BestCheckpoint` (``best.keras``, written
  atomically, its best value kept in the backup).

Why anneal? Early in training the decoder is poor, so the cheapest way to
lower the VAE loss is to make ``q(z|x)`` equal to the prior: the KL term
vanishes and the latent carries no information ("posterior collapse", "KL
vanishing"). Starting with a small beta and raising it lets the encoder put
information into ``z`` first.

* **Linear annealing** (Bowman et al. 2016): ``beta`` goes from ``start`` to
  ``stop`` over ``steps`` training steps, then stays at ``stop``.
* **Cyclical annealing** (Fu et al., NAACL 2019): the ``total_steps`` are split
  into ``n_cycles`` cycles of length ``T / M``; inside each cycle, with
  ``tau = ((t mod (T/M)) / (T/M))``,

  .. math::

     \\beta_t = \\beta_{\\max} \\cdot \\min\\left(1, \\frac{\\tau}{R}\\right)

  i.e. beta rises linearly from 0 over the first fraction ``R = ratio`` of the
  cycle and stays at ``beta_max`` for the rest. Repeating the warm-up lets
  later cycles re-use the information learned in earlier ones.

The schedules are pure functions (:func:`linear_schedule`,
:func:`cyclical_schedule`) so they can be tested and plotted; the callbacks
write their value into the model's non-trainable ``beta`` variable before
every training batch (this works under JAX too: reading ``self.model`` in a
callback syncs the JAX training state, and the trainer reloads it after).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from pathlib import Path

import keras
import numpy as np

from pose_lab import runtime
from pose_lab.training.schedules import rescale_schedule

__all__ = [
    "linear_schedule",
    "cyclical_schedule",
    "KLAnnealing",
    "LinearKLAnnealing",
    "CyclicalKLAnnealing",
    "ProgressLog",
    "TimeLimit",
    "FitScheduleToBudget",
    "TrainingBackup",
    "BestCheckpoint",
]


def linear_schedule(step, start=0.0, stop=1.0, steps=10_000):
    """``start + (stop - start) * min(step / steps, 1)``; works on scalars and arrays.

    Args:
        step: training step(s), ``>= 0``.
        start, stop: beta at step 0 and from ``steps`` on.
        steps: length of the ramp (``0``: ``stop`` at once).
    """
    step = np.asarray(step, np.float64)
    if steps < 0:
        raise ValueError(f"steps: expected >= 0, got {steps!r}")
    frac = np.ones_like(step) if steps == 0 else np.clip(step / float(steps), 0.0, 1.0)
    out = start + (stop - start) * frac
    return float(out) if out.ndim == 0 else out


def cyclical_schedule(step, n_cycles=4, ratio=0.5, total_steps=10_000, beta_max=1.0, beta_min=0.0):
    """Fu et al. (2019) cyclical annealing: linear rise over the first ``ratio`` of each cycle.

    ``beta(t) = beta_min + (beta_max - beta_min) * min(1, tau / ratio)`` with
    ``tau = (t mod P) / P`` and the cycle length ``P = total_steps / n_cycles``.
    From ``total_steps`` on, ``beta = beta_max``. Works on scalars and arrays.

    Args:
        step: training step(s), ``>= 0``.
        n_cycles: number of cycles ``M`` over ``total_steps``.
        ratio: ``R`` in (0, 1], fraction of each cycle spent rising.
        total_steps: ``T``, the length of the schedule.
        beta_max: plateau value (1 in the paper; the thesis's 0.001 for lifting).
        beta_min: value at the start of each cycle (0 in the paper).

    Example:
        >>> cyclical_schedule([0, 250, 500, 999, 1000], n_cycles=4, ratio=0.5, total_steps=4000)
        array([0. , 0.5, 1. , 1. , 0. ])
    """
    if not isinstance(n_cycles, (int, np.integer)) or n_cycles < 1:
        raise ValueError(f"n_cycles: expected a positive int, got {n_cycles!r}")
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio: expected a fraction in (0, 1], got {ratio!r}")
    if not total_steps > 0:
        raise ValueError(f"total_steps: expected a positive number of steps, got {total_steps!r}")
    step = np.asarray(step, np.float64)
    if np.any(step < 0):
        raise ValueError("step: expected non-negative steps")
    period = float(total_steps) / n_cycles
    tau = np.mod(step, period) / period
    frac = np.minimum(1.0, tau / ratio)
    frac = np.where(step >= total_steps, 1.0, frac)
    out = beta_min + (beta_max - beta_min) * frac
    return float(out) if out.ndim == 0 else out


class KLAnnealing(keras.callbacks.Callback):
    """Set ``model.<beta_attr>`` from ``schedule(step)`` before each training batch.

    Args:
        schedule: a function ``step -> beta``.
        beta_attr: name of the model's non-trainable beta variable.
        verbose: print beta at each epoch end.
        start_step: the optimizer step at which the schedule starts (its step 0).

    The step is the model's ``optimizer.iterations`` minus ``start_step``, read
    at the start of every ``fit`` and counted on from there. ``iterations`` is
    saved with the optimizer in every backup and ``.keras`` file, so a resumed
    run (:func:`pose_lab.training.base.fit_resumable`, Keras'
    ``BackupAndRestore``) continues the schedule where it stopped, even with a
    new callback object; a second ``fit`` on the same model continues it too.
    To run a fresh schedule on an already trained model, pass
    ``start_step=int(model.optimizer.iterations)``. A model without an
    optimizer step (e.g. a custom two-optimizer trainer) falls back to the
    callback's own counter, which :class:`TrainingBackup` saves and restores.

    Attributes:
        step: the next training step (of the schedule).
        history: ``[(step, beta), ...]`` for every value written (plot it).

    ``logs["beta"]`` holds the value in force at the end of each epoch.
    """

    def __init__(self, schedule, beta_attr="beta", verbose=0, start_step=0):
        super().__init__()
        if int(start_step) < 0:
            raise ValueError(f"start_step: expected a non-negative optimizer step, got {start_step!r}")
        self.schedule = schedule
        self.beta_attr = beta_attr
        self.verbose = verbose
        self.start_step = int(start_step)
        self.step = 0
        self.history = []
        self._current = None
        self._begin = 0

    def _beta_variable(self):
        var = getattr(self.model, self.beta_attr, None)
        if var is None or not hasattr(var, "assign"):
            raise ValueError(
                f"{type(self).__name__}: the model has no variable '{self.beta_attr}' to anneal "
                "(use pose_lab.training.vae.VAE or set beta_attr)"
            )
        return var

    def _optimizer_step(self):
        """``model.optimizer.iterations`` as an int, or ``None`` when the model has no such counter."""
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        if iterations is None:
            return None
        return int(keras.ops.convert_to_numpy(iterations))

    def _set(self, value):
        value = float(value)
        if value != self._current:
            # `self.model` syncs the JAX state; the trainer re-reads variables after a sync.
            self._beta_variable().assign(value)
            self._current = value
            self.history.append((self.step, value))

    def on_train_begin(self, logs=None):
        self._beta_variable()
        done = self._optimizer_step()
        if done is not None:
            self.step = max(done - self.start_step, 0)
        self._current = None
        self._set(self.schedule(self.step))

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = batch
        self._set(self.schedule(self.step))

    def on_train_batch_end(self, batch, logs=None):
        # with steps_per_execution > 1 one callback call covers several steps
        self.step += max(1, int(batch) - int(self._begin) + 1)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "beta" not in logs:  # VAE already logs its epoch-mean beta
            logs["beta"] = self._current
        if self.verbose:
            print(f"epoch {epoch + 1}: beta = {self._current:.6g} (step {self.step})")

    # -- resume protocol (TrainingBackup): only needed without an optimizer step counter
    def get_resume_state(self):
        return {"step": int(self.step)}

    def set_resume_state(self, state):
        self.step = int(state.get("step", self.step))


class LinearKLAnnealing(KLAnnealing):
    """Linear beta warm-up from ``start`` to ``stop`` over ``steps`` batches (see :func:`linear_schedule`)."""

    def __init__(self, start=0.0, stop=1.0, steps=10_000, beta_attr="beta", verbose=0, start_step=0):
        if steps < 0:
            raise ValueError(f"steps: expected >= 0, got {steps!r}")
        self.start, self.stop, self.steps = float(start), float(stop), int(steps)
        super().__init__(lambda t: linear_schedule(t, self.start, self.stop, self.steps),
                         beta_attr=beta_attr, verbose=verbose, start_step=start_step)


class CyclicalKLAnnealing(KLAnnealing):
    """Fu et al. (2019) cyclical beta schedule (see :func:`cyclical_schedule`).

    Args:
        n_cycles: cycles over ``total_steps`` (4 in the paper).
        ratio: fraction of each cycle spent rising (0.5 in the paper).
        total_steps: training steps the schedule spans (``epochs * steps_per_epoch``).
        beta_max: plateau value.
        beta_min: value at each cycle start.
        start_step: the optimizer step the schedule starts at (see :class:`KLAnnealing`).

    Example:
        >>> steps = epochs * int(np.ceil(len(x) / batch_size))
        >>> vae.fit(x, epochs=epochs, callbacks=[CyclicalKLAnnealing(4, 0.5, steps, beta_max=1.0)])
    """

    def __init__(self, n_cycles=4, ratio=0.5, total_steps=10_000, beta_max=1.0, beta_min=0.0,
                 beta_attr="beta", verbose=0, start_step=0):
        cyclical_schedule(0, n_cycles, ratio, total_steps, beta_max, beta_min)  # validate arguments
        self.n_cycles, self.ratio, self.total_steps = int(n_cycles), float(ratio), int(total_steps)
        self.beta_max, self.beta_min = float(beta_max), float(beta_min)
        super().__init__(
            lambda t: cyclical_schedule(t, self.n_cycles, self.ratio, self.total_steps,
                                        self.beta_max, self.beta_min),
            beta_attr=beta_attr, verbose=verbose, start_step=start_step,
        )


class ProgressLog(keras.callbacks.Callback):
    """One line per epoch: the logged metrics, seconds per epoch, elapsed time and ETA.

    Quieter than Keras's progress bar in a notebook (one line, not one bar, per
    epoch) and it says how long the rest of the run will take, which the bar
    does not. The ETA is the mean epoch time so far times the epochs left; a
    resumed run (``BackupAndRestore``) counts from the restored epoch.

    Args:
        every: print every ``every``-th epoch (the last one always).
        digits: significant digits of the metrics.
        print_fn: where the line goes (``print``).
    """

    def __init__(self, every: int = 1, digits: int = 4, print_fn=print):
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"every: expected a positive int, got {every!r}")
        self.every, self.digits, self.print_fn = int(every), int(digits), print_fn
        self.lines = []

    def on_train_begin(self, logs=None):
        self._clock = time.perf_counter
        self._start = self._clock()
        self._epochs_run = 0
        self._epoch_start = self._start

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self._clock()
        self._epochs_run += 1
        total = int(self.params.get("epochs") or (epoch + 1))
        if (epoch + 1) % self.every and epoch + 1 != total:
            return
        per_epoch = (now - self._start) / self._epochs_run
        left = max(total - epoch - 1, 0) * per_epoch
        metrics = "  ".join(f"{k} {float(v):.{self.digits}g}" for k, v in (logs or {}).items()
                            if np.ndim(v) == 0 and k != "learning_rate")
        line = (f"epoch {epoch + 1}/{total}  {metrics}  {now - self._epoch_start:.1f} s/epoch  "
                f"elapsed {_clock_text(now - self._start)}  ETA {_clock_text(left)}")
        self.lines.append(line)
        self.print_fn(line)


class TimeLimit(keras.callbacks.Callback):
    """Stop training after ``minutes`` of training time; evaluate at given marks on the way.

    Equal-time comparisons ("AP after 15 CPU-minutes") need a clock that
    excludes the evaluations made along the way: the time spent in
    ``evaluate`` is not counted. The check runs after every batch, so a run
    overshoots by at most one step.

    Args:
        minutes: training-time budget (``None``: no limit, marks only).
        evaluate: optional ``fn(network_model) -> dict`` called when the
            training time passes each of ``marks`` (minutes) and once at the end;
            its dicts (plus ``minutes``, ``steps``) are collected in :attr:`curve`.
        marks: training minutes at which to call ``evaluate``.
        clock: time source (``time.perf_counter``; tests pass a fake).
        max_steps: also stop after this many training steps (``None``: no step limit).

    Under JAX, reading ``self.model`` syncs the training state into the model's
    variables before ``evaluate`` runs.
    """

    def __init__(self, minutes=None, evaluate=None, marks=(), clock=time.perf_counter, max_steps=None):
        super().__init__()
        if max_steps is not None and int(max_steps) < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {max_steps!r}")
        self.max_steps = None if max_steps is None else int(max_steps)
        if minutes is not None and not float(minutes) > 0:
            raise ValueError(f"minutes must be > 0 or None, got {minutes!r}")
        self.minutes = None if minutes is None else float(minutes)
        self.evaluate = evaluate
        self.marks = sorted(float(m) for m in marks)
        self.clock = clock
        self.curve = []
        self.trained_seconds = 0.0
        self.steps = 0

    def on_train_begin(self, logs=None):
        self._last = self.clock()
        self._next_mark = 0

    def _tick(self):
        now = self.clock()
        self.trained_seconds += now - self._last
        self._last = now

    def _run_evaluation(self):
        if self.evaluate is None:
            return
        row = dict(self.evaluate(self.model) or {})
        row.update(minutes=self.trained_seconds / 60.0, steps=self.steps)
        self.curve.append(row)
        self._last = self.clock()  # evaluation time is not training time

    def on_train_batch_end(self, batch, logs=None):
        self._tick()
        self.steps += 1
        minutes = self.trained_seconds / 60.0
        while self._next_mark < len(self.marks) and minutes >= self.marks[self._next_mark]:
            self._next_mark += 1
            if self.minutes is None or self.marks[self._next_mark - 1] < self.minutes:
                self._run_evaluation()
        if self.minutes is not None and minutes >= self.minutes:
            self.model.stop_training = True
        if self.max_steps is not None and self.steps >= self.max_steps:
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._last = self.clock()  # time between epochs (validation, checkpoints) is not counted

    def on_train_end(self, logs=None):
        self._run_evaluation()


class FitScheduleToBudget(keras.callbacks.Callback):
    """Keep a step-based learning-rate schedule ending when a :class:`TimeLimit`'s budget does.

    A run with a time budget plans its schedule in steps from a probe of the
    training rate. The probe times a few steps of a fresh ``fit`` (start-up,
    a stream's empty queue), and the machine may get faster or busier: a plan
    that is short ends the schedule early and trains the rest of the budget at
    its final rate (zero for a cosine decay to 0), a plan that is long stops
    the run half-way down the decay. At the end of every epoch after the first,
    this callback takes the run's own rate (steps per training second since
    the end of the first epoch, which holds the tracing), and when the steps
    the budget still allows put the schedule's end more than ``tolerance`` away
    from the plan, it re-plans the rest of the schedule
    (:func:`pose_lab.training.schedules.rescale_schedule`) and rebuilds the
    train step so that it reads the new plan.

    Args:
        schedule: the optimizer's schedule (``WarmupCosineDecay``,
            ``WarmupStepDecay`` or Keras ``CosineDecay``), changed in place.
        limit: the run's :class:`TimeLimit` (its ``minutes``, ``steps`` and
            ``trained_seconds``); it must come before this callback.
        planned_steps: the optimizer step at which the schedule ends now.
        tolerance: relative change of the end below which nothing is re-planned
            (each re-plan retraces the train step: seconds).

    Attributes:
        planned_steps: the current plan; ``replans``: ``(step, planned_steps)``
            after each re-plan.
    """

    def __init__(self, schedule, limit, planned_steps, tolerance=0.05):
        super().__init__()
        if not isinstance(limit, TimeLimit):
            raise TypeError(f"limit must be a TimeLimit, got {type(limit).__name__}")
        if int(planned_steps) < 1 or not 0 <= float(tolerance) < 1:
            raise ValueError(f"planned_steps must be >= 1 and tolerance in [0, 1), got {planned_steps!r}, "
                             f"{tolerance!r}")
        self.schedule = schedule
        self.limit = limit
        self.planned_steps = int(planned_steps)
        self.tolerance = float(tolerance)
        self.replans = []

    def on_train_begin(self, logs=None):
        self._start = None

    def on_epoch_end(self, epoch, logs=None):
        lim = self.limit
        if lim.minutes is None or self.model.stop_training:
            return
        if self._start is None:  # the first epoch holds the tracing: measure from its end
            self._start = (lim.steps, lim.trained_seconds)
            return
        steps, seconds = lim.steps - self._start[0], lim.trained_seconds - self._start[1]
        left = lim.minutes * 60.0 - lim.trained_seconds
        if steps < 1 or seconds <= 0 or left <= 0:
            return
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        total = step + max(int(round(steps / seconds * left)), 1)
        if abs(total - self.planned_steps) <= self.tolerance * self.planned_steps:
            return
        rescale_schedule(self.schedule, self.planned_steps, total, step)
        self.planned_steps = total
        self.replans.append((step, total))
        self.model.make_train_function(force=True)


# ------------------------------------------------------------------ resumable runs


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never a half-written one."""
    runtime.atomic_write(path, lambda fh: fh.write(text), fsync=True)


def _scalar_logs(logs):
    """The scalar entries of a ``logs`` dict as Python floats (JSON-ready)."""
    out = {}
    for key, value in (logs or {}).items():
        if np.ndim(value) != 0:
            continue
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _random_states(model):
    """The model's random-generator states (``SeedGenerator`` variables: dropout, sampling noise).

    ``model.variables`` holds them besides the weights; ``save_weights`` does
    not save them (Keras saves a layer's weights only).
    """
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class _BackupCommit(keras.callbacks.Callback):
    """Writes :class:`TrainingBackup`'s snapshot at each epoch end, after every other callback has run."""

    def __init__(self, backup):
        super().__init__()
        self.backup = backup

    def set_model(self, model):
        super().set_model(model)
        self.backup._commit_attached = True

    def on_epoch_end(self, epoch, logs=None):
        self.backup.commit(epoch, logs)


class TrainingBackup(keras.callbacks.Callback):
    """The backup a run resumes from: weights, optimizer, random states, epoch, history, callback state.

    A folder ``backup_dir`` holds ``weights-<epoch>.weights.h5`` (the model's
    weights *and* optimizer state: step counter, Adam moments) and
    ``state.json``, which names that file and holds the completed epochs, the
    random-generator states of every layer (dropout masks, the VAE's
    sampling noise), the epoch logs so far and the resume state of the
    callbacks in ``stateful`` (e.g. :class:`BestCheckpoint`'s best value).

    * **When**: at the start of training when there is no backup yet (so an
      interruption in the first epoch restarts from the initial weights), and
      at each epoch end.
    * **Atomic**: the weights go to a new file, then ``state.json`` is replaced
      in one ``os.replace``; that replacement is the commit. A run killed at
      any point leaves the previous complete backup.
    * **Restore** (``on_train_begin``, when ``state.json`` exists): the
      optimizer is built, weights, optimizer state and random states loaded,
      the callbacks' state set, and ``fit`` continues at the first epoch not
      completed (``model._initial_epoch``, as Keras' ``BackupAndRestore``).
      The interrupted epoch is run again from its start, so the end state
      equals an uninterrupted run when the data order of each epoch is
      deterministic (:func:`pose_lab.training.base.fit_resumable` takes care
      of that for arrays).
    * ``on_train_end`` (training finished, or stopped by a callback) deletes
      the folder unless ``delete_on_end=False``.

    Place it first in the callback list (it restores before the other
    callbacks start) and its :meth:`commit_callback` last (it saves after
    they have updated their state); without the latter it saves in its own
    ``on_epoch_end``. ``fit_resumable`` does both.

    Args:
        backup_dir: the folder (created when needed; it must not hold other files).
        stateful: callbacks with ``get_resume_state() -> dict`` (JSON-able)
            and ``set_resume_state(dict)``, saved and restored with the backup.
        extra: a JSON-able dict stored with the backup (``fit_resumable``
            keeps its shuffle seed there); a restored backup's ``extra`` wins.
        delete_on_end: delete the backup when training ends.

    Attributes:
        restored_epoch: epochs completed before this ``fit`` (0 for a fresh run).
        history: ``{metric: [value per completed epoch]}`` over the whole run.

    A backup written by Keras' ``BackupAndRestore`` (``latest.weights.h5`` and
    ``training_metadata.json``, earlier versions of the kit) is resumed too,
    without random states or callback state.
    """

    STATE_FILE = "state.json"
    FORMAT = 1

    def __init__(self, backup_dir, *, stateful=(), extra=None, delete_on_end=True):
        super().__init__()
        if not str(backup_dir):
            raise ValueError("backup_dir: expected a folder, got an empty path")
        self.backup_dir = Path(backup_dir)
        self.stateful = list(stateful)
        for cb in self.stateful:
            if not (hasattr(cb, "get_resume_state") and hasattr(cb, "set_resume_state")):
                raise ValueError(f"stateful: {type(cb).__name__} has no get_resume_state/set_resume_state")
        self.extra = dict(extra or {})
        self.delete_on_end = bool(delete_on_end)
        self.restored_epoch = 0
        self.history = {}
        self._commit_attached = False

    # ------------------------------------------------------------- reading
    @classmethod
    def read_state(cls, backup_dir):
        """The committed state of ``backup_dir`` as a dict, or ``None`` when there is no backup.

        Raises ``ValueError`` naming the file when it is not a backup this class wrote.
        """
        backup_dir = Path(backup_dir)
        path = backup_dir / cls.STATE_FILE
        if not path.is_file():
            legacy = backup_dir / "training_metadata.json"
            if legacy.is_file() and (backup_dir / "latest.weights.h5").is_file():
                try:
                    epoch = int(json.loads(legacy.read_text())["epoch"])
                except (ValueError, KeyError, TypeError) as err:
                    raise ValueError(f"{legacy}: expected Keras' backup metadata with an 'epoch', got {err}") from None
                return {"format": 0, "epoch": epoch, "weights": "latest.weights.h5", "history": {},
                        "callbacks": {}, "extra": {}}
            return None
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read the backup state ({err}); delete the folder to start over") from None
        missing = [k for k in ("format", "epoch", "weights") if k not in state] if isinstance(state, dict) else ["all"]
        if missing:
            raise ValueError(f"{path}: not a pose_lab backup (missing {missing}); delete the folder to start over")
        if int(state["format"]) > cls.FORMAT:
            raise ValueError(f"{path}: backup format {state['format']} is newer than this pose_lab "
                             f"({cls.FORMAT}); update pose_lab to resume it")
        return state

    def _stateful_keys(self):
        return [f"{i}:{type(cb).__name__}" for i, cb in enumerate(self.stateful)]

    # --------------------------------------------------------------- writing
    def commit_callback(self):
        """The callback that writes the snapshot at each epoch end; put it last in the list."""
        return _BackupCommit(self)

    def commit(self, epoch, logs=None):
        """Record epoch ``epoch``'s logs and write the backup of the ``epoch + 1`` completed epochs."""
        for key, value in _scalar_logs(logs).items():
            column = self.history.setdefault(key, [])
            del column[epoch:]  # an epoch run again after a restore replaces its entry
            column.extend([float("nan")] * (epoch - len(column)))  # a metric that appears late
            column.append(value)
        self.save(epoch + 1)

    def save(self, epochs_done):
        """Write the backup of a model that completed ``epochs_done`` epochs (atomically)."""
        model = self.model
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"weights-{int(epochs_done):05d}.weights.h5"
        tmp = self.backup_dir / f"tmp-{os.getpid()}-{name}"
        model.save_weights(str(tmp), overwrite=True)
        os.replace(tmp, self.backup_dir / name)
        state = {
            "format": self.FORMAT,
            "epoch": int(epochs_done),
            "weights": name,
            "random_states": [np.asarray(keras.ops.convert_to_numpy(v)).tolist() for v in _random_states(model)],
            "callbacks": {key: cb.get_resume_state() for key, cb in zip(self._stateful_keys(), self.stateful)},
            "history": self.history,
            "extra": self.extra,
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
        }
        _atomic_write_text(self.backup_dir / self.STATE_FILE, json.dumps(state))
        for old in self.backup_dir.glob("*weights.h5"):  # older snapshots, files of killed writes
            if old.name != name:
                old.unlink(missing_ok=True)

    # --------------------------------------------------------------- restoring
    def _restore(self, state):
        model = self.model
        path = self.backup_dir / state["weights"]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the backup's weights file is missing; delete {self.backup_dir} "
                                    "to start over")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(str(path))
        for w in caught:
            if "Skipping variable loading" in str(w.message):
                raise ValueError(f"{path}: {w.message} Build every optimizer of the model before fit "
                                 "(e.g. optimizer.build(network.trainable_variables) in compile).")
            warnings.warn(w.message, w.category, stacklevel=2)
        saved = state.get("random_states")
        if saved is not None:
            current = _random_states(model)
            if len(saved) != len(current):
                raise ValueError(f"{self.backup_dir / self.STATE_FILE}: {len(saved)} random-generator states "
                                 f"saved, the model has {len(current)}: the backup comes from another model")
            for var, value in zip(current, saved):
                var.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(var.dtype)))
        callbacks = state.get("callbacks", {})
        for key, cb in zip(self._stateful_keys(), self.stateful):
            if key in callbacks:
                cb.set_resume_state(callbacks[key])
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}
        self.restored_epoch = int(state["epoch"])
        self.extra.update(state.get("extra", {}))
        model._initial_epoch = self.restored_epoch  # what Keras' BackupAndRestore sets: fit starts there

    def on_train_begin(self, logs=None):
        model = self.model
        if not model.built:
            raise ValueError(
                f"TrainingBackup: {type(model).__name__} '{model.name}' is not built, so its weights cannot be "
                "saved or restored before training; build it first (call it on a batch, or model.build(shape))"
            )
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)  # the backup holds its state: it must exist
        state = self.read_state(self.backup_dir)
        if state is None:
            self.history, self.restored_epoch = {}, 0
            model._initial_epoch = None
            self.save(0)  # killed in the first epoch: restart from these initial weights
        else:
            self._restore(state)

    def on_epoch_end(self, epoch, logs=None):
        if not self._commit_attached:
            self.commit(epoch, logs)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None  # a later fit of this model starts from its own initial_epoch
        if self.delete_on_end:
            shutil.rmtree(self.backup_dir, ignore_errors=True)


class BestCheckpoint(keras.callbacks.Callback):
    """Save the whole model to ``filepath`` (``.keras``) when ``monitor`` improves; atomically; resumable.

    Like ``keras.callbacks.ModelCheckpoint(save_best_only=True)`` with two
    differences a long run needs: the file is written under a temporary name
    and moved into place (a run killed while saving keeps the previous best
    model), and the best value so far is part of :class:`TrainingBackup`'s
    state, so after a resume a worse epoch never overwrites the best model.

    Args:
        filepath: where the model goes; must end with ``.keras``.
        monitor: the logged value to watch (``"val_loss"``, ``"loss"``...).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (``"max"`` for names with
            ``acc``, ``auc`` or ``pck``, else ``"min"``).
        save_best_only: ``False`` saves every epoch (and still tracks the best).
        verbose: print a line when the file is written.

    Attributes:
        best, best_epoch: the best value and its (0-based) epoch, ``None`` before the first.

    NaN never counts as an improvement. When ``monitor`` is not in the logs
    the model is saved with a warning (as Keras does).
    """

    def __init__(self, filepath, monitor="val_loss", mode="auto", save_best_only=True, verbose=0):
        super().__init__()
        self.filepath = Path(filepath)
        if self.filepath.suffix != ".keras":
            raise ValueError(f"filepath: expected a path ending in '.keras', got {str(filepath)!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if any(k in monitor.lower() for k in ("acc", "auc", "pck")) else "min"
        self.monitor, self.mode = monitor, mode
        self.save_best_only, self.verbose = bool(save_best_only), verbose
        self.best = None
        self.best_epoch = None

    def _improves(self, value):
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def _save(self):
        # written in a scratch folder of this process and renamed into place; the folder of a killed
        # write is removed by the next save on this machine (runtime.scratch_dir)
        scratch = runtime.scratch_dir(self.filepath.parent, "checkpoint")
        try:
            tmp = scratch / self.filepath.name
            self.model.save(str(tmp), overwrite=True)
            os.replace(tmp, self.filepath)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"BestCheckpoint: '{self.monitor}' is not in the logs ({sorted(logs or {})}); "
                          f"saving {self.filepath} anyway", stacklevel=2)
            self._save()
            return
        value = float(value)
        improved = self._improves(value)
        if improved or not self.save_best_only:
            self._save()
            if self.verbose:
                print(f"epoch {epoch + 1}: {self.monitor} {value:.5g}, saved {self.filepath}")
        if improved:
            self.best, self.best_epoch = value, int(epoch)

    def get_resume_state(self):
        return {"monitor": self.monitor, "mode": self.mode, "best": self.best, "best_epoch": self.best_epoch}

    def set_resume_state(self, state):
        if state.get("monitor") == self.monitor and state.get("mode") == self.mode:
            self.best, self.best_epoch = state.get("best"), state.get("best_epoch")


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
