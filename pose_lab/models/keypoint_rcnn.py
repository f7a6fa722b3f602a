"""Keypoint R-CNN sub-networks (He et al., Mask R-CNN 2017, section 5; seed 002).

Builders of the four trainable parts of a two-stage keypoint detector, each a
functional ``keras.Model``; :class:`pose_lab.training.keypoint_rcnn.KeypointRCNN`
holds them together with the anchor / sampling machinery
(:mod:`pose_lab.boxes`, :mod:`pose_lab.roi`, :mod:`pose_lab.losses`):

* :func:`build_feature_network`: backbone + feature pyramid. Images
  ``(B, H, W, 3)`` in ``[0, 255]`` -> a dict ``{"p2": (B, H/4, W/4, C), ...}``
  keyed by the pyramid level ``l`` (stride ``2^l``).
* :func:`build_rpn_head`: the region proposal network's head, shared by all
  levels: 3x3 conv + ReLU, then 1x1 convs to ``A`` objectness logits and
  ``4 A`` box deltas per cell (channels ``a * 4 + (t_x, t_y, t_w, t_h)``, the
  anchor order of :func:`pose_lab.boxes.generate_anchors`).
* :func:`build_box_head`: RoIAlign features ``(K, 7, 7, C)`` -> two FC layers ->
  class logits ``(K, 2)`` (background, person) and class-specific deltas ``(K, 8)``.
* :func:`build_keypoint_head`: RoIAlign features ``(K, 14, 14, C)`` -> ``n``
  3x3 conv + ReLU -> a stride-2 transposed conv to ``(K, 28, 28, 17)`` logits ->
  (``"paper"``) bilinear x2 to ``(K, 56, 56, 17)``. Channels-last throughout
  (torchvision: ``(K, 17, 56, 56)``).

Two configurations, :data:`KEYPOINT_RCNN_CONFIGS`:

* ``"paper"``: torchvision's ``keypointrcnn_resnet50_fpn``: ResNet-50, FPN P2-P5
  with 256 channels plus P6 (a stride-2 max-pool of P5, used by the RPN only),
  one anchor size per level (32 ... 512) and three aspect ratios, box head
  2 x 1024, keypoint head 8 x 512 convs, 56 x 56 heatmaps.
* ``"cpu"``: an FPN over strides 4-32 of the small backbone (that of the kit's
  ``pose2d-synthetic-small`` checkpoint; the top-down pathway brings the deeper stages'
  context into the fine maps, whose backbone features alone have 16-32
  channels and a small receptive field), 64 channels, read out at two levels
  only: P3 (stride 8) for the RPN (three anchor sizes) and the box head, P2
  (stride 4) for the keypoint head (the level torchvision's rule,
  ``floor(4 + log2(sqrt(area) / 224))``, picks for people under 112 pixels,
  i.e. most of the kit's); box head 2 x 256, keypoint head 4 x 128 convs,
  56 x 56 heatmaps (28 x 28 bilinearly upsampled, as ``"paper"``). **Why one
  level per head on a CPU**:
  with static shapes every RoI is RoIAligned on every level and the level is
  chosen by a mask afterwards (the level assignment of torchvision's
  ``MultiScaleRoIAlign`` would need a gather into per-level lists of variable
  length), so L levels cost L times the RoIAlign work, which dominates the step
  on two cores; and the people of the kit's 256x256 synthetic scenes span a
  narrow size range (about 40-200 pixels high), which one stride-8 map with
  anchors of 32, 64 and 128 pixels covers.

Differences from torchvision are listed in :mod:`pose_lab.training.keypoint_rcnn`.

Example:
    >>> cfg = KEYPOINT_RCNN_CONFIGS["cpu"]
    >>> feats = build_feature_network("cpu", (256, 256))
    >>> feats.output["p3"].shape, feats.output["p2"].shape
    ((None, 32, 32, 64), (None, 64, 64, 64))
"""

from __future__ import annotations

import copy

import keras
from keras import layers

from pose_lab.models.backbones import backbone_for_image_size, build_backbone

__all__ = [
    "KEYPOINT_RCNN_CONFIGS",
    "keypoint_rcnn_config",
    "build_feature_network",
    "build_rpn_head",
    "build_box_head",
    "build_keypoint_head",
    "backbone_for_image_size",
    "level_name",
]

#: Architecture and training settings of the two configurations (see the module docstring).
#: ``levels``: pyramid levels given to the RPN and the box head's RoIAlign (stride ``2^l``);
#: ``keypoint_levels``: those of the keypoint head's RoIAlign (default ``levels``); ``fpn_levels``:
#: the backbone levels merged by the FPN's top-down pathway (a superset of both; default ``levels``); ``extra_pool_level``: a max-pooled level above them for the RPN only (``None``: none). Sampling settings are
#: torchvision's for ``"paper"`` and scaled down for ``"cpu"``.
KEYPOINT_RCNN_CONFIGS = {
    "cpu": {
        "backbone": "small",
        # the backbone of the shipped pose2d-synthetic-small (pretrained.backbone_kwargs, written out: models sit
        # below pretrained); backbone_for_image_size builds the same network
        "backbone_kwargs": {"widths": (16, 32, 64, 128)},
        "levels": (3,),
        "keypoint_levels": (2,),
        "fpn_levels": (2, 3, 4, 5),
        "extra_pool_level": None,
        "fpn_channels": 64,
        "anchor_sizes": ((32, 64, 128),),
        "aspect_ratios": (0.5, 1.0, 2.0),
        "box_roi_size": 7,
        "box_representation": 256,
        "keypoint_roi_size": 14,
        "keypoint_convs": 4,
        "keypoint_filters": 128,
        "heatmap_upsample": 2,  # 14 -> 28 by the transposed conv, bilinear to 56 (as "paper")
        "num_keypoints": 17,
        # RPN
        "rpn_fg_iou": 0.7,
        "rpn_bg_iou": 0.3,
        "rpn_batch_per_image": 256,
        "rpn_positive_fraction": 0.5,
        "rpn_pre_nms_top_n_train": 600,
        "rpn_pre_nms_top_n_test": 300,
        "rpn_post_nms_top_n_train": 128,
        "rpn_post_nms_top_n_test": 64,
        "rpn_nms_iou": 0.7,
        # RoI heads
        "roi_iou": 0.5,
        "roi_batch_per_image": 64,
        "roi_positive_fraction": 0.25,
        "detection_score_threshold": 0.05,
        "detection_nms_iou": 0.5,
        "detections_per_image": 20,
    },
    "paper": {
        "backbone": "resnet50",
        "backbone_kwargs": {},
        "levels": (2, 3, 4, 5),
        "keypoint_levels": (2, 3, 4, 5),
        "fpn_levels": (2, 3, 4, 5),
        "extra_pool_level": 6,
        "fpn_channels": 256,
        "anchor_sizes": ((32,), (64,), (128,), (256,), (512,)),
        "aspect_ratios": (0.5, 1.0, 2.0),
        "box_roi_size": 7,
        "box_representation": 1024,
        "keypoint_roi_size": 14,
        "keypoint_convs": 8,
        "keypoint_filters": 512,
        "heatmap_upsample": 2,  # 28 -> 56 bilinear, as torchvision's KeypointRCNNPredictor
        "num_keypoints": 17,
        "rpn_fg_iou": 0.7,
        "rpn_bg_iou": 0.3,
        "rpn_batch_per_image": 256,
        "rpn_positive_fraction": 0.5,
        "rpn_pre_nms_top_n_train": 2000,
        "rpn_pre_nms_top_n_test": 1000,
        "rpn_post_nms_top_n_train": 2000,
        "rpn_post_nms_top_n_test": 1000,
        "rpn_nms_iou": 0.7,
        "roi_iou": 0.5,
        "roi_batch_per_image": 512,
        "roi_positive_fraction": 0.25,
        "detection_score_threshold": 0.05,
        "detection_nms_iou": 0.5,
        "detections_per_image": 100,
    },
}


def keypoint_rcnn_config(config="cpu", **overrides) -> dict:
    """A copy of ``KEYPOINT_RCNN_CONFIGS[config]`` (or of a dict) with ``overrides`` applied."""
    if isinstance(config, str):
        if config not in KEYPOINT_RCNN_CONFIGS:
            raise ValueError(f"config: expected one of {sorted(KEYPOINT_RCNN_CONFIGS)} or a dict, got {config!r}")
        base = KEYPOINT_RCNN_CONFIGS[config]
    elif isinstance(config, dict):
        base = config
    else:
        raise ValueError(f"config: expected one of {sorted(KEYPOINT_RCNN_CONFIGS)} or a dict, got {config!r}")
    out = copy.deepcopy(base)
    unknown = set(overrides) - set(KEYPOINT_RCNN_CONFIGS["paper"])
    if unknown:
        raise ValueError(f"overrides: unknown setting(s) {sorted(unknown)}; "
                         f"known: {sorted(KEYPOINT_RCNN_CONFIGS['paper'])}")
    out.update(overrides)
    return out


def level_name(level: int) -> str:
    """The feature dict key of pyramid level ``level`` (stride ``2^level``): ``"p3"``."""
    return f"p{int(level)}"


def _image_shape(image_size):
    try:
        h, w = (int(s) for s in tuple(image_size)[:2])
    except (TypeError, ValueError):
        raise ValueError(f"image_size: expected (height, width), got {image_size!r}") from None
    if h < 32 or w < 32 or h % 32 or w % 32:
        raise ValueError(f"image_size: expected (height, width) multiples of 32 and >= 32, got {image_size!r}")
    return h, w


def build_feature_network(config="cpu", image_size=(256, 256), *, backbone=None, name="features"):
    """Backbone + feature pyramid: images -> ``{"p<l>": (B, H / 2^l, W / 2^l, C)}``.

    FPN (Lin et al. 2017) as torchvision's ``FeaturePyramidNetwork``: a 1x1
    lateral conv per backbone level of ``fpn_levels`` to ``fpn_channels``, a
    top-down pathway (nearest x2 upsampling + add), a 3x3 conv on every merged
    map that is an output level (``levels`` and ``keypoint_levels``), and with
    ``extra_pool_level`` a stride-2 max-pool (kernel 1) of the top RPN level.
    ``"cpu"`` merges strides 4-32 and outputs P2 and P3.

    Args:
        config: ``"cpu"``, ``"paper"`` or a config dict (:func:`keypoint_rcnn_config`).
        image_size: ``(height, width)`` in pixels, multiples of 32.
        backbone: optional built backbone (images -> ``{"stride4", ..., "stride32"}``),
            e.g. :func:`backbone_for_image_size`; default: built from the config.
        name: model name.

    Returns:
        Functional ``keras.Model`` with a dict output, one entry per level
        (plus the pooled level).
    """
    cfg = keypoint_rcnn_config(config)
    h, w = _image_shape(image_size)
    if backbone is None:
        backbone = build_backbone(cfg["backbone"], (h, w, 3), **cfg["backbone_kwargs"])
    if not isinstance(backbone, keras.Model):
        raise ValueError("backbone: expected a keras.Model (images -> dict of feature maps), "
                         f"got {type(backbone).__name__}")
    in_shape = tuple(backbone.input_shape[1:3])
    if in_shape != (h, w):
        raise ValueError(f"backbone: expected input size {(h, w)} (image_size), got {in_shape}; "
                         "see backbone_for_image_size")
    if not isinstance(backbone.output, dict):
        raise ValueError("backbone: expected dict outputs {'stride4', ..., 'stride32'}")
    rpn_levels = sorted(int(l) for l in cfg["levels"])
    levels = sorted(set(rpn_levels) | {int(l) for l in cfg.get("keypoint_levels") or ()})
    fpn_levels = sorted({int(l) for l in cfg.get("fpn_levels") or levels})
    if not set(levels) <= set(fpn_levels):
        raise ValueError(f"config['fpn_levels']: expected a superset of levels and keypoint_levels {levels}, "
                         f"got {fpn_levels}")
    keys = [f"stride{2 ** l}" for l in fpn_levels]
    missing = [k for k in keys if k not in backbone.output]
    if missing:
        raise ValueError(f"levels: the backbone has no output(s) {missing} for levels {levels}; "
                         f"it has {sorted(backbone.output)}")
    if len(keys) < len(backbone.output):
        # only the stages that feed a used level: no weights without gradient (e.g. stages 3-4 for "cpu")
        backbone = keras.Model(backbone.inputs, {k: backbone.output[k] for k in keys}, name=backbone.name)
    inputs = keras.Input((h, w, 3), name="image")
    feats = backbone(inputs)
    c = int(cfg["fpn_channels"])
    laterals = {}
    for l in fpn_levels:
        key = f"stride{2 ** l}"
        laterals[l] = layers.Conv2D(c, 1, name=f"fpn_lateral{l}")(feats[key])
    outputs = {}
    top = None
    for l in reversed(fpn_levels):
        x = laterals[l]
        if top is not None:
            x = layers.Add(name=f"fpn_merge{l}")([x, layers.UpSampling2D(2, name=f"fpn_up{l}")(top)])
        top = x
        if l in levels:
            outputs[level_name(l)] = layers.Conv2D(c, 3, padding="same", name=f"fpn_output{l}")(x)
    if cfg["extra_pool_level"] is not None:
        extra = int(cfg["extra_pool_level"])
        outputs[level_name(extra)] = layers.MaxPooling2D(1, strides=2, name=f"fpn_pool{extra}")(
            outputs[level_name(rpn_levels[-1])])
    return keras.Model(inputs, {k: outputs[k] for k in sorted(outputs, key=lambda s: int(s[1:]))}, name=name)


def build_rpn_head(channels, num_anchors, name="rpn_head"):
    """The RPN head shared by all levels: feature map ``(B, h, w, C)`` -> (objectness, deltas).

    torchvision's ``RPNHead``: 3x3 conv + ReLU, then 1x1 convs to ``A``
    logits and ``4 A`` deltas; weights ``N(0, 0.01)``, biases 0.

    Returns:
        Functional ``keras.Model`` (any spatial size) -> ``[(B, h, w, A), (B, h, w, 4 A)]``.
    """
    init = keras.initializers.RandomNormal(stddev=0.01)
    inputs = keras.Input((None, None, int(channels)), name="feature")
    x = layers.Conv2D(int(channels), 3, padding="same", activation="relu", kernel_initializer=init,
                      name="rpn_conv")(inputs)
    obj = layers.Conv2D(int(num_anchors), 1, kernel_initializer=init, name="rpn_objectness")(x)
    deltas = layers.Conv2D(4 * int(num_anchors), 1, kernel_initializer=init, name="rpn_deltas")(x)
    return keras.Model(inputs, [obj, deltas], name=name)


def build_box_head(channels, roi_size=7, representation=1024, num_classes=2, name="box_head"):
    """Fast R-CNN box head: ``(K, S, S, C)`` RoI features -> (class logits ``(K, n)``, deltas ``(K, 4 n)``).

    torchvision's ``TwoMLPHead`` + ``FastRCNNPredictor`` (class 0 background;
    class-specific deltas, scaled by :data:`pose_lab.boxes.ROI_BOX_WEIGHTS`).
    """
    inputs = keras.Input((int(roi_size), int(roi_size), int(channels)), name="roi_features")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(int(representation), activation="relu", name="fc6")(x)
    x = layers.Dense(int(representation), activation="relu", name="fc7")(x)
    logits = layers.Dense(int(num_classes), kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                          name="class_logits")(x)
    deltas = layers.Dense(4 * int(num_classes), kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
                          name="box_deltas")(x)
    return keras.Model(inputs, [logits, deltas], name=name)


def build_keypoint_head(channels, roi_size=14, num_convs=8, filters=512, num_keypoints=17, upsample=2,
                        name="keypoint_head"):
    """Keypoint head: ``(K, 14, 14, C)`` -> heatmap logits ``(K, 28 * upsample, 28 * upsample, J)``.

    torchvision's ``KeypointRCNNHeads`` (``num_convs`` 3x3 convs + ReLU, He
    init) and ``KeypointRCNNPredictor`` (a 4x4 stride-2 transposed conv to
    ``J`` channels, then bilinear upsampling by ``upsample``; half-pixel
    centres as ``align_corners=False``).
    """
    he = keras.initializers.HeNormal()
    inputs = keras.Input((int(roi_size), int(roi_size), int(channels)), name="roi_features")
    x = inputs
    for i in range(int(num_convs)):
        x = layers.Conv2D(int(filters), 3, padding="same", activation="relu", kernel_initializer=he,
                          name=f"kp_conv{i + 1}")(x)
    x = layers.Conv2DTranspose(int(num_keypoints), 4, strides=2, padding="same", kernel_initializer=he,
                               name="kp_score_lowres")(x)
    if int(upsample) > 1:
        x = layers.UpSampling2D(int(upsample), interpolation="bilinear", name="kp_upsample")(x)
    return keras.Model(inputs, x, name=name)
