"""SAC from scratch: the same SAC, budget and reward as residual RL, with no base policy at all.

The actor outputs the whole action (a ``residual`` policy without a base: the box's middle plus
the full half-width), from the same normalized observations the base saw. What residual and
noise-space RL gain over it is what the cloned policy contributes.
"""

from __future__ import annotations

from protege.improve.residual import ResidualProblem, residual_policy
from protege.improve.run import ImproveRun
from protege.improve.sac import train_sac
from protege.policies import Policy


def improve(run: ImproveRun) -> Policy:
    return train_sac(run, ResidualProblem(run, residual_policy(run, None, 1.0)))
