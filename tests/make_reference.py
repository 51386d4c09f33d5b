"""Regenerate the reference outputs of every policy variant in tests/test_policies.py ``SMALL``.

    python tests/make_reference.py      # writes tests/reference/<variant>.safetensors

Each file holds a seeded policy's weights, a fixed input batch, fixed noise, and its loss and
prediction; tests/test_reference.py loads the weights into a fresh policy and checks it still
computes the same numbers, so a refactor that silently changes a family's math fails. Regenerate
only when a change of outputs is intended, and say so in the commit.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import test_policies as contract  # noqa: E402


def reference(variant: str) -> dict[str, torch.Tensor]:
    """Weights, inputs and outputs of one seeded variant on the contract's small dataset."""
    store = contract.store.__wrapped__()
    policy, sampler = contract.build(variant, store)
    policy.eval()
    batch = sampler.gather(torch.arange(5))
    torch.manual_seed(1)
    noise = policy.sample_noise(5, torch.Generator().manual_seed(7))
    with torch.no_grad():
        loss = policy.loss(batch)
    prediction = policy.predict({k: v for k, v in batch.items() if k.startswith("observation.")}, noise=noise)
    tensors = {f"weights.{k}": v.contiguous() for k, v in policy.state_dict().items()}
    tensors |= {f"batch.{k}": v.contiguous() for k, v in batch.items()}
    tensors |= {"loss": loss.contiguous(), "prediction": prediction.contiguous()}
    if noise is not None:
        tensors["noise"] = noise
    return tensors


def main() -> None:
    out = HERE / "reference"
    out.mkdir(exist_ok=True)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)  # a student's teacher is saved in the working folder
        for variant in contract.VARIANTS:
            save_file(reference(variant), out / f"{variant}.safetensors")
            print(variant)


if __name__ == "__main__":
    main()
