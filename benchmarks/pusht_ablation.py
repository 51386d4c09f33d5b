"""Why does diffusion fail on PushT? Ablations of its policy settings on one fixed dataset, every
variant trained with the same budget and seed and evaluated together on one seed list (paired);
prints JSON. A first pass for issue 13's ablation, not its answer.

    python benchmarks/pusht_ablation.py [--seeds 1] [--steps 2000] [--eval-episodes 50] [--out DIR]

Arms: diffusion at its defaults and with one setting changed each, next to mlp, flow and bet at
their defaults. Per arm: success and mean max coverage (PushT's score) with 95% intervals, pooled
over the seeds' evaluation episodes, from ``protege.bench.matrix``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from protege.bench.machine import machine
from protege.bench.matrix import Arm, Matrix, run_matrix

VARIANTS: dict[str, tuple[tuple[str, object], ...]] = {
    "diffusion": (),
    "diffusion-sample": (("prediction", "sample"),),
    "diffusion-unet": (("denoiser", "unet"),),
    "diffusion-trailing": (("timestep_spacing", "trailing"),),
    "diffusion-noclip": (("clip_sample", False),),
    "diffusion-h8": (("horizon", 8), ("n_action_steps", 4)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per arm")
    parser.add_argument("--episodes", type=int, default=200, help="expert demonstrations")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("runs/pusht-ablation"))
    args = parser.parse_args()
    arms = {name: Arm("diffusion", settings=settings) for name, settings in VARIANTS.items()}
    arms |= {name: Arm(name) for name in ("mlp", "flow", "bet")}
    matrix = Matrix(
        tasks=("pusht",),
        arms=arms,
        num_seeds=args.seeds,
        episodes=args.episodes,
        steps=args.steps,
        batch_size=256,
        eval_episodes=args.eval_episodes,
        out=args.out,
        progress=False,
    )
    results = run_matrix(matrix)
    print(json.dumps({"budget": results["budget"], "arms": results["tasks"]["pusht"], "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
