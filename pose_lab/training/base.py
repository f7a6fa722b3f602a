"""What every training class and notebook of the kit shares.

* :func:`fit_resumable`: ``model.fit`` with the callbacks of a run that
  survives an interruption (a Colab disconnect, Ctrl-C, a crash): a
  :class:`~pose_lab.training.callbacks.TrainingBackup` (resume where it
  stopped), a :class:`~pose_lab.training.callbacks.BestCheckpoint` (best
  model), ``TensorBoard`` and :class:`~pose_lab.training.callbacks.ProgressLog`
  (one line per epoch with the ETA). Every method's ``fit_*`` helper goes
  through it, so every notebook resumes the same way: call the same cell again.
* :class:`EpochShuffledArrays`: arrays served in a shuffled order that depends
  only on ``(seed, epoch)``, so an epoch run again after a resume sees the
  same batches.
* :func:`batched_predict`: a model (or any callable network) run in inference
  mode over an array, chunk by chunk, outputs as NumPy.
* :func:`add_regularization`: a loss plus the model's regulariser losses
  (``model.losses``), for ``compute_loss`` overrides; :func:`weighted_mean`:
  the per-sample weighted mean with which those overrides honour ``sample_weight``.

The resume contract
-------------------
A run of ``fit_resumable(..., workdir=w)`` killed at any batch and resumed by
calling the same ``fit_resumable(...)`` again (same model recipe, same
arguments) ends with the same weights, optimizer state, learning rate and KL
schedule (both driven by ``optimizer.iterations``), epoch metrics and
``best.keras`` as a run that was never interrupted. Resumption is at epoch
granularity: the backup is written at each epoch end (and once before the
first epoch), and the interrupted epoch is run again from its start, with the
same batches (arrays: :class:`EpochShuffledArrays`; a ``tf.data`` pipeline or
a ``PyDataset`` must give a deterministic order per epoch itself) and the same
random numbers (dropout, sampling noise: their generator states are in the
backup). Keras' ``BackupAndRestore(save_freq=<int>)`` saves mid-epoch but
still restarts the epoch from its first batch, which would train the first
batches twice; it is not used. Under TensorFlow the resumed run matches
to float precision (tested); under JAX too (tested); a GPU's non-deterministic
kernels (cuDNN) can make any two runs differ slightly, resumed or not.

Backend-agnostic (``keras.ops``); imports no data, evaluation or metrics module.
"""

from __future__ import annotations

import gc
import importlib.util
import math
import sys
import time
import traceback
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import ops

from pose_lab.training.callbacks import BestCheckpoint, FitScheduleToBudget, ProgressLog, TimeLimit, TrainingBackup

__all__ = ["EpochShuffledArrays", "add_regularization", "batched_predict", "fit_and_release", "fit_resumable",
           "fit_within_budget", "resumable_callbacks", "steps_per_second", "weighted_mean"]


# --------------------------------------------------------------------------- losses


def add_regularization(model, loss):
    """``loss + sum(model.losses)`` (weight regularisers, activity losses); ``loss`` if there are none.

    Call it at the end of a ``compute_loss`` override: Keras adds
    ``model.losses`` only in its own ``compute_loss``, which an override replaces.
    """
    extra = model.losses
    if not extra:
        return loss
    return loss + ops.sum(ops.stack([ops.cast(v, loss.dtype) for v in extra]))


def weighted_mean(values, sample_weight=None):
    """The per-sample weighted mean ``sum_i w_i v_i / sum_i w_i`` (the plain mean when ``sample_weight`` is ``None``).

    How the kit's ``compute_loss`` overrides honour ``fit(..., sample_weight=w)``
    (and ``class_weight``, which Keras turns into sample weights). Unlike
    Keras' built-in losses (``sum_i w_i v_i / batch_size``), the result does
    not change when all weights are scaled, and weights ``1, 1, 0, 0`` give the
    mean over the first two samples. A batch whose weights sum to 0 gives 0.

    Args:
        values: per-sample values, shape ``(batch,)``.
        sample_weight: ``None``, a scalar, or non-negative weights of shape
            ``(batch,)`` (``(batch, 1)`` accepted).

    Returns:
        A scalar tensor.
    """
    values = ops.convert_to_tensor(values)
    if sample_weight is None:
        return ops.mean(values)
    w = ops.cast(ops.convert_to_tensor(sample_weight), values.dtype)
    if len(w.shape) == 0:
        return ops.mean(values)  # one weight for every sample: the plain mean
    if len(w.shape) > 1:
        if any(d not in (1, None) for d in w.shape[1:]):
            raise ValueError(f"sample_weight: expected one weight per sample, shape (batch,), got {tuple(w.shape)}")
        w = ops.reshape(w, (-1,))
    if len(values.shape) != 1:
        raise ValueError(f"values: expected per-sample values of shape (batch,), got {tuple(values.shape)}")
    if w.shape[0] is not None and values.shape[0] is not None and w.shape[0] != values.shape[0]:
        raise ValueError(f"sample_weight: expected {values.shape[0]} weights (one per sample), got {w.shape[0]}")
    total = ops.sum(w)
    positive = total > 0
    return ops.where(positive, ops.sum(w * values) / ops.where(positive, total, ops.ones_like(total)),
                     ops.zeros_like(total))


# ------------------------------------------------------------------------ inference


def _to_numpy(out):
    if isinstance(out, dict):
        return {k: ops.convert_to_numpy(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return tuple(ops.convert_to_numpy(o) for o in out)
    return ops.convert_to_numpy(out)


def _concat(parts, n=None):
    first = parts[0]
    cut = slice(None) if n is None else slice(0, n)
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in parts])[cut] for k in first}
    if isinstance(first, (list, tuple)):
        return tuple(np.concatenate([p[i] for p in parts])[cut] for i in range(len(first)))
    return np.concatenate(parts)[cut]


def batched_predict(model, x, batch_size: int = 1024, *, compiled=False):
    """``model(x)`` in inference mode, ``batch_size`` samples at a time, as NumPy.

    Args:
        model: a ``keras.Model`` / layer (or any callable taking ``training=``).
        x: an array (or a dict of arrays with the same first axis).
        batch_size: samples per call.
        compiled: ``False`` calls the model directly, chunk by chunk: nothing
            is traced per model, which keeps notebooks that compare many small
            models fast. ``True`` uses ``model.predict`` on batches of one
            size (the last one padded, the padding cut off), so the compiled
            function is reused whatever ``len(x)``. ``"auto"``: ``False`` under
            TensorFlow (eager calls cost less than tracing on a CPU), ``True``
            under the other backends (JAX runs eager ops one by one).
            Inference-mode networks treat samples independently, so batching
            and padding do not change the results.

    Returns:
        A NumPy array, or a tuple / dict of them when the model returns several outputs.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if compiled == "auto":
        compiled = keras.backend.backend() != "tensorflow"
    first = next(iter(x.values())) if isinstance(x, dict) else x
    n = len(first)
    if n == 0:
        raise ValueError("batched_predict: expected at least one sample, got an empty array")

    def take(a, b):
        return {k: v[a:b] for k, v in x.items()} if isinstance(x, dict) else x[a:b]

    if not compiled:
        parts = [_to_numpy(model(take(i, i + int(batch_size)), training=False))
                 for i in range(0, n, int(batch_size))]
        return _concat(parts)
    bs = min(int(batch_size), 1 << (n - 1).bit_length())
    pad = (-n) % bs

    def padded(a):
        return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)], axis=0) if pad else a

    xp = {k: padded(np.asarray(v)) for k, v in x.items()} if isinstance(x, dict) else padded(np.asarray(x))
    out = model.predict(xp, batch_size=bs, verbose=0)
    return _concat([_to_numpy(out)], n)


# ---------------------------------------------------------------------------- fit


def _leaves(data):
    return [leaf for leaf in keras.tree.flatten(data) if leaf is not None]


class EpochShuffledArrays(keras.utils.PyDataset):
    """Arrays served in batches, in an order that depends only on ``(seed, epoch)``.

    Keras shuffles arrays from a random state that a resumed run does not
    have; here epoch ``e`` always uses ``np.random.default_rng([seed, e])``'s
    permutation, so the epoch run again after a resume sees exactly the
    batches it saw before. :func:`fit_resumable` uses it for array inputs
    when it keeps a backup; its callback sets :attr:`epoch` at each epoch start.

    Args:
        x: an array, or a dict / list / tuple of arrays with one first axis.
        y, sample_weight: the same, or ``None``.
        batch_size: samples per batch (the last batch may be smaller).
        seed: the shuffle seed.
        shuffle: ``False`` serves the arrays in order.

    Example:
        >>> ds = EpochShuffledArrays(x, y, batch_size=64, seed=0)
        >>> ds.epoch = 3; xb, yb = ds[0]        # the first batch of epoch 3
    """

    def __init__(self, x, y=None, sample_weight=None, *, batch_size=32, seed=0, shuffle=True):
        super().__init__()
        if int(batch_size) < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if y is None and sample_weight is not None:
            raise ValueError("sample_weight: needs targets y (pass y, or weights inside a dataset)")
        as_numpy = lambda a: None if a is None else np.asarray(a)  # noqa: E731
        self.x = keras.tree.map_structure(as_numpy, x)
        self.y = None if y is None else keras.tree.map_structure(as_numpy, y)
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        leaves = _leaves((self.x, self.y, self.sample_weight))
        if not leaves:
            raise ValueError("x: expected at least one array")
        lengths = sorted({len(a) for a in leaves})
        if len(lengths) != 1:
            raise ValueError(f"x, y, sample_weight: expected arrays with one number of samples, got lengths {lengths}")
        self.num_samples = lengths[0]
        if self.num_samples == 0:
            raise ValueError("x: expected at least one sample, got an empty array")
        self.batch_size, self.seed, self.shuffle = int(batch_size), int(seed), bool(shuffle)
        self.epoch = 0
        self._order = (None, None)

    def order(self, epoch):
        """The sample indices of epoch ``epoch``, in the order they are served."""
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(self.num_samples)

    def __len__(self):
        return math.ceil(self.num_samples / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        if self._order[0] != self.epoch:
            self._order = (self.epoch, self.order(self.epoch))
        idx = self._order[1][index * self.batch_size:(index + 1) * self.batch_size]
        take = lambda a: None if a is None else a[idx]  # noqa: E731
        xb = keras.tree.map_structure(take, self.x)
        if self.y is None:
            return (xb,)
        yb = keras.tree.map_structure(take, self.y)
        if self.sample_weight is None:
            return xb, yb
        return xb, yb, self.sample_weight[idx]


class _SetEpoch(keras.callbacks.Callback):
    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.epoch = int(epoch)


def resumable_callbacks(workdir, monitor="val_loss", *, checkpoint=True, backup=True, tensorboard=True,
                        save_best_only=True, stateful=(), extra=None):
    """The callbacks of a resumable run, all writing under ``workdir``, in the order they must run.

    * :class:`~pose_lab.training.callbacks.TrainingBackup` -> ``workdir/backup/``:
      written before the first epoch and at each epoch end (atomically),
      deleted when training finishes. Calling ``fit`` again after an
      interruption restores weights, optimizer state, random states, the
      epoch counter and the state of ``stateful`` callbacks (and of the
      checkpoint), and continues. On Colab put ``workdir`` on Google Drive so
      it survives the runtime;
    * :class:`~pose_lab.training.callbacks.BestCheckpoint` -> ``workdir/best.keras``
      (the whole model at the best ``monitor`` value, written atomically;
      every epoch when ``save_best_only=False``);
    * ``TensorBoard`` -> ``workdir/logs/`` (``%tensorboard --logdir workdir/logs``);
      skipped with a warning when the ``tensorboard`` package is not installed;
    * last, the backup's commit callback (it saves after the others ran).

    Put further callbacks before the last one (``cbs[:-1] + mine + cbs[-1:]``),
    as :func:`fit_resumable` does.

    Returns:
        list of callbacks.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cbs = []
    best = None
    if checkpoint:
        best = BestCheckpoint(workdir / "best.keras", monitor=monitor, save_best_only=save_best_only)
    backup_cb = None
    if backup:
        backup_cb = TrainingBackup(workdir / "backup", stateful=([best] if best else []) + list(stateful),
                                   extra=extra)
        cbs.append(backup_cb)
    if best is not None:
        cbs.append(best)
    if tensorboard:
        if importlib.util.find_spec("tensorboard") is None:
            warnings.warn("TensorBoard logs are off: the 'tensorboard' package is not installed "
                          "(pip install tensorboard)", stacklevel=2)
        else:
            cbs.append(keras.callbacks.TensorBoard(str(workdir / "logs"), write_graph=False, profile_batch=0))
    if backup_cb is not None:
        cbs.append(backup_cb.commit_callback())
    return cbs


def _is_array_data(x):
    if isinstance(x, (keras.utils.PyDataset,)) or x is None:
        return False
    if isinstance(x, (np.ndarray, dict, list, tuple)) or hasattr(x, "__array__"):
        leaves = _leaves(x)
        return bool(leaves) and all(isinstance(a, np.ndarray) or hasattr(a, "__array__") for a in leaves)
    return False


def fit_resumable(model, x, y=None, *, epochs=1, workdir=None, validation_data=None, callbacks=None,
                  checkpoint=True, backup=True, tensorboard=True, progress=True, verbose=None, seed=None,
                  **fit_kwargs):
    """``model.fit`` as every notebook of the kit runs it: resumable, logged, with an ETA.

    Args:
        model: a compiled, built ``keras.Model`` (any subclass: a custom
            ``compute_loss`` or ``train_step``, several optimizers: only
            ``model.fit`` is used; build every optimizer in ``compile`` so
            the backup holds its state).
        x, y: as for ``fit``: arrays (``y`` may be ``None`` for models that
            take their targets from ``x``), a dict, a ``tf.data.Dataset`` or a
            ``keras.utils.PyDataset``.
        epochs: total epochs (a resumed run continues up to this number).
        workdir: folder for ``best.keras``, ``backup/`` and ``logs/`` (see
            :func:`resumable_callbacks`); ``None`` writes nothing (no
            checkpoint, no resume), e.g. for quick comparisons.
        validation_data: as for ``fit``; the best checkpoint monitors
            ``val_loss`` when given, ``loss`` otherwise.
        callbacks: extra callbacks, run after the standard ones (and before
            the backup is written, so their resume state, if they have
            ``get_resume_state``/``set_resume_state``, is saved with it).
        checkpoint, backup, tensorboard: turn the standard callbacks off one by one.
        progress: add :class:`~pose_lab.training.callbacks.ProgressLog`
            (one line per epoch with elapsed time and ETA) and turn Keras's
            own bar off (``verbose=0``) unless ``verbose`` is given.
        seed: the shuffle seed of array inputs when a backup is kept
            (:class:`EpochShuffledArrays`); ``None`` draws one from NumPy's
            global generator (``keras.utils.set_random_seed`` fixes it) and
            stores it in the backup, so a resumed run uses the same.
        **fit_kwargs: passed to ``fit`` (``batch_size``, ``steps_per_epoch``,
            ``shuffle``, ``sample_weight``, ``validation_split``...).

    Returns:
        The ``History`` of the run: after a resume, ``history`` and ``epoch``
        cover every completed epoch (restored ones first), as in an
        uninterrupted run; ``history.resumed_from`` is the epoch this call
        started at.

    With a ``workdir`` and array inputs the arrays are shuffled by
    :class:`EpochShuffledArrays` (``shuffle=False`` keeps their order) and
    ``validation_split`` takes the last fraction of the samples, as Keras
    does; with ``steps_per_epoch`` Keras' own shuffling is kept and a resumed
    run is not guaranteed to match an uninterrupted one.
    """
    monitor = "val_loss" if validation_data is not None or fit_kwargs.get("validation_split") else "loss"
    user_callbacks = list(callbacks or [])
    front = []
    standard = []
    backup_cb = None
    if workdir is not None:
        stateful = [cb for cb in user_callbacks if hasattr(cb, "get_resume_state") and hasattr(cb, "set_resume_state")]
        standard = resumable_callbacks(workdir, monitor, checkpoint=checkpoint, backup=backup,
                                       tensorboard=tensorboard, stateful=stateful)
        if backup:
            backup_cb = standard[0]
            shuffle = fit_kwargs.get("shuffle", True)
            if (_is_array_data(x) and shuffle in (True, False) and fit_kwargs.get("steps_per_epoch") is None
                    and not (y is None and fit_kwargs.get("sample_weight") is not None)):
                if seed is None:
                    state = TrainingBackup.read_state(backup_cb.backup_dir)
                    seed = (state or {}).get("extra", {}).get("shuffle_seed")
                if seed is None:
                    seed = int(np.random.randint(0, 2**31 - 1))
                backup_cb.extra["shuffle_seed"] = int(seed)
                split = fit_kwargs.pop("validation_split", None)
                sample_weight = fit_kwargs.pop("sample_weight", None)
                if split:
                    if validation_data is not None:
                        raise ValueError("validation_split and validation_data: give one of them")
                    n = len(_leaves(x)[0])
                    cut = int(math.floor(n * (1.0 - float(split))))
                    head = lambda a: None if a is None else a[:cut]  # noqa: E731
                    tail = lambda a: None if a is None else a[cut:]  # noqa: E731
                    val = [keras.tree.map_structure(tail, d) for d in (x, y, sample_weight) if d is not None]
                    validation_data = tuple(val)
                    x, y = keras.tree.map_structure(head, x), None if y is None else keras.tree.map_structure(head, y)
                    sample_weight = None if sample_weight is None else sample_weight[:cut]
                data = EpochShuffledArrays(x, y, sample_weight, batch_size=fit_kwargs.pop("batch_size", None) or 32,
                                           seed=seed, shuffle=shuffle)
                fit_kwargs["shuffle"] = False
                x, y = data, None
                front.append(_SetEpoch(data))
    cbs = front + standard[:-1] if backup_cb is not None else front + standard
    if progress:
        cbs.append(ProgressLog())
    cbs += user_callbacks
    if backup_cb is not None:
        cbs.append(standard[-1])  # the backup's commit: after every other callback
    if verbose is None:
        verbose = 0 if progress else "auto"
    if not _is_array_data(x):
        fit_kwargs.setdefault("shuffle", False)  # a dataset / generator shuffles itself (Keras warns otherwise)
    history = fit_and_release(model, x, y, epochs=epochs, validation_data=validation_data, callbacks=cbs,
                              verbose=verbose, **fit_kwargs)
    history.resumed_from = backup_cb.restored_epoch if backup_cb is not None else 0
    if backup_cb is not None and backup_cb.restored_epoch:
        history.history = {k: list(v) for k, v in backup_cb.history.items()}
        history.epoch = list(range(len(next(iter(history.history.values()), []))))
    return history


def _in_ipython() -> bool:
    """True inside an IPython shell or Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    return ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None


def fit_and_release(model, *fit_args, **fit_kwargs):
    """``model.fit(*fit_args, **fit_kwargs)``, then free the run's data iterator at once.

    For runs that may end in the middle of an epoch: stopped by a callback
    (:class:`~pose_lab.training.callbacks.TimeLimit`), or interrupted (Ctrl-C,
    an error). Under TensorFlow such a run on a ``PyDataset`` with worker
    threads (``PersonCropStream``, ``SceneStream``) leaves its ``tf.data``
    iterator, still holding the suspended generator, in a reference cycle.
    Left to the collection at interpreter exit, it hung the process there: a
    script that called ``fit_for_minutes`` printed its results and never
    returned, and one stopped with Ctrl-C printed its traceback and hung
    (Keras 3.15, TensorFlow 2.21; not under JAX). A ``gc.collect()`` right
    after ``fit`` frees it while the runtime is whole. When ``fit`` raises in
    a script, the local variables of the frames below this one are cleared
    first, since the traceback keeps them alive (the traceback text is
    intact). In IPython / Jupyter they are kept: the kernel does not exit,
    and ``%debug`` can still inspect them. Both happen only where the hang
    can: TensorFlow, a ``PyDataset`` with workers, a run that raised, was
    stopped (``model.stop_training``) or was given ``steps_per_epoch`` (a
    full collection takes ~0.5 s in a busy process, too much for every ``fit``).

    Returns:
        the ``History``, with ``fit_seconds``: the wall time of ``fit`` (the collection not included).
    """
    data = fit_args[0] if fit_args else fit_kwargs.get("x")
    release = (keras.backend.backend() == "tensorflow" and isinstance(data, keras.utils.PyDataset)
               and int(getattr(data, "workers", 0) or 0) > 0)
    try:
        start = time.perf_counter()
        history = model.fit(*fit_args, **fit_kwargs)
        history.fit_seconds = time.perf_counter() - start
    except BaseException as error:
        if release:
            # the traceback's frames (fit's locals) hold the iterator: clear them, keep the traceback itself
            if error.__traceback__ is not None and not _in_ipython():
                traceback.clear_frames(error.__traceback__.tb_next)
            gc.collect()
        raise
    # only a run that ended mid-epoch (a callback stopped it, or fewer steps than the epoch) leaves the cycle
    if release and (getattr(model, "stop_training", False) or fit_kwargs.get("steps_per_epoch") is not None):
        gc.collect()
    return history


def steps_per_second(model, data, steps=20, warmup_steps=3, restore_epoch=True):
    """Time ``steps`` training steps of a compiled ``model`` on ``data`` after ``warmup_steps`` (tracing).

    A stream's epoch counter (``data.epoch``, e.g. a ``PersonCropStream``) is put back
    afterwards, so the timed batches are not consumed: the real run renders them again
    (``restore_epoch=False`` leaves it where the probe's runs moved it).
    Used to turn a time budget into a planned step count.
    """
    epoch = getattr(data, "epoch", None) if restore_epoch else None
    try:
        # both runs stop mid-epoch (fit_and_release)
        fit_and_release(model, data, epochs=1, steps_per_epoch=int(warmup_steps), verbose=0)
        timed = fit_and_release(model, data, epochs=1, steps_per_epoch=int(steps), verbose=0)
        return int(steps) / timed.fit_seconds
    finally:
        if epoch is not None:
            data.epoch = epoch


def fit_within_budget(model, data, seconds, schedule, planned_steps, *, replan=True, max_steps=None, evaluate=None,
                      marks=(), callbacks=(), verbose=0, clock=time.perf_counter):
    """``fit`` a compiled ``model`` for ``seconds`` of training, its learning-rate schedule ending with them.

    The second half of the kit's time-budgeted runs (``fit_for_minutes``,
    ``pretrain_for_minutes``, Keypoint R-CNN's ``train_for_minutes``), which
    first turn their minutes into ``planned_steps`` with a probe
    (:func:`steps_per_second`) and build ``schedule`` over them:
    :class:`~pose_lab.training.callbacks.TimeLimit` stops the run when the
    seconds (or ``max_steps``) are spent, and with ``replan``
    :class:`~pose_lab.training.callbacks.FitScheduleToBudget` moves the
    schedule's end to where the run's own rate says the budget ends. ``fit``
    is given room for 10x the planned steps, so a probe slowed by a busy
    machine does not end the run before its budget.

    Args:
        model: compiled, its optimizer on ``schedule``.
        data: a source with a length (batches per epoch), e.g. a ``PyDataset``.
        seconds: the training budget (``TimeLimit``; time of ``evaluate`` calls not counted).
        schedule, planned_steps: the optimizer's schedule and the step at which it ends now.
        replan: keep the schedule's end at the budget (``False``: the plan as given).
        max_steps: optional cap on the steps (e.g. a smoke run).
        evaluate, marks: see ``TimeLimit``.
        callbacks: more callbacks, after the time limit and the re-plan.
        verbose: ``fit()`` verbosity.
        clock: ``TimeLimit``'s time source (tests).

    Returns:
        ``(history, limit, fitter)``: the ``History``, the ``TimeLimit`` (its ``steps``,
        ``trained_seconds``, ``curve``) and the ``FitScheduleToBudget`` (``None`` without ``replan``).
    """
    limit = TimeLimit(float(seconds) / 60.0, evaluate=evaluate, marks=marks, clock=clock, max_steps=max_steps)
    fitter = FitScheduleToBudget(schedule, limit, planned_steps) if replan else None
    extra = [limit] + ([fitter] if fitter is not None else []) + list(callbacks or [])
    epochs = max(1, math.ceil(10 * int(planned_steps) / max(len(data), 1)))
    history = fit_and_release(model, data, epochs=epochs, callbacks=extra, verbose=verbose)
    return history, limit, fitter
