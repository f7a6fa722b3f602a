"""Training, prediction and COCO evaluation of top-down 2D keypoint models.

Training
    :class:`KeypointTrainer` wraps a network from :mod:`pose_lab.models.keypoints2d`
    and overrides ``compute_loss`` (backend-agnostic: TensorFlow and JAX), so
    ``fit()`` takes ``(images, {"heatmaps": (B, h, w, J), "weights": (B, J)})``
    for heatmap models or ``(images, {"keypoints": (B, J, 2), "weights": (B, J)})``
    for coordinate regressors. :func:`fit_keypoints2d` adds the callbacks a
    long run needs (checkpoints, ``BackupAndRestore`` so an interrupted Colab run
    resumes where it stopped, TensorBoard logs, progress bars).

Prediction
    :func:`predict_keypoints` decodes heatmaps with :func:`pose_lab.heatmaps.decode_heatmaps`
    (argmax + quarter-pixel shift), optionally with the flip test, and returns
    crop-pixel keypoints; :func:`pose_lab.data.pipelines.transform_back` maps
    them back to the image through the crop's affine transform.

Flip test and the one-pixel shift
    The prediction is averaged with the prediction for the horizontally flipped
    crop, flipped back with left/right channels swapped
    (``COCO17.flip_permutation``). Under the kit's coordinate convention (heatmap
    cell ``u`` <-> input pixel ``u * s``, integer coordinates at pixel centres,
    see :mod:`pose_lab.heatmaps`), mirroring the crop (``x -> W - 1 - x``) and then
    mirroring the heatmap array back leaves the peak ``a = 1 - 1/s`` heatmap
    pixels to the *left* of where it belongs (0.75 px at stride 4).
    SimpleBaseline's reference code compensates by shifting the flipped heatmap
    one whole pixel to the right. We instead shift by the exact amount, and
    split it symmetrically: the original heatmap moves ``a/2`` to the left, the
    flipped-back one ``a/2`` to the right (linear interpolation, edge values
    replicated), the average is decoded and ``a/2`` is added back. Because the
    two half shifts mirror each other, the procedure is exactly equivariant: a
    left-right symmetric crop gives exactly mirrored, left/right-swapped
    keypoints (``x_left + x_right = W - 1``), which a one-pixel shift does not
    under this convention (it overshoots by ``1/s`` heatmap pixel, one input
    pixel). For coordinate regressors the flipped prediction is mirrored (``x -> W - 1 - x``), swapped and averaged.

COCO results
    :func:`to_coco_results` builds the official results list (``image_id``,
    ``category_id=1``, 51 ``keypoints`` values, ``score``) with the
    SimpleBaseline instance score (mean confidence of the keypoints above 0.2),
    validating shapes and image ids with a ``ValueError`` before pycocotools
    sees them; :func:`evaluate_keypoints` scores crops against ground truth
    (OKS AP via :func:`pose_lab.metrics.coco_keypoint_ap`, PCK@0.05 of the box
    size, a per-keypoint error table).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import warnings
from collections import OrderedDict
from pathlib import Path

import keras
import numpy as np
from keras import ops

import pose_lab.models.keypoints2d  # noqa: F401  (registers the custom layers for load_model)
from pose_lab.heatmaps import decode_heatmaps
from pose_lab.skeletons import COCO17

__all__ = [
    "SYNTHETIC_RECIPE",
    "weighted_heatmap_mse",
    "weighted_coordinate_l1",
    "KeypointTrainer",
    "keypoints2d_callbacks",
    "fit_keypoints2d",
    "predict_heatmaps",
    "predict_keypoints",
    "flip_test_heatmaps",
    "instance_scores",
    "to_coco_results",
    "per_keypoint_table",
    "KeypointTable",
    "KeypointEvaluation",
    "evaluate_keypoints",
]


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


# ---------------------------------------------------------------------------
# losses (pure functions, keras.ops)
# ---------------------------------------------------------------------------
def weighted_heatmap_mse(heatmaps_true, heatmaps_pred, weights):
    """SimpleBaseline's ``JointsMSELoss`` with target weights.

    ``0.5 * mean_{b, v, u, j} (w_bj * (pred - true))^2``: the per-joint MSE of
    the reference code (which multiplies prediction and target by the weight
    before the squared error) averaged over joints; joints with weight 0
    (unlabelled, or outside the heatmap) contribute nothing.

    Args:
        heatmaps_true, heatmaps_pred: ``(B, h, w, J)``.
        weights: ``(B, J)`` target weights (1 labelled, 0 not).

    Returns:
        Scalar float32 tensor.
    """
    t = ops.cast(heatmaps_true, "float32")
    p = ops.cast(heatmaps_pred, "float32")
    w = ops.cast(weights, "float32")[:, None, None, :]
    return 0.5 * ops.mean(ops.square(w * (p - t)))


def weighted_coordinate_l1(keypoints_true, keypoints_pred, weights, scale=1.0):
    """Visibility-weighted L1 on coordinates (integral regression, Sun et al. 2018).

    ``mean_{b, j, xy} w_bj |pred - true| / scale``; ``scale`` (e.g. the input
    side in pixels) keeps the loss of order one.

    Args:
        keypoints_true, keypoints_pred: ``(B, J, 2)`` pixels.
        weights: ``(B, J)``.
        scale: pixels per loss unit.
    """
    t = ops.cast(keypoints_true, "float32")[..., :2]
    p = ops.cast(keypoints_pred, "float32")
    w = ops.cast(weights, "float32")[..., None]
    return ops.mean(w * ops.abs(p - t)) / float(scale)


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


@keras.saving.register_keras_serializable(package="pose_lab")
class KeypointTrainer(keras.Model):
    """Wraps a 2D keypoint network with the visibility-weighted loss of its output type.

    Heatmap networks (4D output) are trained with :func:`weighted_heatmap_mse`
    against ``y["heatmaps"]``; coordinate networks (``(B, J, 2)`` output) with
    :func:`weighted_coordinate_l1` against ``y["keypoints"]`` (crop pixels). The
    target weights are ``y["weights"]`` (or ``"target_weights"``; else
    ``visibility > 0``; else all ones). ``compute_loss`` uses only ``keras.ops``,
    so the same class trains under TensorFlow and JAX.

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
        if self.output_type == "heatmaps":
            loss = weighted_heatmap_mse(target, y_pred, weights)
        else:
            loss = weighted_coordinate_l1(target, y_pred, weights, self.coord_scale)
        if self.losses:
            loss = loss + ops.sum(ops.stack([ops.cast(v, "float32") for v in self.losses]))
        return loss

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
# fit with callbacks
# ---------------------------------------------------------------------------
def keypoints2d_callbacks(workdir, monitor="val_loss", checkpoint=True, backup=True, tensorboard=True,
                          save_best_only=True):
    """The callbacks of a resumable run, all writing under ``workdir``.

    * ``ModelCheckpoint`` -> ``workdir/best.keras`` (the whole model, best
      ``monitor`` value; every epoch when ``save_best_only=False`` or there is no
      validation data, then ``monitor`` should be ``"loss"``);
    * ``BackupAndRestore`` -> ``workdir/backup/``: saved at each epoch end and
      deleted when training finishes. Calling ``fit`` again after an
      interruption (a Colab disconnect, Ctrl-C) restores weights, optimizer
      state and the epoch counter and continues. On Colab put ``workdir`` on
      Google Drive so it survives the runtime;
    * ``TensorBoard`` -> ``workdir/logs/`` (``%tensorboard --logdir workdir/logs``);
      skipped with a warning when the ``tensorboard`` package is not installed
      (TensorFlow >= 2.21 no longer pulls it in).

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


def fit_keypoints2d(model, train_data, epochs, workdir, validation_data=None, callbacks=None,
                    checkpoint=True, backup=True, tensorboard=True, verbose="auto", **fit_kwargs):
    """``model.fit`` with :func:`keypoints2d_callbacks` (resumable, logged, progress bars).

    Args:
        model: a compiled :class:`KeypointTrainer` (or any compiled model).
        train_data: a ``tf.data.Dataset`` / generator of ``(images, targets)``, or
            a tuple ``(images, targets)`` of arrays.
        epochs: total epochs (a resumed run continues up to this number).
        workdir: folder for checkpoints, backups and logs.
        validation_data: optional, as for ``fit``; the best checkpoint monitors
            ``val_loss`` when given, ``loss`` otherwise.
        callbacks: extra callbacks appended to the standard ones.
        verbose: ``fit``'s verbosity ("auto": progress bar per epoch).
        **fit_kwargs: passed to ``fit`` (``steps_per_epoch``, ``batch_size``...).

    Returns:
        The ``History`` of this call (only the epochs run in it).
    """
    monitor = "val_loss" if validation_data is not None else "loss"
    cbs = keypoints2d_callbacks(workdir, monitor=monitor, checkpoint=checkpoint, backup=backup,
                                tensorboard=tensorboard)
    cbs += list(callbacks or [])
    if isinstance(train_data, tuple):
        x, y = train_data
        return model.fit(x, y, epochs=epochs, validation_data=validation_data, callbacks=cbs, verbose=verbose,
                         **fit_kwargs)
    fit_kwargs.setdefault("shuffle", False)  # a dataset/generator shuffles itself (Keras warns otherwise)
    return model.fit(train_data, epochs=epochs, validation_data=validation_data, callbacks=cbs, verbose=verbose,
                     **fit_kwargs)


# ---------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------
def _check_images(images, model):
    arr = np.asarray(images)
    expected = tuple(model.input_shape[1:])
    if arr.ndim != 4 or tuple(arr.shape[1:]) != expected:
        raise ValueError(f"images: expected shape (N, {', '.join(map(str, expected))}) for this model, got {arr.shape}")
    return arr


def _flip_permutation(flip_permutation, num_joints):
    perm = COCO17.flip_permutation if flip_permutation is None else np.asarray(flip_permutation, dtype=int)
    if perm.shape != (num_joints,) or sorted(perm.tolist()) != list(range(num_joints)):
        raise ValueError(
            f"flip_permutation must be a permutation of range({num_joints}) (one entry per joint), got {perm.tolist()}"
        )
    return perm


def _predict(model, images, batch_size):
    return np.asarray(model.predict(images, batch_size=batch_size, verbose=0), dtype=np.float32)


def _shift_x(hm, b):
    """Shift heatmaps ``(N, h, w, J)`` by ``b`` pixels along x (|b| < 1), linear interpolation, edges replicated."""
    if b >= 0:
        nb = np.concatenate([hm[:, :, :1], hm[:, :, :-1]], axis=2)  # X[u - 1]
    else:
        nb = np.concatenate([hm[:, :, 1:], hm[:, :, -1:]], axis=2)  # X[u + 1]
    b = abs(b)
    return ((1.0 - b) * hm + b * nb).astype(np.float32)


def flip_test_heatmaps(heatmaps, heatmaps_flipped, stride, flip_permutation=None):
    """Average heatmaps with those of the mirrored crop (see the module docstring).

    Args:
        heatmaps: ``(N, h, w, J)`` predicted on the crops.
        heatmaps_flipped: ``(N, h, w, J)`` predicted on ``images[:, :, ::-1]``.
        stride: input pixels per heatmap pixel ``s``.
        flip_permutation: left/right swap (default ``COCO17.flip_permutation``).

    Returns:
        ``(averaged, offset)``: the averaged heatmaps, whose content sits
        ``offset = (1 - 1/s) / 2`` heatmap pixels left of the kit's convention;
        add ``offset`` to decoded x coordinates.
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    hf = np.asarray(heatmaps_flipped, dtype=np.float32)
    if hm.shape != hf.shape or hm.ndim != 4:
        raise ValueError(f"heatmaps and heatmaps_flipped must both be (N, h, w, J), got {hm.shape} and {hf.shape}")
    perm = _flip_permutation(flip_permutation, hm.shape[-1])
    back = hf[:, :, ::-1, :][..., perm]
    half = 0.5 * (1.0 - 1.0 / float(stride))
    avg = 0.5 * (_shift_x(hm, -half) + _shift_x(back, half))
    return avg, half


def predict_heatmaps(model, images, batch_size=64):
    """Heatmaps ``(N, h, w, J)`` of a heatmap model (no flip test)."""
    return _predict(model, _check_images(images, model), batch_size)


def predict_keypoints(model, images, flip_test=True, flip_permutation=None, batch_size=64, decode="quarter"):
    """Keypoints in crop pixels from a heatmap model or a coordinate regressor.

    Args:
        model: a network from :mod:`pose_lab.models.keypoints2d` or a
            :class:`KeypointTrainer`.
        images: ``(N, H, W, 3)`` crops (the model's input size, pixel values as
            the model expects, by default ``[0, 255]``).
        flip_test: average with the mirrored crop's prediction (module docstring).
        flip_permutation: left/right swap (default ``COCO17.flip_permutation``).
        batch_size: prediction batch size.
        decode: sub-pixel refinement of heatmap peaks, ``"quarter"``
            (SimpleBaseline) or ``"dark"`` (Taylor expansion of the log
            heatmap), see :func:`pose_lab.heatmaps.decode_heatmaps`.

    Returns:
        ``(keypoints, scores)``: ``(N, J, 2)`` float32 ``(x, y)`` in crop pixels
        (pixel centres at integers) and ``(N, J)`` confidences (the heatmap peak
        value; 1.0 for coordinate regressors).
    """
    imgs = _check_images(images, model)
    out = _predict(model, imgs, batch_size)
    width = imgs.shape[2]
    if out.ndim == 3:  # coordinate regressor
        if flip_test:
            perm = _flip_permutation(flip_permutation, out.shape[1])
            fl = _predict(model, imgs[:, :, ::-1], batch_size)[:, perm]
            fl[..., 0] = (width - 1) - fl[..., 0]
            out = 0.5 * (out + fl)
        return out.astype(np.float32), np.ones(out.shape[:2], dtype=np.float32)
    stride = width / out.shape[2]
    offset = 0.0
    if flip_test:
        out, offset = flip_test_heatmaps(out, _predict(model, imgs[:, :, ::-1], batch_size), stride, flip_permutation)
    coords, maxvals = decode_heatmaps(out, method=decode)
    coords[..., 0] += offset
    return (coords * stride).astype(np.float32), maxvals


# ---------------------------------------------------------------------------
# COCO results
# ---------------------------------------------------------------------------
def instance_scores(keypoint_scores, box_scores=1.0, threshold=0.2):
    """SimpleBaseline's person score: ``box_score * mean(keypoint scores > threshold)`` (0 if none).

    Args:
        keypoint_scores: ``(N, J)`` heatmap peak values.
        box_scores: detector scores ``(N,)`` or a scalar (1.0 for ground-truth boxes).
        threshold: keypoints below it are left out of the mean.
    """
    s = np.asarray(keypoint_scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"keypoint_scores: expected shape (N, J), got {s.shape}")
    keep = s > threshold
    n = keep.sum(axis=1)
    mean = np.where(n > 0, np.sum(np.where(keep, s, 0.0), axis=1) / np.maximum(n, 1), 0.0)
    return (mean * np.asarray(box_scores, dtype=np.float64)).astype(np.float64)


def _load_annotations(annotations):
    """A COCO dict from a path or a dict (other values are returned unchanged)."""
    if isinstance(annotations, (str, os.PathLike)):
        path = Path(annotations)
        if not path.is_file():
            raise FileNotFoundError(f"annotations: file not found: {path}")
        with path.open("r", encoding="utf-8") as fh:
            try:
                return json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"annotations: {path} is not valid JSON ({exc})") from None
    return annotations


def _known_image_ids(annotations):
    if annotations is None:
        return None
    annotations = _load_annotations(annotations)
    if isinstance(annotations, dict):
        if not isinstance(annotations.get("images"), list):
            raise ValueError("annotations: a COCO dict needs an 'images' list to check image ids against")
        return {int(img["id"]) for img in annotations["images"]}
    return {int(i) for i in annotations}


def to_coco_results(image_ids, keypoints, scores=None, keypoint_scores=None, annotations=None, path=None,
                    category_id=1):
    """Predictions in the COCO keypoint results format.

    Args:
        image_ids: ``(N,)`` COCO image id of each person.
        keypoints: ``(N, 17, 2)``, ``(N, 17, 3)`` (third column: keypoint score)
            or ``(N, 51)``, in **image** pixels.
        scores: ``(N,)`` person scores; default :func:`instance_scores` of
            ``keypoint_scores`` (or 1.0 when those are absent too).
        keypoint_scores: ``(N, 17)`` per-keypoint confidences written as the third
            keypoint value (pycocotools ignores it; 1.0 when absent).
        annotations: the ground truth (path, COCO dict, or an iterable of valid
            image ids); when given, every ``image_id`` must belong to it.
        path: if given, the list is also written there as JSON.
        category_id: COCO category (1 = person).

    Returns:
        list of ``{"image_id", "category_id", "keypoints": [x1, y1, s1, ...], "score"}``.

    Raises:
        ValueError: wrong keypoint count or shape, mismatched lengths, non-finite
            values, or an image id the annotations do not have.
    """
    ids = np.asarray(image_ids).reshape(-1)
    kp = np.asarray(keypoints, dtype=np.float64)
    n_kp = len(COCO17.joint_names)
    if kp.ndim == 2 and kp.shape[1] == 3 * n_kp:
        kp = kp.reshape(-1, n_kp, 3)
    if kp.ndim != 3 or kp.shape[1] != n_kp or kp.shape[2] not in (2, 3):
        raise ValueError(
            f"keypoints: expected shape (N, {n_kp}, 2), (N, {n_kp}, 3) or (N, {3 * n_kp}) for the {n_kp} COCO "
            f"keypoints, got {kp.shape}"
        )
    n = kp.shape[0]
    if ids.shape[0] != n:
        raise ValueError(f"image_ids has {ids.shape[0]} entries but keypoints has {n} persons")
    if kp.shape[2] == 3 and keypoint_scores is None:
        keypoint_scores = kp[..., 2]
    kp = kp[..., :2]
    if keypoint_scores is not None:
        ks = np.asarray(keypoint_scores, dtype=np.float64)
        if ks.shape != (n, n_kp):
            raise ValueError(f"keypoint_scores: expected shape ({n}, {n_kp}), got {ks.shape}")
    else:
        ks = np.ones((n, n_kp))
    if scores is None:
        sc = instance_scores(ks) if keypoint_scores is not None else np.ones(n)
    else:
        sc = np.broadcast_to(np.asarray(scores, dtype=np.float64), (n,))
    for name, arr in (("keypoints", kp), ("keypoint_scores", ks), ("scores", sc)):
        if not np.all(np.isfinite(arr)):
            bad = int(np.argwhere(~np.isfinite(arr.reshape(n, -1)))[0, 0])
            raise ValueError(f"{name}: non-finite value for person {bad} (image_id {ids[bad]})")
    known = _known_image_ids(annotations)
    if known is not None:
        unknown = [int(i) for i in ids if int(i) not in known]
        if unknown:
            raise ValueError(
                f"image_ids {sorted(set(unknown))[:5]} are not images of the annotations "
                f"({len(known)} images, e.g. {sorted(known)[:3]})"
            )
    flat = np.concatenate([kp, ks[..., None]], axis=-1).reshape(n, -1)
    results = [
        {"image_id": int(i), "category_id": int(category_id), "keypoints": [round(float(v), 3) for v in row],
         "score": float(s)}
        for i, row, s in zip(ids, flat, sc)
    ]
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(results, fh)
    return results


# ---------------------------------------------------------------------------
# per-keypoint table
# ---------------------------------------------------------------------------
class KeypointTable:
    """Per-keypoint errors: rows keyed by joint name, with a mean row; ``to_markdown()`` renders it."""

    def __init__(self, rows, columns):
        self.rows = rows
        self.columns = columns

    def __getitem__(self, joint):
        return self.rows[joint]

    def to_dict(self):
        return {k: dict(v) for k, v in self.rows.items()}

    def to_markdown(self, digits=2):
        head = "| keypoint | " + " | ".join(self.columns) + " |"
        sep = "| --- | " + " | ".join("---:" for _ in self.columns) + " |"
        lines = [head, sep]
        for name, row in self.rows.items():
            cells = [("—" if not math.isfinite(row[c]) else f"{row[c]:.{digits}f}") if isinstance(row[c], float)
                     else str(row[c]) for c in self.columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self):
        return self.to_markdown()

    def __str__(self):
        return self.to_markdown()


def per_keypoint_table(pred, target, boxes, areas=None, threshold=0.05, skeleton=COCO17):
    """Per-keypoint error table: count, mean pixel error, error in % of box size, PCK, mean OKS term.

    Args:
        pred: ``(N, J, 2)`` predicted keypoints (pixels).
        target: ``(N, J, 3)`` ground truth ``x, y, v`` (pixels; ``v > 0`` scored).
        boxes: ``(N, 4)`` COCO ``[x, y, w, h]``; PCK reference is ``max(w, h)``.
        areas: ``(N,)`` object areas for the OKS term (default ``w * h``).
        threshold: PCK threshold as a fraction of the box size.
        skeleton: joint names and (for COCO) the OKS sigmas.

    Returns:
        :class:`KeypointTable` with columns ``n``, ``err_px``, ``err_%box``,
        ``PCK@{threshold}``, ``OKS`` (mean per-keypoint similarity
        ``exp(-d^2 / (2 area (2 sigma)^2))``), and a final ``mean`` row.
    """
    from pose_lab.metrics import box_size, pck_2d
    from pose_lab.skeletons import COCO_OKS_SIGMAS

    p = np.asarray(pred, dtype=np.float64)[..., :2]
    t = np.asarray(target, dtype=np.float64)
    if t.ndim != 3 or t.shape[-1] != 3 or p.shape != t.shape[:-1] + (2,):
        raise ValueError(f"pred must be (N, J, 2) and target (N, J, 3) with x, y, v; got {p.shape} and {t.shape}")
    b = np.asarray(boxes, dtype=np.float64)
    ref = box_size(b)
    area = b[:, 2] * b[:, 3] if areas is None else np.asarray(areas, dtype=np.float64)
    vis = t[..., 2] > 0
    err = np.linalg.norm(p - t[..., :2], axis=-1)
    pck = pck_2d(p, t, ref, threshold=threshold, reduction="per_joint")
    names = list(skeleton.joint_names)
    sig = COCO_OKS_SIGMAS if len(names) == len(COCO_OKS_SIGMAS) else None
    pck_col = f"PCK@{threshold:g}"
    columns = ["n", "err_px", "err_%box", pck_col] + (["OKS"] if sig is not None else [])
    rows = OrderedDict()
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = err / ref[:, None] * 100.0
        oks_terms = None if sig is None else np.exp(-err**2 / (2.0 * np.maximum(area, 1e-9)[:, None] * (2 * sig) ** 2))
        for j, name in enumerate(names):
            m = vis[:, j]
            row = OrderedDict(n=int(m.sum()), err_px=float(err[m, j].mean()) if m.any() else float("nan"),
                              **{"err_%box": float(rel[m, j].mean()) if m.any() else float("nan")})
            row[pck_col] = float(pck[j])
            if oks_terms is not None:
                row["OKS"] = float(oks_terms[m, j].mean()) if m.any() else float("nan")
            rows[name] = row
        mean = OrderedDict(n=int(vis.sum()), err_px=float(err[vis].mean()) if vis.any() else float("nan"),
                           **{"err_%box": float(rel[vis].mean()) if vis.any() else float("nan")})
        mean[pck_col] = float(pck_2d(p, t, ref, threshold=threshold))
        if oks_terms is not None:
            mean["OKS"] = float(oks_terms[vis].mean()) if vis.any() else float("nan")
        rows["mean"] = mean
    return KeypointTable(rows, columns)


# ---------------------------------------------------------------------------
# evaluation on a COCO keypoints file
# ---------------------------------------------------------------------------
class KeypointEvaluation:
    """What :func:`evaluate_keypoints` measured.

    Attributes:
        coco: ``OrderedDict`` of the ten COCO keypoint stats (``AP``, ``AP50``, ...).
        pck: PCK@``threshold`` of the box size (``max(w, h)``), over labelled keypoints.
        table: :class:`KeypointTable` per keypoint.
        results: the COCO results list that was scored.
        keypoints: ``(N, 17, 2)`` predictions in image pixels; ``scores`` ``(N, 17)``;
        records: the evaluated :class:`pose_lab.data.coco.PersonRecord` list (same order).
    """

    def __init__(self, coco, pck, table, results, keypoints, scores, records, threshold):
        self.coco, self.pck, self.table, self.results = coco, pck, table, results
        self.keypoints, self.scores, self.records, self.threshold = keypoints, scores, records, threshold

    @property
    def ap(self):
        return self.coco["AP"]

    def summary(self):
        c = self.coco
        return (f"OKS AP {c['AP']:.3f} (AP50 {c['AP50']:.3f}, AP75 {c['AP75']:.3f}, AR {c['AR']:.3f}) | "
                f"PCK@{self.threshold:g} {self.pck:.3f} | {len(self.records)} persons")

    def __repr__(self):
        return f"KeypointEvaluation({self.summary()})"


def evaluate_keypoints(model, annotations, image_dir=None, records=None, flip_test=True, batch_size=64,
                       scale_factor=1.25, threshold=0.05, min_keypoints=1, flip_permutation=None,
                       decode="quarter"):
    """Top-down evaluation with ground-truth boxes on a COCO keypoints file.

    Every person with at least ``min_keypoints`` labelled keypoints is cropped by
    its box (:func:`pose_lab.data.pipelines.person_crop_dataset`, the training
    crop), its keypoints are predicted (:func:`predict_keypoints`) and mapped back
    to the image; the predictions are scored with OKS AP
    (:func:`pose_lab.metrics.coco_keypoint_ap`, pycocotools), PCK@``threshold``
    of the box size and a per-keypoint table. Ground-truth boxes make this the
    "GT box" setting of SimpleBaseline's tables (no person detector).

    Args:
        model: heatmap or regression network (or :class:`KeypointTrainer`).
        annotations: path of ``person_keypoints_*.json`` or the loaded dict.
        image_dir: the images' folder (required unless ``records`` carry paths).
        records: optional pre-loaded records (:func:`pose_lab.data.coco.load_coco_keypoints`).
        flip_test, flip_permutation, batch_size, decode: as :func:`predict_keypoints`.
        scale_factor: box enlargement of the crops (as in training).
        threshold: PCK threshold (fraction of the box size).
        min_keypoints: persons with fewer labelled keypoints are not predicted
            (COCO ignores them in the AP as well).

    Returns:
        :class:`KeypointEvaluation`.
    """
    from pose_lab.data.coco import load_coco_keypoints
    from pose_lab.data.pipelines import person_crop_dataset, transform_back
    from pose_lab.metrics import box_size, coco_keypoint_ap, pck_2d

    gt = _load_annotations(annotations)
    if records is None:
        records = load_coco_keypoints(gt, image_dir, min_keypoints=min_keypoints)
    records = [r for r in records if r.num_keypoints >= max(min_keypoints, 1)]
    if not records:
        raise ValueError("evaluate_keypoints: no person with labelled keypoints to evaluate")
    in_h, in_w = model.input_shape[1:3]
    ds = person_crop_dataset(records, input_size=(in_h, in_w), output="coordinates", batch_size=batch_size,
                             scale_factor=scale_factor, with_meta=True)
    kps, scores = [], []
    for images, _, meta in ds:
        kp, sc = predict_keypoints(model, images.numpy(), flip_test=flip_test, flip_permutation=flip_permutation,
                                   batch_size=batch_size, decode=decode)
        kps.append(transform_back(kp, meta["transform"].numpy()))
        scores.append(sc)
    kp_img = np.concatenate(kps).astype(np.float32)
    scores = np.concatenate(scores)
    image_ids = np.array([r.image_id for r in records])
    results = to_coco_results(image_ids, kp_img, keypoint_scores=scores, annotations=gt)
    coco = coco_keypoint_ap(gt, results)
    target = np.stack([r.keypoints for r in records])
    boxes = np.stack([r.bbox for r in records])
    areas = np.array([r.area for r in records])
    pck = pck_2d(kp_img, target, box_size(boxes), threshold=threshold)
    table = per_keypoint_table(kp_img, target, boxes, areas=areas, threshold=threshold)
    return KeypointEvaluation(coco, pck, table, results, kp_img, scores, records, threshold)
