"""Policy registry: family name -> where its Policy class lives (its ``config_class`` holds the settings).

Adding a family is one new file with a config dataclass and a Policy subclass, plus one line here.
Families load on first use (``policy_class``), so a family may use the registry itself (a student
loading its teacher) without an import circle, and importing protege loads none of them.
"""

from __future__ import annotations

import importlib

from protege.policies.base import FeatureSpec, Policy, PolicyConfig

POLICIES: dict[str, str] = {
    "mlp": "protege.policies.mlp:MLPPolicy",
    "diffusion": "protege.policies.diffusion:DiffusionPolicy",
    "gaussian": "protege.policies.gmm:GaussianPolicy",
    "gmm": "protege.policies.gmm:GMMPolicy",
    "flow": "protege.policies.flow:FlowPolicy",
    "mip": "protege.policies.mip:MIPPolicy",
    "bet": "protege.policies.bet:BETPolicy",
    "knn": "protege.policies.knn:KNNPolicy",
    "mcnn": "protege.policies.mcnn:MCNNPolicy",
    "distilled": "protege.policies.distilled:DistilledPolicy",
}

#: Policies around a frozen trained one, written by `protege improve` (an RL actor beside the base's
#: weights) and never trained by BC: they load and evaluate like any family, but `protege train`
#: does not offer them.
IMPROVED: dict[str, str] = {
    "residual": "protege.policies.residual:ResidualPolicy",
    "dsrl": "protege.policies.dsrl:NoiseSpacePolicy",
}


def policy_class(name: str) -> type[Policy]:
    """The policy class registered under ``name``; an unknown name lists the known ones."""
    known = POLICIES | IMPROVED
    if name not in known:
        raise KeyError(f"unknown policy '{name}'; known policies: {', '.join(sorted(known))}")
    module, _, attribute = known[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_policy(config: PolicyConfig, spec: FeatureSpec) -> Policy:
    return policy_class(config.name)(config, spec)


__all__ = ["IMPROVED", "POLICIES", "FeatureSpec", "Policy", "PolicyConfig", "make_policy", "policy_class"]
