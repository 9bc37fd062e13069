"""Deep Q-Network (Mnih et al., 2015), with Double DQN, dueling heads and n-step returns as options.

DQN in its seven steps, each one place below:

1. act ε-greedily with respect to Q(s, ·; θ), ε following a linear schedule      (:meth:`DQN.act`)
2. store (s, a, r, s', terminated) in the replay memory D                          (:meth:`DQN.observe`)
3. sample a minibatch uniformly from D                                              (:meth:`DQN.update`)
4. y = r + γ max_a' Q(s', a'; θ⁻), no bootstrap past a terminal s' but a full one
   past a time-limit truncation                                                     (:func:`dqn_target`)
5. minimise the squared or Huber error between Q(s, a; θ) and y                    (:func:`dqn_loss`)
6. take a gradient step on θ (with optional gradient clipping)                     (:meth:`DQN.update`)
7. every C updates copy θ into θ⁻ (or move θ⁻ toward θ by Polyak averaging)        (:meth:`DQN.sync_target`)

The loss is a module-level function so that multi-task, transfer and lifelong learners reuse the
rule instead of copying it; :meth:`DQN.extra_loss` lets a subclass add a penalty (EWC) to it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmagentos.core.agent import Agent, Transition
from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.core.schedules import linear, make_schedule
from llmagentos.core.seeding import make_rng, rng_state, set_rng_state
from llmagentos.learners.common.buffers import ReplayBatch
from llmagentos.learners.common.encoders import (EncoderName, ImageChannels, ObservationAdapter, encoder_param,
                                                  image_channels_param, observation_trunk)
from llmagentos.learners.common.fast_mlp import NumpyMLP, numpy_forward
from llmagentos.learners.common.frame_replay import make_replay
from llmagentos.learners.common.hooks import UpdateHooks
from llmagentos.learners.common.networks import mlp, orthogonal_init, sequential_forward as _sequential
from llmagentos.learners.world_presets import CLASSIC_DQN_PRESETS, DQN_DEFAULT_STEPS, DQN_PRESETS
from llmagentos.learners.registry import RegisteredName


@dataclass
class DQNConfig:
    """Hyperparameters of :class:`DQN`; the defaults (tuned on CartPole-v1, 50k-step budget) are its CartPole preset."""

    learning_rate: float = param(1e-3, "Adam step size", gt=0)
    learning_rate_final: float | None = param(5e-5, "final step size of a linear decay (None keeps it constant)")
    lr_decay_steps: int = param(50_000, "environment steps over which the step size decays to its final value", gt=0)
    gamma: float = param(0.995, "discount γ", ge=0, le=1)
    buffer_size: int = param(50_000, "capacity of the replay memory D, in transitions", gt=0)
    batch_size: int = param(256, "transitions per minibatch", gt=0)
    learning_starts: int = param(1_000, "environment steps of pure collection before the first update", ge=0)
    train_freq: int = param(4, "environment steps between two rounds of updates", gt=0)
    gradient_steps: int = param(1, "gradient steps per round of updates", gt=0)
    target_update_interval: int = param(100, "gradient steps between two target syncs θ⁻ ← θ (or Polyak moves)", gt=0)
    tau: float = param(1.0, "target sync rate: 1 copies θ into θ⁻, τ < 1 does θ⁻ ← τθ + (1 − τ)θ⁻ (Polyak)", gt=0, le=1)
    epsilon_start: float = param(1.0, "ε of ε-greedy exploration at step 0", ge=0, le=1)
    epsilon_final: float = param(0.02, "ε after the exploration phase", ge=0, le=1)
    exploration_steps: int = param(8_000, "environment steps over which ε falls linearly from start to final", gt=0)
    double: bool = param(True, "Double DQN: the online network picks a*, the target network values it")
    dueling: bool = param(False, "dueling head: Q(s,a) = V(s) + A(s,a) − mean_a' A(s,a')")
    n_step: int = param(8, "rewards summed in each target (n-step returns)", gt=0)
    loss: Literal["huber", "mse"] = param("huber", "TD error penalty: Huber (smooth L1) or squared")
    max_grad_norm: float | None = param(10.0, "clip the gradient's global L2 norm to this (None: no clipping)")
    hidden: list[int] = param([128, 128], "widths of the Q-network's hidden layers (the trunk)")
    activation: Literal["relu", "tanh", "elu", "gelu"] = param("relu", "activation of the hidden layers")
    encoder: EncoderName = encoder_param()
    image_channels: ImageChannels = image_channels_param()
    replay: Literal["auto", "plain", "frames"] = param("auto", "replay memory: frames stores each uint8 frame once "
                                                               "(auto: for image observations), plain stores s and s' whole")
    num_envs: int = param(1, "parallel environments (a vector env when > 1)", gt=0)
    torch_threads: int | None = param(1, "torch intra-op threads (1 is fastest for small networks; None: torch's default)")

    #: how check_bounds words a field outside its bounds: "dqn batch_size must be positive, got 0"
    BOUNDS_PREFIX: ClassVar[str] = "dqn "
    BOUNDS_POSITIVE: ClassVar[str] = "positive"
    #: per-env overrides applied before --set (kernel.run.make_config); the CartPole preset is the defaults
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"CartPole-v1": {}, **CLASSIC_DQN_PRESETS, **DQN_PRESETS}
    #: step budget the kernel uses when neither --steps nor --episodes is given
    DEFAULT_STEPS: ClassVar[dict[str, int]] = {"CartPole-v1": 50_000, "Acrobot-v1": 100_000,
                                               "MountainCar-v0": 120_000, "LunarLander-v3": 100_000, **DQN_DEFAULT_STEPS}

    def validate(self) -> None:
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise UsageError(f"dqn max_grad_norm must be positive or None, got {self.max_grad_norm}")
        if any(w <= 0 for w in self.hidden):
            raise UsageError(f"dqn hidden widths must be positive, got {self.hidden}")
        if self.torch_threads is not None and self.torch_threads <= 0:
            raise UsageError(f"dqn torch_threads must be positive or None, got {self.torch_threads}")


# -- the network ------------------------------------------------------------------------------------

class DuelingHead(nn.Module):
    """Q(s, a) = V(s) + A(s, a) − mean_a' A(s, a') (Wang et al., 2016)."""

    def __init__(self, width: int, n_actions: int) -> None:
        super().__init__()
        self.value = orthogonal_init(nn.Linear(width, 1), 1.0)
        self.advantage = orthogonal_init(nn.Linear(width, n_actions), 1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        a = self.advantage(features)
        return self.value(features) + a - a.mean(dim=1, keepdim=True)


class QNetwork(nn.Module):
    """Q(s, ·; θ) = head(trunk(s)).

    ``trunk`` maps an observation to features (an MLP, a CNN for images, or an
    :class:`~llmagentos.learners.common.encoders.ObservationEncoder` for Dict, Tuple and multi-part
    observations): the part a transfer learner copies between tasks. ``head`` maps features to one value
    per action (a ``Linear``, or a :class:`DuelingHead`). Discrete observations are one-hot encoded first.
    """

    def __init__(self, observation_space: Any, n_actions: int, hidden: list[int], activation: str = "relu",
                 dueling: bool = False, encoder: str = "auto", image_channels: str = "auto") -> None:
        from gymnasium import spaces

        super().__init__()
        self.one_hot = int(observation_space.n) if isinstance(observation_space, spaces.Discrete) else 0
        adapter = ObservationAdapter(observation_space, encoder, image_channels, owner="dqn")
        #: the trunk reads the stored observation itself (a CNN or an ObservationEncoder), not a flat float vector
        self.direct = not adapter.plain and not self.one_hot
        if self.one_hot:
            self.trunk, width = mlp(self.one_hot, None, hidden, activation), (hidden[-1] if hidden else self.one_hot)
        else:
            self.trunk, width = observation_trunk(adapter, hidden, activation, encoder)
        self.head: nn.Module = DuelingHead(width, n_actions) if dueling else orthogonal_init(nn.Linear(width, n_actions), 1.0)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        if self.one_hot:
            x = F.one_hot(obs.long(), self.one_hot).float()
        elif self.direct:
            return self.trunk(obs)
        else:
            x = obs.reshape(obs.shape[0], -1).float()
        return _sequential(self.trunk, x)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.features(obs)
        head = self.head
        if type(head) is nn.Linear and not head._forward_hooks:
            return F.linear(features, head.weight, head.bias)
        return head(features)


# -- the update rule --------------------------------------------------------------------------------

def dqn_target(q_net: nn.Module, target_net: nn.Module, batch: ReplayBatch, gamma: float, double: bool = False) -> torch.Tensor:
    """TD targets y of a minibatch of torch tensors (no gradient).

    ``batch.terminated`` zeroes the bootstrap (s' is terminal); a truncated row is stored with
    terminated = 0 and so bootstraps from s'. ``batch.n_steps`` is the n of each row's n-step return.
    """
    with torch.no_grad():
        q_next = target_net(batch.next_obs)
        if double:
            # Double DQN: a* = argmax_a' Q(s', a'; θ), valued by θ⁻ (van Hasselt et al., 2016)
            v_next = q_next.gather(1, q_net(batch.next_obs).argmax(dim=1, keepdim=True)).squeeze(1)
        else:
            v_next = q_next.max(dim=1).values
        # y = r + γ^n (1 − terminated) max_a' Q'(s', a'; θ⁻)
        return batch.reward + torch.pow(gamma, batch.n_steps) * (1.0 - batch.terminated) * v_next


def dqn_loss(q_net: nn.Module, target_net: nn.Module, batch: ReplayBatch, gamma: float, double: bool = False,
             huber: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, Q(s, a; θ)) of a minibatch: mean Huber (or squared) error between Q(s, a; θ) and :func:`dqn_target`."""
    q_sa = q_net(batch.obs).gather(1, batch.action.long().view(-1, 1)).squeeze(1)
    y = dqn_target(q_net, target_net, batch, gamma, double)
    loss = F.smooth_l1_loss(q_sa, y) if huber else F.mse_loss(q_sa, y)  # L(θ) = E[(y − Q(s, a; θ))²]
    return loss, q_sa.detach()


# -- the agent --------------------------------------------------------------------------------------

class DQN(UpdateHooks, Agent):
    """A DQN agent for Discrete actions and any observation an adapter serves; accepts vector-env batches.

    Attributes other learners build on: ``q_net`` (a :class:`QNetwork` with ``trunk`` and ``head``),
    ``target_net`` (θ⁻, same structure), ``optimizer`` (Adam over ``q_net``), ``buffer`` (the
    :class:`ReplayBuffer` D), ``rng`` (numpy Generator: exploration and minibatches), ``torch_rng``
    (torch Generator for any torch randomness), ``t`` (environment steps observed) and ``updates``
    (gradient steps taken). Other layers add a penalty to every update with :meth:`add_loss_term` and see
    each step with :meth:`add_update_hook`; the task-boundary and consolidation accessors are at the end.
    """

    algo = RegisteredName()
    Config = DQNConfig
    supports_vector_env = True
    learns_off_policy = True

    def __init__(self, observation_space: Any, action_space: Any, config: DQNConfig | None = None, seed: int = 0) -> None:
        from gymnasium import spaces

        config = config or DQNConfig()
        if not isinstance(action_space, spaces.Discrete):
            raise UsageError(f"dqn needs a Discrete action space, got {action_space}; use ppo, a2c or reinforce, "
                             "which serve Box, MultiDiscrete and MultiBinary actions")
        self.adapter = ObservationAdapter(observation_space, config.encoder, config.image_channels, owner="dqn")
        super().__init__(observation_space, action_space, config, seed)
        if config.torch_threads is not None:
            torch.set_num_threads(config.torch_threads)
        self.n_actions = int(action_space.n)
        self.rng = make_rng(seed)
        self.torch_rng = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # the initial weights depend on the seed alone
            torch.manual_seed(seed)
            self.q_net = self.build_network()
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        # the fused CPU kernel is 3x faster than the per-tensor loop on networks this small
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=config.learning_rate, fused=True)
        self._obs_shape, obs_dtype = self.adapter.shape, self.adapter.dtype
        # Dict, Tuple, MultiDiscrete and MultiBinary observations are stored as the adapter's flat rows
        self._adapt = self.adapter.flat
        self.buffer = make_replay(config.replay, config.buffer_size, self.adapter, config.n_step, config.gamma, config.num_envs)
        self.epsilon = linear(config.epsilon_start, config.epsilon_final, config.exploration_steps)
        self.lr = make_schedule("linear", config.learning_rate, config.learning_rate_final, config.lr_decay_steps)
        self.t = 0
        self.updates = 0
        # minibatch and action staging arrays, shared with torch views: no allocation per step
        self._batch_np = self.buffer.make_batch(config.batch_size)
        self._batch = ReplayBatch(*(torch.from_numpy(getattr(self._batch_np, f)) for f in ReplayBatch.FIELDS))
        self._fast = NumpyMLP(lambda: (self.q_net.trunk, self.q_net.head), small_cnn=True)
        self._init_hooks()

    def build_network(self) -> QNetwork:
        """The online network θ (the target network θ⁻ is a copy). Override to change the architecture."""
        c = self.config
        return QNetwork(self.observation_space, self.n_actions, list(c.hidden), c.activation, c.dueling, c.encoder,
                        c.image_channels)

    # -- 1. acting ---------------------------------------------------------------------------------
    def q_values(self, observation: Any) -> np.ndarray:
        """Q(s, ·; θ) for one observation or a batch, as numpy."""
        obs = self.adapter(observation) if self._adapt else np.asarray(observation)
        batch = obs if obs.ndim > len(self._obs_shape) else obs[None]
        with torch.no_grad():
            q = self.q_net(torch.as_tensor(batch)).numpy()
        return q if obs.ndim > len(self._obs_shape) else q[0]

    def act(self, observation: Any, explore: bool = True) -> Any:
        obs = self.adapter(observation) if self._adapt else np.asarray(observation)
        if obs.ndim > len(self._obs_shape):  # a batch from a vector env: one action per row
            greedy = self._greedy(obs)
            if not explore:
                return greedy
            eps = self.epsilon(self.t)
            random_actions = self.rng.integers(self.n_actions, size=len(obs))
            return np.where(self.rng.random(len(obs)) < eps, random_actions, greedy)
        if explore and self.rng.random() < self.epsilon(self.t):
            return int(self.rng.integers(self.n_actions))
        return int(self._greedy(obs))

    def _greedy(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(s, a; θ) of one observation or a batch: through numpy views of an MLP Q-network or the
        MinAtar small CNN on one frame (one observation through torch costs ~30 µs of call overhead, through numpy
        ~5 µs; one 10×10 frame through the small CNN ~300 µs against ~150 µs), else through torch."""
        net = self.q_net
        layers = self._fast.get() if type(net) is QNetwork and not net.one_hot else None
        batch = obs.ndim > len(self._obs_shape)
        if layers is not None and net.direct:
            if not batch:  # the small CNN in numpy, one frame at a time (numpy's BLAS is slow on busy cores' batches)
                return numpy_forward(layers[1], numpy_forward(layers[0], obs[None]))[0].argmax()
            layers = None
        if layers is not None:
            return numpy_forward(layers[1], numpy_forward(layers[0], obs.astype(np.float32, copy=False))).argmax(-1)
        with torch.no_grad():
            greedy = self.q_net(torch.as_tensor(np.asarray(obs if batch else obs[None], dtype=self.adapter.dtype)))
        return greedy.numpy().argmax(axis=1) if batch else greedy.numpy()[0].argmax()

    # -- 2. storing, and when to learn ------------------------------------------------------------------
    def observe(self, transition: Transition) -> dict[str, float]:
        tr = transition
        obs, next_obs = tr.observation, tr.next_observation
        if self._adapt:
            obs, next_obs = self.adapter(obs), self.adapter(next_obs)
        self.buffer.add(obs, tr.action, tr.reward, next_obs, tr.terminated, tr.truncated)
        before = self.t
        self.t += len(obs) if np.ndim(obs) > len(self._obs_shape) else 1
        c = self.config
        if self.t < c.learning_starts:
            return {}
        rounds = self.t // c.train_freq - max(before, c.learning_starts - 1) // c.train_freq
        if rounds <= 0:
            return {}
        for _ in range(rounds * c.gradient_steps):
            loss, q_mean = self.update()
        return {"loss": float(loss), "q_mean": float(q_mean)}

    # -- 3.–7. one gradient step ----------------------------------------------------------------------
    def update(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One gradient step on a minibatch from D, then the target sync when it is due; returns (loss, mean Q(s,a))."""
        c = self.config
        self.buffer.sample(c.batch_size, self.rng, out=self._batch_np)  # fills the tensors of self._batch in place
        loss, q_sa = dqn_loss(self.q_net, self.target_net, self._batch, c.gamma, c.double, c.loss == "huber")
        loss = loss + self.extra_loss()
        if c.learning_rate_final is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr(self.t)
        self.optimizer.zero_grad()
        loss.backward()
        if c.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.q_net.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self._after_update()
        self.updates += 1
        if self.updates % c.target_update_interval == 0:
            self.sync_target()
        return loss.detach(), q_sa.mean()

    def extra_loss(self) -> torch.Tensor | float:
        """The terms added to every update's loss (0 when none is registered; see :meth:`add_loss_term`)."""
        return self._extra_terms(0.0)

    def sync_target(self) -> None:
        """θ⁻ ← θ when τ = 1, else θ⁻ ← τθ + (1 − τ)θ⁻."""
        with torch.no_grad():
            for target, online in zip(self.target_net.parameters(), self.q_net.parameters()):
                if self.config.tau >= 1.0:
                    target.copy_(online)
                else:
                    target.lerp_(online, self.config.tau)

    def train_metrics(self) -> dict[str, float]:
        return {"epsilon": self.epsilon(self.t), "learning_rate": float(self.optimizer.param_groups[0]["lr"]),
                "updates": float(self.updates), "replay_size": float(len(self.buffer))}

    # -- task boundaries --------------------------------------------------------------------------------
    def begin_task(self, task: Any = None, budget: int | None = None, restart_schedules: bool = True,
                   clear_memory: bool = False) -> None:
        """Restarting puts the step counter t back to 0: ε, the step size and ``learning_starts`` start over
        (their horizons are the config's own, which the user set); ``clear_memory`` empties D."""
        if restart_schedules:
            self.t = 0
        if clear_memory:
            c = self.config
            self.buffer = make_replay(c.replay, c.buffer_size, self.adapter, c.n_step, c.gamma, c.num_envs)

    def end_task(self) -> dict[str, float]:
        """Open n-step windows close at the task's last state, as at a time limit, so no row spans two tasks."""
        self.buffer.close_windows()
        return {}

    # -- what consolidation and diagnostics use ----------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """θ by role: ``trunk`` (features), ``heads`` (Q-values per action), ``value`` (none: Q is the value)."""
        return {"trunk": list(self.q_net.trunk.parameters()), "heads": list(self.q_net.head.parameters()), "value": []}

    def output_module(self) -> nn.Module:
        """Q(·, ·; θ) as a module of :meth:`prepare_observations`' tensors; its parameters are all of θ."""
        return self.q_net

    def value_module(self) -> nn.Module | None:
        return None

    @property
    def discrete_outputs(self) -> bool:
        return True

    def prepare_observations(self, observations: Any) -> torch.Tensor:
        """The network's input tensor for a batch of raw observations (no gradient)."""
        return torch.as_tensor(np.asarray(observations, dtype=self.buffer.obs_dtype))

    def recent_transitions(self, n: int, rng: np.random.Generator, recent: int) -> dict[str, np.ndarray] | None:
        """Up to ``n`` distinct rows of D drawn uniformly by ``rng`` from the ``recent`` it stored last."""
        return self.buffer.recent(n, rng, recent)

    def td_loss(self, batch: dict[str, np.ndarray]) -> torch.Tensor:
        """The learner's own loss (:func:`dqn_loss`) on transitions shaped as :meth:`recent_transitions` returns."""
        c = self.config
        rows = ReplayBatch(*(torch.as_tensor(batch[f]) for f in ReplayBatch.FIELDS))
        return dqn_loss(self.q_net, self.target_net, rows, c.gamma, c.double, c.loss == "huber")[0]

    def weights_changed(self) -> None:
        """θ was changed from outside (pruned, loaded): θ⁻ ← θ, so targets come from the network now in use."""
        self.target_net.load_state_dict(self.q_net.state_dict())

    def weights(self, trunk_only: bool = False) -> dict[str, Any]:
        """θ as tensors (``trunk_only``: without the Q-value head)."""
        return {k: v.detach().clone() for k, v in self.q_net.state_dict().items()
                if not (trunk_only and k.startswith("head."))}

    def load_weights(self, weights: dict[str, Any], trunk_only: bool = False) -> None:
        """Load :meth:`weights` (``trunk_only``: the current head stays), then θ⁻ ← θ."""
        merged = self.q_net.state_dict()
        merged.update({k: v for k, v in weights.items() if not (trunk_only and k.startswith("head."))})
        self.q_net.load_state_dict(merged)
        self.weights_changed()

    # -- persistence -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"q_net": self.q_net.state_dict(), "target_net": self.target_net.state_dict(),
                "optimizer": self.optimizer.state_dict(), "buffer": self.buffer.state_dict(),
                "t": self.t, "updates": self.updates, "rng": rng_state(self.rng), "torch_rng": self.torch_rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in (("q_net", self.q_net), ("target_net", self.target_net)):
            own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
            saved = {k: tuple(v.shape) for k, v in state[name].items()}
            if own != saved:
                raise UsageError(f"checkpoint {name} has layers {saved}, this agent's network has {own} "
                                 "(was it trained with other hidden/dueling settings?)")
            net.load_state_dict(state[name])
        optimizer = copy.copy(state["optimizer"])
        optimizer["param_groups"] = [{**g, "betas": tuple(g["betas"])} for g in optimizer["param_groups"]]
        self.optimizer.load_state_dict(optimizer)
        self.buffer.load_state_dict(state["buffer"])
        self.t, self.updates = int(state["t"]), int(state["updates"])
        set_rng_state(self.rng, state["rng"])
        self.torch_rng.set_state(state["torch_rng"])
