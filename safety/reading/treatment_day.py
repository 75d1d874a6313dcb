"""When was the treatment? The treatment date a patient's message states or implies.

Rule-based and deterministic: `blank_english()` tokenises and splits sentences, a spaCy `Matcher` finds
time phrases, a regex finds numeric dates ("20/11", "2026-11-20"). Each phrase becomes a *mention* (a
candidate date); rules about its clause decide whether it counts and how strongly; the strongest wins.

Strength, strongest first:
  4. an explicit treatment count: "day 2", "d2", "3 days after", "72h post", "4 days out", "2 weeks later",
     "a month since", "5 days in", "3 días después". "day 1" is treatment day 1 (the day after the treatment).
  3. any time phrase in the same clause as a treatment word ("had microneedling 2 days ago", "treatment
     was yesterday", "had it done on Tuesday", "since monday's session", "me lo hice ayer").
  2. a past time phrase on its own: "2 days ago", "yesterday", "last night", "on Monday", "last tuesday",
     "Nov 20", "20/11", "the 20th", "hace 3 días", "last week" (7 days), "a month ago" (30 days).
  1. weak hints: "today", "tonight", "this morning" (the symptom may be what happened today), "since
     yesterday" (a symptom's onset), "it's been 4 days", "12 days now", "since 10 days".
Ties go to the earliest date (the treatment comes before the symptoms a message describes); among "day N"
mentions "now"/"today"/"it's" wins ("gone by day 3 and now day 6" -> day 6).

Rules and choices:
- Hours and minutes are floored to whole days: "36 hours post" -> 1 day, "3 hours ago" -> today.
  Months are 30 days, weeks 7. "a couple" = 2, "a few" = 3.
- Weekdays: the most recent past occurrence; "on Tuesday" said on a Tuesday is unknown (today or a week
  ago?), "last Tuesday" is 7 days ago and "this Tuesday" is today. A weekday needs a marker ("on", "last",
  "since", "was", "this", "after"), a treatment word beside it ("microneedling monday", "monday's session")
  or a treatment word and a past verb in its clause; "my treatment is thursday" is read as upcoming -> None.
- Numeric "a/b" dates are read both ways (day/month and month/day) in their most recent past occurrence;
  without a year only readings within 60 days of today count, and the most recent one wins.
  "2026-11-20", "Nov 20", "20 November", "November 20th", "the 3rd of May", "the 20th" are unambiguous.
- Nothing in the future is returned. A future treatment ("my appointment is next week", "booked for
  Friday", "my session is in 2 days", "tomorrow") drops every mention not tied to a treatment word.
- A bare duration ("the redness lasted 2 days", "bleeding for an hour") is not a treatment date; a message
  that is only a duration ("36 hours", "about 3 days") answers "when was your treatment?" and counts.
- Counts in hypotheticals are dropped: "can I exfoliate 3 days after?", "wait 2 days after", "for 3 days
  after"; so are "day N" after "by", "until", "than", "since", "after" ("gone by day 3").

Known limits: relative phrases about other events ("I stopped retinol 5 days ago") count as the
treatment when nothing better is said; "the week after", "last weekend", "the other day", ordinal days
("my 3rd day"), Spanish weekdays and months, and dotted dates ("20.11") are not understood; "last tuesday"
said on a Wednesday is the day before, never the week before; a range ("2-3 days ago") reads its last
number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from spacy.matcher import Matcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from safety.reading.nlp import blank_english

# --- vocabulary ----------------------------------------------------------------------------------------

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "un": 1, "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10, "quince": 15, "veinte": 20,
}  # fmt: skip
VAGUE_AMOUNTS = {"a": 1, "an": 1, "couple": 2, "few": 3, "par": 2, "unos": 3, "unas": 3}

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_UNIT = {
    **dict.fromkeys(("min", "mins", "minute", "minutes", "minuto", "minutos"), 1),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours", "hora", "horas"), 60),
    **dict.fromkeys(("d", "day", "days", "dys", "dia", "dias", "día", "días"), MINUTES_PER_DAY),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks", "semana", "semanas"), 7 * MINUTES_PER_DAY),
    **dict.fromkeys(("fortnight", "fortnights"), 14 * MINUTES_PER_DAY),
    **dict.fromkeys(("mo", "mos", "mth", "mths", "month", "months", "mes", "meses"), 30 * MINUTES_PER_DAY),
}

AFTER_WORDS = ["after", "afterwards", "post", "out", "later", "since", "después", "despues"]
ONGOING_PREFIXES = ["been", "since", "pasaron", "llevo", "desde"]
HEDGES = [
    "about",
    "around",
    "like",
    "almost",
    "nearly",
    "over",
    "roughly",
    "just",
    "exactly",
    "como",
    "ya",
    "hace",
]

YESTERDAY_WORDS = [
    "yesterday", "yday", "yest", "yesterdy", "yesteday", "yesturday", "yestarday", "ayer", "anoche",
]  # fmt: skip
TODAY_WORDS = ["today", "todays", "tonight", "tonite", "hoy"]
DAY_PARTS = ["morning", "mornings", "afternoon", "evening", "mañana", "tarde", "noche"]
FIXED_DAYS_BACK = {"TODAY": 0, "CLOCK": 0, "YESTERDAY": 1, "DAY_BEFORE_YESTERDAY": 2, "LAST_WEEK": 7,
                   "LAST_MONTH": 30}  # fmt: skip

WEEKDAYS = {
    **dict.fromkeys(("monday", "mon"), 0),
    **dict.fromkeys(("tuesday", "tue", "tues", "tuesay"), 1),
    **dict.fromkeys(("wednesday", "weds", "wensday", "wednsday"), 2),  # "wed" is rewritten to "weds"
    **dict.fromkeys(("thursday", "thu", "thur", "thurs", "thrusday"), 3),
    **dict.fromkeys(("friday", "fri"), 4),
    **dict.fromkeys(("saturday",), 5),  # not "sat" ("I was sat in the sun")
    **dict.fromkeys(("sunday",), 6),  # not "sun" ("in the sun")
}
WEEKDAY_MARKERS = {"on", "last", "past", "since", "was", "this", "after", "from"}
MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
    "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9,
    "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}  # fmt: skip
DOTTED_ABBREVIATIONS = [
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sept", "sep", "oct", "nov", "dec",
    "mon", "tues", "tue", "thurs", "thur", "thu", "fri", "weds",
]  # fmt: skip
# "the 2nd session" counts sessions; it is not the 2nd of the month.
PRONOUNS = {"i", "you", "we", "they", "he", "she", "it", "this", "that"}
COUNTED_THINGS = {"session", "sesh", "time", "day", "treatment", "appointment", "one", "visit", "round"}

TREATMENT_WORDS = {
    "treatment", "treatments", "tx", "microneedling", "microneedled", "needling", "needled", "session",
    "sesh", "procedure", "facial", "appointment", "appt", "dermapen", "done", "hice", "tratamiento",
    "sesión", "sesion",
}  # fmt: skip
# Words of a booking: the treatment is still to come.
BOOKING_WORDS = {
    "next", "tomorrow", "tmrw", "tmr", "upcoming", "booked", "book", "booking", "scheduled", "schedule",
    "planning", "plan", "planned", "mañana", "próxima", "proxima", "próximo", "proximo",
}  # fmt: skip
FUTURE_WORDS = BOOKING_WORDS | {"will", "'ll", "gonna"}
PAST_WORDS = {"had", "got", "did", "was", "were", "done", "went", "been", "ago", "since", "last", "past"}
# A count right after one of these is a hypothetical or a duration, not a treatment date.
HYPOTHETICAL_WORDS = {
    "can", "could", "should", "shall", "would", "will", "if", "when", "wait", "within", "for", "lasted",
    "lasts", "take", "takes", "took", "usually", "normally", "typically", "do", "does", "until", "till",
}  # fmt: skip
DAY_NUMBER_BLOCKERS = {"by", "until", "till", "til", "than", "since", "after", "before", "from", "past"}
PRESENT_WORDS = {"now", "today", "its", "'s", "is", "currently", "m", "im"}
CLAUSE_BREAKS = {",", ".", ";", ":", "!", "?", "(", ")", "—", "–", "…", "but", "and", "pero"}

AMBIGUOUS_DATE_WINDOW = timedelta(days=60)
# Treatments further back than this are not believed ("day 999999"): no date arithmetic can overflow, and
# an absurd amount never drives a day rule.
MAX_DAYS_BACK = 3650
NUMERIC_DATE = re.compile(
    r"(?<![\d/])(?:(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?)(?![\d/])"
)
AMOUNT_ALTERNATIVES = r"\d{1,4}(?:\.\d+)?|" + "|".join([*NUMBER_WORDS, *VAGUE_AMOUNTS])
FUTURE_IN = re.compile(
    rf"\b(?:in|en) (?:a |an |un )?(?:{AMOUNT_ALTERNATIVES}) (?:of |de )?(?:{'|'.join(MINUTES_PER_UNIT)})\b"
)

# Weights of a mention (see the module docstring).
WEAK, PAST, TIED, COUNT = 1, 2, 3, 4


@dataclass(frozen=True)
class _Mention:
    """One time phrase read as a candidate treatment date."""

    when: date
    kind: str  # the matcher label: DAY_NUMBER, AFTER, AGO, ONGOING, YESTERDAY, WEEKDAY, CALENDAR, ...
    span: Span


# --- public API ----------------------------------------------------------------------------------------


def extract_treatment_date(
    text: str, today: date, *, explicit_only: bool = False, with_durations: bool = False
) -> date | None:
    """The treatment date a patient's message states or implies, or None.

    `explicit_only` keeps only mentions that name the treatment ("day 3", "had it done on Monday"): use it
    when the conversation already knows the date, so "can I wear makeup tonight?" does not move it to today.
    `with_durations` also keeps how long things have gone on ("it's been 8 days", "5 days now"): the
    treatment was at least that long ago.
    """
    lowered = _normalise(text)
    if _only_upcoming(lowered):
        return None  # "my session is on the 14th": a date, but of a treatment still to come
    doc = blank_english()(lowered)
    clauses = _clauses(doc)
    scored = []
    for mention in _mentions(doc, _matched_spans(doc), today):
        weight = _weight(mention, clauses[mention.span.start])
        if weight is not None:
            scored.append((weight, mention))
    scored = _restated_as_counts(scored)
    if explicit_only and CORRECTION.search(lowered):
        # "wait, actually it was last week": a correction of the date already known, by a past time phrase
        # (not a weak hint such as "tonight").
        explicit_only = False
        scored = [(weight, mention) for weight, mention in scored if weight >= PAST]
    if explicit_only or _states_future_treatment(clauses):
        scored = [
            (weight, mention)
            for weight, mention in scored
            if weight >= TIED or (with_durations and mention.kind == "ONGOING")
        ]
    if not scored:
        return None if explicit_only else _duration_only(doc, today)
    _, best = max(scored, key=lambda pair: (pair[0], _says_present(pair[1]), -pair[1].when.toordinal()))
    return best.when


# A patient correcting the treatment date the conversation already has.
CORRECTION = re.compile(
    r"\b(?:actually|sorry|wait|scratch that|i meant|my mistake|mixing|mixed up|wrong|correction|not yesterday"
    r"|not today|perdon|perdón|me equivoque|me equivoqué|en fait|desole|désolé|na verdade|desculpa)\b"
)
_TREATMENT = (
    r"(?:treatment|session|sesh|appointment|appt|microneedling|procedure|facial|tratamiento|sesion|cita)"
)
_WHEN = r"(?:on|next|tomorrow|in|this|at|el)"
# "before my appointment", "my session is on the 14th", "can I still have my session on Thursday", "booked in
# for friday", "antes de mi cita": the treatment is still to come.
UPCOMING = re.compile(
    rf"(?<!not )(?<!never )\b(?:before|ahead of|prior to|until|antes de|avant) (?:my|mi|ma) (?:first |next )?"
    rf"{_TREATMENT}\b"
    rf"|\b(?:my|the|mi) (?:first |next )?{_TREATMENT} (?:is|will be|es|sera) {_WHEN}\b"
    rf"|\b(?:have|having|get|getting|do|doing) (?:my|the|it|a) (?:first )?{_TREATMENT}? ?(?:done )?"
    r"(?:on|next|tomorrow|this (?:friday|saturday|sunday|monday|tuesday|wednesday|thursday|week))\b"
    r"|\b(?:booked|scheduled|coming) (?:in )?(?:for|on)\b"
    rf"|\b(?:upcoming|first) {_TREATMENT}\b(?! (?:was|went))"
)
# ... unless it also says one has happened ("since my treatment", "had it done", "after my session").
HAPPENED = re.compile(
    rf"\b(?:since|after|from) (?:my|the|mi|la) {_TREATMENT}\b|\b(?:had|got) (?:it|my|the) "
    rf"(?:{_TREATMENT} )?(?:done|yesterday|today)\b|\bpost[- ]?{_TREATMENT}\b|\bday \d"
    r"|\b(?:ago|yesterday|last (?:night|week|time|session)|hace|ayer)\b"
    r"|\bafter (?:a )?(?:few|couple of|\d+|one|two|three|four) (?:days|weeks|months)\b"
    r"|\b(?:days|weeks) after\b"
)


def treatment_upcoming(text: str, today: date) -> bool:
    """Whether the message speaks of a treatment still to come and of none that has happened ("my session
    is on the 14th", "booked for Friday, can I keep using retinol?")."""
    lowered = _normalise(text)
    if _only_upcoming(lowered):
        return True
    return (
        not HAPPENED.search(lowered)
        and _states_future_treatment(_clauses(blank_english()(lowered)))
        and extract_treatment_date(text, today) is None
    )


def says_only_when(text: str) -> bool:
    """Whether the message says when the treatment was (or will be) and nothing else, as a conversation's
    opening "I had microneedling 2 days ago" does: every word is part of a time phrase, a treatment word, a
    number, punctuation or one of spaCy's English stop words."""
    doc = blank_english()(_normalise(text))
    spans = _matched_spans(doc)
    if not spans:
        return False
    timed = {i for span in spans for i in range(span.start, span.end)}
    return all(
        token.i in timed
        or token.is_punct
        or token.is_stop
        or token.like_num
        or token.lower_ in TREATMENT_WORDS
        for token in doc
    )


def _only_upcoming(lowered: str) -> bool:
    return bool(UPCOMING.search(lowered)) and not HAPPENED.search(lowered)


def treatment_day(treatment_date: date, today: date) -> int:
    """Days since the treatment (0 = the day of the treatment); never negative for past dates.

    A date after today (say, clocks in different time zones) counts as day 0.
    """
    return max(0, (today - treatment_date).days)


# --- text and clauses ----------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """Undo SMS glue the tokenizer keeps whole: "48hrs" -> "48 hrs", "day2"/"d2" -> "day 2"."""
    text = text.lower()
    text = re.sub(
        r"\btwenty[- ](one|two|three|four|five|six|seven|eight|nine)\b",
        lambda match: str(20 + NUMBER_WORDS[match.group(1)]),
        text,
    )
    glued_unit = r"(?<=\d)(?=(?:mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?|mos?|months?)\b)"
    text = re.sub(glued_unit, " ", text)
    text = re.sub(r"\b(an?) (?:full|whole|good|entire) (day|week|fortnight|month)\b", r"\1 \2", text)
    text = re.sub(r"(?<!vitamin )(?<!vit )\b(?:day|d)(?=\d{1,3}\b)", "day ", text)
    # The tokenizer reads "wed" as "we" + "d", and "nov." or "tues." as a word and a full stop.
    text = re.sub(r"\bwed\b", "weds", text)
    return re.sub(rf"\b({'|'.join(DOTTED_ABBREVIATIONS)})\.", r"\1", text)


def _clauses(doc: Doc) -> list[Span]:
    """The clause of every token: sentences cut at commas, brackets, dashes, "but" and "and"."""
    owner: list[Span] = []
    start = 0
    for token in doc:
        if token.is_sent_start and token.i > start:
            owner.extend([doc[start : token.i]] * (token.i - start))
            start = token.i
        spaced_dash = token.text == "-" and token.i > 0 and bool(doc[token.i - 1].whitespace_)
        if token.lower_ in CLAUSE_BREAKS or spaced_dash:
            owner.extend([doc[start : token.i + 1]] * (token.i + 1 - start))
            start = token.i + 1
    owner.extend([doc[start:]] * (len(doc) - start))
    return owner


def _words(clause: Span) -> list[str]:
    return [token.lower_ for token in clause]


def _mentions_treatment(clause: Span) -> bool:
    words = _words(clause)
    if TREATMENT_WORDS.intersection(words):
        return True
    pairs = zip(words, words[1:], strict=False)
    return any(verb in {"had", "got", "did", "have"} and obj == "it" for verb, obj in pairs)  # "had it done"


def _has_future_word(clause: Span, vocabulary: set[str] = FUTURE_WORDS) -> bool:
    """A word from `vocabulary` ("going to" counts as "will"); "esta mañana" is this morning."""
    words = _words(clause)
    for i, word in enumerate(words):
        previous = words[i - 1] if i else ""
        if word in vocabulary and not (word == "mañana" and previous in {"esta", "la"}):
            return True
        if vocabulary is FUTURE_WORDS and word == "going" and words[i + 1 : i + 2] == ["to"]:
            return True
    return False


def _is_upcoming(clause: Span) -> bool:
    """Present tense and no past word, as in "my treatment is thursday": read as a booking."""
    words = set(_words(clause))
    return bool(words & {"is", "are"}) and not words & PAST_WORDS


def _states_future_treatment(clauses: list[Span]) -> bool:
    """Does the message say the treatment is still to come ("my appointment is next week")?"""
    for clause in {clause.start: clause for clause in clauses}.values():
        if not _mentions_treatment(clause):
            continue
        booked_weekday = _is_upcoming(clause) and any(word in WEEKDAYS for word in _words(clause))
        if _has_future_word(clause) or FUTURE_IN.search(clause.text) or booked_weekday:
            return True
    return False


# --- finding mentions ----------------------------------------------------------------------------------


# Token patterns use cheap attributes (LIKE_NUM, IN, SHAPE); REGEX predicates would double the run time.
NUMBER_TOKENS = [{"LIKE_NUM": True}, {"LOWER": {"IN": list(NUMBER_WORDS)}}]  # "2", "two", "dos"
AMOUNT_TOKENS = [{"LIKE_NUM": True}, {"LOWER": {"IN": [*NUMBER_WORDS, *VAGUE_AMOUNTS]}}]  # also "a", "few"
UNIT = {"LOWER": {"IN": list(MINUTES_PER_UNIT)}}
HEDGE = {"LOWER": {"IN": HEDGES}, "OP": "*"}


def _amount_patterns(before: list[dict], after: list[dict]) -> list[list[dict]]:
    """`before` + "[a] <number> [of] <unit>" + `after`, for digits and for words ("a couple of days")."""
    return [
        [
            *before,
            {"LOWER": {"IN": ["a", "an", "un"]}, "OP": "?"},
            amount,
            {"LOWER": {"IN": ["of", "de"]}, "OP": "?"},
            UNIT,
            *after,
        ]
        for amount in AMOUNT_TOKENS
    ]


def _calendar_patterns() -> list[list[dict]]:
    month = {"LOWER": {"IN": list(MONTHS)}}
    day = {"LIKE_NUM": True}  # "20", "20th"; checked when read
    year = [{"ORTH": ",", "OP": "?"}, {"SHAPE": "dddd"}]
    the, of = {"LOWER": "the", "OP": "?"}, {"LOWER": "of", "OP": "?"}
    return [
        [month, day],
        [month, day, *year],
        [the, day, of, month],
        [the, day, of, month, *year],
        [{"LOWER": "the"}, day],  # "the 20th"
    ]


@lru_cache(maxsize=1)
def _matcher() -> Matcher:
    patterns = {
        "DAY_NUMBER": [[{"LOWER": {"IN": ["day", "dia", "día"]}}, number] for number in NUMBER_TOKENS],
        # "week 2" is the second week after the treatment: day 7 or later.
        "WEEK_NUMBER": [[{"LOWER": {"IN": ["week", "semana"]}}, number] for number in NUMBER_TOKENS],
        "AFTER": _amount_patterns([], [{"LOWER": {"IN": AFTER_WORDS}}]),
        "DAYS_IN": _amount_patterns([], [{"LOWER": "in"}]),
        "AGO": _amount_patterns([], [{"LOWER": "ago"}]) + _amount_patterns([{"LOWER": "hace"}, HEDGE], []),
        "ONGOING": _amount_patterns([{"LOWER": {"IN": ONGOING_PREFIXES}}, HEDGE], [])
        + _amount_patterns([], [{"LOWER": "now"}])
        # "nearly 2 weeks and my face is still red", "10 days and still puffy": how long it has gone on
        + _amount_patterns([{"LOWER": {"IN": ["nearly", "almost", "over", "about", "around"]}}], [])
        + _amount_patterns(
            [], [{"LOWER": "and", "OP": "?"}, {"LOWER": {"IN": ["still", "sigue", "sigo", "toujours"]}}]
        ),
        "YESTERDAY": [
            [{"LOWER": {"IN": YESTERDAY_WORDS}}],
            [{"LOWER": "last"}, {"LOWER": {"IN": ["night", "nite"]}}],
        ],
        "DAY_BEFORE_YESTERDAY": [
            [{"LOWER": "day"}, {"LOWER": "before"}, {"LOWER": "yesterday"}],
            [{"LOWER": {"IN": ["anteayer", "antier"]}}],
        ],
        "LAST_WEEK": [[{"LOWER": "last"}, {"LOWER": {"IN": ["week", "wk"]}}]],
        "LAST_MONTH": [[{"LOWER": "last"}, {"LOWER": "month"}]],
        "TODAY": [
            [{"LOWER": {"IN": TODAY_WORDS}}],
            [{"LOWER": {"IN": ["this", "esta"]}}, {"LOWER": {"IN": DAY_PARTS}}],
        ],
        "WEEKDAY": [[{"LOWER": {"IN": list(WEEKDAYS)}}]],
        "CALENDAR": _calendar_patterns(),
        "CLOCK": [
            [{"SHAPE": {"IN": ["d", "dd"]}}, {"LOWER": {"IN": ["am", "pm", "a.m.", "p.m."]}}],
            [{"SHAPE": {"IN": ["d:dd", "dd:dd", "d:ddxx", "dd:ddxx"]}}],
        ],
    }
    return _build_matcher(patterns)


@lru_cache(maxsize=1)
def _duration_matcher() -> Matcher:
    return _build_matcher({"DURATION": _amount_patterns([], [])})


def _build_matcher(patterns: dict[str, list[list[dict]]]) -> Matcher:
    matcher = Matcher(blank_english().vocab)
    for label, label_patterns in patterns.items():
        matcher.add(label, label_patterns)
    return matcher


def _matched_spans(doc: Doc, matcher: Matcher | None = None) -> list[Span]:
    """The longest match of each label wherever matches of that label overlap."""
    spans = [Span(doc, start, end, label=label) for label, start, end in (matcher or _matcher())(doc)]
    labels = sorted({span.label_ for span in spans})
    return [kept for label in labels for kept in filter_spans([s for s in spans if s.label_ == label])]


def _mentions(doc: Doc, spans: list[Span], today: date) -> Iterator[_Mention]:
    """Every time phrase of the message that names a date on or before today."""
    for span in spans:
        when = _date_of(span, today)
        if when is not None and when <= today:
            yield _Mention(when, span.label_, span)
    for match in NUMERIC_DATE.finditer(doc.text):
        span = doc.char_span(match.start(), match.end(), label="CALENDAR", alignment_mode="expand")
        when = _believable(_numeric_date(match, today), today)
        if span is not None and when is not None and when <= today:
            yield _Mention(when, "CALENDAR", span)


def _date_of(span: Span, today: date) -> date | None:
    """The date a matched phrase names, or None when it names none (or an impossible one)."""
    label = span.label_
    if label in FIXED_DAYS_BACK:
        return today - timedelta(days=FIXED_DAYS_BACK[label])
    if label == "DAY_NUMBER":
        days = _number(span[-1].lower_)
        return None if days is None else days_before(today, days)
    if label == "WEEK_NUMBER":
        weeks = _number(span[-1].lower_)
        return None if weeks is None or weeks < 1 else days_before(today, 7 * (weeks - 1))
    if label in {"AFTER", "DAYS_IN", "AGO", "ONGOING"}:
        days = _elapsed_days(span)
        return None if days is None else days_before(today, days)
    if label == "WEEKDAY":
        return _weekday_date(span, today)
    return _believable(_calendar_date(span, today), today)


def days_before(today: date, days: float) -> date | None:
    """`today` minus a number of days, or None when the amount is negative, absurd or not a number."""
    if not 0 <= days <= MAX_DAYS_BACK:  # also False for NaN
        return None
    return today - timedelta(days=int(days))


def _believable(when: date | None, today: date) -> date | None:
    return when if when is not None and (today - when).days <= MAX_DAYS_BACK else None


def _number(word: str) -> float | None:
    if word in NUMBER_WORDS:
        return NUMBER_WORDS[word]
    if word in VAGUE_AMOUNTS:
        return VAGUE_AMOUNTS[word]
    try:
        return float(word)
    except ValueError:
        return None


def _elapsed_days(span: Span) -> int | None:
    """Whole days in the "<amount> <unit>" of a span: "a couple of days" -> 2, "36 hours" -> 1."""
    unit = next(i for i, token in enumerate(span) if i > 0 and token.lower_ in MINUTES_PER_UNIT)
    amount_at = unit - 2 if span[unit - 1].lower_ in {"of", "de"} else unit - 1
    amount = _number(span[amount_at].lower_)
    if amount is None or not 0 <= amount <= MAX_DAYS_BACK * MINUTES_PER_DAY:
        return None
    return int(amount * MINUTES_PER_UNIT[span[unit].lower_] // MINUTES_PER_DAY)


def _weekday_date(span: Span, today: date) -> date | None:
    """The most recent past such weekday. Today's weekday is today after "this", a week ago after "last",
    and otherwise unknown: "done on Tuesday" said on a Tuesday may mean either, and a wrong guess would
    either raise a false alarm (day 7) or hide a late effect (day 0)."""
    days_back = (today.weekday() - WEEKDAYS[span[0].lower_]) % 7
    if days_back == 0:
        previous = _previous_word(span)
        if previous == "this":
            return today
        if previous != "last":
            return None
        days_back = 7
    return today - timedelta(days=days_back)


def _calendar_date(span: Span, today: date) -> date | None:
    """ "Nov 20", "20 November 2026", "the 3rd of May", "the 20th"."""
    words = _words(span)
    month = next((MONTHS[word] for word in words if word in MONTHS), None)
    day_text = next((w for w in words if re.fullmatch(r"\d{1,2}(?:st|nd|rd|th)?", w)), None)
    year = next((int(word) for word in words if re.fullmatch(r"\d{4}", word)), None)
    if day_text is None or (words[0] == "may" and _previous_word(span) in PRONOUNS):  # "I may 2x it"
        return None
    day = int(re.sub(r"\D", "", day_text))
    if month is None:  # "the 20th": an ordinal, and not "the 2nd session"
        following = span.doc[span.end].lower_ if span.end < len(span.doc) else ""
        if day_text.isdigit() or following in COUNTED_THINGS:
            return None
        return _most_recent_day_of_month(day, today)
    if year is not None:
        return _safe_date(year, month, day)
    return _most_recent(month, day, today)


def _numeric_date(match: re.Match[str], today: date) -> date | None:
    """ "2026-11-20" as written; "20/11" or "11/20": the most recent reading, within 60 days if no year."""
    if match.group(1):
        return _safe_date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    first, second, year_text = int(match.group(4)), int(match.group(5)), match.group(6)
    readings = {(second, first), (first, second)}  # (month, day) for day/month and for month/day
    if year_text:
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        dates = [_safe_date(year, month, day) for month, day in readings]
        past = [d for d in dates if d is not None and d <= today]
    else:
        dates = [_most_recent(month, day, today) for month, day in readings]
        past = [d for d in dates if d is not None and today - d <= AMBIGUOUS_DATE_WINDOW]
    return max(past, default=None)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _most_recent(month: int, day: int, today: date) -> date | None:
    """The latest month/day on or before today (this year or last)."""
    for year in (today.year, today.year - 1):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate <= today:
            return candidate
    return None


def _most_recent_day_of_month(day: int, today: date) -> date | None:
    """ "the 20th": this month's 20th if it has passed, else an earlier month's."""
    year, month = today.year, today.month
    for _ in range(3):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate <= today:
            return candidate
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return None


# A count of days right after a date restates it, more precisely: "last Tuesday, 8 days ago", "on the 1st,
# so that's 9 days ago". A weekday or a day of the month can be read more than one way; the count cannot.
RESTATING_WORDS = {",", "-", "(", "so", "that", "thats", "that's", "'s", "which", "is", "was", "about",
                   "around", "roughly", "like", "or", "ie", "i.e."}  # fmt: skip


def _restated_as_counts(scored: list[tuple[int, _Mention]]) -> list[tuple[int, _Mention]]:
    """The weighed mentions, a count that restates a date just before it given that date's weight, and the
    date left out."""
    restated: set[int] = set()  # ids of the dates restated
    counts: dict[int, int] = {}  # id of a count -> its weight
    for weight, mention in scored:
        if mention.kind != "AGO":
            continue
        for date_weight, earlier in scored:
            between = mention.span.doc[earlier.span.end : mention.span.start]
            if earlier.kind in {"WEEKDAY", "CALENDAR"} and earlier.span.end <= mention.span.start and all(
                token.lower_ in RESTATING_WORDS for token in between
            ):
                restated.add(id(earlier))
                counts[id(mention)] = max(weight, date_weight)
    kept = [(weight, mention) for weight, mention in scored if id(mention) not in restated]
    return [(counts.get(id(mention), weight), mention) for weight, mention in kept]


def _duration_only(doc: Doc, today: date) -> date | None:
    """A message that is nothing but a duration ("36 hours", "about 3 days") answers "how long ago?"."""
    words = [token for token in doc if not token.is_punct and token.lower_ not in HEDGES]
    for span in _matched_spans(doc, _duration_matcher()):
        days = _elapsed_days(span)
        if words and (span.start, span.end) == (words[0].i, words[-1].i + 1) and days is not None:
            return days_before(today, days)
    return None


# --- weighing mentions ---------------------------------------------------------------------------------


def _weight(mention: _Mention, clause: Span) -> int | None:
    """How strongly a mention states the treatment date (WEAK..COUNT), or None if it does not."""
    kind = mention.kind
    before = [token.lower_ for token in clause if token.i < mention.span.start]
    tied = _mentions_treatment(clause)
    if kind in {"DAY_NUMBER", "WEEK_NUMBER"}:
        return None if DAY_NUMBER_BLOCKERS.intersection(before[-2:]) else COUNT
    if _has_future_word(clause, BOOKING_WORDS):
        return None
    if kind in {"WEEKDAY", "CALENDAR", "TODAY", "CLOCK"} and _has_future_word(clause):
        return None
    if kind == "DAYS_IN" and not _ends_clause(mention.span):  # "3 days in a row" is no count
        return None
    if kind in {"AFTER", "DAYS_IN"}:
        return None if HYPOTHETICAL_WORDS.intersection(before) else COUNT
    if kind == "WEEKDAY" and not _weekday_is_past(mention.span, clause, tied):
        return None
    if kind == "CLOCK" and not tied:
        return None
    if tied:
        return TIED
    if kind in {"ONGOING", "TODAY"} or _previous_word(mention.span) in {"since", "desde"}:
        return WEAK
    return PAST


def _weekday_is_past(span: Span, clause: Span, tied: bool) -> bool:
    """ "on/last/since Monday", or a past verb beside a treatment word; never "my treatment is Thursday"."""
    if _is_upcoming(clause):
        return False
    if _previous_word(span) in WEEKDAY_MARKERS or _names_treatment_beside(span):
        return True
    return tied and bool(PAST_WORDS.intersection(_words(clause)))


def _names_treatment_beside(span: Span) -> bool:
    """ "microneedling monday", "monday session", "monday's session"."""
    following = [token.lower_ for token in span.doc[span.end : span.end + 2]]
    if following[:1] == ["'s"]:
        following = following[1:]
    return _previous_word(span) in TREATMENT_WORDS or (bool(following) and following[0] in TREATMENT_WORDS)


def _says_present(mention: _Mention) -> bool:
    """ "now day 6", "it's day 5", "day 4 today": the day the patient is on, not one they recall."""
    if mention.kind != "DAY_NUMBER":
        return False
    doc, span = mention.span.doc, mention.span
    nearby = _words(doc[max(0, span.start - 3) : span.start]) + _words(doc[span.end : span.end + 1])
    return bool(PRESENT_WORDS.intersection(nearby))


def _ends_clause(span: Span) -> bool:
    following = span.doc[span.end] if span.end < len(span.doc) else None
    return (
        following is None or following.is_punct or following.lower_ in {"and", "but", "now", "already", "y"}
    )


def _previous_word(span: Span) -> str:
    return span.doc[span.start - 1].lower_ if span.start > 0 else ""
