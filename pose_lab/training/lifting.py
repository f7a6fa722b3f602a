"""Training the Martinez et al. (2017) lifter: optimiser, compile and a checked, resumable ``fit``.

The paper's recipe: Adam, learning rate ``1e-3 * 0.96 ** (step / 100k)``
(the authors' ``tf.train.exponential_decay(lr, step, 100000, 0.96)``: no
``staircase``, so the rate decays a little at every step, not in jumps every
100k steps), batch 64, the mean squared error on the z-scored root-dropped 3D
targets, ~200 epochs (the authors' ``--epochs 200``; the notebooks train far
fewer, see notebook 07). The network is
:func:`pose_lab.models.lifting.build_lifter`; the arrays come from
:func:`pose_lab.data.lifting.prepare_lifting_data`; the protocol numbers from
:mod:`pose_lab.evaluation.lifting`.

Example:
    >>> model = compile_lifter(build_lifter())
    >>> fit_lifter(model, ld.x_train, ld.y_train, epochs=8, validation_data=ld.validation_data,
    ...            workdir="runs/lifter")      # run the cell again after an interruption: it resumes
"""

from __future__ import annotations

import keras

from pose_lab.training.base import fit_resumable
from pose_lab.validation import check_poses

__all__ = ["compile_lifter", "fit_lifter", "lifter_optimizer"]


def lifter_optimizer(learning_rate=1e-3, decay_steps=100_000, decay_rate=0.96, staircase=False):
    """Adam with Martinez et al.'s exponential decay, ``learning_rate * decay_rate ** (step / decay_steps)``.

    Args:
        learning_rate: the initial rate (1e-3).
        decay_steps, decay_rate: the rate is multiplied by ``decay_rate`` every
            ``decay_steps`` optimiser steps (0.96 per 100k in the paper).
        staircase: ``False`` (the authors' code): continuous decay,
            ``0.96 ** (step / 100k)``; ``True`` (the kit's earlier default):
            piecewise constant, ``0.96 ** (step // 100k)``.

    Returns:
        A ``keras.optimizers.Adam`` with a ``keras.optimizers.schedules.ExponentialDecay``.
    """
    schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=decay_steps, decay_rate=decay_rate, staircase=staircase
    )
    return keras.optimizers.Adam(learning_rate=schedule)


def compile_lifter(model, optimizer=None, *, jit_compile=True, steps_per_execution=1, **kwargs):
    """Compile ``model`` with :func:`lifter_optimizer` (or ``optimizer``) and an MSE loss on z-scores.

    ``jit_compile`` and ``steps_per_execution`` are passed to ``Model.compile``
    (``kwargs`` too: ``metrics=...``). Returns ``model``.

    The default is XLA (``jit_compile=True``), the fastest setting measured for
    this network under TensorFlow on the 2-core CPU at the paper's batch 64:
    1.4-1.7x Keras's ``"auto"``, which means no XLA on a CPU
    (``benchmarks/bench_lifting.py --part throughput``; the README has the
    table). JAX always compiles with XLA, so it changes nothing there.
    ``steps_per_execution > 1`` did not help at batch 64 in those runs.
    """
    model.compile(
        optimizer=optimizer if optimizer is not None else lifter_optimizer(),
        loss="mse",
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
        **kwargs,
    )
    return model


def _pairs(model, x2d, y3d, what_x, what_y):
    """``(x, y)`` checked against the model's joint counts: float32 ``(N, J_in, 2)``, ``(N, J_out, 3)``."""
    x = check_poses(x2d, what_x, dims=2, num_joints=model.input_shape[1], batched=True, flat=True)
    y = check_poses(y3d, what_y, dims=3, num_joints=model.output_shape[1], batched=True, flat=True)
    return x, y


def fit_lifter(model, x2d, y3d, *, epochs=1, batch_size=64, validation_data=None, callbacks=None,
               shuffle=True, workdir=None, progress=True, verbose=None, **kwargs):
    """Check the arrays, then train with :func:`pose_lab.training.base.fit_resumable`.

    Args:
        model: a compiled lifter (:func:`compile_lifter`).
        x2d: z-scored 2D inputs ``(N, J_in, 2)`` (flat ``(N, 2 J_in)`` accepted).
        y3d: z-scored root-dropped 3D targets ``(N, J_out, 3)`` (flat accepted).
        epochs, batch_size, callbacks, shuffle: as for ``model.fit`` (batch 64 as in the paper).
        validation_data: ``(x2d, y3d)`` checked the same way (the loss on them is ``val_loss``);
            use poses held out of the *training* subjects (``ld.validation_data`` of
            ``prepare_lifting_data(..., val_subjects=["S8"])``), not the test subjects.
        workdir: folder for the best checkpoint, the resume backup and the
            TensorBoard logs; ``None`` (the default) writes nothing.
        progress: one line per epoch with the ETA instead of Keras's bar
            (``verbose=0`` unless ``verbose`` is given); ``False`` for Keras's own output only.
        verbose: as for ``model.fit``.
        **kwargs: passed to ``fit_resumable`` and ``model.fit``.

    Raises:
        ValueError: a wrong joint count or shape (naming the argument and the
            expected shape), NaN/inf, or a different number of 2D and 3D poses.

    Returns:
        The ``History`` of this call.
    """
    x, y = _pairs(model, x2d, y3d, "x2d (training 2D poses)", "y3d (training 3D targets)")
    if len(x) != len(y):
        raise ValueError(f"x2d and y3d: expected the same number of poses, got {len(x)} and {len(y)}")
    if validation_data is not None:
        xv, yv = validation_data
        validation_data = _pairs(model, xv, yv, "validation 2D poses", "validation 3D targets")
    return fit_resumable(model, x, y, epochs=epochs, batch_size=batch_size, workdir=workdir,
                         validation_data=validation_data, callbacks=callbacks, shuffle=shuffle,
                         progress=progress, verbose=verbose, **kwargs)
