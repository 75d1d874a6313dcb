"""Choosing the answer decision's numbers on the train half of the labelled questions (`knowledge calibrate`).

Three steps, each on labelled/train only (the held-out half is never used here):

1. fusion weights: the (question, passage, lexical) weights under which the answerer picks a right article
   for the most answerable questions;
2. thresholds: the fused-score threshold (and the stricter one for questions whose words are mostly in no
   article) that maximise the worst of the three targets: answers correct, "not covered" questions given a
   fallback, fallback precision. The things lexicon was written knowing the train half's subjects, so on
   train it catches nearly every "not covered" question by itself and the thresholds would learn nothing:
   each such question therefore also counts with the lexicon blind, as a question about a thing nobody
   listed, which is what the scores must catch on questions not seen. BLIND_SHARE is the assumed share of
   unseen "not covered" questions whose thing the lexicon does not know (an assumption made before any
   held-out figure was looked at);
3. stage margin: how close an after-care article and its pre-care counterpart may score for the assistant
   to ask whether the treatment has happened. Asking is right only for the questions labelled
   stage-ambiguous, and answering those from either article is right too, so the margin is the widest one
   that loses no right reply.

The answerer is run for real at each step (the question embeddings are cached), so what is calibrated is
exactly what runs.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from knowledge.answers import Answerer, Decision
from knowledge.retriever import Weights
from knowledge.things import ThingReader

WEIGHT_GRID = [
    (q / 10, p / 10, round(1 - q / 10 - p / 10, 1))
    for q in range(3, 10)
    for p in range(0, 4)
    if 1 - q / 10 - p / 10 >= 0.05
]
THRESHOLDS = [round(0.15 + 0.01 * step, 2) for step in range(46)]
UNKNOWN_SHARES = [0.4, 0.5, 0.6, 0.7, 0.8, 1.0]
STAGE_MARGINS = [round(0.01 * step, 2) for step in range(0, 21, 2)]
BLIND_SHARE = 0.3


@dataclass(frozen=True)
class Outcome:
    """What the answerer made of one labelled question with the threshold open."""

    item: dict
    reason: str  # answered | stage_unknown | not_covered | off_topic | no_match
    right_article: bool  # the chosen article is one the label accepts
    score: float
    unknown: float  # share of the question's words that no article has
    stage_gap: float | None  # best minus its counterpart's score when the stage was unknown


@dataclass(frozen=True)
class Calibration:
    weights: Weights
    decision: Decision
    top1: float
    answers: float
    not_covered: float
    precision: float
    stage_right: float


def calibrate(answerer: Answerer, items: list[dict]) -> Calibration:
    """The weights and decision numbers for `answerer` on the labelled `items` (answer and fallback kinds)."""
    labelled = [item for item in items if item["kind"] in ("answer", "fallback")]
    retriever = answerer.retriever
    open_decision = dataclasses.replace(
        answerer.decision, threshold=0.0, unknown_share=1.0, unknown_threshold=0.0, stage_margin=0.5
    )
    best_weights, best_top1 = retriever.weights, -1.0
    for question, passage, lexical in WEIGHT_GRID:
        retriever.weights = Weights(question, passage, lexical)
        outcomes = outcomes_of(answerer, labelled, open_decision)
        answerable = [o for o in outcomes if o.item["kind"] == "answer"]
        top1 = sum(o.right_article or _asked_right(o) for o in answerable) / max(1, len(answerable))
        if top1 > best_top1 + 1e-9:
            best_weights, best_top1 = retriever.weights, top1
    retriever.weights = best_weights
    outcomes = outcomes_of(answerer, labelled, open_decision)
    kept_things = answerer.things
    answerer.things = ThingReader({})
    try:
        blind = outcomes_of(
            answerer, [item for item in labelled if item["kind"] == "fallback"], open_decision
        )
    finally:
        answerer.things = kept_things
    threshold, unknown_share, unknown_threshold, scores = _thresholds(outcomes, blind)
    margin, stage_right = _stage_margin(outcomes, threshold)
    decision = dataclasses.replace(
        answerer.decision,
        threshold=threshold,
        unknown_share=unknown_share,
        unknown_threshold=unknown_threshold,
        stage_margin=margin,
    )
    return Calibration(best_weights, decision, best_top1, *scores, stage_right)


def outcomes_of(answerer: Answerer, items: Iterable[dict], decision: Decision) -> list[Outcome]:
    """Run the answerer's decision for every item with `decision` in place."""
    kept = answerer.decision
    answerer.decision = decision
    try:
        return [_outcome(answerer, item) for item in items]
    finally:
        answerer.decision = kept


def _outcome(answerer: Answerer, item: dict) -> Outcome:
    part = answerer.decide(
        item["text"], None, item.get("day"), "after" if item.get("day") is not None else None
    )
    chosen = part.candidate.article_id if part.candidate else None
    right = item["kind"] == "answer" and chosen in [item["article"], *(item.get("also") or [])]
    gap = None
    if part.reason == "stage_unknown" and part.candidate is not None:
        rival = answerer._stage_rival(
            part.candidate, answerer.retriever.candidates(item["text"], None, item.get("day"))
        )
        gap = part.candidate.score - rival.score if rival is not None else None
    unknown = answerer.unknown_share(item["text"])
    return Outcome(item, part.reason, right, part.score, unknown, gap)


def _asked_right(outcome: Outcome) -> bool:
    return outcome.reason == "stage_unknown" and bool(outcome.item.get("stage_ambiguous"))


def _replies(outcomes: list[Outcome], threshold: float, unknown_share: float, unknown_threshold: float):
    """(answered?, right?) per outcome for these thresholds, the stage asked as calibrated so far."""
    for outcome in outcomes:
        if outcome.reason in ("not_covered", "off_topic") or (
            outcome.reason == "no_match" and outcome.score <= 0
        ):
            yield outcome, False
            continue
        needed = max(threshold, unknown_threshold if outcome.unknown >= unknown_share else 0.0)
        yield outcome, outcome.score >= needed


def _figures(outcomes: list[Outcome], blind: list[Outcome], *numbers: float) -> tuple[float, float, float]:
    """Answers correct, not covered (as is and lexicon-blind, weighted by BLIND_SHARE), fallback precision."""
    answers: list[bool] = []
    covered: list[tuple[float, bool]] = []
    fallbacks: list[tuple[bool, float]] = []  # (really not covered, weight)
    for outcome, answered in _replies(outcomes, *numbers):
        if outcome.item["kind"] == "answer":
            answers.append(answered and (outcome.right_article or _asked_right(outcome)))
            if not answered:
                fallbacks.append((False, 1.0))
    for group, weight in ((outcomes, 1.0 - BLIND_SHARE), (blind, BLIND_SHARE)):
        for _, answered in _replies([o for o in group if o.item["kind"] == "fallback"], *numbers):
            covered.append((weight, not answered))
            if not answered:
                fallbacks.append((True, weight))
    total = sum(w for w, _ in covered)
    covered_rate = sum(w for w, caught in covered if caught) / total if total else 1.0
    weight = sum(w for _, w in fallbacks)
    precision = sum(w for ok, w in fallbacks if ok) / weight if weight else 1.0
    return _rate(answers), covered_rate, precision


def _thresholds(
    outcomes: list[Outcome], blind: list[Outcome]
) -> tuple[float, float, float, tuple[float, float, float]]:
    """Maximise the worst of the three targets; ties go to the lower (more answering) thresholds."""
    best: tuple[float, ...] | None = None
    chosen = (0.3, 1.0, 0.0, (0.0, 0.0, 0.0))
    for threshold in THRESHOLDS:
        for share in UNKNOWN_SHARES:
            for strict in [t for t in THRESHOLDS if t >= threshold][::2] if share < 1.0 else [threshold]:
                scores = _figures(outcomes, blind, threshold, share, strict)
                key = (round(min(scores), 6), round(sum(scores), 6), -threshold, -strict, share)
                if best is None or key > best:
                    best, chosen = key, (threshold, share, strict, scores)
    return chosen


def _stage_margin(outcomes: list[Outcome], threshold: float) -> tuple[float, float]:
    """The margin under which asking the stage gives the most right replies among the answerable questions
    whose stage nothing said."""
    asked = [
        o for o in outcomes if o.item["kind"] == "answer" and o.stage_gap is not None and o.score >= threshold
    ]
    if not asked:
        return 0.0, 1.0
    best_margin, best_right = 0.0, -1.0
    for margin in STAGE_MARGINS:
        right = [
            bool(o.item.get("stage_ambiguous")) if o.stage_gap <= margin else o.right_article for o in asked
        ]
        rate = _rate(right)
        if rate >= best_right - 1e-9:  # the widest margin that loses nothing
            best_margin, best_right = margin, max(rate, best_right)
    return best_margin, best_right


def _rate(results: list[bool]) -> float:
    return sum(results) / len(results) if results else 1.0


def write_calibration(settings: Path, calibration: Calibration, count: int) -> None:
    """Replace the calibrated lines of settings.yml in place, so its comments survive."""
    weights, decision = calibration.weights, calibration.decision
    write_setting(
        settings,
        "weights",
        f"{{question: {weights.question}, passage: {weights.passage}, lexical: {weights.lexical}}}",
    )
    for name in ("threshold", "unknown_share", "unknown_threshold", "stage_margin"):
        write_setting(settings, name, f"{getattr(decision, name):.2f}")
    text = settings.read_text(encoding="utf-8")
    stamp = f"# last calibrated {time.strftime('%Y-%m-%d')} on {count} train questions"
    text = re.sub(r"^# last calibrated .*$\n?", "", text, flags=re.MULTILINE).rstrip("\n") + f"\n{stamp}\n"
    settings.write_text(text, encoding="utf-8")


def write_setting(settings: Path, name: str, value: str) -> None:
    """Replace the value of the first `name:` line of a settings file, keeping its comment."""
    text = settings.read_text(encoding="utf-8")
    pattern = re.compile(rf"^(?P<indent>\s*){name}: [^#\n]*(?P<comment>#.*)?$", re.MULTILINE)
    if not pattern.search(text):
        raise ValueError(f"{settings}: no '{name}:' line to update")

    def line(match: re.Match[str]) -> str:
        return f"{match['indent']}{name}: {value}   {match['comment'] or ''}".rstrip()

    settings.write_text(pattern.sub(line, text, count=1), encoding="utf-8")
