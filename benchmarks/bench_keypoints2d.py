"""Accuracy and time of the 2D keypoint recipe of notebook 02 (SimpleBaseline-style heatmaps).

Usage::

    python benchmarks/bench_keypoints2d.py              # full mode: the README's numbers
    python benchmarks/bench_keypoints2d.py --smoke      # seconds, to check it runs
    KERAS_BACKEND=jax python benchmarks/bench_keypoints2d.py --smoke

What it does (the same steps and recipe, :data:`pose_lab.training.keypoints2d.SYNTHETIC_RECIPE`,
as notebook 02 in full mode):

1. writes a synthetic **COCO train split** (multi-person scenes of subjects
   S1-S8, :func:`pose_lab.data.synthetic.write_coco_dataset`) and a
   **validation split** of the held-out subjects S9 and S11 (another seed);
2. trains the small-backbone heatmap model with
   :func:`pose_lab.training.keypoints2d.fit_keypoints2d` on person crops cut
   by the ground-truth boxes, exactly as for real COCO (Adam, warm-up + cosine
   decay, visibility-weighted heatmap MSE);
3. evaluates top-down with ground-truth boxes
   (:func:`pose_lab.evaluation.keypoints2d.evaluate_keypoints`): OKS AP (pycocotools), PCK@0.05
   of the box size, with DARK and quarter-pixel decoding, with and without the
   flip test, and a per-keypoint table;
4. evaluates the same model on the real COCO sample (``../shared/data``) or a
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

from pose_lab import runtime  # noqa: E402  (cheap: no TensorFlow; after the path insert)


def _real_coco():

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
    ap.add_argument("--train-images", type=int, default=None, help="override the recipe's training images")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--val-images", type=int, default=None, help="synthetic COCO validation images")
    ap.add_argument("--workdir", default=None, help="where data, checkpoints and logs go (default: a temp folder)")
    args = ap.parse_args(argv)

    import keras

    from pose_lab.data.coco import load_coco_keypoints
    from pose_lab.data.pipelines import person_crop_dataset
    from pose_lab.data.synthetic import write_coco_dataset
    from pose_lab.evaluation import keypoints2d as kp_eval
    from pose_lab.models.keypoints2d import build_heatmap_model
    from pose_lab.training import keypoints2d as kp2d
    from pose_lab.training.schedules import WarmupCosineDecay

    runtime.set_seed(0)
    smoke = args.smoke or runtime.is_smoke()
    recipe = kp2d.SYNTHETIC_RECIPE
    n_train = args.train_images or (32 if smoke else recipe["train_images"])
    epochs = args.epochs or (1 if smoke else recipe["epochs"])
    n_val = args.val_images or (4 if smoke else recipe["val_images"])
    batch = 16 if smoke else recipe["batch_size"]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_kp2d_"))
    rows = []
    print(f"bench_keypoints2d: {'smoke' if smoke else 'full'} sizes |", runtime.describe(print_fn=None), flush=True)

    t0 = time.perf_counter()
    train_json = write_coco_dataset(work / "synthetic_coco", n_train, split="train", seed=recipe["train_seed"],
                                    image_size=recipe["image_size"])
    val_json = write_coco_dataset(work / "synthetic_coco", n_val, split="val", seed=recipe["val_seed"],
                                  image_size=recipe["image_size"], subjects=recipe["val_subjects"])
    records = load_coco_keypoints(train_json, work / "synthetic_coco" / "train", min_keypoints=1)
    t_data = time.perf_counter() - t0
    train_ds = person_crop_dataset(records, input_size=recipe["input_shape"][:2], heatmap_stride=4,
                                   sigma=recipe["sigma"], batch_size=batch, shuffle=True, seed=0,
                                   drop_remainder=True)

    net = build_heatmap_model(**recipe["model"])
    model = kp2d.KeypointTrainer(net)
    steps = epochs * (len(records) // batch)
    model.compile(keras.optimizers.Adam(WarmupCosineDecay(
        recipe["peak_learning_rate"], decay_steps=max(steps, 2),
        warmup_steps=min(recipe["warmup_steps"], max(steps // 10, 1)))))
    t0 = time.perf_counter()
    history = kp2d.fit_keypoints2d(model, train_ds, epochs, work / "run", tensorboard=False)
    t_train = time.perf_counter() - t0

    val_images = work / "synthetic_coco" / "val"
    t0 = time.perf_counter()
    ev = kp_eval.evaluate_keypoints(net, val_json, val_images, decode=recipe["decode"])
    t_eval = time.perf_counter() - t0

    def row(name, e, seconds):
        c = e.coco
        rows.append((name, len(e.records), c["AP"], c["AP50"], c["AP75"], c["AR"], e.pck, seconds))

    row(f"synthetic COCO val (S9, S11), flip test, {recipe['decode']}", ev, t_eval)
    for flip, decode in ((True, "quarter"), (False, recipe["decode"])):
        other = kp_eval.evaluate_keypoints(net, val_json, val_images, flip_test=flip, decode=decode)
        row(f"synthetic COCO val, {'flip test' if flip else 'no flip'}, {decode}", other, float("nan"))
    real = _real_coco()
    if real is not None:
        t0 = time.perf_counter()
        ev_real = kp_eval.evaluate_keypoints(net, real[0], real[1], decode=recipe["decode"])
        row(f"real COCO ({real[0].name})", ev_real, time.perf_counter() - t0)

    total = t_data + t_train
    print()
    print(f"recipe: {recipe['model']['backbone']} backbone {recipe['model']['backbone_kwargs']}, input "
          f"{recipe['input_shape'][:2]}, {net.count_params():,} parameters, heatmaps {net.output_shape[1:3]}")
    print(f"train: {n_train} synthetic COCO images = {len(records)} persons x {epochs} epochs, batch {batch}, "
          f"{len(records) * epochs / t_train:.0f} samples/s, final loss {history.history['loss'][-1]:.5f}")
    print(f"time: data {t_data:.0f} s + train {t_train:.0f} s = {total / 60:.1f} min "
          f"(backend {keras.backend.backend()}, load average {runtime.load_average()})")
    print()
    print("| evaluation | persons | AP | AP50 | AP75 | AR | PCK@0.05 | eval s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, a, a50, a75, ar, pck, sec in rows:
        print(f"| {name} | {n} | {a:.3f} | {a50:.3f} | {a75:.3f} | {ar:.3f} | {pck:.3f} | {sec:.0f} |")
    print()
    print(f"per keypoint (synthetic COCO val, flip test, {recipe['decode']}):")
    print(ev.table.to_markdown())
    return rows


if __name__ == "__main__":
    main()
