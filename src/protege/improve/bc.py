"""Continued BC: the baseline every interactive method must beat at the same budget.

The same rounds as DAgger, but the new episodes are fresh demonstrations of the scripted expert on
new seeds (the expert drives and labels), so the aggregate only grows along the expert's own
states. Every step costs one expert label, like DAgger's.
"""

from __future__ import annotations

import numpy as np

from protege.improve.rounds import Collected, improve_by_rounds, record_round
from protege.improve.run import ImproveRun
from protege.policies import Policy


def improve(run: ImproveRun) -> Policy:
    def collect(policy: Policy, seeds: np.ndarray, k: int) -> Collected:
        out = record_round(run, run.task.make_expert(), seeds, "expert", k)
        return Collected(out.store, out.store.num_frames, int(out.lengths.sum()))

    return improve_by_rounds(run, collect)
