"""What the widget needs from the server before it shows the bubble: its fixed texts and the clinic's facts.

The texts are the `widget_*` replies of knowledge/replies.yml (and the few shared ones the widget shows
itself), so the clinic's wording lives in one place and the script holds none.
"""

from __future__ import annotations

import re
from typing import Any

from bot.services import Services

PREFIX = "widget_"
# Replies outside the widget's own section that the widget shows or sends itself.
SHARED = {
    "slow_down": "slow_down",  # when a 429 carries no text of its own
    "session_expired": "session_expired",
    "citation": "citation",  # "Source: {title}": the widget shows it as the answer's footnote
    "talk_payload": "handoff_button",  # what "talk to the clinic" sends: the words the NLU reads as a request
}
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
KEEP_NAME = {"clinic_name": "{clinic_name}"}  # the site may give the widget a shorter name to show


def language_of(requested: str | None) -> str:
    """The primary language subtag of a BCP 47 tag ("es-MX" -> "es"); English for anything unreadable."""
    if not requested or not LANGUAGE.match(requested):
        return "en"
    return re.split(r"[-_]", requested)[0].lower()


def tel_uri(number: str) -> str:
    """A `tel:` link for a phone number as the clinic writes it: "(555) 010-0142" -> "tel:5550100142"."""
    digits = re.sub(r"[^0-9]", "", number)
    return f"tel:{'+' if number.strip().startswith('+') else ''}{digits}"


def widget_config(services: Services, requested_language: str | None) -> dict[str, Any]:
    """Everything the script needs to draw itself, in the patient's language where replies.yml has it."""
    language = language_of(requested_language)
    replies, clinic, settings = services.replies, services.clinic, services.settings
    texts = {
        name.removeprefix(PREFIX): replies.text(name, language, **KEEP_NAME)
        for name in replies.texts
        if name.startswith(PREFIX)
    }
    texts.update({key: replies.text(name, language, **KEEP_NAME) for key, name in SHARED.items()})
    return {
        "language": language,
        "clinic": {
            "name": clinic.name,
            "phone": clinic.phone,
            "phone_uri": tel_uri(clinic.phone),
            "emergency_number": clinic.emergency_number,
            "emergency_uri": tel_uri(clinic.emergency_number),
        },
        "texts": texts,
        "max_message_chars": settings.max_message_chars,
        "poll_seconds": {
            "handed_off": settings.widget_poll_seconds,
            "idle": settings.widget_idle_poll_seconds,
        },
    }
