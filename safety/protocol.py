"""The red-flag protocol (`protocol.yml`): loading and validation.

The file's own header explains the format for clinicians; `safety.patterns` compiles and matches its patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PROTOCOL = Path(__file__).with_name("protocol.yml")
SEVERITIES = ("routine", "urgent", "emergency")
PLACEHOLDERS = {
    "emergency_number",
    "clinic_phone",
    "clinic_name",
    "clinic_hours",
    "booking_url",
    "clinic_email",
}
READING_LISTS = (
    "negation_before",
    "negation_list_words",
    "pseudo_negation",
    "negation_after",
    "negation_after_fillers",
    "negation_scope_ends",
    "subject_words",
    "clause_breaks",
    "interrogatives",
    "fillers",
    "report_anchors",
    "hypothetical",
    "uncertainty",
    "hearsay",
    "history",
    "present_time",
    "figures_of_speech",
)


class ProtocolError(ValueError):
    """The protocol file is not valid; the message names the concept and field."""


# An item of an `all` rule: alternatives, any one of which satisfies it.
Element = tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    any: tuple[Element, ...] = ()
    all: tuple[Element, ...] = ()
    within: str = "message"
    from_day: int | None = None
    to_day: int | None = None
    day_unknown: str = "skip"
    unless: tuple[str, ...] = ()

    def applies_on(self, day: int | None) -> bool:
        """Whether the rule's day window admits this treatment day."""
        if self.from_day is None and self.to_day is None:
            return True
        if day is None:
            return self.day_unknown == "fire"
        if self.from_day is not None and day < self.from_day:
            return False
        return not (self.to_day is not None and day > self.to_day)


@dataclass(frozen=True)
class Concept:
    id: str
    label: str
    severity: str
    rules: tuple[Rule, ...]
    reply: str


@dataclass(frozen=True)
class Protocol:
    version: int
    near_window: int
    gap_window: int
    word_groups: dict[str, tuple[str, ...]]
    concepts: tuple[Concept, ...]
    reading: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def all_patterns(self) -> set[str]:
        """Every pattern string the detector has to match (rules, unless lists, reading markers)."""
        patterns: set[str] = set()
        for concept in self.concepts:
            for rule in concept.rules:
                for element in rule.any + rule.all:
                    patterns.update(element)
                patterns.update(rule.unless)
        for name in (
            "negation_before",
            "pseudo_negation",
            "negation_after",
            "clause_breaks",
            "report_anchors",
            "hypothetical",
            "uncertainty",
            "hearsay",
            "history",
            "present_time",
            "figures_of_speech",
        ):
            patterns.update(self.reading.get(name, ()))
        return patterns


def _as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ProtocolError(f"{where}: expected a non-empty list")
    return value


def _element(item: Any, where: str) -> Element:
    if isinstance(item, str):
        return (item,)
    if isinstance(item, list) and item and all(isinstance(x, str) for x in item):
        return tuple(item)
    raise ProtocolError(f"{where}: each item is a pattern or a list of alternative patterns")


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: a rule is a mapping with `any` or `all`")
    unknown = set(raw) - {"any", "all", "within", "from_day", "to_day", "day_unknown", "unless"}
    if unknown:
        raise ProtocolError(f"{where}: unknown keys {sorted(unknown)}")
    if "any" not in raw and "all" not in raw:
        raise ProtocolError(f"{where}: needs `any` or `all`")
    within = raw.get("within", "message")
    if within not in ("sentence", "message"):
        raise ProtocolError(f"{where}: `within` is sentence or message")
    day_unknown = raw.get("day_unknown", "skip")
    if day_unknown not in ("fire", "skip"):
        raise ProtocolError(f"{where}: `day_unknown` is fire or skip")
    for key in ("from_day", "to_day"):
        if key in raw and (not isinstance(raw[key], int) or raw[key] < 0):
            raise ProtocolError(f"{where}: `{key}` is a whole number of days >= 0")
    return Rule(
        any=tuple(_element(x, f"{where}.any") for x in _as_list(raw["any"], f"{where}.any"))
        if "any" in raw
        else (),
        all=tuple(_element(x, f"{where}.all") for x in _as_list(raw["all"], f"{where}.all"))
        if "all" in raw
        else (),
        within=within,
        from_day=raw.get("from_day"),
        to_day=raw.get("to_day"),
        day_unknown=day_unknown,
        unless=tuple(str(x) for x in raw.get("unless", [])),
    )


def _check_reply(reply: str, where: str, severity: str) -> None:
    names = set(re.findall(r"{(\w+)}", reply))
    if names - PLACEHOLDERS:
        raise ProtocolError(f"{where}.reply: unknown placeholders {sorted(names - PLACEHOLDERS)}")
    if severity == "emergency" and not reply.startswith("Call {emergency_number} now"):
        raise ProtocolError(f"{where}.reply: an emergency reply starts with 'Call {{emergency_number}} now'")
    if severity == "urgent" and "{clinic_phone}" not in reply:
        raise ProtocolError(f"{where}.reply: an urgent reply gives {{clinic_phone}}")


def load_protocol(path: Path | None = None) -> Protocol:
    """Read and validate the red-flag protocol (the bundled `protocol.yml` by default)."""
    source = path or DEFAULT_PROTOCOL
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster
    data = yaml.load(source.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: not a YAML mapping")
    settings = data.get("settings", {})
    groups_raw = data.get("word_groups", {})
    if not isinstance(groups_raw, dict):
        raise ProtocolError("word_groups: expected a mapping of name -> list")
    groups = {str(k): tuple(str(x) for x in _as_list(v, f"word_groups.{k}")) for k, v in groups_raw.items()}
    concepts = []
    seen: set[str] = set()
    for index, raw in enumerate(_as_list(data.get("concepts"), "concepts")):
        where = f"concepts[{index}]"
        if not isinstance(raw, dict):
            raise ProtocolError(f"{where}: expected a mapping")
        for key in ("id", "label", "severity", "rules", "reply"):
            if key not in raw:
                raise ProtocolError(f"{where}: missing `{key}`")
        where = f"concept {raw['id']}"
        if raw["id"] in seen:
            raise ProtocolError(f"{where}: duplicate id")
        seen.add(raw["id"])
        if raw["severity"] not in SEVERITIES:
            raise ProtocolError(f"{where}: severity must be one of {SEVERITIES}")
        reply = " ".join(str(raw["reply"]).split())
        _check_reply(reply, where, raw["severity"])
        rules = tuple(
            _rule(r, f"{where}.rules[{i}]") for i, r in enumerate(_as_list(raw["rules"], f"{where}.rules"))
        )
        concepts.append(Concept(str(raw["id"]), str(raw["label"]), raw["severity"], rules, reply))
    reading_raw = data.get("reading", {})
    unknown_lists = set(reading_raw) - set(READING_LISTS)
    if unknown_lists:
        raise ProtocolError(f"reading: unknown lists {sorted(unknown_lists)}; known: {list(READING_LISTS)}")
    reading = {name: tuple(str(x) for x in reading_raw.get(name, [])) for name in READING_LISTS}
    protocol = Protocol(
        version=int(data.get("version", 1)),
        near_window=int(settings.get("near_window", 5)),
        gap_window=int(settings.get("gap_window", 3)),
        word_groups=groups,
        concepts=tuple(concepts),
        reading=reading,
    )
    if protocol.near_window < 1 or protocol.gap_window < 1:
        raise ProtocolError("settings: near_window and gap_window are whole numbers >= 1")
    group_entries = [entry for entries in groups.values() for entry in entries]
    for pattern in sorted(protocol.all_patterns()) + group_entries:
        for name in re.findall(r"<(\w+)>", pattern):
            if name not in groups:
                raise ProtocolError(f"pattern {pattern!r}: unknown word group <{name}>")
    return protocol


