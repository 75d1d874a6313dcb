"""The red-flag protocol (`protocol.yml`): loading and validation.

The file's own header explains the format for clinicians; `safety.patterns` compiles and matches its patterns.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PROTOCOL = Path(__file__).with_name("protocol.yml")
SEVERITIES = ("routine", "urgent", "emergency")
# The protocol's top-level sections, one per disposition, most urgent first.
DISPOSITION_SECTIONS = {"emergency": "emergency", "urgent": "urgent", "expected": "routine"}
FACT_PREFIX = "$"  # "$fever": a fact read from the numbers of a message (a measure at or above a threshold)
# What safety.reading.numbers.measures returns; a fact holds when the measure is at least its value
# (`temperature_below`: when the stated temperature is below it).
MEASURES = ("temperature", "pulse", "breathing_rate", "rising", "temperature_below")
WORDING_KEYS = (
    "alerted",
    "not_alerted",
    "already_alerted",
    "emergency_alerted",
    "safety_net",
    "learned_emergency",
    "learned_urgent",
)
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
    "animals",
    "history",
    "not_history",
    "present_time",
    "happening",
    "figures_of_speech",
    "health_context",
    "not_negation_after",
)
# The reading lists that hold patterns (the others are single words used by the context reader).
READING_PATTERN_LISTS = (
    "negation_before",
    "pseudo_negation",
    "negation_after",
    "clause_breaks",
    "report_anchors",
    "hypothetical",
    "uncertainty",
    "hearsay",
    "animals",
    "history",
    "not_history",
    "present_time",
    "happening",
    "figures_of_speech",
    "health_context",
    "not_negation_after",
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
class Sign:
    """One red flag or expected effect of the protocol: what to look for, and what the patient is told."""

    id: str
    label: str
    severity: str  # the disposition: emergency | urgent | routine
    system: str  # the body system it belongs to ("airway and breathing", "skin", ...)
    rules: tuple[Rule, ...]
    reply: str
    # Expected effects only: the treatment days on which the effect is normal, and the sign it is read as
    # when it is reported later than that ("still red on day 6" is no longer the expected redness).
    usual_days: tuple[int, int] | None = None
    beyond: str | None = None


@dataclass(frozen=True)
class ClarifyingQuestion:
    """A key question the assistant asks about an unclear symptom report; "yes" means `sign`."""

    id: str
    ask: str
    sign: str


@dataclass(frozen=True)
class Protocol:
    version: int
    near_window: int
    gap_window: int
    facts: dict[str, tuple[str, float]]  # fact name -> (measure, lowest value): fever -> (temperature, 38.0)
    word_groups: dict[str, tuple[str, ...]]
    signs: tuple[Sign, ...]
    wording: dict[str, str]  # the lines the pipeline adds to a reply (alerted, not alerted, safety net)
    questions: tuple[ClarifyingQuestion, ...] = ()
    # list name -> language ("*" for every language) -> entries
    reading_by_language: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    fingerprint: str = ""  # a hash of the protocol file: what the learned layer was trained to read with
    translations: dict[str, dict[str, str]] = field(default_factory=dict)  # language -> disposition -> line

    @property
    def reading(self) -> dict[str, tuple[str, ...]]:
        """Every reading list with the entries of all languages."""
        return {name: _union(by_language.values()) for name, by_language in self.reading_by_language.items()}

    def reading_for(self, language: str) -> dict[str, tuple[str, ...]]:
        """The reading lists for a message in `language`: its own entries plus those for every language.

        "no" is a negation in English and Spanish but the word "in" in Portuguese ("dor no peito"), so a
        list may give entries per language. A language with no entries of its own reads with all of them.
        """
        lists = {}
        for name, by_language in self.reading_by_language.items():
            if language in by_language:
                lists[name] = _union([by_language.get("*", ()), by_language[language]])
            else:
                lists[name] = _union(by_language.values())
        return lists

    def sign(self, sign_id: str) -> Sign:
        return next(sign for sign in self.signs if sign.id == sign_id)

    def all_patterns(self) -> set[str]:
        """Every pattern string the detector has to match (rules, unless lists, reading markers)."""
        patterns: set[str] = set()
        for sign in self.signs:
            for rule in sign.rules:
                for element in rule.any + rule.all:
                    patterns.update(p for p in element if not p.startswith(FACT_PREFIX))
                patterns.update(p for p in rule.unless if not p.startswith(FACT_PREFIX))
        for name in READING_PATTERN_LISTS:
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
    if "alerted" in reply:
        # Whether staff were alerted is only known after the escalation is recorded: the pipeline says it.
        raise ProtocolError(f"{where}.reply: say nothing about alerting staff; `wording` holds that line")


def _union(lists: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(entry for entries in lists for entry in entries))


def _reading_list(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    """A reading list: entries for every language, or a mapping of language (en, es, fr, pt) -> entries."""
    if isinstance(raw, dict):
        return {str(lang): tuple(str(x) for x in _as_list(v, f"{where}.{lang}")) for lang, v in raw.items()}
    return {"*": tuple(str(x) for x in raw)}


def _groups(raw: Any) -> dict[str, tuple[str, ...]]:
    """Word groups: a list of entries, or a mapping of language -> list (all languages are matched)."""
    if not isinstance(raw, dict):
        raise ProtocolError("word_groups: expected a mapping of name -> list")
    groups = {}
    for name, value in raw.items():
        where = f"word_groups.{name}"
        if isinstance(value, dict):
            entries = [entry for language in value.values() for entry in _as_list(language, where)]
        else:
            entries = _as_list(value, where)
        groups[str(name)] = tuple(dict.fromkeys(str(entry) for entry in entries))
    return groups


def _sign(raw: Any, severity: str, where: str) -> Sign:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: expected a mapping")
    for key in ("id", "label", "system", "rules", "reply"):
        if key not in raw:
            raise ProtocolError(f"{where}: missing `{key}`")
    where = f"sign {raw['id']}"
    unknown = set(raw) - {"id", "label", "system", "rules", "reply", "usual_days", "beyond"}
    if unknown:
        raise ProtocolError(f"{where}: unknown keys {sorted(unknown)}")
    reply = " ".join(str(raw["reply"]).split())
    _check_reply(reply, where, severity)
    rules = tuple(
        _rule(r, f"{where}.rules[{i}]") for i, r in enumerate(_as_list(raw["rules"], f"{where}.rules"))
    )
    usual = raw.get("usual_days")
    if usual is not None and not (
        isinstance(usual, list) and len(usual) == 2 and all(isinstance(d, int) and d >= 0 for d in usual)
    ):
        raise ProtocolError(f"{where}: `usual_days` is [first, last], whole days >= 0")
    if (usual is None) != (raw.get("beyond") is None):
        raise ProtocolError(f"{where}: `usual_days` and `beyond` go together")
    return Sign(
        id=str(raw["id"]),
        label=str(raw["label"]),
        severity=severity,
        system=str(raw["system"]),
        rules=rules,
        reply=reply,
        usual_days=tuple(usual) if usual else None,  # type: ignore[arg-type]
        beyond=str(raw["beyond"]) if raw.get("beyond") else None,
    )


def _translations(raw: Any) -> dict[str, dict[str, str]]:
    translations = {}
    for language, lines in (raw or {}).items():
        if not isinstance(lines, dict) or set(lines) - {"emergency", "urgent", "routine", "safety_net"}:
            raise ProtocolError(f"translations.{language}: lines for emergency, urgent, routine, safety_net")
        if "emergency" in lines and "{emergency_number}" not in lines["emergency"]:
            raise ProtocolError(f"translations.{language}.emergency: give {{emergency_number}}")
        translations[str(language)] = {k: " ".join(str(v).split()) for k, v in lines.items()}
    return translations


def _questions(raw: Any, sign_ids: set[str]) -> tuple[ClarifyingQuestion, ...]:
    questions = []
    for index, item in enumerate(raw or []):
        where = f"clarifying_questions[{index}]"
        if not isinstance(item, dict) or set(item) != {"id", "ask", "sign"}:
            raise ProtocolError(f"{where}: needs exactly id, ask and sign")
        if item["sign"] not in sign_ids:
            raise ProtocolError(f"{where}: unknown sign {item['sign']!r}")
        questions.append(
            ClarifyingQuestion(str(item["id"]), " ".join(str(item["ask"]).split()), item["sign"])
        )
    return tuple(questions)


def load_protocol(path: Path | None = None) -> Protocol:
    """Read and validate the red-flag protocol (the bundled `protocol.yml` by default)."""
    source = path or DEFAULT_PROTOCOL
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster
    raw_text = source.read_text(encoding="utf-8")
    data = yaml.load(raw_text, Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: not a YAML mapping")
    settings = data.get("settings", {})
    groups = _groups(data.get("word_groups", {}))
    signs: list[Sign] = []
    for section, severity in DISPOSITION_SECTIONS.items():
        for index, raw in enumerate(_as_list(data.get(section), section)):
            signs.append(_sign(raw, severity, f"{section}[{index}]"))
    ids = [sign.id for sign in signs]
    duplicates = sorted({sign_id for sign_id in ids if ids.count(sign_id) > 1})
    if duplicates:
        raise ProtocolError(f"duplicate sign ids: {duplicates}")
    for sign in signs:
        if sign.beyond is not None and sign.beyond not in ids:
            raise ProtocolError(f"sign {sign.id}: `beyond` names an unknown sign {sign.beyond!r}")
    wording = {str(k): " ".join(str(v).split()) for k, v in (data.get("wording") or {}).items()}
    missing = set(WORDING_KEYS) - set(wording)
    if missing:
        raise ProtocolError(f"wording: missing {sorted(missing)}")
    if not wording["learned_emergency"].startswith("Call {emergency_number} now"):
        raise ProtocolError(
            "wording.learned_emergency: an emergency reply starts with 'Call {emergency_number} now'"
        )
    facts = {}
    for name, value in (settings.get("facts") or {}).items():
        if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in MEASURES):
            raise ProtocolError(f"settings.facts.{name}: one of {MEASURES} and its lowest value")
        measure, lowest = next(iter(value.items()))
        facts[str(name)] = (measure, float(lowest))
    reading_raw = data.get("reading", {})
    unknown_lists = set(reading_raw) - set(READING_LISTS)
    if unknown_lists:
        raise ProtocolError(f"reading: unknown lists {sorted(unknown_lists)}; known: {list(READING_LISTS)}")
    reading = {name: _reading_list(reading_raw.get(name, []), f"reading.{name}") for name in READING_LISTS}
    protocol = Protocol(
        version=int(data.get("version", 1)),
        near_window=int(settings.get("near_window", 5)),
        gap_window=int(settings.get("gap_window", 3)),
        facts=facts,
        word_groups=groups,
        signs=tuple(signs),
        wording=wording,
        questions=_questions(data.get("clarifying_questions"), set(ids)),
        reading_by_language=reading,
        fingerprint=hashlib.sha256(raw_text.encode()).hexdigest()[:16],
        translations=_translations(data.get("translations")),
    )
    if protocol.near_window < 1 or protocol.gap_window < 1:
        raise ProtocolError("settings: near_window and gap_window are whole numbers >= 1")
    group_entries = [entry for entries in groups.values() for entry in entries]
    for pattern in sorted(protocol.all_patterns()) + group_entries:
        for name in re.findall(r"<(\w+)>", pattern):
            if name not in groups:
                raise ProtocolError(f"pattern {pattern!r}: unknown word group <{name}>")
    used_facts = {
        p
        for sign in signs
        for rule in sign.rules
        for e in (*rule.any, *rule.all, rule.unless)
        for p in e
        if p.startswith(FACT_PREFIX)
    }
    unknown_facts = {fact for fact in used_facts if fact[1:] not in facts}
    if unknown_facts:
        raise ProtocolError(f"facts {sorted(unknown_facts)} are not defined in settings.facts")
    return protocol
