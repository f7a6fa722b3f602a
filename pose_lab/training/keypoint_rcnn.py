"""Keypoint R-CNN as a ``keras.Model`` trained with ``fit()`` (seed 002).

:class:`KeypointRCNN` holds the four sub-networks of
:mod:`pose_lab.models.keypoint_rcnn` (feature network, RPN head, box head,
keypoint head) and the anchor / sampling settings of
:data:`~pose_lab.models.keypoint_rcnn.KEYPOINT_RCNN_CONFIGS`, and puts
together the pieces of :mod:`pose_lab.boxes`, :mod:`pose_lab.roi` and
:mod:`pose_lab.losses`:

1. features ``{"p<l>"}``; the RPN head on every level gives objectness logits
   ``(B, N)`` and deltas ``(B, N, 4)`` for the ``N`` anchors
   (:func:`pose_lab.boxes.multilevel_anchors`, constants);
2. proposals (no gradient): deltas decoded on the anchors, clipped to the
   image; per level the ``pre_nms_top_n`` best; boxes under 1e-3 px dropped;
   NMS 0.7 within each level; the ``post_nms_top_n`` best kept, padded;
3. training (``compute_loss``): anchors matched to the ground truth (IoU 0.7 /
   0.3, low-quality matches), 256 sampled per image at up to half positive ->
   ``rpn_objectness`` (BCE) and ``rpn_box`` (smooth-L1, beta 1/9); the ground-truth
   boxes appended to the proposals, matched at IoU 0.5, 512 sampled per image at
   up to 25 % positive -> RoIAlign 7x7 -> box head -> ``roi_class`` (CE) and
   ``roi_box`` (smooth-L1 on the class-specific deltas, weights (10, 10, 5, 5));
   the positive sampled RoIs (at most ``int(512 * 0.25)`` per image, masked) ->
   RoIAlign 14x14 -> keypoint head -> ``keypoint`` (softmax CE over the heatmap
   cells);
4. inference (``call(images)``): the box head on the proposals, person
   probability and boxes decoded from the person deltas, score > 0.05, NMS 0.5,
   the best ``detections_per_image``; the keypoint head on those boxes, decoded
   with :func:`pose_lab.roi.roi_heatmaps_to_keypoints`.

Data: ``x`` images ``(B, H, W, 3)`` float32 in ``[0, 255]`` (the size the model
was built for); ``y`` a dict with ``boxes`` ``(B, M, 4)`` ``(x1, y1, x2, y2)``
pixels, ``keypoints`` ``(B, M, 17, 3)`` COCO ``(x, y, v)`` and ``valid``
``(B, M)`` 0/1 (padding; ``M`` fixed). Keypoints are used in the boxes'
continuous pixel coordinates as given (torchvision does the same; Detectron2
adds 0.5 to COCO keypoints, see :mod:`pose_lab.roi`), and predicted in the
same coordinates. Every shape is static; the batch is processed with a static
Python loop for the NMS steps, so the batch size must be known when the step is
traced: the number of samples must be a multiple of ``batch_size`` (``fit``
checks it for arrays; for a ``tf.data`` pipeline use ``drop_remainder=True``).

Randomness of the two samplers comes from a ``keras.random.SeedGenerator``
owned by the model; its state is a non-trainable variable, updated inside the
compiled step under TensorFlow and threaded by the JAX trainer (Keras >= 3.6
returns the non-trainable updates made in ``compute_loss``).

Differences from torchvision's ``keypointrcnn_resnet50_fpn``:

* BatchNorm of the backbone is used in inference mode (frozen statistics, as
  torchvision's ``FrozenBatchNorm2d``) but its scale and offset train; all
  backbone layers train (torchvision freezes the stem and stage 1 by default);
* fixed image size (no ``GeneralizedRCNNTransform`` resizing to 800-1333 px,
  no per-batch padding): build the model for the size of your images;
* multi-level RoIAlign computes every RoI on every level and keeps its own
  level by a mask (static shapes; L times the work), with torchvision's level
  rule ``floor(4 + log2(sqrt(area) / 224))`` clamped to the levels;
  ``sampling_ratio=2`` (torchvision: adaptive for the box and keypoint poolers);
* keypoints decoded at the heatmap cell centre, scored with the softmax
  probability (no bicubic upsampling to the box size, see
  :func:`pose_lab.roi.roi_heatmaps_to_keypoints`);
* detections are class-agnostic single-class (person) NMS; box scores are
  the softmax person probability, as torchvision;
* weight decay in :func:`keypoint_rcnn_optimizer` is Keras's decoupled decay
  (``w -= lr * wd * w``), not added to the gradient before momentum as in
  ``torch.optim.SGD``; for SGD the two differ only through the momentum.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
from keras import ops

from pose_lab import losses
from pose_lab.boxes import (
    ROI_BOX_WEIGHTS,
    RPN_BOX_WEIGHTS,
    batched_non_max_suppression,
    clip_boxes_to_image,
    concrete_values as _concrete,
    decode_boxes,
    encode_boxes,
    mask_to_indices,
    match_boxes,
    multilevel_anchors,
    non_max_suppression,
    pairwise_iou,
    sample_balanced,
    valid_box_mask,
)
from pose_lab.models.keypoint_rcnn import (
    build_box_head,
    build_feature_network,
    build_keypoint_head,
    build_rpn_head,
    keypoint_rcnn_config,
    level_name,
)
from pose_lab.roi import keypoints_to_roi_targets, roi_align, roi_heatmaps_to_keypoints
from pose_lab.training.base import fit_within_budget, steps_per_second
from pose_lab.training.schedules import WarmupStepDecay

__all__ = [
    "KeypointRCNN",
    "build_keypoint_rcnn",
    "keypoint_rcnn_optimizer",
    "keypoint_rcnn_schedule",
    "check_detection_data",
    "train_for_minutes",
    "LOSS_TERMS",
]

#: The five logged loss terms (their sum is ``loss``).
LOSS_TERMS = ("rpn_objectness", "rpn_box", "roi_class", "roi_box", "keypoint")

_Y_KEYS = ("boxes", "keypoints", "valid")
_DUMMY_BOX = (0.0, 0.0, 1.0, 1.0)  # stands in for padding so that compiled ops never see a zero-size box


def _serialize(obj):
    return keras.saving.serialize_keras_object(obj)


def _deserialize(obj):
    return keras.saving.deserialize_keras_object(obj) if isinstance(obj, dict) else obj


def _shape(x):
    return tuple(getattr(x, "shape", np.shape(x)))


def check_detection_data(x=None, y=None, *, image_size=None, num_keypoints=17):
    """Check ``fit()`` data of :class:`KeypointRCNN`; raise ``ValueError`` naming the argument.

    Shapes are always checked; values (box sizes, finiteness) when known.

    Args:
        x: images ``(B, H, W, 3)``.
        y: dict ``boxes`` ``(B, M, 4)``, ``keypoints`` ``(B, M, J, 3)``, ``valid`` ``(B, M)``.
        image_size: the expected ``(H, W)``.
        num_keypoints: the expected ``J``.
    """
    if x is not None:
        s = _shape(x)
        if len(s) != 4 or s[-1] != 3 or (image_size is not None and tuple(s[1:3]) != tuple(image_size)):
            want = "(B, H, W, 3)" if image_size is None else f"(B, {image_size[0]}, {image_size[1]}, 3)"
            raise ValueError(f"x (images): expected shape {want} float32 in [0, 255], got {s}")
    if y is None:
        return
    if not isinstance(y, dict):
        raise ValueError(f"y: expected a dict with keys {list(_Y_KEYS)}, got {type(y).__name__}")
    missing = [k for k in _Y_KEYS if k not in y]
    if missing:
        raise ValueError(f"y: missing key(s) {missing}; expected {list(_Y_KEYS)} "
                         "(boxes (B, M, 4), keypoints (B, M, 17, 3), valid (B, M))")
    b, k, v = _shape(y["boxes"]), _shape(y["keypoints"]), _shape(y["valid"])
    if len(b) != 3 or b[-1] != 4:
        raise ValueError(f'y["boxes"]: expected shape (B, M, 4) (x1, y1, x2, y2) pixels, got {b}')
    m = b[1]
    if len(k) != 4 or k[-1] != 3 or (k[1] is not None and m is not None and k[1] != m) or k[2] != num_keypoints:
        raise ValueError(f'y["keypoints"]: expected shape (B, {m}, {num_keypoints}, 3) COCO (x, y, v), got {k}')
    if len(v) != 2 or (v[1] is not None and m is not None and v[1] != m):
        raise ValueError(f'y["valid"]: expected shape (B, {m}) 0/1 padding mask, got {v}')
    if x is not None:
        bx = _shape(x)[0]
        for key, s in (("boxes", b), ("keypoints", k), ("valid", v)):
            if bx is not None and s[0] is not None and s[0] != bx:
                raise ValueError(f'y["{key}"]: expected batch size {bx} (that of x), got shape {s}')
    boxes, valid, kps = _concrete(y["boxes"]), _concrete(y["valid"]), _concrete(y["keypoints"])
    if boxes is not None and valid is not None:
        boxes = np.asarray(boxes, np.float64)
        on = np.asarray(valid) > 0
        if not np.isfinite(boxes[on]).all():
            raise ValueError('y["boxes"]: valid boxes must be finite, got NaN or inf')
        w = boxes[..., 2] - boxes[..., 0]
        h = boxes[..., 3] - boxes[..., 1]
        bad = on & ((w <= 0) | (h <= 0))
        if bad.any():
            i = tuple(int(t) for t in np.argwhere(bad)[0])
            raise ValueError(f'y["boxes"]: {int(bad.sum())} valid box(es) have width or height <= 0, first at '
                             f'{i}: {boxes[i].tolist()}; expected x2 > x1 and y2 > y1 (mark padding with valid=0)')
    if kps is not None and valid is not None:
        kps = np.asarray(kps, np.float64)
        if not np.isfinite(kps[np.asarray(valid) > 0]).all():
            raise ValueError('y["keypoints"]: keypoints of valid persons must be finite, got NaN or inf')


def _tuples(x):
    """JSON round trip turns tuples into lists: back to (nested) tuples."""
    if isinstance(x, (list, tuple)):
        return tuple(_tuples(v) for v in x)
    if isinstance(x, dict):
        return {k: _tuples(v) for k, v in x.items()}
    return x


def _dummy_where(mask, boxes):
    dummy = ops.convert_to_tensor(np.asarray(_DUMMY_BOX, np.float32))
    return ops.where(mask[..., None], boxes, dummy)


@keras.saving.register_keras_serializable(package="pose_lab")
class KeypointRCNN(keras.Model):
    """Keypoint R-CNN (He et al. 2017): RPN + Fast R-CNN box head + keypoint head.

    Args:
        feature_network: images -> ``{"p<l>": feature map}``
            (:func:`pose_lab.models.keypoint_rcnn.build_feature_network`).
        rpn_head: one level's map -> ``[(B, h, w, A), (B, h, w, 4 A)]``.
        box_head: ``(K, 7, 7, C)`` -> ``[(K, 2), (K, 8)]``.
        keypoint_head: ``(K, 14, 14, C)`` -> ``(K, S, S, J)``.
        config: ``"cpu"``, ``"paper"`` or a dict (anchor and sampling
            settings; see :data:`pose_lab.models.keypoint_rcnn.KEYPOINT_RCNN_CONFIGS`).
        seed: seed of the samplers' ``SeedGenerator`` (``None``: random).

    ``call(images)`` returns ``{"boxes" (B, D, 4), "scores" (B, D),
    "keypoints" (B, D, J, 2), "keypoint_scores" (B, D, J), "num_detections" (B,)}``,
    padded with zeros after ``num_detections``; ``D = detections_per_image``.

    Example:
        >>> model = build_keypoint_rcnn("cpu", (256, 256))
        >>> model.compile(optimizer=keypoint_rcnn_optimizer(steps_per_epoch=100, epochs=42, batch_size=2))
        >>> model.fit(images, {"boxes": b, "keypoints": k, "valid": v}, batch_size=2, epochs=42)
        >>> detections = model.predict(images, batch_size=2)
    """

    _NETS = ("feature_network", "rpn_head", "box_head", "keypoint_head")

    def __init__(self, feature_network, rpn_head, box_head, keypoint_head, config="cpu", seed=None, **kwargs):
        super().__init__(**kwargs)
        for name, net in zip(self._NETS, (feature_network, rpn_head, box_head, keypoint_head)):
            if not isinstance(net, keras.Model):
                raise ValueError(f"{name}: expected a keras.Model, got {type(net).__name__}")
        self.feature_network = feature_network
        self.rpn_head = rpn_head
        self.box_head = box_head
        self.keypoint_head = keypoint_head
        self.config = keypoint_rcnn_config(_tuples(config) if isinstance(config, (dict, list)) else config)
        self.seed = None if seed is None else int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        # batch size of a ``PyDataset`` given to fit()/predict(): under TensorFlow its batches
        # arrive with an unknown batch axis, which the per-image steps need as a constant
        self._data_batch = None
        cfg = self.config

        shape = feature_network.input_shape
        if len(shape) != 4 or shape[1] is None or shape[2] is None:
            raise ValueError(f"feature_network: expected a static input shape (B, H, W, 3), got {shape}")
        self.image_size = (int(shape[1]), int(shape[2]))
        out = feature_network.output
        if not isinstance(out, dict):
            raise ValueError("feature_network: expected dict outputs {'p<l>': feature map}")
        self.roi_levels = tuple(sorted(int(l) for l in cfg["levels"]))
        self.keypoint_levels = tuple(sorted(int(l) for l in (cfg.get("keypoint_levels") or cfg["levels"])))
        extra = () if cfg.get("extra_pool_level") is None else (int(cfg["extra_pool_level"]),)
        self.rpn_levels = tuple(sorted(set(self.roi_levels + extra)))
        missing = [l for l in sorted(set(self.rpn_levels + self.keypoint_levels)) if level_name(l) not in out]
        if missing:
            raise ValueError(f"feature_network: no output for level(s) {missing} (RPN / RoI / keypoint levels of "
                             f"the config); it has {sorted(out)}")
        if len(cfg["anchor_sizes"]) != len(self.rpn_levels):
            raise ValueError(f"config['anchor_sizes']: expected one size tuple per RPN level {self.rpn_levels}, "
                             f"got {cfg['anchor_sizes']}")
        num_per_cell = {len(s) * len(cfg["aspect_ratios"]) for s in cfg["anchor_sizes"]}
        if len(num_per_cell) != 1:
            raise ValueError("config['anchor_sizes']: the shared RPN head needs the same number of anchors per level")
        self.num_anchors_per_cell = num_per_cell.pop()
        self.feature_shapes = tuple(tuple(int(s) for s in out[level_name(l)].shape[1:3]) for l in self.rpn_levels)
        anchors, counts = multilevel_anchors(self.image_size, [2 ** l for l in self.rpn_levels], cfg["anchor_sizes"],
                                             cfg["aspect_ratios"], feature_shapes=self.feature_shapes)
        self._anchors = np.asarray(keras.ops.convert_to_numpy(anchors), np.float32)
        self.anchor_counts = counts
        self.heatmap_size = int(keypoint_head.output_shape[1])
        self.num_keypoints = int(keypoint_head.output_shape[-1])
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_TERMS}
        # attributes, so that Keras tracks them as the model's metrics
        self.rpn_objectness_tracker = self.trackers["rpn_objectness"]
        self.rpn_box_tracker = self.trackers["rpn_box"]
        self.roi_class_tracker = self.trackers["roi_class"]
        self.roi_box_tracker = self.trackers["roi_box"]
        self.keypoint_tracker = self.trackers["keypoint"]
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    # ------------------------------------------------------------------ parts
    def _batch(self, images):
        b = images.shape[0]
        if b is None and self._data_batch is not None:
            return int(self._data_batch)
        if b is None:
            raise ValueError("x (images): KeypointRCNN needs a static batch size (per-image NMS in a static loop); "
                             "make the number of samples a multiple of batch_size (tf.data: drop_remainder=True)")
        return int(b)

    def _features(self, images):
        # backbone BatchNorm in inference mode (torchvision's FrozenBatchNorm2d); the heads have no BN
        return self.feature_network(images, training=False)

    def _rpn(self, feats, batch):
        objs, dels = [], []
        for l, (fh, fw) in zip(self.rpn_levels, self.feature_shapes):
            o, d = self.rpn_head(feats[level_name(l)])
            n = fh * fw * self.num_anchors_per_cell
            objs.append(ops.reshape(o, (batch, n)))
            dels.append(ops.reshape(d, (batch, n, 4)))
        return ops.concatenate(objs, axis=1), ops.concatenate(dels, axis=1)

    def _proposals(self, objectness, deltas, batch, training):
        cfg = self.config
        pre = cfg["rpn_pre_nms_top_n_train" if training else "rpn_pre_nms_top_n_test"]
        post = cfg["rpn_post_nms_top_n_train" if training else "rpn_post_nms_top_n_test"]
        obj = ops.stop_gradient(objectness)
        boxes = decode_boxes(ops.stop_gradient(deltas), self._anchors[None], RPN_BOX_WEIGHTS)
        boxes = clip_boxes_to_image(boxes, *self.image_size)
        scores, cands, groups, start = [], [], [], 0
        for g, count in enumerate(self.anchor_counts):
            k = min(int(pre), count)
            val, idx = ops.top_k(obj[:, start:start + count], k=k)
            scores.append(val)
            cands.append(ops.take_along_axis(boxes[:, start:start + count], idx[..., None], axis=1))
            groups.append(np.full((k,), g, np.int32))
            start += count
        scores, cands = ops.concatenate(scores, axis=1), ops.concatenate(cands, axis=1)
        groups = np.concatenate(groups)
        ok = valid_box_mask(cands, 1e-3)
        prob = ops.where(ok, ops.sigmoid(scores), -1.0)  # torchvision: score_thresh 0 on probabilities
        props, valid = [], []
        for b in range(batch):
            idx, _ = batched_non_max_suppression(cands[b], prob[b], groups, int(post), cfg["rpn_nms_iou"],
                                                 score_threshold=-0.5)
            keep = idx >= 0
            props.append(_dummy_where(keep, ops.take(cands[b], ops.maximum(idx, 0), axis=0)))
            valid.append(keep)
        return ops.stop_gradient(ops.stack(props)), ops.stack(valid)

    def _roi_align(self, feats, rois, batch, output_size, levels=None):
        """RoIAlign of ``rois`` ``(B, R, 4)`` -> ``(B * R, S, S, C)``; one level per RoI, picked by its size."""
        r = rois.shape[1]
        flat = ops.reshape(rois, (batch * r, 4))
        box_indices = np.repeat(np.arange(batch, dtype=np.int32), r)
        levels = self.roi_levels if levels is None else levels
        if len(levels) == 1:
            return roi_align(feats[level_name(levels[0])], flat, box_indices, output_size, 2.0 ** -levels[0], 2)
        area = (flat[:, 2] - flat[:, 0]) * (flat[:, 3] - flat[:, 1])
        lvl = ops.floor(4.0 + ops.log2(ops.sqrt(ops.maximum(area, 1e-6)) / 224.0) + 1e-6)  # torchvision's LevelMapper
        lvl = ops.clip(lvl, float(levels[0]), float(levels[-1]))
        out = 0.0
        for l in levels:
            f = roi_align(feats[level_name(l)], flat, box_indices, output_size, 2.0 ** -l, 2)
            out = out + ops.where(ops.equal(lvl, float(l))[:, None, None, None], f, 0.0)
        return out

    # ---------------------------------------------------------------- forward
    def call(self, images, training=False):
        images = ops.convert_to_tensor(images)
        check_detection_data(images, image_size=self.image_size)
        images = ops.cast(images, "float32")
        batch = self._batch(images)
        images = ops.reshape(images, (batch, *images.shape[1:]))  # a static batch axis (see _data_batch)
        feats = self._features(images)
        obj, deltas = self._rpn(feats, batch)
        proposals, valid = self._proposals(obj, deltas, batch, bool(training))
        if training:
            return {"features": feats, "rpn_objectness": obj, "rpn_deltas": deltas,
                    "proposals": proposals, "proposal_valid": valid}
        return self._detect(feats, proposals, valid, batch)

    def _detect(self, feats, proposals, prop_valid, batch):
        cfg = self.config
        p = proposals.shape[1]
        logits, deltas = self.box_head(self._roi_align(feats, proposals, batch, self.box_head.input_shape[1]))
        score = ops.reshape(ops.softmax(logits, axis=-1)[:, 1], (batch, p))
        person = ops.reshape(deltas, (batch * p, -1, 4))[:, 1]
        boxes = decode_boxes(person, ops.reshape(proposals, (batch * p, 4)), ROI_BOX_WEIGHTS)
        boxes = ops.reshape(clip_boxes_to_image(boxes, *self.image_size), (batch, p, 4))
        thr = float(cfg["detection_score_threshold"])
        ok = prop_valid & valid_box_mask(boxes, 1e-2) & (score > thr)
        score = ops.where(ok, score, -1.0)
        d = int(cfg["detections_per_image"])
        det_boxes, det_scores, det_valid, counts = [], [], [], []
        for b in range(batch):
            idx, n = non_max_suppression(boxes[b], score[b], d, cfg["detection_nms_iou"], score_threshold=thr)
            keep = idx >= 0
            safe = ops.maximum(idx, 0)
            det_boxes.append(_dummy_where(keep, ops.take(boxes[b], safe, axis=0)))
            det_scores.append(ops.where(keep, ops.take(score[b], safe, axis=0), 0.0))
            det_valid.append(keep)
            counts.append(n)
        det_boxes, det_scores, det_valid = ops.stack(det_boxes), ops.stack(det_scores), ops.stack(det_valid)
        kps, kp_scores = self._keypoints(feats, det_boxes, det_valid, batch)
        m = det_valid[..., None]
        return {
            "boxes": ops.where(m, det_boxes, 0.0),
            "scores": det_scores,
            "keypoints": kps,
            "keypoint_scores": kp_scores,
            "num_detections": ops.stack(counts),
        }

    def _keypoints(self, feats, boxes, valid, batch):
        """The keypoint head on ``boxes`` ``(B, D, 4)`` -> keypoints ``(B, D, J, 2)``, probabilities ``(B, D, J)``."""
        d, j = boxes.shape[1], self.num_keypoints
        heat = self.keypoint_head(self._roi_align(feats, boxes, batch, self.keypoint_head.input_shape[1],
                                                  self.keypoint_levels))
        kps, kp_scores = roi_heatmaps_to_keypoints(heat, ops.reshape(boxes, (batch * d, 4)))
        m = valid[..., None]
        return (ops.where(m[..., None], ops.reshape(kps, (batch, d, j, 2)), 0.0),
                ops.where(m, ops.reshape(kp_scores, (batch, d, j)), 0.0))

    def keypoints_for_boxes(self, images, boxes, valid=None):
        """The keypoint head on given boxes (e.g. ground truth): the second stage without the first.

        Args:
            images: ``(B, H, W, 3)`` float32 in ``[0, 255]``, the model's size.
            boxes: ``(B, D, 4)`` ``(x1, y1, x2, y2)`` in the model's continuous frame.
            valid: ``(B, D)`` 0/1 (default all 1); invalid rows give zeros.

        Returns:
            ``(keypoints (B, D, J, 2), keypoint_scores (B, D, J))`` as :meth:`call`'s.
        """
        images = ops.convert_to_tensor(images)
        check_detection_data(images, image_size=self.image_size)
        images = ops.cast(images, "float32")
        batch = self._batch(images)
        b = ops.cast(ops.convert_to_tensor(boxes), "float32")
        if len(b.shape) != 3 or b.shape[0] != batch or b.shape[2] != 4:
            raise ValueError(f"boxes: expected shape ({batch}, D, 4) (x1, y1, x2, y2) for {batch} images, "
                             f"got {tuple(b.shape)}")
        v = ops.ones(b.shape[:2], "bool") if valid is None else ops.cast(ops.convert_to_tensor(valid), "bool")
        if tuple(v.shape) != tuple(b.shape[:2]):
            raise ValueError(f"valid: expected shape {tuple(b.shape[:2])}, got {tuple(v.shape)}")
        boxes_ok = ops.all(ops.greater(b[..., 2:], b[..., :2]), axis=-1)
        bad = _concrete(ops.logical_and(v, ops.logical_not(boxes_ok)))
        if bad is not None and np.any(bad):
            raise ValueError("boxes: expected x2 > x1 and y2 > y1 for every valid box "
                             f"(first bad box at [image, box] {np.argwhere(bad)[0].tolist()})")
        feats = self._features(images)
        return self._keypoints(feats, _dummy_where(v, b), v, batch)

    # ----------------------------------------------------------------- losses
    def training_targets(self, proposals, proposal_valid, y):
        """Sample the RoIs of the two RoI heads and their targets (all shapes fixed).

        Args:
            proposals: ``(B, P, 4)`` pixels; proposal_valid: ``(B, P)`` bool.
            y: the ground-truth dict of ``fit()``.

        Returns:
            A dict: ``rois`` ``(B, R, 4)``, ``roi_valid`` ``(B, R)``, ``labels``
            ``(B, R)`` (1 person, 0 background), ``box_targets`` ``(B, R, 4)``;
            ``keypoint_rois`` ``(B, Kp, 4)``, ``keypoint_targets`` ``(B, Kp, J)``
            flat cell indices, ``keypoint_valid`` ``(B, Kp, J)``.
        """
        cfg = self.config
        gt, gt_valid, kp = self._gt(y)
        batch = gt.shape[0]
        cand = ops.concatenate([ops.cast(proposals, "float32"), gt], axis=1)
        cand_valid = ops.concatenate([ops.cast(proposal_valid, "bool"), gt_valid], axis=1)
        cand = _dummy_where(cand_valid, cand)
        matches = match_boxes(pairwise_iou(cand, gt), cfg["roi_iou"], cfg["roi_iou"], False, gt_valid=gt_valid)
        matches = ops.where(cand_valid, matches, -2)
        r = int(cfg["roi_batch_per_image"])
        pos, neg = sample_balanced(matches, r, cfg["roi_positive_fraction"], seed=self.seed_generator)

        def pick(mask, size):
            idx, _ = mask_to_indices(mask, size)
            ok = idx >= 0
            safe = ops.maximum(idx, 0)
            rois = _dummy_where(ok, ops.take_along_axis(cand, safe[..., None], axis=1))
            m = ops.take_along_axis(matches, safe, axis=1)
            return rois, ok, m

        rois, roi_ok, m = pick(ops.logical_or(pos, neg), r)
        labels = ops.cast(ops.logical_and(roi_ok, m >= 0), "int32")
        matched = ops.take_along_axis(gt, ops.maximum(m, 0)[..., None], axis=1)
        box_targets = encode_boxes(matched, rois, ROI_BOX_WEIGHTS)

        kmax = max(1, int(r * float(cfg["roi_positive_fraction"])))
        krois, k_ok, km = pick(pos, kmax)
        j = self.num_keypoints
        kp_gt = ops.take_along_axis(kp, ops.maximum(km, 0)[:, :, None, None], axis=1)  # (B, Kp, J, 3)
        vis = kp_gt[..., 2] * ops.cast(k_ok, "float32")[..., None]
        targets, kvalid = keypoints_to_roi_targets(
            ops.reshape(kp_gt[..., :2], (batch * kmax, j, 2)), ops.reshape(vis, (batch * kmax, j)),
            ops.reshape(krois, (batch * kmax, 4)), self.heatmap_size)
        return {"rois": rois, "roi_valid": roi_ok, "labels": labels, "box_targets": box_targets,
                "keypoint_rois": krois, "keypoint_targets": ops.reshape(targets, (batch, kmax, j)),
                "keypoint_valid": ops.reshape(kvalid, (batch, kmax, j))}

    def _gt(self, y):
        check_detection_data(None, y, num_keypoints=self.num_keypoints)
        valid = ops.cast(y["valid"], "float32") > 0.5
        gt = _dummy_where(valid, ops.cast(y["boxes"], "float32"))
        return gt, valid, ops.cast(y["keypoints"], "float32")

    def rpn_targets(self, y):
        """Anchor labels of the RPN: ``(labels (B, N) float, sampled (B, N) bool, box targets (B, N, 4))``."""
        cfg = self.config
        gt, gt_valid, _ = self._gt(y)
        anchors = self._anchors[None]
        matches = match_boxes(pairwise_iou(anchors, gt), cfg["rpn_fg_iou"], cfg["rpn_bg_iou"], True,
                              gt_valid=gt_valid)
        pos, neg = sample_balanced(matches, int(cfg["rpn_batch_per_image"]), cfg["rpn_positive_fraction"],
                                   seed=self.seed_generator)
        matched = ops.take_along_axis(gt, ops.maximum(matches, 0)[..., None], axis=1)
        targets = encode_boxes(matched, anchors, RPN_BOX_WEIGHTS)
        return ops.cast(pos, "float32"), ops.logical_or(pos, neg), targets

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            raise ValueError("y: KeypointRCNN trains on a dict {'boxes', 'keypoints', 'valid'}, got None")
        if y_pred is None or "rpn_objectness" not in y_pred:
            y_pred = self(x, training=True)
        feats = y_pred["features"]
        obj, deltas = y_pred["rpn_objectness"], y_pred["rpn_deltas"]
        batch = obj.shape[0]
        if isinstance(y, dict):  # the static batch axis of call() for the targets too
            y = {k: (ops.reshape(v, (batch, *v.shape[1:])) if k in _Y_KEYS else v) for k, v in y.items()}
        labels, sampled, rpn_t = self.rpn_targets(y)
        terms = {"rpn_objectness": losses.rpn_objectness_loss(labels, obj, sampled),
                 "rpn_box": losses.smooth_l1(rpn_t, deltas, 1.0 / 9.0, weights=labels,
                                             normalizer=ops.sum(ops.cast(sampled, "float32")))}
        t = self.training_targets(y_pred["proposals"], y_pred["proposal_valid"], y)
        r = t["rois"].shape[1]
        logits, box_deltas = self.box_head(self._roi_align(feats, t["rois"], batch, self.box_head.input_shape[1]))
        terms["roi_class"], terms["roi_box"] = losses.fast_rcnn_loss(
            logits, ops.reshape(t["labels"], (batch * r,)), box_deltas,
            ops.reshape(t["box_targets"], (batch * r, 4)), ops.reshape(t["roi_valid"], (batch * r,)))
        kmax = t["keypoint_rois"].shape[1]
        heat = self.keypoint_head(self._roi_align(feats, t["keypoint_rois"], batch,
                                                  self.keypoint_head.input_shape[1], self.keypoint_levels))
        j = self.num_keypoints
        terms["keypoint"] = losses.keypoint_rcnn_loss(heat, ops.reshape(t["keypoint_targets"], (batch * kmax, j)),
                                                      ops.reshape(t["keypoint_valid"], (batch * kmax, j)))
        for name in LOSS_TERMS:
            self.trackers[name].update_state(terms[name])
        total = sum(terms[name] for name in LOSS_TERMS)
        return total + sum(self.losses) if self.losses else total

    def _remember_data_batch(self, x):
        if isinstance(x, keras.utils.PyDataset) and len(x) > 0:
            first = x[0]
            images = first[0] if isinstance(first, (tuple, list)) else first
            self._data_batch = int(np.shape(images)[0])

    def predict(self, x, *args, **kwargs):
        """``keras.Model.predict``; a ``PyDataset``'s batch size is read from its first batch."""
        self._remember_data_batch(x)
        return super().predict(x, *args, **kwargs)

    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """``keras.Model.fit`` after :func:`check_detection_data` on array inputs (values too).

        A ``keras.utils.PyDataset`` (e.g. :class:`pose_lab.data.keypoint_rcnn.SceneStream`)
        must give batches of one size: it is read from its first batch.
        """
        self._remember_data_batch(x)
        if isinstance(y, dict):
            check_detection_data(x, y, image_size=self.image_size, num_keypoints=self.num_keypoints)
            n = _shape(x)[0]
            bs = 32 if batch_size is None else int(batch_size)
            if n is not None and n > bs and n % bs:
                raise ValueError(f"batch_size: the number of samples ({n}) must be a multiple of batch_size ({bs}): "
                                 "the per-image steps need a static batch size")
        return super().fit(x, y, batch_size, *args, **kwargs)

    # ----------------------------------------------------------------- config
    def get_config(self):
        config = {**super().get_config(), "config": self.config, "seed": self.seed}
        for name in self._NETS:
            config[name] = _serialize(getattr(self, name))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls._NETS:
            config[name] = _deserialize(config[name])
        return cls(**config)


def build_keypoint_rcnn(config="cpu", image_size=(256, 256), *, backbone=None, seed=None, name="keypoint_rcnn",
                        **overrides):
    """A :class:`KeypointRCNN` of configuration ``config`` for images of ``image_size``.

    Args:
        config: ``"cpu"`` / ``"paper"`` / a dict.
        image_size: ``(height, width)``, multiples of 32.
        backbone: optional backbone model (e.g.
            :func:`pose_lab.models.keypoint_rcnn.backbone_for_image_size`), or a
            builder name replacing the config's (``"small"``, ``"resnet50"``).
        seed: sampler seed.
        **overrides: settings replacing those of ``config`` (e.g. ``fpn_channels=16``).
    """
    if isinstance(backbone, str):  # a builder name overrides the config's ("small", "resnet50", ...)
        overrides["backbone"], backbone = backbone, None
    cfg = keypoint_rcnn_config(config, **overrides)
    feats = build_feature_network(cfg, image_size, backbone=backbone)
    c = int(cfg["fpn_channels"])
    a = len(cfg["anchor_sizes"][0]) * len(cfg["aspect_ratios"])
    rpn = build_rpn_head(c, a)
    box = build_box_head(c, cfg["box_roi_size"], cfg["box_representation"], 2)
    kp = build_keypoint_head(c, cfg["keypoint_roi_size"], cfg["keypoint_convs"], cfg["keypoint_filters"],
                             cfg["num_keypoints"], cfg["heatmap_upsample"])
    return KeypointRCNN(feats, rpn, box, kp, config=cfg, seed=seed, name=name)


def keypoint_rcnn_schedule(steps_per_epoch, batch_size, milestones_epochs=(36, 43), base_lr=0.02, reference_batch=16,
                           *, gamma=0.1, warmup_steps=None, warmup_start_factor=1.0 / 1000):
    """The learning rate of :func:`keypoint_rcnn_optimizer`: a :class:`~pose_lab.training.schedules.WarmupStepDecay`.

    ``base_lr * batch_size / reference_batch``, a linear warm-up from
    ``warmup_start_factor`` over ``min(1000, steps_per_epoch - 1)`` steps (or
    ``warmup_steps``), times ``gamma`` at each milestone epoch
    (``milestone * steps_per_epoch`` optimizer steps).
    """
    spe = int(steps_per_epoch)
    if spe < 1:
        raise ValueError(f"steps_per_epoch: expected an int >= 1, got {steps_per_epoch!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    if not (float(base_lr) > 0 and math.isfinite(float(base_lr))):
        raise ValueError(f"base_lr: expected a positive number, got {base_lr!r}")
    miles = sorted(int(m) for m in milestones_epochs)  # whole epochs, as torchvision's MultiStepLR
    if any(m < 0 for m in miles):
        raise ValueError(f"milestones_epochs: expected epochs >= 0, got {milestones_epochs!r}")
    lr = float(base_lr) * int(batch_size) / float(reference_batch)
    warm = min(1000, spe - 1) if warmup_steps is None else int(warmup_steps)
    return WarmupStepDecay(lr, [m * spe for m in miles], gamma=gamma, warmup_steps=max(warm, 0),
                           warmup_start_factor=warmup_start_factor, name="keypoint_rcnn_lr")


def keypoint_rcnn_optimizer(steps_per_epoch, epochs, batch_size, milestones_epochs=(36, 43), base_lr=0.02,
                            reference_batch=16, *, gamma=0.1, momentum=0.9, weight_decay=1e-4,
                            warmup_steps=None, warmup_start_factor=1.0 / 1000, schedule=None):
    """SGD of the seed / torchvision reference: momentum 0.9, weight decay 1e-4, warm-up, MultiStep.

    ``lr = base_lr * batch_size / reference_batch`` (torchvision's 0.02 is for
    16 images per step, 8 GPUs x 2; linear scaling, Goyal et al. 2017), a linear
    warm-up from ``warmup_start_factor`` over ``min(1000, steps_per_epoch - 1)``
    steps (the seed's first-epoch ``LinearLR``), then times ``gamma`` at each
    milestone epoch (``milestone * steps_per_epoch`` optimizer steps). A
    milestone at or beyond ``epochs`` is never reached: the seed trains 42
    epochs with milestones ``(36, 43)``, so only the decay at epoch 36 happens.

    Args:
        steps_per_epoch: optimizer steps per epoch.
        epochs: length of the run (for the docstring's rule; not used to drop milestones).
        batch_size: images per step.
        milestones_epochs: epochs at which the rate drops by ``gamma``.
        base_lr: rate at ``reference_batch`` images per step.
        schedule: use this one (kept by the caller to re-plan it) instead of
            :func:`keypoint_rcnn_schedule` of the arguments above.

    Returns:
        ``keras.optimizers.SGD`` with a :class:`pose_lab.training.schedules.WarmupStepDecay`.
    """
    if int(epochs) < 1:
        raise ValueError(f"epochs: expected an int >= 1, got {epochs!r}")
    if schedule is None:
        schedule = keypoint_rcnn_schedule(steps_per_epoch, batch_size, milestones_epochs, base_lr, reference_batch,
                                          gamma=gamma, warmup_steps=warmup_steps,
                                          warmup_start_factor=warmup_start_factor)
    return keras.optimizers.SGD(learning_rate=schedule, momentum=momentum, weight_decay=weight_decay)


def train_for_minutes(model, stream, minutes, *, milestones_epochs=(36, 43), reference_epochs=42, base_lr=0.02,
                      probe_steps=6, max_steps=None, callbacks=(), verbose=2):
    """Train ``model`` on ``stream`` for a time budget with the seed's schedule scaled to it.

    1. Probe: ``2 + probe_steps`` steps with ``SGD(0)`` (no momentum, no decay:
       the weights do not change) trace the step and time it.
    2. Plan: the number of epochs the rest of the budget allows at that rate
       (at least 2), and the seed's milestones ``(36, 43)`` of its 42 epochs
       scaled to them (the second is never reached, as in the seed).
    3. Train: :func:`keypoint_rcnn_optimizer` for that plan, stopped by
       :class:`~pose_lab.training.callbacks.TimeLimit` at the budget (or at
       ``max_steps``). The probe's scenes are skipped (``stream.on_epoch_end()``).
       Without ``max_steps``, :class:`~pose_lab.training.callbacks.FitScheduleToBudget`
       re-plans the milestones from the run's own rate after every epoch
       (:func:`~pose_lab.training.base.fit_within_budget`), so the decay
       falls at the same fraction of the budget when the probe's rate was off.

    Args:
        model: a compiled or uncompiled :class:`KeypointRCNN`.
        stream: a ``keras.utils.PyDataset`` of ``(images, targets)`` with a
            ``batch_size`` attribute, e.g. :class:`pose_lab.data.keypoint_rcnn.SceneStream`.
        minutes: the whole budget, probe and tracing included.
        milestones_epochs, reference_epochs: the schedule to scale (the seed's).
        base_lr: rate at 16 images per step (scaled to the stream's batch size).
        probe_steps: timed probe steps; 0 skips the probe (plan from ``max_steps``; smoke runs).
        max_steps: optional cap on the training steps.
        callbacks: more ``fit()`` callbacks.
        verbose: ``fit()`` verbosity.

    Returns:
        ``(history, plan)``: the ``keras.callbacks.History`` and a dict with
        ``steps_per_second`` (probe; ``None`` without), ``epochs``, ``steps_per_epoch``,
        ``milestones_epochs`` (scaled, the probe's plan), ``final_planned_steps`` and
        ``replans`` (``(step, planned_steps)`` each) of the re-plan, ``steps`` (run),
        ``minutes`` (wall, all included).
    """
    t0 = time.perf_counter()
    if not float(minutes) > 0:
        raise ValueError(f"minutes: expected a positive number, got {minutes!r}")
    batch = getattr(stream, "batch_size", None)
    if not isinstance(stream, keras.utils.PyDataset) or not batch:
        raise ValueError("stream: expected a keras.utils.PyDataset with a batch_size (e.g. SceneStream), "
                         f"got {type(stream).__name__}")
    spe = len(stream)
    if int(probe_steps) == 0 and max_steps is None:
        raise ValueError("probe_steps=0 (no probe) needs max_steps to plan the schedule")
    rate = None
    if int(probe_steps) > 0:
        model.compile(keras.optimizers.SGD(0.0))
        rate = steps_per_second(model, stream, steps=int(probe_steps), warmup_steps=2, restore_epoch=False)
        stream.on_epoch_end()  # fresh scenes for the run
    left = float(minutes) * 60.0 - (time.perf_counter() - t0) - 10.0  # ~10 s to trace the real step
    steps = math.inf if rate is None else max(left, 1.0) * rate
    if max_steps is not None:
        steps = min(steps, int(max_steps))
    epochs = max(2, int(math.ceil(steps / spe)))
    miles = tuple(m * epochs / float(reference_epochs) for m in milestones_epochs)
    schedule = keypoint_rcnn_schedule(spe, int(batch), milestones_epochs=miles, base_lr=base_lr)
    model.compile(keypoint_rcnn_optimizer(spe, epochs, int(batch), schedule=schedule))
    # a plan from the probe alone follows the budget: the milestones move with the run's own rate
    history, limit, fitter = fit_within_budget(model, stream, max(left, 1.0), schedule, epochs * spe,
                                               replan=rate is not None and max_steps is None, max_steps=max_steps,
                                               callbacks=callbacks, verbose=verbose)
    plan = {"steps_per_second": rate, "epochs": epochs, "steps_per_epoch": spe, "milestones_epochs": miles,
            "final_planned_steps": fitter.planned_steps if fitter else epochs * spe,
            "replans": list(fitter.replans) if fitter else [],
            "steps": limit.steps, "minutes": (time.perf_counter() - t0) / 60.0}
    return history, plan
