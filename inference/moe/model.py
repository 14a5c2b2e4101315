"""The engine's own forward pass: attention with a KV cache, norms, routed experts.

Batch size 1. Per MoE layer: router -> top-k -> tokens grouped by expert -> the cache
brings in what is missing (resident experts compute first) -> expert matmuls ->
weighted combine. Chunked prefill (`prefill_chunk` > 0): a long prompt's MoE blocks run
chunk by chunk, tokens of a chunk regrouped by expert (ExpertFlow), and the experts of
chunk c+1 are prefetched while chunk c computes; attention still sees the whole prompt, and
every token's expert outputs are summed in the same order, so logits match unchunked. It
mirrors transformers' Mixtral/OLMoE/Qwen2-MoE math so fp32 logits match the reference to
~1e-5.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from inference.moe.config import MoEConfig
from inference.moe.weights import DenseWeights, LayerWeights

if TYPE_CHECKING:
    from inference.moe.cache import ExpertCache
    from inference.moe.tools.testbed import RoutingSource


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # same op order as transformers' RMSNorm: normalize in fp32, scale in the input dtype
    xf = x.to(torch.float32)
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class KVCache:
    """Keys/values per layer: [1, kvh, capacity, D], grown by doubling."""

    def __init__(
        self, cfg: MoEConfig, device: str, dtype: torch.dtype, capacity: int = 256
    ) -> None:
        self.cfg, self.device, self.dtype = cfg, device, dtype
        self.length = 0
        self._cap = capacity
        shape = (1, cfg.num_kv_heads, capacity, cfg.head_dim)
        self.k = [torch.empty(shape, device=device, dtype=dtype) for _ in range(cfg.num_layers)]
        self.v = [torch.empty(shape, device=device, dtype=dtype) for _ in range(cfg.num_layers)]

    def _grow(self, need: int) -> None:
        cap = self._cap
        while cap < need:
            cap *= 2
        for store in (self.k, self.v):
            for i, old in enumerate(store):
                new = torch.empty(
                    (*old.shape[:2], cap, old.shape[3]), device=self.device, dtype=self.dtype
                )
                new[:, :, : self.length] = old[:, :, : self.length]
                store[i] = new
        self._cap = cap

    def append(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """k, v: [1, kvh, T, D] at positions length..length+T; returns all keys/values so far."""
        t = k.shape[2]
        end = self.length + t
        if end > self._cap:
            self._grow(end)
        self.k[layer][:, :, self.length : end] = k
        self.v[layer][:, :, self.length : end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, t: int) -> None:
        self.length += t


COMPUTE_PATHS = ("auto", "fused", "loop")


class MoEModel:
    """Non-expert weights on the device, experts through an `ExpertCache`."""

    def __init__(
        self,
        cfg: MoEConfig,
        dense: DenseWeights,
        cache: ExpertCache,
        device: str,
        dtype: torch.dtype,
        prefill_chunk: int = 0,
        compute: str = "auto",
    ) -> None:
        from inference.moe.fused import FusedExperts, grouped_supported

        self.cfg, self.dense, self.cache = cfg, dense, cache
        self.device, self.dtype = device, dtype
        self._moe = set(cfg.moe_layers)
        self.prefill_chunk = prefill_chunk  # tokens per MoE chunk in prefill; 0: whole prompt
        if compute not in COMPUTE_PATHS:
            from inference.moe.errors import unknown

            raise unknown("expert compute path", compute, COMPUTE_PATHS)
        fused = compute != "loop" and grouped_supported(device, dtype)
        if compute == "fused" and not fused:
            from inference.moe.errors import MoEError

            raise MoEError(
                f"The fused expert path needs torch._grouped_mm for {dtype} on {device}."
            )
        # fused: one grouped GEMM per wave of ready experts (fused.py); loop: four ops per expert
        self.compute = "fused" if fused else "loop"
        self.routing: RoutingSource | None = None  # replayed routing (testbed.py), else routers
        self._pos = 0  # position of the running forward's first token
        self._gate: torch.Tensor | None = None  # what predictors see as the layer's gate input
        self._fused = FusedExperts(cache.fast, cfg.hidden_size, cfg.expert_dim) if fused else None

    def new_kv(self) -> KVCache:
        return KVCache(self.cfg, self.device, self.dtype)

    # -- forward -------------------------------------------------------------------------
    @torch.no_grad()
    def forward(
        self, ids: Sequence[int] | torch.Tensor, kv: KVCache, last_only: bool = False
    ) -> torch.Tensor:
        """Logits [T, V] (or [1, V] with last_only) for `ids` following what `kv` holds."""
        ids_t = torch.as_tensor(ids, dtype=torch.long, device=self.device).reshape(-1)
        self.cache.policy.on_tokens(ids_t.tolist())
        t = ids_t.shape[0]
        past = kv.length
        self._pos = past
        x = F.embedding(ids_t, self.dense.embed)  # [T, H]
        cos, sin = self._rope(past, t)
        mask = self._mask(past, t)
        for i, lw in enumerate(self.dense.layers):
            h = rms_norm(x, lw.in_norm, self.cfg.rms_eps)
            x = x + self._attention(i, lw, h, kv, cos, sin, mask)
            h = rms_norm(x, lw.post_norm, self.cfg.rms_eps)
            x = x + (
                self._moe_block(i, lw, h)
                if i in self._moe
                else self._mlp(h, lw.dense_gate_up, lw.dense_down)
            )
        kv.advance(t)
        if last_only:
            x = x[-1:]
        x = rms_norm(x, self.dense.norm, self.cfg.rms_eps)
        return F.linear(x, self.dense.lm_head)  # [T, V]

    def _rope(self, past: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.arange(past, past + t, device=self.device, dtype=torch.float32)
        freqs = pos[:, None] * self.dense.inv_freq.float()[None, :]  # [T, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)  # [T, D]
        s = self.dense.attention_scaling
        return (emb.cos() * s).to(self.dtype), (emb.sin() * s).to(self.dtype)

    def _mask(self, past: int, t: int) -> torch.Tensor | None:
        """Boolean [T, S] (True = attend) or None when plain causal/no mask suffices."""
        window = self.cfg.sliding_window
        total = past + t
        if (window is None or total <= window) and (t == 1 or past == 0):
            return None
        q = torch.arange(past, total, device=self.device)[:, None]
        k = torch.arange(total, device=self.device)[None, :]
        allowed = k <= q
        if window is not None:
            allowed &= k > q - window
        return allowed

    def _attention(
        self,
        i: int,
        lw: LayerWeights,
        h: torch.Tensor,
        kv: KVCache,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        cfg = self.cfg
        t = h.shape[0]
        q = F.linear(h, lw.q, lw.q_bias)  # [T, nh*D]
        k = F.linear(h, lw.k, lw.k_bias)  # [T, kvh*D]
        v = F.linear(h, lw.v, lw.v_bias)
        if lw.q_norm is not None:
            q = rms_norm(q, lw.q_norm, cfg.rms_eps)
            k = rms_norm(k, lw.k_norm, cfg.rms_eps)
        if cfg.clip_qkv is not None:
            q, k, v = (z.clamp(-cfg.clip_qkv, cfg.clip_qkv) for z in (q, k, v))
        q = q.view(t, cfg.num_heads, cfg.head_dim).transpose(0, 1).unsqueeze(0)  # [1, nh, T, D]
        k = k.view(t, cfg.num_kv_heads, cfg.head_dim).transpose(0, 1).unsqueeze(0)  # [1, kvh, T, D]
        v = v.view(t, cfg.num_kv_heads, cfg.head_dim).transpose(0, 1).unsqueeze(0)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        keys, values = kv.append(i, k, v)  # [1, kvh, S, D]
        out = F.scaled_dot_product_attention(
            q,
            keys,
            values,
            attn_mask=mask,
            is_causal=mask is None and t > 1,
            scale=cfg.head_dim**-0.5,
            enable_gqa=cfg.num_heads != cfg.num_kv_heads,
        )  # [1, nh, T, D]
        out = out.transpose(1, 2).reshape(t, cfg.num_heads * cfg.head_dim)
        return F.linear(out, lw.o, lw.o_bias)

    @staticmethod
    def _mlp(
        h: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """SwiGLU expert/MLP; with `out`, the result is written there ([T, H])."""
        gate, up = F.linear(h, gate_up).chunk(2, dim=-1)  # [T, I] each
        act = F.silu(gate) * up
        if out is None:
            return F.linear(act, down)
        return torch.mm(act, down.t(), out=out)

    def route(self, lw: LayerWeights, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights [T, k], expert ids [T, k]) exactly as the family's router computes them."""
        logits = F.linear(h, lw.router)  # [T, E]
        probs = torch.softmax(logits.float(), dim=-1)
        top_w, top_i = torch.topk(probs, self.cfg.top_k, dim=-1)
        if self.cfg.norm_topk_prob:
            top_w = top_w / top_w.sum(dim=-1, keepdim=True)
        if self.cfg.family != "mixtral":  # Mixtral keeps fp32 routing weights
            top_w = top_w.to(logits.dtype)
        return top_w, top_i

    def _notify(self, i: int, h: torch.Tensor, top_i: torch.Tensor) -> None:
        """The policy's router hook, with the gate input predictors are meant to see."""
        self.cache.policy.on_router(i, h if self._gate is None else self._gate, top_i, self.cache)

    def _moe_block(self, i: int, lw: LayerWeights, h: torch.Tensor) -> torch.Tensor:
        if self.routing is None:
            top_w, top_i = self.route(lw, h)  # [T, k] each
        else:  # replayed routing: experts, weights and predictor inputs from a recording
            top_w, top_i, self._gate = self.routing.route(i, self._pos, h)
        if h.shape[0] == 1:
            out = self._experts_one_token(i, h, top_w, top_i)
        elif 0 < self.prefill_chunk < h.shape[0]:
            out = self._experts_chunked(i, h, top_w, top_i, self.prefill_chunk)
        else:
            out = self._experts_grouped(i, h, top_w, top_i)
        if lw.shared_gate_up is not None:
            shared = self._mlp(h, lw.shared_gate_up, lw.shared_down)
            out = out + torch.sigmoid(F.linear(h, lw.shared_gate)) * shared
        return out

    def _waves(
        self, i: int, sequence: list[int], rows: Callable[[int], torch.Tensor], h: torch.Tensor
    ) -> Iterator[tuple[list[int], torch.Tensor, list[int]]]:
        """Fused path: the layer's experts in waves of what is ready when compute asks (a load
        still in flight joins a later wave); yields (experts, outputs [n, H], rows per expert)
        with the experts still pinned, released once the caller took the outputs."""
        cache, fused = self.cache, self._fused
        assert fused is not None
        remaining = list(sequence)
        while remaining:
            wave = [e for e in remaining if cache.is_ready(i, e)] or remaining[:1]
            taken = [cache.acquire_slot(i, e) for e in wave]  # waits only in the fallback case
            try:
                by_form: dict[int, list[int]] = {}
                for j, (_, stored) in enumerate(taken):
                    by_form.setdefault(stored.bits, []).append(j)
                for members in by_form.values():  # one wave, one stored form (int4_int2: INT4/INT2)
                    experts = [wave[j] for j in members]
                    parts = [rows(e) for e in experts]
                    counts = [int(p.shape[0]) for p in parts]
                    x = parts[0] if len(parts) == 1 else torch.cat(parts)
                    y = fused.run(x, [taken[j][0] for j in members], counts, taken[members[0]][1])
                    yield experts, y, counts
            finally:
                for e in wave:
                    cache.release(i, e)
            done = set(wave)
            remaining = [e for e in remaining if e not in done]

    def _experts_one_token(
        self, i: int, h: torch.Tensor, top_w: torch.Tensor, top_i: torch.Tensor
    ) -> torch.Tensor:
        if self._fused is not None:
            return self._experts_one_token_fused(i, h, top_w, top_i)
        return self._experts_one_token_loop(i, h, top_w, top_i)

    def _experts_one_token_fused(
        self, i: int, h: torch.Tensor, top_w: torch.Tensor, top_i: torch.Tensor
    ) -> torch.Tensor:
        """Decode, fused: as the loop path below, with one grouped GEMM per wave."""
        ids = top_i[0].tolist()
        row_of = {e: j for j, e in enumerate(ids)}
        cache = self.cache
        sequence = cache.begin_layer(i, sorted(ids))
        self._notify(i, h, top_i)
        rows = h.new_empty((len(ids), h.shape[-1]))  # [k, H], row = place in the top-k
        for experts, y, _ in self._waves(i, sequence, lambda e: h, h):
            where = torch.tensor([row_of[e] for e in experts], device=h.device)
            rows.index_copy_(0, where, y)
        return (rows * top_w[0, :, None]).to(h.dtype).sum(0, keepdim=True)  # [1, H]

    def _experts_one_token_loop(
        self, i: int, h: torch.Tensor, top_w: torch.Tensor, top_i: torch.Tensor
    ) -> torch.Tensor:
        """Decode: k experts for one token, each written into its row, then one weighted sum.

        Experts compute in readiness order (a load still in flight overlaps the others'
        compute), each into its own row of `rows` (row = its place in the router's top-k);
        the rows are weighted and summed in one op, so every policy gives bit-identical
        results whatever it had cached.
        """
        ids = top_i[0].tolist()
        row_of = {e: j for j, e in enumerate(ids)}
        cache = self.cache
        sequence = cache.begin_layer(i, sorted(ids))
        self._notify(i, h, top_i)
        rows = h.new_empty((len(ids), h.shape[-1]))  # [k, H]
        for e in sequence:
            gate_up, down = cache.acquire(i, e)
            try:
                r = row_of[e]
                self._mlp(h, gate_up, down, out=rows[r : r + 1])
            finally:
                cache.release(i, e)
        return (rows * top_w[0, :, None]).to(h.dtype).sum(0, keepdim=True)  # [1, H]

    def _experts_chunked(
        self, i: int, h: torch.Tensor, top_w: torch.Tensor, top_i: torch.Tensor, chunk: int
    ) -> torch.Tensor:
        """Prefill in chunks of `chunk` tokens; chunk c+1's experts load while c computes."""
        cache = self.cache
        self._notify(i, h, top_i)  # predictors see the whole prompt once
        t = h.shape[0]
        bounds = [(s, min(s + chunk, t)) for s in range(0, t, chunk)]
        wanted = [sorted(set(top_i[s:e].reshape(-1).tolist())) for s, e in bounds]
        out = torch.zeros_like(h)  # [T, H]
        for c, (s, e) in enumerate(bounds):
            if c + 1 < len(bounds):  # overlap: the next chunk's experts start loading now
                cache.prefetch(i, [x for x in wanted[c + 1] if x not in set(wanted[c])])
            part = self._experts_grouped(i, h[s:e], top_w[s:e], top_i[s:e], notify=False)
            out[s:e] = part
        return out

    def _experts_grouped(
        self,
        i: int,
        h: torch.Tensor,
        top_w: torch.Tensor,
        top_i: torch.Tensor,
        notify: bool = True,
    ) -> torch.Tensor:
        """Prefill: tokens grouped by expert, each expert's matmul over all of its tokens."""
        k = self.cfg.top_k
        flat = top_i.reshape(-1)  # [T*k]
        order = torch.argsort(flat, stable=True)  # assignments grouped by expert, tokens ascending
        counts = torch.bincount(flat, minlength=self.cfg.num_experts).tolist()
        starts = [0] * len(counts)
        acc = 0
        for e, c in enumerate(counts):
            starts[e], acc = acc, acc + c
        token_of = order // k  # [T*k]
        weight_of = top_w.reshape(-1)[order]  # [T*k]
        cache = self.cache
        sequence = cache.begin_layer(i, [e for e, c in enumerate(counts) if c])
        if notify:
            self._notify(i, h, top_i)
        parts: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if self._fused is not None:

            def tokens(e: int) -> torch.Tensor:
                return h[token_of[starts[e] : starts[e] + counts[e]]]

            for experts, y, sizes in self._waves(i, sequence, tokens, h):
                for e, part in zip(experts, y.split(sizes)):
                    s, n = starts[e], counts[e]
                    parts[e] = (token_of[s : s + n], part * weight_of[s : s + n, None])
            sequence = []
        for e in sequence:
            s, n = starts[e], counts[e]
            gate_up, down = cache.acquire(i, e)
            try:
                tok = token_of[s : s + n]  # [n]
                parts[e] = (
                    tok,
                    self._mlp(h[tok], gate_up, down) * weight_of[s : s + n, None],
                )  # [n, H]
            finally:
                cache.release(i, e)
        out = torch.zeros_like(h)  # [T, H]
        for e in sorted(parts):  # fixed summation order: identical logits for every policy
            tok, y = parts[e]
            out.index_add_(0, tok, y.to(out.dtype))
        return out

    # -- generation ----------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        prompt: Sequence[int],
        max_new_tokens: int,
        kv: KVCache | None = None,
        stop_ids: Sequence[int] = (),
        on_logits: Callable[[str, torch.Tensor], None] | None = None,
    ) -> Iterator[int]:
        """Greedy decoding; yields token ids. `on_logits(phase, logits)` sees each step's logits."""
        kv = kv if kv is not None else self.new_kv()
        logits = self.forward(prompt, kv, last_only=on_logits is None)
        if on_logits is not None:
            on_logits("prefill", logits)
        token = int(torch.argmax(logits[-1]))
        for n in range(max_new_tokens):
            yield token
            if token in stop_ids or n == max_new_tokens - 1:
                return
            logits = self.forward([token], kv)
            if on_logits is not None:
                on_logits("decode", logits)
            token = int(torch.argmax(logits[-1]))

    def close(self) -> None:
        self.cache.close()
