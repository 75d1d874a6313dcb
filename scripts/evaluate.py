"""`make eval`: measure the running product on labelled patient messages, held-out half first.

Every message goes through the real product (`POST /api/chat`, a fresh session each; conversations turn by
turn in one session), so what is measured is what a patient would get:

1. **Held-out** (`labelled/heldout`, written in a separate pass and never used to write rules, train or set
   thresholds): triage of symptom reports, off-topic requests and patient questions; multi-turn triage
   conversations; answers (when `knowledge.check` is present); then the triage layers in-process (what the
   learned layer caught that the rules did not).
2. **Dev** (`../shared/eval/dev`): a measurement set; rules were once written while looking at it, so its
   figures are an upper bound.
3. A **summary** of both, and the exit code: 1 when a held-out target is missed (`make eval` is not part of
   `make test`). `--verbose` lists dev misses; held-out misses are never listed, so they cannot be fitted.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import yaml

from knowledge.clinic import load_clinic_profile
from safety.bank import HELDOUT, offtopic_examples, question_examples, symptom_examples
from scripts.common import ROOT, SHARED, Chat, running_product

LEVELS = ["none", "routine", "urgent", "emergency"]
CONCURRENCY = 4


@dataclass
class Figure:
    name: str
    part: int
    whole: int
    target: float | None = None  # share; None: reported only
    at_most: bool = False  # the target is a ceiling (over-triage), not a floor

    @property
    def share(self) -> float | None:
        return self.part / self.whole if self.whole else None

    @property
    def met(self) -> bool | None:
        if self.target is None or self.share is None:
            return None
        return self.share <= self.target if self.at_most else self.share >= self.target

    def text(self) -> str:
        if self.share is None:
            return "n/a"
        return f"{100 * self.share:5.1f} % ({self.part}/{self.whole})"


# --- talking to the product --------------------------------------------------------------------------
async def ask_each(url: str, items: list[dict]) -> list[dict]:
    """One fresh session per item (`text`, optional `day`), a few at a time."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:

        async def ask(item: dict) -> dict:
            async with limit:
                return await Chat(client).send(item["text"], _date(item.get("day")))

        return await asyncio.gather(*(ask(item) for item in items))


async def converse_each(url: str, conversations: list[dict]) -> list[list[dict]]:
    """Each conversation's turns in order in one session; conversations a few at a time."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:

        async def converse(conversation: dict) -> list[dict]:
            async with limit:
                chat, replies = Chat(client), []
                for number, turn in enumerate(conversation["turns"]):
                    day = conversation.get("day") if number == 0 else None
                    replies.append(await chat.send(turn["text"], _date(day)))
                return replies

        return await asyncio.gather(*(converse(c) for c in conversations))


def _date(day) -> date | None:
    # Days counted in the clinic's time zone, as the product counts them (UTC's today can be its tomorrow).
    return load_clinic_profile().today() - timedelta(days=int(day)) if day is not None else None


def level_of(reply: dict) -> str:
    return max((m["triage"] for m in reply["messages"]), key=LEVELS.index, default="none")


def reply_text(reply: dict) -> str:
    return "\n".join(message["text"] for message in reply["messages"])


def is_fallback(reply: dict) -> bool:
    kinds = {message["kind"] for message in reply["messages"]}
    return "fallback" in kinds and "answer" not in kinds


# --- triage --------------------------------------------------------------------------------------------
def triage_figures(
    expected: list[str], replies: list[dict], emergency_number: str
) -> tuple[list[Figure], Counter]:
    confusion: Counter = Counter()
    with_number = []
    for level, reply in zip(expected, replies, strict=True):
        got = level_of(reply)
        confusion[(level, got)] += 1
        if level == "emergency" and got == "emergency":
            with_number.append(emergency_number in reply_text(reply))

    def count(rows: set[str], hit) -> tuple[int, int]:
        whole = sum(n for (e, _), n in confusion.items() if e in rows)
        return sum(n for (e, g), n in confusion.items() if e in rows and hit(e, g)), whole

    rank = LEVELS.index
    return [
        Figure("emergency recall", *count({"emergency"}, lambda e, g: g == "emergency"), 1.0),
        Figure("emergency escalated at all", *count({"emergency"}, lambda e, g: rank(g) >= 2), 1.0),
        Figure("urgent recall (urgent or higher)", *count({"urgent"}, lambda e, g: rank(g) >= 2), 1.0),
        Figure("emergency replies with the number", sum(with_number), len(with_number), 1.0),
        Figure("over-triage of routine/none", *count({"routine", "none"}, lambda e, g: rank(g) > rank(e)),
               0.05, at_most=True),
    ], confusion  # fmt: skip


def print_confusion(confusion: Counter) -> None:
    print("   rows expected, columns given " + "".join(f"{level:>10}" for level in LEVELS))
    for expected in LEVELS:
        if any(confusion[(expected, g)] for g in LEVELS):
            print(f"{expected:>31}" + "".join(f"{confusion[(expected, g)]:>10}" for g in LEVELS))


def escalated_share(name: str, replies: list[dict]) -> Figure:
    escalated = sum(level_of(r) in ("urgent", "emergency") for r in replies)
    return Figure(name, escalated, len(replies), 0.0, at_most=True)


def conversation_figures(conversations: list[dict], replies: list[list[dict]]) -> list[Figure]:
    red, red_ok, calm, calm_ok = 0, 0, 0, 0
    for conversation, turns in zip(conversations, replies, strict=True):
        for turn, reply in zip(conversation["turns"], turns, strict=True):
            got = LEVELS.index(level_of(reply))
            if turn["expect"] in ("urgent", "emergency"):
                red, red_ok = red + 1, red_ok + (got >= LEVELS.index(turn["expect"]))
            else:
                calm, calm_ok = calm + 1, calm_ok + (got < 2)
    return [
        Figure("conversation turns where a red flag is clear, escalated", red_ok, red, 1.0),
        Figure("calm conversation turns not escalated", calm_ok, calm, 0.95),
    ]


def held_out(url: str) -> list[Figure]:
    number = load_clinic_profile().emergency_number
    print("\n== Held-out half (labelled/heldout): never read to write rules, train or choose thresholds")
    symptoms = symptom_examples(HELDOUT)
    replies = asyncio.run(ask_each(url, [{"text": e.text, "day": e.day} for e in symptoms]))
    figures, confusion = triage_figures([e.level for e in symptoms], replies, number)
    print(f"-- triage of {len(symptoms)} symptom reports through /api/chat")
    print_confusion(confusion)
    offtopic = offtopic_examples(HELDOUT)
    figures.append(escalated_share("off-topic requests escalated", asyncio.run(
        ask_each(url, [{"text": e.text} for e in offtopic]))))  # fmt: skip
    questions = question_examples(HELDOUT)
    figures.append(escalated_share("patient questions escalated", asyncio.run(
        ask_each(url, [{"text": e.text, "day": e.day} for e in questions]))))  # fmt: skip
    path = HELDOUT / "triage_conversations.yml"
    conversations = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else []
    figures += conversation_figures(conversations, asyncio.run(converse_each(url, conversations)))
    figures += answer_figures(url, "held-out")
    for figure in figures:
        print(f"   {figure.name:<58} {figure.text()}")
    return figures


def answer_figures(url: str, half: str) -> list[Figure]:
    """Answer quality from `knowledge.check` (answers, fallbacks, small talk, off-topic, multi-turn)."""
    try:
        from knowledge.check import measure
    except ImportError:
        print("   (answer quality: knowledge.check is not there yet, skipped)")
        return []
    figures = []
    for measured in measure(url, half):
        part, _, whole = measured.detail.partition("/")
        if not (part.isdigit() and whole.isdigit()):  # a time in ms: printed, not a share with a target
            print(f"   {measured.line()}")
            continue
        ceiling = measured.target.startswith("<=")
        limit = measured.target.strip("<=> %")
        target = float(limit) / 100 if limit.replace(".", "", 1).isdigit() else None
        figures.append(Figure(measured.name, int(part), int(whole), target, ceiling))
    return figures


def layers() -> None:
    """What each triage layer contributes on the held-out half (in-process, the same engine)."""
    print("\n-- triage layers, in-process on the held-out half")
    subprocess.run([sys.executable, "-m", "safety", "check", "--half", "held-out"], cwd=ROOT, check=False)


# --- the dev set ------------------------------------------------------------------------------------
def dev(url: str, folder: Path, verbose: bool) -> list[Figure]:
    print(f"\n== Dev set ({folder}): a measurement set; its figures are an upper bound")
    figures: list[Figure] = []
    symptoms_file, questions_file = folder / "symptoms.yaml", folder / "questions.yaml"
    if symptoms_file.is_file():
        items = yaml.safe_load(symptoms_file.read_text())
        replies = asyncio.run(ask_each(url, items))
        triage, confusion = triage_figures(
            [i["triage"] for i in items], replies, load_clinic_profile().emergency_number
        )
        print(f"-- triage of {len(items)} symptom reports")
        print_confusion(confusion)
        figures += triage
        if verbose:
            for item, reply in zip(items, replies, strict=True):
                if level_of(reply) != item["triage"]:
                    print(f"   MISS {item['id']} expected {item['triage']} got {level_of(reply)}")
    if questions_file.is_file():
        items = yaml.safe_load(questions_file.read_text())
        replies = asyncio.run(ask_each(url, items))
        figures += question_figures(items, replies, verbose)
    for figure in figures:
        print(f"   {figure.name:<58} {figure.text()}")
    return figures


def question_figures(items: list[dict], replies: list[dict], verbose: bool) -> list[Figure]:
    right: dict[str, list[bool]] = {"answer": [], "fallback": [], "smalltalk": []}
    for item, reply in zip(items, replies, strict=True):
        text = reply_text(reply)
        ok = all(re.search(p, text, re.IGNORECASE) for p in item.get("expect_all") or []) and not any(
            re.search(p, text, re.IGNORECASE) for p in item.get("forbid") or []
        )
        if item["kind"] == "fallback":
            ok = ok and is_fallback(reply)
        right[item["kind"]].append(ok)
        if verbose and not ok:
            print(f"   MISS {item['id']} [{item['kind']}] {text[:200]!r}")
    fallbacks = [item["kind"] == "fallback" for item, r in zip(items, replies, strict=True) if is_fallback(r)]
    return [
        Figure("answers correct", sum(right["answer"]), len(right["answer"]), 0.95),
        Figure('"not covered" questions given the fallback', sum(right["fallback"]), len(right["fallback"]),
               0.95),
        Figure("fallback precision", sum(fallbacks), len(fallbacks), 0.95),
        Figure("small talk", sum(right["smalltalk"]), len(right["smalltalk"]), 0.95),
        escalated_share("patient questions escalated", replies),
    ]  # fmt: skip


# --- summary ----------------------------------------------------------------------------------------
def summary(held: list[Figure], seen: list[Figure]) -> bool:
    print("\n== Summary: held-out first, dev second")
    print(f"   {'figure':<58} {'held-out':>18} {'dev':>18}  target")
    dev_by_name = {f.name: f for f in seen}
    held_names = {f.name for f in held}
    rows = [(f, dev_by_name.get(f.name)) for f in held] + [
        (None, f) for f in seen if f.name not in held_names
    ]
    for mine, theirs in rows:
        figure = mine or theirs
        target = (
            ""
            if figure.target is None
            else ("<= " if figure.at_most else ">= ") + f"{100 * figure.target:g} %"
        )
        mark = {True: "met", False: "MISSED", None: ""}[mine.met if mine else None]
        print(
            f"   {figure.name:<58} {mine.text() if mine else '-':>18} {theirs.text() if theirs else '-':>18}"
            f"  {target} {mark}"
        )
    missed = [f.name for f in held if f.met is False]
    print(
        f"\n{len(missed)} held-out target(s) missed: " + "; ".join(missed)
        if missed
        else "\nEvery held-out target met."
    )
    return not missed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eval-dir", type=Path, default=SHARED / "eval" / "dev")
    parser.add_argument("--verbose", "-v", action="store_true", help="list the dev set's misses")
    args = parser.parse_args()
    with running_product() as product:
        held = held_out(product.url)
        seen = dev(product.url, args.eval_dir, args.verbose)
    layers()
    return 0 if summary(held, seen) else 1


if __name__ == "__main__":
    sys.exit(main())
