"""Policy gradients: REINFORCE (with an optional learned baseline), advantage actor-critic with GAE(λ), and PPO.

Williams (1992), Mnih et al. (2016), Schulman et al. (2016, 2017). Each update rule is a module-level
pure function of tensors (:func:`gae`, :func:`reinforce_loss`, :func:`a2c_loss`, :func:`ppo_loss`) so
that other learners (multi-task sharing, lifelong consolidation) reuse the exact same rule; the agents
only collect data, call them, and step the optimiser.

Networks live in :class:`ActorCritic`: ``trunk`` (shared features; ``nn.Identity`` unless
``share_trunk``), ``policy_head`` (logits, or the Gaussian mean), ``value_head`` (V(s)) and, for Box
actions, ``log_std``. Other layers add terms to every loss (:meth:`~UpdateHooks.add_loss_term`, how EWC,
SI and LwF add their penalties) and watch every optimiser step (:meth:`~UpdateHooks.add_update_hook`).

Schedules (``lr_final``, PPO's ``clip_range_final``) move linearly over ``schedule_steps`` when the user
sets it, else over the budget the kernel announces with :meth:`~PolicyGradientAgent.begin_task` (the run's,
or the task's in a lifelong stream); without a final value or a horizon they hold their start value.

Vector envs: ``act`` takes a batch, ``observe`` a batch transition whose ``next_observation`` holds the
true final observation of finished envs. Advantages bootstrap from V(s_final) after a time-limit
truncation and never past a termination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from llmagentos.core.agent import Agent, Transition
from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.core.schedules import make_schedule
from llmagentos.core.seeding import make_rng, rng_state, set_rng_state
from llmagentos.learners.common.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from llmagentos.learners.common.encoders import (EncoderName, ImageChannels, ObservationAdapter, ObservationEncoder,
                                                  encoder_param, image_channels_param, observation_trunk)
from llmagentos.learners.common.hooks import UpdateHooks
from llmagentos.learners.common.networks import mlp
from llmagentos.learners.common.normalization import ObservationNormalizer, RewardScaler
from llmagentos.learners.common.rollout import EpisodeBuffer, RolloutBuffer
from llmagentos.learners.presets import PPO_DEFAULT_STEPS, PPO_PRESETS

# -- the update rules, written once ----------------------------------------------------------------


def gae(rewards, values, next_values, terminated, dones, gamma: float, lam: float):
    """Generalised advantage estimates and λ-returns for (T, N) arrays or tensors in time order.

    ``next_values[t]`` is V(s_{t+1}) (V(s_final) after a truncation); ``terminated[t]`` = 1 zeroes it;
    ``dones[t]`` = 1 (terminated or truncated) stops the trace at an episode boundary.
    Returns (advantages, returns) with returns = advantages + values.
    """
    advantages = rewards * 0.0
    last = rewards[0] * 0.0
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + gamma * next_values[t] * (1.0 - terminated[t]) - values[t]  # δ_t = r_t + γV(s_{t+1}) − V(s_t)
        last = delta + gamma * lam * (1.0 - dones[t]) * last  # Â_t = δ_t + γλ Â_{t+1}
        advantages[t] = last
    return advantages, advantages + values


def discounted_returns(rewards, gamma: float, bootstrap: float = 0.0) -> np.ndarray:
    """Monte-Carlo returns of one episode, G_t = r_t + γ G_{t+1}, with G_T = ``bootstrap`` (V(s_final) or 0)."""
    returns = np.empty(len(rewards), dtype=np.float32)
    running = float(bootstrap)
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running  # G_t = r_t + γ G_{t+1}
        returns[t] = running
    return returns


def normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean) / (std + ε) over the batch; a batch of one is only centred."""
    if x.numel() < 2:
        return x - x.mean()
    return (x - x.mean()) / (x.std() + eps)


def reinforce_loss(log_prob: torch.Tensor, returns: torch.Tensor, values: torch.Tensor | None = None,
                   entropy: torch.Tensor | None = None, vf_coef: float = 0.5, ent_coef: float = 0.0
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """REINFORCE with an optional learned baseline b(s) = V(s), fitted to the same returns."""
    advantages = returns if values is None else returns - values.detach()
    policy_loss = -(log_prob * advantages).mean()  # −∇J = −E[∇log π(a_t|s_t) (G_t − b(s_t))]
    loss = policy_loss
    info = {"policy_loss": policy_loss.detach()}
    if values is not None:
        value_loss = (returns - values).pow(2).mean()  # (G_t − V(s_t))²
        loss = loss + vf_coef * value_loss
        info["value_loss"] = value_loss.detach()
    if entropy is not None:
        loss = loss - ent_coef * entropy.mean()
        info["entropy"] = entropy.mean().detach()
    return loss, info


def a2c_loss(log_prob: torch.Tensor, values: torch.Tensor, advantages: torch.Tensor, returns: torch.Tensor,
             entropy: torch.Tensor, vf_coef: float = 0.5, ent_coef: float = 0.0
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Advantage actor-critic: policy gradient weighted by Â_t, squared error of V, entropy bonus."""
    policy_loss = -(log_prob * advantages).mean()  # −E[log π(a_t|s_t) Â_t]
    value_loss = (returns - values).pow(2).mean()  # (R_t − V(s_t))², R_t = Â_t + V_old(s_t)
    entropy_mean = entropy.mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy_mean
    return loss, {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(),
                  "entropy": entropy_mean.detach()}


def ppo_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, values: torch.Tensor,
             old_values: torch.Tensor, returns: torch.Tensor, entropy: torch.Tensor | None, clip_range: float,
             clip_range_vf: float | None = None, vf_coef: float = 0.5, ent_coef: float = 0.0, stats: bool = True
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate, (optionally clipped) value loss and entropy bonus, as one loss to minimise.

    ``entropy=None`` drops the bonus (ent_coef 0 needs no entropy graph); ``stats=False`` skips the
    diagnostics (approximate KL, clip fraction) that cost as much as the loss on small networks.
    """
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()  # ρ_t = π_θ(a_t|s_t) / π_θold(a_t|s_t)
    surrogate = torch.min(ratio * advantages, ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * advantages)
    policy_loss = -surrogate.mean()  # L^CLIP = E[min(ρ_t Â_t, clip(ρ_t, 1−ε, 1+ε) Â_t)]
    if clip_range_vf is None:
        value_loss = (returns - values).pow(2).mean()  # (V(s_t) − R_t)²
    else:
        clipped = old_values + (values - old_values).clamp(-clip_range_vf, clip_range_vf)
        value_loss = torch.max((returns - values).pow(2), (returns - clipped).pow(2)).mean()  # max of plain and clipped errors
    loss = policy_loss + vf_coef * value_loss  # L = −L^CLIP + c₁ L^VF − c₂ H
    info: dict[str, torch.Tensor] = {}
    if entropy is not None:
        entropy_mean = entropy.mean()
        loss = loss - ent_coef * entropy_mean
        info["entropy"] = entropy_mean.detach()
    if stats:
        with torch.no_grad():
            info.update(policy_loss=policy_loss.detach(), value_loss=value_loss.detach(),
                        approx_kl=((ratio - 1.0) - log_ratio).mean(),  # KL(π_old‖π) ≈ E[(ρ − 1) − log ρ]
                        clip_fraction=((ratio - 1.0).abs() > clip_range).float().mean())
    return loss, info


# -- configuration ----------------------------------------------------------------------------------


@dataclass
class PolicyGradientConfig:
    """Fields every policy-gradient agent shares."""

    num_envs: int = param(1, "parallel environments (a same-step-autoreset vector env when > 1)")
    gamma: float = param(0.99, "discount γ")
    learning_rate: float = param(3e-4, "Adam step size (the start value when lr_final is set)")
    lr_final: float | None = param(None, "step size reached linearly after schedule_steps (None keeps it constant)")
    schedule_steps: int | None = param(None, "environment steps over which linear schedules move to their final value "
                                             "(None: the run's budget, or the task's in a lifelong stream)")
    hidden: list[int] = param([64, 64], "hidden layer widths of the policy and value networks")
    activation: Literal["tanh", "relu", "elu", "gelu"] = param("tanh", "hidden activation")
    encoder: EncoderName = encoder_param()
    image_channels: ImageChannels = image_channels_param()
    share_trunk: bool = param(False, "one shared trunk with linear policy and value heads (else two separate MLPs)")
    vf_coef: float = param(0.5, "weight c₁ of the value loss")
    ent_coef: float = param(0.0, "weight c₂ of the entropy bonus")
    max_grad_norm: float | None = param(0.5, "clip the global gradient norm to this (None: no clipping)")
    log_std_init: float = param(0.0, "initial log σ of the Gaussian policy (Box actions)")
    normalize_observations: bool = param(False, "normalise observations by running mean and variance")
    normalize_rewards: bool = param(False, "scale rewards by the running std of the discounted return")
    clip_observations: float = param(10.0, "clip normalised observations to ±this")
    torch_threads: int | None = param(1, "torch intra-op threads (1 is fastest for small networks; None: torch's default)")

    def validate(self) -> None:
        if self.num_envs < 1:
            raise UsageError(f"num_envs must be at least 1, got {self.num_envs}")
        if not 0.0 <= self.gamma <= 1.0:
            raise UsageError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.learning_rate <= 0:
            raise UsageError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.lr_final is not None and self.lr_final < 0:
            raise UsageError(f"lr_final must be >= 0 or None, got {self.lr_final}")
        if self.schedule_steps is not None and self.schedule_steps <= 0:
            raise UsageError(f"schedule_steps must be > 0 or None, got {self.schedule_steps}")
        if not self.hidden or any(w <= 0 for w in self.hidden):
            raise UsageError(f"hidden must be a non-empty list of positive widths, got {self.hidden}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise UsageError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if self.vf_coef < 0 or self.ent_coef < 0:
            raise UsageError("vf_coef and ent_coef must be >= 0")
        if self.torch_threads is not None and self.torch_threads <= 0:
            raise UsageError(f"torch_threads must be positive or None, got {self.torch_threads}")


@dataclass
class ReinforceConfig(PolicyGradientConfig):
    """REINFORCE: updates after ``episodes_per_update`` complete episodes with their Monte-Carlo returns."""

    learning_rate: float = param(3e-3, "Adam step size (the start value when lr_final is set)")
    baseline: bool = param(True, "subtract a learned state-value baseline V(s) from G_t")
    normalize_returns: bool = param(True, "standardise G_t over each update's batch (the baseline then learns the "
                                          "standardised return)")
    episodes_per_update: int = param(1, "complete episodes per gradient step")
    vf_coef: float = param(1.0, "weight of the baseline's squared error")

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

    def validate(self) -> None:
        super().validate()
        if self.episodes_per_update < 1:
            raise UsageError(f"episodes_per_update must be at least 1, got {self.episodes_per_update}")


@dataclass
class A2CConfig(PolicyGradientConfig):
    """Advantage actor-critic: one gradient step per n_steps × num_envs rollout, advantages by GAE(λ)."""

    num_envs: int = param(8, "parallel environments (a same-step-autoreset vector env when > 1)")
    n_steps: int = param(5, "steps per env in each rollout")
    gae_lambda: float = param(1.0, "λ of GAE (1: n-step returns, 0: one-step TD)")
    learning_rate: float = param(7e-4, "Adam step size (the start value when lr_final is set)")
    ent_coef: float = param(0.0, "weight c₂ of the entropy bonus")
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

    def validate(self) -> None:
        super().validate()
        if self.n_steps < 1:
            raise UsageError(f"n_steps must be at least 1, got {self.n_steps}")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise UsageError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")


@dataclass
class PPOConfig(A2CConfig):
    """PPO: clipped surrogate over n_epochs of minibatches from each n_steps × num_envs rollout."""

    num_envs: int = param(8, "parallel environments (a same-step-autoreset vector env when > 1)")
    n_steps: int = param(32, "steps per env in each rollout")
    batch_size: int = param(128, "minibatch size (n_steps × num_envs must be a multiple of it)")
    n_epochs: int = param(20, "passes over each rollout")
    gamma: float = param(0.98, "discount γ")
    gae_lambda: float = param(0.8, "λ of GAE")
    learning_rate: float = param(1e-3, "Adam step size (the start value when lr_final is set)")
    clip_range: float = param(0.2, "ε of the clipped surrogate (the start value when clip_range_final is set)")
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
        if self.n_epochs < 1:
            raise UsageError(f"n_epochs must be at least 1, got {self.n_epochs}")
        if not 0.0 < self.clip_range < 1.0:
            raise UsageError(f"clip_range must be in (0, 1), got {self.clip_range}")


# -- networks -----------------------------------------------------------------------------------------


class ActorCritic(nn.Module):
    """π(·|s) and V(s): ``policy_head(trunk(s))`` and ``value_head(trunk(s))``.

    With ``share_trunk`` or image observations the trunk is an MLP, a CNN or an
    :class:`~llmagentos.learners.common.encoders.ObservationEncoder` and both heads are linear; without,
    the trunk only flattens (and one-hot encodes Discrete parts) and each head is its own MLP. The policy is
    a categorical over Discrete actions, a product of categoricals over MultiDiscrete ones, independent
    Bernoullis over MultiBinary ones, or a diagonal Gaussian over Box ones, whose ``log_std`` is a
    state-independent parameter.
    """

    def __init__(self, observation_space: Any, action_space: Any, hidden: list[int], activation: str,
                 share_trunk: bool, log_std_init: float = 0.0, encoder: str = "auto", image_channels: str = "auto") -> None:
        super().__init__()
        from gymnasium import spaces

        self.continuous = isinstance(action_space, spaces.Box)
        self.nvec = tuple(int(n) for n in np.ravel(action_space.nvec)) \
            if isinstance(action_space, spaces.MultiDiscrete) else None
        self.binary = isinstance(action_space, spaces.MultiBinary)
        if self.continuous or self.binary:
            n_out = int(np.prod(action_space.shape))
        else:
            n_out = sum(self.nvec) if self.nvec else int(action_space.n)
        adapter = ObservationAdapter(observation_space, encoder, image_channels, owner="this policy-gradient learner")
        if share_trunk or (adapter.images and encoder != "mlp"):
            self.trunk, features = observation_trunk(adapter, hidden, activation, encoder)
            head_hidden: list[int] = []
        elif adapter.plain:
            self.trunk, features = nn.Flatten(), int(np.prod(observation_space.shape))
            head_hidden = list(hidden)
        else:
            self.trunk = ObservationEncoder(adapter, [], activation, "mlp")  # parameter-free: one-hot and flatten
            features, head_hidden = self.trunk.out_dim, list(hidden)
        # small last-layer gains: an almost uniform initial policy, values near zero (Andrychowicz et al., 2021)
        self.policy_head = mlp(features, n_out, head_hidden, activation, out_gain=0.01)
        self.value_head = mlp(features, 1, head_hidden, activation, out_gain=1.0)
        self.log_std = nn.Parameter(torch.full((n_out,), float(log_std_init))) if self.continuous else None

    def distribution(self, features: torch.Tensor) -> Categorical | DiagGaussian | MultiCategorical | Bernoulli:
        out = self.policy_head(features)
        if self.continuous:
            return DiagGaussian(out, self.log_std)
        if self.nvec:
            return MultiCategorical(out, self.nvec)
        return Bernoulli(out) if self.binary else Categorical(out)

    def value(self, features: torch.Tensor) -> torch.Tensor:
        return self.value_head(features).squeeze(-1)

    def forward(self, observations: torch.Tensor) -> tuple[Any, torch.Tensor]:
        features = self.trunk(observations)
        return self.distribution(features), self.value(features)


class HeadOutputs(nn.Module):
    """One output of an actor-critic as a module of its input: ``policy`` gives π's parameters (logits, or the
    Gaussian mean), ``value`` gives V(s) of shape (B,). Its parameters are the whole network's, named ``net.*``."""

    def __init__(self, net: ActorCritic, output: Literal["policy", "value"]) -> None:
        super().__init__()
        self.net, self.output = net, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.net.trunk(x)
        return self.net.policy_head(features) if self.output == "policy" else self.net.value(features)


_NUMPY_ACTIVATIONS = {nn.Tanh: np.tanh, nn.ReLU: lambda x: np.maximum(x, 0.0)}
_LOG_SQRT_2PI = 0.5 * float(np.log(2.0 * np.pi))


def _numpy_layers(module: nn.Module) -> list | None:
    """(W, b) / activation steps of an MLP as numpy views of its parameters; None for anything else."""
    modules = list(module) if isinstance(module, nn.Sequential) else [module]
    layers: list = []
    for m in modules:
        if isinstance(m, nn.Linear) and m.bias is not None:
            layers.append((m.weight.detach().numpy(), m.bias.detach().numpy()))
        elif type(m) in _NUMPY_ACTIVATIONS:
            layers.append(_NUMPY_ACTIVATIONS[type(m)])
        elif not isinstance(m, (nn.Flatten, nn.Identity)):
            return None
    return layers


def _numpy_forward(layers: list, x: np.ndarray) -> np.ndarray:
    for layer in layers:
        x = x @ layer[0].T + layer[1] if isinstance(layer, tuple) else layer(x)
    return x


def clip_grad_norm(parameters: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale gradients so their global L2 norm is at most ``max_norm`` (as ``nn.utils.clip_grad_norm_``, with one
    norm over the concatenated gradients instead of one per tensor: half the time for many small tensors)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.cat([g.reshape(-1) for g in grads]).norm()
    torch._foreach_mul_(grads, (max_norm / (norm + 1e-6)).clamp(max=1.0))
    return norm


# -- agents ---------------------------------------------------------------------------------------------


class PolicyGradientAgent(UpdateHooks, Agent):
    """What REINFORCE, A2C and PPO share: the network, acting, normalisation, optimiser and checkpoints.

    Attributes: ``net`` (:class:`ActorCritic`), ``optimizer`` (Adam), ``obs_norm`` / ``reward_scaler``
    (or None), ``generator`` (the torch.Generator actions are sampled with), ``rng`` (numpy, shuffles),
    ``steps`` (env transitions observed), ``updates`` (gradient updates made).
    """

    supports_vector_env: ClassVar[bool] = True
    Config = PolicyGradientConfig
    #: whether the value head is evaluated while acting (REINFORCE without a baseline skips it)
    uses_value: ClassVar[bool] = True

    def __init__(self, observation_space: Any, action_space: Any, config: Any = None, seed: int = 0) -> None:
        from gymnasium import spaces

        config = config or self.Config()
        config.validate()
        if not isinstance(action_space, (spaces.Discrete, spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
            raise UsageError(f"{self.algo} needs a Discrete, Box, MultiDiscrete or MultiBinary action space, got "
                             f"{action_space}; wrap the env with a gymnasium ActionWrapper that maps it to one of those")
        self.adapter = ObservationAdapter(observation_space, config.encoder, config.image_channels, owner=self.algo)
        if config.normalize_observations and not self.adapter.plain:
            raise UsageError(f"{self.algo} normalize_observations works on Box vector observations, not on "
                             f"{observation_space}; set normalize_observations=false")
        super().__init__(observation_space, action_space, config, seed)
        if config.torch_threads is not None:
            # two threads on tiny tensors spend more time synchronising than computing (and stall on a busy machine)
            torch.set_num_threads(config.torch_threads)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the global generator
            torch.manual_seed(seed)
            self.net = ActorCritic(observation_space, action_space, config.hidden, config.activation,
                                   config.share_trunk, config.log_std_init, config.encoder, config.image_channels)
        # fused: one kernel for all parameters, the cheapest Adam step for many tiny tensors on a CPU
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.learning_rate, eps=1e-5, fused=True)
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = make_rng(seed)
        self.continuous = self.net.continuous
        #: MultiDiscrete and MultiBinary actions: one integer per component, stored flat
        self.multi_action = self.net.nvec is not None or self.net.binary
        self.obs_shape, self.obs_dtype = self.adapter.shape, self.adapter.dtype
        self.action_shape = (int(np.prod(action_space.shape)),) if self.continuous or self.multi_action else ()
        if self.continuous:
            self.action_low = action_space.low.astype(np.float32)
            self.action_high = action_space.high.astype(np.float32)
        if self.multi_action:
            self.action_start = np.ravel(getattr(action_space, "start", 0))
        self.num_envs = config.num_envs
        self.obs_norm = (ObservationNormalizer(self.obs_shape, config.clip_observations)
                         if config.normalize_observations else None)
        self.reward_scaler = RewardScaler(self.num_envs, config.gamma) if config.normalize_rewards else None
        # schedules run from step _schedule_origin over _schedule_horizon steps (None: no horizon known yet)
        self._schedule_origin = 0
        self._schedule_horizon: int | None = config.schedule_steps
        self.steps = 0
        self.updates = 0
        self.gradient_steps = 0
        self._zero = torch.zeros(())
        self._pending: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._np_key: tuple | None = None
        self._np_params: list[torch.Tensor] = []
        self._np_net: tuple | None = None
        self._init_hooks()

    # -- hooks for other learners ------------------------------------------------------------------
    def extra_loss(self) -> torch.Tensor:
        """The terms added to every loss before backpropagation (``_zero`` itself when none is registered)."""
        return self._extra_terms(self._zero)

    # -- acting -------------------------------------------------------------------------------------
    def _prepare(self, observations: np.ndarray, update: bool) -> np.ndarray:
        obs = np.asarray(observations, dtype=self.obs_dtype)
        if self.obs_norm is not None:
            obs = self.obs_norm(obs, update=update)
        return obs

    def _env_action(self, actions: np.ndarray) -> np.ndarray:
        # the Gaussian sample is stored unclipped (its log-prob is exact); only the env sees the clipped action
        if self.multi_action:
            return (actions + self.action_start).reshape((len(actions),) + self.action_space.shape)
        return np.clip(actions, self.action_low, self.action_high) if self.continuous else actions

    def act(self, observation: Any, explore: bool = True) -> Any:
        raw = self.adapter(observation)
        single = raw.ndim == len(self.obs_shape)
        batch = raw[None] if single else raw
        obs = self._prepare(batch, update=explore)
        fast = self._numpy_net()
        if fast is not None:
            actions = self._act_numpy(fast, obs, explore)
        else:
            actions = self._act_torch(obs, explore)
        env_actions = self._env_action(actions)
        if single:
            return env_actions[0] if self.continuous or self.multi_action else int(env_actions[0])
        return env_actions

    def _act_torch(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        with torch.no_grad():
            features = self.net.trunk(torch.from_numpy(obs))
            dist = self.net.distribution(features)
            if not explore:
                return dist.mode().numpy()
            sample = dist.sample(self.generator)
            values = self.net.value(features).numpy() if self.uses_value else np.zeros(len(obs), np.float32)
            self._pending = (obs, sample.numpy(), dist.log_prob(sample).numpy(), values)
            return sample.numpy()

    # Acting calls the network once per env step on a handful of observations, where torch's per-op
    # overhead is ~10x the arithmetic. For MLP networks on Box vectors with a categorical or Gaussian policy
    # the agent acts through numpy views of the parameters' own storage (always current, no copies);
    # randomness still comes from self.generator.
    def _numpy_net(self) -> tuple | None:
        net = self.net
        key = (id(net), id(net.trunk), id(net.policy_head), id(net.value_head), *(p.data_ptr() for p in self._np_params))
        if key != self._np_key:
            self._np_params = list(net.parameters())
            self._np_key = (id(net), id(net.trunk), id(net.policy_head), id(net.value_head),
                            *(p.data_ptr() for p in self._np_params))
            self._np_net = None
            layers = [_numpy_layers(m) for m in (self.net.trunk, self.net.policy_head, self.net.value_head)]
            if all(layer is not None for layer in layers) and not self.multi_action:
                log_std = self.net.log_std.detach().numpy() if self.continuous else None
                self._np_net = (layers[0], layers[1], layers[2], log_std)
        return self._np_net

    def _act_numpy(self, net: tuple, obs: np.ndarray, explore: bool) -> np.ndarray:
        trunk, policy, value, log_std = net
        features = _numpy_forward(trunk, obs.reshape(len(obs), -1))
        out = _numpy_forward(policy, features)
        if not explore:
            return out if self.continuous else out.argmax(-1)
        if self.continuous:
            noise = torch.randn(out.shape, generator=self.generator).numpy()
            std = np.exp(log_std)
            actions = out + std * noise  # a = μ + σ ε, ε ~ N(0, I)
            log_prob = (-0.5 * noise**2 - log_std - _LOG_SQRT_2PI).sum(-1, dtype=np.float32)
        else:
            z = out - out.max(-1, keepdims=True)
            e = np.exp(z)
            total = e.sum(-1, keepdims=True)
            u = torch.rand((len(out), 1), generator=self.generator).numpy()
            # inverse CDF, as Categorical.sample: the first action whose cumulative probability exceeds u
            actions = np.minimum((e.cumsum(-1) < u * total).sum(-1), out.shape[-1] - 1)
            log_prob = np.take_along_axis(z - np.log(total), actions[:, None], -1)[:, 0]
        values = _numpy_forward(value, features)[:, 0] if self.uses_value else np.zeros(len(obs), np.float32)
        self._pending = (obs, actions, log_prob.astype(np.float32), values.astype(np.float32))
        return actions

    def _values(self, observations: np.ndarray) -> np.ndarray:
        """V(s) of raw observations under the current normalisation (no statistics update)."""
        with torch.no_grad():
            return self.net.value(self.net.trunk(torch.from_numpy(self._prepare(observations, update=False)))).numpy()

    def _unpack(self, transition: Transition) -> tuple:
        """The batch form of a transition and the act-time (obs, action, log π, V) that produced it."""
        n = np.asarray(transition.terminated).size
        reward = np.asarray(transition.reward, dtype=np.float64).reshape(n)
        terminated = np.asarray(transition.terminated, dtype=bool).reshape(n)
        truncated = np.asarray(transition.truncated, dtype=bool).reshape(n)
        next_obs = self.adapter(transition.next_observation).reshape((n,) + self.obs_shape)
        pending, self._pending = self._pending, None
        if pending is None or len(pending[0]) != n:
            # a transition this agent did not act for: evaluate its action under the current policy
            obs = self._prepare(self.adapter(transition.observation).reshape((n,) + self.obs_shape), True)
            pending = self._evaluate_actions(obs, self._stored_actions(transition.action, n))
        else:
            mine = self._env_action(pending[1]).reshape(n, -1) == np.asarray(transition.action).reshape(n, -1)
            if not mine.all():  # some rows acted for by another policy (π-reuse): their log π is re-evaluated
                own = mine.all(axis=1).reshape((n,) + (1,) * len(self.action_shape))
                taken = self._stored_actions(transition.action, n)
                pending = self._evaluate_actions(pending[0], np.where(own, pending[1], taken).astype(pending[1].dtype))
        dones = terminated | truncated
        if self.reward_scaler is not None:
            reward = self.reward_scaler(reward, dones)
        return pending, reward.astype(np.float32), terminated, truncated, dones, next_obs

    def _stored_actions(self, env_actions: Any, n: int) -> np.ndarray:
        """Actions as the env took them, in the form the buffers store (multi-discrete counted from 0)."""
        actions = np.asarray(env_actions).reshape((n,) + self.action_shape)
        return actions - self.action_start if self.multi_action else actions

    def _evaluate_actions(self, obs: np.ndarray, actions: np.ndarray) -> tuple:
        """(obs, actions, log π(a|s), V(s)) of prepared observations and given actions under the current policy."""
        with torch.no_grad():
            dist, values = self.net(torch.from_numpy(obs))
            log_prob = dist.log_prob(torch.as_tensor(actions)).numpy()
        return obs, actions, log_prob, values.numpy()

    # -- optimisation ---------------------------------------------------------------------------------
    def _step(self, loss: torch.Tensor) -> None:
        extra = self.extra_loss()
        if extra is not self._zero:
            loss = loss + extra
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm is not None:
            clip_grad_norm([p for group in self.optimizer.param_groups for p in group["params"]],
                           self.config.max_grad_norm)
        self.optimizer.step()
        self._after_update()
        self.gradient_steps += 1

    def _scheduled(self, start: float, final: float | None) -> float:
        """A linear schedule's value now: ``start`` moving to ``final`` over the horizon (held without one)."""
        if final is None or self._schedule_horizon is None:
            return start
        return make_schedule("linear", start, final, self._schedule_horizon)(self.steps - self._schedule_origin)

    def current_learning_rate(self) -> float:
        return self._scheduled(self.config.learning_rate, self.config.lr_final)

    def _set_lr(self) -> float:
        lr = self.current_learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_metrics(self) -> dict[str, float]:
        metrics = {"learning_rate": self.current_learning_rate(), "updates": float(self.updates),
                   "gradient_steps": float(self.gradient_steps)}
        if self.continuous:
            metrics["std"] = float(self.net.log_std.detach().exp().mean())
        return metrics

    # -- task boundaries ----------------------------------------------------------------------------------
    def begin_task(self, task: Any = None, budget: int | None = None, restart_schedules: bool = True,
                   clear_memory: bool = False) -> None:
        """Restarting starts the step-size and clip schedules again here, over ``schedule_steps`` or else ``budget``;
        continuing keeps their origin and stretches a budget-derived horizon to the end of this task."""
        fixed = self.config.schedule_steps
        if restart_schedules:
            self._schedule_origin = self.steps
            self._schedule_horizon = fixed if fixed is not None else budget
        elif fixed is None and budget is not None:
            self._schedule_horizon = self.steps - self._schedule_origin + int(budget)

    # -- what consolidation and diagnostics use ----------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """θ by role: ``trunk`` (shared features; empty without ``share_trunk``), ``heads`` (the policy head and
        log σ), ``value`` (the value head)."""
        heads = list(self.net.policy_head.parameters()) + ([self.net.log_std] if self.continuous else [])
        return {"trunk": list(self.net.trunk.parameters()), "heads": heads, "value": list(self.net.value_head.parameters())}

    def output_module(self) -> nn.Module:
        """π's parameters (logits, or the Gaussian mean) as a module of :meth:`prepare_observations`' tensors; its
        parameters are the whole network's, value head included."""
        return HeadOutputs(self.net, "policy")

    def value_module(self) -> nn.Module:
        """V(s) as a module of :meth:`prepare_observations`' tensors (parameter names as :meth:`output_module`'s)."""
        return HeadOutputs(self.net, "value")

    @property
    def discrete_outputs(self) -> bool:
        return not self.continuous

    def prepare_observations(self, observations: Any) -> torch.Tensor:
        """The network's input for a batch of raw observations: normalised, without updating the statistics."""
        return torch.from_numpy(self._prepare(np.asarray(observations, dtype=np.float32), update=False))

    def weights_changed(self) -> None:
        """Nothing derives from the weights but the numpy acting path, which reads them in place."""

    def _is_head(self, key: str) -> bool:
        """Whether a state-dict key belongs to the output layers: the last policy and value layers and log σ."""
        heads = tuple(f"{h}.{len(getattr(self.net, h)) - 1}." for h in ("policy_head", "value_head")) + ("log_std",)
        return key.startswith(heads)

    def weights(self, trunk_only: bool = False) -> dict[str, Any]:
        """The network's weights (``trunk_only``: without the output layers) and, with ``normalize_observations``,
        the observation statistics they were trained with (``obs_norm.mean/var/count``)."""
        out: dict[str, Any] = {k: v.detach().clone() for k, v in self.net.state_dict().items()
                               if not (trunk_only and self._is_head(k))}
        if self.obs_norm is not None:
            stats = self.obs_norm.state_dict()
            out.update({f"obs_norm.{k}": np.array(v, dtype=np.float64) for k, v in stats.items()})
        return out

    def load_weights(self, weights: dict[str, Any], trunk_only: bool = False) -> None:
        """Load :meth:`weights` (``trunk_only``: the current output layers stay); the observation statistics come too."""
        merged = self.net.state_dict()
        merged.update({k: v for k, v in weights.items() if not k.startswith("obs_norm.")
                       and not (trunk_only and self._is_head(k))})
        self.net.load_state_dict(merged)
        if self.obs_norm is not None and "obs_norm.mean" in weights:
            self.obs_norm.load_state_dict({k: np.asarray(weights[f"obs_norm.{k}"]) for k in ("mean", "var", "count")})

    # -- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "obs_norm": self.obs_norm.state_dict() if self.obs_norm is not None else None,
                "reward_scaler": self.reward_scaler.state_dict() if self.reward_scaler is not None else None,
                "steps": self.steps, "updates": self.updates, "gradient_steps": self.gradient_steps,
                "schedule": {"origin": self._schedule_origin, "horizon": self._schedule_horizon},
                "rng": rng_state(self.rng), "torch_rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.net.load_state_dict(state["net"])
        except RuntimeError as err:
            raise UsageError(f"checkpoint network does not fit this {self.algo} agent ({str(err).splitlines()[0]})") from None
        self.optimizer.load_state_dict(state["optimizer"])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])
        if self.reward_scaler is not None:
            self.reward_scaler.load_state_dict(state["reward_scaler"])
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self.gradient_steps = int(state["gradient_steps"])
        schedule = state.get("schedule") or {"origin": 0, "horizon": self.config.schedule_steps}
        self._schedule_origin = int(schedule["origin"])
        self._schedule_horizon = None if schedule["horizon"] is None else int(schedule["horizon"])
        set_rng_state(self.rng, state["rng"])
        self.generator.set_state(torch.as_tensor(state["torch_rng"], dtype=torch.uint8))
        self._pending = None


class Reinforce(PolicyGradientAgent):
    """REINFORCE (Williams, 1992): ∇J = E[Σ_t ∇log π(a_t|s_t) (G_t − b(s_t))] from complete episodes."""

    algo = "reinforce"
    Config = ReinforceConfig

    def __init__(self, observation_space: Any, action_space: Any, config: ReinforceConfig | None = None,
                 seed: int = 0) -> None:
        super().__init__(observation_space, action_space, config, seed)
        self.uses_value = self.config.baseline
        self.episodes = EpisodeBuffer(self.num_envs, self.obs_dtype)
        # (mean, scale) of the returns the last update standardised: the baseline learns G in those units
        self._return_stats = (0.0, 1.0)
        self._last_next_obs: np.ndarray | None = None

    def observe(self, transition: Transition) -> dict[str, float]:
        (obs, actions, _, _), reward, terminated, truncated, dones, next_obs = self._unpack(transition)
        self.episodes.add(obs, actions, reward, terminated, truncated, next_obs)
        self._last_next_obs = next_obs
        self.steps += len(reward)
        if len(self.episodes.complete) < self.config.episodes_per_update:
            return {}
        return self.update(self.episodes.take())

    def end_task(self) -> dict[str, float]:
        """Unfinished episodes end here as if cut by a time limit (bootstrapped from V of their last state) and
        are learned from with any finished ones, so that no episode joins two tasks."""
        if self._last_next_obs is not None:
            self.episodes.cut(self._last_next_obs)
        self._last_next_obs = None
        episodes = self.episodes.take()
        return self.update(episodes) if episodes else {}

    def truncation_value(self, final_observation: np.ndarray) -> float:
        """G_T after a time limit: V(s_final) on the normalised observation, in the units of the raw returns."""
        value = float(self._values(np.asarray(final_observation, dtype=np.float32)[None])[0])
        mean, scale = self._return_stats if self.config.normalize_returns else (0.0, 1.0)
        return value * scale + mean  # V learned (G − μ)/σ of the last update's returns: G ≈ σ V + μ

    def update(self, episodes: list[dict[str, Any]]) -> dict[str, float]:
        cfg = self.config
        returns = []
        for ep in episodes:
            bootstrap = 0.0
            if ep["truncated"] and cfg.baseline:  # a time limit is not the end of the task: G_T = V(s_final)
                bootstrap = self.truncation_value(ep["final_observation"])
            returns.append(discounted_returns(ep["rewards"], cfg.gamma, bootstrap))
        obs = torch.from_numpy(np.concatenate([ep["observations"] for ep in episodes]))
        actions = torch.from_numpy(np.concatenate([ep["actions"] for ep in episodes]))
        g = torch.from_numpy(np.concatenate(returns))
        if cfg.normalize_returns:
            self._return_stats = (float(g.mean()), float(g.std()) + 1e-8 if g.numel() > 1 else 1.0)
            g = normalize(g)
        lr = self._set_lr()
        dist, values = self.net(obs)
        loss, info = reinforce_loss(dist.log_prob(actions), g, values if cfg.baseline else None,
                                    dist.entropy(), cfg.vf_coef, cfg.ent_coef)
        self._step(loss)
        self.updates += 1
        errors = (g - values.detach()) if cfg.baseline else g
        return {**{k: float(v) for k, v in info.items()}, "loss": float(loss), "td_error": float(errors.abs().mean()),
                "learning_rate": lr}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "episodes": self.episodes.state_dict(), "return_stats": list(self._return_stats),
                **({"last_next_obs": self._last_next_obs} if self._last_next_obs is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.episodes.load_state_dict(state["episodes"])
        mean, scale = state.get("return_stats", (0.0, 1.0))
        self._return_stats = (float(mean), float(scale))
        last = state.get("last_next_obs")
        self._last_next_obs = None if last is None else np.array(last, dtype=np.float32)


class RolloutAgent(PolicyGradientAgent):
    """Collects n_steps per env into a :class:`RolloutBuffer`, computes GAE(λ), then calls :meth:`update`."""

    def __init__(self, observation_space: Any, action_space: Any, config: Any = None, seed: int = 0) -> None:
        super().__init__(observation_space, action_space, config, seed)
        self.buffer = RolloutBuffer(self.config.n_steps, self.num_envs, self.obs_shape, self.action_shape,
                                    np.float32 if self.continuous else np.int64, self.obs_dtype)
        self._last_next_obs: np.ndarray | None = None

    def observe(self, transition: Transition) -> dict[str, float]:
        (obs, actions, log_prob, values), reward, terminated, truncated, dones, next_obs = self._unpack(transition)
        if len(reward) != self.num_envs:
            raise UsageError(f"{self.algo} was configured for num_envs={self.num_envs} but got a batch of {len(reward)}")
        trunc_values = np.zeros(self.num_envs, dtype=np.float32)
        cut = truncated & ~terminated
        if cut.any():
            trunc_values[cut] = self._values(next_obs[cut])  # V(s_final): bootstrap past the time limit
        self.buffer.add(obs, actions, log_prob, values, reward, terminated, dones, trunc_values)
        self._last_next_obs = next_obs
        self.steps += self.num_envs
        if not self.buffer.full:
            return {}
        return self._learn(next_obs)

    def end_task(self) -> dict[str, float]:
        """An unfinished rollout is learned from now, its last step bootstrapped from V of the task's last
        state, so that no advantage links two tasks."""
        last, self._last_next_obs = self._last_next_obs, None
        return self._learn(last) if self.buffer.pos > 0 and last is not None else {}

    def _learn(self, next_obs: np.ndarray) -> dict[str, float]:
        """GAE over the rows collected so far (V(``next_obs``) after the last), one update, an empty buffer."""
        buf, rows = self.buffer, self.buffer.pos
        values, rewards, terminated, dones = buf.values[:rows], buf.rewards[:rows], buf.terminated[:rows], buf.dones[:rows]
        next_values = buf.next_values(self._values(next_obs))
        advantages, returns = gae(rewards, values, next_values, terminated, dones, self.config.gamma, self.config.gae_lambda)
        td_error = rewards + self.config.gamma * next_values * (1.0 - terminated) - values  # δ_t
        metrics = self.update(advantages, returns)
        buf.reset()
        self.updates += 1
        return {**metrics, "td_error": float(np.abs(td_error).mean())}

    def update(self, advantages: np.ndarray, returns: np.ndarray) -> dict[str, float]:
        raise NotImplementedError("subclasses define their update")

    def _flat(self, advantages: np.ndarray, returns: np.ndarray) -> dict[str, torch.Tensor]:
        """The rollout's filled rows as flat (rows·num_envs, ...) tensors sharing the buffer's memory."""
        buf = self.buffer
        size = buf.pos * self.num_envs
        return {"obs": torch.from_numpy(buf.observations[:buf.pos].reshape((size,) + self.obs_shape)),
                "actions": torch.from_numpy(buf.actions[:buf.pos].reshape((size,) + self.action_shape)),
                "log_probs": torch.from_numpy(buf.log_probs[:buf.pos].reshape(size)),
                "values": torch.from_numpy(buf.values[:buf.pos].reshape(size)),
                "advantages": torch.from_numpy(np.ascontiguousarray(advantages, dtype=np.float32).reshape(size)),
                "returns": torch.from_numpy(np.ascontiguousarray(returns, dtype=np.float32).reshape(size))}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": self.buffer.state_dict(),
                **({"last_next_obs": self._last_next_obs} if self._last_next_obs is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
        last = state.get("last_next_obs")
        self._last_next_obs = None if last is None else np.array(last, dtype=np.float32)


class A2C(RolloutAgent):
    """Advantage actor-critic (synchronous A3C): one gradient step per rollout, advantages by GAE(λ)."""

    algo = "a2c"
    Config = A2CConfig

    def update(self, advantages: np.ndarray, returns: np.ndarray) -> dict[str, float]:
        b = self._flat(advantages, returns)
        adv = normalize(b["advantages"]) if self.config.normalize_advantages else b["advantages"]
        lr = self._set_lr()
        dist, values = self.net(b["obs"])
        loss, info = a2c_loss(dist.log_prob(b["actions"]), values, adv, b["returns"], dist.entropy(),
                              self.config.vf_coef, self.config.ent_coef)
        self._step(loss)
        return {**{k: float(v) for k, v in info.items()}, "loss": float(loss.detach()), "learning_rate": lr}


class PPO(RolloutAgent):
    """Proximal policy optimisation with the clipped surrogate (Schulman et al., 2017)."""

    algo = "ppo"
    Config = PPOConfig

    def __init__(self, observation_space: Any, action_space: Any, config: PPOConfig | None = None, seed: int = 0) -> None:
        super().__init__(observation_space, action_space, config, seed)

    def current_clip_range(self) -> float:
        return self._scheduled(self.config.clip_range, self.config.clip_range_final)

    def train_metrics(self) -> dict[str, float]:
        return {**super().train_metrics(), "clip_range": self.current_clip_range()}

    def update(self, advantages: np.ndarray, returns: np.ndarray) -> dict[str, float]:
        cfg = self.config
        b = self._flat(advantages, returns)
        size = len(b["returns"])
        lr = self._set_lr()
        clip = max(self.current_clip_range(), 1e-8)  # ε > 0 even at the schedule's end keeps the ratio finite
        full_batch = cfg.batch_size == size
        if full_batch and cfg.normalize_advantages:  # the same batch every epoch: normalise once
            b["advantages"] = normalize(b["advantages"])
        info: dict[str, torch.Tensor] = {}
        stop = False
        for epoch in range(cfg.n_epochs):
            order = None if full_batch else torch.from_numpy(self.rng.permutation(size))
            for start in range(0, size, cfg.batch_size):
                mb = b if order is None else {k: v[order[start:start + cfg.batch_size]] for k, v in b.items()}
                adv = normalize(mb["advantages"]) if cfg.normalize_advantages and not full_batch else mb["advantages"]
                last = epoch == cfg.n_epochs - 1 and start + cfg.batch_size >= size
                features = self.net.trunk(mb["obs"])
                dist = self.net.distribution(features)
                entropy = dist.entropy() if cfg.ent_coef > 0 else None
                loss, info = ppo_loss(dist.log_prob(mb["actions"]), mb["log_probs"], adv, self.net.value(features),
                                      mb["values"], mb["returns"], entropy, clip, cfg.clip_range_vf, cfg.vf_coef,
                                      cfg.ent_coef, stats=last or cfg.target_kl is not None)
                if cfg.target_kl is not None and float(info["approx_kl"]) > 1.5 * cfg.target_kl:
                    stop = True  # the policy has moved far enough from the one that collected the data
                    break
                self._step(loss)
            if stop:
                break
        if "entropy" not in info:
            with torch.no_grad():
                info["entropy"] = self.net(b["obs"])[0].entropy().mean()
        return {**{k: float(v) for k, v in info.items()}, "loss": float(loss.detach()), "learning_rate": lr, "clip_range": clip}
