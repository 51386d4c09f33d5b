"""Policy registry: family name -> policy class (its ``config_class`` holds the settings).

Adding a family is one new file with a config dataclass and a Policy subclass, plus one line here.
"""

from __future__ import annotations

from protege.policies.base import FeatureSpec, Policy, PolicyConfig
from protege.policies.bet import BETPolicy
from protege.policies.diffusion import DiffusionConfig, DiffusionPolicy
from protege.policies.distilled import DistilledPolicy
from protege.policies.flow import FlowPolicy
from protege.policies.gmm import GaussianPolicy, GMMPolicy
from protege.policies.knn import KNNPolicy
from protege.policies.mcnn import MCNNPolicy
from protege.policies.mip import MIPPolicy
from protege.policies.mlp import MLPConfig, MLPPolicy

POLICIES: dict[str, type[Policy]] = {
    "mlp": MLPPolicy,
    "diffusion": DiffusionPolicy,
    "gaussian": GaussianPolicy,
    "gmm": GMMPolicy,
    "flow": FlowPolicy,
    "mip": MIPPolicy,
    "bet": BETPolicy,
    "knn": KNNPolicy,
    "mcnn": MCNNPolicy,
    "distilled": DistilledPolicy,
}


def policy_class(name: str) -> type[Policy]:
    """The policy class registered under ``name``; an unknown name lists the known ones."""
    if name not in POLICIES:
        raise KeyError(f"unknown policy '{name}'; known policies: {', '.join(sorted(POLICIES))}")
    return POLICIES[name]


def make_policy(config: PolicyConfig, spec: FeatureSpec) -> Policy:
    return policy_class(config.name)(config, spec)


__all__ = ["POLICIES", "DiffusionConfig", "FeatureSpec", "MLPConfig", "Policy", "PolicyConfig", "make_policy", "policy_class"]
