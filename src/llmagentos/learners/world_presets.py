"""Per-world settings the learners ship (the MinAtar, Atari and classic-control ones), merged into their configs' ``PRESETS``:
they always apply to their world, then ``--set``. Named presets chosen by a word (``--preset fast``) are another thing and
live in :mod:`llmagentos.learners.presets`.

The classic-control DQN settings follow rl-baselines3-zoo's DQN hyperparameters (constant step size,
1-step targets). The MinAtar settings are the MinAtar paper's (Young & Tian, 2019) scaled to the budgets a small machine
runs (its 5M frames become the 500k-step default here): a 10×10 frame through the small CNN, a 100k-row
memory, a faster ε decay and a larger step size than its RMSProp 2.5e-4, and 3-step targets. The Atari
settings are the Nature DQN's (Mnih et al., 2015) with Adam (as rl-baselines3-zoo and Dopamine use).
``benchmarks/pixels.py`` measures them; ``docs/pixels.md`` reports what they reach.
"""

from __future__ import annotations

from typing import Any

CLASSIC_DQN_PRESETS: dict[str, dict[str, Any]] = {
    "Acrobot-v1": {"learning_rate": 6.3e-4, "learning_rate_final": None, "gamma": 0.99, "n_step": 1, "batch_size": 128,
                   "buffer_size": 50_000, "learning_starts": 0, "train_freq": 4, "gradient_steps": 4,
                   "target_update_interval": 250, "exploration_steps": 12_000, "epsilon_final": 0.1, "hidden": [256, 256]},
    "MountainCar-v0": {"learning_rate": 4e-3, "learning_rate_final": None, "gamma": 0.98, "n_step": 1, "batch_size": 128,
                       "buffer_size": 10_000, "learning_starts": 1_000, "train_freq": 16, "gradient_steps": 8,
                       "target_update_interval": 300, "exploration_steps": 24_000, "epsilon_final": 0.07, "hidden": [256, 256]},
    "LunarLander-v3": {"learning_rate": 6.3e-4, "learning_rate_final": None, "gamma": 0.99, "n_step": 1, "batch_size": 128,
                       "buffer_size": 50_000, "learning_starts": 0, "train_freq": 4, "gradient_steps": 4,
                       "target_update_interval": 250, "exploration_steps": 12_000, "epsilon_final": 0.1, "hidden": [256, 256]},
}

MINATAR_GAMES = ("Breakout", "SpaceInvaders", "Freeway", "Asterix", "Seaquest")

#: DQN on a MinAtar game
MINATAR_DQN: dict[str, Any] = {
    "learning_rate": 5e-4, "learning_rate_final": None, "gamma": 0.99, "buffer_size": 100_000, "batch_size": 64,
    "learning_starts": 5_000, "train_freq": 4, "gradient_steps": 1, "target_update_interval": 500,
    "exploration_steps": 50_000, "epsilon_final": 0.05, "n_step": 3, "double": True, "max_grad_norm": 10.0,
    "hidden": [128],
    # a MinAtar frame's channels are objects (paddle, ball, ...), not a stack of frames in time, so the frame-once
    # memory saves little; the plain one samples a minibatch ~4x faster (57 µs against 250 µs for 64 rows)
    "replay": "plain",
}
#: PPO on a MinAtar game (PureJaxRL's MinAtar PPO shape — 4 epochs, γ 0.99, λ 0.95, entropy 0.01, a step size
#: annealed to 0 — with 8 envs of 64 steps instead of 64 of 128, and a larger step size for the shorter rollouts)
MINATAR_PPO: dict[str, Any] = {
    "num_envs": 8, "n_steps": 64, "batch_size": 128, "n_epochs": 4, "gamma": 0.99, "gae_lambda": 0.95,
    "learning_rate": 2.5e-3, "lr_final": 0.0, "clip_range": 0.2, "clip_range_final": None, "ent_coef": 0.01,
    "schedule_steps": 500_000, "hidden": [128],
}
#: DQN on an Atari game through the standard pipeline (llmagentos.envs.pixels)
ATARI_DQN: dict[str, Any] = {
    "learning_rate": 1e-4, "learning_rate_final": None, "gamma": 0.99, "buffer_size": 100_000, "batch_size": 32,
    "learning_starts": 100_000, "train_freq": 4, "gradient_steps": 1, "target_update_interval": 1_000,
    "exploration_steps": 1_000_000, "epsilon_final": 0.01, "n_step": 1, "double": False, "max_grad_norm": 10.0,
}
ATARI_GAMES = ("Pong", "Breakout", "SpaceInvaders", "Seaquest", "Qbert", "BeamRider", "Enduro")

DQN_PRESETS: dict[str, dict[str, Any]] = {
    **{f"MinAtar/{g}-v1": dict(MINATAR_DQN) for g in MINATAR_GAMES},
    **{f"ALE/{g}-v5": dict(ATARI_DQN) for g in ATARI_GAMES},
}
PPO_PRESETS: dict[str, dict[str, Any]] = {f"MinAtar/{g}-v1": dict(MINATAR_PPO) for g in MINATAR_GAMES}
#: the budgets `llmagentos train` runs when none is given (the Atari one is the Nature DQN's 10M frames / 4)
DQN_DEFAULT_STEPS: dict[str, int] = {**{f"MinAtar/{g}-v1": 500_000 for g in MINATAR_GAMES},
                                     **{f"ALE/{g}-v5": 2_500_000 for g in ATARI_GAMES}}
PPO_DEFAULT_STEPS: dict[str, int] = {f"MinAtar/{g}-v1": 500_000 for g in MINATAR_GAMES}
