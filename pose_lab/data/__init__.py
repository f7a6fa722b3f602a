"""Data sources and pipelines: COCO, Human3.6M, CMU BVH, the synthetic engine.

Import submodules explicitly (``from pose_lab.data import coco``); only
:mod:`pose_lab.data.pipelines` and the augmentation layers use TensorFlow.
"""
