"""Rendering throughput of the synthetic mannequin renderer on ONE core.

Usage::

    python benchmarks/bench_render.py            # full table
    python benchmarks/bench_render.py --quick    # fewer crops (smoke)

The process pins itself to one CPU core (``os.sched_setaffinity`` where the OS
has it) and limits BLAS/OpenMP to one thread *before* NumPy is imported, then
renders batches of crops with :func:`pose_lab.data.synthetic.render_crops`
(poses from the motion engine included) and multi-person scenes with
:func:`render_scenes`. It prints crops per second of wall time and of process
CPU time (the latter is robust to other load on the machine), best of
``--repeats`` runs. Target (issue 10, with the face, hand and foot details):
>= 1,500 crops/s at 128x128 on one core (CPU time).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def _pin_one_core():
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        return f"pinned to CPU {cpus[-1]} of {len(cpus)}"
    return "not pinned (no sched_setaffinity on this OS)"


def _measure(fn, n, repeats):
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return n / best_wall, n / best_cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer crops, one repeat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    pin = _pin_one_core()

    import numpy as np

    from pose_lab.data.synthetic import render_crops, render_scenes
    from pose_lab.data.synthetic.scenes import _sample_poses

    repeats = 1 if args.quick else args.repeats
    n_crops = 256 if args.quick else 2048
    rows = []
    render_crops(64, size=64, seed=0)  # warm-up (imports, caches)
    for size in (64, 128, 256):
        n = n_crops if size <= 128 else n_crops // 4
        wall, cpu = _measure(lambda: render_crops(n, size=size, seed=1), n, repeats)
        rows.append((f"render_crops {size}x{size}", n, wall, cpu))
    # poses given (no motion engine cost): rendering alone
    poses = render_crops(1, size=32, seed=0)  # noqa: F841 (warm)
    pool = _sample_poses(512, np.random.default_rng(0))[0]
    n = n_crops
    wall, cpu = _measure(lambda: render_crops(n, size=128, seed=1, poses=pool), n, repeats)
    rows.append(("render_crops 128x128, poses given", n, wall, cpu))
    n = 64 if args.quick else 256
    wall, cpu = _measure(lambda: render_scenes(n, image_size=(256, 256), num_people=(1, 4), seed=1),
                         n, repeats)
    rows.append(("render_scenes 256x256, 1-4 people", n, wall, cpu))

    print(f"Renderer throughput, one core ({pin}), best of {repeats}")
    print(f"| {'what':38s} | {'n':>5s} | {'items/s (wall)':>14s} | {'items/s (CPU)':>13s} |")
    print(f"|{'-' * 40}|{'-' * 7}|{'-' * 16}|{'-' * 15}|")
    for what, n, wall, cpu in rows:
        print(f"| {what:38s} | {n:5d} | {wall:14.0f} | {cpu:13.0f} |")
    target = [r for r in rows if r[0] == "render_crops 128x128"][0]
    ok = target[3] >= 1500
    print(f"\ntarget >= 1500 crops/s at 128x128 on one core: {'met' if ok else 'NOT met'} "
          f"({target[3]:.0f} crops/s CPU time, {target[2]:.0f} wall)")


if __name__ == "__main__":
    main()
