"""Benchmark: unsupervised 3D lifting from 2D alone (Chen et al. 2019) vs the supervised baseline.

Trains :class:`pose_lab.training.unsupervised_lifting.UnsupervisedLifter` on
the **2D poses only** of synthetic Human3.6M S1, S5, S6, S7, S8 (four cameras;
no 3D is read), evaluates on S9/S11 with P-MPJPE and N-MPJPE (scale is
unobservable from 2D, so both align the scale), and runs

* the ablation: ``full`` (critic + cycle losses), ``no critic`` (cycle losses
  only), ``no cycle losses`` (critic only);
* by default with :class:`~pose_lab.training.unsupervised_lifting.MirrorCheck`
  (``--no-mirror-check``: without; the depth-reversed solution then stays
  where an initialisation falls into it);
* the supervised Martinez baseline of notebook 07 (``pose_lab.models.lifting``,
  ``pose_lab.training.lifting``) on the same split, with 3D labels, measured
  with the same two metrics (P-MPJPE after the similarity alignment for both).

Target (issue 14): unsupervised P-MPJPE <= 1.6 x the supervised P-MPJPE.
Published: ElePose 36.7 mm vs ~30 mm supervised (Human3.6M, ground-truth 2D);
Chen et al. as re-run by Yu et al. 2021: 46.0 mm.

Usage::

    python benchmarks/bench_unsupervised_lifting.py                  # defaults: the README row
    python benchmarks/bench_unsupervised_lifting.py --epochs 2 --runs full supervised
    KERAS_BACKEND=jax python benchmarks/bench_unsupervised_lifting.py --epochs 4

Timings on a shared machine vary: the table states the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pose_lab import runtime  # noqa: E402  (cheap: no TensorFlow; after the path insert)

#: the ablation: name -> UnsupervisedLifter weights
ABLATION = {
    "full": dict(adversarial_weight=1.0, consistency_3d_weight=1.0, cycle_2d_weight=1.0),
    "no critic": dict(adversarial_weight=0.0, consistency_3d_weight=1.0, cycle_2d_weight=1.0),
    "no cycle losses": dict(adversarial_weight=1.0, consistency_3d_weight=0.0, cycle_2d_weight=0.0),
}


def load_data(frames=340, sequences=2, train_stride=2, test_stride=5):
    """``(train LiftingArrays, test LiftingArrays, H36MData, source)`` from the synthetic Human3.6M."""
    from pose_lab.data.h36m import load_h36m
    from pose_lab.data.synthetic import ensure_h36m

    out = runtime.data_dir() / "h36m_synthetic" / f"{frames}x{sequences}"  # shared with notebooks 07/09/12
    ensure_h36m(out, frames_per_sequence=frames, sequences_per_action=sequences, seed=0)
    data = load_h36m(out / "data_3d_h36m.npz", out / "data_2d_h36m_gt.npz")
    train = data.lifting_arrays("train", stride=train_stride)
    test = data.lifting_arrays("test", stride=test_stride)
    return train, test, data, f"synthetic Human3.6M ({frames} frames x {sequences} sequences per action)"


def train_unsupervised(x2d_train, *, epochs, weights, hidden=256, critic_hidden=256, batch_size=256, n_critic=2,
                       lr=(2e-4, 4e-4), seed=0, mirror_check=True, verbose=0):
    """Build and train one :class:`UnsupervisedLifter` on 2D poses only; returns ``(model, history, seconds)``.

    ``mirror_check``: with :class:`MirrorCheck` on 4,096 training poses (notebook 12's recipe); ``False``:
    Chen et al.'s loop alone.
    """
    import keras

    from pose_lab.models.adversarial import build_mlp_critic
    from pose_lab.models.unsupervised_lifting import build_depth_lifter
    from pose_lab.training.unsupervised_lifting import (MirrorCheck, UnsupervisedLifter,
                                                        unsupervised_lifter_optimizers)

    keras.utils.set_random_seed(seed)
    lifter = build_depth_lifter(hidden=hidden)  # built first, then the critic: the same weights as notebook 12
    critic = build_mlp_critic((17, 2), hidden=critic_hidden, num_layers=3)
    model = UnsupervisedLifter(lifter, critic, n_critic=n_critic, seed=seed, **weights)
    steps = epochs * -(-len(x2d_train) // batch_size)
    model.compile(*unsupervised_lifter_optimizers(*lr, decay_steps=steps, n_critic=n_critic))
    t0 = time.perf_counter()
    callbacks = [MirrorCheck(x2d_train[:: max(1, len(x2d_train) // 4096)][:4096])] if mirror_check else []
    history = model.fit(x2d_train, epochs=epochs, batch_size=batch_size, verbose=verbose, callbacks=callbacks)
    return model, history, time.perf_counter() - t0


def train_supervised(data, *, epochs, train_stride, test_stride, hidden=1024, seed=0):
    """Notebook 07's Martinez baseline; returns ``(test predictions in mm, seconds)``."""
    import keras

    from pose_lab.data.lifting import prepare_lifting_data
    from pose_lab.evaluation.lifting import predict_3d
    from pose_lab.models.lifting import build_lifter
    from pose_lab.training.lifting import compile_lifter, fit_lifter

    ld = prepare_lifting_data(data, train_stride=train_stride, test_stride=test_stride)
    keras.utils.set_random_seed(seed)
    model = compile_lifter(build_lifter(hidden=hidden))
    t0 = time.perf_counter()
    fit_lifter(model, ld.x_train, ld.y_train, epochs=epochs, batch_size=64, progress=False, verbose=0)
    seconds = time.perf_counter() - t0
    return predict_3d(model, ld.x_test, ld.stats), ld.y_test_mm, seconds


def _cmu(model, seed):
    """P-MPJPE / N-MPJPE of ``model`` on the real CMU clips seen by S9's cameras (notebook 12, section 9)."""
    from pose_lab.evaluation.unsupervised_lifting import cmu_lifting_arrays, evaluate_unsupervised_lifter

    root = runtime.shared_data_dir()
    clips = sorted((root / "cmu_mocap").glob("*.bvh")) if root is not None else []
    if not clips:
        print("  CMU: no clips found (data/samples/real/cmu_mocap)")
        return
    px, mm, names = cmu_lifting_arrays(clips, stride=2)
    t = evaluate_unsupervised_lifter(model, px, mm, names)
    print(f"  CMU real clips {[c.stem for c in clips]} (seed {seed}): P-MPJPE {t.average['P-MPJPE']:.1f} mm, "
          f"N-MPJPE {t.average['N-MPJPE']:.1f} mm", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", default=[*ABLATION, "supervised"],
                   help="which of: 'full', 'no critic', 'no cycle losses', 'supervised'")
    p.add_argument("--epochs", type=int, default=8, help="epochs of the full unsupervised run")
    p.add_argument("--ablation-epochs", type=int, default=4, help="epochs of the ablation runs (notebook 12: 4)")
    p.add_argument("--supervised-epochs", type=int, default=4, help="epochs of the supervised baseline (batch 64)")
    p.add_argument("--supervised-reference", type=float, default=None,
                   help="P-MPJPE (mm) of a supervised run measured before, for the ratio when 'supervised' is not run")
    p.add_argument("--hidden", type=int, default=256, help="width of the unsupervised lifter and critic")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the full run (initialisation, views)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--n-critic", type=int, default=2)
    p.add_argument("--stride", type=int, default=2, help="training frame stride (50 fps sequences)")
    p.add_argument("--test-stride", type=int, default=5)
    p.add_argument("--no-mirror-check", action="store_true",
                   help="train without MirrorCheck (Chen et al.'s loop alone: the depth-reversed solution stays)")
    p.add_argument("--cmu", action="store_true",
                   help="also lift the real CMU clips (data/samples/real/cmu_mocap) with each full-run model")
    p.add_argument("--frames", type=int, default=340)
    p.add_argument("--sequences", type=int, default=2)
    args = p.parse_args(argv)
    bad = [r for r in args.runs if r not in ABLATION and r != "supervised"]
    if bad:
        p.error(f"--runs: unknown {bad}; choose from {[*ABLATION, 'supervised']}")

    import keras

    from pose_lab.evaluation.unsupervised_lifting import evaluate_unsupervised_lifter, unsupervised_errors

    train, test, data, source = load_data(args.frames, args.sequences, args.stride, args.test_stride)
    print(f"### Unsupervised lifting (Chen et al. 2019) on {source}")
    print(f"train: {len(train.inputs_2d):,} 2D poses (S1,S5,S6,S7,S8 x 4 cameras, stride {args.stride}, no 3D); "
          f"test: {len(test.inputs_2d):,} (S9,S11, stride {args.test_stride}); backend {keras.backend.backend()}; "
          f"load average before {runtime.load_average()}\n")
    rows = {}
    for run in args.runs:
        if run == "supervised":
            pred, gt, secs = train_supervised(data, epochs=args.supervised_epochs, train_stride=args.stride,
                                              test_stride=args.test_stride)
            table = unsupervised_errors(pred, gt, test.actions)
            rows["supervised Martinez (3D labels)"] = (table, secs, f"{args.supervised_epochs} ep, batch 64")
        else:
            epochs = args.epochs if run == "full" else args.ablation_epochs
            for seed in (args.seeds if run == "full" else args.seeds[:1]):
                model, hist, secs = train_unsupervised(train.inputs_2d, epochs=epochs, weights=ABLATION[run],
                                                       hidden=args.hidden, critic_hidden=args.hidden,
                                                       batch_size=args.batch_size, n_critic=args.n_critic, seed=seed,
                                                       mirror_check=not args.no_mirror_check)
                table = evaluate_unsupervised_lifter(model, test.inputs_2d, test.targets_3d, test.actions)
                last = {k: round(float(v[-1]), 4) for k, v in hist.history.items() if k != "mirrored"}
                if "mirrored" in hist.history:  # before any flip at that epoch's end
                    print(f"  {run} (seed {seed}): mirrored share of the lifts after each epoch "
                          f"{[round(float(v), 3) for v in hist.history['mirrored']]}", flush=True)
                if args.cmu and run == "full":
                    _cmu(model, seed)
                rows[f"unsupervised: {run} (seed {seed})"] = (table, secs, f"{epochs} ep, batch {args.batch_size}")
                print(f"  {run} (seed {seed}): P-MPJPE {table.average['P-MPJPE']:.1f} mm, N-MPJPE "
                      f"{table.average['N-MPJPE']:.1f} mm ({secs / 60:.1f} min); last-epoch training losses "
                      f"(label-free): {last}", flush=True)
            continue
        t = rows[list(rows)[-1]][0]
        print(f"  {list(rows)[-1]}: P-MPJPE {t.average['P-MPJPE']:.1f} mm, N-MPJPE {t.average['N-MPJPE']:.1f} mm "
              f"({rows[list(rows)[-1]][1] / 60:.1f} min)", flush=True)

    sup = next((v[0].average["P-MPJPE"] for k, v in rows.items() if k.startswith("supervised")),
               np.nan if args.supervised_reference is None else args.supervised_reference)
    print("\n| method | P-MPJPE (mm) | N-MPJPE (mm) | / supervised P-MPJPE | training |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, (table, secs, what) in rows.items():
        pm = table.average["P-MPJPE"]
        print(f"| {name} | {pm:.1f} | {table.average['N-MPJPE']:.1f} | {pm / sup:.2f} | {what}, "
              f"{secs / 60:.1f} min |")
    print(f"\ntarget: unsupervised (full) P-MPJPE <= 1.6 x supervised; load average after {runtime.load_average()}")
    return rows


if __name__ == "__main__":
    main()
