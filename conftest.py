"""Test-session set-up shared by the unit tests and the notebooks (nbval).

Notebooks executed by ``pytest`` always run in smoke mode: the kernels nbval
starts inherit this process's environment. Set ``POSE_LAB_SMOKE=0`` yourself
to execute them in full mode instead.
"""

import os

os.environ.setdefault("POSE_LAB_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
