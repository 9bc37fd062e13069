"""Remedies for loss of plasticity, composable with any forgetting strategy of the lifelong agent.

A remedy works on a network through three documented points, the same ones consolidation uses: a loss term
added to every update (``penalty``), a hook after every optimiser step (``after_update``) and the task
boundary (``end_task``). It finds the hidden units to act on by tracing the network once
(:func:`~llmagentos.lifelong.plasticity.trace_hidden_layers`), so it works on the supervised MLPs of the
plasticity streams and on the DQN / actor-critic networks alike.

A unit is *reinitialised* the same way by every remedy: its incoming weights are drawn again from a uniform
distribution with the variance its layer had at initialisation (so U(±1/√fan_in) for PyTorch's default
``Linear``), its bias and its outgoing weights are set to zero (the network's function does not jump), and the
optimiser's moment estimates for those weights are cleared. PyTorch's Adam keeps one step count per tensor, so a
cleared entry restarts its moments under the tensor's (old) bias correction: for a few hundred updates a new unit
takes larger Adam steps than a fresh network's would (Dohare et al.'s ``AdamGnT`` keeps a step count per entry
and restarts it too; Sokar et al.'s ReDo, like us, keeps Adam's one count). A remedy that renews whole tensors
(shrink-and-perturb, resets) forgets their optimiser state entirely, step count included.

The registry :data:`REMEDIES` is the one list of names: ``plain`` (no remedy), ``cbp``, ``redo``,
``shrink_perturb``, ``l2_init`` and ``reset``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.lifelong.plasticity import HiddenLayer, dormant_scores


@dataclass
class RemedyConfig:
    """The remedies' settings (each remedy reads its own fields). The defaults are the papers' (checked against
    each paper and its reference code, see each class); where a default differs on purpose, the class says why."""

    cbp_replacement_rate: float = param(1e-4, "continual backprop ρ: units replaced per eligible unit per update", ge=0)
    cbp_decay: float = param(0.99, "continual backprop η: decay of the running utility", ge=0, lt=1)
    cbp_maturity: int = param(100, "continual backprop m: updates a unit lives before it may be replaced", ge=0)
    redo_tau: float = param(0.1, "ReDo τ: a unit whose normalised mean |activation| is ≤ τ is recycled", ge=0)
    redo_period: int = param(1000, "ReDo F: updates between two recyclings", gt=0)
    shrink: float = param(0.4, "shrink-and-perturb λ: θ ← λθ + σθ_fresh at every task boundary", ge=0, le=1)
    perturb: float = param(0.1, "shrink-and-perturb σ: scale of the noise θ_fresh, a fresh initialisation", ge=0)
    l2_init: float = param(0.01, "L2-init λ: weight of ‖θ − θ₀‖² in the loss", ge=0)
    reset_period: int = param(0, "reset K: updates between resets of the last layers (0: at every task boundary)", ge=0)
    reset_layers: int = param(1, "how many of the last Linear layers a reset re-initialises", gt=0)

    #: how check_bounds words a field outside its bounds: "remedy cbp_decay must be in [0, 1), got 1.0"
    BOUNDS_PREFIX: ClassVar[str] = "remedy "


class Remedy:
    """No remedy (plain backprop); the base of the others."""

    def __init__(self, config: RemedyConfig, layers: list[HiddenLayer], params: list[nn.Parameter],
                 optimizer: torch.optim.Optimizer | None, seed: int) -> None:
        self.config, self.layers, self.params, self.optimizer = config, layers, list(params), optimizer
        self.generator = torch.Generator().manual_seed(int(seed))
        # the spread of each layer's weights at initialisation: what a re-drawn unit is drawn with
        linears = {id(m): m for layer in layers for m in [layer.incoming, *layer.outgoing]}
        self.init_bound = {k: math.sqrt(3.0) * float(m.weight.detach().std()) for k, m in linears.items()}
        # the same for every parameter tensor (a constant one, such as a zero bias, has spread 0)
        self.init_spread = [math.sqrt(3.0) * float(p.detach().std()) if p.numel() > 1 else 0.0 for p in self.params]
        self.activations: list[torch.Tensor | None] = [None] * len(layers)
        self.updates = 0
        self._handles = [layer.activation.register_forward_hook(self._recorder(k)) for k, layer in enumerate(layers)] \
            if self.needs_activations else []

    needs_activations = False

    def _recorder(self, k: int) -> Callable[..., None]:
        def record(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            if torch.is_grad_enabled():  # the training forward pass, not acting or computing targets
                self.activations[k] = output.detach().reshape(output.shape[0], -1)
        return record

    def penalty(self) -> torch.Tensor | None:
        return None

    def after_update(self) -> None:
        self.updates += 1

    def end_task(self) -> bool:
        """The task boundary; True when the remedy changed the weights here."""
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates}

    # -- shared surgery ---------------------------------------------------------------------------
    @torch.no_grad()
    def reinitialise(self, layer: HiddenLayer, units: torch.Tensor) -> None:
        """Redraw the incoming weights of ``units``, zero their bias and outgoing weights, clear their moments."""
        if units.numel() == 0:
            return
        w = layer.incoming.weight
        bound = self.init_bound[id(layer.incoming)]
        fresh = (torch.rand((len(units), w.shape[1]), generator=self.generator) * 2 - 1) * bound
        w[units] = fresh.to(w.dtype)
        self._clear_moments(w, (units,))
        if layer.incoming.bias is not None:
            layer.incoming.bias[units] = 0.0
            self._clear_moments(layer.incoming.bias, (units,))
        for out in layer.outgoing:
            out.weight[:, units] = 0.0
            self._clear_moments(out.weight, (slice(None), units))

    def _forget_state(self, p: torch.Tensor) -> None:
        """Drop the optimiser's whole state for ``p`` (moments and step count): as for a freshly built optimiser."""
        if self.optimizer is not None:
            self.optimizer.state.pop(p, None)

    def _clear_moments(self, p: torch.Tensor, index: tuple[Any, ...]) -> None:
        if self.optimizer is None:
            return
        for value in self.optimizer.state.get(p, {}).values():
            if torch.is_tensor(value) and value.shape == p.shape:
                value[index] = 0.0


class ContinualBackprop(Remedy):
    """Continual backprop (Dohare et al., "Loss of plasticity in deep continual learning", Nature 2024, Algorithm 1).

    After every update, for each hidden layer l: ages a_l += 1; contribution utility
    u_l[i] ← η u_l[i] + (1 − η) |h_l[i]| Σ_k |w_l[i, k]| (|h| averaged over the batch, w the outgoing weights),
    bias-corrected as û_l[i] = u_l[i] / (1 − η^a_l[i]); c_l += ρ · #(units with a_l > m); the ⌊c_l⌋ eligible
    units of least û are reinitialised (incoming weights redrawn, bias and outgoing weights zero), their utility
    and age set to 0, and c_l −= ⌊c_l⌋.

    Checked against the paper and its reference code (``lop/algos/gnt.py``): η = 0.99, m = 100 (the
    slowly-changing-regression and Permuted-MNIST configurations; the class default there is 20), ρ = 1e-4 (the
    code's default; the paper sweeps 1e-6 … 1e-2 per problem), contribution utility with outgoing weights zero and
    the Adam-style bias correction of the utility. The reference sums |w_out| as a mean (the same order within a
    layer); it accumulates c_l as here with ``accumulate: true`` (its other mode draws the fractional replacement
    at random). Its extra step that moves a replaced unit's mean contribution into the next layer's bias reads the
    unit's running mean after it has been zeroed, so it adds nothing; we leave it out. Our streams are short, so
    their specs raise ρ (``examples/plasticity_*.yaml``).
    """

    needs_activations = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (index among the traced layers, layer): a unit nobody reads has no contribution
        self.targets = [(k, layer) for k, layer in enumerate(self.layers) if layer.outgoing]
        self.utility = [torch.zeros(layer.width) for _, layer in self.targets]
        self.corrected = [torch.zeros(layer.width) for _, layer in self.targets]
        self.age = [torch.zeros(layer.width, dtype=torch.long) for _, layer in self.targets]
        self.owed = [0.0] * len(self.targets)
        self.replaced = 0

    def after_update(self) -> None:
        super().after_update()
        c = self.config
        for k, (traced, layer) in enumerate(self.targets):
            h = self.activations[traced]
            if h is None:
                continue
            outgoing = sum(out.weight.detach().abs().sum(dim=0) for out in layer.outgoing)
            self.age[k] += 1
            # u ← η u + (1 − η) |h| Σ_k |w_out|
            self.utility[k].mul_(c.cbp_decay).add_((1 - c.cbp_decay) * h.abs().mean(dim=0) * outgoing)
            # û = u / (1 − η^a): a young unit's running utility is not biased towards its zero start
            self.corrected[k] = self.utility[k] / (1 - c.cbp_decay ** self.age[k].double()).float().clamp_min(1e-12)
            eligible = torch.nonzero(self.age[k] > c.cbp_maturity).flatten()
            self.owed[k] += c.cbp_replacement_rate * len(eligible)
            n = min(int(self.owed[k]), len(eligible))
            if n == 0:
                continue
            order = torch.argsort(self.corrected[k][eligible], stable=True)
            units = eligible[order[:n]]
            self.reinitialise(layer, units)
            self.utility[k][units] = 0.0
            self.age[k][units] = 0
            self.owed[k] -= n
            self.replaced += n

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "replaced": self.replaced}


class ReDo(Remedy):
    """ReDo (Sokar et al., "The dormant neuron phenomenon in deep RL", ICML 2023, Algorithm 1).

    Every F updates, on the last training batch: units with s_i = E|h_i| / ((1/H) Σ_k E|h_k|) ≤ τ are
    recycled: incoming weights redrawn from the initial distribution, bias and outgoing weights zero, the Adam
    moments of those weights cleared (Adam's step count kept), as in the reference code
    (``dopamine/labs/redo/weight_recyclers.py``). The output layer's units are never recycled. τ = 0.1 and
    F = 1000 updates are the paper's DQN settings as we read the paper (the reference code's class defaults,
    τ = 0 and F = 200,000, are placeholders its experiment configurations override); its dormant-% figures count
    τ = 0.025 (our ``plasticity.tau``). The short streams of ``examples/`` recycle more often (``redo_period``).
    """

    needs_activations = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recycled = 0

    def after_update(self) -> None:
        super().after_update()
        if self.updates % self.config.redo_period:
            return
        for layer, h in zip(self.layers, self.activations):
            if h is None:
                continue
            units = torch.nonzero(dormant_scores(h) <= self.config.redo_tau).flatten()
            self.reinitialise(layer, units)
            self.recycled += len(units)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "recycled": self.recycled}


class ShrinkPerturb(Remedy):
    """Shrink-and-perturb (Ash & Adams, "On warm-starting neural network training", NeurIPS 2020).

    At every task boundary (the paper's "new data arrive"): θ ← λθ + σθ_fresh, θ_fresh a fresh initialisation
    of the same network (each tensor drawn uniformly with the spread it had at initialisation, which is PyTorch's
    default ``Linear`` initialisation exactly), and the optimiser starts afresh (the reference code builds a new
    one each round). λ = 0.4 and σ = 0.1 are the reference code's defaults (``JordanAsh/warm_start``, ``run.py``).
    """

    @torch.no_grad()
    def end_task(self) -> bool:
        for p, spread in zip(self.params, self.init_spread):
            fresh = (torch.rand(p.shape, generator=self.generator) * 2 - 1) * spread
            p.mul_(self.config.shrink).add_(self.config.perturb * fresh.to(p.dtype))  # θ ← λθ + σθ_fresh
            self._forget_state(p)
        return True


class L2Init(Remedy):
    """L2 regularisation towards the initial weights, "L2 Init" (Kumar, Marklund & Van Roy, "Maintaining
    plasticity in continual learning via regenerative regularization", arXiv 2308.11958, 2023): the loss
    gains λ ‖θ − θ₀‖², θ₀ the weights at initialisation, every parameter included. λ is the method's one
    hyper-parameter, which the paper selects per problem by a sweep; 0.01 is our default for short streams."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial = [p.detach().clone() for p in self.params]

    def penalty(self) -> torch.Tensor | None:
        # λ ‖θ − θ₀‖²
        return self.config.l2_init * sum(((p - p0) ** 2).sum() for p, p0 in zip(self.params, self.initial))


class Reset(Remedy):
    """Periodic resets of the last layers (Nikishin et al., "The primacy bias in deep RL", ICML 2022).

    Every K updates (or at every task boundary when K = 0) the output layers (the Linear layers that read a
    hidden layer and feed none: Q-values, or an actor-critic's policy and value outputs) and, with
    ``reset_layers`` = k, the k − 1 layers before each, are drawn again from their initial distribution (biases
    zero) and their optimiser state is dropped. The paper resets the last layer (SPR on Atari 100k: every 2·10⁴
    updates) or more (SAC: every 2·10⁵ updates); in a task stream the natural period is the task boundary, so
    our default is K = 0 (a reset at every boundary), ``reset_layers`` = 1.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        feeding = {id(layer.incoming) for layer in self.layers}
        self.targets: list[nn.Linear] = []
        for layer in self.layers:
            self._add([m for m in layer.outgoing if id(m) not in feeding])
        for _ in range(self.config.reset_layers - 1):  # one layer further back from everything chosen so far
            self._add([layer.incoming for layer in self.layers if any(o is t for o in layer.outgoing for t in self.targets)])
        self.resets = 0

    def _add(self, modules: list[nn.Linear]) -> None:
        for m in modules:
            if all(m is not t for t in self.targets):
                self.targets.append(m)

    def after_update(self) -> None:
        super().after_update()
        if self.config.reset_period and self.updates % self.config.reset_period == 0:
            self.reset()

    def end_task(self) -> bool:
        if not self.config.reset_period:
            self.reset()
            return True
        return False

    @torch.no_grad()
    def reset(self) -> None:
        for m in self.targets:
            bound = self.init_bound[id(m)]
            m.weight.copy_((torch.rand(m.weight.shape, generator=self.generator) * 2 - 1) * bound)
            self._forget_state(m.weight)
            if m.bias is not None:
                m.bias.zero_()
                self._forget_state(m.bias)
        self.resets += 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "resets": self.resets}


#: the strategies against loss of plasticity, by name (``plain`` is none)
REMEDIES: dict[str, type[Remedy]] = {"plain": Remedy, "cbp": ContinualBackprop, "redo": ReDo,
                                     "shrink_perturb": ShrinkPerturb, "l2_init": L2Init, "reset": Reset}


def remedy_config(options: dict[str, Any]) -> RemedyConfig:
    """A validated :class:`RemedyConfig` from a spec's mapping (unknown keys refused by name)."""
    from llmagentos.core.config import apply_overrides

    return apply_overrides(RemedyConfig(), dict(options), owner="remedies")


def make_remedy(name: str, config: RemedyConfig, layers: list[HiddenLayer], params: list[nn.Parameter],
                optimizer: torch.optim.Optimizer | None, seed: int) -> Remedy:
    if name not in REMEDIES:
        raise UsageError(f"unknown plasticity strategy {name!r}; choose one of: {', '.join(REMEDIES)}")
    return REMEDIES[name](config, layers, params, optimizer, seed)

