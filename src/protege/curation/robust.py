"""Robust reduction of per-sample losses: median-of-means over blocks of the batch.

A corrupted demonstration step can carry an arbitrarily large loss; in the mean it drags the
gradient wherever it likes. Splitting the (randomly ordered) batch into blocks and taking the
median of the block means bounds that influence: a minority of blocks can hold any losses and the
result stays within the range of the clean blocks' means.
"""

from __future__ import annotations

import torch


def median_of_means(losses: torch.Tensor, blocks: int) -> torch.Tensor:
    """Median over ``blocks`` near-equal contiguous blocks of the mean loss in each (B,) -> scalar.

    With an even number of blocks the two middle block means are averaged.
    """
    if blocks < 1:
        raise ValueError(f"median-of-means needs >= 1 block, got {blocks}")
    if blocks > len(losses):
        raise ValueError(
            f"median-of-means: {blocks} blocks for a batch of {len(losses)}; use a smaller --curation.mom-blocks"
        )
    sizes = torch.full((blocks,), len(losses) // blocks, device=losses.device)
    sizes[: len(losses) % blocks] += 1  # torch.tensor_split's near-equal blocks, first ones larger
    block_of = torch.repeat_interleave(torch.arange(blocks, device=losses.device), sizes)
    means = losses.new_zeros(blocks).index_add(0, block_of, losses) / sizes  # one kernel, not one per block
    ordered = means.sort().values
    return 0.5 * (ordered[(blocks - 1) // 2] + ordered[blocks // 2])
