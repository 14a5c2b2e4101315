"""Next-layer expert predictors (a registry) and their offline evaluation on routing traces.

A predictor sees what is known before layer i's experts run -- layer i's gate input x_i (the
normalized FFN input) and the experts the previous token used -- and names the experts layer
i+1 will need, so they can be prefetched while layer i computes.

- `cross_layer`: x_i through layer i+1's router, top-(k+m) (Fate's cross-layer gate; what the
  `fate` cache policy predicts with).
- `prev_token`: the experts the previous token used in layer i+1 (baseline).
- `linear_map` (ours, the `fate_linear` policy's): a ridge-regression map from x_i straight to
  the multi-hot routing of layer i+1, fitted on a routing trace of *training* text; its scores
  are added to the cross-layer gate's standardized scores and to a small bonus for the
  previous token's experts. It corrects what the residual stream changes between two layers
  (attention of layer i+1 and layer i's own FFN output) without training anything big: one
  [H, E] matrix per layer.
- `wide_map` (ours, what the `fate_plus` cache policy uses): `linear_map`'s scores (or the
  cross-layer gate's alone when no maps are fitted) with the previous-token bonus, predicting
  a wider set, top-2k by default; the policy narrows it to the room the next layer has.

Predictor names are distinct from the cache policies' (`fate`, `fate_linear`, `fate_plus`);
the names predictors had before (the policies' names) stay accepted (`PREDICTOR_ALIASES`), so
saved commands and benchmark arguments keep working.

Accuracy = share of the experts actually used (in layers 1..L-1) that had been predicted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np
    import torch

    from inference.moe.predictors.routing_trace import RoutingTrace


class Predictor:
    """Base: `predict(layer, x, prev)` -> [n, width] expert ids for layer + 1."""

    name: ClassVar[str] = ""
    needs_fit: ClassVar[bool] = False

    def __init__(self, routers: list[torch.Tensor], top_k: int, extra: int = 1) -> None:
        self.routers = routers  # L x [E, H]
        self.top_k = top_k
        self.extra = extra  # m: predict k + m experts
        self.num_experts = int(routers[0].shape[0])

    @property
    def width(self) -> int:
        return min(self.top_k + self.extra, self.num_experts)

    def fit(self, trace: RoutingTrace) -> None:  # pragma: no cover - default: nothing to fit
        return None

    def scores(self, layer: int, x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        """[n, E] scores of layer+1's experts (higher = more likely)."""
        raise NotImplementedError

    def predict(
        self, layer: int, x: torch.Tensor, prev: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [n, H] gate inputs of layer `layer`; prev [n, k] experts the previous tokens used in
        layer+1 (or None) -> [n, width] predicted experts of layer+1."""
        return self.scores(layer, x, prev).topk(self.width, dim=1).indices


class CrossLayerGatePredictor(Predictor):
    """Fate's cross-layer gate: layer i's gate input through layer i+1's router."""

    name = "cross_layer"

    def scores(self, layer: int, x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        return x @ self.routers[layer + 1].T  # [n, E]


class PrevTokenPredictor(Predictor):
    name = "prev_token"

    @property
    def width(self) -> int:
        return self.top_k

    def scores(self, layer: int, x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        import torch

        out = torch.zeros(x.shape[0], self.num_experts)
        if prev is not None:
            # earlier-ranked experts of the previous token score higher
            rank = torch.arange(prev.shape[1], 0, -1, dtype=out.dtype).expand_as(prev)
            out.scatter_(1, prev, rank)
        return out


def ridge_solve(x: torch.Tensor, y: torch.Tensor, rel_lambda: float) -> torch.Tensor:
    """argmin_W ||x W - y||^2 + lam ||W||^2 with lam = rel_lambda * mean diag(x^T x).

    x [N, D], y [N, M] -> W [D, M] via the normal equations (the fitted maps here and the
    routers MoEfication fits both use it).
    """
    import torch

    # float32 products (the N-sized work), float64 only for the small D x D solve
    gram = (x.T @ x).double()  # [D, D]
    lam = rel_lambda * float(gram.diagonal().mean()) + 1e-12
    gram.diagonal().add_(lam)
    rhs = (x.T @ y.float()).double()  # [D, M]
    return torch.linalg.solve(gram, rhs).float()


def _standardize(s: torch.Tensor) -> torch.Tensor:
    return (s - s.mean(dim=1, keepdim=True)) / (s.std(dim=1, keepdim=True) + 1e-6)


class LinearMapPredictor(Predictor):
    """Cross-layer gate scores + a fitted linear correction + a previous-token bonus."""

    name = "linear_map"
    needs_fit = True
    ridge = 1e-2
    prev_bonus = 0.5

    def __init__(self, routers: list[torch.Tensor], top_k: int, extra: int = 1) -> None:
        super().__init__(routers, top_k, extra)
        self.maps: list[torch.Tensor] = []  # (L-1) x [H, E]

    def fit(self, trace: RoutingTrace) -> None:
        import torch

        self.maps = []
        for i in range(trace.layers - 1):
            x = trace.gate_inputs[i]  # [T, H]
            target = torch.zeros(x.shape[0], self.num_experts)
            target.scatter_(1, trace.experts[i + 1], 1.0)  # [T, E] multi-hot routing of layer i+1
            self.maps.append(ridge_solve(x, target, self.ridge))  # [H, E]

    def scores(self, layer: int, x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        if not self.maps:
            raise RuntimeError("linear_map needs fit() on a routing trace of training text first")
        s = _standardize(x @ self.routers[layer + 1].T) + _standardize(x @ self.maps[layer])
        if prev is not None:
            s = s.scatter_add(1, prev, self.prev_bonus * s.new_ones(prev.shape))
        return s

    def state(self) -> dict[str, torch.Tensor]:
        return {f"maps.{i}": m.contiguous() for i, m in enumerate(self.maps)}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.maps = [tensors[f"maps.{i}"] for i in range(len(tensors))]


class WideMapPredictor(LinearMapPredictor):
    """Fitted maps + cross-layer gate + previous-token bonus, wide by default (top-2k).

    Measured on the MoEfied testbed (64 experts, top-8, 1,024 held-out tokens): widening
    helps far more than anything else tried -- a width chosen per token from the router's
    score gap (experts within d standard deviations of the k-th) reached the same accuracy
    only at a larger average width, and a bonus for the experts of the token before the
    previous one lowered accuracy, so neither is used.
    """

    name = "wide_map"
    needs_fit = True

    def __init__(self, routers: list[torch.Tensor], top_k: int, extra: int = -1) -> None:
        super().__init__(routers, top_k, top_k if extra < 0 else extra)
        self._joint: dict[int, torch.Tensor] = {}  # layer -> [H, E | 2E] router (+ map)
        # column-centred numpy copies for `scores_numpy` (no torch op per decoded token);
        # key: layer (router + map of layer + 1) or -1 - target (that layer's router alone)
        self._centered: dict[int, np.ndarray] = {}

    def scores(self, layer: int, x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        import torch

        w = self._joint.get(layer)
        if w is None:  # one matmul for router and map: this runs per layer per decoded token
            parts = [self.routers[layer + 1].T] + ([self.maps[layer]] if self.maps else [])
            w = self._joint[layer] = torch.cat(parts, dim=1).contiguous()  # [H, E] or [H, 2E]
        s = (x @ w).view(x.shape[0], -1, self.num_experts)  # [n, 1|2, E]
        s = ((s - s.mean(dim=2, keepdim=True)) / (s.std(dim=2, keepdim=True) + 1e-6)).sum(dim=1)
        if prev is not None:
            s = s.scatter_add(1, prev, self.prev_bonus * s.new_ones(prev.shape))
        return s  # [n, E]

    def scores_numpy(
        self, layer: int, x: torch.Tensor, prev: np.ndarray | None, target: int | None = None
    ) -> np.ndarray:
        """`scores` as a numpy array [n, E], for the engine's per-token path (E-long vectors
        cost ~1 us per numpy op against ~10 for torch). `target`: score that layer's router
        alone (Fate's gate, e.g. two layers ahead) instead of layer + 1 with the maps."""
        import numpy as np

        xn = _as_numpy(x)  # [n, H] float32
        key = layer if target is None else -1 - target
        w = self._centered.get(key)
        if w is None:
            if target is not None:
                parts = [self.routers[target].T]  # Fate's gate of that layer alone
            else:
                parts = [self.routers[layer + 1].T] + ([self.maps[layer]] if self.maps else [])
            # each part's columns centred once: x @ (W - mean_E W) = x @ W - mean_E(x @ W),
            # so the per-token mean needs no op of its own
            w = np.concatenate(
                [p.float().numpy() - p.float().numpy().mean(axis=1, keepdims=True) for p in parts],
                axis=1,
            )
            w = self._centered[key] = np.ascontiguousarray(w, dtype=np.float32)  # [H, P*E]
        d = (xn @ w).reshape(xn.shape[0], -1, self.num_experts)  # [n, P, E], zero mean over E
        std = np.sqrt(np.einsum("npe,npe->np", d, d) / (self.num_experts - 1))  # unbiased, as torch
        out = (d / (std[:, :, None] + 1e-6)).sum(axis=1)  # [n, E]
        if prev is not None:  # a token's experts are distinct: plain fancy-index add is exact
            out[np.arange(len(prev))[:, None], prev] += self.prev_bonus
        return out


def _as_numpy(x: torch.Tensor) -> np.ndarray:
    """x [n, H] as a float32 numpy array (a view when it already is one on the CPU)."""
    import torch

    if x.dtype != torch.float32 or x.device.type != "cpu" or x.requires_grad:
        x = x.detach().float().cpu()
    return x.numpy()


# file names kept from before the rename: MoEfied checkpoints already built ship this file
SHIPPED_MAPS = "predictor_fate_linear.safetensors"


def write_predictor_maps(folder: Path, maps: list[torch.Tensor]) -> None:
    """Store fitted cross-layer maps with a checkpoint (what `fitted_predictor` loads first)."""
    from safetensors.torch import save_file

    save_file(
        {f"maps.{i}": m.contiguous() for i, m in enumerate(maps)}, str(Path(folder) / SHIPPED_MAPS)
    )


PREDICTORS: dict[str, type[Predictor]] = {}
# the names predictors had when they shared them with the cache policies
PREDICTOR_ALIASES: dict[str, str] = {
    "fate": "cross_layer",
    "fate_linear": "linear_map",
    "fate_plus": "wide_map",
}


def register_predictor(cls: type[Predictor]) -> type[Predictor]:
    """Class decorator adding a predictor to the registry (like policies.register_policy)."""
    PREDICTORS[cls.name] = cls
    return cls


for _cls in (CrossLayerGatePredictor, PrevTokenPredictor, LinearMapPredictor, WideMapPredictor):
    register_predictor(_cls)


def predictor_name(name: str) -> str:
    """The registered name `name` means (an old alias resolved); UnknownName if none."""
    from inference.moe.errors import unknown

    name = PREDICTOR_ALIASES.get(name, name)
    if name not in PREDICTORS:
        raise unknown("predictor", name, PREDICTORS)
    return name


def create_predictor(
    name: str, routers: list[torch.Tensor], top_k: int, extra: int = 1
) -> Predictor:
    return PREDICTORS[predictor_name(name)](routers, top_k, extra)


@dataclass
class PredictionReport:
    name: str
    width: int
    accuracy: float
    per_layer: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "width": self.width,
            "accuracy": self.accuracy,
            "per_layer": self.per_layer,
        }


def evaluate(predictor: Predictor, trace: RoutingTrace) -> PredictionReport:
    """Offline accuracy on a trace: for every token and layer i+1 >= 1, predicted vs used."""

    per_layer = []
    hit_total, used_total = 0, 0
    for i in range(trace.layers - 1):
        # token 0 has no previous token: score tokens 1..T-1 so every predictor sees the same
        used = trace.experts[i + 1][1:]  # [T-1, k]
        prev = trace.experts[i + 1][:-1]  # [T-1, k]
        pred = predictor.predict(i, trace.gate_inputs[i][1:], prev)  # [T-1, w]
        hits = (pred.unsqueeze(2) == used.unsqueeze(1)).any(dim=1).sum()  # used experts predicted
        per_layer.append(round(float(hits) / used.numel(), 4))
        hit_total += int(hits)
        used_total += used.numel()
    return PredictionReport(
        predictor.name, predictor.width, round(hit_total / used_total, 4), per_layer
    )


def fitted_predictor(
    name: str,
    folder: Path,
    routers: list[torch.Tensor],
    top_k: int,
    extra: int = 1,
    cache_dir: Path | None = None,
    train_tokens: int = 2048,
) -> Predictor:
    """A predictor ready to use. Fitted ones are fitted once on a routing trace of the model's
    *training* text and cached in cache_dir (default: next to the checkpoint), keyed by the
    checkpoint's folder and weights file times, so the held-out text never leaks into them."""
    import hashlib

    from safetensors.torch import load_file, save_file

    from inference.moe.predictors.routing_trace import trace_text

    pred = create_predictor(name, routers, top_k, extra)
    if not pred.needs_fit:
        return pred
    assert isinstance(pred, LinearMapPredictor)
    folder = Path(folder).resolve()
    shipped = folder / SHIPPED_MAPS  # written by `memex moe moefy` from its training activations
    if shipped.is_file():
        pred.load_state(load_file(str(shipped)))
        return pred
    stamp = ";".join(
        f"{p.name}:{p.stat().st_mtime_ns}"
        for p in sorted(folder.glob("*.safetensors"))
        if not p.name.startswith("predictor_")
    )
    key = hashlib.sha1(f"{folder};{stamp}".encode()).hexdigest()[:16]
    where = Path(cache_dir) if cache_dir else folder
    where.mkdir(parents=True, exist_ok=True)
    # every LinearMapPredictor fits the same maps: share one file
    path = where / f"predictor_fate_linear_{key}.safetensors"
    if path.is_file():
        pred.load_state(load_file(str(path)))
        return pred
    pred.fit(trace_text(Path(folder), "train", train_tokens))
    tmp = path.with_name(path.name + ".tmp")
    save_file(pred.state(), str(tmp))
    tmp.replace(path)
    return pred
