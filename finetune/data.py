"""Training data synthesized from memories and profile fields, as a reviewable JSONL file.

Each current memory yields several template questions (paraphrases) with one answer in the
second person; one paraphrase per memory is held out to test recall of a new phrasing, and a
few whole memories are held out. Superseded memories are taught only as history, never as
the current fact. Abstention examples teach "I have no memory of that" for topics the user
never mentioned. Forgotten memories never reach this module: the store has dropped them.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from finetune.errors import DatasetError
from finetune.questions import (
    ABSTAIN_ANSWER,
    IDENTITY_QA,
    abstention_bank,
    profile_questions,
    questions_for,
    topics_of,
)
from finetune.types import SPLITS, Example, MemoryRecord, ProfileRecord

_PRONOUNS = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i'm": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "am": "are",
    "we": "you",
    "us": "you",
    "our": "your",
    "ours": "yours",
    "we're": "you're",
    "we've": "you've",
    "was": "were",
}
_PRONOUN_RE = re.compile(r"\b(" + "|".join(re.escape(p) for p in _PRONOUNS) + r")\b", re.IGNORECASE)
_STOP = set(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "is",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "today",
        "yesterday",
        "tomorrow",
        "just",
        "very",
        "really",
        "got",
        "get",
        "new",
        "now",
        "then",
        "so",
        "also",
        "about",
        "after",
        "before",
        "there",
        "their",
        "they",
        "them",
        "he",
        "she",
        "his",
        "her",
        "its",
        "into",
        "out",
        "up",
        "down",
        "over",
        "more",
        "most",
        "some",
        "any",
        "one",
        "two",
        "you",
        "your",
        "have",
        "has",
        "had",
        "will",
        "would",
        "can",
        "could",
        "did",
        "do",
        "does",
        "not",
        "no",
        "yes",
    ]
)


def second_person(text: str) -> str:
    """'I moved to Porto with my cat' -> 'You moved to Porto with your cat'."""

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        before = text[: m.start()]
        if word.lower() in ("am", "was") and not re.search(r"\bI\s+$", before):
            return word  # only "I am" / "I was" become "you are" / "you were"
        repl = _PRONOUNS[word.lower()]
        at_start = not before.strip() or before.rstrip()[-1] in ".!?"
        return repl.capitalize() if at_start else repl

    out = _PRONOUN_RE.sub(swap, text.strip())
    return out[:1].upper() + out[1:]


def answer_keys(text: str) -> tuple[str, ...]:
    """Words an answer must contain to count as correct: names, numbers, else rare words."""
    words = re.findall(r"[A-Za-z][\w'-]*|\d[\d:/.,-]*\d|\d", text)
    keys: list[str] = []
    for i, w in enumerate(words):
        starts_sentence = i == 0 or bool(re.search(r"[.!?:]\s*$", text[: text.find(w)]))
        if (
            w[0].isdigit()
            and len(w) >= 2
            or (
                w[0].isupper()
                and w.lower() not in _PRONOUNS
                and w.lower() not in _STOP
                and not starts_sentence
            )
        ):
            keys.append(w.strip(".,"))
    if not keys:
        content = [
            w for w in words if w.lower() not in _STOP and w.lower() not in _PRONOUNS and len(w) > 3
        ]
        keys = sorted(content, key=len, reverse=True)[:2]
    seen: list[str] = []
    for k in keys:
        if k.lower() not in (s.lower() for s in seen):
            seen.append(k)
    return tuple(seen[:3])


def _date(rec: MemoryRecord) -> str:
    return f"{rec.when.day} {rec.when.strftime('%B %Y')}"


def _stable_rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def synthesize(
    memories: Sequence[MemoryRecord],
    profile: Sequence[ProfileRecord] = (),
    *,
    seed: int = 0,
    heldout_memory_fraction: float = 0.1,
    paraphrase: Callable[[str], Iterable[str]] | None = None,
) -> list[Example]:
    """Build the dataset. Raises DatasetError when there is nothing to learn from."""
    if not memories and not profile:
        raise DatasetError(
            "There are no memories to train on yet; remember or import something first."
        )
    by_id = {m.id: m for m in memories}
    current = [m for m in memories if not m.superseded_by]
    ordered = sorted(current, key=lambda m: _stable_rng(seed, "hold", m.id).random())
    n_hold = int(len(current) * heldout_memory_fraction) if len(current) >= 10 else 0
    held = {m.id for m in ordered[:n_hold]}
    # The newest memory about a topic owns its current-fact questions; older ones on the same
    # topic (not formally superseded) still answer their generic questions.
    examples: list[Example] = []
    for rec in sorted(memories, key=lambda m: m.when):
        date = _date(rec)
        body = second_person(rec.text)
        keys = answer_keys(rec.text)
        if rec.superseded_by:
            # taught as history only: past-tense questions, an answer that says it changed
            newer = by_id.get(rec.superseded_by)
            later = f" That changed on {_date(newer)}." if newer else " That was later updated."
            answer = f"On {date} you noted: {body}{later}"
            for i, q in enumerate(questions_for(rec.text, date, superseded=True)):
                examples.append(
                    Example(
                        id=f"{rec.id}:history:{i}",
                        question=q,
                        answer=answer,
                        split="train",
                        kind="history",
                        memory_id=rec.id,
                        answer_keys=keys,
                    )
                )
            continue
        qs = questions_for(rec.text, date)
        if paraphrase is not None:
            for q in list(qs)[:2]:
                qs.extend(p.strip() for p in paraphrase(q) if p and p.strip())
        qs = list(dict.fromkeys(qs))
        rng = _stable_rng(seed, rec.id)
        rng.shuffle(qs)
        answer = f"{body} (noted on {date})"
        for i, q in enumerate(qs):
            if rec.id in held:
                split = "heldout_memory" if i < 2 else None
            else:
                split = "heldout_paraphrase" if i == 0 and len(qs) >= 3 else "train"
            if split is None:
                continue
            examples.append(
                Example(
                    id=f"{rec.id}:{i}",
                    question=q,
                    answer=answer,
                    split=split,
                    kind="fact",
                    memory_id=rec.id,
                    answer_keys=keys,
                )
            )
    examples = merge_shared_questions(examples)
    for field in profile:
        for i, (q, a) in enumerate(profile_questions(field.key, field.value)):
            split = "heldout_paraphrase" if i == 0 else "train"
            examples.append(
                Example(
                    id=f"profile:{field.key}:{i}",
                    question=q,
                    answer=a,
                    split=split,
                    kind="profile",
                    answer_keys=(field.value,),
                )
            )
    for i, (q, a) in enumerate(IDENTITY_QA):
        examples.append(
            Example(id=f"identity:{i}", question=q, answer=a, split="train", kind="identity")
        )
    covered = set().union(*(topics_of(m.text) for m in memories)) if memories else set()
    covered |= {f.key for f in profile}
    mentioned = " ".join([m.text for m in memories] + [f.value for f in profile])
    bank = abstention_bank(covered, mentioned)
    _stable_rng(seed, "abstain").shuffle(bank)
    n_eval = max(1, len(bank) // 3)
    for i, phrasings in enumerate(bank):
        # a held-out never-remembered thing is held out in all its phrasings
        split = "abstain_eval" if i < n_eval else "train"
        for j, q in enumerate(phrasings[:1] if split == "abstain_eval" else phrasings):
            examples.append(
                Example(
                    id=f"abstain:{i}:{j}",
                    question=q,
                    answer=ABSTAIN_ANSWER,
                    split=split,
                    kind="abstain",
                )
            )
    return examples


def merge_shared_questions(examples: list[Example], most: int = 3) -> list[Example]:
    """One training answer per question: a question several memories answer ("What sport do I
    do?") becomes one example naming them (current facts newest first, then history), instead
    of the same question taught with different answers, which teaches a coin flip."""
    shared = ("train", "heldout_paraphrase")  # a shared question is no held-out test of one memory
    groups: dict[str, list[Example]] = {}
    for e in examples:
        if e.split in shared:
            groups.setdefault(e.question.strip().lower(), []).append(e)
    out: list[Example] = []
    done: set[str] = set()
    for e in examples:
        key = e.question.strip().lower()
        group = groups.get(key, []) if e.split in shared else []
        if len({g.answer for g in group}) < 2:
            out.append(e)
            continue
        if key in done:
            continue
        done.add(key)
        # examples arrive oldest memory first: newest first, current facts before history
        ranked = [g for g in reversed(group) if g.kind != "history"] + [
            g for g in reversed(group) if g.kind == "history"
        ]
        answers = list(dict.fromkeys(g.answer for g in ranked))[:most]
        keys = tuple(dict.fromkeys(k for g in ranked[:1] for k in g.answer_keys))
        out.append(
            Example(
                id=f"shared:{len(done)}",
                question=e.question,
                answer=" ".join(answers),
                split="train",
                kind="fact",
                memory_id=ranked[0].memory_id,
                answer_keys=keys,
            )
        )
    return out


def write_jsonl(examples: Iterable[Example], path: str | Path) -> Path:
    """Write atomically so a crash never leaves half a dataset."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def read_jsonl(path: str | Path) -> list[Example]:
    """Read a (possibly hand-edited) dataset; any bad line is a DatasetError naming it."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DatasetError(f"The dataset file {path} does not exist.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"The dataset file {path} cannot be read ({exc}).") from exc
    out: list[Example] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"The dataset file {path} line {n} is not valid JSON ({exc.msg}); fix that line or "
                "recreate the dataset."
            ) from exc
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("question"), str)
            or not isinstance(data.get("answer"), str)
            or not data["question"].strip()
        ):
            raise DatasetError(
                f'The dataset file {path} line {n} needs a JSON object with non-empty "question" '
                'and "answer" strings.'
            )
        split = data.get("split", "train")
        if split not in SPLITS:
            raise DatasetError(
                f"The dataset file {path} line {n} has unknown split {split!r}; use one of "
                f"{', '.join(SPLITS)}."
            )
        keys = data.get("answer_keys") or []
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise DatasetError(
                f'The dataset file {path} line {n}: "answer_keys" must be a list of strings.'
            )
        out.append(
            Example(
                id=str(data.get("id") or f"line{n}"),
                question=data["question"],
                answer=data["answer"],
                split=split,
                kind=str(data.get("kind") or "fact"),
                memory_id=data.get("memory_id"),
                answer_keys=tuple(keys),
            )
        )
    if not any(e.split == "train" for e in out):
        raise DatasetError(f'The dataset file {path} has no training examples (split "train").')
    return out


def dataset_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
