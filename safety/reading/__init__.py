"""Reading patient text: the one place that knows how patients write.

Triage, retrieval and the pipeline all read messages through here: SMS spellings and typos
(`normalise`), numbers with units such as temperatures and durations (`numbers`), the treatment date a
message states (`treatment_day`) and the language it is written in (`language`). `read` does all of it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from safety.reading.language import detect_language
from safety.reading.normalise import normalise_text
from safety.reading.numbers import highest_temperature
from safety.reading.treatment_day import (
    extract_treatment_date,
    says_only_when,
    treatment_day,
    treatment_upcoming,
)

__all__ = [
    "Reading",
    "read",
    "stated_day",
    "normalise_text",
    "detect_language",
    "extract_treatment_date",
    "treatment_day",
    "treatment_upcoming",
    "says_only_when",
]


@dataclass(frozen=True)
class Reading:
    """What one message says, read once."""

    text: str  # as the patient wrote it (already cleaned of control characters)
    normalised: str  # lower case, SMS spellings and contractions expanded, emojis dropped
    language: str  # en, es, fr, pt, ... (see `language`)
    temperature_c: float | None  # the highest body temperature stated, in Celsius
    treatment_date: date | None  # the treatment date the message states, if `today` was given

    def day(self, today: date) -> int | None:
        """Days since the treatment the message states, or None."""
        return treatment_day(self.treatment_date, today) if self.treatment_date else None


def read(text: str, today: date | None = None) -> Reading:
    """Read a patient's message. Never raises on any text."""
    normalised = normalise_text(text)
    return Reading(
        text=text,
        normalised=normalised,
        language=detect_language(text),
        temperature_c=highest_temperature(normalised),
        treatment_date=extract_treatment_date(text, today) if today else None,
    )


def stated_day(text: str, today: date) -> int | None:
    """The treatment day a message states ("day 3", "had it done 6 days ago", "it's been 8 days"), or None.

    Only mentions of the treatment and durations count here: "2 days ago" alone may be when a symptom
    started, and "last week" in "the curry last week was hot" is no treatment at all.
    """
    stated = extract_treatment_date(text, today, explicit_only=True, with_durations=True)
    return treatment_day(stated, today) if stated else None
