"""The configs of the policy-gradient learners (:mod:`llmagentos.learners.policy_gradient`): REINFORCE, A2C and PPO.

Each field is a typed, documented default that works; ``PRESETS`` holds the per-env overrides the kernel applies
before ``--set``, and ``DEFAULT_STEPS`` the budget ``llmagentos train`` runs without ``--steps``. Named presets
(``--preset fast``) live in :mod:`llmagentos.learners.presets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from llmagentos.core.config import check_bounds, param
from llmagentos.core.errors import UsageError
from llmagentos.learners.common.encoders import EncoderName, ImageChannels, encoder_param, image_channels_param
from llmagentos.learners.world_presets import PPO_DEFAULT_STEPS, PPO_PRESETS

@dataclass
class PolicyGradientConfig:
    """Fields every policy-gradient agent shares."""

    num_envs: int = param(1, "parallel environments (a same-step-autoreset vector env when > 1)", ge=1)
    gamma: float = param(0.99, "discount γ", ge=0, le=1)
    learning_rate: float = param(3e-4, "Adam step size (the start value when lr_final is set)", gt=0)
    lr_final: float | None = param(None, "step size reached linearly after schedule_steps (None keeps it constant)")
    schedule_steps: int | None = param(None, "environment steps over which linear schedules move to their final value "
                                             "(None: the run's budget, or the task's in a lifelong stream)")
    hidden: list[int] = param([64, 64], "hidden layer widths of the policy and value networks")
    activation: Literal["tanh", "relu", "elu", "gelu"] = param("tanh", "hidden activation")
    encoder: EncoderName = encoder_param()
    image_channels: ImageChannels = image_channels_param()
    share_trunk: bool = param(False, "one shared trunk with linear policy and value heads (else two separate MLPs)")
    vf_coef: float = param(0.5, "weight c₁ of the value loss", ge=0)
    ent_coef: float = param(0.0, "weight c₂ of the entropy bonus", ge=0)
    max_grad_norm: float | None = param(0.5, "clip the global gradient norm to this (None: no clipping)")
    log_std_init: float = param(0.0, "initial log σ of the Gaussian policy (Box actions)")
    normalize_observations: bool = param(False, "normalise observations by running mean and variance")
    normalize_rewards: bool = param(False, "scale rewards by the running std of the discounted return")
    clip_observations: float = param(10.0, "clip normalised observations to ±this")
    torch_threads: int | None = param(1, "torch intra-op threads (1 is fastest for small networks; None: torch's default)")

    def validate(self) -> None:
        # the fields' declared bounds first: an agent built from a config in code never passes apply_overrides
        check_bounds(self)
        if self.lr_final is not None and self.lr_final < 0:
            raise UsageError(f"lr_final must be >= 0 or None, got {self.lr_final}")
        if self.schedule_steps is not None and self.schedule_steps <= 0:
            raise UsageError(f"schedule_steps must be > 0 or None, got {self.schedule_steps}")
        if not self.hidden or any(w <= 0 for w in self.hidden):
            raise UsageError(f"hidden must be a non-empty list of positive widths, got {self.hidden}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise UsageError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if self.torch_threads is not None and self.torch_threads <= 0:
            raise UsageError(f"torch_threads must be positive or None, got {self.torch_threads}")


@dataclass
class ReinforceConfig(PolicyGradientConfig):
    """REINFORCE: updates after ``episodes_per_update`` complete episodes with their Monte-Carlo returns."""

    learning_rate: float = param(3e-3, "Adam step size (the start value when lr_final is set)", gt=0)
    baseline: bool = param(True, "subtract a learned state-value baseline V(s) from G_t")
    normalize_returns: bool = param(True, "standardise G_t over each update's batch (the baseline then learns the "
                                          "standardised return)")
    episodes_per_update: int = param(1, "complete episodes per gradient step", ge=1)
    vf_coef: float = param(1.0, "weight of the baseline's squared error", ge=0)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "CartPole-v1": {},
        "Acrobot-v1": {"normalize_observations": True},
        "MountainCar-v0": {"normalize_observations": True, "ent_coef": 0.01},
        "Pendulum-v1": {"normalize_observations": True, "gamma": 0.9, "episodes_per_update": 4,
                        "learning_rate": 1e-3},
        "LunarLander-v3": {"episodes_per_update": 4, "learning_rate": 1e-3},
    }
    #: the budget `llmagentos train` runs when no --steps/--episodes is given
    DEFAULT_STEPS: ClassVar[dict[str, int]] = {"CartPole-v1": 100_000, "Acrobot-v1": 300_000,
                                               "MountainCar-v0": 1_000_000, "Pendulum-v1": 500_000,
                                               "LunarLander-v3": 1_000_000}


@dataclass
class A2CConfig(PolicyGradientConfig):
    """Advantage actor-critic: one gradient step per n_steps × num_envs rollout, advantages by GAE(λ)."""

    num_envs: int = param(8, "parallel environments (a same-step-autoreset vector env when > 1)", ge=1)
    n_steps: int = param(5, "steps per env in each rollout", ge=1)
    gae_lambda: float = param(1.0, "λ of GAE (1: n-step returns, 0: one-step TD)", ge=0, le=1)
    learning_rate: float = param(7e-4, "Adam step size (the start value when lr_final is set)", gt=0)
    ent_coef: float = param(0.0, "weight c₂ of the entropy bonus", ge=0)
    normalize_advantages: bool = param(False, "standardise advantages over each rollout")

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "CartPole-v1": {},
        "Acrobot-v1": {"ent_coef": 0.01, "normalize_observations": True},
        "MountainCar-v0": {"ent_coef": 0.01, "normalize_observations": True, "n_steps": 16},
        "Pendulum-v1": {"normalize_observations": True, "normalize_rewards": True, "gamma": 0.9, "n_steps": 8,
                        "gae_lambda": 0.9, "learning_rate": 1e-3, "log_std_init": -0.5},
        "LunarLander-v3": {"gamma": 0.995, "ent_coef": 1e-5, "n_steps": 5, "lr_final": 0.0,
                           "schedule_steps": 1_000_000},
    }
    DEFAULT_STEPS: ClassVar[dict[str, int]] = {"CartPole-v1": 200_000, "Acrobot-v1": 500_000,
                                               "MountainCar-v0": 1_000_000, "Pendulum-v1": 1_000_000,
                                               "LunarLander-v3": 1_000_000}


@dataclass
class PPOConfig(A2CConfig):
    """PPO: clipped surrogate over n_epochs of minibatches from each n_steps × num_envs rollout."""

    num_envs: int = param(8, "parallel environments (a same-step-autoreset vector env when > 1)", ge=1)
    n_steps: int = param(32, "steps per env in each rollout", ge=1)
    batch_size: int = param(128, "minibatch size (n_steps × num_envs must be a multiple of it)")
    n_epochs: int = param(20, "passes over each rollout", ge=1)
    gamma: float = param(0.98, "discount γ", ge=0, le=1)
    gae_lambda: float = param(0.8, "λ of GAE", ge=0, le=1)
    learning_rate: float = param(1e-3, "Adam step size (the start value when lr_final is set)", gt=0)
    clip_range: float = param(0.2, "ε of the clipped surrogate (the start value when clip_range_final is set)", gt=0, lt=1)
    clip_range_final: float | None = param(None, "ε reached linearly after schedule_steps (None keeps it constant)")
    clip_range_vf: float | None = param(None, "clip the value change to ±this around the old value (None: no clipping)")
    target_kl: float | None = param(None, "stop an update's epochs once the approximate KL to the old policy exceeds "
                                          "1.5 × this (None: always run n_epochs)")
    normalize_advantages: bool = param(True, "standardise advantages per minibatch")

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # both anneal to 0 over a horizon of their own (rl-baselines3-zoo's lin_ schedules), set here explicitly
        "CartPole-v1": {"lr_final": 0.0, "clip_range_final": 0.0, "schedule_steps": 100_000},
        "Acrobot-v1": {"normalize_observations": True, "n_steps": 256, "batch_size": 512, "n_epochs": 4,
                       "gamma": 0.99, "gae_lambda": 0.94, "ent_coef": 0.0, "learning_rate": 1e-3,
                       "lr_final": 0.0, "clip_range_final": 0.0, "schedule_steps": 200_000},
        "MountainCar-v0": {"normalize_observations": True, "n_steps": 16, "batch_size": 128, "n_epochs": 4,
                           "gamma": 0.99, "gae_lambda": 0.98, "ent_coef": 0.0, "lr_final": None,
                           "clip_range_final": None, "schedule_steps": 1_000_000},
        "Pendulum-v1": {"num_envs": 4, "n_steps": 256, "batch_size": 128, "n_epochs": 10, "gamma": 0.9,
                        "gae_lambda": 0.95, "learning_rate": 1e-3, "lr_final": None, "clip_range_final": None,
                        "normalize_observations": True, "normalize_rewards": True, "log_std_init": -0.5},
        "LunarLander-v3": {"num_envs": 16, "n_steps": 1024, "batch_size": 64, "n_epochs": 4, "gamma": 0.999,
                           "gae_lambda": 0.98, "ent_coef": 0.01, "learning_rate": 3e-4, "lr_final": None,
                           "clip_range_final": None, "schedule_steps": 1_000_000},
        **PPO_PRESETS,
    }
    DEFAULT_STEPS: ClassVar[dict[str, int]] = {"CartPole-v1": 100_000, "Acrobot-v1": 200_000,
                                               "MountainCar-v0": 1_000_000, "Pendulum-v1": 200_000,
                                               "LunarLander-v3": 1_000_000, **PPO_DEFAULT_STEPS}

    def validate(self) -> None:
        super().validate()
        rollout = self.n_steps * self.num_envs
        if self.batch_size < 1 or rollout % self.batch_size:
            raise UsageError(f"batch_size must divide n_steps × num_envs = {rollout}, got {self.batch_size}")

