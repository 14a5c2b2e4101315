"""Local routing consistency (moe-lrc): how well a segment of tokens can share one expert set.

Both metrics read a routing trace: per layer, the experts [T, k] each token of a contiguous
text used.

- SRP (segment routing best performance): cut the tokens into segments of m; serve each
  segment with ONE fixed expert set S and score it by F1 against what the tokens used
  (precision = hits / (m |S|), recall = hits / (m k)). For a given |S| = s the best set is the
  s most used experts of the segment, so the best F1 is max_s 2 H_s / (m s + m k), with H_s the
  uses of the top-s experts. SRP is that best F1 averaged over segments.
- SCH (segment cache best hit rate): a per-layer cache of c = 1x / 2x / 4x k experts, filled on
  a miss; when full it evicts the cached expert (not needed by the current token) used least
  over the next m tokens (ties: the one whose next use is farthest). Hit rate over all uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

CACHE_MULTIPLES = (1, 2, 4)


@dataclass
class LrcReport:
    """What `memex moe lrc --json` prints (numbers rounded to 4 digits)."""

    srp: float
    sch: dict[str, float]
    per_layer: dict[str, dict[str, Any]] = field(default_factory=dict)
    segment: int = 16
    tokens: int = 0
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "segment": self.segment,
            "tokens": self.tokens,
            "srp": self.srp,
            "sch": self.sch,
            "per_layer": self.per_layer,
        }


def _check(experts: np.ndarray, segment: int) -> None:
    if experts.ndim != 2:
        raise ValueError("a layer's routing must be a [tokens, top_k] array")
    if segment < 1:
        raise ValueError(f"--segment must be at least 1 (got {segment})")


def segment_srp(experts: np.ndarray, num_experts: int, segment: int) -> float:
    """Mean best F1 of one fixed expert set per segment of `segment` tokens; experts [T, k]."""
    _check(experts, segment)
    tokens, k = experts.shape
    n_seg = tokens // segment
    if n_seg == 0:
        raise ValueError(f"the trace has {tokens} tokens, fewer than one segment of {segment}")
    seg = experts[: n_seg * segment].reshape(n_seg, segment * k)  # [S, m*k]
    counts = np.zeros((n_seg, num_experts), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n_seg), segment * k), seg.reshape(-1)), 1)
    hits = np.cumsum(-np.sort(-counts, axis=1), axis=1)  # [S, E] H_s for s = 1..E
    sizes = np.arange(1, num_experts + 1)  # [E]
    f1 = 2 * hits / (segment * sizes + segment * k)  # [S, E]
    return float(f1.max(axis=1).mean())


def segment_cache_hit_rate(
    experts: np.ndarray, num_experts: int, segment: int, capacity: int
) -> float:
    """Hit rate of the oracle segment cache (see module doc); experts [T, k]."""
    _check(experts, segment)
    tokens, k = experts.shape
    if capacity < k:
        raise ValueError(f"cache capacity {capacity} is below the {k} experts one token needs")
    used = np.zeros((tokens + 1, num_experts), dtype=np.int64)  # used[t+1] = uses up to token t
    np.add.at(used, (np.repeat(np.arange(1, tokens + 1), k), experts.reshape(-1)), 1)
    used = np.cumsum(used, axis=0)
    never = tokens + 1
    next_use = np.full((tokens + 1, num_experts), never, dtype=np.int64)  # next use at or after t
    for t in range(tokens - 1, -1, -1):
        next_use[t] = next_use[t + 1]
        next_use[t, experts[t]] = t
    cache: set[int] = set()
    hits = 0
    for t in range(tokens):
        need = {int(e) for e in experts[t]}
        hits += len(need & cache)
        missing = need - cache
        if len(cache) + len(missing) > capacity:
            end = min(t + 1 + segment, tokens)
            future = used[end] - used[t + 1]  # [E] uses over the next m tokens
            candidates = np.fromiter(cache - need, dtype=np.int64)
            # least used over the window first, then the farthest next use
            order = np.lexsort((-next_use[t + 1, candidates], future[candidates]))
            for e in candidates[order[: len(cache) + len(missing) - capacity]]:
                cache.discard(int(e))
        cache |= missing
    return hits / float(tokens * k)


def lrc_metrics(
    traces: list[np.ndarray],
    num_experts: int,
    segment: int = 16,
    multiples: tuple[int, ...] = CACHE_MULTIPLES,
    model: str = "",
) -> LrcReport:
    """SRP and SCH for every layer's trace [T, k]; overall values are means over layers."""
    per_layer: dict[str, dict[str, Any]] = {}
    for i, experts in enumerate(traces):
        k = experts.shape[1]
        entry: dict[str, Any] = {"srp": round(segment_srp(experts, num_experts, segment), 4)}
        entry["sch"] = {
            f"{m}x": round(
                segment_cache_hit_rate(experts, num_experts, segment, min(m * k, num_experts)), 4
            )
            for m in multiples
        }
        per_layer[str(i)] = entry
    n = len(per_layer)
    if n == 0:
        raise ValueError("the routing trace has no MoE layers")
    srp = round(sum(v["srp"] for v in per_layer.values()) / n, 4)
    sch = {
        f"{m}x": round(sum(v["sch"][f"{m}x"] for v in per_layer.values()) / n, 4) for m in multiples
    }
    return LrcReport(
        srp=srp,
        sch=sch,
        per_layer=per_layer,
        segment=segment,
        tokens=int(traces[0].shape[0]),
        model=model,
    )
