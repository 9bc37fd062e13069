"""CoopGrid: a cooperative grid world for two or more agents, on PettingZoo's Parallel API.

Agents move on a ``size × size`` grid (actions 0 stay, 1 up, 2 down, 3 left, 4 right; a move off the grid
stays put). A goal pays only when *all* agents stand on it together; then every agent earns the goal's value
and the episode terminates. Two agents may not share a cell outside a goal, nor swap cells: movers that
would collide stay where they were and pay ``collision_penalty``. Every step costs ``step_cost``; an episode
is cut (truncated) after ``max_steps`` steps.

Rewards: ``"individual"`` pays each agent its own step cost, collision penalty and goal value; ``"shared"``
pays every agent the mean of those individual rewards (one team signal).

Observations, one per agent (its own point of view): ``"joint"`` — Discrete, the index of (own cell, the
other agents' cells in agent order), for tabular learners; ``"own"`` — Discrete, the agent's own cell only;
``"vector"`` — Box in [0, 1]: own (row, col), the others' (row, col), then every goal's (row, col), scaled by
``size − 1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from llmagentos.core.errors import UsageError

MOVES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # stay, up, down, left, right
OBSERVATIONS = ("joint", "own", "vector")
REWARDS = ("shared", "individual")


class CoopGridEnv(ParallelEnv):
    metadata = {"name": "llmagentos_coop_grid_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, size: int = 5, n_agents: int = 2, goals: Any = None, reward: str = "shared",
                 observation: str = "joint", collision_penalty: float = -0.1, step_cost: float = -0.01,
                 max_steps: int = 50, random_start: bool = True, render_mode: str | None = None) -> None:
        if not isinstance(size, int) or size < 2:
            raise UsageError(f"CoopGrid size must be an integer ≥ 2, got {size!r}")
        if not isinstance(n_agents, int) or n_agents < 2:
            raise UsageError(f"CoopGrid needs n_agents ≥ 2 (it is a cooperative game), got {n_agents!r}")
        if reward not in REWARDS:
            raise UsageError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        if observation not in OBSERVATIONS:
            raise UsageError(f"observation must be one of {', '.join(OBSERVATIONS)}, got {observation!r}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise UsageError(f"max_steps must be a positive integer, got {max_steps!r}")
        if render_mode not in (None, "ansi"):
            raise UsageError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        if goals is None:
            # a far goal worth 1 and a nearer-to-some-starts goal worth 0.5: agents must agree on one
            goals = [[0, size - 1, 1.0], [size - 1, 0, 0.5]]
        try:
            goal_list = [(int(g[0]), int(g[1]), float(g[2])) for g in goals]
        except (TypeError, ValueError, IndexError):
            raise UsageError("goals must be a list of [row, col, value] triples") from None
        if not goal_list or any(not (0 <= r < size and 0 <= c < size) for r, c, _ in goal_list):
            raise UsageError(f"goals must be one or more [row, col, value] cells inside the {size}×{size} grid")
        if len({(r, c) for r, c, _ in goal_list}) != len(goal_list):
            raise UsageError("goals must sit on distinct cells")
        if size * size - len(goal_list) < n_agents:
            raise UsageError(f"a {size}×{size} grid with {len(goal_list)} goals has no room for {n_agents} agents")
        if observation == "joint" and (size * size) ** n_agents > 2**31:
            raise UsageError("observation='joint' would index more than 2^31 states; use 'vector' for this many agents")
        self.size, self.n_agents = size, n_agents
        self.goals = goal_list
        self._goal_value = {(r, c): v for r, c, v in goal_list}
        self.reward_mode, self.observation_mode = reward, observation
        self.collision_penalty, self.step_cost = float(collision_penalty), float(step_cost)
        self.max_steps, self.random_start = max_steps, bool(random_start)
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        cells = size * size
        if observation == "joint":
            obs_space: spaces.Space = spaces.Discrete(cells**n_agents)
        elif observation == "own":
            obs_space = spaces.Discrete(cells)
        else:
            obs_space = spaces.Box(0.0, 1.0, shape=(2 * n_agents + 2 * len(goal_list),), dtype=np.float32)
        self._observation_spaces = {a: obs_space if i == 0 else _copy_space(obs_space)
                                    for i, a in enumerate(self.possible_agents)}
        self._action_spaces = {a: spaces.Discrete(len(MOVES)) for a in self.possible_agents}
        self._rng = np.random.default_rng()
        self.positions = np.zeros((n_agents, 2), dtype=np.int64)
        self._t = 0

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    # -- dynamics ---------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        free = [c for c in range(self.size * self.size) if divmod(c, self.size) not in self._goal_value]
        if self.random_start:
            cells = self._rng.choice(free, size=self.n_agents, replace=False)
        else:
            # fixed starts spread along the bottom-left to top-right free cells, in agent order
            cells = np.asarray(free[:: max(len(free) // self.n_agents, 1)][: self.n_agents])
        self.positions = np.array([divmod(int(c), self.size) for c in cells], dtype=np.int64)
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        old = self.positions.copy()
        new = old.copy()
        for i, agent in enumerate(self.possible_agents):
            action = int(actions[agent])
            if not 0 <= action < len(MOVES):
                raise ValueError(f"{agent}'s action {action} is not in 0..{len(MOVES) - 1}")
            new[i] = np.clip(old[i] + MOVES[action], 0, self.size - 1)
        collided = np.zeros(self.n_agents, dtype=bool)
        # revert movers that would share a non-goal cell or swap with another agent, until nothing conflicts
        changed = True
        while changed:
            changed = False
            for i in range(self.n_agents):
                for j in range(i + 1, self.n_agents):
                    same = tuple(new[i]) == tuple(new[j]) and tuple(new[i]) not in self._goal_value
                    swap = tuple(new[i]) == tuple(old[j]) and tuple(new[j]) == tuple(old[i]) and tuple(old[i]) != tuple(old[j])
                    if same or swap:
                        for k in (i, j):
                            if tuple(new[k]) != tuple(old[k]):
                                new[k] = old[k]
                                collided[k] = True
                                changed = True
        self.positions = new
        self._t += 1
        individual = np.full(self.n_agents, self.step_cost) + collided * self.collision_penalty
        together = tuple(new[0]) if all(tuple(p) == tuple(new[0]) for p in new) else None
        terminated = together is not None and together in self._goal_value
        if terminated:
            individual += self._goal_value[together]  # type: ignore[index]
        if self.reward_mode == "shared":
            individual = np.full(self.n_agents, individual.mean())
        truncated = not terminated and self._t >= self.max_steps
        agents = self.agents
        observations = self._observations()
        rewards = {a: float(individual[i]) for i, a in enumerate(agents)}
        terminations = {a: bool(terminated) for a in agents}
        truncations = {a: bool(truncated) for a in agents}
        infos = {a: {"collided": bool(collided[i])} for i, a in enumerate(agents)}
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def _observations(self) -> dict[str, Any]:
        cells = self.positions[:, 0] * self.size + self.positions[:, 1]
        out = {}
        for i, agent in enumerate(self.possible_agents):
            order = [i] + [j for j in range(self.n_agents) if j != i]
            if self.observation_mode == "own":
                out[agent] = np.array(cells[i], dtype=np.int64)
            elif self.observation_mode == "joint":
                out[agent] = np.array(np.ravel_multi_index(tuple(cells[order]), (self.size * self.size,) * self.n_agents), dtype=np.int64)
            else:
                coords = [self.positions[j] for j in order] + [np.array([r, c]) for r, c, _ in self.goals]
                out[agent] = (np.concatenate(coords) / (self.size - 1)).astype(np.float32)
        return out

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        grid = [["." for _ in range(self.size)] for _ in range(self.size)]
        for r, c, _ in self.goals:
            grid[r][c] = "G"
        for i, (r, c) in enumerate(self.positions):
            grid[r][c] = str(i) if grid[r][c] in ".G" else "*"
        return "\n".join("".join(row) for row in grid)

    def close(self) -> None:
        pass

    def state(self) -> np.ndarray:
        return self.positions.ravel().copy()


def _copy_space(space: spaces.Space) -> spaces.Space:
    if isinstance(space, spaces.Discrete):
        return spaces.Discrete(int(space.n))
    return spaces.Box(space.low, space.high, dtype=space.dtype)  # type: ignore[attr-defined]


def coop_grid(**kwargs: Any) -> CoopGridEnv:
    return CoopGridEnv(**kwargs)
