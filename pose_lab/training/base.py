"""What every training class and notebook of the kit shares.

* :func:`fit_resumable`: ``model.fit`` with the callbacks of a run that
  survives an interruption (a Colab disconnect, Ctrl-C): ``ModelCheckpoint``
  (best model), ``BackupAndRestore`` (resume where it stopped), ``TensorBoard``
  and :class:`~pose_lab.training.callbacks.ProgressLog` (one line per epoch
  with the ETA). Every method's ``fit_*`` helper goes through it, so every
  notebook resumes the same way: call the same cell again.
* :func:`batched_predict`: a model (or any callable network) run in inference
  mode over an array, chunk by chunk, outputs as NumPy.
* :func:`add_regularization`: a loss plus the model's regulariser losses
  (``model.losses``), for ``compute_loss`` overrides.

Backend-agnostic (``keras.ops``); imports no data, evaluation or metrics module.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import ops

from pose_lab.training.callbacks import ProgressLog

__all__ = ["add_regularization", "batched_predict", "fit_resumable", "resumable_callbacks"]


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


def resumable_callbacks(workdir, monitor="val_loss", *, checkpoint=True, backup=True, tensorboard=True,
                        save_best_only=True):
    """The callbacks of a resumable run, all writing under ``workdir``.

    * ``ModelCheckpoint`` -> ``workdir/best.keras`` (the whole model, best
      ``monitor`` value; every epoch when ``save_best_only=False``);
    * ``BackupAndRestore`` -> ``workdir/backup/``: saved at each epoch end and
      deleted when training finishes. Calling ``fit`` again after an
      interruption restores weights, optimizer state and the epoch counter and
      continues. On Colab put ``workdir`` on Google Drive so it survives the runtime;
    * ``TensorBoard`` -> ``workdir/logs/`` (``%tensorboard --logdir workdir/logs``);
      skipped with a warning when the ``tensorboard`` package is not installed.

    Returns:
        list of callbacks.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cbs = []
    if backup:
        cbs.append(keras.callbacks.BackupAndRestore(str(workdir / "backup")))
    if checkpoint:
        cbs.append(keras.callbacks.ModelCheckpoint(str(workdir / "best.keras"), monitor=monitor,
                                                   save_best_only=save_best_only, verbose=0))
    if tensorboard:
        if importlib.util.find_spec("tensorboard") is None:
            warnings.warn("TensorBoard logs are off: the 'tensorboard' package is not installed "
                          "(pip install tensorboard)", stacklevel=2)
        else:
            cbs.append(keras.callbacks.TensorBoard(str(workdir / "logs"), write_graph=False, profile_batch=0))
    return cbs


def fit_resumable(model, x, y=None, *, epochs=1, workdir=None, validation_data=None, callbacks=None,
                  checkpoint=True, backup=True, tensorboard=True, progress=True, verbose=None, **fit_kwargs):
    """``model.fit`` as every notebook of the kit runs it: resumable, logged, with an ETA.

    Args:
        model: a compiled ``keras.Model``.
        x, y: as for ``fit``: arrays (``y`` may be ``None`` for models that
            take their targets from ``x``), a dict, a ``tf.data.Dataset`` or a
            ``keras.utils.PyDataset``.
        epochs: total epochs (a resumed run continues up to this number).
        workdir: folder for ``best.keras``, ``backup/`` and ``logs/`` (see
            :func:`resumable_callbacks`); ``None`` writes nothing (no
            checkpoint, no resume), e.g. for quick comparisons.
        validation_data: as for ``fit``; the best checkpoint monitors
            ``val_loss`` when given, ``loss`` otherwise.
        callbacks: extra callbacks, run after the standard ones.
        checkpoint, backup, tensorboard: turn the standard callbacks off one by one.
        progress: add :class:`~pose_lab.training.callbacks.ProgressLog`
            (one line per epoch with elapsed time and ETA) and turn Keras's
            own bar off (``verbose=0``) unless ``verbose`` is given.
        **fit_kwargs: passed to ``fit`` (``batch_size``, ``steps_per_epoch``, ``shuffle``...).

    Returns:
        The ``History`` of this call (only the epochs run in it).
    """
    monitor = "val_loss" if validation_data is not None else "loss"
    cbs = []
    if workdir is not None:
        cbs += resumable_callbacks(workdir, monitor, checkpoint=checkpoint, backup=backup,
                                   tensorboard=tensorboard)
    if progress:
        cbs.append(ProgressLog())
    cbs += list(callbacks or [])
    if verbose is None:
        verbose = 0 if progress else "auto"
    is_array = isinstance(x, (np.ndarray, dict, list, tuple)) or hasattr(x, "__array__")
    if not is_array:
        fit_kwargs.setdefault("shuffle", False)  # a dataset / generator shuffles itself (Keras warns otherwise)
    return model.fit(x, y, epochs=epochs, validation_data=validation_data, callbacks=cbs, verbose=verbose,
                     **fit_kwargs)
