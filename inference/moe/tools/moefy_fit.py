"""The numerical core of MoEfication: neuron clustering, router fitting, down-projection refit.

Everything here works on plain tensors of one layer, so it is testable on synthetic data.
Notation: N tokens, H hidden size, I FFN width, E experts of I/E neurons, k active experts.

- `balanced_kmeans`: groups neurons that fire together (co-activation) into E equal groups
  (MoEfication, Zhang et al. 2022). Equal sizes keep every expert the same shape, which a
  standard Mixtral checkpoint requires.
- `fit_router`: a linear map from the FFN input to each group's contribution norm, fitted by
  ridge least squares; its top-k is the routing.
- `refit_down`: given the routing, the down projection is refit by one vectorised ridge least
  squares so the kept neurons absorb part of what the dropped ones contributed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inference.moe.predictors.predict import ridge_solve  # noqa: F401 - the fitted maps' owner; re-exported


@dataclass
class LayerFit:
    """The MoE of one layer: expert groups, router and (refit) down projection."""

    groups: torch.Tensor  # [E, I/E] neuron indices of each expert
    router: torch.Tensor  # [E, H] raw router: logits ~ predicted contribution norm
    down: torch.Tensor  # [H, I] down projection to use with the routing (maybe refit)
    routing_recall: float  # share of the oracle top-k experts the router also picks
    usage: torch.Tensor  # [E] share of tokens that picked each expert


def _balanced_assign(sim: torch.Tensor, capacity: int) -> torch.Tensor:
    """Assign each row to a column maximising `sim`, at most `capacity` rows per column.

    Rounds of proposals: every unassigned row proposes to its best column that still has room,
    each column keeps its best proposers up to the room left. Vectorised per round; the number
    of rounds stays small because most rows get their first choice.
    sim: [n, E] -> returns [n] column index.
    """
    n, n_cols = sim.shape
    assign = torch.full((n,), -1, dtype=torch.long)
    room = torch.full((n_cols,), capacity, dtype=torch.long)
    work = sim.clone()
    while True:
        free = (assign < 0).nonzero().squeeze(1)
        if free.numel() == 0:
            return assign
        full = room <= 0
        work[:, full] = float("-inf")
        choice = work[free].argmax(dim=1)  # [n_free]
        score = work[free, choice]
        # Columns keep their best proposers: sort by (column, -score) and rank within column.
        order = torch.argsort(score, descending=True, stable=True)
        order = order[torch.argsort(choice[order], stable=True)]
        cols = choice[order]
        starts = torch.searchsorted(cols, cols, right=False)
        rank = torch.arange(cols.numel()) - starts
        accept = rank < room[cols]
        if not bool(accept.any()):
            raise ValueError("balanced assignment cannot place every row (capacity too small)")
        rows = free[order[accept]]
        assign[rows] = cols[accept]
        room -= torch.bincount(cols[accept], minlength=n_cols)


def balanced_kmeans(
    features: torch.Tensor, n_groups: int, iters: int = 12, seed: int = 0
) -> torch.Tensor:
    """Cluster rows of `features` [I, D] into `n_groups` groups of equal size (cosine k-means).

    Returns [n_groups, I / n_groups] row indices, each group sorted.
    """
    n = features.shape[0]
    if n % n_groups:
        raise ValueError(f"{n} neurons cannot be split into {n_groups} equal experts")
    size = n // n_groups
    feats = torch.nn.functional.normalize(features.float(), dim=1)  # [I, D]
    gen = torch.Generator().manual_seed(seed)
    # k-means++ style seeding: spread initial centroids over the neuron space.
    first = int(torch.randint(n, (1,), generator=gen))
    centroids = [feats[first]]
    best = 1 - feats @ feats[first]  # [I] cosine distance to the nearest centroid
    for _ in range(1, n_groups):
        probs = best.clamp_min(0) ** 2
        idx = int(torch.multinomial(probs + 1e-12, 1, generator=gen))
        centroids.append(feats[idx])
        best = torch.minimum(best, 1 - feats @ feats[idx])
    cent = torch.stack(centroids)  # [E, D]
    assign = torch.zeros(n, dtype=torch.long)
    for _ in range(iters):
        sim = feats @ cent.T  # [I, E]
        new = _balanced_assign(sim, size)
        if torch.equal(new, assign):
            break
        assign = new
        cent = torch.zeros_like(cent).index_add_(0, assign, feats)
        cent = torch.nn.functional.normalize(cent, dim=1)
    groups = torch.stack(
        [torch.sort((assign == e).nonzero().squeeze(1)).values for e in range(n_groups)]
    )
    return groups  # [E, I/E]


def group_contributions(
    act: torch.Tensor, down: torch.Tensor, groups: torch.Tensor, chunk: int = 512
) -> torch.Tensor:
    """Norm of each expert group's output: act [N, I], down [H, I] -> [N, E]."""
    n_groups, size = groups.shape
    w = down[:, groups.reshape(-1)].reshape(down.shape[0], n_groups, size)  # [H, E, I/E]
    parts = []
    for a in act.split(chunk):  # chunks bound the [n, E, H] temporary
        a = a[:, groups.reshape(-1)].reshape(a.shape[0], n_groups, size)  # [n, E, I/E]
        parts.append(torch.einsum("nes,hes->neh", a, w).norm(dim=2))  # [n, E]
    return torch.cat(parts)


def fit_router(x: torch.Tensor, target: torch.Tensor, rel_lambda: float = 1e-3) -> torch.Tensor:
    """Linear router without bias (Mixtral has none): x [N, H], target [N, E] -> [E, H]."""
    return ridge_solve(x, target, rel_lambda).T.contiguous()


def neuron_mask(selected: torch.Tensor, groups: torch.Tensor, width: int) -> torch.Tensor:
    """selected [N, E] bool -> [N, I] float mask of the neurons of the selected experts."""
    mask = torch.zeros(selected.shape[0], width)
    mask[:, groups.reshape(-1)] = selected.float().repeat_interleave(groups.shape[1], dim=1)
    return mask


def refit_down(
    masked_act: torch.Tensor, target: torch.Tensor, rel_lambda: float = 1e-1
) -> torch.Tensor:
    """Down projection [H, I] that maps the routed activations [N, I] to the target [N, H]."""
    return ridge_solve(masked_act, target, rel_lambda).T.contiguous()


def fit_layer(
    x: torch.Tensor,
    gate_w: torch.Tensor,
    up_w: torch.Tensor,
    down_w: torch.Tensor,
    n_experts: int,
    top_k: int,
    refit: bool = True,
    cluster_tokens: int = 2048,
    seed: int = 0,
    correction: torch.Tensor | None = None,
) -> tuple[LayerFit, torch.Tensor]:
    """MoEfy one dense SwiGLU FFN on its inputs x [N, H]; returns the fit and the MoE output [N, H].

    correction [N, H] (optional) is added to the refit target: the gap between the dense
    model's residual stream and the MoE path's, so this layer also repairs earlier layers' errors.
    """
    act = torch.nn.functional.silu(x @ gate_w.T) * (x @ up_w.T)  # [N, I]
    dense_out = act @ down_w.T  # [N, H]
    target = dense_out if correction is None else dense_out + correction
    step = max(1, x.shape[0] // cluster_tokens)
    groups = balanced_kmeans(act[::step].abs().T, n_experts, seed=seed)  # co-activation features
    contrib = group_contributions(act, down_w, groups)  # [N, E]
    router = fit_router(x, contrib)  # [E, H]
    pred = x @ router.T  # [N, E]
    chosen = pred.topk(top_k, dim=1).indices  # [N, k]
    selected = torch.zeros_like(pred, dtype=torch.bool).scatter_(1, chosen, True)
    oracle = torch.zeros_like(selected).scatter_(1, contrib.topk(top_k, dim=1).indices, True)
    recall = float((selected & oracle).sum()) / float(oracle.sum())
    masked = act * neuron_mask(selected, groups, act.shape[1])  # [N, I]
    down = refit_down(masked, target) if refit else down_w.clone()
    moe_out = masked @ down.T  # [N, H]
    usage = selected.float().mean(dim=0)  # [E]
    return LayerFit(groups, router, down, recall, usage), moe_out
