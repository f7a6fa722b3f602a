"""Throughput of the synthetic motion engine (NumPy, one process).

Prints a table: frames/s of every action generator (the 15 Human3.6M actions
and the extras), random poses/s,
COCO keypoints + self-occlusion frames/s, and the time to write a synthetic
Human3.6M (``generate_h36m``) in the VideoPose3D layout.

Usage::

    python benchmarks/bench_synthetic_motion.py            # full
    POSE_LAB_SMOKE=1 python benchmarks/bench_synthetic_motion.py   # quick
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

# run from a clone without installing: the repository root goes on the path
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from pose_lab.data.synthetic import (  # noqa: E402
    ACTIONS,
    ALL_ACTIONS,
    coco_visibility,
    generate_h36m,
    generate_sequence,
    h36m_rig,
    random_poses,
)


def _smoke() -> bool:
    flag = os.environ.get("POSE_LAB_SMOKE")
    if flag:
        return flag.strip().lower() in {"1", "true", "yes", "on"}
    return bool(os.environ.get("CI"))


def _rate(fn, n):
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    return n / dt, dt


def main() -> None:
    smoke = _smoke()
    T = 250 if smoke else 1000
    rows = []
    for a in ALL_ACTIONS:       # the 15 Human3.6M actions, then the extras
        r, _ = _rate(lambda: generate_sequence(a, "S1", T, seed=0), T)
        rows.append((f"generate_sequence {a}", f"{r:,.0f} frames/s"))
    n = 500 if smoke else 5000
    r, _ = _rate(lambda: random_poses(n, seed=0, subject="S9"), n)
    rows.append(("random_poses", f"{r:,.0f} poses/s"))
    seq = generate_sequence("Boxing", "S5", T, seed=1)
    cam = h36m_rig("S5")[0]
    r, _ = _rate(lambda: (seq.coco_keypoints(), coco_visibility(seq.joints32, seq.head_rotation, cam, seq.body)), T)
    rows.append(("COCO keypoints + self-occlusion", f"{r:,.0f} frames/s"))
    subjects = ("S1", "S9") if smoke else ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
    frames = 100 if smoke else 500
    with tempfile.TemporaryDirectory() as d:
        _, dt = _rate(lambda: generate_h36m(d, subjects=subjects, actions=ACTIONS, frames_per_sequence=frames), 1)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)) / 2**20
    total = len(subjects) * len(ACTIONS) * 2 * frames
    rows.append((f"generate_h36m {len(subjects)} subj x {len(ACTIONS)} actions x 2 x {frames} fr",
                 f"{dt:.1f} s ({total / dt:,.0f} frames/s, {size:.1f} MiB)"))
    w = max(len(k) for k, _ in rows)
    print(f"{'synthetic motion engine':<{w}}  throughput ({'smoke' if smoke else 'full'} mode)")
    print("-" * (w + 30))
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
