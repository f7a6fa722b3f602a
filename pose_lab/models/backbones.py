"""Convolutional backbones for the 2D keypoint models (and any image encoder).

Both builders return a **functional** ``keras.Model`` with one image input and
a *dict* of feature maps keyed by their stride relative to the input::

    {"stride4": (B, H/4, W/4, C2), "stride8": ..., "stride16": ..., "stride32": (B, H/32, W/32, C5)}

SimpleBaseline (Xiao et al. 2018) uses only ``"stride32"``; the intermediate
maps are there for feature pyramids, probes and visualisation.

Image convention (the whole kit): float RGB, pixel values in ``[0, input_scale]``
(``input_scale=255`` by default, so ``uint8`` images cast to float can be fed
directly, as for ``keras.applications``). Each backbone normalises its input
itself with :class:`ImagePreprocessing`, so the preprocessing is saved inside the
``.keras`` file and a student cannot forget it.

* :func:`resnet50_backbone` wraps ``keras.applications.ResNet50`` (``weights=None``
  here; ``weights="imagenet"`` downloads the ImageNet weights, for users with
  internet, e.g. on Colab). ImageNet ResNet-50 expects Caffe-style input (BGR,
  ImageNet mean subtracted, no scaling); :class:`ImagePreprocessing` does that.
* :func:`small_resnet_backbone` is a ResNet-style network (basic residual blocks,
  BN, ReLU) sized for CPU smoke runs: ~0.4 M parameters with the default widths
  against ~23.6 M for ResNet-50.
"""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = [
    "ImagePreprocessing",
    "resnet50_backbone",
    "small_resnet_backbone",
    "mobile_backbone",
    "inverted_residual",
    "build_backbone",
    "backbone_for_image_size",
    "FEATURE_KEYS",
    "RESNET50_FEATURE_LAYERS",
]

#: Output keys of every backbone, from finest to coarsest.
FEATURE_KEYS = ("stride4", "stride8", "stride16", "stride32")

#: The ``keras.applications.ResNet50`` layers exposed as features.
RESNET50_FEATURE_LAYERS = {
    "stride4": "conv2_block3_out",
    "stride8": "conv3_block4_out",
    "stride16": "conv4_block6_out",
    "stride32": "conv5_block3_out",
}

_IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="pose_lab")
class ImagePreprocessing(layers.Layer):
    """Normalise RGB images given in ``[0, input_scale]`` for a backbone.

    Args:
        mode: ``"caffe"``: rescale to ``[0, 255]``, RGB -> BGR and subtract the
            ImageNet mean per channel (what ImageNet ResNet-50 weights expect);
            ``"symmetric"``: rescale to ``[-1, 1]`` (for networks trained from
            scratch).
        input_scale: the pixel value of white in the input (255 for images in
            ``[0, 255]``, 1 for images in ``[0, 1]``).

    Example:
        >>> x = keras.ops.ones((1, 4, 4, 3)) * 255.0
        >>> y = ImagePreprocessing("symmetric")(x)   # all ones
    """

    def __init__(self, mode="caffe", input_scale=255.0, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "symmetric"):
            raise ValueError(f"mode must be 'caffe' or 'symmetric', got {mode!r}")
        if not float(input_scale) > 0:
            raise ValueError(f"input_scale must be > 0 (the value of a white pixel), got {input_scale!r}")
        self.mode = mode
        self.input_scale = float(input_scale)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "symmetric":
            return x * (2.0 / self.input_scale) - 1.0
        x = x * (255.0 / self.input_scale)
        x = ops.flip(x, axis=-1)  # RGB -> BGR
        return x - ops.convert_to_tensor(_IMAGENET_BGR_MEAN, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "input_scale": self.input_scale})
        return config


def _check_input_shape(input_shape, min_side=32):
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape!r}") from None
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3) for RGB images, got {input_shape!r}")
    h, w, _ = shape
    if h < min_side or w < min_side or h % 32 or w % 32:
        raise ValueError(
            f"input_shape {shape}: height and width must be multiples of 32 (the backbone's "
            f"output stride) and at least {min_side}, e.g. (256, 192, 3) or (128, 96, 3)"
        )
    return shape


def resnet50_backbone(input_shape=(256, 192, 3), weights=None, input_scale=255.0, name="resnet50_backbone"):
    """ResNet-50 (``keras.applications``) exposing its stride-4/8/16/32 feature maps.

    Args:
        input_shape: ``(height, width, 3)``, multiples of 32 (SimpleBaseline: 256x192).
        weights: ``None`` (random init) or ``"imagenet"`` (downloaded by Keras,
            needs internet; cached under ``~/.keras/models``).
        input_scale: value of a white pixel in the input images (see
            :class:`ImagePreprocessing`).
        name: model name.

    Returns:
        Functional ``keras.Model``: image ``(B, H, W, 3)`` -> dict
        ``{"stride4": (B, H/4, W/4, 256), "stride8": (.., 512), "stride16": (.., 1024),
        "stride32": (B, H/32, W/32, 2048)}``. The ResNet-50 itself is the nested
        model ``model.get_layer("resnet50")`` (freeze it with ``.trainable = False``).

    Example:
        >>> bb = resnet50_backbone((256, 192, 3))
        >>> bb.output["stride32"].shape
        (None, 8, 6, 2048)
    """
    shape = _check_input_shape(input_shape)
    if weights not in (None, "imagenet"):
        raise ValueError(f"weights must be None or 'imagenet', got {weights!r}")
    base = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=shape)
    features = keras.Model(
        base.input,
        [base.get_layer(RESNET50_FEATURE_LAYERS[k]).output for k in FEATURE_KEYS],
        name="resnet50",
    )
    inputs = keras.Input(shape, name="image")
    x = ImagePreprocessing("caffe", input_scale, name="preprocess")(inputs)
    outs = features(x)
    return keras.Model(inputs, dict(zip(FEATURE_KEYS, outs)), name=name)


def conv_bn_relu(x, filters, kernel, stride, name, relu=True, kernel_initializer="glorot_uniform",
                 bn_epsilon=1e-5):
    """Conv2D (no bias) + BatchNormalization (+ ReLU), layers named ``{name}_conv/_bn/_relu``."""
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      kernel_initializer=kernel_initializer, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=bn_epsilon, name=f"{name}_bn")(x)
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def basic_block(x, filters, stride, name, suffixes=("1", "2"), **conv_kwargs):
    """ResNet basic block (two 3x3 convs) with a 1x1 projection shortcut when needed.

    ``conv_kwargs`` (``kernel_initializer``, ``bn_epsilon``) go to :func:`conv_bn_relu`;
    ``suffixes`` name the two convolutions ``{name}_{suffix}``.
    """
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = conv_bn_relu(x, filters, 1, stride, f"{name}_proj", relu=False, **conv_kwargs)
    y = conv_bn_relu(x, filters, 3, stride, f"{name}_{suffixes[0]}", **conv_kwargs)
    y = conv_bn_relu(y, filters, 3, 1, f"{name}_{suffixes[1]}", relu=False, **conv_kwargs)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def _check_stages(widths, blocks):
    """Four positive stage widths and block counts, as int tuples."""
    widths = tuple(int(w) for w in widths)
    blocks = tuple(int(b) for b in blocks)
    if len(widths) != 4 or len(blocks) != 4 or min(widths) < 1 or min(blocks) < 1:
        raise ValueError(
            f"widths and blocks must each have 4 positive entries (one per stage), got {widths} and {blocks}"
        )
    return widths, blocks


def _stages(x, widths, blocks, block):
    """Four stages of ``block(x, filters, stride, name)`` (strides 1, 2, 2, 2) -> the feature dict."""
    outputs = {}
    for stage, (key, width, n) in enumerate(zip(FEATURE_KEYS, widths, blocks)):
        for b in range(n):
            stride = 2 if (stage > 0 and b == 0) else 1
            x = block(x, width, stride, f"stage{stage + 1}_block{b + 1}")
        outputs[key] = x
    return outputs


def small_resnet_backbone(
    input_shape=(128, 96, 3),
    widths=(32, 64, 128, 256),
    blocks=(1, 1, 1, 1),
    stem_width=None,
    input_scale=255.0,
    name="small_resnet_backbone",
):
    """A small ResNet-style backbone for CPU runs, same interface as :func:`resnet50_backbone`.

    Stem: 3x3 conv stride 2 + 3x3 conv + 2x2 max-pool (stride 4); then four
    stages of basic residual blocks with strides 1, 2, 2, 2 (output stride 32).

    Args:
        input_shape: ``(height, width, 3)``, multiples of 32.
        widths: channels of the four stages.
        blocks: residual blocks per stage.
        stem_width: channels of the stem (default ``widths[0]``).
        input_scale: value of a white pixel in the input images.
        name: model name.

    Returns:
        Functional ``keras.Model``: image -> ``{"stride4", "stride8", "stride16",
        "stride32"}`` feature maps with ``widths[0..3]`` channels.

    Example:
        >>> bb = small_resnet_backbone((128, 96, 3), widths=(16, 32, 64, 128))
        >>> bb.output["stride32"].shape
        (None, 4, 3, 128)
    """
    shape = _check_input_shape(input_shape)
    widths, blocks = _check_stages(widths, blocks)
    stem_width = int(stem_width or widths[0])
    inputs = keras.Input(shape, name="image")
    x = ImagePreprocessing("symmetric", input_scale, name="preprocess")(inputs)
    x = conv_bn_relu(x, stem_width, 3, 2, "stem1")
    x = conv_bn_relu(x, stem_width, 3, 1, "stem2")
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    outputs = _stages(x, widths, blocks, basic_block)
    return keras.Model(inputs, outputs, name=name)


def inverted_residual(x, filters, stride, expansion, name):
    """MobileNetV2 block: 1x1 expansion, 3x3 depthwise (``stride``), linear 1x1 projection (+ identity)."""
    c = x.shape[-1]
    y = x
    if expansion != 1:
        y = layers.Conv2D(int(c * expansion), 1, use_bias=False, name=f"{name}_expand")(y)
        y = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_expand_bn")(y)
        y = layers.ReLU(6.0, name=f"{name}_expand_relu")(y)
    y = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(y)
    y = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_dw_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_dw_relu")(y)
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(y)
    y = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_project_bn")(y)
    if stride == 1 and c == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def mobile_backbone(
    input_shape=(128, 96, 3),
    widths=(24, 32, 64, 96),
    blocks=(1, 2, 2, 2),
    expansion=4,
    stem_width=16,
    input_scale=255.0,
    name="mobile_backbone",
):
    """A MobileNetV2-style backbone (depthwise-separable inverted residuals) for CPU runs.

    Stem: 3x3 conv stride 2 + a stride-2 inverted residual (stride 4); then
    four stages with strides 1, 2, 2, 2 (output stride 32), same outputs as
    :func:`small_resnet_backbone`. Deviation from MobileNetV2 (Sandler et al.
    2018): four stages instead of seven, expansion 4 instead of 6, sized for a
    128x96 crop on a CPU.

    Args:
        input_shape: ``(height, width, 3)``, multiples of 32.
        widths: output channels of the four stages.
        blocks: inverted residual blocks per stage.
        expansion: channel expansion inside each block.
        stem_width: channels of the first convolution.
        input_scale: value of a white pixel in the input images.
        name: model name.

    Returns:
        Functional ``keras.Model``: image -> ``{"stride4", "stride8", "stride16", "stride32"}``.

    Example:
        >>> bb = mobile_backbone((128, 96, 3))
        >>> bb.output["stride4"].shape
        (None, 32, 24, 24)
    """
    shape = _check_input_shape(input_shape)
    widths, blocks = _check_stages(widths, blocks)
    if float(expansion) <= 0:
        raise ValueError(f"expansion must be > 0, got {expansion!r}")
    inputs = keras.Input(shape, name="image")
    x = ImagePreprocessing("symmetric", input_scale, name="preprocess")(inputs)
    x = layers.Conv2D(int(stem_width), 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    x = inverted_residual(x, int(stem_width), 2, 1, "stem_block")
    outputs = _stages(x, widths, blocks, lambda y, w, st, nm: inverted_residual(y, w, st, expansion, nm))
    return keras.Model(inputs, outputs, name=name)


def build_backbone(backbone="small", input_shape=(128, 96, 3), weights=None, input_scale=255.0, **kwargs):
    """Build a backbone by name: ``"resnet50"``, ``"small"`` or ``"mobile"`` (extra kwargs go to the builder)."""
    if backbone == "resnet50":
        return resnet50_backbone(input_shape, weights=weights, input_scale=input_scale, **kwargs)
    if backbone == "small":
        if weights is not None:
            raise ValueError(f"the small backbone has no pretrained weights; got weights={weights!r}")
        return small_resnet_backbone(input_shape, input_scale=input_scale, **kwargs)
    if backbone == "mobile":
        if weights is not None:
            raise ValueError(f"the mobile backbone has no pretrained weights; got weights={weights!r}")
        return mobile_backbone(input_shape, input_scale=input_scale, **kwargs)
    raise ValueError(f"backbone must be 'resnet50', 'small' or 'mobile', got {backbone!r}")


def backbone_for_image_size(image_size, source="pose2d-synthetic-small", *, backbone_kwargs=None, name=None):
    """The small backbone rebuilt for ``image_size``, with the weights of ``source`` copied in.

    The shipped backbones were built for 128x96 person crops; they are fully
    convolutional, so the same builder at the detector's image size has the
    same weights (only the input shape differs). The default source is the
    cheaper ``pose2d-synthetic-small`` (a third of the wide checkpoint's
    backbone multiply-adds; it trains 1.8x as many images per second on the
    2-core CPU), the feature extractor of notebooks 03, 04/05 and 10.

    Args:
        image_size: ``(height, width)``, multiples of 32.
        source: a name of :func:`pose_lab.pretrained.available`, a built
            backbone ``keras.Model`` of the same architecture at any size, or
            ``None`` (random weights).
        backbone_kwargs: builder arguments of :func:`small_resnet_backbone`;
            default those of the registry entry ``source`` names
            (``pose_lab.pretrained.MODELS[...]["config"]["backbone_kwargs"]``),
            of ``"pose2d-synthetic-small"`` when ``source`` is a model or ``None``
            (so a random-weights baseline has the checkpoint's architecture).
        name: model name (default that of ``source``).

    Returns:
        Backbone ``keras.Model``: images ``(B, H, W, 3)`` -> ``{"stride4", ..., "stride32"}``.
    """
    h, w, _ = _check_input_shape(tuple(image_size)[:2] + (3,))
    from pose_lab import pretrained  # lazily: pretrained builds on models

    if backbone_kwargs is None:
        backbone_kwargs = pretrained.backbone_kwargs(source if isinstance(source, str) else "pose2d-synthetic-small")
    kwargs = dict(backbone_kwargs)
    if isinstance(source, str):
        source = pretrained.load_backbone(source)
    if source is not None and not isinstance(source, keras.Model):
        raise ValueError(f"source: expected a pretrained name, a backbone keras.Model or None, got {source!r}")
    if name is None:
        name = source.name if source is not None else "small_resnet_backbone"
    target = small_resnet_backbone((h, w, 3), name=name, **kwargs)
    if source is not None:
        src = source.get_weights()
        shapes = [tuple(v.shape) for v in target.weights]
        if [tuple(s.shape) for s in src] != shapes:
            raise ValueError(f"source: its weights do not fit small_resnet_backbone(**{kwargs}) "
                             f"({len(src)} arrays against {len(shapes)}); "
                             "pass its builder arguments as backbone_kwargs")
        target.set_weights(src)
    return target
