"""Top-down 2D keypoint models: SimpleBaseline heatmaps and coordinate regressors.

Assembles a backbone (:mod:`pose_lab.models.backbones`) and a head
(:mod:`pose_lab.models.heads`) into one functional ``keras.Model`` that maps a
person crop to keypoints:

* :func:`build_heatmap_model`: crop ``(B, H, W, 3)`` -> heatmaps
  ``(B, H/4, W/4, J)`` (SimpleBaseline; with the paper's three deconvolutions).
* :func:`build_regression_model`: crop -> ``(B, J, 2)`` keypoints in crop
  pixels, either by global pooling + Dense (``head="dense"``) or through a
  heatmap head read by a spatial soft-argmax (``head="soft_argmax"``).

Images are float RGB in ``[0, input_scale]`` (255 by default).
Training lives in :mod:`pose_lab.training.keypoints2d`, prediction, flip test and
COCO evaluation in :mod:`pose_lab.evaluation.keypoints2d`, the losses in :mod:`pose_lab.losses`.
"""

from __future__ import annotations

import keras

from pose_lab.models.backbones import build_backbone
from pose_lab.models.heads import SpatialSoftArgmax, deconv_head, regression_head

__all__ = ["build_heatmap_model", "build_regression_model", "heatmap_stride"]


def heatmap_stride(model) -> float:
    """Input pixels per heatmap pixel of a heatmap model (e.g. 4.0 for 256x192 -> 64x48)."""
    in_w = model.input_shape[2]
    out_w = model.output_shape[2]
    if in_w is None or out_w is None:
        raise ValueError(
            f"heatmap_stride needs static input/output widths, got {model.input_shape} -> {model.output_shape}"
        )
    return float(in_w) / float(out_w)


def _backbone(backbone, input_shape, weights, input_scale, backbone_kwargs):
    if isinstance(backbone, keras.Model):
        return backbone
    return build_backbone(backbone, input_shape, weights=weights, input_scale=input_scale, **(backbone_kwargs or {}))


def build_heatmap_model(
    backbone="resnet50",
    input_shape=(256, 192, 3),
    num_joints=17,
    weights=None,
    head_filters=256,
    head_layers=3,
    head_kernel=4,
    features="stride32",
    skip_connections=False,
    input_scale=255.0,
    backbone_kwargs=None,
    name=None,
):
    """SimpleBaseline: backbone stride-32 features -> deconvolution head -> heatmaps.

    Args:
        backbone: ``"resnet50"``, ``"small"`` (:func:`~pose_lab.models.backbones.small_resnet_backbone`)
            or an already built backbone model (a dict output with ``"stride32"``).
        input_shape: crop ``(H, W, 3)``, multiples of 32 (paper: 256x192).
        num_joints: heatmaps (17 for COCO).
        weights: backbone weights, ``None`` or ``"imagenet"`` (ResNet-50 only).
        head_filters: transposed-conv filters (int or one per layer; paper: 256).
        head_layers: stride-2 transposed convs (paper: 3, i.e. stride 4 heatmaps).
        head_kernel: transposed-conv kernel size (paper: 4).
        features: backbone output the head starts from (paper: ``"stride32"``).
            Small CPU models can start from ``"stride16"`` with ``head_layers=2``
            (same stride-4 heatmaps, more spatial detail from the backbone).
        skip_connections: add lateral connections from the backbone's finer
            feature maps to the head (see :func:`~pose_lab.models.heads.deconv_head`);
            off in the paper, useful for small networks trained from scratch.
        input_scale: pixel value of white in the input images.
        backbone_kwargs: extra arguments of the backbone builder (e.g. ``widths``).
        name: model name (default ``"simplebaseline_<backbone>"``).

    Returns:
        Functional ``keras.Model`` ``(B, H, W, 3)`` -> ``(B, H/s, W/s, J)`` heatmap
        logits with ``s = feature stride / 2**head_layers`` (see :func:`heatmap_stride`).

    Example:
        >>> m = build_heatmap_model("small", (128, 96, 3), head_filters=64)
        >>> m.output_shape
        (None, 32, 24, 17)
    """
    bb = _backbone(backbone, input_shape, weights, input_scale, backbone_kwargs)
    inputs = keras.Input(bb.input_shape[1:], name="image")
    outputs = bb(inputs)
    if features not in outputs:
        raise ValueError(f"features must be one of {sorted(outputs)}, got {features!r}")
    feats = outputs[features]
    skips = None
    if skip_connections:
        stride = int(features.replace("stride", ""))
        skips = [outputs.get(f"stride{stride // 2 ** (i + 1)}") for i in range(int(head_layers))]
    heatmaps = deconv_head(feats, num_joints, head_filters, head_layers, head_kernel, skips=skips, name="head")
    label = backbone if isinstance(backbone, str) else bb.name
    return keras.Model(inputs, heatmaps, name=name or f"simplebaseline_{label}")


def build_regression_model(
    backbone="resnet50",
    input_shape=(256, 192, 3),
    num_joints=17,
    weights=None,
    head="dense",
    head_filters=256,
    head_layers=3,
    beta=1.0,
    hidden=None,
    input_scale=255.0,
    backbone_kwargs=None,
    name=None,
):
    """Coordinate regression: crop -> ``(B, J, 2)`` keypoints in crop pixels.

    Args:
        backbone, input_shape, num_joints, weights, input_scale, backbone_kwargs:
            as :func:`build_heatmap_model`.
        head: ``"dense"`` (global average pooling + Dense, the direct regression
            that heatmaps outperform) or ``"soft_argmax"`` (the SimpleBaseline head
            followed by :class:`~pose_lab.models.heads.SpatialSoftArgmax`,
            integral regression).
        head_filters, head_layers: deconvolution head of ``"soft_argmax"``.
        beta: soft-argmax inverse temperature.
        hidden: optional hidden Dense width of the ``"dense"`` head.
        name: model name.

    Returns:
        Functional ``keras.Model`` ``(B, H, W, 3)`` -> ``(B, J, 2)`` ``(x, y)`` in
        input pixels (pixel centres at integers).
    """
    if head not in ("dense", "soft_argmax"):
        raise ValueError(f"head must be 'dense' or 'soft_argmax', got {head!r}")
    bb = _backbone(backbone, input_shape, weights, input_scale, backbone_kwargs)
    in_shape = bb.input_shape[1:]
    inputs = keras.Input(in_shape, name="image")
    feats = bb(inputs)["stride32"]
    if head == "dense":
        coords = regression_head(feats, num_joints, coord_scale=max(in_shape[0], in_shape[1]), hidden=hidden)
    else:
        hm = deconv_head(feats, num_joints, head_filters, head_layers, name="head")
        stride = in_shape[1] / hm.shape[2]
        coords = SpatialSoftArgmax(beta=beta, stride=stride, name="soft_argmax")(hm)
    label = backbone if isinstance(backbone, str) else bb.name
    return keras.Model(inputs, coords, name=name or f"regression_{head}_{label}")
