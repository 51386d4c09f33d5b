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
import torch
from safetensors.torch import load_file, save_file

from protege.curation.curate import Curated, CurationConfig, normalize_weights
from protege.curation.weights import iw_sft_weights
from protege.data.store import EpisodeStore
from protege.data.windows import WindowSampler
from protege.policies import Policy

REFERENCE_FILE = "iw_reference.safetensors"


@torch.no_grad()
def per_sample_losses(policy: Policy, sampler: WindowSampler, batch_size: int, seed: int) -> torch.Tensor:
    """(N,) loss of every sample of ``sampler``, with noise drawn from ``seed`` (comparable across calls)."""
    with torch.random.fork_rng(devices=[policy.device] if policy.device.type == "cuda" else []):
        torch.manual_seed(seed)
        return torch.cat([policy.loss(sampler.gather(idx)) for idx in torch.arange(len(sampler)).split(batch_size)])


class ImportanceWeighting:
    """Switches the sampler from all data to the curated set at the end of the warm-up and keeps
    its weights up to date; the reference policy is saved in the run folder so --resume continues."""

    def __init__(self, cfg: CurationConfig, curated: Curated, store: EpisodeStore, sampler: WindowSampler,
                 total_steps: int, run_dir: Path, seed: int):
        self.cfg, self.curated, self.sampler, self.seed = cfg, curated, sampler, seed
        self.kept = curated.kept_rows(store)
        self.static = np.ones(store.num_frames, dtype=np.float32) if curated.weights is None else curated.weights
        self.episode_index = store.episode_index()
        self.warmup = max(1, int(cfg.iw_warmup * total_steps))
        self.path = run_dir / REFERENCE_FILE
        self.reference: Policy | None = None
        self.logp_ref = np.zeros(0)

    def before_step(self, step: int, start: int, policy: Policy, q: Policy) -> None:
        """Call before optimizer step ``step`` (``start``: the first step of this process)."""
        if step < self.warmup:
            return
        if self.reference is None:
            self.reference = copy.deepcopy(q).eval().requires_grad_(False)
            if step == self.warmup:
                tmp = self.path.with_name(f".{self.path.name}.tmp")
                save_file({k: v.contiguous() for k, v in self.reference.state_dict().items()}, tmp)
                tmp.replace(self.path)
            else:  # resumed past the warm-up: the reference is the one saved then
                self.reference.load_state_dict(load_file(self.path, device=str(q.device)))
            # frozen and scored with fixed noise: its log-likelihoods never change
            self.logp_ref = -per_sample_losses(self.reference, self.sampler, 1024, self.seed).cpu().numpy()
        if step == self.warmup or step == start or (step - self.warmup) % self.cfg.iw_every == 0:
            self.refresh(q)

    def refresh(self, q: Policy) -> None:
        was_training = q.training
        q.eval()
        logp_q = -per_sample_losses(q, self.sampler, 1024, self.seed).cpu().numpy()
        q.train(was_training)
        weights = iw_sft_weights(self.episode_index, logp_q, self.logp_ref, self.cfg.iw_temperature, self.cfg.iw_max_weight)
        self.sampler.restrict(self.kept, normalize_weights(weights * self.static, self.kept))
