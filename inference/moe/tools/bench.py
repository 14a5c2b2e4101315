"""`memex moe bench`: every policy in one process, on the same prompt and weights.

Per policy: prefill the prompt, decode N tokens greedily, and report speed, cache hit
rate, bytes moved from the slow tier, time compute stalled on loads, fast-tier size, the
peak RSS while it ran and the max |logit - reference| over every position. The
reference is transformers' own model (fp32) or, where that cannot be loaded, the
`resident` policy. Policies run in the order given; put `resident` last so the peak-RSS
high-water mark of the process is not set by it.

With `rounds` > 1 the policies run again, interleaved (round 1: every policy, round 2:
every policy, ...), and the speeds reported are each policy's median over the rounds, the
single figures listed beside them: on a shared or throttled machine one pass of each policy
can differ by 20% from the next, which is more than some of the differences being measured.
Everything else (hit rates, bytes, logits) comes from round 1; it does not change between
rounds.
"""

from __future__ import annotations

import gc
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.moe.errors import MoEError
from inference.moe.resolve import resolve_model  # noqa: F401 - re-exported (older callers)

if TYPE_CHECKING:
    import torch

    from inference.moe.engine import LoadedModel

DEFAULT_POLICIES = ("on_demand", "lru", "lfu", "resident")
PROMPT_TEXT = (
    "The lighthouse keeper wrote in her journal every evening. She noted the direction of the "
    "wind, the ships that passed the point, and the birds that rested on the rail of the gallery. "
    "In winter the storms came from the north and the lamp had to be cleaned twice a night; in "
    "summer visitors climbed the stairs to look at the islands, and she told them how the light "
    "had been built by hand, stone by stone, more than a hundred years ago, by people from the "
    "village below the cliffs."
)


@dataclass
class PolicyRun:
    name: str
    tokens: list[int]
    logits_path: Path  # [P + N - 1, V] fp32, parked on disk so it does not count in later RSS
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def logits(self) -> torch.Tensor:
        import torch

        return torch.load(self.logits_path)


def prompt_ids(folder: Path | None, n: int, vocab: int) -> list[int]:
    """`n` prompt tokens of English text (the checkpoint's tokenizer), else a fixed id pattern."""
    ids: list[int] = []
    if folder is not None and any(
        (folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")
    ):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        ids = tok(PROMPT_TEXT * (1 + n // 40), add_special_tokens=False)["input_ids"][:n]
    if len(ids) < n:
        ids = [(17 + 31 * i) % vocab for i in range(n)]
    return ids


class _PeakRSS:
    """Samples this process's RSS every few ms while running (the policy's own footprint)."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so the next
    policy's peak RSS is its own footprint rather than the previous policy's leftovers."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _sync(device: str) -> None:
    if device != "cpu":
        import torch

        torch.cuda.synchronize()


def reader_cpu(model: Any) -> float:
    """CPU seconds of the model's expert reader process so far (0 without one)."""
    fn = getattr(model.cache.loader, "cpu_seconds", None)
    return fn() if fn is not None else 0.0


def _cpu_clock(model: Any) -> Callable[[], float]:
    return lambda: time.process_time() + reader_cpu(model)


def run_policy(
    loaded: LoadedModel,
    workdir: Path,
    policy: str,
    budget: str,
    prompt: Sequence[int],
    tokens: int,
    prefill_chunk: int = 0,
    **policy_options: Any,
) -> PolicyRun:
    import torch

    _release_freed_memory()
    with _PeakRSS() as rss:
        model = loaded.build(policy, budget, prefill_chunk=prefill_chunk, **policy_options)
        try:
            kv = model.new_kv()
            _sync(loaded.device)
            cpu = _cpu_clock(model)
            t0, c0 = time.perf_counter(), cpu()
            prefill = model.forward(prompt, kv)  # [P, V]
            _sync(loaded.device)
            prefill_s = time.perf_counter() - t0
            prefill_cpu = cpu() - c0
            st = model.cache.stats
            pre = {
                "hits": st.hits,
                "misses": st.misses,
                "bytes": st.bytes_moved,
                "stall": st.stall_s,
            }
            st.reset()
            model.cache.policy.reset_metrics()  # policy numbers below are decode-only too
            out_tokens = [int(torch.argmax(prefill[-1]))]
            rows = [prefill.float().cpu()]
            t1, c1, r1 = time.perf_counter(), cpu(), reader_cpu(model)
            for _ in range(tokens - 1):
                step = model.forward([out_tokens[-1]], kv)  # [1, V]
                rows.append(step.float().cpu())
                out_tokens.append(int(torch.argmax(step[-1])))
            _sync(loaded.device)
            decode_s = time.perf_counter() - t1
            decode_cpu = cpu() - c1
            decode_reader_cpu = reader_cpu(model) - r1
            decode_steps = max(tokens - 1, 1)
            metrics = {
                "prefill_tok_s": len(prompt) / prefill_s,
                "decode_tok_s": (tokens - 1) / decode_s if tokens > 1 else 0.0,
                # CPU time of the whole process (compute + loader threads) plus the expert
                # reader process where one runs: what a policy costs regardless of what
                # else the machine runs
                "decode_cpu_ms_per_token": round(1000.0 * decode_cpu / decode_steps, 2),
                "decode_reader_cpu_ms_per_token": round(
                    1000.0 * decode_reader_cpu / decode_steps, 2
                ),
                "prefill_cpu_ms_per_token": round(1000.0 * prefill_cpu / len(prompt), 2),
                "hit_rate": st.hit_rate,
                "prefill_hit_rate": pre["hits"] / max(pre["hits"] + pre["misses"], 1),
                "bytes_moved": pre["bytes"] + st.bytes_moved,
                "bytes_moved_per_token": st.bytes_moved / decode_steps,
                "stall_ms": 1000.0 * (pre["stall"] + st.stall_s),
                "stall_ms_per_token": 1000.0 * st.stall_s / decode_steps,
                "fast_tier_bytes": model.cache.fast_tier_bytes,
                "compute": model.compute,  # fused grouped GEMMs or the per-expert loop
                "per_layer_hit_rate": {
                    str(layer): round(h / max(h + m, 1), 4)
                    for layer, (h, m) in sorted(st.per_layer.items())
                },
            }
            if st.cold_loads:
                metrics["cold_loads"] = st.cold_loads
            if st.prefetch_issued or st.late_hits:
                total = max(st.hits + st.misses, 1)
                # late hits were still loading when the layer asked (compute may have waited)
                metrics["in_time_hit_rate"] = round((st.hits - st.late_hits) / total, 4)
                metrics["late_hits"] = st.late_hits
                metrics["prefetch_issued"] = st.prefetch_issued
                metrics["prefetch_used"] = st.prefetch_used
                metrics["prefetch_bytes_wasted"] = st.prefetch_wasted_bytes
            metrics.update(model.cache.policy.metrics())
        finally:
            model.close()
            del model
    metrics["peak_rss_mb"] = round(rss.peak / 2**20, 1)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"logits-{policy}.pt"
    torch.save(torch.cat(rows), path)
    return PolicyRun(policy, out_tokens, path, metrics)


def transformers_reference(folder: Path) -> Callable[[Sequence[int]], torch.Tensor]:
    """Logits [T, V] of transformers' fp32 model on CPU for a token sequence."""
    import torch
    from transformers import AutoModelForCausalLM

    ref = AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=torch.float32, local_files_only=True
    ).eval()

    def logits(ids: Sequence[int]) -> torch.Tensor:
        with torch.no_grad():
            return ref(torch.tensor([list(ids)])).logits[0].float()

    return logits


def run_bench(
    loaded: LoadedModel,
    *,
    budget: str,
    tokens: int,
    policies: Sequence[str],
    prompt: Sequence[int],
    reference: str = "transformers",
    progress: Callable[[str], None] | None = None,
    prefill_chunk: int = 0,
    rounds: int = 1,
) -> dict[str, Any]:
    """The `memex moe bench` JSON object (see the module docstring)."""
    from inference.moe.storage.store import parse_budget

    if tokens < 1:
        raise MoEError("--tokens must be at least 1.")
    if rounds < 1:
        raise MoEError("--rounds must be at least 1.")
    budget_bytes = parse_budget(
        budget, loaded.layout, loaded.cfg.top_k
    )  # fails early on a bad budget
    # warm up kernels and allocator on a throwaway model so the first policy is not penalised
    warm = loaded.build("lru", budget)
    warm.forward(list(prompt[:8]), warm.new_kv())
    warm.close()
    runs: dict[str, PolicyRun] = {}
    speeds: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="memex-moe-bench-") as tmp:
        for r in range(rounds):
            for name in policies:
                if progress:
                    progress(
                        f"policy {name}" + (f" (round {r + 1}/{rounds})" if rounds > 1 else "")
                    )
                run = run_policy(
                    loaded,
                    Path(tmp) / str(r) if r else Path(tmp),
                    name,
                    budget,
                    prompt,
                    tokens,
                    prefill_chunk=prefill_chunk,
                )
                if r:  # only round 1's logits are compared
                    run.logits_path.unlink()
                runs.setdefault(name, run)
                for key in ("decode_tok_s", "prefill_tok_s"):
                    speeds.setdefault(name, {}).setdefault(key, []).append(run.metrics[key])
        if rounds > 1:
            _median_speeds(runs, speeds)
        peak_before_reference = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        _attach_diffs(loaded, runs, prompt, reference)
    result: dict[str, Any] = {
        "model": loaded.cfg.summary(loaded.layout.numel * loaded.layout.itemsize),
        "device": loaded.device,
        "budget": str(budget),
        "budget_fraction": round(budget_bytes / loaded.layout.total_bytes, 4),
        "quant": loaded.quant,
        "prefill_chunk": prefill_chunk,
        "expert_bytes_stored": loaded.layout.nbytes,  # per expert, as moved and cached
        "prompt_tokens": len(prompt),
        "decode_tokens": tokens,
        "rounds": rounds,
        "reference": reference,
        "policies": {name: run.metrics for name, run in runs.items()},
        "peak_rss_mb": round(peak_before_reference, 1),
        "non_expert_bytes": loaded.dense.nbytes(),
        "expert_bytes_total": loaded.layout.total_bytes,
    }
    base = runs.get("on_demand")
    if base and base.metrics["decode_tok_s"]:
        for run in runs.values():
            run.metrics["decode_vs_on_demand"] = round(
                run.metrics["decode_tok_s"] / base.metrics["decode_tok_s"], 3
            )
    return result


def _median_speeds(runs: dict[str, PolicyRun], speeds: dict[str, dict[str, list[float]]]) -> None:
    """Each policy's speeds become the median over the rounds, the rounds listed beside."""
    import statistics

    for name, by_key in speeds.items():
        for key, values in by_key.items():
            runs[name].metrics[key] = statistics.median(values)
            runs[name].metrics[f"{key}_rounds"] = [round(v, 3) for v in values]


def _attach_diffs(
    loaded: LoadedModel, runs: dict[str, PolicyRun], prompt: Sequence[int], reference: str
) -> None:
    if reference == "none":
        for run in runs.values():
            run.metrics["max_abs_logit_diff"] = None
        return
    ref_fn: Callable[[Sequence[int]], Any] | None = None
    if reference == "transformers" and loaded.folder is not None:
        ref_fn = transformers_reference(loaded.folder)
    cache: dict[tuple[int, ...], Any] = {}
    for run in runs.values():
        seq = tuple(list(prompt) + run.tokens[:-1])
        if ref_fn is not None:
            if seq not in cache:
                cache[seq] = ref_fn(seq)
            ref = cache[seq]
        else:  # compare with the resident policy's logits on the same sequence
            resident = runs.get("resident")
            if resident is None or tuple(list(prompt) + resident.tokens[:-1]) != seq:
                run.metrics["max_abs_logit_diff"] = None
                continue
            ref = resident.logits
        run.metrics["max_abs_logit_diff"] = float((run.logits - ref).abs().max())
        del ref
