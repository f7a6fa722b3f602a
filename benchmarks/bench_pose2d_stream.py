"""2D pose networks trained on the endless synthetic stream, compared at equal training time.

Usage::

    python benchmarks/bench_pose2d_stream.py --designs recipe mobile wide --minutes 5
    python benchmarks/bench_pose2d_stream.py --designs recipe --minutes 15 --marks 5 10     # notebook 02's target
    python benchmarks/bench_pose2d_stream.py --designs wide --minutes 90 --marks 15 30 60 \\
        --save pose_lab/pretrained/pose2d_synthetic.weights.h5                  # the shipped pose2d-synthetic
    python benchmarks/bench_pose2d_stream.py --designs recipe --minutes 50 --marks 5 10 20 35 --no-replan \\
        --save pose_lab/pretrained/pose2d_synthetic_small.weights.h5            # the shipped pose2d-synthetic-small
    python benchmarks/bench_pose2d_stream.py --smoke                                        # seconds

Every design trains from random initialisation on
:class:`pose_lab.data.synthetic.PersonCropStream` (fresh persons of subjects
S1-S8 every batch, augmented) with
:func:`pose_lab.training.keypoints2d.fit_for_minutes` (Adam, warm-up + cosine
decay planned to end with the budget, re-planned from the run's own rate after
each epoch; the budget includes the rate probe and excludes the evaluations at
``--marks``). Each is scored on the course's
validation split: 200 synthetic COCO images of the held-out subjects S9 and
S11 (seed 123, the definition of notebook 02), ground-truth boxes, flip test,
DARK decoding, OKS AP by pycocotools; plus PCK@0.05, the left/right swap rate
among limb keypoints (and its two kinds: exchanged pairs, one limb found twice), and the real COCO sample
when it is present.

Prints one markdown table (AP per CPU-minute) and the AP-vs-minutes curve of
each design, and writes ``results.json`` in the work folder. Time on a quiet
machine: the wall clock is the budget.
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

from pose_lab import runtime  # noqa: E402  (cheap: no TensorFlow; after the path insert)

#: Candidate networks (``build_heatmap_model`` arguments, 128x96 -> 32x24 heatmaps).
DESIGNS = {
    # notebook 02's recipe network: small ResNet, SimpleBaseline head + lateral skips
    # (the value of STREAM_RECIPE["model"] and SYNTHETIC_RECIPE["model"])
    "recipe": {"backbone": "small", "backbone_kwargs": {"widths": (16, 32, 64, 128)},
               "head_filters": 64, "head_layers": 3, "skip_connections": True},
    # MobileNetV2-style depthwise-separable backbone, same head
    "mobile": {"backbone": "mobile", "backbone_kwargs": {"widths": (24, 32, 64, 96), "blocks": (1, 2, 2, 2)},
               "head_filters": 64, "head_layers": 3, "skip_connections": True},
    # wider and deeper ResNet (two blocks at strides 8 and 16), same head: the shipped pose2d-synthetic
    "wide": {"backbone": "small", "backbone_kwargs": {"widths": (24, 48, 96, 160), "blocks": (1, 2, 2, 1)},
             "head_filters": 64, "head_layers": 3, "skip_connections": True},
}


def _real_coco():

    shared = runtime.shared_data_dir()
    candidates = [(runtime.data_dir() / "coco/annotations/person_keypoints_val2017.json",
                   runtime.data_dir() / "coco/val2017")]
    if shared is not None:
        candidates.append((shared / "coco_val2017_mini/person_keypoints_val2017_mini.json",
                           shared / "coco_val2017_mini/val2017"))
    return next(((a, i) for a, i in candidates if a.is_file() and i.is_dir()), None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=sorted(DESIGNS))
    ap.add_argument("--minutes", type=float, default=5.0, help="training budget per design (probe included)")
    ap.add_argument("--marks", type=float, nargs="*", default=(), help="extra evaluations (training minutes)")
    ap.add_argument("--mixed", action="store_true", help="keras.mixed_precision 'mixed_bfloat16'")
    ap.add_argument("--workers", type=int, default=2, help="PyDataset worker threads rendering ahead")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--peak-lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=0, help="stream and initialisation seed")
    ap.add_argument("--no-replan", action="store_true",
                    help="keep the probe's plan of the schedule (how the shipped checkpoint was trained)")
    ap.add_argument("--save", default=None, help="write the (last) design's weights here (.weights.h5)")
    ap.add_argument("--smoke", action="store_true", help="seconds, to check that it runs")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)

    import keras

    from pose_lab.data.synthetic import PersonCropStream, write_coco_dataset
    from pose_lab.evaluation import keypoints2d as kp_eval
    from pose_lab.models.keypoints2d import build_heatmap_model
    from pose_lab.training import keypoints2d as kp2d

    smoke = args.smoke or runtime.is_smoke()
    recipe = kp2d.STREAM_RECIPE
    minutes = 0.3 if smoke else args.minutes
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pose2d_"))
    print(f"bench_pose2d_stream: {'smoke' if smoke else 'full'} |", runtime.describe(print_fn=None), flush=True)
    val_json = write_coco_dataset(work / "synthetic_coco", 4 if smoke else recipe["val_images"], split="val",
                                  seed=recipe["val_seed"], image_size=recipe["image_size"],
                                  subjects=recipe["val_subjects"])
    val_images = work / "synthetic_coco" / "val"
    real = _real_coco()

    def evaluate(model):
        net = model.network if hasattr(model, "network") else model
        ev = kp_eval.evaluate_keypoints(net, val_json, val_images, decode=recipe["decode"])
        sw = ev.swaps
        return {"AP": ev.coco["AP"], "AP50": ev.coco["AP50"], "AP75": ev.coco["AP75"], "PCK": ev.pck,
                "swap_rate": sw["swap_rate"], "swap_share": sw["swap_share"], "exchange_rate": sw["exchange_rate"],
                "double_rate": sw["double_rate"]}

    results = {}
    for name in args.designs:
        runtime.set_seed(args.seed)
        if args.mixed:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        net = build_heatmap_model(input_shape=recipe["input_shape"], **DESIGNS[name])
        stream = PersonCropStream(batch_size=8 if smoke else args.batch_size, steps_per_epoch=5 if smoke else 100,
                                  seed=args.seed, input_size=recipe["input_shape"][:2], sigma=recipe["sigma"],
                                  workers=args.workers)
        t0 = time.perf_counter()
        trainer, limit, info = kp2d.fit_for_minutes(net, stream, minutes, peak_learning_rate=args.peak_lr,
                                                    warmup_steps=recipe["warmup_steps"], evaluate=evaluate,
                                                    marks=args.marks, probe_steps=3 if smoke else 20,
                                                    replan=not args.no_replan)
        wall = time.perf_counter() - t0
        keras.mixed_precision.set_global_policy("float32")
        final = dict(limit.curve[-1])
        if real is not None:
            ev_real = kp_eval.evaluate_keypoints(net, real[0], real[1], decode=recipe["decode"])
            final.update(real_AP=ev_real.coco["AP"], real_PCK=ev_real.pck)
        results[name] = {
            "design": DESIGNS[name], "mixed_bfloat16": args.mixed, "parameters": net.count_params(),
            "budget_minutes": minutes, "train_minutes": limit.trained_seconds / 60 + info["probe_seconds"] / 60,
            "wall_minutes": wall / 60, "steps": limit.steps, "planned_steps": info["planned_steps"],
            "final_planned_steps": info["final_planned_steps"], "replans": info["replans"],
            "probe_steps_per_second": info["steps_per_second"],
            "samples_per_second": limit.steps * stream.batch_size / max(limit.trained_seconds, 1e-9),
            "final": final, "curve": limit.curve,
        }
        print(f"{name}: {json.dumps(results[name], default=str)}", flush=True)
        if args.save:
            out = Path(args.save)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp.weights.h5")
            net.save_weights(tmp)
            os.replace(tmp, out)
            (out.with_suffix("").with_suffix(".json")).write_text(json.dumps(results[name], indent=1, default=str))
            print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB)")

    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print()
    print(f"backend {keras.backend.backend()}, load average {runtime.load_average()}, "
          f"work folder {work}")
    print("| design | params | bf16 | train min | steps | samples/s | AP | AP50 | PCK@0.05 | L/R swaps "
          "(exchanged / one limb twice) | AP per CPU-min | real AP | real PCK |")
    print("| --- | ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        f = r["final"]
        print(f"| {name} | {r['parameters']:,} | {'yes' if r['mixed_bfloat16'] else 'no'} | "
              f"{r['train_minutes']:.1f} | {r['steps']} | {r['samples_per_second']:.0f} | {f['AP']:.3f} | "
              f"{f['AP50']:.3f} | {f['PCK']:.3f} | {f['swap_rate']:.1%} ({f['exchange_rate']:.1%} / {f['double_rate']:.1%}) | "
              f"{f['AP'] / r['train_minutes']:.3f} | "
              f"{f.get('real_AP', float('nan')):.3f} | {f.get('real_PCK', float('nan')):.3f} |")
    print()
    print("AP vs training minutes:")
    for name, r in results.items():
        print(f"  {name}: " + ", ".join(f"{c['minutes']:.1f} min {c['AP']:.3f}" for c in r["curve"]))
    return results


if __name__ == "__main__":
    main()
