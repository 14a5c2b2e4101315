"""Completion-only causal-LM loss, plain or in chunks that never build the full logits.

The [B, T, V] logits are the largest tensor in training (SmolLM2: V = 49,152, ~384 MB per
copy at 4 x 512). Only answer tokens carry loss, so we gather their hidden states first and
project them to the vocabulary a chunk at a time under checkpointing: backward recomputes
each chunk's logits instead of keeping them.
"""

from __future__ import annotations

from typing import Any

from finetune.batches import IGNORE


def _ce_sum(h: Any, y: Any, weight: Any) -> Any:
    import torch.nn.functional as F

    logits = h @ weight.t()  # (C, V)
    return F.cross_entropy(logits.float(), y, reduction="sum")


def plain_loss(causal_lm: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """Baseline: full logits for every position, then masked cross-entropy (sum, count)."""
    import torch.nn.functional as F

    out = causal_lm(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        use_cache=False,
    )
    logits = out.logits[:, :-1]  # (B, T-1, V)
    target = batch["labels"][:, 1:]  # (B, T-1)
    n = int((target != IGNORE).sum())
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        target.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return loss, n


def chunked_loss(causal_lm: Any, batch: dict[str, Any], chunk: int) -> tuple[Any, int]:
    """Same value as plain_loss, peak memory of one (chunk, V) logits block."""
    from torch.utils.checkpoint import checkpoint

    decoder = causal_lm.get_decoder() if hasattr(causal_lm, "get_decoder") else causal_lm.model
    head = causal_lm.get_output_embeddings()
    hidden = decoder(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        use_cache=False,
    ).last_hidden_state  # (B, T, H)
    target = batch["labels"][:, 1:]  # (B, T-1)
    keep = target != IGNORE
    h = hidden[:, :-1][keep]  # (N, H) answer positions only
    y = target[keep]  # (N,)
    n = int(y.shape[0])
    total = hidden.new_zeros(())
    for i in range(0, n, chunk):
        total = total + checkpoint(
            _ce_sum, h[i : i + chunk], y[i : i + chunk], head.weight, use_reentrant=False
        )
    if getattr(head, "bias", None) is not None:  # pragma: no cover - llama-family heads have none
        raise NotImplementedError("chunked loss supports bias-free output heads only")
    return total, n


def checkpoint_layers(causal_lm: Any, skip: int = 0, kept_context: Any = None) -> int:
    """Recompute each decoder layer in backward; only its input hidden state is saved.

    Reentrant checkpointing saves that input through ctx.save_for_backward, so an outer
    saved_tensors_hooks (the disk spill) sees it. It needs an input that requires grad,
    hence the hook on the embeddings. The last `skip` layers are not recomputed (they keep
    their activations: memory for speed); their forward runs inside `kept_context()` when
    given. Returns the number of recomputed layers.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    layers = _decoder_layers(causal_lm)
    n_ckpt = len(layers) - max(0, min(skip, len(layers)))
    for pos, layer in enumerate(layers):
        orig = layer.forward
        if pos >= n_ckpt:
            if kept_context is not None:

                def kept(*args: Any, _orig: Any = orig, **kwargs: Any) -> Any:
                    with kept_context():
                        return _orig(*args, **kwargs)

                layer.forward = kept
            continue

        def forward(*args: Any, _orig: Any = orig, **kwargs: Any) -> Any:
            if args:
                hidden, rest = args[0], args[1:]
            else:
                hidden, rest = kwargs.pop("hidden_states"), ()
            if not (torch.is_grad_enabled() and hidden.requires_grad):
                return _orig(hidden, *rest, **kwargs)
            return checkpoint(lambda h: _orig(h, *rest, **kwargs), hidden, use_reentrant=True)

        layer.forward = forward
    emb = causal_lm.get_input_embeddings()
    emb.register_forward_hook(lambda _m, _i, out: out.requires_grad_(True))
    return n_ckpt


def _decoder_layers(causal_lm: Any) -> Any:
    import torch

    n = int(getattr(causal_lm.config, "num_hidden_layers", 0))
    for mod in causal_lm.modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n:
            return mod
    raise ValueError("cannot find the decoder layers to checkpoint")
