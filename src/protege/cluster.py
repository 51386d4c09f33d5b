"""Fanning work out over a Ray cluster (``--ray``), or doing it here, one item after another.

``protege bench --ray`` runs each (task, arm, training seed) cell and each evaluation as a Ray
task; ``protege eval --ray`` runs shards of the seed list. The callers are written once against
:class:`Fanout`: ``submit`` a module-level function (its arguments may be handles of earlier
submissions, which Ray resolves before the function starts, so a student's training waits for its
teacher's), then ``gather`` the results in order. Without ``--ray`` a submission simply runs at
once, so a local run is the same code with no Ray installed.

Ray is used for what it does well (scheduling on a cluster's CPUs and GPUs, moving results back);
protege keeps the rest: every task runs in the driver's working directory and reads and writes the
run folders there (so it must be on a filesystem every node sees), and a cell that finished is
never submitted again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from protege.config import RayOptions
from protege.extras import require
from protege.progress import progress_bar


def _call(function: Callable, cwd: str, threads: int, *args: Any) -> Any:
    """Run ``function(*args)`` in a Ray worker in the driver's working directory (so relative paths,
    and the paths written into episodes.csv, read as in a local run) with ``threads`` torch threads."""
    import torch

    if not os.path.isdir(cwd):
        raise FileNotFoundError(f"--ray: this node has no folder '{cwd}' (run from a folder every node shares)")
    os.chdir(cwd)
    torch.set_num_threads(threads)
    return function(*args)


class Fanout:
    """Submits functions as Ray tasks (with ``options.ray``), else runs them at once."""

    def __init__(self, options: RayOptions | None = None):
        self.options = options or RayOptions()
        self._ray = None
        self._owned = False
        self._remote: Any = None

    @property
    def remote(self) -> bool:
        return bool(self.options.ray)

    def __enter__(self) -> Fanout:
        if not self.remote:
            return self
        if self.options.ray_cpus <= 0 or self.options.ray_gpus < 0:
            raise ValueError(
                f"--ray-cpus must be > 0 and --ray-gpus >= 0, got {self.options.ray_cpus}, {self.options.ray_gpus}"
            )
        ray = require("ray", "ray", "--ray")
        self._owned = not ray.is_initialized()  # a fan-out inside another one shares its connection
        if self._owned:
            ray.init(address=self.options.ray, include_dashboard=False, log_to_driver=False, configure_logging=False)
        self._ray = ray
        if self.options.ray_gpus and not ray.cluster_resources().get("GPU"):
            self.__exit__()
            raise ValueError(f"--ray-gpus {self.options.ray_gpus}: the Ray cluster at '{self.options.ray}' has no GPUs")
        self._remote = ray.remote(_call).options(num_cpus=self.options.ray_cpus, num_gpus=self.options.ray_gpus)
        return self

    def __exit__(self, *_: object) -> None:
        if self._ray is not None and self._owned:
            self._ray.shutdown()
        self._ray = None

    def slots(self) -> int:
        """How many submissions can run at once (1 here; on Ray, the cluster's CPUs or GPUs over a cell's)."""
        if self._ray is None:
            return 1
        resources = self._ray.cluster_resources()
        slots = resources.get("CPU", 1) // self.options.ray_cpus
        if self.options.ray_gpus:
            slots = min(slots, resources.get("GPU", 0) // self.options.ray_gpus)
        return max(1, int(slots))

    def submit(self, function: Callable, *args: Any) -> Any:
        """A handle of ``function(*args)``: its result here, a Ray object reference on Ray."""
        if self._ray is None:
            return function(*args)
        threads = max(1, int(self.options.ray_cpus))
        return self._remote.remote(function, os.getcwd(), threads, *args)

    def gather(self, handles: Sequence[Any], desc: str = "", progress: bool = True) -> list[Any]:
        """The results of ``handles`` in their order; on Ray, with a bar of finished tasks."""
        if self._ray is None:
            return list(handles)
        refs = [h for h in handles if isinstance(h, self._ray.ObjectRef)]
        pending = list(refs)
        with progress_bar(total=len(refs), desc=desc, unit="task", disable=not progress or not refs) as bar:
            while pending:
                done, pending = self._ray.wait(pending, num_returns=1)
                bar.update(len(done))
        values = dict(zip(map(id, refs), self._ray.get(refs)))
        return [values[id(h)] if isinstance(h, self._ray.ObjectRef) else h for h in handles]
