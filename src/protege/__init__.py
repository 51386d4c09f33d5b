"""protege: behavior cloning from demonstrations, evaluated honestly in closed loop."""

from protege.data.store import DatasetError, EpisodeStore
from protege.policies.storage import load_policy

__all__ = ["DatasetError", "EpisodeStore", "load_policy"]
__version__ = "0.1.0"
