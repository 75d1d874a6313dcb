""" "Try it": a patient question against live or draft content, with everything that decides the reply.

Shows what the pipeline would do with the message (triage first), the passages retrieval ranks (cosine,
boosts, the treatment-day filter, whether each clears the threshold) and the exact reply text. Without
Rasa there is no NLU intent unless staff name one, as in `python -m knowledge explain --intent`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.conversation.triage_reply import EscalationOutcome, TriageReplies
from bot.services import Services
from knowledge.answers import Answer
from knowledge.live import KnowledgeVersion

SHOWN = 8


@dataclass(frozen=True)
class HitView:
    rank: int
    article_id: str
    title: str
    position: int
    version: int | None
    text: str
    cosine: float
    ranking: float
    verdict: str  # quotable | too weak | excluded
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ReplyMessage:
    kind: str
    triage: str
    text: str
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class TryResult:
    question: str
    knowledge_version: str
    triage: str
    threshold: float
    hits: tuple[HitView, ...]
    reply: tuple[ReplyMessage, ...]


def try_question(
    services: Services, version: KnowledgeVersion, question: str, day: int | None, intent: str | None
) -> TryResult:
    answerer = version.answerer
    triage = services.triage.assess(question, day)
    hits = []
    for rank, hit in enumerate(answerer.retriever.rank(question, intent, day)[:SHOWN], start=1):
        verdict = (
            "excluded" if hit.excluded else "quotable" if hit.score >= answerer.threshold else "too weak"
        )
        p = hit.passage
        hits.append(
            HitView(
                rank,
                p.article_id,
                p.title,
                p.position,
                p.version,
                p.text,
                hit.score,
                hit.adjusted_score,
                verdict,
                hit.reasons,
            )
        )
    return TryResult(
        question,
        version.version,
        triage.level,
        answerer.threshold,
        tuple(hits),
        tuple(_reply(services, triage, answerer.answer(question, intent, day))),
    )


def _reply(services: Services, triage, answer: Answer) -> list[ReplyMessage]:  # noqa: ANN001 - a Triage
    """The messages the patient would get, in order (as bot/conversation/pipeline.py composes them)."""
    wording = TriageReplies(services.triage.protocol, services.replies, services.clinic)
    messages = []
    if triage.escalates:
        # As if the escalation was recorded and staff alerted (which "try it" does not do).
        message = wording.for_escalation(triage, EscalationOutcome("new", True), handed_off=False)
        messages.append(ReplyMessage("escalation", triage.level, message.text))
    elif triage.unsure:
        messages.append(ReplyMessage("escalation", triage.level, wording.safety_net(triage).text))
    elif triage.level == "routine" and triage.reply and answer.kind != "answer":
        messages.append(ReplyMessage("answer", "routine", wording.for_routine(triage).text))
    if triage.level == "emergency":
        return messages  # an emergency gets its one instruction only
    if answer.kind == "answer" or not messages:
        sources = tuple(f"{s['id']} v{s.get('version')}" for s in answer.sources)
        messages.append(ReplyMessage(answer.kind, triage.level, answer.text, sources))
    return messages
