"""Personal QA measured in llama.cpp: closed-book answers scored by the facts they contain.

The prompt is the model's own chat template rendered exactly as in training; generation is
greedy. An answer is correct when it names the fact's key words, an abstention when it says
it has no memory of it. Also: torch vs llama.cpp greedy token agreement (the export check).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from finetune.errors import ModelLoadError
from finetune.types import EvalReport, Example, QAScore

Generate = Callable[[str], str]

_ABSTAIN = re.compile(
    r"\b(no memory|don'?t (know|remember|have)|do not (know|remember|have)|haven'?t "
    r"(told|mentioned)|"
    r"not sure|no (record|information)|never (told|mentioned)|can'?t (recall|remember))\b",
    re.IGNORECASE,
)


def is_abstention(answer: str) -> bool:
    return bool(_ABSTAIN.search(answer))


def is_correct(ex: Example, answer: str) -> bool:
    if not ex.answer_keys:
        return False
    low = answer.lower()
    hits = sum(1 for k in ex.answer_keys if k.lower() in low)
    return hits >= (1 if len(ex.answer_keys) <= 2 else 2)


def score(examples: Sequence[Example], generate: Generate) -> tuple[QAScore, list[str]]:
    answers = [generate(ex.question) for ex in examples]
    correct = sum(is_correct(ex, a) for ex, a in zip(examples, answers))
    abstained = sum(is_abstention(a) for a in answers)
    return QAScore(len(examples), correct, abstained), answers


def qa_report(examples: Sequence[Example], base: Generate, adapter: Generate | None) -> EvalReport:
    """Held-out paraphrases (accuracy) and never-remembered questions (abstention rate)."""
    facts = [e for e in examples if e.split == "heldout_paraphrase" and e.answer_keys]
    unknown = [e for e in examples if e.split == "abstain_eval"]
    report = EvalReport(n=len(facts))
    for label, gen in (("base", base), ("adapter", adapter)):
        if gen is None:
            continue
        qa, answers = score(facts, gen)
        ab, _ = score(unknown, gen)
        getattr(report, label).update(
            {
                "qa_accuracy": round(qa.accuracy, 4),
                "correct": qa.correct,
                "abstention_rate": round(ab.abstained / ab.n, 4) if ab.n else 0.0,
            }
        )
        report.abstention[label] = round(ab.abstained / ab.n, 4) if ab.n else 0.0
        if label == "adapter":
            report.samples = [
                {"question": e.question, "answer": a} for e, a in list(zip(facts, answers))[:5]
            ]
    report.abstention["n"] = len(unknown)
    return report


class LlamaQA:
    """A llama.cpp model (optionally with a GGUF LoRA) answering closed-book questions."""

    def __init__(
        self,
        model_path: str | Path,
        lora_path: str | Path | None = None,
        *,
        system: str = "",
        n_ctx: int = 1024,
        threads: int = 0,
        max_tokens: int = 48,
        loader: Callable[..., Any] | None = None,
    ) -> None:
        """`loader(model_path, n_ctx=, threads=, lora_path=)` lets the app pass its own tuned
        llama.cpp loader (thread count, CPU buffer workarounds); default: plain `Llama`."""
        from jinja2 import Template

        from finetune.gguf_io import field_value

        try:
            self.llm = (loader or _plain_loader)(
                str(model_path),
                n_ctx=n_ctx,
                threads=threads,
                lora_path=str(lora_path) if lora_path else None,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            what = f"adapter {lora_path} on " if lora_path else ""
            raise ModelLoadError(
                f"llama.cpp cannot load the {what}model {model_path} ({exc})."
            ) from exc
        import gguf

        template = field_value(gguf.GGUFReader(str(model_path)), "tokenizer.chat_template")
        self._template = Template(str(template)) if template else None
        self.system = system
        self.max_tokens = max_tokens
        self.eos = self.llm.token_eos()

    def prompt_tokens(self, question: str) -> list[int]:
        from finetune.batches import chat_messages

        msgs = chat_messages(question, self.system)
        if self._template is not None:
            text = self._template.render(
                messages=msgs, add_generation_prompt=True, bos_token="", eos_token=""
            )
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "
        return list(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def greedy_tokens(self, tokens: list[int], max_tokens: int | None = None) -> list[int]:
        out: list[int] = []
        self.llm.reset()
        for t in self.llm.generate(
            tokens, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0, reset=True
        ):
            if t == self.eos or len(out) >= (max_tokens or self.max_tokens):
                break
            out.append(int(t))
        return out

    def __call__(self, question: str) -> str:
        toks = self.greedy_tokens(self.prompt_tokens(question))
        return self.llm.detokenize(toks).decode("utf-8", errors="replace").strip()

    def close(self) -> None:
        self.llm.close()

    def __enter__(self) -> LlamaQA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain_loader(
    model_path: str, *, n_ctx: int, threads: int, lora_path: str | None, logits_all: bool = False
) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ModelLoadError("llama-cpp-python is not installed.") from exc
    import llama_cpp.llama as llama_mod

    kwargs: dict[str, Any] = {"n_ctx": n_ctx, "verbose": False, "logits_all": logits_all}
    if threads:
        kwargs["n_threads"] = threads
    if lora_path:
        kwargs["lora_path"] = lora_path
    # ggml's extra CPU buffer types (AMX tiles, repacking) die with SIGILL in VMs that
    # advertise AMX without saving tile state; eval does not need them. The app passes the
    # chat backend's loader, which decides this from settings.
    original = llama_mod.llama_cpp.llama_model_default_params

    def params() -> Any:
        p = original()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    llama_mod.llama_cpp.llama_model_default_params = params
    try:
        return Llama(model_path, **kwargs)
    finally:
        llama_mod.llama_cpp.llama_model_default_params = original


def token_agreement(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]], n: int = 32) -> float:
    """Share of answer positions (up to n each) where both greedy decodes agree."""
    match = total = 0
    for x, y in zip(a, b):
        x, y = list(x)[:n], list(y)[:n]
        length = max(len(x), len(y))
        prefix = 0
        while prefix < min(len(x), len(y)) and x[prefix] == y[prefix]:
            prefix += 1
        match += prefix
        total += length
    return match / total if total else 1.0


def torch_greedy(
    peft_or_model: Any, prompts: Sequence[list[int]], eos: int, n: int = 32
) -> list[list[int]]:
    """Greedy decode in PyTorch with the KV cache, stopping at the end-of-turn token."""
    import torch

    outs: list[list[int]] = []
    peft_or_model.eval()
    with torch.no_grad():
        for ids in prompts:
            seq = peft_or_model.generate(
                input_ids=torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=n,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos,
            )[0, len(ids) :].tolist()  # (n,)
            outs.append(seq[: seq.index(eos)] if eos in seq else seq)
    return outs


def teacher_forced_agreement(
    model_path: str | Path,
    lora_path: str | Path | None,
    peft_or_model: Any,
    prompts: Sequence[list[int]],
    answers: Sequence[list[int]],
    threads: int = 0,
) -> float:
    """Share of answer positions where llama.cpp and torch pick the same next token when both
    read the same (torch's) answer: export fidelity without one near-tie flipping the rest."""
    import numpy as np
    import torch

    llm = _plain_loader(
        str(model_path),
        n_ctx=1024,
        threads=threads,
        lora_path=str(lora_path) if lora_path else None,
        logits_all=True,
    )
    same = total = 0
    try:
        for prompt, answer in zip(prompts, answers):
            if not answer:
                continue
            seq = list(prompt) + list(answer)
            span = slice(len(prompt) - 1, len(seq) - 1)  # positions that predict the answer
            llm.reset()
            llm.eval(seq)
            cpp = np.asarray(llm.scores[: len(seq)])[span].argmax(-1)  # (A,)
            with torch.no_grad():
                ref = (
                    peft_or_model(input_ids=torch.tensor([seq])).logits[0, span].argmax(-1).numpy()
                )  # (A,)
            same += int((cpp == ref).sum())
            total += len(answer)
    finally:
        llm.close()
    return same / total if total else 1.0
