"""How much pose a frozen encoder knows: probes, clustering and embeddings (seed 000's evaluation).

Seed 000 judged its SimCLR / SimSiam encoders by (1) silhouette scores of
K-means clusterings of the encoder, projector and predictor features, (2) 2D
keypoint regression from the frozen features with 1-, 2- and 3-layer heads
(train / validation / test tables) and (3) pictures of the encoding space.
This module does the same on the kit's data, for any encoder:

* :func:`probe_data`: fixed person crops with keypoints from
  :class:`~pose_lab.data.synthetic.PersonCropStream` (no augmentation): the
  training split from subjects S1-S8, validation and test from S9/S11, each
  from its own seed (and, on request, action labels for the pictures);
* :func:`encoder_features`: frozen features of a split (batched inference);
* :func:`fit_probe` / :func:`probe_scores`: a Dense probe (1, 2 or 3 layers)
  regressing the 17 COCO keypoints (crop coordinates divided by the crop size)
  with a visibility-masked L1 loss; scored by PCK@0.05 and the mean error, both
  relative to the person box (:data:`BOX_FRACTION` of the crop height: the
  stream cuts a box enlarged by 1.25 and padded to the crop's aspect);
* :func:`probe_table`: probes of several encoders on the same data, one row
  per (encoder, probe depth), the three splits as columns;
* :func:`cluster_scores`: K-means (scikit-learn, ``random_state`` as the seed's
  3 or 6) and the silhouette score of that clustering.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from pose_lab.data.coco import load_coco_keypoints, load_image
from pose_lab.data.h36m import TEST_SUBJECTS, TRAIN_SUBJECTS
from pose_lab.data.pipelines import crop_image, crop_transform, transform_points
from pose_lab.data.synthetic import PersonCropStream
from pose_lab.losses import weighted_coordinate_l1
from pose_lab.metrics.pose2d import pck_2d
from pose_lab.metrics.tables import ResultTable
from pose_lab.models.contrastive import keypoint_probe
from pose_lab.training.base import batched_predict

__all__ = [
    "BOX_FRACTION",
    "probe_data",
    "encoder_features",
    "fit_probe",
    "probe_scores",
    "probe_table",
    "cluster_scores",
    "SPLIT_SEEDS",
    "coco_probe_data",
    "spatial_encoder",
    "median_pose",
]

#: The person box's height as a fraction of the crop height (the stream's ``scale_factor`` 1.25).
BOX_FRACTION = 1.0 / 1.25

#: Seeds of the three probe splits (fixed: every encoder is probed on the same crops).
SPLIT_SEEDS = {"train": 1001, "val": 1002, "test": 1003}


def _to_uint8(images):
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def probe_data(split, n, *, input_size=(128, 96), batch_size=64, actions=None, seed=None):
    """Person crops with keypoints for probing: ``split`` in ``"train"`` (S1-S8), ``"val"``, ``"test"`` (S9/S11).

    Returns:
        dict with ``images`` (n, H, W, 3) uint8, ``keypoints``
        (n, 17, 3) crop pixels ``x, y, v``, ``ref_size`` (n,) the box size in
        pixels and, with ``actions``, ``actions`` (n,) str.
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split: expected one of {sorted(SPLIT_SEEDS)}, got {split!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive number of crops, got {n}")
    stream = PersonCropStream(batch_size, math.ceil(n / batch_size), SPLIT_SEEDS[split] if seed is None else seed,
                              input_size=input_size, augment=False, actions=actions,
                              subjects=TRAIN_SUBJECTS if split == "train" else TEST_SUBJECTS)
    parts = [stream.batch(i, heatmaps=False) for i in range(len(stream))]
    # uint8 keeps 10,000 crops of 128x96 at 370 MB (the renderer's pixels are 8-bit anyway)
    out = {"images": np.concatenate([_to_uint8(p["images"]) for p in parts])[:n],
           "keypoints": np.concatenate([p["keypoints"] for p in parts])[:n]}
    out["ref_size"] = np.full(n, BOX_FRACTION * input_size[0], np.float32)
    if actions:
        out["actions"] = np.concatenate([p["actions"] for p in parts])[:n]
    return out


def coco_probe_data(annotation_json, image_dir, *, input_size=(128, 96), min_keypoints=1):
    """Real person crops for the same probes: every COCO person with keypoints, cut as the stream cuts.

    Each box is widened to the crop's aspect and enlarged by 1.25 (SimpleBaseline's
    crop, as :class:`~pose_lab.data.synthetic.PersonCropStream`), so ``ref_size`` has
    the same meaning as in :func:`probe_data`.

    Returns:
        dict with ``images`` (n, H, W, 3) uint8, ``keypoints`` (n, 17, 3) crop
        pixels, ``ref_size`` (n,), ``image_ids`` (n,).
    """
    records = load_coco_keypoints(annotation_json, image_dir, min_keypoints=min_keypoints)
    if not records:
        raise ValueError(f"{annotation_json}: no person with >= {min_keypoints} labelled keypoints")
    images, kps, ids = [], [], []
    for r in records:
        A = crop_transform(np.asarray(r.bbox, np.float64), input_size, 1.25)
        images.append(_to_uint8(crop_image(load_image(r), A, input_size)))
        k = np.asarray(r.keypoints, np.float32).copy()
        k[:, :2] = transform_points(k[:, :2], A)
        kps.append(k)
        ids.append(r.image_id)
    n = len(images)
    return {"images": np.stack(images), "keypoints": np.stack(kps),
            "ref_size": np.full(n, BOX_FRACTION * input_size[0], np.float32), "image_ids": np.asarray(ids)}


def spatial_encoder(encoder):
    """The encoder without its global pooling: images -> the flattened last feature map ``(B, h*w*C)``.

    For encoders of :func:`pose_lab.models.contrastive.build_encoder` (a layer named
    ``"pool"``). The pooled vector says *what* is in the crop; the map before
    pooling also says *where*, which is what keypoints are.
    """
    try:
        pool = encoder.get_layer("pool")
    except ValueError:
        raise ValueError(f"spatial_encoder: {encoder.name!r} has no layer named 'pool' "
                         "(build it with pose_lab.models.contrastive.build_encoder)") from None
    return keras.Model(encoder.input, keras.layers.Flatten()(pool.input), name=f"{encoder.name}_spatial")


def encoder_features(encoder, images, batch_size=256, *, spatial=False):
    """``encoder``'s features of ``images`` as a NumPy array ``(N, C)`` (inference mode).

    ``spatial=True`` reads the last feature map before pooling, flattened (:func:`spatial_encoder`).
    """
    model = spatial_encoder(encoder) if spatial else encoder
    out = [np.asarray(batched_predict(model, np.asarray(images[i:i + 1024], np.float32), batch_size=batch_size),
                      np.float32) for i in range(0, len(images), 1024)]
    return np.concatenate(out)


def _crop_scale(input_size):
    """Crop units -> crop pixels for ``x, y`` (the probes predict ``x / W``, ``y / H``)."""
    return np.array([input_size[1], input_size[0]], np.float32)


def _targets(keypoints, input_size):
    k = np.asarray(keypoints, np.float32)
    return np.concatenate([k[..., :2] / _crop_scale(input_size), (k[..., 2:3] > 0).astype(np.float32)], axis=-1)


def median_pose(keypoints, input_size=(128, 96)):
    """Per keypoint and coordinate, the median of the labelled keypoints, in crop units ``(17, 2)``.

    The best constant prediction under the probes' L1 loss: what a probe that
    learned nothing from its features predicts (and where :func:`fit_probe` starts).
    """
    y = _targets(keypoints, input_size)
    out = np.empty(y.shape[1:2] + (2,), np.float32)
    for j in range(y.shape[1]):
        vis = y[:, j, 2] > 0
        out[j] = np.median(y[vis, j, :2], axis=0) if vis.any() else 0.5
    return out


def fit_probe(features, keypoints, *, num_layers=1, input_size=(128, 96), hidden=256, epochs=200, batch_size=256,
              learning_rate=1e-3, validation=None, patience=15, seed=0, verbose=0):
    """Train a Dense probe from frozen features to the 17 keypoints.

    The probe starts at the constant solution (its last layer's kernel is zero
    and its bias the training set's :func:`median_pose`), so it begins at the
    median-pose error and can only go down from there on the training data; with
    ``validation`` it stops when the validation loss has not improved for
    ``patience`` epochs and keeps the best epoch's weights (the test split is
    never looked at).

    Args:
        features: ``(N, C)`` frozen features (standardised inside the probe).
        keypoints: ``(N, 17, 3)`` crop pixels ``x, y, v``; keypoints with ``v = 0``
            carry no loss.
        num_layers: 1 (linear), 2 or 3 Dense layers (seed 000's three heads).
        input_size: the crop ``(H, W)`` the keypoints live in.
        hidden, epochs, batch_size, learning_rate: the probe's training (Adam);
            ``epochs`` is the most it trains.
        validation: optional ``(features, keypoints)``: early stopping on it.
        patience: epochs without a better validation loss before stopping.

    Returns:
        ``(probe, history)``; the probe maps features to keypoints in crop pixels.
    """
    feats = np.asarray(features, np.float32)
    if feats.ndim != 2 or len(feats) != len(keypoints):
        raise ValueError(f"features: expected (N, C) with N = {len(keypoints)} (one per crop), got {feats.shape}")
    keras.utils.set_random_seed(seed)
    probe = keypoint_probe(feats.shape[1], num_layers=num_layers, hidden=hidden, input_size=input_size)
    probe.layers[1].adapt(feats)
    last = probe.get_layer("keypoints")
    last.kernel.assign(np.zeros(tuple(last.kernel.shape), np.float32))
    last.bias.assign(median_pose(keypoints, input_size).reshape(-1))
    probe.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=_probe_loss)
    val, callbacks = None, []
    if validation is not None:
        val = (np.asarray(validation[0], np.float32), _targets(validation[1], input_size))
        callbacks = [keras.callbacks.EarlyStopping("val_loss", patience=int(patience), restore_best_weights=True)]
    hist = probe.fit(feats, _targets(keypoints, input_size), epochs=epochs, batch_size=batch_size,
                     validation_data=val, callbacks=callbacks, verbose=verbose)
    return probe, hist


def _probe_loss(y_true, y_pred):
    return weighted_coordinate_l1(y_true[..., :2], y_pred, y_true[..., 2])


def _pose_scores(pred, keypoints, ref_size):
    k = np.asarray(keypoints, np.float32)
    vis = k[..., 2] > 0
    err = np.linalg.norm(pred - k[..., :2], axis=-1) / np.asarray(ref_size, np.float32)[:, None]
    return {"PCK@0.05": float(pck_2d(pred, k, ref_size, 0.05)), "error % box": float(100 * err[vis].mean())}


def probe_scores(probe, features, keypoints, ref_size, *, input_size=(128, 96)):
    """PCK@0.05 and mean error (% of the box) of a probe on one split."""
    pred = np.asarray(probe.predict(np.asarray(features, np.float32), verbose=0, batch_size=1024))
    return _pose_scores(pred * _crop_scale(input_size), keypoints, ref_size)


def _table_row(split_scores):
    return {f"{sp} {short}": split_scores[sp][m] for sp in ("train", "val", "test")
            for m, short in (("PCK@0.05", "PCK"), ("error % box", "err %"))}


def probe_table(features, splits, *, layers=(1, 2, 3), input_size=(128, 96), epochs=200, title=None,
                return_probes=False, **probe_kwargs):
    """Probes of several encoders on the same crops, seed 000's tables in one.

    Every probe stops early on the ``"val"`` split (:func:`fit_probe`), so its val
    column is slightly optimistic; ``"test"`` is the number to compare. The first
    row, ``"median pose"``, predicts the training split's :func:`median_pose`
    for every crop: the error of a probe that learned nothing from its features.

    Args:
        features: ``{encoder name: {split: (N, C) features}}`` for ``"train"``,
            ``"val"``, ``"test"``.
        splits: ``{split: probe_data(...)}`` (keypoints and ``ref_size``).
        layers: probe depths.

    Returns:
        ``(table, scores)``: a :class:`~pose_lab.metrics.ResultTable` (rows
        ``"<encoder>, <k>-layer"``; columns PCK@0.05 and error of each split)
        and ``{(encoder, k): {split: {"PCK@0.05", "error % box"}}}`` (the
        constant row under ``("median pose", 0)``); with ``return_probes=True``
        also ``{(encoder, k): probe}``.
    """
    xy = median_pose(splits["train"]["keypoints"], input_size) * _crop_scale(input_size)
    s = {split: _pose_scores(np.broadcast_to(xy, (len(splits[split]["keypoints"]),) + xy.shape),
                             splits[split]["keypoints"], splits[split]["ref_size"]) for split in ("train", "val", "test")}
    scores = {("median pose", 0): s}
    rows = {"median pose (no features)": _table_row(s)}
    probes = {}
    for name, feats in features.items():
        for k in layers:
            probe, _ = fit_probe(feats["train"], splits["train"]["keypoints"], num_layers=k, input_size=input_size,
                                 epochs=epochs, validation=(feats["val"], splits["val"]["keypoints"]),
                                 **probe_kwargs)
            s = {split: probe_scores(probe, feats[split], splits[split]["keypoints"], splits[split]["ref_size"],
                                     input_size=input_size) for split in ("train", "val", "test")}
            scores[(name, k)] = s
            probes[(name, k)] = probe
            rows[f"{name}, {k}-layer"] = _table_row(s)
    table = ResultTable(rows, title=title or "keypoint probes on frozen features (PCK@0.05, error in % of the box)",
                        row_label="encoder, probe", digits=3)
    return (table, scores, probes) if return_probes else (table, scores)


def cluster_scores(features, n_clusters=8, random_state=3, *, sample_size=None):
    """K-means of ``features`` (scikit-learn) and the silhouette score of that clustering.

    Returns:
        ``{"silhouette": float in [-1, 1], "labels": (N,) cluster ids, "inertia": float}``.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) <= n_clusters:
        raise ValueError(f"features: expected (N, C) with N > n_clusters = {n_clusters}, got {x.shape}")
    km = KMeans(n_clusters=n_clusters, random_state=random_state, n_init=10).fit(x)
    sil = silhouette_score(x, km.labels_, sample_size=sample_size, random_state=random_state)
    return {"silhouette": float(sil), "labels": km.labels_, "inertia": float(km.inertia_)}
