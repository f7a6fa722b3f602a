"""pose_lab: a Keras 3 course kit on human pose estimation.

Modules follow the data flow of the course (see ``README.md``, "Library layout")::

    data (sources, pipelines) -> models (builders) -> training (fit) -> evaluation (recipes)

    beneath them all: runtime, validation, skeletons, geometry, heatmaps,
    losses, metrics (pure array code) and viz

A method with its own notebook has the same file stem in ``models/``,
``training/`` and ``evaluation/`` (e.g. ``keypoints2d``, ``lifting``, ``vae``,
``crossmodal``); ``tests/test_layers.py`` checks that no import reaches back.

Importing :mod:`pose_lab` is cheap: TensorFlow is only imported by the
modules that build ``tf.data`` pipelines.
"""

__version__ = "0.1.0"
