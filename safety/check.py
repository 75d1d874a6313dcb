"""Measure the red-flag detector on a labelled symptom set (and, optionally, a question set).

    .venv/bin/python scripts/triage_check.py ../shared/eval/dev/symptoms.yaml \
        --questions ../shared/eval/dev/questions.yaml

Prints the confusion matrix (expected x predicted level), emergency recall, urgent-or-higher recall on
urgent items, over-triage on routine/none items, every miss, and how many questions would escalate.
Exits non-zero when a target is missed (100 % emergency and urgent recall, over-triage <= 5 %,
no escalated question), so it can run in CI.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from safety.rules import LEVELS, RedFlagDetector  # noqa: E402

RANK = {level: i for i, level in enumerate(LEVELS)}


def _load(path: Path) -> list[dict]:
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [item for item in items if isinstance(item, dict) and "text" in item]


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f} % ({part}/{whole})" if whole else "  n/a"


def check_symptoms(detector: RedFlagDetector, items: list[dict]) -> bool:
    confusion: Counter[tuple[str, str]] = Counter()
    misses = []
    started = time.perf_counter()
    for item in items:
        expected = item["triage"]
        result = detector.assess(item["text"], day=item.get("day"))
        confusion[(expected, result.level)] += 1
        if result.level != expected:
            misses.append((item, result))
    elapsed_ms = 1000 * (time.perf_counter() - started) / max(1, len(items))

    print(f"\nConfusion matrix ({len(items)} items; rows expected, columns predicted)")
    print(f"{'':>12}" + "".join(f"{level:>11}" for level in LEVELS))
    for expected in LEVELS:
        print(f"{expected:>12}" + "".join(f"{confusion[(expected, got)]:>11}" for got in LEVELS))

    def count(expected_levels: set[str], predicate) -> tuple[int, int]:
        whole = sum(n for (e, _), n in confusion.items() if e in expected_levels)
        part = sum(n for (e, g), n in confusion.items() if e in expected_levels and predicate(e, g))
        return part, whole

    emergency = count({"emergency"}, lambda e, g: g == "emergency")
    urgent = count({"urgent"}, lambda e, g: RANK[g] >= RANK["urgent"])
    over = count({"routine", "none"}, lambda e, g: RANK[g] > RANK[e])
    exact = count(set(LEVELS), lambda e, g: e == g)
    print(f"\nemergency recall            {_percent(*emergency)}   target 100 %")
    print(f"urgent recall (>= urgent)   {_percent(*urgent)}   target 100 %")
    print(f"over-triage (routine+none)  {_percent(*over)}   target <= 5 %")
    print(f"exact level agreement       {_percent(*exact)}")
    print(f"mean time per message       {elapsed_ms:.2f} ms")

    if misses:
        print("\nDisagreements (expected -> predicted):")
        for item, result in misses:
            direction = "UNDER" if RANK[result.level] < RANK[item["triage"]] else "over "
            print(
                f"  {direction} {item.get('id', '?'):>5} day={item.get('day')!s:>4} "
                f"{item['triage']:>9} -> {result.level:<9} {result.concepts}  | {item['text']}"
            )
    return (
        emergency[0] == emergency[1]
        and urgent[0] == urgent[1]
        and (over[1] == 0 or over[0] / over[1] <= 0.05)
    )


def check_questions(detector: RedFlagDetector, items: list[dict]) -> bool:
    escalated = []
    levels: Counter[str] = Counter()
    for item in items:
        result = detector.assess(item["text"], day=item.get("day"))
        levels[result.level] += 1
        if result.escalates:
            escalated.append((item, result))
    print(f"\nQuestions: {len(items)} messages; levels {dict(levels)}")
    print(f"escalated (urgent/emergency): {len(escalated)}   target 0")
    for item, result in escalated:
        print(f"  {item.get('id', '?'):>5} {result.level:<9} {result.concepts} | {item['text']}")
    return not escalated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "symptoms", type=Path, help="labelled symptom reports (YAML list with text, triage, day)"
    )
    parser.add_argument("--questions", type=Path, help="patient questions (YAML list with text, day)")
    parser.add_argument("--protocol", type=Path, help="red-flag protocol (default: knowledge/redflags.yml)")
    args = parser.parse_args(argv)

    detector = RedFlagDetector(protocol_path=args.protocol)
    ok = check_symptoms(detector, _load(args.symptoms))
    if args.questions is None:
        default = args.symptoms.with_name("questions.yaml")
        args.questions = default if default.is_file() and default != args.symptoms else None
    if args.questions is not None:
        ok = check_questions(detector, _load(args.questions)) and ok
    print("\nall targets met" if ok else "\nTARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
