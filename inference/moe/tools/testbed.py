"""Real-size testbeds: experts of a published model's size on disk, routing replayed.

`olmoe-real` has OLMoE-1B-7B's expert shape (64 experts, hidden 2048, intermediate 1024,
top-8, bf16: 12.6 MB per expert) over 10 layers, i.e. 8.05 GB of experts in one slow-tier
file read with O_DIRECT. The weights are random (seeded), written once under a cache folder
outside the repository and reused. Bytes and FLOPs are real size; the routing comes from a
`RoutingSource`:

- `trace` (`TraceRouting`): the MoEfied SmolLM2's routing on held-out text. Testbed layer j
  replays trace layer `first + j` (consecutive layers, so cross-layer prediction keeps its
  meaning), expert e is expert e (both have 64). Per token the trace holds the MoEfied
  router's logits (top-8 of them, softmaxed, become the engine's routing and combine
  weights) and the gate input that produced them ([576], the normalized FFN input). What
  the predictors see: that gate input, the MoEfied routers and the fitted cross-layer maps
  shipped with the MoEfied model (so `fate`/`fate_plus` predict exactly as they would on the
  MoEfied model) and, from the engine's own history, the experts earlier tokens used. They
  never see the testbed's hidden states (random weights carry no routing information).
- `random` (`RandomRouting`): k distinct experts uniformly at random per token and layer
  (seeded, identical for every policy); predictors see the testbed's own gate inputs and
  routers, which say nothing about that routing: the no-locality, no-predictability floor.
- `model`: the testbed's own routers (what llama.cpp computes on the same weights).

Token position p replays trace token p mod T.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.moe.errors import MoEError, unknown

if TYPE_CHECKING:
    import torch

    from inference.moe.engine import LoadedModel


@dataclass(frozen=True)
class TestbedShape:
    layers: int
    experts: int
    hidden: int
    expert_dim: int
    top_k: int
    heads: int
    kv_heads: int
    vocab: int
    dtype: str = "bfloat16"
    seed: int = 0

    @property
    def expert_bytes(self) -> int:
        import torch

        return (
            3
            * self.hidden
            * self.expert_dim
            * torch.empty((), dtype=getattr(torch, self.dtype)).element_size()
        )


TESTBEDS: dict[str, TestbedShape] = {
    # OLMoE-1B-7B's expert shape; 10 layers = 8.05 GB of bf16 experts
    "olmoe-real": TestbedShape(10, 64, 2048, 1024, 8, 16, 16, 50304),
    # the same code path at test size (seconds to write and run)
    "olmoe-tiny": TestbedShape(3, 8, 64, 32, 2, 4, 4, 256),
}
ROUTINGS = ("trace", "random", "model")
TRACE_FIRST_LAYER = 10  # trace layers first..first+L-1 (the MoEfied model has 30)


def testbed_shape(name: str) -> TestbedShape:
    shape = TESTBEDS.get(name)
    if shape is None:
        raise unknown("testbed", name, TESTBEDS)
    return shape


def _cfg(shape: TestbedShape, name: str) -> Any:
    from inference.moe.config import MoEConfig

    return MoEConfig(
        family="olmoe",
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        num_layers=shape.layers,
        num_heads=shape.heads,
        num_kv_heads=shape.kv_heads,
        head_dim=shape.hidden // shape.heads,
        num_experts=shape.experts,
        top_k=shape.top_k,
        expert_dim=shape.expert_dim,
        norm_topk_prob=False,
        rms_eps=1e-5,
        moe_layers=tuple(range(shape.layers)),
        max_position=4096,
        name=name,
    )


def _dense_tensors(shape: TestbedShape) -> dict[str, torch.Tensor]:
    """The non-expert weights (HF OLMoE names), random with a fixed seed."""
    import torch

    g = torch.Generator().manual_seed(shape.seed)
    dtype = getattr(torch, shape.dtype)
    h, d = shape.hidden, shape.hidden // shape.heads

    def rnd(*dims: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*dims, generator=g) * std).to(dtype)

    out = {
        "model.embed_tokens.weight": rnd(shape.vocab, h, std=1.0),
        "model.norm.weight": torch.ones(h, dtype=dtype),
        "lm_head.weight": rnd(shape.vocab, h),
    }
    for i in range(shape.layers):
        p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
        out[p + "input_layernorm.weight"] = torch.ones(h, dtype=dtype)
        out[p + "post_attention_layernorm.weight"] = torch.ones(h, dtype=dtype)
        out[a + "q_proj.weight"] = rnd(shape.heads * d, h)
        out[a + "k_proj.weight"] = rnd(shape.kv_heads * d, h)
        out[a + "v_proj.weight"] = rnd(shape.kv_heads * d, h)
        out[a + "o_proj.weight"] = rnd(h, shape.heads * d)
        out[a + "q_norm.weight"] = torch.ones(shape.heads * d, dtype=dtype)
        out[a + "k_norm.weight"] = torch.ones(shape.kv_heads * d, dtype=dtype)
        out[p + "mlp.gate.weight"] = rnd(shape.experts, h, std=0.5)
    return out


def expert_blob(shape: TestbedShape, index: int) -> torch.Tensor:
    """Expert `index` (layer * E + e) as gate | up | down, flat; seeded per expert."""
    import torch

    g = torch.Generator().manual_seed(shape.seed * 1_000_003 + 7919 * index + 1)
    n = 3 * shape.hidden * shape.expert_dim
    return (torch.randn(n, generator=g) * 0.02).to(getattr(torch, shape.dtype))


def ensure_testbed(name: str, root: Path, progress: Any = None) -> Path:
    """The testbed's folder under `root` (dense.safetensors, experts.bin, testbed.json),
    written on first use (minutes for olmoe-real) and reused afterwards."""
    from safetensors.torch import save_file

    from inference.moe.storage.store import expert_layout, write_expert_file

    shape = testbed_shape(name)
    folder = Path(root) / name
    meta = folder / "testbed.json"
    if meta.is_file() and json.loads(meta.read_text()).get("shape") == asdict(shape):
        return folder
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    cfg = _cfg(shape, name)
    layout = expert_layout(cfg, getattr(torch, shape.dtype))
    if progress:
        progress(
            f"writing testbed {name}: {layout.total_bytes / 1e9:.2f} GB of experts to {folder}"
        )
    free = shutil.disk_usage(folder).free
    if free < layout.total_bytes * 1.05:
        raise MoEError(
            f"Testbed {name} needs {layout.total_bytes / 1e9:.1f} GB in {folder}; "
            f"only {free / 1e9:.1f} GB are free."
        )
    tmp = folder / f"dense.{os.getpid()}.tmp"
    save_file(_dense_tensors(shape), str(tmp))
    os.replace(tmp, folder / "dense.safetensors")
    write_expert_file(folder / "experts.bin", layout, lambda i: expert_blob(shape, i))
    meta.write_text(
        json.dumps({"name": name, "shape": asdict(shape), "expert_bytes_total": layout.total_bytes})
    )
    return folder


def load_testbed(
    folder: Path,
    device: str = "cpu",
    routing: str = "model",
    trace: Path | None = None,
    direct_io: bool = True,
) -> LoadedModel:
    """A `LoadedModel` on the testbed's weights, expert slow tier on disk, the given routing."""
    import torch
    from safetensors.torch import load_file

    from inference.moe.engine import LoadedModel
    from inference.moe.storage.store import DiskSlowTier, expert_layout
    from inference.moe.weights import DenseWeights, LayerWeights

    folder = Path(folder)
    meta = json.loads((folder / "testbed.json").read_text())
    shape = TestbedShape(**meta["shape"])
    cfg = _cfg(shape, meta["name"])
    dtype = getattr(torch, shape.dtype)
    w = load_file(str(folder / "dense.safetensors"), device=device)
    layers = []
    for i in range(shape.layers):
        p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
        layers.append(
            LayerWeights(
                in_norm=w[p + "input_layernorm.weight"],
                post_norm=w[p + "post_attention_layernorm.weight"],
                q=w[a + "q_proj.weight"],
                k=w[a + "k_proj.weight"],
                v=w[a + "v_proj.weight"],
                o=w[a + "o_proj.weight"],
                q_norm=w[a + "q_norm.weight"],
                k_norm=w[a + "k_norm.weight"],
                router=w[p + "mlp.gate.weight"],
            )
        )
    d = cfg.head_dim
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float) / d))
    dense = DenseWeights(
        embed=w["model.embed_tokens.weight"],
        norm=w["model.norm.weight"],
        lm_head=w["lm_head.weight"],
        layers=layers,
        inv_freq=inv_freq.to(device),
    )
    slow = DiskSlowTier(
        folder / "experts.bin", expected=expert_layout(cfg, dtype), direct=direct_io
    )
    loaded = LoadedModel(cfg, dense, slow, device, dtype, direct_io=direct_io)
    if routing == "trace":
        src = TraceRouting(find_trace(trace), cfg, device)
        loaded.routing = src
        loaded.predictor_routers = tuple(src.routers)
        loaded.predictor_folder = src.folder
    elif routing == "random":
        loaded.routing = RandomRouting(cfg, device, seed=shape.seed)
    elif routing != "model":
        raise unknown("routing", routing, ROUTINGS)
    return loaded


# -- routing sources ---------------------------------------------------------------------
class RoutingSource:
    """`route(layer, pos, h)` -> (weights [n, k], experts [n, k], predictors' gate input)."""

    def route(self, layer: int, pos: int, h: torch.Tensor) -> tuple[Any, Any, Any]:
        raise NotImplementedError


class _Table(RoutingSource):
    """Routing precomputed per layer for T positions; position p uses row p mod T."""

    def __init__(self, weights: list[Any], ids: list[Any], gates: list[Any] | None) -> None:
        self.weights, self.ids, self.gates = weights, ids, gates
        self.length = int(ids[0].shape[0])

    def route(self, layer: int, pos: int, h: torch.Tensor) -> tuple[Any, Any, Any]:
        n = h.shape[0]
        start = pos % self.length
        if start + n <= self.length:  # decode: a slice, no index op
            rows: Any = slice(start, start + n)
        else:
            import torch

            rows = torch.arange(pos, pos + n) % self.length
        gate = h if self.gates is None else self.gates[layer][rows]
        return self.weights[layer][rows].to(h.dtype), self.ids[layer][rows], gate


class TraceRouting(_Table):
    """Recorded routing of a trained router (see module doc); `folder` also holds the
    fitted predictor maps of the mapped layers (predict.SHIPPED_MAPS)."""

    def __init__(self, path: Path, cfg: Any, device: str) -> None:
        import torch
        from safetensors import safe_open

        self.folder = path.parent
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata().get("memex", "{}"))
            layers = int(meta.get("layers", 0))
            if layers < cfg.num_moe_layers or int(meta.get("experts", 0)) != cfg.num_experts:
                raise MoEError(
                    f"The routing trace {path} has {layers} layers of "
                    f"{meta.get('experts')} experts; the testbed needs "
                    f"{cfg.num_moe_layers} of {cfg.num_experts}."
                )
            logits = [f.get_tensor(f"logits.{j}") for j in range(cfg.num_moe_layers)]
            gates = [f.get_tensor(f"gate_inputs.{j}").to(device) for j in range(cfg.num_moe_layers)]
            self.routers = [
                f.get_tensor(f"routers.{j}").to(device) for j in range(cfg.num_moe_layers)
            ]
        self.meta = meta
        weights, ids = [], []
        for lg in logits:  # OLMoE routing: softmax over all experts, top-k, not renormalized
            w, i = torch.topk(torch.softmax(lg.float(), dim=-1), cfg.top_k, dim=-1)
            weights.append(w.to(device))
            ids.append(i.to(device))
        super().__init__(weights, ids, gates)


class RandomRouting(_Table):
    def __init__(self, cfg: Any, device: str, seed: int = 0, length: int = 4096) -> None:
        import torch

        g = torch.Generator().manual_seed(seed + 12345)
        weights, ids = [], []
        for _ in range(cfg.num_moe_layers):
            ids.append(
                torch.rand(length, cfg.num_experts, generator=g)
                .argsort(dim=1)[:, : cfg.top_k]
                .contiguous()
                .to(device)
            )
            w = torch.softmax(torch.randn(length, cfg.top_k, generator=g), dim=-1)
            weights.append(w.sort(dim=1, descending=True).values.to(device))
        super().__init__(weights, ids, None)


def find_trace(path: Path | None) -> Path:
    if path is None:
        raise MoEError("--routing trace needs a routing trace (trace:FILE).")
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / TRACE_FILE
    if not path.is_file():
        raise MoEError(
            f"No routing trace at {path}; `memex moe bench --testbed NAME --routing "
            "trace` records the default one."
        )
    return path


TRACE_FILE = "routing.safetensors"


def write_trace(
    moefied: Path, out: Path, tokens: int = 512, first: int = TRACE_FIRST_LAYER, layers: int = 10
) -> Path:
    """Record the MoEfied model's routing on `tokens` held-out tokens for testbed replay:
    layers first..first+layers-1 (logits, gate inputs, routers) and their fitted maps."""
    from safetensors.torch import save_file

    from inference.moe.predictors.predict import SHIPPED_MAPS, fitted_predictor
    from inference.moe.predictors.routing_trace import trace_text

    trace = trace_text(Path(moefied), "eval", tokens)
    if first + layers > trace.layers:
        raise MoEError(
            f"The model in {moefied} has {trace.layers} MoE layers; layers "
            f"{first}..{first + layers - 1} were asked for."
        )
    tensors: dict[str, torch.Tensor] = {}
    for j in range(layers):
        x, w = trace.gate_inputs[first + j], trace.routers[first + j]
        tensors[f"logits.{j}"] = (x @ w.T).contiguous()  # [T, E] router logits
        tensors[f"gate_inputs.{j}"] = x.contiguous()  # [T, H_trace]
        tensors[f"routers.{j}"] = w.contiguous()  # [E, H_trace]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "source": Path(moefied).name,
        "layers": layers,
        "first_layer": first,
        "experts": trace.num_experts,
        "source_top_k": trace.top_k,
        "tokens": trace.tokens,
        "split": "eval",
    }
    tmp = out / f"{TRACE_FILE}.{os.getpid()}.tmp"
    save_file(tensors, str(tmp), metadata={"memex": json.dumps(meta)})
    # the fitted cross-layer maps (layer i -> i+1) the source model's predictors use: shipped
    # with a MoEfied model, else fitted on its training text as `fitted_predictor` does
    pred = fitted_predictor(
        "fate_linear", Path(moefied), trace.routers, trace.top_k, cache_dir=out / "fit"
    )
    maps = pred.maps  # type: ignore[attr-defined]
    save_file(
        {f"maps.{j}": maps[first + j].contiguous() for j in range(layers - 1)},
        str(out / SHIPPED_MAPS),
    )
    os.replace(tmp, out / TRACE_FILE)  # last: a complete trace is one with its maps
    return out / TRACE_FILE
