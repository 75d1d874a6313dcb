"""Redaction of what identifies a patient in text staff review: phone numbers, e-mail addresses, names.

Used before an unanswered question is stored, so the list staff work from never holds them. Phone numbers
and e-mail addresses are found by their shape; names by the way people introduce them ("my name is ...",
"this is ...", "I'm Sarah,", "Dr Patel", "my daughter Emma", a sign-off such as "thanks, Jo"). A name
written with no such cue ("saw jess yesterday") is not found: the list is for content work, and the
conversation id is not shown next to it.
"""

from __future__ import annotations

import re

PHONE = "[phone]"
EMAIL = "[email]"
NAME = "[name]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Digits with the separators people type in phone numbers; counted afterwards (7 to 15 digits).
_PHONE_CANDIDATE = re.compile(r"(?<![\w.])\+?\(?\d[\d\s().-]{5,}\d(?![\w.]*\d)")
_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$|^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$")
_CAPITALISED = r"[A-Z][a-zA-Z\-]*(?:'[A-Z][a-zA-Z\-]+)?"
_FULL_NAME = rf"{_CAPITALISED}(?:\s+{_CAPITALISED})?"
# Words that follow "I'm" or "this is" with a capital letter but are not names.
_NOT_NAMES = frozenset(
    (  # noqa: SIM905 - a word list reads better than quoted strings
        "I Im Ive Id Black White Asian Brown Latina Latino Hispanic Irish English British American Indian "
        "Scottish Welsh Mexican Chinese Korean Japanese Filipino African Pregnant Breastfeeding Monday "
        "Tuesday Wednesday Thursday Friday Saturday Sunday Today Tomorrow Yesterday Day Week Not So Very "
        "Really Just Still Also Worried Scared Nervous Booked Having Getting Going Trying Wondering Here "
        "Back New Sorry Okay Ok Fine Good Great Happy Sad Allergic On In At The A An My Your It Is"
    ).split()
)
_INTRODUCED = [
    # "my name is Sarah Jones", "my name's jo": the cue is strong enough for any case.
    re.compile(
        r"(?i:\bmy\s+name(?:\s+is|'s|\s+s)\s+)(?P<name>[A-Za-z][a-zA-Z'\-]+(?:\s+[A-Z][a-zA-Z'\-]+)?)"
    ),
    re.compile(rf"(?i:\bcall\s+me\s+)(?P<name>{_FULL_NAME})"),
    # "this is Sarah", "I'm Sarah, ..." only when the word is followed by a pause ("I'm Black with" is not).
    re.compile(
        rf"(?i:\b(?:this\s+is|i\s*'?\s*m|i\s+am|it'?s)\s+)(?P<name>{_FULL_NAME})(?=\s*(?:[,.!?;:]|$|\s+here\b|\s+from\b))"
    ),
    re.compile(rf"\b(?:Dr|Doctor|Mr|Mrs|Ms|Miss|Mx|Nurse|dr|mr|mrs|ms)\.?\s+(?P<name>{_FULL_NAME})"),
    re.compile(
        rf"(?i:\b(?:my|our)\s+(?:wife|husband|partner|daughter|son|mum|mom|mother|dad|father|sister|brother|"
        rf"friend|boyfriend|girlfriend|fiance|fiancee|aunt|uncle|niece|nephew|cousin|grandma|grandmother|"
        rf"grandad|grandfather)\s+)(?P<name>{_FULL_NAME})"
    ),
]
_SIGN_OFF = re.compile(
    rf"(?:(?i:\b(?:thanks|thank\s+you|thx|cheers|regards|best|love|kind\s+regards|many\s+thanks)\b)[,!.]?\s+"
    rf"|(?:^|\s)[-–—~]\s*)(?P<name>{_FULL_NAME})\s*[.!x]*\s*$"
)


def redact(text: str) -> str:
    """`text` with phone numbers, e-mail addresses and introduced names replaced by placeholders."""
    text = _EMAIL.sub(EMAIL, text)
    text = _PHONE_CANDIDATE.sub(_phone_or_not, text)
    for pattern in _INTRODUCED:
        text = pattern.sub(_name_or_not, text)
    return _SIGN_OFF.sub(_name_or_not, text)


def _phone_or_not(match: re.Match[str]) -> str:
    candidate = match.group(0)
    digits = re.sub(r"\D", "", candidate)
    if not 7 <= len(digits) <= 15 or _DATE.match(candidate.strip()):
        return candidate
    return PHONE


def _name_or_not(match: re.Match[str]) -> str:
    name = match.group("name")
    words = name.split()
    if words[0].strip("'").capitalize() in _NOT_NAMES:
        return match.group(0)
    if len(words) > 1 and words[1].capitalize() in _NOT_NAMES:
        name = words[0]
    start, end = match.span("name")
    whole_start = match.start()
    prefix = match.string[whole_start:start]
    suffix = match.string[start + len(name) : match.end()]
    return f"{prefix}{NAME}{suffix}"
