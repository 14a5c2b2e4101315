"""The MoEfication numerics on synthetic data with planted structure (fast, no model load)."""

from __future__ import annotations

import pytest
import torch

from inference.moe.tools.moefy_fit import _balanced_assign, balanced_kmeans, fit_layer, ridge_solve


def test_balanced_kmeans_recovers_planted_equal_groups() -> None:
    gen = torch.Generator().manual_seed(0)
    n_groups, size, dim = 4, 6, 200
    centers = torch.randn(n_groups, dim, generator=gen) * 3
    truth = torch.arange(n_groups).repeat_interleave(size)[
        torch.randperm(n_groups * size, generator=gen)
    ]
    feats = centers[truth] + 0.3 * torch.randn(n_groups * size, dim, generator=gen)
    groups = balanced_kmeans(feats, n_groups)
    assert groups.shape == (n_groups, size)
    assert sorted(groups.reshape(-1).tolist()) == list(range(n_groups * size))  # a partition
    for g in groups:
        assert len(set(truth[g].tolist())) == 1  # every group is one planted cluster


def test_balanced_assign_respects_capacity_even_when_all_prefer_one_column() -> None:
    sim = torch.tensor([[5.0, 1.0, 0.0]] * 6)  # everyone wants column 0
    sim[:, 0] += torch.arange(6.0)  # rows 5, 4 are the best fits for column 0
    assign = _balanced_assign(sim, capacity=2)
    assert torch.bincount(assign, minlength=3).tolist() == [2, 2, 2]
    assert set(torch.nonzero(assign == 0).squeeze(1).tolist()) == {4, 5}


def test_kmeans_refuses_uneven_split() -> None:
    with pytest.raises(ValueError, match="equal experts"):
        balanced_kmeans(torch.randn(10, 4), 3)


def test_ridge_solve_recovers_a_linear_map() -> None:
    gen = torch.Generator().manual_seed(1)
    x, w = torch.randn(500, 8, generator=gen), torch.randn(8, 3, generator=gen)
    assert torch.allclose(ridge_solve(x, x @ w, 1e-8), w, atol=1e-3)


def _planted_ffn(hidden: int = 32, width: int = 64, n: int = 3000, seed: int = 0):
    """A SwiGLU FFN where each token strongly activates only a few neuron blocks."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, hidden, generator=gen)
    gate = torch.randn(width, hidden, generator=gen) * 0.3
    # block b of 8 neurons fires when input coordinate b is large: sparse, routable structure
    for b in range(width // 8):
        gate[b * 8 : (b + 1) * 8, b] += 4.0
    up = torch.randn(width, hidden, generator=gen)
    down = torch.randn(hidden, width, generator=gen) / width**0.5
    return x, gate, up, down


def test_fit_layer_routes_well_and_refit_reduces_error() -> None:
    x, gate, up, down = _planted_ffn()
    dense = (torch.nn.functional.silu(x @ gate.T) * (x @ up.T)) @ down.T
    fit, out = fit_layer(x, gate, up, down, n_experts=8, top_k=2, refit=True)
    _, out_plain = fit_layer(x, gate, up, down, n_experts=8, top_k=2, refit=False)
    assert fit.groups.shape == (8, 8) and fit.router.shape == (8, 32) and fit.down.shape == (32, 64)
    assert fit.routing_recall > 0.6  # a linear router on a non-linear norm: good, not perfect
    assert torch.isclose(fit.usage.sum(), torch.tensor(2.0))  # k experts per token
    err = float((out - dense).norm() / dense.norm())
    err_plain = float((out_plain - dense).norm() / dense.norm())
    assert err < err_plain < 1.0


def test_fit_layer_correction_moves_the_target() -> None:
    x, gate, up, down = _planted_ffn(n=1500)
    shift = torch.zeros(x.shape[0], x.shape[1])
    shift[:, 0] = 1.0  # a constant the dense path has and the MoE path lacks
    _, out = fit_layer(x, gate, up, down, 8, 2, correction=shift)
    _, out0 = fit_layer(x, gate, up, down, 8, 2)
    assert float(out[:, 0].mean()) > float(out0[:, 0].mean()) + 0.3
