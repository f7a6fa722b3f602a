"""Benchmarks for 2D -> 3D lifting: training throughput, baseline and VAE-lifter accuracy.

Prints Markdown tables. Four parts (``--part``):

* ``throughput``: samples/s of ``model.fit`` for the Martinez et al. network
  (4.3M parameters) at batch 64 and 256, for several compile settings
  (``jit_compile``, ``steps_per_execution``) and input pipelines (NumPy
  arrays vs a ``tf.data`` pipeline). Reference (issue 5): the same network in
  PyTorch 2.13 trains at ~1,600 (batch 64) and ~3,000 (batch 256) samples/s
  on the 2-core CPU. ``--torch`` also times a PyTorch replica when torch is
  importable (it is not a dependency of the kit): the same network as the
  kit's default (the authors' Frobenius max-norm in every layer's forward
  pass), and the plain network without it (the replica timed until session
  11). ``--bf16`` adds the ``"mixed_bfloat16"`` policy. Each rate also shows
  its share of the machine's fp32 GEMM rate.
* ``baseline``: the Martinez baseline trained on synthetic Human3.6M (or the
  real files under ``data/h36m`` with ``--real``), protocol 1 and 2 in mm on
  S9/S11, per action and averaged, with the wall-clock time.
* ``variants``: the kit's earlier defaults (17 2D joints, per-unit max-norm
  after each step, staircase decay) against the authors' variants (16 2D
  joints without Neck/Nose, Frobenius max-norm in the forward pass,
  continuous decay), same data, seed and epochs: P1/P2 on S9/S11
  (``--variants`` adds the one-factor-at-a-time rows).
* ``vae``: the thesis's VAE lifter on the same data: mean-prediction MPJPE
  and best-of-k MPJPE against the baseline (notebook 09 feeds all 17 2D
  joints: ``--input-joints all``).

Usage::

    python benchmarks/bench_lifting.py --part throughput
    python benchmarks/bench_lifting.py --part baseline vae --epochs 6
    python benchmarks/bench_lifting.py --part variants --epochs 4 --stride 4
    KERAS_BACKEND=jax python benchmarks/bench_lifting.py --part throughput

Timings on a shared machine vary: report them with the load (``uptime``).
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


# ------------------------------------------------------------------ throughput


def _epoch_timer():
    """A Keras callback recording each epoch's seconds in ``.times`` (keras imported here: ``--help`` stays fast)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._t)

    return EpochTimer()


def _measure_throughput(model, batch_size=64, num_samples=20_000, *, epochs=2, seed=0, **fit_kwargs):
    """Training throughput (samples/s) of ``model.fit`` on random data, after a warm-up epoch.

    The first epoch (tracing/compilation) is excluded; the rate is the median
    over the remaining epochs.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_samples,) + tuple(model.input_shape[1:])).astype(np.float32)
    y = rng.standard_normal((num_samples,) + tuple(model.output_shape[1:])).astype(np.float32)
    timer = _epoch_timer()
    model.fit(x, y, batch_size=batch_size, epochs=epochs + 1, verbose=0, callbacks=[timer],
              shuffle=False, **fit_kwargs)
    return float(num_samples / np.median(timer.times[1:]))


def _keras_rate(batch_size, jit_compile, steps_per_execution, pipeline, steps, seed=0, policy="float32"):
    import keras

    from pose_lab.models.lifting import build_lifter
    from pose_lab.training.lifting import compile_lifter

    keras.utils.set_random_seed(seed)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)  # e.g. "mixed_bfloat16": bf16 matmuls (AMX on this CPU)
    try:
        model = compile_lifter(build_lifter(), jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    finally:
        keras.config.set_dtype_policy(previous)
    n = batch_size * steps
    if pipeline == "tf.data":
        if keras.backend.backend() != "tensorflow":
            return None
        import tensorflow as tf

        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n,) + tuple(model.input_shape[1:])).astype(np.float32)
        y = rng.standard_normal((n,) + tuple(model.output_shape[1:])).astype(np.float32)
        ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n).batch(batch_size, drop_remainder=True)
              .prefetch(tf.data.AUTOTUNE))
        timer = _epoch_timer()
        model.fit(ds, epochs=3, verbose=0, callbacks=[timer])
        return n / float(np.median(timer.times[1:]))
    return _measure_throughput(model, batch_size, num_samples=n, epochs=2, seed=seed)


def _torch_rate(batch_size, steps, threads=2, max_norm=True):  # pragma: no cover - optional reference
    """Training samples/s of a PyTorch replica of :func:`pose_lab.models.lifting.build_lifter`.

    ``max_norm=True`` makes it the same network as the kit's default: every
    Linear uses ``W * min(1, 1 / ||W||_F)`` in its forward pass (the authors'
    ``tf.clip_by_norm(w, 1)``, :class:`pose_lab.models.lifting.ClippedDense`);
    ``False`` is the plain network timed before session 12.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.set_num_threads(threads)

    class Linear(nn.Linear):
        def forward(self, x):
            if not max_norm:
                return super().forward(x)
            w = self.weight
            return F.linear(x, w * (1.0 / torch.clamp(torch.linalg.vector_norm(w), min=1.0)), self.bias)

    class Block(nn.Module):
        def __init__(self, h=1024, p=0.5):
            super().__init__()
            self.f = nn.Sequential(Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p),
                                   Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p))

        def forward(self, x):
            return x + self.f(x)

    net = nn.Sequential(Linear(32, 1024), nn.BatchNorm1d(1024), nn.ReLU(), nn.Dropout(0.5),
                        Block(), Block(), Linear(1024, 48))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    n = batch_size * steps
    x, y = torch.randn(n, 32), torch.randn(n, 48)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        perm = torch.randperm(n)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            loss = ((net(x[idx]) - y[idx]) ** 2).mean()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t)
    return n / float(np.median(times[1:]))


def _train_flops_per_sample(model):
    """Floating-point operations of one training sample through the Dense layers of ``model``.

    A Dense layer with an ``n_in x n_out`` kernel costs ``2 n_in n_out`` FLOPs
    forward and twice that backward (the gradients of its input and of its
    kernel), the first layer skipping its input gradient. Batch norm, dropout,
    ReLU and the optimizer are left out: they are the "overhead" the
    utilisation column shows.
    """
    dense = [w.shape for w in model.weights if len(w.shape) == 2]
    macs = [int(a) * int(b) for a, b in dense]
    return 6 * sum(macs) - 2 * macs[0]


def _gemm_peak(batch_size, repeats=200):
    """fp32 GEMM rate (FLOP/s) of ``(batch, 1024) @ (1024, 1024)`` with NumPy's BLAS: the machine's ceiling."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((batch_size, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    for _ in range(10):
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2.0 * batch_size * 1024 * 1024 * repeats / (time.perf_counter() - t)


def part_throughput(args):
    import keras

    backend = keras.backend.backend()
    print(f"\n### Training throughput, Martinez lifter (4.3M params), backend={backend}")
    print(f"CPU cores visible: {os.cpu_count()}, load average before: {runtime.load_average()}; "
          f"median of {args.repeats} interleaved rounds, {args.steps} steps per timed epoch\n")
    configs = [
        ("numpy, jit_compile=False (Keras's 'auto' on a CPU)", False, 1, "numpy"),
        ("numpy, jit_compile=True (XLA: the kit's default)", True, 1, "numpy"),
        ("numpy, XLA + steps_per_execution=8", True, 8, "numpy"),
    ]
    if backend == "tensorflow":
        configs.append(("tf.data + prefetch, XLA", True, 1, "tf.data"))
    if backend == "jax":
        configs = [("numpy, jit (JAX always compiles)", "auto", 1, "numpy"),
                   ("numpy, steps_per_execution=16", "auto", 16, "numpy")]
    if args.bf16:  # AMX-BF16 / a GPU: is "mixed_bfloat16" worth its rounding?
        jit = True if backend == "tensorflow" else "auto"
        configs.append(('numpy, mixed_bfloat16 (bf16 matmuls)', jit, 1, "numpy", "mixed_bfloat16"))
    configs = [c if len(c) == 5 else (*c, "float32") for c in configs]
    rates = {}
    peaks = {}
    for _ in range(args.repeats):  # interleave, so a burst of load hits every setting alike
        for bs in (64, 256):
            peaks.setdefault(bs, []).append(_gemm_peak(bs))
        for name, jit, spe, pipe, policy in configs:
            for bs in (64, 256):
                r = _keras_rate(bs, jit, spe, pipe, steps=args.steps, policy=policy)
                rates.setdefault((name, bs), []).append(r)
        if args.torch:
            try:
                import torch
            except ImportError:
                args.torch = False
                print("(torch not installed: no PyTorch replica)")
            else:
                torch_version = torch.__version__
                for bs in (64, 256):
                    rates.setdefault(("torch", bs), []).append(_torch_rate(bs, args.steps))
                    rates.setdefault(("torch-plain", bs), []).append(_torch_rate(bs, args.steps, max_norm=False))

    from pose_lab.models.lifting import build_lifter

    flops = _train_flops_per_sample(build_lifter())
    peak = {bs: float(np.median(v)) for bs, v in peaks.items()}

    def median(key):
        v = [r for r in rates.get(key, []) if r is not None]
        return float(np.median(v)) if v else None

    def cell(key):
        rate = median(key)
        return "-" if rate is None else f"{rate:,.0f} ({100 * rate * flops / peak[key[1]]:.0f} %)"

    print(f"Dense FLOPs per training sample: {flops / 1e6:.1f} M; in brackets the share of the fp32 GEMM "
          f"rate of (batch x 1024) @ (1024 x 1024) with NumPy's BLAS, {peak[64] / 1e9:.0f} GFLOP/s at 64 "
          f"and {peak[256] / 1e9:.0f} GFLOP/s at 256 (median of the rounds): the rest of a step is batch "
          "norm, dropout, the optimizer and framework overhead\n")
    print("| setting | batch 64 (samples/s) | batch 256 (samples/s) |")
    print("| --- | ---: | ---: |")
    for name, *_ in configs:
        print(f"| keras/{backend}: {name} | {cell((name, 64))} | {cell((name, 256))} |")
    if args.torch:
        print(f"| PyTorch {torch_version} replica, the same network (Frobenius max-norm in the forward "
              f"pass; 2 threads) | {cell(('torch', 64))} | {cell(('torch', 256))} |")
        print(f"| PyTorch {torch_version} without the max-norm (the replica timed before session 12) | "
              f"{cell(('torch-plain', 64))} | {cell(('torch-plain', 256))} |")
    print("| reference: PyTorch 2.13 on the idle 2-core CPU (issue 5) | ~1,600 | ~3,000 |")
    if args.torch:
        kit = configs[1][0] if backend == "tensorflow" else configs[0][0]  # the kit's default setting

        def ratio(ref, bs):
            a, b = median((kit, bs)), median((ref, bs))
            return f"{a / b:.2f}x" if a and b else "-"

        print(f"\nthe kit's default ({kit}) / PyTorch, same network: {ratio('torch', 64)} at batch 64, "
              f"{ratio('torch', 256)} at 256 (target >= 1.2x); / the plain PyTorch network: "
              f"{ratio('torch-plain', 64)}, {ratio('torch-plain', 256)}")
    print(f"\nload average after: {runtime.load_average()}")


# ------------------------------------------------------------------- accuracy


def _data(args, input_joints=None):
    from pose_lab.data.h36m import load_h36m
    from pose_lab.data.lifting import prepare_lifting_data

    real = runtime.data_dir() / "h36m"
    if args.real and (real / "data_3d_h36m.npz").exists():
        p3, p2 = real / "data_3d_h36m.npz", real / "data_2d_h36m_gt.npz"
        source = f"real Human3.6M ({real})"
    else:
        from pose_lab.data.synthetic import ensure_h36m

        out = runtime.data_dir() / "h36m_synthetic" / f"{args.frames}x{args.sequences}"  # shared with the notebooks
        ensure_h36m(out, frames_per_sequence=args.frames, sequences_per_action=args.sequences)
        p3, p2 = out / "data_3d_h36m.npz", out / "data_2d_h36m_gt.npz"
        source = f"synthetic Human3.6M ({args.frames} frames x {args.sequences} sequences per action)"
    data = load_h36m(p3, p2 if p2.exists() else None)
    joints = args.input_joints if input_joints is None else input_joints
    return prepare_lifting_data(data, input_joints=joints, train_stride=args.stride), source


def part_baseline(args, ld, source):
    import keras

    from pose_lab.evaluation.lifting import evaluate_lifter
    from pose_lab.models.lifting import build_lifter
    from pose_lab.training.lifting import compile_lifter, fit_lifter

    keras.utils.set_random_seed(0)
    model = compile_lifter(build_lifter(num_joints_in=ld.x_train.shape[1]), steps_per_execution=args.spe)
    t0 = time.perf_counter()
    fit_lifter(model, ld.x_train, ld.y_train, epochs=args.epochs, batch_size=64, progress=False, verbose=0)
    train_s = time.perf_counter() - t0
    table = evaluate_lifter(model, ld.x_test, ld.y_test_mm, ld.actions_test, ld.stats)
    print(f"\n### Martinez baseline on {source}")
    print(f"train {len(ld.x_train):,} poses (S1,S5,S6,S7,S8, 4 cameras), test {len(ld.x_test):,} (S9,S11); "
          f"{ld.x_train.shape[1]} 2D joints; "
          f"{args.epochs} epochs at batch 64 in {train_s / 60:.1f} min "
          f"(backend {keras.backend.backend()}, load average {runtime.load_average()})\n")
    print(table.to_markdown())
    return model, table, train_s


#: name -> (2D input joints, max-norm mode, staircase decay)
VARIANTS = {
    "kit-v1": ("all", "unit", True),
    "authors": ("martinez", "frobenius", False),
    "authors+17-joints": ("all", "frobenius", False),
    "authors+per-unit": ("martinez", "unit", False),
    "authors+staircase": ("martinez", "frobenius", True),
}
_VARIANT_LABELS = {
    "kit-v1": "kit's earlier defaults",
    "authors": "authors' variants (the new defaults)",
    "authors+17-joints": "authors', but all 17 2D joints",
    "authors+per-unit": "authors', but per-unit max-norm",
    "authors+staircase": "authors', but staircase decay",
}


def part_variants(args):
    """The kit's earlier lifter defaults against the authors' variants: same data, seed, epochs."""
    import keras

    from pose_lab.evaluation.lifting import evaluate_lifter
    from pose_lab.models.lifting import build_lifter
    from pose_lab.training.lifting import compile_lifter, fit_lifter, lifter_optimizer

    rows, data = [], {}
    for name in args.variants:
        joints, mode, staircase = VARIANTS[name]
        if joints not in data:
            data[joints] = _data(args, joints)
        ld, source = data[joints]
        keras.utils.set_random_seed(args.seed)
        model = compile_lifter(build_lifter(num_joints_in=ld.x_train.shape[1], max_norm_mode=mode),
                               lifter_optimizer(staircase=staircase), steps_per_execution=args.spe)
        t0 = time.perf_counter()
        fit_lifter(model, ld.x_train, ld.y_train, epochs=args.epochs, batch_size=64, progress=False, verbose=0)
        minutes = (time.perf_counter() - t0) / 60
        table = evaluate_lifter(model, ld.x_test, ld.y_test_mm, ld.actions_test, ld.stats)
        steps = args.epochs * (len(ld.x_train) // 64 + (len(ld.x_train) % 64 > 0))
        rows.append((_VARIANT_LABELS[name], ld.x_train.shape[1], mode, "staircase" if staircase else "continuous",
                     table.average["P1"], table.average["P2"], minutes))
        print(f"  {name}: P1 {table.average['P1']:.1f} mm, P2 {table.average['P2']:.1f} mm, {minutes:.1f} min",
              flush=True)
    print(f"\n### Lifter variants on {source}")
    print(f"train {len(ld.x_train):,} poses (stride {args.stride}), test {len(ld.x_test):,} (S9, S11); "
          f"{args.epochs} epochs at batch 64 ({steps:,} steps: the learning rate has decayed to "
          f"{0.96 ** (steps / 100_000):.4f}x continuously, 1x with the staircase); seed {args.seed}; "
          f"backend {keras.backend.backend()}, load average {runtime.load_average()}\n")
    print("| variant | 2D joints | max-norm | LR decay | P1 (mm) | P2 (mm) | train (min) |")
    print("| --- | ---: | --- | --- | ---: | ---: | ---: |")
    for label, j, mode, decay, p1, p2, minutes in rows:
        norm = "Frobenius, forward pass" if mode == "frobenius" else "per unit, after each step"
        print(f"| {label} | {j} | {norm} | {decay} | {p1:.1f} | {p2:.1f} | {minutes:.1f} |")
    return rows



def part_vae(args, ld, source, baseline_table=None):
    import keras

    from pose_lab import metrics
    from pose_lab.evaluation import vae as E
    from pose_lab.evaluation.lifting import evaluate_lifter
    from pose_lab.training import vae as V

    keras.utils.set_random_seed(0)
    model = V.make_vae_lifter(num_joints_in=ld.x_train.shape[1], target_std=ld.stats.std_3d, seed=0)
    steps = args.vae_epochs * int(np.ceil(len(ld.x_train) / 64))
    model.compile(optimizer=V.vae_optimizer(steps), steps_per_execution=args.spe)
    t0 = time.perf_counter()
    V.fit_vae(model, ld.x_train, ld.y_train, epochs=args.vae_epochs, batch_size=64, progress=False, verbose=0)
    train_s = time.perf_counter() - t0
    mean_table = evaluate_lifter(model, ld.x_test, ld.y_test_mm, ld.actions_test,
                                 predict_fn=lambda x: E.predict_mean(model, x, ld.stats))
    rows = [("VAE lifter, mean prediction (z = mu)", mean_table.average["P1"], mean_table.average["P2"])]
    for k in args.k:
        hyp = E.sample_hypotheses(model, ld.x_test, k=k, stats=ld.stats, seed=0)
        best = metrics.best_of_k_mpjpe(hyp, ld.y_test_mm)
        per_action = [best[ld.actions_test == a].mean() for a in np.unique(ld.actions_test)]
        rows.append((f"VAE lifter, best of {k}", float(np.mean(per_action)), float("nan")))
    mu, lv = E.encode(model, ld.x_test[:5000])
    print(f"\n### VAE lifter (thesis design: 5x512 encoder/decoder, latent 100, beta 1e-3) on {source}")
    print(f"{args.vae_epochs} epochs at batch 64 (Adam 1e-3, cosine decay) in {train_s / 60:.1f} min; active units "
          f"{metrics.active_units(mu)}/{mu.shape[1]}; mean posterior std {np.exp(0.5 * lv).mean():.3f}\n")
    print("| method | P1 MPJPE (mm) | P2 P-MPJPE (mm) |")
    print("| --- | ---: | ---: |")
    if baseline_table is not None:
        print(f"| Martinez baseline | {baseline_table.average['P1']:.1f} | {baseline_table.average['P2']:.1f} |")
    for name, p1, p2 in rows:
        print(f"| {name} | {p1:.1f} | {'-' if np.isnan(p2) else f'{p2:.1f}'} |")
    if baseline_table is not None:
        ratio = rows[0][1] / baseline_table.average["P1"]
        print(f"\nmean prediction / baseline P1 = {ratio:.3f} (target <= 1.10)")
    return model, mean_table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", nargs="+", default=["throughput", "baseline", "vae"],
                   choices=["throughput", "baseline", "variants", "vae"])
    p.add_argument("--steps", type=int, default=150, help="steps per timed epoch (throughput)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (throughput); the median is printed")
    p.add_argument("--torch", action="store_true", help="also time a PyTorch replica if installed")
    p.add_argument("--bf16", action="store_true",
                   help='also time the "mixed_bfloat16" policy (throughput; bf16 matmuls, e.g. AMX)')
    p.add_argument("--frames", type=int, default=340, help="synthetic frames per sequence")
    p.add_argument("--sequences", type=int, default=2, help="synthetic sequences per action")
    p.add_argument("--stride", type=int, default=1, help="training frame stride")
    p.add_argument("--epochs", type=int, default=8, help="baseline epochs (the notebooks' full mode)")
    p.add_argument("--vae-epochs", type=int, default=8, help="VAE lifter epochs (notebook 09: the same as the baseline)")
    p.add_argument("--spe", type=int, default=1, help="steps_per_execution")
    p.add_argument("--k", type=int, nargs="+", default=[10])
    p.add_argument("--real", action="store_true", help="use data/h36m when present")
    p.add_argument("--input-joints", default="martinez", choices=["martinez", "all"],
                   help="2D joints fed to the lifters of --part baseline/vae: the paper's 16 (no Neck/Nose) "
                        "or all 17 (notebook 09)")
    p.add_argument("--variants", nargs="+", default=["kit-v1", "authors"], choices=list(VARIANTS),
                   help="variants compared by --part variants")
    p.add_argument("--seed", type=int, default=0, help="seed of every variant's initialisation and shuffling")
    args = p.parse_args(argv)

    if "throughput" in args.part:
        part_throughput(args)
    if "variants" in args.part:
        part_variants(args)
    table = None
    if "baseline" in args.part or "vae" in args.part:
        ld, source = _data(args)
        if "baseline" in args.part:
            _, table, _ = part_baseline(args, ld, source)
        if "vae" in args.part:
            part_vae(args, ld, source, table)


if __name__ == "__main__":
    main()
