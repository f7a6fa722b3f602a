"""Keypoint R-CNN on synthetic multi-person scenes (issue 16): box AP and keypoint AP for a CPU budget.

Usage::

    python benchmarks/bench_keypoint_rcnn.py --minutes 20          # the README row (quiet 2-core CPU)
    python benchmarks/bench_keypoint_rcnn.py --smoke               # about a minute

The "cpu" configuration of :mod:`pose_lab.models.keypoint_rcnn` (the shipped
pose checkpoint's small backbone rebuilt for 256x256 scenes, an FPN over strides
4-32, RPN and box head on P3, a 4 x 128 keypoint head on P2, 56x56 heatmaps)
trains on the endless stream of rendered
scenes of subjects S1-S8 (:class:`pose_lab.data.keypoint_rcnn.SceneStream`,
1-4 people) with the seed's optimizer (:func:`keypoint_rcnn_optimizer`: SGD,
momentum 0.9, weight decay 1e-4, lr 0.02 x batch / 16, warm-up, x0.1 at the
milestones, here scaled from the seed's 42 epochs with milestones (36, 43) to
the number of epochs the budget allows: the second milestone is never reached,
as in the seed), all by :func:`pose_lab.training.keypoint_rcnn.train_for_minutes`
(the budget is planned from a short probe of steps at lr 0, which change nothing,
and enforced by :class:`~pose_lab.training.callbacks.TimeLimit`).

Evaluation: a synthetic COCO split of the held-out subjects S9 and S11
(``write_coco_dataset``, seed 123), scored with pycocotools (box AP, keypoint
AP) through :func:`pose_lab.evaluation.keypoint_rcnn.evaluate_keypoint_rcnn`.
Targets (issue 16): box AP >= 0.80, keypoint AP >= 0.40. Prints a markdown table
and writes ``results.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=20.0, help="training budget (probe included)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps-per-epoch", type=int, default=50)
    p.add_argument("--val-images", type=int, default=200)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--no-pretrained", action="store_true", help="random backbone instead of the shipped one")
    p.add_argument("--smoke", action="store_true", help="1 minute, 16 validation images")
    p.add_argument("--out", default=None, help="folder for results.json and the COCO results")
    args = p.parse_args(argv)
    if args.smoke:
        args.minutes, args.val_images, args.steps_per_epoch = 1.0, 16, 10

    import keras

    from pose_lab import runtime
    from pose_lab.data.keypoint_rcnn import SceneStream
    from pose_lab.data.synthetic.coco_writer import write_coco_dataset
    from pose_lab.evaluation.keypoint_rcnn import evaluate_keypoint_rcnn
    from pose_lab.models.keypoint_rcnn import backbone_for_image_size
    from pose_lab.training.keypoint_rcnn import build_keypoint_rcnn, train_for_minutes

    runtime.set_seed(0)
    size = (args.image_size, args.image_size)
    t_start = time.perf_counter()
    backbone = backbone_for_image_size(size, None if args.no_pretrained else "pose2d-synthetic-small")
    model = build_keypoint_rcnn("cpu", size, backbone=backbone, seed=0)
    stream = SceneStream(batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch, seed=1, image_size=size)

    hist, plan = train_for_minutes(model, stream, args.minutes)
    rate = plan["steps_per_second"]
    print(f"probe: {rate:.2f} steps/s of {args.batch_size} images -> {plan['epochs']} epochs x "
          f"{args.steps_per_epoch} steps, milestones at epochs {plan['milestones_epochs'][0]:.1f} / "
          f"{plan['milestones_epochs'][1]:.1f}; ran {plan['steps']} steps", flush=True)
    train_seconds = time.perf_counter() - t_start

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_keypoint_rcnn_"))
    ann = write_coco_dataset(out / "val_scenes", args.val_images, split="val", seed=123, image_size=size,
                             num_people=(1, 4), subjects=("S9", "S11"))
    t = time.perf_counter()
    res = evaluate_keypoint_rcnn(model, ann, out / "val_scenes" / "val", image_size=size,
                                 batch_size=args.batch_size, max_people=8, results_dir=out)
    eval_seconds = time.perf_counter() - t
    row = {"budget_minutes": args.minutes, "train_minutes": train_seconds / 60.0, "steps": plan["steps"],
           "images_seen": plan["steps"] * args.batch_size, "steps_per_second": rate,
           "box_AP": res["box"]["AP"], "box_AP50": res["box"]["AP50"],
           "keypoint_AP": res["keypoints"]["AP"], "keypoint_AP50": res["keypoints"]["AP50"],
           "val_images": args.val_images, "eval_seconds": eval_seconds,
           "final_loss": {k: float(v[-1]) for k, v in hist.history.items()},
           "backend": keras.backend.backend(), "pretrained_backbone": not args.no_pretrained}
    (out / "results.json").write_text(json.dumps(row, indent=2))
    print()
    print("| budget (min) | steps x batch | box AP | box AP50 | kp AP | kp AP50 | val images |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.minutes:g} | {plan['steps']} x {args.batch_size} | {row['box_AP']:.3f} | {row['box_AP50']:.3f} "
          f"| {row['keypoint_AP']:.3f} | {row['keypoint_AP50']:.3f} | {args.val_images} |")
    print(f"targets: box AP >= 0.80, keypoint AP >= 0.40 | results in {out}")
    return row


if __name__ == "__main__":
    main()
