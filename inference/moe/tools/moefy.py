"""MoEfication: turn the bundled dense SmolLM2 into a Mixtral-format MoE with real routing.

Small dense models are not sparse, so the split costs quality; this testbed exists for
realistic routing statistics (which experts real text picks, layer after layer), not for
chat quality. The pipeline runs layer by layer over a fixed batch of training text, feeding
each layer the hidden states *of the MoEfied layers before it*, so routers and refit down
projections see the inputs they will get at inference time. One pass costs about one dense
forward over the training tokens; nothing is collected for all layers at once.

`ensure_moefied(models_dir)` builds the default testbed on first use (temp folder + rename, so
a crash leaves nothing half-written) and returns its folder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inference.moe.errors import MoefyError
from inference.moe.tools.text import TEXT_DIR, text_file, token_batch  # noqa: F401 - re-exported

Progress = Callable[[str], None]
DEFAULT_DIRNAME = "moefied"


@dataclass(frozen=True)
class MoefyOptions:
    """What to build. The defaults are the `--model moefied` testbed (k/E = 1/4)."""

    experts: int = 64
    top_k: int = 16
    train_tokens: int = 8192
    eval_tokens: int = 2048
    seq_len: int = 256
    layers: int | None = None  # MoEfy only the first n layers (tests); None = all
    refit_down: bool = True
    correct_drift: bool = True  # refit targets the dense residual stream, not just this FFN
    seed: int = 0

    def validate(self, width: int | None = None, n_layers: int | None = None) -> None:
        """Checks that need no model first (width/n_layers None), the rest once it is loaded."""
        if not 2 <= self.experts <= 4096:
            raise MoefyError(f"--experts {self.experts} must be between 2 and 4096.")
        if width is not None and width % self.experts:
            raise MoefyError(
                f"--experts {self.experts} must divide the FFN width {width} (e.g. 16, 32, 64)."
            )
        if not 1 <= self.top_k < self.experts:
            raise MoefyError(f"--top-k {self.top_k} must be between 1 and {self.experts - 1}.")
        if self.layers is not None and self.layers < 1:
            raise MoefyError(f"--layers {self.layers} must be at least 1.")
        if self.layers is not None and n_layers is not None and self.layers > n_layers:
            raise MoefyError(f"--layers {self.layers} must be between 1 and {n_layers}.")
        if self.train_tokens < self.seq_len or self.eval_tokens < self.seq_len:
            raise MoefyError(f"Token counts must be at least one sequence ({self.seq_len} tokens).")


@dataclass
class MoefyReport:
    """What `memex moe moefy --json` prints."""

    out: str
    experts: int
    top_k: int
    layers: int
    active_share: float
    ppl_dense: float
    ppl_moe: float
    ppl_ratio: float
    routing_recall: float  # share of oracle top-k experts the fitted routers pick (train text)
    usage_skew: dict[str, float] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    train_tokens: int = 0
    eval_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_dense(gguf: Path | None = None) -> tuple[Any, Any]:
    """The dense model (fp32, dequantized from the GGUF) and its tokenizer."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inference.models import bundled_path

    path = Path(gguf) if gguf else bundled_path()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model.eval()
    return model, tokenizer


def perplexity(model: Any, ids: Any, batch: int = 4) -> float:
    """exp(mean next-token NLL) of a causal LM over ids [B, T]."""
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for chunk in ids.split(batch):
            logits = model(input_ids=chunk).logits[:, :-1].float()  # [b, T-1, V]
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), reduction="sum"
            )
            total += float(nll)
            count += chunk[:, 1:].numel()
    return float(torch.exp(torch.tensor(total / count)))


def fit_all_layers(
    dense: Any, ids: Any, options: MoefyOptions, progress: Progress
) -> tuple[list[Any], list[Any]]:
    """Layer-by-layer MoEfication over ids [B, T]; each layer sees the MoE path's hidden states.

    Returns the layer fits and the fitted cross-layer prediction maps (see predict.py)."""
    import torch

    from inference.moe.predictors.predict import LinearMapPredictor
    from inference.moe.tools.moefy_fit import fit_layer, ridge_solve

    layers = dense.model.layers[: options.layers or len(dense.model.layers)]
    fits = []
    maps: list[Any] = []  # (L-1) x [H, E]: layer i's gate input -> layer i+1's routing
    prev_x = None

    def attention(layer: Any, h: Any, rope: Any) -> Any:
        return (
            h
            + layer.self_attn(
                layer.input_layernorm(h), position_embeddings=rope, attention_mask=None
            )[0]
        )

    with torch.inference_mode():
        hidden = dense.model.embed_tokens(ids)  # [B, T, H] residual stream of the MoE path
        reference = hidden  # [B, T, H] residual stream of the dense model
        pos = torch.arange(ids.shape[1]).unsqueeze(0)  # [1, T]
        rope = dense.model.rotary_emb(hidden, pos)  # (cos, sin) [1, T, head_dim]
        for i, layer in enumerate(layers):
            t0 = time.perf_counter()
            hidden = attention(layer, hidden, rope)
            x = layer.post_attention_layernorm(hidden)  # [B, T, H] gate input
            correction = None
            if options.correct_drift:
                reference = attention(layer, reference, rope)
                reference = reference + layer.mlp(layer.post_attention_layernorm(reference))
                # what this layer's FFN must add so the MoE path lands on the dense stream
                correction = (reference - hidden).reshape(-1, x.shape[-1]) - layer.mlp(x).reshape(
                    -1, x.shape[-1]
                )
            mlp = layer.mlp
            fit, out = fit_layer(
                x.reshape(-1, x.shape[-1]),
                mlp.gate_proj.weight,
                mlp.up_proj.weight,
                mlp.down_proj.weight,
                options.experts,
                options.top_k,
                refit=options.refit_down,
                seed=options.seed + i,
                correction=correction,
            )
            hidden = hidden + out.view_as(hidden)
            fits.append(fit)
            flat = x.reshape(-1, x.shape[-1])  # [N, H]
            if prev_x is not None:  # the cross-layer map of predict.LinearMapPredictor, for free
                chosen = (flat @ fit.router.T).topk(options.top_k, dim=1).indices  # [N, k]
                target = torch.zeros(flat.shape[0], options.experts).scatter_(1, chosen, 1.0)
                maps.append(ridge_solve(prev_x, target, LinearMapPredictor.ridge))  # [H, E]
            prev_x = flat
            progress(
                f"layer {i + 1}/{len(layers)}: routing recall {fit.routing_recall:.2f}, "
                f"hottest expert {float(fit.usage.max()):.2f} of tokens "
                f"({time.perf_counter() - t0:.1f}s)"
            )
    return fits, maps


def usage_skew(fits: list[Any], top_k: int) -> dict[str, float]:
    """How unevenly experts are used (no load balancing in MoEfication: hot experts exist)."""
    import torch

    usage = torch.stack([f.usage for f in fits])  # [L, E] share of tokens that picked each expert
    share = usage / top_k  # [L, E] sums to 1 per layer
    entropy = -(share.clamp_min(1e-12).log() * share).sum(dim=1) / torch.log(
        torch.tensor(float(usage.shape[1]))
    )
    return {
        "hottest_expert_token_share_mean": round(float(usage.max(dim=1).values.mean()), 4),
        "hottest_expert_token_share_max": round(float(usage.max()), 4),
        "unused_experts_mean": round(float((usage == 0).sum(dim=1).float().mean()), 2),
        "normalized_entropy_mean": round(float(entropy.mean()), 4),
    }


def moefy(
    out: Path,
    options: MoefyOptions | None = None,
    progress: Progress | None = None,
    gguf: Path | None = None,
) -> MoefyReport:
    """Build the MoEfied checkpoint into `out` (written to a temp folder, then renamed)."""
    from transformers import AutoModelForCausalLM

    from inference.moe.predictors.predict import write_predictor_maps
    from inference.moe.tools.moefy_export import write_checkpoint

    options = options or MoefyOptions()
    say = progress or (lambda _msg: None)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise MoefyError(f"The output folder {out} is not empty; choose a new folder or delete it.")
    options.validate()
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    say("loading the dense model from its GGUF")
    dense, tokenizer = load_dense(gguf)
    cfg = dense.config
    options.validate(cfg.intermediate_size, cfg.num_hidden_layers)
    train_ids = token_batch(tokenizer, "train", options.train_tokens, options.seq_len)
    eval_ids = token_batch(tokenizer, "eval", options.eval_tokens, options.seq_len)
    times["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fits, maps = fit_all_layers(dense, train_ids, options, say)
    times["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_layers = len(fits)
    if n_layers < cfg.num_hidden_layers:  # a truncated (test) model: compare like with like
        dense.model.layers = dense.model.layers[:n_layers]
        dense.config.num_hidden_layers = n_layers
    say("perplexity of the dense model on held-out text")
    ppl_dense = perplexity(dense, eval_ids)
    times["eval_dense"] = time.perf_counter() - t0

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)
    try:
        t0 = time.perf_counter()
        say(
            f"writing the Mixtral checkpoint ({n_layers} layers x {options.experts} experts, "
            f"top-{options.top_k})"
        )
        meta = {"source": "SmolLM2-135M-Instruct (GGUF)", "options": asdict(options)}
        write_checkpoint(tmp, dense, tokenizer, fits, options.top_k, meta)
        write_predictor_maps(tmp, maps)
        times["export"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        say("perplexity of the MoEfied checkpoint (loaded back with transformers) on held-out text")
        del dense
        moe = AutoModelForCausalLM.from_pretrained(tmp, dtype="float32").eval()
        ppl_moe = perplexity(moe, eval_ids)
        del moe
        times["eval_moe"] = time.perf_counter() - t0
        report = MoefyReport(
            out=str(out),
            experts=options.experts,
            top_k=options.top_k,
            layers=n_layers,
            active_share=options.top_k / options.experts,
            ppl_dense=round(ppl_dense, 3),
            ppl_moe=round(ppl_moe, 3),
            ppl_ratio=round(ppl_moe / ppl_dense, 3),
            routing_recall=round(sum(f.routing_recall for f in fits) / n_layers, 4),
            usage_skew=usage_skew(fits, options.top_k),
            timings_s={k: round(v, 1) for k, v in times.items()},
            train_tokens=int(train_ids.numel()),
            eval_tokens=int(eval_ids.numel()),
        )
        meta["report"] = report.to_dict()
        (tmp / "moefy.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def ensure_moefied(
    models_dir: Path, options: MoefyOptions | None = None, progress: Progress | None = None
) -> Path:
    """The MoEfied testbed under models_dir/moefied, built on first use (cached afterwards)."""
    folder = Path(models_dir) / DEFAULT_DIRNAME
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    say = progress or (lambda _msg: None)
    say(f"building the MoEfied testbed in {folder} (one-time, a few minutes)")
    moefy(folder, options, say)
    return folder
