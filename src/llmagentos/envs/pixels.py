"""The pixel pipeline: how a screen becomes what a learner reads, chosen from the world and overridable.

Two suites of pixel worlds install from the package index (``pip install 'llmagentos[pixels]'``):

- **MinAtar** (``MinAtar/<Game>-v1``; Young & Tian, 2019): 10×10×C boolean frames, already small and
  Markov enough that no preprocessing is needed; the encoder reads them channel-last as they come (uint8
  in memory) through the MinAtar paper's small CNN (one 3×3 convolution of 16 channels, then a dense layer).
- **The Arcade Learning Environment** (``ALE/<Game>-v5``; ale-py ships the ROMs): 210×160 RGB frames. A
  world of this suite gets Gymnasium's own :class:`~gymnasium.wrappers.AtariPreprocessing` (a frame skip
  of 4 with the max over the last two frames, up to 30 no-op starts, grey-scale, 84×84, uint8) and a
  :class:`~gymnasium.wrappers.FrameStackObservation` of 4 (Mnih et al., 2015), which gives 4×84×84
  channel-first uint8 observations the Nature CNN reads. The ALE's own frame skip is set to 1 for it.
  Sticky actions (v5's ``repeat_action_probability=0.25``, Machado et al., 2018) stay as the id sets them.

Overriding: a run whose ``wrappers`` name ``AtariPreprocessing`` or ``FrameStackObservation`` itself gets
no automatic pipeline (its wrappers are the whole pipeline); the encoder (``encoder``, ``image_channels``)
and, for DQN, the replay memory (``replay``) are learner config fields.
"""

from __future__ import annotations

from typing import Any

#: the wrappers the automatic Atari pipeline applies, in order (Gymnasium's classes with their arguments)
ATARI_WRAPPERS: list[dict[str, Any]] = [
    {"name": "AtariPreprocessing", "args": {"frame_skip": 4, "noop_max": 30, "screen_size": 84,
                                            "terminal_on_life_loss": False, "grayscale_obs": True, "scale_obs": False}},
    {"name": "FrameStackObservation", "args": {"stack_size": 4}},
]
#: wrapper names by which a user takes the Atari pipeline into their own hands
PIPELINE_WRAPPERS = frozenset({"AtariPreprocessing", "FrameStackObservation"})
_ALE_ENTRY_POINT = "ale_py.env:AtariEnv"


def register_ale() -> list[str]:
    """Register the ALE's Gymnasium ids (``ALE/Pong-v5`` ...) when ale-py is installed; the ids added."""
    import gymnasium as gym

    try:
        import ale_py
    except ImportError:
        return []
    before = set(gym.registry)
    gym.register_envs(ale_py)
    return sorted(set(gym.registry) - before)


def is_atari(gym_id: str | None) -> bool:
    """Whether a registered Gymnasium id is an Arcade Learning Environment game."""
    if not gym_id:
        return False
    import gymnasium as gym

    spec = gym.registry.get(gym_id)
    return spec is not None and spec.entry_point == _ALE_ENTRY_POINT


def pixel_pipeline(gym_id: str | None, env_args: dict[str, Any],
                   wrappers: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(env_args, wrappers)`` with the automatic pipeline of the world ``gym_id`` added (see the module's docstring).

    Only ALE games get one, and only when ``wrappers`` names no pipeline wrapper itself."""
    if not is_atari(gym_id) or any(w["name"] in PIPELINE_WRAPPERS for w in wrappers):
        return env_args, wrappers
    return {"frameskip": 1, **env_args}, [dict(w, args=dict(w["args"])) for w in ATARI_WRAPPERS] + list(wrappers)
