"""Cross-modal VAE on rendered mannequin crops: image->3D vs 2D->3D, and the cost of the alternation.

Trains :class:`pose_lab.training.crossmodal.CrossModalVAE` on crops from
:func:`pose_lab.data.synthetic.render_crops` (prepared by :mod:`pose_lab.data.crossmodal`): frames of the synthetic
actions, the Human3.6M training subjects (S1, S5, S6, S7, S8) for training and
the test subjects (S9, S11) for validation, each set from its own seed
(different bodies, motions, cameras, clothes and backgrounds). Prints two tables:

1. **Accuracy** on the validation crops, protocol 1 (MPJPE) and protocol 2
   (P-MPJPE) in mm over the 17 H36M joints (root-centred, root counted),
   averaged per action then over actions as Human3.6M papers do
   (:mod:`pose_lab.evaluation.crossmodal`): image -> 3D (cross-modal
   generation), 2D -> 3D through the same latent, the supervised Martinez et
   al. lifter (``pose_lab.models.lifting``, ``pose_lab.training.lifting``)
   trained on the same 2D/3D pairs for the same number of epochs, and the mean
   training pose (the error of predicting nothing).
2. **Step cost** of the one-hot alternation (all four networks run every
   step, see ``pose_lab.training.crossmodal``) against plain Keras models that
   run only one pair's networks; their mean is what a true per-pair
   alternation would cost per step.

Usage::

    python benchmarks/bench_crossmodal.py            # 64x64, 24k crops, 12 epochs
    python benchmarks/bench_crossmodal.py --quick    # a one-minute check
    python benchmarks/bench_crossmodal.py --image-backbone pose2d-synthetic-small   # encoder from the 2D checkpoint

Timings are wall-clock on whatever machine runs it; say how loaded the CPU was
when you quote them.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from pose_lab import runtime  # noqa: E402
from pose_lab.data.crossmodal import crossmodal_stats, prepare_crossmodal_data  # noqa: E402
from pose_lab.data.synthetic import ACTIONS, TEST_SUBJECTS, TRAIN_SUBJECTS, render_crops  # noqa: E402
from pose_lab.evaluation.crossmodal import IMAGE_TO_3D, POSE2D_TO_3D, evaluate_crossmodal, mean_pose  # noqa: E402
from pose_lab.evaluation.lifting import predict_3d, protocol_errors  # noqa: E402
from pose_lab.models.backbones import backbone_for_image_size  # noqa: E402
from pose_lab.models.crossmodal import build_crossmodal_networks  # noqa: E402
from pose_lab.models.lifting import build_lifter  # noqa: E402
from pose_lab.training.crossmodal import CrossModalVAE, suggested_jit_compile  # noqa: E402
from pose_lab.training.lifting import compile_lifter  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=64, help="crop side in pixels")
    p.add_argument("--n-train", type=int, default=24_000)
    p.add_argument("--n-val", type=int, default=2_000)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--beta", type=float, default=1e-3)
    p.add_argument("--timing-steps", type=int, default=20, help="steps per timed measurement")
    p.add_argument("--no-lifter", action="store_true", help="skip the supervised lifter baseline")
    p.add_argument("--quick", action="store_true", help="32x32, 1k crops, 3 epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-backbone", default=None, choices=["pose2d-synthetic-small", "pose2d-synthetic"],
                   help="start the image encoder from this shipped checkpoint's backbone (issue 10, item 6; "
                        "notebook 10 uses pose2d-synthetic-small)")
    p.add_argument("--backbone-size", type=int, default=128,
                   help="side the crops are resized to for --image-backbone (the checkpoint saw ~128-px persons)")
    p.add_argument("--verbose", action="store_true", help="print one line per training epoch")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.n_train, args.n_val, args.epochs, args.timing_steps = 32, 1024, 256, 3, 8
    return args


def widths_for(size):
    """Encoder/decoder widths sized for a CPU: four stages from 64 px up, three below.

    The builders' defaults (32..256 channels) cost about 4x more per step; the
    image decoder's full-resolution transposed convolutions dominate.
    """
    if size >= 64:
        return (16, 32, 64, 128), (128, 64, 32, 16)
    return (16, 32, 64), (64, 32, 16)


def make_model(args, stats, jit_compile=None):
    enc_w, dec_w = widths_for(args.size)
    backbone = None
    if args.image_backbone:
        backbone = backbone_for_image_size((args.backbone_size, args.backbone_size), args.image_backbone)
    nets = build_crossmodal_networks(image_size=args.size, latent_dim=args.latent_dim,
                                     encoder_widths=enc_w, decoder_widths=dec_w, image_backbone=backbone)
    model = CrossModalVAE(**nets, beta=args.beta, stats=stats, seed=args.seed)
    jit = suggested_jit_compile() if jit_compile is None else jit_compile
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit)
    return model


def averages(table):
    """Protocol 1 and 2 (mm) of a :func:`~pose_lab.evaluation.lifting.protocol_errors` table, averaged over actions."""
    return table.average["P1"], table.average["P2"]


def time_fit(model, data, batch_size, steps):
    """``(seconds of the first, compiling epoch, seconds per step afterwards)`` of ``model.fit``."""
    n = batch_size * steps
    if isinstance(data, tuple):
        args = tuple(v[:n] for v in data)
    else:
        args = ({k: v[:n] for k, v in data.items()},)
    t = time.perf_counter()
    model.fit(*args, batch_size=batch_size, epochs=1, verbose=0)
    first = time.perf_counter() - t
    t = time.perf_counter()
    model.fit(*args, batch_size=batch_size, epochs=1, verbose=0)
    return first, (time.perf_counter() - t) / steps


def pair_only_models(args):
    """Plain Keras models running only one pair's networks (the cost a true alternation pays)."""
    nets = build_crossmodal_networks(image_size=args.size, latent_dim=args.latent_dim,
                                     encoder_widths=widths_for(args.size)[0],
                                     decoder_widths=widths_for(args.size)[1])
    img = keras.Input(nets["image_encoder"].input_shape[1:])
    p2 = keras.Input(nets["pose2d_encoder"].input_shape[1:])
    z_img = nets["image_encoder"](img)[0]
    z_2d = nets["pose2d_encoder"](p2)[0]
    models = {
        "image_to_image": (keras.Model(img, nets["image_decoder"](z_img)), "mae"),
        "image_to_3d": (keras.Model(img, nets["pose3d_decoder"](z_img)), "mse"),
        "pose2d_to_3d": (keras.Model(p2, nets["pose3d_decoder"](z_2d)), "mse"),
    }
    for model, loss in models.values():
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=suggested_jit_compile())
    return {k: v[0] for k, v in models.items()}


def main(argv=None):
    args = parse_args(argv)
    runtime.set_seed(args.seed)
    print(runtime.describe(print_fn=None))
    print(f"CPU cores visible: {os.cpu_count()}; load average at start: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (other work on the machine slows every number)")

    t0 = time.perf_counter()
    train = render_crops(args.n_train, size=args.size, seed=1000 + args.seed, subjects=TRAIN_SUBJECTS, actions=ACTIONS)
    val = render_crops(args.n_val, size=args.size, seed=2000 + args.seed, subjects=TEST_SUBJECTS, actions=ACTIONS)
    t_render = time.perf_counter() - t0
    stats = crossmodal_stats(train["joints_2d"], train["joints_3d"])
    d_train = prepare_crossmodal_data(train["images"], train["joints_2d"], train["joints_3d"], stats)
    d_val = prepare_crossmodal_data(val["images"], val["joints_2d"], val["joints_3d"], stats)
    target = val["joints_3d"] - val["joints_3d"][:, :1]
    acts = val["actions"]
    print(f"rendered {args.n_train} (S1, S5-S8) + {args.n_val} (S9, S11) crops of {args.size}x{args.size} "
          f"in {t_render:.1f} s; {len(set(acts))} actions")

    model = make_model(args, stats)
    print(f"CrossModalVAE: {model.count_params():,} parameters, latent {args.latent_dim}, beta {args.beta}")
    print("image encoder: " + (f"the {args.image_backbone} backbone (crops resized to {args.backbone_size} px), fine-tuned"
                               if args.image_backbone else "random initialisation"))
    t0 = time.perf_counter()
    history = model.fit(d_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2 if args.verbose else 0,
                        validation_data=d_val).history
    t_train = time.perf_counter() - t0
    steps = args.epochs * int(np.ceil(args.n_train / args.batch_size))
    print(f"trained {args.epochs} epochs ({steps} steps) in {t_train:.0f} s")

    tables = evaluate_crossmodal(model, val["images"], val["joints_2d"], val["joints_3d"], acts)
    rows = [
        ("image -> 3D (cross-modal VAE)", *averages(tables[IMAGE_TO_3D])),
        ("2D -> 3D (same VAE, 2D encoder)", *averages(tables[POSE2D_TO_3D])),
    ]
    if not args.no_lifter:
        lifter = compile_lifter(build_lifter(num_joints_in=16, num_joints_out=16), jit_compile=suggested_jit_compile())
        t0 = time.perf_counter()
        lifter.fit(d_train["pose_2d"], d_train["pose_3d"], batch_size=args.batch_size, epochs=args.epochs, verbose=0)
        t_lift = time.perf_counter() - t0
        pred_mm = predict_3d(lifter, d_val["pose_2d"], stats, batch_size=1024)
        rows.append((f"2D -> 3D supervised lifter (Martinez; {t_lift:.0f} s)",
                     *averages(protocol_errors(pred_mm, target, acts))))
    baseline = protocol_errors(mean_pose(stats, len(target)), target, acts)
    rows.append(("mean training pose (no input)", *averages(baseline)))

    print()
    print(f"Validation: {args.n_val} crops ({args.size}x{args.size}), trained on {args.n_train}, "
          f"{args.epochs} epochs, batch {args.batch_size}")
    print(f"| {'method':<46} | {'MPJPE (mm)':>10} | {'P-MPJPE (mm)':>12} |")
    print(f"| {'-' * 46} | {'-' * 10}:| {'-' * 12}:|")
    for name, p1, p2 in rows:
        print(f"| {name:<46} | {p1:>10.1f} | {p2:>12.1f} |")
    last = {k: v[-1] for k, v in history.items()}
    print(f"final epoch: loss {last['loss']:.4f}, val image->image L1 {last['val_image_to_image_loss']:.4f}, "
          f"val KL image {last['val_kl_image']:.2f} nats, val KL 2D {last['val_kl_pose2d']:.2f} nats")

    # --- cost of the one-hot alternation
    print()
    print(f"Step cost, batch {args.batch_size}, {args.size}x{args.size} (mean of {args.timing_steps} steps after a "
          "compiling epoch)")
    timings = {"CrossModalVAE (one-hot: all pairs every step)": time_fit(make_model(args, stats), d_train,
                                                                          args.batch_size, args.timing_steps)}
    if keras.backend.backend() == "tensorflow" and suggested_jit_compile() is False:
        timings["CrossModalVAE, XLA (jit_compile=True)"] = time_fit(make_model(args, stats, jit_compile=True),
                                                                    d_train, args.batch_size, args.timing_steps)
    pair_times = {}
    for pair, m in pair_only_models(args).items():
        x = d_train["image"] if pair != "pose2d_to_3d" else d_train["pose_2d"]
        y = d_train["image"] if pair == "image_to_image" else d_train["pose_3d"]
        with warnings.catch_warnings():  # the unused log-variance heads get no gradient here
            warnings.filterwarnings("ignore", message="Gradients do not exist")
            pair_times[pair] = time_fit(m, (x, y), args.batch_size, args.timing_steps)
            timings[f"only {pair}"] = pair_times[pair]
    mean_pair = float(np.mean([t for _, t in pair_times.values()]))
    print(f"| {'train step':<46} | {'ms/step':>10} | {'1st epoch (s)':>13} |")
    print(f"| {'-' * 46} | {'-' * 10}:| {'-' * 13}:|")
    for name, (first, per_step) in timings.items():
        print(f"| {name:<46} | {1000 * per_step:>10.1f} | {first:>13.1f} |")
    print(f"| {'true alternation (mean of the three pairs)':<46} | {1000 * mean_pair:>10.1f} | {'':>13} |")
    t_all = next(iter(timings.values()))[1]
    print(f"overhead of the one-hot alternation: {t_all / mean_pair:.2f}x")


if __name__ == "__main__":
    main()
