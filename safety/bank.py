"""The project's own labelled messages (`labelled/`): loading them for training and for measuring.

`labelled/train/` trains the learned layer and is what the protocol is written against; `labelled/heldout/`
only measures (see labelled/README.md). Nothing here reads `../shared/eval`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

LABELLED = Path(__file__).resolve().parent.parent / "labelled"
TRAIN = LABELLED / "train"
HELDOUT = LABELLED / "heldout"

NOT_A_REPORT = "none"  # a question, a hypothetical, a negated or past symptom: triage level none
OFF_TOPIC = "offtopic"  # nothing to do with a skin treatment or anyone's health


@dataclass(frozen=True)
class Example:
    """One labelled message: what it says (`label`: a sign id, `none` or `offtopic`) and its triage level."""

    id: str
    text: str
    label: str
    level: str
    day: int | None = None


def read_items(folder: Path, stem: str) -> list[dict]:
    """The items of `<stem>.yml` and of any `<stem>_*.yml` beside it (a bank can grow in several files)."""
    items: list[dict] = []
    for path in sorted(folder.glob(f"{stem}.yml")) + sorted(folder.glob(f"{stem}_*.yml")):
        items += yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return items


def symptom_examples(folder: Path = TRAIN) -> list[Example]:
    """Single symptom messages (and non-reports) with their sign and level."""
    return [
        Example(
            id=item["id"],
            text=item["text"],
            label=item["sign"] if item["triage"] != "none" else NOT_A_REPORT,
            level=item["triage"],
            day=item.get("day"),
        )
        for item in read_items(folder, "symptoms")
    ]


def offtopic_examples(folder: Path = TRAIN) -> list[Example]:
    return [Example(item["id"], item["text"], OFF_TOPIC, "none") for item in read_items(folder, "offtopic")]


def question_examples(folder: Path = TRAIN) -> list[Example]:
    """Patient questions: about the treatment, so never off-topic, and not symptom reports."""
    return [
        Example(item["id"], item["text"], NOT_A_REPORT, "none", item.get("day"))
        for item in read_items(folder, "questions")
    ]


def training_examples(folder: Path = TRAIN) -> list[Example]:
    """Everything the learned layer learns from."""
    return symptom_examples(folder) + offtopic_examples(folder) + question_examples(folder)


def fingerprint(examples: list[Example]) -> str:
    """A hash of the examples: a trained model is reused only for exactly the same bank."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(f"{example.id}\t{example.text}\t{example.label}\t{example.level}\n".encode())
    return digest.hexdigest()[:16]
