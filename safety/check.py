"""Measure triage on the project's own labelled messages, layer by layer, held-out half first.

    .venv/bin/python -m safety check                 # held-out and train halves, in-process
    .venv/bin/python -m safety check --half train --misses

Prints, per half: the confusion matrix, emergency and urgent recall, over-triage, escalated off-topic
messages and what the learned layer caught that the rules did not; then the multi-turn conversations.
Misses are printed for the train half only: the held-out half is never read to write rules.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from safety.bank import HELDOUT, TRAIN, offtopic_examples, question_examples, read_items, symptom_examples
from safety.engine import Triage, TriageEngine
from safety.reading import stated_day
from safety.rules import LEVELS, RANK

TARGETS = {
    "emergency recall": 1.0,
    "urgent recall": 1.0,
    "over-triage": 0.05,
    "off-topic escalated": 0.0,
    "questions escalated": 0.0,
}


@dataclass
class Measured:
    name: str
    confusion: Counter = field(default_factory=Counter)
    rules_confusion: Counter = field(default_factory=Counter)
    offtopic_escalated: int = 0
    offtopic: int = 0
    questions_escalated: int = 0
    questions: int = 0
    unsure: int = 0
    learned_only: list[tuple[str, str, str]] = field(default_factory=list)  # (id, expected, got)
    misses: list[tuple[str, str, str, str, tuple[str, ...]]] = field(default_factory=list)
    milliseconds: list[float] = field(default_factory=list)

    def share(self, expected: set[str], hit) -> tuple[int, int]:
        whole = sum(n for (e, _), n in self.confusion.items() if e in expected)
        part = sum(n for (e, g), n in self.confusion.items() if e in expected and hit(e, g))
        return part, whole

    def figures(self) -> dict[str, tuple[int, int]]:
        return {
            "emergency recall": self.share({"emergency"}, lambda e, g: g == "emergency"),
            "urgent recall": self.share({"urgent"}, lambda e, g: RANK[g] >= RANK["urgent"]),
            "over-triage": self.share({"routine", "none"}, lambda e, g: RANK[g] > RANK[e]),
            "off-topic escalated": (self.offtopic_escalated, self.offtopic),
            "questions escalated": (self.questions_escalated, self.questions),
        }


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f} % ({part}/{whole})" if whole else "n/a"


def _day(text: str, day: int | None, today: date) -> int | None:
    """The day as the pipeline knows it: the one the API sent, else the one the message states."""
    return day if day is not None else stated_day(text, today)


def measure_messages(engine: TriageEngine, folder: Path, name: str) -> Measured:
    today = date.today()
    measured = Measured(name)
    items = [(e, "report") for e in symptom_examples(folder)] + [
        (e, "off-topic") for e in offtopic_examples(folder)
    ]
    for example, kind in items + [(e, "question") for e in question_examples(folder)]:
        day = _day(example.text, example.day, today)
        started = time.perf_counter()
        triage = engine.assess(example.text, day)
        measured.milliseconds.append(1000 * (time.perf_counter() - started))
        if kind == "question":
            measured.questions += 1
            measured.questions_escalated += triage.escalates
            if triage.escalates:
                measured.misses.append((example.id, "question", triage.level, example.text, triage.signs))
            continue
        rules_level = triage.layers.get("rules", "none")
        measured.confusion[(example.level, triage.level)] += 1
        measured.rules_confusion[(example.level, rules_level)] += 1
        measured.unsure += triage.unsure
        if kind == "off-topic":
            measured.offtopic += 1
            measured.offtopic_escalated += triage.escalates
        caught = RANK[triage.level] >= RANK[example.level] > RANK[rules_level] and example.level in (
            "urgent",
            "emergency",
        )
        if caught:
            measured.learned_only.append((example.id, example.level, triage.level))
        wrong = (
            RANK[triage.level] < RANK[example.level]
            if example.level in ("urgent", "emergency")
            else triage.level != example.level
        )
        if wrong:
            measured.misses.append((example.id, example.level, triage.level, example.text, triage.signs))
    return measured


def print_measured(measured: Measured, show_misses: bool) -> None:
    print(
        f"\n== Triage, {measured.name}: {sum(measured.confusion.values())} messages "
        f"({measured.offtopic} off-topic); rows expected, columns predicted"
    )
    print(f"{'':>12}" + "".join(f"{level:>11}" for level in LEVELS))
    for expected in LEVELS:
        print(f"{expected:>12}" + "".join(f"{measured.confusion[(expected, got)]:>11}" for got in LEVELS))
    for label, (part, whole) in measured.figures().items():
        target = TARGETS[label]
        print(
            f"  {label:<22} {_percent(part, whole):<22} "
            f"target {'<=' if target < 1 else ''}{100 * target:.0f} %"
        )
    rules_em = sum(
        n for (e, g), n in measured.rules_confusion.items() if e == "emergency" and g == "emergency"
    )
    rules_ur = sum(
        n for (e, g), n in measured.rules_confusion.items() if e == "urgent" and RANK[g] >= RANK["urgent"]
    )
    print(
        f"  rules alone: emergency {rules_em}, urgent-or-higher {rules_ur}; "
        f"the learned layer added {len(measured.learned_only)} escalations the rules missed"
    )
    print(f"  unsure (safety-netting, staff review): {measured.unsure}")
    times = sorted(measured.milliseconds)
    if times:
        print(
            f"  time per message: median {times[len(times) // 2]:.1f} ms, "
            f"p95 {times[int(0.95 * len(times))]:.1f} ms"
        )
    if show_misses:
        for item_id, expected, got, text, signs in measured.misses:
            print(f"  MISS {item_id} {expected} -> {got} {signs} | {text}")


def measure_conversations(
    engine: TriageEngine, folder: Path
) -> tuple[Counter, list[tuple[str, int, str, str]]]:
    """Per turn: the highest of the message's and the conversation's triage against `expect`."""
    today = date.today()
    results: Counter = Counter()
    misses = []
    for conversation in read_items(folder, "triage_conversations"):
        known = conversation.get("day")
        history: list[str] = []
        for number, turn in enumerate(conversation["turns"], start=1):
            text = turn["text"]
            said = stated_day(text, today)
            known = said if said is not None else known
            history.append(text)
            triage: Triage = engine.assess(text, known).raised_by(
                engine.assess_conversation(history[-8:], known)
            )
            expected = turn["expect"]
            if expected in ("urgent", "emergency"):
                ok = RANK[triage.level] >= RANK[expected]
                results["escalation turns"] += 1
                results["escalation turns right"] += ok
            else:
                ok = not triage.escalates
                results["calm turns"] += 1
                results["calm turns right"] += ok
            if not ok:
                misses.append((conversation["id"], number, expected, triage.level))
    return results, misses


def run(engine: TriageEngine, halves: list[str], show_misses: bool) -> dict[str, dict[str, tuple[int, int]]]:
    folders = {"held-out": HELDOUT, "train": TRAIN}
    figures = {}
    for half in halves:
        measured = measure_messages(engine, folders[half], half)
        print_measured(measured, show_misses and half == "train")
        figures[half] = measured.figures()
        results, misses = measure_conversations(engine, folders[half])
        right, turns = results["escalation turns right"], results["escalation turns"]
        calm_right, calm = results["calm turns right"], results["calm turns"]
        print(
            f"  conversations ({half}): turns where a red flag is clear escalated {_percent(right, turns)}; "
            f"calm turns not escalated {_percent(calm_right, calm)}"
        )
        figures[half]["conversation escalation turns"] = (right, turns)
        if show_misses and half == "train":
            for conversation_id, number, expected, got in misses:
                print(f"  MISS {conversation_id} turn {number}: {expected} -> {got}")
    return figures


__all__ = ["run", "measure_messages", "measure_conversations"]
