"""``llmagentos demo --world minatar``: a short Continual MinAtar stream, the five games one after another.

One DQN (the MinAtar paper's small CNN, MinAtar's full action set of 6, frames padded to 10 channels, the
game's one-hot id as extra planes) meets Breakout, Space Invaders, Freeway, Asterix and Seaquest in turn,
once per strategy: fine-tuning, online EWC, replay with behaviour cloning and PackNet. The budgets are a
demo's (a few thousand steps per game, where the MinAtar paper trains 5M frames per game): the R matrix
shows what each strategy keeps of what it learned early, not playing strength. ``benchmarks/lifelong.py``-
style longer streams are a spec away (``examples/lifelong_continual_minatar.yaml``).
"""

from __future__ import annotations

from typing import Any

#: DQN settings for a short stream: a small memory that replay and fine-tuning share, a fast ε decay per game
MINATAR_DEMO_DQN: dict[str, Any] = {
    "learning_rate": 1e-3, "learning_rate_final": None, "gamma": 0.99, "buffer_size": 20_000, "batch_size": 64,
    "learning_starts": 500, "train_freq": 4, "target_update_interval": 250, "exploration_steps": 3_000,
    "epsilon_final": 0.05, "n_step": 3, "encoder": "small-cnn", "hidden": [128],
    "image_channels": "last",  # 10×10×15 with the task planes: more channels than rows, so say where they are
}
MINATAR_DEMO_STRATEGIES = ["finetune", "ewc", "replay", "packnet"]
#: states of EWC's Fisher estimate: fewer than the default 500 keeps the demo short (the per-state Jacobians,
#: states × 6 actions × 205k weights, are computed in bounded chunks either way)
FISHER_STATES = 100


def minatar_block(steps_per_task: int, strategies: list[str] | None = None) -> Any:
    from llmagentos.envs.continual_minatar import GAMES
    from llmagentos.jobs.lifelong import LifelongBlock

    return LifelongBlock(family="minatar", tasks=[{"game": g} for g in GAMES], steps_per_task=steps_per_task,
                         append_task=True, learner="dqn", config=dict(MINATAR_DEMO_DQN),
                         strategies=strategies or list(MINATAR_DEMO_STRATEGIES),
                         lifelong={"ewc_lambda": 1_000.0, "fisher_states": FISHER_STATES}, eval_episodes=2, curve_points=2)
