"""Joint limits of the synthetic human expressed on joint *positions* (for realism metrics).

The motion engine limits joint *angles* (:data:`~pose_lab.data.synthetic.body.DOF_LIMITS`).
Of those, the hinge joints can be read back from 3D joint positions alone:
the knee and elbow flexion are the angle between the two bones that meet at
the joint (0 = straight). This module turns the engine's limits into the
position-based spec that :func:`pose_lab.metrics.realism.joint_limit_violations`
takes, so metrics never import the data layer.

Spec format: ``{name: {"joints": (a, b, c), "range": (lo, hi), "axis": (p, q) or None}}``
with angles in radians; the bend at ``b`` is the angle between ``b - a`` and
``c - b``; with ``axis`` the angle is signed by ``sign((b-a) x (c-b) . (q - p))``
(knees: the hip axis from the right to the left hip, so a knee bending
forwards, which the engine forbids, gives a negative angle). The elbow's
hinge axis turns with the shoulder rotation, so only its unsigned flexion is
checked.
"""

from __future__ import annotations

from pose_lab.skeletons import H36M17, get_skeleton

from .body import DOF_INDEX, DOF_LIMITS

__all__ = ["joint_limits"]


def joint_limits(skeleton="h36m17") -> dict:
    """The engine's hinge limits as a position-based spec (radians) for ``skeleton`` (H36M-17 only).

    Example:
        >>> lim = joint_limits()
        >>> sorted(lim), lim["left_knee"]["range"]          # doctest: +ELLIPSIS
        (['left_elbow', 'left_knee', 'right_elbow', 'right_knee'], (0.0, 2.61...))
    """
    skel = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
    if skel.name != H36M17.name:
        raise ValueError(f"skeleton: joint limits are defined for 'h36m17', got {skel.name!r}")
    j = skel.index
    hip_axis = (j("RHip"), j("LHip"))

    def rng(dof):
        lo, hi = DOF_LIMITS[DOF_INDEX[dof]]
        return (float(lo), float(hi))

    return {
        "right_knee": {"joints": (j("RHip"), j("RKnee"), j("RFoot")), "range": rng("r_knee"), "axis": hip_axis},
        "left_knee": {"joints": (j("LHip"), j("LKnee"), j("LFoot")), "range": rng("l_knee"), "axis": hip_axis},
        "right_elbow": {"joints": (j("RShoulder"), j("RElbow"), j("RWrist")), "range": rng("r_elbow"),
                        "axis": None},
        "left_elbow": {"joints": (j("LShoulder"), j("LElbow"), j("LWrist")), "range": rng("l_elbow"),
                       "axis": None},
    }
