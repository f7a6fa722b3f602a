"""Encoders and heads for self-supervised pose features: SimCLR and SimSiam (seed 000).

The seed used a ResNet-50 encoder with a projection head (SimCLR) and, for
SimSiam, a projection head plus a prediction head. The builders here follow
the published heads exactly and take any of the kit's backbones as encoder:

* :func:`build_encoder`: backbone -> global average pooling of its
  ``stride32`` features (the representation ``h`` that probes read; 2048-d for
  ResNet-50, ``widths[-1]`` for the small CPU backbone).
* :func:`simclr_projection_head`: SimCLR's ``g(h)``, as in google-research/simclr
  (``tf2/model.py`` ``ProjectionHead``): ``num_layers`` blocks of Dense (no bias) -
  BatchNorm - ReLU, the last one without ReLU and with a BatchNorm that has no
  centring (``center=False``: no beta, so no bias on the output).
* :func:`simsiam_projector`: SimSiam's 3-layer projection MLP: Dense - BN - ReLU,
  Dense - BN - ReLU, Dense - BN with no affine parameters (``center=False,
  scale=False``), as in the paper (section 4.4) and facebookresearch/simsiam.
* :func:`simsiam_predictor`: the bottleneck prediction MLP ``d -> d/4 -> d``:
  Dense - BN - ReLU, then Dense with a bias and no BN.

``synchronized=True`` gives BatchNorm layers that use the statistics of the
global batch under ``tf.distribute`` (SimCLR's "global BN"; TensorFlow only:
under JAX ``keras.distribution.DataParallel`` works on global arrays already).
"""

from __future__ import annotations

import keras
from keras import layers

from pose_lab.models.backbones import build_backbone
from pose_lab.validation import positive_int

__all__ = ["build_encoder", "simclr_projection_head", "simsiam_projector", "simsiam_predictor", "keypoint_probe"]


def _bn(name, synchronized=False, **kwargs):
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=synchronized, name=name, **kwargs)


def _bn_mlp(input_dim, hidden_dim, output_dim, num_layers, synchronized, name, **last_bn):
    """(Dense no bias - BN - ReLU) x (num_layers - 1), then Dense no bias - BN(**last_bn): both papers' heads."""
    input_dim = positive_int("input_dim", input_dim)
    hidden_dim = positive_int("hidden_dim", hidden_dim)
    output_dim = positive_int("output_dim", output_dim)
    num_layers = positive_int("num_layers", num_layers)
    inputs = keras.Input((input_dim,), name="features")
    x = inputs
    for i in range(num_layers - 1):
        x = layers.Dense(hidden_dim, use_bias=False, name=f"dense{i + 1}")(x)
        x = _bn(f"bn{i + 1}", synchronized)(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
    x = layers.Dense(output_dim, use_bias=False, name=f"dense{num_layers}")(x)
    x = _bn(f"bn{num_layers}", synchronized, **last_bn)(x)
    return keras.Model(inputs, x, name=name)


def build_encoder(backbone="small", input_shape=(128, 96, 3), *, features="stride32", backbone_kwargs=None,
                  weights=None, input_scale=255.0, name="encoder"):
    """A backbone followed by global average pooling: images -> feature vectors ``h``.

    Args:
        backbone: ``"small"``, ``"mobile"``, ``"resnet50"`` (see
            :func:`~pose_lab.models.backbones.build_backbone`) or a built backbone
            model with dict outputs (e.g. ``pretrained.load_backbone(...)``).
        input_shape: ``(H, W, 3)``, multiples of 32.
        features: which backbone output is pooled (default the last, ``"stride32"``).
        backbone_kwargs: extra arguments of the backbone builder (e.g. ``widths``).
        weights: ``None`` or ``"imagenet"`` (ResNet-50 only).
        input_scale: pixel value of white in the input images.
        name: model name.

    Returns:
        Functional ``keras.Model`` ``(B, H, W, 3)`` -> ``(B, C)``.

    Example:
        >>> enc = build_encoder("small", (64, 64, 3), backbone_kwargs={"widths": (8, 16, 32, 64)})
        >>> enc.output_shape
        (None, 64)
    """
    if isinstance(backbone, keras.Model):
        bb = backbone
    else:
        bb = build_backbone(backbone, tuple(input_shape), weights=weights, input_scale=input_scale,
                            **(backbone_kwargs or {}))
    inputs = keras.Input(bb.input_shape[1:], name="image")
    outputs = bb(inputs)
    if not isinstance(outputs, dict) or features not in outputs:
        keys = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
        raise ValueError(f"features: expected one of the backbone's outputs {keys}, got {features!r}")
    h = layers.GlobalAveragePooling2D(name="pool")(outputs[features])
    return keras.Model(inputs, h, name=name)


def simclr_projection_head(input_dim, hidden_dim=None, output_dim=128, num_layers=2, *, synchronized=False,
                           name="projection_head"):
    """SimCLR's projection head ``g``: (Dense - BN - ReLU) x (num_layers - 1), Dense - BN(center=False).

    Args:
        input_dim: size of the encoder features ``h``.
        hidden_dim: width of the hidden layers (default ``input_dim``, as SimCLR).
        output_dim: size of ``z`` (SimCLR: 128).
        num_layers: Dense layers (SimCLR v1: 2; v2: 3).
        synchronized: global-batch BatchNorm under ``tf.distribute``.
        name: model name.

    Returns:
        Functional ``keras.Model`` ``(B, input_dim)`` -> ``(B, output_dim)``.
    """
    return _bn_mlp(input_dim, hidden_dim or input_dim, output_dim, num_layers, synchronized, name, center=False)


def simsiam_projector(input_dim, output_dim=2048, hidden_dim=None, num_layers=3, *, synchronized=False,
                      name="projector"):
    """SimSiam's projection MLP: (Dense - BN - ReLU) x (num_layers - 1), Dense - BN(no affine).

    Args:
        input_dim: size of the encoder features.
        output_dim: size of ``z`` (paper: 2048).
        hidden_dim: width of the hidden layers (default ``output_dim``).
        num_layers: 3 in the paper (2 for CIFAR).
        synchronized: global-batch BatchNorm under ``tf.distribute``.
        name: model name.
    """
    return _bn_mlp(input_dim, hidden_dim or output_dim, output_dim, num_layers, synchronized, name, center=False,
                   scale=False)


def simsiam_predictor(dim, bottleneck_dim=None, *, synchronized=False, name="predictor"):
    """SimSiam's prediction MLP ``h``: Dense(d/4) - BN - ReLU - Dense(d) (bottleneck, output with bias).

    Args:
        dim: size of ``z`` and ``p``.
        bottleneck_dim: hidden width (paper: ``dim / 4``, 512 for 2048).
        synchronized: global-batch BatchNorm under ``tf.distribute``.
        name: model name.
    """
    dim = positive_int("dim", dim)
    bottleneck_dim = positive_int("bottleneck_dim", bottleneck_dim or max(1, dim // 4))
    inputs = keras.Input((dim,), name="z")
    x = layers.Dense(bottleneck_dim, use_bias=False, name="dense1")(inputs)
    x = _bn("bn1", synchronized)(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.Dense(dim, name="dense2")(x)
    return keras.Model(inputs, x, name=name)


def keypoint_probe(input_dim, num_layers=1, hidden=256, num_keypoints=17, *, input_size=(128, 96),
                   name=None):
    """A probe from frozen features to keypoints (seed 000's 1/2/3-layer regression heads).

    Standardisation (a ``Normalization`` layer: call ``probe.layers[1].adapt(features)``),
    then ``num_layers - 1`` Dense-ReLU layers of width ``hidden`` and a linear Dense
    layer to ``num_keypoints x 2`` coordinates in units of the crop size
    (``x / W``, ``y / H``; ``input_size`` is kept in the name only for the record).

    Returns:
        Functional ``keras.Model`` ``(B, input_dim)`` -> ``(B, num_keypoints, 2)``.
    """
    input_dim = positive_int("input_dim", input_dim)
    num_layers = positive_int("num_layers", num_layers)
    hidden = positive_int("hidden", hidden)
    inputs = keras.Input((input_dim,), name="features")
    x = layers.Normalization(name="standardize")(inputs)
    for i in range(num_layers - 1):
        x = layers.Dense(hidden, activation="relu", name=f"dense{i + 1}")(x)
    x = layers.Dense(num_keypoints * 2, name="keypoints")(x)
    x = layers.Reshape((num_keypoints, 2), name="xy")(x)
    return keras.Model(inputs, x, name=name or f"probe_{num_layers}layer_{input_size[0]}x{input_size[1]}")
