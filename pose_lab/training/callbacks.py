"""Training callbacks: KL-weight (beta) annealing for VAEs, and a one-line-per-epoch progress log.

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

import time

import keras
import numpy as np

__all__ = [
    "linear_schedule",
    "cyclical_schedule",
    "KLAnnealing",
    "LinearKLAnnealing",
    "CyclicalKLAnnealing",
    "ProgressLog",
    "TimeLimit",
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
        schedule: a function ``step -> beta`` (step counts training batches
            since the first ``fit``; it continues across ``fit`` calls).
        beta_attr: name of the model's non-trainable beta variable.
        verbose: print beta at each epoch end.

    Attributes:
        step: the next training step.
        history: ``[(step, beta), ...]`` for every value written (plot it).

    ``logs["beta"]`` holds the value in force at the end of each epoch.
    """

    def __init__(self, schedule, beta_attr="beta", verbose=0):
        super().__init__()
        self.schedule = schedule
        self.beta_attr = beta_attr
        self.verbose = verbose
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

    def _set(self, value):
        value = float(value)
        if value != self._current:
            # `self.model` syncs the JAX state; the trainer re-reads variables after a sync.
            self._beta_variable().assign(value)
            self._current = value
            self.history.append((self.step, value))

    def on_train_begin(self, logs=None):
        self._beta_variable()
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


class LinearKLAnnealing(KLAnnealing):
    """Linear beta warm-up from ``start`` to ``stop`` over ``steps`` batches (see :func:`linear_schedule`)."""

    def __init__(self, start=0.0, stop=1.0, steps=10_000, beta_attr="beta", verbose=0):
        if steps < 0:
            raise ValueError(f"steps: expected >= 0, got {steps!r}")
        self.start, self.stop, self.steps = float(start), float(stop), int(steps)
        super().__init__(lambda t: linear_schedule(t, self.start, self.stop, self.steps),
                         beta_attr=beta_attr, verbose=verbose)


class CyclicalKLAnnealing(KLAnnealing):
    """Fu et al. (2019) cyclical beta schedule (see :func:`cyclical_schedule`).

    Args:
        n_cycles: cycles over ``total_steps`` (4 in the paper).
        ratio: fraction of each cycle spent rising (0.5 in the paper).
        total_steps: training steps the schedule spans (``epochs * steps_per_epoch``).
        beta_max: plateau value.
        beta_min: value at each cycle start.

    Example:
        >>> steps = epochs * int(np.ceil(len(x) / batch_size))
        >>> vae.fit(x, epochs=epochs, callbacks=[CyclicalKLAnnealing(4, 0.5, steps, beta_max=1.0)])
    """

    def __init__(self, n_cycles=4, ratio=0.5, total_steps=10_000, beta_max=1.0, beta_min=0.0,
                 beta_attr="beta", verbose=0):
        cyclical_schedule(0, n_cycles, ratio, total_steps, beta_max, beta_min)  # validate arguments
        self.n_cycles, self.ratio, self.total_steps = int(n_cycles), float(ratio), int(total_steps)
        self.beta_max, self.beta_min = float(beta_max), float(beta_min)
        super().__init__(
            lambda t: cyclical_schedule(t, self.n_cycles, self.ratio, self.total_steps,
                                        self.beta_max, self.beta_min),
            beta_attr=beta_attr, verbose=verbose,
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

    Under JAX, reading ``self.model`` syncs the training state into the model's
    variables before ``evaluate`` runs.
    """

    def __init__(self, minutes=None, evaluate=None, marks=(), clock=time.perf_counter):
        super().__init__()
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

    def on_epoch_begin(self, epoch, logs=None):
        self._last = self.clock()  # time between epochs (validation, checkpoints) is not counted

    def on_train_end(self, logs=None):
        self._run_evaluation()


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
