"""Answers from memory: question analysis, evidence, candidates, composition, verification.

Only re-exports; see the modules for the parts.
"""

from app.answer.citations import Citation, select_citations
from app.answer.compose import STRATEGIES, strategy
from app.answer.prepare import ABSTAIN_ANSWER, prepare_answer, validate_question
from app.answer.prompt import build_messages, format_today
from app.answer.types import Answer, AnswerStream, Draft, EvidenceSpan, PreparedAnswer

__all__ = [
    "ABSTAIN_ANSWER",
    "STRATEGIES",
    "Answer",
    "AnswerStream",
    "Citation",
    "Draft",
    "EvidenceSpan",
    "PreparedAnswer",
    "build_messages",
    "format_today",
    "prepare_answer",
    "select_citations",
    "strategy",
    "validate_question",
]
