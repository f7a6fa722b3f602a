"""Evaluation of Keypoint R-CNN: detections -> COCO results -> box AP and keypoint (OKS) AP.

The recipe data -> trained detector -> metrics of the Keypoint R-CNN notebook:
the model comes from :mod:`pose_lab.models.keypoint_rcnn` (trained with
:mod:`pose_lab.training.keypoint_rcnn`), the images from
:func:`pose_lab.data.keypoint_rcnn.load_detection_split`, the metrics from
:func:`pose_lab.metrics.coco.coco_box_ap` and
:func:`pose_lab.metrics.coco.coco_keypoint_ap` (pycocotools).

Detector outputs
    A model (or any callable) maps images ``(B, H, W, 3)`` float32 in
    ``[0, 255]`` to a dict: ``boxes`` (B, D, 4) ``(x1, y1, x2, y2)``, ``scores``
    (B, D), ``keypoints`` (B, D, 17, 2), ``keypoint_scores`` (B, D, 17)
    (softmax probabilities), ``num_detections`` (B,); rows at or beyond
    ``num_detections`` are padding and are dropped.

Coordinates
    Detector outputs are in its continuous frame (pixel ``[r, c]`` covers
    ``[c, c + 1)``) of the letterboxed image; COCO results are in the original
    image in the kit's frame (pixel centres at integers). :func:`detections_to_coco`
    first undoes the letterbox (``x = (x_lb - offset_x) / scale_x``), then
    subtracts 0.5 from keypoint ``x, y`` (as Detectron2 does when it writes
    COCO results) and writes boxes as ``[x1, y1, x2 - x1, y2 - y1]`` without a
    shift (a COCO box's ``x`` is the left edge of its first pixel column; see
    :mod:`pose_lab.data.keypoint_rcnn`). A ground-truth round trip through
    both conversions scores box AP = keypoint AP = 1.0 (``tests/test_keypoint_rcnn_data.py``).

Scores
    A box result's score is the detector's box score. A keypoint result's score
    is, by default, the box score as well (Mask R-CNN / Detectron2 / torchvision
    do this); ``keypoint_score="box_x_keypoints"`` multiplies it by the mean
    keypoint probability (a person whose keypoints the head is unsure about ranks
    lower, which can help OKS AP). The third value of each keypoint is its
    probability (pycocotools ignores it; the COCO results format calls it a score).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from pose_lab import runtime
from pose_lab.data.coco import load_coco_keypoints
from pose_lab.data.keypoint_rcnn import PIXEL_OFFSET, load_detection_split
from pose_lab.evaluation.keypoints2d import instance_scores, predict_on_boxes, to_coco_results
from pose_lab.metrics.coco import coco_box_ap, coco_keypoint_ap

__all__ = ["OUTPUT_KEYS", "detections_to_coco", "evaluate_keypoint_rcnn", "predict_detections",
           "top_down_on_detections", "compare_with_top_down"]

#: The keys of the detector's inference output dict.
OUTPUT_KEYS = ("boxes", "scores", "keypoints", "keypoint_scores", "num_detections")
NUM_KEYPOINTS = 17


def _to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(keras.ops.convert_to_numpy(x))


def _per_image(arr, n, name):
    """``None`` -> None; (2,) / scalar / (n,) / (n, 2) -> (n, 2) float64."""
    if arr is None:
        return None
    a = np.asarray(arr, np.float64)
    if a.ndim == 0 or a.shape == (2,):
        a = np.broadcast_to(a, (n, 2))
    elif a.shape == (n,):
        a = np.stack([a, a], -1)
    if a.shape != (n, 2):
        raise ValueError(f"{name}: expected shape ({n}, 2) (x, y per image), ({n},), (2,) or a scalar, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf")
    return a


def detections_to_coco(image_ids, outputs, scales=None, offsets=None, *, keypoint_score="box", category_id=1):
    """Detector outputs -> COCO box results and COCO keypoint results.

    Args:
        image_ids: ``(B,)`` COCO image id of each image.
        outputs: dict with ``boxes`` (B, D, 4), ``scores`` (B, D), ``keypoints``
            (B, D, 17, 2) (or (B, D, 17, 3), the third column ignored),
            ``keypoint_scores`` (B, D, 17), ``num_detections`` (B,), in the
            detector's continuous frame (of the letterboxed image when ``scales``
            / ``offsets`` are given). NumPy or backend tensors.
        scales: ``(B, 2)`` letterbox scales ``(sx, sy)`` (or ``(B,)``, ``(2,)``,
            a scalar), as :func:`pose_lab.data.keypoint_rcnn.load_detection_split`
            returns them; default 1.
        offsets: ``(B, 2)`` letterbox offsets ``(ox, oy)`` in pixels; default 0.
        keypoint_score: ``"box"`` (the keypoint result's score is the box score,
            as Mask R-CNN) or ``"box_x_keypoints"`` (times the mean keypoint probability).
        category_id: COCO category (1 = person).

    Returns:
        ``(box_results, keypoint_results)``: lists of
        ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` and
        ``{"image_id", "category_id", "keypoints": [x1, y1, p1, ...], "score"}``,
        in the original images in the kit's pixel frame, padding rows dropped.

    Raises:
        ValueError: a missing key, inconsistent shapes, non-finite values in a
            kept row, an unknown ``keypoint_score``.
    """
    if keypoint_score not in ("box", "box_x_keypoints"):
        raise ValueError(f"keypoint_score must be 'box' or 'box_x_keypoints', got {keypoint_score!r}")
    if not isinstance(outputs, dict):
        raise ValueError(f"outputs: expected a dict with keys {OUTPUT_KEYS}, got {type(outputs).__name__}")
    missing = [k for k in OUTPUT_KEYS if k not in outputs]
    if missing:
        raise ValueError(f"outputs: missing key(s) {missing}; expected {OUTPUT_KEYS}")
    boxes = _to_numpy(outputs["boxes"]).astype(np.float64)
    scores = _to_numpy(outputs["scores"]).astype(np.float64)
    kps = _to_numpy(outputs["keypoints"]).astype(np.float64)
    kscores = _to_numpy(outputs["keypoint_scores"]).astype(np.float64)
    num = _to_numpy(outputs["num_detections"])
    ids = np.asarray(image_ids).reshape(-1)
    B = ids.shape[0]
    if boxes.ndim != 3 or boxes.shape[0] != B or boxes.shape[2] != 4:
        raise ValueError(f"outputs['boxes']: expected shape ({B}, D, 4) for {B} image ids, got {boxes.shape}")
    D = boxes.shape[1]
    if kps.ndim == 4 and kps.shape[-1] == 3:
        kps = kps[..., :2]
    for name, arr, shape in (("scores", scores, (B, D)), ("keypoints", kps, (B, D, NUM_KEYPOINTS, 2)),
                             ("keypoint_scores", kscores, (B, D, NUM_KEYPOINTS)), ("num_detections", num, (B,))):
        if arr.shape != shape:
            raise ValueError(f"outputs[{name!r}]: expected shape {shape}, got {arr.shape}")
    if np.any(num < 0) or np.any(num != np.round(num)):
        raise ValueError(f"outputs['num_detections']: expected integers >= 0, got {num[:5].tolist()}...")
    num = np.minimum(num.astype(np.int64), D)
    sc = _per_image(scales, B, "scales")
    off = _per_image(offsets, B, "offsets")
    if sc is not None and np.any(sc <= 0):
        raise ValueError("scales: expected positive letterbox scales")
    box_results, kp_results = [], []
    for b in range(B):
        n = int(num[b])
        if n == 0:
            continue
        bx, s, kp, ks = boxes[b, :n], scores[b, :n], kps[b, :n], kscores[b, :n]
        for name, arr in (("boxes", bx), ("scores", s), ("keypoints", kp), ("keypoint_scores", ks)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"outputs[{name!r}]: non-finite value among the {n} detections of image "
                                 f"{b} (image_id {ids[b]})")
        if off is not None:
            bx = bx - np.tile(off[b], 2)
            kp = kp - off[b]
        if sc is not None:
            bx = bx / np.tile(sc[b], 2)
            kp = kp / sc[b]
        kp = kp - PIXEL_OFFSET
        kscore = s if keypoint_score == "box" else s * ks.mean(-1)
        image_id = int(ids[b])
        for j in range(n):
            x1, y1, x2, y2 = (float(v) for v in bx[j])
            box_results.append({"image_id": image_id, "category_id": int(category_id),
                                "bbox": [x1, y1, max(x2 - x1, 0.0), max(y2 - y1, 0.0)], "score": float(s[j])})
            flat = np.concatenate([kp[j], ks[j][:, None]], -1).reshape(-1)
            kp_results.append({"image_id": image_id, "category_id": int(category_id),
                               "keypoints": [float(v) for v in flat], "score": float(kscore[j])})
    return box_results, kp_results


def predict_detections(model, images, batch_size=8):
    """Run ``model`` on ``images`` ``batch_size`` at a time; the outputs as one dict of NumPy arrays.

    ``model`` is a Keras model / layer (called with ``training=False``) or any
    callable returning the dict of :data:`OUTPUT_KEYS`.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"images: expected (N, H, W, 3) with N >= 1, got {images.shape}")
    is_layer = isinstance(model, keras.layers.Layer)
    parts = []
    for start in range(0, len(images), int(batch_size)):
        chunk = images[start:start + int(batch_size)]
        out = model(chunk, training=False) if is_layer else model(chunk)
        if not isinstance(out, dict) or any(k not in out for k in OUTPUT_KEYS):
            got = sorted(out) if isinstance(out, dict) else type(out).__name__
            raise ValueError(f"model output: expected a dict with keys {OUTPUT_KEYS}, got {got}")
        parts.append({k: _to_numpy(out[k]) for k in OUTPUT_KEYS})
    return {k: np.concatenate([p[k] for p in parts]) for k in OUTPUT_KEYS}


def evaluate_keypoint_rcnn(model, annotation_file, image_dir, image_size=(256, 256), batch_size=8,
                           max_people=20, *, keypoint_score="box", results_dir=None, split=None):
    """Detect people in a COCO keypoints split and score them: box AP and keypoint (OKS) AP.

    Args:
        model: the detector (or any callable returning the documented dict).
        annotation_file: ``person_keypoints_*.json``.
        image_dir: the images' folder.
        image_size: ``(height, width)`` the images are letterboxed into (the
            model's input size).
        batch_size: images per model call.
        max_people: person slots of the loaded targets (the metrics use the
            annotation file itself, so this does not change them).
        keypoint_score: see :func:`detections_to_coco`.
        results_dir: if given, ``bbox_results.json`` and ``keypoint_results.json``
            are written there (atomically).
        split: an already loaded :func:`~pose_lab.data.keypoint_rcnn.load_detection_split`
            of this file (skips loading the images again).

    Returns:
        dict with ``box`` (OrderedDict, :func:`pose_lab.metrics.coco.coco_box_ap`),
        ``keypoints`` (OrderedDict, :func:`pose_lab.metrics.coco.coco_keypoint_ap`),
        ``box_results``, ``keypoint_results`` (the COCO results lists) and
        ``num_images``.
    """
    if split is None:
        split = load_detection_split(annotation_file, image_dir, image_size=image_size, max_people=max_people,
                                     warn=False)
    outputs = predict_detections(model, split["images"], batch_size=batch_size)
    box_res, kp_res = detections_to_coco(split["image_ids"], outputs, split["scales"], split["offsets"],
                                         keypoint_score=keypoint_score)
    if results_dir is not None:
        d = Path(results_dir)
        for name, obj in (("bbox_results.json", box_res), ("keypoint_results.json", kp_res)):
            runtime.atomic_write(d / name, lambda fh, obj=obj: json.dump(obj, fh))
    return {
        "box": coco_box_ap(annotation_file, box_res),
        "keypoints": coco_keypoint_ap(annotation_file, kp_res),
        "box_results": box_res,
        "keypoint_results": kp_res,
        "num_images": int(len(split["image_ids"])),
    }


def top_down_on_detections(pose_model, box_results, annotation_file, image_dir, *, min_score=0.0,
                           flip_test=True, batch_size=64):
    """A top-down pose model (notebook 02) on a detector's boxes -> COCO keypoint results.

    SimpleBaseline's detector-box protocol: every box (COCO ``[x, y, w, h]`` in
    the original image) is cropped and its keypoints predicted
    (:func:`pose_lab.evaluation.keypoints2d.predict_on_boxes`); the person score
    is the box score times the mean of the keypoint peaks above 0.2
    (:func:`pose_lab.evaluation.keypoints2d.instance_scores`).

    Args:
        pose_model: a top-down heatmap model (e.g. ``pretrained.load("pose2d-synthetic")``).
        box_results: COCO box results (``image_id``, ``bbox``, ``score``), e.g. the
            ``box_results`` of :func:`evaluate_keypoint_rcnn`.
        annotation_file: the split's ``person_keypoints_*.json`` (image file names).
        image_dir: the images' folder.
        min_score: boxes scored below it are skipped.
        flip_test, batch_size: as :func:`~pose_lab.evaluation.keypoints2d.predict_keypoints`.

    Returns:
        list of COCO keypoint results (empty if no box passes ``min_score``).
    """
    with open(annotation_file, "r", encoding="utf-8") as fh:
        files = {int(im["id"]): im["file_name"] for im in json.load(fh)["images"]}
    kept = [r for r in box_results if float(r["score"]) >= min_score and r["bbox"][2] > 0 and r["bbox"][3] > 0]
    if not kept:
        return []
    unknown = sorted({int(r["image_id"]) for r in kept} - set(files))
    if unknown:
        raise ValueError(f"box_results: image ids {unknown[:5]} are not images of {annotation_file}")
    paths = [os.path.join(str(image_dir), files[int(r["image_id"])]) for r in kept]
    boxes = np.array([r["bbox"] for r in kept], np.float32)
    kp, ks = predict_on_boxes(pose_model, paths, boxes, flip_test=flip_test, batch_size=batch_size)
    scores = instance_scores(ks, np.array([r["score"] for r in kept]))
    return to_coco_results([r["image_id"] for r in kept], kp, scores=scores, keypoint_scores=ks)


def _ground_truth_first(split):
    """Per image, the persons with >= 1 labelled keypoint moved to the first rows; their count."""
    lab = (split["valid"] > 0) & np.any(split["keypoints"][..., 2] > 0, axis=-1)
    order = np.argsort(~lab, axis=1, kind="stable")
    boxes = np.take_along_axis(split["boxes"], order[..., None], axis=1)
    return boxes, np.take_along_axis(lab, order, axis=1), lab.sum(1)


def compare_with_top_down(detector, pose_model, annotation_file, image_dir, image_size=(256, 256), *, split=None,
                          batch_size=8, flip_test=True):
    """The one-network vs top-down table: keypoint AP of both methods with the same boxes.

    Four rows, all scored with pycocotools on the same split:

    * ``top-down, ground-truth boxes``: the pose model on every labelled person's
      box (notebook 02's protocol, no detector);
    * ``Keypoint R-CNN head, ground-truth boxes``: this detector's keypoint head on
      the same boxes (:meth:`~pose_lab.training.keypoint_rcnn.KeypointRCNN.keypoints_for_boxes`;
      person score = mean keypoint probability);
    * ``top-down, Keypoint R-CNN boxes``: the pose model on the detector's boxes
      (:func:`top_down_on_detections`);
    * ``Keypoint R-CNN, end to end``: the detector's own boxes and keypoints.

    ``seconds`` is the wall time of each row's predictions on this machine
    (the detector's time is included in the third row; data loading and
    cropping are included for the top-down rows).

    Returns:
        dict ``row name -> {"AP", "AP50", "AP75", "AR", "persons", "seconds"}``
        plus ``"_results"``: the COCO keypoint results of each row.
    """
    if split is None:
        split = load_detection_split(annotation_file, image_dir, image_size=image_size, warn=False)
    rows, results = {}, {}

    def score(name, res, persons, seconds):
        ap = coco_keypoint_ap(annotation_file, res)
        rows[name] = {"AP": ap["AP"], "AP50": ap["AP50"], "AP75": ap["AP75"], "AR": ap["AR"],
                      "persons": int(persons), "seconds": float(seconds)}
        results[name] = res

    records = load_coco_keypoints(annotation_file, image_dir, skip_crowd=True, min_keypoints=1)
    t = time.perf_counter()
    kp, ks = predict_on_boxes(pose_model, records, flip_test=flip_test)
    res = to_coco_results([r.image_id for r in records], kp, keypoint_scores=ks)
    score("top-down, ground-truth boxes", res, len(records), time.perf_counter() - t)

    boxes, valid, counts = _ground_truth_first(split)
    t = time.perf_counter()
    parts = []
    for start in range(0, len(boxes), int(batch_size)):
        sl = slice(start, start + int(batch_size))
        parts.append([_to_numpy(a) for a in detector.keypoints_for_boxes(split["images"][sl], boxes[sl], valid[sl])])
    kps = np.concatenate([p[0] for p in parts])
    kscores = np.concatenate([p[1] for p in parts])
    outputs = {"boxes": np.where(valid[..., None], boxes, 0.0), "scores": valid.astype(np.float64),
               "keypoints": kps, "keypoint_scores": kscores, "num_detections": counts}
    _, res = detections_to_coco(split["image_ids"], outputs, split["scales"], split["offsets"],
                                keypoint_score="box_x_keypoints")
    score("Keypoint R-CNN head, ground-truth boxes", res, counts.sum(), time.perf_counter() - t)

    t = time.perf_counter()
    outputs = predict_detections(detector, split["images"], batch_size=batch_size)
    box_res, kp_res = detections_to_coco(split["image_ids"], outputs, split["scales"], split["offsets"])
    t_det = time.perf_counter() - t
    t = time.perf_counter()
    res = top_down_on_detections(pose_model, box_res, annotation_file, image_dir, flip_test=flip_test)
    score("top-down, Keypoint R-CNN boxes", res, len(box_res), t_det + time.perf_counter() - t)
    score("Keypoint R-CNN, end to end", kp_res, len(box_res), t_det)
    rows["_results"] = results
    return rows
