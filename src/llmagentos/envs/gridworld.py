"""Grid worlds: Sutton & Barto's 4×4 (Example 4.1), the windy grid (Example 6.5), and a configurable grid.

Cells are numbered row-major, ``state = row * cols + col``. Actions: 0 up, 1 right, 2 down, 3 left.
A move off the grid or into a wall leaves the agent where it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmagentos.core.errors import UsageError
from llmagentos.envs.tabular import TabularEnv, TransitionTable

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
MOVES = {UP: (-1, 0), RIGHT: (0, 1), DOWN: (1, 0), LEFT: (0, -1)}


def _absorbing(P: TransitionTable, s: int, n_actions: int = 4) -> None:
    P[s] = {a: [(1.0, s, 0.0, True)] for a in range(n_actions)}


class GridWorld4x4(TabularEnv):
    """Example 4.1: terminal corners 0 and 15, reward −1 on every move, start uniform over the other cells."""

    def __init__(self, render_mode: str | None = None) -> None:
        rows = cols = 4
        terminals = {0, 15}
        P: TransitionTable = {}
        for s in range(rows * cols):
            if s in terminals:
                _absorbing(P, s)
                continue
            r, c = divmod(s, cols)
            P[s] = {}
            for a, (dr, dc) in MOVES.items():
                nr, nc = r + dr, c + dc
                ns = nr * cols + nc if 0 <= nr < rows and 0 <= nc < cols else s
                P[s][a] = [(1.0, ns, -1.0, ns in terminals)]
        start = np.array([0.0 if s in terminals else 1.0 for s in range(16)])
        super().__init__(P, start / start.sum(), render_mode)
        self.shape = (rows, cols)


class WindyGridWorld(TabularEnv):
    """Example 6.5: 7×10, upward wind per column 0 0 0 1 1 1 2 2 1 0, start (3,0), goal (3,7), −1 per step."""

    WIND = (0, 0, 0, 1, 1, 1, 2, 2, 1, 0)

    def __init__(self, render_mode: str | None = None) -> None:
        rows, cols = 7, 10
        start, goal = (3, 0), (3, 7)
        goal_s = goal[0] * cols + goal[1]
        P: TransitionTable = {}
        for s in range(rows * cols):
            if s == goal_s:
                _absorbing(P, s)
                continue
            r, c = divmod(s, cols)
            P[s] = {}
            for a, (dr, dc) in MOVES.items():
                # the wind of the column the agent leaves pushes it up, clipped to the grid
                nr = min(max(r + dr - self.WIND[c], 0), rows - 1)
                nc = min(max(c + dc, 0), cols - 1)
                ns = nr * cols + nc
                P[s][a] = [(1.0, ns, -1.0, ns == goal_s)]
        initial = np.zeros(rows * cols)
        initial[start[0] * cols + start[1]] = 1.0
        super().__init__(P, initial, render_mode)
        self.shape = (rows, cols)


def _cell(value: Sequence[int], rows: int, cols: int, what: str) -> tuple[int, int]:
    if len(value) < 2:
        raise UsageError(f"{what} must be [row, col], got {list(value)}")
    r, c = int(value[0]), int(value[1])
    if not (0 <= r < rows and 0 <= c < cols):
        raise UsageError(f"{what} {[r, c]} lies outside the {rows}x{cols} grid")
    return r, c


class GridWorld(TabularEnv):
    """A configurable grid: size, walls, start, goals with rewards, slip probability and step penalty.

    Args:
        size: ``[rows, cols]`` (or one int for a square grid).
        walls: cells the agent cannot enter, ``[[row, col], ...]``.
        start: the start cell ``[row, col]``; ``None`` starts uniformly over free non-goal cells.
        goals: ``[[row, col, reward], ...]``; reaching a goal ends the episode with its reward.
        slip: probability that a move goes in a uniformly random direction instead.
        step_penalty: reward added on every move (usually ≤ 0).
    """

    def __init__(self, size: int | Sequence[int] = (5, 5), walls: Sequence[Sequence[int]] = (),
                 start: Sequence[int] | None = (0, 0), goals: Sequence[Sequence[float]] = ((4, 4, 1.0),),
                 slip: float = 0.0, step_penalty: float = -0.01, render_mode: str | None = None) -> None:
        rows, cols = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
        if rows < 1 or cols < 1:
            raise UsageError(f"size must be positive, got {[rows, cols]}")
        if not 0.0 <= slip <= 1.0:
            raise UsageError(f"slip must be a probability in [0, 1], got {slip}")
        wall_cells = {_cell(w, rows, cols, "wall") for w in walls}
        goal_reward = {}
        for g in goals:
            cell = _cell(g, rows, cols, "goal")
            goal_reward[cell] = float(g[2]) if len(g) > 2 else 1.0
        if not goal_reward:
            raise UsageError("a grid world needs at least one goal")
        if wall_cells & set(goal_reward):
            raise UsageError("a goal cannot be a wall")
        self.shape = (rows, cols)
        self.walls = sorted(wall_cells)
        self.goals = {k: v for k, v in sorted(goal_reward.items())}
        self.slip = float(slip)
        self.step_penalty = float(step_penalty)

        def index(cell: tuple[int, int]) -> int:
            return cell[0] * cols + cell[1]

        P: TransitionTable = {}
        for s in range(rows * cols):
            cell = divmod(s, cols)
            if cell in goal_reward or cell in wall_cells:
                _absorbing(P, s)
                continue
            P[s] = {}
            for a in range(4):
                outcomes: dict[tuple[int, bool, float], float] = {}
                for direction in range(4):
                    prob = (1.0 - slip) * (direction == a) + slip / 4.0
                    if prob == 0.0:
                        continue
                    dr, dc = MOVES[direction]
                    nxt = (cell[0] + dr, cell[1] + dc)
                    if not (0 <= nxt[0] < rows and 0 <= nxt[1] < cols) or nxt in wall_cells:
                        nxt = cell
                    reward = self.step_penalty + goal_reward.get(nxt, 0.0)
                    key = (index(nxt), nxt in goal_reward, reward)
                    outcomes[key] = outcomes.get(key, 0.0) + prob
                P[s][a] = [(p, ns, r, term) for (ns, term, r), p in outcomes.items()]
        initial = np.zeros(rows * cols)
        if start is None:
            for s in range(rows * cols):
                if divmod(s, cols) not in wall_cells and divmod(s, cols) not in goal_reward:
                    initial[s] = 1.0
            if initial.sum() == 0:
                raise UsageError("the grid has no free cell to start from")
        else:
            start_cell = _cell(start, rows, cols, "start")
            if start_cell in wall_cells or start_cell in goal_reward:
                raise UsageError(f"start {list(start_cell)} is a wall or a goal")
            initial[index(start_cell)] = 1.0
        super().__init__(P, initial / initial.sum(), render_mode)
