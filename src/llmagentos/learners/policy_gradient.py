"""Policy gradients: REINFORCE (with an optional learned baseline), advantage actor-critic with GAE(λ), and PPO.

Williams (1992), Mnih et al. (2016), Schulman et al. (2016, 2017). Each update rule is a module-level
pure function of tensors (:func:`gae`, :func:`reinforce_loss`, :func:`a2c_loss`, :func:`ppo_loss`) so
that other learners (multi-task sharing, lifelong consolidation) reuse the exact same rule; the agents
only collect data, call them, and step the optimiser.

The network, acting, normalisation, the optimiser step, schedules and checkpoints are shared in
:class:`~llmagentos.learners.common.actor_critic.PolicyGradientAgent` (other layers add loss terms with
``add_loss_term`` and watch steps with ``add_update_hook``); the configs are in
:mod:`llmagentos.learners.policy_gradient_config`. Schedules (``lr_final``, PPO's ``clip_range_final``) move
linearly over ``schedule_steps`` when the user sets it, else over the budget the kernel announces with
``begin_task``; without a final value or a horizon they hold their start value.

Vector envs: ``act`` takes a batch, ``observe`` a batch transition whose ``next_observation`` holds the
true final observation of finished envs. Advantages bootstrap from V(s_final) after a time-limit
truncation and never past a termination.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from llmagentos.core.agent import Transition
from llmagentos.core.errors import UsageError
from llmagentos.learners.common.actor_critic import ActorCritic, HeadOutputs, PolicyGradientAgent, clip_grad_norm
from llmagentos.learners.common.rollout import EpisodeBuffer, RolloutBuffer
from llmagentos.learners.policy_gradient_config import A2CConfig, PolicyGradientConfig, PPOConfig, ReinforceConfig
from llmagentos.learners.registry import RegisteredName

__all__ = ["A2C", "PPO", "A2CConfig", "ActorCritic", "HeadOutputs", "PPOConfig", "PolicyGradientAgent",
           "PolicyGradientConfig", "Reinforce", "ReinforceConfig", "RolloutAgent", "a2c_loss", "clip_grad_norm",
           "discounted_returns", "gae", "normalize", "ppo_loss", "reinforce_loss"]

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


class Reinforce(PolicyGradientAgent):
    """REINFORCE (Williams, 1992): ∇J = E[Σ_t ∇log π(a_t|s_t) (G_t − b(s_t))] from complete episodes."""

    algo = RegisteredName()
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

    algo = RegisteredName()
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

    algo = RegisteredName()
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
