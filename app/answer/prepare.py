"""Everything decided before any model runs: retrieval, relevance, whose memories count,
the time scope, the evidence sentences and the answer candidates.

The tiny default model cannot be trusted to say "I don't know", so whether anything relevant
is remembered is decided here from retrieval and evidence, never from the model's wording.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from app.answer import dialogue, extract, sentences
from app.answer.prompt import build_messages, order_for_prompt
from app.answer.question import Question, analyze, same_person
from app.answer.types import PreparedAnswer, TokenCounter
from app.errors import MemexError
from inference.base import ChatMessage
from memory import dates as dates_
from memory import relevance
from memory.types import ProfileField, SearchHit

if TYPE_CHECKING:
    from memory import MemoryStore
    from memory.types import Memory

MAX_QUESTION_CHARS = 8000
RETRIEVE_K = 8
ABSTAIN_ANSWER = "I don't have any memory about that, so I can't answer it."

# profile key -> words in a question that ask for it
PROFILE_QUERY_WORDS: dict[str, tuple[str, ...]] = {
    "name": ("name", "called"),
    "given-name": ("first name",),
    "family-name": ("last name", "surname"),
    "email": ("email", "e-mail"),
    "tel": ("phone", "mobile", "cell", "number"),
    "street-address": ("address", "live", "street"),
    "address-level2": ("city", "live", "town"),
    "postal-code": ("postcode", "postal", "zip"),
    "country-name": ("country",),
    "bday": ("birthday", "born", "birth"),
    "organization": ("work", "employer", "company", "job"),
    "organization-title": ("title", "job", "role", "position"),
}


def validate_question(question: str) -> str:
    q = (question or "").strip()
    if not q:
        raise MemexError("The question is empty; type what you want to know.", kind="bad_input")
    if len(q) > MAX_QUESTION_CHARS:
        raise MemexError(
            f"The question is {len(q):,} characters long; keep it under {MAX_QUESTION_CHARS:,}.",
            kind="bad_input",
        )
    return q


def profile_matches(question: str, profile: Sequence[ProfileField]) -> list[ProfileField]:
    q = question.lower()
    keys = {
        k
        for k, words in PROFILE_QUERY_WORDS.items()
        if any(re.search(rf"\b{w}\b", q) for w in words)
    }
    return [f for f in profile if f.key in keys]


def _mentions(text: str, name: str) -> bool:
    low = name.lower()
    return any(w == low or (len(low) >= 3 and w.startswith(low)) for w in relevance.words(text))


def about_subject(q: Question, hit: SearchHit) -> bool:
    """Whether a memory speaks about the question's subject.

    A chat turn is about its speaker, or about someone it names; a note is the user's own,
    so it is about the user, or about the people it names.
    """
    if q.about_user:
        return True
    if q.subject_is_name:
        return same_person(hit.speaker, q.subject) or _mentions(hit.text, q.subject)
    return True  # a relation ("my sister"): ranked below, never a reason to abstain alone


def scoped(q: Question, hits: list[SearchHit], memory: MemoryStore) -> list[SearchHit]:
    """Order the hits so the value valid at the asked time comes first."""
    scope = q.scope
    if scope.before:
        # "before Lisbon": the memories that do not name it, older than the first one that does.
        naming = [h for h in hits if _mentions(h.text, scope.before)]
        first = min((h.when for h in naming), default=None)
        older = [h for h in hits if h not in naming and (first is None or h.when <= first)]
        return older + [h for h in hits if h not in older]
    if scope.start is not None and scope.end is not None:
        start, end = scope.start, scope.end

        def inside(h: SearchHit) -> bool:
            return start <= h.when.date() <= end or any(
                m.start_date <= end and start <= m.end_date
                for m in dates_.resolve_mentions(h.text, h.when)
            )

        # Then the value valid then: the newest memory written before the range ends.
        before = sorted(
            (h for h in hits if not inside(h) and h.when.date() <= end),
            key=lambda h: h.when,
            reverse=True,
        )
        return (
            [h for h in hits if inside(h)]
            + before
            + [h for h in hits if not inside(h) and h not in before]
        )
    if not scope.past:
        return [h for h in hits if not h.superseded_by] + [h for h in hits if h.superseded_by]
    return hits


def prepare_answer(
    memory: MemoryStore,
    question: str,
    *,
    tokenizer: Callable[[], TokenCounter] | None,
    answer_tokens: int,
    history: Sequence[ChatMessage] = (),
    now: datetime | None = None,
    k: int = RETRIEVE_K,
) -> PreparedAnswer:
    """Retrieve, judge relevance, find the evidence and its candidates; pack the prompt only
    when `tokenizer` is given (strategies that let the model write), so the extractive
    default never loads a model."""
    question = validate_question(question)
    now = now or datetime.now().astimezone()
    t0 = time.perf_counter()
    hits = memory.search(question, k=k)
    profile = memory.profile()
    t1 = time.perf_counter()
    judgement = relevance.judge(question, hits, _topics(memory, hits))
    query = question
    previous = next((m.content for m in reversed(history) if m.role == "user"), None)
    if not judgement.relevant and previous:
        # A follow-up ("What colour is she?") gets its subject from the previous question.
        query = f"{previous} {question}"[-MAX_QUESTION_CHARS:]
        t_retry = time.perf_counter()
        hits = memory.search(query, k=k)
        t1 += time.perf_counter() - t_retry
        judgement = relevance.judge(query, hits, _topics(memory, hits))
    people = frozenset(h.speaker.lower() for h in hits if h.speaker)
    q = analyze(question, now, people)
    relevant = [h for h in judgement.relevant if about_subject(q, h)]
    reason = "" if relevant else ("other_subject" if judgement.relevant else "nothing_relevant")
    asked_profile = profile_matches(question, profile)
    if not relevant and asked_profile and q.about_user:
        # Answerable from accepted profile facts: rest it on the memories they came from.
        for f in asked_profile:
            src = memory.get(f.source_memory) if f.source_memory else None
            if src is not None and not any(h.id == src.id for h in relevant):
                relevant.append(_hit_from_memory(src))
    relevant = scoped(q, relevant, memory)
    abstain = not relevant and not (asked_profile and q.about_user)
    texts: dict[str, str] = {}
    sents: list[sentences.Sentence] = []
    order = sorted(h.when for h in relevant)
    replied = memory.previous_turns(h.id for h in relevant if h.speaker)
    for rank, hit in enumerate(relevant):
        prev = replied.get(hit.id)
        mem = memory.get(hit.id)
        texts[hit.id] = mem.text if mem is not None else hit.text
        recency = order.index(hit.when) / max(1, len(order) - 1) if len(order) > 1 else 1.0
        sents += sentences.sentences(
            hit.id,
            texts[hit.id],
            hit.when,
            hit.speaker,
            rank,
            bool(hit.superseded_by),
            slot=hit.id in judgement.slot_ids,
            recency=recency,
            similarity=hit.similarity or 0.0,
            context=prev.text if prev is not None and prev.speaker != hit.speaker else "",
        )
    sents = [s for s in sents if dialogue.speaks_about(q, s) and not dialogue.contentless(s.text)]
    evidence = sorted(sents, key=lambda s: -extract.sentence_score(q, s))
    if not evidence and not abstain:
        abstain, reason = True, "other_subject"
    if evidence and not abstain and not _supported(q, evidence, people):
        abstain, reason = True, "not_in_evidence"
    if evidence and not abstain and _told_by_other(q, memory, judgement.relevant, evidence):
        abstain, reason = True, "other_subject"
    if abstain:
        relevant, evidence = [], []  # an abstention cites nothing
    cands = extract.candidates(q, sents) if not abstain else []
    messages: list[ChatMessage] = []
    packed: list[SearchHit] = []
    tokens = 0
    if not abstain and tokenizer is not None:
        model = tokenizer()
        messages, packed, tokens = build_messages(
            question,
            order_for_prompt(relevant, hits),
            profile,
            count_tokens=model.count_tokens,
            context_length=model.context_length,
            answer_tokens=answer_tokens,
            history=history,
            now=now,
        )
    t2 = time.perf_counter()
    return PreparedAnswer(
        question=question,
        messages=messages,
        packed=packed,
        relevant=relevant,
        slot_ids=judgement.slot_ids,
        profile=list(profile),
        abstain=abstain,
        retrieval_ms=(t1 - t0) * 1000.0,
        build_ms=(t2 - t1) * 1000.0,
        prompt_tokens=tokens,
        analysis=q,
        evidence=evidence,
        candidates=cands,
        texts=texts,
        abstain_reason=reason if abstain else "",
    )


MIN_COVERAGE = 0.45
MIN_COVERAGE_SIMILAR = 0.34  # enough when the memory is also close in meaning
SIMILAR = 0.5


def _names_present(q: Question, s: sentences.Sentence, people: frozenset[str]) -> bool:
    """Every name the question gives besides its subject and the conversation's own speakers
    ("a trip to Barcelona") must be in the memory: a similar fact about another place or
    person is not this one."""
    text = (s.memory_text or s.text).lower()
    dating = " ".join(a for a in (q.scope.before, q.scope.after) if a).lower().split()
    others = [
        n
        for n in q.names
        if n.lower() != q.subject.lower() and n.lower() not in people and n.lower() not in dating
    ]
    return all(n.lower() in text for n in others)


def _supported(q: Question, evidence: Sequence[sentences.Sentence], people: frozenset[str]) -> bool:
    """Evidence-based abstention: one of the best memories must hold at least half of what
    the question is about (a third when it is also close in meaning) and every name it
    gives, and speak about its subject, unless it holds the asked-about slot (its words are
    the slot's)."""
    for s in evidence[:3]:
        if not dialogue.speaks_about(q, s) or not _names_present(q, s, people):
            continue
        cov = sentences.coverage(q, s, whole_memory=s.speaker is None)
        if s.context:
            cov = max(cov, sentences.coverage(q, dialogue.in_reply(s)))
        if (
            (s.slot and q.about_user and q.slot_only and (cov > 0 or not q.focus))
            or cov >= MIN_COVERAGE
            or (cov >= MIN_COVERAGE_SIMILAR and s.similarity >= SIMILAR)
        ):
            return True
    return False


OTHER_MARGIN = 0.1


def _speakers_named(q: Question, hits: Sequence[SearchHit]) -> list[str]:
    speakers = {h.speaker for h in hits if h.speaker}
    return [n for n in q.names if any(same_person(n, sp) for sp in speakers)]


def _told_by_other(
    q: Question,
    memory: MemoryStore,
    hits: Sequence[SearchHit],
    evidence: Sequence[sentences.Sentence],
) -> bool:
    """A similar thing said by someone else is not the subject's: when another speaker's own
    statements (not about the subject, not said to them) match the question clearly better
    than anything about the subject, the question asks about what that other person did
    ("What did Ann realise after the race?" when it was Ben who ran it)."""
    if not q.subject_is_name or any(
        not same_person(n, q.subject) for n in _speakers_named(q, hits)
    ):
        return False  # "Did Ann and Ben both ...?": each one's turns count
    others = [
        h
        for h in hits
        if h.speaker
        and not same_person(h.speaker, q.subject)
        and not dialogue.names(h.text, q.subject)
    ]
    if not others:
        return False
    # Their turn is read with the turn it replies to: what it confirms was said there.
    replied = memory.previous_turns(h.id for h in others)

    def told(h: SearchHit) -> float:
        prev = replied.get(h.id)
        said = dialogue.own_statements(h.text)
        return sentences.focus_coverage(q, f"{said} {prev.text if prev is not None else ''}")

    theirs = max(told(h) for h in others)
    ours = max(
        sentences.focus_coverage(q, dialogue.own_statements(s.memory_text or s.text))
        for s in evidence[:5]
    )
    return theirs >= ours + OTHER_MARGIN


def _topics(memory: MemoryStore, hits: Sequence[SearchHit]) -> dict[str, str | None]:
    return {h.id: getattr(memory.get(h.id), "topic", None) for h in hits}


def _hit_from_memory(m: Memory) -> SearchHit:
    return SearchHit(
        id=m.id,
        text=m.text,
        score=0.0,
        kind=m.kind,
        created_at=m.created_at,
        at=m.at,
        source=m.source,
        superseded_by=m.superseded_by,
        speaker=m.speaker,
        session=m.session,
    )
