"""iw-SFT during training (Qin & Springenberg 2025): BC on all data first, then BC on the curated
set with importance weights q(tau) / p_ref(tau) that tighten SFT's bound on the RL objective.

``p_ref`` is the policy at the end of the warm-up (BC on everything the curated set was drawn
from); ``q`` tracks the policy being trained (its EMA). Every family's per-sample loss serves as
its negative log-likelihood up to an affine map (exact for gaussian/gmm, the denoising bound for
diffusion and flow, a fixed-variance Gaussian for mlp); the temperature absorbs the scale, and the
same noise draws for ``q`` and ``p_ref`` make the difference low-variance.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from protege.atomic import atomic_file
from protege.curation.weights import iw_sft_weights, normalize_weights
from protege.data.windows import WindowSampler
from protege.policies import Policy
from protege.policies.base import per_sample_losses
from protege.policies.storage import load_weights, write_tensors

REFERENCE_FILE = "iw_reference.safetensors"


class ImportanceWeighting:
    """Switches the sampler from all data to the curated set at the end of the warm-up and keeps
    its weights up to date; the reference policy is saved in the run folder so --resume continues.

    kept: (N,) bool rows of the curated set; static: (N,) weights of the other methods (None: 1);
    episode_index: (N,) episode of every row.
    """

    def __init__(
        self,
        kept: np.ndarray,
        static: np.ndarray | None,
        episode_index: np.ndarray,
        sampler: WindowSampler,
        warmup: int,
        every: int,
        temperature: float,
        max_weight: float,
        run_dir: Path,
        seed: int,
    ):
        self.kept, self.episode_index, self.sampler = kept, episode_index, sampler
        self.static = np.ones(len(kept), dtype=np.float32) if static is None else static
        self.warmup, self.every, self.temperature, self.max_weight = warmup, every, temperature, max_weight
        self.path, self.seed = run_dir / REFERENCE_FILE, seed
        self.reference: Policy | None = None
        self.logp_ref = np.zeros(0)

    def before_step(self, step: int, start: int, q: Policy) -> None:
        """Call before optimizer step ``step`` (``start``: the first step of this process)."""
        if step < self.warmup:
            return
        if self.reference is None:
            self.reference = copy.deepcopy(q).eval().requires_grad_(False)
            if step == self.warmup:
                with atomic_file(self.path) as tmp:
                    write_tensors(self.reference.state_dict(), tmp)
            else:  # resumed past the warm-up: the reference is the one saved then
                load_weights(self.reference, self.path)
            # frozen and scored with fixed noise: its log-likelihoods never change
            self.logp_ref = -per_sample_losses(self.reference, self.sampler, 1024, self.seed).cpu().numpy()
        if step == self.warmup or step == start or (step - self.warmup) % self.every == 0:
            self.refresh(q)

    def refresh(self, q: Policy) -> None:
        was_training = q.training
        q.eval()
        logp_q = -per_sample_losses(q, self.sampler, 1024, self.seed).cpu().numpy()
        q.train(was_training)
        weights = iw_sft_weights(self.episode_index, logp_q, self.logp_ref, self.temperature, self.max_weight)
        self.sampler.restrict(self.kept, normalize_weights(weights * self.static, self.kept))
