"""Yes or no: how a patient answers one of the assistant's clarifying questions."""

from __future__ import annotations

import re

from safety.reading.normalise import normalise_text

_YES = {
    "yes", "yeah", "yep", "yup", "ya", "yea", "y", "sure", "correct", "right", "definitely", "afraid so",
    "it is", "it does", "i do", "i am", "i have", "kind of", "kinda", "a bit", "a little", "sort of",
    "si", "claro", "oui", "ouais", "sim", "ja",
}  # fmt: skip
_NO = {
    "no", "nope", "nah", "n", "not really", "not at all", "never", "none", "it is not", "it does not",
    "i do not", "i am not", "i have not", "nothing like that", "no way", "non", "nao", "nein", "not",
}  # fmt: skip
_WORDS = re.compile(r"[a-z]+(?: [a-z]+)*")


def read_answer(text: str, language: str = "en") -> str | None:
    """ "yes", "no", or None when the message is not a plain answer to a yes/no question."""
    words = normalise_text(text).strip(" .!?,")
    if not words:
        return None
    first = re.split(r"[,.!?;]", words)[0].strip()
    for phrase in sorted(_NO, key=len, reverse=True):  # "not really" before "really"
        if first == phrase or first.startswith(phrase + " "):
            return "no"
    for phrase in sorted(_YES, key=len, reverse=True):
        if first == phrase or first.startswith(phrase + " "):
            return "yes"
    return None
