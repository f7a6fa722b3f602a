"""Throughput of the keypoint-aware augmentation in a tf.data pipeline.

Prints a table: crops per second for the geometric layer alone, the appearance
pipeline alone and the full chain, on synthetic 128x128 crops (batches of 64).

    python benchmarks/bench_augment.py [--size 128] [--batches 20]
"""

import argparse
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from pose_lab.data import augment

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (args.batch, args.size, args.size, 3)).astype("float32")
    kps = np.concatenate([rng.uniform(0, args.size - 1, (args.batch, 17, 2)),
                          np.full((args.batch, 17, 1), 2.0)], -1).astype("float32")
    chains = {
        "RandomAffineKeypoints": augment.RandomAffineKeypoints(max_rotation=0.5, scale_range=(0.75, 1.25),
                                                               max_translation=0.1, seed=0),
        "appearance_augmentation": augment.appearance_augmentation(value_range=(0, 1), seed=0),
        "keypoint_augmentation": augment.keypoint_augmentation(value_range=(0, 1), seed=0),
    }
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, tf {tf.__version__}; "
          f"{args.size}x{args.size} crops, batch {args.batch}")
    print(f"{'chain':<26} {'crops/s':>10}")
    for name, layer in chains.items():
        ds = (tf.data.Dataset.from_tensors({"images": images, "keypoints": kps}).repeat()
              .map(layer, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2))
        it = iter(ds)
        next(it)  # trace
        start = time.perf_counter()
        for _ in range(args.batches):
            next(it)
        rate = args.batches * args.batch / (time.perf_counter() - start)
        print(f"{name:<26} {rate:>10.0f}")


if __name__ == "__main__":
    main()
