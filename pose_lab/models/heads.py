"""Keypoint heads: SimpleBaseline deconvolution head, coordinate regression, soft-argmax.

* :func:`deconv_head` — Xiao et al. 2018, "Simple Baselines for Human Pose
  Estimation and Tracking": ``num_layers`` transposed convolutions (kernel 4,
  stride 2, ``use_bias=False``) each followed by BatchNorm + ReLU, then a 1x1
  convolution to one heatmap per joint. With three layers the stride-32
  backbone features come back to stride 4 (256x192 input -> 64x48 heatmaps).
* :func:`regression_head` — global average pooling + Dense to ``(J, 2)``
  coordinates: the direct-regression design (DeepPose-style) that heatmaps
  replaced; kept for the comparison in notebook 02.
* :class:`SpatialSoftArgmax` — a differentiable argmax (expected position under
  a spatial softmax), which turns a heatmap head into a coordinate regressor
  ("integral regression", Sun et al. 2018). Keypoint R-CNN's keypoint head
  (seed 002) uses the same spatial softmax over a 56x56 mask per keypoint.

Heads are functions applied to a feature tensor inside a functional model, so
the assembled model stays a plain functional ``keras.Model``; the heatmap and
coordinate outputs are computed in float32 even under mixed precision.

Coordinates follow the kit's convention (:mod:`pose_lab.heatmaps`): integer
values are pixel centres, heatmap cell ``u`` <-> input pixel ``u * stride``.
"""

from __future__ import annotations

import keras
from keras import layers

from pose_lab.heatmaps import soft_argmax

__all__ = ["deconv_head", "regression_head", "SpatialSoftArgmax"]


def _as_filters(filters, num_layers):
    if isinstance(filters, int):
        filters = (filters,) * int(num_layers)
    filters = tuple(int(f) for f in filters)
    if len(filters) != int(num_layers) or any(f < 1 for f in filters):
        raise ValueError(
            f"filters must be a positive int or one positive int per layer ({num_layers} layers), got {filters}"
        )
    return filters


def deconv_head(features, num_joints=17, filters=256, num_layers=3, kernel_size=4, skips=None, name="head"):
    """SimpleBaseline deconvolution head applied to a feature tensor.

    Args:
        features: ``(B, h, w, C)`` tensor (a backbone's ``"stride32"`` output).
        num_joints: number of heatmaps (17 for COCO).
        filters: filters of every transposed conv (256 in the paper), or one
            value per layer.
        num_layers: number of stride-2 transposed convolutions (3 in the paper;
            each doubles the resolution).
        kernel_size: transposed-conv kernel (4 in the paper).
        skips: optional list of backbone tensors, one per layer (or ``None``
            entries), at the resolution of that layer's output. Each is
            projected by a 1x1 conv + BN and added before the ReLU (FPN/U-Net
            style lateral connections). Not in the paper, whose head has no
            skips; they make small networks trained from scratch learn
            localisation much faster.
        name: prefix of the layer names.

    Weights are initialised as in the reference code: normal with std 0.001
    for the transposed and final convolutions, zero bias, so the initial
    heatmaps are close to zero (the value of most target pixels).

    Returns:
        Heatmap logits ``(B, h * 2**num_layers, w * 2**num_layers, num_joints)``, float32.

    Example:
        >>> x = keras.Input((8, 6, 2048))
        >>> deconv_head(x).shape
        (None, 64, 48, 17)
    """
    if int(num_layers) < 0:
        raise ValueError(f"num_layers must be >= 0, got {num_layers!r}")
    if int(num_joints) < 1:
        raise ValueError(f"num_joints must be >= 1, got {num_joints!r}")
    filters = _as_filters(filters, num_layers)
    skips = list(skips) if skips is not None else [None] * len(filters)
    if len(skips) != len(filters):
        raise ValueError(f"skips must have one entry per layer ({len(filters)}), got {len(skips)}")
    x = features
    for i, (f, skip) in enumerate(zip(filters, skips)):
        x = layers.Conv2DTranspose(
            f, kernel_size, strides=2, padding="same", use_bias=False,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.001), name=f"{name}_deconv{i + 1}",
        )(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn{i + 1}")(x)
        if skip is not None:
            if tuple(skip.shape[1:3]) != tuple(x.shape[1:3]):
                raise ValueError(
                    f"skips[{i}] has spatial size {tuple(skip.shape[1:3])}, layer {i + 1} outputs {tuple(x.shape[1:3])}"
                )
            s = layers.Conv2D(f, 1, use_bias=False, name=f"{name}_skip{i + 1}")(skip)
            s = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_skip{i + 1}_bn")(s)
            x = layers.Add(name=f"{name}_add{i + 1}")([x, s])
        x = layers.ReLU(name=f"{name}_relu{i + 1}")(x)
    return layers.Conv2D(
        int(num_joints), 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
        bias_initializer="zeros", dtype="float32", name=f"{name}_heatmaps",
    )(x)


def regression_head(features, num_joints=17, coord_scale=1.0, hidden=None, name="regression"):
    """Direct coordinate regression: global average pooling + Dense -> ``(J, 2)``.

    The Dense layer predicts normalised coordinates; a fixed ``Rescaling`` by
    ``coord_scale`` (e.g. the larger input side) turns them into input pixels,
    so the network's raw outputs stay of order one.

    Args:
        features: ``(B, h, w, C)`` tensor.
        num_joints: number of keypoints.
        coord_scale: pixels per unit of the Dense output.
        hidden: optional width of a hidden Dense + ReLU layer.
        name: prefix of the layer names.

    Returns:
        ``(B, num_joints, 2)`` ``(x, y)`` in input pixels, float32.
    """
    x = layers.GlobalAveragePooling2D(name=f"{name}_pool")(features)
    if hidden:
        x = layers.Dense(int(hidden), activation="relu", name=f"{name}_hidden")(x)
    x = layers.Dense(2 * int(num_joints), dtype="float32", name=f"{name}_dense")(x)
    x = layers.Reshape((int(num_joints), 2), dtype="float32", name=f"{name}_reshape")(x)
    return layers.Rescaling(float(coord_scale), dtype="float32", name=f"{name}_to_pixels")(x)


@keras.saving.register_keras_serializable(package="pose_lab")
class SpatialSoftArgmax(layers.Layer):
    """Expected ``(x, y)`` of each heatmap under a spatial softmax.

    ``p_j = softmax(beta * H[..., j])`` over the ``h * w`` cells; the output is
    ``stride * sum_{u,v} p_j(v, u) * (u, v)``, i.e. input pixels under the kit's
    convention. Differentiable, so a heatmap head can be trained with a
    coordinate loss (integral regression).

    Args:
        beta: inverse temperature applied to the logits (1.0 for a head trained
            through the layer, which learns its own scale; 50-100 to read
            Gaussian-target heatmaps with values in ``[0, 1]``).
        stride: input pixels per heatmap pixel.

    Input: ``(B, h, w, J)``. Output: ``(B, J, 2)`` float32.

    Example:
        >>> hm = keras.ops.zeros((1, 8, 8, 2))
        >>> SpatialSoftArgmax(stride=4.0)(hm)   # uniform -> the centre (3.5, 3.5) * 4
    """

    def __init__(self, beta=1.0, stride=1.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not float(beta) > 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        if not float(stride) > 0:
            raise ValueError(f"stride must be > 0, got {stride!r}")
        self.beta = float(beta)
        self.stride = float(stride)

    def call(self, inputs):
        return soft_argmax(inputs, beta=self.beta) * self.stride

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"SpatialSoftArgmax expects (B, h, w, J) heatmaps, got shape {input_shape}")
        return (input_shape[0], input_shape[3], 2)

    def get_config(self):
        config = super().get_config()
        config.update({"beta": self.beta, "stride": self.stride})
        return config
