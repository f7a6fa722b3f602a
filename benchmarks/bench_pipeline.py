"""Throughput of the person-crop ``tf.data`` pipeline (crops + heatmap targets).

Usage::

    python benchmarks/bench_pipeline.py            # full table
    python benchmarks/bench_pipeline.py --quick    # smaller (smoke)

Measures :func:`pose_lab.data.pipelines.person_crop_dataset` on

* in-memory rendered crops (``render_crops`` output, re-cropped by box to 128x96),
* the same without re-cropping (``crop=False``, 128x128),
* a synthetic COCO folder written by ``write_coco_dataset`` (JPEG decode +
  crop to 256x192 + 64x48 heatmaps, SimpleBaseline's setting),
* the same with the keypoint augmentation of :mod:`pose_lab.data.augment`
  when it is available,

and prints persons per second (wall time, after one warm-up batch) with all
cores (``tf.data.AUTOTUNE``) and with TensorFlow limited to one thread.

Then the endless stream of notebook 02
(:class:`pose_lab.data.synthetic.PersonCropStream`, 256x256 scenes of 1-4
people -> 128x96 crops + 32x24 heatmaps, augmented): its rate alone on one
thread, and the recipe network's training rate fed by a fixed in-memory batch
(the network alone) against fed by the stream with 1 and 2 worker threads, in
interleaved rounds (median), so the cost of rendering while training is visible.
``--stream-only`` skips the ``tf.data`` part.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def _rate(ds, n_batches):
    it = iter(ds)
    next(it)  # warm-up: tracing, first file reads
    t0 = time.perf_counter()
    count = 0
    for _ in range(n_batches):
        try:
            x, _y = next(it)[:2]
        except StopIteration:
            break
        count += int(x.shape[0])
    return count / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stream-only", action="store_true", help="only the PersonCropStream measurements")
    args = ap.parse_args(argv)
    if args.stream_only:
        return _stream_table(args.quick)

    import tensorflow as tf

    from pose_lab.data.coco import load_coco_keypoints
    from pose_lab.data.pipelines import person_crop_dataset
    from pose_lab.data.synthetic import render_crops, write_coco_dataset

    n_batches = 10 if args.quick else 40
    bs = 32
    n_mem = 512 if args.quick else 2048
    data = render_crops(n_mem, size=128, seed=0)
    tmp = tempfile.mkdtemp(prefix="pose_lab_bench_")
    ann = write_coco_dataset(tmp, 48 if args.quick else 200, split="train", seed=0,
                             image_size=(480, 640), num_people=(1, 3), image_format="jpg")
    recs = load_coco_keypoints(ann, os.path.join(tmp, "train"))
    try:
        from pose_lab.data.augment import keypoint_augmentation

        aug = keypoint_augmentation(value_range=(0, 255), seed=0)
    except Exception as e:  # noqa: BLE001 - augmentation module missing or incompatible
        aug = None
        print(f"(augmentation not measured: {type(e).__name__}: {e})")

    cases = [
        ("rendered crops -> 128x96 crop, 32x24 hm", lambda: person_crop_dataset(
            data, input_size=(128, 96), batch_size=bs, repeat=True, shuffle=True, seed=0)),
        ("rendered crops as is 128x128, 32x32 hm", lambda: person_crop_dataset(
            data, input_size=(128, 128), crop=False, batch_size=bs, repeat=True, shuffle=True, seed=0)),
        ("COCO jpg 640x480 -> 256x192, 64x48 hm", lambda: person_crop_dataset(
            recs, input_size=(256, 192), batch_size=bs, repeat=True, shuffle=True, seed=0)),
    ]
    if aug is not None:
        cases.append(("COCO jpg -> 256x192 + keypoint augment", lambda: person_crop_dataset(
            recs, input_size=(256, 192), batch_size=bs, repeat=True, shuffle=True, seed=0, augment=aug)))

    try:
        _table(tf, cases, n_batches, bs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _stream_table(args.quick)


def _stream_table(quick):
    import keras
    import numpy as np

    from pose_lab.data.synthetic import PersonCropStream
    from pose_lab.models.keypoints2d import build_heatmap_model
    from pose_lab.training.keypoints2d import STREAM_RECIPE, KeypointTrainer

    bs = STREAM_RECIPE["batch_size"]
    steps = 4 if quick else 20
    rounds = 1 if quick else 3
    alone = PersonCropStream(batch_size=bs, steps_per_epoch=1000, seed=0)
    alone[0]
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        alone[i]
    render_rate = steps * bs / (time.perf_counter() - t0)

    keras.utils.set_random_seed(0)
    model = KeypointTrainer(build_heatmap_model(**STREAM_RECIPE["model"]))
    model.compile(keras.optimizers.Adam(1e-4))
    x, y = alone[0]
    fixed = (np.repeat(x[None], steps, 0).reshape(-1, *x.shape[1:]),
             {k: np.repeat(v[None], steps, 0).reshape(-1, *v.shape[1:]) for k, v in y.items()})
    model.fit(fixed[0][:bs * 2], {k: v[:bs * 2] for k, v in fixed[1].items()}, batch_size=bs, verbose=0)

    def fixed_rate():
        t = time.perf_counter()
        model.fit(fixed[0], fixed[1], batch_size=bs, epochs=1, verbose=0, shuffle=False)
        return steps * bs / (time.perf_counter() - t)

    def stream_rate(workers):
        def run():
            data = PersonCropStream(batch_size=bs, steps_per_epoch=steps, seed=1, workers=workers)
            t = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            return steps * bs / (time.perf_counter() - t)
        return run

    cases = [("network alone (one fixed batch in memory)", fixed_rate),
             ("fed by PersonCropStream, 1 worker (no overlap)", stream_rate(1)),
             ("fed by PersonCropStream, 2 worker threads", stream_rate(2))]
    results = {name: [] for name, _ in cases}
    for _ in range(rounds):
        for name, fn in cases:
            results[name].append(fn())
    print()
    print(f"PersonCropStream alone, one thread: {render_rate:.0f} persons/s "
          f"(render 256x256 scenes + crop 128x96 + augment + heatmaps)")
    print(f"training the recipe network ({keras.backend.backend()}, batch {bs}, median of {rounds} interleaved rounds)")
    print("| training data | samples/s |")
    print("| --- | ---: |")
    for name, rates in results.items():
        print(f"| {name} | {np.median(rates):.0f} |")


def _table(tf, cases, n_batches, bs):
    rows = []
    for what, make in cases:
        rows.append((what, _rate(make(), n_batches)))
    # one thread: the dataset's private thread pool limited to 1
    one = []
    for what, make in cases[:3]:
        ds = make()
        opts = tf.data.Options()
        opts.threading.private_threadpool_size = 1
        opts.threading.max_intra_op_parallelism = 1
        one.append((what, _rate(ds.with_options(opts), max(n_batches // 2, 5))))
    print(f"person_crop_dataset throughput (batch {bs}, {os.cpu_count()} CPUs visible)")
    print(f"| {'source -> target':42s} | {'persons/s (all cores)':>21s} | {'persons/s (1 thread)':>20s} |")
    print(f"|{'-' * 44}|{'-' * 23}|{'-' * 22}|")
    single = dict(one)
    for what, r in rows:
        s = single.get(what)
        print(f"| {what:42s} | {r:21.0f} | {('%.0f' % s) if s else 'n/a':>20s} |")


if __name__ == "__main__":
    main()
