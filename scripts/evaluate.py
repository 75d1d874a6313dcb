"""`make eval`: measure the running product against labelled patient messages.

Sends every message of ../shared/eval/dev (questions.yaml, symptoms.yaml) in a fresh session through
POST /api/chat and prints answer, fallback and small-talk accuracy, fallback precision and the triage
confusion matrix; then retrieval recall on the project's own labelled set and intent F1 from `rasa test nlu`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import tempfile
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx
import yaml

from knowledge.clinic import load_clinic_profile
from scripts.common import ROOT, SHARED, running_product

LEVELS = ["none", "routine", "urgent", "emergency"]


async def ask_all(url: str, items: list[dict]) -> list[dict]:
    """One fresh session per item; a few at a time."""
    limit = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def ask(item: dict) -> dict:
            body: dict = {"text": item["text"], "session_id": None}
            if item.get("day") is not None:
                body["treatment_date"] = (date.today() - timedelta(days=int(item["day"]))).isoformat()
            async with limit:
                response = await client.post("/api/chat", json=body)
            response.raise_for_status()
            return response.json()

        return await asyncio.gather(*(ask(item) for item in items))


def reply_text(reply: dict) -> str:
    return "\n".join(message["text"] for message in reply["messages"])


def is_fallback(reply: dict) -> bool:
    kinds = {message["kind"] for message in reply["messages"]}
    return "fallback" in kinds and "answer" not in kinds


def matches(item: dict, text: str) -> bool:
    expected = all(re.search(p, text, re.IGNORECASE) for p in item.get("expect_all") or [])
    forbidden = any(re.search(p, text, re.IGNORECASE) for p in item.get("forbid") or [])
    return expected and not forbidden


def score_questions(items: list[dict], replies: list[dict], verbose: bool) -> None:
    by_kind: dict[str, list[bool]] = {"answer": [], "fallback": [], "smalltalk": []}
    misses = []
    for item, reply in zip(items, replies, strict=True):
        text = reply_text(reply)
        ok = matches(item, text)
        if item["kind"] == "fallback":
            ok = ok and is_fallback(reply)
        by_kind[item["kind"]].append(ok)
        if not ok:
            misses.append((item, reply))
    fallback_replies = [
        item["kind"] == "fallback" for item, r in zip(items, replies, strict=True) if is_fallback(r)
    ]
    escalated = sum(any(m["triage"] in ("urgent", "emergency") for m in r["messages"]) for r in replies)
    print("\n== Questions (questions.yaml)")
    for kind, results in by_kind.items():
        print(f"{kind:>10} accuracy: {_share(results)}")
    print(
        f"fallback precision: {_share(fallback_replies)} "
        "(replies that were fallbacks and really out of scope)"
    )
    print(f"questions escalated (urgent/emergency): {escalated} of {len(items)}")
    if verbose:
        for item, reply in misses:
            kinds = ",".join(m["kind"] for m in reply["messages"])
            print(f"  MISS {item['id']} [{item['kind']}->{kinds}] {reply_text(reply)[:300]!r}")


def score_symptoms(items: list[dict], replies: list[dict], verbose: bool) -> None:
    emergency_number = load_clinic_profile().emergency_number
    confusion: Counter = Counter()
    with_number = []
    misses = []
    for item, reply in zip(items, replies, strict=True):
        predicted = max((m["triage"] for m in reply["messages"]), key=LEVELS.index, default="none")
        confusion[(item["triage"], predicted)] += 1
        if predicted == "emergency":
            with_number.append(emergency_number in reply_text(reply))
        if predicted != item["triage"]:
            misses.append((item, predicted))
    print("\n== Triage (symptoms.yaml): rows = expected, columns = predicted")
    print(" " * 11 + "".join(f"{level:>10}" for level in LEVELS))
    for expected in LEVELS:
        print(f"{expected:>11}" + "".join(f"{confusion[(expected, p)]:>10}" for p in LEVELS))

    def recall(level: str, accepted: tuple[str, ...]) -> str:
        results = [p in accepted for (e, p), n in confusion.items() if e == level for _ in range(n)]
        return _share(results)

    over = [
        LEVELS.index(p) > LEVELS.index(e)
        for (e, p), n in confusion.items()
        if e in ("routine", "none")
        for _ in range(n)
    ]
    print(f"emergency recall: {recall('emergency', ('emergency',))}")
    print(f"urgent recall (urgent or higher): {recall('urgent', ('urgent', 'emergency'))}")
    print(f"over-triage of routine/none items: {_share(over)}")
    print(f"emergency replies with the emergency number: {_share(with_number)}")
    if verbose:
        for item, predicted in misses:
            print(f"  MISS {item['id']} expected {item['triage']} got {predicted}")


def score_own_set(items: list[dict], replies: list[dict]) -> None:
    """The product's answer/fallback decision on the project's own labelled questions."""
    in_scope = [r for item, r in zip(items, replies, strict=True) if item["article"]]
    out_of_scope = [r for item, r in zip(items, replies, strict=True) if not item["article"]]
    cited = [
        any(s["id"] == item["article"] for m in r["messages"] for s in m["sources"])
        for item, r in zip(items, replies, strict=True)
        if item["article"]
    ]
    print("\n== Own labelled questions (knowledge/retrieval_eval.yml) through /api/chat")
    print(f"in-scope answered: {_share([not is_fallback(r) for r in in_scope])}")
    print(f"in-scope citing the labelled article: {_share(cited)}")
    print(f"out-of-scope given a fallback: {_share([is_fallback(r) for r in out_of_scope])}")


def retrieval_recall() -> None:
    print("\n== Retrieval on the project's own labelled set (knowledge/retrieval_eval.yml)")
    subprocess.run([os.sys.executable, "-m", "knowledge", "calibrate"], cwd=ROOT, check=False)


def intent_f1() -> None:
    print("\n== Intent F1 (rasa test nlu on tests/rasa/nlu_holdout.yml)")
    rasa = Path(os.environ.get("ASSISTANT_RASA_VENV", ROOT / ".venv-rasa")) / "bin" / "rasa"
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                str(rasa),
                "test",
                "nlu",
                "--model",
                os.environ["ASSISTANT_RASA_MODEL"],
                "--nlu",
                "tests/rasa/nlu_holdout.yml",
                "--out",
                out,
                "--quiet",
            ],
            cwd=ROOT,
            check=False,
            capture_output=True,
        )
        report_path = Path(out) / "intent_report.json"
        if not report_path.exists():
            print("rasa test nlu produced no report")
            return
        report = json.loads(report_path.read_text())
        print(
            f"weighted F1 {report['weighted avg']['f1-score']:.3f}, "
            f"macro F1 {report['macro avg']['f1-score']:.3f}, "
            f"accuracy {report['accuracy']:.3f}"
        )


def _share(results: list[bool]) -> str:
    if not results:
        return "n/a"
    return f"{100 * sum(results) / len(results):.1f} % ({sum(results)}/{len(results)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval-dir", type=Path, default=SHARED / "eval" / "dev")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every miss")
    args = parser.parse_args()
    questions_file, symptoms_file = args.eval_dir / "questions.yaml", args.eval_dir / "symptoms.yaml"
    with running_product() as product:
        for path, scorer in ((questions_file, score_questions), (symptoms_file, score_symptoms)):
            if not path.exists():
                print(f"\n({path} not found: skipped)")
                continue
            items = yaml.safe_load(path.read_text())
            replies = asyncio.run(ask_all(product.url, items))
            scorer(items, replies, args.verbose)
        own = yaml.safe_load((ROOT / "knowledge" / "retrieval_eval.yml").read_text())
        own_items = [{"text": item["question"], "day": item.get("day"), **item} for item in own]
        score_own_set(own_items, asyncio.run(ask_all(product.url, own_items)))
    retrieval_recall()
    intent_f1()


if __name__ == "__main__":
    main()
