"""The actor-critic network and the agent base REINFORCE, A2C and PPO share (:mod:`llmagentos.learners.policy_gradient`).

Networks live in :class:`ActorCritic`: ``trunk`` (shared features; ``nn.Identity`` unless
``share_trunk``), ``policy_head`` (logits, or the Gaussian mean), ``value_head`` (V(s)) and, for Box
actions, ``log_std``. :class:`PolicyGradientAgent` owns the network, acting (one forward pass per batch,
through :mod:`~llmagentos.learners.common.fast_mlp` for MLPs), normalisation, the optimiser step, the
schedules and checkpoints; the learners add their update rule.

Vector envs: ``act`` takes a batch, ``observe`` a batch transition whose ``next_observation`` holds the
true final observation of finished envs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from llmagentos.core.agent import Agent, Transition
from llmagentos.core.errors import UsageError
from llmagentos.core.schedules import make_schedule
from llmagentos.core.seeding import make_rng, rng_state, set_rng_state
from llmagentos.learners.common.distributions import (Bernoulli, Categorical, DiagGaussian, MultiCategorical,
                                                       sample_categorical_numpy, sample_gaussian_numpy)
from llmagentos.learners.common.encoders import ObservationAdapter, ObservationEncoder, observation_trunk
from llmagentos.learners.common.fast_mlp import NumpyMLP, numpy_forward
from llmagentos.learners.common.hooks import UpdateHooks
from llmagentos.learners.common.networks import mlp
from llmagentos.learners.common.normalization import ObservationNormalizer, RewardScaler
from llmagentos.learners.policy_gradient_config import PolicyGradientConfig


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
        # acting goes through numpy views of an MLP network (not for multi-part actions, which torch samples)
        self._fast = NumpyMLP(lambda: (self.net.trunk, self.net.policy_head, self.net.value_head))
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
        fast = None if self.multi_action else self._fast.get()
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

    def _act_numpy(self, layers: list, obs: np.ndarray, explore: bool) -> np.ndarray:
        trunk, policy, value = layers
        features = numpy_forward(trunk, obs.reshape(len(obs), -1))
        out = numpy_forward(policy, features)
        if not explore:
            return out if self.continuous else out.argmax(-1)
        if self.continuous:
            actions, log_prob = sample_gaussian_numpy(out, self.net.log_std.detach().numpy(), self.generator)
        else:
            actions, log_prob = sample_categorical_numpy(out, self.generator)
        values = numpy_forward(value, features)[:, 0] if self.uses_value else np.zeros(len(obs), np.float32)
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
