"""Benchmark: GAN, WGAN, WGAN-GP (MLP and KCS critic) and VAE-GAN on synthetic Human3.6M 3D poses.

Each model trains for the same wall-clock budget (``--minutes``, training
time only, :class:`pose_lab.training.callbacks.TimeLimit`) on the root-centred,
root-dropped, z-scored 3D poses of the training subjects (S1, S5, S6, S7, S8);
then ``--samples`` poses are drawn from the prior and compared with real
training poses by :func:`pose_lab.evaluation.adversarial.realism_table`
(the first row: held-out real training poses, what a perfect generator scores).

Targets (issue 14): WGAN-GP samples with bone asymmetry and joint-limit
violations <= 2x the real poses' and a two-sample classifier accuracy <= 0.75.
Note that the synthetic bodies are exactly left/right symmetric (asymmetry
~0 for real poses), so "2x real" is read against absolute values too.

Settings follow the papers: GAN Adam(2e-4, 0.5), n_critic 1; WGAN RMSprop(5e-5),
clip 0.01, n_critic 5; WGAN-GP Adam(1e-4, 0.5, 0.9), lambda 10, n_critic 5;
VAE-GAN Adam(2e-4, 0.5), gamma 0.1. The WGANs draw a new real sub-batch for
each critic step (``split_batch=True``, batch ``5 x 64``), as the authors' code.

``--sensitivity`` adds rows of *real* held-out poses rebuilt from their bones
with small errors (each bone length times ``exp(N(0, s))``, or each unit bone
direction plus ``N(0, s)`` per coordinate, renormalised), to show how close to
real a generator must come before the two-sample classifier stops telling it
apart (``--models`` may then be empty).

Usage::

    python benchmarks/bench_adversarial.py --minutes 3
    python benchmarks/bench_adversarial.py --models --sensitivity    # no training: perturbed real poses only
    python benchmarks/bench_adversarial.py --minutes 0.5 --models wgan_gp_mlp wgan_gp_kcs
    KERAS_BACKEND=jax python benchmarks/bench_adversarial.py --minutes 1

Timings on a shared machine vary: the load average is printed with the table.
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

MODELS = ("gan", "wgan", "wgan_gp_mlp", "wgan_gp_kcs", "vae_gan")
LABELS = {"gan": "GAN (MLP critic)", "wgan": "WGAN, clipping (MLP)", "wgan_gp_mlp": "WGAN-GP (MLP critic)",
          "wgan_gp_kcs": "WGAN-GP (KCS critic)", "vae_gan": "VAE-GAN (MLP critic)"}


def load_poses(frames=340, sequences=2, stride=2):
    """Training poses ``(N, 16, 3)`` z-scored and the ``LiftingData`` (stats, mm poses)."""
    from pose_lab.data.h36m import load_h36m
    from pose_lab.data.lifting import prepare_lifting_data
    from pose_lab.data.synthetic import ensure_h36m

    out = runtime.data_dir() / "h36m_synthetic" / f"{frames}x{sequences}"
    ensure_h36m(out, frames_per_sequence=frames, sequences_per_action=sequences, seed=0)
    data = load_h36m(out / "data_3d_h36m.npz", out / "data_2d_h36m_gt.npz")
    return prepare_lifting_data(data, train_stride=stride, test_stride=4)


def build(kind, stats, *, latent=32, hidden=512, kcs_units=1000, seed=0):
    """One compiled model of ``kind`` (see ``MODELS``) and its batch size."""
    import keras

    from pose_lab.models import adversarial as MA
    from pose_lab.models.vae import build_mlp_encoder
    from pose_lab.training import adversarial as TA

    keras.utils.set_random_seed(seed)
    gen = MA.build_pose_generator(latent, (16, 3), hidden, 3)
    if kind == "wgan_gp_kcs":
        critic = MA.build_kcs_critic((16, 3), mean=stats.mean_3d, std=stats.std_3d, kcs_units=kcs_units)
    else:
        critic = MA.build_mlp_critic((16, 3), hidden, 3)
    if kind == "gan":
        m = TA.GAN(gen, critic, seed=seed)
        m.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))
        return m, 64
    if kind == "wgan":
        m = TA.WGAN(gen, critic, n_critic=5, clip_value=0.01, split_batch=True, seed=seed)
        m.compile(keras.optimizers.RMSprop(5e-5), keras.optimizers.RMSprop(5e-5))
        return m, 5 * 64
    if kind.startswith("wgan_gp"):
        m = TA.WGANGP(gen, critic, n_critic=5, gp_weight=10.0, split_batch=True, seed=seed)
        m.compile(*TA.wgan_gp_optimizers())
        return m, 5 * 64
    if kind == "vae_gan":
        enc = build_mlp_encoder((16, 3), latent, hidden, 3)
        m = TA.VAEGAN(enc, gen, critic, gamma=0.1, seed=seed)
        m.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))
        return m, 64
    raise ValueError(f"kind: expected one of {MODELS}, got {kind!r}")


def train(kind, ld, minutes, *, seed=0, kcs_units=1000):
    from pose_lab.training.callbacks import TimeLimit

    model, batch = build(kind, ld.stats, kcs_units=kcs_units, seed=seed)
    limit = TimeLimit(minutes)
    t0 = time.perf_counter()
    hist = model.fit(ld.y_train, batch_size=batch, epochs=1000, verbose=0, callbacks=[limit], shuffle=True)
    return model, hist.history, {"steps": limit.steps, "seconds": time.perf_counter() - t0}


def perturbed_real(poses, *, length_sigma=0.0, direction_sigma=0.0, seed=0):
    """Poses ``(N, 17, 3)`` rebuilt root-outwards from their own bones, with noise on lengths or directions.

    Each bone length is multiplied by ``exp(N(0, length_sigma))`` (independently per bone, so left and right
    differ), each unit bone direction gets ``N(0, direction_sigma)`` per coordinate and is renormalised; the
    root stays where it is. With both sigmas 0 the poses come back unchanged.
    """
    from pose_lab.skeletons import H36M17

    rng = np.random.default_rng(seed)
    parents = np.asarray(H36M17.parents)
    child = np.flatnonzero(parents >= 0)
    bones = poses[:, child] - poses[:, parents[child]]
    lengths = np.linalg.norm(bones, axis=-1)
    dirs = bones / lengths[..., None]
    lengths = lengths * np.exp(rng.normal(0.0, length_sigma, lengths.shape))
    dirs = dirs + rng.normal(0.0, direction_sigma, dirs.shape)
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    out = np.array(poses, dtype=np.float64)
    for b, j in enumerate(child):  # H36M-17 lists every parent before its children
        out[:, j] = out[:, parents[j]] + dirs[:, b] * lengths[:, b, None]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    p.add_argument("--sensitivity", action="store_true",
                   help="add rows of held-out real poses with small bone-length / bone-direction errors")
    p.add_argument("--minutes", type=float, default=3.0, help="training minutes per model")
    p.add_argument("--samples", type=int, default=4000, help="generated poses per model")
    p.add_argument("--kcs-units", type=int, default=1000, help="width of the KCS path (RepNet: 1000)")
    p.add_argument("--frames", type=int, default=340)
    p.add_argument("--sequences", type=int, default=2)
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import keras

    from pose_lab.evaluation.adversarial import realism_table, sample_poses

    ld = load_poses(args.frames, args.sequences, args.stride)
    train_mm = ld.stats.denormalize_3d(ld.y_train)                     # (N, 17, 3) mm, root at the origin
    rng = np.random.default_rng(args.seed)
    idx = rng.permutation(len(train_mm))
    n = args.samples
    reference, held_out = train_mm[idx[:n]], train_mm[idx[n:2 * n]]
    print(f"backend {keras.backend.backend()} | {len(ld.y_train):,} training poses | {args.minutes} min per model "
          f"| load average {runtime.load_average()}")
    samples, info = {}, {}
    for kind in args.models:
        model, hist, run = train(kind, ld, args.minutes, seed=args.seed, kcs_units=args.kcs_units)
        samples[LABELS[kind]] = sample_poses(model, n, ld.stats, seed=args.seed + 1)
        last = {k: round(float(v[-1]), 3) for k, v in hist.items()}
        info[LABELS[kind]] = run
        print(f"  {LABELS[kind]:24s} {run['steps']:6d} generator steps in {run['seconds']:.0f} s; last epoch {last}")
    if args.sensitivity:
        for sigma in (0.003, 0.01, 0.03):
            samples[f"real, bone lengths x exp(N(0, {sigma}))"] = perturbed_real(held_out, length_sigma=sigma,
                                                                              seed=args.seed)
        for sigma in (0.01, 0.03, 0.1):
            samples[f"real, bone directions + N(0, {sigma})"] = perturbed_real(held_out, direction_sigma=sigma,
                                                                            seed=args.seed)
    table = realism_table(samples, reference, real=held_out, seed=args.seed,
                          title="Realism of 3D pose samples (synthetic H36M train subjects)")
    print(table.to_markdown() if hasattr(table, "to_markdown") else table)
    print(f"load average after: {runtime.load_average()}")
    return table, info


if __name__ == "__main__":
    main()
