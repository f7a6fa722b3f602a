"""Training samples/s of the kit's 2D pose networks: Keras ``fit`` against a PyTorch replica, same run.

Usage::

    python benchmarks/bench_pose2d_torch.py            # 3 interleaved rounds of 30 steps
    python benchmarks/bench_pose2d_torch.py --rounds 7 --steps 40   # the README's table
    python benchmarks/bench_pose2d_torch.py --network checkpoint    # the shipped checkpoint's network
    python benchmarks/bench_pose2d_torch.py --quick

``--network recipe`` (default) is :data:`pose_lab.training.keypoints2d.STREAM_RECIPE`'s
network (notebook 02), ``--network checkpoint`` that of
``pose_lab.pretrained.MODELS["pose2d-synthetic"]``: the small ResNet (stem
3x3/2 + 3x3 + max-pool, four stages of basic blocks: one each at widths
16-32-64-128 in the recipe, 1-2-2-1 at 24-48-96-160 in the checkpoint) with the
SimpleBaseline head (three 4x4 stride-2 transposed convolutions of 64 filters
+ BN, lateral 1x1 conv + BN skips from strides 16/8/4, ReLU) and a 1x1
convolution to 17 heatmaps; 128x96 input, 32x24 heatmaps,
visibility-weighted heatmap MSE, Adam. Both sides train on the same fixed
batch held in memory (the network alone, no data pipeline), batch 64, with two
threads (this machine's cores). Under TensorFlow Keras is timed twice: with
``jit_compile="auto"`` (Keras's default: no XLA on a CPU-only machine) and with
``jit_compile=True`` (XLA); under ``KERAS_BACKEND=jax`` once (always XLA).
PyTorch is optional: without it the script says so and times Keras only.
Rounds are interleaved; the median, the range over the rounds and the ratio
to PyTorch (of the medians, and its range round by round) are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from pose_lab import runtime  # noqa: E402  (cheap: no TensorFlow; after the path insert)

TORCH_CASE = "PyTorch replica, eager loop, 2 threads"


def _torch_model(torch, widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), head=64, joints=17):  # pragma: no cover
    nn = torch.nn

    def cbr(cin, cout, k, s, relu=True):
        layers = [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout, momentum=0.1, eps=1e-5)]
        return nn.Sequential(*(layers + ([nn.ReLU(inplace=True)] if relu else [])))

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.a = cbr(cin, cout, 3, stride)
            self.b = cbr(cout, cout, 3, 1, relu=False)
            self.proj = cbr(cin, cout, 1, stride, relu=False) if (stride != 1 or cin != cout) else None

        def forward(self, x):
            s = x if self.proj is None else self.proj(x)
            return torch.relu(s + self.b(self.a(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(cbr(3, widths[0], 3, 2), cbr(widths[0], widths[0], 3, 1), nn.MaxPool2d(2))
            chans = (widths[0],) + tuple(widths)
            self.stages = nn.ModuleList(
                nn.Sequential(*(Block(chans[i] if b == 0 else chans[i + 1], chans[i + 1],
                                      (1 if i == 0 else 2) if b == 0 else 1) for b in range(blocks[i])))
                for i in range(4))
            self.up = nn.ModuleList()
            self.skip = nn.ModuleList()
            cin = widths[3]
            for i in range(3):
                self.up.append(nn.Sequential(nn.ConvTranspose2d(cin, head, 4, 2, 1, bias=False),
                                             nn.BatchNorm2d(head)))
                self.skip.append(nn.Sequential(nn.Conv2d(widths[2 - i], head, 1, bias=False), nn.BatchNorm2d(head)))
                cin = head
            self.out = nn.Conv2d(head, joints, 1)

        def forward(self, x):
            x = self.stem(x / 127.5 - 1.0)
            feats = []
            for st in self.stages:
                x = st(x)
                feats.append(x)
            for i in range(3):
                x = torch.relu(self.up[i](x) + self.skip[i](feats[2 - i]))
            return self.out(x)

    return Net()


def _torch_worker(steps, widths, blocks):  # pragma: no cover - optional reference
    import numpy as np
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    bs = 64
    rng = np.random.default_rng(0)
    tx = torch.from_numpy(rng.uniform(0, 255, (bs, 3, 128, 96)).astype("float32"))
    thm = torch.from_numpy(rng.uniform(0, 1, (bs, 17, 32, 24)).astype("float32"))
    tw = torch.ones(bs, 17, 1, 1)
    tnet = _torch_model(torch, widths, blocks)
    opt = torch.optim.Adam(tnet.parameters(), 1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * ((tw * (tnet(tx) - thm)) ** 2).mean()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    print(steps * bs / (time.perf_counter() - t), torch.__version__, sum(p.numel() for p in tnet.parameters()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is printed)")
    ap.add_argument("--network", choices=("recipe", "checkpoint"), default="recipe",
                    help="notebook 02's recipe network or the shipped checkpoint's")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--widths", type=int, nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--blocks", type=int, nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.torch_worker:  # pragma: no cover - optional reference, run in its own process
        return _torch_worker(args.steps, args.widths, args.blocks)

    import keras
    import numpy as np

    from pose_lab.models.keypoints2d import build_heatmap_model
    from pose_lab import pretrained
    from pose_lab.training.keypoints2d import STREAM_RECIPE, KeypointTrainer

    config = dict(STREAM_RECIPE["model"] if args.network == "recipe"
                  else pretrained.MODELS["pose2d-synthetic"]["config"])
    config.pop("name", None)
    bb = config["backbone_kwargs"]
    replica = ["--widths", *map(str, bb["widths"]), "--blocks", *map(str, bb.get("blocks", (1, 1, 1, 1)))]
    head = (config["head_filters"], config["head_layers"], config["skip_connections"])
    if config["backbone"] != "small" or head != (64, 3, True):
        raise SystemExit(f"the PyTorch replica is the small ResNet + a 3-layer skip head of 64 filters, not {config}")
    bs = STREAM_RECIPE["batch_size"]
    steps = args.steps or (5 if args.quick else 30)
    rounds = 1 if args.quick else args.rounds
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (bs, 128, 96, 3)).astype("float32")
    hm = rng.uniform(0, 1, (bs, 32, 24, 17)).astype("float32")
    w = np.ones((bs, 17), "float32")

    xs = np.repeat(x[None], steps, 0).reshape(-1, 128, 96, 3)
    ys = {"heatmaps": np.repeat(hm[None], steps, 0).reshape(-1, 32, 24, 17),
          "weights": np.repeat(w[None], steps, 0).reshape(-1, 17)}

    def keras_case(jit_compile):
        keras.utils.set_random_seed(0)
        net = build_heatmap_model(**config)
        model = KeypointTrainer(net)
        model.compile(keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
        model.fit(xs[: 2 * bs], {k: v[: 2 * bs] for k, v in ys.items()}, batch_size=bs, verbose=0)  # trace

        def rate():
            t = time.perf_counter()
            model.fit(xs, ys, batch_size=bs, epochs=1, verbose=0, shuffle=False)
            return steps * bs / (time.perf_counter() - t)
        return net, rate

    # Keras resolves jit_compile="auto" to no XLA for TensorFlow on a CPU-only machine; JAX always compiles with XLA
    modes = ["auto", True] if keras.backend.backend() == "tensorflow" else ["auto"]
    cases = []
    for mode in modes:
        net, fn = keras_case(mode)
        cases.append((f"Keras {keras.__version__} / {keras.backend.backend()}, fit, jit_compile={mode}", fn))
    # PyTorch runs in its own process: importing torch next to TensorFlow can crash (both ship their
    # own OpenMP / protobuf); each round starts the worker, which times `steps` steps after a warm-up.
    import importlib.util
    import subprocess

    if importlib.util.find_spec("torch") is None:
        print("PyTorch is not installed: timing Keras only (pip install torch for the replica)")
    else:  # pragma: no cover - optional reference
        def torch_rate():
            out = subprocess.run([sys.executable, __file__, "--torch-worker", "--steps", str(steps), *replica],
                                 check=True, capture_output=True, text=True).stdout.split()
            torch_rate.version, torch_rate.params = out[1], int(out[2])
            return float(out[0])

        cases.append((TORCH_CASE, torch_rate))
    results = {name: [] for name, _ in cases}
    for _ in range(rounds):
        for name, fn in cases:
            results[name].append(fn())
    torch_params = f", PyTorch {torch_rate.params:,}" if TORCH_CASE in results else ""
    print(f"parameters: Keras {net.count_params():,}{torch_params}")
    print(f"{args.network} network {bb}, batch {bs}, {steps} steps per round, median of {rounds} interleaved rounds, "
          f"load average {runtime.load_average()}")
    print("| framework | training samples/s, median | min - max |")
    print("| --- | ---: | ---: |")
    med = {name: float(np.median(r)) for name, r in results.items()}
    for name, r in med.items():
        print(f"| {name} | {r:.0f} | {min(results[name]):.0f} - {max(results[name]):.0f} |")
    if TORCH_CASE in med:
        for name, r in med.items():
            if name != TORCH_CASE:
                per_round = [a / b for a, b in zip(results[name], results[TORCH_CASE])]
                print(f"{name} / PyTorch: {r / med[TORCH_CASE]:.2f}x (ratio of the medians; per round "
                      f"{min(per_round):.2f} - {max(per_round):.2f}x)")
    return med


if __name__ == "__main__":
    main()
