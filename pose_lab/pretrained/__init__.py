"""Weights trained by the kit itself, shipped inside the package, loaded by one call.

Like ``keras.applications`` weights, but reproducible on a laptop: each entry
names the builder and arguments of its network, the ``.weights.h5`` file next
to this module, its SHA-256, the command in ``benchmarks/`` that trained it and
what it scores. :func:`load` checks the file's hash before it loads anything,
so a truncated or edited file fails with a clear error instead of giving
silently wrong predictions::

    from pose_lab import pretrained
    net = pretrained.load("pose2d-synthetic")        # a keras.Model, 128x96 -> 32x24x17
    from pose_lab.evaluation.keypoints2d import evaluate_keypoints
    evaluate_keypoints(net, "val.json", "val/", decode="dark")

Two networks: ``"pose2d-synthetic"``, the best 2D pose network (a wider small
ResNet), and ``"pose2d-synthetic-small"``, notebook 02's recipe network, whose
backbone (a third of the multiply-adds, 1.8x the training speed on a 2-core
CPU) is the pretrained feature extractor of
the notebooks that fine-tune one within a CPU budget (03, 04/05, 10).
The networks are plain functional Keras models (no custom training wrapper),
so they load under TensorFlow and JAX and give the same outputs on both.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras

from pose_lab.models.keypoints2d import build_heatmap_model

__all__ = ["MODELS", "available", "backbone_kwargs", "describe", "load", "load_backbone", "sha256", "weights_path"]

#: Where the shipped weight files live.
WEIGHTS_DIR = Path(__file__).resolve().parent

#: The shipped networks. ``config`` goes to ``builder``; ``scores`` are the
#: README's numbers (synthetic COCO val of subjects S9/S11, 200 images, seed
#: 123, ground-truth boxes, flip test, DARK decoding).
MODELS = {
    # the best 2D pose network: what `load()` gives by default (notebook 02's gallery and final table; the
    # top-down front end for later notebooks)
    "pose2d-synthetic": {
        "builder": build_heatmap_model,
        # written out, not taken from a recipe: the weights file is frozen with this architecture
        # (bench_pose2d_stream.DESIGNS["wide"])
        "config": {
            "backbone": "small",
            "input_shape": (128, 96, 3),
            "backbone_kwargs": {"widths": (24, 48, 96, 160), "blocks": (1, 2, 2, 1)},
            "head_filters": 64,
            "head_layers": 3,
            "skip_connections": True,
            "name": "pose2d_synthetic",
        },
        "file": "pose2d_synthetic.weights.h5",
        "sha256": "2ce13ebeec30d639729f536cb9fd194c42d4eae3eb9af060b1b095ac853a1b82",
        "command": ("python benchmarks/bench_pose2d_stream.py --designs wide --minutes 90 --marks 15 30 60 "
                    "--save pose_lab/pretrained/pose2d_synthetic.weights.h5"),
        "scores": {"OKS AP": 0.460, "AP50": 0.850, "AP75": 0.427, "PCK@0.05": 0.743, "L/R swaps": "15.2 %",
                   "real COCO sample AP": 0.002, "real COCO sample PCK@0.05": 0.179,
                   "training": "90 min on the 2-core CPU, 11,614 steps x 64 persons, schedule re-planned to the "
                               "budget"},
        "decode": "dark",
        "description": ("top-down COCO-17 heatmap network (wider small ResNet, 24-160 channels, 1-2-2-1 blocks) "
                        "trained from scratch on the synthetic stream"),
    },
    # notebook 02's recipe network, trained for 50 minutes: a backbone with a third of the wide one's
    # multiply-adds, the pretrained feature extractor of notebooks 03 (Keypoint R-CNN), 04/05 (the supervised
    # reference) and 10 (the image encoder), whose budgets are sized for it
    "pose2d-synthetic-small": {
        "builder": build_heatmap_model,
        # written out, not taken from training.keypoints2d.STREAM_RECIPE: the weights file is frozen
        # with this architecture (and pretrained sits below training), so a recipe change must not alter it
        "config": {
            "backbone": "small",
            "input_shape": (128, 96, 3),
            "backbone_kwargs": {"widths": (16, 32, 64, 128)},
            "head_filters": 64,
            "head_layers": 3,
            "skip_connections": True,
            "name": "pose2d_synthetic",
        },
        "file": "pose2d_synthetic_small.weights.h5",
        "sha256": "313109de8126d05fa00f58cce20a0c2ec5218a476d3f717f7a96faad9a374735",
        "command": ("python benchmarks/bench_pose2d_stream.py --designs recipe --minutes 50 --marks 5 10 20 35 "
                    "--no-replan --save pose_lab/pretrained/pose2d_synthetic_small.weights.h5"),
        "scores": {"OKS AP": 0.291, "AP50": 0.697, "PCK@0.05": 0.648, "L/R swaps": "25.1 %",
                   "real COCO sample AP": 0.003, "real COCO sample PCK@0.05": 0.193,
                   "training": "50 min on the 2-core CPU, 7,432 steps x 64 persons"},
        "decode": "dark",
        "description": "top-down COCO-17 heatmap network (notebook 02's recipe) trained from scratch on the "
                       "synthetic stream",
    },
}


def available():
    """Names accepted by :func:`load`."""
    return sorted(MODELS)


def _entry(name):
    if name not in MODELS:
        raise ValueError(f"pose_lab.pretrained: unknown model {name!r}; available: {available()}")
    return MODELS[name]


def weights_path(name, weights_dir=None) -> Path:
    """Path of the weight file of ``name`` (in ``weights_dir`` if given)."""
    return Path(weights_dir or WEIGHTS_DIR) / _entry(name)["file"]


def sha256(path) -> str:
    """Hex SHA-256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe(name) -> str:
    """One paragraph: what the network is, how it was trained, what it scores."""
    e = _entry(name)
    scores = ", ".join(f"{k} {v}" for k, v in e["scores"].items()) or "not measured"
    return f"{name}: {e['description']}. Reproduce: {e['command']}. Scores: {scores}."


def load(name="pose2d-synthetic", *, weights_dir=None, check_hash=True):
    """Build the network of ``name`` and load its shipped weights (hash checked first).

    Args:
        name: one of :func:`available`.
        weights_dir: folder holding the weight file (default: inside the package).
        check_hash: verify the file's SHA-256 against the registry (leave on).

    Returns:
        A ``keras.Model`` (for ``"pose2d-synthetic"``: images ``(B, 128, 96, 3)``
        in ``[0, 255]`` -> heatmap logits ``(B, 32, 24, 17)``), accepted by
        :func:`pose_lab.evaluation.keypoints2d.evaluate_keypoints`.

    Raises:
        FileNotFoundError: the weight file is missing (names the path).
        ValueError: unknown name, or the file's SHA-256 differs from the
            registry's (names both hashes; the file was changed or truncated).
    """
    e = _entry(name)
    path = weights_path(name, weights_dir)
    if not path.is_file():
        raise FileNotFoundError(f"pose_lab.pretrained: weight file of {name!r} not found: {path}")
    if check_hash:
        got = sha256(path)
        if got != e["sha256"]:
            raise ValueError(
                f"pose_lab.pretrained: {path} has SHA-256 {got}, expected {e['sha256']} for {name!r}: the file "
                "was changed or truncated; reinstall pose_lab or re-run the command in MODELS[name]['command']"
            )
    model = e["builder"](**e["config"])
    model.load_weights(path)
    return model


def backbone_kwargs(name="pose2d-synthetic") -> dict:
    """Builder arguments of the backbone inside ``name`` (a copy), e.g. to build it with random weights."""
    return dict(_entry(name)["config"]["backbone_kwargs"])


def load_backbone(name="pose2d-synthetic", **kwargs):
    """The backbone inside the shipped network ``name`` (its weights loaded as by :func:`load`).

    Returns:
        The backbone ``keras.Model``: images -> ``{"stride4", ..., "stride32"}``
        feature maps, e.g. the encoder of the supervised reference in notebooks
        04/05 (:func:`pose_lab.models.contrastive.build_encoder` pools it) or
        the image encoder of notebook 10.
    """
    model = load(name, **kwargs)
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(inner) != 1:
        raise ValueError(f"pose_lab.pretrained: {name!r} has {len(inner)} nested models, expected one backbone")
    return inner[0]
