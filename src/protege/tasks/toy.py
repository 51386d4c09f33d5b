"""Toy 2-D point tasks in pure numpy: no simulator, thousands of vectorized steps per millisecond.

A point moves in the square [-1, 1]^2 with velocity actions in [-1, 1]^2 (scaled by ``speed``).
The observation ``observation.state`` is ``[x, y, goal_x, goal_y]``. An episode succeeds when the
point comes within ``goal_tolerance`` of the goal, fails when it enters an obstacle disc, and is
truncated at ``max_steps``. Reward is 1 on the success step, else 0, so return equals success.

``toy/fork`` puts a disc between start and goal; its expert passes on the left or the right at
random (two modes). A regressor that averages the two modes heads straight into the disc.

For rollout videos ``PointSceneEnv`` draws the square from above (y up): obstacle discs in grey,
the goal's tolerance disc in green, the point's trail in light blue and the point in blue. Pixel
mode (``make_task("toy/reach", pixels=True)``) adds the same scene without the trail as
``observation.image`` (and the point's position as ``observation.proprio``), drawn for the whole
batch at once in numpy (``PointPainter``), so image pipelines are tested without a simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from PIL import Image, ImageDraw

from protege.data.store import IMAGE, PROPRIO, STATE
from protege.tasks.base import Actor, Task, TaskSpec


@dataclass(frozen=True)
class PointLayout:
    """Geometry of a point task: where starts and goals are drawn, obstacles, speed, limits."""

    start_low: tuple[float, float]
    start_high: tuple[float, float]
    goal_low: tuple[float, float]
    goal_high: tuple[float, float]
    obstacles: tuple[tuple[float, float, float], ...] = ()  # (center_x, center_y, radius)
    speed: float = 0.05
    goal_tolerance: float = 0.05
    max_steps: int = 80


def _episode_rng(seed: int, stream: int) -> np.random.Generator:
    """Independent per-episode streams (env layout vs expert choices) derived from one seed."""
    return np.random.default_rng([int(seed), stream])


class PointVectorEnv(VectorEnv):
    """``num_envs`` point-mass episodes stepped together; finished episodes stay frozen."""

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}

    def __init__(self, num_envs: int, layout: PointLayout, image_size: int = 0):
        self.num_envs = num_envs
        self.layout = layout
        spaces = {STATE: gym.spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)}
        self.painter = PointPainter(layout, image_size) if image_size else None
        if self.painter is not None:
            spaces[IMAGE] = gym.spaces.Box(0, 255, shape=(image_size, image_size, 3), dtype=np.uint8)
            spaces[PROPRIO] = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.single_observation_space = gym.spaces.Dict(spaces)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._obstacles = np.asarray(layout.obstacles, dtype=np.float64).reshape(-1, 3)
        self._rng = np.random.default_rng()
        self.pos = np.zeros((num_envs, 2))
        self.goal = np.zeros((num_envs, 2))
        self.done = np.ones(num_envs, dtype=bool)
        self.steps = np.zeros(num_envs, dtype=np.int64)

    def _observe(self) -> dict[str, np.ndarray]:
        obs = {STATE: np.concatenate([self.pos, self.goal], axis=1).astype(np.float32)}
        if self.painter is not None:
            obs[IMAGE] = self.painter.draw(self.pos, self.goal)
            obs[PROPRIO] = obs[STATE][:, :2]
        return obs

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if seed is None:
            seeds = self._rng.integers(0, 2**31, self.num_envs)
        elif isinstance(seed, (int, np.integer)):
            seeds = int(seed) + np.arange(self.num_envs)
        else:
            seeds = np.asarray(seed, dtype=np.int64)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} environments")
        lay = self.layout
        draws = np.stack([_episode_rng(s, 0).random(4) for s in seeds])  # (B, 4) in [0, 1)
        lo = np.array(lay.start_low + lay.goal_low)
        hi = np.array(lay.start_high + lay.goal_high)
        points = lo + draws * (hi - lo)
        self.pos, self.goal = points[:, :2], points[:, 2:]
        self.done = np.zeros(self.num_envs, dtype=bool)
        self.steps = np.zeros(self.num_envs, dtype=np.int64)
        return self._observe(), {"success": np.zeros(self.num_envs, dtype=bool)}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.num_envs, 2):
            raise ValueError(f"actions must have shape ({self.num_envs}, 2), got {actions.shape}")
        live = ~self.done
        move = np.clip(np.nan_to_num(actions), -1.0, 1.0) * self.layout.speed
        self.pos = np.where(live[:, None], np.clip(self.pos + move, -1.0, 1.0), self.pos)
        self.steps += live
        to_obstacle = np.linalg.norm(self.pos[:, None, :] - self._obstacles[None, :, :2], axis=-1)
        collided = live & (to_obstacle < self._obstacles[None, :, 2]).any(axis=1)
        success = live & ~collided & (np.linalg.norm(self.pos - self.goal, axis=1) < self.layout.goal_tolerance)
        terminated = collided | success
        truncated = live & ~terminated & (self.steps >= self.layout.max_steps)
        self.done |= terminated | truncated
        info = {"success": success, "collision": collided}
        return self._observe(), success.astype(np.float32), terminated, truncated, info


#: Scene colours (RGB) of ``PointSceneEnv``: distinct enough that a test can find the point by colour.
BACKGROUND, OBSTACLE, GOAL = (250, 250, 245), (130, 130, 130), (60, 170, 80)
TRAIL, POINT = (150, 185, 240), (20, 60, 220)
SCENE_SIZE = 128  # px, square
POINT_RADIUS = 3.0  # px


#: Radii (world units) of the point and, at least, of the goal in ``PointPainter``'s pictures.
PAINT_POINT_RADIUS, PAINT_GOAL_RADIUS = 0.06, 0.06


class PointPainter:
    """Draws a batch of point scenes, (B, size, size, 3) uint8, y up, in a few array operations.

    Discs have anti-aliased edges (each pixel's coverage is its distance to the rim, clipped to
    [0, 1]), so the picture moves with sub-pixel motions of the point and a small image still
    tells where it is. Obstacles are drawn once, into the background.
    """

    def __init__(self, layout: PointLayout, size: int):
        self.size = size
        self.scale = (size - 1) / 2  # px per unit length: [-1, 1]^2 fills the picture
        self.pixels = np.arange(size, dtype=np.float32)  # pixel centres along either axis
        background = np.broadcast_to(np.array(BACKGROUND, dtype=np.float32), (size, size, 3))
        for x, y, radius in layout.obstacles:
            background = self._blend(background, self._coverage(np.array([[x, y]]), radius)[0], OBSTACLE)
        self.background = background
        self.goal_radius = max(layout.goal_tolerance, PAINT_GOAL_RADIUS)

    def _coverage(self, centers: np.ndarray, radius: float) -> np.ndarray:
        """(B, S, S) fraction of each pixel inside the disc of ``radius`` around each of ``centers`` (B, 2)."""
        col = ((centers[:, 0] + 1) * self.scale).astype(np.float32)[:, None]  # (B, 1) in px; rows grow downwards
        row = ((1 - centers[:, 1]) * self.scale).astype(np.float32)[:, None]
        dx2, dy2 = (self.pixels - col) ** 2, (self.pixels - row) ** 2  # (B, S) each: separable distances
        distance = np.sqrt(dy2[:, :, None] + dx2[:, None, :])  # (B, S, S) px
        return np.clip(np.float32(radius * self.scale + 0.5) - distance, 0.0, 1.0)

    @staticmethod
    def _blend(picture: np.ndarray, alpha: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
        alpha = alpha[..., None]
        return picture * (1 - alpha) + np.array(color, dtype=np.float32) * alpha

    def draw(self, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Pictures of points at ``pos`` (B, 2) with goals at ``goal`` (B, 2)."""
        picture = self._blend(self.background[None], self._coverage(goal, self.goal_radius), GOAL)
        picture = self._blend(picture, self._coverage(pos, PAINT_POINT_RADIUS), POINT)
        return np.rint(picture).astype(np.uint8)


class PointSceneEnv(PointVectorEnv):
    """A ``PointVectorEnv`` that draws its scene: ``render()`` gives (B, size, size, 3) uint8 pictures.

    Each member keeps a canvas with the static scene and the trail drawn so far; a render extends
    the trail to the point's current position and draws the point on a copy, so a video costs one
    line and one disc per frame. The runner renders after every step, so the trail is the path.
    """

    def __init__(self, num_envs: int, layout: PointLayout, size: int = SCENE_SIZE, image_size: int = 0):
        super().__init__(num_envs, layout, image_size)
        self.size = size
        self._background = Image.new("RGB", (size, size), BACKGROUND)
        draw = ImageDraw.Draw(self._background)
        for x, y, radius in self._obstacles:
            self._disc(draw, np.array([x, y]), radius * self._scale, OBSTACLE)
        self._canvases: list[Image.Image] = []
        self._drawn = np.zeros((num_envs, 2))  # where each trail ends on its canvas

    @property
    def _scale(self) -> float:
        """Pixels per unit length: the square [-1, 1]^2 fills the picture."""
        return (self.size - 1) / 2

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """World (..., 2) -> picture (column, row) coordinates; y points up in the world, down in images."""
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([(xy[..., 0] + 1) * self._scale, (1 - xy[..., 1]) * self._scale], axis=-1)

    def _disc(self, draw: ImageDraw.ImageDraw, center: np.ndarray, radius: float, color: tuple[int, int, int]) -> None:
        col, row = self.to_pixels(center)
        draw.ellipse([col - radius, row - radius, col + radius, row + radius], fill=color)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        out = super().reset(seed=seed, options=options)
        self._canvases = [self._background.copy() for _ in range(self.num_envs)]
        for canvas, goal in zip(self._canvases, self.goal):
            radius = max(self.layout.goal_tolerance * self._scale, POINT_RADIUS + 1)
            self._disc(ImageDraw.Draw(canvas), goal, radius, GOAL)
        self._drawn = self.pos.copy()
        return out

    def render(self) -> np.ndarray:
        """(B, size, size, 3) uint8 pictures of the current scenes (call after ``reset``)."""
        frames = np.empty((self.num_envs, self.size, self.size, 3), dtype=np.uint8)
        for i, canvas in enumerate(self._canvases):
            if not np.array_equal(self._drawn[i], self.pos[i]):
                ImageDraw.Draw(canvas).line([*self.to_pixels(self._drawn[i]), *self.to_pixels(self.pos[i])], TRAIL, 2)
                self._drawn[i] = self.pos[i]
            frame = canvas.copy()
            self._disc(ImageDraw.Draw(frame), self.pos[i], POINT_RADIUS, POINT)
            frames[i] = np.asarray(frame)
        return frames


class WaypointExpert:
    """Batched scripted expert: visit a per-episode route of waypoints in order, then the goal.

    ``routes`` lists the alternative routes (each a tuple of points with increasing y); each
    episode picks one at random from its seed (stream 1, independent of the layout draw). A point
    counts as passed once the agent's y reaches it, so the expert lands exactly on each waypoint.
    Actions have norm <= 1 and slow down on the last step to a target.
    """

    def __init__(self, layout: PointLayout, routes: tuple[tuple[tuple[float, float], ...], ...] = ()):
        self.layout = layout
        self.routes = (
            np.asarray(routes, dtype=np.float64).reshape(len(routes), -1, 2) if routes else np.zeros((0, 1, 2))
        )  # (R, P, 2)
        self.route = np.zeros((0, self.routes.shape[1], 2))

    def reset(self, seeds: np.ndarray) -> None:
        if len(self.routes):
            picks = np.array([_episode_rng(s, 1).integers(len(self.routes)) for s in seeds])
            self.route = self.routes[picks]  # (B, P, 2)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = np.asarray(obs[STATE], dtype=np.float64)
        pos, target = state[:, :2], state[:, 2:4].copy()
        if len(self.routes):
            ahead = pos[:, None, 1] < self.route[:, :, 1] - 1e-6  # (B, P) waypoints not reached yet
            has_next = ahead.any(axis=1)
            next_point = self.route[np.arange(len(pos)), ahead.argmax(axis=1)]
            target[has_next] = next_point[has_next]
        delta = (target - pos) / self.layout.speed
        norm = np.maximum(np.linalg.norm(delta, axis=1, keepdims=True), 1.0)
        return (delta / norm).astype(np.float32)


class PointTask(Task):
    """A point task defined by its layout and the expert's alternative waypoints."""

    layout: PointLayout
    routes: tuple[tuple[tuple[float, float], ...], ...] = ()

    def __init__(self, pixels: bool = False, image_size: int = 96) -> None:
        if pixels and image_size < 8:
            raise ValueError(f"image_size must be >= 8 px, got {image_size}")
        self.image_size = image_size if pixels else 0
        shapes = {STATE: (4,), **({IMAGE: (image_size, image_size, 3), PROPRIO: (2,)} if pixels else {})}
        self.spec = TaskSpec(
            obs_shapes=shapes, action_dim=2, max_steps=self.layout.max_steps, fps=10, proprio=(0, 1) if pixels else ()
        )

    def make_env(self, num_envs: int, asynchronous: bool = False) -> PointVectorEnv:
        """Pure numpy and vectorized already: ``asynchronous`` would only add overhead."""
        return PointVectorEnv(num_envs, self.layout, self.image_size)

    def make_render_env(self, num_envs: int) -> PointSceneEnv:
        return PointSceneEnv(num_envs, self.layout, image_size=self.image_size)

    def make_expert(self) -> Actor:
        return WaypointExpert(self.layout, self.routes)


class ForkTask(PointTask):
    """Reach a fixed goal behind a disc; the expert passes left or right at random (bimodal).

    Every demonstration first lands exactly on the fork point (0, -0.62) and only then turns, so
    no state before the fork tells the two modes apart: a regressor can do no better there than
    the mean of the two actions, which points at the disc.
    """

    name = "toy/fork"
    layout = PointLayout(
        start_low=(-0.2, -0.9),
        start_high=(0.2, -0.8),
        goal_low=(0.0, 0.8),
        goal_high=(0.0, 0.8),
        obstacles=((0.0, 0.0, 0.35),),
        speed=0.05,
        goal_tolerance=0.05,
        max_steps=80,
    )
    routes = (((0.0, -0.62), (-0.62, 0.0)), ((0.0, -0.62), (0.62, 0.0)))


class ReachTask(PointTask):
    """Reach a random goal from a random start in free space (unimodal sanity check)."""

    name = "toy/reach"
    layout = PointLayout(
        start_low=(-0.8, -0.8),
        start_high=(0.8, 0.8),
        goal_low=(-0.8, -0.8),
        goal_high=(0.8, 0.8),
        speed=0.1,
        goal_tolerance=0.05,
        max_steps=50,
    )
