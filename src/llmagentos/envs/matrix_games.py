"""Repeated normal-form (matrix) games on PettingZoo's Parallel API.

Every player picks an action at once; player i is paid ``payoffs[a_0, ..., a_{n-1}, i]``. An episode is
``episode_length`` plays of the stage game (default one, the single-stage game of Claus & Boutilier 1998),
and ends as *terminated*: nothing is owed after the last play. Players are ``player_0`` (the row player,
who picks the row), ``player_1`` (the column player), ... . What they observe is set by ``observation``:
``"none"`` (the stage game has one state, observation 0) or ``"last-joint-action"`` (0 at the start,
then 1 + the flat index of the previous joint action).

The games the literature uses to show miscoordination among independent learners:

- the climbing game (Claus & Boutilier 1998), common payoff [[11, −30, 0], [−30, 7, 6], [0, 0, 5]]:
  optimum (0, 0) = 11 is guarded by −30 penalties, so learners drift to the safe (1, 1) = 7 or (2, 2) = 5;
- the penalty game, common payoff [[10, 0, k], [0, 2, 0], [k, 0, 10]], k ≤ 0: two optima (0, 0) and (2, 2)
  that miscoordinate into k, and a safe (1, 1) = 2.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from llmagentos.core.errors import UsageError

OBSERVATIONS = ("none", "last-joint-action")


class MatrixGameEnv(ParallelEnv):
    """An n-player normal-form game, repeated ``episode_length`` times per episode.

    Give either ``payoffs`` (shape ``(n_actions_0, ..., n_actions_{n-1}, n)``: one payoff per player) or
    ``common_payoff`` (shape ``(n_actions_0, ..., n_actions_{n-1})``: a team game, every player paid the same).
    """

    metadata = {"name": "llmagentos_matrix_game_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, payoffs: Any = None, common_payoff: Any = None, episode_length: int = 1,
                 observation: str = "none", action_names: Sequence[Sequence[str]] | None = None,
                 name: str = "MatrixGame", render_mode: str | None = None) -> None:
        if (payoffs is None) == (common_payoff is None):
            raise UsageError("MatrixGame needs exactly one of payoffs (shape [*actions, n_players]) "
                             "or common_payoff (shape [*actions], a team game)")
        try:
            table = np.asarray(payoffs if payoffs is not None else common_payoff, dtype=np.float64)
        except (TypeError, ValueError):
            raise UsageError("MatrixGame payoffs must be a rectangular nested list of numbers") from None
        if common_payoff is not None:
            if table.ndim < 1:
                raise UsageError("common_payoff needs one axis per player, got a scalar")
            table = np.repeat(table[..., None], table.ndim, axis=-1)
        if table.ndim < 2 or table.shape[-1] != table.ndim - 1:
            raise UsageError(f"payoffs of shape {list(table.shape)} do not fit: an n-player game needs shape "
                             "[n_actions_0, ..., n_actions_{n-1}, n] (one payoff per player)")
        if min(table.shape[:-1]) < 1 or not np.all(np.isfinite(table)):
            raise UsageError("MatrixGame payoffs must be finite numbers with at least one action per player")
        if not isinstance(episode_length, int) or isinstance(episode_length, bool) or episode_length < 1:
            raise UsageError(f"episode_length must be a positive integer, got {episode_length!r}")
        if observation not in OBSERVATIONS:
            raise UsageError(f"observation must be one of {', '.join(OBSERVATIONS)}, got {observation!r}")
        if render_mode not in (None, "ansi"):
            raise UsageError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.payoffs = table
        self.n_players = table.ndim - 1
        self.n_actions = tuple(int(n) for n in table.shape[:-1])
        self.common = bool(np.all(table == table[..., :1]))
        self.episode_length = episode_length
        self.observation_mode = observation
        self.name = name
        self.render_mode = render_mode
        if action_names is not None:
            if len(action_names) != self.n_players or any(len(a) != n for a, n in zip(action_names, self.n_actions)):
                raise UsageError(f"action_names must give one name per action of each player {list(self.n_actions)}")
            self.action_names = [list(map(str, a)) for a in action_names]
        else:
            self.action_names = [[str(a) for a in range(n)] for n in self.n_actions]
        self.possible_agents = [f"player_{i}" for i in range(self.n_players)]
        self.agents: list[str] = []
        n_obs = 1 if observation == "none" else 1 + int(np.prod(self.n_actions))
        # one space object per agent, returned as-is (PettingZoo's seeding test relies on identity)
        self._observation_spaces = {a: spaces.Discrete(n_obs) for a in self.possible_agents}
        self._action_spaces = {a: spaces.Discrete(n) for a, n in zip(self.possible_agents, self.n_actions)}
        self._t = 0
        self._obs = 0
        self.last_joint_action: tuple[int, ...] | None = None

    # -- PettingZoo API ---------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Discrete:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        # the game itself is deterministic: the seed only matters to the caller's action sampling
        self.agents = list(self.possible_agents)
        self._t = 0
        self._obs = 0
        self.last_joint_action = None
        return {a: np.array(self._obs, dtype=np.int64) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"no action for {', '.join(missing)}")
        joint = []
        for agent, n in zip(self.possible_agents, self.n_actions):
            action = int(actions[agent])
            if not 0 <= action < n:
                raise ValueError(f"{agent}'s action {action} is not in 0..{n - 1}")
            joint.append(action)
        joint_action = tuple(joint)
        self.last_joint_action = joint_action
        self._t += 1
        if self.observation_mode == "last-joint-action":
            self._obs = 1 + int(np.ravel_multi_index(joint_action, self.n_actions))
        payoff = self.payoffs[joint_action]
        done = self._t >= self.episode_length
        agents = self.agents
        observations = {a: np.array(self._obs, dtype=np.int64) for a in agents}
        rewards = {a: float(payoff[i]) for i, a in enumerate(agents)}
        terminations = {a: done for a in agents}
        truncations = {a: False for a in agents}
        infos = {a: {} for a in agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self.last_joint_action is None:
            return f"{self.name}: no play yet"
        names = [self.action_names[i][a] for i, a in enumerate(self.last_joint_action)]
        return f"{self.name}: joint action {tuple(names)} pays {self.payoffs[self.last_joint_action].tolist()}"

    def close(self) -> None:
        pass

    def state(self) -> np.ndarray:
        return np.asarray([self._obs], dtype=np.int64)

    # -- game theory ------------------------------------------------------------------------------
    def joint_actions(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(n) for n in self.n_actions)))

    def welfare(self, joint_action: Sequence[int]) -> float:
        """The payoff that counts as 'best': the common payoff of a team game, else the players' total."""
        payoff = self.payoffs[tuple(joint_action)]
        return float(payoff[0] if self.common else payoff.sum())

    def optimal_joint_actions(self) -> list[tuple[int, ...]]:
        """Joint actions of greatest welfare; empty when every joint action is worth the same (e.g. zero-sum)."""
        values = {ja: self.welfare(ja) for ja in self.joint_actions()}
        best = max(values.values())
        if all(v == best for v in values.values()):
            return []
        return [ja for ja, v in values.items() if v == best]

    def pure_nash_equilibria(self) -> list[tuple[int, ...]]:
        """Joint actions where no player gains by changing only its own action."""
        out = []
        for ja in self.joint_actions():
            stable = True
            for i in range(self.n_players):
                index = list(ja)
                index[i] = slice(None)
                if self.payoffs[tuple(index) + (i,)].max() > self.payoffs[ja + (i,)]:
                    stable = False
                    break
            if stable:
                out.append(ja)
        return out

    def describe(self, joint_action: Sequence[int]) -> str:
        """A readable label such as ``(0,0)``, used as the key of outcome tables."""
        return "(" + ",".join(str(int(a)) for a in joint_action) + ")"


# -- the named games ------------------------------------------------------------------------------

CLIMBING = [[11, -30, 0], [-30, 7, 6], [0, 0, 5]]


def climbing_game(**kwargs: Any) -> MatrixGameEnv:
    """Claus & Boutilier (1998): optimum (0,0)=11 next to −30 penalties; (1,1)=7 is the safe equilibrium."""
    return MatrixGameEnv(common_payoff=CLIMBING, name="ClimbingGame", **kwargs)


def penalty_game(k: float = -10.0, **kwargs: Any) -> MatrixGameEnv:
    """Claus & Boutilier (1998): optima (0,0) and (2,2) = 10, miscoordination (0,2)/(2,0) = k ≤ 0, safe (1,1) = 2."""
    try:
        k = float(k)
    except (TypeError, ValueError):
        raise UsageError(f"PenaltyGame's k must be a number (the miscoordination payoff, ≤ 0), got {k!r}") from None
    return MatrixGameEnv(common_payoff=[[10, 0, k], [0, 2, 0], [k, 0, 10]], name="PenaltyGame", **kwargs)


def prisoners_dilemma(**kwargs: Any) -> MatrixGameEnv:
    """Actions 0 cooperate, 1 defect; payoffs (R, S, T, P) = (3, 0, 5, 1): defection dominates, (C,C) is best together."""
    return MatrixGameEnv(payoffs=[[[3, 3], [0, 5]], [[5, 0], [1, 1]]], name="PrisonersDilemma",
                         action_names=[["cooperate", "defect"]] * 2, **kwargs)


def matching_pennies(**kwargs: Any) -> MatrixGameEnv:
    """Zero-sum: the row player wins 1 when the coins match, the column player when they differ."""
    return MatrixGameEnv(payoffs=[[[1, -1], [-1, 1]], [[-1, 1], [1, -1]]], name="MatchingPennies",
                         action_names=[["heads", "tails"]] * 2, **kwargs)


def rock_paper_scissors(**kwargs: Any) -> MatrixGameEnv:
    """Zero-sum: rock (0) beats scissors (2), scissors beat paper (1), paper beats rock; win 1, loss −1."""
    win = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=np.float64)
    return MatrixGameEnv(payoffs=np.stack([win, -win], axis=-1).tolist(), name="RockPaperScissors",
                         action_names=[["rock", "paper", "scissors"]] * 2, **kwargs)


def matrix_game(payoffs: Any = None, common_payoff: Any = None, **kwargs: Any) -> MatrixGameEnv:
    """Any n-player game: ``payoffs`` shape [*actions, n] (per-player) or ``common_payoff`` shape [*actions]."""
    return MatrixGameEnv(payoffs=payoffs, common_payoff=common_payoff, **kwargs)
