"""Lifelong metrics on hand-made matrices, the Fisher estimate against finite differences, change detection."""

import numpy as np
import pytest
import torch

from llmagentos.lifelong import metrics
from llmagentos.lifelong.consolidation import NetworkView
from llmagentos.lifelong.strategies.ewc import diagonal_fisher
from llmagentos.lifelong.detection import ChangeDetector, Cusum, DetectionConfig, detection_delays

R = np.array([[0.9, 0.1, 0.0],
              [0.5, 0.8, 0.2],
              [0.3, 0.6, 1.0]])


def test_matrix_metrics_match_hand_computation():
    assert metrics.average_performance(R) == pytest.approx((0.3 + 0.6 + 1.0) / 3)
    # F = 1/N Σ_j (R[j,j] − R[N−1,j]) = ((0.9−0.3) + (0.8−0.6) + 0) / 3
    assert metrics.forgetting(R) == pytest.approx(0.8 / 3)
    # BWT = 1/(N−1) Σ_{j<N−1} (R[N−1,j] − R[j,j]) = ((0.3−0.9) + (0.6−0.8)) / 2
    assert metrics.backward_transfer(R) == pytest.approx(-0.4)
    no_forgetting = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert metrics.forgetting(no_forgetting) == 0.0 and metrics.backward_transfer(no_forgetting) == 0.0


def test_forward_transfer_is_continual_worlds_auc_ratio():
    # task 0: AUC = trapz([0, .5, 1])/2 = 0.5 against the reference's 0.25 → (0.5−0.25)/(1−0.25) = 1/3
    # task 1: identical curves → 0; FT is the mean, 1/6
    curves = [[0.0, 0.5, 1.0], [0.2, 0.2]]
    refs = [[0.0, 0.25, 0.5], [0.2, 0.2]]
    assert metrics.auc([0.0, 0.5, 1.0]) == pytest.approx(0.5)
    assert metrics.forward_transfer(curves, refs) == pytest.approx(1 / 6)
    assert metrics.forward_transfer([[2.0, 2.0]], [[0.0, 0.0]]) == pytest.approx(1.0)  # clipped to [0, 1]


def test_normalise_maps_random_to_zero_and_single_task_to_one():
    raw = np.array([[10.0, 200.0], [55.0, 20.0]])
    norm = metrics.normalise(raw, random_returns=[10.0, 20.0], single_task_returns=[100.0, 200.0])
    assert norm == pytest.approx(np.array([[0.0, 1.0], [0.5, 0.0]]))


def test_a_reference_below_random_is_reported_not_flipped():
    # task 1's single-task learner (15) did worse than random (20): a return above random must stay positive
    raw = np.array([[10.0, 26.0], [55.0, 14.0]])
    norm = metrics.normalise(raw, random_returns=[10.0, 20.0], single_task_returns=[100.0, 15.0])
    assert norm[:, 1] == pytest.approx([6.0, -6.0])  # in return units, with the sign of raw − random
    assert metrics.references_below_random([10.0, 20.0], [100.0, 15.0]) == [1]
    from llmagentos.jobs.lifelong import LifelongBlock, combine

    block = LifelongBlock(family="goal-grid", tasks=2, steps_per_task=10, strategies=["finetune"])
    arm = {"raw_matrix": raw.tolist(), "curves": [[10.0, 10.0], [20.0, 26.0]], "life": [], "boundaries": [0, 10],
           "transfers": []}
    out = combine(block, {"random": {"returns": [10.0, 20.0]}, "finetune": arm,
                          "reference": {"scores": [100.0, 15.0], "curves": [[10.0, 100.0], [14.0, 15.0]]}})
    assert out["references_below_random"] == [1]


def test_gem_forward_transfer_is_the_zero_shot_gain_over_a_fresh_learner():
    # FT_GEM = 1/(N−1) Σ_{i≥1} (R[i−1, i] − b_i) = ((0.1 − 0.05) + (0.2 − 0.3)) / 2
    assert metrics.forward_transfer_gem(R, [0.0, 0.05, 0.3]) == pytest.approx(-0.025)
    assert metrics.forward_transfer_gem(np.array([[0.7]]), [0.1]) == 0.0
    curves = [[[0.0, 0.5, 1.0], [0.2, 0.2], [0.1, 0.9]]]
    refs = [[[0.0, 0.25, 0.5], [0.05, 0.2], [0.3, 0.4]]]
    summary = metrics.summarise([R], curves, refs)
    assert summary["forward_transfer_gem"] == pytest.approx(-0.025)
    assert summary["forward_transfer"] is not None  # Continual World's beside it
    from llmagentos.jobs.lifelong import table

    headers, rows = table({"lifelong": {"finetune": summary}})
    assert "forward transfer" in headers and "forward transfer (GEM)" in headers
    assert rows[0][headers.index("forward transfer (GEM)")].startswith("-0.02 ")


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_agreement():
    lo, hi = metrics.bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5])
    assert lo < 0.3 < hi and hi - lo < 0.4
    assert metrics.bootstrap_ci([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7))
    summary = metrics.summarise([R, R], [[[0, 1], [0, 1], [0, 1]]] * 2, [[[0, 0], [0, 0], [0, 0]]] * 2)
    assert summary["forgetting"] == pytest.approx(0.8 / 3) and summary["forward_transfer"] == pytest.approx(0.5)
    assert np.allclose(summary["matrix"], R)


def test_diagonal_fisher_matches_finite_difference_brute_force():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    view = NetworkView(net, lambda obs: torch.as_tensor(obs, dtype=torch.float64))
    states = np.random.default_rng(0).normal(size=(5, 3))
    fisher = diagonal_fisher(view, states, temperature=0.7)
    # brute force: F_i = mean_s Σ_a π(a|s) (∂ log π(a|s)/∂θ_i)², derivatives by central differences
    eps = 1e-6
    for name, p in net.named_parameters():
        brute = torch.zeros_like(p)
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            total = 0.0
            for s in states:
                x = torch.as_tensor(s[None])
                with torch.no_grad():
                    probs = torch.softmax(net(x) / 0.7, -1)[0]
                    old = flat[i].item()
                    flat[i] = old + eps
                    up = torch.log_softmax(net(x) / 0.7, -1)[0]
                    flat[i] = old - eps
                    down = torch.log_softmax(net(x) / 0.7, -1)[0]
                    flat[i] = old
                grad = (up - down) / (2 * eps)
                total += float((probs * grad ** 2).sum())
            brute.view(-1)[i] = total / len(states)
        assert torch.allclose(fisher[name], brute, rtol=1e-5, atol=1e-9), name


def test_cusum_detects_a_sustained_drop_quickly_and_not_the_noise_before_it():
    rng = np.random.default_rng(3)
    series = np.concatenate([rng.normal(100, 5, 300), rng.normal(60, 5, 100)])
    detector = ChangeDetector(DetectionConfig(detect_signal="return"))
    alarms = [t for t, x in enumerate(series) if detector.end_episode(float(x), step=t)]
    assert alarms and 300 <= alarms[0] <= 305
    assert [d["step"] for d in detector.detections][0] == alarms[0]
    assert all(a >= 300 for a in alarms)


def test_cusum_ignores_improvement_and_a_rising_td_error_is_seen():
    rng = np.random.default_rng(1)
    rising = np.linspace(0, 100, 500) + rng.normal(0, 3, 500)  # learning: returns go up
    down = Cusum("down", threshold=8.0, window=30, warmup=15, min_scale=1.0)
    assert not any(down.update(x) for x in rising)
    detector = ChangeDetector(DetectionConfig(detect_signal="td_error"))
    fired = []
    for episode in range(120):
        level = 0.1 if episode < 80 else 1.0
        for _ in range(20):
            detector.observe_step(rng.normal(0, level))
        if detector.end_episode(10.0, step=episode * 20):
            fired.append(episode)
    assert fired and 80 <= fired[0] <= 85


def test_detection_delays_match_switches_and_count_false_alarms():
    result = detection_delays([100, 300], [50, 130, 310, 320], horizon=150)
    assert result["delays"] == [30, 10]
    assert result["false_alarms"] == [50, 320]
    assert detection_delays([100], [], horizon=50)["delays"] == [None]


def test_diagonal_fisher_in_chunks_equals_the_fisher_at_once():
    """EWC's Fisher is computed a bounded number of states at a time (the MinAtar CNN's per-state Jacobians would
    not fit at once): chunks of 7 states, or of 1, give the Fisher of all 50 states at once (up to float rounding:
    batched products round differently for different batch sizes), and a chunk of all 50 is the one-batch mean."""
    torch.manual_seed(0)
    policy = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    view = NetworkView(policy, lambda obs: torch.as_tensor(obs, dtype=torch.float32))
    states = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    for kind in ("policy", "output"):
        whole = diagonal_fisher(view, states, temperature=0.7, kind=kind)
        assert whole.keys() == dict(policy.named_parameters()).keys()
        for chunk in (7, 1):
            chunked = diagonal_fisher(view, states, temperature=0.7, kind=kind, chunk=chunk)
            for name in whole:
                torch.testing.assert_close(chunked[name], whole[name], rtol=1e-6, atol=1e-9)
        assert all(torch.equal(a, b) for a, b in zip(diagonal_fisher(view, states, 0.7, kind, chunk=50).values(),
                                                       whole.values()))
