"""COCO keypoint AP through pycocotools, with the annotation and results files checked first."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import numbers
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from pose_lab.skeletons import COCO17

__all__ = ["COCO_BOX_STATS", "COCO_KEYPOINT_STATS", "coco_box_ap", "coco_keypoint_ap", "coco_results_from_ground_truth"]

#: Names of the ten numbers ``COCOeval.summarize()`` prints for keypoints, in order.
COCO_KEYPOINT_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
#: Names of the twelve numbers ``COCOeval.summarize()`` prints for boxes, in order.
COCO_BOX_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

def _load_json(source, what: str):
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{what}: file not found: {path}")
        try:
            with path.open("r", encoding="utf-8") as fh:
                return json.load(fh), str(path)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what}: {path} is not valid JSON ({exc})") from None
    return source, f"<{what} given as {type(source).__name__}>"


_GT_FIELDS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "area", "iscrowd", "bbox")


def _check_annotations(data, where: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"annotations ({where}): expected a COCO dict or a path to one, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"annotations ({where}): missing list field {key!r} of the COCO keypoints schema")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise ValueError(f"annotations ({where}): annotations[{i}] is not an object")
        missing = [f for f in _GT_FIELDS if f not in ann]
        if missing:
            raise ValueError(f"annotations ({where}): annotations[{i}] (id {ann.get('id')}) lacks field(s) {missing}")
        head = f"annotations ({where}): annotations[{i}] (id {ann['id']!r:.40})"
        kps = ann["keypoints"]
        if not isinstance(kps, (list, tuple)) or len(kps) != 3 * len(COCO17.joint_names):
            n = len(kps) if isinstance(kps, (list, tuple)) else type(kps).__name__
            raise ValueError(f"{head} has {n} keypoint values, expected 51 (17 keypoints x (x, y, v))")
        if not all(_is_number(k) for k in kps):
            bad = next(j for j, k in enumerate(kps) if not _is_number(k))
            raise ValueError(
                f"{head}: field 'keypoints' holds {kps[bad]!r} at position {bad}; expected finite numbers "
                "(an unlabelled keypoint is 0, 0, 0), never NaN"
            )
        v = kps[2::3]
        if any(f not in (0, 1, 2) for f in v):
            raise ValueError(f"{head}: field 'keypoints' has visibility flags {sorted(set(v) - {0, 1, 2})}; "
                             "expected 0, 1 or 2")
        labelled = sum(1 for f in v if f > 0)
        if not _is_int(ann["num_keypoints"]) or ann["num_keypoints"] != labelled:
            raise ValueError(f"{head}: field 'num_keypoints' is {ann['num_keypoints']!r:.40} but {labelled} "
                             "keypoints have v > 0")
        if ann["iscrowd"] not in (0, 1) or not _is_int(ann["iscrowd"]):
            raise ValueError(f"{head}: field 'iscrowd' must be 0 or 1, got {ann['iscrowd']!r:.40}")
        for field in ("id", "image_id", "category_id"):
            if not _is_int(ann[field]):
                raise ValueError(f"{head}: field {field!r} must be an integer, got {ann[field]!r:.40}")
        if not _is_number(ann["area"]) or ann["area"] < 0:
            raise ValueError(f"{head}: field 'area' must be a finite number >= 0, got {ann['area']!r:.40}")
        box = ann["bbox"]
        if (not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_is_number(b) for b in box)
                or box[2] < 0 or box[3] < 0):
            raise ValueError(f"{head}: field 'bbox' must be [x, y, w, h] with finite values and w, h >= 0, "
                             f"got {box!r:.80}")
    image_ids = set()
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise ValueError(f"annotations ({where}): images[{i}] has no 'id'")
        if not _is_int(img["id"]):
            raise ValueError(
                f"annotations ({where}): images[{i}]: field 'id' must be an integer, got {img['id']!r:.40}"
            )
        for field in ("width", "height"):
            if field in img and not (_is_int(img[field]) and img[field] > 0):
                raise ValueError(f"annotations ({where}): image id {img['id']}: field {field!r} must be a positive "
                                 f"integer (pixels), got {img[field]!r:.40}")
        image_ids.add(img["id"])
    for ann in data["annotations"]:
        if ann["image_id"] not in image_ids:
            raise ValueError(f"annotations ({where}): annotation id {ann['id']}: image_id {ann['image_id']} is not "
                             "among the 'images'")
    return data


def _is_int(x) -> bool:
    return isinstance(x, (numbers.Integral, np.integer)) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _clean_keypoints(r, i, where):
    kps = r["keypoints"]
    if isinstance(kps, np.ndarray):
        kps = kps.reshape(-1).tolist()
    if not isinstance(kps, (list, tuple)) or len(kps) != 51:
        n = len(kps) if hasattr(kps, "__len__") else type(kps).__name__
        raise ValueError(
            f"results ({where}): results[{i}] (image_id {r['image_id']}) has {n} keypoint values, expected "
            "51 (17 keypoints x (x, y, score)), a flat list"
        )
    if not all(_is_number(float(k)) if isinstance(k, np.generic) else _is_number(k) for k in kps):
        raise ValueError(f"results ({where}): results[{i}] (image_id {r['image_id']}) has non-finite keypoints")
    return [float(k) for k in kps]


def _clean_bbox(r, i, where):
    box = r["bbox"]
    box = box.reshape(-1).tolist() if isinstance(box, np.ndarray) else box
    box = [float(b) if isinstance(b, np.generic) else b for b in box] if isinstance(box, (list, tuple)) else box
    if (not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_is_number(b) for b in box)
            or box[2] < 0 or box[3] < 0):
        raise ValueError(f"results ({where}): results[{i}] (image_id {r['image_id']}): field 'bbox' must "
                         f"be [x, y, w, h] with finite values and w, h >= 0, got {r['bbox']!r:.80}")
    return [float(b) for b in box]


#: the field a result of each COCOeval ``iouType`` carries, and its check
_RESULT_FIELDS = {"keypoints": ("keypoints", _clean_keypoints), "bbox": ("bbox", _clean_bbox)}


def _check_results(results, where: str, image_ids: set, category_ids: set, iou_type: str = "keypoints") -> list:
    field, clean_field = _RESULT_FIELDS[iou_type]
    if not isinstance(results, (list, tuple)):
        raise ValueError(
            f"results ({where}): expected a list of COCO {'keypoint' if field == 'keypoints' else 'box'} "
            f"results or a path to one, got {type(results).__name__}"
        )
    out = []
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise ValueError(f"results ({where}): results[{i}] is not an object")
        for key in ("image_id", "category_id", field, "score"):
            if key not in r:
                raise ValueError(f"results ({where}): results[{i}] lacks the field {key!r}")
        if r["image_id"] not in image_ids:
            raise ValueError(
                f"results ({where}): results[{i}] has image_id {r['image_id']!r}, which is not an image "
                "of the annotations"
            )
        if r["category_id"] not in category_ids:
            raise ValueError(
                f"results ({where}): results[{i}] has category_id {r['category_id']!r}; the annotations' "
                f"categories are {sorted(category_ids)}"
            )
        value = clean_field(r, i, where)
        score = float(r["score"]) if isinstance(r["score"], np.generic) else r["score"]
        if not _is_number(score):
            raise ValueError(f"results ({where}): results[{i}] has score {r['score']!r}, expected a finite number")
        clean = dict(r)
        clean[field] = value
        clean["score"] = float(score)
        out.append(clean)
    return out


def coco_results_from_ground_truth(annotations, score: float = 1.0) -> list:
    """The ground-truth persons (``num_keypoints > 0``, not crowd) in the COCO results format.

    Submitting these to :func:`coco_keypoint_ap` must give AP = 1.0: a sanity
    check of an evaluation pipeline.
    """
    data, where = _load_json(annotations, "annotations")
    data = _check_annotations(data, where)
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": list(a["keypoints"]),
         "score": float(score)}
        for a in data["annotations"]
        if a["num_keypoints"] > 0 and not a["iscrowd"]
    ]


def _coco_eval(annotations, results, iou_type, names, verbose, image_ids) -> "OrderedDict[str, float]":
    """Check annotations and results, run pycocotools' ``COCOeval(iouType=iou_type)``, name its stats."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_data, gt_where = _load_json(annotations, "annotations")
    gt_data = copy.deepcopy(_check_annotations(gt_data, gt_where))  # COCOeval writes into the gt dicts
    res_data, res_where = _load_json(results, "results")
    known_images = {img["id"] for img in gt_data["images"]}
    known_cats = {c["id"] for c in gt_data["categories"]}
    res_list = _check_results(res_data, res_where, known_images, known_cats, iou_type)
    if image_ids is not None:
        image_ids = [int(i) for i in image_ids]
        unknown = sorted(set(image_ids) - known_images)
        if unknown:
            raise ValueError(f"image_ids: {unknown[:5]} not in the annotations' images")

    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        coco_gt = COCO()
        coco_gt.dataset = gt_data
        coco_gt.createIndex()
        if res_list:
            coco_dt = coco_gt.loadRes(res_list)
        else:  # pycocotools' loadRes cannot take an empty list; nothing detected scores 0
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt_data["images"]), "categories": copy.deepcopy(gt_data["categories"]),
                               "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        if image_ids is not None:
            evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return OrderedDict((name, float(v)) for name, v in zip(names, evaluator.stats))


def coco_keypoint_ap(annotations, results, verbose: bool = False, image_ids=None) -> "OrderedDict[str, float]":
    """The ten COCO keypoint stats computed by ``pycocotools`` ``COCOeval(iouType="keypoints")``.

    Args:
        annotations: path to a ``person_keypoints_*.json`` file, or the loaded dict
            (it is not modified).
        results: path to a results JSON file or a list of dicts
            ``{"image_id", "category_id", "keypoints": [x1, y1, s1, ..., x17, y17, s17], "score"}``.
            Every entry is validated (51 keypoint values, an ``image_id`` of the
            annotations, a known ``category_id``, a finite ``score``) before
            pycocotools sees it.
        verbose: let pycocotools print its progress and summary table.
        image_ids: evaluate on these images only (default: all images of the annotations).

    Returns:
        ``OrderedDict`` with keys :data:`COCO_KEYPOINT_STATS` (``AP``, ``AP50``, ``AP75``,
        ``APm``, ``APl``, ``AR``, ``AR50``, ``AR75``, ``ARm``, ``ARl``) as floats;
        ``-1.0`` where COCO has nothing to measure (e.g. no large persons).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: malformed annotations or results (the message names the entry).
    """
    return _coco_eval(annotations, results, "keypoints", COCO_KEYPOINT_STATS, verbose, image_ids)


def coco_box_ap(annotations, results, verbose: bool = False, image_ids=None) -> "OrderedDict[str, float]":
    """The twelve COCO box stats computed by ``pycocotools`` ``COCOeval(iouType="bbox")``.

    The person-detection counterpart of :func:`coco_keypoint_ap` (same checks,
    same conventions), for detectors such as Keypoint R-CNN. Every non-crowd
    person of the annotations counts, also those without labelled keypoints.

    Args:
        annotations: path to a ``person_keypoints_*.json`` file, or the loaded dict
            (it is not modified).
        results: path to a results JSON file or a list of dicts
            ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` (pixels,
            COCO box convention). Every entry is validated (4 finite box values
            with ``w, h >= 0``, an ``image_id`` of the annotations, a known
            ``category_id``, a finite ``score``) before pycocotools sees it.
        verbose: let pycocotools print its progress and summary table.
        image_ids: evaluate on these images only (default: all images of the annotations).

    Returns:
        ``OrderedDict`` with keys ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``,
        ``APl``, ``AR1``, ``AR10``, ``AR100``, ``ARs``, ``ARm``, ``ARl`` (the
        order of ``COCOeval.stats``; the ARs are at 1, 10 and 100 detections per
        image, the size ones at 100) as floats; ``-1.0`` where COCO has nothing
        to measure.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: malformed annotations or results (the message names the entry).
    """
    return _coco_eval(annotations, results, "bbox", COCO_BOX_STATS, verbose, image_ids)
