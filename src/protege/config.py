"""Typed configs of every command; tyro turns each field and its docstring into a CLI flag.

A run saves its whole config beside its checkpoint (``RUN/config.json``); ``protege train
--config RUN/config.json`` reads it back as the defaults, so the same command reproduces the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Union

import torch
import tyro

from protege.curation.curate import CurationConfig
from protege.formats import FORMATS
from protege.policies import POLICIES, policy_class
from protege.policies.diffusion import DiffusionConfig
from protege.policies.storage import policy_config_from_json, policy_config_to_json

#: Union of every registered family's config: tyro offers them as ``policy:<name>`` subcommands.
PolicyChoice = Union[tuple(Annotated[policy_class(name).config_class, tyro.conf.subcommand(name)] for name in POLICIES)]  # type: ignore[valid-type]  # noqa: UP007

#: Dataset formats `protege import` reads, and those it can write (see protege.formats).
DatasetFormat = Literal[("auto", *FORMATS)]  # type: ignore[valid-type]
WritableFormat = Literal[tuple(name for name, fmt in FORMATS.items() if fmt.writable)]  # type: ignore[valid-type]

#: How the runner executes action chunks: ``protege.evaluate.actor.EXECUTIONS``, spelled out here so the
#: configs need not import the evaluator (tests/test_layout.py fails if the two drift apart).
Execution = Literal["receding", "ensemble", "adaptive"]

#: First seeds of the three disjoint seed ranges, so evaluation never starts from a demo's state.
COLLECT_SEED, TRAIN_EVAL_SEED, EVAL_SEED = 0, 200_000, 100_000


def resolve_device(device: str) -> torch.device:
    return torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device
    )


@dataclass
class CollectConfig:
    """Generate demonstrations with a task's scripted expert and write a LeRobotDataset v3 folder.

    With ``--mixture`` the episodes are split between operators of mixed quality (expert, noisy,
    random, sluggish, corrupted; see ``protege.demos.demonstrators``), for testing data curation.
    """

    task: tyro.conf.Positional[str] = "toy/fork"
    """Registered task name, e.g. toy/fork, metaworld/push, pusht, fetch/push, pointmaze/medium."""
    episodes: int = 200
    """Number of demonstration episodes."""
    out: Path | None = None
    """Dataset folder to write (default: data/<task>)."""
    seed: int = COLLECT_SEED
    """Seed of the first episode; episode i starts from seed + i."""
    num_envs: int = 100
    """Episodes simulated in parallel."""
    success_only: bool = False
    """Keep only the expert's successful episodes (default: keep failures too, flagged in the episode table)."""
    noise: float = 0.0
    """DART noise: execute expert action + Gaussian noise of this std (fraction of the action half-range); record the
    expert's action."""
    noise_burst: int = 0
    """DART noise only in bursts of this many steps, separated by clean stretches (the expert's recovery, which an
    action chunk can predict from the state it starts in); 0: noise at every step."""
    noise_gap: int = 40
    """With --noise-burst: each clean step starts a burst with probability 1 / this, so clean stretches last this
    minus one steps on average."""
    epsilon: float = 0.0
    """Probability of executing a uniform random action instead of the expert's at each step (the expert's is
    recorded)."""
    mixture: tuple[str, ...] = ()
    """Mixed-quality dataset: fraction of the episodes per operator, e.g. expert=0.3 noisy=0.4 random=0.2 corrupted=0.1
    (fractions > 0 summing to 1; operators: expert, noisy, random, sluggish, corrupted). Unlike --noise/--epsilon (not
    combinable with it), each episode records the action its operator executed; corrupted episodes are driven by the
    expert but log outlier actions. Empty: expert only."""
    noisy_scale: float = 0.3
    """noisy operator: std of the Gaussian noise added to the expert's action, as a fraction of the action
    half-range."""
    random_epsilon: float = 0.5
    """random operator: probability per step of a uniform random action instead of the expert's."""
    sluggish: float = 0.7
    """sluggish operator: smoothing s in [0, 1) of a_t = s * a_{t-1} + (1 - s) * expert_t (a slow, lagging operator)."""
    corrupt_scale: float = 5.0
    """corrupted operator: logged actions lie 2 to this many half-ranges from the action range's center."""
    pixels: bool = False
    """Also record camera images (observation.image): the simulator's camera, or the toy tasks' drawn scene."""
    image_size: int = 96
    """Image height and width in pixels with --pixels."""
    async_envs: bool = False
    """Step environments in subprocesses (one per env); pays for slow simulators on many cores."""
    overwrite: bool = False
    """Replace the dataset folder if it exists."""
    progress: bool = True
    """Show progress bars."""


@dataclass
class TrainConfig:
    """Train a policy on a dataset folder; writes checkpoints, metrics and its config to a run folder."""

    dataset: tyro.conf.Positional[Path]
    """Dataset: a folder written by `protege collect` / `protege import` (LeRobotDataset v3), or any format `protege
    import` reads."""
    add_data: tuple[Path, ...] = ()
    """More dataset folders whose episodes are added to DATASET's (the rounds of `protege improve --method dagger`)."""
    init: Path | None = None
    """Start from this run's (or checkpoint's) weights and normalizer instead of a fresh initialization (fine-tuning;
    the policy settings must be the run's). A family without trained weights (knn) is fitted to the data anew."""
    subset: str = ""
    """Train on this named episode subset of DATASET only (e.g. robomimic's train or better; `protege inspect` lists
    them); --add-data episodes are all kept."""
    policy: PolicyChoice = field(default_factory=DiffusionConfig)
    """Policy family and its settings."""
    out: Path | None = None
    """Run folder (default: runs/<dataset>-<policy>)."""
    steps: int = 5000
    """Optimizer steps."""
    batch_size: int = 256
    """Samples per optimizer step."""
    lr: float = 1e-3
    """Peak learning rate of AdamW."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 200
    """Linear warm-up steps before the cosine decay."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value (0 disables)."""
    ema_decay: float = 0.995
    """Decay of the EMA weights used for evaluation (0 disables EMA)."""
    val_fraction: float = 0.1
    """Fraction of episodes held out for validation loss."""
    seed: int = 0
    """Seed for initialization, batches and noise; a run is reproducible given it."""
    device: str = "auto"
    """cpu, cuda, or auto (cuda when available)."""
    log_every: int = 100
    """Write a metrics line every this many steps."""
    eval_every: int = 1000
    """Closed-loop evaluation every this many steps (0 disables)."""
    eval_episodes: int = 50
    """Episodes per closed-loop evaluation during training."""
    eval_task: str = ""
    """Task for closed-loop evaluation (default: the dataset's task, if registered)."""
    save_every: int = 1000
    """Checkpoint every this many steps (and at the end)."""
    keep_best: int = 0
    """Also keep this many checkpoints with the best training-time closed-loop success (ties: higher mean max
    progress, then the later step) besides the newest two; every evaluation step is then checkpointed.
    `protege eval --checkpoint best` evaluates the best one (0: keep only the newest)."""
    resume: bool = False
    """Continue the run in --out from its latest checkpoint."""
    on_nonfinite: Literal["stop", "skip"] = "stop"
    """At a NaN/inf loss or gradient: stop with an error, keeping the last finite checkpoint (stop), or skip that
    step's update and count it in metrics.jsonl as skipped_steps (skip)."""
    curation: CurationConfig = field(default_factory=CurationConfig)
    """Which demonstrations to learn from and how much: filters, weights, robust loss."""
    log: tuple[Literal["tensorboard", "wandb"], ...] = ()
    """Also send the metrics to TensorBoard (RUN/tensorboard; extra [tensorboard]) and/or wandb in offline mode
    (RUN/wandb; extra [wandb]). metrics.jsonl stays the source of truth."""
    progress: bool = True
    """Show progress bars (in a log that is not a terminal: one line every few seconds)."""
    nproc: int = 1
    """Train data-parallel on this many processes (DistributedDataParallel: gloo on the CPU, one GPU each on CUDA),
    started through torchrun; --batch-size stays the global batch. Same as `torchrun --nproc-per-node N -m protege
    train ...` (docs/scale.md). Read by the `protege` command, which starts the processes; `train()` called from
    Python runs in the processes torchrun started for it."""

    def run_dir(self) -> Path:
        return self.out or Path("runs") / f"{self.dataset.name}-{self.policy.name}"

    def to_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "policy"}
        data["policy"] = policy_config_to_json(self.policy)
        return data

    @staticmethod
    def from_json(data: dict) -> TrainConfig:
        data = dict(data)
        if "episodes" in data:  # run configs written before --episodes NAME became --subset NAME
            data["subset"] = data.pop("episodes")
        policy = policy_config_from_json(data.pop("policy"))
        data.pop("torch_threads", None)  # recorded by the run for its reader; --threads sets it
        curation = data.pop("curation", {})
        curation["methods"] = tuple(curation.get("methods", ()))
        data["log"] = tuple(data.get("log", ()))  # a JSON list; absent from run configs written before --log
        for key in ("dataset", "out", "init"):
            if data.get(key) is not None:
                data[key] = Path(data[key])
        data["add_data"] = tuple(Path(p) for p in data.get("add_data", ()))
        return TrainConfig(policy=policy, curation=CurationConfig(**curation), **data)


@dataclass(kw_only=True)
class RayOptions:
    """Where a command fans out: the settings ``protege bench`` and ``protege eval`` share."""

    ray: str = ""
    """Run on Ray (extra [ray]): `local` starts Ray on this machine, `auto` joins the cluster this machine is part of,
    HOST:PORT joins that cluster's head; `--ray` alone means `local`. Empty: no Ray (docs/scale.md)."""
    ray_cpus: float = 1.0
    """CPUs Ray reserves for each training cell or evaluation shard (torch gets as many threads)."""
    ray_gpus: float = 0.0
    """GPUs Ray reserves for each training cell or evaluation shard (fractions share a GPU)."""


@dataclass
class EvalConfig(RayOptions):
    """Evaluate checkpoints in closed loop on one fixed seed list; with two, a paired test."""

    checkpoints: tyro.conf.Positional[tuple[Path, ...]]
    """Run folders or checkpoint folders to evaluate."""
    task: str = ""
    """Task to evaluate on (default: the task the first checkpoint was trained for)."""
    episodes: int = 100
    """Episodes per checkpoint; the seed list is seed + 0 .. seed + episodes - 1."""
    seed: int = EVAL_SEED
    """First evaluation seed (disjoint from collection seeds by default)."""
    num_envs: int = 100
    """Episodes simulated in parallel (one batched policy call per replan)."""
    execution: Execution = "receding"
    """How action chunks are executed: receding (n_action_steps of each chunk, then predict again), ensemble (predict
    every step, execute the exp-weighted mean of all chunks' actions for the step, as ACT), adaptive (predict every
    check_every steps; an env replaces its queued chunk where the new one disagrees by >= replan_threshold, or when
    its queue runs out)."""
    n_action_steps: int = 0
    """Actions executed per predicted chunk with receding execution (0: each policy's own setting)."""
    ensemble_decay: float = 0.01
    """ensemble: weight exp(-decay * i) of the i-th oldest chunk's action (0: plain mean; < 0 favours newer chunks)."""
    replan_threshold: float = 0.1
    """adaptive: replan where the mean per-step L2 distance between the new chunk and the queued actions, in normalized
    action units ([-1, 1] per dimension), is at least this (inf: whole chunks)."""
    check_every: int = 1
    """adaptive: predict a chunk to compare with the queue every this many steps."""
    async_envs: bool = False
    """Step environments in subprocesses (one per env); pays for slow simulators on many cores."""
    ema: bool = True
    """Use EMA weights when the checkpoint has them."""
    checkpoint: Literal["final", "best"] = "final"
    """Which checkpoint of a run folder: final (the newest), or best (highest training-time closed-loop success,
    kept with `protege train --keep-best K`). Reports name the rule: picking the best of k flatters a little."""
    labels: tuple[str, ...] = ()
    """Names of the checkpoints in the report, one each (default: the policy family, then family:folder)."""
    out: Path | None = None
    """Folder for episodes.csv and summary.json (default: <first checkpoint>/eval)."""
    videos: int = 0
    """Record rollout videos of up to this many successes and this many failures per policy (OUT/videos/). The chosen
    seeds are replayed with rendering after the evaluation, so an evaluation without videos is not slowed."""
    device: str = "auto"
    """cpu, cuda, or auto."""
    progress: bool = True
    """Show progress bars."""
    ray_workers: int = 0
    """With --ray: shards of the seed list, each of whole waves of --num-envs episodes, so every episode runs in the
    same batch as in a local evaluation (0: as many as the cluster holds at --ray-cpus / --ray-gpus each)."""


@dataclass
class InspectConfig:
    """Print what a dataset holds: episodes, frames, features, per-source success, return, smoothness
    and divergence, and state coverage (see ``protege.curation.metrics``)."""

    dataset: tyro.conf.Positional[Path]
    """Dataset: a protege/LeRobot folder or any format `protege import` reads (image features are not decoded)."""
    format: DatasetFormat = "auto"
    """Format of the dataset (auto: judged by its layout)."""
    json: Path | None = None
    """Also save the full report as JSON here: everything printed plus the per-episode metrics (source, success, return,
    length, smoothness, divergence)."""


@dataclass
class ImportConfig:
    """Convert demonstrations from another tool's format into a protege dataset (LeRobotDataset v3)."""

    source: tyro.conf.Positional[Path]
    """robomimic .hdf5, Minari dataset folder (or id under MINARI_DATASETS_PATH), diffusion_policy .zarr / .zarr.zip, or
    LeRobot v3 / v2.1 folder."""
    dest: tyro.conf.Positional[Path]
    """Dataset folder to write."""
    format: DatasetFormat = "auto"
    """Format of the source (auto: judged by its layout)."""
    obs_keys: tuple[str, ...] = ()
    """Convert only these observation keys (default: all)."""
    keys: tuple[str, ...] = ()
    """Map observation keys on the way: DEST=SOURCE (rename), DEST=SOURCE[start:stop] (a slice of the last axis, to
    split a vector), DEST=A+B (join). A source named is dropped unless it is also a destination; others pass through.
    E.g. --keys observation.state=observation.state[0:2] observation.environment_state=observation.state[2:5]."""
    images: bool = True
    """Convert image/video observations (--no-images: state only, nothing decoded)."""
    video: bool = True
    """Store images as MP4 video (LeRobot's layout: small, lossy, ~1/255 mean error); --no-video stores one PNG per
    frame (LeRobot's 'image' features: bit-exact, larger)."""
    overwrite: bool = False
    """Replace the destination if it exists."""
    progress: bool = True
    """Show a progress bar over episodes."""


@dataclass
class ExportConfig:
    """Write a dataset in another tool's format (robomimic HDF5, Minari, LeRobot v3)."""

    source: tyro.conf.Positional[Path]
    """Dataset to export (a protege/LeRobot folder or any format `protege import` reads)."""
    dest: tyro.conf.Positional[Path]
    """File or folder to write (robomimic: a .hdf5 file; minari, lerobot: a folder)."""
    format: WritableFormat = "robomimic"
    """Format to write."""
    obs_keys: tuple[str, ...] = ()
    """Export only these observation keys (default: all)."""
    keys: tuple[str, ...] = ()
    """Map observation keys on the way: DEST=SOURCE (rename), DEST=SOURCE[start:stop] (a slice of the last axis, to
    split a vector), DEST=A+B (join). A source named is dropped unless it is also a destination; others pass through.
    E.g. --keys observation.state=observation.state[0:2] observation.environment_state=observation.state[2:5]."""
    images: bool = True
    """Export image/video observations too."""
    video: bool = True
    """lerobot: store images as MP4 video; --no-video stores bit-exact PNG frames (LeRobot 'image' features)."""
    overwrite: bool = False
    """Replace the destination if it exists."""
    progress: bool = True
    """Show a progress bar over episodes."""


#: Tasks of ``bench --suite policies`` when none are given: toy tasks, PushT and three Meta-World tasks.
POLICY_SUITE_TASKS = ("toy/fork", "toy/reach", "pusht", "metaworld/reach", "metaworld/push", "metaworld/pick-place")
CURATION_SUITE_TASKS = ("toy/fork", "metaworld/push", "fetch/pick-place")
CURATION_SUITE_MIXTURE = ("expert=0.3", "noisy=0.4", "random=0.2", "corrupted=0.1")
CURATION_SUITE_ARMS = ("uniform", "success-only", "top-k", "quality", "awr", "iw-sft", "median-of-means")


@dataclass
class BenchConfig(RayOptions):
    """Benchmarks. ``default``: collect demos, train each policy, evaluate all on the same seeds.
    ``policies``: the family comparison matrix, tasks x families x training seeds. ``curation``:
    one family trained with each curation on a mixed-quality dataset, paired against uniform BC.
    The matrices take hours on a CPU at the default budget: set --steps, --episodes, --tasks to fit."""

    suite: Literal["default", "policies", "curation", "improve"] = "default"
    """Which benchmark to run."""
    task: str = "toy/fork"
    """Registered task to benchmark on (default suite)."""
    tasks: tuple[str, ...] = ()
    """Tasks of a matrix suite (policies default: toy/fork toy/reach pusht metaworld/reach metaworld/push
    metaworld/pick-place; curation default: toy/fork metaworld/push fetch/pick-place)."""
    policies: tuple[str, ...] = ()
    """Policy families to train and compare with their default configs (default: mlp diffusion; policies suite: every
    registered family; curation suite: mlp)."""
    baseline: str = ""
    """Policies suite: a family every other one is paired against (difference over training seeds with its t-interval,
    McNemar on the pooled episodes), e.g. ``--baseline mlp``."""
    curations: tuple[str, ...] = CURATION_SUITE_ARMS
    """Curation suite: the curations compared, each 'uniform' or methods joined by '+' (e.g.
    success-only+median-of-means)."""
    mixture: tuple[str, ...] = CURATION_SUITE_MIXTURE
    """Curation suite: operator mixture of the collected datasets (see `protege collect --mixture`)."""
    methods: tuple[str, ...] = ()
    """Improve suite: the improvement methods compared (default: every one: dagger intervene bc residual noise sac)."""
    env_steps: int = 3000
    """Improve suite: environment steps each improvement run may take."""
    episodes: int = 500
    """Demonstration episodes collected with the scripted expert (per task)."""
    steps: int = 8000
    """Optimizer steps per policy (the same budget for every family)."""
    batch_size: int = 256
    """Samples per optimizer step."""
    eval_episodes: int = 100
    """Evaluation episodes per policy (and training seed), on one shared seed list."""
    seed: int = 0
    """Training seed (default suite)."""
    num_seeds: int = 3
    """How many training seeds (0 .. num_seeds - 1) per arm and task (matrix suites)."""
    out: Path | None = None
    """Run folder (default: runs/bench-<date>-<time>); an existing policies-suite folder is resumed."""
    videos: int = 2
    """Rollout videos of up to this many successes and failures per policy and task, shown in the report (0: none)."""
    train_evals: int = 4
    """Closed-loop evaluations during each training run (50 episodes on the training-time seeds), for the report's
    learning curves of success and validation loss (0: none)."""
    device: str = "auto"
    """cpu, cuda, or auto."""
    progress: bool = True
    """Show progress bars."""

    def families(self) -> tuple[str, ...]:
        """The families to compare: the given ones, else this suite's default."""
        if self.policies:
            return self.policies
        return {"policies": tuple(POLICIES), "curation": ("mlp",)}.get(self.suite, ("mlp", "diffusion"))


ImproveMethod = Literal["dagger", "intervene", "bc", "residual", "noise", "sac"]


@dataclass
class ImproveConfig:
    """Improve a trained run with interaction: expert labels (dagger, intervene), RL on the frozen policy (residual,
    noise), or a baseline at the same budget (bc: continued BC on fresh expert demonstrations; sac: SAC from
    scratch)."""

    run: tyro.conf.Positional[Path]
    """Trained run (or checkpoint) folder to improve."""
    method: ImproveMethod = "dagger"
    """dagger, intervene, bc, residual, noise (DSRL; diffusion, flow, mip or distilled bases) or sac."""
    task: str = ""
    """Task to interact with (default: the run's)."""
    env_steps: int = 20000
    """Budget of environment steps (every step any episode takes, the base's own chunk steps included)."""
    labels: int = 0
    """dagger, intervene, bc: also stop once this many expert labels are spent (0: only the env-step budget)."""
    out: Path | None = None
    """Run folder of the improved policy (default: RUN/improve-METHOD)."""
    seed: int = 0
    """Seed of the method (its training episodes, SAC's networks); final evaluation seeds never overlap."""
    eval_every: int = 5000
    """RL methods: a learning-curve point every this many env steps (the DAgger family: one per round)."""
    eval_episodes: int = 50
    """Episodes per learning-curve point (training-time seeds, disjoint from `protege eval`'s)."""
    num_envs: int = 16
    """Episodes run side by side."""
    dataset: Path | None = None
    """dagger, intervene, bc: the base run's dataset, where it is not at the path the run recorded."""
    episodes_per_round: int = 20
    """dagger, intervene, bc: episodes collected per round."""
    round_steps: int = 1000
    """dagger, intervene, bc: fine-tuning steps per round (on everything gathered so far)."""
    beta: float = 0.0
    """dagger: in round k the expert's action is executed with probability beta^k (0: the policy always drives)."""
    threshold: float = 0.3
    """intervene: the expert takes over when the policy's action differs from its own by more than this (RMS, in
    half-widths of the action box)..."""
    patience: int = 2
    """intervene: ...for this many steps in a row."""
    takeover: int = 20
    """intervene: steps the expert keeps control once it took over."""
    intervention_weight: int = 3
    """intervene: times each intervention segment is repeated in the training data (weighted up)."""
    reward: Literal["sparse", "dense"] = "sparse"
    """RL methods: 1 on the success step (sparse) or the task's own reward (dense)."""
    scale: float = 0.2
    """residual: largest correction, as a fraction of the action box's half-width."""
    noise_bound: float = 1.5
    """noise: largest absolute initial-noise value the actor may choose."""
    hidden: tuple[int, ...] = (128, 128)
    """RL methods: hidden widths of SAC's actor and critics (SB3's default 256 x 256 costs ~30 ms per gradient step
    on one CPU core at batch 256; 128 x 128 at batch 128 about 5 ms)."""
    lr: float = 3e-4
    """RL methods: SAC's learning rate."""
    batch_size: int = 128
    """RL methods: SAC's minibatch size."""
    gamma: float = 0.99
    """RL methods: discount per RL step (one env step; one chunk for noise)."""
    ent_coef: str = "auto_0.01"
    """RL methods: SAC's entropy temperature: a number, or auto (tuned to a target entropy) with its start value
    (auto_0.01). Sparse rewards are small beside SB3's usual start of 1, which would drown them in entropy."""
    utd: float = 1.0
    """RL methods: gradient steps per collected transition."""
    learning_starts: int = 200
    """RL methods: transitions (RL steps: one chunk each for noise) collected with exploration actions before SAC acts
    and learns. At 1000, noise-space RL on a 3000-step budget with 4-step chunks never started learning."""
    device: str = "auto"
    """cpu, cuda, or auto (cuda when available)."""
    resume: bool = False
    """Continue the run in --out from its last curve point."""
    progress: bool = True
    """Show progress bars."""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class ReportConfig:
    """Write an offline HTML report (no network needed to open it) of a run, an evaluation or a benchmark folder."""

    path: tyro.conf.Positional[Path]
    """A run folder (`protege train`), an eval folder (`protege eval`) or a bench folder (`protege bench`)."""
    baseline: str = ""
    """Policy every other one is paired against in the report (default: a matrix's own baseline, else the first)."""
    out: Path | None = None
    """Report folder to write (default: PATH/report); open its index.html."""


@dataclass
class ViewConfig:
    """Write an offline HTML page of a dataset: per-episode frames or video, state and action curves, source,
    success and quality, filterable by source and success."""

    dataset: tyro.conf.Positional[Path]
    """Dataset: a protege/LeRobot folder or any format `protege import` reads."""
    format: DatasetFormat = "auto"
    """Format of the dataset (auto: judged by its layout)."""
    out: Path | None = None
    """Folder to write (default: view-<dataset name>); open its index.html."""
    episodes: int = 50
    """Episodes shown with their frames and curves (the first ones; every episode is listed in the table)."""


__all__ = [
    "BenchConfig",
    "CollectConfig",
    "EvalConfig",
    "ExportConfig",
    "ImportConfig",
    "InspectConfig",
    "ReportConfig",
    "TrainConfig",
    "ViewConfig",
]
