"""Backbones: feature-map shapes and strides, preprocessing against Keras' own, bad input."""

import keras
import numpy as np
import pytest

from pose_lab.models.backbones import (
    FEATURE_KEYS,
    ImagePreprocessing,
    build_backbone,
    resnet50_backbone,
    small_resnet_backbone,
)


def _shapes(model):
    return {k: tuple(model.output[k].shape) for k in FEATURE_KEYS}


def test_resnet50_exposes_stride_4_to_32_features():
    bb = resnet50_backbone((128, 96, 3), weights=None)
    assert _shapes(bb) == {
        "stride4": (None, 32, 24, 256),
        "stride8": (None, 16, 12, 512),
        "stride16": (None, 8, 6, 1024),
        "stride32": (None, 4, 3, 2048),
    }
    # the whole keras.applications ResNet-50 (no top) is inside: 23.6 M parameters
    assert bb.get_layer("resnet50").count_params() == keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(128, 96, 3)
    ).count_params()


def test_small_backbone_same_interface_and_widths():
    bb = small_resnet_backbone((64, 96, 3), widths=(8, 16, 24, 32), blocks=(1, 2, 1, 1))
    assert _shapes(bb) == {
        "stride4": (None, 16, 24, 8),
        "stride8": (None, 8, 12, 16),
        "stride16": (None, 4, 6, 24),
        "stride32": (None, 2, 3, 32),
    }
    out = bb(np.zeros((2, 64, 96, 3), "float32"))
    assert tuple(out["stride32"].shape) == (2, 2, 3, 32)
    # blocks=(1, 2, 1, 1): stage 2 has two residual blocks
    names = {layer.name for layer in bb.layers}
    assert "stage2_block2_add" in names and "stage1_block2_add" not in names


def test_caffe_preprocessing_matches_keras_applications():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(ImagePreprocessing("caffe")(x))
    ref = keras.applications.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    # images in [0, 1] with input_scale=1 give the same result
    ours01 = keras.ops.convert_to_numpy(ImagePreprocessing("caffe", input_scale=1.0)(x / 255.0))
    np.testing.assert_allclose(ours01, ref, atol=1e-3)


def test_symmetric_preprocessing_closed_form():
    x = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    y = keras.ops.convert_to_numpy(ImagePreprocessing("symmetric")(x))
    np.testing.assert_allclose(y, [[[[-1.0, 0.0, 1.0]]]], atol=1e-6)


def test_backbone_round_trip_keras_file(tmp_path):
    bb = small_resnet_backbone((64, 64, 3), widths=(8, 8, 16, 16))
    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    path = tmp_path / "bb.keras"
    bb.save(path)
    loaded = keras.models.load_model(path)
    got, want = loaded(x), bb(x)  # one forward pass each (eager JAX compiles op by op)
    for k in FEATURE_KEYS:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got[k]), keras.ops.convert_to_numpy(want[k]), atol=1e-5)


@pytest.mark.parametrize("shape", [(100, 96, 3), (128, 96, 1), (128, 96), (16, 16, 3)])
def test_bad_input_shape_raises(shape):
    with pytest.raises(ValueError, match="input_shape"):
        small_resnet_backbone(shape)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="weights"):
        resnet50_backbone((64, 64, 3), weights="coco")
    with pytest.raises(ValueError, match="4 positive entries"):
        small_resnet_backbone((64, 64, 3), widths=(8, 16, 32))
    with pytest.raises(ValueError, match="backbone must be"):
        build_backbone("vgg16", (64, 64, 3))
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_backbone("small", (64, 64, 3), weights="imagenet")
    with pytest.raises(ValueError, match="mode"):
        ImagePreprocessing("tf")


def test_mobile_backbone_strides_widths_round_trip_and_bad_arguments(tmp_path):
    from pose_lab.models.backbones import mobile_backbone

    bb = build_backbone("mobile", (64, 32, 3), widths=(8, 12, 16, 24), blocks=(1, 2, 1, 1), expansion=2)
    shapes = {k: tuple(bb.output[k].shape[1:]) for k in FEATURE_KEYS}
    assert shapes == {"stride4": (16, 8, 8), "stride8": (8, 4, 12), "stride16": (4, 2, 16), "stride32": (2, 1, 24)}
    # depthwise-separable: far fewer weights than a plain ResNet of the same widths
    plain = small_resnet_backbone((64, 32, 3), widths=(8, 12, 16, 24), blocks=(1, 2, 1, 1))
    assert bb.count_params() < plain.count_params()
    x = np.random.default_rng(2).uniform(0, 255, (2, 64, 32, 3)).astype("float32")
    path = tmp_path / "mobile.keras"
    bb.save(path)
    loaded = keras.models.load_model(path)
    got, want = loaded(x), bb(x)  # one forward pass each (eager JAX compiles op by op)
    for k in FEATURE_KEYS:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got[k]), keras.ops.convert_to_numpy(want[k]), atol=1e-5)
    with pytest.raises(ValueError, match="expansion"):
        mobile_backbone((64, 32, 3), expansion=0)
    with pytest.raises(ValueError, match="pretrained weights"):
        build_backbone("mobile", (64, 32, 3), weights="imagenet")
