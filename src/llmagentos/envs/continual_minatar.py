"""Continual MinAtar: the five MinAtar games as tasks of one world, so one network can play them all.

Each game draws a 10×10 frame with its own number of channels (Breakout 4, Space Invaders 6, Freeway 7,
Asterix 4, Seaquest 10). Here every frame is padded with empty channels to :data:`CHANNELS` (Seaquest's 10),
and every game takes MinAtar's full action set of 6 (no-op, left, up, right, down, fire; a game ignores the
actions it does not use), so observation and action spaces are the same for every task, as in the CLEAR
paper's Atari sequence (Rolnick et al., 2019) where one network with the full action set plays every game.
With ``append_task`` the game's one-hot id is added as constant planes (5 more channels).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from llmagentos.core.errors import UsageError

#: the games in the stream's order (the order of the MinAtar paper's table)
GAMES: tuple[str, ...] = ("breakout", "space_invaders", "freeway", "asterix", "seaquest")
#: channels of every padded frame (the largest game's, Seaquest's)
CHANNELS = 10
#: MinAtar's full action set
N_ACTIONS = 6


def check_game(game: Any) -> str:
    if game not in GAMES:
        raise UsageError(f"a Continual MinAtar task is one of the games {', '.join(GAMES)}, got {game!r}")
    return str(game)


class ContinualMinAtar(gym.Env):
    """One MinAtar game with frames padded to :data:`CHANNELS` channels and the full action set.

    Args:
        game: which game (one of :data:`GAMES`).
        append_task: add the game's one-hot id as constant channels.
        sticky_action_prob: MinAtar's probability of repeating the previous action (its default 0.1).
        difficulty_ramping: MinAtar's speed-up as a game goes on (its default True).
    """

    metadata = {"render_modes": []}

    def __init__(self, game: str = "breakout", append_task: bool = False, sticky_action_prob: float = 0.1,
                 difficulty_ramping: bool = True) -> None:
        from minatar import Environment

        self.game_name = check_game(game)
        if not 0.0 <= float(sticky_action_prob) <= 1.0:
            raise UsageError(f"sticky_action_prob must be a probability in [0, 1], got {sticky_action_prob}")
        self.game = Environment(self.game_name, sticky_action_prob=float(sticky_action_prob),
                                difficulty_ramping=bool(difficulty_ramping))
        self.append_task = bool(append_task)
        channels = CHANNELS + (len(GAMES) if self.append_task else 0)
        self._frame = np.zeros((10, 10, channels), dtype=bool)
        if self.append_task:
            self._frame[:, :, CHANNELS + GAMES.index(self.game_name)] = True
        self.observation_space = spaces.Box(0, 1, shape=self._frame.shape, dtype=bool)
        self.action_space = spaces.Discrete(N_ACTIONS)

    def _observation(self) -> np.ndarray:
        state = self.game.state()
        frame = self._frame.copy()
        frame[:, :, : state.shape[2]] = state
        return frame

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.game.seed(seed)
        self.game.reset()
        return self._observation(), {"task": {"game": self.game_name}}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward, done = self.game.act(int(action))
        return self._observation(), float(reward), bool(done), False, {"task": {"game": self.game_name}}
