"""Improvement after cloning: one command turns a trained run into a better policy with interaction.

Each method reads top to bottom in its own module and shares its plumbing by import: the run
folder, curve and resume (``run``), the expert-labelling rounds (``rounds``) and the SAC loop over
protege's batched rollouts (``sac``). A new method is one module with ``improve(run) -> Policy``
and one line here.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from protege.config import ImproveConfig

METHODS: dict[str, str] = {
    "dagger": "protege.improve.dagger",  # expert relabels the policy's states, aggregate, fine-tune
    "intervene": "protege.improve.intervene",  # expert takes over where the policy strays (Sirius)
    "bc": "protege.improve.bc",  # continued BC on fresh expert demonstrations (baseline)
    "residual": "protege.improve.residual",  # SAC learns a bounded per-step correction of the frozen base
    "noise": "protege.improve.noise",  # SAC learns the frozen generative policy's initial noise (DSRL)
    "sac": "protege.improve.scratch",  # SAC from scratch at the same budget (baseline)
}


def improve(cfg: ImproveConfig) -> Path:
    """Run ``cfg.method`` on ``cfg.run``; the new run folder (a loadable, evaluable policy)."""
    from protege.improve.run import ImproveRun

    if cfg.method not in METHODS:
        raise ValueError(f"unknown method '{cfg.method}'; choose one of: {', '.join(METHODS)}")
    run = ImproveRun(cfg)
    importlib.import_module(METHODS[cfg.method]).improve(run)
    return run.out


__all__ = ["METHODS", "improve"]
