"""2D -> 3D pose lifting: the Martinez et al. (2017) baseline and its evaluation.

"A simple yet effective baseline for 3d human pose estimation" (Martinez,
Hossain, Romero, Little, ICCV 2017) lifts a 2D pose to 3D with a small MLP:

.. code-block:: text

    x (17 x 2, z-scored)  ->  Dense 1024 -> BN -> ReLU -> Dropout 0.5
                          ->  [ residual block: 2 x (Dense 1024 -> BN -> ReLU -> Dropout) + skip ] x 2
                          ->  Dense 16*3  ->  y (16 x 3, z-scored)

* **inputs**: 2D joints in pixels, z-scored per coordinate with the training
  set's mean and std, *not* root-centred (the absolute image position carries
  perspective information, seed 004 section 3.2);
* **targets**: 3D joints in the camera frame, in mm, root-centred (pelvis at
  the origin), the root dropped (always zero) and z-scored per coordinate;
* every ``Dense`` kernel has a max-norm constraint (``||w_j|| <= 1`` for the
  weights into each unit), He-normal initialisation;
* Adam, learning rate 1e-3 decayed by 0.96 every 100k steps (staircase, as the
  authors' TensorFlow code), batch 64, MSE on the z-scored targets.

Evaluation follows the Human3.6M protocols on S9 and S11: predictions are
de-normalised to mm, the root re-inserted at the origin (so the average runs
over all 17 joints as in the published numbers), then

* **protocol 1**: MPJPE (mean Euclidean joint error after root alignment);
* **protocol 2**: P-MPJPE (after a Procrustes similarity alignment);

each per action and averaged over the actions.

Shapes: 2D ``(N, 17, 2)`` pixels or z-scores; 3D ``(N, 17, 3)`` mm or
``(N, 16, 3)`` z-scores (root dropped). Joint order: :data:`pose_lab.skeletons.H36M17`.

Example:
    >>> model = build_lifter()
    >>> compile_lifter(model)
    >>> fit_lifter(model, x2d_norm, y3d_norm, epochs=10)
    >>> table = evaluate_lifter(model, x2d_test_norm, y3d_test_mm, actions, stats)
    >>> print(table)                       # per action + average, P1 and P2 in mm
"""

from __future__ import annotations

import time
from typing import NamedTuple

import keras
import numpy as np
from keras import layers

__all__ = [
    "build_lifter",
    "residual_block",
    "lifter_optimizer",
    "compile_lifter",
    "check_poses_2d",
    "check_poses_3d",
    "normalize",
    "denormalize",
    "denormalize_3d",
    "stats_arrays",
    "LiftingData",
    "prepare_lifting_data",
    "fit_lifter",
    "predict_3d",
    "evaluate_lifter",
    "protocol_errors",
    "format_results",
    "measure_throughput",
]

ROOT = 0  # pelvis ("Hip") in H36M-17


# --------------------------------------------------------------------------- model


def _dense(units, max_norm, name):
    constraint = keras.constraints.MaxNorm(max_value=max_norm, axis=0) if max_norm else None
    return layers.Dense(
        units,
        kernel_initializer="he_normal",
        kernel_constraint=constraint,
        name=name,
    )


def _dense_bn_relu_dropout(x, hidden, dropout, max_norm, bn_momentum, name):
    x = _dense(hidden, max_norm, f"{name}_dense")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def residual_block(x, hidden=1024, dropout=0.5, max_norm=1.0, bn_momentum=0.9, name="block"):
    """Martinez et al.'s residual block: ``x + f(f(x))``, ``f`` = Dense -> BN -> ReLU -> Dropout.

    Args:
        x: a symbolic tensor of shape ``(batch, hidden)``.
        hidden, dropout, max_norm, bn_momentum: as in :func:`build_lifter`.
        name: prefix of the block's layer names.

    Returns:
        A symbolic tensor of the same shape.
    """
    y = _dense_bn_relu_dropout(x, hidden, dropout, max_norm, bn_momentum, f"{name}_a")
    y = _dense_bn_relu_dropout(y, hidden, dropout, max_norm, bn_momentum, f"{name}_b")
    return layers.Add(name=f"{name}_add")([x, y])


def build_lifter(
    num_joints_in: int = 17,
    num_joints_out: int = 16,
    hidden: int = 1024,
    num_blocks: int = 2,
    dropout: float = 0.5,
    max_norm: float | None = 1.0,
    bn_momentum: float = 0.9,
    name: str = "martinez_lifter",
) -> keras.Model:
    """The Martinez et al. (2017) 2D -> 3D lifting network (a functional ``keras.Model``).

    Args:
        num_joints_in: 2D joints in the input (17 for H36M-17 with the root;
            the thesis drops the 2D root too: 16).
        num_joints_out: 3D joints predicted (16: the root is dropped).
        hidden: width of every hidden layer (1024 in the paper).
        num_blocks: residual blocks (2 in the paper).
        dropout: dropout rate after every hidden layer (0.5).
        max_norm: max-norm constraint on every kernel's columns (1.0);
            ``None`` disables it.
        bn_momentum: batch-norm moving-average momentum (0.9, PyTorch's 0.1
            convention; Keras' default 0.99 needs ~10x more steps to settle).
        name: model name.

    Returns:
        A model mapping ``(batch, num_joints_in, 2)`` to ``(batch, num_joints_out, 3)``,
        both z-scored.
    """
    for arg, value in (("num_joints_in", num_joints_in), ("num_joints_out", num_joints_out),
                       ("hidden", hidden)):
        if not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{arg}: expected a positive int, got {value!r}")
    if not isinstance(num_blocks, (int, np.integer)) or num_blocks < 0:
        raise ValueError(f"num_blocks: expected a non-negative int, got {num_blocks!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1), got {dropout!r}")
    if max_norm is not None and not float(max_norm) > 0:
        raise ValueError(f"max_norm: expected a positive number or None, got {max_norm!r}")

    inputs = keras.Input((num_joints_in, 2), name="pose_2d")
    x = layers.Flatten(name="flatten")(inputs)
    x = _dense_bn_relu_dropout(x, hidden, dropout, max_norm, bn_momentum, "stem")
    for i in range(num_blocks):
        x = residual_block(x, hidden, dropout, max_norm, bn_momentum, name=f"block{i + 1}")
    x = _dense(num_joints_out * 3, max_norm, "head")(x)
    outputs = layers.Reshape((num_joints_out, 3), name="pose_3d")(x)
    return keras.Model(inputs, outputs, name=name)


def lifter_optimizer(learning_rate=1e-3, decay_steps=100_000, decay_rate=0.96, staircase=True):
    """Adam with Martinez et al.'s exponential decay (0.96 every 100k steps)."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=decay_steps, decay_rate=decay_rate, staircase=staircase
    )
    return keras.optimizers.Adam(learning_rate=schedule)


def compile_lifter(model, optimizer=None, *, jit_compile="auto", steps_per_execution=1, **kwargs):
    """Compile ``model`` with :func:`lifter_optimizer` and an MSE loss on z-scores.

    ``jit_compile`` and ``steps_per_execution`` are passed to ``Model.compile``
    (see ``benchmarks/bench_lifting.py`` for their effect on CPU throughput).
    """
    model.compile(
        optimizer=optimizer if optimizer is not None else lifter_optimizer(),
        loss="mse",
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
        **kwargs,
    )
    return model


# ---------------------------------------------------------------- input checks


def _check_poses(x, num_joints, dims, what):
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 2 and num_joints is not None and arr.shape[-1] == num_joints * dims:
        arr = arr.reshape(arr.shape[0], num_joints, dims)
    expected = f"(N, {num_joints if num_joints is not None else 'J'}, {dims})"
    if arr.ndim != 3 or arr.shape[-1] != dims or (num_joints is not None and arr.shape[1] != num_joints):
        raise ValueError(
            f"{what}: expected shape {expected} (or flat (N, {dims}*J)), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr).all(axis=(1, 2)))[:, 0]
        raise ValueError(
            f"{what}: {len(bad)} pose(s) contain NaN or inf values (first at index {int(bad[0])}); "
            "drop or impute missing joints before lifting"
        )
    return arr.astype(np.float32, copy=False)


def check_poses_2d(x, num_joints: int | None = 17, what: str = "2D poses") -> np.ndarray:
    """Validate 2D poses: shape ``(N, num_joints, 2)`` (flat ``(N, 2J)`` accepted), all finite.

    Returns a float32 ``(N, num_joints, 2)`` array; raises ``ValueError``
    naming the expected shape, or the first pose with a NaN/inf.
    """
    return _check_poses(x, num_joints, 2, what)


def check_poses_3d(y, num_joints: int | None = 16, what: str = "3D poses") -> np.ndarray:
    """Validate 3D poses: shape ``(N, num_joints, 3)`` (flat accepted), all finite."""
    return _check_poses(y, num_joints, 3, what)


# ------------------------------------------------------------- normalisation


def stats_arrays(stats, kind: str = "3d"):
    """``(mean, std)`` for ``kind`` ("2d" or "3d") from a normalisation-stats object.

    Accepts :class:`pose_lab.data.h36m.NormStats`, any object or mapping with
    ``mean_3d``/``std_3d`` (``mean_2d``/``std_2d``) fields, or a ``(mean, std)`` tuple.
    """
    if kind not in ("2d", "3d"):
        raise ValueError(f"kind: expected '2d' or '3d', got {kind!r}")
    if isinstance(stats, (tuple, list)) and len(stats) == 2:
        mean, std = stats
    else:
        names = [(f"mean_{kind}", f"std_{kind}"), (f"{kind}_mean", f"{kind}_std")]
        for m, s in names:
            if isinstance(stats, dict) and m in stats:
                mean, std = stats[m], stats[s]
                break
            if hasattr(stats, m):
                mean, std = getattr(stats, m), getattr(stats, s)
                break
        else:
            raise ValueError(
                f"stats: expected NormStats, a mapping with 'mean_{kind}'/'std_{kind}' "
                f"or a (mean, std) tuple, got {type(stats).__name__}"
            )
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def normalize(x, mean, std):
    """z-score: ``(x - mean) / std`` (std below 1e-8 treated as 1, e.g. a root fixed at 0)."""
    std = np.where(np.asarray(std) < 1e-8, 1.0, std)
    return ((np.asarray(x, np.float32) - mean) / std).astype(np.float32)


def denormalize(x, mean, std):
    """Inverse of :func:`normalize`: ``x * std + mean``."""
    std = np.where(np.asarray(std) < 1e-8, 1.0, std)
    return (np.asarray(x, np.float32) * std + mean).astype(np.float32)


def denormalize_3d(y_norm, stats, root: int = ROOT) -> np.ndarray:
    """z-scored root-dropped 3D ``(N, J-1, 3)`` -> mm ``(N, J, 3)`` with the root at the origin.

    ``stats`` holds the 3D mean/std of the root-dropped joints (``(J-1, 3)``);
    stats for all ``J`` joints are accepted too (the root's entry is dropped).
    """
    y_norm = np.asarray(y_norm, np.float32)
    mean, std = stats_arrays(stats, "3d")
    n_out = y_norm.shape[-2]
    mean = mean.reshape(-1, 3)
    std = std.reshape(-1, 3)
    if mean.shape[0] == n_out + 1:  # stats include the root: drop it
        mean = np.delete(mean, root, axis=0)
        std = np.delete(std, root, axis=0)
    if mean.shape[0] != n_out:
        raise ValueError(f"stats: 3D mean has {mean.shape[0]} joints, predictions have {n_out}")
    y = denormalize(y_norm, mean, std)
    return np.insert(y, root, 0.0, axis=-2)


# ------------------------------------------------------------ data arrays


class LiftingData(NamedTuple):
    """Normalised arrays for lifting, from :func:`prepare_lifting_data`.

    Attributes:
        x_train, y_train: z-scored 2D ``(N, 17, 2)`` and root-dropped 3D ``(N, 16, 3)``.
        actions_train: ``(N,)`` action classes of the training poses.
        x_test: z-scored 2D test inputs ``(M, 17, 2)``.
        y_test: z-scored root-dropped 3D test targets ``(M, 16, 3)`` (validation loss).
        y_test_mm: ground truth ``(M, 17, 3)``, mm, root-centred camera frame.
        actions_test, subjects_test: ``(M,)`` labels (protocol tables group by action).
        x_test_px: the test 2D inputs in pixels (for drawing).
        stats: the training set's :class:`pose_lab.data.h36m.NormStats`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    actions_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    y_test_mm: np.ndarray
    actions_test: np.ndarray
    subjects_test: np.ndarray
    x_test_px: np.ndarray
    stats: object


def prepare_lifting_data(data, train_subjects="train", test_subjects="test", *, train_stride=1,
                         test_stride=1, stats=None) -> LiftingData:
    """Protocol split + Martinez normalisation of an :class:`pose_lab.data.h36m.H36MData`.

    Training poses come from ``train_subjects`` (S1, S5, S6, S7, S8), test
    poses from ``test_subjects`` (S9, S11), all four cameras. The
    normalisation statistics are computed on the training poses only (or
    taken from ``stats``). Frame strides thin out the 50 fps sequences.
    """
    from pose_lab.data.h36m import NormStats

    train = data.lifting_arrays(train_subjects, stride=train_stride)
    test = data.lifting_arrays(test_subjects, stride=test_stride)
    if len(train.inputs_2d) == 0 or len(test.inputs_2d) == 0:
        raise ValueError(f"prepare_lifting_data: empty split (train {len(train.inputs_2d)}, "
                         f"test {len(test.inputs_2d)} poses); subjects: {data.subjects}")
    if stats is None:
        stats = NormStats.from_arrays(train.inputs_2d, train.targets_3d)
    f32 = np.float32
    return LiftingData(
        x_train=stats.normalize_2d(train.inputs_2d).astype(f32),
        y_train=stats.normalize_3d(train.targets_3d).astype(f32),
        actions_train=train.actions,
        x_test=stats.normalize_2d(test.inputs_2d).astype(f32),
        y_test=stats.normalize_3d(test.targets_3d).astype(f32),
        y_test_mm=test.targets_3d.astype(f32),
        actions_test=test.actions,
        subjects_test=test.subjects,
        x_test_px=test.inputs_2d.astype(f32),
        stats=stats,
    )


# ---------------------------------------------------------------- training


def fit_lifter(model, x2d, y3d, *, epochs=1, batch_size=64, validation_data=None, callbacks=None,
               shuffle=True, verbose="auto", **kwargs):
    """Validate inputs, then ``model.fit`` on z-scored 2D ``(N, J_in, 2)`` -> 3D ``(N, J_out, 3)``.

    Raises ``ValueError`` for a wrong joint count, mismatched lengths or NaN.
    Returns the ``History``.
    """
    j_in, j_out = model.input_shape[1], model.output_shape[1]
    x = check_poses_2d(x2d, j_in, "x2d (training 2D poses)")
    y = check_poses_3d(y3d, j_out, "y3d (training 3D targets)")
    if len(x) != len(y):
        raise ValueError(f"x2d and y3d: expected the same number of poses, got {len(x)} and {len(y)}")
    if validation_data is not None:
        xv, yv = validation_data
        validation_data = (check_poses_2d(xv, j_in, "validation 2D poses"),
                           check_poses_3d(yv, j_out, "validation 3D targets"))
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                     callbacks=callbacks, shuffle=shuffle, verbose=verbose, **kwargs)


def predict_3d(model, x2d, stats=None, *, batch_size=4096, root=ROOT) -> np.ndarray:
    """Lift z-scored 2D poses; returns z-scores ``(N, J_out, 3)``, or mm ``(N, J_out+1, 3)`` with ``stats``.

    With ``stats`` (the training set's 3D normalisation) the prediction is
    de-normalised and the root re-inserted at the origin (camera frame, mm).
    """
    x = check_poses_2d(x2d, model.input_shape[1], "x2d (2D poses to lift)")
    ys = []
    for i in range(0, len(x), batch_size):  # direct calls: no predict function traced per model
        y = model(x[i:i + batch_size], training=False)
        ys.append(keras.ops.convert_to_numpy(y[0] if isinstance(y, (list, tuple)) else y))
    y = np.concatenate(ys) if ys else np.zeros((0,) + tuple(model.output_shape[1:]), np.float32)
    return y if stats is None else denormalize_3d(y, stats, root=root)


# -------------------------------------------------------------- evaluation


PROTOCOLS = ("P1", "P2")


def protocol_errors(pred_mm, target_mm, actions=None):
    """Protocol 1 (MPJPE) and protocol 2 (P-MPJPE) in mm, per action and averaged over actions.

    Args:
        pred_mm, target_mm: ``(N, 17, 3)`` root-centred poses in mm.
        actions: ``(N,)`` action label per pose (``None``: one group ``"all"``).

    Returns:
        A :class:`pose_lab.metrics.ActionTable` with metrics ``"P1"`` and
        ``"P2"``: ``table[action]["P1"]``, ``table.average["P1"]`` (the
        unweighted mean over actions, the number papers report) and
        ``table.overall`` (mean over all poses). ``print(table)`` or
        ``table.to_markdown()`` formats it.
    """
    from pose_lab import metrics

    check_poses_3d(pred_mm, None, "pred_mm")
    pred_mm = np.asarray(pred_mm, np.float64)
    check_poses_3d(target_mm, pred_mm.shape[1], "target_mm")
    target_mm = np.asarray(target_mm, np.float64)
    if len(pred_mm) != len(target_mm):
        raise ValueError(f"pred_mm and target_mm: lengths differ ({len(pred_mm)} vs {len(target_mm)})")
    if actions is None:
        actions = np.full(len(pred_mm), "all")
    return metrics.evaluate_by_action(
        pred_mm, target_mm, np.asarray(actions), metrics={"P1": metrics.mpjpe, "P2": metrics.p_mpjpe}
    )


def evaluate_lifter(model, x2d, y3d_mm, actions=None, stats=None, *, batch_size=4096, root=ROOT,
                    predict_fn=None, return_predictions=False):
    """Protocols 1 and 2 on a test set (S9/S11 for Human3.6M).

    Args:
        model: a lifter (z-scored 2D -> z-scored root-dropped 3D).
        x2d: z-scored 2D inputs ``(N, J_in, 2)``.
        y3d_mm: ground truth ``(N, 17, 3)`` in mm, root-centred, camera frame.
        actions: ``(N,)`` action labels.
        stats: the training set's 3D normalisation (see :func:`stats_arrays`).
        predict_fn: optional ``f(x2d) -> (N, 17, 3) mm`` replacing
            :func:`predict_3d` (e.g. a VAE's mean prediction).
        return_predictions: also return the predictions in mm.

    Returns:
        The :class:`~pose_lab.metrics.ActionTable` of :func:`protocol_errors`
        (``table.average["P1"]``, ``table.average["P2"]``), and with
        ``return_predictions`` the ``(N, 17, 3)`` predictions.
    """
    if predict_fn is None:
        if stats is None:
            raise ValueError("stats: the 3D normalisation statistics are needed to report mm")
        pred = predict_3d(model, x2d, stats, batch_size=batch_size, root=root)
    else:
        pred = np.asarray(predict_fn(x2d))
    check_poses_3d(y3d_mm, pred.shape[1], "y3d_mm (ground-truth 3D in mm)")
    table = protocol_errors(pred, y3d_mm, actions)
    return (table, pred) if return_predictions else table


def format_results(tables, digits=1) -> str:
    """One Markdown table comparing methods: ``{method: ActionTable}`` -> P1/P2 columns per method.

    Rows are the actions (first table's order) and the action average.
    """
    if hasattr(tables, "rows"):
        tables = {"": tables}
    methods = list(tables)
    first = tables[methods[0]]
    actions = list(first.actions) + [a for t in tables.values() for a in t.actions if a not in first.actions]
    head = "| action | " + " | ".join(f"{m} P1 | {m} P2".strip() for m in methods) + " |"
    lines = [head, "| --- |" + " ---: |" * (2 * len(methods))]
    fmt = f"{{:.{digits}f}}"
    for a in actions + [first.average_name]:
        cells = []
        for m in methods:
            t = tables[m]
            cells += [fmt.format(t[a]["P1"]), fmt.format(t[a]["P2"])] if a in t else ["-", "-"]
        name = f"**{a}**" if a == first.average_name else str(a)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure_throughput(model, batch_size=64, num_samples=20_000, *, epochs=2, seed=0, **fit_kwargs):
    """Training throughput (samples/s) of ``model.fit`` on random data, after a warm-up epoch.

    The first epoch (tracing/compilation) is excluded; the rate is the median
    over the remaining epochs.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_samples,) + tuple(model.input_shape[1:])).astype(np.float32)
    y = rng.standard_normal((num_samples,) + tuple(model.output_shape[1:])).astype(np.float32)

    class _Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._t)

    timer = _Timer()
    model.fit(x, y, batch_size=batch_size, epochs=epochs + 1, verbose=0, callbacks=[timer],
              shuffle=False, **fit_kwargs)
    return float(num_samples / np.median(timer.times[1:]))
