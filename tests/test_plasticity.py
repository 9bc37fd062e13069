"""Plasticity: the diagnostics against hand-computed values, continual backprop's unit surgery, the remedies'
effect on a small generated stream, and the plasticity job kind end to end (spec, table, JSON, exit status)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from llmagentos.cli import cli
from llmagentos.lifelong.plasticity import (dormant_fraction, dormant_scores, effective_rank, network_diagnostics,
                                            trace_hidden_layers)
from llmagentos.lifelong.remedies import ContinualBackprop, RemedyConfig, make_remedy


def small_net() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
    return net


def test_dormant_and_rank_match_hand_computed_values():
    net = small_net()
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    # h = relu(W x) = [[1, 2, 0], [3, 0, 0]]: mean |h| = [2, 1, 0], layer mean 1, so s = [2, 1, 0]
    layers = trace_hidden_layers(net, lambda: net(x))
    assert len(layers) == 1 and layers[0].incoming is net[0] and layers[0].outgoing == [net[2]]
    h = torch.relu(net[0](x)).detach()
    assert dormant_scores(h).tolist() == [2.0, 1.0, 0.0]
    assert dormant_fraction([h], tau=0.5) == pytest.approx(1 / 3)
    assert dormant_fraction([h], tau=1.0) == pytest.approx(2 / 3)  # s_i ≤ τ counts
    d = network_diagnostics(net, lambda: net(x), tau=0.5)
    assert d["dormant_fraction"] == pytest.approx(1 / 3)
    # Φ = [[1,2,0],[3,0,0]]: σ = sqrt(7 ± sqrt(13)), so σ1/(σ1+σ2) = 0.6816 < 0.99 and srank_0.01 = 2
    assert d["effective_rank"] == 2
    assert d["weight_norm/0"] == pytest.approx(2.0) and d["weight_norm/2"] == pytest.approx(np.sqrt(14))
    # σ = (3, 2, 1, 0): cumulative shares 0.5, 0.833, 1
    phi = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.0]))
    assert [effective_rank(phi, d) for d in (0.01, 0.2, 0.5)] == [3, 2, 1]
    assert effective_rank(torch.zeros(4, 3)) == 0


def test_hidden_layers_of_a_dqn_end_in_its_q_head():
    from llmagentos.envs.make import make_env
    from llmagentos.kernel.run import make_agent

    agent = make_agent("dqn", make_env("CartPole-v1"), seed=0)
    x = agent.prepare_observations(np.zeros((4, 4), dtype=np.float32))
    layers = trace_hidden_layers(agent.output_module(), lambda: agent.output_module()(x))
    assert len(layers) == len(agent.config.hidden)
    assert layers[-1].outgoing == [agent.output_module().head]


def cbp_net(optimizer_cls=torch.optim.SGD):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    optimizer = optimizer_cls(net.parameters(), lr=0.0)  # lr 0: the weights change only by the remedy
    x = torch.ones(3, 2)
    layers = trace_hidden_layers(net, lambda: net(x))
    config = RemedyConfig(cbp_replacement_rate=0.25, cbp_maturity=2, cbp_decay=0.5)
    remedy = make_remedy("cbp", config, layers, list(net.parameters()), optimizer, seed=0)
    with torch.no_grad():  # h = 1 for every unit, so the utility orders units by Σ|w_out| = 1, 2, 0.5, 3
        net[0].weight.zero_()
        net[0].bias.fill_(1.0)
        net[2].weight.copy_(torch.tensor([[1.0, 2.0, 0.5, 3.0]]))
    return net, optimizer, remedy, x


def update(net, optimizer, remedy, x):
    loss = net(x).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    remedy.after_update()


def test_cbp_replaces_the_least_useful_mature_unit_and_zeroes_its_outgoing_weights():
    net, optimizer, remedy, x = cbp_net(torch.optim.Adam)
    assert isinstance(remedy, ContinualBackprop)
    for _ in range(2):  # ages 1, 2: nobody is older than m = 2 yet
        update(net, optimizer, remedy, x)
        assert remedy.replaced == 0
    update(net, optimizer, remedy, x)  # ages 3 > m: c = 0.25 × 4 = 1, the least useful unit (2) goes
    assert remedy.replaced == 1
    w_in, w_out = net[0].weight.detach(), net[2].weight.detach()
    assert w_out.tolist() == [[1.0, 2.0, 0.0, 3.0]]  # outgoing weights of the new unit are zero
    assert w_in[2].abs().sum() > 0 and net[0].bias[2] == 0.0  # incoming redrawn, bias zero
    assert (w_in[[0, 1, 3]] == 0).all()  # the others untouched
    assert remedy.age[0].tolist() == [3, 3, 0, 3] and remedy.utility[0][2] == 0.0
    assert optimizer.state[net[2].weight]["exp_avg"][0, 2] == 0.0  # its moments cleared
    # c = 0.25 × 3 eligible per update: the next replacement is at the 2nd update from here, and it takes
    # unit 0 (least useful of the mature ones) although the new unit 2 has the lowest utility: it is immature
    update(net, optimizer, remedy, x)
    assert remedy.replaced == 1
    update(net, optimizer, remedy, x)
    assert remedy.replaced == 2
    assert net[2].weight.detach().tolist() == [[0.0, 2.0, 0.0, 3.0]]
    assert remedy.age[0].tolist() == [0, 5, 2, 5]
