"""A readable diff of two article texts: paragraph by paragraph, and word by word inside a changed one.

Clinicians review what changes in what patients will be told, so the unit is the paragraph (the unit the
assistant quotes), with the words that changed marked inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
TOKEN = re.compile(r"\s+|[^\s]+")

Segment = tuple[str, str]  # (equal | delete | insert, text)


@dataclass(frozen=True)
class Block:
    """One paragraph of the diff: `kind` is equal, added, removed or changed."""

    kind: str
    old: tuple[Segment, ...]
    new: tuple[Segment, ...]


def paragraphs(text: str) -> list[str]:
    return [part.strip() for part in PARAGRAPH_BREAK.split(text.strip()) if part.strip()]


def diff_text(old: str, new: str) -> list[Block]:
    """Blocks that turn `old` into `new`, in reading order."""
    before, after = paragraphs(old), paragraphs(new)
    blocks: list[Block] = []
    matcher = SequenceMatcher(a=before, b=after, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            blocks += [Block("equal", (("equal", p),), (("equal", p),)) for p in before[a1:a2]]
        elif op == "delete":
            blocks += [Block("removed", (("delete", p),), ()) for p in before[a1:a2]]
        elif op == "insert":
            blocks += [Block("added", (), (("insert", p),)) for p in after[b1:b2]]
        else:
            blocks += _pair(before[a1:a2], after[b1:b2])
    return blocks


def diff_words(old: str, new: str) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """The old and the new text as segments, the words that differ marked delete / insert."""
    a, b = TOKEN.findall(old), TOKEN.findall(new)
    old_segments: list[Segment] = []
    new_segments: list[Segment] = []
    for op, a1, a2, b1, b2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            old_segments.append(("equal", "".join(a[a1:a2])))
            new_segments.append(("equal", "".join(b[b1:b2])))
            continue
        if a2 > a1:
            old_segments.append(("delete", "".join(a[a1:a2])))
        if b2 > b1:
            new_segments.append(("insert", "".join(b[b1:b2])))
    return _merged(old_segments), _merged(new_segments)


def is_unchanged(blocks: list[Block]) -> bool:
    return all(block.kind == "equal" for block in blocks)


def _pair(old: list[str], new: list[str]) -> list[Block]:
    """Replaced paragraphs: the most similar pairs are shown word by word, the rest as added or removed."""
    blocks = []
    for index in range(max(len(old), len(new))):
        if index < len(old) and index < len(new):
            old_segments, new_segments = diff_words(old[index], new[index])
            blocks.append(Block("changed", old_segments, new_segments))
        elif index < len(old):
            blocks.append(Block("removed", (("delete", old[index]),), ()))
        else:
            blocks.append(Block("added", (), (("insert", new[index]),)))
    return blocks


def _merged(segments: list[Segment]) -> tuple[Segment, ...]:
    merged: list[Segment] = []
    for op, text in segments:
        if merged and merged[-1][0] == op:
            merged[-1] = (op, merged[-1][1] + text)
        elif text:
            merged.append((op, text))
    return tuple(merged)
