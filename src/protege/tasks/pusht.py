"""PushT (gym-pusht): push a T-shaped block onto a fixed goal pose with a disc agent.

The agent is a kinematic disc (radius 15) that follows the action, an absolute target (x, y) in
[0, 512], through a PD controller; the block is a T of mass 1 on a frictionless table whose
velocity is damped to zero every physics step, so it moves only while pushed (quasi-static) and
the disc pushes along the contact normal only. Success is more than 95% of the goal T covered,
about 2.5 px of combined position and angle error (0.01 rad costs as much as 0.6 px).

``observation.state`` is ``[agent_x, agent_y, block_x, block_y, cos(angle), sin(angle)]``: the
block's position is its body origin, the middle of the bar's top edge. Pixel frames are the
simulator's own 96 px rendering without the action marker, y pointing down like the state; pixel
mode's ``observation.proprio`` is the disc's position (LeRobot's ``pusht_image``: image + agent_pos).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from protege.data.store import STATE
from protege.extras import require
from protege.tasks.base import Actor
from protege.tasks.sim import SimEnv, SimTask

GOAL_POSE = np.array([256.0, 256.0, np.pi / 4])  # body origin (x, y) and angle of the goal T
BOXES = np.array([[-60.0, 0.0, 60.0, 30.0], [-15.0, 30.0, 15.0, 120.0]])  # bar, stem: (x0, y0, x1, y1), block frame
COG = np.array([0.0, 45.0])  # centre of mass in the block frame
INERTIA = 3000.0  # moment of inertia about the centre of mass (mass 1), as gym-pusht sets it
AGENT_RADIUS = 15.0
ARENA = (0.0, 512.0)
ANGLE_SCALE = 61.0  # px per rad of equal coverage loss: weighs angle against position error

STANDOFF = 4.0  # gap between disc and face before a push
CLEARANCE = AGENT_RADIUS + 2.0  # least distance from the disc's centre to the T while in transit
RING_RADIUS = 100.0  # transit ring around the centre of mass: clear of the T (reach 77) plus the disc
RING_POINTS = 16
LEAD = 60.0  # farthest transit target from the agent: ~25 px/step and no overshoot when it stops
MAX_PUSH = 30.0  # deepest push target past the contact in one step
WALK_SPEED, PUSH_SPEED, SETTLE_STEPS = 20.0, 8.0, 3.0  # px/step walking and pushing, steps to line up a push
KEEP_BONUS = 0.3  # extra value of the contact already in use: finish a push before walking away
TURN_PENALTY = 40.0  # px of path added to walking the way around an episode does not prefer
FACE_PREFERENCE = 0.4  # per-episode value of each face varies by up to this fraction
ANGLE_PRIORITY = 0.7  # per-episode weight of angle against position error varies by up to e^0.7 = 2x


def _contacts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pushing points on the faces of the T a disc can touch head-on: points, outward normals, face ids.

    Inner faces (under the bar, beside the stem) keep the disc one radius away from the corner
    where they meet, so it touches only the face it pushes.
    """
    faces = [
        ([(x, 0.0) for x in np.linspace(-54.0, 54.0, 7)], (0.0, -1.0)),  # top of the bar
        ([(-60.0, y) for y in (8.0, 15.0, 22.0)], (-1.0, 0.0)),  # left end
        ([(60.0, y) for y in (8.0, 15.0, 22.0)], (1.0, 0.0)),  # right end
        ([(x, 30.0) for x in (-57.0, -45.0, -33.0)], (0.0, 1.0)),  # under the bar, left
        ([(x, 30.0) for x in (33.0, 45.0, 57.0)], (0.0, 1.0)),  # under the bar, right
        ([(-15.0, y) for y in (50.0, 70.0, 90.0, 110.0)], (-1.0, 0.0)),  # left of the stem
        ([(15.0, y) for y in (50.0, 70.0, 90.0, 110.0)], (1.0, 0.0)),  # right of the stem
        ([(x, 120.0) for x in (-9.0, 0.0, 9.0)], (0.0, 1.0)),  # foot of the stem
    ]
    points = np.array([p for pts, _ in faces for p in pts])
    normals = np.array([n for pts, n in faces for _ in pts])
    face_ids = np.array([f for f, (pts, _) in enumerate(faces) for _ in pts])
    return points, normals, face_ids


def _push_response(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Block motion (dx, dy, ANGLE_SCALE * dtheta) per px pushed at each contact, block frame.

    A frictionless push along the inward normal n at arm r from the centre of mass moves that
    point by the push: translation n * k and rotation (r x n) * k / I with k = 1 / (1 + (r x n)^2 / I).
    """
    inward = -normals
    arm = points - COG
    torque = arm[:, 0] * inward[:, 1] - arm[:, 1] * inward[:, 0]
    k = 1.0 / (1.0 + torque**2 / INERTIA)
    return np.column_stack([inward * k[:, None], ANGLE_SCALE * torque * k / INERTIA])


def _squared_distance_to_t(points: np.ndarray) -> np.ndarray:
    """Squared distance (..., 2) -> (...) from block-frame points to the T, 0 inside."""
    center = (BOXES[:, :2] + BOXES[:, 2:]) / 2
    half = (BOXES[:, 2:] - BOXES[:, :2]) / 2
    gap = np.maximum(np.abs(points[..., None, :] - center) - half, 0.0)  # (..., box, 2)
    return (gap**2).sum(axis=-1).min(axis=-1)


def _touching(q: np.ndarray) -> np.ndarray:
    """Whether the disc at q (B, 2) is closer to the T than transit allows (touching it, or about to)."""
    return _squared_distance_to_t(q) < CLEARANCE**2


def _clear(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Whether the disc can move in a straight line from start to end (..., 2) without touching the T.

    Checked at 32 points along the segment: transit segments are at most ~250 px, so the sampling
    misses the true clearance by under half a pixel.
    """
    t = np.linspace(0.0, 1.0, 32)[:, None]
    samples = start[..., None, :] + t * (end - start)[..., None, :]
    return _squared_distance_to_t(samples).min(axis=-1) >= CLEARANCE**2


def _rotation(angle: np.ndarray) -> np.ndarray:
    """(B,) angles -> (B, 2, 2) matrices taking block-frame vectors to the world frame."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _in_arena(points: np.ndarray) -> np.ndarray:
    """Whether world points (..., 2) are targets the agent can be sent to."""
    return ((points >= ARENA[0]) & (points <= ARENA[1])).all(axis=-1)


def _clip_norm(vectors: np.ndarray, limit: float) -> np.ndarray:
    """Vectors (..., 2) shortened to at most ``limit`` long."""
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors * np.minimum(1.0, limit / np.maximum(norm, 1e-9))


class PushTExpert:
    """Batched scripted pusher: greedy pushes chosen from a model of the block's response.

    Every step it values each candidate contact by how much one push there would cut the pose
    error (position of the centre of mass, and angle scaled to px of equal coverage loss) per
    step spent walking there and pushing, keeps the contact in use unless another is clearly
    better, then either pushes (when the disc sits in front of the contact) or walks towards the
    contact's standoff point. Walks never touch the block: the disc first backs off the face it
    touches, then goes straight when the way is clear, else around a ring of waypoints about the
    centre of mass, skipping ahead to the farthest waypoint in plain sight.

    Modes: each episode's seed draws a preference for every face of the T, a preferred way
    around the block and how much to favour turning over shifting the block, so among contacts
    that do about equally well, or two ways of similar length, episodes differ (as human
    demonstrations do) while each stays reproducible and none depends on the batch.
    """

    def __init__(self) -> None:
        self.points, self.normals, self.face_ids = _contacts()
        self.response = _push_response(self.points, self.normals)  # (K, 3)
        self.standoffs = self.points + self.normals * (AGENT_RADIUS + STANDOFF)
        angles = np.linspace(0.0, 2 * np.pi, RING_POINTS, endpoint=False)
        self.ring = COG + RING_RADIUS * np.column_stack([np.cos(angles), np.sin(angles)])  # (M, 2)
        self.ring_sees = _clear(self.standoffs[:, None], self.ring[None])  # (K, M): standoff in sight of ring point
        steps = np.arange(RING_POINTS)
        # arcs[j, t, d]: the ring point t steps from point j, going forward (d=0) or backward (d=1)
        self.arcs = np.stack([(steps[:, None] + steps) % RING_POINTS, (steps[:, None] - steps) % RING_POINTS], -1)
        self.face_weight = np.ones((0, self.face_ids.max() + 1))
        self.turn = np.zeros(0, dtype=np.int64)
        self.scale = np.ones((0, 3))
        self.contact = np.zeros(0, dtype=np.int64)

    def reset(self, seeds: np.ndarray) -> None:
        rngs = [np.random.default_rng([int(s), 1]) for s in seeds]
        faces = self.face_weight.shape[1]
        self.face_weight = np.stack([1.0 + FACE_PREFERENCE * rng.uniform(-1.0, 1.0, faces) for rng in rngs])
        self.turn = np.array([rng.integers(2) for rng in rngs])
        angle_weight = np.exp([rng.uniform(-ANGLE_PRIORITY, ANGLE_PRIORITY) for rng in rngs])
        self.scale = np.column_stack([np.ones((len(seeds), 2)), angle_weight])
        self.contact = np.full(len(seeds), -1)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = np.asarray(obs[STATE], dtype=np.float64)
        agent, origin = state[:, :2], state[:, 2:4]
        rot = _rotation(np.arctan2(state[:, 5], state[:, 4]))
        to_world = lambda p: origin[:, None] + np.einsum("bij,kj->bki", rot, p)  # noqa: E731  (K, 2) -> (B, K, 2)
        q = np.einsum("bji,bj->bi", rot, agent - origin)  # the agent in the block frame
        ring_ok, standoff_ok = _in_arena(to_world(self.ring)), _in_arena(to_world(self.standoffs))
        self.contact = self._choose_contact(self._pose_error(state, rot), q, ring_ok, standoff_ok)
        target = np.where(self._in_front(q)[:, None], self._push_target(state, rot), self._walk(q, ring_ok))
        return np.clip(origin + np.einsum("bij,bj->bi", rot, target), *ARENA).astype(np.float32)

    @staticmethod
    def _pose_error(state: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """(B, 3) error to the goal in the block frame: centre-of-mass offset and scaled angle."""
        goal_cog = GOAL_POSE[:2] + _rotation(GOAL_POSE[2:])[0] @ COG
        cog = state[:, 2:4] + rot @ COG
        offset = np.einsum("bji,bj->bi", rot, goal_cog - cog)
        angle = np.arctan2(state[:, 5], state[:, 4])
        turn = (GOAL_POSE[2] - angle + np.pi) % (2 * np.pi) - np.pi
        return np.column_stack([offset, ANGLE_SCALE * turn])

    def _choose_contact(
        self, error: np.ndarray, q: np.ndarray, ring_ok: np.ndarray, standoff_ok: np.ndarray
    ) -> np.ndarray:
        """(B,) contact with the best error cut per step spent walking there and pushing.

        A contact counts only if its standoff is in the arena and can be walked to: in plain sight
        of the agent, or of a ring point in the arena.
        """
        error, response = error * self.scale, self.response * self.scale[:, None]  # this episode's metric
        gain = np.einsum("bc,bkc->bk", error, response)
        reach = (response**2).sum(-1)
        size = np.linalg.norm(error, axis=1, keepdims=True)
        left = np.sqrt(np.maximum(size**2 - np.maximum(gain, 0.0) ** 2 / reach, 0.0))
        push = np.clip(gain / reach, 0.0, MAX_PUSH)
        start = self._start(q)
        direct = _clear(np.broadcast_to(start[:, None], (len(q), len(self.points), 2)), self.standoffs)
        walk = np.linalg.norm(start - q, axis=1, keepdims=True) + self._free_walk_length(start, direct)
        steps = SETTLE_STEPS + walk / WALK_SPEED + push / PUSH_SPEED
        value = (size - left) / steps * self.face_weight[:, self.face_ids]
        rows = np.arange(len(q))
        kept = self.contact >= 0
        value[rows[kept], self.contact[kept]] *= 1.0 + KEEP_BONUS
        reachable = standoff_ok & (direct | (self.ring_sees[None] & ring_ok[:, None]).any(axis=-1))
        return np.where(reachable, value, -np.inf).argmax(axis=1)

    def _start(self, q: np.ndarray) -> np.ndarray:
        """(B, 2) where walks start: the agent, or the point it backs off to when touching the T."""
        return np.where(_touching(q)[:, None], self._back_off(q), q)

    def _in_front(self, q: np.ndarray) -> np.ndarray:
        """(B,) whether the disc sits in front of its contact (within 8 px of its normal line, not yet
        more than 5 px into the face, at most 1.5 px short of the standoff): time to push."""
        point, normal = self.points[self.contact], self.normals[self.contact]
        offset = q - point
        along = (offset * normal).sum(1)
        lateral = np.abs(offset[:, 0] * normal[:, 1] - offset[:, 1] * normal[:, 0])
        return (lateral < 8.0) & (along > AGENT_RADIUS - 5.0) & (along < AGENT_RADIUS + STANDOFF + 1.5)

    def _push_target(self, state: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """(B, 2) target past the contact by the push the response model says the error needs."""
        error = self._pose_error(state, rot) * self.scale
        response = self.response[self.contact] * self.scale
        push = np.clip((error * response).sum(1) / (response**2).sum(1), 0.0, MAX_PUSH)
        return self.points[self.contact] + self.normals[self.contact] * (AGENT_RADIUS - push)[:, None]

    def _free_walk_length(self, q: np.ndarray, direct: np.ndarray) -> np.ndarray:
        """(B, K) rough length of the walk from a point clear of the T to every standoff: straight
        where ``direct`` (B, K) says the way is clear, else out to the ring, along it and back in."""
        straight = np.linalg.norm(self.standoffs - q[:, None], axis=-1)
        q_angle = np.arctan2(q[:, 1] - COG[1], q[:, 0] - COG[0])
        s_rel = self.standoffs - COG
        s_angle = np.arctan2(s_rel[:, 1], s_rel[:, 0])
        arc = np.abs((s_angle - q_angle[:, None] + np.pi) % (2 * np.pi) - np.pi) * RING_RADIUS
        out = np.abs(np.linalg.norm(q - COG, axis=1, keepdims=True) - RING_RADIUS)
        radial = out + RING_RADIUS - np.linalg.norm(s_rel, axis=1)
        return np.where(direct, straight, arc + radial)

    def _walk(self, q: np.ndarray, ring_ok: np.ndarray) -> np.ndarray:
        """(B, 2) next transit target towards the contact's standoff that keeps the disc off the T."""
        goal = self.standoffs[self.contact]
        waypoint = np.where(_clear(q, goal)[:, None], goal, self._ring_waypoint(q, ring_ok))
        target = q + _clip_norm(waypoint - q, LEAD)
        return np.where(_touching(q)[:, None], self._back_off(q), target)

    def _ring_waypoint(self, q: np.ndarray, ring_ok: np.ndarray) -> np.ndarray:
        """Shortest way q -> ring -> standoff over ring points inside the arena; its farthest point in sight of q."""
        b, m = len(q), RING_POINTS
        goal = self.standoffs[self.contact]
        rows = np.arange(b)
        seen = _clear(np.broadcast_to(q[:, None], (b, m, 2)), self.ring) & ring_ok  # (B, M)
        sees_goal = self.ring_sees[self.contact] & ring_ok
        on_arc = np.cumprod(ring_ok[:, self.arcs], axis=2).astype(bool)  # (B, j, t, d): whole arc in the arena
        chord = 2 * RING_RADIUS * np.sin(np.pi / m)
        cost = (
            np.linalg.norm(self.ring - q[:, None], axis=-1)[:, :, None, None]
            + chord * np.arange(m)[None, None, :, None]
            + np.linalg.norm(self.ring[self.arcs] - goal[:, None, None, None], axis=-1)
            + TURN_PENALTY * (np.arange(2) != self.turn[:, None])[:, None, None, :]
        )
        feasible = seen[:, :, None, None] & on_arc & sees_goal[rows[:, None, None, None], self.arcs]
        best = np.where(feasible, cost, np.inf).reshape(b, -1).argmin(axis=1)
        j, t, d = np.unravel_index(best, (m, m, 2))
        path = self.arcs[j, :, d]  # (B, M) ring points from the entry on
        ahead = seen[rows[:, None], path] & (np.arange(m) <= t[:, None])
        farthest = m - 1 - np.argmax(ahead[:, ::-1], axis=1)
        waypoint = self.ring[path[rows, farthest]]
        # standing on it (a borderline sight line can hide the next one): go on to the next, or the goal
        arrived = np.linalg.norm(waypoint - q, axis=1) < 5.0
        after = np.where((farthest < t)[:, None], self.ring[path[rows, np.minimum(farthest + 1, m - 1)]], goal)
        waypoint = np.where(arrived[:, None], after, waypoint)
        stuck = ~feasible.reshape(b, -1).any(axis=1)  # no way along the ring inside the arena: get clear
        return np.where(stuck[:, None], self._back_off(q, RING_RADIUS), waypoint)

    @staticmethod
    def _back_off(q: np.ndarray, distance: float = CLEARANCE + 3.0) -> np.ndarray:
        """(B, 2) point straight away from the nearest point of the T, ``distance`` from it."""
        nearest = np.stack([np.clip(q, BOXES[i, :2], BOXES[i, 2:]) for i in range(len(BOXES))], 1)  # (B, box, 2)
        closest = nearest[np.arange(len(q)), np.linalg.norm(q[:, None] - nearest, axis=-1).argmin(axis=1)]
        away = q - closest
        away_norm = np.linalg.norm(away, axis=1, keepdims=True)
        fallback = q - COG  # inside the T: leave away from the centre of mass
        direction = np.where(away_norm > 1e-6, away, fallback)
        return closest + direction / np.linalg.norm(direction, axis=1, keepdims=True) * distance


class PushTEnv(SimEnv):
    """One gym-pusht episode, built without gymnasium's wrappers (SimEnv keeps the step limit)."""

    def __init__(self, task: PushTTask):
        super().__init__(task.spec)
        envs = require("gym_pusht.envs", "pusht")
        self.env = envs.PushTEnv(
            obs_type="state",
            render_mode="rgb_array",
            observation_width=task.image_size,
            observation_height=task.image_size,
        )

    def state(self, native_obs: np.ndarray) -> np.ndarray:
        agent_x, agent_y, block_x, block_y, angle = native_obs
        return np.array([agent_x, agent_y, block_x, block_y, np.cos(angle), np.sin(angle)])

    def success(self, native_info: dict) -> bool:
        return bool(native_info["is_success"])

    def progress(self, native_info: dict) -> float:
        """Goal coverage over the success threshold (0.95), capped at 1: gym-pusht's reward, which
        LeRobot's ``avg_max_reward`` and Diffusion Policy's PushT score take the episode's max of."""
        return min(1.0, float(native_info["coverage"]) / self.env.success_threshold)

    def frame(self) -> np.ndarray:
        """The observation-size rendering (``render()`` gives the 680 px view with an action marker)."""
        return self.env._render(visualize=False)


class PushTTask(SimTask):
    """``pusht``: 6-D state, absolute (x, y) target actions in [0, 512], 300 steps at 10 fps."""

    name = "pusht"
    state_dim, action_dim, max_steps, fps = 6, 2, 300, 10
    action_low, action_high = 0.0, 512.0
    progress = "coverage"
    proprio = (0, 1)  # the disc's position
    description = "PushT (gym-pusht): push a T-shaped block onto the goal T with a disc; random start per seed"

    def make_single_env(self, render: bool = False) -> PushTEnv:
        """gym-pusht always renders, so ``render`` changes nothing."""
        return PushTEnv(self)

    def make_expert(self) -> Actor:
        return PushTExpert()


TASKS: dict[str, Any] = {"pusht": PushTTask}
