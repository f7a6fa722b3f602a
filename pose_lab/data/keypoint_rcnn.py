"""Data for Keypoint R-CNN: multi-person images with padded box and keypoint targets.

The detector (:mod:`pose_lab.models.keypoint_rcnn`, trained with
:mod:`pose_lab.training.keypoint_rcnn`) takes whole images and, per image, a
fixed number ``M`` of person slots::

    x = images                 (B, H, W, 3) float32 in [0, 255]
    y = {"boxes":     (B, M, 4)      float32 (x1, y1, x2, y2), detector frame
         "keypoints": (B, M, 17, 3)  float32 COCO-17 (x, y, v), detector frame
         "valid":     (B, M)         float32 1 for a person, 0 for a padding slot}

Three sources give these arrays:

* :func:`scenes_to_targets` converts the output of
  :func:`pose_lab.data.synthetic.render_scenes`;
* :class:`SceneStream` is an endless ``keras.utils.PyDataset`` of freshly
  rendered scenes for ``fit()``;
* :func:`load_detection_split` reads a COCO keypoints file (a synthetic split
  written by :func:`pose_lab.data.synthetic.write_coco_dataset`, the real COCO
  sample in ``data/samples/real/coco_val2017_mini``, or COCO val2017) and
  letterboxes its images into one size.

Coordinate frames
-----------------
The kit's data (the renderer, the COCO writer and loader,
:mod:`pose_lab.heatmaps`) puts **pixel centres at integers**: pixel
``image[r, c]`` is centred on ``(x=c, y=r)`` and covers ``[c - 0.5, c + 0.5)``.
The detector (:mod:`pose_lab.boxes`, :mod:`pose_lab.roi`) uses torchvision's
**continuous** frame: pixel ``[r, c]`` covers ``[c, c + 1)``, its centre is
``c + 0.5``. Hence, from data to detector:

* keypoints: ``x_det = x + 0.5``, ``y_det = y + 0.5`` (as Detectron2 does when
  it reads COCO keypoints). Unlabelled keypoints (``v = 0``) are ``0, 0, 0``
  in the targets, as in the COCO files.
* boxes: a COCO box ``[x, y, w, h]`` becomes ``(x, y, x + w, y + h)``
  *unchanged*. The renderer's box is the silhouette's in mask convention
  (``x`` the first covered column, ``w`` the number of covered columns,
  :func:`pycocotools.mask.toBbox`), i.e. in the kit's frame the silhouette
  spans ``[x - 0.5, x + w - 0.5)``, which is exactly ``[x, x + w)`` in the
  continuous frame. COCO's own boxes follow the same reading (Detectron2
  uses them as they are), so no shift is applied to boxes in either direction.

The way back, detector -> COCO results, is
:func:`pose_lab.evaluation.keypoint_rcnn.detections_to_coco`: keypoints
``- 0.5``, boxes ``(x1, y1, x2 - x1, y2 - y1)``.

Letterboxing (:func:`load_detection_split`): an image of size ``(h, w)`` is
resized (bilinear, PIL) by ``s = min(H / h, W / w)`` to ``(round(h s),
round(w s))`` and pasted at integer ``offset = ((W - w') // 2, (H - h') // 2)``
into a black ``(H, W)`` canvas. In the continuous frame a resize is the linear
map ``x' = x * w' / w`` (PIL aligns pixel edges), so detector-frame
coordinates map as ``x_lb = x * scale_x + offset_x`` with the per-image
``scales = (w' / w, h' / h)`` and ``offsets`` that the loader returns, and back
as ``x = (x_lb - offset_x) / scale_x``.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import keras
import numpy as np

from pose_lab.data.coco import load_coco_keypoints, load_image
from pose_lab.data.synthetic.body import TRAIN_SUBJECTS
from pose_lab.data.synthetic.scenes import render_scenes

__all__ = ["PIXEL_OFFSET", "SceneStream", "load_detection_split", "scenes_to_targets",
           "coco_boxes_to_detector", "coco_keypoints_to_detector"]

#: Added to the kit's keypoint coordinates (pixel centres at integers) to get
#: the detector's continuous frame (pixel centres at ``c + 0.5``).
PIXEL_OFFSET = 0.5

NUM_KEYPOINTS = 17


def coco_boxes_to_detector(boxes):
    """COCO ``[x, y, w, h]`` (..., 4) -> detector ``(x1, y1, x2, y2)`` (..., 4), float32.

    No shift: the COCO box's ``x`` is the left edge of its first column, which is
    ``x`` in the continuous frame too (see the module docstring).
    """
    b = np.asarray(boxes, np.float32)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:4]], axis=-1)


def coco_keypoints_to_detector(keypoints):
    """COCO ``(x, y, v)`` (..., 17, 3) in the kit's frame -> the detector's frame, float32.

    ``x, y`` gain :data:`PIXEL_OFFSET`; unlabelled keypoints (``v = 0``) become ``0, 0, 0``.
    """
    k = np.array(keypoints, np.float32, copy=True)
    labelled = k[..., 2] > 0
    k[..., :2] += PIXEL_OFFSET
    k[~labelled] = 0.0
    return k


def _select_people(boxes_xywh, max_people, where, warn=True):
    """Indices of the people to keep: non-empty boxes, the ``max_people`` largest, in the original order."""
    b = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
    keep = np.flatnonzero((b[:, 2] > 0) & (b[:, 3] > 0))
    if keep.size > max_people:
        area = b[keep, 2] * b[keep, 3]
        order = np.argsort(-area, kind="stable")[:max_people]
        if warn:
            warnings.warn(f"{where}: {keep.size} people, max_people={max_people}: keeping the "
                          f"{max_people} largest boxes", stacklevel=3)
        keep = np.sort(keep[order])
    return keep


def _check_max_people(max_people):
    if isinstance(max_people, bool) or not isinstance(max_people, (int, np.integer)) or max_people < 1:
        raise ValueError(f"max_people must be a positive int (the person slots M), got {max_people!r}")
    return int(max_people)


def _empty_targets(n, H, W, M):
    return {
        "images": np.zeros((n, H, W, 3), np.float32),
        "boxes": np.zeros((n, M, 4), np.float32),
        "keypoints": np.zeros((n, M, NUM_KEYPOINTS, 3), np.float32),
        "valid": np.zeros((n, M), np.float32),
    }


def scenes_to_targets(scenes, max_people, *, warn=True):
    """Rendered scenes -> detector inputs and padded targets.

    Args:
        scenes: list of dicts from :func:`pose_lab.data.synthetic.render_scenes`
            (``image`` (H, W, 3) uint8, ``keypoints`` (P, 17, 3) COCO-17 in the
            kit's frame, ``boxes`` (P, 4) COCO ``[x, y, w, h]``), all of one size.
        max_people: person slots ``M``. People with an empty box (not visible
            at all) are dropped; when more remain, the ``M`` with the largest
            boxes (``w * h``) are kept (with a warning unless ``warn=False``).
            Slots are filled in the scene's person order, the rest is padding
            (zeros, ``valid = 0``).
        warn: warn when people are dropped for lack of slots.

    Returns:
        dict with ``images`` (B, H, W, 3) float32 in [0, 255], ``boxes`` (B, M, 4)
        ``(x1, y1, x2, y2)``, ``keypoints`` (B, M, 17, 3) ``(x, y, v)``, both in
        the detector's continuous frame (keypoints + 0.5, boxes unshifted; see
        the module docstring), ``valid`` (B, M) float32 0/1.

    Example:
        >>> from pose_lab.data.synthetic import render_scenes
        >>> t = scenes_to_targets(render_scenes(2, (64, 64), seed=0), max_people=4)
        >>> t["boxes"].shape, t["keypoints"].shape
        ((2, 4, 4), (2, 4, 17, 3))
    """
    M = _check_max_people(max_people)
    scenes = list(scenes)
    if not scenes:
        raise ValueError("scenes: expected at least one rendered scene, got an empty list")
    shape = None
    for i, sc in enumerate(scenes):
        if not isinstance(sc, dict):
            raise ValueError(f"scenes[{i}]: expected a dict from render_scenes, got {type(sc).__name__}")
        for key in ("image", "keypoints", "boxes"):
            if key not in sc:
                raise ValueError(f"scenes[{i}]: missing field {key!r} (expected render_scenes output)")
        img = np.asarray(sc["image"])
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"scenes[{i}]: field 'image' must be (H, W, 3), got {img.shape}")
        if shape is None:
            shape = img.shape
        elif img.shape != shape:
            raise ValueError(f"scenes[{i}]: field 'image' is {img.shape}, but scenes[0] is {shape}; "
                             "all scenes must have one size")
        kp, bx = np.asarray(sc["keypoints"]), np.asarray(sc["boxes"])
        if kp.ndim != 3 or kp.shape[1:] != (NUM_KEYPOINTS, 3) or bx.shape != (kp.shape[0], 4):
            raise ValueError(f"scenes[{i}]: fields 'keypoints' {kp.shape} and 'boxes' {bx.shape}: expected "
                             "(P, 17, 3) and (P, 4)")
    H, W = shape[:2]
    out = _empty_targets(len(scenes), H, W, M)
    for i, sc in enumerate(scenes):
        out["images"][i] = sc["image"]
        keep = _select_people(sc["boxes"], M, f"scenes[{i}]", warn=warn)
        n = keep.size
        out["boxes"][i, :n] = coco_boxes_to_detector(np.asarray(sc["boxes"])[keep])
        out["keypoints"][i, :n] = coco_keypoints_to_detector(np.asarray(sc["keypoints"])[keep])
        out["valid"][i, :n] = 1.0
    return out


class SceneStream(keras.utils.PyDataset):
    """Endless freshly rendered multi-person scenes for training Keypoint R-CNN.

    Args:
        batch_size: images per batch.
        steps_per_epoch: batches per epoch (the stream never ends; this sets how
            often ``fit()`` reports and checkpoints).
        seed: int; the whole stream follows from it.
        image_size: ``(height, width)`` of the scenes (the synthetic COCO splits use 256x256).
        num_people: people per scene, int or ``(min, max)``.
        max_people: person slots ``M`` of the targets (default the largest
            ``num_people``; more people than slots keeps the largest boxes, silently).
        subjects: body shapes and motion (default the Human3.6M training
            subjects S1-S8; validation splits use S9 and S11).
        workers, use_multiprocessing, max_queue_size: ``keras.utils.PyDataset``.

    Batch ``i`` of epoch ``e`` is rendered from
    ``numpy.random.SeedSequence([seed, e, i])`` (as
    :class:`pose_lab.data.synthetic.PersonCropStream`): the same seed gives the
    same stream whatever the workers or the order of the requests, and every
    epoch is new. The epoch counter advances in :meth:`on_epoch_end`; set
    :attr:`epoch` to continue a resumed run.

    Each item is ``(images, targets)`` as :func:`scenes_to_targets` gives it:
    ``images`` (B, H, W, 3) float32 in [0, 255]; ``targets`` a dict of
    ``boxes`` (B, M, 4), ``keypoints`` (B, M, 17, 3), ``valid`` (B, M), in the
    detector's continuous frame.

    Example:
        >>> stream = SceneStream(batch_size=2, steps_per_epoch=3, image_size=(64, 64), seed=0)
        >>> images, targets = stream[0]
        >>> images.shape, targets["valid"].shape
        ((2, 64, 64, 3), (2, 4))
    """

    def __init__(self, batch_size=8, steps_per_epoch=200, seed=0, *, image_size=(256, 256), num_people=(1, 4),
                 max_people=None, subjects=TRAIN_SUBJECTS, workers=1, use_multiprocessing=False,
                 max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        for name, v in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        try:
            H, W = (int(v) for v in image_size)
        except (TypeError, ValueError):
            raise ValueError(f"image_size must be (height, width), got {image_size!r}") from None
        if H < 16 or W < 16:
            raise ValueError(f"image_size must be at least 16x16 pixels, got {image_size!r}")
        if np.isscalar(num_people):
            lo = hi = num_people
        else:
            try:
                lo, hi = num_people
            except (TypeError, ValueError):
                raise ValueError(f"num_people must be an int or (min, max), got {num_people!r}") from None
        if int(lo) < 0 or int(hi) < int(lo) or int(hi) < 1:
            raise ValueError(f"num_people must be an int >= 1 or (min, max) with max >= 1, got {num_people!r}")
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch)
        self.seed = int(seed)
        self.image_size = (H, W)
        self.num_people = num_people
        self.max_people = _check_max_people(int(hi) if max_people is None else max_people)
        self.subjects = tuple(subjects)
        self.epoch = 0

    def __len__(self):
        return self.steps_per_epoch

    def on_epoch_end(self):
        self.epoch += 1

    def batch(self, index, epoch=None):
        """Batch ``index`` of ``epoch`` (default the current one) as :func:`scenes_to_targets`' dict."""
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, int(index)]))
        scenes = render_scenes(self.batch_size, image_size=self.image_size, num_people=self.num_people,
                               seed=rng, subjects=self.subjects)
        return scenes_to_targets(scenes, self.max_people, warn=False)

    def __getitem__(self, index):
        if not 0 <= int(index) < self.steps_per_epoch:
            raise IndexError(f"batch index {index} out of range [0, {self.steps_per_epoch})")
        b = self.batch(index)
        return b["images"], {"boxes": b["boxes"], "keypoints": b["keypoints"], "valid": b["valid"]}


def _letterbox(image, H, W):
    """(h, w, 3) uint8 -> (H, W, 3) float32, scales (sx, sy), offsets (ox, oy)."""
    h, w = image.shape[:2]
    s = min(H / h, W / w)
    nh, nw = max(1, min(H, round(h * s))), max(1, min(W, round(w * s)))
    if (nh, nw) != (h, w):
        from PIL import Image

        image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((nw, nh), Image.BILINEAR))
    ox, oy = (W - nw) // 2, (H - nh) // 2
    canvas = np.zeros((H, W, 3), np.float32)
    canvas[oy:oy + nh, ox:ox + nw] = image
    return canvas, np.array([nw / w, nh / h], np.float64), np.array([ox, oy], np.float64)


def load_detection_split(annotation_file, image_dir, image_size=(256, 256), max_people=20, *, warn=True):
    """A COCO keypoints file as letterboxed detector inputs and padded targets.

    Every image of the file is returned (also those without people: they count
    in COCO's AP), in file order. Persons: not crowd, with a non-empty box, any
    number of labelled keypoints (COCO's box AP counts persons without keypoints
    too); more than ``max_people`` in an image keeps the largest boxes (with a
    warning unless ``warn=False``). Targets are in the detector's frame of the
    *letterboxed* image (module docstring); ``scales`` and ``offsets`` map
    predictions back (:func:`pose_lab.evaluation.keypoint_rcnn.detections_to_coco`).

    Args:
        annotation_file: ``person_keypoints_*.json`` (synthetic split, the real
            sample ``shared_data_dir() / "coco_val2017_mini"``, or COCO val2017).
        image_dir: folder holding the images.
        image_size: ``(height, width)`` the images are letterboxed into.
        max_people: person slots ``M``.
        warn: warn when persons are dropped for lack of slots.

    Returns:
        dict with ``images`` (N, H, W, 3) float32 in [0, 255] (padding 0),
        ``boxes`` (N, M, 4), ``keypoints`` (N, M, 17, 3), ``valid`` (N, M),
        ``image_ids`` (N,) int64, ``scales`` (N, 2) float64 ``(sx, sy)``,
        ``offsets`` (N, 2) float64 ``(ox, oy)`` (pixels), ``original_sizes``
        (N, 2) int64 ``(height, width)``.

    Raises:
        FileNotFoundError: the annotation file, the image folder or an image is missing.
        ValueError: malformed annotations (the message names the file, the
            annotation or image id and the field, see
            :func:`pose_lab.data.coco.load_coco_keypoints`), an image whose
            pixels do not match its ``width`` / ``height``, bad arguments.
    """
    M = _check_max_people(max_people)
    try:
        H, W = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (height, width), got {image_size!r}") from None
    if H < 1 or W < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    path = Path(annotation_file)
    if image_dir is None or not Path(image_dir).is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir} (images of {path})")
    # validates the file (names the file, annotation id and field) and the image paths
    records = load_coco_keypoints(path, image_dir, skip_crowd=True, min_keypoints=0)
    with open(path, "r", encoding="utf-8") as fh:
        data = json.load(fh)
    images_meta = data["images"]
    by_image = {}
    for r in records:
        by_image.setdefault(r.image_id, []).append(r)
    n = len(images_meta)
    out = _empty_targets(n, H, W, M)
    out["image_ids"] = np.zeros(n, np.int64)
    out["scales"] = np.ones((n, 2), np.float64)
    out["offsets"] = np.zeros((n, 2), np.float64)
    out["original_sizes"] = np.zeros((n, 2), np.int64)
    for i, im in enumerate(images_meta):
        img_path = os.path.join(str(image_dir), im["file_name"])
        if not os.path.isfile(img_path):
            raise FileNotFoundError(f"image file not found: {img_path} (image id {im['id']}, from {path})")
        pixels = load_image(img_path)
        if pixels.shape[:2] != (im["height"], im["width"]):
            raise ValueError(f"{path}: image id {im['id']}: fields 'height', 'width' are "
                             f"({im['height']}, {im['width']}) but {img_path} is {pixels.shape[:2]}")
        out["images"][i], sc, off = _letterbox(pixels, H, W)
        out["image_ids"][i] = im["id"]
        out["scales"][i], out["offsets"][i] = sc, off
        out["original_sizes"][i] = pixels.shape[:2]
        recs = by_image.get(im["id"], [])
        if not recs:
            continue
        bx = np.stack([r.bbox for r in recs])
        keep = _select_people(bx, M, f"{path}: image id {im['id']}", warn=warn)
        k = keep.size
        b = coco_boxes_to_detector(bx[keep]).astype(np.float64)
        kp = coco_keypoints_to_detector(np.stack([recs[j].keypoints for j in keep])).astype(np.float64)
        scale4 = np.tile(sc, 2)
        off4 = np.tile(off, 2)
        out["boxes"][i, :k] = b * scale4 + off4
        lab = kp[..., 2] > 0
        kp[..., :2] = np.where(lab[..., None], kp[..., :2] * sc + off, 0.0)
        out["keypoints"][i, :k] = kp
        out["valid"][i, :k] = 1.0
    return out
