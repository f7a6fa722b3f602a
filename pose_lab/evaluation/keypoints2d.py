"""Evaluation of top-down 2D keypoint models: prediction, flip test, COCO results, OKS AP and PCK.

The recipe data -> trained model -> metrics of notebook 02: the network comes
from :mod:`pose_lab.models.keypoints2d`, trained with
:mod:`pose_lab.training.keypoints2d`; the crops from
:func:`pose_lab.data.pipelines.person_crop_dataset`.

Prediction
    :func:`predict_keypoints` decodes heatmaps with :func:`pose_lab.heatmaps.decode_heatmaps`
    (argmax + quarter-pixel shift, or DARK), optionally with the flip test, and
    returns crop-pixel keypoints; :func:`pose_lab.data.pipelines.transform_back`
    maps them back to the image through the crop's affine transform. Images are
    checked by :func:`pose_lab.validation.check_images` and run through
    :func:`pose_lab.training.base.batched_predict`.

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
    size, a per-keypoint :class:`~pose_lab.metrics.tables.ResultTable`).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from pose_lab import runtime
from pose_lab.data.coco import load_coco_keypoints
from pose_lab.data.pipelines import person_crop_dataset, transform_back
from pose_lab.heatmaps import decode_heatmaps
from pose_lab.metrics.coco import coco_keypoint_ap
from pose_lab.metrics.pose2d import assign_sides_from_truth, box_size, left_right_swaps, pck_2d
from pose_lab.metrics.tables import ResultTable
from pose_lab.skeletons import COCO17, COCO_OKS_SIGMAS
from pose_lab.training.base import batched_predict
from pose_lab.validation import check_images

__all__ = [
    "predict_heatmaps",
    "predict_keypoints",
    "predict_on_boxes",
    "flip_test_heatmaps",
    "instance_scores",
    "to_coco_results",
    "per_keypoint_table",
    "KeypointEvaluation",
    "evaluate_keypoints",
]


# ---------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------
def _flip_permutation(flip_permutation, num_joints):
    perm = COCO17.flip_permutation if flip_permutation is None else np.asarray(flip_permutation, dtype=int)
    if perm.shape != (num_joints,) or sorted(perm.tolist()) != list(range(num_joints)):
        raise ValueError(
            f"flip_permutation must be a permutation of range({num_joints}) (one entry per joint), got {perm.tolist()}"
        )
    return perm


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
    imgs = check_images(images, "images", shape=model.input_shape[1:])
    return np.asarray(batched_predict(model, imgs, batch_size, compiled=True), np.float32)


def predict_keypoints(model, images, flip_test=True, flip_permutation=None, batch_size=64, decode="quarter"):
    """Keypoints in crop pixels from a heatmap model or a coordinate regressor.

    Args:
        model: a network from :mod:`pose_lab.models.keypoints2d` or a
            :class:`~pose_lab.training.keypoints2d.KeypointTrainer`.
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
    imgs = check_images(images, "images", shape=model.input_shape[1:])
    out = np.asarray(batched_predict(model, imgs, batch_size, compiled=True), np.float32)
    width = imgs.shape[2]
    if out.ndim == 3:  # coordinate regressor
        if flip_test:
            perm = _flip_permutation(flip_permutation, out.shape[1])
            flipped = batched_predict(model, imgs[:, :, ::-1], batch_size, compiled=True)
            fl = np.asarray(flipped, np.float32)[:, perm]
            fl[..., 0] = (width - 1) - fl[..., 0]
            out = 0.5 * (out + fl)
        return out.astype(np.float32), np.ones(out.shape[:2], dtype=np.float32)
    stride = width / out.shape[2]
    offset = 0.0
    if flip_test:
        flipped = batched_predict(model, imgs[:, :, ::-1], batch_size, compiled=True)
        out, offset = flip_test_heatmaps(out, flipped, stride, flip_permutation)
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
        path: if given, the list is also written there as JSON (atomically:
            a temporary file in the same folder, then a rename; an error
            leaves the previous file as it was).
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
        _write_json_atomic(Path(path), results)
    return results


def _write_json_atomic(path: Path, obj) -> None:
    """JSON to a temporary file beside ``path``, then ``os.replace``: the previous file stays whole on failure."""
    runtime.atomic_write(path, lambda fh: json.dump(obj, fh))


# ---------------------------------------------------------------------------
# per-keypoint table
# ---------------------------------------------------------------------------
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
        :class:`~pose_lab.metrics.tables.ResultTable`, one row per joint
        (``table["left_wrist"]["OKS"]``), columns ``n``, ``err_px``,
        ``err_%box``, ``PCK@{threshold}``, ``OKS`` (mean per-keypoint
        similarity ``exp(-d^2 / (2 area (2 sigma)^2))``), and a final ``mean``
        row over all labelled keypoints (pooled, not the mean of the rows).
    """
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
    return ResultTable(rows, columns, row_label="keypoint", average_row="mean", digits=2)


# ---------------------------------------------------------------------------
# evaluation on a COCO keypoints file
# ---------------------------------------------------------------------------
class KeypointEvaluation:
    """What :func:`evaluate_keypoints` measured.

    Attributes:
        coco: ``OrderedDict`` of the ten COCO keypoint stats (``AP``, ``AP50``, ...).
        pck: PCK@``threshold`` of the box size (``max(w, h)``), over labelled keypoints.
        table: :class:`~pose_lab.metrics.tables.ResultTable` per keypoint (:func:`per_keypoint_table`).
        results: the COCO results list that was scored.
        keypoints: ``(N, 17, 2)`` predictions in image pixels; ``scores`` ``(N, 17)``;
        records: the evaluated :class:`pose_lab.data.coco.PersonRecord` list (same order).
    """

    def __init__(self, coco, pck, table, results, keypoints, scores, records, threshold, annotations=None):
        self.coco, self.pck, self.table, self.results = coco, pck, table, results
        self.keypoints, self.scores, self.records, self.threshold = keypoints, scores, records, threshold
        self.annotations = annotations

    @property
    def ap(self):
        return self.coco["AP"]

    @property
    def swaps(self):
        """Left/right swaps among the limb keypoints (:func:`pose_lab.metrics.left_right_swaps`)."""
        target, boxes = self._truth()
        return left_right_swaps(self.keypoints, target, box_size(boxes), threshold=self.threshold)

    def _truth(self):
        """Ground-truth keypoints ``(N, 17, 3)`` and boxes ``(N, 4)`` of the evaluated persons."""
        return np.stack([r.keypoints for r in self.records]), np.stack([r.bbox for r in self.records])

    def with_sides_from_truth(self):
        """OKS AP and PCK if an oracle named the left and right sides.

        Each left/right pair's two predictions are given to the sides that fit
        the ground truth best (:func:`pose_lab.metrics.assign_sides_from_truth`),
        with the same scores, and scored again: the gap to :attr:`ap` is what
        naming the sides costs; what remains is finding the limbs.

        Returns:
            dict with ``AP`` and ``PCK``.
        """
        if self.annotations is None:
            raise ValueError("with_sides_from_truth needs the ground-truth annotations (evaluate_keypoints keeps them)")
        target, boxes = self._truth()
        fixed = assign_sides_from_truth(self.keypoints, target)
        image_ids = np.array([r.image_id for r in self.records])
        results = to_coco_results(image_ids, fixed, keypoint_scores=self.scores, annotations=self.annotations)
        return {"AP": coco_keypoint_ap(self.annotations, results)["AP"],
                "PCK": pck_2d(fixed, target, box_size(boxes), threshold=self.threshold)}

    def summary(self):
        c, sw = self.coco, self.swaps
        return (f"OKS AP {c['AP']:.3f} (AP50 {c['AP50']:.3f}, AP75 {c['AP75']:.3f}, AR {c['AR']:.3f}) | "
                f"PCK@{self.threshold:g} {self.pck:.3f} | L/R swaps {sw['swap_rate']:.1%} of limb keypoints "
                f"(exchanged {sw['exchange_rate']:.1%}, one limb twice {sw['double_rate']:.1%}) | "
                f"{len(self.records)} persons")

    def __repr__(self):
        return f"KeypointEvaluation({self.summary()})"


def predict_on_boxes(model, source, boxes=None, *, flip_test=True, flip_permutation=None, batch_size=64,
                     scale_factor=1.25, decode="quarter"):
    """Top-down keypoints in **image** pixels for persons given by their boxes.

    Each box is enlarged by ``scale_factor``, cut out at the model's input size
    with the training crop (:func:`pose_lab.data.pipelines.person_crop_dataset`),
    predicted (:func:`predict_keypoints`) and mapped back to the image.

    Args:
        model: heatmap or regression network (or a trainer), as :func:`predict_keypoints`.
        source: a list of :class:`pose_lab.data.coco.PersonRecord` (their ``bbox``
            and ``image_path``), or image paths ``(N,)`` (one per box, repeated
            for several people in one image) together with ``boxes``.
        boxes: ``(N, 4)`` COCO ``[x, y, w, h]`` boxes in image pixels, e.g. a
            person detector's (only with image paths).
        flip_test, flip_permutation, batch_size, decode: as :func:`predict_keypoints`.
        scale_factor: box enlargement of the crops (as in training).

    Returns:
        ``(keypoints, scores)``: ``(N, 17, 2)`` float32 in image pixels (pixel
        centres at integers) and ``(N, 17)`` peak values.
    """
    if boxes is None:
        recs = list(source)
        if not recs or not all(hasattr(r, "bbox") for r in recs):
            raise ValueError("source: expected a non-empty list of PersonRecord, or image paths with boxes=")
        data = recs
    else:
        paths = np.asarray(source, dtype=str).reshape(-1)
        b = np.asarray(boxes, np.float32)
        if b.ndim != 2 or b.shape[1] != 4 or len(b) != len(paths) or len(b) == 0:
            raise ValueError(f"boxes: expected shape (N, 4) [x, y, w, h] with N = {len(paths)} (one per image "
                             f"path) and N >= 1, got {b.shape}")
        if not np.all(np.isfinite(b)) or np.any(b[:, 2:] <= 0):
            raise ValueError("boxes: expected finite [x, y, w, h] with w > 0 and h > 0")
        n_kp = len(COCO17.joint_names)
        data = {"image_paths": paths, "boxes": b, "keypoints": np.zeros((len(b), n_kp, 3), np.float32)}
    in_h, in_w = model.input_shape[1:3]
    ds = person_crop_dataset(data, input_size=(in_h, in_w), output="coordinates", batch_size=batch_size,
                             scale_factor=scale_factor, with_meta=True)
    kps, scores = [], []
    for images, _, meta in ds:
        kp, sc = predict_keypoints(model, images.numpy(), flip_test=flip_test, flip_permutation=flip_permutation,
                                   batch_size=batch_size, decode=decode)
        kps.append(transform_back(kp, meta["transform"].numpy()))
        scores.append(sc)
    return np.concatenate(kps).astype(np.float32), np.concatenate(scores)


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
        model: heatmap or regression network (or a
            :class:`~pose_lab.training.keypoints2d.KeypointTrainer`).
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
    gt = _load_annotations(annotations)
    if records is None:
        records = load_coco_keypoints(gt, image_dir, min_keypoints=min_keypoints)
    records = [r for r in records if r.num_keypoints >= max(min_keypoints, 1)]
    if not records:
        raise ValueError("evaluate_keypoints: no person with labelled keypoints to evaluate")
    kp_img, scores = predict_on_boxes(model, records, flip_test=flip_test, flip_permutation=flip_permutation,
                                      batch_size=batch_size, scale_factor=scale_factor, decode=decode)
    image_ids = np.array([r.image_id for r in records])
    results = to_coco_results(image_ids, kp_img, keypoint_scores=scores, annotations=gt)
    coco = coco_keypoint_ap(gt, results)
    target = np.stack([r.keypoints for r in records])
    boxes = np.stack([r.bbox for r in records])
    areas = np.array([r.area for r in records])
    pck = pck_2d(kp_img, target, box_size(boxes), threshold=threshold)
    table = per_keypoint_table(kp_img, target, boxes, areas=areas, threshold=threshold)
    return KeypointEvaluation(coco, pck, table, results, kp_img, scores, records, threshold, annotations=gt)
