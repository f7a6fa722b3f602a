"""The four networks of the cross-modal VAE (Spurr et al. 2018, as adapted in seed 004).

Spurr, Song, Park and Hilliges, "Cross-Modal Deep Variational Hand Pose
Estimation" (CVPR 2018), train one encoder/decoder pair per modality so that
every encoder maps into **one shared latent space** and every decoder can read
from it. The thesis (seed 004, chapter 4) replaces their 3D-pose encoder by a
2D-pose encoder, so that a 3D pose can be generated from an RGB image *or* from
a 2D pose:

.. code-block:: text

    image (H, W, 3) --[image encoder]--\\               /--[image decoder]--> image (H, W, 3)
                                        >-- z (latent) -<
    2D pose (J, 2)  --[2D-pose encoder]-/               \\--[3D-pose decoder]--> 3D pose (J, 3)

Every encoder returns the parameters of a diagonal Gaussian ``q(z | x)``: a
mean and a log-variance (``log sigma^2``), each of shape ``(batch, latent_dim)``.
Decoders map a latent ``z`` of shape ``(batch, latent_dim)`` to their modality.

* :func:`build_image_encoder`: a small ResNet (a stride-2 stem, then one stage
  of basic residual blocks per width, each stage halving the resolution), the
  last map flattened, two ``Dense`` heads. The thesis uses an ImageNet ResNet-18;
  the small network here trains on a CPU in minutes.
* :func:`build_image_decoder`: ``Dense -> Reshape`` to a ``s x s`` map, then one
  ``Conv2DTranspose`` (stride 2) + BatchNorm + ReLU per width, then a 3x3
  convolution with a sigmoid: an image with values in ``[0, 1]``.
* :func:`build_pose2d_encoder`: ``Flatten`` then ``num_blocks`` blocks of
  ``Dense + ReLU`` (the thesis: 5 blocks of 512 units), two ``Dense`` heads.
* :func:`build_pose3d_decoder`: a ``Dense`` layer that lifts ``z`` to the hidden
  width, ``num_blocks`` blocks of ``Dense + ReLU``, a linear ``Dense`` to
  ``num_joints * 3`` reshaped to ``(num_joints, 3)``.

Units and normalisation are not the builders' business: the pose networks see
z-scored coordinates (:mod:`pose_lab.data.crossmodal` prepares them with a
:class:`~pose_lab.data.normalization.NormStats`, which
:class:`pose_lab.training.crossmodal.CrossModalVAE` keeps to answer in pixels
and millimetres); images are floats in ``[0, 1]``. The joint counts are
arguments (``num_joints_2d = stats.mean_2d.shape[0]``, ``num_joints_3d =
stats.mean_3d.shape[0]``; 16 and 16 for H36M-17 with the root dropped).

All builders return functional ``keras.Model`` objects, which serialise with
``model.save("x.keras")`` without custom objects.

Example:
    >>> enc = build_image_encoder(image_size=64, latent_dim=32)
    >>> mean, log_var = enc(np.zeros((2, 64, 64, 3), "float32"))
    >>> tuple(mean.shape)
    (2, 32)
"""

from __future__ import annotations

import numbers

import keras
from keras import layers

from pose_lab.models.backbones import basic_block, conv_bn_relu
from pose_lab.validation import positive_int

__all__ = [
    "build_image_encoder",
    "build_image_decoder",
    "build_pose2d_encoder",
    "build_pose3d_decoder",
    "build_crossmodal_networks",
]


# ----------------------------------------------------------------- argument checks


def _non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
    return int(value)


def _widths(name, widths):
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(f"{name}: expected a non-empty sequence of positive ints, got {widths!r}") from None
    if not widths:
        raise ValueError(f"{name}: expected a non-empty sequence of positive ints, got {widths!r}")
    return tuple(positive_int(f"{name}[{i}]", w) for i, w in enumerate(widths))


def _image_size(image_size):
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (int(image_size), int(image_size))
    try:
        h, w = image_size
    except (TypeError, ValueError):
        raise ValueError(f"image_size: expected an int or (height, width), got {image_size!r}") from None
    return positive_int("image_size[0]", h), positive_int("image_size[1]", w)


def _dropout_rate(dropout):
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1), got {dropout!r}")
    return float(dropout)


# ------------------------------------------------------------------- image encoder


def _log_var_head(x, latent_dim, log_var_bias):
    return layers.Dense(latent_dim, kernel_initializer="zeros",
                        bias_initializer=keras.initializers.Constant(float(log_var_bias)),
                        name="z_log_var")(x)


# The crossmodal image encoder's conv layers: He initialisation, Keras' default BN epsilon.
_CONV = {"kernel_initializer": "he_normal", "bn_epsilon": 1e-3}


def build_image_encoder(
    image_size=64,
    latent_dim: int = 64,
    channels: int = 3,
    widths=(32, 64, 128, 256),
    blocks_per_stage: int = 1,
    pooling: str = "flatten",
    log_var_bias: float = -4.0,
    backbone=None,
    backbone_features: str = "stride32",
    name: str = "image_encoder",
) -> keras.Model:
    """ResNet-style image encoder with mean and log-variance heads.

    Architecture: 3x3 stem convolution with stride 2 (+BN+ReLU) to ``widths[0]``
    channels; then for each width one stage of ``blocks_per_stage`` basic
    residual blocks, the first block of every stage after the first with
    stride 2; the last map flattened (or average-pooled); ``Dense(latent_dim)``
    for the mean and ``Dense(latent_dim)`` for the log-variance. A 64x64 input with the default
    four widths ends on a 4x4x256 map.

    Args:
        image_size: input side in pixels (int) or ``(height, width)``.
        latent_dim: dimension of the shared latent space.
        channels: image channels (3 for RGB).
        widths: channels of each stage.
        blocks_per_stage: residual blocks per stage (ResNet-18 has 2).
        pooling: how the last feature map reaches the heads: ``"flatten"``
            (default: keeps *where* things are, which a pose needs; a 64x64
            input ends on a 4x4 map) or ``"avg"`` (global average pooling, as
            ResNet-18; translation-invariant, needs far more training to
            recover limb positions from channel statistics).
        log_var_bias: initial bias of the log-variance head (see
            :func:`build_pose2d_encoder`).
        backbone: ``None`` (the stages above, random initialisation) or a
            backbone ``keras.Model`` with the kit's interface (RGB in ``[0, 255]``
            -> ``{"stride4", ..., "stride32"}``, :mod:`pose_lab.models.backbones`),
            e.g. the shipped 2D pose network's backbone rebuilt for this size,
            ``backbone_for_image_size((128, 128), "pose2d-synthetic-small")``. The
            encoder scales its ``[0, 1]`` input to ``[0, 255]``, resizes it
            (bilinear) to the backbone's input size where the two differ (the
            checkpoint saw persons about 128 px tall), and reads
            ``backbone_features``; ``widths`` and ``blocks_per_stage`` are then
            unused. The backbone is fine-tuned with the rest (set its
            ``trainable = False`` to freeze it).
        backbone_features: the backbone map the heads read (``"stride32"``).
        name: model name.

    Returns:
        A ``keras.Model`` mapping ``(batch, H, W, channels)`` floats in ``[0, 1]``
        to ``[z_mean, z_log_var]``, each ``(batch, latent_dim)``.
    """
    h, w = _image_size(image_size)
    latent_dim = positive_int("latent_dim", latent_dim)
    channels = positive_int("channels", channels)
    widths = _widths("widths", widths)
    blocks_per_stage = positive_int("blocks_per_stage", blocks_per_stage)
    if pooling not in ("flatten", "avg"):
        raise ValueError(f"pooling: expected 'flatten' or 'avg', got {pooling!r}")
    min_side = 2 ** len(widths)
    if backbone is None and (h < min_side or w < min_side):
        raise ValueError(
            f"image_size: {len(widths)} stages halve the image {len(widths)} times, so each side "
            f"must be >= {min_side}; got {(h, w)}"
        )

    inputs = keras.Input((h, w, channels), name="image")
    if backbone is not None:
        x = _backbone_features(inputs, backbone, backbone_features, channels)
    else:
        x = layers.Rescaling(2.0, offset=-1.0, name="to_unit_range")(inputs)  # [0, 1] -> [-1, 1]
        x = conv_bn_relu(x, widths[0], 3, 2, "stem", **_CONV)
        for s, width in enumerate(widths):
            for b in range(blocks_per_stage):
                strides = 2 if (s > 0 and b == 0) else 1
                x = basic_block(x, width, strides, f"stage{s + 1}_block{b + 1}", suffixes=("a", "b"), **_CONV)
    if pooling == "flatten":
        x = layers.Flatten(name="pool")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = _log_var_head(x, latent_dim, log_var_bias)
    return keras.Model(inputs, [z_mean, z_log_var], name=name)


def _backbone_features(inputs, backbone, key, channels):
    """``backbone``'s map ``key`` of ``[0, 1]`` images: x 255, resized to the backbone's input if needed."""
    if not isinstance(backbone, keras.Model):
        raise ValueError(f"backbone: expected None or a backbone keras.Model, got {type(backbone).__name__}")
    shape = tuple(backbone.input_shape[1:])
    if len(shape) != 3 or shape[-1] != channels or None in shape:
        raise ValueError(f"backbone: expects images of shape {shape}; the encoder needs (H, W, {channels}) "
                         "with a fixed size (build it with backbone_for_image_size)")
    x = layers.Rescaling(255.0, name="to_pixel_range")(inputs)  # the kit's backbones take [0, 255]
    if tuple(inputs.shape[1:3]) != shape[:2]:
        x = layers.Resizing(shape[0], shape[1], interpolation="bilinear", name="to_backbone_size")(x)
    outputs = backbone(x)
    if not isinstance(outputs, dict) or key not in outputs:
        keys = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
        raise ValueError(f"backbone_features: {key!r} is not an output of the backbone ({keys})")
    return outputs[key]


# ------------------------------------------------------------------- image decoder


def build_image_decoder(
    image_size=64,
    latent_dim: int = 64,
    channels: int = 3,
    widths=(256, 128, 64, 32),
    name: str = "image_decoder",
) -> keras.Model:
    """Image decoder: ``Dense -> Reshape -> [Conv2DTranspose + BN + ReLU] x len(widths) -> sigmoid``.

    The latent is mapped by a ``Dense`` layer (+BN+ReLU) to a
    ``(H / 2^n, W / 2^n, widths[0])`` map, ``n = len(widths)``; each
    transposed convolution (kernel 4, stride 2) doubles the resolution; a final
    3x3 convolution with a sigmoid gives an image in ``[0, 1]``. With the
    default four widths that is five convolutional layers, as in the thesis.

    Args:
        image_size: output side in pixels (int) or ``(height, width)``; each
            side must be divisible by ``2 ** len(widths)``.
        latent_dim: dimension of the shared latent space.
        channels: image channels.
        widths: channels of the transposed convolutions, coarse to fine.
        name: model name.

    Returns:
        A ``keras.Model`` mapping ``(batch, latent_dim)`` to ``(batch, H, W, channels)``.
    """
    h, w = _image_size(image_size)
    latent_dim = positive_int("latent_dim", latent_dim)
    channels = positive_int("channels", channels)
    widths = _widths("widths", widths)
    factor = 2 ** len(widths)
    if h % factor or w % factor:
        raise ValueError(
            f"image_size: {len(widths)} stride-2 transposed convolutions need sides divisible by "
            f"{factor}; got {(h, w)}"
        )
    sh, sw = h // factor, w // factor

    inputs = keras.Input((latent_dim,), name="z")
    x = layers.Dense(sh * sw * widths[0], use_bias=False, name="project")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    x = layers.Reshape((sh, sw, widths[0]), name="to_map")(x)
    for i, width in enumerate(widths):
        x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer="he_normal", name=f"up{i + 1}_deconv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"up{i + 1}_bn")(x)
        x = layers.ReLU(name=f"up{i + 1}_relu")(x)
    outputs = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="image")(x)
    return keras.Model(inputs, outputs, name=name)


# ------------------------------------------------------------------- pose networks


def _dense_blocks(x, hidden, num_blocks, dropout, prefix):
    for i in range(num_blocks):
        x = layers.Dense(hidden, activation="relu", kernel_initializer="he_normal",
                         name=f"{prefix}{i + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{prefix}{i + 1}_dropout")(x)
    return x


def build_pose2d_encoder(
    num_joints: int = 16,
    latent_dim: int = 64,
    hidden: int = 512,
    num_blocks: int = 5,
    dropout: float = 0.0,
    log_var_bias: float = -4.0,
    name: str = "pose2d_encoder",
) -> keras.Model:
    """2D-pose encoder: ``Flatten -> [Dense(hidden) + ReLU] x num_blocks -> (mean, log-variance)``.

    The thesis's design (seed 004, section 4.1.3): five ``Dense + ReLU``
    blocks of 512 units and two linear heads.

    Args:
        num_joints: 2D joints in the input (16: H36M-17 without the root, as
            the thesis; 17 keeps the root).
        latent_dim: dimension of the shared latent space.
        hidden: units of every hidden layer.
        num_blocks: number of ``Dense + ReLU`` blocks (>= 1).
        dropout: dropout rate after each block (0 disables).
        log_var_bias: initial bias of the log-variance head (its kernel starts
            at zero): ``-4`` starts every posterior at ``sigma = e^-2 ~ 0.14``.
            With the default ``0`` (``sigma = 1``) the reparameterisation noise
            swamps the small initial means and a short run (a smoke notebook)
            spends its steps shrinking the variance; with the thesis's small
            beta the variances end up small anyway.
        name: model name.

    Returns:
        A ``keras.Model`` mapping ``(batch, num_joints, 2)`` to
        ``[z_mean, z_log_var]``, each ``(batch, latent_dim)``.
    """
    num_joints = positive_int("num_joints", num_joints)
    latent_dim = positive_int("latent_dim", latent_dim)
    hidden = positive_int("hidden", hidden)
    num_blocks = positive_int("num_blocks", num_blocks)
    dropout = _dropout_rate(dropout)

    inputs = keras.Input((num_joints, 2), name="pose_2d")
    x = layers.Flatten(name="flatten")(inputs)
    x = _dense_blocks(x, hidden, num_blocks, dropout, "dense")
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = _log_var_head(x, latent_dim, log_var_bias)
    return keras.Model(inputs, [z_mean, z_log_var], name=name)


def build_pose3d_decoder(
    num_joints: int = 16,
    latent_dim: int = 64,
    hidden: int = 512,
    num_blocks: int = 5,
    dropout: float = 0.0,
    name: str = "pose3d_decoder",
) -> keras.Model:
    """3D-pose decoder: ``Dense(hidden) -> [Dense(hidden) + ReLU] x num_blocks -> Dense(J*3) -> (J, 3)``.

    The first (linear) ``Dense`` lifts the latent to the hidden width (the
    thesis's "linear layer for upsampling"), then ``num_blocks`` blocks of
    ``Dense + ReLU``, then a linear output layer.

    Args:
        num_joints: 3D joints predicted (16: root-centred H36M-17 with the
            root dropped; 17 keeps it).
        latent_dim: dimension of the shared latent space.
        hidden: units of every hidden layer.
        num_blocks: number of ``Dense + ReLU`` blocks (>= 1).
        dropout: dropout rate after each block (0 disables).
        name: model name.

    Returns:
        A ``keras.Model`` mapping ``(batch, latent_dim)`` to ``(batch, num_joints, 3)``.
    """
    num_joints = positive_int("num_joints", num_joints)
    latent_dim = positive_int("latent_dim", latent_dim)
    hidden = positive_int("hidden", hidden)
    num_blocks = positive_int("num_blocks", num_blocks)
    dropout = _dropout_rate(dropout)

    inputs = keras.Input((latent_dim,), name="z")
    x = layers.Dense(hidden, name="upsample")(inputs)
    x = _dense_blocks(x, hidden, num_blocks, dropout, "dense")
    x = layers.Dense(num_joints * 3, name="head")(x)
    outputs = layers.Reshape((num_joints, 3), name="pose_3d")(x)
    return keras.Model(inputs, outputs, name=name)


def build_crossmodal_networks(
    image_size=64,
    latent_dim: int = 64,
    num_joints_2d: int = 16,
    num_joints_3d: int = 16,
    encoder_widths=(32, 64, 128, 256),
    decoder_widths=(256, 128, 64, 32),
    blocks_per_stage: int = 1,
    pose_hidden: int = 512,
    pose_blocks: int = 5,
    channels: int = 3,
    pooling: str = "flatten",
    image_backbone=None,
    backbone_features: str = "stride32",
) -> dict:
    """Build the four networks with one shared ``latent_dim``.

    Arguments are passed to :func:`build_image_encoder` (``encoder_widths``,
    ``blocks_per_stage``, ``pooling``; ``image_backbone`` as its ``backbone``,
    e.g. the shipped 2D checkpoint's, and ``backbone_features``), :func:`build_image_decoder`
    (``decoder_widths``) and the pose networks (``pose_hidden`` units,
    ``pose_blocks`` blocks).

    Returns:
        ``{"image_encoder", "image_decoder", "pose2d_encoder", "pose3d_decoder"}``,
        ready for :class:`pose_lab.training.crossmodal.CrossModalVAE`.

    Example:
        >>> nets = build_crossmodal_networks(image_size=32, latent_dim=16,
        ...                                  encoder_widths=(8, 16), decoder_widths=(16, 8))
        >>> sorted(nets)
        ['image_decoder', 'image_encoder', 'pose2d_encoder', 'pose3d_decoder']
    """
    return {
        "image_encoder": build_image_encoder(image_size, latent_dim, channels, encoder_widths,
                                             blocks_per_stage, pooling=pooling, backbone=image_backbone,
                                             backbone_features=backbone_features),
        "image_decoder": build_image_decoder(image_size, latent_dim, channels, decoder_widths),
        "pose2d_encoder": build_pose2d_encoder(num_joints_2d, latent_dim, pose_hidden, pose_blocks),
        "pose3d_decoder": build_pose3d_decoder(num_joints_3d, latent_dim, pose_hidden, pose_blocks),
    }
