"""What a question and the conversation say beyond the topic: the treatment stage and elliptical follow-ups.

Stage: whether the treatment has happened ("after") or is still to come ("before"). A question can say so
itself ("before my appointment", "the day after", "since my session"); a conversation says so with the
treatment date, with "my appointment is next Friday", or with the patient's answer when the assistant asked.
The question's own words win over the conversation: a patient booked for Friday may ask about aftercare.

Follow-up: a short question that leans on the previous one ("and tomorrow?", "what about yoga") is answered
in the context of the last topic when it says nothing answerable on its own.
"""

from __future__ import annotations

import re
from datetime import date

from knowledge.lexical import terms
from knowledge.things import words_of
from safety.reading import extract_treatment_date, normalise_text

BEFORE = "before"
AFTER = "after"
STAGES = (BEFORE, AFTER)

_VISIT = (
    r"(?:appointment|appt|appt\.|treatment|session|sesh|procedure|microneedling|needling|visit|consult|"
    r"consultation|i come in|i go in|i arrive|coming in|going in|i get it done|getting it done|"
    r"having it done|i have it done|the day|my first)"
)
_OWNER = r"(?:(?:my|the|your|a|an|our|this|that|her|his|their)\s+)?(?:first\s+|next\s+|upcoming\s+)?"
# Words that place the question before the treatment.
_BEFORE_CUES = re.compile(
    "|".join(
        [
            rf"\b(?:before|befor|bfore)\s+{_OWNER}{_VISIT}",
            r"\b(?:week|day|night|days|weeks|month) (?:before|befor|bfore)\b",
            rf"\b(?:prior to|ahead of|leading up to|lead up to|in the lead up to|morning of|night before|"
            rf"day before|week before|weeks before|days before)\s+{_OWNER}{_VISIT}",
            r"\b(?:the night before|the day before|the week before|the morning of|beforehand|in advance)\b",
            rf"\b(?:to|for)\s+{_OWNER}(?:appointment|appt|session|visit)\b",
            r"\b(?:when i (?:come|arrive|get there|turn up)|i(?:'m| am) (?:booked|having|getting|coming)|"
            r"booked (?:in|for)|going in for|coming in for|my appointment is|my appt is|my session is|"
            r"my treatment is|upcoming|pre treatment|pretreatment|pre care|precare|prep|prepare|preparing)\b",
            r"\b(?:stop|stopping|pause|pausing|quit|quitting)\b.*\bbefore\b",
        ]
    )
)
# Words that place the question after the treatment.
_AFTER_CUES = re.compile(
    "|".join(
        [
            r"\bafter\b(?!\s+(?:i|you|we)\s+(?:book|booked))",
            r"\b(?:afterwards|afterward|aftercare|after care|post|since my|since the|healing|heal|recovery|"
            r"recovering|the day after|the next day|next morning|the night of|night after|day after|"
            r"had it done|had my|got it done|just had|just got back|got home|freshly|treated skin|"
            r"restart|restarting|start again|again|is done|its done|it's done|all done|done now|come back)\b",
            r"\bday\s*\d+\b",
            r"\b\d+\s*(?:days?|hrs?|hours?|weeks?|wks?)\s+(?:post|after|out|later|in)\b",
        ]
    )
)
# Said on its own: the treatment is still to come.
_FUTURE_TREATMENT = re.compile(
    r"\b(?:next|tomorrow|tmrw|tonight|upcoming|booked|book|scheduled|planning|going to have|gonna have|"
    r"will have|having|getting|going in|coming in|seeing you|in \d+ (?:days?|weeks?|months?)|"
    r"in (?:a|one|two|three|a few|a couple of) (?:days?|weeks?|months?)|this (?:week|weekend|friday|"
    r"saturday|sunday|monday|tuesday|wednesday|thursday)|on (?:the )?\d+(?:st|nd|rd|th)?|"
    r"on (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|is (?:on )?(?:monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday))\b"
)
_TREATMENT_WORDS = re.compile(
    r"\b(?:microneedling|microneedle|needling|treatment|session|sesh|appointment|appt|procedure|"
    r"consultation|consult)\b"
)
_NOT_YET = re.compile(
    r"\b(?:not yet|havent had|have not had|haven't had|not had it|still to come|coming up|upcoming|soon|"
    r"next|tomorrow|in \d+|later this|it's booked|its booked|booked|no|nope|nah|not done)\b"
)
_ALREADY = re.compile(
    r"\b(?:already|ive had|i have had|i've had|had it|had my|happened|yes|yep|yeah|done|did it|it was|"
    r"got it done|finished|last|ago|yesterday|this morning|earlier)\b"
)

# A follow-up that leans on the previous question: an opening joint, or only a few words.
_FOLLOW_UP_OPENING = re.compile(
    r"^\s*(?:and|or|but|so|also|plus|then|even|ok(?:ay)? and|ok(?:ay)? so|what about|how about|what if|"
    r"same for|same with|and what about|and how about|and if)\b",
    re.IGNORECASE,
)
FOLLOW_UP_MAX_WORDS = 7
# The patient corrects the stage of what they just asked: "sorry, I meant before", "no wait, after".
_CORRECTION_OPENING = re.compile(
    r"^\s*(?:sorry|soz|oops|whoops|my bad|no wait|wait|no no|no sorry|actually|correction|i mean|i meant|"
    r"no,? i mean|no,? i meant)\b",
    re.IGNORECASE,
)
# Words that only move a follow-up in time or fill it: "and tomorrow?", "what about a week later?".
_TIME_AND_FILLER = frozenset(
    (  # noqa: SIM905 - a word list reads better as text
        "tomorrow tomoz tonight today morning evening night afternoon later earlier soon time week weeks "
        "month months year day days hour hours minutes next following first second third fourth fifth "
        "one two three four five six seven eight nine ten couple few fine okay ok alright long wait "
        "yet still now already then sooner"
    ).split()
)


def question_stage(text: str) -> str | None:
    """The stage the question itself is about, or None when it does not say (or says both)."""
    clean = normalise_text(text)
    before = bool(_BEFORE_CUES.search(clean))
    after = bool(_AFTER_CUES.search(clean))
    if not before and not after and _CORRECTION_OPENING.match(clean):
        # "sorry, I meant before": the bare word is the stage
        before = bool(re.search(r"\b(?:before|beforehand)\b", clean))
        after = bool(re.search(r"\b(?:after|afterwards)\b", clean))
    if before == after:
        return None
    return BEFORE if before else AFTER


def stated_stage(text: str, today: date) -> str | None:
    """The stage a message states about the patient's treatment ("I had it yesterday", "my appointment is
    next Friday"), or None."""
    clean = normalise_text(text)
    if extract_treatment_date(text, today, explicit_only=True) is not None:
        return AFTER
    if _TREATMENT_WORDS.search(clean) and _FUTURE_TREATMENT.search(clean):
        return BEFORE
    return None


def stage_answer(text: str, today: date) -> str | None:
    """The patient's answer to "has your treatment already happened, or is it still coming up?"."""
    stated = stated_stage(text, today)
    if stated is not None:
        return stated
    clean = normalise_text(text)
    not_yet, already = bool(_NOT_YET.search(clean)), bool(_ALREADY.search(clean))
    if not_yet == already:
        return None
    return BEFORE if not_yet else AFTER


def corrected_stage(text: str) -> str | None:
    """The stage of a bare correction ("sorry, I meant before", "no wait, after the treatment"): the patient
    asks their previous question again at that stage. None for anything else."""
    if not _CORRECTION_OPENING.match(normalise_text(text)) or len(words_of(text)) > FOLLOW_UP_MAX_WORDS:
        return None
    return question_stage(text)


def is_follow_up(text: str) -> bool:
    """Does the question lean on the previous one ("and tomorrow?", "what about swimming", or a correction
    of its stage: "sorry, I meant in the weeks before my appointment")?"""
    clean = normalise_text(text)
    if _CORRECTION_OPENING.match(clean) and question_stage(text) is not None:
        return True
    return bool(_FOLLOW_UP_OPENING.match(clean)) or len(words_of(text)) <= FOLLOW_UP_MAX_WORDS


def has_own_subject(text: str) -> bool:
    """Whether a follow-up names something of its own, beyond a time and filler ("and tomorrow?" does not)."""
    return any(term not in _TIME_AND_FILLER and not term.isdigit() for term in terms(text))
