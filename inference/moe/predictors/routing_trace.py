"""Routing traces of real text: which experts each token used in every MoE layer, and the
gate inputs (normalized FFN inputs) that produced them.

Recorded with the transformers reference model of any supported HF MoE checkpoint (Mixtral,
OLMoE, Qwen2-MoE, the MoEfied testbed): a forward pre-hook on each layer's router module
captures its input x; the routing is recomputed as top-k of x @ W_router^T, which is what
all three families select (softmax is monotone). Offline analyses (`lrc`, predictor
accuracy) read these traces; the engine itself never needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.moe.errors import MoEError

if TYPE_CHECKING:
    import torch


@dataclass
class RoutingTrace:
    """Per MoE layer: selected experts, gate inputs and the router weights."""

    experts: list[torch.Tensor]  # L x [T, k] long, in routing order (best first)
    gate_inputs: list[torch.Tensor]  # L x [T, H] float32
    routers: list[torch.Tensor]  # L x [E, H] float32
    top_k: int
    num_experts: int

    @property
    def tokens(self) -> int:
        return int(self.experts[0].shape[0])

    @property
    def layers(self) -> int:
        return len(self.experts)


def _router_modules(model: Any) -> list[Any]:
    """Each decoder layer's router module (the one holding weight [E, H])."""
    routers = []
    for layer in model.model.layers:
        block = getattr(layer, "block_sparse_moe", None) or getattr(layer, "mlp", None)
        gate = getattr(block, "gate", None)
        weight = getattr(gate, "weight", None)
        if weight is not None and weight.dim() == 2 and not hasattr(block, "gate_proj"):
            routers.append(gate)
    if not routers:
        raise MoEError("This model has no MoE router layers to trace.")
    return routers


def record_trace(model: Any, ids: torch.Tensor, top_k: int, batch: int = 4) -> RoutingTrace:
    """Run ids [B, T] through an HF MoE model and trace every router; sequences are concatenated."""
    import torch

    gates = _router_modules(model)
    captured: list[list[torch.Tensor]] = [[] for _ in gates]

    def hook_for(i: int) -> Any:
        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            x = args[0]
            captured[i].append(x.detach().reshape(-1, x.shape[-1]).float().clone())  # [b*T, H]

        return hook

    handles = [g.register_forward_pre_hook(hook_for(i)) for i, g in enumerate(gates)]
    try:
        with torch.inference_mode():
            for chunk in ids.split(batch):
                model(input_ids=chunk)
    finally:
        for h in handles:
            h.remove()
    routers = [g.weight.detach().float().clone() for g in gates]
    inputs = [torch.cat(c) for c in captured]  # [T_total, H]
    experts = [(x @ w.T).topk(top_k, dim=1).indices for x, w in zip(inputs, routers)]
    return RoutingTrace(experts, inputs, routers, top_k, int(routers[0].shape[0]))


def load_reference(folder: Path) -> tuple[Any, Any, int]:
    """(transformers model, tokenizer, top_k) for an HF MoE checkpoint folder."""
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    folder = Path(folder)
    try:
        config = AutoConfig.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype="float32").eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise MoEError(f"Cannot load the MoE checkpoint in {folder} ({exc}).") from exc
    top_k = int(getattr(config, "num_experts_per_tok", 0) or 0)
    if top_k < 1:
        raise MoEError(
            f"The checkpoint in {folder} is not a mixture-of-experts model "
            "(no num_experts_per_tok)."
        )
    return model, tokenizer, top_k


def trace_text(
    folder: Path, split: str = "eval", tokens: int = 2048, seq_len: int = 256
) -> RoutingTrace:
    """Trace `tokens` tokens of the held-out (or training) text through the checkpoint."""
    from inference.moe.tools.text import token_batch

    model, tokenizer, top_k = load_reference(folder)
    vocab = int(model.config.vocab_size)
    ids = token_batch(tokenizer, split, tokens, min(seq_len, tokens))
    ids = ids.clamp_max(vocab - 1)  # tiny test models have tiny vocabularies
    return record_trace(model, ids, top_k)
