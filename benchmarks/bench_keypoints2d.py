"""Accuracy and time of the 2D keypoint recipe of notebook 02 (SimpleBaseline-style heatmaps).

Usage::

    python benchmarks/bench_keypoints2d.py              # full mode: the README's numbers
    python benchmarks/bench_keypoints2d.py --smoke      # seconds, to check it runs
    KERAS_BACKEND=jax python benchmarks/bench_keypoints2d.py --smoke

What it does (the same steps and recipe, :data:`pose_lab.training.keypoints2d.SYNTHETIC_RECIPE`,
as notebook 02 in full mode):

1. renders the training person crops (:func:`pose_lab.data.synthetic.render.render_crops`);
2. writes a synthetic **validation split in the COCO format** (multi-person
   scenes, :func:`pose_lab.data.synthetic.render.write_coco_dataset`, another seed);
3. trains the small-backbone heatmap model with ``fit()`` (Adam, warm-up +
   cosine decay, visibility-weighted heatmap MSE);
4. evaluates top-down with ground-truth boxes: OKS AP (pycocotools), PCK@0.05
   of the box size, with and without the flip test, and a per-keypoint table;
5. evaluates the same model on the real COCO sample (``../shared/data``) or a
   student's ``data/coco`` val2017 when present.

Prints one table; wall times include everything that ran on this machine at
the same time (say so when you report them).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def _real_coco():
    from pose_lab import runtime

    candidates = [(runtime.data_dir() / "coco/annotations/person_keypoints_val2017.json",
                   runtime.data_dir() / "coco/val2017")]
    shared = runtime.shared_data_dir()
    if shared is not None:
        candidates.append((shared / "coco_val2017_mini/person_keypoints_val2017_mini.json",
                           shared / "coco_val2017_mini/val2017"))
    for ann, images in candidates:
        if ann.is_file() and images.is_dir():
            return ann, images
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (seconds); also when POSE_LAB_SMOKE/CI is set")
    ap.add_argument("--train-crops", type=int, default=None, help="override the recipe's number of crops")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--val-images", type=int, default=None, help="synthetic COCO validation images")
    ap.add_argument("--workdir", default=None, help="where checkpoints/logs go (default: a temp folder)")
    args = ap.parse_args(argv)

    import keras

    from pose_lab import runtime
    from pose_lab.data.pipelines import rendered_crop_dataset
    from pose_lab.data.synthetic.render import write_coco_dataset
    from pose_lab.models.keypoints2d import build_heatmap_model
    from pose_lab.training import keypoints2d as kp2d
    from pose_lab.training.schedules import WarmupCosineDecay

    runtime.set_seed(0)
    smoke = args.smoke or runtime.is_smoke()
    recipe = kp2d.SYNTHETIC_RECIPE
    n_train = args.train_crops or (256 if smoke else recipe["train_crops"])
    epochs = args.epochs or (1 if smoke else recipe["epochs"])
    n_val = args.val_images or (4 if smoke else recipe["val_images"])
    batch = recipe["batch_size"]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_kp2d_"))
    rows = []
    print(f"bench_keypoints2d: {'smoke' if smoke else 'full'} sizes |", runtime.describe(print_fn=None), flush=True)

    t0 = time.perf_counter()
    train_ds, _ = rendered_crop_dataset(
        n_train, size=recipe["render_size"], seed=1, input_size=recipe["input_shape"][:2],
        sigma=recipe["sigma"], heatmap_stride=4, batch_size=batch, shuffle=True, shuffle_seed=0,
        drop_remainder=True)
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    val_json = write_coco_dataset(work / "synthetic_coco", n_val, split="val", seed=123,
                                  image_size=recipe["val_image_size"])
    t_val = time.perf_counter() - t0

    net = build_heatmap_model(**recipe["model"])
    model = kp2d.KeypointTrainer(net)
    steps = epochs * (n_train // batch)
    model.compile(keras.optimizers.Adam(WarmupCosineDecay(
        recipe["peak_learning_rate"], decay_steps=max(steps, 2),
        warmup_steps=min(recipe["warmup_steps"], max(steps // 10, 1)))))
    t0 = time.perf_counter()
    history = kp2d.fit_keypoints2d(model, train_ds, epochs, work / "run", verbose=2, tensorboard=False)
    t_train = time.perf_counter() - t0

    t0 = time.perf_counter()
    ev = kp2d.evaluate_keypoints(net, val_json, Path(val_json).parents[1] / "val")
    t_eval = time.perf_counter() - t0
    ev_noflip = kp2d.evaluate_keypoints(net, val_json, Path(val_json).parents[1] / "val", flip_test=False)

    def row(name, e, seconds):
        c = e.coco
        rows.append((name, len(e.records), c["AP"], c["AP50"], c["AP75"], c["AR"], e.pck, seconds))

    row("synthetic COCO val, flip test", ev, t_eval)
    row("synthetic COCO val, no flip", ev_noflip, float("nan"))
    real = _real_coco()
    if real is not None:
        t0 = time.perf_counter()
        ev_real = kp2d.evaluate_keypoints(net, real[0], real[1])
        row(f"real COCO ({real[0].name})", ev_real, time.perf_counter() - t0)

    total = t_render + t_val + t_train
    print()
    print(f"recipe: {recipe['model']['backbone']} backbone {recipe['model']['backbone_kwargs']}, input "
          f"{recipe['input_shape'][:2]}, {net.count_params():,} parameters, heatmaps {net.output_shape[1:3]}")
    print(f"train: {n_train} crops x {epochs} epochs = {n_train * epochs} samples, batch {batch}, "
          f"{n_train * epochs / t_train:.0f} samples/s, final loss {history.history['loss'][-1]:.5f}")
    print(f"time: render {t_render:.0f} s + val split {t_val:.0f} s + train {t_train:.0f} s = {total / 60:.1f} min "
          f"(backend {keras.backend.backend()})")
    print()
    print("| evaluation | persons | AP | AP50 | AP75 | AR | PCK@0.05 | eval s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, a, a50, a75, ar, pck, sec in rows:
        print(f"| {name} | {n} | {a:.3f} | {a50:.3f} | {a75:.3f} | {ar:.3f} | {pck:.3f} | {sec:.0f} |")
    print()
    print("per keypoint (synthetic COCO val, flip test):")
    print(ev.table.to_markdown())
    return rows


if __name__ == "__main__":
    main()
