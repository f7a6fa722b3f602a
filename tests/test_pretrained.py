"""The shipped checkpoint: hash check, loading, evaluation interface, TF/JAX agreement."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from pose_lab import pretrained

from backend_utils import compares_both_backends

ROOT = Path(__file__).resolve().parents[1]
NAME = "pose2d-synthetic"
SMALL = "pose2d-synthetic-small"


def _probe_images():
    return np.random.default_rng(0).uniform(0, 255, (2, 128, 96, 3)).astype("float32")


def test_registry_files_exist_are_small_and_hashes_match():
    total = sum(p.stat().st_size for p in pretrained.WEIGHTS_DIR.glob("*.weights.h5"))
    assert total <= 8_000_000, f"shipped weights take {total / 1e6:.1f} MB, the budget is 8 MB"
    assert set(pretrained.available()) == {NAME, SMALL}
    files = [pretrained.weights_path(name) for name in pretrained.available()]
    assert sorted(files) == sorted(pretrained.WEIGHTS_DIR.glob("*.weights.h5")), "a weight file without an entry"
    for name, path in zip(pretrained.available(), files):
        assert pretrained.sha256(path) == pretrained.MODELS[name]["sha256"], name


@pytest.mark.parametrize("name", [NAME, SMALL])
def test_load_gives_a_heatmap_network_that_finds_a_rendered_person(name):
    from pose_lab.data.synthetic import render_crops
    from pose_lab.evaluation.keypoints2d import predict_keypoints
    from pose_lab.metrics import pck_2d

    net = pretrained.load(name)
    assert isinstance(net, keras.Model)
    assert net.input_shape == (None, 128, 96, 3) and net.output_shape == (None, 32, 24, 17)
    # a held-out subject rendered as 128x128 crops, cut to 128x96 around the centre
    d = render_crops(16, size=128, seed=11, subjects=("S9", "S11"), fill=(0.65, 0.7), jitter=0.0)
    images = d["images"][:, :, 16:112].astype("float32")
    kp = d["keypoints"].copy()
    kp[..., 0] -= 16
    pred, _ = predict_keypoints(net, images, decode="dark")
    assert pck_2d(pred[..., :2], kp, 128.0, threshold=0.1) > 0.6  # a random network scores ~0.02


def test_a_changed_or_missing_file_is_refused(tmp_path):
    src = pretrained.weights_path(NAME)
    bad = tmp_path / src.name
    shutil.copy(src, bad)
    with open(bad, "r+b") as f:
        f.seek(bad.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="SHA-256"):
        pretrained.load(NAME, weights_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        pretrained.load(NAME, weights_dir=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="available"):
        pretrained.load("pose3d-imaginary")


_OTHER = """
import sys, numpy as np
from pose_lab import pretrained
x = np.random.default_rng(0).uniform(0, 255, (2, 128, 96, 3)).astype("float32")
np.save(sys.argv[1], np.asarray(pretrained.load("pose2d-synthetic").predict(x, verbose=0)))
"""


@compares_both_backends
def test_outputs_agree_between_tensorflow_and_jax(tmp_path):
    # the wide network (the small one has the same layers, one block per stage; it was tested this way until
    # it was renamed, and its file is unchanged: same SHA-256)
    mine = np.asarray(pretrained.load(NAME).predict(_probe_images(), verbose=0))
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    out = tmp_path / "other.npy"
    subprocess.run([sys.executable, "-c", _OTHER, str(out)], check=True, env=env, cwd=ROOT, timeout=300)
    np.testing.assert_allclose(np.load(out), mine, atol=1e-4)


@pytest.mark.parametrize("name", [NAME, SMALL])
def test_load_backbone_is_the_networks_own_backbone(name):
    net = pretrained.load(name)
    bb = pretrained.load_backbone(name)
    assert set(bb.output) == {"stride4", "stride8", "stride16", "stride32"}
    inner = [layer for layer in net.layers if isinstance(layer, keras.Model)][0]
    for a, b in zip(inner.get_weights(), bb.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert max(np.abs(w).max() for w in bb.get_weights()) > 0


def test_backbone_for_image_size_defaults_to_the_small_checkpoints_architecture():
    # the random-weights baseline (source=None) and the pretrained one must be the same network, so
    # that notebook 03's scratch-vs-pretrained comparison changes the weights only
    from pose_lab.models.backbones import backbone_for_image_size
    from pose_lab.models.keypoint_rcnn import KEYPOINT_RCNN_CONFIGS

    shipped = pretrained.load_backbone(SMALL)
    for source in (None, SMALL, shipped):
        bb = backbone_for_image_size((64, 64), source)
        assert [w.shape for w in bb.weights] == [w.shape for w in shipped.weights]
        assert bb.output["stride32"].shape[1:] == (2, 2, pretrained.backbone_kwargs(SMALL)["widths"][-1])
    wide = backbone_for_image_size((64, 64), NAME)  # the other entry: its own architecture and weights
    for a, b in zip(wide.get_weights(), pretrained.load_backbone(NAME).get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="do not fit"):
        backbone_for_image_size((64, 64), pretrained.load_backbone(NAME))  # wide weights, small default
    # Keypoint R-CNN's "cpu" config writes the same arguments out (models sit below pretrained)
    assert KEYPOINT_RCNN_CONFIGS["cpu"]["backbone_kwargs"] == pretrained.backbone_kwargs(SMALL)
    kwargs = pretrained.backbone_kwargs(SMALL)
    kwargs["widths"] = ()
    assert pretrained.backbone_kwargs(SMALL)["widths"], "backbone_kwargs must hand out a copy"
