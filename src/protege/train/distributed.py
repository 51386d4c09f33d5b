"""Data-parallel training under ``torchrun``: PyTorch's DistributedDataParallel, nothing home-made.

The trainer asks a :class:`Ranks` for everything that differs between one process and N:

- **The batch.** ``--batch-size`` is the global batch. Every rank draws the same window indices
  from the run's one sampling stream (a few hundred integers per step) and gathers only its own
  contiguous share of them, so the N shares together are exactly the batch one process would
  draw: with the same seed the data order, and for a family whose loss draws no noise (mlp) the
  loss curve, match a single-process run up to float summation order.
- **The noise.** A family's own randomness (diffusion noise and timesteps, crops) comes from
  torch's global generator, seeded per rank (rank 0 keeps the single-process stream), so ranks do
  not draw the same noise for different samples. Every rank's generator state is saved with each
  checkpoint, so ``--resume`` continues every stream; a rank the checkpoint has no state for (a
  run resumed on more processes) is seeded from (seed, rank, step).
- **Gradients** are averaged by DDP during ``backward``; the logged loss is the mean over ranks.
- **Bookkeeping** (EMA, checkpoints, metrics, validation and closed-loop evaluation, the progress
  bar) happens on rank 0 only; the other ranks wait for it at their next gradient all-reduce.

Backends: gloo on the CPU, nccl on CUDA (one GPU per rank, ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from protege.policies import Policy

#: How long a rank waits at a collective (rank 0 may be evaluating or checkpointing meanwhile).
TIMEOUT = timedelta(hours=2)

#: Curation methods that cannot run data-parallel: each reduces or reweights using the whole batch
#: or the EMA policy, which exist on one rank only.
SINGLE_PROCESS_CURATIONS = ("median-of-means", "iw-sft")


def world_size() -> int:
    """The number of training processes ``torchrun`` started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``protege ARGV`` on ``nproc`` local processes through torchrun (``protege train --nproc N``);
    its exit code. Each process gets an equal share of the cores unless OMP_NUM_THREADS is set."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return subprocess.call([*command, "-m", "protege", *_without_nproc(argv)], env=env)


def _without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less ``--nproc N``: torchrun's parser takes it for an abbreviation of its own
    --nproc-per-node, and the processes it starts learn their number from torchrun."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


class _Loss(torch.nn.Module):
    """Calls ``policy.loss`` through ``forward``, the call DDP hooks its gradient reduction into."""

    def __init__(self, policy: Policy):
        super().__init__()
        self.policy = policy

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.policy.loss(batch)


@dataclass
class Ranks:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def start(cls, device: torch.device) -> Ranks:
        """Join the process group ``torchrun`` set up (gloo on the CPU, nccl on CUDA); 1 rank otherwise."""
        world = world_size()
        if world == 1:
            return cls()
        ranks = cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
        if device.type == "cuda":
            torch.cuda.set_device(ranks.device(device))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
        return ranks

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per rank on a node: ``cuda:LOCAL_RANK``; the CPU is shared."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.world > 1 else device

    def check(self, batch_size: int, curation_methods: tuple[str, ...]) -> None:
        """Refuse what data-parallel training cannot do exactly, before any data is read."""
        if self.world == 1:
            return
        if batch_size % self.world:
            raise ValueError(
                f"--batch-size {batch_size} is the global batch and must split evenly over {self.world} processes"
            )
        refused = [m for m in curation_methods if m in SINGLE_PROCESS_CURATIONS]
        if refused:
            raise ValueError(f"--curation.methods {' '.join(refused)} runs in one process only (no torchrun/--nproc)")

    def share(self, batch_size: int) -> slice:
        """This rank's rows of the global batch."""
        size = batch_size // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def seed_noise(self, seed: int, step: int = 0) -> None:
        """Give ranks other than 0 their own stream for the families' noise (rank 0 keeps the
        single-process one)."""
        if self.rank:
            torch.manual_seed(int(np.random.SeedSequence([seed, self.rank, step]).generate_state(1)[0]))

    def loss_module(self, policy: Policy) -> torch.nn.Module:
        """What the trainer calls for the per-sample losses: DDP around the policy with N ranks."""
        if self.world == 1:
            return _Loss(policy)
        ids = [self.local_rank] if policy.device.type == "cuda" else None
        # buffers (normalizer stats, fitted bins) are fitted identically on every rank and copied from
        # rank 0 once, here, with the weights; every family's loss uses all of its trainable parameters
        return torch.nn.parallel.DistributedDataParallel(_Loss(policy), device_ids=ids, forward_sync_buffers=False)

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over ranks (the logged loss), as a float."""
        if self.world == 1:
            return float(value)
        total = value.detach().clone().reshape(1).float()
        dist.all_reduce(total)
        return float(total) / self.world

    def gather_rng(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rank 0's RNG state plus every other rank's torch (and CUDA) generator, for the checkpoint.
        Collective: every rank calls it at the same step."""
        if self.world == 1:
            return state
        own = {k: v for k, v in state.items() if k in ("torch", "cuda")}
        gathered: list[dict[str, torch.Tensor] | None] = [None] * self.world
        dist.all_gather_object(gathered, own)
        merged = dict(state)
        for rank, states in enumerate(gathered[1:], start=1):
            merged |= {f"{key}.rank{rank}": value for key, value in (states or {}).items()}
        return merged

    def own_rng(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The shared sampling stream and this rank's torch/CUDA states out of a checkpoint's merged
        ones (no "torch" key: the checkpoint holds no stream for this rank)."""
        if self.rank == 0:
            return state
        suffix = f".rank{self.rank}"
        own = {key: state[key + suffix] for key in ("torch", "cuda") if key + suffix in state}
        return {**own, "sampler": state["sampler"]}

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
