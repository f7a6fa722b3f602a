"""Self-supervised pose features (issue 15): SimCLR and SimSiam against random and supervised encoders.

Usage::

    python benchmarks/bench_contrastive.py --methods simclr simsiam --minutes 8     # the README rows
    python benchmarks/bench_contrastive.py --methods simclr --minutes 4 \\
        --augmentations color_jitter color_drop blur noise cutout scale translate flip  # one ablation arm
    python benchmarks/bench_contrastive.py --smoke                                   # seconds

Every encoder is the small ResNet of the shipped pose checkpoint (widths 16-128,
128x96 crops, 128-d pooled features):

* ``random``: that network at random initialisation (seed 0);
* ``simclr`` / ``simsiam``: pretrained from random init on the endless stream of
  synthetic person crops (subjects S1-S8, no labels) for ``--minutes`` each, with
  :func:`pose_lab.training.contrastive.pretrain_for_minutes` (SGD + momentum,
  lr = base x batch / 256, warm-up + cosine to ``--eta-min`` x lr);
* ``supervised``: the backbone of ``pose_lab.pretrained.load("pose2d-synthetic-small")``,
  trained with keypoint labels (the reference the seed did not have).

Then, on the same fixed crops (probe splits: train S1-S8, val and test S9/S11):
1-, 2- and 3-layer keypoint probes on the frozen pooled features (PCK@0.05 and
mean error in % of the box; the issue's target: SSL probe error <= 0.7x the random
encoder's), and silhouette scores of K-means (k = 8, random_state 3) of the
encoder / projector / predictor features of the test crops. Prints markdown tables
and writes ``results.json`` to ``--out``. Time on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["simclr", "simsiam"], choices=["simclr", "simsiam"])
    parser.add_argument("--minutes", type=float, default=8.0, help="pretraining budget per method")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None, help="base lr (x batch/256); default 0.3 SimCLR, 0.1 SimSiam")
    parser.add_argument("--eta-min", type=float, default=0.1, help="final lr as a fraction of the peak")
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--augmentations", nargs="*", default=None)
    parser.add_argument("--pairs", action="store_true",
                        help="positive pairs share the pose, not the appearance (PersonCropStream(output='pairs'))")
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-eval", type=int, default=600)
    parser.add_argument("--probe-epochs", type=int, default=200, help="most epochs (early stopping on val)")
    parser.add_argument("--no-supervised", action="store_true")
    parser.add_argument("--out", default="/tmp/bench_contrastive")
    parser.add_argument("--save-encoders", action="store_true", help="write <method>_encoder.keras to --out")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.minutes, args.n_train, args.n_eval, args.probe_epochs = 0.2, 128, 64, 3

    import keras
    import numpy as np

    from pose_lab import pretrained
    from pose_lab.data.synthetic import PersonCropStream
    from pose_lab.evaluation import contrastive as EC
    from pose_lab.models.contrastive import build_encoder
    from pose_lab.training import contrastive as TC

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    splits = {"train": EC.probe_data("train", args.n_train), "val": EC.probe_data("val", args.n_eval),
              "test": EC.probe_data("test", args.n_eval)}
    print(f"probe data: {args.n_train} / {args.n_eval} / {args.n_eval} crops in {time.perf_counter() - t0:.0f} s",
          flush=True)

    keras.utils.set_random_seed(0)
    encoders = {"random": build_encoder("small", (128, 96, 3),
                                        backbone_kwargs=pretrained.backbone_kwargs("pose2d-synthetic-small"))}
    heads = {}
    info = {}
    for method in args.methods:
        keras.utils.set_random_seed(1)
        stream = PersonCropStream(args.batch, 100, seed=7, augment=False, workers=2,
                                  output="pairs" if args.pairs else "images")
        if method == "simclr":
            lr = 0.3 if args.lr is None else args.lr
            build = lambda: TC.build_simclr(temperature=args.temperature,  # noqa: E731
                                            augmentations=args.augmentations, seed=11)
        else:
            lr = 0.1 if args.lr is None else args.lr
            build = lambda: TC.build_simsiam(augmentations=args.augmentations, seed=11)  # noqa: E731
        model, limit, run = TC.pretrain_for_minutes(build, stream, args.minutes, base_learning_rate=lr,
                                                    batch_size=args.batch, final_fraction=args.eta_min)
        hist = run.pop("history")
        run.update(steps=limit.steps, minutes=limit.trained_seconds / 60, lr=lr,
                   last={k: float(v[-1]) for k, v in hist.items()})
        info[method] = run
        print(f"{method}: {limit.steps} steps x {args.batch} in {limit.trained_seconds / 60:.1f} min "
              f"({run['steps_per_second'] * args.batch:.0f} images/s); last epoch {run['last']}", flush=True)
        encoders[method] = model.encoder
        heads[method] = model
        if args.save_encoders:
            model.encoder.save(out / f"{method}_encoder.keras")
    if not args.no_supervised:
        encoders["supervised"] = build_encoder(pretrained.load_backbone("pose2d-synthetic-small"))

    feats = {name: {sp: EC.encoder_features(enc, d["images"]) for sp, d in splits.items()}
             for name, enc in encoders.items()}
    table, scores = EC.probe_table(feats, splits, epochs=args.probe_epochs)
    print()
    print(table.to_markdown())

    # silhouettes of K-means clusterings of the test crops' features (seed 000's table)
    sil = {}
    for name, enc in encoders.items():
        row = {"encoder": EC.cluster_scores(feats[name]["test"], 8, 3)["silhouette"]}
        model = heads.get(name)
        if model is not None:
            z = np.asarray(model.projector.predict(feats[name]["test"], verbose=0))
            row["projector"] = EC.cluster_scores(z, 8, 3)["silhouette"]
            if name == "simsiam":
                p = np.asarray(model.predictor.predict(z, verbose=0))
                row["predictor"] = EC.cluster_scores(p, 8, 3)["silhouette"]
        sil[name] = row
    from pose_lab.metrics import ResultTable

    print()
    print(ResultTable(sil, ["encoder", "projector", "predictor"], title="silhouette of K-means (k=8) clusters",
                      row_label="model", digits=3).to_markdown())
    ratio = {}
    for method in args.methods:
        for k in (1, 2, 3):
            ratio[f"{method} {k}-layer"] = scores[(method, k)]["test"]["error % box"] / \
                scores[("random", k)]["test"]["error % box"]
    print()
    print("probe error vs random encoder (test, target <= 0.7):",
          ", ".join(f"{k} {v:.2f}" for k, v in ratio.items()))
    result = {"args": vars(args), "pretraining": info, "probes": {f"{n}, {k}-layer": s for (n, k), s in scores.items()},
              "silhouette": sil, "error_ratio_vs_random": ratio, "seconds": time.perf_counter() - t0}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; results in {out / 'results.json'}")
    return result


if __name__ == "__main__":
    main()
