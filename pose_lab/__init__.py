"""pose_lab: a Keras 3 course kit on human pose estimation.

Modules follow the data flow of the course (see ``README.md``)::

    data (sources, pipelines, augmentation) -> models (builders)
        -> training (custom train steps) -> metrics / viz

Importing :mod:`pose_lab` is cheap: TensorFlow is only imported by the
modules that build ``tf.data`` pipelines.
"""

__version__ = "0.1.0"
