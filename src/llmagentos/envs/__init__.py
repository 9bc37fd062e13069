"""The worlds: grid worlds, task families, drifting worlds and multi-agent worlds.

Single-agent worlds are registered with Gymnasium under the ``llmagentos/`` namespace when this
package is imported, so ``gymnasium.make("llmagentos/GridWorld4x4-v0")`` works.
"""

from __future__ import annotations

import gymnasium as gym

#: id -> (entry point, registration kwargs); one line per single-agent world the project ships
SINGLE_AGENT_ENVS: dict[str, tuple[str, dict]] = {
    "llmagentos/GridWorld4x4-v0": ("llmagentos.envs.gridworld:GridWorld4x4", {"max_episode_steps": None}),
    "llmagentos/WindyGridWorld-v0": ("llmagentos.envs.gridworld:WindyGridWorld", {"max_episode_steps": None}),
    "llmagentos/GridWorld-v0": ("llmagentos.envs.gridworld:GridWorld", {"max_episode_steps": 200}),
    "llmagentos/GoalGrid-v0": ("llmagentos.envs.goal_grid:GoalGrid", {"max_episode_steps": 100}),
    "llmagentos/CartPoleFamily-v0": ("llmagentos.envs.cartpole_family:CartPoleFamily", {"max_episode_steps": 500, "reward_threshold": 475.0}),
    "llmagentos/PointNav-v0": ("llmagentos.envs.pointnav:PointNav", {"max_episode_steps": 100}),
    "llmagentos/ContinualMinAtar-v0": ("llmagentos.envs.continual_minatar:ContinualMinAtar", {"max_episode_steps": None}),
}


def register_all() -> None:
    for env_id, (entry_point, kwargs) in SINGLE_AGENT_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, **kwargs)


register_all()
