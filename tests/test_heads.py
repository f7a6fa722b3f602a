"""Heads: SimpleBaseline deconvolution head, regression head, spatial soft-argmax."""

import keras
import numpy as np
import pytest

from pose_lab.models.heads import SpatialSoftArgmax, deconv_head, regression_head


def test_deconv_head_is_the_simplebaseline_head():
    x = keras.Input((8, 6, 2048))
    y = deconv_head(x)
    model = keras.Model(x, y)
    assert model.output_shape == (None, 64, 48, 17)
    deconvs = [l for l in model.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert len(deconvs) == 3
    for layer in deconvs:
        assert layer.filters == 256 and layer.kernel_size == (4, 4) and layer.strides == (2, 2)
        assert not layer.use_bias
    assert sum(isinstance(l, keras.layers.BatchNormalization) for l in model.layers) == 3
    final = model.get_layer("head_heatmaps")
    assert final.kernel_size == (1, 1) and final.filters == 17


def test_deconv_head_configurable_for_small_models():
    x = keras.Input((4, 3, 32))
    y = deconv_head(x, num_joints=5, filters=(32, 16), num_layers=2)
    assert tuple(y.shape) == (None, 16, 12, 5)
    with pytest.raises(ValueError, match="one positive int per layer"):
        deconv_head(x, filters=(32, 16), num_layers=3)


def test_deconv_head_lateral_skips():
    x = keras.Input((4, 3, 32))
    s1, s2 = keras.Input((8, 6, 16)), keras.Input((16, 12, 8))
    y = deconv_head(x, num_joints=17, filters=16, num_layers=3, skips=[s1, s2, None])
    model = keras.Model([x, s1, s2], y)
    assert model.output_shape == (None, 32, 24, 17)
    names = {l.name for l in model.layers}
    assert {"head_skip1", "head_add1", "head_skip2", "head_add2"} <= names and "head_skip3" not in names
    with pytest.raises(ValueError, match="spatial size"):
        deconv_head(x, num_layers=2, filters=16, skips=[s2, None])
    with pytest.raises(ValueError, match="one entry per layer"):
        deconv_head(x, num_layers=2, filters=16, skips=[s1])


def test_regression_head_shape_and_pixel_scale():
    x = keras.Input((4, 3, 8))
    y = regression_head(x, num_joints=17, coord_scale=128.0)
    model = keras.Model(x, y)
    assert model.output_shape == (None, 17, 2)
    dense = model.get_layer("regression_dense")
    kernel, bias = dense.get_weights()
    bias = np.linspace(0.0, 1.0, bias.size).astype("float32")
    dense.set_weights([np.zeros_like(kernel), bias])
    out = keras.ops.convert_to_numpy(model(np.ones((2, 4, 3, 8), "float32")))
    np.testing.assert_allclose(out, np.broadcast_to(bias.reshape(17, 2) * 128.0, (2, 17, 2)), rtol=1e-6)


def _numpy_soft_argmax(hm, beta, stride):
    b, h, w, j = hm.shape
    flat = np.moveaxis(hm, -1, 1).reshape(b, j, h * w) * beta
    p = np.exp(flat - flat.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    vv, uu = np.mgrid[0:h, 0:w]
    return np.stack([p @ uu.ravel(), p @ vv.ravel()], -1) * stride


def test_soft_argmax_matches_independent_formula():
    hm = np.random.default_rng(0).normal(size=(3, 6, 5, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(SpatialSoftArgmax(beta=2.0, stride=4.0)(hm))
    np.testing.assert_allclose(out, _numpy_soft_argmax(hm.astype(np.float64), 2.0, 4.0), rtol=1e-4, atol=1e-4)


def test_soft_argmax_peak_and_uniform():
    hm = np.zeros((1, 8, 6, 2), "float32")
    hm[0, 5, 2, 0] = 100.0  # joint 0 peaked at u=2, v=5
    out = keras.ops.convert_to_numpy(SpatialSoftArgmax(stride=4.0)(hm))
    np.testing.assert_allclose(out[0, 0], [8.0, 20.0], atol=1e-3)
    np.testing.assert_allclose(out[0, 1], [2.5 * 4.0, 3.5 * 4.0], atol=1e-4)  # uniform -> centre


def test_soft_argmax_serialises_inside_a_model(tmp_path):
    x = keras.Input((8, 6, 3))
    model = keras.Model(x, SpatialSoftArgmax(beta=3.0, stride=2.0, name="sam")(x))
    path = tmp_path / "sam.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("sam")
    assert isinstance(layer, SpatialSoftArgmax) and layer.beta == 3.0 and layer.stride == 2.0
    hm = np.random.default_rng(2).normal(size=(2, 8, 6, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(hm)), keras.ops.convert_to_numpy(model(hm)),
                               atol=1e-5)


def test_soft_argmax_bad_arguments():
    with pytest.raises(ValueError, match="beta"):
        SpatialSoftArgmax(beta=0.0)
    with pytest.raises(ValueError, match="stride"):
        SpatialSoftArgmax(stride=-1)
